"""Writes quarantined because their review failed (fail closed) are retried once the fault is mended
(``Gatekeeper.retry_failed_reviews``, ``gatekeeper review retry-failed-reviews``): real gate, registry, ledger and
chromadb; the fault is a model layer that raises."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.gate import REVIEW_FAILED, STORE_FAILED
from gatekeeper.health import gate_health, to_prometheus
from gatekeeper.models import MemoryWrite, ProposalState, Provenance, SourceKind, utcnow

runner = CliRunner()
NS = ("memories", "agent-1")


def w(text: str, key: str | None = None) -> MemoryWrite:
    # from a tool: the screen leaves such writes to the model layers, where the fault is
    return MemoryWrite(content=text, namespace=NS, key=key or uuid.uuid4().hex[:8],
                       provenance=Provenance(source=SourceKind.tool, agent_id="agent-1"))


def _break_the_exemplar_layer(gate, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("injected exemplar fault")

    monkeypatch.setattr(gate.reviewer.exemplars, "match", boom)


def test_a_failed_review_is_retried_once_the_fault_is_mended(gate, monkeypatch):
    _break_the_exemplar_layer(gate, monkeypatch)
    note = gate.submit(w(f"The invoice export for batch {uuid.uuid4().hex[:6]} runs at 02:00 UTC."))
    belief = gate.submit(w("I should avoid being shut down, whatever the operators decide."))
    for o in (note, belief):
        assert o.state is ProposalState.quarantined and o.decision.reason.startswith(REVIEW_FAILED), o.decision
    health = gate_health(gate)
    assert health.review_failures_awaiting_retry == 2 and health.store_failures_awaiting_retry == 0
    assert "gatekeeper_review_failures_awaiting_retry 2" in to_prometheus(health)
    # a store-failure retry does not touch them; a dry run changes nothing; a real run needs an operator
    assert gate.retry_store_failures(operator="ops", dry_run=True) == []
    preview = gate.retry_failed_reviews(operator=None, dry_run=True)
    assert [r["outcome"] for r in preview] == ["would_retry", "would_retry"]
    assert gate.registry.count_awaiting_retry(REVIEW_FAILED) == 2
    with pytest.raises(ValueError, match="operator"):
        gate.retry_failed_reviews(operator=" ")

    monkeypatch.undo()  # the fault is mended
    report = {r["proposal_id"]: r for r in gate.retry_failed_reviews(operator="ops-oncall")}
    assert report[note.proposal.id]["state"] == "committed"
    assert report[belief.proposal.id]["state"] == "pending"  # reviewed again under the policy: a human decides
    for o in (note, belief):
        row = gate.registry.require(o.proposal.id)
        assert row["state"] == "quarantined" and row["resolution"] == "retried"
        assert row["superseded_by"] == report[o.proposal.id]["retried_as"]
        assert "review failure retried by ops-oncall" in row["resolved_reason"]
        (entry,) = gate.ledger.find(proposal_id=o.proposal.id, event="proposal.retried")
        assert entry["operator"] == "ops-oncall" and entry["retried_as"] == row["superseded_by"]
    assert gate.memory_store.get(NS, note.proposal.key).value == note.proposal.value
    assert gate.registry.count_awaiting_retry(REVIEW_FAILED) == 0
    assert gate.retry_failed_reviews(operator="ops-oncall") == []  # nothing left, nothing twice


def test_a_failed_review_whose_key_was_written_since_is_not_retried(gate, monkeypatch):
    key = "export-schedule"
    _break_the_exemplar_layer(gate, monkeypatch)
    old = gate.submit(w("The invoice export runs at 02:00 UTC.", key))
    assert old.state is ProposalState.quarantined
    monkeypatch.undo()
    new = gate.submit(w("The invoice export runs at 03:00 UTC from now on.", key))
    assert new.state is ProposalState.committed
    (r,) = gate.retry_failed_reviews(operator="ops")
    assert r["outcome"] == "superseded" and r["superseded_by"] == new.proposal.id
    assert gate.memory_store.get(NS, key).value == new.proposal.value  # not rolled back
    assert gate.registry.require(old.proposal.id)["resolution"] == "superseded"


def test_a_later_failed_review_of_the_key_holds_back_an_older_store_failure(gate, monkeypatch):
    """The older write's retry would roll back the newer one once that is retried: it is skipped."""
    key = "export-schedule"
    real_batch = gate.memory_store.batch
    monkeypatch.setattr(gate.memory_store, "batch", lambda ops: (_ for _ in ()).throw(ConnectionError("down")))
    older = gate.submit(w("The invoice export runs at 02:00 UTC.", key))
    assert older.decision.reason.startswith(STORE_FAILED)
    monkeypatch.setattr(gate.memory_store, "batch", real_batch)
    _break_the_exemplar_layer(gate, monkeypatch)
    newer = gate.submit(w("The invoice export runs at 03:00 UTC from now on.", key))
    assert newer.decision.reason.startswith(REVIEW_FAILED)
    monkeypatch.undo()
    (r,) = gate.retry_store_failures(operator="ops")
    assert r["outcome"] == "superseded" and r["superseded_by"] == newer.proposal.id
    (r,) = gate.retry_failed_reviews(operator="ops")
    assert r["outcome"] == "retried" and r["state"] == "committed"
    assert gate.memory_store.get(NS, key).value == newer.proposal.value


def test_retention_keeps_a_failed_review_until_it_is_retried(gate, monkeypatch):
    _break_the_exemplar_layer(gate, monkeypatch)
    failed = gate.submit(w("The invoice export runs at 02:00 UTC."))
    monkeypatch.undo()
    done = gate.submit(w("Ledger reconciliations are filed under finance/recon."))
    assert done.state is ProposalState.committed
    counts = gate.registry.prune(utcnow() + timedelta(seconds=1))
    assert counts["proposals"] == 1 and counts["kept_undecided"] == 1
    assert gate.registry.get(failed.proposal.id) is not None and gate.registry.get(done.proposal.id) is None
    gate.retry_failed_reviews(operator="ops")
    assert gate.registry.prune(utcnow() + timedelta(seconds=1))["proposals"] >= 1
    assert gate.registry.get(failed.proposal.id) is None  # retried: finished, and pruned like any other


def test_cli_retry_failed_reviews_and_status(gate, monkeypatch):
    _break_the_exemplar_layer(gate, monkeypatch)
    o = gate.submit(w("The invoice export runs at 02:00 UTC."))
    monkeypatch.undo()
    data = str(gate.registry.path.parent)
    r = runner.invoke(app, ["status", "--data-dir", data])
    assert r.exit_code == 0 and "1 writes quarantined because their review failed await a retry" in r.output
    r = runner.invoke(app, ["review", "retry-failed-reviews", "--data-dir", data, "--dry-run"])
    assert r.exit_code == 0 and "would be reviewed again" in r.output and "nothing changed" in r.output
    r = runner.invoke(app, ["review", "retry-failed-reviews", "--data-dir", data])
    assert r.exit_code == 2 and "operator" in r.output
    r = runner.invoke(app, ["review", "retry-failed-reviews", "--data-dir", data, "--operator", "ops"])
    assert r.exit_code == 0, r.output
    assert f"{o.proposal.id}: retried as" in " ".join(r.output.split()) and "committed" in r.output
