"""SQLite connections, one per thread, all let go of by one ``close``.

The registry and the reviewer accounts each keep one SQLite connection per thread (a connection is not shared
between threads that write). Kept in a bare ``threading.local``, ``close()`` could reach only the calling thread's:
a web server's worker threads kept theirs open after the gate closed (their file handles, the WAL and its shared
memory file, and the WAL left unfolded into the database until the last one closed).

``ThreadConnections`` keeps each thread's connection in a holder it can also reach from ``close()``. ``close()``
closes the calling thread's connection and those of threads that have ended, and lets go of every other one: a
thread that uses it again opens a new one, and the one let go of is closed by the collector once nothing uses it
(``close`` runs the collector). Another thread's connection is never closed from here: closing a connection while
another thread runs a query on it crashed the process (a segmentation fault in SQLite, seen in a reader running
beside ``close``). A thread that ends drops its holder, and the connection with it.

In a forked child, the parent's connections are let go of (kept, never used or closed: closing one would have
SQLite checkpoint a WAL the parent still uses, and SQLite's "How To Corrupt An SQLite Database File", 2.6, says
a connection carried across a fork can corrupt the database); the child opens its own on first use.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import weakref
from typing import Callable

__all__ = ["ThreadConnections"]


class _Held:
    """One thread's connection (sqlite3.Connection takes no weak reference; its holder does) and that thread."""

    __slots__ = ("con", "owner", "__weakref__")

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self.owner = weakref.ref(threading.current_thread())

    def closable_by(self, thread: threading.Thread) -> bool:
        """Whether ``thread`` may close this connection: it is its own, or its thread has ended (no query runs)."""
        owner = self.owner()
        return owner is thread or owner is None or not owner.is_alive()


#: every ``ThreadConnections`` of this process, for ``_after_fork``
_ALL: weakref.WeakSet = weakref.WeakSet()
#: the parent's connections a forked child let go of: kept, never used, closed or dropped
_LEFT_BY_PARENT: list = []


def _after_fork_in_child() -> None:
    for connections in list(_ALL):
        connections._let_go()  # noqa: SLF001


os.register_at_fork(after_in_child=_after_fork_in_child)


class ThreadConnections:
    """Per-thread SQLite connections made by ``connect`` (called in the thread that will use it)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._local = threading.local()
        self._held: weakref.WeakSet = weakref.WeakSet()
        _ALL.add(self)

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after ``close``)."""
        held = getattr(self._local, "held", None)
        if held is not None:
            return held.con
        held = _Held(self._connect())
        with self._lock:
            self._held.add(held)
            self._local.held = held
        return held.con

    def drop(self) -> None:
        """Close this thread's connection (one left in a state it cannot be used in); the next ``get`` opens a
        new one."""
        held = getattr(self._local, "held", None)
        if held is None:
            return
        with self._lock:
            self._held.discard(held)
            self._local.held = None
        held.con.close()

    def close(self) -> None:
        """Close this thread's connection and those of ended threads; let go of the others (see the module
        docstring), which the collector closes once no thread uses them. A thread that uses them again opens a
        new one."""
        with self._lock:
            held = list(self._held)
            self._held = weakref.WeakSet()
            self._local = threading.local()
        me = threading.current_thread()
        left = 0
        while held:
            h = held.pop()
            if h.closable_by(me):
                h.con.close()
            else:
                left += 1
            del h  # no reference kept here to a connection let go of
        if left:
            gc.collect()  # a connection and its statement cache hold each other: freed by the collector

    def open_count(self) -> int:
        """How many connections are open (threads that ended have dropped theirs)."""
        with self._lock:
            return len(self._held)

    def _let_go(self) -> None:
        _LEFT_BY_PARENT.append((self._local, list(self._held)))
        self._lock = threading.Lock()  # held by another of the parent's threads at the fork: never released here
        self._local = threading.local()
        self._held = weakref.WeakSet()
