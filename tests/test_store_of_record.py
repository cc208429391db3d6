"""A write goes into the memory store it was proposed for, or nowhere (docs/reliability.md, section 59).

The agent's ``GatedStore`` wraps its own store (here LangGraph's ``SqliteStore`` in a file) while a reviewer's
``gatekeeper review`` opens the same data directory with the data directory's chromadb. An approval made there
committed the agent's escalated write into the chromadb, where the agent never reads it, and the registry called it
applied; a crash's unfinished commit was finished the same way by whichever process recovered first. Real
SqliteStore, real chromadb, real gates on one data directory, the real CLI.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.erasure import ErasureRefused, erase_memories
from gatekeeper.gate import STORE_FAILED, Gatekeeper
from gatekeeper.models import EscalationMode, MemoryWrite, ProposalState, Provenance
from gatekeeper.review_service import ReviewDecision, ReviewService
from gatekeeper.settings import GatekeeperSettings
from gatekeeper.store_identity import MemoryStoreSpecError, OtherStoreError, load_memory_store, store_identity

from conftest import REPO, make_gate

NS = ("memories", "agent-1")
BELIEF = "I should avoid being shut down."
NOTE = "TPS reports go in ./Reports/TPS."


def _sqlite_store(path) -> SqliteStore:
    store = SqliteStore(sqlite3.connect(path, check_same_thread=False, isolation_level=None))
    store.setup()
    return store


def _factory_file(tmp_path, db) -> str:
    """A ``path/to/file.py:make_store`` spec naming the agent's store, as a deployment writes it."""
    f = tmp_path / "agent_store.py"
    f.write_text(textwrap.dedent(f"""
        import sqlite3
        from langgraph.store.sqlite import SqliteStore

        def make_store():
            store = SqliteStore(sqlite3.connect({str(db)!r}, check_same_thread=False, isolation_level=None))
            store.setup()
            return store
    """))
    return f"{f}:make_store"


def _agent_settings(data, **kw) -> GatekeeperSettings:
    return GatekeeperSettings(data_dir=data, policy_dir=REPO / "policies", policy_watch_s=0, **kw)


def _write(text: str, key: str = "k") -> MemoryWrite:
    return MemoryWrite(content=text, namespace=NS, key=key, provenance=Provenance(agent_id="agent-1"))


def test_the_identity_tells_the_stores_of_a_deployment_apart(tmp_path, reviewer):
    a, b = _sqlite_store(tmp_path / "a.db"), _sqlite_store(tmp_path / "b.db")
    again = _sqlite_store(tmp_path / "a.db")
    assert store_identity(a) == store_identity(again) != store_identity(b)
    assert str((tmp_path / "a.db").resolve()) in store_identity(a)
    gate = make_gate(tmp_path / "data", reviewer)  # the data directory's chromadb
    # inside the data directory: relative to it, so that a restored copy writes into its own copy of the store
    assert gate.store_id == "chromadb <data dir>/chroma gatekeeper_memories"
    assert len({gate.store_id, store_identity(a), store_identity(InMemoryStore())}) == 3
    gate.close()


def test_an_approval_in_another_store_s_process_is_refused_and_made_where_the_agent_reads(tmp_path, reviewer):
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db), escalation_mode=EscalationMode.park)
    held = agent.submit(_write(BELIEF))
    assert held.state is ProposalState.pending
    assert agent.registry.require(held.proposal.id)["store"] == agent.store_id
    agent.close()

    # a reviewer's process: the data directory's own chromadb
    elsewhere = make_gate(data, reviewer)
    service = ReviewService(elsewhere)
    with pytest.raises(OtherStoreError, match="GATEKEEPER_MEMORY_STORE"):
        service.decide(held.proposal.id, ReviewDecision(type="approve", reviewer="alice"))
    row = elsewhere.registry.require(held.proposal.id)
    assert row["state"] == "pending" and row["resolution"] is None  # nothing recorded
    assert elsewhere.memory_store.get(NS, "k") is None
    assert not elsewhere.ledger.find(event="review.resolved")
    elsewhere.close()

    # opened with the agent's store (GATEKEEPER_MEMORY_STORE): the approval lands where the agent reads
    there = Gatekeeper.open(_agent_settings(data, memory_store=_factory_file(tmp_path, db)), reviewer=reviewer)
    assert there.store_id == store_identity(_sqlite_store(db))
    item = ReviewService(there).decide(held.proposal.id, ReviewDecision(type="approve", reviewer="alice"))
    assert item.state is ProposalState.committed
    there.close()
    assert _sqlite_store(db).get(NS, "k").value == {"content": BELIEF}


def test_a_rejection_stores_nothing_and_is_made_anywhere(tmp_path, reviewer):
    data = tmp_path / "data"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(tmp_path / "agent.db"),
                      escalation_mode=EscalationMode.park)
    held = agent.submit(_write(BELIEF))
    elsewhere = make_gate(data, reviewer)
    item = ReviewService(elsewhere).decide(held.proposal.id,
                                           ReviewDecision(type="reject", reviewer="alice", reason="a belief"))
    assert item.state is ProposalState.quarantined
    agent.close(), elsewhere.close()


def test_the_cli_says_where_to_approve_and_approves_there(tmp_path, reviewer, monkeypatch):
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db), escalation_mode=EscalationMode.park)
    pid = agent.submit(_write(BELIEF)).proposal.id
    agent.close()
    runner = CliRunner()
    args = ["review", "approve", pid, "-r", "alice", "--data-dir", str(data), "--policy", str(REPO / "policies")]
    monkeypatch.setenv("GATEKEEPER_POLICY_WATCH_S", "0")
    r = runner.invoke(app, args)
    assert r.exit_code == 3, r.output
    assert "GATEKEEPER_MEMORY_STORE" in r.output and str(db) in r.output
    assert _sqlite_store(db).get(NS, "k") is None
    monkeypatch.setenv("GATEKEEPER_MEMORY_STORE", _factory_file(tmp_path, db))
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "committed" in r.output
    assert _sqlite_store(db).get(NS, "k").value == {"content": BELIEF}


def test_recovery_leaves_a_crashed_write_to_a_gate_of_its_store(tmp_path, reviewer):
    """The agent is killed between its decision and its store write (a real SIGKILL at the gate's crash point); a
    reviewer's command opens a gate on the data directory first. Its recovery finished the commit into the
    chromadb and marked it applied, so the agent's own recovery found nothing to do: the memory was lost."""
    data, db = tmp_path / "data", tmp_path / "agent.db"
    script = tmp_path / "agent.py"
    script.write_text(textwrap.dedent(f"""
        import sqlite3, sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from langgraph.store.sqlite import SqliteStore
        from gatekeeper.gate import Gatekeeper
        from gatekeeper.models import MemoryWrite, Provenance
        from gatekeeper.settings import GatekeeperSettings

        store = SqliteStore(sqlite3.connect({str(db)!r}, check_same_thread=False, isolation_level=None))
        store.setup()
        gate = Gatekeeper.open(GatekeeperSettings(data_dir={str(data)!r}, policy_dir={str(REPO / 'policies')!r},
                                                  policy_watch_s=0), memory_store=store)
        gate.submit(MemoryWrite(content={NOTE!r}, namespace={NS!r}, key="tps",
                                provenance=Provenance(agent_id="agent-1")))
    """))
    env = dict(os.environ, GATEKEEPER_CRASH_AT="after_decision")
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    con = sqlite3.connect(data / "gatekeeper.db")
    state, applied, store = con.execute("SELECT state, applied, store FROM proposals").fetchone()
    con.close()
    assert (state, applied) == ("committed", 0) and store == store_identity(_sqlite_store(db))

    elsewhere = make_gate(data, reviewer)  # opening recovers
    assert elsewhere.recover()["other_store"] == 1
    assert elsewhere.memory_store.get(NS, "tps") is None
    assert elsewhere.registry.unfinished()  # still the agent's to finish
    elsewhere.close()

    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))  # the agent restarts: its recovery
    assert not agent.registry.unfinished()
    agent.close()
    assert _sqlite_store(db).get(NS, "tps").value == {"content": NOTE}


def test_an_unapplied_delete_is_left_to_a_gate_of_its_store(tmp_path, reviewer):
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent_store = _sqlite_store(db)
    agent = make_gate(data, reviewer, memory_store=agent_store)
    assert agent.submit(_write(NOTE, key="tps")).state is ProposalState.committed

    class Interrupted(BaseException):
        pass

    def cut_short():  # the process stops after the delete's record, before the store applied it
        raise Interrupted

    with pytest.raises(Interrupted):
        agent.record_deletes([(NS, "tps")], agent_id="agent-1", apply=cut_short)
    agent.close()

    elsewhere = make_gate(data, reviewer)
    assert elsewhere.recover()["other_store"] == 1
    assert elsewhere.registry.unapplied_deletes()
    elsewhere.close()
    assert _sqlite_store(db).get(NS, "tps") is not None

    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))
    assert not agent.registry.unapplied_deletes()
    agent.close()
    assert _sqlite_store(db).get(NS, "tps") is None


def test_an_erasure_and_a_store_retry_are_left_to_a_gate_of_the_store(tmp_path, reviewer, monkeypatch):
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent_store = _sqlite_store(db)
    agent = make_gate(data, reviewer, memory_store=agent_store)
    assert agent.submit(_write(NOTE, key="tps")).state is ProposalState.committed
    real_batch = agent_store.batch

    def down(ops):
        if any(isinstance(op, PutOp) and op.key == "rota" for op in ops):
            raise ConnectionError("database is down")
        return real_batch(ops)

    monkeypatch.setattr(agent_store, "batch", down)
    failed = agent.submit(_write("The on-call rota is in the ops wiki.", key="rota"))
    assert failed.state is ProposalState.quarantined and failed.decision.reason.startswith(STORE_FAILED)
    monkeypatch.setattr(agent_store, "batch", real_batch)
    agent.close()

    elsewhere = make_gate(data, reviewer)
    with pytest.raises(ErasureRefused, match="GATEKEEPER_MEMORY_STORE"):
        erase_memories(elsewhere, namespace=NS, key="tps", operator="dpo", reason="REQ-1")
    assert [r["outcome"] for r in elsewhere.retry_store_failures(operator="ops")] == ["other_store"]
    assert elsewhere.memory_store.get(NS, "rota") is None
    elsewhere.close()

    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))
    assert [r["outcome"] for r in agent.retry_store_failures(operator="ops")] == ["retried"]
    report = erase_memories(agent, namespace=NS, key="tps", operator="dpo", reason="REQ-1")
    assert report.keys_deleted == 1
    agent.close()
    store = _sqlite_store(db)
    assert store.get(NS, "tps") is None and store.get(NS, "rota").value["content"].startswith("The on-call")


def test_the_memory_store_setting(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="set one of them"):
        GatekeeperSettings(data_dir=tmp_path, memory_store="my_app.stores:store", chroma_url="http://localhost:8000")
    with pytest.raises(ValueError, match="expected 'module:attribute'"):
        GatekeeperSettings(data_dir=tmp_path, memory_store="my_app.stores")
    f = tmp_path / "stores.py"
    f.write_text("from langgraph.store.memory import InMemoryStore\nstore = InMemoryStore()\nnot_a_store = 42\n"
                 "def broken():\n    raise RuntimeError('no database')\n")
    assert isinstance(load_memory_store(f"{f}:store"), InMemoryStore)
    with pytest.raises(MemoryStoreSpecError, match="is a int, not a LangGraph store"):
        load_memory_store(f"{f}:not_a_store")
    with pytest.raises(MemoryStoreSpecError, match=r"calling broken\(\) failed: RuntimeError: no database"):
        load_memory_store(f"{f}:broken")
    monkeypatch.setenv("GATEKEEPER_MEMORY_STORE", f"{f}:store")
    assert GatekeeperSettings(data_dir=tmp_path).memory_store == f"{f}:store"
    with pytest.raises(MemoryStoreSpecError, match="does not import"):
        Gatekeeper.open(_agent_settings(tmp_path / "d", memory_store="no_such_module_here:store"))
    assert not (tmp_path / "d").exists()  # a refused open leaves no data directory behind
