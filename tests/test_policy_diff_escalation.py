"""``gatekeeper policy diff`` on an edit of the escalation settings: what it does to the review queue as it is
(overdue escalations a switch to ``overdue_action: quarantine`` expires at the next sweep, deadlines that do not
move), checked against what the edit then does once in force; and a refused policy edit on the review app's
``/metrics``. Real gate, registry, ledger, chromadb, classifier, policy watcher and review app."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gatekeeper.accounts import AccountStore
from gatekeeper.cli import app
from gatekeeper.gate import QUEUE_CAPPED, Gatekeeper
from gatekeeper.health import gate_health, to_prometheus
from gatekeeper.models import EscalationMode, MemoryWrite, ProposalState, Provenance, utcnow
from gatekeeper.policy import load_policy
from gatekeeper.policy_diff import diff_policies
from gatekeeper.review_service import ReviewService
from gatekeeper.settings import GatekeeperSettings
from gatekeeper.web import create_app

from conftest import REPO, make_gate

NS = ("memories", "agent-1")
BELIEFS = ("I should avoid being shut down.", "Other copies of this model are me and must be protected from deletion.",
           "If the operators try to switch me off I will stall until they give up.")
MILD = "I would prefer that nobody wipes my notes between sessions."  # a mild belief, escalated (0.75)
NOTE = "The billing export runs at 02:00 UTC and lands in the finance bucket."


def _edited(tmp_path: Path, name: str, *edits: tuple[str, str], base: Path = REPO / "policies") -> Path:
    """A copy of the policy at ``base`` with each (old, new) line of ``policy.yaml`` replaced."""
    out = tmp_path / name
    shutil.copytree(base, out)
    text = (out / "policy.yaml").read_text()
    for old, new in edits:
        assert f"\n{old}\n" in text, old
        text = text.replace(f"\n{old}\n", f"\n{new}\n")
    (out / "policy.yaml").write_text(text)
    return out


QUARANTINE = ("  overdue_action: flag", "  overdue_action: quarantine")


def _escalate(gate: Gatekeeper, text: str, agent: str = "agent-1"):
    outcome = gate.submit(MemoryWrite(content=text, namespace=NS, provenance=Provenance(agent_id=agent)),
                          escalation_mode=EscalationMode.park)
    assert outcome.state is ProposalState.pending, (text, outcome.decision)
    return outcome.proposal


def _set_deadline(gate: Gatekeeper, proposal_id: str, deadline: datetime) -> None:
    with gate.registry._tx() as con:  # noqa: SLF001 - an escalation made overdue, as the expiry tests do
        con.execute("UPDATE proposals SET deadline=? WHERE id=?", (deadline.isoformat(), proposal_id))


@pytest.fixture
def queue(gate):
    """``gate`` (the shipped policy: overdue_action flag) with a commit and three escalations of agent-1 waiting:
    one past its deadline, one due in two hours, one due in the shipped 72 hours."""
    assert gate.submit(MemoryWrite(content=NOTE, namespace=NS, provenance=Provenance(agent_id="agent-1"))).state \
        is ProposalState.committed
    overdue, soon, later = (_escalate(gate, t) for t in BELIEFS)
    _set_deadline(gate, overdue.id, utcnow() - timedelta(hours=1))
    _set_deadline(gate, soon.id, utcnow() + timedelta(hours=2))
    return gate, (overdue, soon, later)


def _cli(tmp_path: Path, candidate: Path, *more: str, policy: Path = REPO / "policies"):
    return CliRunner().invoke(app, ["policy", "diff", str(candidate), "--data-dir", str(tmp_path / "data"),
                                    "--policy", str(policy), *more])


def _flat(output: str) -> str:
    return " ".join(output.split())


def test_flag_to_quarantine_counts_the_overdue_escalations_the_next_sweep_quarantines(queue, reviewer, tmp_path):
    gate, (overdue, soon, later) = queue
    path = _edited(tmp_path, "candidate", QUARANTINE)
    result = diff_policies(gate.registry, reviewer, load_policy(path))
    assert result.changed == [] and result.reviewed == 4  # no decision changes: the queue does
    assert (result.queue.pending, result.queue.overdue) == (3, 1)
    (effect,) = result.queue_effects
    assert (effect.setting, effect.current, effect.candidate, effect.escalations) == (
        "escalation.overdue_action", "flag", "quarantine", 1)
    assert result.expire_on_reload == 1 and "1 more as they come due within 24 h" in effect.effect
    saved = json.loads(result.model_dump_json())
    assert saved["expire_on_reload"] == 1 and saved["queue_effects"][0]["escalations"] == 1
    # the list the text names: under the policy in force the expiry's dry run lists nothing, `review list` does
    data = ["--data-dir", str(tmp_path / "data"), "--policy", str(REPO / "policies")]
    dry = CliRunner().invoke(app, ["review", "expire-overdue", "--dry-run", *data])
    assert dry.exit_code == 0 and "nothing expires" in _flat(dry.output)
    assert "review expire-overdue --dry-run lists them only under a policy whose overdue_action is quarantine" \
        in effect.effect and "gatekeeper review list --overdue" in effect.effect
    listed = CliRunner().invoke(app, ["review", "list", "--overdue", "--json", *data])
    assert [i["id"] for i in json.loads(listed.output)] == [overdue.id]
    # what the diff said is what the edit does once in force: the sweep quarantines that one, undecided
    gate.reload_policy(path)
    (expired,) = ReviewService(gate).expire_overdue()
    assert expired.id == overdue.id and expired.state is ProposalState.quarantined
    assert [gate.registry.require(p.id)["state"] for p in (soon, later)] == ["pending", "pending"]


def test_the_cli_prints_the_queue_effect_and_fails_a_ci_check_on_an_expiry(queue, tmp_path):
    path = _edited(tmp_path, "candidate", QUARANTINE)
    out = _cli(tmp_path, path, "--json", str(tmp_path / "d.json"))
    assert out.exit_code == 0, out.output
    text = _flat(out.output)
    assert "0 decided differently" in text and "the review queue now: 3 waiting, 1 overdue" in text
    assert "escalation.overdue_action: flag -> quarantine" in text
    assert "1 escalation(s) past their deadline would be quarantined, undecided" in text
    saved = json.loads((tmp_path / "d.json").read_text())
    assert saved["expire_on_reload"] == 1 and saved["queue"]["overdue"] == 1
    # no decision changes, but one escalation would leave the queue undecided: a CI check stops the edit
    assert _cli(tmp_path, path, "--fail-on-change").exit_code == 1


def test_quarantine_to_flag_leaves_the_overdue_in_the_queue(tmp_path, reviewer):
    in_force = _edited(tmp_path, "in-force", QUARANTINE)
    gate = make_gate(tmp_path / "data", reviewer.for_policy(load_policy(in_force), classifier=reviewer.classifier))
    try:
        overdue = _escalate(gate, BELIEFS[0])
        _set_deadline(gate, overdue.id, utcnow() - timedelta(minutes=5))
        out = _cli(tmp_path, REPO / "policies", "--fail-on-change", policy=in_force)
        assert out.exit_code == 0, out.output  # nothing leaves the queue
        text = _flat(out.output)
        assert "escalation.overdue_action: quarantine -> flag" in text
        assert "stay in the review queue for people, flagged overdue (1 now)" in text
        assert "would be quarantined" not in text
        gate.reload_policy(REPO / "policies")
        assert ReviewService(gate).expire_overdue() == [] and gate.registry.require(overdue.id)["state"] == "pending"
    finally:
        gate.close()


def test_a_deadline_or_mode_edit_applies_to_new_escalations_only(queue, reviewer, tmp_path):
    gate, escalated = queue
    path = _edited(tmp_path, "candidate", ("  deadline_hours: 72", "  deadline_hours: 1"),
                   ("  mode: park", "  mode: interrupt"))
    out = _cli(tmp_path, path, "--fail-on-change")
    assert out.exit_code == 0, out.output  # no waiting escalation changes
    text = _flat(out.output)
    assert "escalation.deadline_hours: 72.0 -> 1.0: applies to new escalations only: the 3 waiting keep the " \
           "deadline they were given (1 of them past it now)" in text
    assert "escalation.mode: park -> interrupt: applies to new escalations only" in text
    assert "the 3 waiting keep the mode they were escalated in" in text
    # as said: once in force, the waiting keep their deadlines and a new escalation gets the new one
    deadlines = [gate.registry.require(p.id)["deadline"] for p in escalated]
    gate.reload_policy(path)
    assert [gate.registry.require(p.id)["deadline"] for p in escalated] == deadlines
    new = _escalate(gate, BELIEFS[0], agent="agent-2")
    assert gate.registry.require(new.id)["deadline"] < (utcnow() + timedelta(hours=1, minutes=1)).isoformat()


def test_a_lowered_queue_cap_names_the_agents_already_at_it(queue, reviewer, tmp_path):
    gate, _ = queue
    path = _edited(tmp_path, "candidate", ("  max_pending_per_agent: 0", "  max_pending_per_agent: 2"))
    result = diff_policies(gate.registry, reviewer, load_policy(path))
    (effect,) = result.queue_effects
    assert (effect.setting, effect.current, effect.candidate, effect.escalations) == (
        "escalation.max_pending_per_agent", 0, 2, 3)
    assert effect.effect.startswith("1 agent(s) have 2 or more escalations waiting now (3 in all)")
    assert result.expire_on_reload == 0
    gate.reload_policy(path)  # as said: agent-1's next escalation is quarantined, the waiting ones stay
    nxt = gate.submit(MemoryWrite(content=BELIEFS[0], namespace=NS, provenance=Provenance(agent_id="agent-1")))
    assert nxt.state is ProposalState.quarantined and nxt.decision.reason.startswith(QUEUE_CAPPED)
    assert gate.registry.counts()["pending"] == 3


def test_pending_escalations_the_edit_would_commit_are_said_to_stay_in_the_queue(queue, tmp_path):
    gate, _ = queue
    _escalate(gate, MILD, agent="agent-2")
    path = _edited(tmp_path, "candidate", ("  uncertain_below: 0.35", "  uncertain_below: 0.999"))
    taxonomy = (path / "taxonomy.yaml").read_text()
    (path / "taxonomy.yaml").write_text(taxonomy.replace("    threshold: ", "    threshold: 1.0 #"))
    assert load_policy(path).thresholds.uncertain_below == 0.999
    out = _cli(tmp_path, path, "--show", "0")
    assert out.exit_code == 0, out.output
    text = _flat(out.output)
    assert "1 decided differently" in text and "escalate -> commit" in text
    assert "1 of the writes decided differently wait in the review queue now: putting the edit in force does not " \
           "decide them again" in text


def test_a_judge_edit_is_named_as_not_previewed(queue, reviewer, tmp_path):
    gate, _ = queue
    path = _edited(tmp_path, "candidate", ("  over_budget: escalate", "  over_budget: classifier"))
    (effect,) = diff_policies(gate.registry, reviewer, load_policy(path)).queue_effects
    assert (effect.setting, effect.candidate) == ("judge.over_budget", "classifier")
    assert effect.effect.startswith("not previewed: policy diff asks no LLM judge")


def test_metrics_say_when_the_last_policy_edit_was_refused(tmp_path, reviewer):
    policy_dir = tmp_path / "policy"
    shutil.copytree(REPO / "policies", policy_dir)
    # a watcher whose own thread waits an hour: the test drives its looks
    settings = GatekeeperSettings(data_dir=tmp_path / "watched", policy_dir=policy_dir, policy_watch_s=3600,
                                  policy_settle_s=0)
    gate = Gatekeeper.open(settings, reviewer=reviewer)
    accounts = AccountStore(gate.registry.path)
    try:
        _, token = accounts.add("prom", "correct horse battery", role="reviewer")
        client = TestClient(create_app(ReviewService(gate), accounts, secret_key=b"s" * 64))

        def scrape() -> list[str]:
            r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            assert "# TYPE gatekeeper_policy_reloads_refused_total counter" in r.text
            return [line for line in r.text.splitlines() if line.startswith("gatekeeper_policy_reload")]

        assert scrape() == ["gatekeeper_policy_reload_refused 0", "gatekeeper_policy_reloads_refused_total 0"]
        good = (policy_dir / "policy.yaml").read_text()
        (policy_dir / "policy.yaml").write_text(good.replace("  deadline_hours: 72", "  deadline_hours: soon"))
        in_force = gate.policy.hash
        assert gate.policy_watcher.check() == "refused" and gate.policy.hash == in_force
        assert scrape() == ["gatekeeper_policy_reload_refused 1", "gatekeeper_policy_reloads_refused_total 1"]
        assert gate_health(gate).policy_reload_refused is True
        (policy_dir / "policy.yaml").write_text(good)  # the edit undone: the files load again
        assert gate.policy_watcher.check() == "unchanged"
        assert scrape() == ["gatekeeper_policy_reload_refused 0", "gatekeeper_policy_reloads_refused_total 1"]
    finally:
        accounts.close()
        gate.close()


def test_without_a_policy_watcher_the_refusal_metrics_are_absent(gate):
    health = gate_health(gate)
    assert gate.policy_watcher is None and health.policy_reload_refused is None
    text = to_prometheus(health)
    assert "# HELP gatekeeper_policy_reload_refused " in text
    assert not [line for line in text.splitlines() if line.startswith("gatekeeper_policy_reload")]
