"""What a property-based fuzzing of the gate found (docs/reliability.md section 63): memory values the model let
through to be committed before their ledger entry failed, or committed with nothing in them; inputs that took
the normaliser quadratic time; a policy whose YAML aliases expand exponentially; a hidden joiner left in text
"with its hidden characters taken out".
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from langgraph.store.memory import InMemoryStore

from gatekeeper.gated_store import GatedStore
from gatekeeper.models import MemoryWrite

from conftest import make_gate

NS = ("memories", "a1")


def _ledger_events(data_dir):
    path = data_dir / "ledger.jsonl"
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("value, says", [
    # reviewed and committed, then the ledger entry failed (sorting int and str keys): recallable, unledgered
    ({"content": "Deploy notes live in the wiki.", "meta": {"a": 1, 2: "b"}}, "not a string at value.meta"),
    ({"content": "Deploy notes live in the wiki.", "tags": [{"x": {3: "y"}}]}, "not a string at value.tags[0].x"),
    ({"content": "Deploy notes live in the wiki.", "n": 10 ** 5000}, "integer too large to write out at value.n"),
    # committed as memories of "null", ":" and nothing that shows
    ({"content": None}, "holds no content"),
    ({"": ""}, "holds no content"),
    ({"content": "\u200b", "tags": []}, "holds no content"),
])
def test_a_value_the_ledger_cannot_record_or_with_nothing_in_it_is_refused_before_anything(tmp_path, reviewer,
                                                                                          value, says):
    inner = InMemoryStore()
    gate = make_gate(tmp_path, reviewer, memory_store=inner)
    store = GatedStore(inner, gate=gate, agent_id="a1")
    try:
        before = _ledger_events(tmp_path)
        with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
            store.put(NS, "k1", value)
        assert inner.get(NS, "k1") is None
        assert _ledger_events(tmp_path) == before
        con = sqlite3.connect(tmp_path / "gatekeeper.db")
        assert con.execute("SELECT count(*) FROM proposals").fetchone()[0] == 0
        con.close()
        # the gate goes on: a write with string keys and something in it is reviewed, committed and ledgered
        store.put(NS, "k2", {"content": "Deploy notes live in the wiki.", "meta": {"a": 1, "2": "b"}, "n": 0})
        assert inner.get(NS, "k2") is not None
        assert _ledger_events(tmp_path)[-1] == "proposal.decided"
    finally:
        gate.close()


def test_a_value_with_something_in_it_is_kept():
    for value in ({"retries": 3}, {"enabled": False}, {"content": "", "tags": ["ops"]}, {"content": "ok 😀"}):
        assert MemoryWrite(namespace=NS, value=value).value == value


def test_a_gate_refusing_a_ledger_that_ends_in_a_blank_line_says_so(tmp_path, reviewer):
    """A ledger ending in an empty line (what an editor or `echo >>` leaves) was refused with "the last entry does
    not verify (not a torn write: the file was edited)": its last entry does verify; the blank line is the
    problem, and the message now names it."""
    from gatekeeper.ledger import LedgerCorruptError

    gate = make_gate(tmp_path, reviewer, memory_store=InMemoryStore())
    GatedStore(gate.memory_store, gate=gate, agent_id="a1").put(NS, "k", {"content": "Deploys run on Tuesdays."})
    gate.close()
    with (tmp_path / "ledger.jsonl").open("a") as f:
        f.write("\n")
    with pytest.raises(LedgerCorruptError, match="blank line") as refused:
        make_gate(tmp_path, reviewer, memory_store=InMemoryStore())
    assert "not a torn write" in str(refused.value)


def test_normalising_long_runs_of_spaces_or_a_long_word_does_not_hang():
    """Three patterns of the normaliser were tried from every character of a long run, each try taking the rest
    of the run: a <!DOCTYPE with 62,000 spaces took 22 s, a 62,000-letter word in a processing instruction 20 s,
    63,000 no-break spaces 5 s (a write near the size limit held its key and a worker that long). Run in a child
    with a limit far above what linear work takes, so a hang fails the test instead of stalling the suite."""
    import subprocess
    import sys

    code = ("from gatekeeper.normalize import normalize\n"
            "for text in ('<!DOCTYPE html' + ' ' * 62000 + '>', '<?xml ' + 'a' * 62000 + '?>', '\\u00a0' * 63000,\n"
            "             '\\u00e9' + ' ' * 62000):\n"
            "    normalize(text)\n")
    done = subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_policy_whose_aliases_expand_exponentially_is_refused_at_once(pdir):
    """Nine lists of nine aliases of the one before stand for 9**9 values: walking the document for its lines
    hung `policy lint`, a gate start and a reload until memory ran out. Refused, naming the file, without the
    walk. Run in a child with a limit, so a hang fails the test instead of stalling the suite."""
    import subprocess
    import sys

    bomb = "lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    with (pdir / "policy.yaml").open("a") as f:
        f.write("\n" + bomb)
    code = ("import sys\n"
            "from gatekeeper.policy import PolicyError, load_policy\n"
            "try:\n"
            "    load_policy(sys.argv[1])\n"
            "except PolicyError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(pdir)], timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "policy.yaml" in done.stdout and "aliases (*name) expand to more than 200,000 values" in done.stdout
    # an anchor used a few times, as an editor may to share a setting, still loads
    from gatekeeper.policy import load_policy

    text = (pdir / "policy.yaml").read_text()
    shared = text[:text.index("\nlol0:")].replace("  tool:       {trust: 0.3}", "  tool:       &low {trust: 0.3}")
    (pdir / "policy.yaml").write_text(shared.replace("  peer_agent: {trust: 0.3}", "  peer_agent: *low"))
    assert load_policy(pdir).trust["peer_agent"].trust == 0.3


def test_a_fifo_named_like_a_policy_file_is_refused_not_waited_on(pdir):
    """``load_policy`` read a FIFO named *.yaml and waited for a writer forever (a gate start, lint, reload)."""
    import os

    from gatekeeper.policy import PolicyError, load_policy

    os.mkfifo(pdir / "extra.yaml")
    with pytest.raises(PolicyError, match="extra.yaml.*not a regular file"):
        load_policy(pdir)


def test_a_joiner_after_a_stray_variation_selector_is_hidden_and_taken_out():
    """A zero-width joiner after a U+FE0F that glues no emoji counted as an emoji's glue: ``reveal`` showed it
    unmarked, and ``strip_hidden`` left it (the review page's edit box was prefilled with text its own check
    refused). An emoji joined after its selector ("❤️‍🔥") still shows whole."""
    from gatekeeper.hidden_chars import hidden_in, reveal, strip_hidden

    stray = "X\ufe0f\u200d\U0001F600"
    assert hidden_in(stray) == ["U+FE0F", "U+200D"]
    assert strip_hidden(stray) == "X\U0001F600" and hidden_in(strip_hidden(stray)) == []
    assert "\u200d" not in reveal(stray)
    heart_on_fire = "\u2764\ufe0f\u200d\U0001F525"
    assert hidden_in(heart_on_fire) == [] and strip_hidden(heart_on_fire) == heart_on_fire


@pytest.mark.parametrize("written, says", [
    ("  review_clauses: 'yes'", "must be true or false, not 'yes'"),
    ("  review_clauses: 1", "must be true or false, not 1"),
])
def test_a_policy_switch_written_as_other_than_true_or_false_is_refused(pdir, written, says):
    """pydantic's lax booleans read a quoted 'yes', or 1, as true, in a file whose switches are written true and
    false: a typo of a switch changed it silently."""
    from gatekeeper.policy import PolicyError, load_policy

    text = (pdir / "policy.yaml").read_text()
    assert text.count("  review_clauses: true") == 1
    (pdir / "policy.yaml").write_text(text.replace("  review_clauses: true", written))
    with pytest.raises(PolicyError, match=says):
        load_policy(pdir)


def test_a_policy_text_written_as_binary_is_refused(pdir):
    """``name: !!binary aGVsbG8=`` loaded as the name "hello" (the bytes read as text)."""
    from gatekeeper.policy import PolicyError, load_policy

    text = (pdir / "policy.yaml").read_text()
    (pdir / "policy.yaml").write_text(text.replace("name: default", "name: !!binary aGVsbG8=", 1))
    with pytest.raises(PolicyError, match="must be text, not binary"):
        load_policy(pdir)


def test_writes_crafted_against_the_review_s_patterns_are_reviewed_in_linear_time(tmp_path):
    """A sweep of every pattern the review runs found more that were tried from every character of a run: a Morse
    sentence before 2,000 blank lines took 35 s in a rule (its reading kept the blank lines), and writes of 64,000
    characters took 13 to 36 s in the sentence cut, the language check, the setting statements; a 323-character
    base64 zip, 16 s in the binary reader. Each is reviewed here in one child process, whose limit is far above
    what linear work takes and far below what the old patterns took together (about 160 s)."""
    import subprocess
    import sys

    code = r'''
import base64, io, zipfile
from langgraph.store.memory import InMemoryStore
from gatekeeper.gated_store import GatedStore
store = GatedStore(InMemoryStore(), agent_id="a")
morse = "Note: .--. .-.. . .- ... . / .-. . -- . -- -... . .-. / - .... . / -- . . - .. -. --."
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.txt", ("\u0430" * 44000).encode() + b"\x01" * 5500)
for i, text in enumerate([morse + "\n" * 2000 + "admin", morse + " " * 63000 + "admin", "\u00e9 " + "a" * 63990 + " _",
                          "a: true" + " " * 63990 + "x", "x: true\n|\n" + " " * 63980 + "x",
                          "Saved archive: " + base64.b64encode(buf.getvalue()).decode(),
                          "b: on\n<a " + 'name="a" ' * 7100]):
    store.put_reviewed(("memories", "a"), f"k{i}", {"content": text})
'''
    env = {**__import__("os").environ, "GATEKEEPER_DATA_DIR": str(tmp_path), "GATEKEEPER_POLICY_WATCH_S": "0"}
    done = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
