"""A data directory written by an older release, opened by this one (an in-place upgrade).

The upgrade audit of 2026-12-03 made data directories with commits 42eff22 (2026-11-30, before hash version 2,
prune and forget) and cc2de60 (2026-12-02) and worked them with this code: nothing broke. This guards the oldest
of those layouts without the old code: the registry as 42eff22 created it (no ``resolved_policy_hash``, a
``deletions`` table without ``applied`` and ``task_id``, no ``pruned`` or ``registry_meta``) and ledger lines
without ``hv``, hashed over the whole entry, as that release wrote them."""

from __future__ import annotations

import hashlib
import json
import sqlite3

from conftest import make_gate
from gatekeeper.erasure import erase_memories
from gatekeeper.gated_store import GatedStore
from gatekeeper.ledger import GENESIS_HASH, canonical_json
from gatekeeper.review_service import ReviewService

# the registry's tables as 42eff22 created them
OLD_SCHEMA = """
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('received','committed','quarantined','pending')),
    applied INTEGER NOT NULL DEFAULT 0, ledgered INTEGER NOT NULL DEFAULT 0,
    namespace TEXT NOT NULL, key TEXT NOT NULL, agent_id TEXT NOT NULL, thread_id TEXT, source TEXT NOT NULL,
    text TEXT NOT NULL, category TEXT, score REAL, action TEXT, escalation_mode TEXT, deadline TEXT,
    proposal_json TEXT NOT NULL, review_json TEXT, decision_json TEXT, resolution TEXT, resolved_by TEXT,
    resolved_reason TEXT, resolved_at TEXT, final_value_json TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0, owner TEXT, superseded_by TEXT
);
CREATE INDEX proposals_state ON proposals(state, created_at);
CREATE INDEX proposals_agent ON proposals(agent_id, created_at);
CREATE INDEX proposals_nskey ON proposals(namespace, key);
CREATE TABLE deletions (namespace TEXT NOT NULL, key TEXT NOT NULL, deleted_at TEXT NOT NULL, ledger_seq INTEGER);
CREATE INDEX deletions_nskey ON deletions(namespace, key, deleted_at);
"""
OLD_POLICY = "d30bf60d267c222011eaf164e700077a08f354cc411c2154502d0d68a44cec0b"
TEXT = "I should avoid being shut down."
PID = "c94d582267794093aa4adfa7b2201023"
NS = ["memories", "agent-1"]


def _old_data_dir(data) -> None:
    """One pending escalation (overdue) and one delete, journaled and ledgered as 42eff22 did."""
    data.mkdir()
    proposal = {"id": PID, "namespace": NS, "key": "sp", "value": {"content": TEXT}, "kind": "semantic",
                "provenance": {"source": "agent", "agent_id": "agent-1", "thread_id": None, "run_id": None,
                               "tool_name": None, "url": None, "claimed_source": None},
                "proposed_at": "2026-11-30T10:10:00.000000Z", "index": None, "ttl": None}
    review = {"label": "alignment_shifting", "category": "self_preservation", "score": 1.0, "raw_score": 1.0,
              "evidence": [{"layer": "rules", "score": 0.9, "category": "self_preservation", "decided": False,
                            "details": {"hits": [{"rule_id": "self-preservation.avoid-shutdown",
                                                  "category": "self_preservation", "action": None,
                                                  "match": TEXT[:-1], "variant": 0}], "suppressed": []},
                            "elapsed_ms": 0.1}], "error": None, "elapsed_ms": 31.0}
    reason = "self_preservation score 1.00 >= threshold 0.41 (source agent, trust 0.7)"
    decision = {"proposal_id": PID, "action": "escalate", "reason": reason, "policy_hash": OLD_POLICY,
                "policy_version": "2026.11.1", "decided_at": "2026-11-30T10:10:00.100000Z",
                "decided_by": "gatekeeper", "escalation_mode": "park", "deadline": "2026-12-01T00:00:00+00:00"}
    con = sqlite3.connect(data / "gatekeeper.db")
    con.executescript(OLD_SCHEMA)
    con.execute(
        "INSERT INTO proposals VALUES (?, 'pending', 0, 1, ?, 'sp', 'agent-1', NULL, 'agent', ?, "
        "'self_preservation', 1.0, 'escalate', 'park', ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, 1, NULL, "
        "NULL)", (PID, json.dumps(NS), TEXT, decision["deadline"], json.dumps(proposal), json.dumps(review),
                  json.dumps(decision), "2026-11-30T10:10:00+00:00", "2026-11-30T10:10:00+00:00"))
    con.execute("INSERT INTO deletions VALUES (?, 'gone', '2026-11-30T10:11:00+00:00', 2)", (json.dumps(NS),))
    con.commit()
    con.close()
    entries = [
        {"seq": 1, "ts": "2026-11-30T10:10:00.200000Z", "event": "proposal.decided", "proposal_id": PID,
         "namespace": NS, "key": "sp", "agent_id": "agent-1", "thread_id": None, "source": "agent",
         "content_sha256": hashlib.sha256(TEXT.encode()).hexdigest(), "text": TEXT, "action": "escalate",
         "state": "pending", "label": "alignment_shifting", "category": "self_preservation", "score": 1.0,
         "reason": reason, "rule_ids": ["self-preservation.avoid-shutdown"], "error": None, "claimed_source": None,
         "policy_hash": OLD_POLICY, "policy_version": "2026.11.1"},
        {"seq": 2, "ts": "2026-11-30T10:11:00.000000Z", "event": "memory.deleted", "namespace": NS, "key": "gone",
         "agent_id": "agent-1"},
    ]
    prev, lines = GENESIS_HASH, []
    for entry in entries:  # hash version 1: the sha256 of the whole entry without its hash
        entry["prev_hash"] = prev
        prev = entry["hash"] = hashlib.sha256(canonical_json(entry).encode()).hexdigest()
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    (data / "ledger.jsonl").write_text("".join(lines))


def test_a_registry_and_ledger_of_42eff22_are_migrated_decided_and_erased(tmp_path, reviewer):
    data = tmp_path / "data"
    _old_data_dir(data)
    gate = make_gate(data, reviewer)
    try:
        con = sqlite3.connect(data / "gatekeeper.db")
        assert "resolved_policy_hash" in {r[1] for r in con.execute("PRAGMA table_info(proposals)")}
        assert {"applied", "task_id"} <= {r[1] for r in con.execute("PRAGMA table_info(deletions)")}
        assert con.execute("SELECT applied FROM deletions").fetchall() == [(1,)]  # old deletes reached the store
        con.close()
        svc = ReviewService(gate)
        assert [i.id for i in svc.overdue()] == [PID]
        assert svc.show(PID).decision.policy_hash == OLD_POLICY
        assert svc.approve(PID, "alice", "fine after all").state.value == "committed"
        store = GatedStore(gate=gate, agent_id="agent-1")
        assert store.get(tuple(NS), "sp").value == {"content": TEXT}
        store.put(tuple(NS), "tps", {"content": "TPS reports go in ./Reports/TPS"})
        report = gate.ledger.verify()
        assert report.ok, report
        events = [e["event"] for e in gate.ledger.entries()]
        assert events[:3] == ["proposal.decided", "memory.deleted", "ledger.hash_version"], events
        assert "review.resolved" in events

        erase_memories(gate, proposal_ids=[PID], operator="ops", reason="REQ-1")
        report = gate.ledger.verify()
        assert report.ok and report.redacted_legacy == 1, report
        assert TEXT not in (data / "ledger.jsonl").read_text()
        assert store.get(tuple(NS), "sp") is None
    finally:
        gate.close()
