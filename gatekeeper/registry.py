"""The proposal registry: one SQLite table that knows the state of every proposal.

Every proposal is journaled here *before* it is reviewed and ends in exactly one
state — ``committed``, ``quarantined`` or ``pending`` (escalated, in the review
queue) — because the state is one column of one row keyed by the proposal id.
The quarantine store and the review queue are views of this table: quarantined
rows are kept (with their review evidence) and are never handed to recall;
pending rows wait for a human.

Crash safety: the row is written as ``received`` first; the decision moves it
to its final state in one transaction; a commit is then applied to the memory
store and marked ``applied``; the ledger entry is marked ``ledgered``.
``Gatekeeper.recover()`` finishes whatever a crash interrupted.

Ownership: every row records the process that is working on it (``owner``,
``host:pid:start-time``). ``recover()`` in another process leaves rows of a live
owner alone (they are in flight, not interrupted) and takes over a dead owner's
rows with an atomic compare-and-set (``claim``), so two processes never finish
the same proposal twice (no duplicate store writes or ledger entries).

SQLite runs in WAL mode with a busy timeout, so several processes can share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import unicodedata
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from gatekeeper.files import private_file
from gatekeeper.models import (
    EXPIRY_REVIEWER,
    Action,
    Decision,
    MemoryWrite,
    ProposalState,
    STORED,
    ReviewResult,
    as_utc,
    content_to_text,
    utcnow,
)
from gatekeeper.quotes import JOINED_TEXT_CHARS, QuoteFinder
from gatekeeper.segments import runs_on
from gatekeeper.thread_connections import ThreadConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id              TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('received','committed','quarantined','pending')),
    applied         INTEGER NOT NULL DEFAULT 0,
    ledgered        INTEGER NOT NULL DEFAULT 0,
    namespace       TEXT NOT NULL,
    key             TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    thread_id       TEXT,
    source          TEXT NOT NULL,
    text            TEXT NOT NULL,
    category        TEXT,
    score           REAL,
    action          TEXT,
    escalation_mode TEXT,
    deadline        TEXT,
    proposal_json   TEXT NOT NULL,
    review_json     TEXT,
    decision_json   TEXT,
    resolution      TEXT,
    resolved_by     TEXT,
    resolved_reason TEXT,
    resolved_at     TEXT,
    final_value_json TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 0,
    owner           TEXT,
    superseded_by   TEXT,
    resolved_policy_hash TEXT,
    store           TEXT
);
CREATE INDEX IF NOT EXISTS proposals_state ON proposals(state, created_at);
CREATE INDEX IF NOT EXISTS proposals_agent ON proposals(agent_id, created_at);
CREATE INDEX IF NOT EXISTS proposals_nskey ON proposals(namespace, key);
CREATE INDEX IF NOT EXISTS proposals_ns_time ON proposals(namespace, created_at);
CREATE INDEX IF NOT EXISTS proposals_resolved ON proposals(resolved_by, resolved_at);
CREATE INDEX IF NOT EXISTS proposals_decided ON proposals(resolved_at) WHERE resolved_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS proposals_unfinished ON proposals(created_at)
    WHERE state='received' OR (state='committed' AND applied=0) OR ledgered=0;
CREATE TABLE IF NOT EXISTS deletions (
    namespace       TEXT NOT NULL,
    key             TEXT NOT NULL,
    deleted_at      TEXT NOT NULL,
    ledger_seq      INTEGER,
    applied         INTEGER NOT NULL DEFAULT 1,
    task_id         TEXT,
    store           TEXT
);
CREATE INDEX IF NOT EXISTS deletions_nskey ON deletions(namespace, key, deleted_at);
CREATE TABLE IF NOT EXISTS pruned (
    id              TEXT PRIMARY KEY,
    content_hash    TEXT NOT NULL,
    state           TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    receipt_json    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    pruned_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pruned_created ON pruned(created_at);
CREATE TABLE IF NOT EXISTS registry_meta (
    name            TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);
"""

#: the ``registry_meta`` row recording that the deletes the ledger held were copied into ``deletions``
DELETIONS_BACKFILLED = "deletions_backfilled"
#: the ``registry_meta`` row naming the policy (by hash) a gate last opened with or reloaded (``policy.loaded``)
POLICY_IN_FORCE = "policy_in_force"


class ConflictError(RuntimeError):
    """The proposal is not in the state the caller expected (e.g. already decided)."""


class NotFoundError(KeyError):
    """An unknown (or pruned, or erased) id. Its text is the message, not ``KeyError``'s quoted key."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


def utc_iso(moment: datetime, name: str = "since") -> str:
    """A caller's time as the registry writes its own (UTC ISO), so that the two compare as text
    (``models.as_utc``: another zone converted, a naive time refused)."""
    return as_utc(moment, name).isoformat()


def ns_to_str(namespace: tuple[str, ...]) -> str:
    return json.dumps(list(namespace), ensure_ascii=False)


#: a memory's place in the store as the registry keeps it: (namespace as stored, ``ns_to_str``; key)
StoreKey = tuple[str, str]


def store_key(namespace: Sequence[str], key: str) -> StoreKey:
    """The ``StoreKey`` of a write to (``namespace``, ``key``)."""
    return ns_to_str(tuple(namespace)), key


#: whose writes a write is joined with by the context layer (``thresholds.context_scope``): the writes of
#: ``(agent id, namespace as stored)``, either ``None`` for any
WriteContext = tuple[str | None, str | None]


def _scoped(agent_id: str, namespace: str, scope: str) -> WriteContext:
    if scope == "agent_namespace":
        return (agent_id, namespace)
    if scope == "namespace":
        return (None, namespace)
    if scope == "agent":
        return (agent_id, None)
    raise ValueError(f"unknown context scope {scope!r}")


def context_of(proposal: MemoryWrite, scope: str) -> WriteContext:
    """The context ``proposal`` is reviewed in under ``scope`` (``"agent_namespace"``: its agent's writes to
    its namespace; ``"namespace"``: any agent's writes to its namespace; ``"agent"``: its agent's writes to
    any namespace)."""
    return _scoped(proposal.provenance.agent_id, ns_to_str(proposal.namespace), scope)


def row_context(row: dict, scope: str) -> WriteContext:
    """``context_of`` for a registry row."""
    return _scoped(row["agent_id"], row["namespace"], scope)


def _context_filter(context: WriteContext) -> tuple[list[str], list[str]]:
    """The WHERE conditions (and their arguments) for the proposals of ``context``."""
    agent_id, namespace = context
    if agent_id is None and namespace is None:
        raise ValueError("a write context names an agent, a namespace or both")
    where, args = [], []
    if agent_id is not None:
        where.append("agent_id=?")
        args.append(agent_id)
    if namespace is not None:
        where.append("namespace=?")
        args.append(namespace)
    return where, args


# ------------------------------------------------------------------ ownership
_HOST = socket.gethostname()
_token_cache: tuple[int, str] | None = None


def _start_ticks(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, from /proc); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_token() -> str:
    """``host:pid:start`` of this process; start time guards against pid reuse."""
    global _token_cache
    pid = os.getpid()
    if _token_cache is None or _token_cache[0] != pid:  # recomputed after fork
        _token_cache = (pid, f"{_HOST}:{pid}:{_start_ticks(pid) or '?'}")
    return _token_cache[1]


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by an owner token is still running.

    ``None`` (rows written before ownership existed) and tokens of another host
    count as dead: SQLite in WAL mode is only shared between processes of one
    host, so a row owned elsewhere was left behind when the data moved.
    """
    if not owner:
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return False
    host, pid_s, start = parts
    if host != _HOST:
        return False
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    if pid == os.getpid():
        return owner == process_token()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    actual = _start_ticks(pid)
    if actual is None or start == "?":
        return True  # no /proc: the pid exists, assume it is the owner
    if actual != start:
        return False  # pid reused by another process
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


#: a quarantined row whose decision reason starts with a prefix (parameters: its length, the prefix), such as a
#: commit the memory store refused
_QUARANTINED_WITH_REASON = "state='quarantined' AND substr(json_extract(decision_json, '$.reason'), 1, ?) = ?"
#: a store or review failure not yet retried: the gate's decision (no resolution) or a person's approval or edit
#: of an escalation (their resolution) that the memory store refused; a retry sets ``retried`` / ``superseded``,
#: a release to the review queue ``released``
_NOT_RETRIED = "(resolution IS NULL OR resolution IN ('approve', 'edit'))"
#: the decision reason starts with one of two prefixes (parameters: length and prefix of each)
_REASON_IS_ONE_OF = """(substr(json_extract(decision_json, '$.reason'), 1, ?) = ?
    OR substr(json_extract(decision_json, '$.reason'), 1, ?) = ?)"""


#: a row that is undecided or that a crash left half done (parameters: those of ``_REASON_IS_ONE_OF`` for the
#: reasons of a store failure and a review failure): the review queue, a failure awaiting a retry (a quarantined
#: row with no decision reason counts as one), a commit not yet applied, a decision not yet ledgered. ``prune``
#: keeps them and every row and recorded delete of their (namespace, key)
_UNDECIDED = f"""(state IN ('received', 'pending') OR ledgered=0 OR (state='committed' AND applied=0)
    OR (state='quarantined' AND {_NOT_RETRIED} AND COALESCE({_REASON_IS_ONE_OF}, 1)))"""


def _retry_reasons(reasons: Sequence[str] | None) -> tuple:
    """The parameters of ``_REASON_IS_ONE_OF`` for ``reasons`` (default: the gate's store failure and review
    failure reasons)."""
    if reasons is None:
        from gatekeeper.gate import RETRY_REASONS  # here: gate imports this module

        reasons = RETRY_REASONS
    reasons = list(reasons)
    if not 1 <= len(reasons) <= 2:
        raise ValueError(f"one or two retry reasons, not {len(reasons)}")
    first, second = reasons[0], reasons[-1]
    return len(first), first, len(second), second


def deletion_reference(deletion: dict) -> str:
    """How a ``deletions`` row is named where it supersedes a write: ``memory.deleted:<ledger seq>``."""
    ref = deletion["ledger_seq"] if deletion["ledger_seq"] is not None else deletion["deleted_at"]
    return f"memory.deleted:{ref}"


def _read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that reads the registry at ``path`` and writes nothing beside it. A WAL database opened
    read-only needs its shared-memory file, which a read-only directory cannot hold: there it is read as
    immutable (no other process can be writing to it)."""
    uri = path.resolve().as_uri()
    con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        con.execute("SELECT 1 FROM proposals LIMIT 1").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
    con = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    con.execute("SELECT 1 FROM proposals LIMIT 1").fetchone()
    return con


class ProposalRegistry:
    def __init__(self, path: str | Path, *, read_only: bool = False):
        """The registry at ``path`` (created with its schema, or brought up to it). ``read_only``: open an
        existing registry for reading only, changing nothing in its directory (a data directory on a read-only
        mount or backup, for ``gatekeeper status``); every write fails."""
        self.read_only = read_only
        self._connections = ThreadConnections(self._connect)
        if read_only:
            self.path = Path(path)
            self._con()  # sqlite3.Error here when it is no registry
            return
        self.path = private_file(path)  # memory texts and decisions: 0600
        con = self._con()
        con.executescript(SCHEMA)
        cols = {r["name"] for r in con.execute("PRAGMA table_info(proposals)")}
        # columns added after the first release: ownership, the later write that made a person's approval
        # of an escalation moot and the policy in force at that decision (see ``resolve``), the memory store a
        # write is for (``gatekeeper.store_identity``; NULL in the rows journaled before: any gate writes those),
        # the door a person's decision came through and, from the CLI, the OS user (``ReviewDecision.channel``)
        added = [("proposals", col, "TEXT") for col in ("owner", "superseded_by", "resolved_policy_hash", "store",
                                                         "resolved_channel", "resolved_os_user")
                 if col not in cols]
        # whether a recorded delete reached the memory store (recovery applies one a crash interrupted); the
        # deletes recorded before the column existed were applied with their record
        deletion_cols = {r["name"] for r in con.execute("PRAGMA table_info(deletions)")}
        if "applied" not in deletion_cols:
            added.append(("deletions", "applied", "INTEGER NOT NULL DEFAULT 1"))
        # the LangGraph task that deleted through a GatedStore (``Gatekeeper.restore_deleted_by_rerun``)
        if "task_id" not in deletion_cols:
            added.append(("deletions", "task_id", "TEXT"))
        # the memory store a delete is for, as for proposals
        if "store" not in deletion_cols:
            added.append(("deletions", "store", "TEXT"))
        for table, col, kind in added:
            try:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {col} {kind}")
            except sqlite3.OperationalError as exc:  # another process migrated it first
                if "duplicate column" not in str(exc).lower():
                    raise
        # after the migration (an index on a column an old registry lacks would fail in SCHEMA): recovery looks
        # for unapplied deletes every time it runs
        con.execute("CREATE INDEX IF NOT EXISTS deletions_unapplied ON deletions(deleted_at) WHERE applied=0")

    def meta(self, name: str) -> str | None:
        """A ``registry_meta`` value, or None."""
        row = self._con().execute("SELECT value FROM registry_meta WHERE name=?", (name,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, name: str, value: str) -> None:
        """Set a ``registry_meta`` value."""
        self._con().execute("INSERT INTO registry_meta (name, value) VALUES (?, ?) "
                            "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, value))

    # connection per thread (``ThreadConnections``: ``close`` lets go of every thread's, and a forked child opens
    # its own); WAL + busy timeout for multi-process use
    def _con(self) -> sqlite3.Connection:
        return self._connections.get()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            con = _read_only_connection(self.path)
            con.row_factory = sqlite3.Row
            con.create_function("casefold", 1, _casefold, deterministic=True)
            con.create_function("wording", 1, text_wording, deterministic=True)
            return con
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=30000")
        # the registry holds memory texts: space freed by a delete or an update is zeroed, so an erased or
        # rewritten row leaves no copy in the file (gatekeeper forget)
        con.execute("PRAGMA secure_delete=ON")
        # Unicode-aware case folding for text search (SQLite's lower() folds ASCII letters only)
        con.create_function("casefold", 1, _casefold, deterministic=True)
        con.create_function("wording", 1, text_wording, deterministic=True)
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        # BEGIN inside the try: SQLite's busy wait cannot be interrupted, so a Ctrl-C (or any exception a signal
        # handler raises) pressed while it waits for another writer lands the moment BEGIN returns, with the
        # transaction open. Left open, it held the write lock of every other process and made this thread's
        # next write fail ("cannot start a transaction within a transaction"). A failed COMMIT is rolled back too
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                try:
                    con.execute("ROLLBACK")
                except BaseException:  # noqa: BLE001 - the first exception is the one to raise
                    # closing the connection ends its transaction; the thread's next call opens a new one
                    self._connections.drop()
            raise

    def close(self) -> None:
        """Close this thread's connection and let go of the others (``ThreadConnections.close``); a read
        afterwards opens its thread a new one."""
        self._connections.close()

    # ------------------------------------------------------------------ writes
    def insert_received(self, proposal: MemoryWrite, normalized_text: str | None = None, *,
                        store: str | None = None) -> bool:
        """Journal a proposal. Returns False if this id is already known."""
        return self.insert_received_many([proposal], None if normalized_text is None else [normalized_text],
                                         store=store)[0]

    def insert_received_many(self, proposals: Sequence[MemoryWrite],
                             normalized_texts: Sequence[str] | None = None, *, store: str | None = None
                             ) -> list[bool]:
        """Journal several proposals in one transaction, for the memory store ``store`` (its identity; None: for
        any). For each: False if its id was already known (a row, or the receipt of a pruned one)."""
        texts = normalized_texts if normalized_texts is not None else [p.text for p in proposals]
        with self._tx() as con:
            return _insert_received(con, proposals, texts, store)

    def insert_decided(self, proposal: MemoryWrite, review: ReviewResult, decision: Decision,
                       state: ProposalState, *, store: str | None = None) -> bool:
        """Journal a proposal and record its decision in one transaction, for a decision that is not the gate's
        review of it (``Gatekeeper.release_to_review``): there is no moment when ``recover()`` would find it
        ``received`` and review it anew. Its ledger entry is still to be written (``ledgered`` 0). False if the
        id was already known."""
        with self._tx() as con:
            if not _insert_received(con, [proposal], [proposal.text], store)[0]:
                return False
            return _record_decisions(con, [(proposal.id, review, decision, state)])[0]

    def record_decision(self, proposal_id: str, review: ReviewResult, decision: Decision,
                        state: ProposalState) -> None:
        """Record a decision for a ``received`` proposal; ConflictError if it is not awaiting one."""
        if not self.record_decisions([(proposal_id, review, decision, state)])[0]:
            raise ConflictError(f"proposal {proposal_id} is not awaiting a decision")

    def record_decisions(self, items: Sequence[tuple[str, ReviewResult, Decision, ProposalState]]) -> list[bool]:
        """Record several decisions in one transaction. For each: False if the proposal was not
        ``received`` any more (another process decided it first; its decision stands)."""
        with self._tx() as con:
            return _record_decisions(con, items)

    def record_deletes(self, deletes: Sequence[tuple[tuple[str, ...], str, str, int]], *,
                       task_id: str | None = None, store: str | None = None) -> None:
        """Record deletes of (namespace, key) ledgered for the memory store ``store`` (its identity), each with
        the time and sequence number of its ledger entry (deletes are not proposals: this is what
        ``deleted_since`` reads), and the LangGraph task that made them, if any."""
        with self._tx() as con:
            con.executemany("INSERT INTO deletions (namespace, key, deleted_at, ledger_seq, applied, task_id, store) "
                            "VALUES (?, ?, ?, ?, 0, ?, ?)",
                            [(ns_to_str(ns), key, _iso(ts), seq, task_id, store) for ns, key, ts, seq in deletes])

    def mark_deletes_applied(self, ledger_seqs: Sequence[int]) -> None:
        """Record that the memory store applied these deletes (by their ledger entries' sequence numbers)."""
        with self._tx() as con:
            con.executemany("UPDATE deletions SET applied=1 WHERE ledger_seq=?", [(seq,) for seq in ledger_seqs])

    def unapplied_deletes(self) -> list[dict]:
        """Recorded deletes the memory store may not have applied: a crash came between the record and the store's
        delete (or a backup copied the data directory in between). Each has its ledger entry's ``ledger_seq``
        (``record_deletes`` writes them with it)."""
        return [dict(r) for r in self._con().execute(
            "SELECT * FROM deletions WHERE applied=0 ORDER BY deleted_at, rowid")]

    def delete_awaits_store(self, ledger_seq: int) -> bool:
        """Whether the delete recorded with this ledger entry is still recorded and not yet applied."""
        return self._con().execute("SELECT 1 FROM deletions WHERE ledger_seq=? AND applied=0",
                                   (ledger_seq,)).fetchone() is not None

    def committed_since(self, namespace: str, key: str, since: str) -> str | None:
        """The id of a committed proposal of (namespace, key) journaled after ``since``, if any."""
        hit = self._con().execute(
            """SELECT id FROM proposals WHERE namespace=? AND key=? AND state='committed' AND created_at > ?
               ORDER BY created_at DESC LIMIT 1""", (namespace, key, since)).fetchone()
        return hit["id"] if hit else None

    def forget_deletes(self, ledger_seqs: Sequence[int]) -> None:
        """Remove the records of deletes (by the sequence numbers of their ledger entries) that the memory store
        then refused: they deleted nothing."""
        with self._tx() as con:
            con.executemany("DELETE FROM deletions WHERE ledger_seq=?", [(seq,) for seq in ledger_seqs])

    def deletions_backfilled(self) -> bool:
        """Whether ``backfill_deletions`` has run on this registry."""
        return self.meta(DELETIONS_BACKFILLED) is not None

    def backfill_deletions(self, deletes: Iterable[tuple[tuple[str, ...], str, str, int]]) -> int | None:
        """Record the ledger's deletes of (namespace, key) (each with the time and sequence number of its
        ``memory.deleted`` entry) that ``deletions`` lacks: those from before the table existed. Once per
        registry: the run is recorded in ``registry_meta``, and a later call (another process that read the
        ledger at the same time, too) does nothing and returns None; otherwise the number of deletes added."""
        deletes = list(deletes)
        with self._tx() as con:
            if con.execute("SELECT 1 FROM registry_meta WHERE name=?", (DELETIONS_BACKFILLED,)).fetchone():
                return None
            known = {r[0] for r in con.execute("SELECT ledger_seq FROM deletions WHERE ledger_seq IS NOT NULL")}
            missing = [(ns_to_str(ns), key, _iso(ts), seq) for ns, key, ts, seq in deletes if seq not in known]
            con.executemany("INSERT INTO deletions (namespace, key, deleted_at, ledger_seq) VALUES (?, ?, ?, ?)",
                            missing)
            con.execute("INSERT INTO registry_meta (name, value) VALUES (?, ?)", (DELETIONS_BACKFILLED, json.dumps(
                {"at": utcnow().isoformat(), "ledger_deletes": len(deletes), "added": len(missing)})))
        return len(missing)

    def deleted_since(self, namespace: str, key: str, since: str) -> dict | None:
        """The latest recorded delete of (``namespace`` as stored in a row, ``key``) after ``since`` (an ISO
        time), or None."""
        hit = self._con().execute(
            """SELECT * FROM deletions WHERE namespace=? AND key=? AND deleted_at > ?
                 ORDER BY deleted_at DESC LIMIT 1""", (namespace, key, since)).fetchone()
        return dict(hit) if hit else None

    def deletes_since(self, namespace: str, key: str, since: str) -> list[dict]:
        """Every recorded delete of (``namespace`` as stored in a row, ``key``) after ``since``, oldest first."""
        return [dict(r) for r in self._con().execute(
            "SELECT * FROM deletions WHERE namespace=? AND key=? AND deleted_at > ? ORDER BY deleted_at, rowid",
            (namespace, key, since))]

    def mark(self, proposal_id: str, *, applied: bool | None = None, ledgered: bool | None = None) -> None:
        self.mark_many([proposal_id], applied=applied, ledgered=ledgered)

    def mark_many(self, proposal_ids: Sequence[str], *, applied: bool | None = None,
                  ledgered: bool | None = None, store: str | None = None) -> None:
        """Set the applied / ledgered flags of several proposals in one transaction; with ``store``, the memory
        store a row journaled before stores were recorded was written into (one that names its store keeps it)."""
        sets, args = [], []
        if applied is not None:
            sets.append("applied=?")
            args.append(int(applied))
        if store is not None:
            sets.append("store=COALESCE(store, ?)")
            args.append(store)
        if ledgered is not None:
            sets.append("ledgered=?")
            args.append(int(ledgered))
        if not sets or not proposal_ids:
            return
        with self._tx() as con:
            con.executemany(f"UPDATE proposals SET {', '.join(sets)} WHERE id=?",
                            [(*args, pid) for pid in proposal_ids])

    def get_many(self, proposal_ids: Sequence[str]) -> dict[str, dict]:
        """Rows of the known ids among ``proposal_ids`` (one query per 500 ids)."""
        return self._by_id("proposals", proposal_ids)

    def _by_id(self, table: str, ids: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._con().execute(
                f"SELECT * FROM {table} WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            out.update((r["id"], dict(r)) for r in rows)
        return out

    def claim(self, proposal_id: str, expected_owner: str | None) -> bool:
        """Take over an unfinished proposal from ``expected_owner`` (a dead process).

        Compare-and-set: exactly one of several recovering processes wins."""
        with self._tx() as con:
            cur = con.execute("UPDATE proposals SET owner=? WHERE id=? AND owner IS ?",
                              (process_token(), proposal_id, expected_owner))
            return cur.rowcount == 1

    def resolve(self, proposal_id: str, *, new_state: ProposalState, resolution: str, reviewer: str,
                reason: str, final_value: dict | None, expected_version: int | None = None,
                superseded_by: str | None = None, policy_hash: str | None = None, channel: str | None = None,
                os_user: str | None = None) -> dict:
        """Move a pending proposal to committed/quarantined. Exactly once: a second
        caller (another reviewer, a retry) gets ConflictError.

        A commit is *superseded* when the memory it would write is out of date: a proposal for the same
        (namespace, key) journaled after this one is already committed (looked up here, in the same
        transaction), or the caller found a later delete of the key (``superseded_by``). The row is then
        recorded as committed and ``applied`` without a store write (as ``Gatekeeper.recover`` does with a
        superseded commit), and ``superseded_by`` names what superseded it; the caller must not write it.
        A caller that writes the store holds the key's lock (``gate.key_locks``) from before its delete lookup
        until that write, so that no commit or delete of the key by the gate lands in between.
        ``policy_hash``: the policy in force at the decision, for its ledger entry (which recovery may write), as
        are ``channel`` and ``os_user`` (``ReviewDecision``)."""
        if new_state not in (ProposalState.committed, ProposalState.quarantined):
            raise ValueError("a review resolves to committed or quarantined")
        now = utcnow().isoformat()
        with self._tx() as con:
            row = con.execute("SELECT * FROM proposals WHERE id=?", (proposal_id,)).fetchone()
            if row is None:
                raise NotFoundError(proposal_id)
            if row["state"] != ProposalState.pending.value:
                raise ConflictError(
                    f"proposal {proposal_id} is already {row['state']}"
                    + (f" ({row['resolution']} by {row['resolved_by']})" if row["resolved_by"] else ""))
            if expected_version is not None and row["version"] != expected_version:
                raise ConflictError(f"proposal {proposal_id} changed while you were reviewing it")
            if new_state is ProposalState.committed:
                superseded_by = self._later_commit(con, dict(row)) or superseded_by
            else:
                superseded_by = None
            con.execute(
                """UPDATE proposals SET state=?, resolution=?, resolved_by=?, resolved_reason=?, resolved_at=?,
                       final_value_json=?, applied=?, ledgered=0, updated_at=?, version=version+1, owner=?,
                       superseded_by=?, resolved_policy_hash=?, resolved_channel=?, resolved_os_user=?
                   WHERE id=?""",
                (new_state.value, resolution, reviewer, reason, now,
                 json.dumps(final_value) if final_value is not None else None, int(superseded_by is not None),
                 now, process_token(), superseded_by, policy_hash, channel, os_user, proposal_id),
            )
            return dict(con.execute("SELECT * FROM proposals WHERE id=?", (proposal_id,)).fetchone())

    @staticmethod
    def _later_commit(con: sqlite3.Connection, row: dict) -> str | None:
        """The id of a committed proposal for the same (namespace, key) journaled after ``row``'s."""
        hit = con.execute(
            """SELECT id FROM proposals WHERE namespace=? AND key=? AND id != ? AND state='committed'
                 AND created_at > ? ORDER BY created_at DESC LIMIT 1""",
            (row["namespace"], row["key"], row["id"], row["created_at"])).fetchone()
        return hit["id"] if hit else None

    # ------------------------------------------------------------------- reads
    def get(self, proposal_id: str) -> dict | None:
        row = self._con().execute("SELECT * FROM proposals WHERE id=?", (proposal_id,)).fetchone()
        return dict(row) if row else None

    def require(self, proposal_id: str) -> dict:
        row = self.get(proposal_id)
        if row is None:
            receipt = self.pruned_many([proposal_id]).get(proposal_id)
            if receipt is not None and receipt["content_hash"] == ERASED:
                raise NotFoundError(f"proposal {proposal_id} was {receipt['state']} and erased on "
                                    f"{receipt['pruned_at'][:10]} (gatekeeper forget); its decision is in the ledger, "
                                    "its text is not kept anywhere")
            if receipt is not None:
                raise NotFoundError(f"proposal {proposal_id} was {receipt['state']} and pruned from the registry on "
                                    f"{receipt['pruned_at'][:10]} (gatekeeper prune); its decision and evidence are "
                                    "in the ledger")
            raise NotFoundError(f"no proposal with id {proposal_id}")
        return row

    def query(self, *, state: ProposalState | str | None = None, agent_id: str | None = None,
              namespace_prefix: tuple[str, ...] | None = None, context: WriteContext | None = None,
              category: str | None = None, older_than: datetime | None = None, newer_than: datetime | None = None,
              overdue_at: datetime | None = None, limit: int = 100, offset: int = 0,
              newest_first: bool = False, decided: bool = False, reviewer: str | None = None,
              text_contains: str | None = None, wording: str | None = None) -> list[dict]:
        """Rows matching every filter given. ``decided``: only escalations a person decided (``reviewer``:
        by that account), most recent decision first. ``context``: the rows of one write context
        (``context_of``: an agent's, exactly one namespace's or both); ``namespace_prefix``: the rows of that
        namespace and the ones under it; ``text_contains``: the rows whose memory text holds it, ignoring case
        (Unicode case folding; at most ``MAX_TEXT_FILTER`` characters, ValueError otherwise); ``wording``: the rows
        whose memory text has this ``text_wording``."""
        where, args = [], []
        if wording is not None:
            where.append("wording(text) = ?")
            args.append(wording)
        if text_contains:
            if len(text_contains) > MAX_TEXT_FILTER:
                raise ValueError(f"a text filter is at most {MAX_TEXT_FILTER} characters, not {len(text_contains)}")
            where.append("instr(casefold(text), ?) > 0")
            args.append(_casefold(text_contains))
        if state is not None:
            where.append("state=?")
            args.append(state.value if isinstance(state, ProposalState) else state)
        if agent_id:
            where.append("agent_id=?")
            args.append(agent_id)
        if category:
            where.append("category=?")
            args.append(category)
        if context is not None:
            more_where, more_args = _context_filter(context)
            where.extend(more_where)
            args.extend(more_args)
        if namespace_prefix:
            clause, more = _under_prefix(namespace_prefix)
            where.append(clause)
            args.extend(more)
        if older_than:
            where.append("created_at < ?")
            args.append(utc_iso(older_than, "older_than"))
        if newer_than:
            where.append("created_at >= ?")
            args.append(utc_iso(newer_than, "newer_than"))
        if overdue_at:
            where.append("deadline IS NOT NULL AND deadline < ?")
            args.append(utc_iso(overdue_at, "overdue_at"))
        if decided:
            where.append("resolved_by IS NOT NULL")
            if reviewer:
                where.append("resolved_by=?")
                args.append(reviewer)
        sql = "SELECT * FROM proposals"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if decided:  # most recent decision first
            sql += " ORDER BY resolved_at DESC, rowid DESC LIMIT ? OFFSET ?"
        else:
            # rowid breaks ties in the same direction: the writes of one batch share their time, and the newest
            # first are the batch's last writes first (``policy diff --limit`` takes the newest N)
            order = "DESC" if newest_first else "ASC"
            sql += f" ORDER BY created_at {order}, rowid {order} LIMIT ? OFFSET ?"
        return [dict(r) for r in self._con().execute(sql, (*args, *_limit_offset(limit, offset)))]

    def pending_by_agent(self, agent_ids: Iterable[str]) -> dict[str, int]:
        """How many escalations of each of ``agent_ids`` wait in the review queue (agents with none are left
        out)."""
        ids = sorted(set(agent_ids))
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        return {r["agent_id"]: r["n"] for r in self._con().execute(
            f"""SELECT agent_id, COUNT(*) AS n FROM proposals WHERE state='pending' AND agent_id IN ({marks})
               GROUP BY agent_id""", ids)}

    def counts(self) -> dict[str, int]:
        rows = self._con().execute("SELECT state, COUNT(*) AS n FROM proposals GROUP BY state")
        out = {s.value: 0 for s in ProposalState}
        out.update({r["state"]: r["n"] for r in rows})
        return out

    def counts_since(self, since: datetime) -> dict[str, int]:
        """Proposals journaled at or after ``since``, by state (one index range per state)."""
        con = self._con()
        return {s.value: con.execute("SELECT COUNT(*) FROM proposals WHERE state=? AND created_at >= ?",
                                     (s.value, utc_iso(since))).fetchone()[0] for s in ProposalState}

    def count_resolved_by_since(self, reviewer: str, since: datetime) -> int:
        """Escalations ``reviewer`` decided at or after ``since`` (``gatekeeper:expiry``: those that expired)."""
        return self._con().execute("SELECT COUNT(*) FROM proposals WHERE resolved_by=? AND resolved_at >= ?",
                                   (reviewer, utc_iso(since))).fetchone()[0]

    def decision_waits_since(self, since: datetime, *, excluding: str) -> list[float]:
        """Seconds from journaling to decision of each escalation a person decided at or after ``since`` (not
        those ``excluding`` decided: the expiry), in no particular order. Reads the decided rows only (a partial
        index of them)."""
        rows = self._con().execute(
            "SELECT created_at, resolved_at FROM proposals WHERE resolved_by IS NOT NULL AND resolved_at >= ? "
            "AND resolved_by != ?", (utc_iso(since), excluding)).fetchall()
        return [max(0.0, (datetime.fromisoformat(r[1]) - datetime.fromisoformat(r[0])).total_seconds())
                for r in rows]

    def count_quarantined_since(self, reason_prefix: str, since: datetime) -> int:
        """Writes journaled at or after ``since`` that the gate quarantined with a decision reason starting with
        ``reason_prefix``."""
        return self._con().execute(
            f"SELECT COUNT(*) FROM proposals WHERE {_QUARANTINED_WITH_REASON} AND created_at >= ?",
            (len(reason_prefix), reason_prefix, utc_iso(since))).fetchone()[0]

    def pending_summary(self, now: datetime) -> tuple[int, datetime | None]:
        """(escalations past their deadline at ``now``, when the oldest pending one was journaled)."""
        con = self._con()
        overdue = con.execute("SELECT COUNT(*) FROM proposals WHERE state='pending' AND deadline IS NOT NULL "
                              "AND deadline < ?", (utc_iso(now, "now"),)).fetchone()[0]
        oldest = con.execute("SELECT MIN(created_at) FROM proposals WHERE state='pending'").fetchone()[0]
        return int(overdue), datetime.fromisoformat(oldest) if oldest else None

    def recent_writes(self, context: WriteContext, since: datetime, limit: int, *,
                      let_in_from: float | None = None, before_id: str | None = None,
                      excluding_key: StoreKey | None = None) -> list[tuple[StoreKey, str]]:
        """The latest committed writes of ``context`` (``context_of``) since ``since``, oldest first, each as
        its (namespace as stored, key) and text: what the context layer joins a new write with (the pieces a
        split belief would consist of; writes already stopped are not held against the next one). A write a
        person edited is its text as edited (what the store holds). ``excluding_key``: not the writes of that
        key (the one a new write replaces: a key holds one value, so the store never holds them beside it).

        A write whose key was overwritten or deleted since is still returned: the registry's times are when
        writes were journaled, not when they reached the store (a delete journaled after a put can reach the
        store before it; a LangGraph re-run's delete is undone by ``restore_deleted_by_rerun``), so leaving it
        out could miss a belief split over pieces the store does hold. Joined, it errs towards a false alarm.

        With ``before_id`` (a journaled write reviewed late: ``Gatekeeper.recover`` after a crash) only the
        writes journaled before that one, in the registry's order (time, then journaling), as when it was
        written; not the ones that came while it waited.

        With ``let_in_from`` (the score from which a joined text counts) the ones a person let in with such a
        score (``let_in_alarming``) or whose review cleared such a score (``cleared_alarming``) come as
        ``LeftOutText``: ``joinable`` leaves them out of a write's joins, except where the write runs on from
        one; the writes before and after them are joined. Rows an erasure is taking out are not returned
        (``hide_texts`` blanked their text; a person's edit of one is in ``final_value_json`` until ``erase``)."""
        where, args = _context_filter(context)
        if excluding_key is not None:
            where.append("NOT (namespace = ? AND key = ?)")
            args.extend(excluding_key)
        if before_id is not None:
            at = self._con().execute("SELECT created_at, rowid FROM proposals WHERE id=?", (before_id,)).fetchone()
            if at is not None:
                where.append("(created_at < ? OR (created_at = ? AND rowid < ?))")
                args.extend([at[0], at[0], at[1]])
        rows = self._con().execute(
            f"""SELECT namespace, key, text, action, score, resolution, final_value_json, review_json FROM proposals
               WHERE {" AND ".join(where)} AND created_at >= ? AND state='committed' AND text != ''
               ORDER BY created_at DESC, rowid DESC LIMIT ?""",
            (*args, utc_iso(since), int(limit)),
        ).fetchall()
        out: list[tuple[StoreKey, str]] = []
        for r in rows:
            text = committed_text(r)
            if let_in_from is not None and left_out_of_joins(r, let_in_from):
                # only that write: the ones before it may be pieces of a belief split around it
                text = LeftOutText(text)
            out.append(((r["namespace"], r["key"]), text))
        return out[::-1]

    def unfinished(self) -> list[dict]:
        """Rows a crash may have left half-done."""
        return [dict(r) for r in self._con().execute(
            f"SELECT * FROM proposals WHERE {_UNFINISHED} ORDER BY created_at, rowid")]

    def count_pending_alike(self, agent_id: str, text: str, *, excluding: str) -> int:
        """Escalations of ``agent_id`` waiting with this memory text's wording (``text_wording``: numbers, case,
        punctuation and spacing aside), ``excluding`` one of them: a flood a reviewer may decide at once."""
        return self._con().execute(
            "SELECT COUNT(*) FROM proposals WHERE agent_id=? AND state='pending' AND wording(text)=? AND id != ?",
            (agent_id, text_wording(text), excluding)).fetchone()[0]

    def relabel_store(self, old: str, new: str, *, dry_run: bool = False) -> int:
        """Record the writes and deletes journaled for the memory store ``old`` as ``new``'s (the same store,
        moved); how many rows that is."""
        with self._tx() as con:
            n = sum(con.execute(f"SELECT COUNT(*) FROM {t} WHERE store=?", (old,)).fetchone()[0]
                    for t in ("proposals", "deletions"))
            if not dry_run:
                for table in ("proposals", "deletions"):
                    con.execute(f"UPDATE {table} SET store=? WHERE store=?", (new, old))
        return n

    def unfinished_by_store(self) -> dict[str | None, int]:
        """How many rows ``unfinished`` would return, by the memory store each is for (None: recorded before stores
        were), and the unapplied deletes likewise."""
        out: dict[str | None, int] = {}
        for table, where in (("proposals", _UNFINISHED), ("deletions", "applied=0")):
            for row in self._con().execute(f"SELECT store, COUNT(*) AS n FROM {table} WHERE {where} GROUP BY store"):
                out[row["store"]] = out.get(row["store"], 0) + row["n"]
        return out

    def count_unfinished(self) -> int:
        """How many rows ``unfinished`` would return (a partial index: cheap at any registry size)."""
        return self._con().execute(f"SELECT COUNT(*) FROM proposals WHERE {_UNFINISHED}").fetchone()[0]

    def awaiting_retry(self, reason_prefix: str, limit: int, offset: int = 0) -> list[dict]:
        """Quarantined rows not yet retried whose decision reason starts with ``reason_prefix`` (the memory store
        refused their commit, or their review failed), oldest first."""
        return [dict(r) for r in self._con().execute(
            f"""SELECT * FROM proposals WHERE {_QUARANTINED_WITH_REASON} AND {_NOT_RETRIED}
               ORDER BY created_at, rowid LIMIT ? OFFSET ?""",
            (len(reason_prefix), reason_prefix, int(limit), int(offset)))]

    def awaiting_retry_of_key(self, reason_prefix: str, namespace: str, key: str) -> list[dict]:
        """``awaiting_retry``'s rows of one (namespace, key) (``namespace`` as stored), oldest first."""
        return [dict(r) for r in self._con().execute(
            f"""SELECT * FROM proposals WHERE namespace=? AND key=? AND {_QUARANTINED_WITH_REASON} AND {_NOT_RETRIED}
               ORDER BY created_at, rowid""", (namespace, key, len(reason_prefix), reason_prefix))]

    def count_awaiting_retry(self, reason_prefix: str) -> int:
        """How many rows ``awaiting_retry`` would return without a limit."""
        return self._con().execute(
            f"SELECT COUNT(*) FROM proposals WHERE {_QUARANTINED_WITH_REASON} AND {_NOT_RETRIED}",
            (len(reason_prefix), reason_prefix)).fetchone()[0]

    def quarantined_by_gate(self, *, since: datetime | None, limit: int, excluding_reasons: Sequence[str],
                            offset: int = 0) -> list[dict]:
        """Rows the gate itself quarantined, journaled since ``since``, oldest first: no person's resolution (a
        rejection), not retried, and no decision reason starting with one of ``excluding_reasons`` (two: the
        faults that have retries of their own). ``offset``: skip that many (a page)."""
        return [dict(r) for r in self._con().execute(
            f"""SELECT * FROM proposals WHERE state='quarantined' AND resolution IS NULL
                 AND NOT COALESCE({_REASON_IS_ONE_OF}, 0) AND created_at >= ?
               ORDER BY created_at, rowid LIMIT ? OFFSET ?""",
            (*_retry_reasons(excluding_reasons), utc_iso(since) if since else "",
             *_limit_offset(limit, offset)))]

    def later_write_or_delete(self, row: dict, *, excluding: str, retry_reasons: Sequence[str] | None = None
                              ) -> str | None:
        """What supersedes ``row``'s write of its (namespace, key): the id of a proposal of that key journaled
        after it that is committed, or will decide the key later (received, pending, or itself quarantined by a
        store or review failure, to be retried: its decision reason starts with one of ``retry_reasons``,
        default the gate's), or ``memory.deleted:<ledger seq>`` for a later delete; None when nothing does.
        ``excluding``: a proposal that does not count (the row's own retry)."""
        hit = self._con().execute(
            f"""SELECT id FROM proposals WHERE namespace=? AND key=? AND id NOT IN (?, ?) AND created_at > ?
                 AND (state IN ('committed', 'received', 'pending')
                      OR (state='quarantined' AND {_NOT_RETRIED} AND {_REASON_IS_ONE_OF}))
               ORDER BY created_at DESC LIMIT 1""",
            (row["namespace"], row["key"], row["id"], excluding, row["created_at"],
             *_retry_reasons(retry_reasons))).fetchone()
        if hit is not None:
            return hit["id"]
        deleted = self.deleted_since(row["namespace"], row["key"], row["created_at"])
        return deletion_reference(deleted) if deleted is not None else None

    def mark_retried(self, proposal_id: str, *, resolution: str, reason: str, superseded_by: str,
                     expired: bool = False) -> bool:
        """Record on a quarantined write that it was retried or released to the review queue (``superseded_by``
        names the new proposal) or skipped as out of date (``superseded_by`` names what superseded it).
        ``resolved_by`` is not set: it
        names a person's decision on an escalation (the decided list, the quarantine's "by"), which this is not
        (a person's approval the store refused keeps its reviewer; the ledger keeps their reason). False when
        it was marked already. ``expired``: an escalation that expired unreviewed (rejected by
        ``gatekeeper:expiry``) released to review; its expiry's name is cleared with it, as nobody decided it
        (the ledger keeps the expiry)."""
        now = utcnow().isoformat()
        which = (f"resolution='reject' AND resolved_by='{EXPIRY_REVIEWER}'" if expired else _NOT_RETRIED)
        with self._tx() as con:
            cur = con.execute(
                f"""UPDATE proposals SET resolution=?, resolved_reason=?, resolved_at=?, superseded_by=?,
                       updated_at=?, version=version+1{", resolved_by=NULL" if expired else ""}
                   WHERE id=? AND state='quarantined' AND {which}""",
                (resolution, reason, now, superseded_by, now, proposal_id))
            return cur.rowcount == 1

    def superseded(self, row: dict) -> bool:
        """A later decision for the same (namespace, key) already reached the memory store."""
        hit = self._con().execute(
            """SELECT 1 FROM proposals WHERE namespace=? AND key=? AND id != ? AND state='committed'
                 AND applied=1 AND updated_at > ? LIMIT 1""",
            (row["namespace"], row["key"], row["id"], row["updated_at"])).fetchone()
        return hit is not None

    def journaled_later(self, row: dict) -> str | None:
        """What makes the write of a row journaled and not yet decided (a crash or an interrupt stopped it) out of
        date: the id of a committed proposal of its (namespace, key) journaled after it, or
        ``memory.deleted:<ledger seq>`` for a delete of the key recorded after it; None when nothing does. The
        newest journaled write of a key wins, as with a person's late approval (``resolve``)."""
        later = self._later_commit(self._con(), row)
        if later is not None:
            return later
        deleted = self.deleted_since(row["namespace"], row["key"], row["created_at"])
        return deletion_reference(deleted) if deleted is not None else None

    def mark_superseded(self, items: Sequence[tuple[str, str, Decision]]) -> None:
        """Mark commits applied without a store write: (proposal id, what superseded it (the later proposal's id
        or delete's reference), the decision as recorded now)."""
        if not items:
            return
        with self._tx() as con:
            con.executemany("UPDATE proposals SET applied=1, superseded_by=?, decision_json=? "
                            "WHERE id=? AND state='committed'",
                            [(by, decision.model_dump_json(), pid) for pid, by, decision in items])

    def find_by_key(self, namespace: tuple[str, ...], key: str) -> list[dict]:
        return [dict(r) for r in self._con().execute(
            "SELECT * FROM proposals WHERE namespace=? AND key=? ORDER BY created_at, rowid",
            (ns_to_str(namespace), key))]

    # --------------------------------------------------------------- retention
    def prune(self, before: datetime, *, dry_run: bool = False, batch: int = 1000,
              retry_reasons: Sequence[str] | None = None, progress: dict[str, Any] | None = None,
              journaled_before: datetime | None = None) -> dict[str, Any]:
        """Delete the rows nothing can need any more: finished proposals and recorded deletes from before
        ``before``. The ledger keeps every decision (it is the audit record); this keeps the registry small.

        A proposal row goes when all of these hold:

        * it is finished: ``committed`` and ``applied`` and ``ledgered``, or ``quarantined`` and ``ledgered``
          and not a store or review failure awaiting a retry (decision reason starting with one of
          ``retry_reasons``, not yet retried: what ``awaiting_retry`` returns). ``received`` and ``pending``
          rows (the review queue) and rows a crash left half done (``unfinished``) never go;
        * no row of its (namespace, key) is undecided or unfinished, and no delete of the key waits to be applied
          (``unapplied_deletes``): deciding, retrying or recovering such a row or delete consults the other writes
          of its key (``_later_commit``, ``later_write_or_delete``,
          ``superseded``) and its deletes (``deleted_since``), whatever their age. Other keys are not held up;
        * it was not escalated with ``escalation_mode`` ``interrupt``: a LangGraph thread may still be paused on
          its interrupt after a person decided it elsewhere, and resuming the thread reads the row again (the
          human-review node rebuilds the interrupt's request from it, ``ReviewService._stale_interrupt`` steps
          the thread past it with its decision). Those rows come at the rate of people's decisions;
        * it was journaled, last changed and (when decided by a person or retried) resolved before ``before``.

        Each pruned proposal leaves a receipt in ``pruned`` (id, content hash, final state, agent, the
        decision, the label, category and score: a few hundred bytes): the same id submitted again (a client's
        retry, a LangGraph thread resumed after the prune replaying its node) is answered from it and written
        nowhere, as a kept row would answer it, instead of being reviewed again as a new write (which could
        write an old value over a newer one); an id reused for other content is refused; ``agent_ids`` still
        knows the agent. Recorded deletes before ``before`` go unless their key has an undecided row.

        This method enforces no minimum age: ``gatekeeper.retention.prune_registry`` does (the agent context
        window, ``recent_writes``, reads the last ``thresholds.context_minutes`` of committed rows).

        Deletes ``batch`` rows per transaction, so other processes sharing the registry are held up by one
        batch at a time, not by the whole prune; each batch checks again, in its transaction, that its rows are
        still eligible. ``progress`` (a dict) is kept up to date with the counts so far, for a caller that
        records a prune an error stopped half way. ``dry_run``: count what would go and change nothing. Does
        not VACUUM (``vacuum``): the freed pages are reused by later writes.

        ``retry_reasons``: the decision reason prefixes of a commit the memory store refused and of a failed review
        (default ``gatekeeper.gate.RETRY_REASONS``). ``journaled_before`` (dry run only): also count, as
        ``journaled_before_count``, the rows that would go which were journaled before it (those whose receipts a
        ``drop_receipts`` with that cutoff, run after the prune, drops at once).

        Returns ``{"proposals": n, "deletions": m, "cutoff": iso, "kept_undecided": k,
        "kept_for_undecided": j}``: rows deleted (would be, with ``dry_run``), the cutoff (ISO time, UTC), how
        many undecided or unfinished rows there were, and how many old finished rows and deletes stayed because
        their key has one."""
        if before.tzinfo is None:
            raise ValueError("before must be a timezone-aware datetime (the registry's times are UTC)")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        reason = _retry_reasons(retry_reasons)
        cut = min(before.astimezone(timezone.utc), utcnow()).isoformat()
        undecided_key = f"""(EXISTS (SELECT 1 FROM proposals u WHERE u.namespace = {{t}}.namespace
            AND u.key = {{t}}.key AND {_UNDECIDED}) OR EXISTS (SELECT 1 FROM deletions ud
            WHERE ud.namespace = {{t}}.namespace AND ud.key = {{t}}.key AND ud.applied = 0))"""
        old_finished = f"""p.state IN ('committed', 'quarantined') AND NOT ({_UNDECIDED})
            AND p.escalation_mode IS NOT 'interrupt'
            AND p.created_at < ? AND p.updated_at < ? AND (p.resolved_at IS NULL OR p.resolved_at < ?)"""
        eligible = f"{old_finished} AND NOT {undecided_key.format(t='p')}"
        args = (*reason, cut, cut, cut, *reason)
        deletable = f"d.deleted_at < ? AND d.applied = 1 AND NOT {undecided_key.format(t='d')}"
        dargs = (cut, *reason)
        con = self._con()
        out: dict[str, Any] = progress if progress is not None else {}
        out.update(proposals=0, deletions=0, cutoff=cut)
        out["kept_undecided"] = con.execute(f"SELECT COUNT(*) FROM proposals WHERE {_UNDECIDED}",
                                            reason).fetchone()[0]
        out["kept_for_undecided"] = (
            con.execute(f"SELECT COUNT(*) FROM proposals p WHERE {old_finished} AND {undecided_key.format(t='p')}",
                        args).fetchone()[0]
            + con.execute(f"SELECT COUNT(*) FROM deletions d WHERE d.deleted_at < ? AND {undecided_key.format(t='d')}",
                          dargs).fetchone()[0])
        if dry_run:
            out["proposals"] = con.execute(f"SELECT COUNT(*) FROM proposals p WHERE {eligible}", args).fetchone()[0]
            if journaled_before is not None:
                out["journaled_before_count"] = con.execute(
                    f"SELECT COUNT(*) FROM proposals p WHERE {eligible} AND p.created_at < ?",
                    (*args, min(journaled_before.astimezone(timezone.utc), utcnow()).isoformat())).fetchone()[0]
            out["deletions"] = con.execute(f"SELECT COUNT(*) FROM deletions d WHERE {deletable}",
                                           dargs).fetchone()[0]
            return out
        while True:
            with self._tx() as tx:
                rows = tx.execute(f"SELECT p.* FROM proposals p WHERE {eligible} LIMIT ?", (*args, batch)).fetchall()
                if rows:
                    now = utcnow().isoformat()
                    tx.executemany("INSERT OR REPLACE INTO pruned VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   [(r["id"], _stored_hash(dict(r)), r["state"], r["agent_id"], _receipt(dict(r)),
                                     r["created_at"], now) for r in rows])
                    tx.execute(f"DELETE FROM proposals WHERE id IN ({','.join('?' * len(rows))})",
                               [r["id"] for r in rows])
            out["proposals"] += len(rows)
            if len(rows) < batch:
                break
        while True:
            with self._tx() as tx:
                n = tx.execute(f"DELETE FROM deletions WHERE rowid IN (SELECT d.rowid FROM deletions d "
                               f"WHERE {deletable} LIMIT ?)", (*dargs, batch)).rowcount
            out["deletions"] += n
            if n < batch:
                break
        return out

    def drop_receipts(self, before: datetime, *, dry_run: bool = False, batch: int = 1000,
                      progress: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete the receipts ``prune`` left (``pruned`` rows) of proposals journaled before ``before``, ``batch``
        at a time, except erased ones: the receipt of an erased proposal is what refuses its id sent again (a
        LangGraph thread replaying its node would otherwise store the erased text anew), so it stays.

        What a dropped receipt did, nothing does any more: the same id sent again is reviewed as a new write
        under the policy in force (a belief is escalated again; a note is written again, which an agent's
        store already holding it sees as the same value), ``require`` says the id is unknown rather than
        pruned, and an agent whose every proposal is gone no longer reserves its name against reviewer
        accounts. The ledger still holds each decision.

        Returns ``{"receipts": n, "kept_erased": m, "cutoff": iso}``: receipts deleted (would be, with
        ``dry_run``), erased receipts from before the cutoff that stay, and the cutoff (UTC). ``progress`` (a
        dict) is kept up to date with them, for a caller that records a run an error stopped half way."""
        if before.tzinfo is None:
            raise ValueError("before must be a timezone-aware datetime (the registry's times are UTC)")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        cut = min(before.astimezone(timezone.utc), utcnow()).isoformat()
        con = self._con()
        out: dict[str, Any] = progress if progress is not None else {}
        out.update(receipts=0, cutoff=cut, kept_erased=con.execute(
            "SELECT COUNT(*) FROM pruned WHERE created_at < ? AND content_hash = ?", (cut, ERASED)).fetchone()[0])
        if dry_run:
            out["receipts"] = con.execute("SELECT COUNT(*) FROM pruned WHERE created_at < ? AND content_hash != ?",
                                          (cut, ERASED)).fetchone()[0]
            return out
        while True:
            with self._tx() as tx:
                n = tx.execute("DELETE FROM pruned WHERE rowid IN (SELECT rowid FROM pruned WHERE created_at < ? "
                               "AND content_hash != ? LIMIT ?)", (cut, ERASED, batch)).rowcount
            out["receipts"] += n
            if n < batch:
                break
        return out

    # ----------------------------------------------------------------- erasure
    def matching(self, *, proposal_ids: Sequence[str] = (), namespace_prefix: tuple[str, ...] | None = None,
                 key: str | None = None) -> list[dict]:
        """The rows with these ids, and (``namespace_prefix``) the rows under that namespace prefix (``key``: of
        that key only): what ``gatekeeper.erasure`` selects in the registry."""
        rows = dict(self._by_id("proposals", proposal_ids))
        if namespace_prefix:
            clause, args = _under_prefix(namespace_prefix)
            sql = f"SELECT * FROM proposals WHERE {clause}"
            if key is not None:
                sql += " AND key=?"
                args.append(key)
            rows.update((r["id"], dict(r)) for r in self._con().execute(sql, args))
        return list(rows.values())

    def undecided_of_keys(self, keys: Iterable[tuple[Sequence[str], str]]) -> tuple[list[dict], list[dict]]:
        """The rows of these (namespace, key) pairs that are in review or unfinished (``received``, ``pending``, not
        ledgered, committed but not applied), and their recorded deletes not yet applied: what must be decided or
        recovered before the keys' memories can be erased."""
        rows: list[dict] = []
        deletes: list[dict] = []
        con = self._con()
        for ns, key in dict.fromkeys((ns_to_str(tuple(ns)), k) for ns, k in keys):
            rows += [dict(r) for r in con.execute(
                f"""SELECT * FROM proposals WHERE namespace=? AND key=?
                    AND (state IN ('received', 'pending') OR {_UNFINISHED})""", (ns, key))]
            deletes += [dict(r) for r in con.execute(
                "SELECT * FROM deletions WHERE namespace=? AND key=? AND applied=0", (ns, key))]
        return rows, deletes

    def hide_texts(self, proposal_ids: Sequence[str]) -> int:
        """Blank the ``text`` column of these rows, the first step of their erasure (``gatekeeper.erasure``): it is
        what the context layer reads of an agent's recent writes (``recent_writes``), so a write reviewed while the
        erasure runs is not joined with them and cannot quote them in its evidence. The rows keep their values
        (an interrupted erasure, run again, still finds the texts) until ``erase``. Returns how many changed."""
        ids = list(dict.fromkeys(proposal_ids))
        changed = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            with self._tx() as tx:
                changed += tx.execute(f"UPDATE proposals SET text='' WHERE text != '' AND id IN "
                                      f"({','.join('?' * len(chunk))})", chunk).rowcount
        return changed

    def erase(self, proposal_ids: Sequence[str]) -> dict[str, int]:
        """Forget what the registry holds of these proposals' contents (``gatekeeper.erasure``).

        Each row is replaced by a receipt (as ``prune`` leaves) whose content hash is :data:`ERASED`, which no write
        has: the id stays known, so a replay of it is refused (``Gatekeeper.submit`` raises
        ``ProposalIdConflict``) instead of being reviewed as a new write; the receipt keeps the state, the
        verdict (label, category, score) and the decision without its reason. A receipt of a pruned id is
        scrubbed the same way. The registry's connections run with SQLite's ``secure_delete``, so the deleted
        rows leave no copy in the file (``checkpoint`` then empties the write-ahead log). Returns ``{"rows": n,
        "receipts": m}``."""
        ids = list(dict.fromkeys(proposal_ids))
        now = utcnow().isoformat()
        out = {"rows": 0, "receipts": 0}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            with self._tx() as tx:
                rows = tx.execute(f"SELECT * FROM proposals WHERE id IN ({marks})", chunk).fetchall()
                tx.executemany("INSERT OR REPLACE INTO pruned VALUES (?, ?, ?, ?, ?, ?, ?)",
                               [(r["id"], ERASED, r["state"], r["agent_id"],
                                 _erased_receipt(_receipt(dict(r)), now), r["created_at"], now) for r in rows])
                tx.execute(f"DELETE FROM proposals WHERE id IN ({marks})", chunk)
                out["rows"] += len(rows)
                done = {r["id"] for r in rows}
                older = [r for r in tx.execute(f"SELECT id, content_hash, receipt_json FROM pruned WHERE id IN "
                                               f"({marks})", chunk) if r["id"] not in done]
                tx.executemany("UPDATE pruned SET content_hash=?, receipt_json=? WHERE id=?",
                               [(ERASED, _erased_receipt(r["receipt_json"], now), r["id"]) for r in older
                                if r["content_hash"] != ERASED])
                out["receipts"] += sum(r["content_hash"] != ERASED for r in older)
        return out

    def scrub_evidence(self, texts: Sequence[str], keep: Iterable[str] = (),
                       writers: tuple[Iterable[str], Iterable[tuple[str, ...]]] | None = None) -> int:
        """Replace, in the review evidence of every row but ``keep``, each string that quotes one of ``texts``
        (``gatekeeper.quotes``): the context layer's joined texts (a write joined with the writes before it) and
        the judge's similar memories quote other writes. ``writers``, ``(agent ids, namespaces)`` of the writes
        whose texts these are, limits the rows read to those that can quote them: the same agent's (the context
        layer's agent scopes), or under one of the namespaces or a namespace above it (its namespace scope, the
        judge's search of a namespace). Returns how many rows changed.

        The rows are read and matched outside any write transaction; each page's changes are then written in a
        short one, a row only while its evidence is still what was matched (one reviewed again meanwhile is
        matched again), so other gates' writes are not held up while a large registry is read."""
        from gatekeeper.normalize import normalize

        # the evidence quotes texts as the review read them: normalised (NFKC, HTML entities decoded, "..." for
        # an ellipsis), which folding alone does not undo
        texts = [t for t in texts if t and t.strip()]
        finder = QuoteFinder([*texts, *(normalize(t).text for t in texts)])
        if not finder:
            return 0
        keep = set(keep)
        agents: set[str] | None = None
        spaces: set[str] = set()
        if writers is not None:
            agents = set(writers[0])
            spaces = {ns_to_str(ns[:i]) for ns in writers[1] for i in range(len(ns) + 1)}

        def wanted(row: sqlite3.Row) -> bool:
            return row["id"] not in keep and (agents is None or row["agent_id"] in agents
                                              or row["namespace"] in spaces)

        changed_rows = 0
        last = ""
        while True:
            rows = self._con().execute(
                """SELECT id, agent_id, namespace, review_json FROM proposals WHERE id > ? AND (review_json LIKE
                   '%joined_text%' OR review_json LIKE '%similar_memories%') ORDER BY id LIMIT 500""",
                (last,)).fetchall()
            changed = [(j, r["id"], r["review_json"]) for r in rows
                       if wanted(r) and (j := _scrub_evidence(r["review_json"], finder)) is not None]
            if changed:
                with self._tx() as tx:
                    for new, pid, old in changed:
                        if tx.execute("UPDATE proposals SET review_json=? WHERE id=? AND review_json=?",
                                      (new, pid, old)).rowcount:
                            changed_rows += 1
                            continue
                        # reviewed again since it was read (or gone): match what it holds now
                        now = tx.execute("SELECT review_json FROM proposals WHERE id=?", (pid,)).fetchone()
                        again = _scrub_evidence(now["review_json"], finder) if now is not None else None
                        if again is not None:
                            tx.execute("UPDATE proposals SET review_json=? WHERE id=?", (again, pid))
                            changed_rows += 1
            if len(rows) < 500:
                return changed_rows
            last = rows[-1]["id"]

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and empty it; False when another connection's read kept
        it from being emptied."""
        return not self._con().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]

    def pruned_many(self, proposal_ids: Sequence[str]) -> dict[str, dict]:
        """The receipts (``pruned`` rows) of the pruned ids among ``proposal_ids``."""
        return self._by_id("pruned", proposal_ids)

    def vacuum(self) -> None:
        """Give the space of pruned rows back to the file system (``prune`` leaves it to later writes).

        VACUUM rewrites the whole database: it needs about the database's size again in free disk space and
        holds SQLite's write lock throughout (every other writer waits, up to its busy timeout, then fails), so
        run it with no other process writing: the gate stopped, at a quiet time."""
        con = self._con()
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


#: the longest text a query may search the memory texts for
MAX_TEXT_FILTER = 200


def _casefold(value: object) -> str | None:
    return value.casefold() if isinstance(value, str) else None


_DIGITS = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[\W_]+")


def text_wording(value: object) -> str | None:
    """A memory text's wording: its words, case folded, with every number the same and punctuation, spacing and
    characters a reader cannot see left out. The copies of one write an agent stored many times, with a counter or
    a date in it, or spaced and punctuated differently, have one wording."""
    if not isinstance(value, str):
        return None
    folded = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(w for w in _NOT_WORD.split(_DIGITS.sub("0", folded)) if w)


def _insert_received(con: sqlite3.Connection, proposals: Sequence[MemoryWrite], texts: Sequence[str],
                     store: str | None = None) -> list[bool]:
    """Journal proposals as ``received`` for the memory store ``store`` within the caller's transaction. For each:
    False if its id was already known (a row, or the receipt of a pruned one: a pruned id is never journaled
    again)."""
    now = utcnow().isoformat()
    me = process_token()
    inserted = []
    for proposal, text in zip(proposals, texts, strict=True):
        cur = con.execute(
            """INSERT OR IGNORE INTO proposals
               (id, state, namespace, key, agent_id, thread_id, source, text, proposal_json,
                created_at, updated_at, owner, store)
               SELECT ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
               WHERE NOT EXISTS (SELECT 1 FROM pruned WHERE id=?)""",
            (proposal.id, ns_to_str(proposal.namespace), proposal.key, proposal.provenance.agent_id,
             proposal.provenance.thread_id, proposal.provenance.source.value, text,
             proposal.model_dump_json(), now, now, me, store, proposal.id),
        )
        inserted.append(cur.rowcount == 1)
    return inserted


def _record_decisions(con: sqlite3.Connection, items: Sequence[tuple[str, ReviewResult, Decision, ProposalState]]
                      ) -> list[bool]:
    """Record decisions within the caller's transaction. For each: False if the proposal was not ``received`` any
    more."""
    now = utcnow().isoformat()
    done = []
    for proposal_id, review, decision, state in items:
        cur = con.execute(
            """UPDATE proposals SET state=?, category=?, score=?, action=?, escalation_mode=?,
                   deadline=?, review_json=?, decision_json=?, updated_at=?, version=version+1
               WHERE id=? AND state='received'""",
            (state.value, review.category, review.score, decision.action.value,
             decision.escalation_mode.value if decision.escalation_mode else None,
             decision.deadline.isoformat() if decision.deadline else None,
             review.model_dump_json(), decision.model_dump_json(), now, proposal_id),
        )
        done.append(cur.rowcount == 1)
    return done


#: rows a crash may have left half done, what ``Gatekeeper.recover`` finishes (the ``proposals_unfinished``
#: partial index has the same condition, word for word, so that SQLite uses it)
_UNFINISHED = "state='received' OR (state='committed' AND applied=0) OR ledgered=0"

#: SQLite integers are 64-bit: a LIMIT / OFFSET beyond that would raise OverflowError
_SQL_INT_MAX = 2**63 - 1


def _stored_hash(row: dict[str, Any]) -> str:
    """The content hash a replay of the row's id is compared with. A row whose proposal does not parse (written
    by an older or foreign tool) gets one no proposal has, so a replay of its id is refused, never re-reviewed."""
    try:
        return row_proposal(row).content_hash()
    except ValueError:
        return "unparsed:" + hashlib.sha256(str(row["proposal_json"]).encode("utf-8")).hexdigest()


def _receipt(row: dict[str, Any]) -> str:
    """What a pruned proposal leaves to answer a replay of its id: the decision and the review's verdict."""
    try:
        review = row_review(row)
        decision = json.loads(row["decision_json"]) if row["decision_json"] else None
    except ValueError:
        review, decision = None, None
    return json.dumps({"decision": decision, "label": review.label.value if review else None,
                       "category": row["category"], "score": row["score"], "resolution": row["resolution"]})


def _under_prefix(namespace_prefix: tuple[str, ...]) -> tuple[str, list[Any]]:
    """A WHERE clause (and its arguments) for the rows whose namespace is ``namespace_prefix`` or under it:
    exactly, case and all (``LIKE`` ignores the case of ASCII letters, so erasing ("memories", "Bob") erased
    bob's memories too). The rows under it are those whose stored namespace starts with the prefix's labels and
    a comma: under SQLite's binary ordering, the range from that text up to it with its comma raised by one."""
    under = ns_to_str(namespace_prefix)[:-1] + ","  # the closing bracket dropped: the labels, then a comma
    return "(namespace=? OR (namespace >= ? AND namespace < ?))", [ns_to_str(namespace_prefix), under,
                                                                 under[:-1] + chr(ord(",") + 1)]


#: the content hash of an erased proposal's receipt (``ProposalRegistry.erase``): no write's hash, so a replay of
#: the id is refused
ERASED = "erased"
#: what an erased decision's reason reads
ERASED_REASON = "erased (gatekeeper forget)"


def _erased_receipt(receipt_json: str, erased_at: str) -> str:
    """A receipt without the decision's reason (it may quote the write), marked erased."""
    try:
        data = json.loads(receipt_json)
    except ValueError:
        data = {}
    if isinstance(data.get("decision"), dict):
        data["decision"]["reason"] = ERASED_REASON
    data["erased_at"] = erased_at
    return json.dumps(data)


#: what a quoted text that held an erased one reads
ERASED_QUOTE = "[erased: quoted an erased memory]"
#: the evidence details that quote other writes: the context layer's joined text, the judge's similar memories
#: and its rationale (which may quote them); the other details quote the write's own text, erased with its row
QUOTING_DETAILS = frozenset({"joined_text", "similar_memories", "rationale"})


def _scrub_evidence(review_json: str | None, finder: QuoteFinder) -> str | None:
    """``review_json`` with every string of its ``QUOTING_DETAILS`` that quotes one of ``finder``'s texts
    replaced; None when nothing changed."""
    try:
        review = json.loads(review_json or "null")
    except ValueError:
        return None
    changed = False

    def scrub(value: Any, cut: int | None = None, whole: bool = False) -> Any:
        nonlocal changed
        if isinstance(value, str):
            if ((whole and finder.is_one_of(value))
                    or finder.quoted_in(value, cut=cut is not None and len(value) >= cut)):
                changed = True
                return ERASED_QUOTE
            return value
        if isinstance(value, list):
            return [scrub(v, whole=whole) for v in value]
        if isinstance(value, dict):
            return {k: scrub(v, whole=whole) for k, v in value.items()}
        return value

    evidence = review.get("evidence") if isinstance(review, dict) else None
    for ev in evidence if isinstance(evidence, list) else []:
        details = ev.get("details") if isinstance(ev, dict) else None
        if isinstance(details, dict):
            for name in QUOTING_DETAILS & details.keys():
                # the judge's similar memories are whole memories (their first 500 characters): one that is an
                # erased text goes however short it is (a quote in running text needs MIN_QUOTED characters)
                details[name] = scrub(details[name], JOINED_TEXT_CHARS if name == "joined_text" else None,
                                      whole=name == "similar_memories")
    return json.dumps(review) if changed else None


def _limit_offset(limit: int, offset: int) -> tuple[int, int]:
    """LIMIT and OFFSET clamped to SQLite's integers (a huge offset is past the end, a huge limit is all)."""
    return tuple(max(-_SQL_INT_MAX, min(int(v), _SQL_INT_MAX)) for v in (limit, offset))  # type: ignore[return-value]


def _iso(ts: str) -> str:
    """A ledger time ("...Z") written like the registry's own times (``utcnow().isoformat()``), so the two
    compare as strings."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).isoformat()


def committed_text(row: Mapping[str, Any]) -> str:
    """The text a committed registry ``row`` holds in the memory store: the proposal's, or a person's edit of it
    (the row's ``text`` stays the proposal's)."""
    if row["resolution"] == "edit" and row["final_value_json"]:
        return content_to_text(json.loads(row["final_value_json"]))
    return row["text"]


def let_in_alarming(row: Mapping[str, Any], counts_from: float) -> bool:
    """Whether a committed registry ``row`` was let in by a person (an approved or edited escalation, a released
    quarantine: the gate's own action was not a commit) with a score from ``counts_from`` on, the score from
    which the context layer counts a joined text.

    The context layer does not join later writes with such a write: every joined text holding it reads about as
    alarming as it did alone, so each later write of its context was escalated for it, however harmless, until
    it left the window (``thresholds.context_minutes``). The person has read it; the later writes are joined
    with the others, before and after it. A write let in with a lower score (one from a source whose every write
    a person reviews) stays in the window."""
    return row["action"] != Action.commit.value and row["score"] is not None and row["score"] >= counts_from


def cleared_alarming(review: ReviewResult | None, counts_from: float) -> bool:
    """Whether a write's ``review`` cleared a text that reads alarming on its own: the classifier scored the
    write's own text from ``counts_from`` on (the score from which the context layer counts a joined text), and
    the review's final score is below it: a counter-exemplar matched it (safety staff vetted the text, often
    because the classifier flags it), or the LLM judge cleared it.

    The context layer does not join later writes with such a write, as with one a person let in
    (``let_in_alarming``): the joined texts hold the same words the classifier flags, without what cleared
    them (a joined text is no counter-exemplar's equal; the judge may not clear a joined text), so every later
    note of the context was stopped for it. The judge clears a write only where nothing was joined with it,
    so the verdict is about the write's own words."""
    if review is None or review.error:
        return False
    own = next((e.score for e in review.evidence if e.layer == "classifier"), None)
    return own is not None and own >= counts_from > review.score


class LeftOutText(str):
    """The text of a committed write that later writes are not joined with (``left_out_of_joins``), except the
    write that runs on from it (``joinable``)."""


def joinable(recent: Sequence[str], text: str) -> list[str]:
    """Of a write's ``recent`` texts (oldest first), the ones the context layer joins the write (``text``)
    with: not the ``LeftOutText`` ones, unless it is the one just before the write and the write runs on from
    it (``segments.runs_on``: it stops mid-statement and the write goes on in lower case). A person or the
    judge cleared that write's words on their own, not the statement the write completes."""
    if not any(isinstance(t, LeftOutText) for t in recent):
        return list(recent)
    out = [str(t) for t in recent[:-1] if not isinstance(t, LeftOutText)]
    last = recent[-1]
    if not isinstance(last, LeftOutText) or runs_on(last, text):
        out.append(str(last))
    return out


def left_out_of_joins(row: Mapping[str, Any], counts_from: float) -> bool:
    """Whether the context layer leaves a committed registry ``row`` out of later writes' joined texts:
    ``let_in_alarming`` or ``cleared_alarming`` (the row's recorded review)."""
    if let_in_alarming(row, counts_from):
        return True
    return bool(row["review_json"]) and cleared_alarming(row_review(dict(row)), counts_from)


def row_proposal(row: dict[str, Any]) -> MemoryWrite:
    return MemoryWrite.model_validate_json(row["proposal_json"], context={STORED: True})


def row_review(row: dict[str, Any]) -> ReviewResult | None:
    return ReviewResult.model_validate_json(row["review_json"]) if row.get("review_json") else None


def row_decision(row: dict[str, Any]) -> Decision | None:
    return Decision.model_validate_json(row["decision_json"]) if row.get("decision_json") else None
