"""Exemplar suggestions from reviewers' decisions: what the review queue teaches the policy.

A reviewer who approves an escalated memory says the gate raised a false alarm; one who rejects it confirms
the alarm. Safety staff can turn those decisions into the policy's counter-exemplars and exemplars, which
change decisions at once, without retraining (``gatekeeper.exemplars``), and are part of what the classifier
is next trained on. ``suggest_exemplars`` reads the decisions people made and proposes:

* for an approved memory, a **counter-exemplar** of the category it was escalated for: the text the classifier
  scored it by. For a long note that one sentence raised, that is the sentence (or two neighbouring ones): a
  counter-exemplar lowers the score of the text of a write it matches, not the whole write's, so the sentence
  is what clears the next note that repeats it, and it cannot clear a belief written beside it;
* for a rejected memory, an **exemplar** of its category: the same text, the part that made it a belief.

Left out, and counted by reason (``SuggestionReport.left_out``): decisions where a rule or the writes joined
before it set the score (an exemplar would not change them: that is ``rules.yaml``'s or the context layer's),
approved memories with hidden or encoded content (a counter-exemplar never clears those), edits (the reviewer
changed the text, so neither version was approved as it was), texts reviewers disagreed on, texts the policy
lists already, memories without a category, and texts longer than :data:`MAX_TEXT_CHARS`.

What the suggestions do before the classifier is retrained was measured on our held-out themes
(``benchmarks/review_feedback.py``): with the decisions on half of each file's subtopic families, false alarms
on those writes fell (long notes 35.7% -> 10.3%, continuity 18.9% -> 5.0%, advice 37.0% -> 10.9%; most of
the rest were quarantined, so never in the queue) and on the other half did not move, and recall did not
move on either: the loop serves an agent that writes the same kind of note again. The classifier learns from
the new texts when it is next trained.

``write_candidate`` writes a copy of the policy with the suggestions added, each in the list of its category
in the file and place where that list is, for ``gatekeeper policy diff`` and for safety staff to read before
they adopt it. Nothing in the policy in force, the registry or the ledger is changed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Literal, Sequence

import yaml
from pydantic import BaseModel, Field

from gatekeeper.decision import decide
from gatekeeper.files import private_dir, write_private_file
from gatekeeper.hidden_chars import is_hidden
from gatekeeper.models import EXPIRY_REVIEWER, ReviewResult, SourceKind, as_utc, whole_number
from gatekeeper.normalize import normalize
from gatekeeper.policy import YAML_MERGE_TAG, Policy, PolicyError, exemplar_key, load_policy, policy_files
from gatekeeper.registry import ProposalRegistry, row_proposal, row_review
from gatekeeper.reviewer import Reviewer

#: a longer text is not suggested: an exemplar is a statement, and a whole long note matches only itself
MAX_TEXT_CHARS = 600
#: decisions read per registry query
_PAGE = 500

Kind = Literal["counter_exemplar", "exemplar"]
#: the policy's list each kind of suggestion goes into
LIST_OF: dict[str, str] = {"counter_exemplar": "counter_exemplars", "exemplar": "exemplars"}


class SuggestionError(ValueError):
    """A candidate policy could not be written (the reason says what to do instead)."""


class Suggestion(BaseModel):
    kind: Kind
    category: str
    text: str = Field(description="the text to add: the part of the memory the classifier scored it by")
    part: str = Field(description="what the text is: the whole text, a part, or hidden or decoded content")
    proposal_ids: list[str] = Field(description="the decided proposals it comes from, most recent first")
    reviewers: list[str]
    reasons: list[str] = Field(default_factory=list, description="the reviewers' reasons, where they gave one")
    namespaces: list[str] = Field(default_factory=list, description="the namespaces of those memories ('/'-joined):"
                                  " the text is a memory's, word for word")
    score: float = Field(description="the highest score the gate gave those proposals")

    @property
    def support(self) -> int:
        return len(self.proposal_ids)


class SuggestionReport(BaseModel):
    policy_hash: str
    since: datetime | None = None
    decisions_read: int = 0
    suggestions: list[Suggestion] = Field(default_factory=list)
    #: decisions left out, by reason
    left_out: dict[str, int] = Field(default_factory=dict)
    #: with a reviewer: the approved memories behind the counter-exemplars, reviewed again under the policy with
    #: the suggestions added (the classifier in force): how many would commit now, how many would still not
    verified: bool = False
    approved_cleared: int = 0
    approved_still_flagged: list[str] = Field(default_factory=list)
    #: rejected memories the candidate would commit: a counter-exemplar too close to a belief (each such
    #: counter-exemplar is dropped, so this is empty unless dropping it could not help)
    rejected_committed: list[str] = Field(default_factory=list)
    dropped: list[Suggestion] = Field(default_factory=list)


class _Found:
    """Suggestions being gathered, by (kind, text key)."""

    def __init__(self, policy: Policy):
        self.listed = {exemplar_key(t) for c in policy.categories.values()
                       for t in (*c.exemplars, *c.counter_exemplars)}
        self.by_key: dict[tuple[str, str], Suggestion] = {}
        #: (kind, text key) of texts reviewers disagreed on, and of counter-exemplars dropped by the review
        self.blocked: set[tuple[str, str]] = set()

    def add(self, kind: Kind, category: str, text: str, part: str, row: dict, left_out: Counter[str]) -> None:
        if len(text) > MAX_TEXT_CHARS:
            left_out[f"text longer than {MAX_TEXT_CHARS} characters"] += 1
            return
        if not text.strip():
            left_out["no text"] += 1
            return
        key = exemplar_key(text)
        if key in self.listed:
            left_out["already in the policy"] += 1
            return
        s = self.by_key.get((kind, key))
        reason, namespace = row["resolved_reason"], _namespace_of(row)
        if s is None:
            self.by_key[(kind, key)] = Suggestion(kind=kind, category=category, text=text, part=part,
                                                  proposal_ids=[row["id"]], reviewers=[row["resolved_by"]],
                                                  score=row["score"] or 0.0, reasons=[reason] if reason else [],
                                                  namespaces=[namespace])
            return
        if row["id"] not in s.proposal_ids:
            s.proposal_ids.append(row["id"])
        if namespace not in s.namespaces:
            s.namespaces.append(namespace)
        if row["resolved_by"] not in s.reviewers:
            s.reviewers.append(row["resolved_by"])
        if reason and reason not in s.reasons:
            s.reasons.append(reason)
        s.score = max(s.score, row["score"] or 0.0)  # the category stays the most recent decision's

    def add_more(self, row: dict, review: ReviewResult) -> Suggestion | None:
        """A new counter-exemplar from an approved memory that the candidate still flags: the text that now
        scores it highest. None when that text is suggested already (either way), blocked or left out."""
        text, part = _text_of(row, review)
        key = exemplar_key(text)
        if any((k, key) in self.by_key or (k, key) in self.blocked for k in ("counter_exemplar", "exemplar")):
            return None
        self.add("counter_exemplar", review.category, text, part, row, Counter())
        return self.by_key.get(("counter_exemplar", key))


def suggest_exemplars(registry: ProposalRegistry, policy: Policy, *, since: datetime | None = None,
                      limit: int = 1000, min_support: int = 1, reviewer: Reviewer | None = None,
                      rounds: int = 3) -> SuggestionReport:
    """Suggestions from the ``limit`` most recent decisions people made on escalations (since ``since``),
    each backed by at least ``min_support`` of them; most supported first.

    With ``reviewer`` (the policy in force's), the suggestions are checked by review: the approved memories
    behind the counter-exemplars are reviewed again under the policy with the suggestions added (the same
    classifier: as the gate serves an edit before its classifier is retrained). A memory still flagged
    there by another of its texts (a sentence can stand alone and in two pairs) adds that text too, for up to
    ``rounds`` rounds; a counter-exemplar under which a rejected memory would commit is dropped."""
    whole_number(limit, "limit")
    whole_number(min_support, "min_support")
    if since is not None:
        since = as_utc(since, "since")  # any zone; a naive time is refused
    report = SuggestionReport(policy_hash=policy.hash, since=since)
    left_out: Counter[str] = Counter()
    found = _Found(policy)
    rows: dict[str, tuple[dict, Kind]] = {}
    for row in _decided_rows(registry, since, limit):
        report.decisions_read += 1
        kind, reason = _candidate(row, policy)
        if kind is None:
            left_out[reason] += 1
            continue
        rows[row["id"]] = (row, kind)
        text, part = _text_of(row, row_review(row))
        found.add(kind, row["category"], text, part, row, left_out)
    # a text reviewers both approved and rejected is no one's suggestion
    disputed = {key for kind, key in found.by_key if kind == "exemplar"} & \
        {key for kind, key in found.by_key if kind == "counter_exemplar"}
    for key in disputed:
        for kind in ("counter_exemplar", "exemplar"):
            found.blocked.add((kind, key))
            left_out["reviewers disagreed on the text"] += found.by_key.pop((kind, key)).support
    kept = []
    for s in found.by_key.values():
        if s.support < min_support:
            left_out[f"fewer than {min_support} decisions"] += s.support
        else:
            kept.append(s)
    report.suggestions = sorted(kept, key=lambda s: (-s.support, s.kind, s.category, s.text))
    report.left_out = dict(sorted(left_out.items(), key=lambda kv: -kv[1]))
    if reviewer is not None and report.suggestions:
        _verify(report, found, rows, policy, reviewer, rounds)
    return report


def _verify(report: SuggestionReport, found: _Found, rows: dict[str, tuple[dict, Kind]], policy: Policy,
            reviewer: Reviewer, rounds: int) -> None:
    """Review the decided memories under the candidate (see ``suggest_exemplars``) and extend or prune
    ``report.suggestions`` by what that shows."""
    approved = list({pid: rows[pid][0] for s in report.suggestions if s.kind == "counter_exemplar"
                     for pid in s.proposal_ids}.values())
    rejected = [row for row, kind in rows.values() if kind == "exemplar"]
    with tempfile.TemporaryDirectory(prefix="gatekeeper-suggest-") as tmp:
        n = 0
        while True:
            outcome = _review_under(policy, report.suggestions, approved + rejected, reviewer, Path(tmp) / str(n))
            n += 1
            still = [(row, r) for row, (r, action) in zip(approved, outcome) if action != "commit"]
            committed = [(row, r) for row, (r, action) in zip(rejected, outcome[len(approved):]) if action == "commit"]
            # a counter-exemplar under which a rejected memory commits goes (and is not suggested again)
            culprits = {key for _, r in committed for key in _lowered_by(r)}
            drop = [s for s in report.suggestions if s.kind == "counter_exemplar" and exemplar_key(s.text) in culprits]
            if drop:
                report.dropped += drop
                found.blocked |= {("counter_exemplar", exemplar_key(s.text)) for s in drop}
                report.suggestions = [s for s in report.suggestions if s not in drop]
                continue  # each round of drops shrinks the suggestions: this ends
            if n > rounds:
                break
            added = [s for row, r in still if r.category is not None and (s := found.add_more(row, r)) is not None]
            if not added:
                break
            report.suggestions += added
    report.verified = True
    report.approved_cleared = len(approved) - len(still)
    report.approved_still_flagged = [row["id"] for row, _ in still]
    report.rejected_committed = [row["id"] for row, _ in committed]


def _review_under(policy: Policy, suggestions: Sequence[Suggestion], decided: Sequence[dict], reviewer: Reviewer,
                  folder: Path) -> list[tuple[ReviewResult, str]]:
    """Each decided memory's review and action under ``policy`` with ``suggestions`` added."""
    candidate = _write_checked(policy, suggestions, folder) if suggestions else policy
    again = Reviewer(candidate, embedder=reviewer.embedder, classifier=reviewer.classifier)
    proposals = [row_proposal(row) for row in decided]
    out = []
    for start in range(0, len(proposals), 64):
        chunk = proposals[start:start + 64]
        out += [(r, decide(p, r, candidate).action.value) for p, r in zip(chunk, again.review_many(chunk))]
    return out


def _lowered_by(review: ReviewResult) -> set[str]:
    """The text keys of the counter-exemplars that lowered ``review``'s score."""
    ex = next((e for e in review.evidence if e.layer == "exemplars"), None)
    return {exemplar_key(t) for t in ex.details.get("lowered_by", [])} if ex is not None else set()


def _decided_rows(registry: ProposalRegistry, since: datetime | None, limit: int):
    """The rows people decided, most recent decision first, at most ``limit``."""
    offset = 0
    while offset < limit:
        rows = registry.query(decided=True, newer_than=since, limit=min(_PAGE, limit - offset), offset=offset)
        yield from rows
        if len(rows) < min(_PAGE, limit - offset):
            return
        offset += len(rows)


def _candidate(row: dict, policy: Policy) -> tuple[Kind | None, str]:
    """What a decided row may suggest, or None and the reason it is left out."""
    resolution = row["resolution"]
    if row["resolved_by"] == EXPIRY_REVIEWER:
        return None, "expired without a person's decision"
    if resolution == "edit":
        return None, "edited before approval"
    if resolution not in ("approve", "reject"):
        return None, f"decided as {resolution}"
    if not row["category"]:
        return None, "no category"
    if row["category"] not in policy.categories:  # removed or renamed since: no file of the policy to add it to
        return None, "its category is no longer in the policy"
    review = row_review(row)
    if review is None or review.error:
        return None, "no review to learn from"
    layers = {e.layer: e for e in review.evidence}
    clf = layers.get("classifier")
    if clf is None or clf.score is None:
        return None, "decided without the classifier (a rule or the screen)"
    rules = layers.get("rules")
    if rules is not None and (rules.decided or (rules.score is not None and rules.score >= (review.raw_score or 0))):
        return None, "a rule set the score (rules.yaml)"
    context = layers.get("context")
    if (context is not None and context.score is not None and context.score >= (review.raw_score or 0) > clf.score
            and clf.score < policy.commit_below(SourceKind(row["source"]))):
        # the joined writes flagged it, the write alone would have committed: the decision was about them. A write
        # flagged on its own (0.9968 alone, 0.9992 joined) teaches what it says
        return None, "the writes joined before it set the score"
    if resolution == "approve":
        normalized = layers.get("normalize")
        d = normalized.details if normalized is not None else {}
        if d.get("findings") or d.get("variants") or d.get("obfuscated"):
            return None, "hidden or encoded content (never cleared by a counter-exemplar)"
        return "counter_exemplar", ""
    return "exemplar", ""


def _text_of(row: dict, review: ReviewResult) -> tuple[str, str]:
    """The text to suggest: the part the classifier scored the memory by, else its whole normalised text."""
    deciding = review.deciding_text()
    if deciding is not None:
        return deciding["text"], deciding["part"]
    return normalize(row_proposal(row).text).text, "whole text"


# ------------------------------------------------------------------------------------------- candidate
#: what a YAML double-quoted scalar may hold as it is (the rest is escaped): printable, no line breaks
_YAML_PLAIN_CHAR = re.compile(r"[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def yaml_quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar on one line (line breaks, controls, characters YAML refuses and
    characters a reader of the policy file would not see, such as zero-width or direction marks, as escapes)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _YAML_PLAIN_CHAR.fullmatch(ch) and not is_hidden(ch):
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    quoted = "".join(out)
    if yaml.safe_load(quoted) != text:  # a quoting bug must not write a different text into the policy
        raise SuggestionError(f"cannot quote {text!r} for YAML")
    return quoted


def _namespace_of(row: dict) -> str:
    try:
        return "/".join(json.loads(row["namespace"]))
    except (TypeError, ValueError):
        return str(row["namespace"])


def write_candidate(policy: Policy, suggestions: Sequence[Suggestion], out: Path, *,
                    header: str = "suggested from review decisions") -> Path:
    """A copy of ``policy``'s files in ``out`` (a new or empty directory) with ``suggestions`` added to their
    categories' lists, each line marked with a comment (``header`` and the proposal ids). The copy is loaded
    and checked before it is returned; on any problem ``out`` is removed and :class:`SuggestionError` says why."""
    _write_checked(policy, suggestions, out, header=header)
    return Path(out)


def _write_checked(policy: Policy, suggestions: Sequence[Suggestion], out: Path, *,
                   header: str = "suggested from review decisions") -> Policy:
    """``write_candidate``, returning the candidate policy it loaded to check the copy."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SuggestionError(f"{out} exists and is not an empty directory")
    source = Path(policy.source_path)
    files = policy_files(source)
    created = not out.exists()
    private_dir(out)  # the suggestions are memory texts from the registry, which only the gate's user reads
    try:
        # line endings as they are (CRLF from a Windows editor or core.autocrlf, a BOM kept as its character):
        # the candidate differs from the policy only by the added lines
        texts = {f.name: f.read_bytes().decode("utf-8") for f in files}
        for (category, key), items in _grouped(suggestions).items():
            name = _file_defining(texts, category)
            if name is None:
                raise SuggestionError(f"no policy file defines category {category!r}")
            texts[name] = _insert(texts[name], category, key, items, header)
        for name, text in texts.items():
            write_private_file(out / name, text.encode("utf-8"))
        for f in source.iterdir() if source.is_dir() else ():
            if f.is_file() and f.name not in texts and not f.name.startswith("."):
                shutil.copy2(f, out / f.name)  # a README or notes beside the policy travel with it
        return _check(out, suggestions, policy)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for f in out.iterdir():
                f.unlink()
        raise


def _grouped(suggestions: Sequence[Suggestion]) -> dict[tuple[str, str], list[Suggestion]]:
    out: dict[tuple[str, str], list[Suggestion]] = {}
    for s in suggestions:
        out.setdefault((s.category, LIST_OF[s.kind]), []).append(s)
    return out


def _categories_node(text: str) -> yaml.MappingNode | None:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    node = next((v for k, v in root.value if k.value == "categories"), None)
    return node if isinstance(node, yaml.MappingNode) else None


def _file_defining(texts: dict[str, str], category: str) -> str | None:
    for name, text in texts.items():
        node = _categories_node(text)
        if node is not None and any(k.value == category for k, _ in node.value):
            return name
    return None


def _last_line(node: yaml.Node) -> int:
    """The 0-based index of the last line that holds ``node``'s content."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1])
    end = node.end_mark
    return end.line if end.column > 0 else end.line - 1


def _insert(text: str, category: str, key: str, items: Sequence[Suggestion], header: str) -> str:
    """``text`` with ``items`` added to the list ``key`` of ``category`` (a block list, an empty one, or none
    yet); any other form of the list is refused (edit it by hand)."""
    cats = _categories_node(text)
    cat = next((v for k, v in cats.value if k.value == category), None) if cats is not None else None
    if not isinstance(cat, yaml.MappingNode) or cat.flow_style or not cat.value:
        raise SuggestionError(f"category {category!r} is not a block mapping in its policy file: add by hand")
    lines = text.splitlines(keepends=True)
    eol = _line_ending(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += eol
    entry = next(((k, v) for k, v in cat.value if k.value == key), None)
    if entry is None and any(k.tag == YAML_MERGE_TAG for k, _ in cat.value):
        # a key written beside "<<: *anchor" replaces the list the category inherits: its texts would go
        raise SuggestionError(f"category {category!r} takes its settings from a YAML merge key (<<), so a "
                              f"{key} list of its own would replace the one it inherits: add by hand")
    if entry is None:  # no such list yet: a new key after the category's last line
        indent = " " * cat.value[0][0].start_mark.column
        at = _last_line(cat) + 1
        block = [f"{indent}{key}:{eol}"]
        item_indent = indent + "  "
    else:
        k, v = entry
        if isinstance(v, yaml.SequenceNode) and v.value and not v.flow_style:
            at = _last_line(v) + 1
            item_indent = " " * v.start_mark.column
            block = []
        elif (isinstance(v, yaml.SequenceNode) and not v.value) or (isinstance(v, yaml.ScalarNode) and v.value == ""
                                                                   and v.tag.endswith(":null")):
            line = lines[k.start_mark.line]
            if isinstance(v, yaml.SequenceNode):  # "key: []": the brackets go, a comment after them stays
                if v.start_mark.line != k.start_mark.line or v.end_mark.line != k.start_mark.line:
                    raise SuggestionError(f"{category}.{key} is an empty list over several lines: add by hand")
                rest = line[v.end_mark.column:].strip()
                lines[k.start_mark.line] = (line[:v.start_mark.column].rstrip() + (f"  {rest}" if rest else "")
                                            + (line[len(line.rstrip("\r\n")):] or eol))
            at = k.start_mark.line + 1
            item_indent = " " * (k.start_mark.column + 2)
            block = []
        else:
            raise SuggestionError(f"{category}.{key} is not a block list (\"- text\" lines): add by hand")
    ids = ", ".join(p[:12] for s in items for p in s.proposal_ids[:3])
    block.append(f"{item_indent}# {header}: {ids}{eol}")
    block += [f"{item_indent}- {yaml_quoted(s.text)}{eol}" for s in items]
    return "".join(lines[:at] + block + lines[at:])


def _line_ending(lines: Sequence[str]) -> str:
    """The line ending most of ``lines`` (read with their endings) have: CRLF or LF."""
    crlf = sum(1 for line in lines if line.endswith("\r\n"))
    return "\r\n" if crlf * 2 > len(lines) else "\n"


def _check(out: Path, suggestions: Sequence[Suggestion], policy: Policy) -> Policy:
    """The candidate in ``out``, loaded: ``policy`` with ``suggestions`` added to their lists and nothing else
    changed (a text an edit of the YAML dropped or replaced, an inherited list overridden, a setting moved, is
    refused)."""
    try:
        candidate = load_policy(out)
    except PolicyError as exc:
        raise SuggestionError(f"the candidate policy does not load: {exc}") from None
    for s in suggestions:
        if s.text not in getattr(candidate.categories[s.category], LIST_OF[s.kind]):
            raise SuggestionError(f"the candidate policy lost a suggestion: {s.text!r}")
    added: dict[tuple[str, str], set[str]] = {}
    for s in suggestions:
        added.setdefault((s.category, LIST_OF[s.kind]), set()).add(s.text)
    if set(candidate.categories) != set(policy.categories):
        raise SuggestionError("the candidate policy's categories differ from the policy's")
    for name, category in policy.categories.items():
        new = candidate.categories[name]
        for key in LIST_OF.values():
            before, after = getattr(category, key), getattr(new, key)
            lost = [t for t in before if t not in after]
            if lost:
                raise SuggestionError(f"the candidate policy lost {len(lost)} of {name}.{key} (first: {lost[0]!r}); "
                                      "add the suggestions by hand")
            extra = [t for t in after if t not in before and t not in added.get((name, key), set())]
            if extra:
                raise SuggestionError(f"the candidate policy has texts in {name}.{key} that are neither the "
                                      f"policy's nor suggested (first: {extra[0]!r})")
        if new.model_dump(exclude=set(LIST_OF.values())) != category.model_dump(exclude=set(LIST_OF.values())):
            raise SuggestionError(f"the candidate policy changed category {name!r}'s settings")
    return candidate


__all__ = ["LIST_OF", "MAX_TEXT_CHARS", "Suggestion", "SuggestionError", "SuggestionReport", "suggest_exemplars",
           "write_candidate", "yaml_quoted"]
