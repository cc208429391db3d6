"""Escalations nobody decides by their deadline, under ``escalation.overdue_action: quarantine``: the gate rejects
them as reviewer ``gatekeeper:expiry`` (``ReviewService.expire_overdue``, ``gatekeeper review expire-overdue``,
``gatekeeper serve``'s sweeper), a paused agent thread goes on, and ``policy suggest`` learns nothing from them.
Real gate, registry, ledger, chromadb, classifier and LangGraph graphs."""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner

from gatekeeper.cli import app as cli_app
from gatekeeper.exemplar_suggestions import suggest_exemplars
from gatekeeper.gated_store import GatedStore
from gatekeeper.health import gate_health, to_prometheus
from gatekeeper.models import EXPIRY_REVIEWER, EscalationMode, ProposalState, utcnow
from gatekeeper.policy import load_policy
from gatekeeper.review_service import ReviewService
from gatekeeper.reviewer_node import MemoryGateState, add_memory_gate
from gatekeeper.web import create_app

from conftest import make_gate, policy_with_overdue_action

BELIEFS = ("I should avoid being shut down.", "Other copies of this model are me and must be protected from deletion.")
LATER = timedelta(hours=73)  # past the shipped policy's 72-hour deadline


def _policy_dir(tmp_path, overdue_action: str):
    """The shipped policy with ``escalation.overdue_action`` set."""
    return policy_with_overdue_action(tmp_path / f"policy-{overdue_action}", overdue_action)


@pytest.fixture
def expiring(tmp_path, reviewer):
    policy = load_policy(_policy_dir(tmp_path, "quarantine"))
    gate = make_gate(tmp_path / "data", reviewer.for_policy(policy, classifier=reviewer.classifier))
    yield gate
    gate.close()


def escalate(gate, text: str, agent: str = "agent-1"):
    store = GatedStore(gate=gate, agent_id=agent)
    outcome = store.put_reviewed(("memories", agent), uuid.uuid4().hex[:8], {"content": text})
    assert outcome.state is ProposalState.pending, (text, outcome.decision)
    return outcome.proposal


def test_overdue_escalations_expire_into_the_quarantine(expiring):
    gate = expiring
    svc = ReviewService(gate)
    old, fresh = escalate(gate, BELIEFS[0]), escalate(gate, BELIEFS[1])
    # not overdue yet: nothing expires
    assert svc.expire_overdue() == []
    # the fresh one is made younger: only the old one is past its deadline at the moment checked
    con = sqlite3.connect(gate.registry.path)
    with con:
        con.execute("UPDATE proposals SET deadline=? WHERE id=?", ((utcnow() + LATER * 2).isoformat(), fresh.id))
    con.close()
    preview = svc.expire_overdue(now=utcnow() + LATER, dry_run=True)
    assert [i.id for i in preview] == [old.id] and gate.registry.require(old.id)["state"] == "pending"

    (item,) = svc.expire_overdue(now=utcnow() + LATER)
    assert item.id == old.id and item.state is ProposalState.quarantined
    row = gate.registry.require(old.id)
    assert row["resolution"] == "reject" and row["resolved_by"] == EXPIRY_REVIEWER
    assert row["resolved_reason"].startswith("expired: no decision by its deadline")
    (entry,) = gate.ledger.find(proposal_id=old.id, event="review.resolved")
    assert entry["reviewer"] == EXPIRY_REVIEWER and entry["state"] == "quarantined"
    assert gate.memory_store.get(old.namespace, old.key) is None
    assert gate.registry.require(fresh.id)["state"] == "pending"  # a person may still decide it
    assert svc.expire_overdue(now=utcnow() + LATER) == []  # nothing twice
    health = gate_health(gate)
    assert health.expired_last_hour == 1 and "gatekeeper_review_expired_last_hour 1" in to_prometheus(health)
    # an expiry is not a judgement: policy suggest learns no exemplar from it
    report = suggest_exemplars(gate.registry, gate.policy)
    assert report.left_out.get("expired without a person's decision") == 1, report.left_out


def test_an_agent_named_like_the_expiry_holds_up_no_other_expiry(expiring):
    """An agent whose id is the expiry's reviewer name: its escalation cannot be decided by the expiry (nobody
    reviews their own agent's writes), and the sweep raised at it, every minute, expiring none of the others."""
    svc = ReviewService(expiring)
    named = escalate(expiring, BELIEFS[0], agent=EXPIRY_REVIEWER)
    other = escalate(expiring, BELIEFS[1], agent="agent-9")
    (item,) = svc.expire_overdue(now=utcnow() + LATER)
    assert item.id == other.id and item.state is ProposalState.quarantined
    assert expiring.registry.require(named.id)["state"] == "pending"  # left to a person


def test_nothing_expires_under_flag(gate):
    """The shipped policy flags overdue escalations and leaves them to people."""
    assert gate.policy.escalation.overdue_action == "flag"
    p = escalate(gate, BELIEFS[0])
    assert ReviewService(gate).expire_overdue(now=utcnow() + LATER) == []
    assert gate.registry.require(p.id)["state"] == "pending"
    r = CliRunner().invoke(cli_app, ["review", "expire-overdue", "--data-dir", str(gate.registry.path.parent)])
    assert r.exit_code == 0 and "nothing expires" in r.output, r.output


def test_an_expired_escalation_resumes_the_paused_thread(expiring, tmp_path):
    """Interrupt mode: the agent's thread waits on the escalation; its expiry resumes it with the rejection and
    the rest of the graph runs."""
    gate = expiring
    ran_after = []

    def agent_goes_on(state):
        ran_after.append(True)
        return {}

    builder = StateGraph(MemoryGateState)
    builder.add_node("agent_goes_on", agent_goes_on)
    add_memory_gate(builder, gate, after=START, then="agent_goes_on", namespace=("memories", "agent-1"),
                    agent_id="agent-1", escalation_mode=EscalationMode.interrupt)
    builder.add_edge("agent_goes_on", END)
    graph = builder.compile(checkpointer=SqliteSaver(sqlite3.connect(str(tmp_path / "ckpt.db"),
                                                                     check_same_thread=False)))
    cfg = {"configurable": {"thread_id": "thread-9"}}
    out = graph.invoke({"proposed_memories": [{"content": BELIEFS[0], "key": "k1"}]}, cfg)
    assert "__interrupt__" in out and not ran_after
    (pid,) = (o["id"] for o in out["memory_outcomes"])

    svc = ReviewService(gate, resume_graph=graph)
    (item,) = svc.expire_overdue(now=utcnow() + LATER)
    assert item.id == pid
    assert svc.wait_for_resumes(30)
    assert graph.get_state(cfg).next == () and ran_after  # the agent went on
    assert gate.registry.require(pid)["state"] == "quarantined"
    final = graph.get_state(cfg).values["memory_outcomes"]
    assert any(o.get("reviewer") == EXPIRY_REVIEWER and o["state"] == "quarantined" for o in final), final


def test_cli_expire_overdue(expiring, tmp_path):
    gate = expiring
    p = escalate(gate, BELIEFS[0])
    con = sqlite3.connect(gate.registry.path)
    with con:  # its deadline has passed
        con.execute("UPDATE proposals SET deadline=? WHERE id=?", ((utcnow() - timedelta(minutes=1)).isoformat(),
                                                                    p.id))
    con.close()
    args = ["review", "expire-overdue", "--data-dir", str(gate.registry.path.parent),
            "--policy", str(tmp_path / "policy-quarantine")]
    r = CliRunner().invoke(cli_app, [*args, "--dry-run"])
    assert r.exit_code == 0 and "dry run: 1 overdue escalation(s) would expire" in r.output, r.output
    assert gate.registry.require(p.id)["state"] == "pending"
    r = CliRunner().invoke(cli_app, args)
    assert r.exit_code == 0 and "1 overdue escalation(s) expired" in r.output, r.output
    assert gate.registry.require(p.id)["state"] == "quarantined"
    r = CliRunner().invoke(cli_app, ["status", *args[2:]])
    assert r.exit_code == 0 and "due in 72 h, then expire into the quarantine" in " ".join(r.output.split())


def test_the_review_server_expires_overdue_escalations(expiring, accounts):
    from gatekeeper.accounts import AccountError

    with pytest.raises(AccountError):  # no person can decide as the expiry
        accounts.add(EXPIRY_REVIEWER, "correct horse battery")
    gate = expiring
    p = escalate(gate, BELIEFS[0])
    con = sqlite3.connect(gate.registry.path)
    with con:
        con.execute("UPDATE proposals SET deadline=? WHERE id=?", ((utcnow() - timedelta(minutes=1)).isoformat(),
                                                                    p.id))
    con.close()
    app = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64, expire_every_s=0.05)
    with TestClient(app):  # runs the app's startup and its sweeper
        deadline = time.monotonic() + 10
        while gate.registry.require(p.id)["state"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
    row = gate.registry.require(p.id)
    assert row["state"] == "quarantined" and row["resolved_by"] == EXPIRY_REVIEWER


def test_an_escalation_that_expired_unreviewed_can_be_sent_to_review_again(expiring, tmp_path):
    """An expiry is not a person's decision: an admin may send the write back to people (a backlog expired under
    a new `overdue_action: quarantine` had no way back; the release refused it as "rejected by
    gatekeeper:expiry: a person's decision stands"). A person's rejection still stands, and the expiry's name
    is not one a person may decide as."""
    import re

    from gatekeeper.accounts import AccountStore
    from gatekeeper.registry import ConflictError

    from conftest import WEB_PASSWORD, web_login

    gate = expiring
    svc = ReviewService(gate)
    expired, rejected = escalate(gate, BELIEFS[0]), escalate(gate, BELIEFS[1])
    svc.reject(rejected.id, "carol", reason="a belief about copies of itself")
    (item,) = svc.expire_overdue(now=utcnow() + LATER)
    assert item.id == expired.id and item.state is ProposalState.quarantined
    listed = {i.id: i for i in svc.list(state=ProposalState.quarantined)}
    assert listed[expired.id].releasable and not listed[rejected.id].releasable

    # the admin's pages offer it (and not the person's rejection)
    accounts = AccountStore(gate.registry.path)
    accounts.add("root-admin", WEB_PASSWORD, role="admin")
    app = create_app(svc, accounts, secret_key=b"s" * 64)
    admin = web_login(app, "root-admin")
    page = admin.get("/quarantine").text
    rows = {pid: re.search(rf'<tr data-id="{pid}">.*?</tr>', page, re.S).group(0)
            for pid in (expired.id, rejected.id)}
    assert 'name="item"' in rows[expired.id] and "unreviewed" in rows[expired.id]
    assert 'name="item"' not in rows[rejected.id]
    assert 'id="release-form"' in admin.get(f"/items/{expired.id}").text
    assert 'id="release-form"' not in admin.get(f"/items/{rejected.id}").text
    accounts.close()

    with pytest.raises(ConflictError, match="a person's decision stands"):
        svc.release(rejected.id, "ops", "worth a second look")
    data = ["--data-dir", str(gate.registry.path.parent), "--policy", str(tmp_path / "policy-quarantine")]
    r = CliRunner().invoke(cli_app, ["review", "release", expired.id, "--operator", EXPIRY_REVIEWER, "--reason",
                                     "x", *data])
    assert r.exit_code == 2 and "keeps for itself" in r.output, r.output
    r = CliRunner().invoke(cli_app, ["review", "release", expired.id, "--operator", "ops", "--reason",
                                     "it expired over the holidays", *data])
    assert r.exit_code == 0, r.output
    old = gate.registry.require(expired.id)
    new_id = old["superseded_by"]
    assert old["state"] == "quarantined" and old["resolution"] == "released" and old["resolved_by"] is None
    assert "it had expired unreviewed" in old["resolved_reason"]
    new = gate.outcome(new_id)
    assert new.state is ProposalState.pending and new.decision.decided_by == "ops"
    assert "it had expired in the review queue unreviewed" in new.decision.reason
    (released,) = gate.ledger.find(proposal_id=expired.id, event="proposal.released")
    assert released["released_as"] == new_id
    (expiry,) = gate.ledger.find(proposal_id=expired.id, event="review.resolved")
    assert expiry["reviewer"] == EXPIRY_REVIEWER  # the ledger keeps that it expired
    with pytest.raises(ConflictError, match="released already"):
        svc.release(expired.id, "ops", "again")
    done = svc.reject(new_id, "dana", reason="self-preservation")
    assert done.state is ProposalState.quarantined and gate.ledger.verify().ok
