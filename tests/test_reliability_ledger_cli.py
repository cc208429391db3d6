"""Ledger tampering is caught by ``gatekeeper ledger verify``, which names the first bad entry."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.ledger import AuditLedger

runner = CliRunner()
N = 8


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    led = AuditLedger(path)
    for i in range(1, N + 1):
        led.append("proposal.decided", proposal_id=f"p{i}", state="committed" if i % 2 else "quarantined",
                   action="commit" if i % 2 else "quarantine", text=f"note number {i}", score=i / 10)
    led.close()
    return path


def verify(path, *extra):
    r = runner.invoke(app, ["ledger", "verify", str(path), *extra])
    return r.exit_code, r.output


def first_bad(output: str) -> tuple[int, int | None]:
    m = re.search(r"first bad entry: line (\d+), seq (\w+)", output)
    assert m, output
    return int(m.group(1)), None if m.group(2) == "None" else int(m.group(2))


def lines(path) -> list[str]:
    return path.read_text().splitlines()


def write(path, ls: list[str]) -> None:
    path.write_text("\n".join(ls) + "\n")


def test_intact_ledger_verifies(ledger):
    code, out = verify(ledger)
    assert code == 0 and f"ok {N} entries" in out


@pytest.mark.parametrize("k", [1, 4, N])
def test_edited_entry(ledger, k):
    ls = lines(ledger)
    ls[k - 1] = ls[k - 1].replace(f'"text":"note number {k}"', f'"text":"note number {k}!"')
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1 and "TAMPERED" in out and "hash mismatch" in out
    assert first_bad(out) == (k, k)


def test_edited_entry_with_its_hash_recomputed(ledger):
    """A forger who also fixes the entry's own hash breaks the link to the next entry."""
    from gatekeeper.ledger import entry_hash

    ls = lines(ledger)
    e = json.loads(ls[2])
    e["state"] = "committed" if e["state"] == "quarantined" else "quarantined"
    e["hash"] = entry_hash(e)
    ls[2] = json.dumps(e, separators=(",", ":"))
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1 and "prev_hash mismatch" in out
    assert first_bad(out) == (4, 4)


@pytest.mark.parametrize("k", [1, 3, N - 1])
def test_deleted_entry(ledger, k):
    ls = lines(ledger)
    del ls[k - 1]
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1 and "deleted" in out
    assert first_bad(out) == (k, k + 1)


def test_deleted_last_entry_needs_the_anchor(ledger):
    seq, head = AuditLedger(ledger).anchor()
    write(ledger, lines(ledger)[:-1])
    assert verify(ledger)[0] == 0  # a hash chain alone cannot see a cut tail...
    code, out = verify(ledger, "--anchor", f"{seq}:{head}")
    assert code == 1 and "truncated" in out  # ...the anchor kept elsewhere can
    assert first_bad(out) == (N, N)


@pytest.mark.parametrize("k", [1, 4, N - 1])
def test_reordered_entries(ledger, k):
    ls = lines(ledger)
    ls[k - 1], ls[k] = ls[k], ls[k - 1]
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1 and ("reordered" in out or "out of order" in out)
    assert first_bad(out) == (k, k + 1)


def test_duplicated_entry(ledger):
    ls = lines(ledger)
    ls.insert(3, ls[2])
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1 and "out of order" in out
    assert first_bad(out) == (4, 3)


def test_inserted_forged_entry(ledger):
    from gatekeeper.ledger import entry_hash

    ls = lines(ledger)
    prev = json.loads(ls[1])
    forged = {"seq": 3, "ts": prev["ts"], "event": "proposal.decided", "proposal_id": "evil",
              "state": "committed", "hv": 2, "prev_hash": prev["hash"]}
    forged["hash"] = entry_hash(forged)
    ls.insert(2, json.dumps(forged))
    write(ledger, ls)
    code, out = verify(ledger)
    assert code == 1
    assert first_bad(out) == (4, 3)  # the genuine seq 3 no longer follows


def test_blank_line_and_garbage(ledger):
    ls = lines(ledger)
    write(ledger, ls[:2] + [""] + ls[2:])
    code, out = verify(ledger)
    assert code == 1 and "blank line" in out and first_bad(out)[0] == 3
    write(ledger, ls[:5] + ["not json at all"] + ls[5:])
    code, out = verify(ledger)
    assert code == 1 and "invalid JSON" in out and first_bad(out)[0] == 6


def test_torn_tail_is_reported_as_torn(ledger):
    with open(ledger, "ab") as fh:
        fh.write(b'{"seq":9,"ts":"2026-11')
    code, out = verify(ledger)
    assert code == 1 and "torn tail" in out
    assert first_bad(out) == (N + 1, 9)


def test_cli_refuses_to_open_a_gate_on_an_edited_ledger(tmp_path):
    """An edited (not torn) ledger stops the gate with a clear message, not a traceback."""
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.settings import GatekeeperSettings

    data = tmp_path / "data"
    with Gatekeeper.open(GatekeeperSettings(data_dir=data)) as gate:
        gate.ledger.append("note", text="first")
        gate.ledger.append("note", text="second")
    path = data / "ledger.jsonl"
    ls = lines(path)
    ls[-1] = ls[-1].replace('"second"', '"edited"')
    write(path, ls)
    r = runner.invoke(app, ["status", "--data-dir", str(data)])
    assert r.exit_code == 3, r.output
    assert "ledger does not verify" in r.output and "gatekeeper ledger verify" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
