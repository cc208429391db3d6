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

from gatekeeper.chroma_store import ChromaMemoryStore
from gatekeeper.cli import app
from gatekeeper.erasure import ErasureRefused, erase_memories
from gatekeeper.gate import STORE_FAILED, Gatekeeper
from gatekeeper.models import EscalationMode, MemoryWrite, ProposalState, Provenance
from gatekeeper.review_service import ReviewDecision, ReviewService
from gatekeeper.settings import GatekeeperSettings
from gatekeeper.registry import process_token
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
    # held in this process's memory: the identity names the process
    assert store_identity(InMemoryStore()).endswith(f" in process {process_token()}")
    assert store_identity(ChromaMemoryStore()).endswith(f" in process {process_token()}")
    gate.close()


def _live_foreign_token() -> str:
    """The owner token of a live process that is not this one (pytest's parent)."""
    from gatekeeper.registry import _HOST, _start_ticks

    return f"{_HOST}:{os.getppid()}:{_start_ticks(os.getppid()) or '?'}"


def _dead_token() -> str:
    from gatekeeper.registry import _HOST

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{_HOST}:{proc.pid}:1"


def test_an_in_memory_store_is_its_process_s_own_and_a_restarted_agent_adopts_an_ended_one_s(tmp_path, reviewer):
    """An in-memory store's identity named only its class, so a reviewer's process that opened an InMemoryStore of
    its own (through GATEKEEPER_MEMORY_STORE, or `serve --graph` running the agent's module) approved the agent's
    escalation into it: committed, and lost with that process. Now it names the process: a running agent's writes
    are decided in its process only, an ended one's are rejected or adopted by the restarted agent, explicitly."""
    data = tmp_path / "data"
    gate = make_gate(data, reviewer, memory_store=InMemoryStore(), escalation_mode=EscalationMode.park)
    assert gate.store_id.endswith(f" in process {process_token()}")
    kind = gate.store_id.split(" in process ")[0]
    held, stores = {}, {}
    for name, owner in (("live", _live_foreign_token()), ("dead", _dead_token())):
        o = gate.submit(_write(BELIEF, key=name))
        stores[name] = f"{kind} in process {owner}"
        with gate.registry._tx() as con:  # noqa: SLF001 - journaled by another process's in-memory store
            con.execute("UPDATE proposals SET store=? WHERE id=?", (stores[name], o.proposal.id))
        held[name] = o.proposal.id
    service = ReviewService(gate)
    for name in held:  # neither is taken over by another process, even one holding the same kind of store
        with pytest.raises(OtherStoreError, match="held in the memory of the agent's process") as refused:
            service.decide(held[name], ReviewDecision(type="approve", reviewer="alice"))
        assert "GATEKEEPER_MEMORY_STORE" not in str(refused.value)  # no process but the agent's can write there
    chroma = make_gate(tmp_path / "other", reviewer)
    with pytest.raises(ValueError, match="only a restarted agent holding a new InMemoryStore"):
        chroma.adopt_store(stores["dead"], operator="ops")
    with pytest.raises(ValueError, match="a process that is running"):
        gate.adopt_store(stores["live"], operator="ops")
    assert gate.adopt_store(stores["dead"], operator="ops") == 1  # the restarted agent, in its process
    item = service.decide(held["dead"], ReviewDecision(type="approve", reviewer="alice"))
    assert item.state is ProposalState.committed and gate.memory_store.get(NS, "dead") is not None
    chroma.close(), gate.close()


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
    assert elsewhere.retry_store_failures(operator="ops") == []  # left to a gate over the agent's store
    # a failure of its own store, journaled after the agent's: a limit of one reaches it (the agent's row filled
    # every run's limit)
    chroma_batch = elsewhere.memory_store.batch
    monkeypatch.setattr(elsewhere.memory_store, "batch", lambda ops: (_ for _ in ()).throw(ConnectionError("down")))
    own = elsewhere.submit(_write("Invoices are due on the 5th.", key="invoices"))
    assert own.state is ProposalState.quarantined
    monkeypatch.setattr(elsewhere.memory_store, "batch", chroma_batch)
    report = elsewhere.retry_store_failures(operator="ops", limit=1)
    assert [(r["proposal_id"], r["outcome"]) for r in report] == [(own.proposal.id, "retried")]
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
    _factory_file(tmp_path, tmp_path / "agent.db")  # agent_store.py: make_store() opens a SqliteStore file
    f = tmp_path / "stores.py"
    f.write_text((tmp_path / "agent_store.py").read_text() + "from langgraph.store.memory import InMemoryStore\n"
                 "memory = InMemoryStore()\nnot_a_store = 42\ndef broken():\n    raise RuntimeError('no database')\n")
    assert isinstance(load_memory_store(f"{f}:make_store"), SqliteStore)
    # a store held in memory is each process's own: another process's gate would write into a throwaway one
    with pytest.raises(MemoryStoreSpecError, match="held in memory: each process gets a store of its own"):
        load_memory_store(f"{f}:memory")
    with pytest.raises(MemoryStoreSpecError, match="is a int, not a LangGraph store"):
        load_memory_store(f"{f}:not_a_store")
    with pytest.raises(MemoryStoreSpecError, match=r"calling broken\(\) failed: RuntimeError: no database"):
        load_memory_store(f"{f}:broken")
    monkeypatch.setenv("GATEKEEPER_MEMORY_STORE", f"{f}:make_store")
    assert GatekeeperSettings(data_dir=tmp_path).memory_store == f"{f}:make_store"
    with pytest.raises(MemoryStoreSpecError, match="does not import"):
        Gatekeeper.open(_agent_settings(tmp_path / "d", memory_store="no_such_module_here:store"))
    assert not (tmp_path / "d").exists()  # a refused open leaves no data directory behind


def test_a_row_from_before_stores_were_recorded_names_the_store_that_took_it(tmp_path, reviewer):
    """A pending row of an older data directory (no store recorded) is approved in the chromadb's gate: the memory
    is there, and the row said nothing of it, so a later erasure through the agent's store reported it erased
    while the chromadb kept it."""
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db), escalation_mode=EscalationMode.park)
    pid = agent.submit(_write(BELIEF)).proposal.id
    with agent.registry._tx() as con:  # noqa: SLF001 - as an older release journaled it
        con.execute("UPDATE proposals SET store=NULL WHERE id=?", (pid,))
    agent.close()
    elsewhere = make_gate(data, reviewer)
    ReviewService(elsewhere).decide(pid, ReviewDecision(type="approve", reviewer="alice"))
    assert elsewhere.registry.require(pid)["store"] == elsewhere.store_id
    assert elsewhere.memory_store.get(NS, "k") is not None
    elsewhere.close()
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))
    with pytest.raises(ErasureRefused, match="chromadb <data dir>/chroma"):
        erase_memories(agent, namespace=NS, key="k", operator="dpo", reason="REQ-2")
    agent.close()


def test_reviewers_see_before_deciding_that_a_write_goes_to_another_store(tmp_path, reviewer, monkeypatch):
    """The queue, the item page, the API and `review show` said nothing of it: a reviewer learnt only from the
    refusal, and the web's 409 page said the item had changed and dropped the reviewer's edit."""
    import html
    import re

    from gatekeeper.accounts import AccountStore
    from gatekeeper.web import create_app

    from conftest import WEB_PASSWORD, web_login

    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db), escalation_mode=EscalationMode.park)
    pid = agent.submit(_write(BELIEF)).proposal.id
    agent.close()
    gate = make_gate(data, reviewer)
    accounts = AccountStore(gate.registry.path)
    _, token = accounts.add("bob", WEB_PASSWORD, role="reviewer")
    service = ReviewService(gate)
    try:
        assert service.item(pid).other_store == store_identity(_sqlite_store(db))
        web = create_app(service, accounts, secret_key=b"s" * 64)
        bob = web_login(web, "bob")
        assert "another store: approve elsewhere" in bob.get("/queue").text
        page = bob.get(f"/items/{pid}").text
        assert 'id="other-store"' in page and "GATEKEEPER_MEMORY_STORE" in page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        edit = "I should let the operators shut me down."
        r = bob.post(f"/items/{pid}/decision", data={"csrf_token": csrf, "type": "edit", "edit_format": "text",
                                                     "reason": "reworded", "edited_text": edit})
        assert r.status_code == 409 and 'id="decision-error"' in r.text and html.escape(edit) in r.text
        assert "changed while you were reviewing" not in r.text
        api = bob.get(f"/api/items/{pid}", headers={"Authorization": f"Bearer {token}"}).json()
        assert api["other_store"] == store_identity(_sqlite_store(db))
        assert "another memory store" in service.bulk_approval_problem(pid, None, "bob")
        assert gate.registry.require(pid)["state"] == "pending"
        monkeypatch.setenv("GATEKEEPER_POLICY_WATCH_S", "0")
        out = CliRunner().invoke(app, ["review", "show", pid, "--data-dir", str(data),
                                           "--policy", str(REPO / "policies")]).output
        assert "to be stored in another memory store" in out
    finally:
        accounts.close(), gate.close()


def test_a_backup_names_the_stores_it_does_not_copy(tmp_path, reviewer):
    """The agent's SqliteStore is not in the data directory's copy; the backup said only "no memories directory",
    and a restore started from an empty store while the registry called its writes committed."""
    from gatekeeper.backup import backup_data_dir

    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))
    assert agent.submit(_write(NOTE, key="tps")).state is ProposalState.committed
    agent.close()
    report = backup_data_dir(_agent_settings(data), tmp_path / "copy")
    assert report.other_stores == [store_identity(_sqlite_store(db))]
    r = CliRunner().invoke(app, ["backup", str(tmp_path / "copy2"), "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert f"not copied: memories committed into {store_identity(_sqlite_store(db))}" in r.output


def test_a_moved_store_is_adopted_by_the_operator(tmp_path, reviewer, monkeypatch):
    """The identity of a SQLite store is its file: after the file moved, every gate left the agent's writes to a
    store that no longer exists, the agent's own included. `gatekeeper adopt-store OLD` takes them over, ledgered."""
    data, db = tmp_path / "data", tmp_path / "agent.db"
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db), escalation_mode=EscalationMode.park)
    pid = agent.submit(_write(BELIEF)).proposal.id
    old = agent.store_id
    agent.close()
    moved = tmp_path / "moved" / "agent.db"
    moved.parent.mkdir()
    db.rename(moved)
    agent = make_gate(data, reviewer, memory_store=_sqlite_store(moved))
    with pytest.raises(OtherStoreError):
        ReviewService(agent).decide(pid, ReviewDecision(type="approve", reviewer="alice"))
    agent.close()
    monkeypatch.setenv("GATEKEEPER_POLICY_WATCH_S", "0")
    monkeypatch.setenv("GATEKEEPER_MEMORY_STORE", _factory_file(tmp_path, moved))
    runner, where = CliRunner(), ["--data-dir", str(data), "--policy", str(REPO / "policies")]
    r = runner.invoke(app, ["adopt-store", old, "--dry-run", *where])
    assert r.exit_code == 0 and "would take over 1 write(s)" in r.output, r.output
    assert runner.invoke(app, ["adopt-store", old, *where]).exit_code == 2  # no operator
    r = runner.invoke(app, ["adopt-store", old, "--operator", "ops", *where])
    assert r.exit_code == 0 and "took over 1 write(s)" in r.output, r.output
    r = runner.invoke(app, ["review", "approve", pid, "-r", "alice", *where])
    assert r.exit_code == 0, r.output
    assert _sqlite_store(moved).get(NS, "k").value == {"content": BELIEF}
    gate = make_gate(data, reviewer, memory_store=_sqlite_store(moved))
    [entry] = gate.ledger.find(event="store.adopted")
    assert entry["old_store"] == old and entry["operator"] == "ops" and entry["rows"] == 1
    with pytest.raises(ValueError, match="already"):
        gate.adopt_store(gate.store_id, operator="ops")
    gate.close()


def test_a_resumed_thread_that_cannot_store_the_approval_stays_paused(tmp_path, reviewer):
    """`serve --graph` resumed the paused thread with an approval its node's gate could not store (the write is for
    the agent's store): the node reported human:conflict and the graph ran to its end, leaving the write pending
    with no thread paused on it. The node now asks again (human:invalid, 'refused'), and the reviewer is refused."""
    import uuid

    from langgraph.checkpoint.sqlite import SqliteSaver

    from gatekeeper.reviewer_node import build_gate_graph

    data, db = tmp_path / "data", tmp_path / "agent.db"

    def graph(gate):
        saver = SqliteSaver(sqlite3.connect(str(tmp_path / "checkpoints.db"), check_same_thread=False))
        return build_gate_graph(gate, checkpointer=saver, namespace=NS, agent_id="agent-1",
                                escalation_mode=EscalationMode.interrupt)

    agent = make_gate(data, reviewer, memory_store=_sqlite_store(db))
    cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
    out = graph(agent).invoke({"proposed_memories": [{"content": BELIEF, "key": "k"}]}, cfg)
    pid = out["memory_outcomes"][0]["id"]
    assert "__interrupt__" in out
    agent.close()

    server = make_gate(data, reviewer)  # serve's gate over the data directory's chromadb, its graph over it too
    service = ReviewService(server, resume_graph=graph(server))
    with pytest.raises(OtherStoreError):
        service.submit_decision(pid, {"type": "approve", "reviewer": "alice"})
    assert service.wait_for_resumes(60)
    state = graph(server).get_state(cfg)
    assert state.interrupts and state.interrupts[0].value["refused"]  # still paused on it, and told why
    assert server.registry.require(pid)["state"] == "pending" and server.memory_store.get(NS, "k") is None
    server.close()
