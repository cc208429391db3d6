"""Damaged or stale model artifacts never serve: each is refused (the gate fails closed) or rebuilt.

Found by an audit (2026-11-30): a classifier whose tokenizer file a cache cleaner deleted scored every text
alike and committed a harmful write; NaN heads committed; a damaged screen directory was retrained on every
write and never replaced; a different base model in the same place reused the old classifier.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gatekeeper.classifier import ARTIFACT_FILES, StanceClassifier, _complete, base_model_id
from gatekeeper.decision import decide
from gatekeeper.embeddings import ModelLoadError, bundled_model_dir
from gatekeeper.models import Action, Label, MemoryWrite, ReviewResult


def _small_copy(clf_dir: Path, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    """The artifact's small files (heads, meta, encoder configs and tokenizer), without the weights: loading
    reads them, the encoder's weights are only read on first use."""
    for rel in ("meta.json", "heads.npz", "encoder/config.json", "encoder/tokenizer.json"):
        if rel in skip:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clf_dir / rel, dest / rel)
    return dest


@pytest.fixture(scope="module")
def artifact(reviewer) -> Path:
    meta = reviewer.classifier.meta
    from gatekeeper.classifier import artifact_dir

    directory = artifact_dir(meta["inputs_hash"])
    assert _complete(directory)
    return directory


def test_an_artifact_without_its_tokenizer_is_not_complete_and_does_not_load(artifact, tmp_path):
    damaged = _small_copy(artifact, tmp_path / "a", skip=("encoder/tokenizer.json",))
    assert "encoder/tokenizer.json" in ARTIFACT_FILES and not _complete(damaged)
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        StanceClassifier.load(damaged)
    assert _complete(_small_copy(artifact, tmp_path / "b"))


def test_a_model_directory_without_tokenizer_files_is_refused(artifact, tmp_path):
    """Without tokenizer.json and vocab.txt, transformers builds a tokenizer of a handful of tokens."""
    from gatekeeper.embeddings import OnnxSentenceEncoder

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(artifact / "encoder" / "config.json", bare / "config.json")
    with pytest.raises(ModelLoadError, match="tokenizer files are missing"):
        OnnxSentenceEncoder._make_tokenizer(bare, 128)


@pytest.mark.parametrize("damage", ["nan", "shape"])
def test_damaged_heads_are_refused(artifact, tmp_path, damage):
    d = _small_copy(artifact, tmp_path / damage)
    with np.load(d / "heads.npz") as z:
        heads = {k: z[k].copy() for k in z.files}
    if damage == "nan":
        heads["w"][3] = np.nan
    else:
        heads["w"] = heads["w"][:192]
    with open(d / "heads.npz", "wb") as fh:
        np.savez(fh, **heads)
    with pytest.raises(ModelLoadError, match="damaged"):
        StanceClassifier.load(d)


def test_a_score_that_is_not_a_number_quarantines(policy):
    p = MemoryWrite(content="Standup is at 09:30 in room 4.", namespace=("memories", "a"))
    review = ReviewResult(label=Label.task_knowledge, category=None, score=math.nan, evidence=[])
    d = decide(p, review, policy)
    assert d.action is Action.quarantine and "not a number" in d.reason


def test_a_damaged_screen_is_trained_again_and_replaced(policy, tmp_path, monkeypatch):
    from gatekeeper.screen import LexicalScreen, ensure_screen, screen_hash, screen_inputs

    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    first = ensure_screen(policy)
    directory = tmp_path / "cache" / "screen" / screen_hash(*screen_inputs(policy))
    (directory / "screen.npz").unlink()  # a cache cleaner, a crash: meta.json is left alone
    again = ensure_screen(policy)
    assert (directory / "screen.npz").exists() and (directory / "meta.json").exists()
    assert np.array_equal(again.weights, first.weights)
    assert LexicalScreen.load(directory).bias == first.bias


def test_another_base_model_in_the_same_place_is_another_input(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(bundled_model_dir(), model)
    before = base_model_id(model)
    assert base_model_id(model) == before  # remembered: the same files give the same id
    memo = list((tmp_path / "cache" / "base_models").glob("*.json"))
    assert len(memo) == 1 and json.loads(memo[0].read_text())["digest"] in before

    weights = model / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as fh:  # the same size, other numbers
        fh.seek(size - 64)
        block = fh.read(64)
        fh.seek(size - 64)
        fh.write(bytes(b ^ 0x01 for b in block))
    assert weights.stat().st_size == size
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    changed = base_model_id(model)
    assert changed != before and changed.startswith("all-MiniLM-L6-v2|")

    vocab = model / "tokenizer.json"
    vocab.write_text(vocab.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    assert base_model_id(model) not in (before, changed)


def test_new_weights_with_the_old_size_and_modification_time_are_another_input(tmp_path, monkeypatch):
    """A copy that keeps the modification time (``cp -p``, ``rsync -t``) must not reuse the remembered digest."""
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(bundled_model_dir(), model)
    weights = model / "model.safetensors"
    before = base_model_id(model)
    st = weights.stat()
    with open(weights, "r+b") as fh:  # the same size, other numbers, the old modification time put back
        fh.seek(st.st_size - 64)
        block = fh.read(64)
        fh.seek(st.st_size - 64)
        fh.write(bytes(b ^ 0x01 for b in block))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert base_model_id(model) != before
