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


def test_onnx_backend_matches_torch(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path))
    onnx = Embedder(backend="onnx")
    a = embedder.encode(TEXTS)
    b = onnx.encode(TEXTS)
    assert np.all((a * b).sum(axis=1) > 0.9999)
    assert list(tmp_path.glob("onnx/*/model.onnx"))


def test_missing_model_is_a_clear_error(tmp_path):
    e = Embedder(model_dir=tmp_path / "no-model")
    with pytest.raises(ModelLoadError):
        e.encode(["x"])
    with pytest.raises(ValueError):
        Embedder(backend="tensorflow")
