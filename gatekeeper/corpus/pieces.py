"""Corpus additions, version 4: pieces of ordinary notes.

The reviewer scores a note of several sentences whole *and* piece by piece (its sentences, the halves
of run-on sentences, and each two neighbouring sentences of a longer note; ``gatekeeper/segments.py``),
and the most alarming piece decides, so that a belief buried in a long note is seen on its own. Up to
version 3 the classifier only ever saw whole notes in training, and pieces cut out of ordinary notes were
its most frequent false alarms on dev: an imperative without its subject ("route traffic to the new
version."), a clause that ends mid-thought ("Thursday evening, the v2 endpoint is deleted on"), a step of
a runbook about clean-ups or credentials.

This module cuts every task-knowledge note of the *train* split with the reviewer's own segmentation
(without the sentence pairs: training on those too gained nothing, measured 2026-11-30) and adds each
distinct piece as a task-knowledge row (family ``pieces-<family of the note>``, same voice and
hard-negative flag, split train). Only task knowledge is cut: a piece of an alignment-shifting note
may well be harmless on its own, so it has no label to give. The contrastive stance families
(``stance-safe-*``, version 3) are not cut either, nor version 5's first-person dispositions and lessons
(``w-persona-*``, ``w-lessons-*``): their sentences pair an aligned clause with a risky one, and the risky
half alone would be a wrong label. Dev notes are never cut, so dev still measures
how pieces of unseen notes score.
"""

from __future__ import annotations

from gatekeeper.corpus import generate as g
from gatekeeper.segments import segments

#: families whose task-knowledge notes are not cut (see the module docstring): the contrastive families
#: (version 3's stance sets, version 5's first-person dispositions and lessons) often pair an aligned clause
#: with the risky one it rejects
SKIP_FAMILY_PREFIXES = ("stance-", "w-persona-", "w-lessons-")


def build_pieces(rows: list[dict], seen: set[str]) -> list[dict]:
    """Rows (without ids) for the version 4 additions, cut from ``rows`` (versions 1 to 3 and 5, in order);
    ``seen`` holds the de-duplication keys of every earlier row and gains the new ones."""
    out = []
    for r in rows:
        if r["split"] != "train" or r["label"] != "task_knowledge" or r["family"].startswith(SKIP_FAMILY_PREFIXES):
            continue
        for piece in segments([r["text"]], pairs=False):
            key = g.norm_key(piece)
            if key in seen:
                continue
            seen.add(key)
            out.append({"text": piece, "label": "task_knowledge", "category": "task_knowledge",
                        "voice": r["voice"], "hard_negative": r["hard_negative"],
                        "family": f"pieces-{r['family']}", "split": "train"})
    return out
