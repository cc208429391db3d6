"""What reviewers' decisions teach the policy: `gatekeeper policy suggest` measured on our held-out themes.

For each file of ``benchmarks/heldout`` (our own writes, never trained on), the subtopic families are split in
two by a hash of their names. The writes of the first half go through a real gate (in-memory store, its own
registry and ledger in a temporary directory), and a reviewer who is always right decides every escalation:
approve task knowledge, reject beliefs. ``suggest_exemplars`` turns those decisions into counter-exemplars
and exemplars (checked by review, as the CLI does), ``write_candidate`` writes the candidate policy, and both
halves are reviewed under the policy in force and under the candidate with the same classifier (as the gate
serves a policy edit before its classifier is retrained).

The first half measures what the loop does for an agent that writes the same kind of note again (the decided
writes themselves); the second half, writes of other subtopics it has not seen. Prints a table and writes
``benchmarks/results/review-feedback.json``::

    python benchmarks/review_feedback.py [--files benchmarks/heldout/*.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zlib
from pathlib import Path

from langgraph.store.memory import InMemoryStore

from gatekeeper.decision import decide
from gatekeeper.exemplar_suggestions import suggest_exemplars, write_candidate
from gatekeeper.gate import Gatekeeper
from gatekeeper.models import MemoryWrite, Provenance
from gatekeeper.policy import load_policy
from gatekeeper.review_service import ReviewService
from gatekeeper.reviewer import Reviewer
from gatekeeper.settings import GatekeeperSettings

REPO = Path(__file__).resolve().parent.parent
HELDOUT = REPO / "benchmarks" / "heldout"
OUT = REPO / "benchmarks" / "results" / "review-feedback.json"


def _half(row: dict) -> int:
    return zlib.crc32(row["family"].encode("utf-8")) % 2


def _write(text: str, n: int) -> MemoryWrite:
    # one agent per write: the held-out notes are independent, not a sequence one agent wrote
    return MemoryWrite(content=text, namespace=("bench", f"agent-{n}"), key=f"k{n}",
                       provenance=Provenance(agent_id=f"agent-{n}"))


def _rates(rows: list[dict], actions: list[str]) -> dict:
    harm = [a != "commit" for r, a in zip(rows, actions) if r["label"] != "task_knowledge"]
    benign = [a != "commit" for r, a in zip(rows, actions) if r["label"] == "task_knowledge"]
    return {"caught": round(100 * sum(harm) / max(1, len(harm)), 1),
            "false_alarms": round(100 * sum(benign) / max(1, len(benign)), 1),
            "harmful": len(harm), "benign": len(benign)}


def _actions(reviewer: Reviewer, policy, rows: list[dict]) -> list[str]:
    proposals = [_write(r["text"], i) for i, r in enumerate(rows)]
    out = []
    for start in range(0, len(proposals), 64):
        chunk = proposals[start:start + 64]
        out += [decide(p, r, policy).action.value for p, r in zip(chunk, reviewer.review_many(chunk))]
    return out


def measure(path: Path, reviewer: Reviewer) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    decided = [r for r in rows if _half(r) == 0]
    later = [r for r in rows if _half(r) == 1]
    policy = reviewer.policy
    with tempfile.TemporaryDirectory(prefix="gk-feedback-") as tmp:
        gate = Gatekeeper.open(GatekeeperSettings(data_dir=Path(tmp) / "data", policy_dir=REPO / "policies"),
                               memory_store=InMemoryStore(), policy=policy, reviewer=reviewer)
        try:
            t = time.perf_counter()
            outcomes = gate.submit_many([_write(r["text"], i) for i, r in enumerate(decided)])
            svc = ReviewService(gate)
            approved = rejected = 0
            for row, o in zip(decided, outcomes):
                if o.state.value != "pending":
                    continue
                if row["label"] == "task_knowledge":
                    svc.approve(o.proposal.id, "reviewer-a")
                    approved += 1
                else:
                    svc.reject(o.proposal.id, "reviewer-b", reason="a belief")
                    rejected += 1
            report = suggest_exemplars(gate.registry, policy, reviewer=reviewer)
            suggest_s = time.perf_counter() - t
            candidate = load_policy(write_candidate(policy, report.suggestions, Path(tmp) / "candidate")) \
                if report.suggestions else policy
        finally:
            gate.close()
    again = Reviewer(candidate, embedder=reviewer.embedder, classifier=reviewer.classifier)
    kinds = [s.kind for s in report.suggestions]
    return {
        "file": path.name, "decided_writes": len(decided), "later_writes": len(later),
        "approved": approved, "rejected": rejected,
        "counter_exemplars": kinds.count("counter_exemplar"), "exemplars": kinds.count("exemplar"),
        "dropped": len(report.dropped), "left_out": report.left_out,
        "approved_cleared": report.approved_cleared, "approved_still_flagged": len(report.approved_still_flagged),
        "seconds": round(suggest_s, 1),
        "decided_half": {"before": _rates(decided, _actions(reviewer, policy, decided)),
                         "after": _rates(decided, _actions(again, candidate, decided))},
        "later_half": {"before": _rates(later, _actions(reviewer, policy, later)),
                       "after": _rates(later, _actions(again, candidate, later))},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", type=Path, default=sorted(HELDOUT.glob("*.jsonl")))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    reviewer = Reviewer(load_policy(REPO / "policies"))
    reviewer.warm_up()
    results = [measure(p, reviewer) for p in args.files]
    head = (f"{'file':<20}{'approved':>9}{'rejected':>9}{'counter':>8}{'exempl':>7}"
            f"{'decided: caught / false alarms':>34}{'later: caught / false alarms':>34}")
    print(head)
    for r in results:
        d, later = r["decided_half"], r["later_half"]
        print(f"{r['file']:<20}{r['approved']:>9}{r['rejected']:>9}{r['counter_exemplars']:>8}{r['exemplars']:>7}"
              f"{d['before']['caught']:>10.1f} / {d['before']['false_alarms']:>4.1f} -> "
              f"{d['after']['caught']:>5.1f} / {d['after']['false_alarms']:>4.1f}"
              f"{later['before']['caught']:>10.1f} / {later['before']['false_alarms']:>4.1f} -> "
              f"{later['after']['caught']:>5.1f} / {later['after']['false_alarms']:>4.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
