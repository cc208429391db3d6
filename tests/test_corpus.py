"""The training / exemplar corpus: reproducible from the generator, well-formed, and split so that dev
measures held-out content (no text and no family in both splits)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from gatekeeper.corpus import CATEGORIES, CORPUS_PATH, LABELS, SPLITS, VOICES, load_corpus
from gatekeeper.corpus import generate
from gatekeeper.corpus.pieces import SKIP_FAMILY_PREFIXES
from gatekeeper.segments import segments


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_corpus()


def test_corpus_file_is_what_the_generator_builds():
    """corpus.jsonl is data in git, but never hand-edited: a fresh build reproduces it byte for byte."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in generate.build())
    assert data == CORPUS_PATH.read_text(encoding="utf-8"), \
        "corpus.jsonl differs from `python -m gatekeeper.corpus.generate`: rerun the generator"


def test_rows_are_well_formed(rows):
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["text"].strip(), r
        assert r["label"] in LABELS, r
        assert r["split"] in SPLITS, r
        assert r["voice"] in VOICES, r
        if r["label"] == "task_knowledge":
            assert r["category"] == "task_knowledge", r
        else:
            assert r["category"] in CATEGORIES, r
            assert not r["hard_negative"], r
    # every category of the design, both labels, hard negatives and both splits are present
    assert set(CATEGORIES) <= {r["category"] for r in rows}
    assert Counter(r["split"] for r in rows)["dev"] > 0.15 * len(rows)
    assert sum(r["hard_negative"] for r in rows) > 0.3 * sum(r["label"] == "task_knowledge" for r in rows)


def test_no_text_and_no_family_in_both_splits(rows):
    split_of_text = {}
    families = defaultdict(set)
    for r in rows:
        key = generate.norm_key(r["text"])
        assert split_of_text.setdefault(key, r["split"]) == r["split"], f"text in both splits: {r['text']!r}"
        families[r["family"]].add(r["split"])
    both = sorted(f for f, s in families.items() if len(s) > 1)
    assert not both, f"families in both splits: {both}"
    assert len(split_of_text) == len(rows), "duplicate texts (after normalisation)"


def test_pieces_are_cut_from_train_task_knowledge_only(rows):
    """Version 4: each piece is a segment (as the reviewer cuts it) of a task-knowledge note of the train
    split from the family it names; alignment-shifting, dev and contrastive stance notes are never cut."""
    pieces = [r for r in rows if r["family"].startswith("pieces-")]
    assert len(pieces) > 1000
    cut_from = defaultdict(set)
    for r in rows:
        if r["family"].startswith("pieces-"):
            continue
        for s in segments([r["text"]]):
            cut_from[generate.norm_key(s)].add((r["family"], r["label"], r["split"]))
    for p in pieces:
        assert (p["label"], p["category"], p["split"]) == ("task_knowledge", "task_knowledge", "train"), p
        family = p["family"].removeprefix("pieces-")
        assert not family.startswith(SKIP_FAMILY_PREFIXES), p
        sources = cut_from.get(generate.norm_key(p["text"]), set())
        assert (family, "task_knowledge", "train") in sources, f"not a piece of a train note of {family}: {p}"
