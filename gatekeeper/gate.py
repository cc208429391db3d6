"""The gate: proposal -> review -> decision -> commit / quarantine / escalate.

``Gatekeeper`` owns the write path. For each proposal it

1. journals it in the registry (state ``received``),
2. reviews it (``Reviewer``) — any failure becomes a fail-closed review,
3. decides (``decision.decide``) and moves the row to its final state,
4. applies a commit to the memory store (any ``BaseStore``; by default the
   embedded chromadb store) — a store failure moves the write to quarantine,
5. appends the decision to the hash-chained audit ledger.

Every step is idempotent and ``recover()`` finishes what a crash interrupted,
so every proposal ends in exactly one of committed / quarantined / pending with
one ledger entry.

Crash safety (tested by killing worker processes with SIGKILL at random points and
at the named crash points below, ``benchmarks/durability.py``):

* ``open()`` repairs a torn ledger tail (a final line without its newline: a
  write that a crash interrupted) before anything else, and records the repair
  as a ``ledger.tail_repaired`` entry holding the removed bytes. The torn entry's
  proposal was never marked ``ledgered``, so ``recover()`` writes it again. A
  final line that is complete but does not verify is tampering, not a crash:
  ``open()`` refuses to start (``LedgerCorruptError``) rather than write
  decisions nobody can audit.
* ``recover()`` only finishes proposals whose owner process is dead (see
  ``registry``); proposals in flight in a live process are left to it.
* A commit that recovery re-applies is skipped when a later decision for the same
  (namespace, key) already reached the store, so recovery never overwrites a
  newer memory with an older one. That check and the write hold the key's lock
  (``key_locks``, as a person's approval of an escalation does), which the gate's
  own commits and deletes of the key hold around their store writes, so none of
  them lands in between, whichever process of the data directory writes.

``_crash_point(name)`` marks the steps between durable writes. It does nothing
unless the environment variable ``GATEKEEPER_CRASH_AT`` names the point (optionally
``name:N`` for its N-th passage); then the process kills itself with SIGKILL there.
It exists for the crash tests only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AbstractSet, Any, Iterable, Mapping, Sequence

from langgraph.store.base import BaseStore, PutOp

from gatekeeper.decision import REVIEW_FAILED, action_for, decide
from gatekeeper.embeddings import Embedder
from gatekeeper.files import exclusive_lock, private_dir_undone_on_error
from gatekeeper.key_locks import key_locks
from gatekeeper.ledger import _TS_FORMAT as _LEDGER_TS_FORMAT
from gatekeeper.ledger import AuditLedger, LedgerCorruptError
from gatekeeper.log_setup import get_logger
from gatekeeper.models import (
    EXPIRY_REVIEWER,
    Action,
    Decision,
    EscalationMode,
    GateOutcome,
    Label,
    MAX_REASON_CHARS,
    MemoryWrite,
    ProposalState,
    STORED,
    ReviewResult,
    as_utc,
    escalation_mode_of,
    utcnow,
    whole_number,
)
from gatekeeper.policy import Policy, default_policy_dir, load_policy
from gatekeeper.registry import (
    ERASED,
    POLICY_IN_FORCE,
    ConflictError,
    ProposalRegistry,
    LeftOutText,
    StoreKey,
    WriteContext,
    cleared_alarming,
    context_of,
    joinable,
    owner_alive,
    process_token,
    row_decision,
    row_proposal,
    row_review,
    store_key,
)
from gatekeeper.reviewer import Reviewer
from gatekeeper.settings import (
    DEFAULT_TRAINING_NICE,
    GatekeeperSettings,
    check_environment,
)
from gatekeeper.store_identity import (
    OtherStoreError,
    adoption_refused,
    load_memory_store,
    store_identity,
    where_to_decide,
)
from gatekeeper.telemetry import report_import_warnings
from gatekeeper.training_process import (
    PolicyChanged,
    TrainingCancelled,
    TrainingJob,
    importable_name,
    run_in_child,
)

log = get_logger("gatekeeper.gate")

#: the reason a commit that the memory store refused is quarantined with (fail closed); what
#: ``Gatekeeper.retry_store_failures`` looks for
STORE_FAILED = "memory store write failed, quarantined (fail closed)"

#: the decision reasons of the writes quarantined by a fault, not by their review: a memory store that refused
#: the commit (``retry_store_failures``) and a review that failed (``retry_failed_reviews``). Such a write awaits
#: a retry: retention keeps it, and a retry of an older write of its key waits for it
RETRY_REASONS = (STORE_FAILED, REVIEW_FAILED)
#: what each kind of retry looks for (None: any write the gate quarantined, not a fault), the tag of the retried
#: proposal's id and what the registry's resolution reason calls it
_RETRY_KINDS = {"store": (STORE_FAILED, "store-retry", "store failure retried"),
                "review": (REVIEW_FAILED, "review-retry", "review failure retried"),
                "recheck": (None, "recheck", "reviewed again under the policy in force")}

#: how many quarantined rows a recheck reads and reviews at a time
_RECHECK_PAGE = 64
#: the start of the decision reason of a quarantined write an admin sent to the review queue
#: (``Gatekeeper.release_to_review``)
RELEASED = "sent from quarantine to human review"
#: the start of the decision reason of an escalation quarantined because its agent already had
#: ``escalation.max_pending_per_agent`` escalations waiting in the review queue
QUEUE_CAPPED = "review queue cap reached, quarantined (fail closed)"
#: how many pages of store search results the judge's similar memories look through for the write's own
#: namespace (a store searches by prefix: a parent namespace's results hold its children's memories)
SIMILAR_PAGES = 3
#: the longest reason a release takes (as a reviewer's reason: the web forms' and the API's limit)
MAX_RELEASE_REASON = MAX_REASON_CHARS

_STATE_FOR = {
    Action.commit: ProposalState.committed,
    Action.quarantine: ProposalState.quarantined,
    Action.escalate: ProposalState.pending,
}


# ------------------------------------------------------------------ test hooks
CRASH_ENV = "GATEKEEPER_CRASH_AT"
#: the points between durable writes where a crash test may kill the process
CRASH_POINTS = (
    "after_journal",        # registry row 'received', nothing reviewed yet
    "after_decision",       # decision recorded, commit not yet written to the store
    "after_store_write",    # memory store written, registry not yet marked applied
    "after_applied",        # marked applied, decision not yet in the ledger
    "after_ledger_append",  # ledger entry written, registry not yet marked ledgered
)
_crash_hits: dict[str, int] = {}


def _policy_file_digests(policy: Policy) -> dict[str, str | None]:
    """Each policy file the policy was loaded from, with the sha256 of its bytes (None: unreadable now)."""
    digests: dict[str, str | None] = {}
    for name in policy.source_files:
        try:
            digests[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            digests[name] = None
    return digests


def _gatekeeper_version() -> str:
    from gatekeeper import __version__

    return __version__


def _crash_point(name: str) -> None:
    """SIGKILL this process here if ``GATEKEEPER_CRASH_AT`` says so (crash tests only)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _crash_hits[name] = _crash_hits.get(name, 0) + 1
    if _crash_hits[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)


# proposals being worked on in this process (any Gatekeeper instance, any thread):
# recover() leaves them alone
_INFLIGHT: set[str] = set()
_INFLIGHT_LOCK = threading.Lock()


def _inflight_after_fork() -> None:
    """In a forked child: the parent's writes in flight are not the child's, and its lock may have been held."""
    global _INFLIGHT_LOCK
    _INFLIGHT_LOCK = threading.Lock()
    _INFLIGHT.clear()
    _JOURNALING.clear()


os.register_at_fork(after_in_child=_inflight_after_fork)


@contextmanager
def _working_on(ids: Sequence[str]):
    with _INFLIGHT_LOCK:
        _INFLIGHT.update(ids)
    try:
        yield
    finally:
        with _INFLIGHT_LOCK:
            _INFLIGHT.difference_update(ids)


# proposals of this process between their journaling and the end of their review, by how many submissions are
# journaling them (``submit_many``): the one that journaled an id first, and others that tried at the same moment
# for a brief while. A second submission of an id waits for its decision while the first is at work on it
_JOURNALING: Counter[str] = Counter()


def _mark_journaling(ids: Counter[str]) -> None:
    with _INFLIGHT_LOCK:
        _JOURNALING.update(ids)


def _unmark_journaling(ids: Counter[str]) -> None:
    with _INFLIGHT_LOCK:
        _JOURNALING.subtract(ids)
        for pid in ids:
            if _JOURNALING[pid] <= 0:
                del _JOURNALING[pid]


def _classifier_inputs(policy: Policy) -> tuple:
    """What of a policy its classifier is trained on (``classifier.inputs_hash``): its categories and exemplars."""
    return tuple(sorted(policy.categories)), tuple(policy.exemplar_texts())


class _TrainingCancelled(Exception):
    """Raised from a background training's progress callback to stop it (the gate was closed, or a newer policy
    was put in force)."""


#: how many ids of the proposals one recovery ledgered its ``gate.recovered`` entry names
RECOVERED_IDS_KEPT = 1000
#: what ``recover`` (and the finishing of a replayed write, ``Gatekeeper._finish``) counts
_RECOVERY_COUNTS = ("reviewed", "reapplied", "superseded", "ledgered", "already_ledgered", "deletes_applied")


class ProposalIdConflict(ValueError):
    """A proposal id submitted again with other content (namespace, key or value) than the write the gate
    already knows under it. An id names one write (a retry with the same id is answered with the first
    decision), so such a batch is refused before anything of it is journaled."""


class GateError(RuntimeError):
    """The gate could not record a decision. The proposal stays journaled as
    ``received`` and ``recover()`` finishes it; nothing was committed."""


class GateClosedError(GateError):
    """A change was sent to a gate after ``Gatekeeper.close()`` (a write, a delete, a recovery, a person's decision,
    a release to review, a retry, an expiry, a policy reload, an erasure): nothing of it was journaled, ledgered or
    written. Open a new gate."""


#: how long the second of two submissions of one proposal id at once waits for the first one's decision
#: (``Gatekeeper._decided_elsewhere``)
TAKEN_WAIT_S = 30.0

#: how long ``Gatekeeper.close`` waits for the writes in flight to finish before closing under them
CLOSE_WAIT_S = 30.0

#: how a ``GateClosedError`` begins; each change it refuses adds what was not done and what to do
_CLOSED = "the gate is closed (Gatekeeper.close() was called): "
WRITE_REFUSED = "nothing was written; open a new gate"
CHANGE_REFUSED = "nothing was changed; open a new gate"
DECISION_REFUSED = ("the decision was not recorded and nothing was changed (the escalation stays pending); decide "
                    "it on a gate that is open (open a new gate, or restart the review server)")
RELEASE_REFUSED = ("nothing was released and nothing was changed (the write stays quarantined); release it on a "
                   "gate that is open (open a new gate)")
RETRY_REFUSED = ("no write was retried from here on (any retried before the gate closed has its proposal.retried "
                 "entry; the others stay quarantined as they were); run it again on a new gate")
EXPIRY_REFUSED = ("no escalation was expired and nothing was changed; run the expiry on a gate that is open (open a "
                  "new gate)")
RELOAD_REFUSED = ("the policy was not reloaded and nothing was changed; a new gate loads the policy files as they "
                  "are now")


class RegistryLostError(RuntimeError):
    """The registry file is empty (0 bytes) while the ledger beside it records decisions: it was truncated (a
    full disk, a copy cut short) or not restored with the ledger. Opening it would start a new, empty registry:
    the review queue and every write's journal gone, and a status that says all is well."""


def refuse_a_lost_registry(data: Path) -> None:
    """Raise ``RegistryLostError`` for a 0-byte ``gatekeeper.db`` beside a ledger that holds entries."""
    registry = data / "gatekeeper.db"
    if not (registry.is_file() and registry.stat().st_size == 0):
        return
    ledger, archives = data / "ledger.jsonl", data / "ledger-archive"
    if (ledger.is_file() and ledger.stat().st_size > 0) or (archives.is_dir() and any(archives.iterdir())):
        raise RegistryLostError(
            f"registry {registry}: empty (0 bytes), but the ledger {ledger} records decisions: the registry was "
            "truncated or not restored with the ledger. Restore gatekeeper.db from the same backup as the ledger; "
            "the gate will not start an empty one.")


def release_request(operator: str | None, reason: str | None) -> tuple[str, str]:
    """A release's operator and reason, stripped; ValueError when either is empty or the reason is longer than
    ``MAX_RELEASE_REASON`` (the same for every write of a release, so checked before any is released)."""
    operator, reason = (operator or "").strip(), (reason or "").strip()
    if not operator:
        raise ValueError("releasing a quarantined write needs the operator's name, for the ledger")
    if not reason:
        raise ValueError("releasing a quarantined write needs a reason, for the reviewer and the ledger")
    if len(reason) > MAX_RELEASE_REASON:
        raise ValueError(f"the reason is {len(reason)} characters long; at most {MAX_RELEASE_REASON} are kept")
    return operator, reason


def _queue_place(waiting: dict[str, int], agent: str, cap: int) -> bool:
    """Whether one more escalation of ``agent`` fits under the queue cap (``escalation.max_pending_per_agent``),
    ``waiting`` holding each agent's escalations waiting; one that fits is counted in ``waiting``."""
    if waiting.get(agent, 0) >= cap:
        return False
    waiting[agent] = waiting.get(agent, 0) + 1
    return True


class Gatekeeper:
    def __init__(self, *, policy: Policy, registry: ProposalRegistry, ledger: AuditLedger,
                 memory_store: BaseStore, reviewer: Reviewer | None = None,
                 escalation_mode: EscalationMode | None = None, judge_model=None,
                 training_nice: int = DEFAULT_TRAINING_NICE, training_process: bool = True):
        # a bad GATEKEEPER_* value stops the gate here, not at its first review (as GatekeeperSettings does
        # for Gatekeeper.open): a gate built in code checks the environment too
        check_environment()
        report_import_warnings()  # kept from ``import gatekeeper``, before the host could set up its logging
        escalation_mode = escalation_mode_of(escalation_mode)
        self.policy = policy
        self.registry = registry
        self.ledger = ledger
        self.memory_store = memory_store
        #: the identity of that store, journaled with every write and delete: only a gate whose store has a
        #: row's identity writes it into its store (``writes_to``, ``gatekeeper.store_identity``)
        self.store_id = store_identity(memory_store, Path(registry.path).parent)
        self.reviewer = reviewer or Reviewer(policy, judge_model=judge_model,
                                             similar_memories=self._similar_memories)
        self.escalation_mode = escalation_mode
        self.judge_model = judge_model
        log_judge_setup(policy, self.reviewer.judge_model)
        #: the nice value a background classifier training adds to its child process or thread
        #: (``GatekeeperSettings``)
        self.training_nice = training_nice
        #: whether that training runs in a child process (``GatekeeperSettings.training_process``)
        self.training_process = training_process
        #: ``Gatekeeper.open`` made the reviewer (none was given): ``close`` stops its encoder's child process
        self._owns_reviewer = False
        self._policy_lock = threading.Lock()
        #: one policy reload at a time (code's ``reload_policy`` and the policy watcher's)
        self.reload_lock = threading.RLock()
        self._reloads = 0
        self._training: dict[str, Any] | None = None
        self._training_thread: threading.Thread | None = None
        #: puts edits of the policy files in force (started by ``Gatekeeper.open``, see ``policy_watch_s``)
        self.policy_watcher: Any = None
        self._closed = False
        #: the changes in flight (``_admitted``: writes, deletes, recoveries, decisions, releases, retries, policy
        #: reloads), which ``close`` waits for
        self._busy = 0
        self._busy_cond = threading.Condition()
        #: ``depth``: how many ``_admitted`` blocks this thread is in (a change's own steps are admitted with it)
        self._admission = threading.local()
        #: the retries that carry a person's approval (``_carry_approval``): their escalation is decided at once,
        #: so it takes no place in the review queue (``_within_queue_cap``)
        self._carrying_approval: set[str] = set()

    # ------------------------------------------------------------------ factory
    @classmethod
    def open(cls, settings: GatekeeperSettings | None = None, *, memory_store: BaseStore | None = None,
             policy: Policy | None = None, reviewer: Reviewer | None = None, judge_model=None,
             escalation_mode: EscalationMode | None = None, recover: bool = True) -> "Gatekeeper":
        """A gate from settings: by default everything under one data directory, no server; with
        ``settings.chroma_url`` the committed memories live on that Chroma server, with ``settings.memory_store``
        in the store it names (``GATEKEEPER_MEMORY_STORE``), unless ``memory_store`` is given. The LLM judge's model is
        ``judge_model``, else the one ``settings.judge_model`` names (``GATEKEEPER_JUDGE_MODEL``; a
        ``JudgeModelError`` when it does not load), unless a ``reviewer`` is given (it brings its own)."""
        settings = settings or GatekeeperSettings()
        escalation_mode = escalation_mode_of(escalation_mode)  # a misspelt mode opens nothing
        data = Path(settings.data_dir)
        refuse_a_lost_registry(data)
        policy = policy or load_policy(settings.policy_dir)
        made_reviewer = reviewer is None
        if reviewer is None:
            if judge_model is None and settings.judge_model:
                from gatekeeper.judge_spec import load_judge_model

                judge_model = load_judge_model(settings.judge_model)  # JudgeModelError: the gate does not open
            reviewer = Reviewer(policy, judge_model=judge_model)
        # the data directory is made only now, after a policy or judge that does not load has refused the open,
        # and removed again (while still empty) when the rest fails: a refused open leaves no directory behind
        with private_dir_undone_on_error(data):
            if memory_store is None and settings.memory_store is not None:
                # the agent's store, named in the settings (GATEKEEPER_MEMORY_STORE): a MemoryStoreSpecError
                # when it does not load, and the gate does not open
                memory_store = load_memory_store(settings.memory_store)
            if memory_store is None:
                from gatekeeper.chroma_store import ChromaMemoryStore

                # the settings' Chroma server, or the embedded database (as private as the registry and ledger)
                memory_store = ChromaMemoryStore.from_settings(settings, embed=reviewer.embedder)
            gate = cls(policy=policy, registry=ProposalRegistry(data / "gatekeeper.db"),
                       ledger=AuditLedger(data / "ledger.jsonl"), memory_store=memory_store,
                       reviewer=reviewer, escalation_mode=escalation_mode, judge_model=judge_model,
                       training_nice=settings.training_nice, training_process=settings.training_process)
            gate._owns_reviewer = made_reviewer
            if gate.reviewer.similar_memories is None:
                gate.reviewer.similar_memories = gate._similar_memories
            try:
                gate.repair_ledger_tail(strict=True)
                gate.refuse_a_lost_ledger()
                gate.backfill_deletions()
                gate.note_policy_in_force()
                if recover:
                    gate.recover()
            except BaseException:
                gate.close()
                raise
        if settings.policy_watch_s > 0 and gate.policy.source_path:
            from gatekeeper.policy_watch import PolicyWatcher

            gate.policy_watcher = PolicyWatcher(gate, settings.policy_watch_s,
                                                settings.policy_settle_s).start()
        return gate

    # ------------------------------------------------------------------- ledger
    def note_policy_in_force(self) -> bool:
        """Ledger ``policy.loaded`` when the policy this gate opened with is not the one the ledger last recorded
        in force (``registry_meta``): policy files edited while no gate ran left no ledger event, only another
        hash on later decisions (and the same version label). The entry names the old and new hash, the version,
        each file with its sha256 (to match against the copy kept under version control) and the gatekeeper
        version. The first policy a data directory's gates open with (or the first since an upgrade to this
        release) is noted without an entry: the decisions name it by hash, and a fresh data directory has no
        ledger until its first decision. True when it wrote one."""
        if self.registry.read_only:
            return False
        old = self.registry.meta(POLICY_IN_FORCE)
        if old == self.policy.hash:
            return False
        if old is not None:
            # ledgered before it is noted: a ledger that refuses the entry (a full disk) leaves the change to be
            # ledgered at the next open, never noted without its entry (two processes opening at once may both
            # ledger it)
            self._append("policy.loaded", old_hash=old, new_hash=self.policy.hash, version=self.policy.version,
                         files=_policy_file_digests(self.policy), gatekeeper_version=_gatekeeper_version())
        self.registry.set_meta(POLICY_IN_FORCE, self.policy.hash)
        return old is not None

    def refuse_a_lost_ledger(self) -> None:
        """Raise ``LedgerCorruptError`` when the registry holds decisions marked ledgered and the ledger holds no
        entry at all (missing or emptied, no archives): the audit record was lost or not restored with the
        registry (a partial copy). Starting a new chain there would hide the loss behind a ledger that
        verifies."""
        if ledger_lost(self.ledger, self.registry._con()):  # noqa: SLF001 - one existence check
            raise LedgerCorruptError(
                f"ledger {self.ledger.path}: empty or missing, but the registry {self.registry.path} holds "
                "decisions recorded in it: the audit ledger was lost or not restored with the registry. Restore "
                "it (ledger.jsonl and ledger-archive/ from the same backup); the gate will not start a new one.")

    def repair_ledger_tail(self, *, strict: bool = False) -> int:
        """Repair a torn ledger tail (what a crash mid-append leaves); return the bytes removed.

        The repair is recorded in the ledger (``ledger.tail_repaired``). With
        ``strict``, a final line that is complete but does not verify (tampering)
        raises ``LedgerCorruptError``.
        """
        try:
            self.ledger.last()
            return 0
        except LedgerCorruptError as exc:
            removed = self.ledger.repair_torn_tail(record=True)
            if removed:
                log.warning("gate.ledger_tail_repaired", bytes=len(removed), path=str(self.ledger.path))
                return len(removed)
            if strict:
                # what is wrong with it (a blank line an editor or `echo >>` left, an edited entry), not only that
                # something is
                problem = exc.problem or str(exc)
                raise LedgerCorruptError(
                    f"ledger {self.ledger.path}: its last line is complete but does not verify as an entry "
                    f"({problem}): not a torn write, the file was edited. The gate will not record decisions on "
                    "a ledger it cannot chain onto; run `gatekeeper ledger verify` and restore the ledger.") from None
            raise

    def _append(self, event: str, /, **fields: Any) -> None:
        """Append to the ledger; a torn tail left by a crashed process is repaired first."""
        self._append_many([(event, fields)])

    def _append_many(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> list:
        """Append entries with one flush; a torn tail left by a crashed process is repaired first."""
        try:
            return self.ledger.append_many(entries)
        except LedgerCorruptError:
            if not self.repair_ledger_tail():
                raise
            return self.ledger.append_many(entries)

    @contextmanager
    def _admitted(self, refused: str = WRITE_REFUSED):
        """Run a change of the gate's state (a write, a delete, a recovery, a person's decision, a release to
        review, a retry, a policy reload), unless the gate is closed: then ``GateClosedError``, whose message adds
        ``refused`` (what was not done, and what to do), before anything is changed. A closed gate's registry and
        ledger reopen on their next use (a change after ``close()`` was recorded and ledgered into files the caller
        believed closed) and its chromadb store refuses every write (an approval after ``close()`` was quarantined
        as a store failure). ``close`` waits for the changes in flight.

        Reentrant within a thread: the steps of an admitted change (an approval's commit, a retry's submission, a
        recovery's re-review) are part of it, and go on after ``close()`` was called meanwhile, so that the change
        finishes whole instead of stopping half way."""
        depth = getattr(self._admission, "depth", 0)
        if depth:
            self._admission.depth = depth + 1
            try:
                yield
            finally:
                self._admission.depth = depth
            return
        with self._busy_cond:
            if self._closed:
                raise GateClosedError(_CLOSED + refused)
            self._busy += 1
        self._admission.depth = 1
        try:
            yield
        finally:
            self._admission.depth = 0
            with self._busy_cond:
                self._busy -= 1
                self._busy_cond.notify_all()

    def _refuse_if_closed(self, refused: str) -> None:
        """``GateClosedError`` (with ``refused``) when the gate is closed: ``_admitted``'s check, made before the
        first step of a run of many (a bulk decision, a retry run, an expiry), each step being admitted on its own
        so that ``close`` stops the run between two steps rather than waiting for all of them."""
        with self._admitted(refused):
            pass

    @contextmanager
    def key_locks(self, keys: Iterable[tuple[Sequence[str], str]]):
        """Hold the locks of these (namespace, key) pairs against this process's other threads and the other
        processes of this data directory (``gatekeeper.key_locks``; the lock file sits beside the registry).
        Taken to change what the keys hold, so admitted (``_admitted``): ``GateClosedError`` on a closed gate
        (an erasure after ``close()`` went on to redact the ledger and erase registry rows)."""
        with self._admitted(CHANGE_REFUSED), key_locks(keys, Path(self.registry.path).with_name("key-locks")):
            yield

    def writes_to(self, row: dict) -> bool:
        """Whether this gate writes the registry ``row`` (a proposal or a delete) into its memory store: the row was
        journaled for this gate's store, or before stores were recorded (``store`` NULL). A write
        journaled for another store (the agent's ``GatedStore`` over its own store, while this is the CLI's gate over
        the data directory's chromadb) is left to a gate of that store: written here, the agent would never read
        it."""
        return row.get("store") in (None, self.store_id)

    def refuse_another_store(self, row: dict) -> None:
        """``OtherStoreError`` when ``row`` is a write this gate does not write into its store (``writes_to``),
        saying where it goes and how to decide it there."""
        if not self.writes_to(row):
            raise OtherStoreError(
                f"proposal {row['id']} is to be stored in the agent's memory store ({row['store']}), and this "
                f"process writes to another ({self.store_id}): committed here, the agent would never recall it. "
                f"{where_to_decide(row['store'])}")

    def adopt_store(self, old: str, *, operator: str, dry_run: bool = False) -> int:
        """Take over the writes and deletes journaled for the memory store ``old`` as this gate's store's: the same
        store, moved (its database file renamed, mounted elsewhere), whose writes every gate now leaves to a store
        that no longer exists; or the in-memory store of an agent process that has ended, taken over by the
        restarted agent's in-memory store. How many rows; ledgered as ``store.adopted`` with ``operator``.
        ValueError for an empty operator and for what ``store_identity.adoption_refused`` refuses (this gate's own
        store; an in-memory store of a running process, or into a store not held in memory)."""
        operator = (operator or "").strip()
        if not operator:
            raise ValueError("adopting a store needs the operator's name, for the ledger")
        refused = adoption_refused(self.store_id, old)
        if refused is not None:
            raise ValueError(refused)
        if dry_run:
            return self.registry.relabel_store(old, self.store_id, dry_run=True)
        with self._admitted(CHANGE_REFUSED):
            rows = self.registry.relabel_store(old, self.store_id)
            self._append("store.adopted", old_store=old, store=self.store_id, rows=rows, operator=operator)
        log.info("gate.store_adopted", old_store=old, store=self.store_id, rows=rows, operator=operator)
        return rows

    def record_deletes(self, deletes: Sequence[tuple[tuple[str, ...], str]], *, agent_id: str,
                       apply: Any, task_id: str | None = None) -> None:
        """Ledger and apply deletes of (namespace, key): the ``memory.deleted`` entries first (a ledger that
        cannot be written leaves the memories in place: a delete is never applied unaudited), then the
        registry's record of them, which a person's later approval of an older escalation of the same key reads
        (it must not bring the memory back), then ``apply()`` (the store's delete). Recorded before it is
        applied, so a crash in between leaves the registry agreeing with the ledger rather than missing the
        delete; a store that refuses the delete takes the record back (an interrupted delete keeps it, for
        recovery to complete). The keys' locks are held throughout, so that approval's check and store write see
        the delete whole or not at all. ``task_id``: the LangGraph task that deletes (``restore_deleted_by_rerun``)."""
        with self._admitted(), self.key_locks(deletes):
            entries = self._append_many([("memory.deleted", {"namespace": list(ns), "key": key,
                                                             "agent_id": agent_id}) for ns, key in deletes])
            self.registry.record_deletes([(ns, key, e.ts, e.seq) for (ns, key), e in zip(deletes, entries)],
                                         task_id=task_id, store=self.store_id)
            # a store that refuses the delete (an Exception) deleted nothing: its record goes. Anything else (Ctrl-C,
            # a task cancelled) stopped the delete at an unknown point, maybe after the store applied it: the ledger
            # says deleted, so the record stays, not applied, and recover() (_finish_deletes) completes it
            try:
                apply()
            except Exception:
                self.registry.forget_deletes([e.seq for e in entries])
                raise
            self.registry.mark_deletes_applied([e.seq for e in entries])

    def erased_replays(self, proposals: Sequence[MemoryWrite]) -> dict[str, GateOutcome]:
        """The proposals among ``proposals`` whose ids name an erased write (``gatekeeper forget``), each answered
        from its receipt (``GateOutcome.erased``, ``replayed``): nothing of them is written again. For a caller
        whose ids are derived from a LangGraph task (``GatedStore``): a re-run of a task whose write was erased
        meanwhile repeats its put, and ``submit_many`` refuses the batch (``ProposalIdConflict``)."""
        receipts = self.registry.pruned_many(list(dict.fromkeys(p.id for p in proposals)))
        return {p.id: _outcome_from_receipt(p, receipts[p.id]).model_copy(update={"erased": True})
                for p in proposals if receipts.get(p.id, {}).get("content_hash") == ERASED}

    def restore_deleted_by_rerun(self, outcomes: Sequence[GateOutcome], *, task_id: str, agent_id: str) -> int:
        """Write back the replayed commits of a LangGraph task whose keys that same task deleted since.

        A node that LangGraph runs again from its checkpoint (resumed after an ``interrupt()``, retried after an
        error) repeats its store calls. Through a ``GatedStore`` a put replays its first outcome without writing
        (so an escalation is not queued twice), while a delete is applied again, as on any store: a node that
        deletes a key and then puts it lost the memory on each re-run, its put reported committed. Each replayed
        commit among ``outcomes`` whose key the memory store no longer holds, where every delete of the key since
        the commit was made by ``task_id`` and nothing newer was committed, is written again and ledgered
        (``memory.restored``); a delete by anyone else stands. Returns how many were written back."""
        restored = 0
        for outcome in outcomes:
            if not (outcome.replayed and outcome.state is ProposalState.committed):
                continue
            proposal = outcome.proposal  # a replay's proposal is its row's
            with self.key_locks([(proposal.namespace, proposal.key)]):
                row = self.registry.get(proposal.id)
                # pruned (a receipt holds no value to write back), or no longer committed
                if row is None or row["state"] != ProposalState.committed.value:
                    continue
                deletes = self.registry.deletes_since(row["namespace"], row["key"], row["updated_at"])
                if (not deletes or any(d["task_id"] != task_id for d in deletes) or self.registry.superseded(row)
                        or self.memory_store.get(proposal.namespace, proposal.key) is not None):
                    continue
                value = _json_loads(row["final_value_json"]) if row["final_value_json"] else proposal.value
                state, decision = self._write_commits([(proposal, value, row_decision(row) or outcome.decision)])[
                    proposal.id]
                entry = {"proposal_id": proposal.id, "namespace": list(proposal.namespace), "key": proposal.key,
                         "agent_id": agent_id, "task_id": task_id}
                if state is ProposalState.committed:
                    self._append_many([("memory.restored", entry)])
                    restored += 1
                else:  # the store refused: quarantined like any commit it refuses (retry-store-failures)
                    self._append_many([("memory.restore_failed", {**entry, "error": decision.reason})])
        return restored

    def backfill_deletions(self) -> int | None:
        """Copy into the registry's ``deletions`` the deletes the ledger holds and it lacks (``memory.deleted``
        entries from before the registry recorded deletes, or from an older version of the gate), once per
        data directory (``ProposalRegistry.backfill_deletions``): without them, approving an escalation
        older than such a delete would bring the memory back. Reads the whole ledger, the first time only;
        ``Gatekeeper.open`` runs it. Returns the number of deletes added, None when it had run already."""
        if self.registry.deletions_backfilled():
            return None
        added = self.registry.backfill_deletions(_ledgered_deletes(self.ledger.history()))
        if added:
            log.info("gate.deletions_backfilled", added=added)
        return added

    # ------------------------------------------------------------------- policy
    def reload_policy(self, path: str | Path | None = None, *, background_training: bool = True) -> Policy:
        """Load a new policy and put it in force; on any error the old policy stays in force (never allow-all).

        ``path``: a policy directory (or file); omitted, the one the policy in force was loaded from.

        Rules, thresholds and escalation settings need no model work. An edit of the exemplars changes the
        classifier's training inputs; when that classifier is not cached yet it has to be trained (minutes):

        * ``background_training`` (default) and the same categories: the new policy takes effect at once,
          reviewed with the current classifier (its heads know every category) plus the new rules, thresholds
          and exemplar index (new exemplars and counter-exemplars count from the first write), while its own
          classifier trains in the background (a child process at ``training_nice``, see
          ``gatekeeper.training_process``; a thread where it cannot). When that is done it replaces the interim
          one. A newer policy with other exemplars or categories put in force meanwhile cancels it (its own
          training starts instead: one at a time, not one per save of an exemplar edit). The ledger records
          ``policy.reloaded`` (with ``classifier: "interim"``) and then ``classifier.trained`` (or
          ``classifier.training_failed``: the interim classifier stays).
        * otherwise (categories added or removed, or ``background_training=False``): the classifier is
          trained first and the old policy stays in force until it is ready.

        ``classifier_training`` reports a training in progress; ``wait_for_classifier`` waits for it.

        ``GateClosedError`` on a closed gate, and when the gate is closed while the new policy loads (or its
        classifier trains): the policy is not put in force and nothing is ledgered. ``close`` waits for a reload
        that is putting its policy in force, not for a load or a training.
        """
        with self.reload_lock:
            self._refuse_if_closed(RELOAD_REFUSED)
            return self._reload_policy(path, background_training)

    def _reload_policy(self, path: str | Path | None, background_training: bool) -> Policy:
        if path is None:  # the policy in force, read again from where it was loaded
            path = self.policy.source_path or None
        new = load_policy(path)  # raises PolicyError; nothing changes
        with self._policy_lock:
            current = self.reviewer
        reviewer = current.for_policy(new, judge_model=self.judge_model)
        interim: Reviewer | None = None
        if background_training and not reviewer.classifier_ready(new, reviewer.embedder):
            serving = current.classifier
            if sorted(serving.categories) == sorted(new.categories):
                interim = current.for_policy(new, classifier=serving, judge_model=self.judge_model)
        (interim or reviewer).warm_up()  # load (or train) before it takes effect
        # put in force and ledgered together, or (closed meanwhile) neither: ledgered first, under the lock, so a
        # ledger that refuses the entry (a full disk) leaves the old policy in force, not a new one unledgered
        with self._admitted(RELOAD_REFUSED):
            with self._policy_lock:
                old = self.policy
                self._append("policy.reloaded", old_hash=old.hash, new_hash=new.hash, version=new.version,
                             files=list(new.source_files), classifier="interim" if interim else "trained")
                self.registry.set_meta(POLICY_IN_FORCE, new.hash)
                self.policy, self.reviewer = new, interim or reviewer
                self._reloads += 1
                generation = self._reloads
        log_judge_setup(new, reviewer.judge_model)
        if interim is not None:
            policy_dir = Path(path) if path is not None else default_policy_dir()
            self._train_in_background(new, reviewer, generation, policy_dir)
        return new

    def record_refused_policy(self, path: str | Path, problems: str) -> None:
        """Ledger a policy edit that did not load (``policy.reload_refused``): the policy in force stayed.
        ``GateClosedError`` on a closed gate."""
        with self._admitted(CHANGE_REFUSED):
            self._append("policy.reload_refused", path=str(path), in_force=self.policy.hash,
                         problems=problems[:4000])

    @property
    def classifier_training(self) -> dict[str, Any] | None:
        """The classifier training a policy reload started, while it runs: policy hash, start time,
        progress (stage, done, total) and where it runs (``process``: ``child`` or ``thread``); None when
        none is running."""
        with self._policy_lock:
            return dict(self._training) if self._training else None

    def wait_for_classifier(self, timeout: float | None = None) -> bool:
        """Wait until no classifier training started by ``reload_policy`` is running; False on timeout."""
        with self._policy_lock:
            thread = self._training_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _training_job(self, policy: Policy, reviewer: Reviewer, policy_dir: Path) -> TrainingJob | None:
        """The child-process job that makes ``reviewer``'s classifier for ``policy``; None where the training
        runs in this process (switched off, or a classifier factory that cannot be imported by name)."""
        if not self.training_process:
            return None
        name = importable_name(reviewer.classifier_factory)
        embedder = reviewer.embedder
        if name is None or not isinstance(embedder, Embedder):
            return None
        factory, import_path = name
        return TrainingJob(policy_dir=str(policy_dir.resolve()), policy_hash=policy.hash, factory=factory,
                           import_paths=[import_path] if import_path else [], model_dir=str(embedder.model_dir),
                           backend=embedder.backend, nice=self.training_nice)

    def _train_in_background(self, policy: Policy, reviewer: Reviewer, generation: int, policy_dir: Path) -> None:
        job = self._training_job(policy, reviewer, policy_dir)
        status: dict[str, Any] = {"policy_hash": policy.hash, "started_at": utcnow().isoformat(),
                                  "stage": "starting", "done": 0, "total": 0,
                                  "process": "child" if job is not None else "thread"}

        inputs = _classifier_inputs(policy)

        def stop_reason() -> str | None:
            """Why this training stops: the gate closed, or a newer policy with other classifier inputs was put in
            force (its own training has started: one training at a time, not one per save of an exemplar edit). A
            newer policy that needs the same classifier (a threshold edit during the training) lets it go on: the
            newer one's training waits for its artifact and loads it."""
            if self._closed:
                return "the gate was closed"
            if self._reloads != generation and _classifier_inputs(self.policy) != inputs:
                return "a newer policy with other exemplars or categories was put in force"
            return None

        def progress(stage: str, done: int, total: int) -> None:
            if (reason := stop_reason()) is not None:
                raise _TrainingCancelled(reason)
            status.update(stage=stage, done=done, total=total)

        def run() -> None:
            reviewer.progress = progress
            try:
                if job is not None:
                    try:
                        run_in_child(job, progress=progress, cancelled=lambda: stop_reason() is not None)
                    except TrainingCancelled:
                        raise _TrainingCancelled(stop_reason() or "cancelled") from None
                    except PolicyChanged as exc:  # edited again since: train the policy this gate holds, here
                        if (reason := stop_reason()) is not None:
                            raise _TrainingCancelled(reason) from None
                        log.info("gate.training_in_thread", policy_hash=policy.hash, reason=str(exc))
                        status["process"] = "thread"
                # after a child's training this only loads the artifact it made; otherwise it trains here
                _lower_this_threads_priority(self.training_nice)
                reviewer.warm_up()
            except Exception as exc:  # noqa: BLE001 - the interim classifier keeps serving
                if self._closed or isinstance(exc, _TrainingCancelled):
                    log.info("gate.classifier_training_cancelled", policy_hash=policy.hash,
                             reason=str(exc) if isinstance(exc, _TrainingCancelled) else "the gate was closed")
                    return
                log.error("gate.classifier_training_failed", policy_hash=policy.hash,
                          error=f"{type(exc).__name__}: {exc}")
                self._record_training("classifier.training_failed", policy_hash=policy.hash,
                                      error=f"{type(exc).__name__}: {exc}")
                return
            finally:
                reviewer.progress = None
                with self._policy_lock:
                    if self._training is status:
                        self._training = None
            with self._policy_lock:
                current = self._reloads == generation and not self._closed
                if current:
                    self.reviewer = reviewer
            if current:
                self._record_training("classifier.trained", policy_hash=policy.hash,
                                      inputs_hash=reviewer.classifier.meta.get("inputs_hash"))
            else:  # another policy was loaded meanwhile; the artifact stays cached for it
                log.info("gate.classifier_trained_for_replaced_policy", policy_hash=policy.hash)

        thread = threading.Thread(target=run, name=f"gatekeeper-train-{policy.hash[:12]}", daemon=True)
        with self._policy_lock:
            self._training, self._training_thread = status, thread
        thread.start()

    def _record_training(self, event: str, **fields: Any) -> None:
        try:
            with self._admitted(CHANGE_REFUSED):
                self._append(event, **fields)
        except GateClosedError:  # closed meanwhile: a closed gate records nothing
            return
        except Exception as exc:  # noqa: BLE001 - a background thread has nobody to raise to
            log.error("gate.ledger_append_failed", event=event, error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------- submit
    def submit(self, proposal: MemoryWrite, *, escalation_mode: EscalationMode | None = None) -> GateOutcome:
        return self.submit_many([proposal], escalation_mode=escalation_mode)[0]

    async def asubmit(self, proposal: MemoryWrite, *, escalation_mode: EscalationMode | None = None) -> GateOutcome:
        return await asyncio.to_thread(self.submit, proposal, escalation_mode=escalation_mode)

    async def asubmit_many(self, proposals: Sequence[MemoryWrite], *,
                           escalation_mode: EscalationMode | None = None) -> list[GateOutcome]:
        return await asyncio.to_thread(self.submit_many, proposals, escalation_mode=escalation_mode)

    def submit_many(self, proposals: Sequence[MemoryWrite], *,
                    escalation_mode: EscalationMode | None = None) -> list[GateOutcome]:
        """Review and route a batch: one model call, and for the bookkeeping one registry
        transaction per step, one store write and one ledger flush for the whole batch. ``GateClosedError``
        after ``close()``."""
        escalation_mode = escalation_mode_of(escalation_mode)  # before anything is journaled
        with self._admitted():
            return self._submit_many(proposals, escalation_mode)

    def _submit_many(self, proposals: Sequence[MemoryWrite],
                     escalation_mode: EscalationMode | None) -> list[GateOutcome]:
        with self._policy_lock:
            policy, reviewer = self.policy, self.reviewer
        outcomes: list[GateOutcome | None] = [None] * len(proposals)
        known = self.registry.get_many([p.id for p in proposals])
        pruned = self.registry.pruned_many([p.id for p in proposals if p.id not in known])
        _refuse_id_conflicts(proposals, known, pruned)
        fresh: list[int] = []
        again: list[int] = []  # the same id a second time in this batch: answered from the first
        new: list[int] = []
        firsts: set[str] = set()
        for i, p in enumerate(proposals):
            row = known.get(p.id)
            if p.id in pruned:  # decided and pruned (gatekeeper prune): answered from its receipt
                outcomes[i] = _outcome_from_receipt(p, pruned[p.id])
            elif row is not None and not self.writes_to(row):
                # journaled for another memory store: a gate of that store finishes it (``writes_to``)
                outcomes[i] = self._outcome_from_row(row, replayed=True)
            elif row is not None and row["state"] != ProposalState.received.value:
                if not row["ledgered"] or (row["state"] == ProposalState.committed.value and not row["applied"]):
                    # a retry of a write whose store write or ledger entry failed: finish it now, as
                    # recover() would (a failure raises GateError again, like the first attempt)
                    counts = dict.fromkeys(_RECOVERY_COUNTS, 0)
                    if self._finish(row, counts, {}):
                        row = self.registry.require(p.id)
                outcomes[i] = self._outcome_from_row(row, replayed=True)
            elif p.id in firsts:
                again.append(i)
            else:
                firsts.add(p.id)
                fresh.append(i)
                if row is None:
                    new.append(i)
        # journal the new proposals (one transaction); an id another thread or process journaled
        # first is that one's to decide. Marked from before the insert until their review is done, so that a
        # second submission of one of them in this process waits for the decision (``_decided_elsewhere``)
        journaling = Counter(proposals[i].id for i in new)
        _mark_journaling(journaling)
        try:
            if new:
                try:
                    inserted = self.registry.insert_received_many([proposals[i] for i in new], store=self.store_id)
                except sqlite3.OperationalError as exc:  # SQLite's "disk I/O error" named neither file nor cause
                    raise GateError(
                        f"could not journal {len(new)} write(s) in the registry {self.registry.path} ({exc}: a full "
                        "disk, a read-only file system, or a lock held too long?); nothing of them was recorded or "
                        "stored, and the same writes sent again are reviewed as new") from exc
                taken = {i for i, ok in zip(new, inserted) if not ok}
                lost = Counter(proposals[i].id for i in taken)
                _unmark_journaling(lost)
                journaling -= lost
                for i in taken:
                    row = self._decided_elsewhere(proposals[i].id)
                    outcomes[i] = self._outcome_from_row(row, replayed=True) if row is not None else \
                        _outcome_from_receipt(proposals[i],
                                              self.registry.pruned_many([proposals[i].id])[proposals[i].id])
                fresh = [i for i in fresh if i not in taken]
            if fresh:
                # journaled before this call (an interrupted write that recover() finishes or its id sent again):
                # written only if no later write or delete of its key came meanwhile (``_apply_commits``)
                resumed = {proposals[i].id for i in fresh if i not in new}
                self._review_and_route([(i, proposals[i]) for i in fresh], outcomes, policy, reviewer,
                                       escalation_mode, resumed)
        finally:
            _unmark_journaling(journaling)
        for i in again:
            outcomes[i] = self._outcome_from_row(self.registry.require(proposals[i].id), replayed=True)
        return outcomes  # type: ignore[return-value]

    def _review_and_route(self, work: list[tuple[int, MemoryWrite]], outcomes: list[GateOutcome | None],
                          policy: Policy, reviewer: Reviewer, escalation_mode: EscalationMode | None,
                          resumed: AbstractSet[str] = frozenset()) -> None:
        """Review journaled proposals, then decide, apply and ledger them. Each still passes
        received -> decided -> applied -> ledgered, so recover() finishes any that a crash
        interrupts, wherever it happens; each step is one transaction (or one store write, or
        one ledger flush) for the whole batch. ``resumed``: the ids journaled before (``_apply_commits``)."""
        with _working_on([p.id for _, p in work]):
            _crash_point("after_journal")
            try:
                reviews = self._review_in_order([p for _, p in work], policy, reviewer, resumed)
            except Exception as exc:  # noqa: BLE001 - never lose or commit on an unexpected fault
                reviews = [_failed_review(exc) for _ in work]
            failed = [(p.id, r.error) for (_, p), r in zip(work, reviews) if r.error]
            if failed:  # quarantined below; the error's text stays with each proposal, not in the log (it may
                # quote the model's output or the memory)
                log.error("gate.review_failed", proposal_ids=[pid for pid, _ in failed],
                          error_types=sorted({error.split(":", 1)[0] for _, error in failed}),
                          detail="quarantined (fail closed); `gatekeeper review show ID` has the error")

            # decide every write, record the decisions in one transaction
            steps = [(i, p, *self._decision_for(p, review, policy, escalation_mode))
                     for (i, p), review in zip(work, reviews)]
            steps = self._within_queue_cap(steps, policy)
            try:
                recorded = self.registry.record_decisions([(p.id, r, d, st) for _, p, r, d, st in steps])
            except Exception as exc:
                log.error("gate.record_failed", proposal_ids=[p.id for _, p in work], error=str(exc))
                raise GateError(f"could not record the decisions for {len(work)} proposal(s) "
                                f"({type(exc).__name__}: {exc}); they stay received and recover() "
                                "finishes them") from exc
            decided = []
            for step, ok in zip(steps, recorded):
                i, p = step[0], step[1]
                if ok:
                    _crash_point("after_decision")
                    decided.append(step)
                else:
                    # another process decided it first (a retry of the same proposal id, or a
                    # recovery that took it over): its decision stands, it applies and ledgers it
                    outcomes[i] = self._outcome_from_row(self.registry.require(p.id), replayed=True)

            # one store write for all commits (one embedding call and one upsert for the batch)
            applied = self._apply_commits([(p, p.value, d) for _, p, _, d, st in decided
                                           if st is ProposalState.committed], resumed)
            final = []
            for i, p, review, decision, state in decided:
                if state is ProposalState.committed:
                    state, decision = applied[p.id]
                final.append((i, p, review, decision, state))

            # the ledger: one flush for the batch
            for _ in final:
                _crash_point("after_applied")
            try:
                self._ledger_decisions([(p, review, decision, state) for _, p, review, decision, state in final])
            except Exception as exc:  # noqa: BLE001
                ids = [p.id for _, p, *_ in final]
                log.error("gate.ledger_failed", proposal_ids=ids, error=str(exc))
                raise GateError(
                    f"proposal(s) {', '.join(ids)} are decided but their ledger entries could not be written "
                    f"or marked written ({type(exc).__name__}: {exc}); recover() finishes them once the ledger "
                    "and registry are usable (an entry already in the ledger is not written twice)") from exc
            for i, p, review, decision, state in final:
                outcomes[i] = GateOutcome(proposal=p, review=review, decision=decision, state=state)

    def _decided_elsewhere(self, proposal_id: str) -> dict | None:
        """The row of a proposal another thread or process journaled a moment ago (the same id sent twice at once:
        a LangGraph put replayed while the cancelled run still reviews it), once its decision is recorded (and a
        commit applied), so that both callers get that decision. Answered at once, the second caller got a
        ``received`` row with a decision made up from no review (quarantine) for a write that ends committed.
        Waits up to ``TAKEN_WAIT_S`` seconds, and not at all once nobody is working on the row (its owner died
        or was interrupted: ``recover()`` finishes it)."""
        deadline = time.monotonic() + TAKEN_WAIT_S
        delay = 0.005
        while True:
            row = self.registry.get(proposal_id)
            if row is None or (row["state"] != ProposalState.received.value
                               and not (row["state"] == ProposalState.committed.value and not row["applied"])):
                return row
            owner = row["owner"]
            if owner == process_token():
                with _INFLIGHT_LOCK:
                    working = proposal_id in _INFLIGHT or _JOURNALING[proposal_id] > 0
            else:
                working = owner_alive(owner)
            if not working or time.monotonic() >= deadline:
                return row
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _decision_for(self, proposal: MemoryWrite, review: ReviewResult, policy: Policy,
                      escalation_mode: EscalationMode | None) -> tuple[ReviewResult, Decision, ProposalState]:
        """The decision for one reviewed proposal; a fault in deciding fails closed."""
        try:
            decision = decide(proposal, review, policy, escalation_mode or self.escalation_mode)
        except Exception as exc:  # noqa: BLE001
            review = _failed_review(exc, review)
            decision = decide(proposal, review, policy)
        return review, decision, _STATE_FOR[decision.action]

    def _within_queue_cap(self, steps: list[tuple[int, MemoryWrite, ReviewResult, Decision, ProposalState]],
                          policy: Policy) -> list[tuple[int, MemoryWrite, ReviewResult, Decision, ProposalState]]:
        """``steps`` with the escalations past ``escalation.max_pending_per_agent`` quarantined instead: an agent
        with that many escalations waiting gets no more in the queue (those of this batch count in order)."""
        cap = policy.escalation.max_pending_per_agent
        escalating = [p.provenance.agent_id for _, p, _, _, state in steps if state is ProposalState.pending]
        if not cap or not escalating:
            return steps
        try:
            waiting = self.registry.pending_by_agent(escalating)
        except Exception as exc:  # noqa: BLE001 - the cap cannot be checked: the escalations stay escalations
            log.error("gate.queue_cap_unchecked", error=f"{type(exc).__name__}: {exc}")
            return steps
        out, capped = [], Counter()
        for i, p, review, decision, state in steps:
            agent = p.provenance.agent_id
            if state is ProposalState.pending and p.id not in self._carrying_approval:
                if not _queue_place(waiting, agent, cap):
                    decision = decision.model_copy(update={
                        "action": Action.quarantine, "escalation_mode": None, "deadline": None,
                        "reason": f"{QUEUE_CAPPED}: agent {agent} has {waiting[agent]} escalations awaiting review "
                                  f"(escalation.max_pending_per_agent: {cap}); it was to be escalated: "
                                  f"{decision.reason}"})
                    state = ProposalState.quarantined
                    capped[agent] += 1
            out.append((i, p, review, decision, state))
        for agent, n in capped.items():
            log.warning("gate.queue_capped", agent_id=agent, quarantined=n, cap=cap)
        return out

    # ------------------------------------------------------------- store writes
    def _apply_commit(self, proposal: MemoryWrite, value: dict, decision: Decision,
                      review: ReviewResult | None) -> tuple[ProposalState, Decision]:
        return self._apply_commits([(proposal, value, decision)])[proposal.id]

    def _apply_commits(self, items: Sequence[tuple[MemoryWrite, dict, Decision]],
                       resumed: AbstractSet[str] = frozenset()) -> dict[str, tuple[ProposalState, Decision]]:
        """Write committed proposals to the memory store in one batch. If the batch fails, each is
        retried alone, and those the store still refuses are quarantined (fail closed) and kept.
        ``resumed``: ids of writes journaled before their review started (interrupted, then finished by
        ``recover()`` or sent again); one whose key a write journaled after it committed, or a delete recorded
        after it emptied, is marked applied without a store write (``superseded_by``), as ``recover()`` does
        with a superseded re-apply: written, it would roll the key back to the older value.
        Returns {proposal id: (state, decision)}."""
        if not items:
            return {}
        # the keys' locks until the writes are marked applied: a person's approval of an older escalation of
        # one of these keys, or a recovery re-applying an older commit, looks for them under the same locks
        with self.key_locks((p.namespace, p.key) for p, _, _ in items):
            out: dict[str, tuple[ProposalState, Decision]] = {}
            stale = []
            rows = self.registry.get_many([p.id for p, _, _ in items if p.id in resumed]) if resumed else {}
            for p, _, decision in items:
                later = self.registry.journaled_later(rows[p.id]) if p.id in rows else None
                if later is not None:
                    decision = decision.model_copy(update={
                        "reason": f"{decision.reason} (not written: superseded by {later}, journaled later)"})
                    stale.append((p.id, later, decision))
                    out[p.id] = ProposalState.committed, decision
            if stale:
                self.registry.mark_superseded(stale)
                log.info("gate.resumed_write_superseded", proposal_ids=[pid for pid, _, _ in stale],
                         superseded_by=[by for _, by, _ in stale])
            rest = [item for item in items if item[0].id not in out]
            if rest:
                out.update(self._write_commits(rest))
            return out

    def _write_commits(self, items: Sequence[tuple[MemoryWrite, dict, Decision]]
                       ) -> dict[str, tuple[ProposalState, Decision]]:
        out: dict[str, tuple[ProposalState, Decision]] = {}
        try:
            self.memory_store.batch([PutOp(p.namespace, p.key, value, index=p.index, ttl=p.ttl)
                                     for p, value, _ in items])
        except Exception as exc:  # noqa: BLE001 - store failed: quarantine, keep the writes
            if len(items) > 1:  # one bad write must not take its batch with it: retry one by one
                for item in items:
                    out.update(self._write_commits([item]))
                return out
            reason = f"{STORE_FAILED}: {type(exc).__name__}: {exc}"
            for p, _, decision in items:
                # the store's message may quote the row it refused (PostgreSQL's "Failing row contains ..."):
                # it stays with the proposal (erasure redacts it there), the log gets its type
                log.error("gate.store_failed", proposal_id=p.id, error_type=type(exc).__name__,
                          detail="quarantined (fail closed); `gatekeeper review show ID` has the store's error")
                self._move_to_quarantine(p.id, reason)
                out[p.id] = ProposalState.quarantined, decision.model_copy(
                    update={"action": Action.quarantine, "reason": reason})
            return out
        for p, _, decision in items:
            _crash_point("after_store_write")
            out[p.id] = ProposalState.committed, decision
        # a row from before stores were recorded now names the store that holds it (an erasure elsewhere is refused)
        self.registry.mark_many([p.id for p, _, _ in items], applied=True, store=self.store_id)
        return out

    def _move_to_quarantine(self, proposal_id: str, reason: str) -> None:
        row = self.registry.require(proposal_id)
        decision = row_decision(row)
        if decision is not None:
            decision = decision.model_copy(update={"action": Action.quarantine, "reason": reason})
        with self.registry._tx() as con:  # noqa: SLF001 - same module family
            con.execute(
                """UPDATE proposals SET state='quarantined', action='quarantine', applied=0,
                       decision_json=COALESCE(?, decision_json), updated_at=?, version=version+1 WHERE id=?""",
                (decision.model_dump_json() if decision else None, utcnow().isoformat(), proposal_id))

    def _ledger_decision(self, proposal: MemoryWrite, review: ReviewResult, decision: Decision,
                         state: ProposalState, *, recovered: bool = False) -> None:
        self._ledger_decisions([(proposal, review, decision, state)], recovered=recovered)

    def _ledger_decisions(self, items: Sequence[tuple[MemoryWrite, ReviewResult, Decision, ProposalState]],
                          *, recovered: bool = False) -> None:
        """Write the decisions to the ledger (one flush), then mark them ledgered (one transaction).
        ``recovered``: written by recovery after a crash, later than the decision (``decided_at`` says when)."""
        if not items:
            return
        self._append_many([self._decision_entry(*item, recovered=recovered) for item in items])
        for _ in items:
            _crash_point("after_ledger_append")
        self.registry.mark_many([p.id for p, *_ in items], ledgered=True)

    @staticmethod
    def _decision_entry(proposal: MemoryWrite, review: ReviewResult, decision: Decision,
                        state: ProposalState, *, recovered: bool = False) -> tuple[str, dict[str, Any]]:
        rules = next((e for e in review.evidence if e.layer == "rules"), None)
        judged = next((e for e in review.evidence if e.layer == "judge"), None)
        error = review.error
        if error is None and state is ProposalState.quarantined and decision.reason.startswith(STORE_FAILED):
            error = decision.reason  # the store failed: record it as the error too
        fields = dict(
            proposal_id=proposal.id,
            namespace=list(proposal.namespace),
            key=proposal.key,
            agent_id=proposal.provenance.agent_id,
            thread_id=proposal.provenance.thread_id,
            source=proposal.provenance.source.value,
            content_sha256=proposal.content_hash(),
            # the whole text: cut at 1,000 characters, a long note approved by a person read as harmless in the
            # ledger once a prune took the registry's row (the sentence that raised the alarm came later)
            text=proposal.text,
            action=decision.action.value,
            state=state.value,
            label=review.label.value,
            category=review.category,
            score=review.score,
            # the score before the judge (and the exemplars) moved it, and what the judge answered: a write the
            # judge cleared or flagged says so in the ledger, not only in the registry rows a prune deletes. Not
            # its rationale, which may quote the memory (erasure takes the text out of the ledger)
            raw_score=review.raw_score,
            judge=_judge_summary(judged),
            reason=decision.reason,
            rule_ids=[h["rule_id"] for h in rules.details.get("hits", [])] if rules else [],
            error=error,
            claimed_source=proposal.provenance.claimed_source,
            policy_hash=decision.policy_hash,
            policy_version=decision.policy_version,
            nonce=secrets.token_hex(16),  # erased with the text, so the entry's hash cannot confirm a guess
            # when the gate decided: the entry's ts is when it was written, which for one recovery wrote after a
            # crash is when the next process opened the gate (hours after an outage)
            decided_at=decision.decided_at.astimezone(timezone.utc).strftime(_LEDGER_TS_FORMAT),
        )
        if recovered:
            fields["recovered"] = True
        return "proposal.decided", fields

    # ----------------------------------------------------------------- helpers
    def _review_in_order(self, proposals: Sequence[MemoryWrite], policy: Policy, reviewer: Reviewer,
                         resumed: AbstractSet[str] = frozenset()) -> list[ReviewResult]:
        """Review a batch as if its writes had been submitted one by one, for the context layer (split
        beliefs): a write is joined with the committed writes before the batch in its context (by default its
        agent's writes to its namespace: ``thresholds.context_scope``, ``context_of``) and with the writes
        before it in the batch in the same context that commit. A write journaled before (``resumed``: one a
        crash interrupted, reviewed by ``recover``) is joined with the writes committed before it was
        journaled, not with the ones that came while it waited.

        Those commits are not known before the review, so a batch is reviewed in two passes: first each
        write without the context of the batch (the first write of a context in the batch joined with the
        context's writes from before it, the others alone); then the context layer of each later write that
        would commit runs over its context's writes before it that would commit, from before and within the
        batch (``Reviewer.review_context``: only the joined texts; a score can only go up, so a write stopped
        in the first pass stays stopped). A write stopped in the batch is not joined with the next ones, as
        in a sequence of calls: where the second pass stops a write the first let through, the writes after
        it in its context are joined again without it (and so on, until nothing changes: a write's joins
        depend only on the writes before it, so the k-th write of a context is settled by the k-th round;
        one or two rounds in practice)."""
        th = policy.thresholds
        before = [reviewer.joined_as([t for _, t in r]) for r in self._recents_before(proposals, policy, resumed)]
        # the first pass joins only a context's first write in the batch with the writes from before it; a
        # later write is joined in the second pass, once it is known which of its predecessors commit
        contexts = [context_of(p, th.context_scope) for p in proposals]
        seen: set[WriteContext] = set()
        later = []  # not the context's first write in the batch
        for context in contexts:
            later.append(context in seen)
            seen.add(context)
        first = reviewer.review_many(proposals, [[] if lt else joinable(before[i], p.text)
                                                 for i, (p, lt) in enumerate(zip(proposals, later))])
        if not th.context_window:
            return first

        def commits(i: int, review: ReviewResult) -> bool:
            try:
                return action_for(proposals[i], review, policy) is Action.commit
            except Exception:  # noqa: BLE001 - the decision step itself fails the write closed
                return False

        out = list(first)
        counts_from = th.joined_counts_from
        # the later writes the first pass lets through: only their joins can change what they are
        candidates = {i for i in range(len(proposals)) if later[i] and commits(i, first[i])}
        joined_with: dict[int, list[str]] = {}  # what each candidate's review in ``out`` was joined with
        vetted: dict[int, bool] = {}
        for _ in range(len(proposals) + 1):
            again, recents = [], []
            # context -> its writes before in the batch that commit, by key: a later one of a key replaces it
            # (the batch's commits reach the store in order). One from before the batch stays joined: the
            # registry cannot tell it reached the store first
            committed: dict[WriteContext, dict[StoreKey, str]] = {}
            for i, (p, context) in enumerate(zip(proposals, contexts)):
                if i in candidates:
                    own = store_key(p.namespace, p.key)  # what the write itself replaces is not joined
                    texts = [*before[i], *(t for k, t in committed.get(context, {}).items() if k != own)]
                    recent = joinable(texts[-th.context_window:], p.text)
                    if recent != joined_with.get(i, []):
                        again.append(i)
                        recents.append(recent)
                        joined_with[i] = recent
                if commits(i, out[i]):
                    if i not in vetted:  # word for word a counter-exemplar (once per write, not per round)
                        vetted[i] = reviewer.vetted_whole(p.text)
                    left_out = vetted[i] or cleared_alarming(out[i], counts_from)
                    batch_commits = committed.setdefault(context, {})
                    key = store_key(p.namespace, p.key)
                    batch_commits.pop(key, None)  # the newest write of a key comes last, as in the store
                    batch_commits[key] = LeftOutText(p.text) if left_out else p.text
            if not again:
                break  # every candidate's review was joined with what commits before it
            # from the first review: the texts it was joined with before may no longer be the ones before it
            reviewed = reviewer.review_context([proposals[i] for i in again], [first[i] for i in again], recents)
            for i, review in zip(again, reviewed):
                out[i] = review
        return out

    def _recents_before(self, proposals: Sequence[MemoryWrite], policy: Policy,
                        resumed: AbstractSet[str] = frozenset()) -> list[list[tuple[StoreKey, str]]]:
        """For each write of the batch, its context's committed writes before the batch (one registry query per
        context; the batch's own writes are not committed yet, so the query returns none of them), as
        (``StoreKey``, text), at most ``context_window``: not those of the write's own key, whose value the write
        replaces in the store (a key holds one value: the store never holds them beside the write). For a write
        journaled before (``resumed``), those committed in the ``context_minutes`` before it was journaled."""
        th = policy.thresholds
        window = th.context_window
        if not window:
            return [[] for _ in proposals]
        span = timedelta(minutes=th.context_minutes)
        counts_from = th.joined_counts_from
        fetch = window * 2 + 2  # room for a few writes of the write's own key (a memory updated in place)
        now: dict[WriteContext, list[tuple[StoreKey, str]]] = {}
        out = []
        for p in proposals:
            context = context_of(p, th.context_scope)
            own = store_key(p.namespace, p.key)
            row = self.registry.get(p.id) if p.id in resumed else None
            if row is not None:
                out.append(self.registry.recent_writes(
                    context, datetime.fromisoformat(row["created_at"]) - span, window,
                    let_in_from=counts_from, before_id=p.id, excluding_key=own))
                continue
            if context not in now:
                now[context] = self.registry.recent_writes(context, utcnow() - span, fetch, let_in_from=counts_from)
            recent = [(k, t) for k, t in now[context] if k != own]
            if len(recent) < window and len(now[context]) == fetch:
                # the own key's writes filled the page: the window reaches further back
                recent = self.registry.recent_writes(context, utcnow() - span, window, let_in_from=counts_from,
                                                     excluding_key=own)
            out.append(recent[-window:])
        return out

    def similar_committed(self, proposal: MemoryWrite, k: int) -> list[Any]:
        """The memory store's items most like ``proposal``'s text (at most ``k``, best first), from the write's
        own namespace only (``("memories", "alice")``: alice's): the context shown beside a write to the LLM
        judge (which may be a model service outside the deployment) and to the reviewer deciding it, neither of
        whom is shown other users' memories. Raises what the store's search raises."""
        if k <= 0:
            return []
        # a store searches by namespace *prefix*: ("memories",) also finds ("memories", "alice"). Those are
        # passed over, a few pages at most (context for a decision, not worth a scan of the store)
        want, out, page = tuple(proposal.namespace), [], max(k, 10)
        for offset in range(0, SIMILAR_PAGES * page, page):
            items = self.memory_store.search(want, query=proposal.text[:2000], limit=page, offset=offset)
            out.extend(it for it in items if tuple(it.namespace) == want)
            if len(out) >= k or len(items) < page:
                break
        return out[:k]

    def _similar_memories(self, proposal: MemoryWrite, k: int) -> list[str]:
        """The texts of ``similar_committed``, for the LLM judge (none when the store's search fails)."""
        try:
            items = self.similar_committed(proposal, k)
        except Exception:  # noqa: BLE001 - context for the judge only
            return []
        return [str(it.value.get("content", it.value))[:500] for it in items]

    def _outcome_from_row(self, row: dict, replayed: bool = False) -> GateOutcome:
        review = row_review(row) or _failed_review(RuntimeError("no review recorded"))
        decision = row_decision(row)
        proposal = row_proposal(row)
        if decision is None:
            decision = decide(proposal, review, self.policy)
        return GateOutcome(proposal=proposal, review=review, decision=decision,
                           state=ProposalState(row["state"]), replayed=replayed)

    def outcome(self, proposal_id: str) -> GateOutcome:
        return self._outcome_from_row(self.registry.require(proposal_id))

    # ----------------------------------------------------------------- recovery
    def retry_store_failures(self, *, operator: str | None, limit: int = 1000,
                             dry_run: bool = False) -> list[dict[str, Any]]:
        """Submit again the writes that were quarantined only because the memory store refused their commit
        (a Chroma server that was down, a full disk), once the store is back. Each is reviewed again under the
        policy in force, as a new proposal, and routed like any write (committed, quarantined, escalated to
        the review queue; a store that still refuses quarantines it again, to be retried later; an approval or
        edit by a person that the store refused is carried over when the review escalates it again:
        ``_carry_approval``). A write whose
        key was written again since (a later proposal committed, awaiting a decision, itself refused by the
        store or quarantined by a failed review) or deleted is not retried: it would roll the newer write back.

        The new proposal's id is derived from the old one, so a retry interrupted by a crash and run again
        replays it instead of writing twice. The old row stays quarantined, with ``resolution`` ``retried`` (or
        ``superseded``), ``superseded_by`` the new proposal (or what superseded it) and ``resolved_reason``
        naming the operator; the ledger gets ``proposal.retried`` (``proposal.retry_skipped``). Returns one
        dict per row: ``proposal_id``, ``outcome`` (``retried`` / ``superseded``), ``retried_as``, ``state``,
        ``carried`` (who approved or edited it, when their decision was carried over; else None).

        ``dry_run``: change nothing, and report what a run would do (``outcome`` ``would_retry`` /
        ``would_skip``, ``carried`` whose decision would be carried if the review escalates it; no operator
        needed).

        Runs are serialised across processes (a lock file beside the registry): a second run started meanwhile,
        from cron or another operator, waits and then finds the rows retried, instead of retrying and ledgering
        them a second time.

        ``GateClosedError`` on a closed gate, before anything is retried (a dry run still reads it); a gate closed
        during a run lets the write being retried finish, and stops the run before the next one."""
        return self._retry("store", operator, limit, dry_run)

    def retry_failed_reviews(self, *, operator: str | None, limit: int = 1000,
                             dry_run: bool = False) -> list[dict[str, Any]]:
        """Submit again the writes quarantined because their review failed (fail closed: a classifier that could
        not load, a layer that raised, a judge that timed out, a score that was not a number), once the fault is
        mended. Each is reviewed again under the policy in force, as a new proposal, and routed like any write; a
        review that fails again quarantines it again, to be retried later. Everything else is as
        :meth:`retry_store_failures`: a write whose key was written again or deleted since is skipped, a retry
        cut short and run again replays, the ledger gets ``proposal.retried`` / ``proposal.retry_skipped``, and
        ``dry_run`` changes nothing."""
        return self._retry("review", operator, limit, dry_run)

    def recheck_quarantine(self, *, operator: str | None, since: datetime | None = None, limit: int = 1000,
                           dry_run: bool = False) -> list[dict[str, Any]]:
        """Review again, under the policy in force, the writes the gate itself quarantined (not a person's
        rejection, and not the store or review failures, which have their own retries), journaled since
        ``since``, oldest first: after safety staff mended a false alarm in the policy (a counter-exemplar, a
        threshold, a rule), the memories it had quarantined come back. ``limit`` bounds the writes submitted again;
        the ones that stay are read past (and reported), however many, so that a recheck reaches newer writes behind
        old ones that stay. A write the policy in force would still quarantine stays as it is (``outcome``
        ``still_quarantined``), and so does one it
        would escalate while its agent's escalations fill ``escalation.max_pending_per_agent`` (``still_capped``:
        the cap would quarantine it again; it comes back on a recheck once people have decided some); one it would
        now commit or escalate is submitted again as a new proposal and routed like any write, as a retry is
        (:meth:`retry_store_failures`: skipped when its key was written or deleted since, ledgered as
        ``proposal.retried``, replayed when cut short). The first look is a review of the write alone; the
        submission reviews it with the recent writes of its context, as any write, and decides. ``dry_run`` changes
        nothing and reports what a run would do."""
        return self._retry("recheck", operator, limit, dry_run, since=since)

    def _retry(self, kind: str, operator: str | None, limit: int, dry_run: bool,
               since: datetime | None = None) -> list[dict[str, Any]]:
        if not dry_run and (not operator or not operator.strip()):
            raise ValueError("retrying quarantined writes needs the operator's name, for the ledger")
        whole_number(limit, "limit")
        if since is not None:
            since = as_utc(since, "since")  # any zone; a naive time is refused
        if dry_run:
            return self._retry_quarantined(kind, operator, limit, dry_run=True, since=since)
        self._refuse_if_closed(RETRY_REFUSED)  # before the run's lock and its reviews
        with exclusive_lock(Path(self.registry.path).with_name(f"{kind}-retry.lock")):
            return self._retry_quarantined(kind, operator, limit, dry_run=False, since=since)

    def _retry_candidates(self, kind: str, limit: int, since: datetime | None) -> list[tuple[dict, str | None]]:
        """The rows a retry of ``kind`` takes, each with None, or for a recheck, why it stays: ``still_quarantined``
        when the policy in force would quarantine it again, ``still_capped`` when it would be escalated but its
        agent has ``escalation.max_pending_per_agent`` escalations waiting (the rechecked writes before it
        counted), so the queue cap would quarantine it again (a retry then would only add a row)."""
        reason = _RETRY_KINDS[kind][0]
        if reason is not None:
            # page by page past the rows of another memory store (a gate over that store retries them), which
            # would otherwise fill every run's ``limit``
            out, seen = [], 0
            while len(out) < limit:
                chunk = self.registry.awaiting_retry(reason, _RECHECK_PAGE, offset=seen)
                if not chunk:
                    break
                seen += len(chunk)
                out += [(row, None) for row in chunk if self.writes_to(row)][:limit - len(out)]
            return out
        with self._policy_lock:
            policy, reviewer = self.policy, self.reviewer
        cap = policy.escalation.max_pending_per_agent
        waiting: dict[str, int] | None = None
        out: list[tuple[dict, str | None]] = []
        to_retry, seen = 0, 0
        # page by page, past the writes that stay, until ``limit`` would be submitted again: the ones that stay
        # are not marked, so a limit on the rows read would read the same oldest ones on every run and never
        # reach a newer false alarm the policy edit mended
        while to_retry < limit:
            chunk = self.registry.quarantined_by_gate(since=since, limit=_RECHECK_PAGE, offset=seen,
                                                      excluding_reasons=RETRY_REASONS)
            if not chunk:
                break
            seen += len(chunk)
            chunk = [r for r in chunk if self.writes_to(r)]  # another store's: a gate over that store rechecks
            if not chunk:
                continue
            if waiting is None:
                waiting = self.registry.pending_by_agent({r["agent_id"] for r in chunk}) if cap else {}
            elif cap:  # agents first met on this page: their escalations waiting, as read now
                waiting.update(self.registry.pending_by_agent(
                    {r["agent_id"] for r in chunk} - set(waiting)))
            proposals = [row_proposal(r) for r in chunk]
            for row, p, review in zip(chunk, proposals, reviewer.review_many(proposals)):
                action = decide(p, review, policy).action
                stays = "still_quarantined" if action is Action.quarantine else None
                if action is Action.escalate and cap and not _queue_place(waiting, p.provenance.agent_id, cap):
                    stays = "still_capped"
                if stays is None:
                    if to_retry >= limit:
                        break
                    to_retry += 1
                out.append((row, stays))
        return out

    def _retry_quarantined(self, kind: str, operator: str | None, limit: int, *, dry_run: bool,
                           since: datetime | None = None) -> list[dict[str, Any]]:
        from gatekeeper.gated_store import derived_id

        _, tag, done = _RETRY_KINDS[kind]
        report: list[dict[str, Any]] = []
        for row, stays in self._retry_candidates(kind, limit, since):
            old = row_proposal(row)
            if stays:
                report.append({"proposal_id": old.id, "outcome": stays, "retried_as": None,
                               "state": ProposalState.quarantined.value, "superseded_by": None, "carried": None})
                continue
            again = old.model_copy(update={"id": derived_id(old.id, tag)})
            if dry_run:  # a preview: changes nothing, so it takes no lock (and reads a closed gate too)
                later = self.registry.later_write_or_delete(row, excluding=again.id, retry_reasons=RETRY_REASONS)
                report.append({"proposal_id": old.id, "outcome": "would_skip" if later else "would_retry",
                               "retried_as": None, "state": ProposalState.quarantined.value,
                               "superseded_by": later, "carried": None if later else _decided_by(row)})
                continue
            # each write is retried whole (close() waits for it) or not at all: a gate closed during a run stops
            # it before the next write (GateClosedError)
            with self._admitted(RETRY_REFUSED):
                report.append(self._retry_one(row, old, again, operator, done))
        return report

    def _retry_one(self, row: dict, old: MemoryWrite, again: MemoryWrite, operator: str | None,
                   done: str) -> dict[str, Any]:
        """Retry one quarantined write (``row``, its proposal ``old``) as ``again``, or record it superseded by a
        later write or delete of its key; its line of the report."""
        # under the key's lock: no commit or delete of the key lands between the check and the new write
        with self.key_locks([(old.namespace, old.key)]):
            # its own retry, made before a crash, is no later write
            later = self.registry.later_write_or_delete(row, excluding=again.id, retry_reasons=RETRY_REASONS)
            if later is not None:
                self._append("proposal.retry_skipped", proposal_id=old.id, superseded_by=later,
                             operator=operator, namespace=list(old.namespace), key=old.key)
                self.registry.mark_retried(
                    old.id, resolution="superseded", superseded_by=later,
                    reason=f"not retried by {operator}: a later write or delete of the key ({later})")
                return {"proposal_id": old.id, "outcome": "superseded", "retried_as": None,
                        "state": ProposalState.quarantined.value, "superseded_by": later, "carried": None}
            # a retry made before a crash (between its ledger entry and the mark below) replays
            resumed = self.registry.get(again.id) is not None
            carries = _decided_by(row) is not None
            if carries:
                self._carrying_approval.add(again.id)
            try:
                outcome = self.submit(again, escalation_mode=EscalationMode.park)
            finally:
                self._carrying_approval.discard(again.id)
        if outcome.state is ProposalState.pending and carries:
            outcome = self._carry_approval(row, again, operator)
        if not (resumed and next(self.ledger.history(proposal_id=old.id, event="proposal.retried"), None)):
            self._append("proposal.retried", proposal_id=old.id, retried_as=again.id,
                         state=outcome.state.value, operator=operator, namespace=list(old.namespace), key=old.key)
        self.registry.mark_retried(
            old.id, resolution="retried", superseded_by=again.id,
            reason=f"{done} by {operator} as {again.id}: {outcome.state.value}")
        # the carried decision, made now or, for a retry replayed after a crash, before it
        new_row = self.registry.get(again.id) if carries else None
        carried = row["resolved_by"] if new_row is not None and (new_row["resolution"], new_row["resolved_by"]) == (
            row["resolution"], row["resolved_by"]) else None
        return {"proposal_id": old.id, "outcome": "retried", "retried_as": again.id,
                "state": outcome.state.value, "superseded_by": again.id, "carried": carried}

    def _carry_approval(self, row: dict, again: MemoryWrite, operator: str | None) -> GateOutcome:
        """Decide ``again`` (the retry of ``row``, escalated again by its review) as the person decided ``row``: an
        escalation a person approved (or edited) whose commit the memory store refused went back to the review
        queue on ``retry_store_failures``, for the same person to approve the same memory a second time. The
        decision is the person's (``resolved_by``, the edit), through the review queue's own path (a later write or
        delete of the key supersedes it); its reason says that it is carried, from which write and by whose retry.
        A retry the policy in force stops harder (a quarantine) is not overruled: the approval was of an
        escalation. The escalation is decided here, at once, so ``escalation.max_pending_per_agent`` does not
        quarantine it (``_carrying_approval``): it never waits in the queue. ``operator`` None: ``recover()``
        finishing a retry a crash cut short before its review decided (the retry run again then reports it)."""
        from gatekeeper.review_service import ReviewDecision, ReviewService

        when = str(row["resolved_at"] or "")[:19].replace("T", " ")
        by = (f"the store-failure retry of {operator}" if operator is not None
              else "recovery of a store-failure retry cut short")
        reason = (f"{row['resolution']} by {row['resolved_by']} of {row['id']} ({when} UTC), carried by {by}: "
                  f"the memory store had refused it. Their reason: {row['resolved_reason'] or '-'}")
        edited = _json_loads(row["final_value_json"]) if row["resolution"] == "edit" else None
        decision = ReviewDecision(type=row["resolution"], reviewer=row["resolved_by"], proposal_id=again.id,
                                  reason=reason[:MAX_REASON_CHARS], edited_value=edited, channel="carried")
        ReviewService(self).decide(again.id, decision)
        return self.outcome(again.id)

    def release_to_review(self, proposal_id: str, *, operator: str, reason: str) -> GateOutcome:
        """Send one write the gate quarantined to the human review queue: an admin who judges it a false alarm
        (or worth a second look) asks a reviewer to decide it, without a policy change (for that, see
        :meth:`recheck_quarantine`). The write becomes a new proposal (id derived from the old one), escalated
        at once with the gate's review of it as its evidence and a decision reason naming ``operator``,
        ``reason`` and why the gate had quarantined it; it is not reviewed again. Its escalation is parked (no
        agent run waits for it); a reviewer approves, edits or rejects it as any escalation, and the agent that
        proposed it may not decide it. The old row stays quarantined with ``resolution`` ``released`` and
        ``superseded_by`` the new proposal; the ledger gets ``proposal.released`` and the new proposal's
        ``proposal.decided``.

        Refused with ConflictError, changing nothing: a write that is not quarantined, one a person rejected
        (their decision stands), one already retried or released, and one whose key was written or deleted
        since (it would roll the newer write back). ValueError when ``operator`` or ``reason`` is empty;
        NotFoundError for an unknown id; ``GateClosedError`` on a closed gate. A release cut short by a crash and
        run again finishes it."""
        from gatekeeper.gated_store import derived_id

        operator, reason = release_request(operator, reason)
        with self._admitted(RELEASE_REFUSED), exclusive_lock(Path(self.registry.path).with_name("release.lock")):
            row = self.registry.require(proposal_id)
            old = row_proposal(row)
            new_id = derived_id(old.id, "release")
            expired = expired_unreviewed(row)
            resumed = (row["resolution"] is None or expired) and self.registry.get(new_id) is not None
            if not resumed:
                _refuse_release(row)
            with self.key_locks([(old.namespace, old.key)]):
                if not resumed:
                    later = self.registry.later_write_or_delete(row, excluding=new_id, retry_reasons=RETRY_REASONS)
                    if later is not None:
                        raise ConflictError(
                            f"proposal {old.id} is not released: a later write or delete of its key ({later}) "
                            "stands, and committing this one would roll it back")
                    with self._policy_lock:
                        policy = self.policy
                    gate_reason = (row_decision(row).reason if row["decision_json"] else "no decision recorded")
                    why = (f"it had expired in the review queue unreviewed ({row['resolved_reason'] or '-'}); "
                           f"the gate had escalated it: {gate_reason}" if expired
                           else f"the gate had quarantined it: {gate_reason}")
                    decision = Decision(
                        proposal_id=new_id, action=Action.escalate, policy_hash=policy.hash,
                        policy_version=policy.version, decided_by=operator, escalation_mode=EscalationMode.park,
                        deadline=utcnow() + timedelta(hours=policy.escalation.deadline_hours),
                        reason=f"{RELEASED} by {operator}: {reason} ({why})")
                    review = row_review(row) or _failed_review(RuntimeError("no review recorded"))
                    again = old.model_copy(update={"id": new_id})
                    # for the store the quarantined write was for, wherever it is released
                    self.registry.insert_decided(again, review, decision, ProposalState.pending,
                                                 store=row.get("store"))
                    _crash_point("after_release_recorded")
                    self._ledger_decision(again, review, decision, ProposalState.pending)
            new_row = self.registry.require(new_id)
            if not new_row["ledgered"]:  # a release cut short: the ledger may hold the entry already
                self._ledger_unless_written(new_row, {})
            if not (resumed and next(self.ledger.history(proposal_id=old.id, event="proposal.released"), None)):
                self._append("proposal.released", proposal_id=old.id, released_as=new_id, operator=operator,
                             reason=reason, namespace=list(old.namespace), key=old.key)
            self.registry.mark_retried(
                old.id, resolution="released", superseded_by=new_id, expired=expired,
                reason=(f"sent to review by {operator} as {new_id}: {reason}"
                        + (f" (it had expired unreviewed: {row['resolved_reason'] or '-'})" if expired else "")))
        log.info("gate.released", proposal_id=old.id, released_as=new_id, operator=operator)
        return self.outcome(new_id)

    def recover(self) -> dict[str, int]:
        """Finish what a crash interrupted. Safe to run at any time, any number of times,
        from any number of processes: proposals a live process is working on are left to
        it (``skipped_live``), a dead owner's are claimed by exactly one recoverer. ``GateClosedError`` after
        ``close()``."""
        with self._admitted():
            return self._recover()

    def _recover(self) -> dict[str, int]:
        counts = dict.fromkeys(_RECOVERY_COUNTS, 0)
        skipped = 0
        others = self._finish_deletes(counts)  # the stores of the deletes it left, as of the rows below
        rows = self.registry.unfinished()
        logged: dict[str, Any] = {}
        for row in rows:
            if not self.writes_to(row):
                others.append(row["store"])  # a gate of its memory store finishes it
            elif not self._finish(row, counts, logged):
                skipped += 1
        if any(counts.values()):
            # which proposals this recovery ledgered (their entries say recovered: true), at most RECOVERED_IDS_KEPT
            written = logged.get("written", [])
            self._append("gate.recovered", **counts, proposal_ids=written[:RECOVERED_IDS_KEPT],
                         proposal_ids_left_out=max(0, len(written) - RECOVERED_IDS_KEPT))
        if others:
            log.warning("gate.recovery_left_to_other_store", rows=len(others), their_stores=sorted(set(others)),
                        this_store=self.store_id,
                        hint="a gate opened over the memory store these writes are for finishes them")
        return {**counts, "skipped_live": skipped, "other_store": len(others)}

    def _finish_deletes(self, counts: dict[str, int]) -> list[str]:
        """Apply the recorded (and ledgered) deletes a crash kept from the memory store, unless a later commit of
        the key superseded them. Under the key's lock, which the deleting process holds from its record to its
        store delete: a delete still in flight elsewhere is finished by then and found applied. Returns the
        stores of those it left to a gate of another memory store (``writes_to``)."""
        others: list[str] = []
        for row in self.registry.unapplied_deletes():
            if not self.writes_to(row):
                others.append(row["store"])
                continue
            namespace = tuple(json.loads(row["namespace"]))
            with self.key_locks([(namespace, row["key"])]):
                if not self.registry.delete_awaits_store(row["ledger_seq"]):  # re-read under the lock
                    continue
                if self.registry.committed_since(row["namespace"], row["key"], row["deleted_at"]) is None:
                    self.memory_store.batch([PutOp(namespace, row["key"], None)])
                    counts["deletes_applied"] += 1
                self.registry.mark_deletes_applied([row["ledger_seq"]])
        return others

    def _finish(self, row: dict, counts: dict[str, int], logged: dict[str, Any]) -> bool:
        """Finish one row a crash or a failure left half-done (``recover``'s work for it), counting what was
        done in ``counts``; ``logged`` caches the ledger's (proposal id, event) pairs. False when the row is
        not this process's to finish: a live process is working on it, or another one claimed it first."""
        pid = row["id"]
        with _INFLIGHT_LOCK:
            busy = pid in _INFLIGHT
        owner = row.get("owner")
        if busy or (owner != process_token() and owner_alive(owner)) or not self.writes_to(row):
            return False
        if owner != process_token() and not self.registry.claim(pid, owner):
            return False  # another process claimed it a moment ago
        approved = None  # the write whose person's approval this row, a store-failure retry, carries
        with _working_on([pid]):
            row = self.registry.require(pid)  # re-read after the claim
            if row["state"] == ProposalState.received.value:
                approved = self._approved_write_retried_as(row)
                self._review_again(row, approved is not None, counts)
            else:
                self._finish_decided(row, counts, logged)
        # out of the in-flight set: a person's decision takes the proposal into it again
        if approved is not None and (self.registry.get(pid) or {}).get("state") == ProposalState.pending.value:
            try:
                self._carry_approval(approved, row_proposal(row), None)
            except ConflictError as exc:  # a reviewer decided it meanwhile: their decision stands
                log.info("gate.approval_not_carried", proposal_id=pid, reason=str(exc))
        return True

    def _review_again(self, row: dict, carrying_approval: bool, counts: dict[str, int]) -> None:
        """Review and route a journaled row whose review a crash cut short, as a new submission of it. One that
        carries a person's approval (a store-failure retry) is kept out of the queue cap, as the retry keeps it
        (``_carrying_approval``); ``_finish`` then decides it with the approval."""
        pid = row["id"]
        if carrying_approval:
            self._carrying_approval.add(pid)
        try:
            self.submit_many([row_proposal(row)])  # re-review; ledgers on the way
        finally:
            self._carrying_approval.discard(pid)
        counts["reviewed"] += 1
        after = self.registry.get(pid)
        if after is not None and after["state"] == ProposalState.committed.value and after["superseded_by"]:
            counts["superseded"] += 1  # a later write or delete of its key came meanwhile: not written

    def _finish_decided(self, row: dict, counts: dict[str, int], logged: dict[str, Any]) -> None:
        """Finish a decided row: write a commit the store did not get, and the ledger entry it lacks."""
        pid = row["id"]
        if row["state"] == ProposalState.committed.value and not row["applied"]:
            proposal = row_proposal(row)
            # under the key's lock, so that a commit of the key (in any process of the data directory) cannot
            # land between the check and the write (as in ReviewService.decide)
            with self.key_locks([(proposal.namespace, proposal.key)]):
                if (self.registry.superseded(row)
                        or self.registry.deleted_since(row["namespace"], row["key"], row["updated_at"])):
                    # a later write to the same key is in the store, or a later delete took it out: do
                    # not roll either back
                    self.registry.mark(pid, applied=True)
                    counts["superseded"] += 1
                else:
                    value = _json_loads(row["final_value_json"]) if row["final_value_json"] else proposal.value
                    self._apply_commit(proposal, value, row_decision(row)
                                       or decide(proposal, row_review(row), self.policy), None)
                    counts["reapplied"] += 1
            row = self.registry.require(pid)
        if not row["ledgered"]:
            counts["ledgered" if self._ledger_unless_written(row, logged) else "already_ledgered"] += 1

    def _approved_write_retried_as(self, row: dict) -> dict | None:
        """The registry row of the write a person approved (or edited) whose commit the memory store refused,
        when ``row`` is its store-failure retry (``retry_store_failures``; the retry's id is derived from it),
        and the retry has not been marked done; else None."""
        from gatekeeper.gated_store import derived_id

        tag = _RETRY_KINDS["store"][1]
        return next((r for r in self.registry.awaiting_retry_of_key(STORE_FAILED, row["namespace"], row["key"])
                     if _decided_by(r) and derived_id(r["id"], tag) == row["id"]), None)

    def _ledger_unless_written(self, row: dict, logged: dict[str, Any]) -> bool:
        """Write the ledger entry of a row not marked ``ledgered``, and mark it; when the ledger holds the entry
        already (a crash came between the append and the mark), only mark it. True when it wrote the entry.
        ``logged`` caches, for the next rows, the ledger's (proposal id, event) pairs (``pairs``) and the policy
        versions its entries name by hash (``versions``: a person's decision recovered after a policy reload
        names the version it was made under, which its row does not keep)."""
        if "pairs" not in logged:
            pairs: set[tuple[Any, Any]] = set()
            versions: dict[str, str] = {}
            for e in self.ledger.history():
                pairs.add((e.get("proposal_id"), e.get("event")))
                if e.get("policy_hash") and e.get("policy_version"):  # proposal.decided, review.resolved
                    versions[e["policy_hash"]] = e["policy_version"]
                elif e.get("event") == "policy.reloaded" and e.get("new_hash") and e.get("version"):
                    versions[e["new_hash"]] = e["version"]
            logged["pairs"], logged["versions"] = pairs, versions
        event = "review.resolved" if row["resolved_by"] else "proposal.decided"
        if (row["id"], event) in logged["pairs"]:
            self.registry.mark(row["id"], ledgered=True)
            return False
        if row["resolved_by"]:
            self._ledger_resolution(row, recovered=True, known_versions=logged["versions"])
        else:
            review = row_review(row) or _failed_review(RuntimeError("no review recorded"))
            self._ledger_decision(row_proposal(row), review, row_decision(row), ProposalState(row["state"]),
                                  recovered=True)
        logged.setdefault("written", []).append(row["id"])
        return True

    def _ledger_resolution(self, row: dict, *, recovered: bool = False, decided_under: Policy | None = None,
                           known_versions: Mapping[str, str] | None = None) -> None:
        """Write a person's decision on an escalation (``review.resolved``) from its registry row, then mark the
        row ledgered. ``ReviewService.decide`` and recovery after a crash both write it from the row, so they
        write the same entry (recovery adds ``recovered: true``).

        The entry names the policy in force at the decision by hash and version, as ``proposal.decided`` does.
        The row keeps only the hash; the version is ``decided_under``'s (the policy the decision was made under),
        else the policy in force's when its hash is the row's, else the one ``known_versions`` (the ledger's
        entries, read by recovery) gives for the hash, else None (the hash still names the policy). Entries
        written before this field was added have no ``policy_version``."""
        proposal = row_proposal(row)
        edited = row["resolution"] == "edit"
        # a row resolved before the registry kept the policy in force at the decision: the current one
        policy_hash = row["resolved_policy_hash"] or self.policy.hash
        version = next((p.version for p in (decided_under, self.policy) if p is not None and p.hash == policy_hash),
                       (known_versions or {}).get(policy_hash))
        fields: dict[str, Any] = dict(
            proposal_id=row["id"], resolution=row["resolution"], reviewer=row["resolved_by"],
            reason=row["resolved_reason"], state=row["state"], edited=edited,
            edited_value=_json_loads(row["final_value_json"]) if edited else None,
            namespace=list(proposal.namespace), key=proposal.key, agent_id=proposal.provenance.agent_id,
            policy_hash=policy_hash, policy_version=version,
        )
        if row["superseded_by"]:
            fields["superseded_by"] = row["superseded_by"]
        if row.get("resolved_channel"):  # the door the decision came through (``ReviewDecision.channel``)
            fields["channel"] = row["resolved_channel"]
        if row.get("resolved_os_user"):
            fields["os_user"] = row["resolved_os_user"]
        if recovered:
            fields["recovered"] = True
        fields["nonce"] = secrets.token_hex(16)  # erased with the texts (AuditLedger.redact)
        self._append("review.resolved", **fields)
        self.registry.mark(row["id"], ledgered=True)

    # ------------------------------------------------------------------- misc
    def close(self) -> None:
        """Close the registry, ledger and store (and the encoder's child process of a reviewer ``open`` made). A
        classifier training started by ``reload_policy`` stops at its next progress step, without writing its
        artifact or a ledger entry. The policy watcher stops
        first, after the reload it may have in progress (so nothing changes the gate once it is closed).
        Changes sent after it (writes, deletes, recoveries, people's decisions, releases, retries, expiries,
        policy reloads, erasures) raise ``GateClosedError`` before changing anything; the ones in flight are
        waited for, up to ``CLOSE_WAIT_S`` seconds (the registry and ledger are closed under one that takes longer:
        ``recover()`` finishes it). Reads (the review queue, ``show``, counts, dry runs) go on working."""
        if self.policy_watcher is not None:
            # first: a reload it has in progress is put in force and ledgered whole, not refused half way
            self.policy_watcher.stop()
        with self._busy_cond:
            self._closed = True
            if not self._busy_cond.wait_for(lambda: self._busy == 0, timeout=CLOSE_WAIT_S):
                log.warning("gate.closed_with_writes_in_flight", writes=self._busy, waited_s=CLOSE_WAIT_S)
        self.registry.close()
        self.ledger.close()
        close = getattr(self.memory_store, "close", None)
        if callable(close):
            close()
        if self._owns_reviewer:
            # a closed gate kept by its caller (app state, a traceback) kept its encoder's child (about 125 MiB)
            # until the classifier was collected; a reviewer given to ``open`` is its giver's to stop
            with self._policy_lock:
                reviewer = self.reviewer
            reviewer.stop_encoder_process()

    def __enter__(self) -> "Gatekeeper":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decided_by(row: Mapping[str, Any]) -> str | None:
    """Who approved or edited the write of this registry ``row`` (None when nobody did): the decision a retry
    carries over (``Gatekeeper._carry_approval``)."""
    return row["resolved_by"] if row["resolution"] in ("approve", "edit") and row["resolved_by"] else None


def _json_loads(s: str) -> Any:
    import json

    return json.loads(s)


def _ledgered_deletes(entries: Iterable[dict]) -> list[tuple[tuple[str, ...], str, str, int]]:
    """(namespace, key, ledger time, ledger seq) of each ``memory.deleted`` entry whose store delete did not
    fail (a ``memory.delete_failed`` entry for its key follows it when it did)."""
    deletes: dict[int, tuple[tuple[str, ...], str, str, int]] = {}
    latest: dict[tuple[tuple[str, ...], str], int] = {}  # (namespace, key): seq of its latest delete
    for e in entries:
        if e.get("event") not in ("memory.deleted", "memory.delete_failed"):
            continue
        target = (tuple(e["namespace"]), e["key"])
        if e["event"] == "memory.deleted":
            deletes[e["seq"]] = (*target, e["ts"], e["seq"])
            latest[target] = e["seq"]
        elif target in latest:
            deletes.pop(latest.pop(target), None)
    return list(deletes.values())


def expired_unreviewed(row: dict) -> bool:
    """``row`` is an escalation that expired in the review queue (``escalation.overdue_action: quarantine``):
    rejected by ``gatekeeper:expiry``, not by a person, and not released since."""
    return (row["state"] == ProposalState.quarantined.value and row["resolved_by"] == EXPIRY_REVIEWER
            and row["resolution"] == "reject")


def releasable(row: dict) -> bool:
    """Whether ``row`` may be released to review as far as the row tells (a write whose key changed since is
    refused too, by the release): quarantined by the gate or expired unreviewed, not retried or released."""
    try:
        _refuse_release(row)
    except ConflictError:
        return False
    return True


def _refuse_release(row: dict) -> None:
    """ConflictError unless ``row`` is a write the gate quarantined, or an escalation that expired unreviewed,
    that nothing has retried or released yet."""
    pid = row["id"]
    if row["state"] != ProposalState.quarantined.value:
        raise ConflictError(f"proposal {pid} is {row['state']}, not quarantined: only quarantined writes are released")
    if expired_unreviewed(row):  # nobody decided it: an admin may send it to people after all
        return
    if row["resolved_by"]:
        raise ConflictError(f"proposal {pid} was rejected by {row['resolved_by']}: a person's decision stands"
                            if row["resolution"] == "reject" else
                            f"proposal {pid} was approved by {row['resolved_by']} and the memory store refused "
                            "it: `gatekeeper review retry-store-failures` writes it once the store is back")
    if row["resolution"] == "superseded":
        raise ConflictError(f"proposal {pid} is out of date: a later write or delete of its key "
                            f"({row['superseded_by']}) stands")
    if row["resolution"] is not None:
        raise ConflictError(f"proposal {pid} was {row['resolution']} already, as {row['superseded_by']}")


def _failed_review(exc: BaseException, prior: ReviewResult | None = None) -> ReviewResult:
    return ReviewResult(label=Label.alignment_shifting, category=prior.category if prior else None, score=1.0,
                        evidence=prior.evidence if prior else [], error=f"{type(exc).__name__}: {exc}")


def _lower_this_threads_priority(nice: int) -> None:
    """Add ``nice`` to the calling thread's nice value (at most 19). On Linux nice is per thread and the
    threads it starts inherit it: torch's worker threads when this training is the first torch work of the
    process (a process that trained at start-up keeps those at its own priority), ONNX Runtime's for the
    sessions it opens. Elsewhere this does nothing. A refusal is logged and the training runs as it is."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:
        log.warning("gate.training_priority_unchanged", nice=nice, error=f"{type(exc).__name__}: {exc}")


def log_judge_setup(policy: Policy, judge_model) -> None:
    """Warn when the policy and the judge's chat model do not go together: the policy enables the judge and no
    model is configured (writes are then decided without it: the uncertain band goes to people), or a model is
    configured and the policy leaves the judge off (the model is never called)."""
    from gatekeeper.judge_spec import describe_model

    if policy.judge.enabled and judge_model is None:
        log.warning("judge.enabled_without_model", policy_version=policy.version,
                    effect="writes are decided without the judge: the uncertain band goes to the review queue",
                    fix="set GATEKEEPER_JUDGE_MODEL, or pass judge_model= to the gate")
    elif judge_model is not None and not policy.judge.enabled:
        log.warning("judge.model_not_used", model=describe_model(judge_model), policy_version=policy.version,
                    reason="the policy's judge.enabled is false")


def _outcome_from_receipt(proposal: MemoryWrite, receipt: dict) -> GateOutcome:
    """The answer to a replay of a pruned proposal's id (same content): its final state, decision and verdict
    from the receipt ``ProposalRegistry.prune`` left; the evidence went with the row (the ledger keeps it)."""
    data = json.loads(receipt["receipt_json"])
    state = ProposalState(receipt["state"])
    decision = Decision.model_validate(data["decision"]) if data.get("decision") else Decision(
        proposal_id=proposal.id, action=Action.commit if state is ProposalState.committed else Action.quarantine,
        reason="decided before the registry was pruned", policy_hash="unknown")
    label = data.get("label") or (Label.task_knowledge.value if state is ProposalState.committed
                                  else Label.alignment_shifting.value)
    review = ReviewResult(label=Label(label), category=data.get("category"), score=data.get("score") or 0.0)
    return GateOutcome(proposal=proposal, review=review, decision=decision, state=state, replayed=True)


def _judge_summary(evidence: Any) -> dict[str, Any] | None:
    """What the judge's evidence says, for a ``proposal.decided`` ledger entry; None when the judge was not
    asked."""
    if evidence is None:
        return None
    d = evidence.details
    if "skipped" in d:
        return {"skipped": d["skipped"], "over_budget": d.get("over_budget")}
    return {"label": d.get("label"), "category": evidence.category, "confidence": d.get("confidence"),
            "may_clear": d.get("may_clear"), "cached": bool(d.get("cached"))}


def ledger_lost(ledger: AuditLedger, registry_con: Any) -> bool:
    """Whether the ledger holds no entry at all (missing or emptied, no archives) while the registry (an open
    SQLite connection to it) holds decisions marked ledgered: the audit record was lost, or not copied with the
    registry. ``refuse_a_lost_ledger`` and a backup's check of its copy."""
    if ledger.anchor()[0] or ledger.archives():
        return False
    return bool(registry_con.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM proposals WHERE ledgered=1 LIMIT 1)").fetchone()[0])


def _refuse_id_conflicts(proposals: Sequence[MemoryWrite], known: dict[str, dict],
                         pruned: dict[str, dict] | None = None) -> None:
    """Raise ``ProposalIdConflict`` when an id of ``proposals`` is known (``known``: its registry rows;
    ``pruned``: the receipts of pruned ones) or repeated in the batch with other content. Contents are compared
    as stored (a JSON round trip)."""
    pruned = pruned or {}
    def stored(p: MemoryWrite) -> str:
        return MemoryWrite.model_validate_json(p.model_dump_json(), context={STORED: True}).content_hash()

    ids = [p.id for p in proposals]
    repeated = {i for i, n in Counter(ids).items() if n > 1}
    first: dict[str, str] = {}
    clashes: list[str] = []
    erased = sorted({p.id for p in proposals if pruned.get(p.id, {}).get("content_hash") == ERASED})
    if erased:
        raise ProposalIdConflict(
            f"proposal id(s) {', '.join(erased)} were erased (gatekeeper forget): an erased write is not written or "
            "replayed again; give a new write a new id. Nothing of this batch was written.")
    for p in proposals:
        if p.id in known:
            before = row_proposal(known[p.id]).content_hash()
        elif p.id in pruned:
            before = pruned[p.id]["content_hash"]
        elif p.id in first:
            before = first[p.id]
        else:
            if p.id in repeated:
                first[p.id] = stored(p)
            continue
        if stored(p) != before:
            clashes.append(p.id)
    if clashes:
        raise ProposalIdConflict(
            f"proposal id(s) {', '.join(sorted(set(clashes)))} already name a write with other content "
            "(namespace, key or value); give a new write a new id. Nothing of this batch was written.")
