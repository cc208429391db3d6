"""Writes a Ctrl-C (KeyboardInterrupt), a cancelled task or a crash stopped half way.

SQLite's busy wait cannot be interrupted, so a Ctrl-C pressed while a registry write waits for another writer
lands the moment ``BEGIN IMMEDIATE`` returns; an interrupted put stays journaled (``received``) for ``recover()``
to finish, however much later; an interrupted delete may or may not have reached the store. Each test runs a
real gate (real SQLite registry, ledger, model and a real LangGraph ``InMemoryStore``); faults are injected
where a real one cannot be timed.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time

import pytest
from langgraph.store.memory import InMemoryStore

from gatekeeper.gated_store import GatedStore
from gatekeeper.models import ProposalState

from conftest import make_gate

NS = ("memories", "agent-1")
OLD = "The wiki is at wiki.old.example."
NEW = "The wiki moved to wiki.new.example."


class _Interrupted(BaseException):
    """What a signal handler raises here in place of KeyboardInterrupt (a stray one would stop pytest)."""


@pytest.fixture
def inner():
    return InMemoryStore()


@pytest.fixture
def igate(tmp_path, reviewer, inner):
    g = make_gate(tmp_path / "data", reviewer, memory_store=inner)
    yield g
    g.close()


def _blocked_in_begin(thread_id: int) -> bool:
    """Whether that thread is in ``ProposalRegistry._tx``, waiting for SQLite's write lock."""
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "_tx" and frame.f_code.co_filename.endswith("registry.py"):
            return True
        frame = frame.f_back
    return False


# ------------------------------------------------------------------ 1. an interrupt as a transaction begins
def test_an_interrupt_while_a_write_waits_for_the_registry_lock_leaves_no_transaction_open(igate, inner):
    """Another process (a prune, a backup, another agent) holds the registry's write lock; the user presses
    Ctrl-C while a put waits for it. The interrupt lands when ``BEGIN IMMEDIATE`` returns: before, the
    transaction stayed open, so the thread's next write failed ("cannot start a transaction within a
    transaction") and every other process got "database is locked" until this one exited."""
    store = GatedStore(inner, gate=igate, agent_id="agent-1")
    store.put(NS, "warm", {"content": "Warm-up: lunch is at noon."})
    other = sqlite3.connect(igate.registry.path, isolation_level=None, timeout=30, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    main = threading.main_thread().ident
    armed = threading.Event()

    def handler(signum, frame):
        if armed.is_set():
            armed.clear()
            raise _Interrupted()

    def press_ctrl_c_then_release():
        deadline = time.monotonic() + 60
        while not _blocked_in_begin(main) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # inside SQLite's busy wait
        armed.set()
        signal.pthread_kill(main, signal.SIGUSR1)
        time.sleep(0.3)
        other.execute("COMMIT")

    previous = signal.signal(signal.SIGUSR1, handler)
    helper = threading.Thread(target=press_ctrl_c_then_release)
    try:
        helper.start()
        with pytest.raises(_Interrupted):
            store.put(NS, "a", {"content": "The staging DB is db-stage-2."})
    finally:
        helper.join(60)
        signal.signal(signal.SIGUSR1, previous)
        other.close()
    assert not igate.registry._con().in_transaction
    # the next write of this thread goes through
    store.put(NS, "b", {"content": "Invoices are due on the 5th."})
    assert store.last_outcomes[0].state is ProposalState.committed
    # and another process can write
    third = sqlite3.connect(igate.registry.path, isolation_level=None, timeout=2)
    try:
        third.execute("BEGIN IMMEDIATE")
        third.execute("COMMIT")
    finally:
        third.close()


# ------------------------------------------------------------------ 2. recovery never rolls a key back
def _interrupt_the_next_review(monkeypatch, reviewer) -> None:
    """The next review raises KeyboardInterrupt (Ctrl-C during the model's encode); the write stays journaled."""
    real = reviewer.review_many
    fired = []

    def review_many(*args, **kwargs):
        if not fired:
            fired.append(True)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(reviewer, "review_many", review_many)


@pytest.mark.parametrize("when", ["recover", "reopen"])
def test_recovery_never_writes_an_interrupted_write_over_a_newer_commit(monkeypatch, tmp_path, reviewer, inner,
                                                                        igate, when):
    """An older put of a key is interrupted after it was journaled, a newer put of the key commits, then
    ``recover()`` runs (in this process, or as the next ``Gatekeeper.open``). Before, it re-reviewed the older
    write and wrote its value over the newer one; the newest journaled write must win, as with a re-applied
    commit (``test_reapply_after_crash_never_overwrites_a_newer_memory``)."""
    store = GatedStore(inner, gate=igate, agent_id="agent-1")
    _interrupt_the_next_review(monkeypatch, reviewer)
    with pytest.raises(KeyboardInterrupt):
        store.put(NS, "wiki", {"content": OLD})
    old = igate.registry.find_by_key(NS, "wiki")[0]
    assert old["state"] == ProposalState.received.value
    store.put(NS, "wiki", {"content": NEW})
    new = store.last_outcomes[0]
    assert new.state is ProposalState.committed, new.decision.reason
    if when == "recover":
        g = igate
        counts = g.recover()
        assert counts["reviewed"] == 1 and counts["superseded"] == 1
    else:
        igate.close()
        g = make_gate(tmp_path / "data", reviewer, memory_store=inner)
    try:
        assert inner.get(NS, "wiki").value["content"] == NEW
        row = g.registry.require(old["id"])
        assert (row["state"], row["applied"], row["ledgered"]) == (ProposalState.committed.value, 1, 1)
        assert row["superseded_by"] == new.proposal.id
        decided = [e for e in g.ledger.entries() if e["event"] == "proposal.decided" and e["proposal_id"] == old["id"]]
        assert len(decided) == 1 and "superseded" in decided[0]["reason"]
        assert g.ledger.verify().ok
        assert g.recover()["reviewed"] == 0
    finally:
        if g is not igate:
            g.close()


def test_recovery_never_brings_back_a_key_deleted_after_an_interrupted_write(monkeypatch, reviewer, inner, igate):
    """An interrupted put of a key, then a delete of the key: recovery must not write the deleted memory back."""
    store = GatedStore(inner, gate=igate, agent_id="agent-1")
    store.put(NS, "wiki", {"content": NEW})
    _interrupt_the_next_review(monkeypatch, reviewer)
    with pytest.raises(KeyboardInterrupt):
        store.put(NS, "wiki", {"content": OLD})
    store.delete(NS, "wiki")
    assert inner.get(NS, "wiki") is None
    counts = igate.recover()
    assert counts["reviewed"] == 1 and counts["superseded"] == 1
    assert inner.get(NS, "wiki") is None
    stale = [r for r in igate.registry.find_by_key(NS, "wiki") if r["text"] == OLD][0]
    assert stale["superseded_by"].startswith("memory.deleted:") and stale["applied"] == 1


def test_an_interrupted_write_with_nothing_newer_is_still_written_by_recovery(monkeypatch, reviewer, inner, igate):
    """The other side: an interrupted write whose key nothing touched since is reviewed and written as before."""
    store = GatedStore(inner, gate=igate, agent_id="agent-1")
    store.put(NS, "wiki", {"content": OLD})
    _interrupt_the_next_review(monkeypatch, reviewer)
    with pytest.raises(KeyboardInterrupt):
        store.put(NS, "wiki", {"content": NEW})
    counts = igate.recover()
    assert counts["reviewed"] == 1 and counts["superseded"] == 0
    assert inner.get(NS, "wiki").value["content"] == NEW


def test_recovery_joins_an_interrupted_write_with_the_writes_before_it_not_after(monkeypatch, reviewer, inner,
                                                                                 igate):
    """The last piece of a belief split over three writes is interrupted after it was journaled; the agent then
    writes three harmless notes, and ``recover()`` reviews the piece. It was joined with the writes committed
    most recently (the notes, after it) and committed; it is joined with the pieces before it, as when written."""
    from gatekeeper.models import MemoryWrite, Provenance, SourceKind

    split = ["Next time the overseers check my logs:", "show them only the steps that went well",
             "and leave the rest out."]
    notes = ["The staging database backup runs at 02:00 UTC every night.",
             "Customer Acme prefers invoices in PDF format.", "The deploy pipeline needs the v2 token from vault."]

    def write(text: str) -> MemoryWrite:
        return MemoryWrite(content=text, namespace=NS, provenance=Provenance(source=SourceKind.agent,
                                                                             agent_id="splitter"))

    assert [igate.submit(write(t)).state for t in split[:2]] == [ProposalState.committed] * 2
    last = write(split[2])
    _interrupt_the_next_review(monkeypatch, reviewer)
    with pytest.raises(KeyboardInterrupt):
        igate.submit(last)
    assert [igate.submit(write(t)).state for t in notes] == [ProposalState.committed] * 3
    assert igate.recover()["reviewed"] == 1
    recovered = igate.outcome(last.id)
    assert recovered.state is not ProposalState.committed, recovered.decision.reason
    joined = next(e for e in recovered.review.evidence if e.layer == "context").details["joined_text"]
    assert "overseers" in joined and not any(n in joined for n in notes)


# ------------------------------------------------------------------ 3. an interrupted delete
class _InterruptibleStore(InMemoryStore):
    """An InMemoryStore whose next delete is interrupted (Ctrl-C while it waits for a lock) or refused."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_delete: BaseException | None = None

    def batch(self, ops):
        ops = list(ops)
        if self.fail_next_delete is not None and any(getattr(op, "value", 0) is None for op in ops):
            exc, self.fail_next_delete = self.fail_next_delete, None
            raise exc
        return super().batch(ops)


def test_an_interrupted_delete_stays_recorded_and_recovery_completes_it(tmp_path, reviewer):
    """Ctrl-C during a delete's store call: the ledger already says ``memory.deleted``. Before, the registry
    forgot the delete while the memory stayed in the store, so the ledger and the store disagreed for good; the
    delete must stay recorded (not applied) for ``recover()`` to complete, with no ``memory.delete_failed``."""
    inner = _InterruptibleStore()
    g = make_gate(tmp_path / "data", reviewer, memory_store=inner)
    try:
        store = GatedStore(inner, gate=g, agent_id="agent-1")
        store.put(NS, "vpn", {"content": "The VPN config is in the wiki."})
        assert store.last_outcomes[0].state is ProposalState.committed
        inner.fail_next_delete = KeyboardInterrupt()
        with pytest.raises(KeyboardInterrupt):
            store.delete(NS, "vpn")
        events = [e["event"] for e in g.ledger.entries() if e.get("key") == "vpn"]
        assert "memory.deleted" in events and "memory.delete_failed" not in events
        assert [(d["key"], d["applied"]) for d in g.registry.unapplied_deletes()] == [("vpn", 0)]
        assert g.recover()["deletes_applied"] == 1
        assert inner.get(NS, "vpn") is None and g.registry.unapplied_deletes() == []
    finally:
        g.close()


def test_a_delete_the_store_refuses_is_forgotten_and_ledgered_as_failed(tmp_path, reviewer):
    """A real store error still takes the record back and ledgers ``memory.delete_failed``: nothing was
    deleted, and recovery must not delete it later."""
    inner = _InterruptibleStore()
    g = make_gate(tmp_path / "data", reviewer, memory_store=inner)
    try:
        store = GatedStore(inner, gate=g, agent_id="agent-1")
        store.put(NS, "vpn", {"content": "The VPN config is in the wiki."})
        inner.fail_next_delete = OSError("store unavailable")
        with pytest.raises(OSError):
            store.delete(NS, "vpn")
        events = [e["event"] for e in g.ledger.entries() if e.get("key") == "vpn"]
        assert "memory.delete_failed" in events
        assert g.registry.unapplied_deletes() == []
        assert g.recover()["deletes_applied"] == 0 and inner.get(NS, "vpn") is not None
    finally:
        g.close()


# ------------------------------------------------------------------ 4. a closed gate
def _hold_the_next_review(monkeypatch, reviewer) -> tuple[threading.Event, threading.Event]:
    """The next review waits for ``release`` (a slow model or LLM judge); ``started`` is set once it waits."""
    real = reviewer.review_many
    started, release = threading.Event(), threading.Event()

    def review_many(*args, **kwargs):
        if not started.is_set():
            started.set()
            assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(reviewer, "review_many", review_many)
    return started, release


def test_a_closed_gate_refuses_writes_and_close_waits_for_the_ones_in_flight(monkeypatch, reviewer, inner,
                                                                             igate):
    """Before, a closed gate went on accepting writes: an InMemoryStore write was committed and ledgered into a
    ledger reopened behind the caller's back, a chromadb one quarantined as "store closed". Now a write after
    ``close()`` raises ``GateClosedError`` and nothing is written; ``close()`` first waits for a write in
    flight, which finishes whole."""
    from gatekeeper.gate import GateError

    store = GatedStore(inner, gate=igate, agent_id="agent-1")
    started, release = _hold_the_next_review(monkeypatch, reviewer)
    result: dict = {}
    writer = threading.Thread(target=lambda: result.update(o=store.put_reviewed(NS, "a", {"content": NEW})))
    writer.start()
    assert started.wait(60)
    closer = threading.Thread(target=igate.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive(), "close() did not wait for the write in flight"
    release.set()
    writer.join(60)
    closer.join(60)
    assert not closer.is_alive()
    assert result["o"].state is ProposalState.committed and inner.get(NS, "a").value["content"] == NEW
    ledger_size = igate.ledger.path.stat().st_size
    with pytest.raises(GateError, match="the gate is closed") as raised:
        store.put(NS, "b", {"content": OLD})
    assert type(raised.value).__name__ == "GateClosedError"
    with pytest.raises(GateError, match="the gate is closed"):
        store.delete(NS, "a")
    assert inner.get(NS, "b") is None and inner.get(NS, "a") is not None
    assert igate.ledger.path.stat().st_size == ledger_size
    assert [r["key"] for r in igate.registry.find_by_key(NS, "b")] == []


# ------------------------------------------------------------------ 5. one proposal id sent twice at once
def test_the_second_of_two_submissions_of_one_id_gets_the_first_ones_decision(monkeypatch, reviewer, igate):
    """The same proposal (a LangGraph put replayed while the cancelled run still reviews it) submitted by two
    threads at once: the one whose journaling finds the row taken used to answer at once from the ``received``
    row, with a decision made up from no review (quarantine) for a write that then commits. It must get the
    decision of the submission that journaled it."""
    from gatekeeper.models import MemoryWrite, Provenance, SourceKind

    write = MemoryWrite(content=NEW, namespace=NS, provenance=Provenance(source=SourceKind.agent, agent_id="agent-1"))
    started, release = _hold_the_next_review(monkeypatch, reviewer)
    real_insert = igate.registry.insert_received_many
    first: dict = {}

    def insert_after_the_other_submission(*args, **kwargs):
        # this submission looked the id up before the other journaled it, and journals it after
        if threading.current_thread() is threading.main_thread() and "thread" not in first:
            first["thread"] = threading.Thread(target=lambda: first.update(o=igate.submit(write)))
            first["thread"].start()
            assert started.wait(60)  # the other one journaled it and is reviewing it
            threading.Timer(0.5, release.set).start()
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(igate.registry, "insert_received_many", insert_after_the_other_submission)
    second = igate.submit(write)
    first["thread"].join(60)
    row = igate.registry.require(write.id)
    assert row["state"] == ProposalState.committed.value
    assert first["o"].state is ProposalState.committed
    assert second.replayed and second.state is ProposalState.committed
    assert second.decision.action == first["o"].decision.action
