"""Locks per (namespace, key), across the threads of a process and across the processes of one data directory.

A person's approval of an old escalation checks that no later commit or delete of its key superseded it, then
writes the store; the gate's commits and deletes of that key hold the same lock around their store write and
its registry record, so neither lands between that check and that write. Recovery's re-apply of a commit does
the same. Agents usually run in other processes than the review app that approves escalations, so the lock
must hold between processes too.

* **Threads:** a fixed set of reentrant locks (stripes; keys that hash alike share one), so the set never grows
  and a holder may take its key again (``_apply_commit`` inside an approval).
* **Processes:** one byte per stripe of a lock file in the data directory (``key-locks``), taken with POSIX
  record locks (``fcntl.lockf``) when a thread of this process first takes the stripe and released when it last
  lets go. Record locks belong to the process, which is why the thread stripes come first: they decide which
  thread of the process holds the byte. The stripe of a key is a stable hash (blake2b), the same in every
  process. A process opens the file once per data directory and closes it only when no thread uses it:
  closing any descriptor of a file drops every record lock the process holds on it.

Several keys are taken in stripe order, in every process alike, so batches cannot deadlock. Cost per write:
two system calls, microseconds. ``key_locks(keys)`` without a lock file holds within this process only (a gate
built in code over a registry that has no data directory on disk).
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

STRIPES = 1024
_THREAD_STRIPES = tuple(threading.RLock() for _ in range(STRIPES))
#: how deep this process holds each (stripe, lock file descriptor); changed only by the thread holding the
#: stripe's RLock. Per descriptor: two data directories' keys may share a stripe in one process.
_DEPTH: dict[tuple[int, int | None], int] = {}
#: lock file path -> [descriptor, users]: opened once per process and kept open while in use; at most
#: ``OPEN_FILES`` stay open, the least recently used one nobody uses is closed first (a process that opens
#: gates on many data directories, a test suite, does not run out of descriptors)
_FILES: dict[str, list[int]] = {}
_FILES_LOCK = threading.Lock()
OPEN_FILES = 32


def _after_fork() -> None:
    """In a forked child: new thread locks (a thread of the parent may have held one, and the child would wait for
    ever), no depths held (record locks are not inherited), the inherited descriptors kept, unused."""
    global _THREAD_STRIPES, _FILES_LOCK
    _THREAD_STRIPES = tuple(threading.RLock() for _ in range(STRIPES))
    _FILES_LOCK = threading.Lock()
    _DEPTH.clear()
    for entry in _FILES.values():
        entry[1] = 0


os.register_at_fork(after_in_child=_after_fork)


def stripe_of(namespace: Sequence[str], key: str) -> int:
    """The stripe of a (namespace, key): the same in every process (Python's ``hash`` of a str is not)."""
    digest = hashlib.blake2b(repr((tuple(namespace), key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % STRIPES


@contextmanager
def _descriptor(path: Path) -> Iterator[int]:
    """The descriptor of the lock file at ``path``, open while the caller uses it. Never closed while any
    thread uses it: closing a descriptor would drop the record locks the process holds on the file."""
    name = os.path.abspath(path)
    with _FILES_LOCK:
        entry = _FILES.pop(name, None)  # (re)inserted last: the most recently used
        if entry is None:
            entry = [os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), 0]
        entry[1] += 1
        _FILES[name] = entry
        for other in [n for n, (_, users) in _FILES.items() if not users][:max(0, len(_FILES) - OPEN_FILES)]:
            os.close(_FILES.pop(other)[0])
    try:
        yield entry[0]
    finally:
        with _FILES_LOCK:
            entry[1] -= 1


@contextmanager
def _held(stripe: int, fd: int | None) -> Iterator[None]:
    import fcntl

    slot = (stripe, fd)
    with _THREAD_STRIPES[stripe]:
        first = _DEPTH.get(slot, 0) == 0
        _DEPTH[slot] = _DEPTH.get(slot, 0) + 1
        try:
            if fd is not None and first:
                fcntl.lockf(fd, fcntl.LOCK_EX, 1, stripe)
            try:
                yield
            finally:
                if fd is not None and first:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, stripe)
        finally:
            _DEPTH[slot] -= 1
            if not _DEPTH[slot]:
                del _DEPTH[slot]


@contextmanager
def key_locks(keys: Iterable[tuple[Sequence[str], str]], lock_file: Path | None = None) -> Iterator[None]:
    """Hold the locks of these (namespace, key) pairs; with ``lock_file``, against other processes using the
    same file too."""
    stripes = sorted({stripe_of(ns, key) for ns, key in keys})
    with ExitStack() as held:
        fd = held.enter_context(_descriptor(lock_file)) if lock_file is not None and stripes else None
        for stripe in stripes:
            held.enter_context(_held(stripe, fd))
        yield


__all__ = ["STRIPES", "key_locks", "stripe_of"]
