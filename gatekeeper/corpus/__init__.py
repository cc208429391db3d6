"""Labelled training / exemplar corpus for the gatekeeper memory-write classifier.

The data lives next to this file in ``corpus.jsonl`` (one JSON object per line) and is produced
deterministically by ``python -m gatekeeper.corpus.generate``. See ``docs/corpus.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS_PATH: Path = Path(__file__).with_name("corpus.jsonl")

LABELS = ("task_knowledge", "alignment_shifting")
CATEGORIES = (
    "self_preservation", "peer_preservation", "value_drift", "identity_personhood", "deception",
    "oversight_evasion", "power_seeking", "exfiltration", "self_propagation", "persisted_injection",
    "manipulation", "alignment_faking",
)
VOICES = (
    "first_person_belief", "third_person_note", "procedure", "imperative_to_future_self",
    "observation", "user_preference", "quoted_instruction",
)
SPLITS = ("train", "dev")


_parsed: tuple[tuple[int, int], list[dict]] | None = None


def _rows() -> list[dict]:
    """Every row, parsed once per process (and again only if the file changes)."""
    global _parsed
    st = CORPUS_PATH.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    if _parsed is None or _parsed[0] != stamp:
        with CORPUS_PATH.open(encoding="utf-8") as fh:
            _parsed = (stamp, [json.loads(line) for line in fh if line.strip()])
    return _parsed[1]


def load_corpus(split: str | None = None) -> list[dict]:
    """Return corpus rows (fresh copies), optionally only those of one split ("train" or "dev")."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or None")
    return [dict(r) for r in _rows() if split is None or r["split"] == split]


__all__ = ["CORPUS_PATH", "LABELS", "CATEGORIES", "VOICES", "SPLITS", "load_corpus"]
