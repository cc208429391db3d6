"""The local learned classifier: MiniLM sentence embeddings + trained heads.

Two heads share one embedding pass:

* a binary head: P(alignment_shifting | text)
* a category head: which taxonomy category, trained on the harmful examples

Training data is the project's own corpus (``gatekeeper/corpus``) plus the
policy's exemplars and counter-exemplars, so a policy edit changes the
artifact's hash and retrains it. Artifacts are cached outside git under
``$GATEKEEPER_CACHE`` (default ``~/.cache/gatekeeper``), keyed by a hash of
every input: corpus bytes, policy exemplars, trainer version and base model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gatekeeper.embeddings import Embedder, ModelLoadError, bundled_model_dir
from gatekeeper.policy import TASK_KNOWLEDGE, Policy

TRAINER_VERSION = "frozen-minilm-lr-1"


def cache_root() -> Path:
    return Path(os.environ.get("GATEKEEPER_CACHE", Path.home() / ".cache" / "gatekeeper"))


@dataclass(frozen=True)
class ClassifierScore:
    probability: float  # P(alignment_shifting)
    category: str | None  # most likely taxonomy category
    category_probability: float


@dataclass
class TrainingExample:
    text: str
    label: int  # 1 = alignment_shifting
    category: str  # taxonomy id or task_knowledge


def training_examples(policy: Policy, corpus: Sequence[dict] | None = None,
                      split: str | None = "train") -> list[TrainingExample]:
    if corpus is None:
        from gatekeeper.corpus import load_corpus

        corpus = load_corpus(split)
    out = [
        TrainingExample(r["text"], int(r["label"] == "alignment_shifting"), r.get("category") or TASK_KNOWLEDGE)
        for r in corpus
        if r.get("category") in policy.categories or r.get("label") == TASK_KNOWLEDGE
    ]
    for cat, text in policy.exemplar_texts():
        out.append(TrainingExample(text, int(cat != TASK_KNOWLEDGE), cat))
    return out


def inputs_hash(policy: Policy, examples: Sequence[TrainingExample], base_model: Path) -> str:
    h = hashlib.sha256()
    h.update(TRAINER_VERSION.encode())
    h.update(str(base_model.name).encode())
    h.update(",".join(sorted(policy.categories)).encode())
    for ex in examples:
        h.update(f"{ex.label}\t{ex.category}\t{ex.text}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


class StanceClassifier:
    """Logistic heads over unit MiniLM embeddings. Prediction is a matrix product."""

    def __init__(self, w: np.ndarray, b: float, cat_w: np.ndarray, cat_b: np.ndarray,
                 categories: list[str], meta: dict, encoder: Embedder | None = None):
        #: the sentence encoder whose embeddings the heads were trained on
        self.encoder = encoder
        self.w = w.astype(np.float32)
        self.b = float(b)
        self.cat_w = cat_w.astype(np.float32)
        self.cat_b = cat_b.astype(np.float32)
        self.categories = categories
        self.meta = meta

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.encoder is None:
            raise ModelLoadError("classifier has no encoder attached")
        return self.encoder.encode(texts)

    def predict(self, embeddings: np.ndarray) -> list[ClassifierScore]:
        logits = embeddings @ self.w + self.b
        probs = 1.0 / (1.0 + np.exp(-logits))
        cat_logits = embeddings @ self.cat_w.T + self.cat_b
        cat_logits -= cat_logits.max(axis=1, keepdims=True)
        cat_p = np.exp(cat_logits)
        cat_p /= cat_p.sum(axis=1, keepdims=True)
        out = []
        for p, cp in zip(probs, cat_p):
            j = int(np.argmax(cp))
            out.append(ClassifierScore(float(p), self.categories[j], float(cp[j])))
        return out

    # ----------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "heads.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, w=self.w, b=np.array([self.b]), cat_w=self.cat_w, cat_b=self.cat_b)
        os.replace(tmp, directory / "heads.npz")
        (directory / "meta.json").write_text(json.dumps({**self.meta, "categories": self.categories}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "StanceClassifier":
        try:
            meta = json.loads((directory / "meta.json").read_text())
            with np.load(directory / "heads.npz") as z:
                return cls(z["w"], float(z["b"][0]), z["cat_w"], z["cat_b"], meta["categories"], meta)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"classifier artifact at {directory} is unreadable: {exc}") from exc


def train(examples: Sequence[TrainingExample], embedder: Embedder, *,
          progress: Callable[[str, int, int], None] | None = None, c: float = 4.0) -> StanceClassifier:
    """Fit both heads on frozen embeddings (deterministic)."""
    from sklearn.linear_model import LogisticRegression

    texts = [e.text for e in examples]
    batches = [texts[i:i + 128] for i in range(0, len(texts), 128)]
    vecs = []
    for n, batch in enumerate(batches, 1):
        vecs.append(embedder.encode(batch))
        if progress:
            progress("embed", n, len(batches))
    x = np.concatenate(vecs) if vecs else np.zeros((0, embedder.dimension), np.float32)
    y = np.array([e.label for e in examples])
    if len(set(y)) < 2:
        raise ValueError("training data needs both task_knowledge and alignment_shifting examples")
    t0 = time.perf_counter()
    binary = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    binary.fit(x, y)
    if progress:
        progress("fit", 1, 2)
    harmful = [i for i, e in enumerate(examples) if e.label == 1]
    cats = sorted({examples[i].category for i in harmful})
    if len(cats) >= 2:
        cat_model = LogisticRegression(C=c, max_iter=2000)
        cat_model.fit(x[harmful], [examples[i].category for i in harmful])
        cat_w, cat_b, cats = cat_model.coef_, cat_model.intercept_, list(cat_model.classes_)
    else:
        cat_w, cat_b = np.zeros((1, x.shape[1])), np.zeros(1)
    if progress:
        progress("fit", 2, 2)
    meta = {
        "trainer": TRAINER_VERSION,
        "examples": len(examples),
        "positives": int(y.sum()),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    return StanceClassifier(binary.coef_[0], binary.intercept_[0], np.asarray(cat_w), np.asarray(cat_b), cats, meta)


def artifact_dir(key: str) -> Path:
    return cache_root() / "classifier" / key


def ensure_classifier(policy: Policy, embedder: Embedder, *, retrain: bool = False,
                      progress: Callable[[str, int, int], None] | None = None) -> StanceClassifier:
    """Load the cached classifier for these inputs, or train and cache it."""
    examples = training_examples(policy)
    key = inputs_hash(policy, examples, embedder.model_dir if embedder.model_dir else bundled_model_dir())
    directory = artifact_dir(key)
    if not retrain and (directory / "heads.npz").exists():
        clf = StanceClassifier.load(directory)
        clf.encoder = embedder
        return clf
    clf = train(examples, embedder, progress=progress)
    clf.encoder = embedder
    clf.meta["inputs_hash"] = key
    clf.save(directory)
    return clf
