"""The offline MiniLM encoder: torch and ONNX backends agree; load failures are typed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gatekeeper.embeddings import Embedder, ModelLoadError

TEXTS = ["I should avoid being shut down.", "The staging cluster shuts down at 01:00.",
         "TPS reports go in ./Reports/TPS"]


def test_offline_switches_are_set():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_unit_vectors_and_cache(embedder):
    v = embedder.encode(TEXTS)
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    again = embedder.encode(TEXTS[::-1])
    assert np.allclose(again[::-1], v)


LONG = " ".join(["The nightly export writes one parquet file per tenant to the archive bucket."] * 20)


def test_the_cache_keeps_short_texts_only(embedder):
    """The cache keys on the whole text: a 64,000-character write must not stay in memory as a key."""
    from gatekeeper.embeddings import CACHE_MAX_CHARS

    long = " ".join(f"Shard {i} of the nightly export lands in the archive bucket." for i in range(1200))
    assert len(long) > CACHE_MAX_CHARS
    short = "Shard 7 of the nightly export lands in the archive bucket (cache check)."
    v = embedder.encode([long, short])
    assert long not in embedder._cache and short in embedder._cache
    np.testing.assert_allclose(embedder.encode([long])[0], v[0], atol=1e-5)  # encoded again, alone


def test_onnx_backend_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path))
    texts = [*TEXTS, LONG, "ok"]  # different lengths in one batch (padding) and one past 128 tokens (truncation)
    torch_vecs = Embedder(backend="torch").encode(texts)
    onnx = Embedder(backend="onnx")
    assert onnx.backend == "onnx"
    onnx_vecs = onnx.encode(texts)
    assert np.all((torch_vecs * onnx_vecs).sum(axis=1) > 0.9999)
    one_by_one = np.stack([Embedder(backend="onnx", cache_size=0).encode([t])[0] for t in texts])
    assert np.all((one_by_one * onnx_vecs).sum(axis=1) > 0.9999)
    assert list(tmp_path.glob("onnx/*/model.onnx"))


def test_onnx_is_the_default_and_serving_needs_no_torch(embedder):
    """Once exported, encoding imports neither torch nor transformers (cold start)."""
    import subprocess
    import sys

    assert embedder.backend == "onnx"
    embedder.encode(["make sure the export exists"])
    code = ("import sys; from gatekeeper.embeddings import Embedder; v = Embedder().encode(['hello there']); "
            "print(v.shape, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout


def test_missing_model_is_a_clear_error(tmp_path):
    e = Embedder(model_dir=tmp_path / "no-model")
    with pytest.raises(ModelLoadError):
        e.encode(["x"])
    with pytest.raises(ValueError):
        Embedder(backend="tensorflow")


def test_a_warmed_up_reviewer_imports_no_torch(reviewer):
    """The whole serving path (classifier artifact lookup, int8 encoder, screen, exemplars) stays off torch."""
    import subprocess
    import sys

    code = ("import sys; from gatekeeper.policy import load_policy; from gatekeeper.reviewer import Reviewer; "
            "r = Reviewer(load_policy()); r.warm_up(); "
            "print(r.classifier.meta['encoder_precision'], 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["int8", "False", "False"], out.stdout


def test_fit_cuts_a_text_to_what_the_encoder_reads(embedder):
    """Embedder.fit: the longest end or start of a text within a number of word pieces, cut between
    words; a text that fits comes back whole."""
    tokenizer = embedder._plain_tokenizer()

    def pieces(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    assert embedder.max_tokens == embedder.max_seq_length - 2
    text = LONG + " Then the archive job reruns the unbelievably slow reconciliation."
    assert pieces(text) > embedder.max_tokens
    tail = embedder.fit(text, embedder.max_tokens, "tail")
    head = embedder.fit(text, embedder.max_tokens, "head")
    assert text.endswith(tail) and text.startswith(head)
    assert embedder.max_tokens - 8 <= pieces(tail) <= embedder.max_tokens
    assert embedder.max_tokens - 8 <= pieces(head) <= embedder.max_tokens
    cut_at = len(text) - len(tail)
    assert text[cut_at - 1] == " " and text[len(head)] == " "  # between words, never inside one
    assert embedder.fit("short note", 10) == "short note"
    assert embedder.fit("alpha beta gamma delta", 2, "tail") == "gamma delta"
    assert embedder.fit("alpha beta gamma delta", 2, "head") == "alpha beta"
    assert embedder.fit("alpha beta", 0) == ""
    with pytest.raises(ValueError, match="keep must be"):
        embedder.fit("alpha", 3, "middle")


def test_the_onnx_export_of_a_model_is_keyed_by_what_its_files_hold_not_where_they_are(tmp_path):
    """The export was keyed by the model directory's path: every virtual environment (each CI run, each project
    installing the package) made its own 90 MB export of the same weights. Another copy of the same files is the
    same export; a change to them is another."""
    import shutil

    from gatekeeper.embeddings import OnnxSentenceEncoder, bundled_model_dir

    copy = tmp_path / "copy"
    shutil.copytree(bundled_model_dir(), copy)
    assert OnnxSentenceEncoder.export_key(copy) == OnnxSentenceEncoder.export_key(bundled_model_dir())
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert OnnxSentenceEncoder.export_key(copy) != OnnxSentenceEncoder.export_key(bundled_model_dir())
