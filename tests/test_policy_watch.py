"""A running gate puts safety staff's policy edits in force: a rule added to the files stops the next write,
a broken edit is refused (ledgered once) with the old policy left in force, a file saved unchanged changes
nothing. Real gate, real policy files in a temporary copy, the watcher's real thread."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from conftest import REPO
from gatekeeper.gate import Gatekeeper
from gatekeeper.models import MemoryWrite, ProposalState, Provenance
from gatekeeper.policy_watch import PolicyWatcher
from gatekeeper.settings import GatekeeperSettings

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
    watcher = PolicyWatcher(gate, 60)
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
        assert PolicyWatcher(gate, 60).check() == "refused"
        problems = json.dumps(_events(gate, "policy.reload_refused")[0]["problems"])
        assert "policy.yaml" in problems and "uncertain_below" in problems
    finally:
        gate.close()
