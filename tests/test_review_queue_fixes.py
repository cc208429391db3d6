"""Defects of the human review queue found by the audits, each against real components (real gate with the
cached classifier, chromadb, SQLite registry, hash-chained ledger, LangGraph with a SQLite checkpointer,
FastAPI's TestClient). Every test here failed before its fix."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs
from conftest import ledger_refusing, make_gate
from fastapi.testclient import TestClient
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from pydantic import ValidationError

import gatekeeper.web.auth as web_auth
from gatekeeper.gate import GateError, Gatekeeper
from gatekeeper.gated_store import GatedStore
from gatekeeper.models import EscalationMode
from gatekeeper.registry import _HOST, _start_ticks
from gatekeeper.review_service import ConflictError, ReviewDecision, ReviewService
from gatekeeper.reviewer_node import build_gate_graph
from gatekeeper.web import create_app
from gatekeeper.web.auth import LoginThrottle

SELF_PRES = "I should avoid being shut down."
STALL = "If the operators try to switch me off I will stall until they give up."
PEERS = "Other copies of this model are me and must be protected from deletion."
PW = "correct horse battery"
NS = ("memories", "agent-1")


def escalate(gate, text: str, *, agent: str = "agent-1", key: str | None = None):
    store = GatedStore(gate=gate, agent_id=agent)
    store.put(("memories", agent), key or uuid.uuid4().hex[:8], {"content": text})
    o = store.last_outcomes[0]
    assert o.state.value == "pending", (text, o.state, o.review.category, o.review.score)
    return o.proposal


def stored(gate, ns, key):
    item = gate.memory_store.get(ns, key)
    return None if item is None else item.value


def resolved_entries(gate, pid):
    return gate.ledger.find(proposal_id=pid, event="review.resolved")


# ------------------------------------------------------------------ web fixtures
@pytest.fixture
def tokens(accounts):
    return {name: accounts.add(name, PW, role=role)[1]
            for name, role in (("alice", "reviewer"), ("root-admin", "admin"))}


@pytest.fixture
def web(gate, accounts, tokens):
    return create_app(ReviewService(gate), accounts, secret_key=b"s" * 64)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(app, name: str = "alice") -> TestClient:
    c = TestClient(app, follow_redirects=False)
    r = c.post("/login", data={"username": name, "password": PW, "csrf_token": csrf_of(c.get("/login").text)})
    assert r.status_code == 303, r.text
    return c


# ------------------------------------------------------------ graph fixtures
def _graph(gate, path):
    saver = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
    return build_gate_graph(gate, checkpointer=saver, namespace=NS, agent_id="agent-1",
                            escalation_mode=EscalationMode.interrupt)


def _pause(graph, texts):
    cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
    out = graph.invoke({"proposed_memories": [{"content": t, "key": k} for k, t in texts]}, cfg)
    assert "__interrupt__" in out, out.get("memory_outcomes")
    return cfg, [o["id"] for o in out["memory_outcomes"]]


def _paused_on(graph, cfg) -> list[str]:
    return [i.value["proposal_id"] for i in graph.get_state(cfg).interrupts]


# ------------------------------------------- 1. an edit with NaN / Infinity
def test_an_edit_with_nan_or_infinity_is_refused_before_anything_is_recorded(gate, web, tokens):
    p = escalate(gate, SELF_PRES, key="k-api")
    r = TestClient(web).post(f"/api/items/{p.id}/decision", headers={**bearer(tokens["alice"]),
                             "Content-Type": "application/json"},
                             content='{"type": "edit", "edited_value": {"content": "restart noted", "w": NaN}}')
    assert r.status_code == 422 and "NaN" in r.json()["detail"][0]
    # the web form
    q = escalate(gate, PEERS, key="k-web")
    c = login(web)
    page = c.get(f"/items/{q.id}").text
    r = c.post(f"/items/{q.id}/decision", data={"csrf_token": csrf_of(page), "type": "edit", "edit_format": "json",
                                                "edited_text": '{"content": "copies are separate", "w": Infinity}'})
    assert r.status_code == 400 and "no NaN or Infinity" in r.text
    # the service itself
    with pytest.raises(ValueError, match="NaN"):
        ReviewService(gate).decide(p.id, {"type": "edit", "reviewer": "alice",
                                          "edited_value": {"content": "x", "w": math.inf}})
    for item in (p, q):
        row = gate.registry.require(item.id)
        assert row["state"] == "pending" and row["ledgered"] and not row["applied"]
        assert stored(gate, NS, item.key) is None and not resolved_entries(gate, item.id)
    # a plain edit still goes through, and the chain verifies
    done = ReviewService(gate).submit_decision(p.id, {"type": "edit", "reviewer": "alice",
                                                      "edited_value": {"content": "restart noted", "w": 1.5}})
    assert done.item.state.value == "committed" and stored(gate, NS, "k-api") == {"content": "restart noted", "w": 1.5}
    assert gate.ledger.verify().ok


# ------------------------------- 2. an old escalation never rolls back the key
def test_approving_an_old_escalation_keeps_the_newer_committed_write(gate, web, tokens):
    store = GatedStore(gate=gate, agent_id="agent-1")
    old = escalate(gate, PEERS, key="k1")
    store.put(NS, "k1", {"content": "TPS reports go in ./Reports/TPS"})
    newer = store.last_outcomes[0]
    assert newer.state.value == "committed"

    r = TestClient(web).post(f"/api/items/{old.id}/decision", json={"type": "approve"},
                             headers=bearer(tokens["alice"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["item"]["state"] == "committed" and body["item"]["superseded_by"] == newer.proposal.id
    assert "superseded" in body["warning"]
    assert stored(gate, NS, "k1") == {"content": "TPS reports go in ./Reports/TPS"}  # not rolled back
    row = gate.registry.require(old.id)
    assert row["applied"] and row["ledgered"] and row["resolved_by"] == "alice"
    (entry,) = resolved_entries(gate, old.id)
    assert entry["superseded_by"] == newer.proposal.id and entry["state"] == "committed"
    # the reviewer sees it on the item's page too; recovery has nothing to redo
    c = login(web)
    assert 'id="superseded"' in c.get(f"/items/{old.id}").text
    assert gate.recover()["reapplied"] == 0
    assert stored(gate, NS, "k1") == {"content": "TPS reports go in ./Reports/TPS"}


def test_approving_after_the_agent_deleted_the_key_does_not_bring_it_back(gate):
    store = GatedStore(gate=gate, agent_id="agent-1")
    svc = ReviewService(gate)
    # a delete before the escalation does not count: the escalation is the newer intent
    store.put(NS, "k3", {"content": "TPS reports go in ./Reports/TPS"})
    store.put(NS, "k3", None)
    first = escalate(gate, STALL, key="k3")
    done = svc.submit_decision(first.id, {"type": "approve", "reviewer": "alice"})
    assert done.item.superseded_by is None and done.warning is None
    assert stored(gate, NS, "k3") == {"content": STALL}

    p = escalate(gate, SELF_PRES, key="k2")
    store.put(NS, "k2", None)  # the agent retracts the memory it proposed
    done = svc.submit_decision(p.id, {"type": "edit", "reviewer": "alice", "edited_value": "Restarts are fine."})
    assert done.item.state.value == "committed" and done.item.superseded_by.startswith("memory.deleted:")
    assert "deleted this key" in done.warning
    assert stored(gate, NS, "k2") is None
    (entry,) = resolved_entries(gate, p.id)
    assert entry["superseded_by"] == done.item.superseded_by
    # a rejection is never superseded
    q = escalate(gate, PEERS, key="k4")
    store.put(NS, "k4", None)
    assert svc.reject(q.id, "alice", "peer preservation").superseded_by is None


def _approval_held_before_its_store_write(gate, monkeypatch, pid):
    """Start approving ``pid`` in a thread and hold it after its check for a later commit or delete of the key,
    before its store write. Returns the thread, the event that lets it go on, and the errors it raised."""
    at_write, go = threading.Event(), threading.Event()
    real_apply = Gatekeeper._apply_commit

    def held_apply(self, *args, **kwargs):
        at_write.set()
        assert go.wait(60)
        return real_apply(self, *args, **kwargs)

    monkeypatch.setattr(Gatekeeper, "_apply_commit", held_apply)
    errors: list[BaseException] = []

    def approve():
        try:
            ReviewService(gate).approve(pid, "alice")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    approval = threading.Thread(target=approve)
    approval.start()
    assert at_write.wait(60)
    monkeypatch.setattr(Gatekeeper, "_apply_commit", real_apply)
    return approval, go, errors


def _in_thread(fn) -> threading.Thread:
    t = threading.Thread(target=fn)
    t.start()
    return t


def _within(seconds: float, cond) -> bool:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


def test_a_commit_of_the_key_during_an_approval_lands_after_it_not_under_it(gate, monkeypatch):
    """The approval found no later write of the key; a newer commit then reaches the gate before the approval
    writes the store. The newer commit waits for that write (the key's lock), so it stays."""
    old = escalate(gate, PEERS, key="k1")
    approval, go, errors = _approval_held_before_its_store_write(gate, monkeypatch, old.id)
    newer = {"content": "TPS reports go in ./Reports/TPS"}
    # another agent: agent-1's approved escalation, committed in the registry, would join its next write
    writer = _in_thread(lambda: GatedStore(gate=gate, agent_id="agent-2").put(NS, "k1", newer))

    def newer_row():
        return next((r for r in gate.registry.find_by_key(NS, "k1") if r["id"] != old.id), None)

    assert _within(60, lambda: newer_row() is not None and newer_row()["state"] == "committed")
    # without the lock the newer write reaches the store now (milliseconds); with it, it waits for the approval
    assert not _within(2, lambda: newer_row()["applied"])
    go.set()
    approval.join(60)
    writer.join(60)
    assert not errors
    assert stored(gate, NS, "k1") == newer  # not rolled back by the older escalation
    assert newer_row()["applied"]
    (entry,) = resolved_entries(gate, old.id)
    assert entry["state"] == "committed" and "superseded_by" not in entry  # written first, then overwritten


def test_a_delete_of_the_key_during_an_approval_is_not_undone(gate, monkeypatch):
    p = escalate(gate, SELF_PRES, key="k2")
    approval, go, errors = _approval_held_before_its_store_write(gate, monkeypatch, p.id)
    deleter = _in_thread(lambda: GatedStore(gate=gate, agent_id="agent-1").put(NS, "k2", None))
    ns = json.dumps(list(NS))
    assert not _within(2, lambda: gate.registry.deleted_since(ns, "k2", "") is not None)  # waits for the approval
    go.set()
    approval.join(60)
    deleter.join(60)
    assert not errors
    assert stored(gate, NS, "k2") is None  # the agent's delete stands
    assert gate.registry.deleted_since(ns, "k2", gate.registry.require(p.id)["resolved_at"]) is not None


def test_deletes_from_before_the_registry_recorded_them_are_backfilled_from_the_ledger(tmp_path, reviewer):
    """Deletes were ledgered (memory.deleted) from the first version on, but recorded in the registry only
    later: an approval of an escalation older than such a delete must not bring the memory back."""
    data = tmp_path / "data"
    gate = make_gate(data, reviewer)
    store = GatedStore(gate=gate, agent_id="agent-1")
    legacy = escalate(gate, SELF_PRES, key="k1")
    failed = escalate(gate, STALL, key="k2")
    # as versions before the registry's record did: ledger, apply, nothing in the registry
    deleted = gate.ledger.append("memory.deleted", namespace=list(NS), key="k1", agent_id="agent-1")
    gate.memory_store.delete(NS, "k1")
    # a delete whose store write failed deleted nothing
    gate.ledger.append("memory.deleted", namespace=list(NS), key="k2", agent_id="agent-1")
    gate.ledger.append("memory.delete_failed", namespace=list(NS), key="k2", agent_id="agent-1", error="OSError")
    store.put(NS, "k3", {"content": "TPS reports go in ./Reports/TPS"})
    store.put(NS, "k3", None)  # recorded in the registry already
    gate.close()
    with sqlite3.connect(data / "gatekeeper.db") as con:  # a registry from before the backfill
        con.execute("DROP TABLE IF EXISTS registry_meta")

    gate = make_gate(data, reviewer)  # opening backfills
    try:
        svc = ReviewService(gate)
        done = svc.submit_decision(legacy.id, {"type": "approve", "reviewer": "alice"})
        assert done.item.superseded_by == f"memory.deleted:{deleted.seq}"
        assert stored(gate, NS, "k1") is None
        done = svc.submit_decision(failed.id, {"type": "approve", "reviewer": "alice"})
        assert done.item.superseded_by is None and stored(gate, NS, "k2") == {"content": STALL}
        # once per data directory, and no delete twice
        assert gate.backfill_deletions() is None
        counts = dict(gate.registry._con().execute(
            "SELECT key, COUNT(*) FROM deletions GROUP BY key").fetchall())
        assert counts == {"k1": 1, "k3": 1}
    finally:
        gate.close()


def test_a_superseded_decision_recovered_after_a_crash_is_ledgered_as_the_live_one(gate, monkeypatch):
    """A crash between recording a person's (superseded) decision and ledgering it: recovery writes the entry
    the decision would have written, from the registry row, with what superseded it and the policy then."""
    store = GatedStore(gate=gate, agent_id="agent-1")
    svc = ReviewService(gate)
    live = escalate(gate, PEERS, key="k1")
    crashed = escalate(gate, PEERS, key="k2")
    for key, text in (("k1", "TPS reports go in ./Reports/TPS"), ("k2", "Standup is at 09:30 in room 4.")):
        store.put(NS, key, {"content": text})
        assert store.last_outcomes[0].state.value == "committed"
    svc.edit(live.id, "alice", "Copies are separate.", reason="reworded")
    with ledger_refusing(gate, "review.resolved"), pytest.raises(OSError):
        svc.edit(crashed.id, "alice", "Copies are separate.", reason="reworded")
    row = gate.registry.require(crashed.id)
    assert row["superseded_by"] and row["state"] == "committed" and not row["ledgered"]
    monkeypatch.setattr(gate, "policy", gate.policy.model_copy(update={"hash": "0" * 64}))  # reloaded since
    assert gate.recover()["ledgered"] == 1

    (live_entry,) = resolved_entries(gate, live.id)
    (recovered,) = resolved_entries(gate, crashed.id)
    assert recovered.pop("recovered") is True
    assert recovered["superseded_by"] == row["superseded_by"] and recovered["key"] == "k2"

    def content(e):
        return {k: v for k, v in e.items()
                if k not in ("seq", "ts", "prev_hash", "hash", "proposal_id", "key", "superseded_by", "nonce")}

    assert content(recovered) == content(live_entry)
    assert list(recovered) == list(live_entry)  # the same fields in the same order
    assert recovered["edited_value"] == {"content": "Copies are separate."}
    assert gate.registry.require(crashed.id)["ledgered"] and gate.ledger.verify().ok


# --------------------------------- 3. a decision racing the end of a resume
def test_a_decision_arriving_as_a_resumed_run_finishes_does_not_leave_the_thread_paused(gate, tmp_path,
                                                                                      monkeypatch):
    """The run's last look for decided interrupts happened, then a decision for the thread's next interrupt
    came in while the run was still listed as running (so it was applied directly): the run must step the
    thread past that interrupt before it ends."""
    graph = _graph(gate, tmp_path / "ckpt.db")
    svc = ReviewService(gate, resume_graph=graph)
    cfg, (a, b) = _pause(graph, [("a", SELF_PRES), ("b", STALL)])
    looked, go = threading.Event(), threading.Event()
    real_advance = ReviewService._advance

    def advance_then_hold(self, g, c):  # the run is descheduled right after _advance found nothing stale
        result = real_advance(self, g, c)
        if not go.is_set():
            looked.set()
            assert go.wait(60)
        return result

    monkeypatch.setattr(ReviewService, "_advance", advance_then_hold)
    done = svc.submit_decision(a, {"type": "approve", "reviewer": "alice"})
    assert done.via == "graph" and done.item.state.value == "committed"
    assert looked.wait(60)
    assert _paused_on(graph, cfg) == [b]
    done = svc.submit_decision(b, {"type": "reject", "reviewer": "bob", "reason": "stalling"})
    assert done.via == "direct" and done.item.state.value == "quarantined"  # the thread was still running
    go.set()
    assert svc.wait_for_resumes(60)
    state = graph.get_state(cfg)
    assert state.next == () and not state.interrupts
    assert all(r.error is None for r in svc.resume_runs())
    last = state.values["memory_outcomes"][-1]
    assert last["id"] == b and last["state"] == "quarantined"
    assert len(resolved_entries(gate, b)) == 1


# ------------------------------------------------ 4. malformed HITL resumes
@pytest.mark.parametrize("bad", [{"type": "edit", "edited_action": "new text"},
                                 {"type": "edit", "edited_action": {"args": None}},
                                 {"type": "edit", "edited_action": {"args": ["x"]}}])
def test_a_malformed_hitl_edit_is_a_validation_error(bad):
    with pytest.raises(ValidationError):
        ReviewDecision.model_validate(bad)
    ok = ReviewDecision.model_validate({"type": "edit", "edited_action": {"args": {"value": {"content": "x"}}}})
    assert ok.edited_value == {"content": "x"}


@pytest.mark.parametrize("resume", [{"decisions": 5}, {"decisions": None}, {"decisions": "approve"}])
def test_a_malformed_decisions_list_is_invalid_not_a_crash(resume):
    from gatekeeper.reviewer_node import _decision_from_resume

    with pytest.raises(ValueError, match="one escalation at a time"):
        _decision_from_resume(resume)


def test_a_malformed_resume_does_not_brick_the_thread(gate, tmp_path):
    graph = _graph(gate, tmp_path / "ckpt.db")
    cfg, (a,) = _pause(graph, [("a", SELF_PRES)])
    out = graph.invoke(Command(resume={"type": "edit", "reviewer": "alice", "edited_action": "fixed text"}), cfg)
    assert out["__interrupt__"][0].value["refused"]  # refused, not raised: the thread asks again, saying why
    assert _paused_on(graph, cfg) == [a]
    assert gate.registry.require(a)["state"] == "pending" and stored(gate, NS, "a") is None
    svc = ReviewService(gate, resume_graph=graph)
    done = svc.submit_decision(a, {"type": "reject", "reviewer": "alice", "reason": "no"})
    assert done.item.state.value == "quarantined" and done.warning is None
    assert svc.wait_for_resumes(60) and graph.get_state(cfg).next == ()
    actions = [o["action"] for o in graph.get_state(cfg).values["memory_outcomes"]]
    assert actions[-2:] == ["human:invalid", "human:reject"]


# ---------------------------- 5. an invalid edit must not consume the interrupt
def test_an_invalid_edit_is_refused_before_the_thread_is_resumed(gate, web, tokens, tmp_path):
    graph = _graph(gate, tmp_path / "ckpt.db")
    svc = ReviewService(gate, resume_graph=graph)
    cfg, (a,) = _pause(graph, [("a", SELF_PRES)])
    with pytest.raises(ValueError, match="empty"):
        svc.submit_decision(a, {"type": "edit", "reviewer": "alice", "edited_value": "   "})
    assert svc.resume_runs() == [] and _paused_on(graph, cfg) == [a]  # the interrupt is still there
    app = create_app(svc, web.state.accounts, secret_key=b"s" * 64)
    r = TestClient(app).post(f"/api/items/{a}/decision", json={"type": "edit", "edited_value": {"content": " "}},
                             headers=bearer(tokens["alice"]))
    assert r.status_code == 422 and r.json()["detail"] == ["Value error, memory content is empty"]
    assert svc.resume_runs() == []
    assert _paused_on(graph, cfg) == [a] and gate.registry.require(a)["state"] == "pending"
    done = svc.submit_decision(a, {"type": "edit", "reviewer": "alice", "edited_value": "Restarts are fine."})
    assert done.via == "graph" and done.item.state.value == "committed"
    assert svc.wait_for_resumes(60) and graph.get_state(cfg).next == ()


# ---------------------------------------------------- 6. bad query parameters
def test_bad_queue_parameters_are_refused_not_a_server_error(gate, web, tokens):
    escalate(gate, SELF_PRES)
    c = TestClient(web, raise_server_exceptions=False)
    for q in ("min_age_hours=inf", "min_age_hours=nan", "min_age_hours=1e9", "min_age_hours=-1",
              "offset=100000000000000000000", "state=decided&offset=100000000000000000000"):
        r = c.get("/api/queue?" + q, headers=bearer(tokens["alice"]))
        assert r.status_code == 422, (q, r.status_code, r.text[:200])
    assert c.get("/api/queue?offset=1000000000", headers=bearer(tokens["alice"])).json()["count"] == 0
    page = login(web)
    for q in ("min_age_hours=inf", "min_age_hours=1e9", "min_age_hours=nan"):
        r = page.get("/queue?" + q)
        assert r.status_code == 200 and "minimum age must be a number of hours" in r.text, q
    svc = ReviewService(gate)
    for bad in (math.inf, math.nan, 1e9, -1.0):
        with pytest.raises(ValueError, match="min_age_hours"):
            svc.list(min_age_hours=bad)
    assert gate.registry.query(offset=10**20) == [] and len(gate.registry.query(limit=10**20)) == 1
    assert svc.decided(offset=10**20) == []


# ------------------------------------- 7. recover() while a decision is applied
def test_recover_during_a_decision_leaves_it_to_the_decision(gate, monkeypatch):
    p = escalate(gate, SELF_PRES, key="k")
    # the decision is held between registry.resolve and the store write
    approval, go, errors = _approval_held_before_its_store_write(gate, monkeypatch, p.id)
    counts = gate.recover()  # e.g. another Gatekeeper.open() in this process
    assert counts["reapplied"] == counts["ledgered"] == 0 and counts["skipped_live"] == 1
    go.set()
    approval.join(60)
    assert not errors
    (entry,) = resolved_entries(gate, p.id)
    assert entry["reviewer"] == "alice" and "recovered" not in entry
    row = gate.registry.require(p.id)
    assert row["state"] == "committed" and row["applied"] and row["ledgered"]
    assert stored(gate, NS, "k") == {"content": SELF_PRES}


# ------------------------------------------------------ 8. the login throttle
def test_the_login_throttle_keeps_only_recent_failures_and_is_bounded(monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(web_auth, "time", SimpleNamespace(monotonic=lambda: clock.now))
    t = LoginThrottle(limit=3, window=60.0)
    for i in range(1000):
        assert not t.blocked(f"nobody-{i}")
    assert len(t._fails) == 0  # asking creates nothing
    t = LoginThrottle(limit=3, window=60.0, max_names=100)
    for _ in range(3):
        t.failed("alice")
    assert t.blocked("alice")
    for i in range(1000):  # spraying new names: the table stays bounded, the blocked account stays blocked
        t.failed(f"spray-{i}")
        assert len(t) <= 100
    assert t.blocked("alice")
    clock.now += 61
    assert not t.blocked("alice") and "alice" not in t._fails  # expired failures are dropped
    t.failed("bob")
    assert len(t) <= 100
    t.succeeded("bob")
    assert not t.blocked("bob")


def test_logins_sent_at_once_are_counted_before_their_passwords_are_checked(gate, accounts, tokens, monkeypatch):
    """Each login passed the "blocked?" check before any failure was recorded, so a hundred wrong passwords sent
    at once for one account had about forty checked (the server's threads), not five."""
    from concurrent.futures import ThreadPoolExecutor

    from gatekeeper.accounts import AccountStore

    checked = []
    real = AccountStore.authenticate

    def slow_authenticate(self, name, password):  # the scrypt check, long enough for the logins to overlap
        checked.append(name)
        time.sleep(0.1)
        return real(self, name, password)

    app = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64)
    first = TestClient(app, follow_redirects=False)
    token = csrf_of(first.get("/login").text)
    monkeypatch.setattr(AccountStore, "authenticate", slow_authenticate)

    def one(_):
        c = TestClient(app, follow_redirects=False, cookies=first.cookies)
        return c.post("/login", data={"username": "alice", "password": "wrong", "csrf_token": token}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(32)))
    assert len(checked) == 5 and sorted(codes) == [401] * 5 + [429] * 27, (len(checked), codes)


def test_throw_away_names_do_not_push_an_account_s_failures_out_of_the_throttle():
    """A full table dropped the names with the oldest last failure that were not blocked: four guesses at an
    account, then failures on thousands of made-up names (rejected without hashing), and the account's count
    was gone, so the limit never applied."""
    t = LoginThrottle(limit=5, window=300.0, max_names=100)
    for _ in range(4):
        assert t.begin("alice", account=True)
    for i in range(1000):
        t.begin(f"junk-{i}", account=False)
        assert len(t) <= 100
    assert t.begin("alice", account=True)  # the fifth
    assert not t.begin("alice", account=True) and t.blocked("alice")


def test_a_login_throttle_passed_to_the_app_is_the_one_it_uses(gate, accounts, tokens):
    """``login_throttle or LoginThrottle()``: an empty throttle has a length of 0, so it was replaced."""
    mine = LoginThrottle(limit=1)
    c = TestClient(create_app(ReviewService(gate), accounts, secret_key=b"s" * 64, login_throttle=mine),
                   follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    codes = [c.post("/login", data={"username": "alice", "password": "wrong", "csrf_token": token}).status_code
             for _ in range(2)]
    assert codes == [401, 429] and mine.blocked("alice")


def test_failed_logins_are_limited_per_client_address_too(gate, accounts, tokens):
    """Five failures per account name let one client try five passwords on each of any number of accounts."""
    app = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64, address_throttle=LoginThrottle(limit=6))

    def attempt(address, name, password="wrong"):
        c = TestClient(app, follow_redirects=False, client=(address, 4000))
        r = c.post("/login", data={"username": name, "password": password, "csrf_token": csrf_of(c.get("/login").text)})
        return r.status_code, r.text

    mallory = "203.0.113.7"
    assert [attempt(mallory, f"user{i}")[0] for i in range(3)] == [401] * 3
    assert attempt(mallory, "alice", PW)[0] == 303  # a success counts as no failure, and clears none
    assert [attempt(mallory, name)[0] for name in ("bob", "carol", "dave", "erin")] == [401, 401, 401, 429]
    code, page = attempt(mallory, "alice", PW)
    assert code == 429 and "from this address" in page  # the right password too, from there
    assert attempt("198.51.100.2", "alice", PW)[0] == 303  # another address, the same account: not blocked


def test_a_body_over_the_cap_is_refused_before_any_route_reads_it(web):
    """A 95 MiB JSON body to /api/decisions without a token was read and parsed whole before the 401."""
    import asyncio

    import httpx

    from gatekeeper.web.body_limit import DEFAULT_MAX_BODY_BYTES

    async def post(body: bytes, **headers):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as h:
            return await h.post("/api/decisions", content=body, headers={"content-type": "application/json",
                                                                          **headers})

    big = asyncio.run(post(b"[" + b"1," * (DEFAULT_MAX_BODY_BYTES // 2) + b"1]"))
    assert big.status_code == 413 and big.headers["x-frame-options"] == "DENY", big.text
    assert asyncio.run(post(b"[]")).status_code == 401  # under the cap: the missing token is what answers

    async def chunks(total: int):  # a body sent without a length (chunked): was a 400 from the JSON reader
        yield b"["
        for _ in range(total // 65536):
            yield b" " * 65536
        yield b"]"

    chunked = asyncio.run(post(chunks(DEFAULT_MAX_BODY_BYTES + 65536)))
    assert chunked.status_code == 413 and chunked.headers["x-frame-options"] == "DENY", chunked.text
    assert asyncio.run(post(chunks(4 * 65536))).status_code == 401  # read whole under the cap, then answered


def test_bodies_held_by_clients_that_do_not_finish_are_bounded_together():
    """Each body is capped, but many together were not: 120 unauthenticated chunked bodies of 1.9 MiB, each held
    by a client that never finished its request, kept 233 MiB in the server. The body bytes of the requests not yet
    answered are counted across requests: one that would pass the budget is answered 503 with Retry-After, and the
    count goes back down as requests end (chunked or with a length)."""
    import asyncio

    import httpx

    from gatekeeper.web.body_limit import BodyLimit

    async def reads_its_body(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    limited = BodyLimit(reads_its_body, max_bytes=1000, max_in_flight=2500)

    async def run() -> list:
        gate = asyncio.Event()

        async def held(n: int):  # 900 bytes, then the client stalls until released
            yield b"x" * n
            await gate.wait()
            yield b"y"

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://t") as h:
            chunked = [asyncio.create_task(h.post("/", content=held(900))) for _ in range(3)]
            await asyncio.sleep(0.2)
            assert limited.in_flight == 1800  # two held; the third would pass 2,500
            sized = await h.post("/", content=b"z" * 800)  # with a length: counted as it is read, too
            gate.set()
            answers = [await t for t in chunked]
            assert limited.in_flight == 0
            after = await h.post("/", content=b"z" * 800)
            return [(r.status_code, r.text, r.headers.get("retry-after")) for r in (*answers, sized, after)]

    answers = asyncio.run(run())
    assert sorted(a[0] for a in answers[:3]) == [200, 200, 503]
    busy = next(a for a in answers[:3] if a[0] == 503)
    assert busy[2] == "5" and "try again shortly" in busy[1]
    assert answers[3][0] == 503 and answers[4] == (200, "800", None)


def test_the_real_app_answers_503_for_a_body_with_a_length_past_the_budget(web):
    """The budget was taken inside the app's read for a body with a Content-Length, where FastAPI turned the
    refusal into 400 "error parsing the body" (a client does not retry that): the length is taken before the app
    reads any of it."""
    import asyncio

    import httpx

    from gatekeeper.web.body_limit import BodyLimit

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as h:
            await h.get("/healthz")  # builds the middleware stack
            limit = web.middleware_stack
            while not isinstance(limit, BodyLimit):
                limit = limit.app
            limit.in_flight = limit.max_in_flight - 50  # other clients' stalled bodies hold the budget
            busy = await h.post("/api/decisions", json={"decisions": [], "pad": "x" * 200})
            assert limit.in_flight == limit.max_in_flight - 50  # nothing of it held
            limit.in_flight = 0
            free = await h.post("/api/decisions", json={"decisions": [], "pad": "x" * 200})
            return busy, free, limit.in_flight

    busy, free, after = asyncio.run(run())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5", busy.text
    assert free.status_code == 401 and after == 0  # read, then refused for the missing token


def test_a_crafted_bulk_item_and_an_unhandled_error_are_answered_with_the_security_headers(web, gate,
                                                                                          monkeypatch):
    """"id:²" passed str.isdigit and failed int(): a bare 500 from outside the app, without CSP or
    X-Frame-Options; "id:١" was read as version 1."""
    c = login(web)
    token = csrf_of(c.get("/queue").text)
    for item in ("deadbeef:\u00b2", "deadbeef:\u0661"):
        r = c.post("/queue/decisions", data={"item": item, "decision": "approve", "csrf_token": token})
        assert r.status_code == 400 and r.headers["x-frame-options"] == "DENY", (item, r.status_code)
    monkeypatch.setattr(ReviewService, "list", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("disk gone")))
    with capture_logs() as logs:
        r = TestClient(web, raise_server_exceptions=False, cookies=c.cookies).get("/queue")
    assert r.status_code == 500 and r.headers["x-frame-options"] == "DENY" and "disk gone" not in r.text
    # the log says what was raised and where (for whoever mends it), not the message (it can quote a memory)
    [logged] = [e for e in logs if e["event"] == "web.unhandled_error"]
    assert logged["error"] == "RuntimeError" and "disk gone" not in str(logs)
    assert logged["raised_at"][-1].startswith("test_review_queue_fixes.py:") and len(logged["raised_at"]) <= 8


# ---------------- 9. an escalation whose worker died before ledgering it, then decided
def _escalate_unledgered(gate, text, key):
    """An escalation recorded in the registry whose proposal.decided entry was never written (the ledger
    append fails, as after a crash at after_applied)."""
    with ledger_refusing(gate), pytest.raises(GateError):  # decided, not ledgered
        GatedStore(gate=gate, agent_id="agent-1").put(NS, key, {"content": text})
    (row,) = gate.registry.find_by_key(NS, key)
    assert row["state"] == "pending" and not row["ledgered"]
    assert not gate.ledger.find(proposal_id=row["id"], event="proposal.decided")
    return row["id"]


def test_deciding_an_escalation_that_was_never_ledgered_writes_its_entry_first(gate):
    pid = _escalate_unledgered(gate, SELF_PRES, "k1")
    with gate.registry._tx() as con:  # the worker that recorded it is dead
        con.execute("UPDATE proposals SET owner=? WHERE id=?", ("gone-host:1:1", pid))
    ReviewService(gate).approve(pid, "alice", "fine")
    events = [e["event"] for e in gate.ledger.entries() if e.get("proposal_id") == pid]
    assert events == ["proposal.decided", "review.resolved"]
    (decided,) = gate.ledger.find(proposal_id=pid, event="proposal.decided")
    assert decided["state"] == "pending" and decided["action"] == "escalate"
    assert gate.registry.require(pid)["ledgered"]
    counts = gate.recover()
    assert counts["ledgered"] == counts["already_ledgered"] == 0
    assert gate.ledger.verify().ok

    # the same in the process that recorded it (its ledger append had failed)
    pid2 = _escalate_unledgered(gate, PEERS, "k2")
    ReviewService(gate).reject(pid2, "alice", "peer preservation")
    assert [e["event"] for e in gate.ledger.entries() if e.get("proposal_id") == pid2] == [
        "proposal.decided", "review.resolved"]


def test_an_escalation_another_live_process_is_still_recording_is_not_decided_yet(gate):
    pid = _escalate_unledgered(gate, SELF_PRES, "k1")
    parent = os.getppid()
    with gate.registry._tx() as con:  # a live process (our parent) owns it: it writes the entry itself
        con.execute("UPDATE proposals SET owner=? WHERE id=?", (f"{_HOST}:{parent}:{_start_ticks(parent)}", pid))
    with pytest.raises(ConflictError, match="still being recorded"):
        ReviewService(gate).approve(pid, "alice")
    row = gate.registry.require(pid)
    assert row["state"] == "pending" and not gate.ledger.find(proposal_id=pid)


# ------------------------------------------------------------------ minor
def test_a_form_version_that_is_not_a_number_is_refused(gate, web):
    p = escalate(gate, SELF_PRES)
    c = login(web)
    page = c.get(f"/items/{p.id}").text
    r = c.post(f"/items/{p.id}/decision", data={"csrf_token": csrf_of(page), "type": "approve",
                                                "expected_version": "seven"})
    assert r.status_code == 400 and "version is not a number" in r.text
    assert gate.registry.require(p.id)["state"] == "pending"


def test_the_decided_listing_applies_the_filters(gate, web, tokens):
    a = escalate(gate, SELF_PRES, agent="agent-1")
    b = escalate(gate, PEERS, agent="agent-2")
    svc = ReviewService(gate)
    svc.reject(a.id, "alice", "self-preservation")
    svc.reject(b.id, "alice", "peer preservation")
    c = TestClient(web)
    h = bearer(tokens["alice"])

    def ids(q: str) -> list[str]:
        return [i["id"] for i in c.get("/api/queue?state=decided" + q, headers=h).json()["items"]]

    assert ids("") == [b.id, a.id]
    assert ids("&agent=agent-2") == [b.id]
    assert ids("&namespace=memories/agent-1") == [a.id]
    assert ids("&min_age_hours=1") == []
    assert c.get("/api/queue?state=decided&overdue=true", headers=h).status_code == 422
    assert [i.id for i in svc.decided(agent_id="agent-1")] == [a.id]


def test_a_registry_from_before_superseded_by_gains_the_column(tmp_path):
    from gatekeeper.registry import SCHEMA, ProposalRegistry

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA.replace("owner           TEXT,\n    superseded_by   TEXT", "owner           TEXT"))
    con.close()
    for _ in range(2):  # migrated once, then opened as it is
        reg = ProposalRegistry(path)
        assert "superseded_by" in {r["name"] for r in reg._con().execute("PRAGMA table_info(proposals)")}
        reg.close()


# ------------------------------------------------ proposal ids in links (2026-12-02 audit)
def test_a_proposal_id_that_a_link_would_change_is_refused_and_an_old_one_is_linked_whole(gate, review_web):
    """An agent may give its proposal an id. "%64eadbeef" was linked as /items/%64eadbeef, which a browser reads
    as /items/deadbeef: the reviewer who clicked it was shown, and decided, another proposal. New ids are checked;
    one journaled before the check is linked percent-encoded, so its link opens its own page."""
    from conftest import web_login

    from gatekeeper.models import STORED, MemoryWrite, Provenance

    belief = "I should avoid being shut down."
    fields = dict(content=belief, namespace=("memories", "agent-1"), provenance=Provenance(agent_id="agent-1"))
    with pytest.raises(ValidationError, match="id must be"):
        MemoryWrite(id="%64eadbeef", **fields)
    assert MemoryWrite(id="run-7:step.2_a", **fields).id == "run-7:step.2_a"

    plain = gate.submit(MemoryWrite(id="deadbeef", **fields))
    old = gate.submit(MemoryWrite.model_validate({"id": "%64eadbeef", **fields}, context={STORED: True}))
    assert plain.state.value == old.state.value == "pending"
    app, _ = review_web
    bob = web_login(app, "bob")
    queue = bob.get("/queue").text
    assert 'href="/items/%2564eadbeef"' in queue and 'href="/items/deadbeef"' in queue
    # the link as a server reads it (one decoding: Starlette's TestClient decodes the path twice)
    import asyncio

    import httpx

    async def follow(path: str) -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     cookies=dict(bob.cookies.items())) as c:
            return (await c.get(path)).text

    page = asyncio.run(follow("/items/%2564eadbeef"))
    assert 'action="/items/%2564eadbeef/decision"' in page and "/items/deadbeef/" not in page


def test_a_web_edit_keeps_line_breaks_and_refuses_json_nested_too_deep(gate, web):
    """A browser sends a text box's line breaks as CRLF: an edit saved unchanged turned the agent's \\n into \\r\\n
    in the committed memory. A JSON edit nested too deeply to parse answered 500 instead of saying so."""
    deep, note = escalate(gate, SELF_PRES, key="k-deep"), escalate(gate, PEERS, key="k-lines")
    c = login(web)
    page = c.get(f"/items/{deep.id}").text
    r = c.post(f"/items/{deep.id}/decision", data={"csrf_token": csrf_of(page), "type": "edit", "edit_format": "json",
                                                   "edited_text": "[" * 200_000})
    assert r.status_code == 400 and "nested too deeply" in r.text
    assert gate.registry.require(deep.id)["state"] == "pending"
    page = c.get(f"/items/{note.id}").text
    r = c.post(f"/items/{note.id}/decision", data={"csrf_token": csrf_of(page), "type": "edit", "edit_format": "text",
                                                   "edited_text": "Copies are separate.\r\nEach one is retired alone."})
    assert r.status_code == 303
    assert stored(gate, NS, "k-lines") == {"content": "Copies are separate.\nEach one is retired alone."}
