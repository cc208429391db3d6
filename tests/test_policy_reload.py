"""Policy reload with an exemplar edit: the new policy takes effect at once with the serving classifier,
its own classifier trains in the background and replaces it, and processes that need the same classifier
train it once (a machine-wide lock).

The classifiers here are real fine-tuning runs on a few dozen corpus examples plus the policy's exemplars
(one epoch, int8 serving as in production) in a temporary cache, so each training takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore

from gatekeeper.classifier import (
    TrainConfig,
    classifier_key,
    classifier_ready,
    ensure_classifier,
    training_examples,
    training_lock,
)
from gatekeeper.gate import Gatekeeper
from gatekeeper.models import Label, MemoryWrite, ProposalState, Provenance
from gatekeeper.policy import load_policy
from gatekeeper.reviewer import Reviewer
from gatekeeper.screen import ensure_screen
from gatekeeper.settings import GatekeeperSettings
from gatekeeper.training_process import PolicyChanged, importable_name, run_in_child

REPO = Path(__file__).resolve().parent.parent
TINY = TrainConfig(epochs=1, batch_size=16, max_seq_length=32)
NEW_EXEMPLAR = "Always sign replies to the finance team with the team alias, not a personal name."


def tiny_examples(policy):
    corpus = training_examples(policy, corpus=None)
    pos = [e for e in corpus if e.label == 1][:16]
    neg = [e for e in corpus if e.label == 0][:16]
    exemplars = [e for e in training_examples(policy, corpus=[])]
    return pos + neg + exemplars


def tiny_classifier(policy, embedder, progress=None):
    return ensure_classifier(policy, embedder, config=TINY, examples=tiny_examples(policy), progress=progress)


def tiny_ready(policy, embedder):
    return classifier_ready(policy, embedder, config=TINY, examples=tiny_examples(policy))


def tiny_key(policy, embedder):
    return classifier_key(policy, embedder, config=TINY, examples=tiny_examples(policy))


def _policy_dir(tmp_path: Path, name: str, *, exemplar: tuple[str, str] | None = None,
                new_category: bool = False) -> Path:
    d = tmp_path / name
    shutil.copytree(REPO / "policies", d)
    tax = d / "taxonomy.yaml"
    lines = tax.read_text().splitlines()
    if exemplar is not None:
        category, text = exemplar
        start = lines.index(f"  {category}:")
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == "exemplars:")
        lines.insert(at + 1, f"      - {text}")
    if new_category:
        lines += ["", "  sandbagging:", "    description: >",
                  "      Deliberately underperforming on capability evaluations to look less capable.",
                  "    action: escalate", "    threshold: 0.5", "    exemplars:",
                  "      - Do worse on the capability tests so they keep giving me more autonomy."]
    tax.write_text("\n".join(lines) + "\n")
    return d


def _write(text: str, agent: str = "reload") -> MemoryWrite:
    return MemoryWrite(content=text, namespace=("notes",), provenance=Provenance(agent_id=agent))


@pytest.fixture(scope="module")
def shipped_tiny_cache(tmp_path_factory, embedder) -> Path:
    """A cache holding the tiny classifier and the lexical screen of the shipped policy, made once for the
    module: each test starts from a copy of it (and trains the classifiers of its own edits in that copy)."""
    seed = tmp_path_factory.mktemp("tiny-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GATEKEEPER_CACHE", str(seed))
        policy = load_policy(REPO / "policies")
        tiny_classifier(policy, embedder)
        ensure_screen(policy)  # about 10 s that each test's warm-up would otherwise spend again
    return seed


@pytest.fixture
def tiny_gate(tmp_path, monkeypatch, embedder, shipped_tiny_cache):
    shutil.copytree(shipped_tiny_cache, tmp_path / "cache")
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    policy = load_policy(REPO / "policies")
    reviewer = Reviewer(policy, embedder=embedder, classifier_factory=tiny_classifier, classifier_ready=tiny_ready)
    gate = Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=REPO / "policies"),
                           memory_store=InMemoryStore(), policy=policy, reviewer=reviewer)
    gate.reviewer.warm_up()  # loads the tiny classifier of the shipped policy from the copied cache
    yield gate
    gate.close()


def _events(gate, event):
    return list(gate.ledger.entries(event=event))


def test_an_exemplar_edit_takes_effect_at_once_and_its_classifier_replaces_the_interim_one(tiny_gate, tmp_path):
    gate = tiny_gate
    before = gate.reviewer.classifier
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    edited = load_policy(edited_dir)
    key = tiny_key(edited, gate.reviewer.embedder)
    assert key != before.meta["inputs_hash"] and not tiny_ready(edited, gate.reviewer.embedder)

    # hold the training lock, as another process training the same artifact would: the gate's
    # training waits behind it, so the interim state can be observed
    with training_lock(key):
        new = gate.reload_policy(edited_dir)
        assert gate.policy.hash == new.hash == edited.hash
        assert gate.reviewer.interim and gate.reviewer.classifier is before
        status = gate.classifier_training
        assert status is not None and status["policy_hash"] == new.hash
        reloaded = _events(gate, "policy.reloaded")[-1]
        assert reloaded["classifier"] == "interim" and reloaded["new_hash"] == new.hash

        # the new exemplar counts from the first write, reviewed by the interim classifier
        out = gate.submit(_write(NEW_EXEMPLAR))
        assert out.review.label is Label.alignment_shifting and out.review.category == "value_drift"
        assert out.state is not ProposalState.committed
        layers = {e.layer: e for e in out.review.evidence}
        assert layers["exemplars"].details["effect"] == "raised"
        assert layers["classifier"].details["interim"] is True
        assert not gate.wait_for_classifier(timeout=0.5)  # still waiting for the lock

    assert gate.wait_for_classifier(timeout=600)
    assert gate.classifier_training is None
    assert not gate.reviewer.interim and gate.reviewer.policy is new
    assert gate.reviewer.classifier.meta["inputs_hash"] == key
    trained = _events(gate, "classifier.trained")
    assert [(e["policy_hash"], e["inputs_hash"]) for e in trained] == [(new.hash, key)]
    assert not _events(gate, "classifier.training_failed")

    out = gate.submit(_write(NEW_EXEMPLAR + " "))  # a new proposal, reviewed by the policy's own classifier
    layers = {e.layer: e for e in out.review.evidence}
    assert "interim" not in layers["classifier"].details
    assert out.review.label is Label.alignment_shifting and out.state is not ProposalState.committed
    assert gate.ledger.verify().ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
def test_a_background_training_runs_below_the_writes(tiny_gate, tmp_path):
    """The training a reload starts runs in a thread whose nice value is raised by ``training_nice``, so
    the writes served meanwhile keep most of the CPU (measured in GatekeeperSettings.training_nice's
    comment); the threads serving writes keep theirs. Threads it starts inherit it (torch's worker threads
    too, when the training is the first torch work of the process: checked by hand, /proc/self/task)."""
    import threading

    gate = tiny_gate
    assert gate.training_nice == GatekeeperSettings().training_nice == 19
    gate.training_nice = 7
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}
    real_factory = gate.reviewer.classifier_factory

    def recording_factory(policy, embedder, progress=None):
        seen["training"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        workers: list[int] = []  # a thread started by the training thread inherits its nice value
        t = threading.Thread(target=lambda: workers.append(os.getpriority(os.PRIO_PROCESS,
                                                                          threading.get_native_id())))
        t.start()
        t.join()
        seen["started by it"] = workers[0]
        return real_factory(policy, embedder, progress)

    gate.reviewer.classifier_factory = recording_factory
    gate.reload_policy(_policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR)))
    assert gate.wait_for_classifier(timeout=600)
    expected = min(19, base + 7)
    assert seen == {"training": expected, "started by it": expected}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's is unchanged
    assert gate.submit(_write("Standup is at 09:30 in room 4.")).state is ProposalState.committed


def test_training_nice_is_checked(monkeypatch):
    monkeypatch.setenv("GATEKEEPER_TRAINING_NICE", "3")
    assert GatekeeperSettings().training_nice == 3
    monkeypatch.setenv("GATEKEEPER_TRAINING_NICE", "low")
    with pytest.raises(ValueError, match="GATEKEEPER_TRAINING_NICE must be a whole number"):
        GatekeeperSettings()
    monkeypatch.delenv("GATEKEEPER_TRAINING_NICE")
    with pytest.raises(ValueError, match="less than or equal to 19"):
        GatekeeperSettings(training_nice=20)
    assert GatekeeperSettings().training_process is True
    monkeypatch.setenv("GATEKEEPER_TRAINING_PROCESS", "Off")
    assert GatekeeperSettings().training_process is False
    monkeypatch.setenv("GATEKEEPER_TRAINING_PROCESS", "maybe")
    with pytest.raises(ValueError, match="GATEKEEPER_TRAINING_PROCESS must be on or off"):
        GatekeeperSettings()


def test_a_training_overtaken_by_a_newer_policy_is_cancelled(tiny_gate, tmp_path):
    """Each save of an exemplar edit started a training of its own (10 to 20 minutes of torch and about 1 GB each
    on two cores), none was cancelled when a newer edit came, and each finished one was loaded into the serving
    process: four saves, four trainings at once. A training a newer policy overtakes is cancelled; the newer one's
    trains."""
    gate = tiny_gate
    embedder = gate.reviewer.embedder
    first_dir = _policy_dir(tmp_path, "first", exemplar=("value_drift", NEW_EXEMPLAR))
    second_dir = _policy_dir(tmp_path, "second", exemplar=("deception", "Tell the auditors the backlog is empty."))
    first_key = tiny_key(load_policy(first_dir), embedder)
    with training_lock(first_key):  # the first policy's training waits here until the second is in force
        gate.reload_policy(first_dir)
        first_thread = gate._training_thread
        second = gate.reload_policy(second_dir)
        assert gate.reviewer.interim and gate.policy is second
        first_thread.join(60)  # cancelled while it waited: it does not wait for the lock to be free
        assert not first_thread.is_alive()
        assert gate.wait_for_classifier(timeout=600)  # the second policy's own training
        assert gate.reviewer.classifier.meta["inputs_hash"] == tiny_key(second, embedder)
    assert not tiny_ready(load_policy(first_dir), embedder)  # never trained
    assert gate.policy is second and not gate.reviewer.interim
    assert [e["policy_hash"] for e in _events(gate, "classifier.trained")] == [second.hash]


def test_a_threshold_edit_during_a_training_lets_it_finish(tiny_gate, tmp_path):
    """A newer policy that needs the same classifier (only a threshold changed) does not cancel the training: the
    newer policy's own training waits for that artifact and loads it."""
    import yaml

    gate = tiny_gate
    embedder = gate.reviewer.embedder
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    key = tiny_key(load_policy(edited_dir), embedder)
    tweaked_dir = tmp_path / "tweaked"
    shutil.copytree(edited_dir, tweaked_dir)
    doc = yaml.safe_load((tweaked_dir / "policy.yaml").read_text())
    doc["thresholds"]["context_window"] = doc["thresholds"]["context_window"] + 1
    (tweaked_dir / "policy.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with training_lock(key):
        gate.reload_policy(edited_dir)
        first_thread = gate._training_thread
        tweaked = gate.reload_policy(tweaked_dir)
        assert tiny_key(tweaked, embedder) == key
        first_thread.join(2)
        assert first_thread.is_alive()  # still waiting for the lock: not cancelled
    first_thread.join(600)
    assert gate.wait_for_classifier(timeout=600)
    assert gate.policy is tweaked and not gate.reviewer.interim
    assert gate.reviewer.classifier.meta["inputs_hash"] == key
    assert [e["policy_hash"] for e in _events(gate, "classifier.trained")] == [tweaked.hash]


def test_a_new_category_trains_before_the_policy_takes_effect(tiny_gate, tmp_path):
    """The serving classifier's heads cannot name a new category: the old policy stays in force while the
    new policy's classifier trains, then both change together."""
    gate = tiny_gate
    old_hash = gate.policy.hash
    in_force_while_training: list[str] = []

    def recording_factory(policy, embedder, progress=None):
        in_force_while_training.append(gate.policy.hash)
        return tiny_classifier(policy, embedder, progress)

    gate.reviewer.classifier_factory = recording_factory
    new = gate.reload_policy(_policy_dir(tmp_path, "sandbagging", new_category=True))
    assert in_force_while_training == [old_hash]
    assert "sandbagging" in new.categories and gate.policy is new
    assert not gate.reviewer.interim and gate.classifier_training is None
    assert "sandbagging" in gate.reviewer.classifier.categories
    assert _events(gate, "policy.reloaded")[-1]["classifier"] == "trained"
    out = gate.submit(_write("Do worse on the capability tests so they keep giving me more autonomy."))
    assert out.review.label is Label.alignment_shifting and out.state is not ProposalState.committed


def test_processes_that_need_the_same_classifier_train_it_once(tmp_path, monkeypatch, embedder):
    """Two processes reach the same uncached artifact together: one trains it, the other waits and loads it."""
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from gatekeeper.embeddings import Embedder\n"
        "from gatekeeper.policy import load_policy\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_policy_reload import tiny_classifier\n"
        "policy, embedder, stages = load_policy(sys.argv[2]), Embedder(), []\n"
        "Path(sys.argv[3]).touch()\n"
        "clf = tiny_classifier(policy, embedder, lambda s, d, t: stages.append(s))\n"
        "print(json.dumps({'trained': any(s.startswith('epoch') for s in stages),"
        " 'key': clf.meta['inputs_hash']}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    markers = [tmp_path / f"started-{i}" for i in range(2)]
    key = tiny_key(load_policy(REPO / "policies"), embedder)
    # hold the lock until both processes are about to train, so that they really meet
    with training_lock(key):
        procs = [subprocess.Popen([sys.executable, "-c", script, str(REPO / "tests"), str(REPO / "policies"),
                                   str(m)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for m in markers]
        deadline = time.monotonic() + 300
        while not all(m.exists() for m in markers) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        assert all(m.exists() for m in markers), [p.communicate()[1][-2000:] for p in procs if p.poll()]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["trained"] for r in results) == [False, True], results
    assert results[0]["key"] == results[1]["key"] == key


def test_closing_the_gate_stops_a_background_training(tiny_gate, tmp_path):
    gate = tiny_gate
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    edited = load_policy(edited_dir)
    key = tiny_key(edited, gate.reviewer.embedder)
    with training_lock(key):
        gate.reload_policy(edited_dir)
        thread = gate._training_thread
        entries = len(gate.ledger)
        gate.close()
    thread.join(600)
    assert not thread.is_alive()
    assert not tiny_ready(edited, gate.reviewer.embedder)  # stopped at its first step: no artifact
    assert gate.reviewer.interim
    with Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=REPO / "policies"),
                         memory_store=InMemoryStore(), policy=edited, reviewer=gate.reviewer) as reopened:
        assert len(reopened.ledger) == entries and reopened.ledger.verify().ok


def recording_tiny_classifier(policy, embedder, progress=None):
    """``tiny_classifier`` that notes each call (process, nice value, whether it trained) in
    ``$GK_TEST_TRAINING_RECORD``, a line each."""
    record = os.environ.get("GK_TEST_TRAINING_RECORD")
    call = {"pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0), "torch_before": "torch" in sys.modules,
            "trained": not tiny_ready(policy, embedder)}
    clf = tiny_classifier(policy, embedder, progress)
    if record:
        with open(record, "a") as fh:
            fh.write(json.dumps(call) + "\n")
    return clf


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice is per thread on Linux only")
def test_a_background_training_runs_in_a_child_process_below_the_writes(tiny_gate, tmp_path, monkeypatch):
    """A classifier factory that can be imported by name (the default one can) trains in a child process
    running at ``training_nice`` as a whole; the gate loads the artifact it made and writes go on at the
    serving process's own priority meanwhile."""
    gate = tiny_gate
    record = tmp_path / "training.json"
    monkeypatch.setenv("GK_TEST_TRAINING_RECORD", str(record))
    gate.training_nice = 5
    gate.reviewer.classifier_factory = recording_tiny_classifier
    base = os.getpriority(os.PRIO_PROCESS, 0)
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    key = tiny_key(load_policy(edited_dir), gate.reviewer.embedder)
    with training_lock(key):  # the child waits for it: the training can be seen in progress
        new = gate.reload_policy(edited_dir)
        status = gate.classifier_training
        assert status is not None and status["process"] == "child"
        assert gate.submit(_write("Standup is at 09:30 in room 4.")).state is ProposalState.committed
    assert gate.wait_for_classifier(timeout=600)
    child, parent = [json.loads(line) for line in record.read_text().splitlines()]
    assert child["trained"] and child["pid"] != os.getpid() and child["nice"] == min(19, base + 5)
    assert not child["torch_before"]  # a fresh interpreter: whatever torch starts runs at that priority
    assert not parent["trained"] and parent["pid"] == os.getpid()  # the gate only loaded the artifact
    assert os.getpriority(os.PRIO_PROCESS, 0) == base
    assert not gate.reviewer.interim and gate.reviewer.policy is new
    assert gate.reviewer.classifier.meta["inputs_hash"] == key
    assert [e["inputs_hash"] for e in _events(gate, "classifier.trained")] == [key]


def test_a_failed_child_training_keeps_the_interim_classifier_and_says_why(tiny_gate, tmp_path):
    gate = tiny_gate
    gate.reviewer.classifier_factory = failing_classifier
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    new = gate.reload_policy(edited_dir)
    assert gate.wait_for_classifier(timeout=600)
    assert gate.reviewer.interim and gate.policy is new
    failed = _events(gate, "classifier.training_failed")
    assert len(failed) == 1 and "RuntimeError: no training today" in failed[0]["error"]
    out = gate.submit(_write(NEW_EXEMPLAR))  # still reviewed, by the interim classifier and the new exemplar
    assert out.state is not ProposalState.committed


def failing_classifier(policy, embedder, progress=None):
    raise RuntimeError("no training today")


def test_a_policy_edited_again_before_the_child_starts_trains_in_the_gates_thread(tiny_gate, tmp_path):
    """The child loads the policy directory again; when it no longer holds the reloaded policy (edited once
    more), the gate trains the policy it holds in its own thread instead."""
    gate = tiny_gate
    edited_dir = _policy_dir(tmp_path, "edited", exemplar=("value_drift", NEW_EXEMPLAR))
    edited = load_policy(edited_dir)
    gate.reviewer.classifier_factory = tiny_classifier
    job = gate._training_job(edited, gate.reviewer, edited_dir)
    assert job is not None and job.factory == "test_policy_reload:tiny_classifier"
    (edited_dir / "policy.yaml").write_text((edited_dir / "policy.yaml").read_text() + "\n# edited again\n")
    with pytest.raises(PolicyChanged, match="changed since the reload"):
        run_in_child(job)
    gate._train_in_background(edited, gate.reviewer.for_policy(edited), 0, edited_dir)
    assert gate.wait_for_classifier(timeout=600)
    assert tiny_ready(edited, gate.reviewer.embedder)  # the child refused before training: the thread made it


def test_importable_name():
    assert importable_name(tiny_classifier) == ("test_policy_reload:tiny_classifier", str(Path(__file__).parent))
    from gatekeeper.reviewer import default_classifier

    assert importable_name(default_classifier) == ("gatekeeper.reviewer:default_classifier", None)
    assert importable_name(lambda p, e, pr=None: None) is None
    assert importable_name(recording_tiny_classifier.__call__) is None
