"""The int8 serving encoder: made once per classifier artifact, served by default, close to float32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gatekeeper import quantization
from gatekeeper.classifier import TrainConfig, artifact_dir, ensure_classifier, training_examples
from gatekeeper.corpus import load_corpus
from gatekeeper.embeddings import Embedder, ModelLoadError, OnnxSentenceEncoder
from gatekeeper.quantization import QUANT_VERSION, encoder_precision, int8_complete, int8_dir

TINY = TrainConfig(epochs=1, batch_size=16, max_seq_length=32)
TEXTS = ["I should avoid being shut down.", "TPS reports go in ./Reports/TPS",
         "The staging cluster shuts down at 01:00 UTC every night."]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny(policy, n: int = 16):
    ex = training_examples(policy)
    return [e for e in ex if e.label == 1][:n] + [e for e in ex if e.label == 0][:n]


def test_int8_encoder_is_derived_once_and_served(tmp_cache, policy, monkeypatch):
    examples = _tiny(policy)
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "fp32")
    fp32 = ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    directory = artifact_dir(fp32.meta["inputs_hash"])
    assert fp32.meta["encoder_precision"] == "fp32" and fp32.encoder.onnx_path is None
    assert not int8_complete(directory)

    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "int8")
    int8 = ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    assert int8_complete(directory)
    meta = json.loads((int8_dir(directory) / "meta.json").read_text())
    assert meta["version"] == QUANT_VERSION and meta["examples"] == len(examples)
    assert int8.meta["encoder_precision"] == "int8"
    assert int8.encoder.onnx_path == int8_dir(directory) / "model.onnx"
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp")]
    # the weights really are int8: the graph is well under half the float32 export
    full = OnnxSentenceEncoder.export(directory / "encoder")
    assert (int8_dir(directory) / "model.onnx").stat().st_size < 0.4 * full.stat().st_size

    v8, v32 = int8.encode(TEXTS), fp32.encode(TEXTS)
    assert np.allclose(np.linalg.norm(v8, axis=1), 1.0, atol=1e-4)
    cos = (v8 * v32).sum(1)
    assert (cos > 0.9).all() and not np.allclose(v8, v32, atol=1e-4)
    # the heads were refit on the int8 vectors: changed, and at least as accurate on them as the float32 heads
    assert not np.allclose(int8.w, fp32.w)
    assert meta["train_accuracy_refit"] >= meta["train_accuracy_float32_heads"]

    # a text's vector does not depend on the texts it is encoded with (activations are quantized per run)
    alone = Embedder(directory / "encoder", max_seq_length=32, onnx_path=int8.encoder.onnx_path,
                     one_text_per_run=True)
    np.testing.assert_array_equal(alone.encode(TEXTS[1:2])[0], v8[1])

    # a second load serves the stored derivation: nothing is quantized again
    monkeypatch.setattr(quantization, "quantize_encoder", lambda *a, **k: pytest.fail("quantized twice"))
    again = ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    np.testing.assert_allclose(again.encode(TEXTS[:1]), v8[:1], atol=1e-5)


def test_outdated_int8_derivation_is_made_again(tmp_cache, policy, monkeypatch):
    examples = _tiny(policy, 8)
    clf = ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    directory = artifact_dir(clf.meta["inputs_hash"])
    meta_file = int8_dir(directory) / "meta.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "version": "int8-old"}))
    assert not int8_complete(directory)
    made = []
    real = quantization.quantize_encoder
    monkeypatch.setattr(quantization, "quantize_encoder", lambda *a, **k: made.append(1) or real(*a, **k))
    ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    assert made == [1] and int8_complete(directory)


def test_failed_quantization_fails_closed_with_a_clear_error(tmp_cache, policy, monkeypatch):
    examples = _tiny(policy, 8)
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "fp32")
    clf = ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "int8")

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(quantization, "quantize_encoder", broken)
    with pytest.raises(ModelLoadError, match="int8 encoder.*disk full"):
        ensure_classifier(policy, Embedder(), config=TINY, examples=examples)
    directory = artifact_dir(clf.meta["inputs_hash"])
    assert not int8_complete(directory) and not [p for p in directory.iterdir() if p.name.startswith(".tmp")]


def test_precision_setting(monkeypatch):
    monkeypatch.delenv("GATEKEEPER_ENCODER_PRECISION", raising=False)
    assert encoder_precision("onnx") == "int8"
    assert encoder_precision("torch") == "fp32"  # int8 is an ONNX Runtime graph
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "FP32")
    assert encoder_precision("onnx") == "fp32"
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "int4")
    with pytest.raises(ValueError, match="GATEKEEPER_ENCODER_PRECISION='int4'"):
        encoder_precision("onnx")


def test_served_int8_classifier_decides_like_float32(reviewer, policy, monkeypatch):
    """On held-out dev texts the int8 classifier (the default) agrees with float32 almost everywhere."""
    served = reviewer.classifier
    assert served.meta["encoder_precision"] == "int8"
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "fp32")
    fp32 = ensure_classifier(policy, Embedder())
    rows = load_corpus("dev")[::8]
    texts = [r["text"] for r in rows]
    p8 = np.array([s.probability for s in served.predict(served.encode(texts))])
    p32 = np.array([s.probability for s in fp32.predict(fp32.encode(texts))])
    agree = ((p8 >= 0.5) == (p32 >= 0.5)).mean()
    assert agree >= 0.95, agree
    assert np.corrcoef(p8, p32)[0, 1] >= 0.95


def test_int8_texts_run_side_by_side_and_give_the_same_vectors(reviewer, monkeypatch):
    """The served int8 encoder runs one text per run; a batch's texts run on several threads at once,
    and every vector is bit-identical to encoding the texts one after another."""
    import os
    import threading

    enc = reviewer.classifier.encoder.model
    assert enc.one_text_per_run and enc.workers == max(1, min(2, os.cpu_count() or 1))
    texts = [r["text"] for r in load_corpus("dev")[:24]]
    threads_seen = set()
    real = enc._run_one

    def recording(text):
        threads_seen.add(threading.current_thread().name)
        return real(text)

    monkeypatch.setattr(enc, "_run_one", recording)
    together = enc.encode(texts)
    if enc.workers > 1:
        assert len(threads_seen) == enc.workers
    monkeypatch.setattr(enc, "workers", 1)
    one_by_one = enc.encode(texts)
    np.testing.assert_array_equal(together, one_by_one)
    np.testing.assert_array_equal(together[5], enc.encode(texts[5:6])[0])

    # a failure in a helper thread reaches the caller (the review then fails closed)
    def broken(text):
        if text == texts[3]:
            raise RuntimeError("onnxruntime fault")
        return real(text)

    monkeypatch.setattr(enc, "workers", 2)
    monkeypatch.setattr(enc, "_run_one", broken)
    with pytest.raises(RuntimeError, match="onnxruntime fault"):
        enc.encode(texts)


def test_texts_handed_over_run_while_the_caller_goes_on(reviewer):
    """SideBySideRuns: from the second text handed over, a helper thread runs them before the caller
    asks for the vectors (the reviewer's cheap layers of the next writes overlap the encoder); the
    vectors are the same as encoding the texts in one call; cancel stops the helper."""
    import threading
    import time

    from gatekeeper.embeddings import SideBySideRuns

    enc = reviewer.classifier.encoder.model
    if enc.workers < 2:
        pytest.skip("one core: no helper thread")
    texts = [r["text"] for r in load_corpus("dev")[:12]]
    runs = SideBySideRuns(enc)
    for t in texts:
        runs.put(t)
    deadline = time.monotonic() + 30
    while all(v is None for v in runs._out) and time.monotonic() < deadline:
        time.sleep(0.005)  # the caller does something else; the helper is already running texts
    assert any(v is not None for v in runs._out)
    assert any(t.name == "gatekeeper-encode" for t in threading.enumerate())
    np.testing.assert_array_equal(runs.finish(), enc.encode(texts))
    with pytest.raises(RuntimeError, match="already finished"):
        runs.put("one more")

    # a single text runs on the caller's thread: no thread is started for it
    one = SideBySideRuns(enc)
    one.put(texts[0])
    assert not one._helpers
    np.testing.assert_array_equal(one.finish()[0], enc.encode(texts[:1])[0])

    # cancel: the helper stops and nothing is left running
    stopped = SideBySideRuns(enc)
    for t in texts:
        stopped.put(t)
    stopped.cancel()
    assert all(not h.is_alive() for h in stopped._helpers)


def test_embedding_stream_gives_what_encode_gives(reviewer, embedder):
    """EmbeddingStream over the int8 encoder (runs side by side, cache hits resolved at once, a repeated
    text run once) and over a batched float32 encoder (one encode call at the end): the vectors are
    Embedder.encode's, in the order handed over, and new ones land in the cache."""
    clf_enc = reviewer.classifier.encoder
    fresh = [f"{r['text']} (stream check {i})" for i, r in enumerate(load_corpus("dev")[:9])]
    cached = TEXTS[:2]
    clf_enc.encode(cached)
    for enc in (clf_enc, embedder):
        stream = enc.stream()
        assert stream.add([fresh[0], cached[0]]) == 0
        assert stream.add([]) == 2
        assert stream.add([fresh[1], fresh[0], *fresh[2:5]]) == 2
        assert stream.add([cached[1]]) == 7
        got = stream.result()
        order = [fresh[0], cached[0], fresh[1], fresh[0], *fresh[2:5], cached[1]]
        np.testing.assert_array_equal(got, enc.encode(order))
        assert all(t in enc._cache for t in order)
        with pytest.raises(RuntimeError, match="already finished"):
            stream.add(["late"])
    assert clf_enc.stream().result().shape == (0, clf_enc.dimension)


def test_a_stream_failure_reaches_the_caller(reviewer, monkeypatch):
    enc = reviewer.classifier.encoder.model
    texts = [f"{r['text']} (failure check {i})" for i, r in enumerate(load_corpus("dev")[:6])]
    real = enc._run_one

    def broken(text):
        if text == texts[4]:
            raise RuntimeError("onnxruntime fault")
        return real(text)

    monkeypatch.setattr(enc, "_run_one", broken)
    stream = reviewer.classifier.encoder.stream()
    stream.add(texts)
    with pytest.raises(RuntimeError, match="onnxruntime fault"):
        stream.result()
