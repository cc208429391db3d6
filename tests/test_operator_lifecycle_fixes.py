"""Operators' data lifecycle (`status`, `prune`, `ledger`, `backup`, `forget`), as a helper audit with scripts
against the real components found it (docs/reliability.md, section 25). Real gate, registry, ledger, chromadb and
classifier; rows are aged by rewriting their times in SQLite."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from gatekeeper.gate import GateClosedError
from gatekeeper.health import data_health
from gatekeeper.models import MemoryWrite, ProposalState, Provenance, utcnow
from gatekeeper.retention import prune_registry

from conftest import make_gate

NS = ("memories", "agent-1")
runner = CliRunner()


def commit(gate, text: str) -> str:
    o = gate.submit(MemoryWrite(content=text, namespace=NS, provenance=Provenance(agent_id="agent-1")))
    assert o.state is ProposalState.committed, o.decision.reason
    return o.proposal.id


def age(gate, proposal_id: str, days: float) -> None:
    ts = (utcnow() - timedelta(days=days)).isoformat()
    with gate.registry._tx() as con:
        con.execute("UPDATE proposals SET created_at=?, updated_at=? WHERE id=?", (ts, ts, proposal_id))


def flat(text: str) -> str:
    return " ".join(text.split())


def test_status_and_metrics_say_a_lost_ledger_is_not_ok(tmp_path, reviewer):
    """An emptied (or deleted) ledger beside a registry of ledgered decisions: the gate refuses to open, but
    `status` printed "ledger: ok (0 entries)" and `--json` "ledger_ok": true, so a monitor never saw it."""
    data = tmp_path / "data"
    gate = make_gate(data, reviewer)
    commit(gate, "Deploys happen on Tuesdays.")
    gate.close()
    for damage in ("emptied", "deleted"):
        if damage == "emptied":
            (data / "ledger.jsonl").write_bytes(b"")
        else:
            (data / "ledger.jsonl").unlink()
        r = runner.invoke(cli_app(), ["status", "--json", "--data-dir", str(data)])
        assert r.exit_code == 3, r.output
        out = json.loads(r.stdout)
        assert out["ledger_ok"] is False and out["ledger_last_seq"] is None, (damage, out)
        assert out["ledger_verified"]["ok"] is False and "LOST" in out["ledger_verified"]["problem"]
        r = runner.invoke(cli_app(), ["status", "--data-dir", str(data)])
        assert r.exit_code == 3 and "ledger: LOST" in flat(r.stdout) and "ledger: ok" not in r.stdout, r.output
        r = runner.invoke(cli_app(), ["ledger", "anchor", "--data-dir", str(data)])
        assert r.exit_code == 1 and "LOST" in r.output and not r.stdout.strip(), r.output  # no anchor to keep
        r = runner.invoke(cli_app(), ["ledger", "verify", "--data-dir", str(data)])
        assert r.exit_code == 1 and "LOST" in r.output, r.output
    from gatekeeper.ledger import AuditLedger
    from gatekeeper.registry import ProposalRegistry

    registry = ProposalRegistry(data / "gatekeeper.db")
    try:
        assert data_health(registry, AuditLedger(data / "ledger.jsonl")).ledger_ok is False  # /metrics: 0
    finally:
        registry.close()


def test_ledger_commands_on_a_data_directory_before_its_first_decision(tmp_path, reviewer):
    """A gate opened (registry made) but nothing decided yet: there is no ledger file. `ledger verify`, `anchor`
    and `rotate` said "no ledger at ..." and exited 1, a false alarm for cron and monitoring."""
    data = tmp_path / "data"
    make_gate(data, reviewer).close()
    assert (data / "gatekeeper.db").is_file() and not (data / "ledger.jsonl").exists()
    r = runner.invoke(cli_app(), ["ledger", "verify", "--data-dir", str(data)])
    assert r.exit_code == 0 and "nothing decided yet" in flat(r.output), r.output
    r = runner.invoke(cli_app(), ["ledger", "anchor", "--data-dir", str(data)])
    assert r.exit_code == 0 and r.stdout.strip() == "0:" + "0" * 64, r.output
    r = runner.invoke(cli_app(), ["ledger", "rotate", "--data-dir", str(data)])
    assert r.exit_code == 0 and "nothing to rotate" in flat(r.output), r.output
    # a mistyped path is still an error
    r = runner.invoke(cli_app(), ["ledger", "verify", str(tmp_path / "elsewhere" / "ledger.jsonl")])
    assert r.exit_code == 1 and "no ledger at" in flat(r.output), r.output


def test_status_json_through_a_file_prints_json(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    r = runner.invoke(cli_app(), ["status", "--json", "--data-dir", str(afile / "sub")])
    assert r.exit_code == 2, r.output  # no traceback: the numbers of nothing, as JSON
    out = json.loads(r.stdout)
    assert out["proposals"] == dict.fromkeys(out["proposals"], 0)


def test_status_json_says_why_no_gate_opened(gate, tmp_path):
    """Exit 2 is the policy files, a missing data directory or a judge model that does not load: the JSON said
    `"policy_loads": true` and nothing else, so a monitor read "policy broken" with no reason."""
    data = str(gate.ledger.path.parent)
    r = runner.invoke(cli_app(), ["status", "--json", "--data-dir", data])
    assert r.exit_code == 0 and json.loads(r.stdout)["gate_error"] is None, r.output
    r = runner.invoke(cli_app(), ["status", "--json", "--data-dir", data],
                      env={"GATEKEEPER_JUDGE_MODEL": "no_such_judge_module_here:judge"})
    out = json.loads(r.stdout)
    assert r.exit_code == 2 and out["policy_loads"] is True, r.output
    assert "no_such_judge_module_here" in out["gate_error"] and "did not start" in out["gate_error"]
    r = runner.invoke(cli_app(), ["status", "--json", "--data-dir", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and json.loads(r.stdout)["gate_error"].startswith("no data directory at"), r.output


def test_a_prune_dry_run_counts_the_receipts_the_prune_drops_and_a_closed_gate_prunes_nothing(gate):
    """With --receipts-older-than, the prune makes receipts for old rows and the drop that follows takes those
    older than the receipt retention at once: the dry run counted only receipts already there (0 against 3)."""
    old = [commit(gate, f"Deploys happen on Tuesdays, batch {i}.") for i in range(3)]
    middle = [commit(gate, f"Standups are at 09:30, team {i}.") for i in range(2)]
    for pid in old:
        age(gate, pid, 400)
    for pid in middle:
        age(gate, pid, 100)
    week, year = timedelta(days=7), timedelta(days=365)
    dry = prune_registry(gate, week, operator="ops", dry_run=True, receipts_older_than=year)
    assert (dry.proposals, dry.receipts) == (5, 3)
    done = prune_registry(gate, week, operator="ops", receipts_older_than=year)
    assert (done.proposals, done.receipts) == (dry.proposals, dry.receipts)
    kept = {r[0] for r in gate.registry._con().execute("SELECT id FROM pruned")}
    assert kept == set(middle)

    more = commit(gate, "The build cache lives on the second disk.")
    age(gate, more, 100)
    gate.close()
    with pytest.raises(GateClosedError):
        prune_registry(gate, week, operator="ops")
    assert gate.registry.get(more) is not None  # nothing went
    assert prune_registry(gate, week, operator="ops", dry_run=True).proposals == 1  # counting changes nothing


def test_cli_prune_refuses_a_receipt_retention_in_the_flags_words(gate):
    data = ["--data-dir", str(gate.ledger.path.parent), "--operator", "ops"]
    r = runner.invoke(cli_app(), ["prune", "--older-than", "90d", "--receipts-older-than", "10d", *data])
    assert r.exit_code == 2 and "--receipts-older-than 10d: receipts are kept at least 30 days" in flat(r.output), r.output
    assert "0:00:00" not in r.output
    r = runner.invoke(cli_app(), ["prune", "--older-than", "90d", "--receipts-older-than", "90d", *data])
    assert r.exit_code == 2 and "must be longer than --older-than 90d" in flat(r.output), r.output
    assert not gate.ledger.find(event="registry.pruned")


def test_a_killed_backup_s_staging_folder_goes_even_when_its_pid_is_taken_again(tmp_path, reviewer):
    """A killed backup's staging folder (a copy of the registry, texts included) stayed in the data directory
    for good when its pid belonged to a living process again (after a restart), and `forget` left the erased
    texts in it. A running backup holds a lock in its folder; a folder whose lock is free is left over."""
    from gatekeeper.backup import _hold_staging, remove_stale_staging
    from gatekeeper.erasure import erase_memories

    data = tmp_path / "data"
    gate = make_gate(data, reviewer)
    pid = commit(gate, "Bob's phone number is 555-0199.")
    stale = data / f".backup-staging-{os.getpid()}"  # a living pid: this process's
    stale.mkdir()
    shutil.copy(data / "gatekeeper.db", stale / "gatekeeper.db")
    (stale / ".staging.lock").write_bytes(b"")  # what a backup makes, its process gone
    live = data / ".backup-staging-1"
    live.mkdir()
    fd = _hold_staging(live)  # a backup copying right now
    try:
        remove_stale_staging(data)
        assert live.is_dir() and not stale.exists()
    finally:
        os.close(fd)
    stale.mkdir()
    shutil.copy(data / "gatekeeper.db", stale / "gatekeeper.db")
    (stale / ".staging.lock").write_bytes(b"")
    erase_memories(gate, proposal_ids=[pid], operator="dpo", reason="REQ-9")
    assert not stale.exists()
    leftovers = [p for p in data.rglob("*") if p.is_file() and b"555-0199" in p.read_bytes()]
    assert not [p for p in leftovers if ".backup-staging-" in str(p)], leftovers
    gate.close()


def cli_app():
    from gatekeeper.cli import app

    return app
