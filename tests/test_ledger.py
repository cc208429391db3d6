"""Tests for gatekeeper.ledger (real files under tmp_path)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import tempfile
import threading
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gatekeeper.ledger import (
    GENESIS_HASH,
    REDACTABLE_FIELDS,
    AuditLedger,
    LedgerCorruptError,
    LedgerEntry,
    LedgerSerializationError,
    VerifyReport,
    canonical_json,
    entry_hash,
)

# --------------------------------------------------------------------------- helpers


def fill(ledger: AuditLedger, n: int) -> list[LedgerEntry]:
    return [
        ledger.append("decision", proposal_id=f"p{i}", action="commit" if i % 3 else "quarantine", score=i / 7)
        for i in range(1, n + 1)
    ]


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def sealed(entry: dict) -> bytes:
    """A line for *entry* with a correctly computed own hash."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    body["hash"] = entry_hash(body)
    return (json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "ledger.jsonl"


@pytest.fixture
def ledger(path: Path) -> AuditLedger:
    with AuditLedger(path) as led:
        yield led


# --------------------------------------------------------------------------- format and chain


def test_empty_ledger(ledger: AuditLedger, path: Path) -> None:
    assert ledger.verify() == VerifyReport(ok=True, entries=0)
    assert len(ledger) == 0
    assert ledger.last() is None
    assert ledger.anchor() == (0, GENESIS_HASH)
    assert ledger.find() == []
    assert ledger.verify(expected_head=(0, GENESIS_HASH)).ok
    assert not path.exists()  # nothing created until the first append


def test_chain_of_100_entries_verifies(ledger: AuditLedger, path: Path) -> None:
    written = fill(ledger, 100)
    report = ledger.verify()
    assert report == VerifyReport(ok=True, entries=100)
    assert len(ledger) == 100

    lines = read_lines(path)
    assert len(lines) == 100 and all(line.endswith(b"\n") for line in lines)
    prev = GENESIS_HASH
    for i, (line, entry) in enumerate(zip(lines, written, strict=True), start=1):
        obj = json.loads(line)
        assert obj == entry.as_dict()
        assert list(obj)[:3] == ["seq", "ts", "event"] and list(obj)[-2:] == ["prev_hash", "hash"]
        assert obj["seq"] == i
        assert obj["prev_hash"] == prev
        assert obj["hv"] == 2

        def sha(o):
            return hashlib.sha256(
                json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()

        # hash version 2, recomputed by the module docstring's recipe with plain json and hashlib
        body = {k: v for k, v in obj.items() if k != "hash" and k not in REDACTABLE_FIELDS}
        body["redactable_digest"] = sha({k: v for k, v in obj.items() if k in REDACTABLE_FIELDS})
        assert obj["hash"] == sha(body)
        ts = datetime.fromisoformat(obj["ts"].replace("Z", "+00:00"))
        assert ts.utcoffset() == timezone.utc.utcoffset(None)
        prev = obj["hash"]

    assert ledger.anchor() == (100, written[-1].hash)
    assert ledger.last() == written[-1].as_dict()
    assert ledger.verify(expected_head=ledger.anchor()).ok


def test_append_returns_entry_and_dumps_pydantic_and_enums(ledger: AuditLedger) -> None:
    class Action(str, Enum):
        COMMIT = "commit"

    class Decision(BaseModel):
        action: Action
        at: datetime
        categories: list[str]

    d = Decision(action=Action.COMMIT, at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc), categories=["x"])
    entry = ledger.append("decision", decision=d, action=Action.COMMIT, ids=("a", "b"), text="naïve ✓ 日本")
    assert entry.seq == 1 and entry.prev_hash == GENESIS_HASH and entry.event == "decision"
    assert entry.fields["decision"] == {"action": "commit", "at": "2025-01-02T03:04:05Z", "categories": ["x"]}
    assert entry.fields["action"] == "commit"
    assert entry.fields["ids"] == ["a", "b"]
    (stored,) = ledger.find()
    assert stored == entry.as_dict()
    assert "naïve ✓ 日本".encode() in ledger.path.read_bytes()  # ensure_ascii=False on the line too
    assert ledger.verify().ok


def test_field_names_that_shadow_parameters_are_fine(ledger: AuditLedger) -> None:
    entry = ledger.append("x", self=1, method_name=2, path="p", logger="l", fields={"a": 1})
    assert entry.fields == {"self": 1, "method_name": 2, "path": "p", "logger": "l", "fields": {"a": 1}}
    assert ledger.find(self=1)[0]["method_name"] == 2
    assert ledger.verify().ok


@pytest.mark.parametrize("name", ["seq", "ts", "event", "prev_hash", "hash"])
def test_reserved_field_names_rejected(ledger: AuditLedger, name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        ledger.append("x", **{name: 1})
    assert not ledger.path.exists()


def test_entries_and_find_filter(ledger: AuditLedger) -> None:
    fill(ledger, 30)
    ledger.append("escalate", proposal_id="p7", reviewer="alice")
    assert [e["seq"] for e in ledger.find(proposal_id="p7")] == [7, 31]
    assert [e["event"] for e in ledger.find(proposal_id="p7", event="escalate")] == ["escalate"]
    assert len(ledger.find(action="quarantine")) == 10
    assert ledger.find(reviewer="bob") == []
    assert ledger.find(nonexistent=None) == []  # missing field does not equal None
    assert sum(1 for _ in ledger.entries()) == 31


# --------------------------------------------------------------------------- tamper detection


def test_edit_one_field_of_line_37(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 100)
    lines = read_lines(path)
    obj = json.loads(lines[36])
    obj["action"] = "commit" if obj["action"] != "commit" else "quarantine"
    lines[36] = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    write_lines(path, lines)

    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_seq == 37
    assert report.first_bad_line == 37
    assert report.entries == 36
    assert report.problem == "line 37 (seq 37): hash mismatch — entry was edited"


def test_raw_text_edit_is_detected(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 50)
    data = path.read_bytes().replace(b'"proposal_id":"p12"', b'"proposal_id":"p99"', 1)
    path.write_bytes(data)
    report = ledger.verify()
    assert (report.ok, report.first_bad_seq, report.first_bad_line) == (False, 12, 12)
    assert "hash mismatch" in report.problem


def test_deleted_line(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 100)
    lines = read_lines(path)
    del lines[36]
    write_lines(path, lines)
    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_line == 37
    assert report.first_bad_seq == 38
    assert report.entries == 36
    assert "expected seq 37, found 38" in report.problem and "deleted" in report.problem


def test_deleted_first_line(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 5)
    write_lines(path, read_lines(path)[1:])
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq) == (False, 1, 2)


def test_swapped_lines(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 100)
    lines = read_lines(path)
    lines[36], lines[37] = lines[37], lines[36]
    write_lines(path, lines)
    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_line == 37
    assert report.first_bad_seq == 38
    assert report.problem.startswith("line 37 (seq 38): ")


def test_swapped_lines_with_renumbered_seqs_and_rehashed(ledger: AuditLedger, path: Path) -> None:
    # A smarter forger swaps the contents and fixes seq and own hash: prev_hash gives it away.
    fill(ledger, 100)
    lines = read_lines(path)
    a, b = json.loads(lines[36]), json.loads(lines[37])
    a["seq"], b["seq"] = 38, 37
    lines[36], lines[37] = sealed(b), sealed(a)
    write_lines(path, lines)
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq) == (False, 37, 37)
    assert "prev_hash mismatch" in report.problem


def test_inserted_forged_line_with_own_hash_but_wrong_prev_hash(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 100)
    lines = read_lines(path)
    original_38 = json.loads(lines[37])
    forged = dict(original_38)
    forged["proposal_id"] = "forged"
    forged["prev_hash"] = hashlib.sha256(b"made up").hexdigest()
    forged_line = sealed(forged)
    assert json.loads(forged_line)["hash"] == entry_hash(json.loads(forged_line))  # its own hash is right
    lines.insert(37, forged_line)
    write_lines(path, lines)
    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_line == 38
    assert report.first_bad_seq == 38
    assert report.entries == 37
    assert report.problem.startswith("line 38 (seq 38): prev_hash mismatch")


def test_inserted_forged_line_that_chains_correctly_is_caught_by_next_seq(
    ledger: AuditLedger, path: Path
) -> None:
    fill(ledger, 100)
    lines = read_lines(path)
    prev = json.loads(lines[36])
    forged = {"seq": 38, "ts": prev["ts"], "event": "decision", "proposal_id": "forged", "hv": 2,
              "prev_hash": prev["hash"]}
    lines.insert(37, sealed(forged))
    write_lines(path, lines)
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq) == (False, 39, 38)
    assert "out of order" in report.problem


def test_rewritten_history_only_detected_with_anchor(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 20)
    anchor = ledger.anchor()
    # Re-forge the whole chain from entry 5 on, consistently.
    lines = read_lines(path)
    prev_hash = json.loads(lines[3])["hash"]
    for i in range(4, 20):
        obj = json.loads(lines[i])
        obj["proposal_id"] = "rewritten"
        obj["prev_hash"] = prev_hash
        lines[i] = sealed(obj)
        prev_hash = json.loads(lines[i])["hash"]
    write_lines(path, lines)
    assert ledger.verify().ok  # self-consistent
    report = ledger.verify(expected_head=anchor)
    assert not report.ok and report.first_bad_seq == 20 and "rewritten" in report.problem


def test_invalid_json_and_blank_lines(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 10)
    lines = read_lines(path)
    write_lines(path, [*lines[:4], b"{not json\n", *lines[4:]])
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq) == (False, 5, None)
    assert report.problem.startswith("line 5: invalid JSON")
    with pytest.raises(LedgerCorruptError, match="line 5"):
        ledger.find()

    write_lines(path, [*lines[:4], b"\n", *lines[4:]])
    report = ledger.verify()
    assert (report.ok, report.first_bad_line) == (False, 5) and "blank line" in report.problem


def test_duplicate_key_smuggling_detected(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 3)
    lines = read_lines(path)
    lines[1] = lines[1].replace(b'"event":"decision"', b'"event":"decision","action":"commit"', 1)
    write_lines(path, lines)
    report = ledger.verify()
    assert (report.ok, report.first_bad_line) == (False, 2)


def test_append_refuses_to_chain_onto_edited_last_entry(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 5)
    lines = read_lines(path)
    lines[-1] = lines[-1].replace(b'"p5"', b'"pX"')
    write_lines(path, lines)
    before = path.read_bytes()
    with pytest.raises(LedgerCorruptError, match="hash mismatch"):
        ledger.append("decision", proposal_id="p6")
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- torn tail


def test_torn_tail(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 10)
    intact = path.read_bytes()
    partial = b'{"seq":11,"ts":"2025-01-01T00:00:00.000000Z","event":"decision","proposal_id":"p1'
    with open(path, "ab") as f:
        f.write(partial)

    report = ledger.verify()
    assert not report.ok
    assert report.first_bad_line == 11
    assert report.first_bad_seq == 11
    assert report.entries == 10
    assert "torn tail" in report.problem and "repair_torn_tail" in report.problem

    with pytest.raises(LedgerCorruptError, match="torn"):
        ledger.append("decision", proposal_id="p11")
    with pytest.raises(LedgerCorruptError, match="torn"):
        ledger.last()
    assert path.read_bytes() == intact + partial  # nothing chained onto garbage

    removed = ledger.repair_torn_tail()
    assert removed == partial
    assert ledger.verify() == VerifyReport(ok=True, entries=11)
    rec = ledger.last()
    assert rec["event"] == "ledger.tail_repaired"
    assert rec["removed_bytes"] == len(partial)
    assert rec["removed_sha256"] == hashlib.sha256(partial).hexdigest()
    assert rec["removed_text"] == partial.decode()
    assert path.read_bytes().startswith(intact)

    assert ledger.repair_torn_tail() == b""  # idempotent
    ledger.append("decision", proposal_id="p12")
    assert ledger.verify() == VerifyReport(ok=True, entries=12)


def test_torn_tail_complete_json_but_no_newline_and_split_utf8(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 3)
    full_line = read_lines(path)[-1]
    # The last write lost only its newline: still torn (every write ends with one).
    path.write_bytes(path.read_bytes()[:-1])
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq) == (False, 3, 3)
    assert "torn tail" in report.problem
    assert ledger.repair_torn_tail(record=False) == full_line[:-1]
    assert ledger.verify() == VerifyReport(ok=True, entries=2)

    # Torn in the middle of a multi-byte character.
    ledger.append("decision", note="日本語")
    data = path.read_bytes()
    cut = data.rindex("本".encode()) + 1
    path.write_bytes(data[:cut])
    report = ledger.verify()
    assert not report.ok and report.first_bad_line == 3 and "torn tail" in report.problem
    assert ledger.repair_torn_tail(record=False) == data[data.rindex(b"\n", 0, cut) + 1 : cut]
    assert ledger.verify().ok and len(ledger) == 2


def test_whole_file_torn(ledger: AuditLedger, path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"seq":1,"ts"')
    report = ledger.verify()
    assert (report.ok, report.first_bad_line, report.first_bad_seq, report.entries) == (False, 1, 1, 0)
    assert ledger.repair_torn_tail(record=False) == b'{"seq":1,"ts"'
    assert path.read_bytes() == b""
    assert ledger.append("decision").seq == 1


def test_repair_leaves_complete_but_invalid_final_line_alone(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 3)
    with open(path, "ab") as f:
        f.write(b"garbage\n")
    before = path.read_bytes()
    assert ledger.repair_torn_tail() == b""
    assert path.read_bytes() == before
    with pytest.raises(LedgerCorruptError, match="invalid JSON"):
        ledger.append("decision")
    report = ledger.verify()
    assert (report.ok, report.first_bad_line) == (False, 4)


# --------------------------------------------------------------------------- anchor / truncation


def test_truncation_detected_with_anchor(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 20)
    anchor = ledger.anchor()
    assert anchor[0] == 20
    write_lines(path, read_lines(path)[:17])  # drop 3 whole trailing entries

    assert ledger.verify().ok  # undetectable without the anchor
    report = ledger.verify(expected_head=anchor)
    assert not report.ok
    assert report.first_bad_seq == 18
    assert report.first_bad_line == 18
    assert report.entries == 17
    assert "truncated" in report.problem and "3 trailing entries" in report.problem

    path.write_bytes(b"")
    report = ledger.verify(expected_head=anchor)
    assert (report.ok, report.first_bad_seq) == (False, 1)


def test_anchor_still_valid_after_more_appends(ledger: AuditLedger) -> None:
    fill(ledger, 10)
    anchor = ledger.anchor()
    fill(ledger, 5)
    assert ledger.verify(expected_head=anchor).ok
    assert ledger.verify(expected_head=ledger.anchor()).ok
    assert not ledger.verify(expected_head=(10, "a" * 64)).ok


# --------------------------------------------------------------------------- several entries, one flush


def test_append_many_chains_in_order_with_one_write_and_one_fsync(
        ledger: AuditLedger, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(ledger, 2)
    writes, fsyncs = [], []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(len(data)) or real_write(fd, data))
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    got = ledger.append_many([("decision", {"proposal_id": f"b{i}", "n": i}) for i in range(5)])
    monkeypatch.undo()
    assert len(writes) == 1 and len(fsyncs) == 1
    assert [e.seq for e in got] == [3, 4, 5, 6, 7]
    assert [e.fields["proposal_id"] for e in got] == [f"b{i}" for i in range(5)]
    assert all(b.prev_hash == a.hash for a, b in zip(got, got[1:]))
    assert ledger.verify() == VerifyReport(ok=True, entries=7)
    assert [e["proposal_id"] for e in ledger.entries()][2:] == [f"b{i}" for i in range(5)]
    assert ledger.append_many([]) == []
    assert ledger.append("decision", proposal_id="after").seq == 8


def test_append_many_is_all_or_nothing(ledger: AuditLedger, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(ledger, 3)
    before = path.read_bytes()

    class Opaque:
        pass

    # one bad entry: nothing is written, not even the good ones before it
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        ledger.append_many([("decision", {"ok": 1}), ("decision", {"blob": Opaque()}), ("decision", {"ok": 2})])
    with pytest.raises(ValueError):
        ledger.append_many([("decision", {"ok": 1}), ("decision", {"seq": 9})])
    assert path.read_bytes() == before

    # the disk fails during the flush: the file is truncated back to the entries before it
    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        ledger.append_many([("decision", {"proposal_id": f"x{i}"}) for i in range(4)])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ledger.append_many([("decision", {"proposal_id": "y"})])[0].seq == 4
    assert ledger.verify().ok


def test_append_many_refuses_a_torn_tail(ledger: AuditLedger, path: Path) -> None:
    fill(ledger, 2)
    with open(path, "ab") as fh:
        fh.write(b'{"seq":3,"ts":"20')
    with pytest.raises(LedgerCorruptError, match="torn"):
        ledger.append_many([("decision", {"proposal_id": "z"})])
    ledger.repair_torn_tail()
    assert ledger.append_many([("decision", {"proposal_id": "z"})])[0].seq == 4
    assert ledger.verify().ok


# --------------------------------------------------------------------------- serialisation


def test_non_serialisable_field_rejected_and_nothing_written(ledger: AuditLedger, path: Path) -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError, match="'blob'.*not JSON-serialisable"):
        ledger.append("decision", blob=Opaque())
    assert not path.exists()  # not even created

    fill(ledger, 3)
    before = path.read_bytes()
    bad_values = [
        Opaque(),
        {"nested": [1, 2, {3}]},
        float("nan"),
        float("inf"),
        {1: "int key"},
        b"bytes",
        datetime.now(timezone.utc),
        "lone surrogate \ud800",
    ]
    for value in bad_values:
        with pytest.raises(TypeError) as exc_info:
            ledger.append("decision", proposal_id="p4", evidence=value)
        assert isinstance(exc_info.value, LedgerSerializationError)
        assert "evidence" in str(exc_info.value)
    circular: list = []
    circular.append(circular)
    with pytest.raises(TypeError, match="circular"):
        ledger.append("decision", evidence=circular)
    with pytest.raises(TypeError):
        ledger.append(42)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert ledger.verify() == VerifyReport(ok=True, entries=3)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=4), min_size=1, max_size=5))
def test_arbitrary_json_fields_round_trip_and_verify(records: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as d:
        led = AuditLedger(Path(d) / "l.jsonl")
        written = []
        for rec in records:
            rec = {k: v for k, v in rec.items() if k not in {"seq", "ts", "event", "prev_hash", "hash"}}
            written.append(led.append("ev", **rec).as_dict())
        assert led.find() == written
        assert led.verify() == VerifyReport(ok=True, entries=len(records))
        for e in written:
            assert canonical_json(e)  # canonical form exists for every stored entry
        led.close()


# --------------------------------------------------------------------------- concurrency


def _worker(path: str, worker_id: int, n: int, start: mp.synchronize.Barrier) -> None:
    led = AuditLedger(path)
    start.wait(timeout=120)  # every process has started (spawn takes seconds) and opened the ledger
    for i in range(n):
        led.append("decision", worker=worker_id, i=i, proposal_id=f"w{worker_id}-{i}", pad="x" * (i * 37 % 500))
    led.close()


def test_eight_processes_append_concurrently(path: Path) -> None:
    ctx = mp.get_context("spawn")
    # a barrier, not an event set right after starting: spawned processes take seconds to start, and the first
    # ones could finish their appends before the last began (then nothing interleaves)
    start = ctx.Barrier(9)
    procs = [ctx.Process(target=_worker, args=(str(path), w, 50, start)) for w in range(8)]
    for p in procs:
        p.start()
    start.wait(timeout=120)
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    led = AuditLedger(path)
    assert led.verify() == VerifyReport(ok=True, entries=400)
    entries = led.find()
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, 401))
    assert len(set(seqs)) == 400
    assert len(read_lines(path)) == 400
    for w in range(8):
        mine = [e["i"] for e in entries if e["worker"] == w]
        assert mine == list(range(50))  # each process's appends are in its own order
    # Lines from different processes interleaved (sanity check that the test is concurrent).
    workers_in_order = [e["worker"] for e in entries]
    assert sum(a != b for a, b in zip(workers_in_order, workers_in_order[1:])) > 8


def test_threads_share_one_ledger_object(path: Path) -> None:
    led = AuditLedger(path)
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for i in range(50):
                led.append("decision", thread=t, i=i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert led.verify() == VerifyReport(ok=True, entries=400)


def test_second_instance_on_same_file_continues_chain(path: Path) -> None:
    a, b = AuditLedger(path), AuditLedger(path)
    a.append("x")
    b.append("y")
    a.append("z")
    assert [e["event"] for e in b.find()] == ["x", "y", "z"]
    assert a.verify().ok


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_reopens_and_locks_independently(path: Path) -> None:
    led = AuditLedger(path)
    led.append("parent-before-fork")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_fork_child, args=(led,)) for _ in range(4)]
    for p in procs:
        p.start()
    for i in range(50):
        led.append("parent", i=i)
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert led.verify() == VerifyReport(ok=True, entries=1 + 50 + 4 * 50)


def _fork_child(led: AuditLedger) -> None:
    for i in range(50):
        led.append("child", pid=os.getpid(), i=i)
