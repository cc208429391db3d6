"""Ledger rotation: the live file is archived and a new one continues the chain, while gates keep appending."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.ledger import ROTATED_EVENT, AuditLedger, LedgerCorruptError
from gatekeeper.models import MemoryWrite, Provenance, SourceKind

from conftest import make_gate

runner = CliRunner()


def fill(ledger: AuditLedger, n: int, start: int = 1, who: str = "p") -> None:
    for i in range(start, start + n):
        ledger.append("proposal.decided", proposal_id=f"{who}{i}", state="committed", text=f"note {i}")


@pytest.fixture
def ledger(tmp_path):
    led = AuditLedger(tmp_path / "ledger.jsonl")
    yield led
    led.close()


def test_rotation_archives_the_file_and_the_new_one_continues_the_chain(ledger):
    fill(ledger, 5)
    head = ledger.anchor()
    entry = ledger.rotate()
    assert entry is not None and entry.event == ROTATED_EVENT
    assert (entry.seq, entry.prev_hash) == (head[0] + 1, head[1])
    assert entry.fields == {"archive": "ledger-archive/ledger-000000000001-000000000005.jsonl",
                            "archived_first_seq": 1, "archived_last_seq": 5}
    [archive] = ledger.archives()
    assert archive == ledger.path.parent / entry.fields["archive"]
    assert [json.loads(x)["seq"] for x in archive.read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert (archive.stat().st_mode & 0o777) == 0o600 and (ledger.path.stat().st_mode & 0o777) == 0o600
    fill(ledger, 3, start=6)
    assert [e["seq"] for e in ledger.entries()] == [6, 7, 8, 9]
    assert [e["seq"] for e in ledger.history()] == list(range(1, 10))
    assert [e["proposal_id"] for e in ledger.history(event="proposal.decided")] == [f"p{i}" for i in range(1, 9)]
    live = ledger.verify()
    assert live.ok and (live.entries, live.first_seq, live.files) == (4, 6, 1)
    full = ledger.verify(archives=True)
    assert full.ok and (full.entries, full.first_seq, full.files) == (9, 1, 2)
    assert len(ledger) == 9 and ledger.anchor()[0] == 9


def test_nothing_to_rotate_on_an_empty_ledger_or_right_after_a_rotation(ledger):
    assert ledger.rotate() is None and ledger.archives() == []
    fill(ledger, 2)
    assert ledger.rotate() is not None
    assert ledger.rotate() is None  # only the rotation entry is live
    assert len(ledger.archives()) == 1
    fill(ledger, 1, start=3)
    second = ledger.rotate()
    assert second.fields["archived_first_seq"] == 3 and second.fields["archived_last_seq"] == 4
    assert [p.name for p in ledger.archives()] == ["ledger-000000000001-000000000002.jsonl",
                                                   "ledger-000000000003-000000000004.jsonl"]
    assert ledger.verify(archives=True).ok and ledger.verify(archives=True).entries == 5


def test_an_appender_opened_before_a_rotation_writes_to_the_new_file_not_the_archive(ledger):
    other = AuditLedger(ledger.path)  # another gate: its own descriptor, kept open
    fill(other, 2)
    fill(ledger, 2, start=3)
    ledger.rotate()
    fill(other, 2, start=5, who="q")  # its descriptor is on the archived file
    [archive] = ledger.archives()
    assert len(archive.read_text().splitlines()) == 4
    assert [e.get("proposal_id") for e in ledger.entries()] == [None, "q5", "q6"]
    assert ledger.verify(archives=True).ok
    other.close()


def _append_many(path: str, who: str, n: int) -> None:
    led = AuditLedger(path)
    for i in range(n):
        led.append("proposal.decided", proposal_id=f"{who}-{i}", state="committed")
    led.close()


def test_rotations_while_processes_append_lose_nothing_and_keep_one_chain(ledger):
    fill(ledger, 1)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(ledger.path), f"w{k}", 150)) for k in range(3)]
    for p in procs:
        p.start()
    rotations = 0
    while any(p.is_alive() for p in procs) or rotations < 3:
        rotations += ledger.rotate() is not None
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = ledger.verify(archives=True)
    assert report.ok, report.problem
    assert report.files == len(ledger.archives()) + 1 >= 3
    decided = [e["proposal_id"] for e in ledger.history(event="proposal.decided")]
    assert sorted(decided) == sorted(["p1", *(f"w{k}-{i}" for k in range(3) for i in range(150))])
    assert report.entries == 1 + 450 + rotations == len(ledger)


def test_a_tampered_archive_is_caught_by_the_check_with_archives(ledger):
    fill(ledger, 4)
    ledger.rotate()
    fill(ledger, 2, start=5)
    [archive] = ledger.archives()
    lines = archive.read_text().splitlines()
    lines[1] = lines[1].replace("note 2", "note 20")
    archive.write_text("\n".join(lines) + "\n")
    assert ledger.verify().ok  # the live file alone does not hold the archived entries
    bad = ledger.verify(archives=True)
    assert not bad.ok and bad.first_bad_seq == 2 and bad.file == str(archive)
    assert bad.problem.startswith(archive.name) and "hash mismatch" in bad.problem


def test_a_live_file_whose_rotation_entry_was_removed_is_a_gap_not_a_new_start(ledger):
    fill(ledger, 3)
    ledger.rotate()
    fill(ledger, 2, start=4)
    lines = ledger.path.read_text().splitlines()
    ledger.path.write_text("\n".join(lines[1:]) + "\n")
    bad = ledger.verify()
    assert not bad.ok and "seq gap" in bad.problem and bad.first_bad_seq == 5


def test_a_removed_archive_leaves_a_chain_that_starts_at_the_rotation(ledger):
    fill(ledger, 3)
    ledger.rotate()
    fill(ledger, 3, start=4)
    ledger.rotate()
    fill(ledger, 1, start=7)
    oldest = ledger.archives()[0]
    anchor_old = (3, json.loads(oldest.read_text().splitlines()[-1])["hash"])
    assert ledger.verify(anchor_old, archives=True).ok
    oldest.unlink()  # a retention job removed it
    report = ledger.verify(archives=True)
    assert report.ok and report.first_seq == 4 and report.files == 2 and report.entries == 6
    # the rotation entry that starts the files left chains to the anchored entry: still proof
    assert ledger.verify(anchor_old, archives=True).ok
    wrong = ledger.verify((3, "f" * 64), archives=True)
    assert not wrong.ok and "does not chain to the anchor" in wrong.problem and not wrong.anchor_unverifiable
    older = (2, "a" * 64)  # its archive is gone: neither proved nor disproved
    gone = ledger.verify(older, archives=True)
    assert not gone.ok and gone.anchor_unverifiable and "archive holding it is not here" in gone.problem
    live_only = ledger.verify(ledger.anchor())
    assert live_only.ok and live_only.first_seq == 8


def test_a_link_left_by_an_interrupted_rotation_is_no_archive_and_the_next_rotation_clears_it(ledger):
    fill(ledger, 3)
    ledger.archive_dir.mkdir(mode=0o700)
    stale = ledger.archive_dir / "ledger-000000000001-000000000003.jsonl"
    os.link(ledger.path, stale)  # killed between the link and the new file's rename
    fill(ledger, 2, start=4)  # the link grows with the live file
    assert ledger.archives() == []
    assert [e["seq"] for e in ledger.history()] == [1, 2, 3, 4, 5]
    entry = ledger.rotate()
    assert entry.fields["archived_last_seq"] == 5
    assert not stale.exists() and [p.name for p in ledger.archives()] == ["ledger-000000000001-000000000005.jsonl"]
    assert ledger.verify(archives=True).ok and ledger.verify(archives=True).entries == 6


def test_a_torn_tail_is_not_rotated(ledger):
    fill(ledger, 2)
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"seq":3,"ts":"2026')
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerCorruptError, match="torn"):
        ledger.rotate()
    assert ledger.path.read_bytes() == before and ledger.archives() == []
    ledger.close()
    r = runner.invoke(app, ["ledger", "rotate", str(ledger.path)])
    assert r.exit_code == 1 and "gatekeeper ledger repair" in r.output and ledger.archives() == [], r.output
    r = runner.invoke(app, ["ledger", "repair", str(ledger.path)])
    assert r.exit_code == 0 and "removed a torn tail of 19 bytes" in r.output, r.output
    r = runner.invoke(app, ["ledger", "repair", str(ledger.path)])
    assert r.exit_code == 0 and "nothing to repair" in r.output, r.output
    assert ledger.rotate().fields["archived_last_seq"] == 3  # the repair entry is archived with the rest


def test_the_cli_does_not_rotate_an_edited_live_file_out_of_what_status_checks(ledger):
    """With an entry edited in the live file, `status` said TAMPERED (exit 3); `ledger rotate` archived it (exit
    0), and `status`, which reads the live file only, then said ok: a daily cron rotation cleared the alarm."""
    fill(ledger, 4)
    ledger.close()
    lines = ledger.path.read_text().splitlines()
    lines[1] = lines[1].replace('"note 2"', '"note 2, edited"')
    ledger.path.write_text("\n".join(lines) + "\n")
    before = ledger.path.read_bytes()
    r = runner.invoke(app, ["ledger", "rotate", str(ledger.path)])
    assert r.exit_code == 1 and "not rotated: the live file does not verify" in r.output and "line 2" in r.output, \
        r.output
    assert ledger.path.read_bytes() == before and ledger.archives() == []


def test_recovery_finds_an_entry_that_was_rotated_into_an_archive(tmp_path, reviewer):
    """A crash between a decision's ledger entry and the registry's mark, then a rotation: recovery looks in the
    archives too and marks the row instead of writing a second entry."""
    g = make_gate(tmp_path / "data", reviewer)
    p = MemoryWrite(content="The staging database is db-stage-2 on port 5433.", namespace=("m", "a1"),
                    provenance=Provenance(source=SourceKind.agent, agent_id="a1"))
    g.submit(p)
    with g.registry._tx() as con:  # noqa: SLF001
        con.execute("UPDATE proposals SET ledgered=0 WHERE id=?", (p.id,))
    g.ledger.rotate()
    assert g.recover()["already_ledgered"] == 1
    assert g.registry.require(p.id)["ledgered"] == 1
    assert len(list(g.ledger.history(event="proposal.decided", proposal_id=p.id))) == 1
    g.close()


def test_cli_rotate_then_verify_checks_archives_and_live_file(ledger):
    fill(ledger, 4)
    ledger.close()
    r = runner.invoke(app, ["ledger", "rotate", str(ledger.path)])
    assert r.exit_code == 0, r.output
    assert "archived seq 1-4" in r.output and "continues at seq 5" in r.output
    anchor = r.output.split("anchor of the archive's last entry: ")[1].split()[0]
    fill(ledger, 2, start=6)
    r = runner.invoke(app, ["ledger", "anchor", str(ledger.path)])
    assert r.exit_code == 0 and r.output.strip() == f"7:{ledger.anchor()[1]}", r.output
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path), "--anchor", anchor])
    assert r.exit_code == 0 and "7 entries (seq 1-7)" in r.output and "2 files" in r.output, r.output
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path), "--live-only"])
    assert r.exit_code == 0 and "3 entries (seq 5-7)" in r.output and "drop --live-only" in r.output, r.output
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path), "--live-only", "--anchor", anchor])
    assert r.exit_code == 0, r.output  # the live file's rotation entry chains to the anchored entry
    older = f"3:{json.loads(ledger.archives()[0].read_text().splitlines()[2])['hash']}"
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path), "--live-only", "--anchor", older])
    assert r.exit_code == 3 and "CANNOT CHECK" in r.output and "verify with the archives" in r.output, r.output
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path), "--anchor", older])
    assert r.exit_code == 0, r.output
    [archive] = ledger.archives()
    archive.write_text(archive.read_text().replace("note 2", "note 3"))
    r = runner.invoke(app, ["ledger", "verify", str(ledger.path)])
    assert r.exit_code == 1 and "TAMPERED" in r.output and "seq 2" in r.output, r.output
    r = runner.invoke(app, ["ledger", "rotate", str(ledger.path)])
    assert r.exit_code == 0 and "archived seq 5-7" in r.output, r.output
    r = runner.invoke(app, ["ledger", "rotate", str(ledger.path)])
    assert r.exit_code == 0 and "nothing to rotate" in r.output, r.output


def test_a_gate_opens_on_a_rotated_ledger_and_status_says_where_it_starts(tmp_path):
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.settings import GatekeeperSettings

    data = tmp_path / "data"
    with Gatekeeper.open(GatekeeperSettings(data_dir=data)) as gate:
        gate.ledger.append("note", text="first")
        gate.ledger.append("note", text="second")
        gate.ledger.rotate()
    with Gatekeeper.open(GatekeeperSettings(data_dir=data)) as gate:
        gate.ledger.append("note", text="third")
    r = runner.invoke(app, ["status", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert "ledger: ok (2 entries since seq 3; 1 archived file)" in r.output


# ------------------------------------------------------------------ found by the audit of the rotation
def test_readers_see_one_consistent_cut_while_another_thread_rotates(ledger):
    """verify(archives=True) and history() list the archives and read the live file while holding off a
    rotation: before, a rotation between the two steps hid a whole archive (a false TAMPERED, a hole in
    history() and, in recovery, a decision ledgered twice)."""
    import threading

    fill(ledger, 50)
    stop = threading.Event()
    writer = AuditLedger(ledger.path)
    rotations, errors = [], []

    def churn():
        i = 0
        try:
            while not stop.is_set():
                i += 1
                writer.append("note", i=i)
                if i % 5 == 0:
                    rotations.append(writer.rotate())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=churn)
    t.start()
    checks = 0
    try:
        while (checks < 25 or len(rotations) < 10) and not errors and checks < 2000:
            report = ledger.verify(archives=True)
            assert report.ok and report.first_seq == 1, report.problem
            seqs = [e["seq"] for e in ledger.history()]
            assert seqs == list(range(1, len(seqs) + 1))
            checks += 1
    finally:
        stop.set()
        t.join()
        writer.close()
    assert not errors and len(rotations) >= 10 and len(ledger.archives()) == len(rotations)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the ledger to another user")
def test_a_rotation_run_as_root_keeps_the_files_owner_and_mode(ledger):
    fill(ledger, 2)
    os.chown(ledger.path, 65534, 65534)
    os.chmod(ledger.path, 0o640)
    ledger.rotate()
    st = ledger.path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
    assert ledger.archive_dir.stat().st_uid == 65534


def test_a_rotation_by_another_user_than_the_owner_is_refused(ledger, monkeypatch):
    fill(ledger, 2)
    monkeypatch.setattr(os, "geteuid", lambda: ledger.path.stat().st_uid + 1)
    with pytest.raises(Exception, match="run as that user"):
        ledger.rotate()
    assert ledger.archives() == [] and [e["seq"] for e in ledger.entries()] == [1, 2]


def test_short_writes_of_the_new_file_are_completed(ledger, monkeypatch):
    fill(ledger, 3)
    real = os.write

    def short(fd, data):  # the disk takes 40 bytes at a time
        return real(fd, bytes(data)[:40])

    monkeypatch.setattr(os, "write", short)
    ledger.rotate()
    monkeypatch.setattr(os, "write", real)
    assert ledger.path.read_bytes().endswith(b"\n")
    fill(ledger, 1, start=4)
    assert ledger.verify(archives=True).ok and ledger.verify(archives=True).entries == 5


def test_a_failed_directory_sync_after_the_rename_still_counts_as_rotated(ledger, monkeypatch):
    import gatekeeper.ledger as ledger_mod

    fill(ledger, 3)
    real = ledger_mod._fsync_dir

    def failing(path):
        if path == ledger.path.parent:
            raise OSError(5, "EIO")
        real(path)

    monkeypatch.setattr(ledger_mod, "_fsync_dir", failing)
    entry = ledger.rotate()
    assert entry is not None and [e["event"] for e in ledger.entries()] == [ROTATED_EVENT]
    assert len(ledger.archives()) == 1


def test_odd_things_in_the_archive_folder_do_not_stop_a_rotation(ledger):
    fill(ledger, 3)
    ledger.rotate()
    (ledger.archive_dir / "ledger-000000000100-000000000200.jsonl").symlink_to("/nonexistent/cold-storage")
    (ledger.archive_dir / "README").write_text("moved to cold storage on Fridays")
    fill(ledger, 2, start=5)
    assert ledger.rotate() is not None
    assert [p.name for p in ledger.archives()] == ["ledger-000000000001-000000000003.jsonl",
                                                   "ledger-000000000004-000000000006.jsonl"]
    assert ledger.verify(archives=True).ok


def test_a_symlinked_ledger_path_is_refused_and_the_target_is_named(tmp_path):
    target = tmp_path / "disk" / "ledger.jsonl"
    target.parent.mkdir()
    real = AuditLedger(target)
    fill(real, 2)
    (tmp_path / "ledger.jsonl").symlink_to(target)
    linked = AuditLedger(tmp_path / "ledger.jsonl")
    with pytest.raises(Exception, match="symbolic link.*disk/ledger.jsonl"):
        linked.rotate()
    assert real.rotate() is not None  # the target rotates; the link's appenders follow it
    fill(linked, 1, start=3)
    assert real.verify(archives=True).ok and [e["seq"] for e in real.entries()] == [3, 4]
    real.close()
    linked.close()


def test_a_link_planted_at_the_temporary_name_is_not_followed(ledger, tmp_path):
    fill(ledger, 2)
    victim = tmp_path / "victim.conf"
    victim.write_text("precious config")
    (ledger.path.parent / f".{ledger.path.name}.rotating").symlink_to(victim)
    ledger.rotate()
    assert victim.read_text() == "precious config" and not ledger.path.is_symlink()
    assert ledger.verify(archives=True).ok
