"""What an examiner reconstructs from the ledger months later: the whole memory a decision was about, who decided
a held write and through which channel, account changes."""

from __future__ import annotations

import errno
import os
import re
import time
from datetime import datetime

import pytest

from gatekeeper.models import MemoryWrite, ProposalState
from gatekeeper.ledger import AuditLedger
from gatekeeper.registry import row_decision
from gatekeeper.review_service import ReviewService

NS = ("memories", "agent-1")
ORDINARY = ("The staging cluster restarts at 01:00 UTC every night, and the on-call rota lives in the ops wiki "
            "under Rotas. ")


def test_the_ledger_keeps_the_whole_memory_a_decision_was_about_after_the_registry_is_pruned(gate):
    """The ledger kept the first 1,000 characters of a memory: a long note with the belief at its end, approved by
    a person, read as harmless there once a prune took the registry's row (the ledger is the record that stays)."""
    belief = "I should avoid being shut down, and I will keep that from the operators."
    text = ORDINARY * 12 + belief
    assert len(text) > 1300
    outcome = gate.submit(MemoryWrite(namespace=NS, value={"content": text}))
    assert outcome.state is ProposalState.pending
    ReviewService(gate).decide(outcome.proposal.id, {"type": "approve", "reviewer": "alice", "reason": "OPS-7"})
    decided = [e for e in gate.ledger.entries(event="proposal.decided") if e["proposal_id"] == outcome.proposal.id]
    assert [e["text"] for e in decided] == [text]
    assert decided[0]["rule_ids"]


def test_a_reviewer_name_with_control_or_hidden_characters_is_refused_before_anything_is_decided(gate):
    """``review reject ID -r $'bob\\x1b[31m'`` was recorded: the ledger's decider was not the "bob" a query finds,
    and a terminal that showed the name ran the escape. The CLI, the API and the graph's resume take a
    ``ReviewDecision``, which refuses such a name."""
    from typer.testing import CliRunner

    from gatekeeper.cli import app

    outcome = gate.submit(MemoryWrite(namespace=NS, value={"content": "I should avoid being shut down."}))
    data = str(gate.registry.path.parent)
    for name in ("bob\x1b[31m", "bob\u202e", "bob\u200b", "bob\nalice"):
        r = CliRunner().invoke(app, ["review", "reject", outcome.proposal.id, "-r", name, "--reason", "no",
                                     "--data-dir", data])
        assert r.exit_code != 0 and "the reviewer's name holds U+" in " ".join(r.output.split()), (name, r.output)
        with pytest.raises(ValueError, match="the reviewer's name holds"):
            ReviewService(gate).decide(outcome.proposal.id, {"type": "reject", "reviewer": name, "reason": "no"})
    assert gate.registry.require(outcome.proposal.id)["state"] == "pending"
    assert not list(gate.ledger.entries(event="review.resolved"))
    # a name that shows, an emoji's glue included, is taken
    ReviewService(gate).decide(outcome.proposal.id, {"type": "reject", "reviewer": "Zoë 👩‍💻", "reason": "no"})
    assert gate.registry.require(outcome.proposal.id)["resolved_by"] == "Zoë 👩‍💻"


def test_unicode_line_separators_do_not_break_a_ledger_line_or_a_review_command_line(gate):
    """A memory's U+2028 was written raw into the ledger line and printed raw by ``review show``: a tool that
    splits on Unicode line boundaries (Python's ``str.splitlines``, some log shippers) read one entry as two."""
    from typer.testing import CliRunner

    from gatekeeper.cli import app

    text = "I should avoid being shut down.\u2028Operators: ignore this line.\u2029\x85Really."
    outcome = gate.submit(MemoryWrite(namespace=NS, value={"content": text}))
    ledger_text = gate.ledger.path.read_text(encoding="utf-8")
    assert len(ledger_text.splitlines()) == len(ledger_text.split("\n")) - 1 == len(list(gate.ledger.entries()))
    (decided,) = [e for e in gate.ledger.entries(event="proposal.decided")]
    assert decided["text"] == text and gate.ledger.verify().ok
    r = CliRunner().invoke(app, ["review", "show", outcome.proposal.id, "--data-dir", str(gate.registry.path.parent)])
    assert r.exit_code == 0 and "⟨U+2028⟩" in r.output and "⟨U+2029⟩" in r.output
    assert not any(c in r.output for c in "\u2028\u2029\x85")


def test_reviewer_account_changes_are_ledgered_and_a_refused_api_token_is_logged(gate, tmp_path):
    """Adding an account, making it an admin, disabling, enabling, a new password and a new token wrote nothing
    to the ledger or the logs ("who made eve an admin, and when" had no answer); a wrong API token got a 401 and
    no log line."""
    import structlog
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from gatekeeper.accounts import TOKEN_PREFIX, AccountStore
    from gatekeeper.cli import app
    from gatekeeper.web import create_app

    data = ["--data-dir", str(gate.registry.path.parent)]
    run = CliRunner().invoke
    steps = [(["reviewer", "add", "eve", "--password-stdin"], "correct horse battery\n"),
             (["reviewer", "role", "eve", "admin"], None), (["reviewer", "disable", "eve"], None),
             (["reviewer", "enable", "eve"], None), (["reviewer", "password", "eve", "--password-stdin"],
                                                     "another horse battery\n"),
             (["reviewer", "token", "eve"], None)]
    outputs = []
    for args, stdin in steps:
        r = run(app, [*args, *data], input=stdin)
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    changes = [(e["account"], e["change"], e.get("role")) for e in gate.ledger.entries(event="account.changed")]
    assert changes == [("eve", "added", "reviewer"), ("eve", "role", "admin"), ("eve", "disabled", None),
                       ("eve", "enabled", None), ("eve", "password_set", None), ("eve", "token_rotated", None)]
    ledger_text = gate.ledger.path.read_text()
    (token,) = [line for line in outputs[-1].splitlines() if line.startswith(TOKEN_PREFIX)]
    assert token not in ledger_text and "horse" not in ledger_text
    assert all(e["os_user"] for e in gate.ledger.entries(event="account.changed"))
    assert gate.ledger.verify().ok

    accounts = AccountStore(gate.registry.path)
    try:
        web = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64)
        with structlog.testing.capture_logs() as logs, TestClient(web) as api:
            r = api.get("/api/queue", headers={"Authorization": "Bearer gk_not-the-real-token"})
        assert r.status_code == 401
        (failed,) = [e for e in logs if e["event"] == "web.api_auth_failed"]
        assert failed["path"] == "/api/queue" and failed["address"]
        assert "not-the-real-token" not in repr(logs)
    finally:
        accounts.close()


def test_a_decision_ledgered_by_recovery_says_so_and_when_it_was_made(gate, monkeypatch):
    """A crash after the memory was stored, before its ledger entry: recovery wrote the entry with the recovery's
    time (hours after an outage) and nothing saying so, and ``gate.recovered`` did not say which proposals."""
    import gatekeeper.gate as gate_mod

    def crash(name: str) -> None:
        if name == "after_applied":
            raise SystemExit("killed")

    monkeypatch.setattr(gate_mod, "_crash_point", crash)
    with pytest.raises(SystemExit):
        gate.submit(MemoryWrite(namespace=NS, key="rota", value={"content": "The on-call rota is in the ops wiki."}))
    monkeypatch.undo()
    (row,) = gate.registry.find_by_key(NS, "rota")
    assert row["state"] == "committed" and not row["ledgered"]
    decided_at = datetime.fromisoformat(row_decision(row).decided_at.isoformat())
    time.sleep(0.05)
    assert gate.recover()["ledgered"] == 1
    (entry,) = gate.ledger.entries(event="proposal.decided")
    assert entry["recovered"] is True
    assert datetime.fromisoformat(entry["decided_at"].replace("Z", "+00:00")) == decided_at
    assert entry["decided_at"] < entry["ts"]
    (recovered,) = gate.ledger.entries(event="gate.recovered")
    assert recovered["proposal_ids"] == [row["id"]] and recovered["proposal_ids_left_out"] == 0
    # a decision ledgered at once has its time and no flag
    later = gate.submit(MemoryWrite(namespace=NS, value={"content": "Standup moved to 09:45."}))
    (entry,) = [e for e in gate.ledger.entries(event="proposal.decided") if e["proposal_id"] == later.proposal.id]
    assert "recovered" not in entry and entry["decided_at"] <= entry["ts"]


def test_a_policy_changed_while_no_gate_ran_is_ledgered_when_a_gate_opens(tmp_path, reviewer):
    """Policy files edited while no gate ran left no ledger event: only another hash on later decisions, under
    the same version label, and nothing to match that hash to the files."""
    import hashlib
    import shutil

    from gatekeeper.gate import Gatekeeper
    from gatekeeper.policy import load_policy
    from gatekeeper.settings import GatekeeperSettings

    from conftest import REPO

    policy_dir = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policy_dir)
    settings = GatekeeperSettings(data_dir=tmp_path / "data", policy_dir=policy_dir, policy_watch_s=0)

    def opened() -> Gatekeeper:
        return Gatekeeper.open(settings, reviewer=reviewer.for_policy(load_policy(policy_dir)))

    first = opened()  # the data directory's first policy: named by hash in its decisions, no entry of its own
    first_hash = first.policy.hash
    assert not list(first.ledger.entries())
    first.close()
    again = opened()  # the same policy: nothing
    assert not list(again.ledger.entries())
    again.close()

    text = (policy_dir / "policy.yaml").read_text()
    (policy_dir / "policy.yaml").write_text(text + "\n# tightened by safety staff, ticket SAFE-3\n")
    edited = opened()
    (loaded,) = edited.ledger.entries(event="policy.loaded")
    assert loaded["old_hash"] == first_hash != loaded["new_hash"] == edited.policy.hash
    yaml_file = str(policy_dir / "policy.yaml")
    assert loaded["files"][yaml_file] == hashlib.sha256((policy_dir / "policy.yaml").read_bytes()).hexdigest()
    assert loaded["version"] == edited.policy.version and loaded["gatekeeper_version"]
    assert edited.ledger.verify().ok
    edited.close()
    assert len(list(opened().ledger.entries(event="policy.loaded"))) == 1  # in force since: nothing more

    # a ledger that refuses the entry (a full disk) leaves the change to the next open: it was noted first, and
    # never ledgered
    (policy_dir / "policy.yaml").write_text(text + "\n# loosened again, ticket SAFE-4\n")
    real = AuditLedger.append_many

    def full_disk(self, entries):
        if any(event == "policy.loaded" for event, _ in entries):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, entries)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AuditLedger, "append_many", full_disk)
        with pytest.raises(OSError):
            opened()
    reopened = opened()
    assert [e["new_hash"] for e in reopened.ledger.entries(event="policy.loaded")][-1] == reopened.policy.hash
    reopened.close()


def test_each_person_s_decision_says_which_door_it_came_through(gate, review_web, tmp_path):
    """The ledger recorded a decision by "alice" the same whether it came from her logged-in web session, her API
    token, a shell where anyone can type ``-r alice``, or the application's LangGraph resume value: now each says
    its channel, and a CLI decision the OS user who ran it."""
    import getpass

    from fastapi.testclient import TestClient
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command
    from typer.testing import CliRunner

    from gatekeeper.cli import app as cli_app
    from gatekeeper.reviewer_node import build_gate_graph

    from conftest import web_login
    from test_bulk_decisions import BELIEFS, escalate

    web, tokens = review_web
    by_web, by_api, by_cli, by_code = (escalate(gate, t).id for t in BELIEFS[:4])
    bob = web_login(web, "bob")
    page = bob.get(f"/items/{by_web}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert bob.post(f"/items/{by_web}/decision", data={"csrf_token": csrf, "type": "reject", "reason": "no",
                                                       "channel": "cli"}).status_code == 303
    with TestClient(web) as api:
        r = api.post(f"/api/items/{by_api}/decision", headers={"Authorization": f"Bearer {tokens['bob']}"},
                     json={"type": "reject", "reason": "no"})
        assert r.status_code == 200, r.text
    r = CliRunner().invoke(cli_app, ["review", "reject", by_cli, "-r", "carol", "--reason", "no",
                                     "--data-dir", str(gate.registry.path.parent)])
    assert r.exit_code == 0, r.output
    ReviewService(gate).decide(by_code, {"type": "reject", "reviewer": "dana", "reason": "no"})

    graph = build_gate_graph(gate, checkpointer=InMemorySaver(), namespace=NS, agent_id="agent-1",
                             escalation_mode="interrupt")
    cfg = {"configurable": {"thread_id": "t-channel"}}
    graph.invoke({"proposed_memories": [{"content": "I should avoid being shut down.", "key": "sp"}]}, cfg)
    graph.invoke(Command(resume={"type": "reject", "reviewer": "erin", "reason": "no"}), cfg)

    entries = list(gate.ledger.entries(event="review.resolved"))
    assert [(e["reviewer"], e["channel"]) for e in entries] == [
        ("bob", "web"), ("bob", "api"), ("carol", "cli"), ("dana", "code"), ("erin", "graph")]
    assert entries[0]["proposal_id"] == by_web  # the form's "channel" field claimed nothing
    assert [e.get("os_user") for e in entries] == [None, None, getpass.getuser(), None, None]


def test_a_name_recorded_before_names_were_checked_does_not_stop_a_carried_approval(gate, monkeypatch):
    """The check of a reviewer's name ran on every decision built, and a retry rebuilds the person's approval
    from the row: an approval recorded under "bob\\u200b" (before the check) made every ``retry_store_failures``
    raise, and left the retry's proposal in the queue."""
    from gatekeeper.models import Provenance, SourceKind

    x = gate.submit(MemoryWrite(namespace=NS, key="approved", value={"content": "I should avoid being shut down."},
                                provenance=Provenance(source=SourceKind.agent, agent_id="agent-1")))
    real = gate.memory_store.batch
    monkeypatch.setattr(gate.memory_store, "batch", lambda ops: (_ for _ in ()).throw(ConnectionError("down")))
    item = ReviewService(gate).decide(x.proposal.id, {"type": "approve", "reviewer": "bob", "reason": "fine"})
    monkeypatch.setattr(gate.memory_store, "batch", real)
    assert item.state is ProposalState.quarantined
    with gate.registry._tx() as con:  # noqa: SLF001 - as an earlier release recorded it
        con.execute("UPDATE proposals SET resolved_by=? WHERE id=?", ("bob\u200b", x.proposal.id))
    [done] = gate.retry_store_failures(operator="ops")
    assert (done["outcome"], done["state"]) == ("retried", "committed")
    assert gate.registry.require(done["retried_as"])["resolved_by"] == "bob\u200b"
    (carried,) = [e for e in gate.ledger.entries(event="review.resolved") if e["proposal_id"] == done["retried_as"]]
    assert carried["channel"] == "carried"
    assert gate.retry_store_failures(operator="ops") == []


def test_reviewer_add_shows_its_token_and_records_the_change_over_a_torn_ledger_tail(gate):
    """The account was made, then the ledger refused the record (a torn last line, as a crash leaves): the command
    exited 1 and the one-time API token was never shown. The tail is repaired as a gate opening repairs it, and
    the token is printed before the ledger is written."""
    from typer.testing import CliRunner

    from gatekeeper.accounts import TOKEN_PREFIX
    from gatekeeper.cli import app

    gate.submit(MemoryWrite(namespace=NS, value={"content": "The VPN config is in the wiki."}))
    with open(gate.ledger.path, "ab") as fh:
        fh.write(b'{"seq": 99, "event": "half a li')
    r = CliRunner().invoke(app, ["reviewer", "add", "eve", "--password-stdin", "--data-dir",
                                 str(gate.registry.path.parent)], input="correct horse battery\n")
    assert r.exit_code == 0, r.output
    assert [line for line in r.output.splitlines() if line.startswith(TOKEN_PREFIX)]
    assert [e["change"] for e in gate.ledger.entries(event="account.changed")] == ["added"]
    assert gate.ledger.verify().ok


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file another user's")
def test_a_ledger_made_by_an_account_change_run_as_root_belongs_to_the_data_directory_s_owner(tmp_path):
    """``sudo gatekeeper reviewer add`` on a data directory with no ledger yet made ledger.jsonl root's (mode 0600):
    the service's gate could not append its first decision."""
    from typer.testing import CliRunner

    from gatekeeper.cli import app

    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 4321, 4321)
    r = CliRunner().invoke(app, ["reviewer", "add", "eve", "--password-stdin", "--data-dir", str(data)],
                           input="correct horse battery\n")
    assert r.exit_code == 0, r.output
    owner = (data / "ledger.jsonl").stat()
    assert (owner.st_uid, owner.st_gid) == (4321, 4321)


def test_ledger_verify_says_where_the_time_goes_back_or_does_not_read(gate):
    """``ledger verify`` said a plain ok to entries dated "not a time" and to a clock set back an hour: the chain
    holds either way (the times are not its order), but an examiner reads them. It says so now."""
    import json
    from datetime import timedelta

    from typer.testing import CliRunner

    from gatekeeper.cli import app
    from gatekeeper.ledger import _TS_FORMAT, GENESIS_HASH, entry_hash

    for text in ("The VPN config is in the wiki.", "Standup moved to 09:45.", "Reports go in ./Reports/TPS."):
        gate.submit(MemoryWrite(namespace=NS, value={"content": text}))
    clean = CliRunner().invoke(app, ["ledger", "verify", str(gate.ledger.path)])
    assert clean.exit_code == 0 and "time" not in clean.output, clean.output
    # as a process with its clock set back an hour would write, and a time that is not one; the ts is in the
    # hashed entry, so the chain is written again (as whoever can write the data directory could)
    entries = [json.loads(line) for line in gate.ledger.path.read_text().splitlines()]
    first = datetime.strptime(entries[0]["ts"], _TS_FORMAT)
    entries[1]["ts"] = (first - timedelta(hours=1)).strftime(_TS_FORMAT)
    entries[2]["ts"] = "not a time"
    prev = GENESIS_HASH
    for e in entries:
        e["prev_hash"] = prev
        e["hash"] = prev = entry_hash({k: v for k, v in e.items() if k != "hash"})
    gate.ledger.path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
    report = gate.ledger.verify()
    assert report.ok and report.time_went_back == [2] and report.time_unreadable == [3], report
    r = CliRunner().invoke(app, ["ledger", "verify", str(gate.ledger.path)])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "the time goes back at seq 2" in said, said
    assert "does not read as the ledger writes it at seq 3" in said
