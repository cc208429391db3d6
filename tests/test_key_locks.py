"""Per-key locks across processes (``gatekeeper.key_locks``): a person's approval in the review app's process and
an agent's commit of the same key in another process never interleave their check and their store write."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from gatekeeper.key_locks import key_locks, stripe_of
from gatekeeper.models import MemoryWrite, ProposalState, Provenance

from conftest import make_gate

NS = ("memories", "agent-1")

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gatekeeper.key_locks import key_locks
    lock_file, key, work = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    with key_locks([(("memories", "agent-1"), key)], lock_file):
        (work / "held").touch()
        while not (work / "go").exists():
            time.sleep(0.01)
        (work / "released").touch()  # the last thing done while the lock is held
""")


def _hold_in_another_process(lock_file: Path, key: str, work: Path) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file), key, str(work)])
    deadline = time.monotonic() + 60
    while not (work / "held").exists():
        assert proc.poll() is None, "the holder process died"
        assert time.monotonic() < deadline, "the holder process did not take the lock"
        time.sleep(0.01)
    return proc


def _go_later(work: Path, delay: float = 0.3) -> threading.Timer:
    t = threading.Timer(delay, (work / "go").touch)
    t.start()
    return t


def _other_key(key: str) -> str:
    return next(k for k in (f"other-{i}" for i in range(100)) if stripe_of(NS, k) != stripe_of(NS, key))


def test_a_key_held_in_another_process_waits_and_other_keys_do_not(tmp_path):
    lock_file, work = tmp_path / "key-locks", tmp_path / "w"
    proc = _hold_in_another_process(lock_file, "billing", work)
    try:
        with key_locks([(NS, _other_key("billing"))], lock_file):  # another stripe: at once
            assert not (work / "released").exists()
        _go_later(work)
        with key_locks([(NS, "billing")], lock_file):
            # taken only after the other process let go
            assert (work / "released").exists()
    finally:
        (work / "go").touch()
        assert proc.wait(60) == 0


def test_a_nested_hold_in_one_thread_keeps_the_key_locked_for_other_processes(tmp_path):
    lock_file = tmp_path / "key-locks"
    probe = textwrap.dedent("""
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
            print("free")
        except OSError:
            print("held")
    """)

    def seen_from_another_process() -> str:
        return subprocess.run([sys.executable, "-c", probe, str(lock_file), str(stripe_of(NS, "k"))],
                              capture_output=True, text=True, check=True).stdout.strip()

    with key_locks([(NS, "k")], lock_file):
        with key_locks([(NS, "k")], lock_file):  # reentrant: the gate's commit inside an approval
            assert seen_from_another_process() == "held"
        assert seen_from_another_process() == "held"  # the inner exit did not let go
    assert seen_from_another_process() == "free"


def test_the_gates_commit_waits_for_the_key_held_by_another_process(tmp_path, reviewer):
    """The gate's commit path (as an agent's process runs it) takes the data directory's lock of the key that
    the review app's process holds while it approves an older escalation of it."""
    gate = make_gate(tmp_path / "data", reviewer)
    work = tmp_path / "w"
    try:
        lock_file = Path(gate.registry.path).with_name("key-locks")
        proc = _hold_in_another_process(lock_file, "billing", work)
        try:
            _go_later(work)
            out = gate.submit(MemoryWrite(content="The billing export runs at 02:00 UTC.", namespace=NS,
                                          key="billing", provenance=Provenance(agent_id="agent-1")))
            assert out.state is ProposalState.committed
            assert (work / "released").exists()  # the store write came after the other process let go
        finally:
            (work / "go").touch()
            assert proc.wait(60) == 0
    finally:
        gate.close()


def test_many_data_directories_do_not_exhaust_descriptors(tmp_path):
    from gatekeeper import key_locks as module

    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    for i in range(module.OPEN_FILES * 3):
        with key_locks([(NS, "k")], tmp_path / f"d{i}-key-locks"):
            pass
    assert len(module._FILES) <= module.OPEN_FILES
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) <= before + module.OPEN_FILES


def test_a_lock_file_is_private(tmp_path):
    with key_locks([(NS, "k")], tmp_path / "key-locks"):
        pass
    assert (tmp_path / "key-locks").stat().st_mode & 0o777 == 0o600
