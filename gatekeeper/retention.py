"""Retention: what the gate keeps, and for how long.

The audit ledger keeps every entry for good: it is the record of what was decided and by whom. The proposal
registry (``gatekeeper.db``) is working state: the review queue, the crash-recovery journal, the replay of a
proposal id sent again, the agent context window. At production write rates it grows without bound, so its
finished rows can be pruned once nothing can need them (``ProposalRegistry.prune`` says which rows those are).

``prune_registry`` is the entry point for operators (the ``gatekeeper prune`` command): it turns a retention
period into a cutoff, refuses periods short enough to cut into what the gate still reads, prunes, and records
the prune in the ledger (``registry.pruned``: operator, cutoff, counts), so the audit record says what was
pruned and by whom.

What a pruned row leaves, and what it no longer does:

* a receipt (id, content hash, final state, agent, decision, verdict): the same id submitted again (a client's
  retry, a LangGraph thread resumed after the prune replaying its node's writes) is answered from it and
  written nowhere, an id reused for other content is refused, and the agent's name stays reserved for
  reviewer accounts. Receipts are a few hundred bytes each and are kept;
* the review queue's "decided" list, ``gatekeeper policy diff`` (which replays the newest writes) and the
  agent context window see only the rows kept; the ledger still holds every decision with its evidence.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from gatekeeper.models import utcnow

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper

#: the shortest retention ``prune_registry`` accepts: a retried proposal id or a recovery after an outage of a
#: few hours must still find its rows
MIN_RETENTION = timedelta(days=1)


class PruneReport(BaseModel):
    """What a prune removed (or, with ``dry_run``, would remove) from the registry."""

    model_config = ConfigDict(frozen=True)

    #: who ran it (for the ledger entry); None on a dry run without one
    operator: str | None
    dry_run: bool
    #: the retention period asked for
    older_than: timedelta
    #: now minus ``older_than``: rows journaled, changed and resolved before it can go
    cutoff: datetime
    #: proposal rows deleted (would be deleted, on a dry run); each left a receipt of its id and decision
    proposals: int
    #: recorded deletes (``deletions`` rows) deleted (would be deleted)
    deletions: int
    #: undecided or unfinished rows (the review queue, store failures awaiting a retry, a crash's leftovers)
    kept_undecided: int
    #: old finished rows and deletes kept because their (namespace, key) has an undecided or unfinished row:
    #: deciding it reads the other writes of its key
    kept_for_undecided: int
    #: the ``registry.pruned`` ledger entry's sequence number; None on a dry run
    ledger_seq: int | None = None


def check_retention(older_than: timedelta, context_minutes: float) -> None:
    """Refuse a retention period shorter than ``MIN_RETENTION`` or not longer than the agent context window
    (``thresholds.context_minutes``: the committed writes of that window are joined with each new write to
    catch a belief split over several writes; pruning inside it would let such a split through)."""
    if not isinstance(older_than, timedelta):
        raise TypeError(f"older_than must be a timedelta, not {type(older_than).__name__}")
    if older_than < MIN_RETENTION:
        raise ValueError(f"older_than must be at least {MIN_RETENTION} (a retried proposal or a recovery must still "
                         f"find its rows), not {older_than}")
    window = timedelta(minutes=context_minutes)
    if older_than <= window:
        raise ValueError(f"older_than ({older_than}) must be longer than the policy's agent context window "
                         f"(thresholds.context_minutes: {window}): the gate reads the writes inside it")


def prune_registry(gate: Gatekeeper, older_than: timedelta, *, operator: str, dry_run: bool = False,
                   batch: int = 1000) -> PruneReport:
    """Delete from ``gate``'s registry the finished proposals and recorded deletes older than ``older_than``
    (``ProposalRegistry.prune`` for the rules; undecided rows and the rows of their keys stay), and
    ledger it as ``registry.pruned`` with ``operator``, the cutoffs and the counts.

    ``older_than``: at least ``MIN_RETENTION`` and longer than the policy's ``thresholds.context_minutes``
    (ValueError otherwise). ``operator``: who runs it, for the ledger (required unless ``dry_run``).
    ``dry_run``: count what would go, change nothing, write no ledger entry.

    The rows are deleted before the ledger entry is written: a ledger that cannot be written raises after the
    prune (every pruned row's decision is in the ledger already, marked ``ledgered``; only the record of the
    prune is missing, and a second run ledgers its own). A prune an error stops half way is ledgered with what
    it deleted so far (``complete: false``) before the error is raised."""
    check_retention(older_than, gate.policy.thresholds.context_minutes)
    if not dry_run and (not isinstance(operator, str) or not operator.strip()):
        raise ValueError("pruning the registry needs the operator's name, for the ledger")
    who = operator.strip() if isinstance(operator, str) and operator.strip() else None
    progress: dict = {}

    def ledger(counts: dict, **outcome: Any):
        return gate._append_many([("registry.pruned", {  # noqa: SLF001 - the gate's append repairs a torn tail
            "operator": who, "older_than_s": older_than.total_seconds(), **outcome, **_counts(counts)})])[0]

    try:
        counts = gate.registry.prune(utcnow() - older_than, dry_run=dry_run, batch=batch, progress=progress)
    except BaseException as exc:
        if not dry_run and (progress.get("proposals") or progress.get("deletions")):
            # stopped half way (another process held the database past the busy timeout, a full disk): what
            # went is on the record too
            ledger(progress, complete=False, error=f"{type(exc).__name__}: {exc}")
        raise
    report = PruneReport(operator=who, dry_run=dry_run, older_than=older_than,
                         cutoff=datetime.fromisoformat(counts["cutoff"]), **_counts(counts, with_cutoff=False))
    if dry_run:
        return report
    return report.model_copy(update={"ledger_seq": ledger(counts, complete=True).seq})


def _counts(counts: dict, *, with_cutoff: bool = True) -> dict:
    keys = ("proposals", "deletions", "kept_undecided", "kept_for_undecided") + (("cutoff",) if with_cutoff else ())
    return {k: counts.get(k) for k in keys}


__all__ = ["MIN_RETENTION", "PruneReport", "check_retention", "prune_registry"]
