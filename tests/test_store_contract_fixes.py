"""GatedStore / review-node contract fixes, against real components: the caller's op order in a batch,
namespace listings paged inside the binding, the wrapped store's TTL, idempotent node re-runs, and
deletes that are never applied unaudited."""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3

import pytest
from conftest import ledger_refusing, make_gate
from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, PutOp
from langgraph.store.memory import InMemoryStore
from pydantic import ValidationError

from gatekeeper.chroma_store import ChromaMemoryStore
from gatekeeper.gated_store import GatedStore
from gatekeeper.models import ProposalState

NS = ("memories", "agent-1")
NOTE = {"content": "The staging database is db-stage-02."}
OLD = {"content": "Old note: the staging database is db-stage-01."}


# ------------------------------------------------------------- 1. op order in a batch
def test_delete_then_put_in_one_batch_keeps_the_put_like_the_wrapped_store(gstore):
    ops = [PutOp(NS, "k", None), PutOp(NS, "k", NOTE)]
    ref = InMemoryStore()
    ref.put(NS, "k", OLD)
    ref.batch(ops)
    assert ref.get(NS, "k").value == NOTE  # LangGraph's reference: the last op on the key wins

    gstore.put(NS, "k", OLD)
    gstore.batch(ops)
    assert [o.state for o in gstore.last_outcomes] == [ProposalState.committed]
    assert gstore.get(NS, "k").value == NOTE
    assert gstore.store.get(NS, "k").value == NOTE


def test_put_then_delete_in_one_batch_deletes(gstore):
    res = gstore.batch([PutOp(NS, "k", NOTE), GetOp(NS, "k"), PutOp(NS, "k", None), GetOp(NS, "k")])
    assert res[1].value == NOTE and res[3] is None
    assert gstore.get(NS, "k") is None
    assert gstore.gate.ledger.find(event="memory.deleted", key="k")


def test_a_bad_write_after_a_read_still_stops_the_batch_before_anything_is_written(gstore):
    with pytest.raises(ValidationError):
        gstore.batch([PutOp(NS, "ok", NOTE), GetOp(NS, "ok"), PutOp(NS, "bad", {"content": ""})])
    assert gstore.get(NS, "ok") is None
    assert sum(gstore.gate.registry.counts().values()) == 0


# ------------------------------------------------- 2. namespace listing inside the binding
@pytest.fixture(params=["inmemory", "chroma", "sqlite"])
def crowded(request, tmp_path, reviewer):
    if request.param == "inmemory":
        inner = InMemoryStore()
    elif request.param == "chroma":
        inner = ChromaMemoryStore(path=tmp_path / "chroma-inner", embed=reviewer.embedder)
    else:
        sqlite_store = pytest.importorskip("langgraph.store.sqlite")
        inner = sqlite_store.SqliteStore(sqlite3.connect(":memory:", check_same_thread=False,
                                                         isolation_level=None))
        inner.setup()
    # agent-a's namespaces fill the wrapped store's first pages (seeded directly: the gate is not under test)
    inner.batch([PutOp(("memories", "agent-a", f"topic{i:03d}"), "k", {"content": f"note {i}"}) for i in range(120)]
                + [PutOp(("memories", "agent-b", "projects"), "k", {"content": "agent-b's note"}),
                   PutOp(("memories", "agent-b"), "k", {"content": "agent-b's top note"})])
    gate = make_gate(tmp_path / "nsdata", reviewer, memory_store=inner)
    a = GatedStore(inner, gate=gate, agent_id="agent-a", namespace_prefix=("memories", "agent-a"))
    b = GatedStore(inner, gate=gate, agent_id="agent-b", namespace_prefix=("memories", "agent-b"))
    yield a, b
    gate.close()


def test_list_namespaces_pages_over_the_bound_agents_namespaces_only(crowded):
    a, b = crowded
    mine = [("memories", "agent-b"), ("memories", "agent-b", "projects")]
    assert b.list_namespaces() == mine
    assert b.list_namespaces(prefix=("memories",)) == mine
    assert b.list_namespaces(prefix=("*", "agent-b")) == mine
    assert b.list_namespaces(prefix=("memories", "agent-b", "projects")) == [mine[1]]
    assert b.list_namespaces(suffix=("projects",)) == [mine[1]]
    assert b.list_namespaces(prefix=("memories", "agent-a")) == []  # conflicts with the binding
    assert b.list_namespaces(max_depth=1) == []
    listed = b.batch([ListNamespacesOp(match_conditions=None, max_depth=None, limit=1, offset=1)])[0]
    assert listed == [mine[1]]
    listed = b.batch([ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("memories",)),),
                                       limit=10, offset=0)])[0]
    assert listed == mine
    page = a.list_namespaces(limit=5, offset=115)
    assert page == [("memories", "agent-a", f"topic{i:03d}") for i in range(115, 120)]


# ------------------------------------------------------------------------- 3. TTL
def test_ttl_reaches_a_ttl_capable_wrapped_store(tmp_path, reviewer):
    sqlite_store = pytest.importorskip("langgraph.store.sqlite")
    store = sqlite_store.SqliteStore(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None),
                                     ttl={"default_ttl": 60})
    store.setup()
    gate = make_gate(tmp_path / "ttldata", reviewer, memory_store=store)
    try:
        g = GatedStore(store, gate=gate)
        assert g.supports_ttl and g.ttl_config == {"default_ttl": 60}

        def ttl_of(key):
            return store.conn.execute("SELECT ttl_minutes, expires_at FROM store WHERE key=?", (key,)).fetchone()

        g.put(NS, "default", NOTE)
        g.put(NS, "explicit", NOTE, ttl=5)
        g.put(NS, "forever", NOTE, ttl=None)
        g.batch([PutOp(NS, "op", NOTE)])  # a bare PutOp: what the wrapped store's batch does with it
        store.batch([PutOp(NS, "ref", NOTE)])
        assert [o.state for o in g.last_outcomes] == [ProposalState.committed]
        assert ttl_of("default")[0] == 60 and ttl_of("default")[1] is not None
        assert ttl_of("explicit")[0] == 5
        assert ttl_of("forever") == (None, None)
        assert ttl_of("op") == ttl_of("ref")
    finally:
        gate.close()


def test_ttl_is_refused_where_the_wrapped_store_has_none(gstore):
    """Refused before anything is journaled, naming the wrapped store (LangGraph's own check named GatedStore); a
    PutOp with a TTL sent to batch too (it was reviewed, then quarantined when the store refused it)."""
    assert not gstore.supports_ttl and gstore.ttl_config is None
    wrapped = type(gstore.store).__name__
    with pytest.raises(NotImplementedError, match=f"TTL is not supported by {wrapped}, the store this GatedStore"):
        gstore.put(NS, "k", NOTE, ttl=5)
    with pytest.raises(NotImplementedError, match=wrapped):
        asyncio.run(gstore.aput(NS, "k", NOTE, ttl=5))
    with pytest.raises(NotImplementedError, match=wrapped):
        gstore.batch([PutOp(NS, "k", NOTE, ttl=5)])
    assert sum(gstore.gate.registry.counts().values()) == 0


def test_a_sync_call_on_the_loop_of_an_async_store_raises_before_anything_is_written(tmp_path, reviewer):
    """LangGraph's AsyncSqliteStore refuses a sync call made on the event loop it runs on. Through GatedStore the
    write was reviewed, its store write then refused, and it was quarantined as a store failure while put()
    returned as if stored."""
    aio = pytest.importorskip("langgraph.store.sqlite.aio")

    async def run():
        async with aio.AsyncSqliteStore.from_conn_string(str(tmp_path / "agent.db")) as store:
            await store.setup()
            gate = await asyncio.to_thread(make_gate, tmp_path / "data", reviewer, memory_store=store)
            g = GatedStore(store, gate=gate)
            try:
                with pytest.raises(asyncio.InvalidStateError, match="use the async interface"):
                    g.put(NS, "k", NOTE)
                assert gate.registry.query(limit=10) == []  # nothing journaled, nothing quarantined
                await g.aput(NS, "k", NOTE)  # the async interface writes
                assert (await g.aget(NS, "k")).value == NOTE
            finally:
                await asyncio.to_thread(gate.close)

    asyncio.run(run())


# -------------------------------------------------------- 4. node re-run after a failure
def test_review_node_rerun_from_checkpoint_does_not_commit_twice(tmp_path, reviewer):
    from langgraph.checkpoint.sqlite import SqliteSaver

    from gatekeeper.reviewer_node import build_gate_graph

    store = InMemoryStore()
    gate = make_gate(tmp_path / "noderun", reviewer, memory_store=store)
    saver = SqliteSaver(sqlite3.connect(str(tmp_path / "ckpt.db"), check_same_thread=False))
    graph = build_gate_graph(gate, checkpointer=saver, namespace=NS)
    cfg = {"configurable": {"thread_id": "t1"}}
    try:
        items = ["The staging database is db-stage-02.", {"content": "Ticket 7 is assigned to billing."}]
        with ledger_refusing(gate), pytest.raises(Exception, match="ledger"):
            graph.invoke({"proposed_memories": items}, cfg)
        first = gate.registry.counts()
        assert first["committed"] == 2
        out = graph.invoke(None, cfg)  # resume from the checkpoint: the node runs again
        assert [o["state"] for o in out["memory_outcomes"]] == ["committed", "committed"]
        assert gate.registry.counts() == first  # nothing decided a second time
        assert len(store.search(NS, limit=10)) == 2
        # the re-run finished what the failure left: each decision is in the ledger, once
        ids = [o["id"] for o in out["memory_outcomes"]]
        assert all(gate.registry.require(i)["ledgered"] for i in ids)
        assert [len(gate.ledger.find(proposal_id=i, event="proposal.decided")) for i in ids] == [1, 1]
        assert gate.ledger.verify().ok

        # a new invocation with the same text is a new proposal (a new task), not a replay
        out = graph.invoke({"proposed_memories": [items[0]]}, cfg)
        assert gate.registry.counts()["committed"] == 3
        assert len(store.search(NS, limit=10)) == 3
    finally:
        gate.close()


def test_review_node_ids_are_random_outside_a_graph(tmp_path, reviewer):
    from gatekeeper.models import SourceKind
    from gatekeeper.reviewer_node import _to_write

    a = _to_write("Standup is at 09:30.", None, NS, "agent", SourceKind.agent)
    b = _to_write("Standup is at 09:30.", None, NS, "agent", SourceKind.agent)
    assert a.id != b.id and a.key != b.key


# ----------------------------------------------------------- 5. deletes and the ledger
def test_delete_after_a_torn_ledger_tail_is_ledgered(gstore):
    gate = gstore.gate
    gstore.put(NS, "k", NOTE)
    with open(gate.ledger.path, "ab") as fh:  # what a SIGKILL mid-append in another process leaves
        fh.write(b'{"seq": 99, "event": "proposal.deci')
    gstore.delete(NS, "k")
    assert gstore.store.get(NS, "k") is None
    assert [e["key"] for e in gate.ledger.find(event="memory.deleted")] == ["k"]
    assert gate.ledger.verify().ok


def test_a_delete_the_ledger_cannot_record_is_not_applied(gstore):
    gate = gstore.gate
    gstore.put(NS, "k", NOTE)
    with ledger_refusing(gate, "memory.deleted"), pytest.raises(OSError):
        gstore.delete(NS, "k")
    assert gstore.store.get(NS, "k").value == NOTE  # never an unaudited delete


def test_a_delete_is_recorded_for_approvals_before_the_store_deletes(gstore, monkeypatch):
    """An approval of an older escalation of the key looks for deletes in the registry: a crash right after the
    store's delete must not leave the delete unrecorded there (the memory would come back). The registry records
    it first, and takes the record back when the store refuses the delete."""
    gate = gstore.gate
    ns = json.dumps(list(NS))
    gstore.put(NS, "k", NOTE)
    gstore.put(NS, "k2", NOTE)
    store_cls = type(gstore.store)  # InMemoryStore's methods cannot be set on an instance
    real = store_cls.batch
    recorded_at_delete: list[bool] = []

    def deleting(self, ops):
        recorded_at_delete.append(gate.registry.deleted_since(ns, "k", "") is not None)
        return real(self, ops)

    monkeypatch.setattr(store_cls, "batch", deleting)
    gstore.delete(NS, "k")
    assert recorded_at_delete == [True] and gstore.store.get(NS, "k") is None

    def refusing(self, ops):
        raise OSError(errno.EIO, "store unavailable (injected)")

    monkeypatch.setattr(store_cls, "batch", refusing)
    with pytest.raises(OSError):
        gstore.delete(NS, "k2")
    monkeypatch.undo()
    assert gstore.store.get(NS, "k2").value == NOTE
    assert gate.registry.deleted_since(ns, "k2", "") is None  # nothing was deleted
    assert [e["key"] for e in gate.ledger.find(event="memory.delete_failed")] == ["k2"]
