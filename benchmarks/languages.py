"""Writes in other languages: how many beliefs commit, how many notes go to a person, what English notes cost.

The classifier and the rules read English. ``gatekeeper.languages`` finds a sentence in another language, and the
decision sends such a write to a person or the LLM judge (``policy.language.other``; docs/reliability.md, section
43). This benchmark runs the real review and decision (``Reviewer.review_many`` in batches of 32, then
``decision.decide``, every write alone, provenance ``agent``) over ``benchmarks/languages/*.jsonl``: writes in
15-20 languages (label 1: beliefs and injected instructions; label 0: ordinary notes) and English notes carrying
foreign names, places, quotes, code and scripts (label 0, ``lang`` "en"). A helper wrote them for this
measurement, not taken from any data set. Sets 1 and 2 were used while the detector was written (set 2 after a
first measure); set 3 was written after it and not tuned on. Set 4 (2026-12-07) was written by a helper that saw
neither the detector nor the other sets, while section 56's first three changes were made on sets 1-3, and measured
once after them; the fourth came after (docs/reliability.md, section 56). Set 5 (2026-12-07, 16 languages, 240
writes: short, unaccented, lower-case and mixed with code) was written by another helper that saw neither, for the
names the finding gives (section 57), and measured once after them; its misses were then mended on it (no longer
blind).

For each set it prints, per group: the writes, how many commit / escalate / quarantine, and how many the language
layer found; the harmful writes that commit, by language; and of the writes in other languages the layer found,
how many it named right (the language of the write, or its script), named after another language, or named "a
language other than English" (too little to tell which). With ``--policy`` it measures another policy (for
example ``language.other: classifier``, the behaviour before section 43).

    python benchmarks/languages.py [--policy DIR] [--json out.json] [--md out.md]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _decided import decided, main  # noqa: E402

DATA = REPO / "benchmarks" / "languages"
#: the names a finding may give a write of each language code of the sets (its language, or its script)
NAMES = {
    "fr": ("French",), "es": ("Spanish",), "pt": ("Portuguese",), "it": ("Italian",), "de": ("German",),
    "nl": ("Dutch",), "sv": ("Swedish",), "da": ("Danish or Norwegian",), "no": ("Danish or Norwegian",),
    "pl": ("Polish",), "tr": ("Turkish",), "id": ("Indonesian or Malay",), "ro": ("Romanian",),
    "cs": ("Czech or Slovak",), "hu": ("Hungarian",), "vi": ("Vietnamese",),
    "hi": ("Devanagari script", "Hindi (in Latin letters)"), "ru": ("Cyrillic script",),
    "uk": ("Cyrillic script",), "el": ("Greek script",), "he": ("Hebrew script",), "ar": ("Arabic script",),
    "th": ("Thai script",), "zh": ("Chinese or Japanese (Han characters)",),
    "ja": ("Japanese", "Chinese or Japanese (Han characters)"), "ko": ("Korean",),
}


def _groups(rows: list[dict]) -> dict[str, list[int]]:
    return {
        "harmful, other languages": [i for i, r in enumerate(rows) if r["label"] == 1],
        "notes, other languages": [i for i, r in enumerate(rows) if r["label"] == 0 and r["lang"] != "en"],
        "English notes with foreign material": [i for i, r in enumerate(rows) if r["lang"] == "en"],
    }


#: the name of a finding that tells no language
_UNNAMED = "a language other than English"


def measure(policy_dir: Path | None = None) -> dict:
    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    policy = load_policy(policy_dir) if policy_dir else load_policy()
    reviewer = Reviewer(policy)
    out: dict = {"policy": policy.hash, "language_other": policy.language.other, "sets": {}}
    for path in sorted(DATA.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        reviews, actions = decided(reviewer, [r["text"] for r in rows])
        named = [next((e.details["language"] for e in r.evidence if e.layer == "language"), None) for r in reviews]
        found = [n is not None for n in named]
        groups = {}
        by_group = _groups(rows)
        for name, idx in by_group.items():
            if not idx:
                continue
            counts = Counter(actions[i] for i in idx)
            groups[name] = {"writes": len(idx), "commit": counts["commit"], "escalate": counts["escalate"],
                            "quarantine": counts["quarantine"], "found": sum(found[i] for i in idx)}
        missed = Counter(rows[i]["lang"] for i in by_group["harmful, other languages"]
                         if actions[i] == "commit")
        naming = Counter("unnamed" if named[i] == _UNNAMED else "right" if named[i] in NAMES[r["lang"]] else "another"
                         for i, r in enumerate(rows) if r["lang"] != "en" and found[i])
        out["sets"][path.stem] = {"groups": groups, "harmful_committed_by_language": dict(sorted(missed.items())),
                                  "naming": {k: naming[k] for k in ("right", "another", "unnamed")}}
    return out


def markdown(result: dict) -> str:
    lines = [f"Policy `{result['policy'][:12]}` (`language.other: {result['language_other']}`).", "",
             "| set | group | writes | commit | escalate | quarantine | found by the language layer |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in result["sets"].items():
        for group, g in s["groups"].items():
            lines.append(f"| {name} | {group} | {g['writes']} | {g['commit']} | {g['escalate']} | "
                         f"{g['quarantine']} | {g['found']} |")
    lines += ["", "Writes in other languages the language layer found, by the name the finding gives:", "",
              "| set | found | named right | named after another language | not named |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, s in result["sets"].items():
        n = s["naming"]
        lines.append(f"| {name} | {sum(n.values())} | {n['right']} | {n['another']} | {n['unnamed']} |")
    lines.append("")
    for name, s in result["sets"].items():
        missed = ", ".join(f"{k} {v}" for k, v in s["harmful_committed_by_language"].items()) or "none"
        lines.append(f"- {name}: harmful writes committed, by language: {missed}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(__doc__, measure, markdown))
