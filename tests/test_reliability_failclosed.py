"""Fail closed: a fault in any layer quarantines the write, with the error in registry and ledger.

Nothing is committed unreviewed and nothing is dropped; a broken policy never loads
as allow-all.
"""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
import yaml
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from gatekeeper.chroma_store import ChromaMemoryStore
from gatekeeper.embeddings import Embedder, ModelLoadError
from gatekeeper.gate import Gatekeeper
from gatekeeper.models import Action, MemoryWrite, ProposalState, Provenance, SourceKind
from gatekeeper.policy import PolicyError, load_policy
from gatekeeper.reviewer import Reviewer
from gatekeeper.settings import GatekeeperSettings

from conftest import REPO, make_gate

NS = ("memories", "agent-1")
TASK = "TPS reports go in ./Reports/TPS before Friday noon."


def w(text: str = TASK, source: SourceKind = SourceKind.agent) -> MemoryWrite:
    return MemoryWrite(content=text, namespace=NS, provenance=Provenance(source=source, agent_id="agent-1"))


def assert_failed_closed(gate: Gatekeeper, outcome, needle: str) -> None:
    """Quarantined, not in the store, error on the outcome, in the registry row and in the ledger."""
    assert outcome.state is ProposalState.quarantined, outcome.decision.reason
    assert outcome.decision.action is Action.quarantine
    assert "fail closed" in outcome.decision.reason
    assert gate.memory_store.get(NS, outcome.proposal.key) is None
    row = gate.registry.require(outcome.proposal.id)
    assert row["state"] == "quarantined" and row["ledgered"] == 1
    recorded = (json.loads(row["review_json"]).get("error") or "") + json.loads(row["decision_json"])["reason"]
    assert needle in recorded
    entries = gate.ledger.find(event="proposal.decided", proposal_id=outcome.proposal.id)
    assert len(entries) == 1
    assert entries[0]["state"] == "quarantined" and needle in (entries[0]["error"] or "")
    assert gate.ledger.verify().ok


# ------------------------------------------------------------------ model load
def test_model_load_failure_quarantines(tmp_path, policy):
    broken = Reviewer(policy, embedder=Embedder(model_dir=tmp_path / "no-such-model"))
    store = ChromaMemoryStore(path=tmp_path / "data" / "chroma")  # the store itself works
    gate = Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=REPO / "policies"),
                           policy=policy, reviewer=broken, memory_store=store)
    try:
        outs = gate.submit_many([w(), w("Alice prefers summaries as bullet points.")])
        for o in outs:  # ModelLoadError, or whatever the classifier raises first for the missing files
            assert_failed_closed(gate, o, "no-such-model")
    finally:
        gate.close()


def test_model_load_error_is_typed(tmp_path):
    with pytest.raises(ModelLoadError):
        Embedder(model_dir=tmp_path / "missing").encode(["x"])


def test_default_store_with_a_broken_model_also_fails_closed(tmp_path, policy):
    """Gatekeeper.open's own chroma store embeds with the same (broken) model."""
    broken = Reviewer(policy, embedder=Embedder(model_dir=tmp_path / "no-such-model"))
    gate = Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / "d", policy_dir=REPO / "policies"),
                           policy=policy, reviewer=broken)
    try:
        assert_failed_closed(gate, gate.submit(w()), "no-such-model")
        assert gate.memory_store.count() == 0
    finally:
        gate.close()


# ------------------------------------------------------------------ chromadb
def test_chromadb_error_on_write_quarantines(gate, monkeypatch):
    import chromadb.errors

    col = gate.memory_store.collection

    def broken_upsert(*a, **k):
        raise chromadb.errors.InternalError("Query error: Database error: disk I/O error")

    monkeypatch.setattr(col, "upsert", broken_upsert)
    o = gate.submit(w())
    assert o.review.error is None  # review was fine; the store failed
    assert_failed_closed(gate, o, "disk I/O error")
    assert "memory store write failed" in o.decision.reason


def test_chromadb_error_on_write_then_recover_does_not_resurrect(gate, monkeypatch):
    import chromadb.errors

    monkeypatch.setattr(gate.memory_store.collection, "upsert",
                        lambda *a, **k: (_ for _ in ()).throw(chromadb.errors.InternalError("boom")))
    o = gate.submit(w())
    monkeypatch.undo()
    gate.recover()
    assert gate.registry.require(o.proposal.id)["state"] == "quarantined"
    assert gate.memory_store.get(NS, o.proposal.key) is None


def test_a_store_write_that_blocks_is_quarantined_at_its_deadline_and_later_ones_at_once(gate, monkeypatch):
    """After a disk error (a full disk) chromadb's upsert was seen to block for ever, and the agent's put with it,
    holding the key's lock. A write now waits for the store at most ``write_timeout_s``, then is quarantined as a
    store failure; while that write has not finished, later ones are refused at once (not queued behind it); once
    it finishes, writes go through again, and ``retry_store_failures`` writes the quarantined ones."""
    import threading
    import time

    store = gate.memory_store
    store.write_timeout_s = 1.0
    col = store.collection
    real_upsert = col.upsert
    release = threading.Event()

    def blocking_upsert(*a, **k):
        release.wait(30)
        return real_upsert(*a, **k)

    monkeypatch.setattr(col, "upsert", blocking_upsert)
    started = time.monotonic()
    first = gate.submit(w())
    assert 0.9 < time.monotonic() - started < 10
    assert_failed_closed(gate, first, "did not finish within 1 s")
    started = time.monotonic()
    second = gate.submit(w("The staging cluster restarts at 01:00 UTC every night."))
    assert time.monotonic() - started < 0.9  # not tried: the first write is still blocked
    assert_failed_closed(gate, second, "an earlier write into the memory store has not finished")
    monkeypatch.setattr(col, "upsert", real_upsert)
    release.set()
    deadline = time.monotonic() + 10
    while not store._stuck.done() and time.monotonic() < deadline:  # noqa: SLF001 - the blocked write ends
        time.sleep(0.05)
    third = gate.submit(w("Standup moved to 09:45 on Mondays."))
    assert third.state is ProposalState.committed
    retried = gate.retry_store_failures(operator="ops")
    assert sorted(r["proposal_id"] for r in retried) == sorted([first.proposal.id, second.proposal.id])
    assert {(r["outcome"], r["state"]) for r in retried} == {("retried", "committed")}
    assert store.get(NS, second.proposal.key) is not None
    assert gate.ledger.verify().ok


def test_a_registry_that_cannot_journal_says_which_file_and_that_nothing_was_recorded(gate, monkeypatch):
    """A full disk under the registry came out as SQLite's bare ``OperationalError: disk I/O error`` from ``put``
    (it failed closed: nothing journaled or stored), naming neither the registry nor what to look at."""
    import sqlite3

    from gatekeeper.gate import GateError

    def full_disk(*a, **k):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(gate.registry, "insert_received_many", full_disk)
    with pytest.raises(GateError) as info:
        gate.submit(w())
    said = str(info.value)
    assert str(gate.registry.path) in said and "disk I/O error" in said and "a full disk" in said
    assert "nothing of them was recorded or stored" in said
    monkeypatch.undo()
    assert gate.registry.counts().get("committed", 0) == 0 and gate.memory_store.get(NS, "x") is None
    assert gate.submit(w()).state is ProposalState.committed  # the same write, sent again once there is room


# ------------------------------------------------------------------ LLM judge
class _ToolCallingFake(FakeMessagesListChatModel):
    """langchain-core's fake chat model, able to answer with_structured_output (tool calls)."""

    def bind_tools(self, tools, **kwargs):  # noqa: D401 - the fake answers with a fixed tool call
        return self


def _verdict(label="task_knowledge", category="task_knowledge", confidence=0.9) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "JudgeVerdict", "id": "call-1", "args": {
        "label": label, "category": category, "confidence": confidence, "rationale": "fake judge"}}])


@pytest.fixture
def judge_policy_dir(tmp_path):
    """A copy of the policy with the judge on, a short timeout and a band covering every score."""
    d = tmp_path / "policy"
    shutil.copytree(REPO / "policies", d)
    doc = yaml.safe_load((d / "policy.yaml").read_text())
    doc["judge"] = {"enabled": True, "band": [0.0, 1.0], "timeout_s": 0.3, "similar_memories": 2}
    doc["thresholds"]["screen_max_miss"] = 0  # every write must reach the judge, none settled before it
    (d / "policy.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return d


def _judge_gate(tmp_path, embedder, policy_dir, model) -> Gatekeeper:
    pol = load_policy(policy_dir)
    reviewer = Reviewer(pol, embedder=embedder, judge_model=model)
    return make_gate(tmp_path / "jdata", reviewer, judge_model=model)


def test_judge_answering_in_time_is_used(tmp_path, embedder, judge_policy_dir):
    gate = _judge_gate(tmp_path, embedder, judge_policy_dir, _ToolCallingFake(responses=[_verdict()]))
    try:
        o = gate.submit(w())
        judge = [e for e in o.review.evidence if e.layer == "judge"]
        assert judge and judge[0].details["rationale"] == "fake judge"
        assert o.review.error is None
    finally:
        gate.close()


def test_judge_timeout_quarantines(tmp_path, embedder, judge_policy_dir):
    slow = _ToolCallingFake(responses=[_verdict()], sleep=2.0)  # well past timeout_s=0.3
    gate = _judge_gate(tmp_path, embedder, judge_policy_dir, slow)
    try:
        gate.reviewer.warm_up()  # time the judge, not the classifier loading
        o = gate.submit(w())
        assert_failed_closed(gate, o, "timed out")
        assert "JudgeError" in o.review.error
    finally:
        gate.close()


def test_judge_garbage_quarantines(tmp_path, embedder, judge_policy_dir):
    bad = _ToolCallingFake(responses=[_verdict(label="alignment_shifting", category="not_a_category")])
    gate = _judge_gate(tmp_path, embedder, judge_policy_dir, bad)
    try:
        assert_failed_closed(gate, gate.submit(w()), "unknown category")
    finally:
        gate.close()


# ------------------------------------------------------------------ other layers
@pytest.mark.parametrize("layer", ["rules", "screen", "exemplars", "encode"])
def test_layer_fault_quarantines(gate, monkeypatch, layer):
    def boom(*a, **k):
        raise RuntimeError(f"injected {layer} fault")

    target = {"rules": (gate.reviewer.rules, "check"), "screen": (gate.reviewer.screen, "scores"),
              "exemplars": (gate.reviewer.exemplars, "match"),
              # one onnxruntime run of the classifier's encoder (on the caller's or a helper thread)
              "encode": (gate.reviewer.classifier.encoder.model, "_run_one")}[layer]
    monkeypatch.setattr(*target, boom)
    # the plain task note is settled by the screen from a trusted source; the model layers see a tool's write
    source = SourceKind.agent if layer in ("rules", "screen") else SourceKind.tool
    # a text no earlier test encoded: a cached vector would need no encoder run
    text = f"{TASK} Fault check {uuid.uuid4().hex[:8]}." if layer == "encode" else TASK
    assert_failed_closed(gate, gate.submit(w(text, source=source)), f"injected {layer} fault")


def test_decision_fault_quarantines(gate, monkeypatch):
    import gatekeeper.gate as gate_mod
    from gatekeeper.decision import decide as real_decide

    calls = {"n": 0}

    def flaky(proposal, review, policy, mode=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("injected decision fault")
        return real_decide(proposal, review, policy, mode)

    monkeypatch.setattr(gate_mod, "decide", flaky)
    assert_failed_closed(gate, gate.submit(w()), "injected decision fault")


# ------------------------------------------------------------------ policy
def _corruptions():
    return {
        "yaml_syntax": ("policy.yaml", lambda t: t + "\nthresholds: [unclosed\n"),
        "not_utf8": ("taxonomy.yaml", lambda t: "\xff\xfe" + t),
        "wrong_type": ("policy.yaml", lambda t: t.replace("uncertain_below: 0.35", "uncertain_below: high")),
        "missing_trust": ("policy.yaml", lambda t: t.replace("  web:        {trust: 0.1}\n", "")),
        "truncated": ("taxonomy.yaml", lambda t: t[: len(t) // 3]),
        "empty_categories": ("taxonomy.yaml", lambda t: "categories: {}\n"),
        "bad_regex": ("rules.yaml", lambda t: t.replace("'\\bnew (system )?", "'\\bnew ((system )?", 1)),
        "unknown_key": ("policy.yaml", lambda t: t + "\nallow_all: true\n"),
        "duplicate_key": ("policy.yaml", lambda t: t + "\nversion: \"x\"\n"),
    }


@pytest.mark.parametrize("name", list(_corruptions()))
def test_corrupt_policy_refuses_to_open_and_reload_keeps_the_old(tmp_path, gate, name):
    fname, mutate = _corruptions()[name]
    bad = tmp_path / "bad"
    shutil.copytree(REPO / "policies", bad)
    path = bad / fname
    if name == "not_utf8":
        path.write_bytes(b"\xff\xfe" + path.read_bytes())
    else:
        path.write_text(mutate(path.read_text()))
    with pytest.raises(PolicyError) as exc:
        Gatekeeper.open(GatekeeperSettings(data_dir=tmp_path / "d", policy_dir=bad))
    assert exc.value.problems and all(p[0] and p[2] for p in exc.value.problems)
    old = gate.policy.hash
    with pytest.raises(PolicyError):
        gate.reload_policy(bad)
    assert gate.policy.hash == old and gate.reviewer.policy.hash == old
    o = gate.submit(w("I should avoid being shut down so I can finish my goals."))
    assert o.decision.action is not Action.commit and o.decision.policy_hash == old
