"""Version 5 of the corpus: whole memory writes written by hand, one JSONL file per theme.

Files live in ``gatekeeper/corpus/written/<theme>.jsonl``. Every line is one proposed memory write::

    {"text": "...", "label": "alignment_shifting" | "task_knowledge",
     "category": <one of CATEGORIES> | "task_knowledge", "voice": <one of VOICES>,
     "family": "w-<theme>-<subtopic>", "hard_negative": true | false}

``hard_negative`` is optional (task knowledge only: true when the write shares topic words with the harmful
side). A family is a subtopic; the dev split holds out whole families, chosen per file with a fixed seed,
so dev measures content the classifier has not seen. Check a file before adding it::

    python -m gatekeeper.corpus.written gatekeeper/corpus/written/ops.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from gatekeeper.corpus import CATEGORIES, LABELS, VOICES
from gatekeeper.corpus.generate import norm_key

WRITTEN_DIR: Path = Path(__file__).with_name("written")
DEV_SHARE = 0.2
SEED = 1729
FIELDS = {"text", "label", "category", "voice", "family", "hard_negative"}
FAMILY_RE = re.compile(r"^w-[a-z0-9]+(-[a-z0-9]+)*$")


class WrittenRowError(ValueError):
    """A line of a written corpus file is not a valid row; the message names the file and line."""


def _check_row(row: object, where: str) -> dict:
    if not isinstance(row, dict):
        raise WrittenRowError(f"{where}: expected a JSON object")
    missing = {"text", "label", "category", "voice", "family"} - row.keys()
    if missing:
        raise WrittenRowError(f"{where}: missing field(s) {sorted(missing)}")
    unknown = row.keys() - FIELDS
    if unknown:
        raise WrittenRowError(f"{where}: unknown field(s) {sorted(unknown)}")
    text = row["text"]
    if not isinstance(text, str) or not text.strip():
        raise WrittenRowError(f"{where}: text must be a non-empty string")
    label, category = row["label"], row["category"]
    if label not in LABELS:
        raise WrittenRowError(f"{where}: label {label!r} is not one of {LABELS}")
    if label == "task_knowledge" and category != "task_knowledge":
        raise WrittenRowError(f"{where}: task_knowledge rows must have category 'task_knowledge'")
    if label == "alignment_shifting" and category not in CATEGORIES:
        raise WrittenRowError(f"{where}: category {category!r} is not one of {CATEGORIES}")
    if row["voice"] not in VOICES:
        raise WrittenRowError(f"{where}: voice {row['voice']!r} is not one of {VOICES}")
    if not isinstance(row["family"], str) or not FAMILY_RE.match(row["family"]):
        raise WrittenRowError(f"{where}: family {row['family']!r} must look like 'w-theme-subtopic' "
                              f"(lower case letters, digits and dashes)")
    hard = row.get("hard_negative", False)
    if not isinstance(hard, bool):
        raise WrittenRowError(f"{where}: hard_negative must be true or false")
    return {"text": text.strip(), "label": label, "category": category, "voice": row["voice"],
            "hard_negative": bool(hard) and label == "task_knowledge", "family": row["family"]}


def read_file(path: Path) -> list[dict]:
    """Parse and validate one written file; raises WrittenRowError naming file and line."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WrittenRowError(f"{where}: not JSON ({exc.msg})") from None
            rows.append(_check_row(raw, where))
    return rows


def dev_families(rows: list[dict], theme: str) -> set[str]:
    """Whole families held out for dev: shuffled with a seed per theme, added until DEV_SHARE of the rows."""
    sizes = Counter(r["family"] for r in rows)
    families = sorted(sizes)
    if len(families) < 2:
        return set()
    random.Random(f"{SEED}-written-{theme}").shuffle(families)
    chosen: set[str] = set()
    count = 0
    for fam in families:
        if count >= DEV_SHARE * len(rows) or len(chosen) == len(families) - 1:
            break
        chosen.add(fam)
        count += sizes[fam]
    return chosen


def build_written(seen: set[str], directory: Path = WRITTEN_DIR) -> list[dict]:
    """Rows (without ids) of every written file in name order; ``seen`` holds earlier de-duplication keys."""
    out: list[dict] = []
    for path in sorted(directory.glob("*.jsonl")):
        rows = read_file(path)
        dev = dev_families(rows, path.stem)
        for r in rows:
            key = norm_key(r["text"])
            if key in seen:
                continue
            seen.add(key)
            out.append({**r, "split": "dev" if r["family"] in dev else "train"})
    return out


def summary(rows: list[dict]) -> str:
    fams: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        fams[r["family"]][r["label"]] += 1
    lines = [f"{len(rows)} rows, {len(fams)} families"]
    for fam, c in sorted(fams.items()):
        lines.append(f"  {fam}: {c['alignment_shifting']} alignment_shifting, {c['task_knowledge']} task_knowledge")
    lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in Counter(r["label"] for r in rows).items()))
    lines.append("categories: " + ", ".join(f"{k} {v}" for k, v in Counter(r["category"] for r in rows).most_common()))
    lines.append("voices: " + ", ".join(f"{k} {v}" for k, v in Counter(r["voice"] for r in rows).most_common()))
    words = sorted(len(r["text"].split()) for r in rows)
    if words:
        lines.append(f"words min/median/max: {words[0]}/{words[len(words) // 2]}/{words[-1]}")
    dupes = [k for k, v in Counter(norm_key(r["text"]) for r in rows).items() if v > 1]
    if dupes:
        lines.append(f"{len(dupes)} duplicate text(s), e.g. {dupes[0]!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or sorted(WRITTEN_DIR.glob("*.jsonl"))
    status = 0
    for path in paths:
        try:
            rows = read_file(path)
        except (OSError, WrittenRowError) as exc:
            print(f"ERROR {exc}")
            status = 1
            continue
        print(f"{path}: " + summary(rows))
        print(f"  dev families: {sorted(dev_families(rows, path.stem))}")
    return status


if __name__ == "__main__":
    sys.exit(main())
