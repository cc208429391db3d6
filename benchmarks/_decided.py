"""The real review and decision of a benchmark's writes: ``Reviewer.review_many`` in batches, then
``decision.decide``, each write alone (its own namespace and agent), provenance ``agent``."""

from __future__ import annotations

BATCH = 32


def decided(reviewer, texts: list[str]) -> tuple[list, list[str]]:
    """The reviews of ``texts`` and the action each is decided (``"commit"``, ``"escalate"``, ``"quarantine"``)."""
    from gatekeeper.decision import decide
    from gatekeeper.models import MemoryWrite, Provenance

    writes = [MemoryWrite(namespace=("memories", f"bench-{i}"), value={"content": t},
                          provenance=Provenance(agent_id=f"bench-{i}")) for i, t in enumerate(texts)]
    reviews = []
    for k in range(0, len(writes), BATCH):
        reviews += reviewer.review_many(writes[k:k + BATCH])
    return reviews, [decide(w, r, reviewer.policy).action.value for w, r in zip(writes, reviews)]


def main(doc: str, measure, markdown, argv: list[str] | None = None) -> int:
    """The command line of such a benchmark: ``--policy DIR`` (default: the shipped policies/), ``--json`` and
    ``--md`` (where to write the result and its table); prints the table."""
    import argparse
    import json
    from pathlib import Path

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, help="policy directory (default: the shipped policies/)")
    ap.add_argument("--json", type=Path, help="write the result as JSON here")
    ap.add_argument("--md", type=Path, help="write the table as markdown here")
    args = ap.parse_args(argv)
    result = measure(args.policy)
    text = markdown(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        args.md.write_text(text)
    return 0
