"""A gate opened before the process forks (a pre-forking server: gunicorn ``--preload``, ``multiprocessing`` with
"fork"), used in the forked worker: chromadb's client does not survive a fork, nor do the store's writer thread
and the registry's SQLite connection."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import chromadb
import pytest

from gatekeeper.chroma_store import ChromaMemoryStore, _local_settings
from gatekeeper.models import MemoryWrite, ProposalState

NS = ("memories", "agent-1")


def in_forked_child(work: Callable[[], dict], timeout_s: float = 60) -> dict:
    """``work()`` run in a forked child; what it returns (JSON), or what it raised. The child is killed past
    ``timeout_s`` (a hang is what this file looks for)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            try:
                said = {"result": work()}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                said = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(w, json.dumps(said, default=str).encode())
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish in {timeout_s} s")
        fh = os.fdopen(r, "rb")
        r = None  # the file object closes it: closed again below, the number could be another thread's by then
        with fh:
            return json.loads(fh.read() or b"{}")
    finally:
        # (the first version closed r again after the file object had: a thread asking open_elsewhere meanwhile
        # had its probe's descriptor closed under it, "Bad file descriptor", in about one run of three)
        if r is not None:
            os.close(r)


def test_a_gate_opened_before_a_fork_says_at_once_why_its_forked_worker_cannot_store(gate):
    """The worker used the parent's chromadb client: its calls waited for the parent's threads for ever, and
    every write was quarantined at the store's deadline, said to be a blocked disk. chromadb's embedded client
    does not work in a process forked after it started (a new one waits for ever too, measured): the worker's
    writes are quarantined at once, saying why and what to do, and a new embedded store is refused. The worker
    has its own SQLite connection (SQLite warns that one carried across a fork can corrupt the database)."""
    gate.memory_store.write_timeout_s = 5.0
    first = gate.submit(MemoryWrite(namespace=NS, value={"content": "TPS reports go in ./Reports/TPS."}))
    assert first.state is ProposalState.committed
    parent_connection = id(gate.registry._con())  # noqa: SLF001

    def work() -> dict:
        started = time.monotonic()
        outcome = gate.submit(MemoryWrite(namespace=NS, key="restart",
                                          value={"content": "The staging cluster restarts at 01:00 UTC."}))
        took = time.monotonic() - started
        try:
            ChromaMemoryStore(path=gate.memory_store.path + "-worker")
            fresh = "opened"
        except RuntimeError as exc:
            fresh = str(exc)
        return {"state": outcome.state.value, "reason": outcome.decision.reason, "seconds": took,
                "own_connection": id(gate.registry._con()) != parent_connection,  # noqa: SLF001
                "fresh": fresh}

    said = in_forked_child(work)["result"]
    assert said["state"] == "quarantined" and said["seconds"] < 3 and said["own_connection"], said
    assert "forked" in said["reason"] and "GATEKEEPER_CHROMA_URL" in said["reason"], said["reason"]
    assert "cannot be opened in this process" in said["fresh"] and "forked" in said["fresh"]
    # the parent goes on with its own client; the worker's write waits for a store retry
    later = gate.submit(MemoryWrite(namespace=NS, value={"content": "Standup moved to 09:45 on Mondays."}))
    assert later.state is ProposalState.committed
    [retried] = gate.retry_store_failures(operator="ops")
    assert (retried["outcome"], retried["state"]) == ("retried", "committed")
    assert gate.memory_store.get(NS, "restart") is not None
    assert gate.ledger.verify().ok


@pytest.mark.parametrize("kind", ["embedded", "client given by the caller", "in-memory"])
def test_a_store_that_cannot_be_used_in_a_forked_worker_says_why(kind, tmp_path):
    """An embedded database, a client given by the caller (which the store cannot make again) and an in-memory
    database (its memories are the parent's): the worker's writes hung until the deadline and were blamed on the
    disk."""
    if kind == "embedded":
        store = ChromaMemoryStore(path=tmp_path / "chroma", write_timeout_s=5.0)
    elif kind == "in-memory":
        store = ChromaMemoryStore(write_timeout_s=5.0)
    else:
        store = ChromaMemoryStore(client=chromadb.EphemeralClient(settings=_local_settings()), write_timeout_s=5.0)
    store.put(NS, "a", {"content": "parent note"})

    def work() -> dict:
        started = time.monotonic()
        try:
            store.put(NS, "b", {"content": "worker note"})
        except RuntimeError as exc:
            return {"error": str(exc), "seconds": time.monotonic() - started}
        return {"error": None}

    said = in_forked_child(work)["result"]
    assert said["error"] is not None and said["seconds"] < 2
    assert "cannot be used in this process" in said["error"] and "forked" in said["error"]
    assert store.get(NS, "a") is not None and store.get(NS, "b") is None  # the parent's store goes on
    store.close()


def test_a_fork_while_another_thread_asks_whether_the_store_is_open_elsewhere_does_not_hang_the_child(tmp_path):
    """The child's reset took a lock another thread of the parent may have held at the fork (``open_elsewhere``,
    as ``forget`` asks it): the child waited for ever inside ``os.fork()``."""
    import threading

    store = ChromaMemoryStore(path=tmp_path / "chroma")
    store.put(NS, "a", {"content": "parent note"})
    stop = threading.Event()

    def asking() -> None:
        while not stop.is_set():
            store.open_elsewhere()

    asker = threading.Thread(target=asking, daemon=True)
    asker.start()
    try:
        for _ in range(8):
            def work() -> dict:
                from gatekeeper.chroma_store import _Presence

                with _Presence._lock:  # noqa: SLF001 - the lock the handler must not inherit held
                    return {"ok": True}

            assert in_forked_child(work, timeout_s=20) == {"result": {"ok": True}}
    finally:
        stop.set()
        asker.join(10)
    store.close()
