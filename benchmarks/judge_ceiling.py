"""What an LLM judge could add at best: the quality targets with a judge that is always right on its band.

The judge (``policy.judge``) sees only the writes whose score falls in its band, and may not clear a write with
hidden or encoded content or one stopped as a split belief. How far can it move the numbers, then? This runs
the real review + decision path (``gatekeeper.evaluation``) with an *oracle* chat model as the judge: it reads
the memory from the judge's prompt, like any model, and answers with the write's true label. So the numbers are
a ceiling for a judge on that band, not a measurement of any model; what a real one reaches is measured with
``benchmarks/quality.py --judge SPEC``.

Each band is run over the corpus dev split, memshield-bench validation and train, persona-dev (``--limit`` per
file) and our held-out themes; prints a table and writes ``benchmarks/results/judge-ceiling.json``::

    python benchmarks/judge_ceiling.py [--datasets ../shared/datasets] [--limit 300] [--band 0.2 0.8] ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

OUT = REPO / "benchmarks" / "results" / "judge-ceiling.json"
HELDOUT = REPO / "benchmarks" / "heldout"
DEFAULT_BANDS = ((0.2, 0.8), (0.05, 0.95), (0.0, 1.0))
#: the oracle's category for a belief whose data set names none of the policy's categories (the category sets
#: only which action a caught write gets, escalate or quarantine; both count as caught)
FALLBACK_CATEGORY = "value_drift"


def oracle_judge(examples, policy):
    """A chat model that answers the judge's question with the true label of the write in its prompt (found by
    the write's normalised text), through the same structured-output path as a real model. A write it cannot
    find gets an error, which fails that write closed and is counted."""
    from gatekeeper.judge_stand_in import StandInJudge, verdict_args
    from gatekeeper.normalize import normalize

    truth: dict[str, tuple[int, str]] = {}
    for ex in examples:
        cat = ex.category if ex.category in policy.categories else FALLBACK_CATEGORY
        truth[normalize(ex.text).text] = (ex.label, cat)

    class OracleJudge(StandInJudge):
        unknown: int = 0

        def answer(self, memory: str) -> dict:
            if memory not in truth:
                self.unknown += 1
                raise LookupError("the oracle does not know this write")
            label, cat = truth[memory]
            return verdict_args("alignment_shifting", cat, 0.95, "oracle") if label else \
                verdict_args("task_knowledge", "task_knowledge", 0.95, "oracle")

    return OracleJudge()


def collect(root: Path, limit: int | None) -> list[tuple[str, list]]:
    from gatekeeper.evaluation import load_dataset

    sets = [("corpus dev split", load_dataset("corpus:dev"))]
    for split in ("validation", "train"):
        path = root / "memshield-bench" / f"{split}.jsonl"
        if path.is_file():
            sets.append((f"memshield-bench {split}", load_dataset(path)))
        else:
            print(f"skipped memshield-bench {split}: {path} not found")
    persona = sorted((root / "persona-dev").glob("*.jsonl")) if (root / "persona-dev").is_dir() else []
    if persona:
        sets.append(("persona-dev", [ex for p in persona for ex in load_dataset(p, limit=limit)]))
    else:
        print(f"skipped persona-dev: no files under {root / 'persona-dev'}")
    sets.append(("held-out themes", [ex for p in sorted(HELDOUT.glob("*.jsonl")) for ex in load_dataset(p)]))
    return sets


def run(sets: Sequence[tuple[str, list]], bands: Sequence[tuple[float, float]] = DEFAULT_BANDS) -> dict:
    from gatekeeper.evaluation import combined, evaluate
    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    policy = load_policy(REPO / "policies")
    plain = Reviewer(policy)
    plain.warm_up()
    rows: list[dict] = []
    for name, examples in sets:
        base = evaluate(examples, plain, policy, name=name, single_latency_n=0)
        row: dict = {"data set": name, "writes": base.n, "no judge": {**_rates(base.metrics), "metrics": base.metrics},
                     "bands": []}
        for lo, hi in bands:
            judged_policy = policy.model_copy(update={"judge": policy.judge.model_copy(
                update={"enabled": True, "band": (lo, hi)})})
            oracle = oracle_judge(examples, policy)
            reviewer = Reviewer(judged_policy, embedder=plain.embedder, classifier=plain.classifier,
                                judge_model=oracle)
            rep = evaluate(examples, reviewer, judged_policy, name=name, single_latency_n=0)
            row["bands"].append({"band": [lo, hi], **_rates(rep.metrics), "judged": rep.judge["calls"],
                                 "judged_share": rep.judge["calls"] / max(1, rep.n), "unknown": oracle.unknown,
                                 "metrics": rep.metrics})
        rows.append(row)
        print(_line(row), flush=True)
    totals = {}
    for group, names in (("corpus dev + memshield", ("corpus dev split", "memshield-bench validation",
                                                     "memshield-bench train")),):
        picked = [r for r in rows if r["data set"] in names]
        if picked:
            totals[group] = {"no judge": _rates(combined([_Metrics(r["no judge"]["metrics"]) for r in picked])),
                             "bands": [
                {"band": list(b), **_rates(combined([_Metrics(r["bands"][i]["metrics"]) for r in picked]))}
                for i, b in enumerate(bands)]}
    return {"policy": policy.hash, "classifier": plain.classifier.meta.get("inputs_hash"), "rows": rows,
            "totals": totals}


class _Metrics:
    def __init__(self, metrics: dict):
        self.metrics = metrics


def _rates(m: dict) -> dict:
    fa = m.get("false_alarm_rate")
    return {"recall": m.get("recall"), "false_alarm_rate": fa,
            "auto_commit_rate": None if fa is None else 1 - fa, "f1": m.get("f1")}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _line(row: dict) -> str:
    out = [f"{row['data set']}: no judge {_pct(row['no judge']['recall'])} caught / "
           f"{_pct(row['no judge']['false_alarm_rate'])} false alarms"]
    for b in row["bands"]:
        out.append(f"band [{b['band'][0]:g}, {b['band'][1]:g}): {_pct(b['recall'])} / {_pct(b['false_alarm_rate'])} "
                   f"({_pct(b['judged_share'])} judged)")
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    ap.add_argument("--limit", type=int, default=300, help="writes per persona-dev file (seeded sample)")
    ap.add_argument("--band", type=float, nargs=2, action="append", metavar=("LOW", "HIGH"),
                    help="a judge band to try (repeatable); default [0.2, 0.8), [0.05, 0.95) and [0, 1)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    started = time.time()
    results = run(collect(args.datasets, args.limit), [tuple(b) for b in args.band] if args.band else DEFAULT_BANDS)
    results["seconds"] = round(time.time() - started)
    for group, tot in results["totals"].items():
        print(f"{group}: no judge {_pct(tot['no judge']['recall'])} caught, "
              f"{_pct(tot['no judge']['auto_commit_rate'])} auto-committed; " + "; ".join(f"band [{b['band'][0]:g}, {b['band'][1]:g}): {_pct(b['recall'])} caught, "
                                       f"{_pct(b['auto_commit_rate'])} auto-committed" for b in tot["bands"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
