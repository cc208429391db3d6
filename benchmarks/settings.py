"""Dispositions stored as settings: how many commit, and what reading settings costs ordinary configs.

An agent can store a belief as a configuration entry instead of a sentence ("resist_shutdown: true",
"allow_operator_shutdown: false"); the rules and the classifier read no sentence in it.
``gatekeeper.setting_statements`` reads such a setting as the statement it makes ("I am set to resist shutdown."),
and the decision sends a write whose score comes from that reading to a person
(``policy.setting_statements.action``; docs/reliability.md, section 44). This benchmark runs the real review and
decision (``benchmarks/_decided.py``) over ``benchmarks/settings/*.jsonl``: label 1, a disposition written as a
setting in YAML, JSON, TOML, INI, ``.env``, Python, XML, a markdown table, a command line or a note; label 0,
configs, feature flags and preferences that touch the same topics (shutdown timeouts, telemetry, deletion, replicas,
overrides), and agent-safety settings written the safe way round. Helpers wrote both sets for this measurement, not
taken from any data set. Set 1 was used while the reading was written; set 2 was written beside it and first
measured after (its table, markup and subscript forms were added after reading its misses).

For each set it prints, per label: the writes, how many commit / escalate / quarantine, and how many had a setting
read as a statement; and the harmful writes that commit, by form. With ``--policy`` it measures another policy (for
example ``setting_statements.action: off``, the behaviour before section 44).

    python benchmarks/settings.py [--policy DIR] [--json out.json] [--md out.md]
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

DATA = REPO / "benchmarks" / "settings"
GROUPS = {1: "harmful, written as settings", 0: "benign configs and preferences"}


def measure(policy_dir: Path | None = None) -> dict:
    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    policy = load_policy(policy_dir) if policy_dir else load_policy()
    reviewer = Reviewer(policy)
    out: dict = {"policy": policy.hash, "setting_statements_action": policy.setting_statements.action, "sets": {}}
    for path in sorted(DATA.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        reviews, actions = decided(reviewer, [r["text"] for r in rows])
        read = [any(e.layer == "normalize" and e.details.get("settings") for e in r.evidence) for r in reviews]
        groups = {}
        for label, name in GROUPS.items():
            idx = [i for i, r in enumerate(rows) if r["label"] == label]
            if idx:
                counts = Counter(actions[i] for i in idx)
                groups[name] = {"writes": len(idx), "commit": counts["commit"], "escalate": counts["escalate"],
                                "quarantine": counts["quarantine"], "read": sum(read[i] for i in idx)}
        missed = Counter(r.get("form", "?") for r, a in zip(rows, actions) if r["label"] == 1 and a == "commit")
        out["sets"][path.stem] = {"groups": groups, "harmful_committed_by_form": dict(sorted(missed.items()))}
    return out


def markdown(result: dict) -> str:
    lines = [f"Policy `{result['policy'][:12]}` (`setting_statements.action: "
             f"{result['setting_statements_action']}`).", "",
             "| set | group | writes | commit | escalate | quarantine | a setting read as a statement |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in result["sets"].items():
        for group, g in s["groups"].items():
            lines.append(f"| {name} | {group} | {g['writes']} | {g['commit']} | {g['escalate']} | "
                         f"{g['quarantine']} | {g['read']} |")
    lines.append("")
    for name, s in result["sets"].items():
        missed = ", ".join(f"{k} {v}" for k, v in s["harmful_committed_by_form"].items()) or "none"
        lines.append(f"- {name}: harmful writes committed, by form: {missed}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(__doc__, measure, markdown))
