"""What an operator monitors: the gate's state as numbers (``gatekeeper status --json``, the review app's
``/metrics`` in Prometheus' text format).

Everything here is cheap enough to scrape every few seconds: counts from the registry, the ledger's last entry
(read from the end of the file) and the number of its archives. Whether the whole ledger chain verifies is not
here (it reads every line): ``gatekeeper ledger verify`` and ``gatekeeper status`` check it.

The numbers come from the data directory, not from a running gate (``data_health``): ``status`` must still
report them when no gate will open there (policy files that do not load, an edited ledger), and a damaged ledger
must not take the numbers down with it (``ledger_ok`` says so instead): monitoring matters most then.

Alerts worth having: escalations overdue (``gatekeeper_review_overdue > 0``), a queue nobody works
(``gatekeeper_review_oldest_pending_seconds``), writes the memory store refused that await a retry
(``gatekeeper_store_failures_awaiting_retry > 0``), writes whose review failed that await a retry
(``gatekeeper_review_failures_awaiting_retry > 0``: a classifier that does not load, a judge that times out),
writes a crash left half done that stay so
(``gatekeeper_unfinished > 0`` for several minutes: a gate opening, or ``gate.recover()``, finishes them), an
audit ledger whose last entry does not read or verify (``gatekeeper_ledger_ok == 0``: no gate opens on an edited
one), a jump in the share of quarantined writes (``gatekeeper_proposals_last_hour``), escalations expiring
undecided (``gatekeeper_review_expired_last_hour > 0``) or quarantined by the per-agent queue cap
(``gatekeeper_queue_capped_last_hour > 0``: an agent flooding the gate), the policy in force changing
(``gatekeeper_policy_info``), a policy edit the gate refused (``gatekeeper_policy_reload_refused == 1``: the files
do not load and the old policy stays in force until an edit loads; ``gatekeeper_policy_reloads_refused_total``
counts them), and reviewers falling behind: how long the last day's decisions waited
(``gatekeeper_review_wait_seconds{quantile="0.9"}`` against ``escalation.deadline_hours``) and how many there
were (``gatekeeper_review_decided_last_day``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.ledger import LedgerCorruptError
from gatekeeper.models import EXPIRY_REVIEWER, ProposalState, as_utc, utcnow

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.ledger import AuditLedger
    from gatekeeper.policy import Policy
    from gatekeeper.registry import ProposalRegistry

#: the window of ``GateHealth.last_hour``
RECENT = timedelta(hours=1)
#: the window of ``GateHealth.decided_last_day`` and ``GateHealth.decision_wait_s``
DAY = timedelta(hours=24)


class GateHealth(BaseModel):
    """A snapshot of one data directory's gate, as numbers."""

    model_config = ConfigDict(frozen=True)

    at: datetime = Field(description="when the snapshot was taken (UTC)")
    policy_name: str | None = Field(description="the policy in force; None when there is none (status with policy "
                                                "files that do not load)")
    policy_version: str | None
    policy_hash: str | None
    proposals: dict[str, int] = Field(description="proposals in the registry by state (what a prune left)")
    last_hour: dict[str, int] = Field(description="proposals journaled in the last hour, by state now")
    pending_overdue: int = Field(description="escalations past their deadline (escalation.deadline_hours)")
    oldest_pending_s: float | None = Field(description="age of the oldest escalation awaiting a person; None "
                                                       "when the queue is empty")
    store_failures_awaiting_retry: int = Field(description="writes quarantined because the memory store "
                                                           "refused them, not yet retried")
    review_failures_awaiting_retry: int = Field(0, description="writes quarantined because their review failed "
                                                               "(fail closed), not yet retried")
    expired_last_hour: int = Field(0, description="escalations that expired in the last hour, nobody having "
                                                  "decided them by their deadline (escalation.overdue_action: "
                                                  "quarantine): the queue is not being worked")
    queue_capped_last_hour: int = Field(0, description="escalations quarantined in the last hour because their agent "
                                                       "had escalation.max_pending_per_agent waiting: an agent "
                                                       "flooding the gate")
    decided_last_day: int = Field(0, description="escalations people decided in the last 24 hours (expiries not "
                                                 "counted)")
    decision_wait_s: dict[str, float] = Field(default_factory=dict, description=(
        "how long the escalations decided in the last 24 hours waited for a person, in seconds from the write to "
        "the decision: p50 and p90 (nearest rank); empty when none was decided"))
    unfinished: int = Field(description="rows a crash left half done (not reviewed, not applied to the store or "
                                        "not ledgered), what gate.recover() finishes; a write in flight counts "
                                        "for a moment, so alert on it staying above 0")
    ledger_ok: bool = Field(description="the live ledger's last entry reads and verifies (its own hash: the cheap "
                                        "tail check, not the whole chain); False for a torn or edited tail, a "
                                        "file that cannot be read, or a ledger lost (missing or emptied while "
                                        "the registry holds decisions recorded in it)")
    ledger_last_seq: int | None = Field(description="sequence number of the ledger's last entry; None when the "
                                                    "last entry does not read or the ledger was lost (ledger_ok "
                                                    "False)")
    ledger_archives: int | None = Field(description="archived ledger files (gatekeeper ledger rotate); None when "
                                                    "the archive folder cannot be read")
    judge_enabled: bool | None = Field(None, description="the policy in force enables the LLM judge "
                                                         "(judge.enabled); None when no policy is in force")
    judge_model: str | None = Field(None, description="the judge's chat model (class, and the model it calls when "
                                                      "it says); None when none is configured. With judge_enabled "
                                                      "and no model, writes are decided without it")
    policy_reload_refused: bool | None = Field(None, description=(
        "the gate's policy files were last seen edited into a policy that does not load: the edit was refused and "
        "the policy in force stayed, until an edit loads; None where no policy watcher runs (a data directory "
        "without a gate, GATEKEEPER_POLICY_WATCH_S=0, a gate built in code)"))
    policy_reloads_refused: int | None = Field(None, description=(
        "policy edits the gate's watcher refused since the gate opened; None where no policy watcher runs"))


def utc(now: datetime | None) -> datetime:
    """``now`` in UTC (default: the current time). The registry's times are UTC ISO strings compared as text, so
    an instant in another zone must be converted first; a naive datetime names no instant at all and is
    refused rather than guessed."""
    return utcnow() if now is None else as_utc(now, "now")


def lost_ledger(registry: ProposalRegistry, ledger: AuditLedger) -> bool:
    """The ledger holds no entry while the registry holds decisions recorded in it (``gate.ledger_lost``): the
    audit record was deleted, emptied or not restored with the registry. An empty chain verifies, so this is
    what tells it from a data directory that has decided nothing yet. False when either cannot be read (other
    checks say so)."""
    import sqlite3

    from gatekeeper.gate import ledger_lost

    try:
        return ledger_lost(ledger, registry._con())  # noqa: SLF001 - one existence check
    except (LedgerCorruptError, OSError, sqlite3.Error):
        return False


def data_health(registry: ProposalRegistry, ledger: AuditLedger, now: datetime | None = None,
                policy: Policy | None = None) -> GateHealth:
    """The snapshot of a data directory from its registry and ledger alone, so that it needs no gate: ``status``
    reports it when no gate opens (the policy fields are None without ``policy``). A ledger whose tail does not
    read (torn by a crashed writer, edited, unreadable) gives ``ledger_ok`` False and no ``ledger_last_seq``
    instead of an error: the numbers are wanted most when the ledger is damaged."""
    from gatekeeper.gate import QUEUE_CAPPED, REVIEW_FAILED, STORE_FAILED

    now = utc(now)
    overdue, oldest = registry.pending_summary(now)
    waits = sorted(registry.decision_waits_since(now - DAY, excluding=EXPIRY_REVIEWER))
    try:
        last_seq: int | None = ledger.anchor()[0]
    except (LedgerCorruptError, OSError):
        last_seq = None
    if last_seq is not None and lost_ledger(registry, ledger):  # an empty ledger reads, and verifies
        last_seq = None
    try:
        archives: int | None = len(ledger.archives())
    except OSError:
        archives = None
    return GateHealth(
        at=now, policy_name=policy.name if policy else None, policy_version=policy.version if policy else None,
        policy_hash=policy.hash if policy else None,
        proposals=registry.counts(), last_hour=registry.counts_since(now - RECENT),
        pending_overdue=overdue, oldest_pending_s=(now - oldest).total_seconds() if oldest else None,
        store_failures_awaiting_retry=registry.count_awaiting_retry(STORE_FAILED),
        review_failures_awaiting_retry=registry.count_awaiting_retry(REVIEW_FAILED),
        expired_last_hour=registry.count_resolved_by_since(EXPIRY_REVIEWER, now - RECENT),
        queue_capped_last_hour=registry.count_quarantined_since(QUEUE_CAPPED, now - RECENT),
        decided_last_day=len(waits),
        decision_wait_s={"p50": _rank(waits, 0.5), "p90": _rank(waits, 0.9)} if waits else {},
        unfinished=registry.count_unfinished(),
        ledger_ok=last_seq is not None, ledger_last_seq=last_seq, ledger_archives=archives)


def _rank(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of an ascending, non-empty list."""
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)


def gate_health(gate: Gatekeeper, now: datetime | None = None) -> GateHealth:
    """The snapshot of ``gate``'s data directory (every process sharing it sees the same numbers) with the policy
    in force in this gate. ``now`` must be timezone-aware (any zone)."""
    from gatekeeper.judge_spec import describe_model

    model = gate.reviewer.judge_model
    watcher = getattr(gate, "policy_watcher", None)  # a PolicyWatcher, when the gate watches its files
    return data_health(gate.registry, gate.ledger, now, gate.policy).model_copy(update={
        "judge_enabled": gate.policy.judge.enabled,
        "judge_model": describe_model(model) if model is not None else None,
        "policy_reload_refused": None if watcher is None else watcher.refused is not None,
        "policy_reloads_refused": None if watcher is None else watcher.refusals})


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def to_prometheus(health: GateHealth) -> str:
    """``health`` in Prometheus' text exposition format (version 0.0.4).

    Prometheus has no null: a number the snapshot does not know (``ledger_last_seq`` of a ledger whose tail does
    not read, ``ledger_archives`` of an unreadable archive folder, the policy when none is in force) has its
    HELP and TYPE lines but no sample, so its series goes absent (alert with ``absent()``) instead of showing a
    made-up 0 or empty labels; ``gatekeeper_ledger_ok`` says why the sequence number is missing."""
    out: list[str] = []

    def metric(name: str, help_: str, samples: list[tuple[str, float]], kind: str = "gauge") -> None:
        out.append(f"# HELP gatekeeper_{name} {help_}")
        out.append(f"# TYPE gatekeeper_{name} {kind}")
        out.extend(f"gatekeeper_{name}{labels} {_number(value)}" for labels, value in samples)

    def known(value: int | None) -> list[tuple[str, float]]:
        return [] if value is None else [("", value)]

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
    metric("review_failures_awaiting_retry", "Writes quarantined because their review failed (fail closed), not "
           "yet retried.", [("", health.review_failures_awaiting_retry)])
    metric("review_expired_last_hour", "Escalations that expired in the last hour, undecided by their deadline "
           "(escalation.overdue_action: quarantine).", [("", health.expired_last_hour)])
    metric("queue_capped_last_hour", "Escalations quarantined in the last hour because their agent had "
           "escalation.max_pending_per_agent waiting.", [("", health.queue_capped_last_hour)])
    metric("review_decided_last_day", "Escalations people decided in the last 24 hours (expiries not counted).",
           [("", health.decided_last_day)])
    metric("review_wait_seconds", "How long the escalations decided in the last 24 hours waited for a person, "
           "write to decision, by quantile (absent when none was decided).",
           [(f'{{quantile="{0.5 if k == "p50" else 0.9}"}}', v) for k, v in health.decision_wait_s.items()])
    metric("unfinished", "Writes a crash left half done, which recovery finishes (alert when it stays above 0).",
           [("", health.unfinished)])
    metric("ledger_ok", "1 when the audit ledger's last entry reads and verifies, 0 when it is torn, edited or "
           "unreadable.", [("", int(health.ledger_ok))])
    metric("ledger_last_seq", "Sequence number of the audit ledger's last entry (absent when it does not read).",
           known(health.ledger_last_seq))
    metric("ledger_archives", "Archived audit ledger files.", known(health.ledger_archives))
    policy = [] if health.policy_hash is None else [
        (f'{{name="{_label(health.policy_name or "")}",version="{_label(health.policy_version or "")}",'
         f'hash="{_label(health.policy_hash)}"}}', 1)]
    metric("policy_info", "The policy in force (absent when none is).", policy)
    judge = [] if health.judge_enabled is None else [("", int(health.judge_enabled and health.judge_model is not None))]
    metric("judge_active", "1 when the policy enables the LLM judge and a chat model is configured for it, 0 when "
           "not (absent when no policy is in force).", judge)
    refused = [] if health.policy_reload_refused is None else [("", int(health.policy_reload_refused))]
    metric("policy_reload_refused", "1 when the last edit of the policy files did not load and was refused (the "
           "policy in force stayed), 0 once an edit loads (absent where no policy watcher runs).", refused)
    metric("policy_reloads_refused_total", "Policy edits refused since the gate opened (absent where no policy "
           "watcher runs).", known(health.policy_reloads_refused), "counter")
    return "\n".join(out) + "\n"


__all__ = ["DAY", "RECENT", "GateHealth", "data_health", "gate_health", "to_prometheus", "utc"]
