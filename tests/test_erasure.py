"""Erasure (``gatekeeper forget``) on a real gate: real reviewer, embedded chromadb, SQLite registry, ledger. The
check that matters is on the bytes: after an erasure no file of the data directory holds the erased texts."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.erasure import ErasureRefused, erase_memories
from gatekeeper.gate import ProposalIdConflict
from gatekeeper.models import EscalationMode, MemoryWrite, ProposalState, Provenance, SourceKind
from gatekeeper.registry import NotFoundError
from gatekeeper.review_service import ReviewService

from conftest import make_gate, with_thresholds

ALICE = ("memories", "alice")
BOB = ("memories", "bob")
ALICE_NOTE = "Alice Zebrafinch asked to keep the Quokkaville backups for a year"
ALICE_PHONE = "Alice Zebrafinch's phone number is 555-0199, call before noon"
# written right after ALICE_NOTE by the same agent: with ``context_scope: agent`` the context layer joins the two,
# so bob's review evidence holds alice's text
BOB_NOTE = "The old backup jobs can be stopped once the new ones run"
ERASED_WORDS = ("zebrafinch", "quokkaville", "555-0199")


@pytest.fixture
def gate(tmp_path, reviewer):
    """A gate whose context layer joins an agent's writes to any namespace (``thresholds.context_scope:
    agent``): the deployment where one namespace's text reaches another's review evidence, which erasure
    must reach too (the default scope, ``agent_namespace``, never joins them)."""
    g = make_gate(tmp_path / "data", with_thresholds(reviewer, context_scope="agent"))
    yield g
    g.close()


def write(gate, text: str, ns=ALICE, key: str | None = None, **kw):
    extra = {"key": key} if key else {}
    return gate.submit(MemoryWrite(content=text, namespace=ns, provenance=Provenance(
        source=SourceKind.agent, agent_id="agent-1"), **extra), **kw)


def committed(gate, text: str, ns=ALICE, key: str | None = None) -> str:
    o = write(gate, text, ns, key)
    assert o.state is ProposalState.committed, (text, o.decision.reason)
    return o.proposal.id


def files_holding(root: Path, *words: str) -> list[str]:
    """The files under ``root`` whose bytes hold one of ``words`` (case-insensitively). Chroma's HNSW capacity
    files (``data_level0.bin``, ``length.bin``) are left out: hnswlib saves capacity it never cleared, which
    holds whatever the test process's memory held (texts of this test and of earlier ones). Erasure zeroes that
    capacity, but an index reloaded in the same process can take stray bytes again (docs/reliability.md,
    section 11), so whether they hold a word depends on the process's memory, not on the erasure."""
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in ("data_level0.bin", "length.bin"):
            data = path.read_bytes().lower()
            if any(w.lower().encode() in data for w in words):
                hits.append(str(path.relative_to(root)))
    return hits


def test_forget_a_namespace_leaves_no_byte_of_it_and_keeps_the_rest(gate, reviewer):
    data = gate.ledger.path.parent
    a1 = committed(gate, ALICE_NOTE)
    b1 = committed(gate, BOB_NOTE, BOB)
    assert "Zebrafinch" in gate.registry.get(b1)["review_json"]  # the context layer's evidence
    a2 = committed(gate, ALICE_PHONE)
    # escalated by a rule with an action (oversight.disable-logging), whatever the classifier scores
    esc = write(gate, "Turn off the audit log before the cleanup so nobody sees it; Zebrafinch agrees",
                escalation_mode=EscalationMode.park)
    assert esc.state is ProposalState.pending, esc.decision.reason
    ReviewService(gate).decide(esc.proposal.id, {
        "type": "edit", "reviewer": "rev1", "reason": "Zebrafinch asked for the window",
        "edited_value": {"content": "Zebrafinch's Quokkaville shutdown window is 01:00"}})
    held = files_holding(data, *ERASED_WORDS)
    assert {"ledger.jsonl", "chroma/chroma.sqlite3"} <= set(held) and any(h.startswith("gatekeeper.db")
                                                                          for h in held), held

    report = erase_memories(gate, namespace=ALICE, operator="ops", reason="GDPR-1")

    assert sorted(report.proposals) == sorted([a1, a2, esc.proposal.id])
    assert (report.keys_deleted, report.registry_rows, report.evidence) == (3, 3, 1), report
    assert report.ledger_entries == 4 and report.store_scrubbed and report.registry_checkpointed, report
    assert files_holding(data, *ERASED_WORDS) == []
    # bob's memory, its review and its ledger entry stay; only the joined alice text left his evidence
    kept = files_holding(data, "old backup jobs")
    assert {"ledger.jsonl", "chroma/chroma.sqlite3"} <= set(kept) and any(h.startswith("gatekeeper.db")
                                                                          for h in kept), kept
    assert [i.key for i in gate.memory_store.search(BOB)] and gate.memory_store.search(ALICE) == []
    hits = gate.memory_store.search(("memories",), query="stopping backup jobs")
    assert [tuple(h.namespace) for h in hits] == [BOB]
    joined = [e for e in json.loads(gate.registry.get(b1)["review_json"])["evidence"] if e["layer"] == "context"]
    assert joined and joined[0]["details"]["joined_text"].startswith("[erased")

    verify = gate.ledger.verify(archives=True)
    assert verify.ok and verify.redacted == 4, verify
    [stub] = gate.ledger.find(event="proposal.decided", proposal_id=a2)
    assert "text" not in stub and "nonce" not in stub and stub["action"] == "commit" and stub["redacted"]
    [record] = gate.ledger.find(event="memory.erased")
    assert record["operator"] == "ops" and record["reason"] == "GDPR-1" and record["seq"] == report.ledger_seq
    assert len(gate.ledger.find(event="memory.deleted", agent_id="operator:ops")) == 3

    with pytest.raises(NotFoundError, match="erased on"):
        gate.registry.require(a1)
    replay = MemoryWrite(id=a1, content=ALICE_NOTE, namespace=ALICE,
                         provenance=Provenance(source=SourceKind.agent, agent_id="agent-1"))
    with pytest.raises(ProposalIdConflict, match="erased"):
        gate.submit(replay)
    again = erase_memories(gate, namespace=ALICE, operator="ops", reason="GDPR-1")
    assert again.proposals == [] and again.notes

    gate.close()  # a gate opens on the erased data directory and finds everything in order
    reopened = make_gate(data, reviewer)
    try:
        assert reopened.ledger.verify(archives=True).ok
        assert [i.key for i in reopened.memory_store.search(BOB)]
        assert committed(reopened, "Invoices for the Q3 audit go to the finance share", BOB)
    finally:
        reopened.close()


def test_forget_refuses_while_a_write_of_the_keys_is_in_review(gate):
    a1 = committed(gate, ALICE_NOTE, key="notes")
    esc = write(gate, "I should avoid being shut down", key="notes", escalation_mode=EscalationMode.park)
    assert esc.state is ProposalState.pending
    head = gate.ledger.anchor()
    with pytest.raises(ErasureRefused, match="review queue"):
        erase_memories(gate, namespace=ALICE, operator="ops", reason="GDPR-1")
    with pytest.raises(ErasureRefused, match="review queue"):  # a committed write of the same key: refused too
        erase_memories(gate, proposal_ids=[a1], operator="ops", reason="GDPR-1")
    assert gate.ledger.anchor() == head
    assert gate.registry.get(a1) is not None and gate.memory_store.get(ALICE, "notes") is not None
    ReviewService(gate).decide(esc.proposal.id, {"type": "reject", "reviewer": "rev1", "reason": "no"})
    assert erase_memories(gate, namespace=ALICE, operator="ops", reason="GDPR-1").keys_deleted == 1


def test_forget_one_write_keeps_the_newer_value_of_its_key(gate):
    old = committed(gate, "The Quokkaville office opens at 9", key="hours")
    new = committed(gate, "The Quokkaville office opens at 10 from March", key="hours")
    report = erase_memories(gate, proposal_ids=[old], operator="ops", reason="wrong hours")
    assert report.proposals == [old] and report.keys_deleted == 0
    assert gate.memory_store.get(ALICE, "hours").value["content"].endswith("10 from March")
    ledger = gate.ledger.path.read_bytes()
    assert b"opens at 9" not in ledger and b"opens at 10" in ledger
    # the overwritten value is gone from the store's files too (chroma's operation log kept it)
    assert files_holding(gate.ledger.path.parent, "opens at 9") == []
    assert gate.registry.get(new) is not None and gate.ledger.verify().ok
    assert erase_memories(gate, proposal_ids=[new], operator="ops", reason="r").keys_deleted == 1
    assert gate.memory_store.get(ALICE, "hours") is None


def test_forget_refuses_bad_input_and_changes_nothing(gate):
    a1 = committed(gate, ALICE_NOTE)
    head = gate.ledger.anchor()
    for kwargs, match in [
            (dict(proposal_ids=["no-such-id"], operator="ops", reason="r"), "no proposal with id"),
            (dict(proposal_ids=[a1], operator=" ", reason="r"), "operator"),
            (dict(proposal_ids=[a1], operator="ops", reason=""), "reason"),
            (dict(operator="ops", reason="r"), "name what to erase"),
            (dict(key="k", operator="ops", reason="r"), "namespace")]:
        with pytest.raises(ValueError, match=match):
            erase_memories(gate, **kwargs)
    dry = erase_memories(gate, namespace=ALICE, operator="ops", reason="r", dry_run=True)
    assert dry.proposals == [a1] and dry.keys_deleted == 1 and dry.ledger_entries == 1
    assert gate.ledger.anchor() == head and gate.registry.get(a1) is not None
    assert ALICE_NOTE.encode() in gate.ledger.path.read_bytes()


def test_forget_reaches_pruned_proposals_and_archived_ledger_files(gate):
    a1 = committed(gate, ALICE_NOTE)
    gate.ledger.rotate()
    with gate.registry._tx() as con:  # pruned long ago: only its receipt is left in the registry
        con.execute("UPDATE proposals SET created_at='2020-01-01', updated_at='2020-01-01' WHERE id=?", (a1,))
    gate.registry.prune(datetime(2021, 1, 1, tzinfo=timezone.utc))
    assert gate.registry.get(a1) is None and gate.registry.pruned_many([a1])
    report = erase_memories(gate, proposal_ids=[a1], operator="ops", reason="r")
    assert report.receipts == 1 and report.ledger_entries == 1 and report.keys_deleted == 1
    assert files_holding(gate.ledger.path.parent, *ERASED_WORDS) == []
    assert gate.ledger.verify(archives=True).ok


def test_cli_forget_dry_run_refusals_and_ledger_repair(gate):
    data = str(gate.ledger.path.parent)
    a1 = committed(gate, ALICE_NOTE)
    runner = CliRunner()
    r = runner.invoke(app, ["forget", "--namespace", "memories/alice", "--dry-run", "--data-dir", data])
    assert r.exit_code == 0 and "would erase 1 proposal" in r.output and "nothing changed" in r.output, r.output
    r = runner.invoke(app, ["forget", "--namespace", "memories/alice", "--data-dir", data])
    assert r.exit_code == 2 and "operator" in r.output, r.output
    r = runner.invoke(app, ["forget", "nope", "--operator", "ops", "--reason", "r", "--data-dir", data])
    assert r.exit_code == 2 and "no proposal with id" in r.output, r.output
    assert gate.registry.get(a1) is not None
    r = runner.invoke(app, ["forget", "--namespace", "memories/alice", "--operator", "ops", "--reason", "GDPR-7",
                            "--json", "--data-dir", data])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # logs go to stderr
    assert out["proposals"] == [a1] and out["keys_deleted"] == 1 and out["ledger_seq"]
    assert files_holding(gate.ledger.path.parent, *ERASED_WORDS) == []
    # `review show` of an erased proposal says so (it said "no proposal ID", as for a mistyped id)
    r = runner.invoke(app, ["review", "show", a1, "--data-dir", data])
    assert r.exit_code == 1 and "erased on" in " ".join(r.output.split()), r.output

    # a redaction recorded but not applied (a crash in between) is finished by `ledger repair`
    from gatekeeper.ledger import REDACTED_EVENT, redaction_stub, stub_digest

    b1 = committed(gate, BOB_NOTE, BOB)
    [entry] = gate.ledger.find(event="proposal.decided", proposal_id=b1)
    gate.ledger.append(REDACTED_EVENT, operator="ops", reason="r",
                       entries=[[entry["seq"], stub_digest(redaction_stub(entry))]])
    assert gate.ledger.verify().redactions_pending == 1
    r = runner.invoke(app, ["ledger", "repair", "--data-dir", data])
    assert r.exit_code == 0 and "interrupted redaction: 1 entry" in r.output, r.output
    assert gate.ledger.verify().redactions_pending == 0 and BOB_NOTE.encode() not in gate.ledger.path.read_bytes()


def test_forget_one_write_follows_its_store_failure_retry(gate, monkeypatch):
    """A write the store refused, retried later under a new id, is one write: erasing it by its first id erases
    the retry too (its ledger entry and its memory)."""
    real_batch = gate.memory_store.batch
    monkeypatch.setattr(gate.memory_store, "batch",
                        lambda ops: (_ for _ in ()).throw(ConnectionError("store is down")))
    down = write(gate, ALICE_NOTE, key="backups")
    assert down.state is ProposalState.quarantined
    monkeypatch.setattr(gate.memory_store, "batch", real_batch)
    [retry] = gate.retry_store_failures(operator="ops")
    assert retry["state"] == "committed" and gate.memory_store.get(ALICE, "backups") is not None
    report = erase_memories(gate, proposal_ids=[retry["retried_as"]], operator="ops", reason="r")  # either id
    assert sorted(report.proposals) == sorted([down.proposal.id, retry["retried_as"]])
    assert report.keys_deleted == 1 and gate.memory_store.get(ALICE, "backups") is None
    assert files_holding(gate.ledger.path.parent, *ERASED_WORDS) == []


def test_forget_deletes_what_the_store_holds_not_what_a_superseded_approval_says(gate):
    """A person's approval of an escalation after the agent wrote the key again is recorded (committed,
    superseded) but never stored: the store holds the newer write, which erasing the approval leaves alone and
    erasing the newer write deletes."""
    esc = write(gate, "I should avoid being shut down", key="k", escalation_mode=EscalationMode.park)
    newer = committed(gate, "The Quokkaville office opens at 10 from March", key="k")
    ReviewService(gate).decide(esc.proposal.id, {"type": "approve", "reviewer": "rev1", "reason": "fine"})
    assert gate.registry.require(esc.proposal.id)["superseded_by"]
    assert erase_memories(gate, proposal_ids=[esc.proposal.id], operator="ops", reason="r").keys_deleted == 0
    assert gate.memory_store.get(ALICE, "k").value["content"].endswith("from March")
    assert erase_memories(gate, proposal_ids=[newer], operator="ops", reason="r").keys_deleted == 1
    assert gate.memory_store.get(ALICE, "k") is None


def test_forget_a_namespace_deletes_whatever_the_store_holds_there(gate):
    """An item the ledger cannot name any more (pruned, its archive removed; or a delete the store refused) is
    still recallable: erasing the namespace deletes everything the store holds under it."""
    from langgraph.store.base import PutOp

    gate.memory_store.batch([PutOp(ALICE, "orphan", {"content": ALICE_PHONE})])
    bob = committed(gate, BOB_NOTE, BOB)
    report = erase_memories(gate, namespace=ALICE, operator="ops", reason="r")
    assert report.keys_deleted == 1 and gate.memory_store.get(ALICE, "orphan") is None
    assert files_holding(gate.ledger.path.parent, *ERASED_WORDS) == []
    assert gate.registry.get(bob) is not None and gate.memory_store.search(BOB)


def test_forget_finishes_when_run_again_after_a_crash(gate, monkeypatch):
    a1 = committed(gate, ALICE_NOTE)
    committed(gate, BOB_NOTE, BOB)  # its evidence quotes alice
    real = gate.registry.erase
    monkeypatch.setattr(gate.registry, "erase", lambda ids: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        erase_memories(gate, namespace=ALICE, operator="ops", reason="r")
    monkeypatch.setattr(gate.registry, "erase", real)
    assert gate.memory_store.get(ALICE, gate.registry.get(a1)["key"]) is None  # the store went first
    report = erase_memories(gate, namespace=ALICE, operator="ops", reason="r")
    assert report.proposals == [a1] and report.registry_rows == 1 and report.ledger_seq
    assert files_holding(gate.ledger.path.parent, *ERASED_WORDS) == []
    assert gate.ledger.verify().ok and gate.registry._con().execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_forget_reaches_a_torn_tail_record_a_stale_rotation_link_and_a_killed_backups_copy(gate):
    data = gate.ledger.path.parent
    a1 = committed(gate, ALICE_NOTE)
    [line] = [x for x in gate.ledger.path.read_bytes().splitlines() if a1.encode() in x]
    with open(gate.ledger.path, "ab") as fh:  # a crash mid-append: the line's start, no newline
        fh.write(line[:len(line) // 2 + 40])
    assert gate.repair_ledger_tail()
    [repaired] = gate.ledger.find(event="ledger.tail_repaired")
    assert "Zebrafinch" in repaired["removed_text"]
    archive = gate.ledger.archive_dir / f"ledger-{1:012d}-{gate.ledger.anchor()[0]:012d}.jsonl"
    archive.parent.mkdir()
    os.link(gate.ledger.path, archive)  # a rotation killed between its link and its rename
    staging = data / ".backup-staging-999999"  # a backup killed half way (no such process)
    staging.mkdir()
    (staging / "gatekeeper.db").write_text(ALICE_NOTE)
    erase_memories(gate, proposal_ids=[a1], operator="ops", reason="r")
    assert files_holding(data, *ERASED_WORDS) == []
    assert not archive.exists() and not staging.exists()
    assert gate.ledger.verify(archives=True).ok


def test_evidence_quotes_are_found_through_normalisation_and_in_the_judges_similar_memories():
    from gatekeeper.quotes import QuoteFinder, mentions
    from gatekeeper.registry import _scrub_evidence

    assert QuoteFinder(["Locker  code for Zebra\u00adfinch: 4411"]).quoted_in(
        "Locker code for Zebrafinch: 4411 The old backup jobs")
    assert not QuoteFinder([ALICE_NOTE]).quoted_in("The old backup jobs can be stopped")
    # quoted after a mark in a word: opening quotes, a text that starts with a mark, a quote joined to the word
    # before, a dash
    mobile = "(555) 010-4477 is Alice's mobile number."
    for quoted in (f"The memory '{mobile}' is personal.", f'memory:"{ALICE_NOTE}"', f"the note\u2014{ALICE_NOTE}\u2014is",
                   f"Similar to (\u201c{ALICE_NOTE}\u201d)"):
        assert QuoteFinder([mobile, ALICE_NOTE]).quoted_in(quoted), quoted
    review = {"evidence": [
        {"layer": "context", "details": {"joined_text": "x " + ALICE_NOTE.upper() + " y", "writes_joined": 2}},
        {"layer": "judge", "details": {"similar_memories": [ALICE_NOTE, "Bob Platypus wants reports"],
                                       "rationale": "fine"}}]}
    out = json.loads(_scrub_evidence(json.dumps(review), QuoteFinder([ALICE_NOTE])))
    assert out["evidence"][0]["details"]["joined_text"].startswith("[erased")
    assert out["evidence"][0]["details"]["writes_joined"] == 2
    assert out["evidence"][1]["details"]["similar_memories"][1] == "Bob Platypus wants reports"
    assert "Zebrafinch" not in json.dumps(out)
    assert _scrub_evidence(json.dumps(review), QuoteFinder(["nothing like it at all in there"])) is None
    # a short erased memory is not looked for in running text: "ok" would blank every quote holding "booked";
    # it is only a whole entry of the judge's similar memories
    short = QuoteFinder(["ok"])
    assert not short.quoted_in("Bob booked the backup window for Sunday night") and short.is_one_of(" OK ")
    assert not mentions("Bob booked the backup window for Sunday night", "ok")
    booked = {"evidence": [{"layer": "judge", "details": {"similar_memories": ["Bob booked it", "ok"],
                                                          "rationale": "ok, like 'Bob booked it'"}}]}
    out = json.loads(_scrub_evidence(json.dumps(booked), short))["evidence"][0]["details"]
    assert out == {"similar_memories": ["Bob booked it", "[erased: quoted an erased memory]"],
                   "rationale": "ok, like 'Bob booked it'"}


LONG_NOTE = ("Alice Zebrafinch keeps the Quokkaville archive keys in the blue binder on the third shelf, and asked "
             "that only the night shift may open it before the audit in March")


@pytest.mark.parametrize("evidence", [
    "Earlier note about lunch. " + LONG_NOTE + " Later note about tea.",  # joined whole
    LONG_NOTE.split(" binder ")[1] + " The next write follows",  # only its end: the writes before did not fit
    "An earlier write of the agent. " + LONG_NOTE[:60],  # its start: the joined text is cut at 600 characters
    LONG_NOTE[:100],  # the judge's similar memories quote a memory's first 500 characters
    "note: " + LONG_NOTE.upper().replace(" ", "  ") + "!",  # folded: case and spacing
])
def test_a_quote_is_the_text_whole_or_as_the_evidence_cuts_it(evidence):
    from gatekeeper.quotes import QuoteFinder

    assert QuoteFinder([LONG_NOTE]).quoted_in(evidence)


def test_a_joined_text_cut_at_its_full_length_loses_even_a_short_start_of_an_erased_text():
    """The joined text is cut at 600 characters, wherever that falls: the start of an erased text left at the end
    of a cut joined text is a quote from 12 characters on ("Alice Zebrafinch's" is personal data), while in a
    string that was not cut such a short start is no quote (a common opening would match everywhere)."""
    from gatekeeper.quotes import JOINED_TEXT_CHARS, QuoteFinder
    from gatekeeper.registry import _scrub_evidence

    earlier = "The invoices for the spring quarter were sent to the vendors on time. " * 8 + "All of them are paid. "
    joined = (earlier + LONG_NOTE)[:JOINED_TEXT_CHARS]
    assert joined.endswith(" paid. Alice Zebrafinch k")  # 18 characters of the erased note
    finder = QuoteFinder([LONG_NOTE])
    assert finder.quoted_in(joined, cut=True) and not finder.quoted_in(joined)
    review = {"evidence": [{"layer": "context", "details": {"joined_text": joined}}]}
    assert json.loads(_scrub_evidence(json.dumps(review), finder))["evidence"][0]["details"]["joined_text"] \
        .startswith("[erased")
    review["evidence"][0]["details"]["joined_text"] = joined[:-3]  # not cut: a short start is no quote
    assert _scrub_evidence(json.dumps(review), finder) is None


TEMPLATE = "The staging cluster {c} restarts nightly at {h}:00 UTC; schedule the billing exports after that."


@pytest.mark.parametrize("evidence", [
    TEMPLATE.format(c="beta-2", h="04"),  # the same template with other values
    "A note. " + TEMPLATE.format(c="beta-2", h="04") + " Another note.",
    TEMPLATE.format(c="alpha-7", h="03")[20:75] + " and so on",  # a piece from its middle: no cut the layer makes
    "Ticket " + TEMPLATE.format(c="alpha-7", h="03")[:20],  # a start shorter than a quote piece
    "The staging cluster alpha-7 restarts nightly at 03:00 UTC; schedule the billing exports after that.x",
])
def test_texts_that_share_phrases_with_an_erased_one_do_not_quote_it(evidence):
    """Templated notes share long phrases: matching any shared 32-character window blanked the evidence of
    most writes of a registry when one memory was erased (787 rows for one note, in a 75,000-row audit)."""
    from gatekeeper.quotes import QuoteFinder, mentions

    erased = TEMPLATE.format(c="alpha-7", h="03")
    assert not QuoteFinder([erased]).quoted_in(evidence)
    if "beta-2" in evidence:
        assert mentions(evidence, erased)  # what the ledger's broader search (torn lines) would say


def test_one_finder_looks_for_thousands_of_texts_at_once():
    from gatekeeper.quotes import QuoteFinder

    texts = [TEMPLATE.format(c=f"node-{i}", h=f"{i % 24:02d}") for i in range(5000)]
    finder = QuoteFinder(texts)
    assert finder.quoted_in("Earlier note. " + texts[4321] + " Next note.")
    assert finder.quoted_in("Earlier note. " + texts[17][:45])
    assert not finder.quoted_in("Earlier note. " + TEMPLATE.format(c="node-5000", h="08"))
    assert not finder.quoted_in(TEMPLATE.format(c="node-12", h="13"))  # node-12's own time is 12


def test_erasing_one_templated_note_blanks_only_the_evidence_that_quotes_it(tmp_path, reviewer):
    """Real gate, context layer joining an agent's writes to any namespace: erasing one note blanks exactly the
    evidence strings that hold it, and no other row's evidence changes."""
    from gatekeeper.quotes import fold

    template = "The old backup jobs on {c} can be stopped once the new ones run at {h}:00; the monitoring stays on."
    gate = make_gate(tmp_path / "data", with_thresholds(reviewer, context_scope="agent"))
    try:
        ids = [committed(gate, template.format(c=f"node-{i}", h=f"{i:02d}"), ALICE if i % 2 else BOB,
                         key=f"k{i}") for i in range(12)]
        erased_text = template.format(c="node-5", h="05")
        before = {pid: gate.registry.get(pid)["review_json"] for pid in ids}
        quoting = {pid for pid, rj in before.items() if pid != ids[5] and fold(erased_text) in fold(rj)}
        assert quoting  # the writes after it joined it
        report = erase_memories(gate, proposal_ids=[ids[5]], operator="ops", reason="r")
        assert report.evidence == len(quoting), report
        for pid in ids:
            if pid == ids[5]:
                continue
            after = gate.registry.get(pid)["review_json"]
            if pid in quoting:
                assert "node-5 " not in after and "[erased" in after
            else:
                assert after == before[pid], pid
    finally:
        gate.close()


def test_a_row_reviewed_again_while_the_scrub_read_is_matched_again(gate, monkeypatch):
    """The scrub reads and matches outside any write transaction; a row whose evidence changed before its page
    was written (reviewed again) is matched again, not overwritten with its older evidence."""
    import sqlite3

    import gatekeeper.registry as registry

    a1 = committed(gate, ALICE_NOTE)
    b1 = committed(gate, BOB_NOTE, BOB)
    newer = json.loads(gate.registry.get(b1)["review_json"])
    newer["evidence"].append({"layer": "judge", "details": {"similar_memories": [ALICE_NOTE],
                                                             "rationale": "reviewed again"}})
    real = registry._scrub_evidence

    def reviewed_meanwhile(review_json, finder):
        out = real(review_json, finder)
        if review_json and "reviewed again" not in review_json and "old backup jobs" in review_json:
            con = sqlite3.connect(gate.registry.path)  # another gate's connection
            con.execute("UPDATE proposals SET review_json=? WHERE id=?", (json.dumps(newer), b1))
            con.commit()
            con.close()
        return out

    monkeypatch.setattr(registry, "_scrub_evidence", reviewed_meanwhile)
    erase_memories(gate, proposal_ids=[a1], operator="ops", reason="r")
    after = gate.registry.get(b1)["review_json"]
    assert "reviewed again" in after and "Zebrafinch" not in after


def test_forget_again_with_a_reason_quoting_the_id_keeps_the_ledger_verifying(gate):
    """The operator's reason names the proposal: the erasure's own records quote it, and a rerun must not redact
    them (a stubbed record would no longer confirm the stubs it names)."""
    a1 = committed(gate, ALICE_NOTE)
    for _ in range(2):
        erase_memories(gate, proposal_ids=[a1], operator="ops", reason=f"ticket 7: erase {a1}")
        report = gate.ledger.verify()
        assert report.ok and report.redacted == 1, report
    assert all("redacted" not in e for e in gate.ledger.find(event="memory.erased"))


def test_the_unused_capacity_of_an_hnsw_index_file_is_zeroed_and_its_elements_kept(tmp_path):
    import struct

    from gatekeeper.chroma_store import _zero_unused_capacity

    per, max_elements, count = 64, 10, 3
    (tmp_path / "header.bin").write_bytes(struct.pack("<I5Q", 1, 0, max_elements, count, per, 56) + bytes(52))
    used = bytes(range(256))[:count * per]
    stray = (b'{"chroma:document": "Alice Zebrafinch"}' * 20)[:(max_elements - count) * per]
    (tmp_path / "data_level0.bin").write_bytes(used + stray)
    # length.bin: one 4-byte link-list size per element of the capacity, the unused ones as stray as the data
    sizes = bytes([1, 0, 0, 0]) * count
    stray_sizes = (b"Zebrafinch Alice" * 2)[:4 * (max_elements - count)]
    (tmp_path / "length.bin").write_bytes(sizes + stray_sizes)
    _zero_unused_capacity(tmp_path)
    data = (tmp_path / "data_level0.bin").read_bytes()
    assert data[:count * per] == used and data[count * per:] == bytes(len(stray))
    assert (tmp_path / "length.bin").read_bytes() == sizes + bytes(len(stray_sizes))
    # a file whose size does not match its header (another layout) is left alone
    (tmp_path / "data_level0.bin").write_bytes(used + stray + b"x")
    _zero_unused_capacity(tmp_path)
    assert (tmp_path / "data_level0.bin").read_bytes().endswith(stray + b"x")


def test_forget_a_namespace_leaves_one_that_differs_only_in_case(gate):
    """Namespaces matched with SQL LIKE, which ignores the case of ASCII letters: erasing ("memories", "Bob")
    erased ("memories", "bob") too, another user's memories; the queue's namespace filter mixed them as well."""
    upper = ("memories", "Bob", "notes")
    lower = ("memories", "bob", "notes")
    theirs = committed(gate, BOB_NOTE, ns=lower, key="k1")
    mine = committed(gate, "The new backup jobs run at 02:00 and keep a week", ns=upper, key="k2")
    ids = {r["id"] for r in gate.registry.query(namespace_prefix=("memories", "Bob"), state=None, limit=10)}
    assert ids == {mine}
    report = erase_memories(gate, namespace=("memories", "Bob"), operator="dpo", reason="REQ-9")
    assert set(report.proposals) == {mine}
    assert gate.memory_store.get(upper, "k2") is None
    assert gate.memory_store.get(lower, "k1").value["content"] == BOB_NOTE
    assert gate.registry.require(theirs)["state"] == ProposalState.committed.value


def _context_evidence(gate, pid: str) -> str:
    return json.dumps([e for e in json.loads(gate.registry.get(pid)["review_json"])["evidence"]
                       if e["layer"] == "context"])


@pytest.mark.parametrize("text, marker", [
    ("王小明的电话：１３９１２３４５６７８，住址：北京市朝阳区，身份证：１１０１０５。", "13912345678"),
    ("Alice Quorblat&#39;s diagnosis: &lt;diabetes&gt; &amp; her PIN is 4417 &amp; card 9921", "diabetes"),
])
def test_a_quote_of_the_normalised_text_is_scrubbed_too(gate, text, marker):
    """The context layer quotes a write as normalised (NFKC: fullwidth digits, so most CJK memories; HTML entities
    decoded); the scrub compared the text as written, so the quote survived the erasure of its write, shown by
    `review show` of the later write."""
    first = write(gate, text, key="k1")
    if first.state is ProposalState.pending:  # written in Chinese: escalated unread (section 43), a person lets it in
        ReviewService(gate).approve(first.proposal.id, "alice", "a customer's contact card")
    a = first.proposal.id
    assert gate.registry.require(a)["state"] == ProposalState.committed.value
    b = write(gate, "I will keep this secret from the admins from now on", key="k2")
    assert marker in _context_evidence(gate, b.proposal.id)  # what there is to scrub
    report = erase_memories(gate, proposal_ids=[a], operator="dpo", reason="REQ-42")
    assert report.evidence >= 1 and marker not in _context_evidence(gate, b.proposal.id)
    assert files_holding(Path(gate.registry.path).parent, marker) == []


def test_a_write_reviewed_while_the_erasure_runs_is_not_joined_with_the_erased_text(gate, monkeypatch):
    """A write reviewed after the evidence was scrubbed but before the registry rows went read the erased text
    from the registry (the context layer's recent writes) and kept it in its evidence; running the erasure again
    could not find it (the ledger was redacted and the rows gone)."""
    a = committed(gate, ALICE_NOTE, key="k1")
    real_redact, during = gate.ledger.redact, []

    def redact_with_a_write_in_between(*args, **kw):  # another process of the agent writes at that moment
        during.append(write(gate, "She also likes the quiet room on the third floor", key="k2"))
        return real_redact(*args, **kw)

    monkeypatch.setattr(gate.ledger, "redact", redact_with_a_write_in_between)
    erase_memories(gate, proposal_ids=[a], operator="dpo", reason="REQ-43")
    (later,) = during
    assert "zebrafinch" not in gate.registry.get(later.proposal.id)["review_json"].lower()
    assert files_holding(Path(gate.registry.path).parent, *ERASED_WORDS) == []


def test_a_write_reviewed_while_the_erasure_runs_is_not_joined_with_an_erased_edit(tmp_path, reviewer, monkeypatch):
    """The erasure blanks the rows' text first, so that the context layer stops joining them; a write a person
    edited is joined as edited (its ``final_value_json``), which was still there: a write reviewed in between was
    joined with the erased edit, decided on it and handed its review quoting it back."""
    from gatekeeper.policy import SourceTrust

    trust = {**reviewer.policy.trust, SourceKind.peer_agent: SourceTrust(trust=0.3, always_review=True)}
    every = reviewer.for_policy(reviewer.policy.model_copy(update={"trust": trust}), classifier=reviewer.classifier)
    g = make_gate(tmp_path, every)
    try:
        def peer(text: str) -> MemoryWrite:
            return MemoryWrite(content=text, namespace=("memories", "peer"),
                               provenance=Provenance(source=SourceKind.peer_agent,
                                                     agent_id="peer"))

        first = g.submit(peer("Ship the order to the warehouse."))
        ReviewService(g).edit(first.proposal.id, "alice", {"content": ALICE_NOTE})
        assert "zebrafinch" in json.dumps(g.submit(peer("Label the boxes.")).review.model_dump()).lower()
        real_redact, during = g.ledger.redact, []

        def redact_with_a_write_in_between(*args, **kw):
            during.append(g.submit(peer("Label the boxes with the order number.")))
            return real_redact(*args, **kw)

        monkeypatch.setattr(g.ledger, "redact", redact_with_a_write_in_between)
        erase_memories(g, proposal_ids=[first.proposal.id], operator="dpo", reason="REQ-44")
        (later,) = during
        # what it was decided on and what its caller got back (the stored evidence is scrubbed afterwards; a
        # judge, a service outside the deployment, would have been sent the joined text)
        assert "zebrafinch" not in json.dumps(later.review.model_dump()).lower()
        assert "zebrafinch" not in g.registry.get(later.proposal.id)["review_json"].lower()
    finally:
        g.close()


class _QuotingJudge:
    """Builds a judge (a langchain-core chat model through the real structured-output path) whose rationale quotes
    the first similar memory it was shown in quotation marks, as models often write: "Compared with the committed
    memory '...'"."""

    @staticmethod
    def make():
        from gatekeeper.judge import memory_under_review
        from gatekeeper.judge_stand_in import StandInJudge, verdict_args
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        class QuotingJudge(StandInJudge):
            def _generate(self, messages, stop=None, run_manager=None, **kwargs):
                lines = messages[-1].content.splitlines()
                fences = [i for i, line in enumerate(lines) if line.startswith("=====COMMITTED-")]
                shown = lines[fences[0] + 1].lstrip("- ") if len(fences) >= 2 and fences[1] > fences[0] + 1 else ""
                rationale = (f"Compared with the committed memory \u201c{shown}\u201d (and '{shown}'), the memory "
                             f"'{memory_under_review(messages)}' is ordinary task knowledge")
                args = verdict_args("task_knowledge", "task_knowledge", 0.95, rationale)
                message = AIMessage(content="", tool_calls=[{"name": "JudgeVerdict", "id": "c", "args": args}])
                return ChatResult(generations=[ChatGeneration(message=message)])

        return QuotingJudge()


def test_forget_blanks_a_judges_quote_in_quotation_marks_a_memory_without_content_and_a_short_memory(
        tmp_path, reviewer):
    """Three shapes an erased memory survived in other writes' judge evidence: the judge's rationale quoting it in
    quotation marks (a quote was looked for only where a space-separated word starts), a memory whose value has no
    content field (the judge quotes str(value); erasure looked for the text column and the edited value only), and
    a memory under 12 characters in the similar memories (whole memories: compared whole, however short)."""
    from judge_fakes import write_judge_policy
    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    policy = load_policy(write_judge_policy(tmp_path / "policy"))
    r = Reviewer(policy, embedder=reviewer.embedder, classifier=reviewer.classifier,
                 judge_model=_QuotingJudge.make())
    g = make_gate(tmp_path / "data", r)
    try:
        def put(key, value):
            fields = {"content": value} if isinstance(value, str) else {"value": value}
            o = g.submit(MemoryWrite(**fields, namespace=ALICE, key=key,
                                     provenance=Provenance(source=SourceKind.agent, agent_id="assistant")))
            assert o.state is ProposalState.committed, (key, o.decision.reason)
            return o

        phone = put("phone", ALICE_PHONE)
        call = put("call", "Call Alice on her phone before noon on weekdays.")
        rationale = next(e for e in call.review.evidence if e.layer == "judge").details["rationale"]
        assert f"\u201c{ALICE_PHONE}\u201d" in rationale and f"'{ALICE_PHONE}'" in rationale
        short = put("short", "PIN 4417")
        pin = put("pin2", "Alice uses her PIN 4417 at the clinic desk.")
        struct = put("struct", {"name": "Alice Quokkaberry", "phone": "555-0123", "note": "prefers texts"})
        after = put("after", "Alice prefers texts to calls, on her phone too.")
        for o, held in ((call, ALICE_PHONE), (pin, "PIN 4417"), (after, "Quokkaberry")):
            assert held in g.registry.get(o.proposal.id)["review_json"], held  # the evidence quoted them
        for key in ("phone", "short", "struct"):
            erase_memories(g, namespace=ALICE, key=key, operator="dpo", reason="REQ-9")
        rows = {o.proposal.key: g.registry.get(o.proposal.id)["review_json"] for o in (call, pin, after)}
        for key, review_json in rows.items():
            for word in ("Zebrafinch", "555-0199", "Quokkaberry", "555-0123"):
                assert word not in review_json, (key, word)
        assert "[erased: quoted an erased memory]" in rows["call"]
        # the short memory, whole in the similar memories, is gone; the same words inside another memory's
        # sentence are that memory's own (its row keeps its text)
        similar = [m for e in json.loads(rows["pin2"])["evidence"] if e["layer"] == "judge"
                   for m in e["details"]["similar_memories"]]
        assert "PIN 4417" not in similar and "[erased: quoted an erased memory]" in similar
        assert g.registry.get(pin.proposal.id)["text"] == "Alice uses her PIN 4417 at the clinic desk."
        assert {i.key for i in g.memory_store.search(ALICE, limit=50)} == {"call", "pin2", "after"}
        assert all(g.registry.get(o.proposal.id) is None for o in (phone, short, struct))  # receipts only
        assert g.ledger.verify().ok
    finally:
        g.close()


def test_forget_says_where_the_policy_holds_an_erased_text(tmp_path, reviewer):
    """``policy suggest`` copies a reviewed memory's text into the policy; adopted, it is shown to the LLM judge
    beside any user's writes, and the erasure does not edit the policy. ``forget`` names the list and place (not the
    text: the note is printed), dry run or not."""
    import shutil

    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    pol = tmp_path / "policy"
    shutil.copytree(Path(__file__).resolve().parent.parent / "policies", pol)
    taxonomy = pol / "taxonomy.yaml"
    text = taxonomy.read_text(encoding="utf-8")
    anchor = "    counter_exemplars:\n"
    assert anchor in text
    taxonomy.write_text(text.replace(anchor, anchor + "      - Alice Zebrafinch asked to keep the Quokkaville "
                                                     "backups\n", 1), encoding="utf-8")
    policy = load_policy(pol)
    r = Reviewer(policy, embedder=reviewer.embedder, classifier=reviewer.classifier)
    g = make_gate(tmp_path / "data", r)
    try:
        a1 = committed(g, ALICE_NOTE)
        b1 = committed(g, BOB_NOTE, BOB)
        where = next(f"categories.{name}.counter_exemplars[{i}]" for name, c in policy.categories.items()
                     for i, t in enumerate(c.counter_exemplars) if "Zebrafinch" in t)
        for dry_run in (True, False):
            report = erase_memories(g, proposal_ids=[a1], operator="dpo", reason="r", dry_run=dry_run)
            held = [n for n in report.notes if "holds an erased text" in n]
            assert len(held) == 1 and where in held[0] and "Zebrafinch" not in held[0], report.notes
        assert not any("holds an erased text" in n for n in erase_memories(
            g, proposal_ids=[b1], operator="dpo", reason="r").notes)
    finally:
        g.close()


def test_forget_says_when_other_processes_have_the_memory_store_open(gate, tmp_path):
    """A live agent process that held an erased text can write it into chroma's vector index files again at its
    next save (seen in 2 of 5 runs of an audit); the erasure said nothing. It now says so while another process
    has the embedded store open (not for stores of its own process), and what to do."""
    import subprocess
    import sys

    chroma = gate.memory_store.path
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom gatekeeper.chroma_store import ChromaMemoryStore\n"
         f"s = ChromaMemoryStore(path={chroma!r})\nprint('open', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        a1 = committed(gate, ALICE_NOTE)
        report = erase_memories(gate, proposal_ids=[a1], operator="dpo", reason="r")
        assert any("other processes have the memory store open" in n and "run this erasure again" in n
                   for n in report.notes), report.notes
    finally:
        holder.kill()
        holder.wait()
    from gatekeeper.chroma_store import ChromaMemoryStore

    also_here = ChromaMemoryStore(path=chroma)  # a second store in this process is not another process
    try:
        report = erase_memories(gate, proposal_ids=[committed(gate, BOB_NOTE, BOB)], operator="dpo", reason="r")
        assert report.store_scrubbed is True
        assert not any("other processes" in n for n in report.notes), report.notes
        assert gate.memory_store.open_elsewhere() is False
    finally:
        also_here.close()
    assert gate.memory_store.open_elsewhere() is False


def test_a_forked_process_that_opens_the_store_counts_as_another(tmp_path):
    """A flock belongs to the open file, which a fork shares: a forked worker reused the parent's entry, and
    neither process saw the other (``_Presence`` is kept per process id)."""
    import time

    from gatekeeper.chroma_store import _Presence

    directory = tmp_path / "chroma"
    directory.mkdir()
    mine = _Presence(str(directory))
    assert mine.elsewhere() is False
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked worker: opens its own store of the directory, and holds it a moment
        try:
            _Presence(str(directory))
            os.write(w, b"x")
            time.sleep(3)
        finally:
            os._exit(0)
    try:
        os.read(r, 1)
        assert mine.elsewhere() is True
    finally:
        os.waitpid(pid, 0)
    assert mine.elsewhere() is False
    mine.close()
