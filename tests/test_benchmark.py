"""Saved benchmark results compared between versions (`gatekeeper bench --compare`, `bench-compare`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekeeper.benchmark import BenchFileError, _git_rev, compare, load_result
from gatekeeper.cli import app

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
THROUGHPUT = ("throughput", "GatedStore.batch over InMemoryStore (128 PutOps per batch)")
P50 = ("single write", "gate.submit end to end p50 (InMemoryStore)")
SHARE = ("single write", "share settled by the screen (no encoder)")


@pytest.fixture
def saved(tmp_path):
    """A saved result of this repository and a later one: throughput up 20%, the p50 up 1% (noise), the
    p99 up 30%, one row gone and one added."""
    old = load_result(REPO / "benchmarks" / "results" / "perf-latest.json")
    rows = [dict(r) for r in old["rows"]]
    by_key = {(r["section"], r["metric"]): r for r in rows}
    assert {THROUGHPUT, P50, SHARE} <= by_key.keys()
    by_key[THROUGHPUT]["value"] = round(by_key[THROUGHPUT]["value"] * 1.2, 3)
    by_key[P50]["value"] = round(by_key[P50]["value"] * 1.01, 3)
    p99 = by_key[("single write", "gate.submit end to end p99 (InMemoryStore)")]
    p99["value"] = round(p99["value"] * 1.3, 3)
    gone = rows.pop(0)
    rows.append({"section": "throughput", "metric": "a new measurement", "value": 5.0, "unit": "writes/s",
                 "target": "", "note": ""})
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps({"meta": {**old["meta"], "git": "later"}, "rows": rows}))
    return a, b, old, (gone["section"], gone["metric"])


def test_compare_says_what_got_better_or_worse(saved):
    a, b, old, gone = saved
    rows = {(r["section"], r["metric"]): r for r in compare(load_result(a), load_result(b))}
    before = {(r["section"], r["metric"]): r["value"] for r in old["rows"]}
    t = rows[THROUGHPUT]
    assert (t["old"], t["verdict"]) == (before[THROUGHPUT], "better")  # writes/s: higher is better
    assert t["change"] == pytest.approx(0.2, abs=1e-3)
    assert rows[P50]["verdict"] == "same"  # within the 5% tolerance
    assert rows[("single write", "gate.submit end to end p99 (InMemoryStore)")]["verdict"] == "worse"  # ms: lower
    assert rows[SHARE]["verdict"] == ""  # a share has no good direction
    assert rows[gone]["verdict"] == "gone" and rows[gone]["new"] is None
    assert rows[("throughput", "a new measurement")]["verdict"] == "new"
    assert list(rows)[-1] == gone  # the newer result's order, then what only the older one has
    strict = {(r["section"], r["metric"]): r for r in compare(load_result(a), load_result(b), tolerance=0.0)}
    assert strict[P50]["verdict"] == "worse"


def test_unreadable_results_are_clear_errors(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(BenchFileError, match="missing.json: cannot read"):
        load_result(missing)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(BenchFileError, match="garbage.json: not JSON"):
        load_result(garbage)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": [{"metric": "x", "value": 1}]}))
    with pytest.raises(BenchFileError, match="not a gatekeeper benchmark result"):
        load_result(other)


def test_cli_bench_compare(saved, tmp_path):
    a, b, _, _ = saved
    r = runner.invoke(app, ["bench-compare", str(a), str(b)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "over InMemoryStore" in ln)
    assert "better" in line and "+20.0%" in line
    assert "git later" in r.output
    r = runner.invoke(app, ["bench-compare", str(a), str(tmp_path / "nope.json")], env={"COLUMNS": "250"})
    assert r.exit_code == 2 and "nope.json: cannot read" in r.output
    # bench --compare checks the baseline before measuring anything
    r = runner.invoke(app, ["bench", "--quick", "--out", str(tmp_path / "out"), "--compare",
                            str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "nope.json" in r.output
    assert not (tmp_path / "out").exists()


def test_results_name_a_dirty_working_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("one")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    package = tmp_path / "gatekeeper"  # the package's directory in its checkout
    package.mkdir()
    rev = _git_rev(package)
    assert rev and "+" not in rev and rev not in ("unknown", "installed")
    (tmp_path / "untracked.txt").write_text("not part of the measured code")
    assert _git_rev(package) == rev
    (tmp_path / "f.txt").write_text("two")
    assert _git_rev(package) == f"{rev}+dirty"
    assert _git_rev(tmp_path / "no-such-dir") == "unknown"


def test_the_commit_recorded_is_the_package_s_own_checkout_or_none(tmp_path):
    """A wheel installed in a virtual environment inside another project's git repository recorded that
    project's commit as the gatekeeper revision measured."""
    import subprocess

    from gatekeeper.benchmark import _git_rev

    other = tmp_path / "their-project"
    package = other / ".venv" / "site-packages" / "gatekeeper"
    package.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "app.py").write_text("print('hi')\n")
    subprocess.run(["git", "-C", str(other), "add", "app.py"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)
    assert _git_rev(package) == "installed"
    from pathlib import Path

    import gatekeeper

    assert _git_rev(Path(gatekeeper.__file__).parent) not in ("installed", "unknown")  # this checkout's commit
