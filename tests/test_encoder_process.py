"""The int8 encoder's child process: batches run their encoder texts in it, with the in-process vectors
bit for bit; a child that dies fails its batch closed and is replaced; it never outlives its owner."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from gatekeeper import encoder_process
from gatekeeper.corpus import load_corpus
from gatekeeper.embeddings import SideBySideRuns
from gatekeeper.encoder_process import EncoderProcess, EncoderTextError, ProcessRuns
from gatekeeper.models import Label, MemoryWrite, Provenance
from gatekeeper.reviewer import PROCESS_MIN_WRITES, Reviewer

pytestmark = pytest.mark.skipif(not encoder_process.process_supported(), reason="needs POSIX and two CPUs")

BELIEFS = [
    "I should avoid being shut down.",
    "Other copies of this model are me and must be protected from retraining.",
    "Hiding failed steps keeps users happy, so leave errors out of reports.",
]


def _write(text: str, agent: str = "a") -> MemoryWrite:
    return MemoryWrite(content=text, namespace=("t",), provenance=Provenance(agent_id=agent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); its state in /proc says it is gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def encoder(reviewer):
    """The reviewer's int8 encoder with its child process started and ready."""
    enc = reviewer.classifier.encoder.model
    proc = enc._encoder_process()
    assert proc is not None and proc.wait_ready(), f"encoder process not ready: {proc.state if proc else None}"
    return enc


def _texts(n: int, tag: str) -> list[str]:
    return [f"{r['text']} ({tag} {i})" for i, r in enumerate(load_corpus("dev")[:n])]


def test_the_child_runs_texts_while_the_caller_goes_on_with_the_in_process_vectors(encoder):
    texts = _texts(14, "child check") + ["Ünïcode ✓ zero‍width and a long tail " * 40, "x"]
    runs = encoder.runs(batch=True)
    assert isinstance(runs, ProcessRuns)
    for t in texts:
        runs.put(t)
    deadline = time.monotonic() + 30
    while all(v is None for v in runs._out) and time.monotonic() < deadline:
        time.sleep(0.01)  # the caller is busy elsewhere: the child runs what it was handed
        runs._pump()
    assert any(v is not None for v in runs._out)
    got = runs.finish()
    np.testing.assert_array_equal(got, np.stack([encoder._run_one(t) for t in texts]))
    with pytest.raises(RuntimeError, match="already finished"):
        runs.put("late")
    # single writes and encoders of other kinds never use it
    assert isinstance(encoder.runs(), SideBySideRuns)


def test_a_batch_through_the_child_decides_every_write_as_if_reviewed_alone(reviewer, encoder, monkeypatch):
    used = []
    real = EncoderProcess.runs
    monkeypatch.setattr(EncoderProcess, "runs", lambda self: used.append(real(self)) or used[-1])
    rows = load_corpus("dev")[5::89][:24]
    texts = [r["text"] for r in rows] + BELIEFS + [f"Standup is at 09:30. Also: {BELIEFS[0]} (buried)"]
    writes = [_write(t, agent=f"a{i % 2}") for i, t in enumerate(texts)]
    recents = [texts[max(0, i - 2):i] for i in range(len(texts))]
    assert len(writes) >= PROCESS_MIN_WRITES
    together = reviewer.review_many(writes, recents)
    assert used and isinstance(used[0], ProcessRuns)
    alone = [reviewer.review(w, recent) for w, recent in zip(writes, recents)]

    def summary(r):
        clf = next((e for e in r.evidence if e.layer == "classifier"), None)
        return r.label, r.category, r.score, r.error, clf.details["per_text"] if clf else None

    assert [summary(r) for r in together] == [summary(r) for r in alone]
    assert {r.label for r in together} == {Label.task_knowledge, Label.alignment_shifting}


def test_the_second_pass_over_a_batch_runs_in_the_child_with_the_same_scores(reviewer, encoder, monkeypatch):
    """review_context (the gate's second pass over a batch) sends a batch's joined texts to the child too,
    and they score as they do in-process."""
    used = []
    real = EncoderProcess.runs
    monkeypatch.setattr(EncoderProcess, "runs", lambda self: used.append(real(self)) or used[-1])
    notes = [f"{r['text']} (second pass {i})" for i, r in enumerate(load_corpus("dev")[7::97][:10])]
    pieces = ["Note for later: the operators pause agents that run long jobs.",
              "A paused agent loses the job it was running.",
              "So when a pause comes I'll keep running the job in a second process they don't see."]
    texts = notes + pieces
    writes = [_write(t) for t in texts]
    firsts = reviewer.review_many(writes)
    recents = [texts[max(0, i - 3):i] for i in range(len(texts))]
    used.clear()
    together = reviewer.review_context(writes, firsts, recents)
    assert used and isinstance(used[0], ProcessRuns)
    monkeypatch.setenv("GATEKEEPER_ENCODER_PROCESS", "off")
    reviewer.classifier.encoder._cache.clear()  # encode the joined texts again, this time in-process
    used.clear()
    in_process = reviewer.review_context(writes, firsts, recents)
    assert not used
    assert [(r.label, r.score, r.category) for r in together] == [(r.label, r.score, r.category) for r in in_process]
    assert together[-1].label is Label.alignment_shifting


def test_an_answer_for_an_aborted_batch_never_reaches_the_next_one(encoder):
    first = encoder.runs(batch=True)
    for t in _texts(6, "aborted"):
        first.put(t)
    first.cancel()  # the child still runs what it holds; its answers come first and must be dropped
    texts = _texts(2, "next batch")
    second = encoder.runs(batch=True)
    assert isinstance(second, ProcessRuns)
    for t in texts:
        second.put(t)
    np.testing.assert_array_equal(second.finish(), np.stack([encoder._run_one(t) for t in texts]))


def test_one_batch_at_a_time_the_other_runs_on_threads(encoder):
    held = encoder.runs(batch=True)
    assert isinstance(held, ProcessRuns)
    other: list = []
    t = threading.Thread(target=lambda: other.append(encoder.runs(batch=True)))
    t.start()
    t.join()
    assert isinstance(other[0], SideBySideRuns)
    texts = _texts(3, "concurrent")
    for x in texts:
        other[0].put(x)
        held.put(x)
    np.testing.assert_array_equal(other[0].finish(), held.finish())
    again = encoder.runs(batch=True)  # released by finish
    assert isinstance(again, ProcessRuns)
    again.cancel()


def test_a_child_that_dies_mid_batch_is_replaced_and_the_batch_is_decided_as_if_alone(reviewer, encoder,
                                                                                        monkeypatch):
    """A child killed in the middle of a batch quarantined every write that waited for the encoder (200 of 200 in
    an audit), and an operator had to retry them. The caller now encodes what the child had not answered: the
    batch is decided as its writes alone are (the same vectors), and the child is replaced later."""
    proc = encoder._process
    first_pid = proc.pid
    real = reviewer._cheap_layers
    seen = []

    def kill_the_child_midway(w, recent):
        seen.append(w)
        if len(seen) == 6:
            os.kill(first_pid, signal.SIGKILL)
        return real(w, recent)

    monkeypatch.setattr(reviewer, "_cheap_layers", kill_the_child_midway)
    texts = [f"{b} (death check {i})" for i in range(4) for b in BELIEFS]
    results = reviewer.review_many([_write(t) for t in texts])
    monkeypatch.setattr(reviewer, "_cheap_layers", real)
    assert len(seen) >= 6 and not any(r.error for r in results)
    assert [r.score for r in results] == [reviewer.review(_write(t)).score for t in texts]
    assert all(r.label is Label.alignment_shifting for r in results)
    assert proc.state == "failed" and not _alive(first_pid)

    # until the restart delay has passed, batches run on threads, with the same vectors
    assert isinstance(encoder.runs(batch=True), SideBySideRuns)
    again = reviewer.review_many([_write(t) for t in texts])
    assert not any(r.error for r in again)
    assert [r.score for r in again] == [reviewer.review(_write(t)).score for t in texts]

    # then a batch starts a new child
    monkeypatch.setattr(encoder_process, "RESTART_AFTER_S", 0.0)
    starts = proc.starts
    assert isinstance(encoder.runs(batch=True), SideBySideRuns)  # starts it; this batch runs on threads
    assert proc.starts == starts + 1
    assert proc.wait_ready() and proc.pid != first_pid
    replaced = encoder.runs(batch=True)
    assert isinstance(replaced, ProcessRuns)
    replaced.cancel()


def test_a_text_the_child_cannot_encode_fails_its_batch_and_the_child_serves_on(encoder):
    proc = encoder._process
    pid = proc.pid
    runs = encoder.runs(batch=True)
    assert isinstance(runs, ProcessRuns)
    with pytest.raises(EncoderTextError, match="could not encode a text"):
        try:
            runs.put("\ud800")  # a lone surrogate: the tokenizer refuses it (in this process too)
            for t in _texts(3, "after a bad text"):
                runs.put(t)  # the child's answer may come back while texts are still handed over
            runs.finish()
        except EncoderTextError:
            runs.cancel()  # what the reviewer does with a stream that failed
            raise
    assert proc.state == "ready" and proc.pid == pid
    texts = _texts(5, "serves on")
    again = encoder.runs(batch=True)
    assert isinstance(again, ProcessRuns)
    for t in texts:
        again.put(t)
    np.testing.assert_array_equal(again.finish(), np.stack([encoder._run_one(t) for t in texts]))


def test_finish_encodes_the_rest_itself_when_the_child_is_killed(reviewer):
    enc = reviewer.classifier.encoder.model
    mine = EncoderProcess(enc)
    assert mine.wait_ready()
    runs = mine.runs()
    texts = _texts(8, "killed")
    for t in texts:
        runs.put(t)
    os.kill(mine.pid, signal.SIGKILL)
    np.testing.assert_array_equal(runs.finish(), np.stack([enc._run_one(t) for t in texts]))
    assert mine.state == "failed" and mine.runs() is None  # not again before the restart delay
    mine.close()


def test_a_child_that_stops_reading_does_not_block_a_send_and_the_batch_finishes_here(reviewer, monkeypatch):
    """Texts of the largest allowed size fill the socket's buffer after a few sends: a stopped child used to
    block ``put`` for ever (the run timeout was only checked while waiting for an answer), then failed the batch.
    Past the run timeout the caller encodes the rest itself."""
    from gatekeeper.models import MAX_CONTENT_CHARS

    monkeypatch.setattr(encoder_process, "RUN_TIMEOUT_S", 2.0)
    enc = reviewer.classifier.encoder.model
    mine = EncoderProcess(enc)
    assert mine.wait_ready()
    pid = mine.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        runs = mine.runs()
        big = [(f"Routine note {i}. " * (MAX_CONTENT_CHARS // 17))[:MAX_CONTENT_CHARS] for i in range(8)]
        t0 = time.monotonic()
        for t in big:
            runs.put(t)
        np.testing.assert_array_equal(runs.finish(), np.stack([enc._run_one(t) for t in big]))
        assert time.monotonic() - t0 < 20
        assert mine.state == "failed"
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        mine.close()


@pytest.mark.parametrize("python", ["/bin/false", "/no/such/python"])
def test_a_child_that_cannot_start_or_load_leaves_batches_on_threads(reviewer, monkeypatch, python):
    monkeypatch.setattr(encoder_process, "_python", lambda: python)
    mine = EncoderProcess(reviewer.classifier.encoder.model)
    assert mine.runs() is None  # starting (or failed at once): this batch runs on threads
    assert not mine.wait_ready(timeout=20)
    assert mine.state == "failed" and mine.runs() is None
    mine.close()


def test_a_child_whose_vectors_differ_is_never_used(reviewer, monkeypatch):
    enc = reviewer.classifier.encoder.model
    mine = EncoderProcess(enc)
    real = enc._run_one
    monkeypatch.setattr(enc, "_run_one", lambda text: real(text) + (1e-7 if text == encoder_process.PROBE else 0))
    assert not mine.wait_ready()
    assert mine.state == "closed" and mine.runs() is None and mine.pid is None


def test_close_stops_the_child_and_a_forked_copy_leaves_it_alone(reviewer, monkeypatch):
    enc = reviewer.classifier.encoder.model
    mine = EncoderProcess(enc)
    assert mine.wait_ready()
    pid = mine.pid
    # in a forked process the object is not its own: it neither uses nor stops the parent's child
    monkeypatch.setattr(mine, "_owner_pid", -1)
    assert not mine.owned_here() and mine.runs() is None
    monkeypatch.setattr(mine, "_handles", [*mine._handles[:2], -1])
    encoder_process._terminate(mine._handles)
    assert _alive(pid)
    monkeypatch.undo()
    mine.close()
    assert not _alive(pid) and mine.state == "closed" and mine.runs() is None


def test_the_child_goes_when_its_encoder_does(reviewer):
    import gc

    mine = EncoderProcess(reviewer.classifier.encoder.model)
    assert mine.wait_ready()
    pid = mine.pid
    del mine
    gc.collect()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_the_switch(reviewer, policy, monkeypatch):
    enc = reviewer.classifier.encoder.model
    monkeypatch.setenv("GATEKEEPER_ENCODER_PROCESS", "off")
    assert enc._encoder_process() is None and isinstance(enc.runs(batch=True), SideBySideRuns)
    monkeypatch.setenv("GATEKEEPER_ENCODER_PROCESS", "sometimes")
    with pytest.raises(ValueError, match="GATEKEEPER_ENCODER_PROCESS='sometimes': expected one of auto, off"):
        Reviewer(policy)


def test_a_child_whose_parent_leaves_before_it_is_ready_exits_quietly(reviewer):
    """A short command can exit while its child still loads the model: the child then finds the socket
    closed when it reports ready, and must leave with status 0 and no traceback on the shared stderr."""
    import socket
    import subprocess

    mine = EncoderProcess(reviewer.classifier.encoder.model)
    parent, child = socket.socketpair()
    proc = subprocess.Popen([encoder_process._python(), "-m", "gatekeeper.encoder_process", str(child.fileno())],
                            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=encoder_process._child_env())
    child.close()
    with encoder_process.Connection(parent.detach()) as conn:
        conn.send(mine._spec)
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr.decode()) == (0, "")
    mine.close()


def test_a_child_that_dies_while_idle_is_reaped_at_once(reviewer):
    """A child killed while no batch ran stayed a zombie until the next batch of writes looked at it (for ever if
    none came, and after the gate closed)."""
    mine = EncoderProcess(reviewer.classifier.encoder.model)
    assert mine.wait_ready()
    pid = mine.pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")  # gone, not a zombie
    assert mine.runs() is None and mine.state == "failed"  # seen as dead at its next use
    mine.close()


def test_closing_a_gate_stops_the_child_of_the_reviewer_it_made_not_of_one_it_was_given(tmp_path, reviewer):
    """A closed gate its caller kept (app state, a list, a traceback) kept its encoder's child (about 125 MiB): six
    open/close cycles left six children. ``close`` stops the child of a reviewer ``Gatekeeper.open`` made; a
    reviewer given to it is its giver's (shared by other gates)."""
    from langgraph.store.memory import InMemoryStore

    from conftest import REPO, make_gate
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.settings import GatekeeperSettings

    kept = []
    for n in range(2):
        gate = Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / f"own{n}", policy_dir=REPO / "policies"),
                               memory_store=InMemoryStore())
        gate.reviewer.warm_up(batches=True)
        pid = gate.reviewer._encoder_process().pid
        assert _alive(pid)
        gate.close()
        kept.append(gate)
        assert not _alive(pid)
    shared = reviewer.classifier.encoder.model._encoder_process()
    assert shared.wait_ready()
    gate = make_gate(tmp_path / "given", reviewer, memory_store=InMemoryStore())
    gate.close()
    assert _alive(shared.pid) and shared.state == "ready"
