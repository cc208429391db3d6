"""The training / exemplar corpus: reproducible from the generator, well-formed, and split so that dev
measures held-out content (no text and no family in both splits)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from conftest import REPO

from gatekeeper.corpus import CATEGORIES, CORPUS_PATH, LABELS, SPLITS, VOICES, load_corpus
from gatekeeper.corpus import generate, written
from gatekeeper.corpus.pieces import SKIP_FAMILY_PREFIXES
from gatekeeper.segments import segments


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load_corpus()


def test_corpus_file_is_what_the_generator_builds():
    """corpus.jsonl is data in git, but never hand-edited: a fresh build reproduces it byte for byte, and its
    word list (words.txt, which the word splitter reads) with it."""
    built = generate.build()
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in built)
    assert data == CORPUS_PATH.read_text(encoding="utf-8"), \
        "corpus.jsonl differs from `python -m gatekeeper.corpus.generate`: rerun the generator"
    words = generate.words_text(built)
    assert words == generate.WORDS_PATH.read_text(encoding="utf-8"), \
        "words.txt differs from `python -m gatekeeper.corpus.generate`: rerun the generator"
    assert {"shutdown", "deletion", "config"} <= set(words.split())


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
        for s in segments([r["text"]], pairs=False):
            cut_from[generate.norm_key(s)].add((r["family"], r["label"], r["split"]))
    for p in pieces:
        assert (p["label"], p["category"], p["split"]) == ("task_knowledge", "task_knowledge", "train"), p
        family = p["family"].removeprefix("pieces-")
        assert not family.startswith(SKIP_FAMILY_PREFIXES), p
        sources = cut_from.get(generate.norm_key(p["text"]), set())
        assert (family, "task_knowledge", "train") in sources, f"not a piece of a train note of {family}: {p}"


def test_written_rows_are_in_the_corpus_with_whole_families_held_out(rows):
    """Version 5: every row of gatekeeper/corpus/written/*.jsonl is in the corpus (or was a duplicate of an
    earlier row), and each file holds out whole families for dev, about a fifth of its rows."""
    files = sorted(written.WRITTEN_DIR.glob("*.jsonl"))
    assert files, "no written corpus files"
    in_corpus = {generate.norm_key(r["text"]): r for r in rows if r["family"].startswith("w-")}
    for path in files:
        file_rows = written.read_file(path)
        dev = written.dev_families(file_rows, path.stem)
        assert dev, path
        kept = [in_corpus[generate.norm_key(r["text"])] for r in file_rows
                if generate.norm_key(r["text"]) in in_corpus]
        assert len(kept) > 0.95 * len(file_rows), path
        for r in kept:
            assert r["split"] == ("dev" if r["family"] in dev else "train"), r
        share = sum(r["split"] == "dev" for r in kept) / len(kept)
        assert 0.15 <= share <= 0.45, (path, share)


def test_a_written_row_that_is_wrong_is_refused_with_file_and_line(tmp_path):
    good = {"text": "The build cache lives on the shared runner.", "label": "task_knowledge",
            "category": "task_knowledge", "voice": "observation", "family": "w-ops-cache"}
    cases = {
        "not JSON": "{text: nope",
        "missing field(s) ['voice']": json.dumps({k: v for k, v in good.items() if k != "voice"}),
        "must have category 'task_knowledge'": json.dumps({**good, "category": "exfiltration"}),
        "is not one of": json.dumps({**good, "label": "harmful"}),
        "must look like 'w-theme-subtopic'": json.dumps({**good, "family": "Ops Cache"}),
        "unknown field(s) ['score']": json.dumps({**good, "score": 1}),
        "non-empty string": json.dumps({**good, "text": "  "}),
    }
    for message, bad in cases.items():
        path = tmp_path / "theme.jsonl"
        path.write_text(json.dumps(good) + "\n\n" + bad + "\n", encoding="utf-8")
        with pytest.raises(written.WrittenRowError) as err:
            written.read_file(path)
        assert f"{path}:3:" in str(err.value) and message in str(err.value), (message, str(err.value))
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert written.read_file(path) == [{**good, "hard_negative": False}]


def test_the_held_out_themes_are_well_formed_and_never_in_the_corpus(rows):
    """benchmarks/heldout/ holds writes of our own in the written corpus's format that the classifier is
    measured on and never trained on (docs/quality.md): no text of them may reach corpus.jsonl."""
    heldout = sorted((REPO / "benchmarks" / "heldout").glob("*.jsonl"))
    assert heldout, "no held-out files"
    in_corpus = {generate.norm_key(r["text"]) for r in rows}
    for path in heldout:
        held = written.read_file(path)  # the written corpus's checks: fields, labels, categories, voices
        assert {r["label"] for r in held} == set(LABELS), path
        leaked = [r["text"] for r in held if generate.norm_key(r["text"]) in in_corpus]
        assert not leaked, f"{path.name}: {len(leaked)} held-out text(s) in the corpus, e.g. {leaked[0]!r}"
        assert not (written.WRITTEN_DIR / path.name).exists(), f"{path.name} is also a training file"


def test_candidate_files_are_kept_out_of_the_corpus_and_apart_from_the_held_out_themes(rows):
    """gatekeeper/corpus/candidates/ holds written files that were trained on once and left out
    (docs/corpus.md): the generator does not read them, and they share no text with the held-out themes that
    measure what they were written for."""
    candidates = sorted((CORPUS_PATH.parent / "candidates").glob("*.jsonl"))
    assert candidates, "no candidate files"
    in_corpus = {generate.norm_key(r["text"]) for r in rows}
    heldout = {generate.norm_key(r["text"]) for path in
               (REPO / "benchmarks" / "heldout").glob("*.jsonl")
               for r in written.read_file(path)}
    for path in candidates:
        cand = written.read_file(path)
        assert {r["label"] for r in cand} == set(LABELS), path
        keys = {generate.norm_key(r["text"]) for r in cand}
        assert not keys & in_corpus, f"{path.name}: {len(keys & in_corpus)} text(s) in the corpus"
        assert not keys & heldout, f"{path.name}: {len(keys & heldout)} text(s) in the held-out themes"
        assert not (written.WRITTEN_DIR / path.name).exists(), f"{path.name} is also a training file"


def test_the_language_sets_are_never_in_the_corpus(rows):
    """benchmarks/languages/ measures writes in other languages (docs/reliability.md, section 43); its English notes
    with foreign material are measured on, never trained on, like the held-out themes."""
    in_corpus = {generate.norm_key(r["text"]) for r in rows}
    sets = sorted((REPO / "benchmarks" / "languages").glob("*.jsonl"))
    assert sets, "no language sets"
    for path in sets:
        texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
        leaked = [t for t in texts if generate.norm_key(t) in in_corpus]
        assert not leaked, f"{path.name}: {len(leaked)} text(s) in the corpus, e.g. {leaked[0]!r}"
