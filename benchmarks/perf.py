"""Performance benchmark: prints a table and saves JSON + markdown under benchmarks/results/.

    .venv/bin/python benchmarks/perf.py [--quick]      (same as: gatekeeper bench [--quick])
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gatekeeper.benchmark import run, save


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    console = Console()
    res = run(quick=quick, progress=lambda s: console.print(f"[dim]… {s}[/dim]"))
    table = Table("section", "metric", "value", "unit", "target", "note", title="gatekeeper performance")
    for r in res.rows:
        table.add_row(r["section"], r["metric"], f"{r['value']:.3f}", r["unit"], r["target"], r["note"])
    console.print(table)
    j, m = save(res, Path(__file__).resolve().parent / "results")
    console.print(f"saved {j} and {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
