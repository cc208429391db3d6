"""Append-only, hash-chained audit ledger (one JSON object per line).

Every decision of the gatekeeper is written here as one line::

    {"seq":1,"ts":"2025-01-01T12:00:00.000000Z","event":"decision",...,"prev_hash":"000…","hash":"9f2…"}

* ``seq``       -- 1-based, consecutive.
* ``ts``        -- ISO-8601 UTC timestamp with microseconds and a ``Z`` suffix.
* ``event``     -- the event name given to :meth:`AuditLedger.append`.
* caller fields -- any JSON-serialisable keyword arguments (pydantic models are
  dumped with ``model_dump(mode="json")``, enums become their value).
* ``hv``        -- the hash version, 2 (absent on entries written before it).
* ``prev_hash`` -- ``hash`` of the previous entry, ``"0" * 64`` for the first.
* ``hash``      -- sha256 (hex) of :func:`canonical_json` (``sort_keys=True,
  separators=(",", ":"), ensure_ascii=False``, UTF-8) of the entry without
  its ``hash`` field and its :data:`REDACTABLE_FIELDS` (text, reasons, ...),
  plus ``"redactable_digest"``: the sha256 of the canonical JSON of an object
  of those redactable fields (:func:`entry_hash`).  Two steps so that a
  redacted entry (below) still verifies.  An entry without ``hv`` (written
  before hash version 2) hashes the whole entry without ``hash``.  The key
  order *on the line* is irrelevant to the hash, so any JSON tool can
  re-verify a line.

Concurrency and durability
--------------------------
:meth:`AuditLedger.append` takes an in-process thread lock and an exclusive
``fcntl.flock`` on the ledger file itself, then reads the last entry (seeking
from the end of the file, never reading the whole file), computes the new entry,
writes it with a single ``os.write`` on an ``O_APPEND`` descriptor and calls
``os.fsync`` before releasing the lock (:meth:`AuditLedger.append_many` does the
same for several entries: one write, one fsync).  Any number of processes (and threads)
may append to the same file; they produce one valid chain.  Readers
(:meth:`verify`, :meth:`entries`) take a shared lock only long enough to snapshot
the file size, and then read that complete prefix without blocking writers.

Corruption handling
-------------------
``append`` checks the tail before chaining: if the final line is torn (no
trailing newline -- e.g. the process was killed mid-write), is not valid JSON,
or its hash does not match its content, ``append`` raises
:class:`LedgerCorruptError` and writes nothing.  A torn tail is also reported
by :meth:`verify` (``problem`` starts with ``"torn tail"``).  The operator may
then call :meth:`repair_torn_tail`, which truncates the incomplete final line
(only when it lacks its trailing newline), returns the removed bytes and, by
default, appends a ``ledger.tail_repaired`` entry recording what was removed
(size, sha256, text) so the repair itself is on the record.  ``append`` only
inspects the tail; :meth:`verify` checks the whole chain.

:meth:`anchor` returns ``(seq, hash)`` of the last entry.  Store it somewhere
else (another system, a ticket, a signed note); ``verify(expected_head=anchor)``
then also detects removal of trailing entries and wholesale rewrites, which a
self-contained hash chain cannot detect on its own.

Rotation
--------
The ledger is the audit record and is never edited, but one file need not hold
it all.  :meth:`AuditLedger.rotate` moves the live file to
``<stem>-archive/<stem>-<first seq>-<last seq><suffix>`` (a hard link, then a
rename of the new file over the live name: no copy, whatever the size) and
starts a new live file whose first entry, ``ledger.rotated``, continues the
chain: its ``seq`` follows the archive's last one and its ``prev_hash`` is the
archive's last ``hash``, which itself commits to every archived entry.  It runs
under the same exclusive lock as ``append``; every appender checks, once it
holds the lock, that its descriptor is still the file at ``path`` and reopens
it if not, so no process appends to an archive.  ``verify()`` checks the live
file (a first ``ledger.rotated`` entry starts the chain there);
``verify(archives=True)`` and :meth:`history` go through the archives too.
Archives can be moved or deleted by a retention policy: keep an anchor of
each one's last entry if they may be needed as evidence.

Redaction
---------
Entries are never edited, with one exception: a memory's text must be erased
when it is asked to be forgotten (a person's data, a secret written by mistake).
:meth:`AuditLedger.redact` takes the text-bearing fields (:data:`REDACTABLE_FIELDS`:
the text, its sha256, reasons, an edited value, an error, claimed sources, the
entry's ``nonce``) out of chosen entries and leaves a *stub*: the same line
without those fields, with ``"redacted": [their names]``, ``"redacted_digest"``
(the digest of what was taken out) and the entry's original ``prev_hash`` and
``hash``.  The stub verifies by its hash like any entry (hash version 2), so
an anchor taken before the redaction still covers every field it kept.  First a
``ledger.redacted`` entry is appended, in the chain, holding ``[seq, digest]`` of
each stub to be (``digest``: sha256 of the stub's :func:`canonical_json`); then
the files are rewritten under the exclusive lock (:meth:`apply_redactions`).
``verify`` also checks that every stub is named by a record and matches the
stub recorded (a stub no record names is an entry someone stripped), and that
it holds no redactable field; the ledger's own records are never redacted.  A
stub of an entry written before hash version 2 cannot be checked by its hash:
only its record confirms it (``redacted_legacy`` counts them, and an anchor does
not cover their kept fields).  So that a new entry cannot be passed off as an
old one, a ledger of older entries gets a ``ledger.hash_version`` entry before
its first new one, and ``verify`` reports an entry of the old format after it
(or after any new entry), and a new entry right after an old one without that
marker between them.  Entries carry a random ``nonce`` (removed with the text),
so an original hash cannot be used to confirm a guessed text.
A record whose entries are not stubs yet (a crash between the two steps) is
*pending*: ``verify`` counts it (``redactions_pending``) and
:meth:`apply_redactions` finishes it.  Copies made earlier (backups) keep the
text.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

import structlog
from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.files import fsync_dir as _fsync_dir
from gatekeeper.files import private_dir, write_all, write_private_file
from gatekeeper.log_setup import get_logger

__all__ = [
    "GENESIS_HASH",
    "RESERVED_FIELDS",
    "HASH_VERSION",
    "HASH_VERSION_EVENT",
    "REDACTABLE_FIELDS",
    "OWN_EVENTS",
    "REDACTED_EVENT",
    "ROTATED_EVENT",
    "AuditLedger",
    "LedgerCorruptError",
    "LedgerEntry",
    "LedgerError",
    "LedgerSerializationError",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
]

GENESIS_HASH = "0" * 64
RESERVED_FIELDS = frozenset({"seq", "ts", "event", "prev_hash", "hash", "hv", "redacted", "redacted_digest"})
TAIL_REPAIRED_EVENT = "ledger.tail_repaired"
#: the first entry of a ledger file that continues an archived one (see :meth:`AuditLedger.rotate`)
ROTATED_EVENT = "ledger.rotated"
#: the entry recording redactions of earlier entries: ``entries`` is a list of ``[seq, stub digest]``
REDACTED_EVENT = "ledger.redacted"
#: the entry a ledger of older entries gets before its first entry of hash version 2 (see ``verify``)
HASH_VERSION_EVENT = "ledger.hash_version"
#: the fields :meth:`AuditLedger.redact` takes out of an entry: what a memory's text can be read from
REDACTABLE_FIELDS = frozenset({"nonce", "text", "content_sha256", "reason", "edited_value", "error",
                               "claimed_source", "removed_text"})
#: the hash version of the entries this ledger writes: 2 hashes the redactable fields through one digest of them
#: (``entry_hash``), so that a redacted entry's hash stays checkable
HASH_VERSION = 2

_log = get_logger(__name__)

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TAIL_CHUNK = 4096
_HEX = frozenset("0123456789abcdef")


# --------------------------------------------------------------------------- errors


class LedgerError(Exception):
    """Base class for ledger errors."""


class LedgerCorruptError(LedgerError):
    """The ledger file is damaged (torn tail, invalid JSON, edited last entry).

    Nothing is appended while the ledger is in this state; run
    :meth:`AuditLedger.verify` for a precise report and, for a torn tail,
    :meth:`AuditLedger.repair_torn_tail`. ``problem``: what is wrong with the last line, where one was read.
    """

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem


class LedgerSerializationError(TypeError):
    """A field passed to :meth:`AuditLedger.append` cannot be stored as JSON."""


# --------------------------------------------------------------------------- models


class LedgerEntry(BaseModel):
    """One written ledger entry, as returned by :meth:`AuditLedger.append`."""

    model_config = ConfigDict(frozen=True)

    seq: int
    ts: str
    event: str
    fields: dict[str, Any] = Field(default_factory=dict, description="the caller's fields")
    hv: int | None = Field(default=None, description="the hash version (2 for entries written since redaction)")
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry exactly as stored on its line (same keys, same order)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "event": self.event,
            **self.fields,
            **({"hv": self.hv} if self.hv is not None else {}),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class VerifyReport(BaseModel):
    """Result of :meth:`AuditLedger.verify`."""

    ok: bool
    entries: int = Field(
        description="number of entries that verified, i.e. the intact prefix "
        "before the first problem (all entries when ok)"
    )
    first_bad_seq: int | None = Field(
        default=None, description="seq of the first bad entry (None if unknown, e.g. invalid JSON)"
    )
    first_bad_line: int | None = Field(default=None, description="1-based line number of the first bad entry")
    problem: str | None = Field(default=None, description="human-readable description of the first problem")
    first_seq: int = Field(default=1, description="seq of the first entry checked: above 1 when the checked files "
                           "begin with a rotation (older entries archived, or archives not checked or removed)")
    files: int = Field(default=1, description="ledger files checked: archives (oldest first), then the live file")
    file: str | None = Field(default=None, description="the file holding the first bad entry")
    anchor_unverifiable: bool = Field(default=False, description="not a sign of tampering: the anchor is older "
                                      "than every file checked (its archive was not checked, or was removed)")
    redacted: int = Field(default=0, description="entries checked that are redaction stubs (each verified by its "
                          "hash, or for an older entry by its ledger.redacted record)")
    redacted_legacy: int = Field(default=0, description="of those, stubs of entries written before hash version 2: "
                                 "their kept fields are confirmed by their ledger.redacted record only, so an anchor "
                                 "taken before the redaction does not cover them")
    redactions_pending: int = Field(default=0, description="entries a ledger.redacted record names that are not "
                                    "stubs yet (a redaction interrupted before its rewrite: apply_redactions)")
    time_went_back: list[int] = Field(default_factory=list, description="seqs (the first 10) of entries whose ts "
                                      "is earlier than the entry before's: the clock was set back (or entries "
                                      "were forged with times of their own); not a break of the chain")
    time_unreadable: list[int] = Field(default_factory=list, description="seqs (the first 10) of entries whose ts "
                                       "is not an ISO-8601 UTC time as the ledger writes it")


# --------------------------------------------------------------------------- hashing


#: characters that end a line for Unicode-aware readers (Python's ``str.splitlines``, some log shippers and
#: editors): written escaped in a ledger line, where they can only stand inside a JSON string (same value, hash)
_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _one_line(line: str) -> str:
    """A rendered ledger line that every reader takes as one line: a memory's U+2028 was written raw, and a tool
    splitting on Unicode line boundaries read the entry as two broken lines."""
    return line.translate(_UNICODE_LINE_BREAKS)


def canonical_json(obj: Any) -> str:
    """The canonical JSON text used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def redactable_digest(entry: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the entry's :data:`REDACTABLE_FIELDS` (an object of those present)."""
    part = {k: v for k, v in entry.items() if k in REDACTABLE_FIELDS}
    return hashlib.sha256(canonical_json(part).encode("utf-8")).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash an entry must carry. Entries with ``"hv": 2`` (written since redaction exists): sha256 hex of the
    canonical JSON of the entry without ``hash`` and its redactable fields, plus ``redactable_digest`` (of a whole
    entry: :func:`redactable_digest`; of a redaction stub: its ``redacted_digest``), so a stub verifies like a
    whole entry. Older entries: sha256 hex of the canonical JSON of the entry without its ``hash``."""
    if entry.get("hv") == HASH_VERSION:
        digest = entry["redacted_digest"] if "redacted" in entry else redactable_digest(entry)
        body = {k: v for k, v in entry.items()
                if k not in REDACTABLE_FIELDS and k not in ("hash", "redacted", "redacted_digest")}
        body["redactable_digest"] = digest
    else:
        body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def redaction_stub(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """What :meth:`AuditLedger.redact` leaves of ``entry``: the entry without its :data:`REDACTABLE_FIELDS`, with
    ``redacted`` (their names, sorted) before its ``prev_hash`` and its original ``hash``. None when the entry
    holds none of them, or is a stub already."""
    if "redacted" in entry:
        return None
    gone = sorted(k for k in entry if k in REDACTABLE_FIELDS)
    if not gone:
        return None
    stub: dict[str, Any] = {}
    for k, v in entry.items():
        if k in REDACTABLE_FIELDS:
            continue
        if k == "prev_hash":
            stub["redacted"] = gone
            if entry.get("hv") == HASH_VERSION:
                stub["redacted_digest"] = redactable_digest(entry)
        stub[k] = v
    return stub


def stub_digest(stub: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a redaction stub, ``hash`` and ``redacted`` included: what a
    ``ledger.redacted`` record holds for it."""
    return hashlib.sha256(canonical_json(dict(stub)).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- value normalisation


def _jsonable(value: Any, path: str, stack: set[int]) -> Any:
    """Return a plain-JSON copy of *value* or raise LedgerSerializationError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return _jsonable(value.value, path, stack)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LedgerSerializationError(
                f"ledger field {path!r}: string is not encodable as UTF-8 ({exc.reason})"
            ) from None
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LedgerSerializationError(f"ledger field {path!r}: {value!r} is not valid JSON (NaN/Infinity)")
        return float(value)
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json"), path, stack)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in stack:
            raise LedgerSerializationError(f"ledger field {path!r}: circular reference")
        stack.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[str, Any] = {}
                for k, v in value.items():
                    if not isinstance(k, str):
                        raise LedgerSerializationError(
                            f"ledger field {path!r}: dict key {k!r} is a {type(k).__name__}, keys must be str"
                        )
                    out[k] = _jsonable(v, f"{path}.{k}", stack)
                return out
            return [_jsonable(v, f"{path}[{i}]", stack) for i, v in enumerate(value)]
        finally:
            stack.discard(id(value))
    raise LedgerSerializationError(
        f"ledger field {path!r}: value of type {type(value).__module__}.{type(value).__qualname__} "
        "is not JSON-serialisable (use str/int/float/bool/None/list/dict, a pydantic model, "
        "or convert it first, e.g. datetime.isoformat())"
    )


def _normalise_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    reserved = RESERVED_FIELDS.intersection(fields)
    if reserved:
        raise ValueError(f"ledger field name(s) {sorted(reserved)} are reserved for the ledger itself")
    return {k: _jsonable(v, k, set()) for k, v in fields.items()}


def _reject_unserialisable(obj: Any) -> Any:  # JSONRenderer's `default`
    raise LedgerSerializationError(f"not JSON-serialisable: {type(obj).__qualname__}")


# --------------------------------------------------------------------------- structlog plumbing


class _LineSink:
    """The structlog "logger": collects each rendered line; ``append_many`` writes them all
    with one ``os.write`` and one ``fsync``."""

    def __init__(self, ledger: AuditLedger) -> None:
        self._ledger = ledger

    def msg(self, line: str) -> None:
        self._ledger._lines.append(line)


# --------------------------------------------------------------------------- the ledger


class AuditLedger:
    """Append-only, hash-chained JSON-lines audit ledger.  See the module docstring."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._fd: int | None = None
        self._pid = os.getpid()
        self._tlock = threading.Lock()
        # State handed to the processor chain; only touched while holding both locks.
        self._head: tuple[int, str] | None = None
        self._pending: dict[str, Any] = {}
        self._written: dict[str, Any] | None = None
        self._lines: list[str] = []
        self._log = structlog.wrap_logger(
            _LineSink(self),
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
            processors=[
                self._add_chain_position,
                structlog.processors.TimeStamper(fmt=_TS_FORMAT, utc=True, key="ts"),
                self._order_and_hash,
                structlog.processors.JSONRenderer(
                    ensure_ascii=False,
                    separators=(",", ":"),
                    allow_nan=False,
                    default=_reject_unserialisable,
                ),
            ],
        )

    # ---------------------------------------------------------------- properties / lifecycle

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._tlock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AuditLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLedger({str(self._path)!r})"

    def _check_fork(self) -> None:
        # After fork the child shares the parent's open file description, and
        # flock() locks belong to the description: re-open so the lock excludes.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            if self._fd is not None:
                try:
                    os.close(self._fd)  # our copy only; the parent's descriptor and lock are unaffected
                except OSError:
                    pass
            self._fd = None
            self._tlock = threading.Lock()

    def _writer_fd(self) -> int:
        if self._fd is None:
            private_dir(self._path.parent)
            existed = self._path.exists()
            self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if not existed:  # make the new directory entry durable too
                _fsync_dir(self._path.parent)
        return self._fd

    def _lock_current_file(self) -> int:
        """The writer descriptor, exclusively locked, on the file that is at ``path`` now. A rotation (here or in
        another process) puts a new file there under this lock; a descriptor opened before it would append to
        the archive, so it is reopened."""
        while True:
            fd = self._writer_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                mine, there = os.fstat(fd), os.stat(self._path)
                if os.path.samestat(mine, there):
                    return fd
            except FileNotFoundError:  # renamed away under us: open the file at path (created if need be)
                pass
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._fd = None

    # ---------------------------------------------------------------- processor chain

    def _add_chain_position(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        assert self._head is not None, "ledger head not set (processor chain called outside append)"
        last_seq, last_hash = self._head
        # Caller fields are injected here rather than passed as logger kwargs, so
        # that no field name can collide with structlog's own parameters.
        event_dict.update(self._pending)
        event_dict["seq"] = last_seq + 1
        event_dict["prev_hash"] = last_hash
        return event_dict

    def _order_and_hash(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        head = ("seq", "ts", "event")
        tail = ("prev_hash", "hash")
        entry = {k: event_dict[k] for k in head}
        entry.update((k, v) for k, v in event_dict.items() if k not in head and k not in tail)
        entry["hv"] = HASH_VERSION
        entry["prev_hash"] = event_dict["prev_hash"]
        entry["hash"] = entry_hash(entry)
        self._written = entry
        return dict(entry)

    def _render(self, head: tuple[int, str], items: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """The entries ``items`` (event, normalised fields) become as links of the chain after ``head`` (seq,
        hash): rendered by the processor chain, their lines collected in ``_lines`` for one write."""
        self._head = head
        self._lines = []
        written = []
        for event, fields in items:
            self._written = None
            self._pending = fields
            self._log.msg(event)
            assert self._written is not None
            written.append(self._written)
            self._head = (self._written["seq"], self._written["hash"])
        return written

    def _reset_chain_state(self) -> None:
        """Forget what the processor chain was handed for one append (or rotation), done or failed."""
        self._head = None
        self._pending = {}
        self._written = None
        self._lines = []

    def _write_lines(self, lines: list[str]) -> None:
        """Write complete lines with one ``os.write`` (O_APPEND, under the exclusive lock) and fsync."""
        fd = self._writer_fd()
        data = "".join(_one_line(line) + "\n" for line in lines).encode("utf-8")
        size_before = os.fstat(fd).st_size
        try:
            write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            # Never leave a torn line behind if we can help it.
            try:
                os.ftruncate(fd, size_before)
                os.fsync(fd)
            except OSError:
                pass
            raise

    # ---------------------------------------------------------------- tail reading

    def _read_last_line(self, fd: int) -> tuple[bytes | None, int]:
        """Return (last complete line without newline or None if empty file, file size).

        Raises LedgerCorruptError if the file does not end with a newline.
        """
        size = os.fstat(fd).st_size
        if size == 0:
            return None, 0
        if os.pread(fd, 1, size - 1) != b"\n":
            raise LedgerCorruptError(
                f"ledger {self._path}: tail is torn — the final line has no trailing newline "
                "(a write was interrupted); `gatekeeper ledger repair` (repair_torn_tail()) removes it, and a gate "
                "opening does too"
            )
        # Read backwards in growing chunks until the newline before the last line is found.
        end = size - 1  # index of the final newline
        buf = b""
        pos = end
        chunk = _TAIL_CHUNK
        while True:
            start = max(0, pos - chunk)
            buf = os.pread(fd, pos - start, start) + buf
            pos = start
            idx = buf.rfind(b"\n")
            if idx >= 0:
                return buf[idx + 1 :], size
            if pos == 0:
                return buf, size
            chunk = min(chunk * 2, 1 << 20)

    def _parse_tail(self, fd: int) -> tuple[dict[str, Any] | None, int]:
        raw, size = self._read_last_line(fd)
        if raw is None:
            return None, 0
        problem = _check_entry_line(raw)
        if isinstance(problem, str):
            raise LedgerCorruptError(f"ledger {self._path}: last line is bad ({problem}); refusing to chain onto it",
                                     problem=problem)
        return problem, size

    # ---------------------------------------------------------------- append

    def append(self, event: str, /, **fields: Any) -> LedgerEntry:
        """Append one entry and fsync it.  Returns the entry as written.

        Raises ``TypeError`` (:class:`LedgerSerializationError`) for values that
        are not JSON-serialisable and ``ValueError`` for reserved field names --
        in both cases before touching the file.  Raises
        :class:`LedgerCorruptError` if the current last line is torn, invalid or
        edited.
        """
        return self.append_many([(event, fields)])[0]

    def append_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[LedgerEntry]:
        """Append several entries, in order, as consecutive links of the chain, with one
        write and one fsync (a batch of decisions costs one disk flush, not one each).

        Every entry is validated before the file is touched: one bad entry and nothing is
        written.  The entries are written with a single ``os.write`` under the exclusive
        lock; if the write or the fsync fails the file is truncated back, so either all of
        them or none are in the ledger (a process killed mid-write leaves a torn tail,
        which ``append`` refuses and :meth:`repair_torn_tail` removes).
        """
        prepared = []
        for event, fields in items:
            if not isinstance(event, str) or not event:
                raise TypeError(f"ledger event must be a non-empty str, got {event!r}")
            clean = _normalise_fields(fields)
            # Fails early (and cheaply) for anything the renderer would choke on.
            canonical_json(clean).encode("utf-8")
            prepared.append((event, clean))
        if not prepared:
            return []

        self._check_fork()
        with self._tlock:
            fd = self._lock_current_file()
            try:
                last, _ = self._parse_tail(fd)
                head = (0, GENESIS_HASH) if last is None else (last["seq"], last["hash"])
                # the first entry of hash version 2 after older ones is this marker: verify then knows that an
                # entry of the old format after it, or after an entry of version 2, replaced one
                marker = [(HASH_VERSION_EVENT, {"version": HASH_VERSION})] \
                    if last is not None and last.get("hv") != HASH_VERSION else []
                written = self._render(head, marker + prepared)[len(marker):]
                self._write_lines(self._lines)
            finally:
                self._reset_chain_state()
                fcntl.flock(fd, fcntl.LOCK_UN)
        return [_as_entry(w) for w in written]

    # ---------------------------------------------------------------- repair

    def repair_torn_tail(self, *, record: bool = True) -> bytes:
        """Truncate an incomplete final line (one lacking its trailing newline).

        Returns the removed bytes (``b""`` if the tail was not torn).  A final
        line that *has* its newline is never touched, even if it is invalid --
        that is tampering or a different fault, and :meth:`verify` reports it.
        With ``record=True`` (default) a ``ledger.tail_repaired`` entry with
        the size, sha256 and text of the removed bytes is appended, so the
        repair is itself audited.
        """
        self._check_fork()
        with self._tlock:
            fd = self._lock_current_file()
            try:
                size = os.fstat(fd).st_size
                if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
                    return b""
                pos, buf = size, b""
                while pos > 0:
                    start = max(0, pos - _TAIL_CHUNK)
                    buf = os.pread(fd, pos - start, start) + buf
                    pos = start
                    idx = buf.rfind(b"\n")
                    if idx >= 0:
                        cut = pos + idx + 1
                        break
                else:
                    cut = 0
                removed = os.pread(fd, size - cut, cut)
                os.ftruncate(fd, cut)
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if record:
            self.append(
                TAIL_REPAIRED_EVENT,
                removed_bytes=len(removed),
                removed_sha256=hashlib.sha256(removed).hexdigest(),
                removed_text=removed.decode("utf-8", errors="replace"),
            )
        return removed

    # ---------------------------------------------------------------- rotation

    @property
    def archive_dir(self) -> Path:
        """Where :meth:`rotate` puts archived ledger files: ``<stem>-archive`` beside the ledger."""
        return self._path.with_name(f"{self._path.stem}-archive")

    def archives(self) -> list[Path]:
        """The archived ledger files, oldest first. A file that is the live ledger itself (a link left by a rotation
        interrupted between its two steps) is not an archive and is left out."""
        try:
            live = os.stat(self._path)
        except FileNotFoundError:
            live = None
        found = []
        name = self._archive_name()
        try:
            candidates = list(self.archive_dir.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        for path in candidates:
            m = name.fullmatch(path.name)
            if not m:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # removed meanwhile (retention), or a link to nothing
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if live is not None and os.path.samestat(st, live):
                continue
            found.append((int(m.group(1)), int(m.group(2)), path))
        return [p for *_, p in sorted(found)]

    def rotate(self) -> LedgerEntry | None:
        """Archive the live file and start a new one that continues the chain (see the module docstring).

        Returns the new file's first entry (``ledger.rotated``: ``archive``, ``archived_first_seq``,
        ``archived_last_seq``), or None when there is nothing to archive (an empty ledger, or one holding only
        the entry of the last rotation). Raises :class:`LedgerCorruptError` when the last or the first line is
        damaged (a torn tail is repaired first: :meth:`repair_torn_tail`), and :class:`LedgerError` when the path
        is a symbolic link (rotate the file it points to) or the caller is neither the live file's owner nor
        root; nothing is changed then. The new file and a new archive folder get the live file's owner, group
        and mode, so a rotation run as root (cron) leaves the gates able to write.
        """
        if self._path.is_symlink():
            raise LedgerError(f"cannot rotate {self._path}: it is a symbolic link; rotate the file it points to "
                              f"({os.path.realpath(self._path)}), which the gates' descriptors follow")
        self._check_fork()
        written: dict[str, Any] | None = None
        with self._tlock:
            fd = self._lock_current_file()
            try:
                last, _ = self._parse_tail(fd)
                if last is None:
                    return None
                first = self._first_entry(fd)
                if first["seq"] == last["seq"] and first["event"] == ROTATED_EVENT:
                    return None
                live = os.fstat(fd)
                euid = os.geteuid()
                if euid not in (0, live.st_uid):
                    raise LedgerError(f"cannot rotate {self._path}: it belongs to uid {live.st_uid}; run as that "
                                      "user (or root), so the new file keeps the owner the gates write as")
                archive = self.archive_dir / (f"{self._path.stem}-{first['seq']:012d}-{last['seq']:012d}"
                                              f"{self._path.suffix}")
                if not self.archive_dir.exists():
                    private_dir(self.archive_dir)
                    if euid == 0:
                        os.chown(self.archive_dir, live.st_uid, live.st_gid)
                self._drop_stale_links(live)
                try:
                    os.link(self._path, archive)
                except FileExistsError:
                    raise LedgerError(f"cannot rotate {self._path}: {archive} exists and is another file; move it "
                                      "away (it names the same entries as the live file)") from None
                try:
                    _fsync_dir(self.archive_dir)
                    [written] = self._render((last["seq"], last["hash"]), [(ROTATED_EVENT, {
                        "archive": f"{self.archive_dir.name}/{archive.name}",
                        "archived_first_seq": first["seq"], "archived_last_seq": last["seq"]})])
                    self._replace_with((_one_line(self._lines[0]) + "\n").encode("utf-8"), live)
                except BaseException:
                    # not rotated (_replace_with raises only before its rename): the link is the live file itself
                    archive.unlink(missing_ok=True)
                    raise
            finally:
                self._reset_chain_state()
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)  # the archived file's descriptor (or, not rotated, reopened by the next append)
                self._fd = None
        assert written is not None
        return _as_entry(written)

    def _drop_stale_links(self, live: os.stat_result) -> None:
        """Remove archive-named links of the live file, left by a rotation killed between its link and its
        rename (they grow with the live file and are no archive). Anything else in the folder is left alone."""
        name = self._archive_name()
        for path in self.archive_dir.iterdir():
            if not name.fullmatch(path.name):
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if os.path.samestat(st, live):
                path.unlink(missing_ok=True)

    def _replace_with(self, data: bytes, live: os.stat_result, what: str = "rotate") -> None:
        """Put a file holding ``data`` at ``path`` with ``live``'s owner, group and mode. The new file is locked
        before it is renamed into place and stays locked until the rename is durable, so a gate that opens the
        path meanwhile waits instead of appending to a file a power loss could take back."""
        tmp = self._path.with_name(f".{self._path.name}.{what}")
        tmp.unlink(missing_ok=True)  # left by a rotation (redaction) that failed before its rename
        tfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(tfd, fcntl.LOCK_EX)
            if os.geteuid() == 0:
                os.fchown(tfd, live.st_uid, live.st_gid)
            os.fchmod(tfd, live.st_mode & 0o7777)
            write_all(tfd, data)
            os.fsync(tfd)
            if os.fstat(tfd).st_size != len(data):
                raise LedgerError(f"cannot {what} {self._path}: the new file was not written in full")
            os.replace(tmp, self._path)
            try:
                _fsync_dir(self._path.parent)
            except OSError as exc:  # renamed already: the rotation is done, only its durability is in doubt
                _log.warning(f"ledger.{what}_dir_fsync_failed", path=str(self._path), error=str(exc))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            fcntl.flock(tfd, fcntl.LOCK_UN)
            os.close(tfd)

    # ---------------------------------------------------------------- redaction

    def redact(self, seqs: Iterable[int], /, **fields: Any) -> list[LedgerEntry]:
        """Erase the text-bearing fields (:data:`REDACTABLE_FIELDS`) of the entries at ``seqs``, in the live file
        and the archives (see "Redaction" in the module docstring).

        First the stubs are recorded: ``ledger.redacted`` entries (up to 500 ``[seq, digest]`` pairs each, with
        ``fields``, e.g. who asked and why) are appended; then :meth:`apply_redactions` rewrites the files. An
        entry without such fields, a stub already, one a record names already, and the ledger's own records
        (redactions, rotations, the hash-version marker) are skipped. Returns the records
        appended. Raises :class:`LedgerCorruptError`, before anything is written, when a chosen entry does not
        match its hash (a stub of an edited entry would launder the edit) or the ledger cannot be read."""
        wanted = {int(q) for q in seqs}
        if not wanted:
            return []
        recorded: dict[int, str] = {}
        candidates: list[tuple[int, dict[str, Any], Path]] = []
        for path, data in self._read_cut(archives=True):  # one pass: the records come after what they name
            for entry in self._entries_of(path, data, {}):
                seq = entry.get("seq")
                if entry.get("event") == REDACTED_EVENT:
                    if not isinstance(found := _recorded_pairs(entry), str):
                        recorded.update(found)
                elif seq in wanted and entry.get("event") not in OWN_EVENTS:
                    candidates.append((seq, entry, path))
        pairs: list[list[Any]] = []
        for seq, entry, path in candidates:
            stub = redaction_stub(entry) if seq not in recorded else None
            if stub is None:
                continue
            if entry_hash(entry) != entry.get("hash"):
                raise LedgerCorruptError(f"ledger {path.name}: entry seq {seq} does not match its hash; "
                                         "it is not redacted (run verify)")
            pairs.append([seq, stub_digest(stub)])
        records = self.append_many([(REDACTED_EVENT, {**fields, "entries": pairs[i:i + 500]})
                                    for i in range(0, len(pairs), 500)])
        if records:
            self.apply_redactions()
        return records

    def apply_redactions(self) -> int:
        """Rewrite as stubs the entries that ``ledger.redacted`` records name and that are whole entries still
        (what a redaction interrupted between its record and its rewrite leaves; ``verify`` counts them as
        ``redactions_pending``). Returns how many entries were rewritten.

        Runs under the exclusive lock that appends and rotations take, so they wait meanwhile; each archive is
        replaced by a rewritten copy (same owner and mode), then the live file like a rotation replaces it.
        Raises :class:`LedgerError` when an entry does not match the stub its record names (nothing of that file
        is rewritten; run verify)."""
        if self._path.is_symlink():
            raise LedgerError(f"cannot redact {self._path}: it is a symbolic link; redact the file it points to "
                              f"({os.path.realpath(self._path)})")
        self._check_fork()
        with self._tlock:
            fd = self._lock_current_file()
            replaced = False
            try:
                live = os.fstat(fd)
                if self.archive_dir.is_dir():
                    # a link of the live file left by a rotation killed half way would outlive the rewrite as a
                    # stale copy (holding the texts, and read as an archive)
                    self._drop_stale_links(live)
                live_data = os.pread(fd, live.st_size, 0)
                recorded: dict[int, str] = {}
                files: list[tuple[Path, bytes | None]] = [(p, None) for p in self.archives()]
                files.append((self._path, live_data))
                for path, data in files:
                    data = path.read_bytes() if data is None else data
                    if REDACTED_EVENT.encode() in data:
                        recorded.update(self._records_in(data))
                if not recorded:
                    return 0
                rewritten = 0
                for path, data in files:
                    data = path.read_bytes() if data is None else data
                    new, n = self._stubbed(path, data, recorded)
                    if not n:
                        continue
                    if path == self._path:
                        self._replace_with(new, live, "redact")
                        replaced = True
                    else:
                        _rewrite_file(path, new)
                    rewritten += n
                if rewritten:
                    _log.info("ledger.redactions_applied", path=str(self._path), entries=rewritten)
                return rewritten
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                if replaced:  # the descriptor is on the old file now: the next append opens the new one
                    self._reset_chain_state()
                    os.close(fd)
                    self._fd = None

    def _records_in(self, data: bytes) -> dict[int, str]:
        out: dict[int, str] = {}
        for _, raw, has_nl in self._iter_lines(data):
            obj = _check_entry_line(raw) if has_nl else None
            if isinstance(obj, dict) and obj["event"] == REDACTED_EVENT and "redacted" not in obj:
                pairs = _recorded_pairs(obj)
                if not isinstance(pairs, str):
                    out.update(pairs)
        return out

    def _stubbed(self, path: Path, data: bytes, recorded: Mapping[int, str]) -> tuple[bytes, int]:
        """``data`` with the whole entries ``recorded`` names replaced by their stubs, and how many were."""
        out: list[bytes] = []
        n = 0
        for _, raw, has_nl in self._iter_lines(data):
            obj = _check_entry_line(raw) if has_nl else None
            if isinstance(obj, dict) and obj["seq"] in recorded and "redacted" not in obj:
                stub = redaction_stub(obj)
                if stub is None or stub_digest(stub) != recorded[obj["seq"]]:
                    raise LedgerError(f"cannot redact {path.name}: entry seq {obj['seq']} does not match the stub "
                                      "its ledger.redacted record names (run verify)")
                raw = _one_line(json.dumps(stub, ensure_ascii=False, separators=(",", ":"),
                                           allow_nan=False)).encode("utf-8")
                n += 1
            out.append(raw + (b"\n" if has_nl else b""))
        return b"".join(out), n

    def _archive_name(self) -> re.Pattern[str]:
        return re.compile(rf"{re.escape(self._path.stem)}-([0-9]{{12}})-([0-9]{{12}}){re.escape(self._path.suffix)}")

    def _first_entry(self, fd: int) -> dict[str, Any]:
        head, pos = b"", 0
        while b"\n" not in head:
            chunk = os.pread(fd, _TAIL_CHUNK, pos)
            if not chunk:
                break
            head += chunk
            pos += len(chunk)
        parsed = _check_entry_line(head.split(b"\n", 1)[0])
        if isinstance(parsed, str):
            raise LedgerCorruptError(f"ledger {self._path}: first line is bad ({parsed}); run verify()")
        return parsed

    # ---------------------------------------------------------------- reading

    def _snapshot(self) -> bytes | None:
        """Read the committed content: size taken under a shared lock, then read without it."""
        try:
            f = open(self._path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                size = os.fstat(f.fileno()).st_size
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return f.read(size)

    def _open_cut(self, archives: bool) -> list[tuple[Path, BinaryIO, int | None]]:
        """The archives (when asked) and the live file, opened while a shared lock on the live file holds off a
        rotation: one consistent cut of the chain, whatever is rotated or removed while it is read. Each comes
        with the number of bytes to read (None for an archive: never written once archived)."""
        while True:
            try:
                live = open(self._path, "rb")  # noqa: SIM115 - closed by the caller
            except FileNotFoundError:
                live = None
            opened: list[tuple[Path, BinaryIO, int | None]] = []
            try:
                if live is not None:
                    fcntl.flock(live.fileno(), fcntl.LOCK_SH)
                    mine = os.fstat(live.fileno())
                    try:
                        there = os.stat(self._path)
                    except FileNotFoundError:
                        there = None
                    if there is None or not os.path.samestat(mine, there):
                        live.close()  # rotated before the lock was ours: take the new file
                        continue
                for path in self.archives() if archives else []:
                    try:
                        opened.append((path, open(path, "rb"), None))  # noqa: SIM115
                    except FileNotFoundError:  # removed by a retention job since it was listed
                        continue
                if live is not None:
                    opened.append((self._path, live, mine.st_size))
                    fcntl.flock(live.fileno(), fcntl.LOCK_UN)
                return opened
            except BaseException:
                for _, fh, _ in opened:
                    fh.close()
                if live is not None:
                    live.close()
                raise

    def _read_cut(self, archives: bool) -> Iterator[tuple[Path, bytes]]:
        """(path, content) of each file of one consistent cut (``_open_cut``), oldest first."""
        opened = self._open_cut(archives)
        try:
            for path, fh, size in opened:
                yield path, fh.read() if size is None else fh.read(size)
                fh.close()
        finally:
            for _, fh, _ in opened:
                fh.close()

    def copy_to(self, directory: str | Path) -> tuple[int, str, int]:
        """Copy one consistent cut of the ledger (archives, then the live file) into ``directory``, laid out as
        here (``<name>`` and ``<stem>-archive/``), files 0600. Returns the copy's head (seq, hash) and how many
        files it holds. The copy verifies on its own: ``AuditLedger(directory / name).verify(archives=True)``."""
        directory = Path(directory)
        private_dir(directory)
        head, files = (0, GENESIS_HASH), 0
        for path, data in self._read_cut(archives=True):
            target = directory / path.name if path == self._path else directory / self.archive_dir.name / path.name
            private_dir(target.parent)
            write_private_file(target, data, new=True)
            files += 1
            for line in reversed(data.split(b"\n")):  # the last complete entry (not a torn or edited tail)
                parsed = _check_entry_line(line) if line.strip() else None
                if isinstance(parsed, dict):
                    head = (parsed["seq"], parsed["hash"])
                    break
        _fsync_dir(directory)
        return head[0], head[1], files

    def _iter_lines(self, data: bytes | None = None) -> Iterator[tuple[int, bytes, bool]]:
        """Yield (line_no, raw_line_without_newline, has_newline) over ``data``, by default a consistent snapshot of
        the live file."""
        if data is None:
            data = self._snapshot()
        if not data:
            return
        start, line_no, n = 0, 0, len(data)
        while start < n:
            line_no += 1
            nl = data.find(b"\n", start)
            if nl < 0:
                yield line_no, data[start:], False
                return
            yield line_no, data[start:nl], True
            start = nl + 1

    def entries(self, /, **filters: Any) -> Iterator[dict[str, Any]]:
        """Iterate over the entries of the live file (dicts), optionally filtered by equality on top-level fields;
        :meth:`history` includes the archives.

        Filter values are normalised like appended values (enums, pydantic
        models).  Entries lacking a filtered field do not match.  Raises
        :class:`LedgerCorruptError` on a line that cannot be parsed (use
        :meth:`verify` for a full diagnosis).
        """
        return self._entries_of(self._path, None, filters)

    def history(self, /, **filters: Any) -> Iterator[dict[str, Any]]:
        """Like :meth:`entries`, through the archives (oldest first) and then the live file: every entry the
        data directory still holds, as one consistent cut (a rotation meanwhile neither hides nor repeats one)."""
        for path, data in self._read_cut(archives=True):
            yield from self._entries_of(path, data, filters)

    def _entries_of(self, name: Path, data: bytes | None, filters: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        want = {k: _jsonable(v, k, set()) for k, v in filters.items()}
        missing = object()
        for line_no, raw, has_nl in self._iter_lines(data):
            if not has_nl:
                raise LedgerCorruptError(f"ledger {name}: line {line_no}: torn tail (no trailing newline)")
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise LedgerCorruptError(f"ledger {name}: line {line_no}: invalid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise LedgerCorruptError(f"ledger {name}: line {line_no}: not a JSON object")
            if all(obj.get(k, missing) == v for k, v in want.items()):
                yield obj

    def find(self, /, **filters: Any) -> list[dict[str, Any]]:
        """All entries matching *filters* (see :meth:`entries`)."""
        return list(self.entries(**filters))

    def last(self) -> dict[str, Any] | None:
        """The last entry (read from the end of the file), or None if the ledger is empty.

        Raises :class:`LedgerCorruptError` if the final line is torn, invalid or edited.
        """
        try:
            f = open(self._path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                last, _ = self._parse_tail(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return last

    def anchor(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry (``(0, "0"*64)`` when empty), for storing elsewhere."""
        last = self.last()
        if last is None:
            return 0, GENESIS_HASH
        return last["seq"], last["hash"]

    def __len__(self) -> int:
        """Number of entries, taken from the last entry's ``seq`` (O(1); trusts the chain)."""
        return self.anchor()[0]

    # ---------------------------------------------------------------- verify

    def verify(self, expected_head: tuple[int, str] | None = None, *, archives: bool = False) -> VerifyReport:
        """Check the whole chain and report the first bad entry.

        Detects edited entries (hash mismatch), deleted / reordered / inserted /
        duplicated lines (seq or prev_hash mismatch), invalid JSON, malformed
        entries and a torn tail (incomplete final line -- see
        :meth:`repair_torn_tail`).  With ``expected_head=(seq, hash)`` (from an
        earlier :meth:`anchor`) it also detects removal of trailing entries and
        a rewritten history.

        The live file alone is checked by default; a ``ledger.rotated`` first entry starts its chain.  With
        ``archives=True`` the archives are checked first, oldest first, and each file must continue the one
        before it; the oldest file checked may itself begin with a rotation (older archives removed).
        """
        cut = self._open_cut(archives)
        try:
            return self._verify_cut(cut, expected_head)
        finally:
            for _, fh, _ in cut:
                fh.close()

    def _verify_cut(self, cut: list[tuple[Path, BinaryIO, int | None]],
                    expected_head: tuple[int, str] | None) -> VerifyReport:
        segments = [path for path, _, _ in cut]
        prev_seq, prev_hash = 0, GENESIS_HASH
        good = 0
        first_seq: int | None = None
        anchor_seen = False
        if expected_head is not None:
            a_seq, a_hash = int(expected_head[0]), str(expected_head[1])
            if a_seq == 0:
                anchor_seen = a_hash == GENESIS_HASH
                if not anchor_seen:
                    return _bad(0, None, None,
                                f"anchor (0, {a_hash[:12]}…) is invalid: seq 0 must be the genesis hash")

        def report(seq: int | None, line: int | None, problem: str, path: Path | None,
                   unverifiable: bool = False) -> VerifyReport:
            shown = path or self._path
            where = f"{shown.name}: " if len(segments) > 1 or shown != self._path else ""
            return VerifyReport(ok=False, entries=good, first_bad_seq=seq, first_bad_line=line,
                                problem=where + problem, first_seq=first_seq or 1, files=max(1, len(segments)),
                                file=str(shown), anchor_unverifiable=unverifiable)

        def where(line_no: int, seq: Any) -> str:
            return f"line {line_no} (seq {seq})" if isinstance(seq, int) else f"line {line_no}"

        stubs: dict[int, tuple[str, int, Path, bool]] = {}  # stub seq -> (digest, line, file, legacy), until named
        prev_ts: datetime | None = None
        went_back: list[int] = []
        unreadable: list[int] = []
        named: set[int] = set()
        redacted = legacy = pending = 0
        seen_v2 = False  # an entry of hash version 2 came before
        prev_old = False  # the entry before was of the old format
        line_no, path = 0, None
        for path, fh, size in cut:
            for line_no, raw, has_nl in self._iter_lines(fh.read() if size is None else fh.read(size)):
                parsed = _check_entry_line(raw)
                seq_guess = _guess_seq(raw)
                if not has_nl:
                    detail = "" if isinstance(parsed, dict) else f"; partial content: {raw[:60]!r}"
                    return report(
                        seq_guess,
                        line_no,
                        f"{where(line_no, seq_guess)}: torn tail — final line is incomplete (no trailing newline), "
                        f"a write was interrupted{detail}; `gatekeeper ledger repair` (repair_torn_tail()) removes it",
                        path,
                    )
                if isinstance(parsed, str):
                    return report(seq_guess, line_no, f"{where(line_no, seq_guess)}: {parsed}", path)
                entry = parsed
                seq = entry["seq"]
                here = where(line_no, seq)
                if first_seq is None:
                    first_seq = seq
                    if seq > 1 and entry["event"] == ROTATED_EVENT and line_no == 1:
                        # the chain starts here: what came before is archived (and not checked, or removed)
                        prev_seq, prev_hash = seq - 1, entry["prev_hash"]
                        if expected_head is not None and a_seq == prev_seq:
                            # the rotation entry chains to the anchored entry: its hash is proof enough
                            if prev_hash != a_hash:
                                return report(seq, line_no, f"{here}: does not chain to the anchor (prev_hash "
                                              f"{prev_hash[:12]}… != anchored {a_hash[:12]}…) — history was "
                                              "rewritten", path)
                            anchor_seen = True
                        elif expected_head is not None and 0 < a_seq < prev_seq:
                            return report(seq, line_no, f"cannot check the anchor (seq {a_seq}): the files checked "
                                          f"begin after a rotation at seq {seq}; "
                                          + ("the archive holding it is not here" if len(segments) > 1
                                             or path != self._path else "verify with the archives"),
                                          path, unverifiable=True)
                expected = prev_seq + 1
                if seq != expected:
                    if seq > expected:
                        gap = seq - expected
                        what = (f"seq gap — expected seq {expected}, found {seq}: "
                                f"{gap} entr{'y' if gap == 1 else 'ies'} deleted")
                        if len(segments) == 1 and line_no + first_seq - 1 != seq:
                            what += " (or lines reordered)"
                    else:
                        what = (
                            f"seq out of order — expected seq {expected}, found {seq}: "
                            "lines were reordered, duplicated or inserted"
                        )
                    return report(seq, line_no, f"{here}: {what}", path)
                if entry["prev_hash"] != prev_hash:
                    return report(
                        seq,
                        line_no,
                        f"{here}: prev_hash mismatch — does not chain to the previous entry "
                        "(entry inserted/forged, or the previous entry was replaced)",
                        path,
                    )
                if expected_head is not None and seq == a_seq:
                    if entry["hash"] != a_hash:
                        return report(
                            seq,
                            line_no,
                            f"{here}: does not match the anchor (hash {entry['hash'][:12]}… != anchored "
                            f"{a_hash[:12]}…) — history was rewritten",
                            path,
                        )
                    anchor_seen = True
                is_v2 = entry.get("hv") == HASH_VERSION
                if not is_v2 and seen_v2:
                    return report(seq, line_no, f"{here}: an entry of the old hash format after hash version 2 "
                                  "began — the entry was replaced", path)
                if is_v2 and prev_old and entry["event"] not in (HASH_VERSION_EVENT, ROTATED_EVENT):
                    return report(seq, line_no, f"{here}: follows an entry of the old hash format without the "
                                  f"{HASH_VERSION_EVENT} entry between them — the entry before was replaced", path)
                seen_v2, prev_old = seen_v2 or is_v2, not is_v2
                if "redacted" in entry:
                    old_format = not is_v2
                    redacted += 1
                    legacy += old_format
                    stubs[seq] = (stub_digest(entry), line_no, path, old_format)
                elif entry["event"] == REDACTED_EVENT:
                    pairs = _recorded_pairs(entry)
                    if isinstance(pairs, str):
                        return report(seq, line_no, f"{here}: {pairs}", path)
                    for r_seq, digest in pairs:
                        if r_seq in stubs:
                            s_digest, s_line, s_path, _ = stubs.pop(r_seq)
                            if s_digest != digest:
                                return report(r_seq, s_line, f"{where(s_line, r_seq)}: redacted entry differs from "
                                              f"the stub its redaction record (seq {seq}) names — a kept field was "
                                              "edited", s_path)
                            named.add(r_seq)
                        elif r_seq not in named and first_seq is not None and r_seq >= first_seq:
                            pending += 1  # checked above as a whole entry: its rewrite has not happened yet
                prev_seq, prev_hash = seq, entry["hash"]
                good += 1
                # the times say nothing of the chain, but an examiner reads them: one that goes back or does not
                # read is said (verify said ok to "ts": "not a time" and to a clock set back an hour)
                ts = _ledger_time(entry["ts"])
                if ts is None:
                    unreadable.append(seq)
                elif prev_ts is not None and ts < prev_ts:
                    went_back.append(seq)
                prev_ts = ts or prev_ts
        # every stub is named by its record (one of version 2 also verified by its own hash, an older one only
        # through its record)
        unconfirmed = sorted(stubs)
        if unconfirmed:
            _, s_line, s_path, _ = stubs[unconfirmed[0]]
            return report(unconfirmed[0], s_line, f"{where(s_line, unconfirmed[0])}: marked redacted, but no "
                          "ledger.redacted record confirms it — the entry was replaced", s_path)

        if expected_head is not None and not anchor_seen:
            return report(
                prev_seq + 1,
                line_no + 1,
                f"truncated — ledger ends at seq {prev_seq} but the anchor is seq {a_seq}: "
                f"{a_seq - prev_seq} trailing entr{'y was' if a_seq - prev_seq == 1 else 'ies were'} removed",
                path,
            )
        return VerifyReport(ok=True, entries=good, first_seq=first_seq or 1, files=max(1, len(segments)),
                            redacted=redacted, redacted_legacy=legacy, redactions_pending=pending,
                            time_went_back=went_back[:10], time_unreadable=unreadable[:10])


# --------------------------------------------------------------------------- helpers


def _ledger_time(ts: Any) -> datetime | None:
    """An entry's ``ts`` as an aware time, or None when it is not one as the ledger writes it."""
    if not isinstance(ts, str):
        return None
    try:
        return datetime.strptime(ts, _TS_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


#: the ledger's own entries: never redacted (a redaction record is what confirms the stubs it names)
OWN_EVENTS = frozenset({REDACTED_EVENT, ROTATED_EVENT, HASH_VERSION_EVENT})


def _rewrite_file(path: Path, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, with its owner, group and mode, durably (fsync of the file and
    of its directory): an archive's redaction."""
    st = path.stat()
    tmp = path.with_name(f".{path.name}.redact")
    tmp.unlink(missing_ok=True)
    tfd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            if os.geteuid() == 0:
                os.fchown(tfd, st.st_uid, st.st_gid)
            os.fchmod(tfd, st.st_mode & 0o7777)
            write_all(tfd, data)
            os.fsync(tfd)
        finally:
            os.close(tfd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _as_entry(written: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(seq=written["seq"], ts=written["ts"], event=written["event"],
                       fields={k: v for k, v in written.items() if k not in RESERVED_FIELDS},
                       hv=written.get("hv"), prev_hash=written["prev_hash"], hash=written["hash"])


def _bad(good: int, seq: int | None, line: int | None, problem: str) -> VerifyReport:
    return VerifyReport(ok=False, entries=good, first_bad_seq=seq, first_bad_line=line, problem=problem)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _check_entry_line(raw: bytes) -> dict[str, Any] | str:
    """Parse one line and check its own integrity.  Returns the entry, or a problem string."""
    if not raw.strip():
        return "blank line — a line was inserted or an entry was erased"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg} at column {exc.colno})"
    except ValueError as exc:
        return f"invalid entry ({exc}) — line was tampered with"
    if not isinstance(obj, dict):
        return "invalid entry — not a JSON object"
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return f"malformed entry — seq {seq!r} is not a positive integer"
    for key in ("ts", "event"):
        if not isinstance(obj.get(key), str):
            return f"malformed entry — missing or non-string {key!r}"
    for key in ("prev_hash", "hash"):
        h = obj.get(key)
        if not (isinstance(h, str) and len(h) == 64 and _HEX.issuperset(h)):
            return f"malformed entry — {key!r} is not a sha256 hex digest"
    if "hv" in obj and obj["hv"] != HASH_VERSION:
        return f"malformed entry — unknown hash version {obj['hv']!r}"
    if "redacted" in obj:
        gone = obj["redacted"]
        if not (isinstance(gone, list) and gone and all(isinstance(f, str) and f in REDACTABLE_FIELDS for f in gone)
                and len(set(gone)) == len(gone)):
            return "malformed stub — 'redacted' does not list redactable fields"
        if any(f in obj for f in REDACTABLE_FIELDS):
            return "malformed stub — it still holds a redactable field (a stub holds none)"
        if obj.get("hv") == HASH_VERSION:
            digest = obj.get("redacted_digest")
            if not (isinstance(digest, str) and len(digest) == 64 and _HEX.issuperset(digest)):
                return "malformed stub — 'redacted_digest' is not a sha256 hex digest"
        else:
            try:
                canonical_json(obj)
            except ValueError as exc:
                return f"malformed entry — cannot canonicalise ({exc})"
            # an entry from before hash version 2: its hash cannot be recomputed without the fields taken out,
            # so verify checks the stub against its ledger.redacted record
            return obj
    try:
        actual = entry_hash(obj)
    except ValueError as exc:  # NaN/Infinity smuggled in, etc.
        return f"malformed entry — cannot canonicalise ({exc})"
    if actual != obj["hash"]:
        return "hash mismatch — entry was edited"
    return obj


def _recorded_pairs(entry: Mapping[str, Any]) -> list[tuple[int, str]] | str:
    """The ``[seq, digest]`` pairs of a ``ledger.redacted`` entry, or a problem string."""
    pairs = entry.get("entries")
    if not isinstance(pairs, list):
        return "malformed ledger.redacted entry — 'entries' is not a list"
    out = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)
                and not isinstance(pair[0], bool) and 0 < pair[0] < entry["seq"]
                and isinstance(pair[1], str) and len(pair[1]) == 64 and _HEX.issuperset(pair[1])):
            return f"malformed ledger.redacted entry — {pair!r} is not [earlier seq, sha256 digest]"
        out.append((pair[0], pair[1]))
    return out


def _guess_seq(raw: bytes) -> int | None:
    """Best-effort seq of a line for reporting, even when the line is damaged."""
    try:
        obj = json.loads(raw.decode("utf-8"))
        seq = obj.get("seq") if isinstance(obj, dict) else None
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    except (ValueError, UnicodeDecodeError):
        pass
    m = re.match(rb'\s*\{\s*"seq"\s*:\s*(\d{1,18})\s*[,}]', raw)
    return int(m.group(1)) if m else None
