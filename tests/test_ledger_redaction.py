"""Ledger redaction: entries lose their text-bearing fields, the chain still verifies, and what verify could check
before it still checks (real files, real locks, rotation, a second writer)."""

from __future__ import annotations

import json
import threading

import pytest

from gatekeeper.ledger import (
    GENESIS_HASH,
    REDACTED_EVENT,
    AuditLedger,
    LedgerCorruptError,
    LedgerError,
    entry_hash,
    redaction_stub,
    stub_digest,
)

SECRET = "Alice's phone is 555-0199"


def fill(ledger: AuditLedger, n: int = 6) -> list[int]:
    """n decision-like entries; the even ones carry the secret. Returns their seqs."""
    seqs = []
    for i in range(n):
        text = f"{SECRET} #{i}" if i % 2 == 0 else f"TPS reports go in ./Reports/TPS #{i}"
        e = ledger.append("proposal.decided", proposal_id=f"p{i}", text=text, content_sha256="ab" * 32,
                          reason=f"committed: {text}", action="commit", state="committed", nonce=f"{i:032x}")
        seqs.append(e.seq)
    return seqs


def lines(ledger: AuditLedger) -> list[dict]:
    return list(ledger.history())


def test_redacted_entries_lose_their_text_and_the_chain_still_verifies(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    head = ledger.anchor()
    targets = seqs[0::2]
    [record] = ledger.redact(targets, operator="ops", reason="GDPR-1")
    assert record.event == REDACTED_EVENT and [p[0] for p in record.fields["entries"]] == targets
    raw = ledger.path.read_bytes()
    assert b"555-0199" not in raw and b"Reports/TPS" in raw
    by_seq = {e["seq"]: e for e in lines(ledger)}
    for q in targets:
        stub = by_seq[q]
        assert stub["redacted"] == ["content_sha256", "nonce", "reason", "text"]
        assert stub["action"] == "commit" and stub["proposal_id"] == f"p{q - 1}" and "text" not in stub
    report = ledger.verify(head)  # the anchor taken before the redaction still holds
    assert report.ok and report.redacted == 3 and report.redactions_pending == 0, report
    ledger.append("after", n=1)  # appends go on chaining onto the rewritten file
    assert ledger.verify().ok
    # nothing left to redact: a second call records nothing
    assert ledger.redact(targets, operator="ops", reason="again") == []


def test_a_stub_verifies_by_its_hash_so_an_edit_of_a_kept_field_is_caught_even_with_a_record(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    anchor = ledger.anchor()
    ledger.redact([seqs[0]], operator="ops", reason="r")
    good = ledger.path.read_bytes()
    ledger.path.write_bytes(good.replace(b'"action":"commit"', b'"action":"quarantine"', 1))
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == seqs[0] and "hash mismatch" in report.problem, report

    # the forger's way: turn an anchored entry into a stub with other kept fields, then append a record naming it
    ledger.path.write_bytes(good)
    entries = [json.loads(x) for x in good.splitlines()]
    target = entries[2]
    forged = redaction_stub(target)
    forged["state"], forged["action"] = "quarantined", "quarantine"
    out = [json.dumps(forged, separators=(",", ":")) if e["seq"] == target["seq"] else json.dumps(e)
           for e in entries]
    ledger.path.write_text("\n".join(out) + "\n")
    ledger.append(REDACTED_EVENT, operator="nobody", reason="cover-up", entries=[[target["seq"], stub_digest(forged)]])
    report = ledger.verify(anchor)
    assert not report.ok and report.first_bad_seq == target["seq"] and "hash mismatch" in report.problem, report


def legacy_ledger(path, n: int = 4) -> None:
    """A chain written before hash version 2: each entry hashed whole, no ``hv``."""
    prev, lines = GENESIS_HASH, []
    for i in range(1, n + 1):
        e = {"seq": i, "ts": "2026-01-01T00:00:00.000000Z", "event": "proposal.decided", "proposal_id": f"p{i}",
             "text": f"{SECRET} #{i}", "action": "commit", "prev_hash": prev}
        e["hash"] = prev = entry_hash(e)
        lines.append(json.dumps(e))
    path.write_text("\n".join(lines) + "\n")


def test_stubs_of_entries_from_before_hash_version_2_are_confirmed_by_their_record(tmp_path):
    path = tmp_path / "ledger.jsonl"
    legacy_ledger(path)
    ledger = AuditLedger(path)
    ledger.redact([1, 3], operator="ops", reason="r")
    report = ledger.verify()
    assert report.ok and report.redacted == 2 and report.redacted_legacy == 2, report
    assert b"555-0199 #1" not in path.read_bytes() and b"555-0199 #2" in path.read_bytes()
    good = path.read_bytes()

    path.write_bytes(good.replace(b'"action":"commit"', b'"action":"quarantine"', 1))  # the stub (compact)
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == 1 and "differs from the stub" in report.problem, report

    # a whole entry replaced by a stub no record names
    entries = [json.loads(x) for x in good.splitlines()]
    out = [json.dumps(redaction_stub(e)) if e["seq"] == 2 else json.dumps(e) for e in entries]
    path.write_text("\n".join(out) + "\n")
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == 2 and "no ledger.redacted record" in report.problem, report


def test_an_interrupted_redaction_is_pending_until_applied(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    entry = next(e for e in lines(ledger) if e["seq"] == seqs[2])
    # the record is written, the rewrite is not (a crash in between)
    ledger.append(REDACTED_EVENT, operator="ops", reason="r", entries=[[seqs[2], stub_digest(redaction_stub(entry))]])
    report = ledger.verify()
    assert report.ok and report.redactions_pending == 1 and report.redacted == 0
    assert b"#2" in ledger.path.read_bytes()
    assert ledger.apply_redactions() == 1
    report = ledger.verify()
    assert report.ok and report.redactions_pending == 0 and report.redacted == 1
    assert f"{SECRET} #2".encode() not in ledger.path.read_bytes()
    assert ledger.apply_redactions() == 0


def test_a_record_that_does_not_match_the_entry_is_not_applied(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    ledger.append(REDACTED_EVENT, operator="x", reason="r", entries=[[seqs[0], "0" * 64]])
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerError, match="does not match the stub"):
        ledger.apply_redactions()
    assert ledger.path.read_bytes() == before


def test_an_edited_entry_is_not_laundered_by_a_redaction(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    data = ledger.path.read_bytes().replace(b'"state":"committed"', b'"state":"quarantined"', 1)
    ledger.path.write_bytes(data)
    with pytest.raises(LedgerCorruptError, match="does not match its hash"):
        ledger.redact([seqs[0]], operator="ops", reason="r")
    assert ledger.path.read_bytes() == data  # no record appended
    assert not ledger.verify().ok


def test_redaction_reaches_the_archives_and_verifies_across_them(tmp_path):
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    first = fill(ledger)
    ledger.rotate()
    second = fill(ledger)
    ledger.rotate()
    [archive_a, archive_b] = ledger.archives()
    ledger.redact([first[0], second[0]], operator="ops", reason="r")
    for path in (archive_a, archive_b, ledger.path):
        assert b"555-0199 #0" not in path.read_bytes(), path
    assert b"555-0199 #2" in archive_a.read_bytes()  # what was not asked for stays
    report = ledger.verify(archives=True)
    assert report.ok and report.redacted == 2 and report.files == 3, report
    assert ledger.verify().ok  # the live file alone: the record is there, its stubs are archived


def test_appends_from_another_writer_during_redactions_stay_one_chain(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = AuditLedger(path)
    seqs = fill(ledger, 40)
    other = AuditLedger(path)  # its own descriptor and lock, as another process has
    stop = threading.Event()
    written = []

    def writer():
        while not stop.is_set():
            written.append(other.append("proposal.decided", proposal_id="w", text="benign", action="commit"))

    t = threading.Thread(target=writer)
    t.start()
    try:
        for q in seqs[0::2]:
            ledger.redact([q], operator="ops", reason="r")
    finally:
        stop.set()
        t.join()
    report = ledger.verify()
    assert report.ok and report.redacted == 20, report
    assert written and report.entries == 40 + 20 + len(written)
    assert b"555-0199" not in path.read_bytes()


def test_forged_stubs_of_hash_version_2_are_caught(tmp_path):
    """The second audit's forgeries: a stub that put a redactable field back, a stub no record names, and an
    entry of version 2 made to look like an older one (so that only a forged record would confirm it)."""
    ledger = AuditLedger(tmp_path / "ledger.jsonl")
    seqs = fill(ledger)
    anchor = ledger.anchor()
    good = ledger.path.read_bytes()
    entries = [json.loads(x) for x in good.splitlines()]
    target = next(e for e in entries if e["seq"] == seqs[0])

    def replaced(new: dict) -> None:
        ledger.path.write_text("\n".join(json.dumps(new if e["seq"] == new["seq"] else e, separators=(",", ":"))
                                         for e in entries) + "\n")

    stub = redaction_stub(target)
    refilled = {k: v for k, v in stub.items() if k not in ("prev_hash", "hash")}
    refilled["redacted"] = ["nonce"]
    refilled.update(text="FORGED TEXT", reason="approved by admin", prev_hash=stub["prev_hash"], hash=stub["hash"])
    replaced(refilled)
    report = ledger.verify(anchor)
    assert not report.ok and "still holds a redactable field" in report.problem, report

    replaced(stub)  # text and reason stripped, no record written
    report = ledger.verify(anchor)
    assert not report.ok and "no ledger.redacted record" in report.problem, report

    downgraded = {k: v for k, v in stub.items() if k not in ("hv", "redacted_digest")}
    downgraded["action"] = "quarantine"
    replaced(downgraded)
    ledger.append(REDACTED_EVENT, operator="x", reason="r", entries=[[target["seq"], stub_digest(downgraded)]])
    report = ledger.verify(anchor)
    assert not report.ok and report.first_bad_seq == target["seq"] + 1 and "old hash format" in report.problem, report


def test_a_ledger_of_older_entries_goes_on_with_a_marker_and_verifies(tmp_path):
    path = tmp_path / "ledger.jsonl"
    legacy_ledger(path, 3)
    ledger = AuditLedger(path)
    ledger.append("proposal.decided", proposal_id="new", text="TPS reports go in ./Reports/TPS", action="commit")
    entries = list(ledger.history())
    assert [e["event"] for e in entries[3:]] == ["ledger.hash_version", "proposal.decided"]
    assert [e.get("hv") for e in entries] == [None, None, None, 2, 2]
    assert ledger.verify().ok
    ledger.rotate()
    ledger.append("after", n=1)
    assert ledger.verify(archives=True).ok
    # an entry of the old format after the marker is not the old code's: it replaced one
    lines = path.read_text().splitlines()
    old = json.loads(lines[-1])
    old.pop("hv")
    old["hash"] = entry_hash(old)
    path.write_text("\n".join(lines[:-1] + [json.dumps(old)]) + "\n")
    report = ledger.verify()
    assert not report.ok and "old hash format" in report.problem, report
