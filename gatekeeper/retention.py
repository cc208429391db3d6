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
  reviewer accounts. Receipts are a few hundred bytes each (about a quarter of a row) and are kept unless the
  prune is given a receipt retention too (``receipts_older_than``, at least ``MIN_RECEIPT_RETENTION`` and
  longer than the rows'): then the receipts of proposals journaled before it go as well
  (``ProposalRegistry.drop_receipts`` says what they no longer do), except those of erased proposals, which
  keep refusing the erased ids;
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
#: the shortest receipt retention ``prune_registry`` accepts: an agent thread resumed or a client retrying after
#: weeks must still be answered from the receipt, not have its write reviewed and stored again
MIN_RECEIPT_RETENTION = timedelta(days=30)


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
    #: the receipt retention asked for (None: receipts are kept)
    receipts_older_than: timedelta | None = None
    #: receipts of proposals journaled before this went (would go); None when receipts are kept
    receipts_cutoff: datetime | None = None
    #: receipts deleted (would be deleted)
    receipts: int = 0
    #: receipts before the receipt cutoff kept because their proposal was erased (they refuse its id)
    kept_erased_receipts: int = 0
    #: the ``registry.pruned`` ledger entry's sequence number; None on a dry run
    ledger_seq: int | None = None


class PruneStopped(Exception):
    """A prune an error stopped: what it deleted before the error, and whether that is on the record.

    Raised by ``prune_registry`` from the error that stopped it (``__cause__``). ``proposals``, ``deletions``
    and ``receipts`` count the rows deleted before it (each batch is one transaction: a batch the error cut
    into is not counted and not deleted). ``ledger_seq`` is the ``registry.pruned`` entry (``complete:
    false``) that records them; None when nothing was deleted (nothing to record) or when the ledger could
    not be written either (``ledger_error`` says why)."""

    def __init__(self, error: BaseException, *, proposals: int = 0, deletions: int = 0, receipts: int = 0,
                 ledger_seq: int | None = None, ledger_error: str | None = None):
        self.error = f"{type(error).__name__}: {error}"
        self.proposals, self.deletions, self.receipts = proposals, deletions, receipts
        self.ledger_seq, self.ledger_error = ledger_seq, ledger_error
        super().__init__(self.summary())

    @property
    def deleted_any(self) -> bool:
        return bool(self.proposals or self.deletions or self.receipts)

    def summary(self) -> str:
        if not self.deleted_any:
            return f"prune stopped before deleting anything ({self.error}); nothing changed"
        what = f"{self.proposals} proposals, {self.deletions} recorded deletes" + (
            f", {self.receipts} receipts" if self.receipts else "")
        record = (f"ledgered as registry.pruned (seq {self.ledger_seq}, complete: false)" if self.ledger_seq
                  is not None else f"NOT ledgered ({self.ledger_error}): the ledger keeps every pruned row's "
                  "decision, but not this prune")
        return f"prune stopped ({self.error}) after deleting {what}; {record}"


def check_retention(older_than: timedelta, context_minutes: float) -> None:
    """Refuse a retention period shorter than ``MIN_RETENTION`` or not longer than the agent context window
    (``thresholds.context_minutes``: the committed writes of that window are joined with each new write to
    catch a belief split over several writes; pruning inside it would let such a split through)."""
    if not isinstance(older_than, timedelta):
        raise TypeError(f"older_than must be a timedelta, not {type(older_than).__name__}")
    if older_than < MIN_RETENTION:
        raise ValueError(f"older_than must be at least {MIN_RETENTION.days} day (a retried proposal or a recovery must "
                         f"still find its rows), not {older_than}")
    window = timedelta(minutes=context_minutes)
    if older_than <= window:
        raise ValueError(f"older_than ({older_than}) must be longer than the policy's agent context window "
                         f"(thresholds.context_minutes: {window}): the gate reads the writes inside it")


def check_receipt_retention(receipts_older_than: timedelta, older_than: timedelta) -> None:
    """Refuse a receipt retention shorter than ``MIN_RECEIPT_RETENTION`` or than the rows' own retention (the
    receipts of the rows pruned now would go at once)."""
    if not isinstance(receipts_older_than, timedelta):
        raise TypeError(f"receipts_older_than must be a timedelta, not {type(receipts_older_than).__name__}")
    if receipts_older_than < MIN_RECEIPT_RETENTION:
        raise ValueError(f"receipts_older_than must be at least {MIN_RECEIPT_RETENTION.days} days (a thread "
                         f"resumed or a client retrying weeks later must still find its receipt), not "
                         f"{receipts_older_than}")
    if receipts_older_than <= older_than:
        raise ValueError(f"receipts_older_than ({receipts_older_than}) must be longer than older_than "
                         f"({older_than}): the receipts of the rows pruned now would go at once")


def prune_registry(gate: Gatekeeper, older_than: timedelta, *, operator: str, dry_run: bool = False,
                   batch: int = 1000, receipts_older_than: timedelta | None = None) -> PruneReport:
    """Delete from ``gate``'s registry the finished proposals and recorded deletes older than ``older_than``
    (``ProposalRegistry.prune`` for the rules; undecided rows and the rows of their keys stay), and
    ledger it as ``registry.pruned`` with ``operator``, the cutoffs and the counts.

    ``older_than``: at least ``MIN_RETENTION`` and longer than the policy's ``thresholds.context_minutes``
    (ValueError otherwise). ``operator``: who runs it, for the ledger (required unless ``dry_run``).
    ``dry_run``: count what would go (receipts: those there and those this prune would make and drop at
    once), change nothing, write no ledger entry; refused on a closed gate unless ``dry_run``
    (``GateClosedError``). ``receipts_older_than``: also
    delete the receipts of proposals journaled before now minus it (``ProposalRegistry.drop_receipts``; erased
    proposals' receipts stay); at least ``MIN_RECEIPT_RETENTION`` and longer than ``older_than``. None (the
    default) keeps every receipt.

    The rows are deleted before the ledger entry is written: a ledger that cannot be written raises after the
    prune (every pruned row's decision is in the ledger already, marked ``ledgered``; only the record of the
    prune is missing, and a second run ledgers its own). A prune an error stops half way is ledgered with what
    it deleted so far (``complete: false``) and raises ``PruneStopped`` (which says what went and whether it
    is ledgered) from the error; a dry run raises the error itself."""
    check_retention(older_than, gate.policy.thresholds.context_minutes)
    if receipts_older_than is not None:
        check_receipt_retention(receipts_older_than, older_than)
    if not dry_run and (not isinstance(operator, str) or not operator.strip()):
        raise ValueError("pruning the registry needs the operator's name, for the ledger")
    who = operator.strip() if isinstance(operator, str) and operator.strip() else None
    progress: dict = {}
    dropped: dict = {}

    def ledger(counts: dict, **outcome: Any):
        receipts = {} if receipts_older_than is None else {
            "receipts_older_than_s": receipts_older_than.total_seconds(), "receipts_cutoff": dropped.get("cutoff"),
            "receipts": dropped.get("receipts", 0), "kept_erased_receipts": dropped.get("kept_erased", 0)}
        return gate._append_many([("registry.pruned", {  # noqa: SLF001 - the gate's append repairs a torn tail
            "operator": who, "older_than_s": older_than.total_seconds(), **outcome, **_counts(counts),
            **receipts})])[0]

    if not dry_run:  # a closed gate changes nothing (``Gatekeeper.close``), as an erasure on it does not
        from gatekeeper.gate import CHANGE_REFUSED

        gate._refuse_if_closed(CHANGE_REFUSED)  # noqa: SLF001 - the gate's admission of changes
    try:
        now = utcnow()
        counts = gate.registry.prune(
            now - older_than, dry_run=dry_run, batch=batch, progress=progress,
            journaled_before=now - receipts_older_than if dry_run and receipts_older_than is not None else None)
        if receipts_older_than is not None:
            gate.registry.drop_receipts(now - receipts_older_than, dry_run=dry_run, batch=batch, progress=dropped)
            if dry_run:  # the receipts this prune would make and the drop that follows it would take at once
                dropped["receipts"] += counts.get("journaled_before_count", 0)
    except BaseException as exc:
        # stopped half way (another process held the database past the busy timeout, a full disk, Ctrl-C)
        went = {"proposals": progress.get("proposals") or 0, "deletions": progress.get("deletions") or 0,
                "receipts": dropped.get("receipts") or 0}
        error, seq, ledger_error = f"{type(exc).__name__}: {exc}", None, None
        if not dry_run and any(went.values()):  # what went is on the record too
            try:
                seq = ledger(progress, complete=False, error=error).seq
            except Exception as ledger_exc:  # noqa: BLE001 - reported with the prune's own error
                ledger_error = f"{type(ledger_exc).__name__}: {ledger_exc}"
        if dry_run or not isinstance(exc, Exception):
            raise  # a count that failed changed nothing; Ctrl-C and the like stay what they are
        stopped = PruneStopped(exc, **went, ledger_seq=seq, ledger_error=ledger_error)
        raise stopped from exc
    report = PruneReport(operator=who, dry_run=dry_run, older_than=older_than,
                         cutoff=datetime.fromisoformat(counts["cutoff"]), **_counts(counts, with_cutoff=False),
                         receipts_older_than=receipts_older_than,
                         receipts_cutoff=datetime.fromisoformat(dropped["cutoff"]) if dropped else None,
                         receipts=dropped.get("receipts", 0), kept_erased_receipts=dropped.get("kept_erased", 0))
    if dry_run:
        return report
    return report.model_copy(update={"ledger_seq": ledger(counts, complete=True).seq})


def _counts(counts: dict, *, with_cutoff: bool = True) -> dict:
    keys = ("proposals", "deletions", "kept_undecided", "kept_for_undecided") + (("cutoff",) if with_cutoff else ())
    return {k: counts.get(k) for k in keys}


__all__ = ["MIN_RECEIPT_RETENTION", "MIN_RETENTION", "PruneReport", "PruneStopped", "check_receipt_retention",
           "check_retention", "prune_registry"]
