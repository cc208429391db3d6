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
        with os.fdopen(r, "rb") as fh:
            return json.loads(fh.read() or b"{}")
    finally:
        try:
            os.close(r)
        except OSError:
            pass


def test_a_gate_opened_before_a_fork_commits_in_the_forked_worker(gate):
    """The worker used the parent's chromadb client: its calls waited for the parent's threads for ever, and
    every write was quarantined at the store's deadline, said to be a blocked disk. It used the parent's SQLite
    connection too (SQLite warns that this can corrupt the database)."""
    gate.memory_store.write_timeout_s = 5.0
    first = gate.submit(MemoryWrite(namespace=NS, value={"content": "TPS reports go in ./Reports/TPS."}))
    assert first.state is ProposalState.committed
    parent_connection = id(gate.registry._con())  # noqa: SLF001

    def work() -> dict:
        outcome = gate.submit(MemoryWrite(namespace=NS, key="restart",
                                          value={"content": "The staging cluster restarts at 01:00 UTC."}))
        return {"state": outcome.state.value, "reason": outcome.decision.reason,
                "own_connection": id(gate.registry._con()) != parent_connection,  # noqa: SLF001
                "stored": gate.memory_store.get(NS, "restart") is not None}

    said = in_forked_child(work)
    assert said.get("result") == {"state": "committed", "reason": said["result"]["reason"], "own_connection": True,
                                  "stored": True}, said
    # the parent goes on with its own client and sees the worker's memory
    assert gate.memory_store.get(NS, "restart") is not None
    later = gate.submit(MemoryWrite(namespace=NS, value={"content": "Standup moved to 09:45 on Mondays."}))
    assert later.state is ProposalState.committed
    assert gate.registry.counts()["committed"] == 3
    assert gate.ledger.verify().ok


def test_a_forked_worker_opening_the_store_is_seen_by_forget(tmp_path):
    """The worker of a store made before the fork has the database open too: an erasure in the parent must be
    told that another process may hold the erased texts."""
    store = ChromaMemoryStore(path=tmp_path / "chroma")
    store.put(NS, "a", {"content": "parent note"})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            store.put(NS, "b", {"content": "worker note"})
            os.write(w, b"x")
            time.sleep(3)
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"x"
        assert store.open_elsewhere() is True
    finally:
        os.waitpid(pid, 0)
    os.close(r)
    assert store.open_elsewhere() is False
    assert store.get(NS, "b") is not None
    store.close()


@pytest.mark.parametrize("kind", ["client given by the caller", "in-memory"])
def test_a_store_that_cannot_be_reopened_in_a_forked_worker_says_why(kind):
    """A client given by the caller cannot be made again by the store, and an in-memory database's memories are
    the parent's: the worker's writes hung until the deadline and were blamed on the disk."""
    if kind == "in-memory":
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
