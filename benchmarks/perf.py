"""Performance benchmark: prints a table and saves JSON + markdown under benchmarks/results/.

    .venv/bin/python benchmarks/perf.py [--quick] [--compare OLD.json]
    (the same as: gatekeeper bench --out benchmarks/results [--quick] [--compare OLD.json])
"""

from __future__ import annotations

import sys
from pathlib import Path

from gatekeeper.cli import app

if __name__ == "__main__":
    app(["bench", "--out", str(Path(__file__).resolve().parent / "results"), *sys.argv[1:]],
        prog_name="benchmarks/perf.py")
