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
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from pydantic import BaseModel, Field, model_validator

from gatekeeper.gate import Gatekeeper
from gatekeeper.models import Decision, MemoryWrite, ProposalState, ReviewResult, utcnow
from gatekeeper.registry import ConflictError, NotFoundError, row_decision, row_proposal, row_review

__all__ = ["ReviewService", "ReviewDecision", "QueueItem", "QueueItemDetail", "SubmittedDecision", "ResumeRun",
           "ConflictError", "NotFoundError", "ReviewPermissionError"]

log = structlog.get_logger("gatekeeper.review")

#: how many interrupts for already-decided items one resume may step past
_MAX_ADVANCE = 64
#: how often submit_decision looks whether a resumed thread has applied the decision
_POLL_S = 0.01
#: finished background resumes ReviewService.resume_runs remembers
_KEEP_FINISHED = 50


class ReviewPermissionError(PermissionError):
    pass


class ReviewDecision(BaseModel):
    """A human decision, in the shape of LangChain's HumanInTheLoopMiddleware decisions."""

    type: Literal["approve", "edit", "reject"]
    reviewer: str = Field(default="human", min_length=1, max_length=256)
    reason: str | None = Field(default=None, max_length=4000)
    #: for ``edit``: the new memory value (dict) or text (str)
    edited_value: dict[str, Any] | str | None = None

    @model_validator(mode="before")
    @classmethod
    def _hitl_shapes(cls, data: Any) -> Any:
        # accept {"type": "edit", "edited_action": {"args": {"value": ...}}} and
        # {"type": "reject", "message": "..."} as HumanInTheLoopMiddleware sends them
        if isinstance(data, dict):
            data = dict(data)
            if "edited_action" in data and "edited_value" not in data:
                args = (data.pop("edited_action") or {}).get("args", {})
                data["edited_value"] = args.get("value", args.get("content"))
            if "message" in data and "reason" not in data:
                data["reason"] = data.pop("message")
        return data

    @model_validator(mode="after")
    def _complete(self) -> "ReviewDecision":
        if self.type == "reject" and not (self.reason and self.reason.strip()):
            raise ValueError("a rejection needs a reason")
        if self.type == "edit" and self.edited_value in (None, "", {}):
            raise ValueError("an edit needs the edited memory value")
        return self


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
    def __init__(self, gate: Gatekeeper, resume_graph: Any = None, *, resume_wait_s: float = 30.0):
        self.gate = gate
        #: a compiled LangGraph graph (with the checkpointer the agents use) whose
        #: paused threads are resumed by submit_decision
        self.resume_graph = resume_graph
        #: how long submit_decision waits for a resumed thread's node to apply the decision
        self.resume_wait_s = resume_wait_s
        self._submit_lock = threading.RLock()
        self._runs_lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, ResumeRun]] = {}
        self._finished: deque[ResumeRun] = deque(maxlen=_KEEP_FINISHED)  # newest last

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
            for t in threads:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if t.is_alive():
                    return False

    # ------------------------------------------------------------------- reads
    def list(self, *, state: ProposalState | str | None = ProposalState.pending, agent_id: str | None = None,
             namespace_prefix: tuple[str, ...] | None = None, category: str | None = None,
             min_age_hours: float | None = None, overdue_only: bool = False,
             limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[QueueItem]:
        now = utcnow()
        rows = self.gate.registry.query(
            state=state, agent_id=agent_id, namespace_prefix=namespace_prefix, category=category,
            older_than=now - timedelta(hours=min_age_hours) if min_age_hours else None,
            overdue_at=now if overdue_only else None, limit=limit, offset=offset, newest_first=newest_first)
        return [self._item(r, now) for r in rows]

    def decided(self, *, reviewer: str | None = None, limit: int = 100, offset: int = 0) -> list[QueueItem]:
        """Escalations a person has decided, most recent decision first."""
        sql = "SELECT * FROM proposals WHERE resolved_by IS NOT NULL"
        args: list[Any] = []
        if reviewer:
            sql += " AND resolved_by=?"
            args.append(reviewer)
        sql += " ORDER BY resolved_at DESC, rowid DESC LIMIT ? OFFSET ?"
        con = self.gate.registry._con()  # noqa: SLF001 - a read-only view the registry has no query for
        now = utcnow()
        return [self._item(dict(r), now) for r in con.execute(sql, (*args, int(limit), int(offset)))]

    def counts(self) -> dict[str, int]:
        out = self.gate.registry.counts()
        con = self.gate.registry._con()  # noqa: SLF001 - a count the registry has no query for
        out["overdue"] = int(con.execute(
            "SELECT COUNT(*) FROM proposals WHERE state='pending' AND deadline IS NOT NULL AND deadline < ?",
            (utcnow().isoformat(),)).fetchone()[0])
        return out

    def show(self, proposal_id: str, *, similar: int = 3) -> QueueItemDetail:
        row = self.gate.registry.require(proposal_id)
        item = self._item(row, utcnow())
        proposal = row_proposal(row)
        sims: list[dict] = []
        if similar:
            try:
                for it in self.gate.memory_store.search(proposal.namespace[:1], query=proposal.text[:2000],
                                                        limit=similar):
                    sims.append({"namespace": list(it.namespace), "key": it.key, "value": it.value,
                                 "score": getattr(it, "score", None)})
            except Exception:  # noqa: BLE001 - context only
                sims = []
        return QueueItemDetail(**item.model_dump(), proposal=proposal, review=row_review(row),
                               decision=row_decision(row), similar_committed=sims)

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
            version=row["version"],
        )

    # ------------------------------------------------------------------ writes
    def decide(self, proposal_id: str, decision: ReviewDecision | dict, *,
               expected_version: int | None = None) -> QueueItem:
        if isinstance(decision, dict):
            decision = ReviewDecision.model_validate(decision)
        row = self.gate.registry.require(proposal_id)
        proposal = row_proposal(row)
        self._refuse_self_review(proposal_id, proposal, decision)

        if decision.type == "reject":
            new_state, final_value = ProposalState.quarantined, None
        else:
            new_state = ProposalState.committed
            final_value = proposal.value
            if decision.type == "edit":
                ev = decision.edited_value
                final_value = {"content": ev} if isinstance(ev, str) else dict(ev)
                MemoryWrite(namespace=proposal.namespace, key=proposal.key, value=final_value)  # validates
        row = self.gate.registry.resolve(
            proposal_id, new_state=new_state, resolution=decision.type, reviewer=decision.reviewer,
            reason=decision.reason or "", final_value=final_value, expected_version=expected_version)

        state = new_state
        if new_state is ProposalState.committed:
            state, _ = self.gate._apply_commit(proposal, final_value, row_decision(row), None)  # noqa: SLF001
        self.gate.ledger.append(
            "review.resolved", proposal_id=proposal_id, resolution=decision.type, reviewer=decision.reviewer,
            reason=decision.reason or "", state=state.value, edited=decision.type == "edit",
            edited_value=final_value if decision.type == "edit" else None,
            namespace=list(proposal.namespace), key=proposal.key, agent_id=proposal.provenance.agent_id,
            policy_hash=self.gate.policy.hash,
        )
        self.gate.registry.mark(proposal_id, ledgered=True)
        return self._item(self.gate.registry.require(proposal_id), utcnow())

    def _refuse_self_review(self, proposal_id: str, proposal: MemoryWrite, decision: ReviewDecision) -> None:
        if decision.reviewer.strip().lower() == proposal.provenance.agent_id.strip().lower():
            self.gate.ledger.append("review.refused", proposal_id=proposal_id, reviewer=decision.reviewer,
                                    reason="the proposing agent cannot review its own escalation")
            raise ReviewPermissionError("the agent that proposed this memory cannot review it")

    # ---------------------------------------------------- decisions by people
    def submit_decision(self, proposal_id: str, decision: ReviewDecision | dict, *,
                        expected_version: int | None = None) -> SubmittedDecision:
        """Apply a person's decision: resume the paused graph thread or decide directly.

        Everything that can refuse a decision (validation, self-review, already
        decided, changed since ``expected_version``) is checked before a thread is
        resumed, so a refused decision never consumes the thread's interrupt.
        """
        if isinstance(decision, dict):
            decision = ReviewDecision.model_validate(decision)
        with self._submit_lock:
            row = self.gate.registry.require(proposal_id)
            proposal = row_proposal(row)
            self._refuse_self_review(proposal_id, proposal, decision)
            _check_pending(row, expected_version)
            graph = self.resume_graph
            if graph is not None and row["escalation_mode"] == "interrupt" and row["thread_id"]:
                done = self._resume(graph, row, decision)
                if done is not None:
                    return done
            item = self.decide(proposal_id, decision, expected_version=expected_version)
            return SubmittedDecision(item=item, via="direct", thread_id=row["thread_id"])

    def _resume(self, graph: Any, row: dict, decision: ReviewDecision) -> SubmittedDecision | None:
        """Resume the thread paused on this escalation; None when it is not paused on it."""
        from langgraph.types import Command

        pid, thread_id = row["id"], row["thread_id"]
        config = {"configurable": {"thread_id": thread_id}}
        with self._runs_lock:
            if thread_id in self._running:
                # the thread is still running an earlier resume: decide directly; that run steps the
                # thread past this item's interrupt when it gets there (_advance)
                return None
        try:
            pending = _pending_interrupts(graph, config)
        except Exception as exc:  # noqa: BLE001 - no usable checkpoint: decide directly
            log.warning("review.resume_unavailable", proposal_id=pid, thread_id=thread_id, error=str(exc))
            return None
        target = next((i for i in pending if _interrupt_pid(i) == pid), None)
        if target is None:
            return None
        payload: dict[str, Any] = {"type": decision.type, "reviewer": decision.reviewer}
        if decision.reason:
            payload["reason"] = decision.reason
        if decision.type == "edit":
            payload["edited_value"] = decision.edited_value
        resume = payload if len(pending) == 1 else {target.id: payload}
        run = ResumeRun(thread_id=thread_id, proposal_id=pid, reviewer=decision.reviewer, started_at=utcnow())
        ended = threading.Event()

        def go_on() -> None:
            try:
                graph.invoke(Command(resume=resume), config)
            except Exception as exc:  # noqa: BLE001 - the rest of the agent's run failed
                run.error = f"the resumed thread raised {type(exc).__name__}: {exc}"
                log.warning("review.resume_failed", proposal_id=pid, thread_id=thread_id, error=str(exc))
            else:
                run.error = self._advance(graph, config)
                if run.error:
                    log.warning("review.resume_failed", proposal_id=pid, thread_id=thread_id, error=run.error)
            finally:
                run.finished_at = utcnow()
                with self._runs_lock:
                    self._running.pop(thread_id, None)
                    self._finished.append(run)
                ended.set()

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
            if ended.wait(_POLL_S):
                after = self.gate.registry.require(pid)
                break
            if time.monotonic() >= deadline:
                return SubmittedDecision(item=self._item(after, utcnow()), via="graph", thread_id=thread_id,
                                         warning=f"the resumed thread has not applied the decision after "
                                                 f"{self.resume_wait_s:g} s; it is still running and applies it")
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
                                 warning=run.error if ended.is_set() else None)

    def _advance(self, graph: Any, config: dict) -> str | None:
        """Step the thread past interrupts for escalations that were already decided
        elsewhere (e.g. directly, while an earlier one held the thread)."""
        from langgraph.types import Command

        for _ in range(_MAX_ADVANCE):
            try:
                pending = _pending_interrupts(graph, config)
            except Exception:  # noqa: BLE001
                return None
            stale = None
            for intr in pending:
                pid = _interrupt_pid(intr)
                row = self.gate.registry.get(pid) if pid else None
                if row is not None and row["state"] != ProposalState.pending.value and row["resolved_by"]:
                    stale = (intr, row)
                    break
            if stale is None:
                return None
            intr, row = stale
            payload: dict[str, Any] = {"type": row["resolution"], "reviewer": row["resolved_by"],
                                       "reason": row["resolved_reason"] or None}
            if row["resolution"] == "edit" and row["final_value_json"]:
                payload["edited_value"] = json.loads(row["final_value_json"])
            try:
                graph.invoke(Command(resume=payload if len(pending) == 1 else {intr.id: payload}), config)
            except Exception as exc:  # noqa: BLE001
                return f"the resumed thread raised {type(exc).__name__}: {exc}"
        return None

    def approve(self, proposal_id: str, reviewer: str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="approve", reviewer=reviewer, reason=reason))

    def edit(self, proposal_id: str, reviewer: str, edited_value: dict | str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="edit", reviewer=reviewer, reason=reason,
                                                       edited_value=edited_value))

    def reject(self, proposal_id: str, reviewer: str, reason: str) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="reject", reviewer=reviewer, reason=reason))


def _ns(s: str) -> list[str]:
    return json.loads(s)


def _check_pending(row: dict, expected_version: int | None) -> None:
    """The same refusals as ProposalRegistry.resolve, checked before a thread is resumed."""
    if row["state"] != ProposalState.pending.value:
        raise ConflictError(
            f"proposal {row['id']} is already {row['state']}"
            + (f" ({row['resolution']} by {row['resolved_by']})" if row["resolved_by"] else ""))
    if expected_version is not None and row["version"] != expected_version:
        raise ConflictError(f"proposal {row['id']} changed while you were reviewing it")


def _pending_interrupts(graph: Any, config: dict) -> list[Any]:
    snap = graph.get_state(config)
    found = list(getattr(snap, "interrupts", ()) or ())
    if not found:
        for task in getattr(snap, "tasks", ()) or ():
            found.extend(getattr(task, "interrupts", ()) or ())
    return found


def _interrupt_pid(intr: Any) -> str | None:
    value = getattr(intr, "value", None)
    return value.get("proposal_id") if isinstance(value, dict) else None
