"""The human review queue's service layer, shared by the CLI, the web queue and
the LangGraph resume path.

A pending (escalated) proposal is decided exactly once:

* ``approve``  commit the proposal as it was proposed
* ``edit``     commit an edited value (the original stays on record)
* ``reject``   quarantine it (a reason is required)

The agent that proposed a memory can never approve its own escalation, a
decided item cannot be decided again (``ConflictError``), and every decision is
written to the ledger with who decided and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from gatekeeper.gate import Gatekeeper
from gatekeeper.models import Decision, MemoryWrite, ProposalState, ReviewResult, utcnow
from gatekeeper.registry import ConflictError, NotFoundError, row_decision, row_proposal, row_review

__all__ = ["ReviewService", "ReviewDecision", "QueueItem", "ConflictError", "NotFoundError",
           "ReviewPermissionError"]


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


class ReviewService:
    def __init__(self, gate: Gatekeeper):
        self.gate = gate

    # ------------------------------------------------------------------- reads
    def list(self, *, state: ProposalState | str | None = ProposalState.pending, agent_id: str | None = None,
             namespace_prefix: tuple[str, ...] | None = None, category: str | None = None,
             min_age_hours: float | None = None, overdue_only: bool = False,
             limit: int = 100, offset: int = 0) -> list[QueueItem]:
        now = utcnow()
        rows = self.gate.registry.query(
            state=state, agent_id=agent_id, namespace_prefix=namespace_prefix, category=category,
            older_than=now - timedelta(hours=min_age_hours) if min_age_hours else None,
            overdue_at=now if overdue_only else None, limit=limit, offset=offset)
        return [self._item(r, now) for r in rows]

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
        if decision.reviewer.strip().lower() == proposal.provenance.agent_id.strip().lower():
            self.gate.ledger.append("review.refused", proposal_id=proposal_id, reviewer=decision.reviewer,
                                    reason="the proposing agent cannot review its own escalation")
            raise ReviewPermissionError("the agent that proposed this memory cannot review it")

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

    def approve(self, proposal_id: str, reviewer: str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="approve", reviewer=reviewer, reason=reason))

    def edit(self, proposal_id: str, reviewer: str, edited_value: dict | str, reason: str | None = None) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="edit", reviewer=reviewer, reason=reason,
                                                       edited_value=edited_value))

    def reject(self, proposal_id: str, reviewer: str, reason: str) -> QueueItem:
        return self.decide(proposal_id, ReviewDecision(type="reject", reviewer=reviewer, reason=reason))


def _ns(s: str) -> list[str]:
    import json

    return json.loads(s)
