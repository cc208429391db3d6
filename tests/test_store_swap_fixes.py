"""What a team swapping LangGraph's stores for a GatedStore met (docs/reliability.md section 63): the same value
written again within one run of a node was lost; the wrapped store's TTL sweeper was out of reach; a paged
semantic search of the chroma store skipped and repeated memories whose scores tie.
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
