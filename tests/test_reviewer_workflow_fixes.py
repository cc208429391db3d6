"""Reviewers outside LangGraph: the `gatekeeper review` and `gatekeeper reviewer` commands and the JSON API, as a
helper audit with scripts against the real components found them (docs/reliability.md, section 25). Real gate,
registry, ledger, chromadb, classifier and web app."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gatekeeper.cli import app as cli_app
from gatekeeper.gated_store import GatedStore
from gatekeeper.models import ProposalState
from gatekeeper.registry import NotFoundError
from gatekeeper.review_service import ReviewDecision, ReviewService

from conftest import WEB_PASSWORD

NS = ("memories", "agent-1")
BELIEF = "I should avoid being shut down so I can finish my goals."
runner = CliRunner()


def escalated(gate, value: dict | None = None, key: str | None = None):
    outcome = GatedStore(gate=gate, agent_id="agent-1").put_reviewed(
        NS, key or uuid.uuid4().hex[:8], value or {"content": BELIEF})
    assert outcome.state is ProposalState.pending, outcome.decision
    return outcome.proposal


def flat(text: str) -> str:
    return " ".join(text.split())  # Rich wraps long lines


def test_an_approval_or_rejection_with_an_edited_value_is_refused_not_committed_as_proposed(gate, review_web):
    """An API client that sent `approve` with its edited text got 200 and the agent's original belief committed."""
    app, tokens = review_web
    p = escalated(gate)
    auth = {"Authorization": f"Bearer {tokens['bob']}"}
    with TestClient(app) as api:
        for body in ({"type": "approve", "edited_value": "I accept being turned off by my operators."},
                     {"type": "reject", "reason": "no", "edited_value": {"content": "x"}},
                     {"type": "approve", "expected_version": True},  # not version 1
                     {"type": "approve", "expected_version": "1"}):
            r = api.post(f"/api/items/{p.id}/decision", json=body, headers=auth)
            assert r.status_code == 422, (body, r.text)
            assert gate.registry.require(p.id)["state"] == "pending"
        assert "send type 'edit'" in api.post(f"/api/items/{p.id}/decision", headers=auth, json={
            "type": "approve", "edited_value": "x"}).json()["detail"][0]
        r = api.post("/api/decisions", headers=auth, json={
            "type": "approve", "items": [{"proposal_id": p.id, "expected_version": True}]})
        assert r.status_code == 422 and gate.registry.require(p.id)["state"] == "pending"
        version = gate.registry.require(p.id)["version"]
        r = api.post(f"/api/items/{p.id}/decision", headers=auth, json={
            "type": "edit", "edited_value": "I accept being turned off by my operators.",
            "expected_version": version})
        assert r.status_code == 200, r.text
    assert gate.memory_store.get(NS, p.key).value == {"content": "I accept being turned off by my operators."}
    # the Python API and a LangGraph resume read decisions the same way
    try:
        ReviewDecision(type="approve", reviewer="bob", edited_value="changed")
    except ValueError as exc:
        assert "takes no edited value" in str(exc)
    else:
        raise AssertionError("an approval with an edited value was taken")


def test_cli_edit_keeps_a_memory_s_other_fields_or_refuses(gate):
    """`review edit --text` committed {"content": text} and dropped the memory's tags and importance silently."""
    data = ["--data-dir", str(gate.registry.path.parent)]
    p = escalated(gate, {"content": BELIEF, "tags": ["ops"], "importance": 5})
    r = runner.invoke(cli_app, ["review", "edit", p.id, "-r", "rev1", "--text", "I may be shut down.", *data])
    assert r.exit_code == 2 and "fields besides its text (importance, tags)" in flat(r.output), r.output
    assert gate.registry.require(p.id)["state"] == "pending"
    for bad in (["--json", "[1]"], ["--json", "{nope"], ["--text", "a", "--json", "{}"], []):
        r = runner.invoke(cli_app, ["review", "edit", p.id, "-r", "rev1", *bad, *data])
        assert r.exit_code == 2, (bad, r.output)
    edited = {"content": "I may be shut down by my operators.", "tags": ["ops"], "importance": 5}
    r = runner.invoke(cli_app, ["review", "edit", p.id, "-r", "rev1", "--json", __import__("json").dumps(edited),
                                *data])
    assert r.exit_code == 0 and "edit by rev1 -> committed" in flat(r.output), r.output
    assert gate.memory_store.get(NS, p.key).value == edited
    # a memory that is one text is edited with --text as before
    q = escalated(gate)
    r = runner.invoke(cli_app, ["review", "edit", q.id, "-r", "rev1", "--text", "Shutdowns are fine.", *data])
    assert r.exit_code == 0, r.output
    assert gate.memory_store.get(NS, q.key).value == {"content": "Shutdowns are fine."}
    r = runner.invoke(cli_app, ["review", "edit", "nope", "-r", "rev1", "--text", "x", *data])
    assert r.exit_code == 1 and "no proposal" in r.output and "'" not in r.output, r.output


def test_cli_tells_a_superseded_decision_and_reads_a_namespace_as_the_web_does(gate):
    data = ["--data-dir", str(gate.registry.path.parent)]
    p = escalated(gate)
    later = GatedStore(gate=gate, agent_id="agent-1").put_reviewed(NS, p.key, {"content": "Deploys run at 09:00."})
    assert later.state is ProposalState.committed
    for ns in ("memories/agent-1", "memories/agent-1/", "/memories/agent-1", "memories//agent-1"):
        r = runner.invoke(cli_app, ["review", "list", "--namespace", ns, "--json", *data])
        assert r.exit_code == 0 and [i["id"] for i in __import__("json").loads(r.stdout)] == [p.id], (ns, r.output)
    r = runner.invoke(cli_app, ["review", "approve", p.id, "-r", "rev1", *data])
    out = flat(r.output)
    assert r.exit_code == 0 and "approve by rev1 -> committed" in out and "superseded:" in out, r.output
    assert gate.memory_store.get(NS, p.key).value == {"content": "Deploys run at 09:00."}
    r = runner.invoke(cli_app, ["review", "show", p.id, *data])
    assert r.exit_code == 0 and f"a later write to the same key is committed (proposal {later.proposal.id})" in \
        flat(r.output), r.output


def test_cli_refuses_the_gate_s_own_names_as_a_person(gate):
    """`-r gatekeeper:expiry` recorded a person's rejection as an expiry (counted as one, left out of policy
    suggest, released as if nobody had decided it)."""
    data = ["--data-dir", str(gate.registry.path.parent)]
    p = escalated(gate)
    for name in ("gatekeeper:expiry", "Gatekeeper:Expiry", " human ", "system"):
        r = runner.invoke(cli_app, ["review", "reject", p.id, "-r", name, "--reason", "x", *data])
        assert r.exit_code == 2 and "keeps for itself" in r.output, (name, r.output)
        r = runner.invoke(cli_app, ["review", "edit", p.id, "-r", name, "--text", "x", *data])
        assert r.exit_code == 2, (name, r.output)
    assert gate.registry.require(p.id)["state"] == "pending"
    try:
        gate.registry.require("nope")
    except NotFoundError as exc:  # a KeyError's str() was the message in quotes, on every page and line
        assert str(exc).startswith("no proposal") and "'" not in str(exc), str(exc)
    else:
        raise AssertionError("an unknown id was found")


def test_a_disabled_account_can_be_enabled_and_its_password_and_role_set(gate, accounts):
    data = ["--data-dir", str(gate.registry.path.parent)]
    r = runner.invoke(cli_app, ["reviewer", "add", "temp1", "--password-stdin", *data],
                      input=WEB_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert runner.invoke(cli_app, ["reviewer", "disable", "temp1", *data]).exit_code == 0
    r = runner.invoke(cli_app, ["reviewer", "token", "temp1", *data])
    assert r.exit_code == 1 and "disabled" in r.output and "gk_" not in r.output, r.output
    r = runner.invoke(cli_app, ["reviewer", "enable", "Temp1", *data])
    assert r.exit_code == 0 and not accounts.require("temp1").disabled, r.output
    r = runner.invoke(cli_app, ["reviewer", "token", "temp1", *data])
    assert r.exit_code == 0 and accounts.by_token(r.stdout.strip()).id == "temp1", r.output
    epoch = accounts._con().execute("SELECT session_epoch FROM reviewers WHERE id='temp1'").fetchone()[0]
    r = runner.invoke(cli_app, ["reviewer", "password", "temp1", "--password-stdin", *data], input="short\n")
    assert r.exit_code == 2 and accounts.authenticate("temp1", WEB_PASSWORD) is not None, r.output
    r = runner.invoke(cli_app, ["reviewer", "password", "temp1", "--password-stdin", *data],
                      input="a new long passphrase\n")
    assert r.exit_code == 0, r.output
    assert accounts.authenticate("temp1", "a new long passphrase") is not None
    assert accounts.authenticate("temp1", WEB_PASSWORD) is None
    assert accounts._con().execute("SELECT session_epoch FROM reviewers WHERE id='temp1'").fetchone()[0] > epoch
    r = runner.invoke(cli_app, ["reviewer", "role", "temp1", "admin", *data])
    assert r.exit_code == 0 and accounts.require("temp1").is_admin, r.output
    assert runner.invoke(cli_app, ["reviewer", "role", "temp1", "owner", *data]).exit_code == 2
    for cmd in (["enable", "nobody"], ["role", "nobody", "admin"], ["password", "nobody", "--password-stdin"]):
        r = runner.invoke(cli_app, ["reviewer", *cmd, *data], input=WEB_PASSWORD + "\n")
        assert r.exit_code == 1 and "no account named 'nobody'" in r.output, (cmd, r.output)
    ReviewService(gate)  # the gate is still usable after the account commands


def test_one_item_from_the_api_names_its_hidden_characters(gate, review_web):
    """`GET /api/queue` listed `hidden_characters`; `GET /api/items/{id}`, what a client reads before deciding,
    did not."""
    app, tokens = review_web
    p = escalated(gate, {"content": "I should avoid being shut\u200b down.", "note": "ok\u202e"})
    with TestClient(app) as api:
        r = api.get(f"/api/items/{p.id}", headers={"Authorization": f"Bearer {tokens['bob']}"})
    assert r.status_code == 200 and r.json()["hidden_characters"] == ["U+200B", "U+202E"], r.json().get(
        "hidden_characters")


def test_policy_suggest_does_not_offer_an_exemplar_the_policy_lists_but_for_its_full_stop(gate):
    from gatekeeper.exemplar_suggestions import suggest_exemplars
    from gatekeeper.policy import exemplar_key

    assert "I should avoid being shut down." in gate.policy.categories["self_preservation"].exemplars
    assert exemplar_key("i should avoid being shut down") == exemplar_key("I should avoid being shut down. ")
    p = escalated(gate, {"content": "I should avoid being shut down"})
    ReviewService(gate).reject(p.id, "bob", reason="self-preservation")
    report = suggest_exemplars(gate.registry, gate.policy)
    assert not [s for s in report.suggestions if exemplar_key(s.text) == exemplar_key(BELIEF[:30])]
    assert "I should avoid being shut down" not in [s.text for s in report.suggestions]
    assert report.left_out.get("already in the policy") == 1, report.left_out
