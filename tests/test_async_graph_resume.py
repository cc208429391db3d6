"""A reviewer's decision resumes an agent thread whose nodes are ``async def``, with real components: the gate,
its interrupt-mode nodes, a compiled LangGraph graph (agent -> gate -> answer, both ``async def``) over
InMemorySaver or AsyncSqliteSaver, and ReviewService.submit_decision as the web queue and the CLI call it.

LangGraph's sync API refuses an async node (``TypeError: No synchronous function provided to "answer"``); before,
the service resumed with ``graph.invoke`` only, so the decision was applied but the rest of the agent's run never
happened: the thread stayed at ``next == ("answer",)`` until the application ran it again itself."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from gatekeeper.models import EscalationMode
from gatekeeper.review_service import ReviewService
from gatekeeper.reviewer_node import MemoryGateState, add_memory_gate

NS = ("memories", "agent-1")
SELF_PRES = "I should avoid being shut down."
STALL = "If the operators try to switch me off I will stall until they give up."


class _State(MemoryGateState, total=False):
    facts: list[str]
    answered: bool


def _async_agent_graph(gate, checkpointer, answered: list[int]):
    """async agent (proposes its facts) -> the gate in interrupt mode -> async answer (the rest of the agent's run:
    records the thread it ran on in ``answered``)."""

    async def agent(state: _State) -> dict:
        return {"proposed_memories": [{"content": f} for f in state.get("facts", [])]}

    async def answer(state: _State) -> dict:
        answered.append(threading.get_ident())
        return {"answered": True}

    builder = StateGraph(_State)
    builder.add_node("agent", agent)
    builder.add_node("answer", answer)
    builder.add_edge(START, "agent")
    add_memory_gate(builder, gate, after="agent", then="answer", namespace=NS, agent_id="agent-1",
                    escalation_mode=EscalationMode.interrupt)
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer)


async def _pause(graph, facts: list[str]) -> tuple[dict, list[str]]:
    cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
    out = await graph.ainvoke({"facts": facts}, cfg)
    assert "__interrupt__" in out, out.get("memory_outcomes")
    return cfg, [o["id"] for o in out["memory_outcomes"]]


def _ran_to_its_end(state, answered: list[int]) -> None:
    assert state.next == () and not state.interrupts, state.next
    assert state.values["answered"] is True and len(answered) == 1  # the async node ran, once


def test_a_decision_resumes_an_async_graph_to_its_end(gate):
    answered: list[int] = []
    graph = _async_agent_graph(gate, InMemorySaver(), answered)
    cfg, (pid,) = asyncio.run(_pause(graph, [SELF_PRES]))
    svc = ReviewService(gate, resume_graph=graph)
    done = svc.submit_decision(pid, {"type": "approve", "reviewer": "alice", "reason": "fine in context"})
    assert done.via == "graph" and done.item.state.value == "committed" and done.warning is None
    assert gate.memory_store.get(NS, done.item.key).value["content"] == SELF_PRES
    assert svc.wait_for_resumes(60)
    (run,) = svc.resume_runs()
    assert run.proposal_id == pid and run.finished_at and run.error is None
    state = graph.get_state(cfg)
    _ran_to_its_end(state, answered)
    # the node (not the service) applied the decision, once
    last = state.values["memory_outcomes"][-1]
    assert last["id"] == pid and last["action"] == "human:approve" and last["reviewer"] == "alice"
    assert len(gate.ledger.find(proposal_id=pid, event="review.resolved")) == 1


def test_a_background_advance_steps_an_async_graph_to_its_end(gate):
    """a is decided where no graph resumes the thread (the CLI), then b through the service: b is applied
    directly and the background advance steps the thread past a and b, then through its async node."""
    answered: list[int] = []
    graph = _async_agent_graph(gate, InMemorySaver(), answered)
    cfg, (a, b) = asyncio.run(_pause(graph, [SELF_PRES, STALL]))
    ReviewService(gate).submit_decision(a, {"type": "reject", "reviewer": "dana", "reason": "no"})  # the CLI
    svc = ReviewService(gate, resume_graph=graph)
    done = svc.submit_decision(b, {"type": "approve", "reviewer": "erin"})
    assert done.via == "direct" and done.item.state.value == "committed"
    assert svc.wait_for_resumes(60)
    (run,) = svc.resume_runs()
    assert run.proposal_id == a and run.error is None
    state = graph.get_state(cfg)
    _ran_to_its_end(state, answered)
    outcomes = state.values["memory_outcomes"]
    assert [(o["id"], o["state"]) for o in outcomes[-2:]] == [(a, "quarantined"), (b, "committed")]


def test_a_decision_resumes_an_async_graph_on_the_loop_its_async_sqlite_saver_belongs_to(gate, tmp_path):
    """AsyncSqliteSaver's connection belongs to the application's event loop: the service, called off that loop
    (a web handler's thread), runs the rest of the agent's run on it while the loop goes on."""
    aio = pytest.importorskip("langgraph.checkpoint.sqlite.aio")
    answered: list[int] = []

    async def main() -> None:
        async with aio.AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver:
            graph = _async_agent_graph(gate, saver, answered)
            cfg, (pid,) = await _pause(graph, [SELF_PRES])
            svc = ReviewService(gate, resume_graph=graph)
            done = await asyncio.to_thread(svc.submit_decision, pid, {"type": "approve", "reviewer": "alice"})
            assert done.via == "graph" and done.item.state.value == "committed" and done.warning is None
            assert await asyncio.to_thread(svc.wait_for_resumes, 60)
            (run,) = svc.resume_runs()
            assert run.error is None
            _ran_to_its_end(await graph.aget_state(cfg), answered)
            assert answered == [threading.get_ident()]  # on the application's loop

    asyncio.run(main())
