"""What an operator monitors: the gate's state as numbers (``gatekeeper status --json``, the review app's
``/metrics`` in Prometheus' text format).

Everything here is cheap enough to scrape every few seconds: counts from the registry's indexes, the ledger's
last entry (read from the end of the file) and the number of its archives. Whether the whole ledger chain
verifies is not here (it reads every line): ``gatekeeper ledger verify`` and ``gatekeeper status`` check it.

Alerts worth having: escalations overdue (``gatekeeper_review_overdue > 0``), a queue nobody works
(``gatekeeper_review_oldest_pending_seconds``), writes the memory store refused that await a retry
(``gatekeeper_store_failures_awaiting_retry > 0``), a jump in the share of quarantined writes
(``gatekeeper_proposals_last_hour``), and the policy in force changing (``gatekeeper_policy_info``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.models import ProposalState, utcnow

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper

#: the window of ``GateHealth.last_hour``
RECENT = timedelta(hours=1)


class GateHealth(BaseModel):
    """A snapshot of one data directory's gate, as numbers."""

    model_config = ConfigDict(frozen=True)

    at: datetime = Field(description="when the snapshot was taken (UTC)")
    policy_name: str
    policy_version: str
    policy_hash: str
    proposals: dict[str, int] = Field(description="proposals in the registry by state (what a prune left)")
    last_hour: dict[str, int] = Field(description="proposals journaled in the last hour, by state now")
    pending_overdue: int = Field(description="escalations past their deadline (escalation.deadline_hours)")
    oldest_pending_s: float | None = Field(description="age of the oldest escalation awaiting a person; None "
                                                       "when the queue is empty")
    store_failures_awaiting_retry: int = Field(description="writes quarantined because the memory store "
                                                           "refused them, not yet retried")
    ledger_last_seq: int = Field(description="sequence number of the ledger's last entry")
    ledger_archives: int = Field(description="archived ledger files (gatekeeper ledger rotate)")


def gate_health(gate: Gatekeeper, now: datetime | None = None) -> GateHealth:
    """The snapshot of ``gate``'s data directory (every process sharing it sees the same numbers)."""
    from gatekeeper.gate import STORE_FAILED

    now = now or utcnow()
    registry = gate.registry
    overdue, oldest = registry.pending_summary(now)
    return GateHealth(
        at=now, policy_name=gate.policy.name, policy_version=gate.policy.version, policy_hash=gate.policy.hash,
        proposals=registry.counts(), last_hour=registry.counts_since(now - RECENT),
        pending_overdue=overdue, oldest_pending_s=(now - oldest).total_seconds() if oldest else None,
        store_failures_awaiting_retry=registry.count_store_failures(STORE_FAILED),
        ledger_last_seq=gate.ledger.anchor()[0], ledger_archives=len(gate.ledger.archives()))


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def to_prometheus(health: GateHealth) -> str:
    """``health`` in Prometheus' text exposition format (version 0.0.4)."""
    out: list[str] = []

    def metric(name: str, help_: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP gatekeeper_{name} {help_}")
        out.append(f"# TYPE gatekeeper_{name} gauge")
        out.extend(f"gatekeeper_{name}{labels} {_number(value)}" for labels, value in samples)

    states = [s.value for s in ProposalState]
    metric("proposals", "Proposals in the registry by state.",
           [(f'{{state="{s}"}}', health.proposals.get(s, 0)) for s in states])
    metric("proposals_last_hour", "Proposals journaled in the last hour, by their state now.",
           [(f'{{state="{s}"}}', health.last_hour.get(s, 0)) for s in states])
    metric("review_overdue", "Escalations past their deadline.", [("", health.pending_overdue)])
    metric("review_oldest_pending_seconds", "Age of the oldest escalation awaiting a person (0: none).",
           [("", health.oldest_pending_s or 0.0)])
    metric("store_failures_awaiting_retry", "Writes quarantined by a memory store failure, not yet retried.",
           [("", health.store_failures_awaiting_retry)])
    metric("ledger_last_seq", "Sequence number of the audit ledger's last entry.", [("", health.ledger_last_seq)])
    metric("ledger_archives", "Archived audit ledger files.", [("", health.ledger_archives)])
    metric("policy_info", "The policy in force.",
           [(f'{{name="{_label(health.policy_name)}",version="{_label(health.policy_version)}",'
             f'hash="{_label(health.policy_hash)}"}}', 1)])
    return "\n".join(out) + "\n"


__all__ = ["RECENT", "GateHealth", "gate_health", "to_prometheus"]
