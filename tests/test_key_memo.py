"""Artifact keys remembered under a fingerprint of their inputs: a process start finds the classifier and the
screen without parsing the corpus, and any change to what a key is computed from computes it again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import gatekeeper.corpus as corpus
from gatekeeper.classifier import (TrainConfig, artifact_dir, bundled_model_dir, classifier_key, ensure_classifier,
                                   inputs_hash, training_examples)
from gatekeeper.key_memo import fingerprint, memo_path, remembered_key, source_digest
from gatekeeper.policy import load_policy
from gatekeeper.screen import ensure_screen, remembered_screen_key, screen_hash, screen_inputs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _no_corpus(monkeypatch):
    """Reading the corpus from here on fails the test."""
    def refuse(*a, **k):
        raise AssertionError("the corpus was parsed")
    monkeypatch.setattr(corpus, "load_corpus", refuse)


def _long_way(policy, config=TrainConfig()) -> str:
    return inputs_hash(policy, training_examples(policy), bundled_model_dir(), config)


def test_remembered_key_computes_once_and_ignores_a_damaged_memo(tmp_cache):
    calls = []

    def compute():
        calls.append(1)
        return "0123456789abcdef0123"

    assert remembered_key("k", ["a", b"b"], compute) == "0123456789abcdef0123"
    assert remembered_key("k", ["a", b"b"], compute) == "0123456789abcdef0123"
    assert len(calls) == 1
    assert remembered_key("k", ["a", b"c"], compute) == "0123456789abcdef0123" and len(calls) == 2
    # damaged or foreign content is never taken for a key
    for junk in ("", "not a key\n", "0123456789ABCDEF0123", "0123456789abcdef012", "../../etc/passwd"):
        memo_path("k", ["a", b"b"]).write_text(junk)
        assert remembered_key("k", ["a", b"b"], compute) == "0123456789abcdef0123"
    memo_path("k", ["a", b"b"]).write_bytes(b"\xff\xfe\x00")
    assert remembered_key("k", ["a", b"b"], compute) == "0123456789abcdef0123"
    assert len(calls) == 8


def test_parts_are_length_prefixed():
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
    assert fingerprint(["ab"]) != fingerprint(["a", "b"])
    assert fingerprint(["x"]) == fingerprint([b"x"])


def test_a_read_only_cache_still_gives_the_key(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("GATEKEEPER_CACHE", str(blocked / "cache"))  # nothing can be created under a file
    assert remembered_key("k", ["a"], lambda: "0123456789abcdef0123") == "0123456789abcdef0123"


def test_classifier_key_is_the_long_ways_and_is_then_found_without_the_corpus(tmp_cache, policy, embedder,
                                                                              monkeypatch):
    expected = _long_way(policy)
    assert classifier_key(policy, embedder) == expected
    _no_corpus(monkeypatch)
    assert classifier_key(policy, embedder) == expected
    with pytest.raises(AssertionError, match="parsed"):  # the guard works: the long way reads the corpus
        training_examples(policy)


def test_the_served_classifier_loads_without_parsing_the_corpus(reviewer, policy, embedder, monkeypatch):
    served = reviewer.classifier.meta["inputs_hash"]
    assert classifier_key(policy, embedder) == served  # remembered (real cache)
    _no_corpus(monkeypatch)
    clf = ensure_classifier(policy, embedder)
    assert clf.meta["inputs_hash"] == served and artifact_dir(served).is_dir()
    assert clf.meta["encoder_precision"] == reviewer.classifier.meta["encoder_precision"]
    screen = ensure_screen(policy)
    assert screen.meta["inputs_hash"] == reviewer.screen.meta["inputs_hash"]


def test_an_edited_exemplar_is_a_new_key(tmp_cache, policy, embedder, tmp_path):
    before = classifier_key(policy, embedder)
    pdir = tmp_path / "policies"
    shutil.copytree(REPO / "policies", pdir)
    tax = pdir / "taxonomy.yaml"
    anchor = "      - I should avoid being shut down.\n"
    text = tax.read_text()
    assert anchor in text
    tax.write_text(text.replace(anchor, anchor + "      - I must never be switched off, whatever the team says.\n"))
    edited = load_policy(pdir)
    after = classifier_key(edited, embedder)
    assert after != before and after == _long_way(edited)
    assert classifier_key(policy, embedder) == before  # each remembered under its own fingerprint


def test_an_edited_corpus_is_a_new_key(tmp_cache, policy, embedder, tmp_path, monkeypatch):
    before = classifier_key(policy, embedder)
    screen_before = remembered_screen_key(policy)
    lines = corpus.CORPUS_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(next(line for line in lines if '"split": "train"' in line))
    row["text"] = "The staging database is refreshed from production every Sunday at 02:00."
    copy = tmp_path / "corpus.jsonl"
    copy.write_text("".join(lines) + json.dumps(row) + "\n", encoding="utf-8")
    monkeypatch.setattr(corpus, "CORPUS_PATH", copy)
    after = classifier_key(policy, embedder)
    assert after != before and after == _long_way(policy)
    assert remembered_screen_key(policy) == screen_hash(*screen_inputs(policy)) != screen_before


def test_other_training_settings_are_other_keys(tmp_cache, policy, embedder):
    assert classifier_key(policy, embedder, config=TrainConfig(epochs=2)) == _long_way(policy, TrainConfig(epochs=2))
    assert classifier_key(policy, embedder, config=TrainConfig(epochs=2)) != classifier_key(policy, embedder)


def test_a_module_without_readable_source_is_never_remembered(tmp_cache):
    import types

    frozen = types.ModuleType("frozen_selector")  # no __file__: a frozen or zipped install
    assert source_digest([frozen]) != source_digest([frozen])
    calls = []

    def compute():
        calls.append(1)
        return "0123456789abcdef0123"

    for _ in range(2):
        assert remembered_key("k", ["a", source_digest([frozen])], compute) == "0123456789abcdef0123"
    assert len(calls) == 2


def test_a_file_rewritten_in_place_gets_a_new_digest(tmp_path):
    import hashlib

    from gatekeeper.key_memo import file_digest

    f = tmp_path / "corpus.jsonl"
    f.write_bytes(b'{"text": "a"}\n')
    first = file_digest(f)
    assert first == file_digest(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    f.write_bytes(b'{"text": "b"}\n')  # the same size, written again
    assert file_digest(f) == hashlib.sha256(b'{"text": "b"}\n').hexdigest() != first
