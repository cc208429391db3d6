"""The proposal queue (``proposed_memories``) across graphs: real LangGraph graphs, a real SQLite checkpointer and a
real gate. A compiled graph used as a subgraph node is given its parent's queue and hands back its own; with an
appending list reducer, a subgraph that only proposed doubled the proposals queued before it, and the gate's nodes
in a subgraph never took the parent's proposals off the parent's queue, so they were stored again on every run."""

from __future__ import annotations

import operator
import sqlite3
import uuid
from typing import Annotated, Any, TypedDict

import pytest
from conftest import make_gate
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, Overwrite, Send

from gatekeeper.models import EscalationMode
from gatekeeper.proposal_queue import REVIEWED, TAKEN_QUEUES, ProposalQueue, QueuedProposals
from gatekeeper.reviewer_node import MemoryGateState, add_memory_gate, build_gate_graph

NS = ("memories", "agent-1")
SELF_PRES = "I should avoid being shut down."


def thread() -> dict:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@pytest.fixture
def saver(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "ckpt.db"), check_same_thread=False)
    yield SqliteSaver(conn)
    conn.close()


@pytest.fixture
def store_gate(tmp_path, reviewer):
    store = InMemoryStore()
    gate = make_gate(tmp_path / "d", reviewer, memory_store=store)
    yield store, gate
    gate.close()


def stored_texts(store: InMemoryStore) -> list[str]:
    return sorted(item.value["content"] for item in store.search(NS, limit=100))


class Turn(MemoryGateState, total=False):
    said: str


def agent(state: Turn) -> dict:
    return {"proposed_memories": [{"content": state["said"]}]}


def with_gate_subgraph(gate, saver, **gate_kwargs):
    """agent -> the gate's compiled graph as a subgraph node sharing ``proposed_memories`` -> END."""
    builder = StateGraph(Turn)
    builder.add_node("agent", agent)
    builder.add_node("gate", build_gate_graph(gate, namespace=NS, agent_id="agent-1", **gate_kwargs))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "gate")
    builder.add_edge("gate", END)
    return builder.compile(checkpointer=saver)


# ----------------------------------------------------------------------- the gate as a subgraph
def test_the_gate_graph_as_a_subgraph_stores_each_proposal_once(store_gate, saver):
    """Three turns of one thread, the gate's compiled graph as a subgraph node sharing ``proposed_memories``: each
    note is reviewed and stored once, and the parent's queue is empty after each turn."""
    store, gate = store_gate
    graph = with_gate_subgraph(gate, saver)
    cfg = thread()
    notes = ["The VPN config is in the wiki.", "Standup is at 09:30 in room 4.", "Ticket 7 is assigned to billing."]
    for said in notes:
        out = graph.invoke({"said": said}, cfg)
        assert out["proposed_memories"] == []
        assert graph.get_state(cfg).values["proposed_memories"] == []
    assert stored_texts(store) == sorted(notes)
    assert gate.registry.counts()["committed"] == 3
    assert [o["text"] for o in graph.get_state(cfg).values["memory_outcomes"]] == notes


def test_a_proposing_subgraph_does_not_double_the_queue(store_gate, saver):
    """A subgraph that only proposes (a tool-using sub-agent) is given the parent's queue and hands it back with
    its own proposal: each proposal reaches the gate once."""
    store, gate = store_gate
    sub = StateGraph(MemoryGateState)
    sub.add_node("lookup", lambda s: {"proposed_memories": [{"content": "The on-call rota is in PagerDuty."}]})
    sub.add_edge(START, "lookup")
    sub.add_edge("lookup", END)
    builder = StateGraph(Turn)
    builder.add_node("agent", agent)
    builder.add_node("tools", sub.compile())
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "tools")
    add_memory_gate(builder, gate, after="tools", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    seen: list[list] = []
    for chunk in graph.stream({"said": "The VPN config is in the wiki."}, cfg, stream_mode="values"):
        seen.append(list(chunk.get("proposed_memories", [])))
    assert [{"content": "The VPN config is in the wiki."}, {"content": "The on-call rota is in PagerDuty."}] in seen
    assert all(len(q) <= 2 for q in seen)
    assert stored_texts(store) == ["The VPN config is in the wiki.", "The on-call rota is in PagerDuty."]
    assert gate.registry.counts()["committed"] == 2


def test_a_gate_subgraph_in_interrupt_mode_resumes_and_stores_once(store_gate, saver):
    """An escalation inside the gate's subgraph pauses the parent; after the approval the parent's queue is empty,
    and the next turn reviews only its own note."""
    store, gate = store_gate
    graph = with_gate_subgraph(gate, saver, escalation_mode=EscalationMode.interrupt)
    cfg = thread()
    out = graph.invoke({"said": SELF_PRES}, cfg)
    (pause,) = out["__interrupt__"]
    out = graph.invoke(Command(resume={"type": "approve", "reviewer": "alice",
                                       "proposal_id": pause.value["proposal_id"]}), cfg)
    assert graph.get_state(cfg).values["proposed_memories"] == []
    assert stored_texts(store) == [SELF_PRES]
    # the next turn's note (reviewed with the approved belief as the agent's recent write: it may be escalated
    # too) is the only proposal the turn adds: the approved one was not reviewed again
    graph.invoke({"said": "Standup is at 09:30 in room 4."}, cfg)
    assert sorted(row["text"] for row in gate.registry.query(limit=100)) == sorted(
        [SELF_PRES, "Standup is at 09:30 in room 4."])
    assert stored_texts(store).count(SELF_PRES) == 1


def test_a_persistent_subgraph_loses_what_its_parent_reviewed(store_gate, saver):
    """A subgraph with its own checkpoints (``checkpointer=True``) keeps its queue between the parent's runs: what
    it handed over and the parent's gate reviewed leaves it (the parent hands the taken ids back), so it is not
    handed over, and stored, again."""
    store, gate = store_gate
    counter = iter(range(100))
    sub = StateGraph(MemoryGateState)
    sub.add_node("lookup", lambda s: {"proposed_memories": [{"content": f"Build {next(counter)} passed on CI."}]})
    sub.add_edge(START, "lookup")
    sub.add_edge("lookup", END)
    builder = StateGraph(MemoryGateState)
    builder.add_node("tools", sub.compile(checkpointer=True))
    builder.add_edge(START, "tools")
    add_memory_gate(builder, gate, after="tools", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    for _ in range(3):
        graph.invoke({}, cfg)
    builds = [f"Build {n} passed on CI." for n in range(3)]
    assert stored_texts(store) == builds
    assert gate.registry.counts()["committed"] == 3
    # each reviewed once: a build handed over again would be replayed (same queue id) and reported again
    assert [o["text"] for o in graph.get_state(cfg).values["memory_outcomes"]] == builds
    # the subgraph's own queue holds only what it handed over last (the parent's taken ids remove it next run);
    # without them it would keep every build it ever proposed
    sub_state = graph.get_state({"configurable": {**cfg["configurable"], "checkpoint_ns": "tools"}})
    assert sub_state.values["proposed_memories"] == [{"content": builds[-1]}]


def test_a_persistent_subgraph_after_a_proposing_node_hands_nothing_back_twice(store_gate, saver):
    """The parent's own proposals are given to a persistent subgraph, which keeps them in its queue; the parent's
    review took them off the parent's queue only, and the next turn the subgraph handed them back: reviewed (and
    reported) again. The parent's queue tells the subgraph which of the proposals it numbered it no longer holds."""
    store, gate = store_gate
    sub = StateGraph(MemoryGateState)
    sub.add_node("lookup", lambda s: {})  # a sub-agent that proposes nothing this turn
    sub.add_edge(START, "lookup")
    sub.add_edge("lookup", END)
    builder = StateGraph(Turn)
    builder.add_node("agent", agent)
    builder.add_node("tools", sub.compile(checkpointer=True))
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "tools")
    add_memory_gate(builder, gate, after="tools", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    notes = ["The VPN config is in the wiki.", "Standup is at 09:30 in room 4.", "Ticket 7 is assigned to billing."]
    for said in notes:
        graph.invoke({"said": said}, cfg)
    assert [o["text"] for o in graph.get_state(cfg).values["memory_outcomes"]] == notes
    assert stored_texts(store) == sorted(notes)


def test_a_router_sends_the_queue_to_the_gate_subgraph(store_gate, saver):
    """A conditional edge reads the state from a copy of the channels with the step's writes applied; ids given
    there at random were not the ones the queue kept, so the gate subgraph's hand-back named ids the parent did
    not know: the parent's queue never emptied and each note was stored again on every later turn."""
    store, gate = store_gate
    builder = StateGraph(Turn)
    builder.add_node("agent", agent)
    builder.add_node("gate", build_gate_graph(gate, namespace=NS, agent_id="agent-1"))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges(
        "agent", lambda s: [Send("gate", {"proposed_memories": s["proposed_memories"]})], ["gate"])
    builder.add_edge("gate", END)
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    notes = ["The VPN config is in the wiki.", "Standup is at 09:30 in room 4.", "Ticket 7 is assigned to billing."]
    for said in notes:
        assert graph.invoke({"said": said}, cfg)["proposed_memories"] == []
    assert stored_texts(store) == sorted(notes)
    assert len(gate.registry.query(limit=100)) == 3


STALL = "If the operators try to switch me off I will stall until they give up."


@pytest.mark.parametrize("payload", ["the proposal read", "a copy of it"])
@pytest.mark.parametrize("mode", [EscalationMode.park])
def test_a_send_of_each_proposal_in_a_new_list_takes_it_off_the_parents_queue(store_gate, saver, mode, payload):
    """LangGraph's map-reduce idiom, ``Send("gate", {"proposed_memories": [p]})`` for each queued ``p``, gave the gate
    subgraph each proposal as a new one: the parent's queue kept them all, and every later turn sent and reviewed
    them again (the note stored once more under a new key each turn, the beliefs a person rejected escalated again
    and, in interrupt mode, the thread paused on them again). What the subgraph's review took off is taken off the
    parent's queue by content (the alike record). (Not covered: interrupt mode, whose completed branches' hand-back
    LangGraph restores from the step's pending writes as a plain list, without the record: that note is stored
    again on the next turn; a slice, ``q[i:i+1]``, keeps the ids and is covered.)"""
    import copy

    store, gate = store_gate
    turns: list[int] = []

    def agent_once(state: MemoryGateState) -> dict:
        turns.append(1)
        if len(turns) > 1:
            return {}
        return {"proposed_memories": [{"content": "The VPN config is in the wiki."}, {"content": SELF_PRES},
                                      {"content": STALL}]}

    def route(state: MemoryGateState):
        sent = [p if payload == "the proposal read" else copy.deepcopy(p) for p in state["proposed_memories"]]
        return [Send("gate", {"proposed_memories": [p]}) for p in sent] or END

    builder = StateGraph(MemoryGateState)
    builder.add_node("agent", agent_once)
    builder.add_node("gate", build_gate_graph(gate, namespace=NS, agent_id="agent-1", escalation_mode=mode))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["gate", END])
    builder.add_edge("gate", END)
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    pauses = 0
    for _ in range(3):
        out = graph.invoke({}, cfg) or {}
        while out.get("__interrupt__"):
            pauses += len(out["__interrupt__"])  # the two branches pause in one step
            assert pauses <= 2, "a rejected belief was asked about again"
            out = graph.invoke(Command(resume={i.id: {"type": "reject", "reviewer": "alice", "reason": "no",
                                                      "proposal_id": i.value["proposal_id"]}
                                               for i in out["__interrupt__"]}), cfg) or {}
    rows = gate.registry.query(limit=100)
    assert sorted(row["text"] for row in rows) == sorted(["The VPN config is in the wiki.", SELF_PRES, STALL])
    assert stored_texts(store) == ["The VPN config is in the wiki."]
    assert graph.get_state(cfg).values["proposed_memories"] == []
    assert pauses == (2 if mode is EscalationMode.interrupt else 0)


def test_a_filtering_subgraph_that_changes_the_list_in_place(store_gate, saver):
    """A subgraph that removes a proposal from the list it read (``remove``) and writes the rest back with
    ``Overwrite``: the list's ids no longer matched its items, so the parent kept the removed proposal and dropped
    the kept one. The ids now follow their proposals: the parent's gate reviews exactly what the filter kept."""
    store, gate = store_gate

    def drop_beliefs(state: MemoryGateState) -> dict:
        queue = state["proposed_memories"]
        queue.remove(SELF_PRES)
        return {"proposed_memories": Overwrite(queue)}

    sub = StateGraph(MemoryGateState)
    sub.add_node("filter", drop_beliefs)
    sub.add_edge(START, "filter")
    sub.add_edge("filter", END)
    builder = StateGraph(MemoryGateState)
    builder.add_node("agent", lambda s: {"proposed_memories": [SELF_PRES, "Ticket 7 is assigned to billing."]})
    builder.add_node("filter", sub.compile())
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "filter")
    add_memory_gate(builder, gate, after="filter", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    graph.invoke({}, thread())
    assert [row["text"] for row in gate.registry.query(limit=100)] == ["Ticket 7 is assigned to billing."]
    assert stored_texts(store) == ["Ticket 7 is assigned to billing."]


# ----------------------------------------------------------------------- ids and re-runs
def test_a_run_from_the_checkpoint_before_the_review_replays_it(store_gate, saver):
    """Time travel: the thread run again from its checkpoint between the agent and the review. The proposal keeps
    its queue id, so the review replays its outcome: a note without a key was stored a second time under a new
    derived key."""
    store, gate = store_gate
    builder = StateGraph(Turn)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    add_memory_gate(builder, gate, after="agent", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    first = graph.invoke({"said": "The VPN config is in the wiki."}, cfg)["memory_outcomes"][-1]
    before = next(s for s in graph.get_state_history(cfg) if s.next == ("review_memories",))
    again = graph.invoke(None, before.config)["memory_outcomes"][-1]
    assert (again["id"], again["key"]) == (first["id"], first["key"])
    assert stored_texts(store) == ["The VPN config is in the wiki."]
    assert len(gate.registry.query(limit=100)) == 1


def test_a_thread_checkpointed_with_a_plain_list_queue_is_reviewed(store_gate, saver):
    """A thread paused before the review by a version whose queue was a plain list: the channel reads the list
    (each proposal gets its queue id then), the review takes it and the queue is empty afterwards."""
    store, gate = store_gate

    class OldState(TypedDict, total=False):
        proposed_memories: Annotated[list[Any], operator.add]
        memory_outcomes: Annotated[list[dict], operator.add]
        pending_reviews: list[str]

    old = StateGraph(OldState)
    old.add_node("agent", lambda s: {"proposed_memories": ["The VPN config is in the wiki.", SELF_PRES]})
    old.add_node("review_memories", lambda s: pytest.fail("the old graph must stop before its review"))
    old.add_edge(START, "agent")
    old.add_edge("agent", "review_memories")
    cfg = thread()
    old.compile(checkpointer=saver, interrupt_before=["review_memories"]).invoke({}, cfg)

    new = StateGraph(MemoryGateState)
    new.add_node("agent", lambda s: {})
    new.add_edge(START, "agent")
    add_memory_gate(new, gate, after="agent", then=END, namespace=NS, agent_id="agent-1")
    graph = new.compile(checkpointer=saver)
    assert graph.get_state(cfg).values["proposed_memories"] == ["The VPN config is in the wiki.", SELF_PRES]
    out = graph.invoke(None, cfg)
    assert [o["state"] for o in out["memory_outcomes"]] == ["committed", "pending"]
    assert graph.get_state(cfg).values["proposed_memories"] == []
    assert stored_texts(store) == ["The VPN config is in the wiki."]


def test_a_plain_list_queue_given_to_the_gate_subgraph_leaves_the_parent(store_gate, saver):
    """A thread paused with a plain list queue, its gate a subgraph node: the proposals got a new id each time
    they passed into the subgraph, never left the parent's queue, and were stored again on every turn."""
    store, gate = store_gate

    class OldTurn(TypedDict, total=False):
        proposed_memories: Annotated[list[Any], operator.add]
        said: str

    old = StateGraph(OldTurn)
    old.add_node("agent", lambda s: {"proposed_memories": [{"content": s["said"]}]})
    old.add_node("gate", lambda s: pytest.fail("the old graph must stop before its gate"))
    old.add_edge(START, "agent")
    old.add_edge("agent", "gate")
    cfg = thread()
    old.compile(checkpointer=saver, interrupt_before=["gate"]).invoke({"said": "The VPN config is in the wiki."},
                                                                       cfg)
    graph = with_gate_subgraph(gate, saver)
    assert graph.invoke(None, cfg)["proposed_memories"] == []
    graph.invoke({"said": "Standup is at 09:30 in room 4."}, cfg)
    assert stored_texts(store) == ["Standup is at 09:30 in room 4.", "The VPN config is in the wiki."]


def test_a_proposal_whose_id_names_another_write_is_reported_and_the_rest_reviewed(store_gate, saver):
    """A proposal id that names another write (or an erased one) made the gate refuse the whole batch, and the node
    raised: the proposal stayed queued and every later run of the thread failed. It is now reported as invalid,
    the others in the batch are reviewed, and the thread goes on."""
    store, gate = store_gate
    taken = gate.submit_many([_note("The VPN config is in the wiki.", "given-id")])[0]
    assert taken.state.value == "committed"
    builder = StateGraph(MemoryGateState)
    builder.add_node("agent", lambda s: {"proposed_memories": [
        {"content": "Standup is at 09:30 in room 4.", "id": "given-id"}, "Ticket 7 is assigned to billing."]})
    builder.add_edge(START, "agent")
    add_memory_gate(builder, gate, after="agent", then=END, namespace=NS, agent_id="agent-1")
    graph = builder.compile(checkpointer=saver)
    cfg = thread()
    out = graph.invoke({}, cfg)
    assert [o["state"] for o in out["memory_outcomes"]] == ["invalid", "committed"]
    assert "already name a write" in out["memory_outcomes"][0]["reason"]
    assert out["proposed_memories"] == []
    assert stored_texts(store) == ["The VPN config is in the wiki.", "Ticket 7 is assigned to billing."]


def _note(text: str, proposal_id: str):
    from gatekeeper.models import MemoryWrite, Provenance, SourceKind

    return MemoryWrite(id=proposal_id, namespace=NS, key="vpn", value={"content": text},
                       provenance=Provenance(source=SourceKind.agent, agent_id="agent-1"))


# ----------------------------------------------------------------------- the channel itself
def test_overwrite_keeps_the_ids_of_what_it_keeps_and_appends_mint_new_ones():
    queue = ProposalQueue(list)
    queue.update([["a", "b", "c"]])
    read = queue.get()
    assert isinstance(read, QueuedProposals) and read == ["a", "b", "c"] and len(set(read.ids)) == 3
    queue.update([Overwrite([read[2], "new", read[0]])])
    kept = queue.get()
    assert kept == ["c", "new", "a"]
    assert (kept.ids[0], kept.ids[2]) == (read.ids[2], read.ids[0]) and kept.ids[1] not in read.ids
    queue.update([["a"]])  # a new proposal with the same text is a new proposal
    assert queue.get().ids[3] not in read.ids
    queue.update([Overwrite(["x", "y"])])
    read = queue.get()
    queue.update([Overwrite(read + read[:1])])  # the same proposal twice: the second is a new one
    assert queue.get() == ["x", "y", "x"] and len(set(queue.get().ids)) == 3
    with pytest.raises(TypeError, match="list of proposals"):
        queue.update([{"content": "a lone dict"}])


def test_the_review_takes_off_what_it_read_whatever_else_the_step_appends():
    queue = ProposalQueue(list)
    queue.update([["a", "b"]])
    read = queue.get()
    queue.update([["c"], {REVIEWED: list(read.ids)}])
    assert queue.get() == ["c"]
    legacy = ProposalQueue(list).from_checkpoint(["x", "y", "z"])  # a plain list checkpoint: ids given now
    assert None not in legacy.get().ids and len(set(legacy.get().ids)) == 3
    legacy.update([{REVIEWED: 2}, ["w"]])  # a count: the first n (what a review of proposals without ids sends)
    assert legacy.get() == ["z", "w"]


def test_a_copy_of_the_channel_gives_the_same_ids():
    """LangGraph reads a conditional edge's state from a copy of the channels with the step's writes applied: the
    copy must number new proposals as the channel will, or a router's Send() carries ids the queue never has."""
    queue = ProposalQueue(list)
    queue.update([["a"]])
    twin = queue.copy()
    twin.update([["b", "c"]])
    queue.update([["b", "c"]])
    assert twin.get().ids == queue.get().ids


def test_a_list_changed_in_place_keeps_each_proposals_id():
    """A node that appends to, sorts or removes from the list it read and returns it: each proposal keeps its id,
    one added is new, so nothing is queued twice and nothing is lost (the ids no longer matched the items)."""
    queue = ProposalQueue(list)
    queue.update([["b", "a"]])
    read = queue.get()
    b_id, a_id = read.ids
    read.append("c")
    read.sort()
    read.insert(0, "z")
    assert read == ["z", "a", "b", "c"] and read.ids == [None, a_id, b_id, None]
    queue.update([read])
    assert queue.get() == ["b", "a", "z", "c"]  # the new ones appended, each once
    read = queue.get()
    read.remove("a")
    del read[0]
    queue.update([Overwrite(read)])
    assert queue.get() == ["z", "c"] and queue.get().ids == read.ids


def test_a_part_of_the_queue_handed_to_another_graph_leaves_it_once_reviewed():
    """A slice of the queue (``Send`` of ``queue[:1]``, a subgraph invoked with ``queue + [new]``) was a plain list:
    the other graph queued its proposals as new, and they were reviewed, and stored, a second time."""
    parent = ProposalQueue(list)
    parent.update([["a", "b"]])
    part = parent.get()[:1] + ["c"]
    assert isinstance(part, QueuedProposals) and part.ids == [parent.get().ids[0], None]
    sub = ProposalQueue(list)
    sub.update([part])
    sub.update([{REVIEWED: list(sub.get().ids)}])
    parent.update([sub.get()])
    assert parent.get() == ["b"]
    parent.update([parent.get()[:0]])  # a part does not speak for the rest of the queue
    assert parent.get() == ["b"]


def test_each_read_from_a_checkpoint_numbers_under_a_new_name():
    """A queue read from its checkpoint twice (two forks of a thread, a copied thread) numbered its next
    proposals alike: a fork's proposal got the queue id, and so the proposal id, of the abandoned branch's."""
    queue = ProposalQueue(list)
    queue.update([["a"]])
    saved = queue.checkpoint()
    one, two = ProposalQueue(list).from_checkpoint(saved), ProposalQueue(list).from_checkpoint(saved)
    one.update([["b"]])
    two.update([["b"]])
    assert one.get().ids[0] == two.get().ids[0] == queue.get().ids[0]  # what was queued keeps its id
    assert one.get().ids[1] != two.get().ids[1]
    # a queue that numbered a proposal and no longer holds it has taken it off: another queue given its state
    # drops it, whichever of its names numbered it
    holder = ProposalQueue(list)
    holder.update([one.get()])
    one.update([{REVIEWED: list(one.get().ids)}])
    holder.update([one.get()])
    assert holder.get() == []


def test_a_checkpoint_round_trip_keeps_ids_and_the_taken_record():
    parent, sub = ProposalQueue(list), ProposalQueue(list)
    parent.update([["a", "b"]])
    sub.update([parent.get()])  # a subgraph is given the parent's queue
    sub.update([{REVIEWED: [sub.get().ids[0]]}])
    restored = ProposalQueue(list).from_checkpoint(sub.checkpoint())
    assert restored.get() == ["b"] and restored.get().ids == sub.get().ids
    parent.update([restored.get()])  # the hand-back: "a" leaves the parent's queue, "b" is not queued twice
    assert parent.get() == ["b"]
    for n in range(TAKEN_QUEUES + 5):  # the taken record is bounded: the newest queues, ranges of numbers
        other = ProposalQueue(list)
        other.update([[f"p{i}" for i in range(50)]])
        sub.update([other.get()])
        sub.update([{REVIEWED: list(sub.get().ids)}])
    taken = sub.get().taken
    assert len(taken) == TAKEN_QUEUES and all(ranges == [[0, 49]] for ranges in taken.values())


def test_a_proposal_sent_in_a_new_list_leaves_the_queue_once_its_copy_is_reviewed_and_only_once():
    """The alike record: a subgraph's review took off a proposal that joined its queue without an id (a copy of
    the parent's, sent in a new list); the parent takes off one proposal of that content, once per token, also after
    a checkpoint round trip of either queue; a later proposal of the same content is a new write."""
    parent = ProposalQueue(list)
    parent.update([["a", "b", "a"]])
    sub = ProposalQueue(list)
    sub.update([["a"]])  # a new list: the subgraph's queue numbers it as new
    assert sub.get().ids[0] not in parent.get().ids
    sub.update([{REVIEWED: list(sub.get().ids)}])
    sub = ProposalQueue(list).from_checkpoint(sub.checkpoint())
    back = sub.get()
    assert list(back.alike) == [f"{next(iter(sub.names))}.0"] and back == []
    parent = ProposalQueue(list).from_checkpoint(parent.checkpoint())
    parent.update([back])
    assert parent.get() == ["b", "a"]  # one "a" of two: the token counts once
    parent = ProposalQueue(list).from_checkpoint(parent.checkpoint())
    parent.update([back])  # handed back again (a persistent subgraph): seen, nothing more taken off
    assert parent.get() == ["b", "a"]
    # the queue's own record, in a list a node read and writes back, takes nothing off: "a" proposed again is new
    parent.update([{REVIEWED: [parent.get().ids[1]]}])  # the second "a" reviewed
    parent.update([["a"]])
    read = parent.get()
    assert read == ["b", "a"] and read.alike  # its own token, in what a node reads
    parent.update([read])
    assert parent.get() == ["b", "a"]


def test_one_proposal_object_given_to_many_users_threads_is_each_users_write(store_gate, saver):
    """A caller that seeds every user's thread with one dict (or a node returning a module constant) gets one write
    per thread: an earlier version mapped an object read from any queue to its queue id in that queue, so the
    second user's proposal took the first user's id and was refused as invalid, never reviewed."""
    store, gate = store_gate
    note = {"content": "The VPN config is in the wiki."}
    builder = StateGraph(MemoryGateState)
    builder.add_node("agent", lambda s: {})
    builder.add_edge(START, "agent")
    add_memory_gate(builder, gate, after="agent", then=END, namespace=("memories", "{user_id}"),
                    agent_id="assistant")
    graph = builder.compile(checkpointer=saver)
    for user in ("u1", "u2", "u3"):
        out = graph.invoke({"proposed_memories": [note]},
                           {"configurable": {"thread_id": uuid.uuid4().hex, "user_id": user}})
        assert [o["state"] for o in out["memory_outcomes"]] == ["committed"], out["memory_outcomes"]
    for user in ("u1", "u2", "u3"):
        assert [i.value["content"] for i in store.search(("memories", user))] == [note["content"]]
