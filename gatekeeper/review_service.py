"""The human review queue's service layer, shared by the CLI, the web queue and
the LangGraph resume path.

A pending (escalated) proposal is decided exactly once:

* ``approve``  commit the proposal as it was proposed
* ``edit``     commit an edited value (the original stays on record)
* ``reject``   quarantine it (a reason is required)

The agent that proposed a memory can never approve its own escalation, a
decided item cannot be decided again (``ConflictError``), and every decision is
written to the ledger with who decided and why.

``submit_decision`` is the one entry point for people (CLI, web queue, JSON
API): for an *interrupt*-mode escalation whose LangGraph thread is paused on it,
and when the service was given that graph (``ReviewService(gate,
resume_graph=graph)``), it resumes the thread with the decision, and the graph's
``human_review`` node applies it through ``decide`` (once); otherwise (parked
escalations, no graph, the thread is not paused on this item) it calls
``decide`` directly.

A resumed thread goes on with the rest of the agent's run (model calls, tools:
seconds or minutes). That run happens in a background thread of the service:
``submit_decision`` returns as soon as the node has applied the decision, so a
reviewer's request never waits for the agent, and other reviewers' decisions are
not held up behind it. One run per agent thread at a time: a decision for an
item of a thread that is still running is applied directly, and the running
resume steps the thread past that item's interrupt when it gets there.
``resume_runs`` reports the runs in progress and how the last ones ended;
``wait_for_resumes`` waits for them (the web app does at shutdown).

A graph with ``async def`` nodes is resumed too: a run calls ``graph.invoke``
and, once LangGraph's sync API refuses an async node, goes on from there with
``graph.ainvoke``: on the event loop the graph's checkpointer (or store) is
bound to (``AsyncSqliteSaver``: the application's, which must be running, with
``submit_decision`` called off it), else on a loop of the run's own.

A resumed thread runs with the configurable values of the run that paused it
(``user_id``, ``agent_id``...: LangGraph keeps them in the checkpoint), but
LangGraph keeps no run's runtime context (``context_schema``,
``graph.invoke(..., context=...)``). A graph whose nodes read it (a namespace
template filled from the context, ``runtime.context`` in the agent's nodes) is
resumed with the context ``resume_context(thread_id, configurable)`` builds;
when that function raises, the decision is applied directly and the thread stays
paused on it, so nothing runs without its context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, Field, field_validator, model_validator

from gatekeeper import gate as _gate_module
from gatekeeper.gate import DECISION_REFUSED, EXPIRY_REFUSED, RELEASE_REFUSED, Gatekeeper, release_request
from gatekeeper.hidden_chars import first_unshown, hidden_in
from gatekeeper.ledger import canonical_json
from gatekeeper.log_setup import get_logger
from gatekeeper.models import (
    EXPIRY_REVIEWER, MAX_REASON_CHARS, Decision, MemoryWrite, ProposalState, ReviewResult, as_utc, utcnow,
    whole_number)
from gatekeeper.registry import (
    ConflictError,
    NotFoundError,
    deletion_reference,
    owner_alive,
    process_token,
    row_decision,
    row_proposal,
    row_review,
    text_wording,
)
from gatekeeper.store_identity import where_to_decide

__all__ = ["ReviewService", "ReviewDecision", "QueueItem", "QueueItemDetail", "SubmittedDecision", "ResumeRun",
           "BulkOutcome", "ConflictError", "NotFoundError", "ReviewPermissionError", "MAX_BULK_DECISIONS",
           "ResumeContext"]

log = get_logger("gatekeeper.review")

#: ``resume_context(thread_id, configurable)``: the run context (LangGraph's ``context_schema``) to resume a paused
#: thread with, built from its thread id and the configurable values restored from its checkpoint; None for none
ResumeContext = Callable[[str, dict], Any]

#: how many interrupts for already-decided items one resume may step past
_MAX_ADVANCE = 64
#: how often submit_decision looks whether a resumed thread has applied the decision
_POLL_S = 0.01
#: finished background resumes ReviewService.resume_runs remembers
_KEEP_FINISHED = 50
#: the largest minimum age a queue listing accepts (about 114 years; more overflows a date)
MAX_AGE_HOURS = 1_000_000.0
#: the most escalations one ``decide_many`` call decides (a page of the queue is at most 1,000 items; a reviewer
#: deciding more at once decides what they cannot have read)
MAX_BULK_DECISIONS = 200


class ReviewPermissionError(PermissionError):
    pass


class ReviewDecision(BaseModel):
    """A human decision, in the shape of LangChain's HumanInTheLoopMiddleware decisions."""

    type: Literal["approve", "edit", "reject"]
    reviewer: str = Field(default="human", min_length=1, max_length=256)
    #: the escalation the decision is for (the ``proposal_id`` of the interrupt's request). Optional; when given,
    #: the ``human_review`` node refuses to apply the decision to any other escalation (LangGraph can hand a
    #: resume value to a later interrupt of the thread than the one it was meant for)
    proposal_id: str | None = Field(default=None, min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    #: for ``edit``: the new memory value (dict) or text (str)
    edited_value: dict[str, Any] | str | None = None
    #: the door the decision came through, for the ledger (``review.resolved``): ``web`` (a logged-in page),
    #: ``api`` (a bearer token), ``cli``, ``graph`` (a LangGraph resume value from the application), ``expiry``,
    #: ``carried`` (a person's approval carried over a store retry), ``code`` (the Python API). Set by the code
    #: that takes the decision (the web app sets its own, whatever a body says); an examiner could not tell an
    #: unauthenticated CLI claim from a logged-in web decision
    channel: Literal["web", "api", "cli", "graph", "expiry", "carried", "code"] = "code"
    #: for ``cli``: the operating-system user who ran the command
    os_user: str | None = Field(default=None, max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _hitl_shapes(cls, data: Any) -> Any:
        # accept {"type": "edit", "edited_action": {"args": {"value": ...}}} and
        # {"type": "reject", "message": "..."} as HumanInTheLoopMiddleware sends them. A malformed shape is a
        # ValueError (a validation error), never another exception: the human_review node turns a ValueError
        # into "human:invalid", while anything else would fail the node, and LangGraph would replay the same
        # resume value on every later resume of that thread
        if not isinstance(data, dict):
            return data
        try:
            return _from_hitl_shape(data)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - see above
            raise ValueError(f"malformed decision ({type(exc).__name__}: {exc})") from None

    @field_validator("reviewer")
    @classmethod
    def _named(cls, reviewer: str) -> str:
        # stripped and not blank, as an operator's name is (a release, a retry, an erasure): the row and the
        # ledger name the person who decided, and a name with spaces around it is not found by that name
        reviewer = reviewer.strip()
        if not reviewer:
            raise ValueError("a decision needs the reviewer's name, for the ledger")
        return reviewer

    @model_validator(mode="after")
    def _complete(self) -> "ReviewDecision":
        if self.type == "reject" and not (self.reason and self.reason.strip()):
            raise ValueError("a rejection needs a reason")
        if self.type == "edit" and self.edited_value in (None, "", {}):
            raise ValueError("an edit needs the edited memory value")
        if self.type != "edit" and self.edited_value is not None:
            # an approval commits the memory as proposed and a rejection commits nothing: an edited value sent
            # with either was dropped without a word, so a client that meant an edit committed the original
            raise ValueError(f"a decision of type {self.type!r} takes no edited value: send type 'edit' to "
                             "commit the edited memory")
        return self


def _from_hitl_shape(data: dict) -> dict:
    data = dict(data)
    for name in data:
        # a misspelt proposal id ("proposalId", "proposal") was ignored as an unknown field, silently dropping
        # the check that the decision lands on the write it was sent for
        if name != "proposal_id" and "".join(c for c in str(name).lower() if c.isalpha()) in ("proposalid",
                                                                                            "proposal"):
            raise ValueError(f"unknown field {name!r}: the escalation's id goes in 'proposal_id'")
    if "edited_action" in data and "edited_value" not in data:
        action = data.pop("edited_action")
        if action is None:
            action = {}
        if not isinstance(action, dict):
            raise ValueError("edited_action must be an object: {'args': {'value': <the edited memory>}}")
        args = action.get("args", {})
        if not isinstance(args, dict):
            raise ValueError("edited_action.args must be an object holding the edited 'value' (or 'content')")
        data["edited_value"] = args.get("value", args.get("content"))
        # the request's args carry its proposal_id, and a UI that edits them sends it back: it names the write
        echoed = args.get("proposal_id")
        if echoed is not None:
            if data.get("proposal_id") not in (None, echoed):
                raise ValueError(f"edited_action.args names proposal {echoed!r}, the decision "
                                 f"{data['proposal_id']!r}: which write is it for?")
            data["proposal_id"] = echoed
    if "message" in data and "reason" not in data:
        data["reason"] = data.pop("message")
    return data


class QueueItem(BaseModel):
    id: str
    state: ProposalState
    namespace: tuple[str, ...]
    key: str
    agent_id: str
    thread_id: str | None
    source: str
    category: str | None
    score: float | None
    text: str
    created_at: datetime
    deadline: datetime | None
    overdue: bool
    escalation_mode: str | None
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_reason: str | None = None
    resolved_at: datetime | None = None
    version: int = 0
    #: for an approval or edit that was not written to memory because the agent wrote (or deleted) the same
    #: key after proposing this: the id of that later committed proposal, or ``memory.deleted:<ledger seq>``
    superseded_by: str | None = None
    #: the part of the memory the classifier scored it by, when that is not its whole text (a sentence of a long
    #: note, decoded content): what the queue shows beside the memory's start (``ReviewResult.deciding_text``)
    deciding_text: str | None = None
    #: the memory store this write is for, when the gate serving the queue writes to another
    #: (``Gatekeeper.writes_to``): approving or editing it here is refused, rejecting it is not
    other_store: str | None = None

    @property
    def releasable(self) -> bool:
        """An admin may send it to the review queue (``Gatekeeper.release_to_review``), as far as the item tells:
        quarantined by the gate, or an escalation that expired unreviewed, and not retried or released since."""
        from gatekeeper.gate import releasable

        return releasable({"id": self.id, "state": self.state.value, "resolved_by": self.resolved_by,
                           "resolution": self.resolution, "superseded_by": self.superseded_by})


class QueueItemDetail(QueueItem):
    proposal: MemoryWrite
    review: ReviewResult | None
    decision: Decision | None
    similar_committed: list[dict] = Field(default_factory=list)


class SubmittedDecision(BaseModel):
    """What ``submit_decision`` did."""

    item: QueueItem
    #: ``graph``: the paused LangGraph thread was resumed and its human_review node
    #: applied the decision; ``direct``: ReviewService.decide applied it
    via: Literal["direct", "graph"]
    thread_id: str | None = None
    #: set when the thread was resumed but raised before the answer was given, could
    #: not apply the decision (it was then applied directly), or had not applied it
    #: within ``ReviewService.resume_wait_s`` (it still runs and applies it)
    warning: str | None = None


class BulkOutcome(BaseModel):
    """What ``decide_many`` (or ``release_many``) did with one of the proposals it was given."""

    proposal_id: str
    #: ``decided`` (``decide_many``) or ``released`` (``release_many``); or why not: ``not_found`` (no such
    #: proposal), ``conflict`` (decided already, changed since the version given, being decided right now;
    #: released already, not the gate's quarantine, its key changed since), ``forbidden`` (the reviewer or
    #: operator is the proposing agent), ``invalid`` (an approval of a memory with characters a reader cannot
    #: see, or one the store cannot take)
    status: Literal["decided", "released", "not_found", "conflict", "forbidden", "invalid"]
    #: the item after the decision (``decided``), or the new queue item (``released``); None otherwise
    item: QueueItem | None = None
    via: Literal["direct", "graph"] | None = None
    warning: str | None = None
    #: why it was not decided (or released)
    error: str | None = None


class ResumeRun(BaseModel):
    """A paused agent thread resumed with a decision, running (or run) in the background."""

    thread_id: str
    proposal_id: str
    reviewer: str
    started_at: datetime
    finished_at: datetime | None = None
    #: what the rest of the agent's run raised (or the stepping past decided items), if anything
    error: str | None = None


class ReviewService:
    def __init__(self, gate: Gatekeeper, resume_graph: Any = None, *, resume_wait_s: float = 30.0,
                 resume_context: ResumeContext | None = None):
        self.gate = gate
        #: a compiled LangGraph graph (with the checkpointer the agents use) whose
        #: paused threads are resumed by submit_decision
        self.resume_graph = resume_graph
        #: builds the LangGraph run context (``graph.invoke(..., context=...)``) a resumed thread runs with, from
        #: its thread id and restored configurable values; LangGraph keeps no run's context in its checkpoints
        self.resume_context = resume_context
        #: how long submit_decision waits for a resumed thread's node to apply the decision
        self.resume_wait_s = resume_wait_s
        self._submit_lock = threading.RLock()
        self._runs_lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, ResumeRun]] = {}
        self._finished: deque[ResumeRun] = deque(maxlen=_KEEP_FINISHED)  # newest last
        #: ``calls``: how the run in this worker thread calls its graph (``_graph_calls``)
        self._run_local = threading.local()

    # ---------------------------------------------------- background resumes
    def resume_runs(self) -> list[ResumeRun]:
        """The resumed threads still running, then the last finished ones (newest first)."""
        with self._runs_lock:
            running = [run.model_copy() for _, run in self._running.values()]
            return running + [run.model_copy() for run in reversed(self._finished)]

    def wait_for_resumes(self, timeout: float | None = None) -> bool:
        """Wait until no resumed thread is running (new ones started meanwhile too); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._runs_lock:
                threads = [t for t, _ in self._running.values()]
            if not threads:
                return True
            if any(t.ident is None for t in threads):  # registered, about to start: it cannot be joined yet
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
                continue
            for t in threads:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    return False

    # ------------------------------------------------------------------- reads
    def list(self, *, state: ProposalState | str | None = ProposalState.pending, agent_id: str | None = None,
             namespace_prefix: tuple[str, ...] | None = None, category: str | None = None,
             min_age_hours: float | None = None, overdue_only: bool = False,
             limit: int = 100, offset: int = 0, newest_first: bool = False,
             text: str | None = None, alike: str | None = None) -> list[QueueItem]:
        """Proposals in ``state`` matching every filter given. ``min_age_hours``: a finite number of hours,
        0 to ``MAX_AGE_HOURS`` (ValueError otherwise); ``text``: the memory text contains it, ignoring case;
        ``alike``: a proposal id (NotFoundError when unknown): memories worded as its memory is, numbers, case,
        punctuation and spacing aside (``registry.text_wording``: one write an agent stored many times with a
        counter in it), that proposal included."""
        state, namespace_prefix = _listing(state, namespace_prefix, limit, offset)
        now = utcnow()
        wording = text_wording(self.gate.registry.require(alike)["text"]) if alike else None
        rows = self.gate.registry.query(
            state=state, agent_id=agent_id, namespace_prefix=namespace_prefix, category=category,
            older_than=_older_than(now, min_age_hours), text_contains=text, wording=wording,
            overdue_at=now if overdue_only else None, limit=limit, offset=offset, newest_first=newest_first)
        return [self._item(r, now) for r in rows]

    def decided(self, *, reviewer: str | None = None, agent_id: str | None = None,
                namespace_prefix: tuple[str, ...] | None = None, category: str | None = None,
                min_age_hours: float | None = None, limit: int = 100, offset: int = 0,
                text: str | None = None) -> list[QueueItem]:
        """Escalations a person has decided, most recent decision first; the filters are those of ``list``
        (``reviewer``: decided by that account)."""
        _, namespace_prefix = _listing(None, namespace_prefix, limit, offset)
        now = utcnow()
        rows = self.gate.registry.query(
            decided=True, reviewer=reviewer, agent_id=agent_id, namespace_prefix=namespace_prefix,
            category=category, older_than=_older_than(now, min_age_hours), limit=limit, offset=offset,
            text_contains=text)
        return [self._item(r, now) for r in rows]

    def counts(self) -> dict[str, int]:
        out = self.gate.registry.counts()
        out["overdue"] = self.gate.registry.pending_summary(utcnow())[0]
        return out

    def show(self, proposal_id: str, *, similar: int = 3) -> QueueItemDetail:
        row = self.gate.registry.require(proposal_id)
        item = self._item(row, utcnow())
        proposal = row_proposal(row)
        sims: list[dict] = []
        if similar:
            try:
                # the write's own namespace: a reviewer deciding alice's memory is not shown bob's
                for it in self.gate.similar_committed(proposal, similar):
                    sims.append({"namespace": list(it.namespace), "key": it.key, "value": it.value,
                                 "score": getattr(it, "score", None)})
            except Exception:  # noqa: BLE001 - context only
                sims = []
        return QueueItemDetail(**item.model_dump(), proposal=proposal, review=row_review(row),
                               decision=row_decision(row), similar_committed=sims)

    def item(self, proposal_id: str) -> QueueItem:
        """One proposal as the queue lists it (NotFoundError when there is none)."""
        return self._item(self.gate.registry.require(proposal_id), utcnow())

    def bulk_approval_problem(self, proposal_id: str, expected_version: int | None, reviewer: str) -> str | None:
        """Why ``decide_many`` would not approve this escalation for ``reviewer`` (for a page that shows what a
        bulk approval would commit before it is confirmed), or None when it would, as things stand now."""
        row = self.gate.registry.get(proposal_id)
        problem = _bulk_problem(row, expected_version, reviewer)
        if problem is not None:
            return problem
        if not self.gate.writes_to(row):
            return (f"to be stored in another memory store than this server's ({row['store']}). "
                    f"{where_to_decide(row['store'])}")
        if _hidden_in_value(row):
            return "it holds characters a reader cannot see: approve it on its own page, after reading it whole"
        return None

    def bulk_rejection_problem(self, proposal_id: str, expected_version: int | None, reviewer: str) -> str | None:
        """Why ``decide_many`` would not reject this escalation for ``reviewer`` (for the page that lists what a
        bulk rejection would quarantine before it is confirmed), or None when it would, as things stand now."""
        return _bulk_problem(self.gate.registry.get(proposal_id), expected_version, reviewer)

    def overdue(self) -> list[QueueItem]:
        return self.list(overdue_only=True)

    def _item(self, row: dict, now: datetime) -> QueueItem:
        deadline = datetime.fromisoformat(row["deadline"]) if row["deadline"] else None
        return QueueItem(
            id=row["id"], state=ProposalState(row["state"]), namespace=tuple(_ns(row["namespace"])),
            key=row["key"], agent_id=row["agent_id"], thread_id=row["thread_id"], source=row["source"],
            category=row["category"], score=row["score"], text=row_proposal(row).text,
            created_at=datetime.fromisoformat(row["created_at"]), deadline=deadline,
            overdue=bool(deadline and row["state"] == "pending" and deadline < now),
            escalation_mode=row["escalation_mode"], resolution=row["resolution"],
            resolved_by=row["resolved_by"], resolved_reason=row["resolved_reason"],
            resolved_at=datetime.fromisoformat(row["resolved_at"]) if row["resolved_at"] else None,
            version=row["version"], superseded_by=row.get("superseded_by"), deciding_text=_deciding_text(row),
            other_store=None if self.gate.writes_to(row) else row["store"],
        )

    # ------------------------------------------------------------------ writes
    def decide(self, proposal_id: str, decision: ReviewDecision | dict, *,
               expected_version: int | None = None) -> QueueItem:
        """Apply a person's decision to a pending proposal (registry, memory store, ledger).

        Refused before anything is recorded: a malformed decision or edited value (ValueError), self-review
        (ReviewPermissionError), a proposal not pending or changed since ``expected_version``, or one this
        process is working on right now (ConflictError), an approval or edit of a write journaled for another
        memory store than this gate's (``OtherStoreError``, a ConflictError: ``Gatekeeper.writes_to``), a closed
        gate (``GateClosedError``). An approval or edit
        whose key the agent wrote or deleted after proposing it is recorded without writing the memory store
        (``superseded_by``): an old escalation never rolls back a newer memory.

        A decision in progress when the gate is closed finishes first: ``Gatekeeper.close`` waits for it as for a
        write (``Gatekeeper._admitted``). One after ``close()`` is refused: a closed gate's registry and ledger
        reopen on their next use, and its store refuses the commit (an approval would be quarantined as a store
        failure)."""
        decision = _decision_for(proposal_id, decision)
        _check_version_given(expected_version)
        with self.gate._admitted(DECISION_REFUSED):  # noqa: SLF001 - the gate's admission of changes
            return self._decide(proposal_id, decision, expected_version)

    def _decide(self, proposal_id: str, decision: ReviewDecision, expected_version: int | None) -> QueueItem:
        row = self.gate.registry.require(proposal_id)
        proposal = row_proposal(row)
        self._refuse_self_review(proposal_id, proposal, decision)
        final_value = _final_value(proposal, decision)
        new_state = ProposalState.quarantined if decision.type == "reject" else ProposalState.committed

        # in flight from here to `ledgered`: a recover() in this process leaves the proposal alone (it would
        # otherwise finish the same decision a second time)
        with _deciding(proposal_id):
            row = self.gate.registry.require(proposal_id)
            _check_pending(row, expected_version)
            _check_name_shows(decision)
            if new_state is ProposalState.committed:
                self.gate.refuse_another_store(row)  # the memory goes to the agent's store or nowhere
            if not row["ledgered"]:
                self._ledger_escalation(row)
            # the check for a later commit or delete of the key and the store write, under the key's lock:
            # the gate's own commits and deletes of the key take it too, so they land before the check (and
            # supersede this decision) or after the write (and overwrite it), never in between
            policy = self.gate.policy  # the policy in force at the decision: its hash in the row, both in the ledger
            with self.gate.key_locks([(proposal.namespace, proposal.key)]):
                deleted = self._deleted_since(row) if new_state is ProposalState.committed else None
                row = self.gate.registry.resolve(
                    proposal_id, new_state=new_state, resolution=decision.type, reviewer=decision.reviewer,
                    reason=decision.reason or "", final_value=final_value, expected_version=expected_version,
                    superseded_by=deleted, policy_hash=policy.hash, channel=decision.channel,
                    os_user=decision.os_user)
                superseded = row["superseded_by"]
                if new_state is ProposalState.committed and not superseded:
                    self.gate._apply_commit(proposal, final_value, row_decision(row), None)  # noqa: SLF001
            # from the row: a store failure above moved it to quarantine
            self.gate._ledger_resolution(self.gate.registry.require(proposal_id),  # noqa: SLF001
                                         decided_under=policy)
        if superseded:
            log.info("review.superseded", proposal_id=proposal_id, superseded_by=superseded)
        return self._item(self.gate.registry.require(proposal_id), utcnow())

    def _ledger_escalation(self, row: dict) -> None:
        """Write the ``proposal.decided`` entry of a pending row that has none yet (a process died between
        recording the escalation and ledgering it), as ``recover()`` would, before a person's decision
        resets the row's ``ledgered`` flag for its own entry (which would hide the missing one for good)."""
        pid, owner = row["id"], row.get("owner")
        if owner != process_token():
            if owner_alive(owner):  # that process is still recording it: it writes the entry itself
                raise ConflictError(f"proposal {pid} is still being recorded by another process; try again "
                                    "in a moment")
            if not self.gate.registry.claim(pid, owner):
                raise ConflictError(f"proposal {pid} is being finished by another process; try again in a moment")
        if self.gate._ledger_unless_written(row, {}):  # noqa: SLF001
            log.info("review.escalation_ledgered", proposal_id=pid)

    def _deleted_since(self, row: dict) -> str | None:
        """``memory.deleted:<ledger seq>`` for a delete of the row's (namespace, key) after the proposal was
        journaled, else None. Deletes are not proposals; the gate records them in the registry
        (``Gatekeeper.record_deletes``), indexed, so this costs one lookup however long the ledger is."""
        hit = self.gate.registry.deleted_since(row["namespace"], row["key"], row["created_at"])
        return deletion_reference(hit) if hit is not None else None

    def _refuse_self_review(self, proposal_id: str, proposal: MemoryWrite, decision: ReviewDecision) -> None:
        self._refuse_own_agent(proposal_id, proposal.provenance.agent_id, decision.reviewer,
                               "review", "review its own escalation")

    def _refuse_own_agent(self, proposal_id: str, agent_id: str, person: str, verb: str, what: str) -> None:
        """ReviewPermissionError, recorded in the ledger as ``review.refused``, when ``person`` is the agent that
        proposed the write, which may not do ``what`` (review its own escalation, release its own quarantined
        write)."""
        if _same_name(person, agent_id):
            self.gate.ledger.append("review.refused", proposal_id=proposal_id, reviewer=person,
                                    reason=f"the proposing agent cannot {what}")
            raise ReviewPermissionError(f"the agent that proposed this memory cannot {verb} it")

    def release(self, proposal_id: str, operator: str, reason: str) -> QueueItem:
        """Send a write the gate quarantined to this queue, for a person to decide (``Gatekeeper.release_to_review``:
        its refusals and what it records). The agent that proposed the write may not release it
        (ReviewPermissionError, recorded in the ledger as ``review.refused``). ``GateClosedError`` on a closed
        gate, before either. Returns the new queue item."""
        with self.gate._admitted(RELEASE_REFUSED):  # noqa: SLF001 - the gate's admission of changes
            row = self.gate.registry.require(proposal_id)
            self._refuse_own_agent(proposal_id, row["agent_id"], operator, "release",
                                   "release its own quarantined write")
            outcome = self.gate.release_to_review(proposal_id, operator=operator, reason=reason)
        return self._item(self.gate.registry.require(outcome.proposal.id), utcnow())

    def release_many(self, proposal_ids: Sequence[str], operator: str, reason: str, *,
                     on_outcome: Callable[[BulkOutcome], None] | None = None) -> list[BulkOutcome]:
        """``release`` for each of several quarantined writes (the same reason), each released or refused on its
        own: one outcome per distinct id, in order, ``released`` with the new queue item or why not. ValueError,
        with nothing released: no ids, more than ``MAX_BULK_DECISIONS``, an empty operator or reason.
        ``on_outcome`` is called with each outcome as soon as it is known (a CLI prints it then, so a run stopped
        half way has shown what it did). ``GateClosedError`` on a closed gate, before the first; a gate closed
        during the run stops it after the release in progress (the ones before it stand)."""
        release_request(operator, reason)
        wanted = list(dict.fromkeys(proposal_ids))
        if not wanted:
            raise ValueError("no quarantined writes to release")
        if len(wanted) > MAX_BULK_DECISIONS:
            raise ValueError(f"at most {MAX_BULK_DECISIONS} writes are released at once, not {len(wanted)}")
        self.gate._refuse_if_closed(RELEASE_REFUSED)  # noqa: SLF001 - each release is admitted on its own
        return _each_reported([lambda pid=pid: _outcome_of(pid, lambda: BulkOutcome(
            proposal_id=pid, status="released", item=self.release(pid, operator, reason))) for pid in wanted],
            on_outcome)

    def expire_overdue(self, *, now: datetime | None = None, limit: int = 1000,
                       dry_run: bool = False) -> list[QueueItem]:
        """Under ``escalation.overdue_action: quarantine``, reject the escalations past their deadline (at most
        ``limit``, oldest first) as reviewer ``gatekeeper:expiry``, through ``submit_decision``: the
        memory goes to the quarantine, the ledger gets ``review.resolved`` with the reason, and a paused agent
        thread is resumed with the rejection (with ``resume_graph``) so it goes on. An escalation a person
        decides meanwhile is left to them. Under ``flag`` (the default) nothing expires and this returns [].
        ``dry_run``: change nothing, and return the escalations that would expire. Returns the expired
        items, as they are after the rejection. ``GateClosedError`` on a closed gate (a dry run still reads it);
        a gate closed during the run stops it after the rejection in progress."""
        whole_number(limit, "limit")  # True read as 1, 2.5 reached SQL's LIMIT
        now = utcnow() if now is None else as_utc(now, "now")  # any zone; a naive time is refused
        if not dry_run:
            self.gate._refuse_if_closed(EXPIRY_REFUSED)  # noqa: SLF001 - each rejection is admitted on its own
        if self.gate.policy.escalation.overdue_action != "quarantine":
            return []
        rows = self.gate.registry.query(state=ProposalState.pending, overdue_at=now, limit=limit)
        if dry_run:
            return [self._item(r, now) for r in rows]
        expired = []
        for row in rows:
            decision = ReviewDecision(
                type="reject", reviewer=EXPIRY_REVIEWER, channel="expiry",
                reason=f"expired: no decision by its deadline ({row['deadline']}); the policy's "
                       "escalation.overdue_action is quarantine")
            try:
                done = self.submit_decision(row["id"], decision, expected_version=row["version"])
            except ConflictError:  # a person decided it a moment ago: theirs stands
                continue
            except ReviewPermissionError as exc:
                # an agent whose id is the expiry's own reviewer name: this one waits for a person; the rows
                # after it still expire (the sweep raised here every minute and expired none of them)
                log.warning("review.expiry_refused", proposal_id=row["id"], error=str(exc))
                continue
            expired.append(done.item)
            log.info("review.expired", proposal_id=row["id"], deadline=row["deadline"], via=done.via)
        return expired

    # ---------------------------------------------------- decisions by people
    def decide_many(self, items: Sequence[tuple[str, int | None]], decision: ReviewDecision | dict, *,
                    on_outcome: Callable[[BulkOutcome], None] | None = None) -> list[BulkOutcome]:
        """Apply one approval or rejection (``decision``: its type, reviewer and reason) to several escalations,
        for a reviewer clearing many alike at once (an agent that stored the same injected belief fifty times).

        ``items`` are ``(proposal_id, expected_version)`` pairs: the version the reviewer saw (None: any). Each is
        decided on its own through ``submit_decision``, with the same checks and records as a single decision
        (a ``review.resolved`` ledger entry each; a paused interrupt-mode thread is resumed); one that is
        refused does not stop the others, and its outcome says why. An approval refuses memories with
        characters a reader cannot see (invisible or direction-changing): what a list shows of them is not what
        would be committed, so they are approved on their own, after a reading of the whole item.

        Refused before anything is decided (ValueError): an edit (each edit is its own text), a decision that
        names one proposal, no items, more than ``MAX_BULK_DECISIONS``, a malformed decision (a rejection
        without a reason). An id listed twice is decided once. Returns one outcome per distinct id, in order;
        ``on_outcome`` is called with each as soon as it is known (so a run stopped half way has shown what it
        did). ``GateClosedError`` on a closed gate, before the first; a gate closed during the run stops it after
        the decision in progress (the ones before it stand)."""
        decision = ReviewDecision.model_validate(decision) if isinstance(decision, dict) else decision
        if decision.type == "edit":
            raise ValueError("an edit is decided one memory at a time")
        if decision.proposal_id is not None:
            raise ValueError("a decision for several escalations cannot name one proposal")
        wanted: dict[str, int | None] = {}
        for proposal_id, version in items:
            wanted.setdefault(proposal_id, version)
        if not wanted:
            raise ValueError("no escalations to decide")
        if len(wanted) > MAX_BULK_DECISIONS:
            raise ValueError(f"at most {MAX_BULK_DECISIONS} escalations are decided at once, not {len(wanted)}")
        self.gate._refuse_if_closed(DECISION_REFUSED)  # noqa: SLF001 - each decision is admitted on its own
        outcomes = _each_reported([lambda pid=pid, version=version: self._decide_one_of_many(pid, version, decision)
                                   for pid, version in wanted.items()], on_outcome)
        log.info("review.bulk_decided", reviewer=decision.reviewer, type=decision.type, asked=len(outcomes),
                 decided=sum(o.status == "decided" for o in outcomes))
        return outcomes

    def _decide_one_of_many(self, proposal_id: str, version: int | None, decision: ReviewDecision) -> BulkOutcome:
        def decide() -> BulkOutcome:
            if decision.type == "approve":
                row = self.gate.registry.require(proposal_id)
                hidden = _hidden_in_value(row) if row["state"] == ProposalState.pending.value else []
                if hidden:
                    raise ValueError("the memory holds characters a reader cannot see "
                                     f"({', '.join(hidden[:5])}): approve it on its own, after reading the whole "
                                     "item")
            done = self.submit_decision(proposal_id, decision, expected_version=version)
            return BulkOutcome(proposal_id=proposal_id, status="decided", item=done.item, via=done.via,
                               warning=done.warning)

        return _outcome_of(proposal_id, decide)

    def submit_decision(self, proposal_id: str, decision: ReviewDecision | dict, *,
                        expected_version: int | None = None) -> SubmittedDecision:
        """Apply a person's decision: resume the paused graph thread or decide directly.

        Everything that can refuse a decision (validation, self-review, already
        decided, changed since ``expected_version``, a closed gate) is checked before a thread is
        resumed, so a refused decision never consumes the thread's interrupt.

        Admitted as a whole (``Gatekeeper._admitted``): ``Gatekeeper.close`` waits for a decision in progress,
        resumed or direct; a resumed node that finds the gate closed meanwhile refuses it, and this call then
        applies it directly.
        """
        decision = _decision_for(proposal_id, decision)
        _check_version_given(expected_version)
        with self.gate._admitted(DECISION_REFUSED):  # noqa: SLF001 - the gate's admission of changes
            return self._submit_decision(proposal_id, decision, expected_version)

    def _submit_decision(self, proposal_id: str, decision: ReviewDecision,
                         expected_version: int | None) -> SubmittedDecision:
        # the thread's run context is built before the submit lock: a slow hook (a database lookup) holds up
        # no other decision while it runs
        built = self._context_before_lock(self._refusal_checked(proposal_id, decision, expected_version))
        with self._submit_lock:
            row = self._refusal_checked(proposal_id, decision, expected_version)
            graph = self.resume_graph
            done = None
            if self._resumes(row):
                done = self._resume(graph, row, decision, built)
            if done is None:
                item = self.decide(proposal_id, decision, expected_version=expected_version)
                done = SubmittedDecision(item=item, via="direct", thread_id=row["thread_id"])
                if self._resumes(row):
                    # the thread may be paused on another escalation that was decided where no graph could
                    # resume it (the CLI): step it past that one, and past this one when it gets there
                    self._advance_in_background(graph, row)
            if done.item.superseded_by:
                note = superseded_note(done.item.superseded_by)
                done.warning = f"{note}; {done.warning}" if done.warning else note
            return done

    def _refusal_checked(self, proposal_id: str, decision: ReviewDecision, expected_version: int | None) -> dict:
        """The proposal's row, after everything that refuses a decision before a thread is resumed: self-review,
        not pending or changed since ``expected_version``, a reviewer's name that does not show, an edit the node
        would refuse."""
        row = self.gate.registry.require(proposal_id)
        proposal = row_proposal(row)
        self._refuse_self_review(proposal_id, proposal, decision)
        _check_pending(row, expected_version)
        _check_name_shows(decision)
        _final_value(proposal, decision)  # an edit the node would refuse must not consume the interrupt
        return row

    def _resumes(self, row: dict) -> bool:
        """Whether a decision on ``row`` resumes its graph thread: an interrupt-mode escalation of a thread, and a
        graph to resume it with."""
        return self.resume_graph is not None and row["escalation_mode"] == "interrupt" and bool(row["thread_id"])

    def _context_before_lock(self, row: dict) -> _BuiltContext | None:
        """The run context of the thread paused on ``row``'s escalation (or the ResumeContextError building it
        raised), when a graph and ``resume_context`` would resume it; None otherwise, or when its checkpoint
        cannot be read (``_resume`` finds out again under the lock)."""
        if self.resume_context is None or not self._resumes(row):
            return None
        try:
            config, _ = _paused(self.resume_graph, row["thread_id"])
        except Exception:  # noqa: BLE001
            return None
        try:
            return _BuiltContext(context=self._run_context(config))
        except ResumeContextError as exc:
            return _BuiltContext(error=exc)

    def _resume(self, graph: Any, row: dict, decision: ReviewDecision,
                built: _BuiltContext | None = None) -> SubmittedDecision | None:
        """Resume the thread paused on this escalation; None when it is not paused on it. ``built``: its run
        context, built before the submit lock (else it is built here)."""
        from langgraph.types import Command

        pid, thread_id = row["id"], row["thread_id"]
        with self._runs_lock:
            if thread_id in self._running:
                # the thread is still running an earlier resume: decide directly; that run steps the
                # thread past this item's interrupt when it gets there (_advance)
                return None
        try:
            config, pending = _paused(graph, thread_id)
        except Exception as exc:  # noqa: BLE001 - no usable checkpoint: decide directly
            log.warning("review.resume_unavailable", proposal_id=pid, thread_id=thread_id, error=str(exc))
            return None
        target = next((i for i in pending if _interrupt_pid(i) == pid), None)
        if target is None:
            return None
        payload: dict[str, Any] = {"type": decision.type, "reviewer": decision.reviewer, "proposal_id": pid,
                                   "channel": decision.channel}
        if decision.os_user:
            payload["os_user"] = decision.os_user
        if decision.reason:
            payload["reason"] = decision.reason
        if decision.type == "edit":
            payload["edited_value"] = decision.edited_value
        resume = payload if len(pending) == 1 else {target.id: payload}
        try:
            if built is not None:
                if built.error is not None:
                    raise built.error
                context = built.context
            else:
                context = self._run_context(config)
        except ResumeContextError as exc:
            # resumed without its context the agent's run would fail after the decision: decided directly; the
            # thread stays paused on it until it is resumed with its context (then stepped past it)
            log.warning("review.resume_context_failed", proposal_id=pid, thread_id=thread_id, error=str(exc))
            return SubmittedDecision(item=self.decide(pid, decision), via="direct", thread_id=thread_id,
                                     warning=f"{exc}; the decision was applied directly and the thread stays paused")
        run = ResumeRun(thread_id=thread_id, proposal_id=pid, reviewer=decision.reviewer, started_at=utcnow())
        #: the graph run returned (or raised): the submitter stops waiting for the node. Set before the run
        #: takes the submit lock, which that submitter may hold while it waits
        returned = threading.Event()
        #: the submitter stopped waiting and answered "still running, it applies it": if the run ends without
        #: the node applying the decision, this thread applies it directly (nobody else would)
        gave_up = threading.Event()
        #: the run is over (set before the fallback below looks at ``gave_up``)
        ended = threading.Event()

        def go_on() -> None:
            try:
                self._graph_calls(graph, new_run=True).invoke(Command(resume=resume), config, context)
            except Exception as exc:  # noqa: BLE001 - the rest of the agent's run failed
                run.error = f"the resumed thread raised {type(exc).__name__}: {exc}"
                # the agent's error may quote its prompt: the log gets its type, the decision's reply its text
                log.warning("review.resume_failed", proposal_id=pid, thread_id=thread_id,
                            error_type=type(exc).__name__)
            else:
                self._advance_then_end(graph, config, run, advanced=returned.set)
            finally:
                ended.set()
                if gave_up.is_set():  # before the run counts as finished (``wait_for_resumes``)
                    self._apply_if_still_pending(pid, decision, run)
                if run.finished_at is None:
                    self._end_run(thread_id, run)
                returned.set()

        worker = threading.Thread(target=go_on, name=f"gatekeeper-resume-{thread_id[:24]}", daemon=True)
        with self._runs_lock:
            self._running[thread_id] = (worker, run)
        worker.start()
        # the node applies the decision first thing (registry, store, ledger: `ledgered` is set last); the
        # rest of the agent's run goes on in the background
        deadline = time.monotonic() + self.resume_wait_s
        while True:
            after = self.gate.registry.require(pid)
            if after["state"] != ProposalState.pending.value and after["ledgered"]:
                break
            if returned.wait(_POLL_S):
                after = self.gate.registry.require(pid)
                break
            if time.monotonic() >= deadline:
                gave_up.set()
                if not ended.is_set():  # else the run ended meanwhile: decided below, as if it had in time
                    return SubmittedDecision(
                        item=self._item(after, utcnow()), via="graph", thread_id=thread_id,
                        warning=f"the resumed thread has not applied the decision after {self.resume_wait_s:g} s; "
                                "it is still running, and the decision is applied when it ends")
                after = self.gate.registry.require(pid)
                break
        if after["state"] == ProposalState.pending.value:
            # the run ended without the node applying it: apply it directly so the decision is not lost
            item = self.decide(pid, decision)
            return SubmittedDecision(item=item, via="direct", thread_id=thread_id,
                                     warning=(run.error or "the resumed thread did not apply the decision")
                                     + "; it was applied directly")
        if after["resolved_by"] != decision.reviewer or after["resolution"] != decision.type:
            raise ConflictError(f"proposal {pid} was decided meanwhile ({after['resolution']} by "
                                f"{after['resolved_by']})")
        return SubmittedDecision(item=self._item(after, utcnow()), via="graph", thread_id=thread_id,
                                 warning=run.error if returned.is_set() else None)

    def _apply_if_still_pending(self, pid: str, decision: ReviewDecision, run: ResumeRun) -> None:
        """After a resumed run its submitter stopped waiting for: apply the decision directly when the run ended
        without the node applying it (it raised first), as the submitter does when the run ends in time. Under
        the submit lock, so that the submitter's own check, if the run ended as it gave up, comes first or sees
        this one done."""
        with self._submit_lock:
            try:
                row = self.gate.registry.require(pid)
                if row["state"] != ProposalState.pending.value or row["resolution"]:
                    return
                self.decide(pid, decision)
            except Exception as exc:  # noqa: BLE001 - a worker thread: the failure is logged, the item stays pending
                log.error("review.resume_fallback_failed", proposal_id=pid, thread_id=run.thread_id,
                          error=f"{type(exc).__name__}: {exc}")
                return
        log.warning("review.applied_after_resume", proposal_id=pid, thread_id=run.thread_id,
                    error=_without_message(run.error) or "the resumed thread did not apply the decision")

    def _advance_then_end(self, graph: Any, config: dict, run: ResumeRun,
                          advanced: Callable[[], None] | None = None) -> None:
        """Step ``run``'s thread past the interrupts of escalations decided elsewhere (``advanced`` is called after
        each pass), then take the run out of ``_running``.

        A decision for this thread that came in after ``_advance`` looked found the run still in ``_running`` and
        was applied directly: nothing else would step the thread past its interrupt. Decisions are made under
        the submit lock, so under it either one already shows as a stale interrupt (advance again) or it comes
        after the run has left ``_running`` (then it resumes the thread itself)."""
        try:
            for _ in range(_MAX_ADVANCE):
                run.error = self._advance(graph, config)
                if run.error:
                    log.warning("review.resume_failed", proposal_id=run.proposal_id, thread_id=run.thread_id,
                                error=_without_message(run.error))
                    return
                if advanced is not None:
                    advanced()
                with self._submit_lock:
                    if self._stale_now(graph, config) is None:
                        self._end_run(run.thread_id, run)
                        return
        finally:
            if run.finished_at is None:
                self._end_run(run.thread_id, run)

    def _end_run(self, thread_id: str, run: ResumeRun) -> None:
        run.finished_at = utcnow()
        with self._runs_lock:
            self._running.pop(thread_id, None)
            self._finished.append(run)

    def _advance_in_background(self, graph: Any, row: dict) -> None:
        """When ``row``'s thread is paused on an escalation a person already decided, and no resumed run of the
        thread is going on (that one advances it), step it on in the background, as a resumed run would
        (``resume_runs`` lists it)."""
        thread_id = row["thread_id"]
        with self._runs_lock:
            if thread_id in self._running:
                return
        try:
            config, pending = _paused(graph, thread_id)
        except Exception:  # noqa: BLE001 - no usable checkpoint: nothing to step on
            return
        stale = self._stale_interrupt(pending)
        if stale is None:
            return
        _, stuck, _ = stale
        run = ResumeRun(thread_id=thread_id, proposal_id=stuck["id"], reviewer=stuck["resolved_by"],
                        started_at=utcnow())

        worker = threading.Thread(target=self._advance_then_end, args=(graph, config, run),
                                  name=f"gatekeeper-advance-{thread_id[:24]}", daemon=True)
        with self._runs_lock:
            if thread_id in self._running:
                return
            self._running[thread_id] = (worker, run)
        worker.start()

    def _graph_calls(self, graph: Any, *, new_run: bool = False) -> _GraphCalls:
        """How the background run in this thread calls ``graph``: one run (a resume, then the advances after it;
        each run has a worker thread of its own) that found it needs the async API keeps using it."""
        calls = getattr(self._run_local, "calls", None)
        if new_run or calls is None or calls.graph is not graph:
            calls = self._run_local.calls = _GraphCalls(graph)
        return calls

    def _advance(self, graph: Any, config: dict) -> str | None:
        """Step the thread past interrupts for escalations that were already decided
        elsewhere (e.g. directly, while an earlier one held the thread)."""
        from langgraph.types import Command

        calls = self._graph_calls(graph)
        context = _NOT_BUILT
        for _ in range(_MAX_ADVANCE):
            stale = self._stale_now(graph, config)
            if stale is None:
                return None
            intr, row, pending = stale
            payload: dict[str, Any] = {"type": row["resolution"], "reviewer": row["resolved_by"],
                                       "reason": row["resolved_reason"] or None, "proposal_id": row["id"]}
            if row["resolution"] == "edit" and row["final_value_json"]:
                payload["edited_value"] = json.loads(row["final_value_json"])
            try:
                if context is _NOT_BUILT:
                    context = self._run_context(config)
                calls.invoke(Command(resume=payload if len(pending) == 1 else {intr.id: payload}), config, context)
            except ResumeContextError as exc:
                return str(exc)
            except Exception as exc:  # noqa: BLE001
                return f"the resumed thread raised {type(exc).__name__}: {exc}"
        return None

    def _run_context(self, config: dict) -> Any:
        """The context to resume the thread of ``config`` with (``resume_context``), None without one."""
        if self.resume_context is None:
            return None
        configurable = dict(config["configurable"])
        try:
            return self.resume_context(configurable["thread_id"], configurable)
        except Exception as exc:  # noqa: BLE001 - a user's hook: reported, never a lost decision
            raise ResumeContextError(f"resume_context raised {type(exc).__name__} for thread "
                                     f"{configurable['thread_id']}: {exc}") from exc

    def _stale_now(self, graph: Any, config: dict) -> tuple[Any, dict, list[Any]] | None:
        """``_stale_interrupt`` of the thread's interrupts as its checkpoint holds them now (None when there is
        no usable checkpoint)."""
        try:
            pending = _pending_interrupts(graph, config)
        except Exception:  # noqa: BLE001
            return None
        return self._stale_interrupt(pending)

    def _stale_interrupt(self, pending: list[Any]) -> tuple[Any, dict, list[Any]] | None:
        """(interrupt, row, all pending interrupts) for one of the ``pending`` interrupts of a thread whose
        escalation was already decided by a person; None when there is none."""
        for intr in pending:
            pid = _interrupt_pid(intr)
            row = self.gate.registry.get(pid) if pid else None
            if row is not None and row["state"] != ProposalState.pending.value and row["resolved_by"]:
                return intr, row, pending
        return None

    def approve(self, proposal_id: str, reviewer: str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="approve", reviewer=reviewer, reason=reason))

    def edit(self, proposal_id: str, reviewer: str, edited_value: dict | str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="edit", reviewer=reviewer, reason=reason,
                                                       edited_value=edited_value))

    def reject(self, proposal_id: str, reviewer: str, reason: str) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="reject", reviewer=reviewer, reason=reason))


def _outcome_of(proposal_id: str, act: Callable[[], BulkOutcome]) -> BulkOutcome:
    """``act()``'s outcome for one proposal of a bulk decision or release, or why it was refused: unknown
    (``not_found``), decided, changed or released already (``conflict``), the proposing agent's own
    (``forbidden``), or a value the store, the ledger or the rules of a bulk approval refuse (``invalid``)."""
    try:
        return act()
    except NotFoundError as exc:
        return BulkOutcome(proposal_id=proposal_id, status="not_found", error=str(exc))
    except ConflictError as exc:
        return BulkOutcome(proposal_id=proposal_id, status="conflict", error=str(exc))
    except ReviewPermissionError as exc:
        return BulkOutcome(proposal_id=proposal_id, status="forbidden", error=str(exc))
    except ValueError as exc:  # pydantic's validation errors included
        return BulkOutcome(proposal_id=proposal_id, status="invalid", error=str(exc))


def _without_message(error: str | None) -> str | None:
    """``"the resumed thread raised KeyError: <message>"`` without the message, for the log: an agent's error
    may quote its prompt, memories included (the decision's reply keeps the whole text)."""
    return error.split(":", 1)[0] if error else error


def _each_reported(steps: Sequence[Callable[[], BulkOutcome]],
                   on_outcome: Callable[[BulkOutcome], None] | None) -> list[BulkOutcome]:
    """Run a bulk action's steps in order, handing each outcome to ``on_outcome`` as soon as it is known."""
    outcomes = []
    for step in steps:
        outcomes.append(step())
        if on_outcome is not None:
            on_outcome(outcomes[-1])
    return outcomes


def _bulk_problem(row: dict | None, expected_version: int | None, reviewer: str) -> str | None:
    """Why ``decide_many`` would decide neither way this row (None: no proposal) for ``reviewer``, or None."""
    if row is None:
        return "there is no proposal with this id"
    if row["state"] != ProposalState.pending.value or (
            expected_version is not None and row["version"] != expected_version):
        return "decided or changed since the queue was loaded"
    if _same_name(reviewer, row["agent_id"]):
        return "proposed by an agent of your name: you cannot review it"
    return None


def _check_name_shows(decision: ReviewDecision) -> None:
    """ValueError when a new decision's reviewer name holds a line break, control or invisible character:
    "bob\x1b[31m" was recorded as the decider, not the name a query for bob finds, and a terminal showing it ran
    the escape. Checked where a decision is about to be recorded (the row is pending), not when one is rebuilt
    from a row: a name recorded before the check (a person's approval carried over a store retry, a thread
    stepped past a decided escalation) must not stop the retry or the thread."""
    if decision.channel != "carried" and (odd := first_unshown(decision.reviewer)) is not None:
        raise ValueError(f"the reviewer's name holds U+{ord(odd):04X}, a line break, control or invisible "
                         "character: give the name as it shows")


def _same_name(person: str | None, agent_id: str | None) -> bool:
    return (person or "").strip().lower() == (agent_id or "").strip().lower()


def _hidden_in_value(row: dict) -> list[str]:
    """The kinds of character a reader cannot see in a row's proposed value (any field of it)."""
    return hidden_in(row_proposal(row).text)  # every string of the value as stored, keys too


def _deciding_text(row: dict) -> str | None:
    """The quoted part of a row's review (None without one, or when the review does not read)."""
    try:
        review = row_review(row)
    except ValueError:  # written by an older or foreign tool
        return None
    found = review.deciding_text() if review is not None else None
    return found["text"] if found else None


def _ns(s: str) -> list[str]:
    return json.loads(s)


def _listing(state: ProposalState | str | None, namespace_prefix: Sequence[str] | None, limit: int,
             offset: int) -> tuple[ProposalState | None, tuple[str, ...] | None]:
    """A listing's filters checked as the web API and the CLI check them (ValueError): a state the registry does
    not have, a namespace given as one string (read as its letters), a limit below 1, an offset below 0 or a bool
    for either matched nothing, everything or one row, silently. Returns the state and the namespace prefix as
    the query takes them."""
    if state is not None and not isinstance(state, ProposalState):
        try:
            state = ProposalState(state)
        except ValueError:
            raise ValueError(f"state must be one of {', '.join(s.value for s in ProposalState)}, not "
                             f"{state!r}") from None
    if isinstance(namespace_prefix, str) and namespace_prefix:
        raise ValueError(f"namespace_prefix must be a tuple of labels, not one string: ({namespace_prefix!r},)")
    prefix = tuple(namespace_prefix) if namespace_prefix else None  # () or "": no filter
    if prefix and not all(isinstance(label, str) for label in prefix):
        raise ValueError(f"namespace_prefix labels must be strings: {prefix!r}")
    whole_number(limit, "limit")
    whole_number(offset, "offset", least=0)
    return state, prefix


def _older_than(now: datetime, min_age_hours: float | None) -> datetime | None:
    if isinstance(min_age_hours, bool):
        raise ValueError(f"min_age_hours must be a number of hours, not {min_age_hours!r}")
    if not min_age_hours:
        return None
    if not math.isfinite(min_age_hours) or not 0 <= min_age_hours <= MAX_AGE_HOURS:
        raise ValueError(f"min_age_hours must be a number of hours from 0 to {MAX_AGE_HOURS:g}")
    return now - timedelta(hours=min_age_hours)


def _final_value(proposal: MemoryWrite, decision: ReviewDecision) -> dict | None:
    """The value a decision commits (None for a rejection), checked the way the gate and the ledger will
    need it: a valid memory (``MemoryWrite``) that is canonical JSON (no NaN or Infinity, nothing JSON cannot
    hold). ValueError otherwise, before anything is resumed, recorded or written."""
    if decision.type == "reject":
        return None
    if decision.type == "approve":
        return proposal.value
    ev = decision.edited_value
    if not isinstance(ev, (str, dict)):
        raise ValueError("an edit needs the edited memory value (text or a JSON object)")
    value = {"content": ev} if isinstance(ev, str) else dict(ev)
    try:
        canonical_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the edited memory is not plain JSON (no NaN or Infinity): {exc}") from None
    edited = MemoryWrite(namespace=proposal.namespace, key=proposal.key, value=value)  # raises ValidationError
    # its reviewed text: every string of the value as stored, keys too (as JSON a control character would be a
    # visible escape)
    hidden = hidden_in(edited.text)
    if hidden:
        raise ValueError("the edited memory contains characters a reader cannot see (invisible or "
                         f"direction-changing: {', '.join(hidden[:5])}); remove them")
    return value


def superseded_note(superseded_by: str) -> str:
    if superseded_by.startswith("memory.deleted:"):
        what = f"the agent deleted this key after proposing it (ledger seq {superseded_by.partition(':')[2]})"
    else:
        what = f"a later write to the same key is committed (proposal {superseded_by})"
    return (f"superseded: {what}; the decision is recorded, but the memory store was not changed, so the "
            "newer memory stands")


@contextmanager
def _deciding(proposal_id: str):
    """Mark a proposal in flight in this process, as the gate's write path does (``recover()`` leaves it
    alone); ConflictError when something in this process is already working on it."""
    with _gate_module._INFLIGHT_LOCK:  # noqa: SLF001 - the gate's in-flight set, checked and set atomically
        if proposal_id in _gate_module._INFLIGHT:  # noqa: SLF001
            raise ConflictError(f"proposal {proposal_id} is being decided or recovered right now; try again")
        _gate_module._INFLIGHT.add(proposal_id)  # noqa: SLF001
    try:
        yield
    finally:
        with _gate_module._INFLIGHT_LOCK:  # noqa: SLF001
            _gate_module._INFLIGHT.discard(proposal_id)  # noqa: SLF001


def _decision_for(proposal_id: str, decision: ReviewDecision | dict) -> ReviewDecision:
    """``decision`` as a ReviewDecision for ``proposal_id``; one that names another proposal is a ValueError."""
    if isinstance(decision, dict):
        decision = ReviewDecision.model_validate(decision)
    if decision.proposal_id is not None and decision.proposal_id != proposal_id:
        raise ValueError(f"the decision is for proposal {decision.proposal_id}, not {proposal_id}")
    return decision


def _check_version_given(expected_version: int | None) -> None:
    """ValueError for an ``expected_version`` that is not a whole number (a string, a bool): compared with the
    row's version it never matched, and the decision was refused as if the proposal had changed meanwhile."""
    if expected_version is not None and (isinstance(expected_version, bool) or not isinstance(expected_version, int)):
        raise ValueError(f"expected_version must be the whole number the item showed, not {expected_version!r}")


def _check_pending(row: dict, expected_version: int | None) -> None:
    """The same refusals as ProposalRegistry.resolve, checked before a thread is resumed."""
    if row["state"] != ProposalState.pending.value:
        raise ConflictError(
            f"proposal {row['id']} is already {row['state']}"
            + (f" ({row['resolution']} by {row['resolved_by']})" if row["resolved_by"] else ""))
    if expected_version is not None and row["version"] != expected_version:
        raise ConflictError(f"proposal {row['id']} changed while you were reviewing it")


#: the checkpoint metadata LangGraph writes for itself; the other keys are the scalar values of the config of the
#: run that wrote the checkpoint (its ``configurable`` and ``metadata``: see LangGraph's
#: ``langgraph.checkpoint.base.get_checkpoint_metadata``)
_LANGGRAPH_METADATA = frozenset({"source", "step", "parents", "writes", "run_id", "counters_since_delta_snapshot"})


class ResumeContextError(RuntimeError):
    """``ReviewService.resume_context`` could not build a paused thread's run context."""


#: a run context not built yet (None is a built one: no context)
_NOT_BUILT = object()


@dataclass(frozen=True)
class _BuiltContext:
    """A paused thread's run context built by ``resume_context``, or the error building it raised."""
    context: Any = None
    error: ResumeContextError | None = None


def _invoke(graph: Any, command: Any, config: dict, context: Any) -> None:
    """Resume ``graph``'s thread with ``command``, in ``context`` when there is one (LangGraph's runtime context)."""
    if context is None:
        graph.invoke(command, config)
    else:
        graph.invoke(command, config, context=context)


#: the TypeErrors LangGraph (a node) and langchain-core (a RunnableLambda) raise when the sync API reaches a
#: function defined with ``async def`` only
_ASYNC_ONLY = ("No synchronous function provided to", "Cannot invoke a coroutine function synchronously")


class _GraphCalls:
    """How one background run calls its graph: ``graph.invoke`` until the graph turns out to need the async API
    (a node defined with ``async def`` only, which LangGraph's sync API refuses with a TypeError), then
    ``graph.ainvoke`` for the rest of the run.

    Sync first: a sync graph runs as it always did, and with a sync-only checkpointer (``SqliteSaver`` has no
    async methods); nothing inspects the graph's nodes, which would miss an async function inside a subgraph or
    a runnable. When the sync run stops at an async node, the steps before it (the node applying the decision
    among them) are checkpointed: the run goes on from there, as LangGraph goes on with a run that raised
    (``ainvoke(None, config)``; the resume value is in the checkpoint, so a node that stopped before reading it
    gets it then)."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.is_async = False

    def invoke(self, command: Any, config: dict, context: Any) -> None:
        if not self.is_async:
            try:
                _invoke(self.graph, command, config, context)
                return
            except TypeError as exc:
                if not str(exc).startswith(_ASYNC_ONLY):
                    raise
            self.is_async = True
            log.info("review.resume_async", thread_id=config["configurable"]["thread_id"])
            command = None
        _ainvoke(self.graph, command, config, context)


def _ainvoke(graph: Any, command: Any, config: dict, context: Any) -> None:
    """``graph.ainvoke`` from a worker thread: on the event loop the graph's checkpointer or store is bound to
    (``AsyncSqliteSaver``, ``AsyncPostgresSaver``: their connections belong to the loop that opened them, the
    agent application's), else on a loop of its own (``InMemorySaver``...)."""
    coro = graph.ainvoke(command, config) if context is None else graph.ainvoke(command, config, context=context)
    loop = _bound_loop(graph)
    if loop is None:
        asyncio.run(coro)
        return
    try:
        asyncio.run_coroutine_threadsafe(coro, loop).result()
    except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:  # else reported without a word
        raise RuntimeError("the application's event loop cancelled the resumed run (it was shutting down)") from exc


def _bound_loop(graph: Any) -> asyncio.AbstractEventLoop | None:
    """The running event loop ``graph``'s checkpointer or store is bound to (its ``loop``), if any."""
    for part in (getattr(graph, "checkpointer", None), getattr(graph, "store", None)):
        loop = getattr(part, "loop", None)
        if isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running() and not loop.is_closed():
            return loop
    return None


def _paused(graph: Any, thread_id: str) -> tuple[dict, list[Any]]:
    """From one read of ``thread_id``'s latest checkpoint: the config to resume it with, and the interrupts it
    is paused on. The config holds the thread id and the other configurable values of the run that paused it
    (``user_id``, ``agent_id``, an assistant id...), read back from the checkpoint's metadata, so that the rest of
    the agent's run sees what it was started with (a namespace template, a store's provenance). Raises what
    reading the checkpoint raises."""
    snap = graph.get_state({"configurable": {"thread_id": thread_id}})
    metadata = getattr(snap, "metadata", None) or {}
    restored = {k: v for k, v in metadata.items() if isinstance(k, str) and k not in _LANGGRAPH_METADATA
                and not k.startswith("__") and isinstance(v, (str, int, float, bool))}
    return {"configurable": {**restored, "thread_id": thread_id}}, _interrupts(snap)


def _pending_interrupts(graph: Any, config: dict) -> list[Any]:
    return _interrupts(graph.get_state(config))


def _interrupts(snap: Any) -> list[Any]:
    """The interrupts a thread's state snapshot is paused on."""
    found = list(getattr(snap, "interrupts", ()) or ())
    if not found:
        for task in getattr(snap, "tasks", ()) or ():
            found.extend(getattr(task, "interrupts", ()) or ())
    return found


def _interrupt_pid(intr: Any) -> str | None:
    value = getattr(intr, "value", None)
    return value.get("proposal_id") if isinstance(value, dict) else None
