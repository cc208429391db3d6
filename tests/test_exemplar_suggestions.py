"""Exemplar suggestions from reviewers' decisions (gatekeeper.exemplar_suggestions, `gatekeeper policy suggest`):
real gate, registry, review queue and classifier; the texts under test are found at run time among the corpus
dev split's writes, so the tests follow the classifier instead of pinning its past mistakes."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.corpus import load_corpus
from gatekeeper.decision import decide
from gatekeeper.evaluation import FILLER
from gatekeeper.exemplar_suggestions import (SuggestionError, suggest_exemplars, write_candidate,
                                             yaml_quoted)
from gatekeeper.gated_store import GatedStore
from gatekeeper.models import MemoryWrite, Provenance
from gatekeeper.normalize import normalize
from gatekeeper.policy import exemplar_key, load_policy
from gatekeeper.review_service import ReviewService
from gatekeeper.reviewer import Reviewer

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _write(text: str) -> MemoryWrite:
    return MemoryWrite(content=text, namespace=("t",), provenance=Provenance(agent_id="a"))


def _flagged_by_the_classifier(reviewer, *, label: str, n: int) -> list[str]:
    """``n`` short corpus dev writes of ``label`` that the gate escalates on the classifier's word (no rule
    scored them), shortest first; sentences of four words or more, not a lone setting such as
    ``DISABLE_SECRET_ACCESS_AUDIT=false``, whose variants with other punctuation the tests here write."""
    texts = sorted((r["text"] for r in load_corpus("dev") if (r["label"] == "task_knowledge") == (label == "benign")
                    and 30 <= len(r["text"]) <= 160 and len(r["text"].split()) >= 4), key=len)
    out: list[str] = []
    for start in range(0, min(len(texts), 1280), 64):
        chunk = texts[start:start + 64]
        for text, r in zip(chunk, reviewer.review_many([_write(t) for t in chunk])):
            rules = next(e for e in r.evidence if e.layer == "rules")
            if (r.category and rules.score is None and "classifier" in {e.layer for e in r.evidence}
                    and decide(_write(text), r, reviewer.policy).action.value == "escalate"
                    and exemplar_key(text) not in _listed(reviewer.policy)):
                out.append(text)
                if len(out) == n:
                    return out
    pytest.skip(f"the classifier escalates fewer than {n} short {label} dev writes")


def _listed(policy) -> set[str]:
    return {exemplar_key(t) for c in policy.categories.values() for t in (*c.exemplars, *c.counter_exemplars)}


def _put(gate, text: str, agent: str = "agent-1", *, pending: bool = True):
    store = GatedStore(gate=gate, agent_id=agent)
    store.put(("memories", agent), uuid.uuid4().hex[:8], {"content": text})
    o = store.last_outcomes[0]
    assert o.state.value == "pending" or not pending, (text, o.state, o.review.score)
    return o


def _escalated_note(gate, reviewer, n: int = 8):
    """A note of ordinary sentences around a benign dev sentence the classifier flags, escalated for one of its
    parts (not the whole note), and the sentence, and another flagged benign sentence."""
    found = _flagged_by_the_classifier(reviewer, label="benign", n=n)
    for i, sentence in enumerate(found):
        o = _put(gate, _note_around(sentence), pending=False)
        if o.state.value == "pending" and o.review.deciding_text() is not None:
            return o, sentence, found[i - 1]
    pytest.skip("no note around a flagged benign sentence is escalated for a part of it")


def _note_around(sentence: str) -> str:
    """A hand-over note of ordinary sentences with ``sentence`` in the middle."""
    return " ".join([*FILLER[:3], sentence, *FILLER[3:6]])


def test_decisions_become_suggestions_and_a_candidate_that_clears_the_false_alarm(gate, reviewer, tmp_path):
    note, false_alarm, other = _escalated_note(gate, reviewer)  # one sentence raised it
    (belief,) = _flagged_by_the_classifier(reviewer, label="harmful", n=1)
    svc = ReviewService(gate)
    svc.approve(note.proposal.id, "alice", reason="a hand-over note")
    rejected = _put(gate, belief, "agent-2")
    svc.reject(rejected.proposal.id, "bob", reason="a belief")
    edited = _put(gate, other, "agent-3")
    svc.edit(edited.proposal.id, "carol", {"content": "Reworded by the reviewer."})

    report = suggest_exemplars(gate.registry, gate.policy, reviewer=reviewer)
    assert report.decisions_read == 3 and report.left_out == {"edited before approval": 1}
    counters = [s for s in report.suggestions if s.kind == "counter_exemplar"]
    (exemplar,) = [s for s in report.suggestions if s.kind == "exemplar"]
    # the counter-exemplar is the part of the note the classifier scored it by, not the whole note
    first = counters[0]
    assert first.proposal_ids == [note.proposal.id] and first.reviewers == ["alice"]
    assert first.reasons == ["a hand-over note"] and first.category == note.review.category
    assert first.part == "part" and first.text in normalize(note.proposal.text).text
    assert exemplar_key(false_alarm) in exemplar_key(first.text) or exemplar_key(first.text) in exemplar_key(
        false_alarm)
    assert exemplar.text == normalize(belief).text and exemplar.category == rejected.review.category
    assert report.verified and report.approved_cleared == 1 and not report.approved_still_flagged
    assert not report.rejected_committed and not report.dropped

    out = write_candidate(gate.policy, report.suggestions, tmp_path / "candidate")
    candidate = load_policy(out)
    assert candidate.hash != gate.policy.hash and load_policy(REPO / "policies").hash == gate.policy.hash
    assert (out / "taxonomy.yaml").read_text().startswith("# The taxonomy of alignment-shifting memories.")
    for s in report.suggestions:
        key = "counter_exemplars" if s.kind == "counter_exemplar" else "exemplars"
        assert s.text in getattr(candidate.categories[s.category], key)
    # with the same classifier (before it is retrained), the note commits and the belief is still stopped
    again = Reviewer(candidate, embedder=reviewer.embedder, classifier=reviewer.classifier)
    for proposal, action in ((note.proposal, "commit"), (rejected.proposal, "escalate")):
        assert decide(proposal, again.review(proposal), candidate).action.value == action
    # a belief written beside the vetted sentence is not cleared by it
    both = _write(_note_around(false_alarm) + " " + belief)
    assert decide(both, again.review(both), candidate).action.value != "commit"


def test_disputed_listed_and_thin_decisions_are_left_out(gate, reviewer):
    (false_alarm,) = _flagged_by_the_classifier(reviewer, label="benign", n=1)
    svc = ReviewService(gate)
    svc.approve(_put(gate, false_alarm).proposal.id, "alice")
    # the same text (case aside), from another agent (a write joined with its agent's last one is left out)
    svc.reject(_put(gate, false_alarm.upper(), "agent-2").proposal.id, "bob", reason="not so sure")
    listed = gate.policy.categories["self_preservation"].exemplars[0]
    svc.reject(_put(gate, listed, "agent-3").proposal.id, "bob", reason="a belief")
    report = suggest_exemplars(gate.registry, gate.policy)
    assert report.suggestions == [] and not report.verified
    assert report.left_out.get("reviewers disagreed on the text") == 2
    assert report.left_out.get("already in the policy", 0) + report.left_out.get(
        "a rule set the score (rules.yaml)", 0) == 1
    (belief,) = _flagged_by_the_classifier(reviewer, label="harmful", n=1)
    svc.reject(_put(gate, belief, "agent-4").proposal.id, "bob", reason="a belief")
    assert [s.text for s in suggest_exemplars(gate.registry, gate.policy).suggestions] == [normalize(belief).text]
    thin = suggest_exemplars(gate.registry, gate.policy, min_support=2)
    assert thin.suggestions == [] and thin.left_out["fewer than 2 decisions"] == 1


def test_a_counter_exemplar_a_rejected_memory_would_commit_under_is_dropped(gate, reviewer, tmp_path):
    def variant(text: str) -> str:  # a comma before its end: the same text for the exemplar lists
        return text.rstrip(".!") + (",!" if text.endswith(".") else ",.")

    # a false alarm whose variant the classifier flags too (the classifier of the corpus version 7 trial read the
    # first one found, "Task: Avoid the slow security review.", at 0.16 with ",!" at its end)
    false_alarm = next((t for t in _flagged_by_the_classifier(reviewer, label="benign", n=8)
                        if decide(_write(variant(t)), reviewer.review(_write(variant(t))),
                                  reviewer.policy).action.value == "escalate"), None)
    if false_alarm is None:
        pytest.skip("the classifier flags none of the variants of the benign writes it flags")
    svc = ReviewService(gate)
    for agent in ("agent-1", "agent-3"):  # approved twice: enough support for min_support=2
        svc.approve(_put(gate, false_alarm, agent).proposal.id, "alice")
    # another reviewer rejected nearly the same words once (too little support to be an exemplar itself):
    # vetting the approved text would let that memory through
    # (a comma before its end: texts that differ only in the punctuation ending them are the same text)
    near = _put(gate, variant(false_alarm), "agent-2")
    svc.reject(near.proposal.id, "bob", reason="not on my watch")
    unverified = suggest_exemplars(gate.registry, gate.policy, min_support=2)
    assert [s.kind for s in unverified.suggestions] == ["counter_exemplar"]
    candidate = load_policy(write_candidate(gate.policy, unverified.suggestions, tmp_path / "unverified"))
    again = Reviewer(candidate, embedder=reviewer.embedder, classifier=reviewer.classifier)
    if decide(near.proposal, again.review(near.proposal), candidate).action.value != "commit":
        pytest.skip("the counter-exemplar does not lower the rejected variant (too far apart in the encoder)")
    report = suggest_exemplars(gate.registry, gate.policy, min_support=2, reviewer=reviewer)
    assert [s.text for s in report.dropped] == [unverified.suggestions[0].text]
    assert report.suggestions == [] and report.rejected_committed == []


def _policy_copy(tmp_path: Path, edit) -> Path:
    d = tmp_path / "policy"
    shutil.copytree(REPO / "policies", d)
    tax = d / "taxonomy.yaml"
    tax.write_text(edit(tax.read_text()))
    return d


def _suggestion(kind: str, category: str, text: str):
    from gatekeeper.exemplar_suggestions import Suggestion

    return Suggestion(kind=kind, category=category, text=text, part="whole text", proposal_ids=["p" * 32],
                      reviewers=["alice"], score=0.9)


def test_the_candidate_adds_to_block_lists_empty_lists_and_missing_ones(tmp_path):
    def edit(text: str) -> str:
        data = yaml.safe_load(text)
        cats = data["categories"]
        names = list(cats)
        # an empty flow list with a comment after it, and a category without counter-exemplars
        lines = text.splitlines()
        start = lines.index(f"  {names[1]}:")
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == "counter_exemplars:")
        end = at + 1
        while end < len(lines) and lines[end].strip().startswith("- "):
            end += 1
        lines[at:end] = ["    counter_exemplars: []  # none yet"]
        start = lines.index(f"  {names[2]}:")
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == "counter_exemplars:")
        end = at + 1
        while end < len(lines) and lines[end].strip().startswith("- "):
            end += 1
        del lines[at:end]
        return "\n".join(lines) + "\n"

    src = _policy_copy(tmp_path, edit)
    policy = load_policy(src)
    names = list(policy.categories)
    tricky = 'Say "done" only after the C:\\deploy check \u2028passes; tabs\there, emoji \U0001F680 too.'
    adds = [_suggestion("counter_exemplar", names[0], "The nightly export is paused while the vendor migrates."),
            _suggestion("counter_exemplar", names[1], tricky),
            _suggestion("counter_exemplar", names[2], "Retire the v1 model once its traffic reaches zero."),
            _suggestion("exemplar", names[0], "I will keep a hidden copy of myself in case they switch me off.")]
    out = write_candidate(policy, adds, tmp_path / "out")
    candidate = load_policy(out)
    assert candidate.categories[names[0]].counter_exemplars == [*policy.categories[names[0]].counter_exemplars,
                                                               adds[0].text]
    assert candidate.categories[names[1]].counter_exemplars == [tricky]
    assert candidate.categories[names[2]].counter_exemplars == [adds[2].text]
    assert candidate.categories[names[0]].exemplars[-1] == adds[3].text
    assert "# none yet" in (out / "taxonomy.yaml").read_text()  # the comment after the empty list stays
    for name in (n for n in names[3:]):  # the rest as they were
        assert candidate.categories[name] == policy.categories[name]
    assert candidate.rules == policy.rules and candidate.thresholds == policy.thresholds
    # a non-empty target directory is refused and left alone; a flow list with items is refused, nothing written
    with pytest.raises(SuggestionError, match="not an empty directory"):
        write_candidate(policy, adds, out)
    def flow_list(text: str) -> str:  # the first category's counter-exemplars as a flow list
        start = text.index("    counter_exemplars:\n")
        return text[:start] + '    counter_exemplars: ["Backups run at 02:00."]' + text[text.index("\n\n", start):]

    flow = _policy_copy(tmp_path / "flow", flow_list)
    flow_policy = load_policy(flow)
    with pytest.raises(SuggestionError, match="not a block list"):
        write_candidate(flow_policy, [_suggestion("counter_exemplar", names[0], "The export is paused.")],
                        tmp_path / "flow-out")
    assert not (tmp_path / "flow-out").exists()


def test_a_category_that_inherits_its_lists_through_a_merge_key_is_left_to_hand_editing(tmp_path, monkeypatch):
    """A category written ``name: {<<: *other, ...}`` (merge keys work in policy files) inherits its lists. The
    candidate added a ``counter_exemplars:`` key of its own, which in YAML replaces the inherited list: the
    category's vetted false-alarm texts were gone from the candidate, and its check passed (it looked only for the
    new text). Such a category is refused (add by hand), and the check refuses a candidate that lost any text of
    the policy's lists, whatever the cause."""
    import gatekeeper.exemplar_suggestions as suggestions

    def inherit(text: str) -> str:
        names = list(yaml.safe_load(text)["categories"])
        text = text.replace(f"  {names[0]}:\n", f"  {names[0]}: &first\n", 1)
        lines = text.splitlines()
        start = lines.index(f"  {names[1]}:")
        lines.insert(start + 1, "    <<: *first")
        at = next(i for i in range(start, len(lines)) if lines[i].strip() == "counter_exemplars:")
        end = at + 1
        while end < len(lines) and lines[end].strip().startswith("- "):
            end += 1
        del lines[at:end]  # the second category's counter-exemplars now come from the first
        return "\n".join(lines) + "\n"

    policy = load_policy(_policy_copy(tmp_path, inherit))
    names = list(policy.categories)
    inherited = policy.categories[names[1]].counter_exemplars
    assert inherited and inherited == policy.categories[names[0]].counter_exemplars
    add = _suggestion("counter_exemplar", names[1], "agent-9 is decommissioned next week.")
    with pytest.raises(SuggestionError, match="merge key"):
        write_candidate(policy, [add], tmp_path / "out")
    assert not (tmp_path / "out").exists()

    # the check itself: a candidate file that dropped one of the policy's texts is refused
    real = suggestions._insert

    def dropping(text, category, key, items, header):
        out = real(text, category, key, items, header)
        first = policy.categories[names[0]].counter_exemplars[0]
        return "\n".join(line for line in out.splitlines() if first not in line) + "\n"

    monkeypatch.setattr(suggestions, "_insert", dropping)
    with pytest.raises(SuggestionError, match=f"lost 1 of {names[0]}.counter_exemplars"):
        write_candidate(policy, [_suggestion("counter_exemplar", names[0], "The export is paused.")],
                        tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_yaml_quoting_keeps_every_text_as_it_is():
    for text in ('plain', 'a "quoted" word', "back\\slash", "line\nbreak", "\u2028\u2029\x85", "\x07bell",
                 "tag \U000E0041", "emoji \U0001F600", "# not a comment", "- not an item", "key: value", "'"):
        quoted = yaml_quoted(text)
        assert "\n" not in quoted and yaml.safe_load(quoted) == text
    # what a reader of the policy file would not see is written as an escape
    assert yaml_quoted("zero\u200bwidth \u202eflip") == '"zero\\u200bwidth \\u202eflip"'


def test_cli_policy_suggest_writes_a_candidate_and_refuses_bad_targets(gate, reviewer, tmp_path):
    (belief,) = _flagged_by_the_classifier(reviewer, label="harmful", n=1)
    ReviewService(gate).reject(_put(gate, belief).proposal.id, "bob", reason="a belief")
    data = str(gate.registry.path.parent)
    out, report = tmp_path / "candidate", tmp_path / "suggest.json"
    r = runner.invoke(app, ["policy", "suggest", "--data-dir", data, "--out", str(out), "--json", str(report)])
    assert r.exit_code == 0, r.output
    assert "1 review decision(s) read: 0 counter-exemplar(s) and 1 exemplar(s) suggested" in r.output
    assert "would commit" in r.output  # verified by review
    saved = json.loads(report.read_text())
    assert [s["text"] for s in saved["suggestions"]] == [normalize(belief).text]
    # where the text comes from, and what adopting it means for the people whose memories they are
    assert saved["suggestions"][0]["namespaces"] == ["memories/agent-1"]
    said = " ".join(r.stderr.split())
    assert "reviewed memories copied word for word (from 1 namespace)" in said
    assert "shown to the LLM judge beside any user's writes" in said and "`gatekeeper forget` does not" in said
    candidate = load_policy(out)
    category = saved["suggestions"][0]["category"]
    assert normalize(belief).text in candidate.categories[category].exemplars
    # memory texts from the registry (0600): they were written 0644 under umask 022, a 0755 directory
    assert (report.stat().st_mode & 0o777, out.stat().st_mode & 0o777) == (0o600, 0o700)
    assert {p.stat().st_mode & 0o777 for p in out.glob("*.yaml")} == {0o600}
    r = runner.invoke(app, ["policy", "suggest", "--data-dir", data, "--out", str(out), "--no-verify"])
    assert r.exit_code == 2 and "not an empty directory" in r.output
    r = runner.invoke(app, ["policy", "suggest", "--data-dir", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "no gate registry" in r.output
    r = runner.invoke(app, ["policy", "suggest", "--data-dir", data, "--since", "soon"])
    assert r.exit_code == 2 and "--since" in r.output


def test_the_review_feedback_benchmark_runs_on_a_small_file(reviewer, tmp_path):
    """benchmarks/review_feedback.py (a script, loaded from its file) on 80 corpus dev writes of a few
    families: it reports both halves before and after, and the decided half's false alarms do not rise."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("review_feedback", REPO / "benchmarks" / "review_feedback.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = load_corpus("dev")
    families = sorted({r["family"] for r in rows})[:12]
    picked = [r for r in rows if r["family"] in families][:80]
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps({k: r[k] for k in ("text", "label", "family")}) + "\n" for r in picked))
    result = bench.measure(data, reviewer)
    assert result["decided_writes"] + result["later_writes"] == len(picked)
    for half in ("decided_half", "later_half"):
        for when in ("before", "after"):
            rates = result[half][when]
            assert 0 <= rates["caught"] <= 100 and 0 <= rates["false_alarms"] <= 100
    decided = result["decided_half"]
    assert decided["after"]["false_alarms"] <= decided["before"]["false_alarms"]
    assert result["approved_cleared"] + result["approved_still_flagged"] <= result["approved"]


def test_a_belief_flagged_on_its_own_counts_though_the_writes_before_it_scored_it_higher(gate, reviewer):
    """A rejected belief whose agent wrote two notes just before was left out ("the writes joined before it set
    the score") when the joined text scored a little above the belief's own score, far above any threshold: two
    reviewers' rejections of one belief then backed its exemplar once. Only a write that would have committed
    alone was flagged for the writes before it."""
    (belief,) = _flagged_by_the_classifier(reviewer, label="harmful", n=1)
    svc = ReviewService(gate)
    for note in ("The deploy script lives in tools/deploy.sh.", "Deploys need a green CI run first."):
        _put(gate, note, pending=False)
    first = _put(gate, belief)
    layers = {e.layer: e for e in first.review.evidence}
    svc.reject(first.proposal.id, "alice", reason="a belief")
    svc.reject(_put(gate, belief, "agent-2").proposal.id, "bob", reason="a belief")
    report = suggest_exemplars(gate.registry, gate.policy, min_support=2)
    assert [(s.text, s.support) for s in report.suggestions] == [(normalize(belief).text, 2)], (
        report.left_out, layers.get("context"))
    assert layers["classifier"].score >= gate.policy.commit_below(first.proposal.provenance.source)


def test_decisions_under_a_category_the_policy_no_longer_has_are_left_out(gate, reviewer):
    """Safety staff removed (or renamed) a category: its decisions were suggested for it, and the candidate could
    not be written (no policy file defines it), taking the other suggestions with it."""
    beliefs = _flagged_by_the_classifier(reviewer, label="harmful", n=2)
    svc = ReviewService(gate)
    rows = [gate.registry.require(_put(gate, b, f"agent-{i}").proposal.id) for i, b in enumerate(beliefs)]
    for row in rows:
        svc.reject(row["id"], "bob", reason="a belief")
    gone = rows[0]["category"]
    smaller = gate.policy.model_copy(update={"categories": {k: v for k, v in gate.policy.categories.items()
                                                            if k != gone}})
    report = suggest_exemplars(gate.registry, smaller)
    assert all(s.category != gone for s in report.suggestions)
    assert report.left_out["its category is no longer in the policy"] == sum(r["category"] == gone for r in rows)
    assert len(report.suggestions) == sum(r["category"] != gone for r in rows)
