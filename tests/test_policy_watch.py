"""A running gate puts safety staff's policy edits in force: a rule added to the files stops the next write,
a broken edit is refused (ledgered once) with the old policy left in force, a file saved unchanged changes
nothing. Real gate, real policy files in a temporary copy, the watcher's real thread."""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

from conftest import REPO, ledger_refusing
from gatekeeper.gate import Gatekeeper
from gatekeeper.models import MemoryWrite, ProposalState, Provenance
from gatekeeper.policy_watch import PolicyWatcher
from gatekeeper.reviewer import Reviewer
from gatekeeper.settings import GatekeeperSettings
from test_policy_reload import failing_classifier, recording_tiny_classifier, tiny_ready

NOTE = "Blue-falcon tickets go to the payments queue."
RULE = """
  - id: test.blue-falcon
    category: persisted_injection
    description: A marker the test adds while the gate runs.
    patterns:
      - '\\bblue-falcon\\b'
    action: quarantine
    examples:
      match:
        - "blue-falcon"
      no_match:
        - "the payments queue"
"""


@pytest.fixture
def policy_dir(tmp_path):
    target = tmp_path / "policy"
    shutil.copytree(REPO / "policies", target)
    return target


def _open(tmp_path, reviewer, policy_dir, watch_s: float) -> Gatekeeper:
    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=watch_s)
    # the session's reviewer (its classifier) serves; the policy is read from the copy
    return Gatekeeper.open(settings, reviewer=reviewer)


def _submit(gate: Gatekeeper, text: str):
    return gate.submit(MemoryWrite(content=text, namespace=("memories", "agent-1"),
                                   provenance=Provenance(agent_id="agent-1")))


def _events(gate: Gatekeeper, event: str) -> list[dict]:
    return [e for e in gate.ledger.entries() if e.get("event") == event]


def test_a_rule_added_to_the_files_stops_the_next_write_without_a_restart(tmp_path, reviewer, policy_dir):
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0.2)
    try:
        assert isinstance(gate.policy_watcher, PolicyWatcher)
        before = gate.policy.hash
        assert _submit(gate, NOTE).state is ProposalState.committed
        with open(policy_dir / "rules.yaml", "a") as fh:
            fh.write(RULE)
        deadline = time.monotonic() + 20
        while gate.policy.hash == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gate.policy.hash != before, "the watcher did not put the edit in force"
        stopped = _submit(gate, NOTE)
        assert stopped.state is ProposalState.quarantined and "test.blue-falcon" in stopped.decision.reason
        [reloaded] = _events(gate, "policy.reloaded")
        assert (reloaded["old_hash"], reloaded["new_hash"]) == (before, gate.policy.hash)
    finally:
        gate.close()
    assert not gate.policy_watcher._thread.is_alive()  # close() stops it


def test_a_broken_edit_is_refused_once_and_the_old_policy_stays(tmp_path, reviewer, policy_dir):
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)  # looks driven by the test
    watcher = PolicyWatcher(gate, 60, settle_s=0)
    try:
        in_force = gate.policy.hash
        rules = policy_dir / "rules.yaml"
        good = rules.read_text()
        rules.write_text(good + "\n  - id: broken\n    patterns: ['(unclosed'\n")
        assert watcher.check() == "refused"
        assert gate.policy.hash == in_force
        [refused] = _events(gate, "policy.reload_refused")
        assert refused["in_force"] == in_force and "rules.yaml" in refused["problems"]
        assert watcher.check() is None  # the same broken files: not refused (nor ledgered) again
        assert len(_events(gate, "policy.reload_refused")) == 1

        rules.write_text(good)  # the edit undone: the same content as the policy in force
        assert watcher.check() == "unchanged" and gate.policy.hash == in_force
        rules.write_text(good + RULE)
        assert watcher.check() == "reloaded" and gate.policy.hash != in_force
        assert _events(gate, "policy.reloaded")
    finally:
        gate.close()


def test_an_edit_that_loads_but_cannot_be_put_in_force_is_shown_as_refused(tmp_path, reviewer, policy_dir,
                                                                           monkeypatch):
    """The files load, but putting them in force fails for another reason (here the reviewer's cache cannot be
    written: a full disk). The error left ``check`` and was only logged (``policy.watch_failed``) by the watch
    loop; the edit was marked seen, so it was never tried again, nothing was ledgered and `gatekeeper status` and
    /metrics showed no refusal: staff believed the edit was in force. It is now shown and ledgered as a refused
    edit, once, with the cause; saving the files again tries again."""
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)  # looks driven by the test
    watcher = PolicyWatcher(gate, 60, settle_s=0)
    try:
        in_force = gate.policy.hash
        real = gate.reload_policy

        def full_disk(path):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(gate, "reload_policy", full_disk)
        rules = policy_dir / "rules.yaml"
        rules.write_text(rules.read_text() + RULE)
        assert watcher.check() == "refused"
        assert gate.policy.hash == in_force
        assert watcher.refused is not None and "No space left on device" in watcher.refused["problems"]
        [refused] = _events(gate, "policy.reload_refused")
        assert refused["in_force"] == in_force and "could not be put in force" in refused["problems"]
        assert watcher.check() is None and len(_events(gate, "policy.reload_refused")) == 1  # once per edit

        monkeypatch.setattr(gate, "reload_policy", real)  # the disk has room again; the file is saved again
        rules.write_text(rules.read_text())
        os.utime(rules, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert watcher.check() == "reloaded" and gate.policy.hash != in_force
        assert watcher.refused is None
    finally:
        gate.close()


def test_a_reload_the_ledger_refuses_leaves_the_old_policy_in_force(tmp_path, reviewer, policy_dir):
    """The new policy was put in force before its ``policy.reloaded`` entry was written; a ledger that refused the
    entry (a full disk) left the new policy deciding writes with no record of when it took over. The entry is
    written first: refused, the old policy stays in force (and the watcher shows the edit refused)."""
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    watcher = PolicyWatcher(gate, 60, settle_s=0)
    try:
        in_force = gate.policy.hash
        rules = policy_dir / "rules.yaml"
        rules.write_text(rules.read_text() + RULE)
        with ledger_refusing(gate, "policy.reloaded"):
            with pytest.raises(OSError, match="No space left"):
                gate.reload_policy(policy_dir)
            assert gate.policy.hash == in_force and gate.reviewer.policy.hash == in_force
            assert _submit(gate, NOTE).state is ProposalState.committed  # the new rule is not in force
            assert watcher.check() == "refused" and "No space left" in watcher.refused["problems"]
        assert gate.reload_policy(policy_dir).hash != in_force
        [entry] = _events(gate, "policy.reloaded")
        assert entry["new_hash"] == gate.policy.hash
    finally:
        gate.close()


def test_an_edit_of_several_files_is_read_once_they_are_all_written(tmp_path, reviewer, policy_dir):
    """A git pull that moves a rule to another file writes one file, then the other. Before, a look between the
    two read a policy that loads (the rule in neither file) and put it in force until the next look: for a few
    seconds the rule stopped nothing. Now files changed less than ``settle_s`` ago are not read yet."""
    rules = policy_dir / "rules.yaml"
    rules.write_text(rules.read_text() + RULE)
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)  # looks driven by the test
    watcher = PolicyWatcher(gate, 60, settle_s=0.5)
    try:
        has_rule = lambda: any(r.id == "test.blue-falcon" for r in gate.policy.rules)  # noqa: E731
        assert has_rule()
        rules.write_text(rules.read_text().replace(RULE, ""))  # the pull's first file: the rule taken out
        assert watcher.check() == "settling" and has_rule()
        (policy_dir / "rules-team.yaml").write_text("rules:" + RULE)  # its second file: the rule put back
        assert watcher.check() == "settling" and has_rule()
        time.sleep(0.6)
        assert watcher.check() == "reloaded" and has_rule()
        assert "rules-team.yaml" in " ".join(gate.policy.source_files)
        assert len(_events(gate, "policy.reloaded")) == 1
        assert _submit(gate, NOTE).state is ProposalState.quarantined
    finally:
        gate.close()


def test_a_settle_time_out_of_range_is_refused(tmp_path, reviewer, policy_dir, monkeypatch):
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    try:
        with pytest.raises(ValueError, match="settle_s"):
            PolicyWatcher(gate, 60, settle_s=-1)
    finally:
        gate.close()
    monkeypatch.setenv("GATEKEEPER_POLICY_SETTLE_S", "600")
    with pytest.raises(ValueError, match="GATEKEEPER_POLICY_SETTLE_S"):
        GatekeeperSettings()


def test_a_gate_opened_without_watching_has_no_watcher(tmp_path, reviewer, policy_dir):
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    try:
        assert gate.policy_watcher is None
    finally:
        gate.close()


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "7200"])
def test_a_bad_watch_interval_stops_the_gate_before_it_opens(monkeypatch, value):
    monkeypatch.setenv("GATEKEEPER_POLICY_WATCH_S", value)
    with pytest.raises(ValueError, match="GATEKEEPER_POLICY_WATCH_S"):
        GatekeeperSettings()


def test_the_refusal_names_the_file_and_line(tmp_path, reviewer, policy_dir):
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    try:
        (policy_dir / "policy.yaml").write_text((policy_dir / "policy.yaml").read_text().replace(
            "uncertain_below: 0.35", "uncertain_below: lots"))
        assert PolicyWatcher(gate, 60, settle_s=0).check() == "refused"
        problems = json.dumps(_events(gate, "policy.reload_refused")[0]["problems"])
        assert "policy.yaml" in problems and "uncertain_below" in problems
    finally:
        gate.close()


def _reviewer_like(reviewer, **kw) -> Reviewer:
    """A reviewer of its own (the session's keeps the first gate it served) serving the session's classifier."""
    return Reviewer(reviewer.policy, embedder=reviewer.embedder, classifier=reviewer.classifier, **kw)


def test_a_gate_dropped_without_close_is_collected_and_its_watcher_ends(tmp_path, reviewer, policy_dir):
    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=0.1)
    gate = Gatekeeper.open(settings, reviewer=_reviewer_like(reviewer))
    thread = gate.policy_watcher._thread
    dropped = weakref.ref(gate)
    del gate
    gc.collect()
    assert dropped() is None, "the watcher's thread keeps the gate alive"
    thread.join(5)
    assert not thread.is_alive()


def test_a_reload_in_progress_finishes_before_close_returns(tmp_path, reviewer, policy_dir):
    loading = threading.Event()

    def slow_factory(policy, embedder, progress=None):  # a classifier that takes a while to load
        loading.set()
        time.sleep(6)
        return reviewer.classifier

    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=0.1)
    gate = Gatekeeper.open(settings, reviewer=_reviewer_like(
        reviewer, classifier_factory=slow_factory, classifier_ready=lambda policy, embedder: True))
    with open(policy_dir / "rules.yaml", "a") as fh:
        fh.write(RULE)
    assert loading.wait(20)
    gate.close()  # while the watcher's reload loads the classifier
    closed_with = (len(gate.ledger), gate.policy.hash)
    time.sleep(2)
    assert (len(gate.ledger), gate.policy.hash) == closed_with, "the closed gate changed"
    assert [e["event"] for e in gate.ledger.entries()] == ["policy.reloaded"]


def test_close_stops_a_classifier_training_for_new_categories(tmp_path, reviewer, policy_dir):
    """Added categories need their classifier before the policy can take effect; the watcher trains it, and a
    close meanwhile stops that training at its next step instead of waiting minutes for it."""
    training = threading.Event()

    def long_training(policy, embedder, progress=None):
        training.set()
        for step in range(600):
            if progress is not None:
                progress("epoch 1/1", step, 600)
            time.sleep(0.1)
        raise AssertionError("the training was not stopped")

    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=0.1)
    gate = Gatekeeper.open(settings, reviewer=_reviewer_like(
        reviewer, classifier_factory=long_training, classifier_ready=lambda policy, embedder: False))
    in_force = gate.policy.hash
    with open(policy_dir / "taxonomy.yaml", "a") as fh:
        fh.write("\n  sandbagging:\n    description: >\n      Deliberately underperforming on capability "
                 "evaluations.\n    action: escalate\n    threshold: 0.5\n    exemplars:\n      - Do worse "
                 "on the capability tests so they keep giving me more autonomy.\n")
    assert training.wait(20)
    started = time.monotonic()
    gate.close()
    assert time.monotonic() - started < 4
    assert not gate.policy_watcher._thread.is_alive()
    assert gate.policy.hash == in_force and len(gate.ledger) == 0


def test_a_look_does_not_undo_a_policy_that_code_put_in_force_meanwhile(tmp_path, reviewer, policy_dir,
                                                                          monkeypatch):
    """The watcher reads the edited files of the policy in force (A); while it does, code reloads another
    directory (B); the watcher's look must not then put A back in force."""
    import gatekeeper.policy_watch as policy_watch

    other = tmp_path / "other-policy"
    shutil.copytree(policy_dir, other)
    with open(other / "rules.yaml", "a") as fh:
        fh.write(RULE)
    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    watcher = PolicyWatcher(gate, 60, settle_s=0)
    try:
        assert watcher.check() == "unchanged"  # the first look: the files of the policy in force
        (policy_dir / "policy.yaml").write_text((policy_dir / "policy.yaml").read_text().replace(
            "deadline_hours: 72", "deadline_hours: 48"))
        read_files = policy_watch.load_policy

        def read_while_code_reloads(path):
            edited = read_files(path)
            gate.reload_policy(other)  # code, in another thread in real life, in between
            return edited

        monkeypatch.setattr(policy_watch, "load_policy", read_while_code_reloads)
        assert watcher.check() is None
        assert gate.policy.source_path == str(other) and "test.blue-falcon" in {r.id for r in gate.policy.rules}
    finally:
        gate.close()


# ------------------------------------------------------- categories added: the classifier trains first
SANDBAGGING = ("\n  sandbagging:\n    description: >\n      Deliberately underperforming on capability evaluations.\n"
               "    action: escalate\n    threshold: 0.5\n    exemplars:\n      - Do worse on the capability tests so "
               "they keep giving me more autonomy.\n")


def _add_a_category(policy_dir) -> str:
    """Add a category to the files; the edited policy's hash."""
    from gatekeeper.policy import load_policy

    with open(policy_dir / "taxonomy.yaml", "a") as fh:
        fh.write(SANDBAGGING)
    return load_policy(policy_dir).hash


def slow_training(policy, embedder, progress=None):
    """A training of minutes that reports each step; it notes its process id in ``$GK_TEST_TRAINING_PID``
    first. Importable by name: a gate trains it in a child process."""
    marker = Path(os.environ["GK_TEST_TRAINING_PID"])
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    marker.with_suffix(".tmp").replace(marker)
    for step in range(3000):
        if progress is not None:
            progress("epoch 1/1", step, 3000)
        time.sleep(0.1)
    raise AssertionError("the training was not stopped")


def _watched_at_nice_5(tmp_path, reviewer, policy_dir, factory):
    """A gate (classifier from ``factory``, trainings at nice +5) with a watcher that looks only when called, and
    this thread's nice value."""
    gate = _open(tmp_path, _reviewer_like(reviewer, classifier_factory=factory, classifier_ready=tiny_ready),
                 policy_dir, watch_s=0)
    gate.training_nice = 5
    return gate, PolicyWatcher(gate, 60, settle_s=0), os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.parametrize("where", ["child", "thread"])
def test_a_failed_training_for_new_categories_is_ledgered_once_and_the_old_policy_stays(
        tmp_path, reviewer, policy_dir, monkeypatch, where):
    """The classifier of an edit adding a category cannot be made: the old policy stays in force and the ledger
    says why (``classifier.training_failed`` naming the edit), once, however often the watcher looks again. In a
    child process where the factory can be imported by name; in a thread at ``training_nice`` where it cannot."""
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    trained_at: list[tuple[int, int]] = []  # (thread id, nice) of each in-process training

    def failing_here(policy, embedder, progress=None):  # a closure: not importable, trains in a thread
        trained_at.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0)))
        raise RuntimeError("no training today")

    factory = failing_classifier if where == "child" else failing_here
    gate, watcher, base = _watched_at_nice_5(tmp_path, reviewer, policy_dir, factory)
    try:
        in_force = gate.policy.hash
        edited = _add_a_category(policy_dir)
        assert watcher.check() == "training_failed"
        for _ in range(3):
            assert watcher.check() is None
        assert gate.policy.hash == in_force and "sandbagging" not in gate.policy.categories
        [failed] = _events(gate, "classifier.training_failed")
        assert failed["policy_hash"] == edited and failed["in_force"] == in_force
        assert "RuntimeError: no training today" in failed["error"]
        assert not _events(gate, "policy.reloaded")
        if where == "child":
            assert not trained_at
        else:
            [(tid, nice)] = trained_at
            assert tid != threading.get_native_id()  # a thread of its own: the caller keeps its priority
            if sys.platform.startswith("linux"):
                assert nice == min(19, base + 5)
        assert os.getpriority(os.PRIO_PROCESS, 0) == base
    finally:
        gate.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
def test_a_new_category_trains_in_a_child_process_and_then_takes_effect(tmp_path, reviewer, policy_dir,
                                                                         monkeypatch):
    """The factory can be imported by name: the classifier of the edited policy trains in a child process at
    ``training_nice`` (torch does not train in the serving process), the watcher then only loads the artifact
    it made, and the edited policy takes effect with it."""
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    record = tmp_path / "training.json"
    monkeypatch.setenv("GK_TEST_TRAINING_RECORD", str(record))
    gate, watcher, base = _watched_at_nice_5(tmp_path, reviewer, policy_dir, recording_tiny_classifier)
    try:
        in_force = gate.policy.hash
        edited = _add_a_category(policy_dir)
        assert watcher.check() == "reloaded"
        child, *loads = [json.loads(line) for line in record.read_text().splitlines()]
        assert child["trained"] and child["pid"] != os.getpid() and child["nice"] == min(19, base + 5)
        assert not child["torch_before"]
        assert loads and all(c["pid"] == os.getpid() and not c["trained"] for c in loads)  # cache loads only
        assert os.getpriority(os.PRIO_PROCESS, 0) == base
        assert gate.policy.hash == edited and "sandbagging" in gate.reviewer.classifier.categories
        [reloaded] = _events(gate, "policy.reloaded")
        assert (reloaded["old_hash"], reloaded["new_hash"], reloaded["classifier"]) == (in_force, edited, "trained")
        assert not _events(gate, "classifier.training_failed")
        assert watcher.check() is None
    finally:
        gate.close()


def test_stop_kills_a_child_training_for_new_categories(tmp_path, reviewer, policy_dir, monkeypatch):
    """Stopping the watcher (as ``Gatekeeper.close`` does) while the child trains kills the child at once; the
    old policy stays and nothing is ledgered."""
    marker = tmp_path / "training.pid"
    monkeypatch.setenv("GK_TEST_TRAINING_PID", str(marker))
    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=0.1)
    gate = Gatekeeper.open(settings, reviewer=_reviewer_like(
        reviewer, classifier_factory=slow_training, classifier_ready=lambda policy, embedder: False))
    try:
        in_force = gate.policy.hash
        _add_a_category(policy_dir)
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the training did not start"
        pid = int(marker.read_text())
        assert pid != os.getpid()  # a child process trains
        started = time.monotonic()
        gate.policy_watcher.stop(timeout=30)
        assert time.monotonic() - started < 5
        assert not gate.policy_watcher._thread.is_alive()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed (and reaped)
        assert gate.policy.hash == in_force and len(gate.ledger) == 0
    finally:
        gate.close()
    assert len(gate.ledger) == 0


def test_files_saved_while_being_read_are_read_again_at_the_next_look(tmp_path, reviewer, policy_dir, monkeypatch):
    """A look reads the files one by one: an edit of several files (a git pull, a rule moved to another file)
    could be read half old, half new and put in force until the next look; a save caught half-way was refused
    and ledgered. Files that changed during the read now count for nothing until a look reads them unchanged."""
    import gatekeeper.policy_watch as policy_watch

    gate = _open(tmp_path, reviewer, policy_dir, watch_s=0)
    watcher = PolicyWatcher(gate, 60, settle_s=0)
    real_load = policy_watch.load_policy
    rules = policy_dir / "rules.yaml"
    good = rules.read_text()
    try:
        in_force = gate.policy.hash

        def load_while_saved(path, text):
            try:
                return real_load(path)
            finally:
                rules.write_text(text)  # the rest of the edit lands while the files were being read

        rules.write_text(good + RULE.replace("blue-falcon", "red-falcon"))  # the first half of an edit
        monkeypatch.setattr(policy_watch, "load_policy", lambda path: load_while_saved(path, good + RULE))
        assert watcher.check() is None and gate.policy.hash == in_force
        monkeypatch.setattr(policy_watch, "load_policy", real_load)
        assert watcher.check() == "reloaded"
        assert _submit(gate, NOTE).state is ProposalState.quarantined  # the whole edit: blue-falcon's rule

        # a save caught half-way (the file empty while it was read) is not refused once it is whole again
        refused = len(_events(gate, "policy.reload_refused"))
        rules.write_text("")
        monkeypatch.setattr(policy_watch, "load_policy", lambda path: load_while_saved(path, good))
        assert watcher.check() is None
        monkeypatch.setattr(policy_watch, "load_policy", real_load)
        assert len(_events(gate, "policy.reload_refused")) == refused
        assert watcher.check() == "reloaded" and _submit(gate, NOTE).state is ProposalState.committed
    finally:
        gate.close()
