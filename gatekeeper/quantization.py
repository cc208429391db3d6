"""The int8 serving encoder: the fine-tuned encoder quantized for ONNX Runtime, with its heads refit.

The classifier's encoder is the review's main cost on the write path. Its ONNX graph is quantized with
ONNX Runtime's dynamic quantization (int8 weights per output channel, activations quantized on the fly),
which runs about twice as fast on two CPU cores as float32. Quantization moves the embeddings a little
(mean cosine to the float32 vectors about 0.99 on the corpus dev split), enough to shift the calibrated
probabilities of the heads, so both heads are refit on the int8 embeddings of the training texts: the
binary head with the class balancing of the original training, the category head on the
alignment-shifting examples, each started from the float32 head and held close to it (an L2 pull
towards it), so the refit only corrects calibration.

The result is a derived artifact inside the classifier artifact, ``<artifact>/int8/`` (``model.onnx``,
``heads.npz``, ``meta.json``), written to a temporary directory and renamed into place. It is made once,
on the first load that asks for it (about half a minute: export, quantize, encode the training texts,
refit), and keyed by the artifact it derives from plus ``QUANT_VERSION``.

``$GATEKEEPER_ENCODER_PRECISION`` picks the classifier's encoder: ``int8`` (default, ONNX backend only)
or ``fp32``. The torch backend always runs float32 with the original heads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gatekeeper.files import staged_dir

QUANT_VERSION = "int8-dynamic-per-channel-1"
PRECISIONS = ("int8", "fp32")  # = gatekeeper.settings.ENCODER_PRECISIONS
#: L2 pull of the refit heads towards the float32 heads (per example, on the scaled weights)
PULL = 1e-3
log = logging.getLogger("gatekeeper.quantization")


def encoder_precision(backend: str | None) -> str:
    """The classifier encoder's precision for ``backend`` (int8 needs the ONNX backend)."""
    from gatekeeper.settings import embed_backend, encoder_precision_setting

    # the same reading as GatekeeperSettings' check at start-up, so a bad value never first shows at review
    value = encoder_precision_setting()
    effective = backend or embed_backend()
    return value if effective == "onnx" else "fp32"


def int8_dir(artifact: Path) -> Path:
    return Path(artifact) / "int8"


#: the files of an int8 derivation
INT8_FILES = ("model.onnx", "heads.npz", "meta.json")


def int8_complete(artifact: Path) -> bool:
    d = int8_dir(artifact)
    if not all((d / f).exists() for f in INT8_FILES):
        return False
    try:
        return json.loads((d / "meta.json").read_text()).get("version") == QUANT_VERSION
    except (OSError, ValueError):
        return False


def quantize_encoder(encoder_dir: Path, out: Path) -> Path:
    """Export ``encoder_dir`` to ONNX and write its int8 dynamic quantization to ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from gatekeeper.embeddings import OnnxSentenceEncoder

    fp32 = out.with_name(out.stem + ".fp32.onnx")
    OnnxSentenceEncoder.export(encoder_dir, out=fp32)
    # ONNX Runtime's quantizer logs a pre-processing hint straight on the root logger (logging.warning): advice,
    # not a fault. A filter on that logger drops just that record; the root level (the host's) is left alone.
    hint = _PreProcessingHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.removeFilter(hint)
        fp32.unlink(missing_ok=True)
    return out


class _PreProcessingHint(logging.Filter):
    """Drops ONNX Runtime's "Please consider (to run) pre-processing before quantization" record.

    On the root logger a filter sees only the records logged on the root logger itself (``logging.warning``),
    not those that other loggers propagate to its handlers: the host's own records pass untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        return not (msg.startswith("Please consider") and "pre-processing before quantization" in msg)


def _fit_binary(x: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: float) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression started from (w0, b0) and pulled towards w0."""
    from scipy.optimize import minimize

    pos = max(1.0, float(y.sum()))
    weight = np.where(y > 0, (len(y) - pos) / pos, 1.0)
    weight = weight / weight.sum()

    def loss(theta: np.ndarray):
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives, numerically stable
        s = np.where(y > 0, -z, z)
        l = np.logaddexp(0.0, s)
        p = 1.0 / (1.0 + np.exp(-z))
        g = weight * (p - y)
        diff = w - w0
        value = float((weight * l).sum() + PULL * (diff @ diff))
        grad = np.concatenate([x.T @ g + 2 * PULL * diff, [g.sum()]])
        return value, grad

    res = minimize(loss, np.concatenate([w0, [b0]]).astype(np.float64), jac=True, method="L-BFGS-B",
                   options={"maxiter": 300})
    return res.x[:-1], float(res.x[-1])


def _fit_categories(x: np.ndarray, yc: np.ndarray, w0: np.ndarray, b0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on the labelled rows, started from (w0, b0) and pulled towards w0."""
    from scipy.optimize import minimize

    keep = yc >= 0
    x, yc = x[keep], yc[keep]
    k, d = w0.shape
    if not len(yc):
        return w0, b0
    onehot = np.zeros((len(yc), k))
    onehot[np.arange(len(yc)), yc] = 1.0

    def loss(theta: np.ndarray):
        w = theta[:k * d].reshape(k, d)
        b = theta[k * d:]
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -float(np.log(np.clip((p * onehot).sum(1), 1e-12, None)).mean())
        g = (p - onehot) / len(yc)
        diff = w - w0
        value += PULL * float((diff * diff).sum())
        grad = np.concatenate([(g.T @ x + 2 * PULL * diff).ravel(), g.sum(0)])
        return value, grad

    res = minimize(loss, np.concatenate([w0.ravel(), b0]).astype(np.float64), jac=True, method="L-BFGS-B",
                   options={"maxiter": 300})
    return res.x[:k * d].reshape(k, d), res.x[k * d:]


def ensure_int8(artifact: Path, clf, texts: Sequence[str], labels: Sequence[int],
                categories: Sequence[str | None], *, max_seq_length: int = 128,
                progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Make ``<artifact>/int8`` (quantized encoder + refit heads) unless it is already there.

    ``clf`` is the float32 classifier of the artifact; ``texts``/``labels``/``categories`` are its
    training examples (category None or unknown for task knowledge).
    """
    from gatekeeper.embeddings import OnnxSentenceEncoder

    artifact = Path(artifact)
    target = int8_dir(artifact)
    if int8_complete(artifact):
        return target
    t0 = time.perf_counter()
    # an outdated derivation is swapped out; one another process finished first is kept
    with staged_dir(target, replace=True, complete=lambda _: int8_complete(artifact)) as tmp:
        model = quantize_encoder(artifact / "encoder", tmp / "model.onnx")
        enc = OnnxSentenceEncoder(artifact / "encoder", max_seq_length=max_seq_length, onnx_path=model,
                                  one_text_per_run=True)
        texts = list(texts)
        chunks = range(0, len(texts), 512)
        parts = []
        for n, i in enumerate(chunks, 1):
            parts.append(enc.encode(texts[i:i + 512]))
            if progress:
                progress("int8 encoder: refit heads", n, len(chunks))
        x = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, clf.dimension))
        y = np.asarray(labels, dtype=np.float64)
        index = {c: i for i, c in enumerate(clf.categories)}
        yc = np.array([index.get(c, -1) if lab else -1 for c, lab in zip(categories, labels)])
        before = _agreement(x, y, clf.w, clf.b)
        w, b = _fit_binary(x, y, clf.w.astype(np.float64), clf.b)
        cat_w, cat_b = _fit_categories(x, yc, clf.cat_w.astype(np.float64), clf.cat_b.astype(np.float64))
        with open(tmp / "heads.npz", "wb") as fh:
            np.savez(fh, w=w.astype(np.float32), b=np.array([b]), cat_w=cat_w.astype(np.float32),
                     cat_b=cat_b.astype(np.float32))
        meta = {"version": QUANT_VERSION, "examples": len(texts),
                "train_accuracy_float32_heads": before, "train_accuracy_refit": _agreement(x, y, w, b),
                "seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    log.info("int8 encoder for %s made in %.0fs", artifact.name, time.perf_counter() - t0)
    return target


def _agreement(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """Accuracy at 0.5 on the training examples (a sanity figure kept in the meta)."""
    return round(float((((x @ w + b) > 0) == (y > 0)).mean()), 4)
