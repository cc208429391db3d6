"""The gate as LangGraph nodes.

Add two nodes to any ``StateGraph`` whose state has the ``MemoryGateState``
keys:

* ``review_memories``  reviews ``proposed_memories``: commits task knowledge,
  quarantines, and escalates. Side effects happen once: a proposal id that was
  already decided is not decided again when the node is re-run. A proposal
  without an id (a string, a dict without ``"id"``) gets one derived from the
  LangGraph task and its position in the list, the same when the task is re-run
  from its checkpoint (after a failure, on resume), so a re-run replays the
  earlier outcome instead of writing the memory a second time.
* ``human_review``     for escalations in *interrupt* mode, pauses the graph with
  ``interrupt()`` once per escalated write; resume with
  ``Command(resume={"type": "approve" | "edit" | "reject", ...})`` (the decision
  shape of LangChain's HumanInTheLoopMiddleware). In *park* mode nothing pauses:
  the write waits in the review queue and the agent goes on.

``add_memory_gate(builder, gate, after=..., then=...)`` wires both;
``build_gate_graph(gate, checkpointer)`` is a ready-made one-step graph.
"""

from __future__ import annotations

import json
import operator
import uuid
from typing import Annotated, Any, Callable, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from gatekeeper.gate import Gatekeeper
from gatekeeper.models import EscalationMode, GateOutcome, MemoryWrite, Provenance, ProposalState, SourceKind
from gatekeeper.registry import ConflictError
from gatekeeper.review_service import ReviewDecision, ReviewPermissionError, ReviewService


def _replace(_old: list, new: list) -> list:
    return new


class MemoryGateState(TypedDict, total=False):
    #: writes the agent proposes: MemoryWrite objects or dicts
    #: ({"content" | "value", "namespace", "key"?, "kind"?, "source"?, "id"?})
    proposed_memories: Annotated[list[Any], _replace]
    #: one summary per reviewed write: id, state, action, category, score, reason
    memory_outcomes: Annotated[list[dict], operator.add]
    #: ids of escalations waiting for ``human_review`` (interrupt mode)
    pending_reviews: Annotated[list[str], _replace]


def outcome_summary(o: GateOutcome) -> dict:
    return {
        "id": o.proposal.id, "namespace": list(o.proposal.namespace), "key": o.proposal.key,
        "text": o.proposal.text[:500], "state": o.state.value, "action": o.decision.action.value,
        "category": o.review.category, "score": o.review.score, "reason": o.decision.reason,
        "policy_hash": o.decision.policy_hash,
    }


#: the key of the running task's id in a node's ``config["configurable"]`` (LangGraph's
#: ``CONFIG_KEY_TASK_ID``): a hash of the checkpoint id, checkpoint namespace, step and node name,
#: so the same when the task is re-run from the same checkpoint
_TASK_ID_KEY = "__pregel_task_id"
_ID_NAMESPACE = uuid.UUID("5f0c7a52-3d1e-4f65-9b8a-6a2f1e0c9d41")


def _derived_ids(item: Any, position: int, config: RunnableConfig | None) -> tuple[str, str] | None:
    """(id, key) for a proposal that has none, from the LangGraph task id, the item's position
    and its content; None outside a graph task (the ids are random there)."""
    task_id = ((config or {}).get("configurable") or {}).get(_TASK_ID_KEY)
    if not task_id:
        return None
    try:
        content = json.dumps(item, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        content = repr(item)
    basis = f"{task_id}\x1f{position}\x1f{content}"
    return uuid.uuid5(_ID_NAMESPACE, basis).hex, uuid.uuid5(_ID_NAMESPACE, basis + "\x1fkey").hex


def _to_write(item: Any, config: RunnableConfig | None, default_ns: tuple[str, ...],
              agent_id: str, source: SourceKind, position: int = 0) -> MemoryWrite:
    cfg = (config or {}).get("configurable", {})
    prov = {"source": source, "agent_id": str(cfg.get("agent_id") or agent_id),
            "thread_id": cfg.get("thread_id")}
    if isinstance(item, MemoryWrite):
        if item.provenance.thread_id is None and prov["thread_id"]:
            return item.model_copy(update={"provenance": item.provenance.model_copy(
                update={"thread_id": prov["thread_id"]})})
        return item
    if isinstance(item, str):
        item = {"content": item}
    if not isinstance(item, dict):
        raise TypeError(f"a proposed memory must be a dict, str or MemoryWrite, not {type(item).__name__}")
    data = dict(item)
    if "id" not in data or "key" not in data:
        derived = _derived_ids(item, position, config)
        if derived is not None:
            data.setdefault("id", derived[0])
            data.setdefault("key", derived[1])
    if "source" in data:  # the graph's own code says where the text came from
        prov["source"] = SourceKind(data.pop("source"))
    for k in ("tool_name", "url"):
        if k in data:
            prov[k] = data.pop(k)
    data.setdefault("namespace", default_ns)
    data["provenance"] = Provenance.model_validate(prov)
    return MemoryWrite.model_validate(data)


def make_review_node(gate: Gatekeeper, *, namespace: tuple[str, ...] = ("memories",), agent_id: str = "agent",
                     source: SourceKind = SourceKind.agent,
                     escalation_mode: EscalationMode | None = None) -> Callable[..., dict]:
    def review_memories(state: MemoryGateState, config: RunnableConfig) -> dict:
        items = state.get("proposed_memories") or []
        if not items:
            return {"pending_reviews": []}
        writes = [_to_write(it, config, namespace, agent_id, source, position)
                  for position, it in enumerate(items)]
        mode = escalation_mode or gate.escalation_mode or EscalationMode(gate.policy.escalation.mode)
        outcomes = gate.submit_many(writes, escalation_mode=mode)
        pending = [o.proposal.id for o in outcomes
                   if o.state is ProposalState.pending and o.decision.escalation_mode is EscalationMode.interrupt]
        return {"proposed_memories": [], "memory_outcomes": [outcome_summary(o) for o in outcomes],
                "pending_reviews": pending}

    return review_memories


def hitl_request(gate: Gatekeeper, proposal_id: str) -> dict:
    """The interrupt payload, shaped like HumanInTheLoopMiddleware's HITLRequest."""
    detail = ReviewService(gate).show(proposal_id, similar=0)
    return {
        "action_requests": [{
            "name": "store_memory",
            "args": {"proposal_id": proposal_id, "namespace": list(detail.namespace), "key": detail.key,
                     "value": detail.proposal.value},
            "description": (f"Memory write escalated for review: {detail.category or 'uncertain'} "
                            f"(score {detail.score:.2f}). {detail.decision.reason if detail.decision else ''}"),
        }],
        "review_configs": [{"action_name": "store_memory", "allowed_decisions": ["approve", "edit", "reject"]}],
        "proposal_id": proposal_id,
    }


def _decision_from_resume(resume: Any) -> ReviewDecision:
    """The decision in a resume value; a malformed one is a ValueError (the node records it as invalid and
    the write stays pending; any other exception would fail the node, and LangGraph would replay the same
    bad resume value on every later resume of the thread)."""
    if isinstance(resume, dict) and "decisions" in resume:
        decisions = resume["decisions"]
        if not isinstance(decisions, (list, tuple)) or len(decisions) != 1:
            raise ValueError("resume one escalation at a time: {'decisions': [<one decision>]}")
        resume = decisions[0]
    if isinstance(resume, str):
        resume = {"type": resume}
    return ReviewDecision.model_validate(resume)


def make_human_review_node(gate: Gatekeeper) -> Callable[..., dict]:
    service = ReviewService(gate)

    def human_review(state: MemoryGateState) -> dict:
        results = []
        # one interrupt() per escalation, always in the same order, so resume values
        # line up with escalations when the node is re-run after each resume
        for pid in state.get("pending_reviews") or []:
            resume = interrupt(hitl_request(gate, pid))
            try:
                decision = _decision_from_resume(resume)
                item = service.decide(pid, decision)
                results.append({"id": pid, "state": item.state.value, "action": f"human:{decision.type}",
                                "reviewer": decision.reviewer, "reason": decision.reason})
            except ConflictError as exc:  # decided elsewhere (web queue, CLI) meanwhile
                row = gate.registry.require(pid)
                results.append({"id": pid, "state": row["state"], "action": f"human:{row['resolution']}",
                                "reviewer": row["resolved_by"], "reason": str(exc)})
            except (ValueError, ReviewPermissionError) as exc:
                # a malformed or forbidden resume leaves the write pending (never committed)
                results.append({"id": pid, "state": "pending", "action": "human:invalid", "reason": str(exc)})
        return {"pending_reviews": [], "memory_outcomes": results}

    return human_review


def add_memory_gate(builder: StateGraph, gate: Gatekeeper, *, after: str = START, then: str = END,
                    review_node: str = "review_memories", human_node: str = "human_review",
                    **node_kwargs: Any) -> StateGraph:
    builder.add_node(review_node, make_review_node(gate, **node_kwargs))
    builder.add_node(human_node, make_human_review_node(gate))
    builder.add_edge(after, review_node)

    def route(state: MemoryGateState) -> str:
        return human_node if state.get("pending_reviews") else then

    builder.add_conditional_edges(review_node, route, [human_node, then])
    builder.add_edge(human_node, then)
    return builder


def build_gate_graph(gate: Gatekeeper, *, checkpointer=None, **node_kwargs: Any):
    """A compiled graph that only gates memory: invoke with {"proposed_memories": [...]}."""
    builder = StateGraph(MemoryGateState)
    add_memory_gate(builder, gate, **node_kwargs)
    return builder.compile(checkpointer=checkpointer)
