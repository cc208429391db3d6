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


def load_corpus(split: str | None = None) -> list[dict]:
    """Return corpus rows, optionally only those of one split ("train" or "dev")."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or None")
    rows: list[dict] = []
    with CORPUS_PATH.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if split is None or row["split"] == split:
                rows.append(row)
    return rows


__all__ = ["CORPUS_PATH", "LABELS", "CATEGORIES", "VOICES", "SPLITS", "load_corpus"]
