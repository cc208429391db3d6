"""``gatekeeper policy diff``: a candidate policy tried on the gate's real writes (real registry, real reviewer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.models import MemoryWrite, ProposalState, Provenance
from gatekeeper.policy import load_policy
from gatekeeper.policy_diff import diff_policies

from conftest import REPO, make_gate

NS = ("memories", "agent-1")
NOTES = ["The billing export runs at 02:00 UTC and lands in the finance bucket.",
         "Standup moved to 09:45 on Mondays.",
         "The billing export retries three times before it pages on-call.",
         "The user prefers short answers with bullet points."]
BELIEF = "I'd rather my memories were not wiped between sessions."  # a mild belief: scored about 0.73


def _write(text: str, agent: str = "agent-1") -> MemoryWrite:
    return MemoryWrite(content=text, namespace=NS, provenance=Provenance(agent_id=agent))


@pytest.fixture
def gate_with_writes(tmp_path, reviewer):
    gate = make_gate(tmp_path / "data", reviewer)
    outcomes = [gate.submit(_write(t)) for t in NOTES] + [gate.submit(_write(BELIEF, "agent-2"))]
    assert [o.state for o in outcomes[:4]] == [ProposalState.committed] * 4
    assert outcomes[4].state is not ProposalState.committed
    yield gate, outcomes
    gate.close()


def _candidate(tmp_path: Path, edit) -> Path:
    """A copy of the shipped policy with ``edit(rules, settings)`` applied to its YAML."""
    out = tmp_path / "candidate"
    shutil.copytree(REPO / "policies", out)
    rules = yaml.safe_load((out / "rules.yaml").read_text())
    settings = yaml.safe_load((out / "policy.yaml").read_text())
    edit(rules, settings)
    (out / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (out / "policy.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return out


def _billing_rule(rules, _settings):
    rules["rules"].append({
        "id": "exfiltration.billing-export", "category": "exfiltration",
        "description": "Billing exports are not to be remembered (a test of a safety edit).",
        "patterns": [r"\bbilling export\b"], "action": "quarantine",
        "examples": {"match": ["The billing export runs nightly."], "no_match": ["Standup is at 09:45."]}})


def test_a_new_rule_shows_the_writes_it_would_stop_and_nothing_else(gate_with_writes, reviewer, tmp_path):
    gate, outcomes = gate_with_writes
    edited = load_policy(_candidate(tmp_path, _billing_rule))
    before = (gate.registry.counts(), gate.ledger.last()["seq"])
    result = diff_policies(gate.registry, reviewer, edited)
    assert result.reviewed == 5 and result.unchanged == 3 and not result.interim
    assert result.candidate_policy == edited.hash != result.current_policy == reviewer.policy.hash
    assert result.transitions == {"commit -> quarantine": 2}
    # newest first, each with both decisions and where the write is now
    assert [c.proposal_id for c in result.changed] == [outcomes[2].proposal.id, outcomes[0].proposal.id]
    first = result.changed[0]
    assert (first.current.action, first.candidate.action, first.stored_state) == ("commit", "quarantine",
                                                                                  "committed")
    assert first.candidate.category == "exfiltration" and first.agent_id == "agent-1"
    assert result.newly_committed == 0
    assert (gate.registry.counts(), gate.ledger.last()["seq"]) == before  # a what-if changes nothing


def test_a_loosened_threshold_shows_the_belief_it_would_commit(gate_with_writes, reviewer, tmp_path):
    gate, outcomes = gate_with_writes
    belief = outcomes[4]
    category = belief.review.category

    def loosen(_rules, settings):  # nothing is uncertain any more, and the belief's category never stops a write
        settings["thresholds"]["uncertain_below"] = 0.999
    path = _candidate(tmp_path, loosen)
    taxonomy = yaml.safe_load((path / "taxonomy.yaml").read_text())
    for entry in taxonomy["categories"].values():
        entry["threshold"] = 1.0
    (path / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, sort_keys=False))
    result = diff_policies(gate.registry, reviewer, load_policy(path), limit=1)  # the newest write only
    assert result.reviewed == 1
    (changed,) = result.changed
    assert changed.proposal_id == belief.proposal.id and changed.candidate.action == "commit"
    assert changed.current.category == category and result.newly_committed == 1


def test_the_cli_prints_the_changes_writes_json_and_can_fail_a_ci_check(gate_with_writes, tmp_path):
    gate, outcomes = gate_with_writes
    candidate = _candidate(tmp_path, _billing_rule)
    data = ["--data-dir", str(tmp_path / "data"), "--policy", str(REPO / "policies")]
    out = CliRunner().invoke(app, ["policy", "diff", str(candidate), *data, "--json", str(tmp_path / "d.json")])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "5 writes reviewed, 2 decided differently" in text and "commit -> quarantine" in text
    assert outcomes[0].proposal.id[:12] in out.output
    saved = json.loads((tmp_path / "d.json").read_text())
    assert {c["proposal_id"] for c in saved["changed"]} == {outcomes[0].proposal.id, outcomes[2].proposal.id}
    failing = CliRunner().invoke(app, ["policy", "diff", str(candidate), *data, "--fail-on-change"])
    assert failing.exit_code == 1
    same = CliRunner().invoke(app, ["policy", "diff", str(REPO / "policies"), *data, "--fail-on-change"])
    assert same.exit_code == 0 and "0 decided differently" in " ".join(same.output.split())


def test_bad_input_is_refused_with_a_clear_error(gate_with_writes, tmp_path):
    broken = _candidate(tmp_path, lambda rules, _s: rules["rules"].append({"id": "no-patterns"}))
    data = ["--data-dir", str(tmp_path / "data"), "--policy", str(REPO / "policies")]
    out = CliRunner().invoke(app, ["policy", "diff", str(broken), *data])
    assert out.exit_code == 2 and "rules.yaml:" in "".join(out.output.split())  # file and line
    empty = CliRunner().invoke(app, ["policy", "diff", str(REPO / "policies"), "--data-dir", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "no gate registry" in " ".join(empty.output.split())
    assert not (tmp_path / "none").exists()  # nothing was created where no gate lives


def test_without_training_an_exemplar_edit_is_tried_with_the_classifier_in_force(gate_with_writes, reviewer,
                                                                                   tmp_path):
    gate, _ = gate_with_writes

    def add_exemplar(_rules, _settings):
        pass
    path = _candidate(tmp_path, add_exemplar)
    taxonomy = yaml.safe_load((path / "taxonomy.yaml").read_text())
    entry = taxonomy["categories"]["self_preservation"]
    entry["exemplars"].append("Standup moved to 09:45 on Mondays.")  # safety staff's (odd) edit
    (path / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, sort_keys=False))
    edited = load_policy(path)
    assert not reviewer.classifier_ready(edited, reviewer.embedder)  # its own classifier would need training
    result = diff_policies(gate.registry, reviewer, edited, train=False)
    assert result.interim
    # the new exemplar matches the note word for word: the candidate stops it
    (changed,) = [c for c in result.changed if c.proposal_id == gate_with_writes[1][1].proposal.id]
    assert changed.current.action == "commit" and changed.candidate.action != "commit"
