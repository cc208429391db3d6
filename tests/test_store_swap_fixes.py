"""What a team swapping LangGraph's stores for a GatedStore met (docs/reliability.md section 63): the same value
written again within one run of a node was lost; the wrapped store's TTL sweeper was out of reach, and swept
memories that had not expired (guardrails' process-wide sqlite3 adapter); a paged semantic search of the chroma
store skipped and repeated memories whose scores tie.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.types import RetryPolicy

from gatekeeper.gated_store import GatedStore

from conftest import make_gate

NS = ("memories", "agent-1")
X = {"content": "Deploys happen on Tuesdays."}
Y = {"content": "Deploys happen on Thursdays."}


class _Turn(TypedDict, total=False):
    seen: list


def _graph(store, node, **node_kwargs):
    builder = StateGraph(_Turn)
    builder.add_node("node", node, **node_kwargs)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def _thread() -> dict:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def test_the_same_value_written_again_in_one_run_of_a_node_is_what_stays(tmp_path, reviewer):
    """put X, put Y, put X under one key: the last X got the first X's id (derived from the task and what it
    puts), was answered with its outcome (replayed), and the store kept Y."""
    inner = InMemoryStore()
    gate = make_gate(tmp_path, reviewer, memory_store=inner)
    store = GatedStore(inner, gate=gate, agent_id="agent-1")
    outcomes = []

    def node(state: _Turn) -> dict:
        s = get_store()
        outcomes.extend(s.put_reviewed(NS, "sched", v) for v in (X, Y, X))
        s.batch([PutOp(NS, "batch", X), PutOp(NS, "batch", Y), PutOp(NS, "batch", X)])
        return {}

    async def anode(state: _Turn) -> dict:
        s = get_store()
        for v in (X, Y, X):
            await s.aput(NS, "async", v)
        return {}

    try:
        _graph(store, node).invoke({}, _thread())
        asyncio.run(_graph(store, anode).ainvoke({}, _thread()))
        assert [o.replayed for o in outcomes] == [False, False, False]
        for key in ("sched", "batch", "async"):
            assert inner.get(NS, key).value == X, key
    finally:
        gate.close()


def test_a_retried_node_replays_its_repeats_and_proposes_nothing_again(tmp_path, reviewer):
    """A new run of the task (a retry policy's next attempt) counts its repeats from the start again: each of its
    puts is the same proposal as in the first attempt, replayed, not reviewed a second time."""
    inner = InMemoryStore()
    gate = make_gate(tmp_path, reviewer, memory_store=inner)
    attempts: list[int] = []

    def flaky(state: _Turn) -> dict:
        s = get_store()
        for v in (X, Y, X):
            s.put(NS, "sched", v)
        attempts.append(1)
        if len(attempts) < 2:
            raise ConnectionError("the model timed out")
        return {}

    retry = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False, retry_on=ConnectionError)
    try:
        _graph(GatedStore(inner, gate=gate, agent_id="agent-1"), flaky, retry_policy=retry).invoke({}, _thread())
        assert len(attempts) == 2
        assert gate.registry.counts()["committed"] == 3  # X, Y and X again: three proposals, not six
        assert inner.get(NS, "sched").value == X
    finally:
        gate.close()


def test_the_wrapped_store_s_ttl_sweeper_is_reached_through_the_gated_store(tmp_path, reviewer):
    """``GatedStore(SqliteStore(...))`` said ``supports_ttl`` but had no ``sweep_ttl`` / ``start_ttl_sweeper`` /
    ``stop_ttl_sweeper`` (AttributeError): code written for LangGraph's stores broke when the gate wrapped them."""
    import sqlite3
    import time

    import pytest
    from langgraph.store.sqlite import SqliteStore

    inner = SqliteStore(sqlite3.connect(tmp_path / "store.db", check_same_thread=False, isolation_level=None),
                        ttl={"default_ttl": 60, "refresh_on_read": False, "sweep_interval_minutes": 5})
    inner.setup()
    gate = make_gate(tmp_path / "gate", reviewer, memory_store=inner)
    store = GatedStore(inner, gate=gate, agent_id="agent-1")
    try:
        store.put(NS, "short", X, ttl=0.001)  # minutes: expires within a second
        store.put(NS, "long", Y)
        time.sleep(1.2)  # SqliteStore compares its expiry with SQLite's clock, in whole seconds
        store.sweep_ttl()
        # the unexpired one stays (its expiry was written as an integer, which SQLite sorts before the text it
        # compares with, while guardrails' sqlite3 adapter was in force: every memory with a TTL was swept)
        assert store.get(NS, "short") is None and store.get(NS, "long") is not None
        store.start_ttl_sweeper()
        store.stop_ttl_sweeper()
    finally:
        gate.close()
    plain = InMemoryStore()
    gate = make_gate(tmp_path / "plain", reviewer, memory_store=plain)
    try:
        with pytest.raises(NotImplementedError, match="InMemoryStore.*has no sweep_ttl"):
            GatedStore(plain, gate=gate, agent_id="agent-1").sweep_ttl()
    finally:
        gate.close()


def test_importing_gatekeeper_leaves_the_process_s_sqlite3_adapters_as_they_were():
    """guardrails-ai registers a process-wide sqlite3 adapter writing datetimes as Unix seconds: LangGraph's
    SqliteStore then wrote TTL expiries as integers, and its sweep deleted every memory with a TTL. It replaces
    the TIMESTAMP converter too (a host program's timestamps read with PARSE_DECLTYPES became a ValueError: the
    self-audit). Checked in a fresh interpreter, where gatekeeper is what imports guardrails."""
    import subprocess
    import sys

    code = ("import datetime, sqlite3\n"
            "before = dict(sqlite3.adapters), dict(sqlite3.converters)\n"
            "import gatekeeper.rules, gatekeeper.gated_store, gatekeeper.reviewer, gatekeeper.web.app\n"
            "assert (dict(sqlite3.adapters), dict(sqlite3.converters)) == before, (sqlite3.adapters,\n"
            "                                                                      sqlite3.converters)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_paging_a_semantic_search_of_the_chroma_store_returns_each_memory_once(tmp_path):
    """The same notes saved for three users score alike: chroma returns tied memories in no fixed order and the
    page was cut among them, so paging through a search returned some twice and never returned others
    (InMemoryStore pages them once each)."""
    import hashlib

    from gatekeeper.chroma_store import ChromaMemoryStore

    def embed(texts):  # a deterministic bag of words: equal texts, equal vectors
        out = []
        for t in texts:
            v = [0.0] * 16
            for w in t.lower().split():
                v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 16] += 1.0
            out.append(v)
        return out

    store = ChromaMemoryStore(path=tmp_path / "chroma", embed=embed)
    notes = ["Deploys happen on Tuesdays", "The staging DB password rotates every 30 days",
             "TPS reports go in ./Reports/TPS", "Log retention for the API gateway is 14 days"]
    for user in ("u1", "u2", "u3", "u4"):
        for i, note in enumerate(notes):
            store.put(("memories", user), f"n{i}", {"content": note})
    query = "when do deploys happen"
    whole = [(x.namespace, x.key) for x in store.search(("memories",), query=query, limit=100)]
    for size in (1, 2, 3, 5):
        paged = [(x.namespace, x.key) for off in range(0, len(whole), size)
                 for x in store.search(("memories",), query=query, limit=size, offset=off)]
        assert paged == whole, size
    assert len(whole) == 16 and len(set(whole)) == 16
    scores = [x.score for x in store.search(("memories",), query=query, limit=100)]
    assert scores == sorted(scores, reverse=True)


def test_a_namespace_already_in_the_wrapped_store_with_a_slash_can_be_read_and_deleted(tmp_path, reviewer):
    """LangGraph's stores take "/" and "\\" in labels. Wrapped, such a namespace was listed by list_namespaces and
    search, but get, a search of it and delete raised: its memories could be neither read nor removed. New writes
    to it are still refused (the review queue and CLI show namespaces "/"-joined)."""
    import pytest

    inner = InMemoryStore()
    for ns in (("users", "CORP\\alice"), ("src/lib", "notes")):
        inner.put(ns, "k", {"content": "Deploys happen on Tuesdays."})
    gate = make_gate(tmp_path, reviewer, memory_store=inner)
    store = GatedStore(inner, gate=gate, agent_id="agent-1")
    try:
        assert set(store.list_namespaces()) == {("users", "CORP\\alice"), ("src/lib", "notes")}
        for ns in (("users", "CORP\\alice"), ("src/lib", "notes")):
            assert store.get(ns, "k").value == {"content": "Deploys happen on Tuesdays."}
            assert [i.key for i in store.search(ns)] == ["k"]
            store.delete(ns, "k")
            assert inner.get(ns, "k") is None
            with pytest.raises(ValueError, match="path or wildcard character"):
                store.put(ns, "k2", {"content": "Deploys happen on Tuesdays."})
        assert [e for e in gate.ledger.entries() if e["event"] == "memory.deleted"]
    finally:
        gate.close()


def test_counting_a_node_s_repeats_keeps_no_run_s_context_alive(tmp_path, reviewer):
    """The repeat count held each run's Runtime (so that its id was not reused), and with it the run's context:
    4,096 runs' worth. A run is told by its attempt and its task's first start, values that hold nothing."""
    import gc
    import weakref

    inner = InMemoryStore()
    gate = make_gate(tmp_path, reviewer, memory_store=inner)

    class Context:
        pass

    seen: list[weakref.ref] = []

    def node(state: _Turn) -> dict:
        from langgraph.runtime import get_runtime

        seen.append(weakref.ref(get_runtime().context))
        s = get_store()
        for v in (X, Y, X):
            s.put(NS, "sched", v)
        return {}

    try:
        graph = _graph(GatedStore(inner, gate=gate, agent_id="agent-1"), node)
        for _ in range(3):
            graph.invoke({}, _thread(), context=Context())
        gc.collect()
        assert len(seen) == 3 and all(ref() is None for ref in seen)
        assert inner.get(NS, "sched").value == X
    finally:
        gate.close()


def test_a_first_put_keeps_the_id_earlier_releases_derived(tmp_path, reviewer):
    """The repeat count's first version derived ids from the validated proposal: a TTL of 5 read as 5.0, so the id
    of a put with a TTL changed with the upgrade, and a re-run across it proposed the write again."""
    import sqlite3

    from langgraph.config import get_config
    from langgraph.store.sqlite import SqliteStore

    from gatekeeper.gated_store import _task_id, canonical_text, derived_id

    inner = SqliteStore(sqlite3.connect(tmp_path / "store.db", check_same_thread=False, isolation_level=None),
                        ttl={"default_ttl": 60})
    inner.setup()
    gate = make_gate(tmp_path / "gate", reviewer, memory_store=inner)
    configs = []

    def node(state: _Turn) -> dict:
        configs.append(get_config())
        get_store().put(NS, "sched", X, ttl=5)
        return {}

    try:
        _graph(GatedStore(inner, gate=gate, agent_id="agent-1"), node).invoke({}, _thread())
        before = derived_id(_task_id(configs[0]), "put", canonical_text([list(NS), "sched", X, None, 5, None]))
        assert gate.registry.get(before) is not None
    finally:
        gate.close()
