"""Closing the gate closes the SQLite connections of every thread that used it, not only the closing thread's.

A web server's worker threads each open their own connection to the registry (and to the reviewer accounts in
the same file). ``Gatekeeper.close`` closed only the calling thread's: the workers' stayed open (their file
handles, and the WAL left unfolded until the last one closed).
"""

from __future__ import annotations

import gc
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from langgraph.store.memory import InMemoryStore

from gatekeeper.accounts import AccountStore
from gatekeeper.models import MemoryWrite, Provenance
from gatekeeper.registry import ProposalRegistry

from conftest import make_gate


def _open_handles(path) -> int:
    """How many of this process's file descriptors point at ``path``."""
    target = os.path.realpath(path)
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                n += 1
        except OSError:
            pass
    return n


def _in_live_threads(n: int, work) -> tuple[list, threading.Event, ThreadPoolExecutor]:
    """Run ``work`` once in each of ``n`` threads that stay alive (as a server's pool does) until the event."""
    pool = ThreadPoolExecutor(max_workers=n)
    release = threading.Event()
    started = threading.Barrier(n + 1)

    def run(i):
        try:
            return work(i)
        finally:
            started.wait()
            release.wait(600)

    futures = [pool.submit(run, i) for i in range(n)]
    started.wait(600)
    return futures, release, pool


def test_gate_close_closes_the_registry_connections_of_other_threads(tmp_path, reviewer):
    gate = make_gate(tmp_path, reviewer, memory_store=InMemoryStore())
    db = tmp_path / "gatekeeper.db"
    futures, release, pool = _in_live_threads(
        3, lambda i: gate.submit(MemoryWrite(content=f"Deploys to region {i} run on Tuesdays.", namespace=("memories", "a1"),
                                             provenance=Provenance(source="agent", agent_id="a1"))).decision.action)
    try:
        assert _open_handles(db) >= 3  # each worker thread opened its own
        gate.close()
        assert _open_handles(db) == 0
        # the WAL was folded into the database when the last connection closed
        assert not (tmp_path / "gatekeeper.db-wal").exists()
    finally:
        release.set()
        pool.shutdown()
    assert [f.result().value for f in futures] == ["commit"] * 3


def test_a_thread_reads_again_after_the_registry_closed(tmp_path):
    registry = ProposalRegistry(tmp_path / "r.db")
    registry.set_meta("x", "1")
    opened, closed = threading.Barrier(3), threading.Event()

    def worker():
        first = registry.meta("x")
        opened.wait(600)
        closed.wait(600)
        # after the close: a new connection, not "Cannot operate on a closed database"
        return first, registry.meta("x")

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(worker) for _ in range(2)]
        opened.wait(600)
        registry.close()
        try:
            assert _open_handles(tmp_path / "r.db") == 0
        finally:
            closed.set()
        assert [f.result() for f in futures] == [("1", "1")] * 2
    registry.close()


def test_a_thread_that_ends_drops_its_connection(tmp_path):
    registry = ProposalRegistry(tmp_path / "r.db")
    t = threading.Thread(target=registry.meta, args=("x",))
    t.start()
    t.join()
    gc.collect()  # a connection and its statement cache hold each other: the collector frees them
    # only the opening thread's connection is left: the ended thread's is not kept alive for ``close`` (SQLite
    # itself keeps a closed connection's file handle open while another connection of the process holds a lock
    # on the file, so the handles count both until the last one closes)
    assert registry._connections.open_count() == 1  # noqa: SLF001
    registry.close()
    assert _open_handles(tmp_path / "r.db") == 0


def test_account_store_close_closes_every_threads_connection(tmp_path):
    accounts = AccountStore(tmp_path / "gatekeeper.db")
    accounts.add("rev1", "a long enough password 1")
    futures, release, pool = _in_live_threads(2, lambda i: accounts.get("rev1"))
    try:
        assert _open_handles(tmp_path / "gatekeeper.db") == 3
        accounts.close()
        assert _open_handles(tmp_path / "gatekeeper.db") == 0
    finally:
        release.set()
        pool.shutdown()
    assert all(f.result() is not None for f in futures)


def test_closing_while_another_thread_reads_neither_crashes_nor_fails_the_read(tmp_path):
    """The first version of close() closed every thread's connection, one a reader was running a query on too:
    SQLite crashed the process (a segmentation fault, in the first of a few rounds). Run in a child, which such a
    crash kills instead of the test run."""
    import subprocess
    import sys

    code = f"""
import threading, time
from pathlib import Path
from gatekeeper.registry import ProposalRegistry
errors = []
for round_ in range(60):
    registry = ProposalRegistry(Path({str(tmp_path)!r}) / f"r{{round_}}.db")
    stop = threading.Event()
    def reader():
        while not stop.is_set():
            try:
                registry.counts()
            except Exception as exc:
                errors.append(repr(exc))
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.003)
    registry.close()
    time.sleep(0.003)
    stop.set()
    t.join()
    registry.close()
assert not errors, errors[:3]
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
