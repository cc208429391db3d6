"""The gate as LangGraph nodes.

Add two nodes to any ``StateGraph`` whose state has the ``MemoryGateState``
keys:

* ``review_memories``  reviews ``proposed_memories``: commits task knowledge,
  quarantines, and escalates. Side effects happen once: a proposal id that was
  already decided is not decided again when the node is re-run. A proposal
  without an id (a string, a dict without ``"id"``) gets one derived from its
  queue id (``gatekeeper.proposal_queue``), the same however often its review
  runs once it is queued (after a failure, from a checkpoint taken after it was
  queued), so a re-run replays the earlier outcome instead of writing the
  memory a second time.
  Proposals accumulate until this node takes them: nodes that propose in the
  same step (parallel branches) all reach the gate, and a compiled graph used as
  a subgraph node shares the queue with its parent (what it hands back is not
  queued twice, what it reviewed leaves the parent's queue too).
* ``human_review``     for escalations in *interrupt* mode, pauses the graph with
  ``interrupt()`` once per escalated write; resume with
  ``Command(resume={"type": "approve" | "edit" | "reject", ...})`` (the decision
  shape of LangChain's HumanInTheLoopMiddleware). In *park* mode nothing pauses:
  the write waits in the review queue and the agent goes on. Each decision is
  applied once, in a LangGraph task (``HUMAN_DECISION_TASK``): LangGraph runs the
  node again from its start on each resume, and the earlier decisions come back
  from the checkpoint instead of being applied (or refused, and ledgered) again.
  A decision it cannot apply leaves the write pending and pauses for the same
  write again, the request saying why (``refused``); a decision without a
  ``proposal_id`` that is the one the pause before took is not applied (LangGraph
  can hand it on to the next pause, langgraph#8837).

``memory_outcomes`` numbers each summary (``seq``) when it reaches the thread's
state: ``last_outcome_seq(outcomes)`` is the mark to keep, ``outcomes_after(outcomes,
mark)`` what is new since. What a node returns (``stream_mode="updates"``) has no
``seq`` yet; the state (``get_state``, ``stream_mode="values"``) has it. Summaries
handed back with their ``seq`` (a subgraph that shares the key returns the list it
was given) are not recorded twice. ``Overwrite([...])`` replaces the list as given
(LangGraph skips the reducer): numbering goes on from the last ``seq`` in it, so
write back summaries read from the state as they are. Time travel: a run from an
earlier checkpoint numbers on from that checkpoint's list, so the abandoned
branch's numbers are used again on the new one.

``add_memory_gate(builder, gate, after=..., then=...)`` wires both;
``build_gate_graph(gate, checkpointer)`` is a ready-made one-step graph.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Callable

from langchain_core.runnables import RunnableConfig
from langgraph.func import task
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import ValidationError
from typing_extensions import TypedDict  # pydantic builds JSON schemas (LangGraph servers) only from this one on 3.11

from gatekeeper.gate import Gatekeeper, ProposalIdConflict
from gatekeeper.gated_store import TASK_ID_KEY, canonical_text, derived_id
from gatekeeper.log_setup import get_logger
from gatekeeper.models import (
    EscalationMode, GateOutcome, MemoryWrite, Provenance, ProposalState, SourceKind, escalation_mode_of,
    one_line)
from gatekeeper.namespace_template import NamespaceTemplate
from gatekeeper.proposal_queue import REVIEWED, ProposalQueue
from gatekeeper.registry import ConflictError, NotFoundError, row_proposal
from gatekeeper.store_identity import OtherStoreError
from gatekeeper.review_service import ReviewDecision, ReviewPermissionError, ReviewService

log = get_logger("gatekeeper.reviewer_node")


def _replace(_old: list, new: list) -> list:
    return new


#: how many outcome summaries ``memory_outcomes`` keeps in a thread's state: the newest (and always every one of
#: the latest update). The state is saved with every checkpoint, so a list that only grew would make each
#: checkpoint of a long-running thread larger than the last; the registry and the ledger keep every decision.
OUTCOMES_KEPT = 200


def _seq_of(summary: Any) -> int | None:
    seq = summary.get("seq") if isinstance(summary, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _numbered(outcomes: list | tuple) -> list:
    """The summaries, each with its ``seq``. A summary without one was kept before summaries were numbered (the
    list an ``operator.add`` reducer kept: its position is its number) or set with ``Overwrite``: it is numbered
    from its neighbours, the same way each time, so a thread checkpointed by an earlier version reads like one
    numbered from the start."""
    seqs = [_seq_of(o) for o in outcomes]
    if None not in seqs:
        return list(outcomes)
    first = next((i for i, seq in enumerate(seqs) if seq is not None), len(seqs))
    base = seqs[first] - first if first < len(seqs) else 1
    numbered, last = [], base - 1
    for o, seq in zip(outcomes, seqs):
        last = seq if seq is not None else last + 1
        numbered.append({**o, "seq": last} if isinstance(o, dict) and seq is None else o)  # a non-dict: as it was
    return numbered


def last_outcome_seq(outcomes: list | tuple | None) -> int:
    """The ``seq`` of the newest summary in a ``memory_outcomes`` list (0 when there is none): keep it to see
    later what is new (``outcomes_after``). Also for a thread checkpointed before summaries were numbered."""
    return max((s for s in map(_seq_of, _numbered(outcomes or [])) if s is not None), default=0)


def outcomes_after(outcomes: list | tuple | None, seq: int) -> list[dict]:
    """The summaries of a ``memory_outcomes`` list numbered after ``seq`` (from ``last_outcome_seq``), each with
    its ``seq``; also for a thread checkpointed before summaries were numbered."""
    return [o for o in _numbered(outcomes or []) if (_seq_of(o) or 0) > seq]


def _record_outcomes(kept: list | None, update: list | tuple | None) -> list:
    """Reducer of ``memory_outcomes``: the update's summaries are appended, each numbered (``seq``: 1, 2, ... over
    the thread's whole history, so a reader can tell what is new since it last looked), and only the newest
    ``OUTCOMES_KEPT`` stay (more when one update brings more).

    A summary that already has its number is one the state holds: a subgraph with this key returns the list it
    was given plus its own, and a node may hand back summaries it read. One equal to the kept summary of that
    number is not recorded again; one numbered after the newest kept one keeps its number (the list a subgraph
    starts from: its parent's, numbers and all), and any other is numbered as new."""
    kept = _numbered(kept or [])
    if update is None:
        return kept
    if not isinstance(update, (list, tuple)):
        raise TypeError(f"memory_outcomes takes a list of outcome summaries, not {type(update).__name__}")
    recorded = {seq: o for o in kept if (seq := _seq_of(o)) is not None}
    last = max(recorded, default=0)
    added = []
    for summary in update:
        if not isinstance(summary, Mapping):
            raise TypeError(f"memory_outcomes takes outcome summaries (dicts), not {type(summary).__name__}: "
                            f"{summary!r:.80}")
        summary = dict(summary)
        seq = _seq_of(summary)
        if seq is not None and recorded.get(seq) == summary:
            continue  # recorded already
        if seq is None or seq <= last:
            seq = last + 1
        last, recorded[seq] = seq, {**summary, "seq": seq}
        added.append(recorded[seq])
    return (kept + added)[-max(OUTCOMES_KEPT, len(added)):]


class MemoryGateState(TypedDict, total=False):
    #: writes the agent proposes: MemoryWrite objects or dicts
    #: ({"content" | "value", "namespace", "key"?, "kind"?, "source"?, "id"?}); a node's list is
    #: appended to those not yet reviewed
    proposed_memories: Annotated[list[Any], ProposalQueue]
    #: one summary per reviewed write (id, namespace, key, text, state, action, category, score,
    #: reason, policy_hash; state "invalid" for a proposal that is not a valid memory write), then one
    #: per human decision (id, namespace, key, state, action "human:<type>", reviewer, reason); each
    #: numbered (seq) over the thread's history as it reaches the state, the newest OUTCOMES_KEPT kept
    #: (last_outcome_seq / outcomes_after read them, also from a thread checkpointed before numbering)
    memory_outcomes: Annotated[list[dict], _record_outcomes]
    #: ids of escalations waiting for ``human_review`` (interrupt mode)
    pending_reviews: Annotated[list[str], _replace]


def outcome_summary(o: GateOutcome) -> dict:
    return {
        "id": o.proposal.id, "namespace": list(o.proposal.namespace), "key": o.proposal.key,
        "text": o.proposal.text[:500], "state": o.state.value, "action": o.decision.action.value,
        "category": o.review.category, "score": o.review.score, "reason": o.decision.reason,
        "policy_hash": o.decision.policy_hash,
    }


def _error_without_input(error: Exception) -> str:
    """What was wrong with a proposal, for the log: pydantic's message quotes the proposed value (a memory's
    text, maybe a card number), which must not reach log collectors; its fields and reasons do."""
    if isinstance(error, ValidationError):
        # the models' own messages quote a bad key or namespace label (for the caller), and an agent (or an
        # injection) chooses those: "key 'api key sk-live-...' holds U+000A" reached the log whole
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'proposal'}: {_QUOTED.sub(_QUOTE_LEFT_OUT, e['msg'])}"
                         for e in error.errors(include_input=False, include_url=False))
    return str(error)[:200]  # the node's own messages, which name types and limits, not the text


#: a value quoted in a validation message (Python's repr of a string of two characters or more)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.){2,}'" + r'|"(?:[^"\\]|\\.){2,}"')
_QUOTE_LEFT_OUT = "'[left out of the log]'"


def _invalid_summary(item: Any, error: Exception) -> dict:
    """The outcome of a proposal that is not a valid memory write (nothing was journaled or stored)."""
    return {"id": None, "namespace": None, "key": None, "text": canonical_text(item)[:500], "state": "invalid",
            "action": "invalid", "category": None, "score": None,
            "reason": f"not a valid memory write: {error}"[:2000], "policy_hash": None}


def _to_write(item: Any, config: RunnableConfig | None, default_ns: tuple[str, ...] | None,
              agent_id: str, source: SourceKind, position: int = 0, queue_id: str | None = None) -> MemoryWrite:
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
    task_id = cfg.get(TASK_ID_KEY)
    # a queued proposal is the same write however often its review runs (a re-run after a failure, a run from a
    # checkpoint taken after it was queued, a subgraph given it); one read from a plain list (a state whose key is
    # not the queue channel) is the same within its review's task; outside a graph task the ids are random
    basis = (("queued", queue_id, canonical_text(item)) if queue_id
             else (str(task_id), str(position), canonical_text(item)) if task_id else None)
    if basis:
        data.setdefault("id", derived_id(*basis))
        data.setdefault("key", derived_id(*basis, "key"))
    if isinstance(data.get("provenance"), dict):
        # a MemoryWrite as a dict: how a checkpointer that does not rebuild gatekeeper's classes (strict msgpack)
        # returns one, or a model_dump(). Its provenance was set by code, as the object's is; replacing it with
        # the node's defaults would review a web page's text with the trust of the agent's own notes
        prov.update({k: v for k, v in data.pop("provenance").items() if v is not None})
    if "source" in data:  # the graph's own code says where the text came from
        prov["source"] = SourceKind(data.pop("source"))
    for k in ("tool_name", "url"):
        if k in data:
            prov[k] = data.pop(k)
    if data.get("namespace") is None:
        data["namespace"] = default_ns
    data["provenance"] = Provenance.model_validate(prov)
    return MemoryWrite.model_validate(data)


def _needs_default_namespace(item: Any) -> bool:
    """A proposal that names no namespace of its own (the node's default applies)."""
    if isinstance(item, MemoryWrite):
        return False
    return not (isinstance(item, Mapping) and item.get("namespace") is not None)


def make_review_node(gate: Gatekeeper, *, namespace: tuple[str, ...] = ("memories",), agent_id: str = "agent",
                     source: SourceKind = SourceKind.agent,
                     escalation_mode: EscalationMode | None = None) -> Callable[..., dict]:
    """The review node. ``namespace`` is where a proposal that names none is written; it may be a template
    whose parts are filled from the run's ``config["configurable"]`` or its context (``("memories",
    "{user_id}")``, ``gatekeeper.namespace_template``): a run that cannot fill it raises
    ``NamespaceTemplateError`` before reviewing anything, and its proposals stay queued for a run with the right
    config."""
    escalation_mode = escalation_mode_of(escalation_mode)  # a misspelt mode is refused here, not per write
    template = NamespaceTemplate(namespace)  # a malformed template fails here, when the graph is built

    def still_waiting(state: MemoryGateState) -> list[str]:
        """The escalations the state's ``pending_reviews`` names that still wait for a person here: the review runs
        again while the thread is paused on them when the state is edited as the proposing node
        (``update_state(..., as_node="agent")``), and its new list replaced them, so the thread ran to its end
        without asking and the decision sent next was taken by nothing."""
        waiting = list(state.get("pending_reviews") or [])
        if not waiting:
            return []
        rows = gate.registry.get_many(waiting)
        return [pid for pid in waiting if (row := rows.get(pid)) is not None
                and row["state"] == ProposalState.pending.value
                and row["escalation_mode"] == EscalationMode.interrupt.value]

    def review_memories(state: MemoryGateState, config: RunnableConfig) -> dict:
        items = state.get("proposed_memories") or []
        if not items:
            return {"pending_reviews": still_waiting(state)}
        namespace = template.resolve(config) if any(_needs_default_namespace(it) for it in items) else None
        queue_ids = list(getattr(items, "ids", None) or [None] * len(items))
        writes: dict[int, MemoryWrite] = {}
        invalid: dict[int, dict] = {}
        for position, item in enumerate(items):
            try:
                writes[position] = _to_write(item, config, namespace, agent_id, source, position,
                                             queue_ids[position])
            except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                # reported, not raised: raised, the proposal would stay queued and fail every later run of the
                # node, so the thread could never go on
                log.warning("review_node.invalid_proposal", position=position, error=_error_without_input(exc))
                invalid[position] = _invalid_summary(item, exc)
        mode = escalation_mode or gate.escalation_mode or EscalationMode(gate.policy.escalation.mode)
        try:
            reviewed_writes = gate.submit_many(list(writes.values()), escalation_mode=mode) if writes else []
            outcomes = dict(zip(writes, reviewed_writes))
        except ProposalIdConflict:
            # an id that names another write, or an erased one: the batch is refused whole, so the writes go one by
            # one (in order, as the batch would) and the refused one is reported; raised, it would stay queued and
            # fail every later run of the node
            outcomes = {}
            for position, write in writes.items():
                try:
                    (outcomes[position],) = gate.submit_many([write], escalation_mode=mode)
                except ProposalIdConflict as exc:
                    log.warning("review_node.id_conflict", position=position, proposal_id=write.id)
                    invalid[position] = _invalid_summary(items[position], exc)
        summaries = {position: outcome_summary(o) for position, o in outcomes.items()} | invalid
        pending = list(dict.fromkeys([*still_waiting(state), *(
            o.proposal.id for o in outcomes.values()
            if o.state is ProposalState.pending and o.decision.escalation_mode is EscalationMode.interrupt)]))
        # taken off the queue: those read (by id; the first n when some were queued before queue ids), whatever
        # else this step appends
        reviewed = queue_ids if None not in queue_ids else len(items)
        return {"proposed_memories": {REVIEWED: reviewed},
                "memory_outcomes": [summaries[position] for position in range(len(items))],
                "pending_reviews": pending}

    return review_memories


def hitl_request(gate: Gatekeeper, proposal_id: str, refused: str | None = None) -> dict:
    """The interrupt payload, shaped like HumanInTheLoopMiddleware's HITLRequest. For an escalation no longer in
    the registry (decided, then erased or pruned) a payload without action requests: the node asks again for
    every escalation it has resumed on each later resume, and LangGraph answers those from the checkpoint, so a
    paused thread must not fail on every resume once an earlier escalation of it is erased. ``refused``: why
    the last decision sent for this escalation was not applied (the node asks again; the payload says why).
    ``decided`` (in the payload): the escalation was decided elsewhere meanwhile; resuming reports that decision."""
    try:
        detail = ReviewService(gate).show(proposal_id, similar=0)
    except NotFoundError as exc:
        return {"action_requests": [], "review_configs": [], "proposal_id": proposal_id, "gone": str(exc)}
    extra: dict[str, Any] = {"refused": refused} if refused else {}
    if detail.state is not ProposalState.pending:
        # decided elsewhere (the review queue, the CLI) while the thread waited: any resume value steps the thread
        # on and reports that decision, so the request says so rather than asking a person to decide it
        extra["decided"] = {"state": detail.state.value, "resolution": detail.resolution,
                            "reviewer": detail.resolved_by, "reason": detail.resolved_reason}
    return extra | {
        "action_requests": [{
            "name": "store_memory",
            "args": {"proposal_id": proposal_id, "namespace": list(detail.namespace), "key": detail.key,
                     "value": detail.proposal.value},
            "description": (f"Memory write escalated for review: {detail.category or 'uncertain'} "
                            f"(score {'?' if detail.score is None else f'{detail.score:.2f}'}). "
                            f"{detail.decision.reason if detail.decision else ''}"),
        }],
        "review_configs": [{"action_name": "store_memory", "allowed_decisions": ["approve", "edit", "reject"]}],
        "proposal_id": proposal_id,
    }


def _names_no_proposal(resume: Any) -> bool:
    """Whether ``resume`` is a decision that does not say which escalation it is for (no ``proposal_id``)."""
    try:
        return _decision_from_resume(resume).proposal_id is None
    except ValueError:
        return False  # malformed: refused as such when applied


#: why a decision is not applied to a later pause when it is the one the pause before took, naming no proposal
_REPLAYED = ("this decision names no proposal and is the one the pause before took: LangGraph hands the last "
             "resume value to the next pause when a paused thread is run again with invoke(None) (langgraph#8837), "
             "so it is not applied to a write it was not sent for; resume with the request's proposal_id in it")


def _decision_from_resume(resume: Any) -> ReviewDecision:
    """The decision in a resume value; a malformed one is a ValueError (the node records it as invalid and
    the write stays pending; any other exception would fail the node, and LangGraph would replay the same
    bad resume value on every later resume of the thread)."""
    if isinstance(resume, dict) and "decisions" in resume:
        decisions = resume["decisions"]
        if not isinstance(decisions, (list, tuple)) or len(decisions) != 1:
            raise ValueError("resume one escalation at a time: {'decisions': [<one decision>]}")
        resume = decisions[0]
    if isinstance(resume, (list, tuple)):  # one decision per escalation, in the order of the pauses
        raise ValueError("resume one escalation at a time: Command(resume=<one decision>); the graph pauses "
                         "again for the next escalation")
    if isinstance(resume, str):
        resume = {"type": resume}
    if isinstance(resume, dict) and "channel" not in resume:
        resume = {**resume, "channel": "graph"}  # the application's resume value (the review app sends its own)
    return ReviewDecision.model_validate(resume)


_NO_VALUE = object()


def _tried_by(resume: Any) -> str | None:
    """The reviewer a refused resume value names (a decision, or HumanInTheLoopMiddleware's ``{"decisions":
    [one]}``), for the ``human:invalid`` outcome; None when it names none."""
    if isinstance(resume, dict) and isinstance(resume.get("decisions"), (list, tuple)) and resume["decisions"]:
        resume = resume["decisions"][0]
    name = resume.get("reviewer") if isinstance(resume, dict) else None
    return name.strip() or None if isinstance(name, str) else None

#: the name of the LangGraph task in which ``human_review`` applies each decision: ``stream_mode="updates"`` shows
#: each decision under it as soon as it is applied (``{HUMAN_DECISION_TASK: <its summary, without seq>}``)
HUMAN_DECISION_TASK = "human_review_decision"


def make_human_review_node(gate: Gatekeeper) -> Callable[..., dict]:
    service = ReviewService(gate)

    def outcome(row: dict, action: str, reason: str | None, reviewer: str | None = None) -> dict:
        proposal = row_proposal(row)
        return {"id": row["id"], "namespace": list(proposal.namespace), "key": proposal.key, "state": row["state"],
                "action": action, "reviewer": row["resolved_by"] or reviewer, "reason": reason}

    def apply(pid: str, resume: Any) -> dict:
        """Apply one resume value to its escalation; what the node reports for it."""
        try:
            # a decision that names another proposal is refused (ValueError): LangGraph can hand a resume value to
            # a later interrupt than the one it answered (a thread run again with invoke(None) replays the last
            # Command), and a decision must never land on another write
            service.decide(pid, _decision_from_resume(resume))
        except OtherStoreError as exc:
            # this graph's gate writes to another store than the write is for: asked again, the thread stays
            # paused on it (a gate over that store decides it), never run on past a write nobody stored
            return outcome(gate.registry.require(pid), "human:invalid", one_line(exc), _tried_by(resume))
        except ConflictError as exc:
            # decided already: meanwhile elsewhere (web queue, CLI), or by this node's earlier run of a thread that
            # paused before decisions were applied as tasks (its replayed value comes back here): report that one
            row = gate.registry.require(pid)
            if not row["resolution"]:  # being recorded or decided elsewhere right now: it stays pending
                return outcome(row, "human:conflict", str(exc))
        except (ValueError, ReviewPermissionError) as exc:
            # a malformed or forbidden resume leaves the write pending (never committed); the reason is one line a
            # UI can show (not pydantic's multi-line dump), and the outcome names who tried, where the value says
            return outcome(gate.registry.require(pid), "human:invalid", one_line(exc), _tried_by(resume))
        row = gate.registry.require(pid)
        return outcome(row, f"human:{row['resolution']}", row["resolved_reason"] or None)

    # LangGraph runs the node again from its start on each resume, and each interrupt() before the one resumed
    # returns its earlier resume value again. As a LangGraph task (the way LangGraph keeps a node's side effects
    # from being repeated on resume) each value is applied once: on a later run the task's result comes back from
    # the checkpoint. Applied again, a refused one (self-review) was refused and ledgered once more per resume.
    apply_once = task(name=HUMAN_DECISION_TASK)(apply)

    def human_review(state: MemoryGateState) -> dict:
        # the escalations in the same order, and for each the same interrupts, on every run of the node, so resume
        # values line up with them when LangGraph runs the node again after each resume: everything below is a
        # function of the resume values (and of the tasks' results, which come back from the checkpoint)
        results: list[dict] = []
        before: Any = _NO_VALUE  # what the pause before this one took
        for pid in state.get("pending_reviews") or []:
            refused: str | None = None
            while True:
                resume = interrupt(hitl_request(gate, pid, refused))
                if before is not _NO_VALUE and resume == before and _names_no_proposal(resume):
                    # a decision for another write, handed on by LangGraph: never applied to this one
                    result = outcome(gate.registry.require(pid), "human:invalid", _REPLAYED)
                else:
                    result = apply_once(pid, resume).result()
                before = resume
                results.append(result)
                if result["action"] != "human:invalid":
                    break
                # refused (malformed, the proposing agent reviewing itself, another proposal's decision): the write
                # stays pending and the graph pauses for it again, saying why, rather than running on without it
                refused = result["reason"]
        return {"pending_reviews": [], "memory_outcomes": results}

    return human_review


def add_memory_gate(builder: StateGraph, gate: Gatekeeper, *, after: str = START, then: str = END,
                    review_node: str = "review_memories", human_node: str = "human_review",
                    **node_kwargs: Any) -> StateGraph:
    _check_state_schema(builder)
    builder.add_node(review_node, make_review_node(gate, **node_kwargs))
    builder.add_node(human_node, make_human_review_node(gate))
    builder.add_edge(after, review_node)

    def route(state: MemoryGateState) -> str:
        return human_node if state.get("pending_reviews") else then

    builder.add_conditional_edges(review_node, route, [human_node, then])
    builder.add_edge(human_node, then)
    return builder


def _check_state_schema(builder: StateGraph) -> None:
    """Refuse, with what to do instead, a graph whose state declares one of the gate's keys otherwise than
    ``MemoryGateState`` (LangGraph would refuse it too, with "Channel ... already exists with a different
    type"). Such a key cannot work: ``proposed_memories`` with a reducer of the graph's own could not take the
    reviewed proposals off the queue, and without one, the first review would replace the queue."""
    gate_channels = StateGraph(MemoryGateState).channels
    for key, channel in gate_channels.items():
        own = builder.channels.get(key)
        if own is not None and own != channel:
            raise ValueError(
                f"the graph's state declares {key!r} as {_channel_kind(own)}; the memory gate's nodes need "
                f"MemoryGateState's {key!r} ({_channel_kind(channel)}). Declare the state as a subclass of "
                f"MemoryGateState (class MyState(MemoryGateState): ...), or leave "
                f"{', '.join(map(repr, gate_channels))} out of it: the gate's nodes add them.")


def _channel_kind(channel: Any) -> str:
    from langgraph.channels.binop import BinaryOperatorAggregate
    from langgraph.channels.last_value import LastValue

    if isinstance(channel, ProposalQueue):
        return "the proposal queue (gatekeeper.proposal_queue.ProposalQueue)"
    if isinstance(channel, BinaryOperatorAggregate):
        op = getattr(channel.operator, "__qualname__", None) or repr(channel.operator)
        module = getattr(channel.operator, "__module__", None)
        module = "operator" if module == "_operator" else module  # operator.add and friends live in _operator
        return f"a value with the reducer {module + '.' if module else ''}{op}"
    if isinstance(channel, LastValue):
        return "a value without a reducer (each update replaces it)"
    return f"a {type(channel).__name__} channel"


def build_gate_graph(gate: Gatekeeper, *, checkpointer=None, **node_kwargs: Any):
    """A compiled graph that only gates memory: invoke with {"proposed_memories": [...]}."""
    builder = StateGraph(MemoryGateState)
    add_memory_gate(builder, gate, **node_kwargs)
    return builder.compile(checkpointer=checkpointer)
