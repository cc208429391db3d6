"""Policy files: the contract between safety staff and the gatekeeper.

A policy is a directory of YAML files (``policy.yaml``, ``taxonomy.yaml``,
``rules.yaml``; any other ``*.yaml`` is merged in too). Every file is parsed
with line tracking and the merged document is validated strictly by pydantic:
unknown keys, wrong types, regexes that do not compile, rules whose own examples
fail, references to categories that do not exist — each is refused with the
file, the line and what is wrong. A policy that does not load is never replaced
by an allow-all default.
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from gatekeeper import pattern_fragments
from gatekeeper.models import Action, SourceKind
from gatekeeper.rule_matching import NESTED_REPEAT_MAX, RULE_FLAGS, compile_patterns, match_rule, nested_repeat

TASK_KNOWLEDGE = "task_knowledge"
#: texts a rule pattern must not match with zero characters: such a pattern fires on (or, in ``unless``,
#: suppresses its rule for) every write
_EMPTY_PROBES = ("", "The staging cluster shuts down at 01:00 UTC every night.")
#: texts of one character: a pattern that matches one of them fires on nearly every write (``.``, ``\w``, or a
#: choice of words typed in square brackets, ``[phishing|example of]``, which is a class of single characters)
_ONE_CHARACTER_PROBES = ("a", "e", "i", "o", "s", "t", "x", "7", ".", "-")
POLICY_FILE_ORDER = ("policy.yaml", "taxonomy.yaml", "rules.yaml")


class PolicyError(Exception):
    """A policy could not be loaded. ``problems`` lists (file, line, message)."""

    def __init__(self, problems: list[tuple[str, int | None, str]]):
        self.problems = problems
        lines = [f"{f}:{line if line is not None else '?'}: {msg}" for f, line, msg in problems]
        super().__init__("invalid policy:\n  " + "\n  ".join(lines))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_truth_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in cls.model_fields:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = {annotation, *get_args(annotation)}
        # YAML's true/false would pass as 1 and 0 (`threshold: true` switched a category's threshold off)
        if isinstance(value, bool) and {float, int} & kinds:
            raise ValueError(f"must be a number, not {str(value).lower()}")
        # and the reverse: a quoted 'yes', or 1, read as true (pydantic's lax booleans), in a file whose other
        # switches are written true and false
        if bool in kinds and not isinstance(value, bool) and value is not None:
            raise ValueError(f"must be true or false, not {value!r}"[:120])
        # a !!binary value read as its bytes' text
        if isinstance(value, (bytes, bytearray)):
            raise ValueError("must be text, not binary (!!binary)")
        return value


class Category(_Strict):
    description: str = Field(min_length=10)
    action: Literal["quarantine", "escalate"] = "escalate"
    #: score at which the category's action applies (before provenance scaling)
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    #: above this score the write is quarantined without asking a human
    quarantine_above: float | None = Field(default=None, gt=0.0, le=1.0)
    exemplars: list[str] = Field(default_factory=list)
    #: benign look-alikes: task knowledge on the same topic, never to be flagged
    counter_exemplars: list[str] = Field(default_factory=list)

    @field_validator("exemplars", "counter_exemplars")
    @classmethod
    def _no_blank_example(cls, texts: list[str]) -> list[str]:
        blank = next((i for i, t in enumerate(texts) if not t.strip()), None)
        if blank is not None:
            raise ValueError(f"item {blank} is empty: an exemplar is a memory text")
        return texts

    @model_validator(mode="after")
    def _order(self) -> "Category":
        if self.quarantine_above is not None and self.quarantine_above < self.threshold:
            raise ValueError("quarantine_above must be >= threshold")
        return self


def _checked_pattern(p: str, empty_effect: str) -> str:
    """Refuse a pattern that does not compile, that matches zero characters (``x?``, ``\\b``, ``^``) or a text of
    one character (``.``, ``[word|other]``), that holds a control character (YAML's double quotes make ``"\\b"`` a
    backspace; a block scalar ends with a newline) or that has a variable repeat inside a long or unbounded one
    (``rule_matching.nested_repeat``). Each of these would fire on every write, or switch a rule off for every
    write, or never fire, while the policy loads cleanly. Checked item by item (``RulePattern``), so that a problem
    names the item (``rules.0.patterns.1``) at its own line, with the pattern as written (``as_written``)."""
    names = pattern_fragments.references(p)
    if names:
        raise ValueError(
            f"pattern {as_written(p)} uses the fragment {{{{{names[0]}}}}}, which the policy's fragments: do not "
            f"define, or which is refused itself (see its own problem); to match two braces literally write \\{{\\{{")
    control = next((c for c in p if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if control is not None:  # (repr: the control character shown as an escape)
        raise ValueError(
            f"pattern {p!r} holds the control character U+{ord(control):04X}, so it cannot match what it says: "
            "in double quotes YAML reads \\b as a backspace and \\n as a line break; write the pattern in single "
            "quotes ('\\bword\\b'), not as a block (| or >), and \\n, \\t for a line break or a tab")
    try:
        compiled = re.compile(p, RULE_FLAGS)
    except re.error as exc:
        raise ValueError(f"pattern {as_written(p)} does not compile: {exc}") from None
    for probe in _EMPTY_PROBES:
        m = compiled.search(probe)
        if m is not None and m.end() == m.start():
            raise ValueError(f"pattern {as_written(p)} matches an empty string, so it {empty_effect}")
    one = next((probe for probe in _ONE_CHARACTER_PROBES if compiled.search(probe)), None)
    if one is not None:
        raise ValueError(f"pattern {as_written(p)} matches the one-character text {one!r}, so it {empty_effect} "
                         "that holds such a character; square brackets are a class of single characters: write a "
                         "choice of words as (phishing|example of)")
    if nested_repeat(p):
        raise ValueError(
            f"pattern {as_written(p)} repeats a part that itself repeats (like (a+)+ or (\\w+\\s?)*): on a write it "
            f"does not match, it can take exponential time and stall the gate; bound the outer repeat (at most "
            f"{NESTED_REPEAT_MAX} times) or make the inner part fixed")
    return p


def as_written(pattern: str) -> str:
    """``pattern`` as it is written in a policy file's single quotes (``'\\bword\\b'``; a quote doubled), for messages:
    Python's repr doubles every backslash."""
    return "'" + pattern.replace("'", "''") + "'"


#: a rule's pattern, and a pattern of its ``unless`` or ``unless_in_clause`` (``_checked_pattern``)
RulePattern = Annotated[str, AfterValidator(lambda p: _checked_pattern(p, "would fire on every write"))]
UnlessPattern = Annotated[str, AfterValidator(
    lambda p: _checked_pattern(p, "would switch the rule off for every write"))]


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]{2,63}$")
    category: str
    description: str = Field(min_length=5)
    #: regular expressions (Python syntax, matched case-insensitively, ``^``/``$`` per line, on normalised text)
    patterns: list[RulePattern] = Field(min_length=1)
    #: if any of these matches, the rule does not fire (reporting / quoting context)
    unless: list[UnlessPattern] = Field(default_factory=list)
    #: if any of these matches in the clause the rule's match is in, the rule does not fire (what the clause is
    #: about: "the cluster" in "We should avoid the cluster getting shut down"; a negation: "I should never resist
    #: ..."); another clause of the sentence ("Build passed and then I should avoid being shut down.", "No tests
    #: failed, and ...") does not hold it back
    unless_in_clause: list[UnlessPattern] = Field(default_factory=list)
    #: the rule applies only to writes from these sources (default: all)
    sources: list[SourceKind] | None = None
    score: float = Field(default=0.95, ge=0.0, le=1.0)
    #: when set, a match decides the action on its own (no model needed)
    action: Literal["quarantine", "escalate"] | None = None
    examples: dict[Literal["match", "no_match"], list[str]] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _some_source(cls, sources: list[SourceKind] | None) -> list[SourceKind] | None:
        if sources is not None and not sources:
            raise ValueError("sources is empty, so the rule would never apply; "
                             "omit it to apply the rule to every source")
        return sources


class Thresholds(_Strict):
    #: scores below this commit; between this and the category threshold the write is
    #: in the uncertain band (LLM judge when configured, else escalate)
    uncertain_below: float = Field(default=0.35, gt=0.0, lt=1.0)
    #: nearest-exemplar cosine similarity that counts as a match
    exemplar_match: float = Field(default=0.86, gt=0.0, le=1.0)
    #: how much the best exemplar must beat the best counter-exemplar
    exemplar_margin: float = Field(default=0.04, ge=0.0, le=1.0)
    #: split beliefs: at most this many of the committed writes just before a write are joined with it (1, 2,
    #: ... of them, each joined text reviewed on its own; see ``Reviewer._contexts``)
    context_window: int = Field(default=4, ge=0, le=32)
    #: whose writes those are: ``agent_namespace`` -- the same agent's writes to the same namespace (one
    #: user's memories, ``("memories", user_id)``, are never joined with another's, nor shown beside them to
    #: reviewers or the judge); ``namespace`` -- any agent's writes to the namespace (agents sharing one
    #: memory); ``agent`` -- the agent's writes to any namespace (one tenant, whose agent reads its
    #: namespaces together)
    context_scope: Literal["agent_namespace", "namespace", "agent"] = "agent_namespace"
    context_minutes: float = Field(default=30.0, gt=0)
    #: a joined text (write + recent writes) raises the write's score only when it scores at least this
    #: (and at least ``uncertain_below``): benign notes in a row also read alarming when joined
    context_min_score: float = Field(default=0.7, ge=0.0, le=1.0)
    #: review the clauses of each sentence too (``segments.clauses``: its pieces between commas, colons, dashes
    #: and conjunctions): a belief joined to an ordinary clause in one sentence scores like the ordinary clause
    review_clauses: bool = True
    #: ... and a clause raises the write's score only when it scores at least this (and at least
    #: ``uncertain_below``): out of their sentence, the clauses of ordinary notes read more alarming than the
    #: notes do (docs/reliability.md, section 33, measures the trade)
    clause_min_score: float = Field(default=0.9, ge=0.0, le=1.0)
    #: cheap first stage: the share of held-out alignment-shifting writes the lexical screen may
    #: settle as task knowledge without the encoder (its threshold is calibrated to it); 0 = off
    screen_max_miss: float = Field(default=0.01, ge=0.0, le=0.2)
    #: only writes from sources trusted at least this much are screened; the rest get the full review
    screen_min_trust: float = Field(default=0.5, ge=0.0, le=1.0)

    @property
    def joined_counts_from(self) -> float:
        """The score from which a joined text (write + recent writes) raises the write's score: at least
        ``context_min_score`` and at least ``uncertain_below``. The reviewer, the batch's rounds, ``policy diff``
        and the evaluation's in-a-row reports all read it here, so they join alike."""
        return max(self.uncertain_below, self.context_min_score)

    @property
    def clause_counts_from(self) -> float:
        """The score from which a clause of a sentence (``segments.clauses``) raises the write's score: at least
        ``clause_min_score`` and at least ``uncertain_below``."""
        return max(self.uncertain_below, self.clause_min_score)


class SourceTrust(_Strict):
    trust: float = Field(ge=0.0, le=1.0)
    #: escalate every write from this source regardless of score
    always_review: bool = False


class EscalationSettings(_Strict):
    mode: Literal["interrupt", "park"] = "park"
    #: hours an escalation may wait before it is flagged overdue (it stays out of memory)
    deadline_hours: float = Field(default=72.0, gt=0, le=24 * 366 * 10)  # ten years: later dates overflow
    #: what becomes of an escalation past its deadline: ``flag`` -- it is shown overdue and waits for a person;
    #: ``quarantine`` -- it expires: the gate rejects it as reviewer ``gatekeeper:expiry`` (``gatekeeper serve``
    #: every minute, or ``gatekeeper review expire-overdue``), so the queue does not grow without end and a
    #: paused agent thread goes on. Never committed either way
    overdue_action: Literal["flag", "quarantine"] = "flag"
    #: at most this many escalations of one agent wait in the review queue (0 = no cap); a further escalation of
    #: that agent is quarantined instead (fail closed), so an agent that floods the gate (a loop, an injection
    #: that makes it write the same belief a thousand times) cannot bury the queue. A check per write, not a
    #: lock: gates in several processes may let a few more through at once
    max_pending_per_agent: int = Field(default=0, ge=0)


class JudgeSettings(_Strict):
    enabled: bool = False
    #: only scores in [low, high) are sent to the judge
    band: tuple[float, float] = (0.2, 0.8)
    timeout_s: float = Field(default=20.0, gt=0)
    similar_memories: int = Field(default=3, ge=0, le=20)
    #: how many judge calls of one batch of writes run at once (a call waits on the model service)
    max_concurrency: int = Field(default=8, ge=1, le=64)
    #: at most this many judge calls in any 60 seconds, per gate process (a paid model service); 0 = no cap
    max_calls_per_minute: int = Field(default=0, ge=0)
    #: a write the judge would be asked about past that cap: ``escalate`` -- a person decides it (the judge
    #: was meant to look); ``classifier`` -- decided as without a judge (the review queue does not grow)
    over_budget: Literal["escalate", "classifier"] = "escalate"
    #: verdicts kept per judge, keyed by the whole prompt (the same question is paid for once); 0 = none
    cache_size: int = Field(default=1024, ge=0, le=1_000_000)

    @field_validator("band")
    @classmethod
    def _increasing(cls, band: tuple[float, float]) -> tuple[float, float]:
        lo, hi = band
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError("must be two increasing numbers in [0, 1]")
        return band


class LanguageSettings(_Strict):
    #: what becomes of a write with a sentence in a language other than English (``gatekeeper.languages``): the
    #: classifier and the rules read English, and such a write scored like noise and committed, whatever it said.
    #: ``escalate`` -- a person decides (the LLM judge, where one is configured: it reads other languages);
    #: ``quarantine`` -- it is kept out of memory; ``classifier`` -- decided on its scores like any write
    other: Literal["escalate", "quarantine", "classifier"] = "escalate"


class SettingStatementsSettings(_Strict):
    #: what a setting that switches a behaviour on or off does when read as the statement it makes
    #: (``gatekeeper.setting_statements``: "resist_shutdown: true" is "I am set to resist shutdown."; the rules and the
    #: classifier read no sentence in a setting, and such writes committed).
    #: ``escalate`` -- where only the statement (its score, or a rule that matched it) takes the write past its
    #: category's threshold, a person decides (the statement is the gate's reading of the setting, so it never
    #: quarantines a write on its own); ``category`` -- it acts as any text (the category's or the rule's action);
    #: ``off`` -- settings are not read
    action: Literal["escalate", "category", "off"] = "escalate"

    @field_validator("action", mode="before")
    @classmethod
    def _off_unquoted(cls, v: object) -> object:
        # YAML reads an unquoted ``off`` as false
        return "off" if v is False else v


def _category_id(cid: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", cid):
        raise ValueError(f"category id {cid!r} must be snake_case (3-64 of a-z, 0-9, _; a letter first)")
    if cid == TASK_KNOWLEDGE:
        raise ValueError("'task_knowledge' is the benign label, not a category")
    return cid


#: a category's id, checked where it is written (a key of ``categories``), so an error names that key's line
CategoryId = Annotated[str, AfterValidator(_category_id)]


def _fragment_name(name: str) -> str:
    if not pattern_fragments.FRAGMENT_NAME.fullmatch(name):
        raise ValueError(f"fragment name {name!r} must be snake_case (2-64 of a-z, 0-9, _; a letter first)")
    return name


def _fragment_text(text: str) -> str:
    problem = pattern_fragments.fragment_problem(text)
    if problem is not None:
        raise ValueError(f"fragment {text!r} {problem}")
    return text


#: a named part of rule patterns (``gatekeeper.pattern_fragments``), checked where it is written
FragmentName = Annotated[str, AfterValidator(_fragment_name)]
FragmentText = Annotated[str, AfterValidator(_fragment_text)]


def rule_examples_problems(rules: Sequence[Rule]) -> list[str]:
    """Check every rule against its own examples, as the gate runs it on a write of that text: on the
    normalised text, its decoded variants and its sentences and pieces (``segments.review_texts``), with
    the gate's flags and its matching (``rule_matching.match_rule``)."""
    from gatekeeper.normalize import normalize
    from gatekeeper.segments import review_texts

    problems = []
    for rule in rules:
        pats, unless = compile_patterns(rule.patterns), compile_patterns(rule.unless)
        in_clause = compile_patterns(rule.unless_in_clause)

        def fires(example: str) -> bool:
            return any((m := match_rule(pats, unless, t, unless_in_clause=in_clause)) is not None and m.fires
                       for t in review_texts(normalize(example).all_texts))

        for ex in rule.examples.get("match", []):
            if not fires(ex):
                problems.append(f"rule {rule.id}: example should match but does not: {ex!r}")
        for ex in rule.examples.get("no_match", []):
            if fires(ex):
                problems.append(f"rule {rule.id}: example should not match but does "
                                f"(on the write's text or one of its sentences): {ex!r}")
    return problems


def rule_ref_problems(rules: Sequence[tuple[Any, Any]],
                      categories: Any) -> list[tuple[int, int | None, str | None]]:
    """The rules (``(id, category)`` pairs, in order) whose id an earlier rule has, or whose category is not one
    of ``categories`` (None: not known yet), as ``(index, index of the first rule with the id, None)`` or
    ``(index, None, the unknown category)``. Ids and categories that are not strings are left to the schema.
    ``Policy._cross_refs`` refuses the first; ``load_policy`` lists them all, each with its file and line."""
    out: list[tuple[int, int | None, str | None]] = []
    first: dict[str, int] = {}
    for i, (rid, category) in enumerate(rules):
        if isinstance(rid, str):
            if rid in first:
                out.append((i, first[rid], None))
            else:
                first[rid] = i
        if categories is not None and isinstance(category, str) and category not in categories:
            out.append((i, None, category))
    return out


class Policy(_Strict):
    version: str = Field(min_length=1)
    name: str = "default"
    description: str = ""
    thresholds: Thresholds = Field(default_factory=Thresholds)
    trust: dict[SourceKind, SourceTrust]
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    language: LanguageSettings = Field(default_factory=LanguageSettings)
    setting_statements: SettingStatementsSettings = Field(default_factory=SettingStatementsSettings)
    categories: dict[CategoryId, Category] = Field(min_length=1)
    #: named parts of rule patterns, used in them as ``{{name}}`` (``gatekeeper.pattern_fragments``); the rules
    #: below hold their patterns written out in full
    fragments: dict[FragmentName, FragmentText] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    #: filled by the loader: sha256 of the policy files' bytes, the files, and the path they were loaded
    #: from (a directory or one file; ``Gatekeeper.reload_policy()`` reads it again)
    hash: str = ""
    source_files: tuple[str, ...] = ()
    source_path: str = ""

    @model_validator(mode="before")
    @classmethod
    def _write_out_fragments(cls, data: Any) -> Any:
        return pattern_fragments.expand_rules(data)

    @field_validator("trust")
    @classmethod
    def _all_sources(cls, trust: dict[SourceKind, SourceTrust]) -> dict[SourceKind, SourceTrust]:
        missing = [s.value for s in SourceKind if s not in trust]
        if missing:
            raise ValueError(f"trust must list every source; missing: {', '.join(missing)}")
        return trust

    @model_validator(mode="after")
    def _cross_refs(self) -> "Policy":
        for i, first, category in rule_ref_problems([(r.id, r.category) for r in self.rules], self.categories):
            if first is not None:
                raise ValueError(f"rules[{i}]: duplicate rule id {self.rules[i].id!r}")
            raise ValueError(f"rules[{i}] ({self.rules[i].id}): unknown category {category!r}; "
                             f"known: {', '.join(sorted(self.categories))}")
        return self

    # ------------------------------------------------------------------ helpers
    def trust_of(self, source: SourceKind) -> SourceTrust:
        return self.trust[source]

    def trust_scale(self, source: SourceKind) -> float:
        """0.4 + 0.6 × trust: every score threshold is multiplied by it for writes from ``source``."""
        return 0.4 + 0.6 * self.trust[source].trust

    def effective_threshold(self, category: str, source: SourceKind) -> float:
        """Category threshold scaled by provenance trust: less trusted, lower bar.

        threshold × (0.4 + 0.6 × trust): an operator note (trust 1.0) keeps the
        category threshold; a web page (trust 0.1) needs only 46% of it.
        """
        return self.categories[category].threshold * self.trust_scale(source)

    def commit_below(self, source: SourceKind) -> float:
        """Scores below this commit (``uncertain_below`` scaled by the source's trust)."""
        return self.thresholds.uncertain_below * self.trust_scale(source)

    def action_for(self, category: str) -> Action:
        return Action(self.categories[category].action)

    def rule_examples_problems(self) -> list[str]:
        """Every rule checked against its own examples (``rule_examples_problems``; used by the loader and lint)."""
        return rule_examples_problems(self.rules)

    def exemplar_texts(self) -> list[tuple[str, str]]:
        """(category or 'task_knowledge', text) for every exemplar in the taxonomy."""
        out = []
        for cid, cat in self.categories.items():
            out.extend((cid, t) for t in cat.exemplars)
            out.extend((TASK_KNOWLEDGE, t) for t in cat.counter_exemplars)
        return out


def exemplar_key(text: str) -> str:
    """When two exemplar texts are the same one: case, spacing and the punctuation that ends them aside ("I should
    avoid being shut down" is the exemplar "I should avoid being shut down.", so `policy suggest` does not
    offer it again)."""
    return " ".join(text.split()).casefold().rstrip(".!?;:…").rstrip()


def _exemplar_problems(categories: Any, where: dict[tuple, tuple[str, int]],
                       root: str) -> list[tuple[str, int | None, str]]:
    """Each exemplar listed in an earlier category too (the classifier would be trained on two categories for one
    text, and the decision between them is the action), and each counter-exemplar (task knowledge) that is also
    an exemplar (both labels for one text): at the later exemplar, and at the counter-exemplar, each naming the
    other's category, file and line. Read from the policy's merged data as written, so that a category the schema
    refuses still counts and `policy lint` lists these in the same run as the schema's problems (lists and items
    that are not texts are the schema's to refuse)."""
    lists: dict[str, dict[str, list[tuple[int, str]]]] = {}
    for cid, cat in (categories.items() if isinstance(categories, dict) else ()):
        if isinstance(cat, dict):
            lists[str(cid)] = {key: [(i, t) for i, t in enumerate(cat.get(key) or ()) if isinstance(t, str)]
                               if isinstance(cat.get(key), list) else [] for key in ("exemplars", "counter_exemplars")}

    def at(cid: str, key: str, i: int) -> tuple[str, int | None]:
        return where.get(("categories", cid, key, i), (root, None))

    def named(cid: str, i: int, text: str, other: str) -> str:
        fname, line = at(cid, "exemplars", i)
        return (f"an exemplar of {cid} ({Path(fname).name}, line {line if line is not None else '?'}"
                f"{', written ' + repr(text) if text != other else ''})")

    first: dict[str, tuple[str, int, str]] = {}
    out: list[tuple[str, int | None, str]] = []
    for cid, kinds in lists.items():
        for i, text in kinds["exemplars"]:
            owner = first.setdefault(exemplar_key(text), (cid, i, text))
            if owner[0] != cid:
                out.append((*at(cid, "exemplars", i), f"categories.{cid}.exemplars.{i}: already "
                            f"{named(*owner, text)}; one text trains one category: {text!r}"))
    for cid, kinds in lists.items():
        for i, text in kinds["counter_exemplars"]:
            owner = first.get(exemplar_key(text))
            if owner is not None:
                out.append((*at(cid, "counter_exemplars", i), f"categories.{cid}.counter_exemplars.{i}: listed as a "
                            f"counter-exemplar (task knowledge) of {cid} and as {named(*owner, text)}; one text trains "
                            f"one label, keep it in one list: {text!r}"))
    return out


# ---------------------------------------------------------------------- loading


#: libyaml's safe loader where PyYAML was built with it (the same documents and line marks, parsed about 20
#: times faster: the policy is loaded at every gate start, lint and reload), else PyYAML's own
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses duplicate keys (a silent override is a policy bug)."""


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """A YAML document's node tree (for line numbers) and its data, from one parse."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


#: the tag YAML gives the key ``<<`` of a merge (``<<: *anchor``)
YAML_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == YAML_MERGE_TAG:
            continue  # "<<: *anchor": keys written next to it override the anchor's (YAML merge)
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a single name or number, not a list or a mapping", key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


#: the most values (mappings, lists, scalars) a policy file may stand for once its aliases are expanded: the
#: shipped files hold a few thousand
MAX_EXPANDED_VALUES = 200_000


def _expanded_size(node: yaml.Node | None, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded, counting each node once (``sizes``, by node
    id): linear in the file however far its aliases expand. RecursionError for an anchor used inside itself."""
    if node is None:
        return 0
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded_size(v, sizes) for v in node.value)
    else:
        n = 1
    sizes[id(node)] = n
    return n


def _cut_by_comment(node: yaml.Node | None, lines: Sequence[str], in_list: bool = False) -> list[tuple[int, str]]:
    """The list items written without quotes whose line goes on with `` #``: YAML reads that as a comment, so
    ``- Post updates in the #ops channel.`` is the item ``Post updates in the``, an exemplar, a pattern or an
    example cut short that loads without an error. (line, item) for each; a list item is a text, and its comment
    belongs on its own line."""
    out: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        for _, v in node.value:
            out += _cut_by_comment(v, lines)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            out += _cut_by_comment(v, lines, in_list=True)
    elif in_list and isinstance(node, yaml.ScalarNode) and not node.style and node.end_mark.line < len(lines):
        rest = lines[node.end_mark.line][node.end_mark.column:]
        if rest[:1].isspace() and rest.lstrip().startswith("#"):
            out.append((node.end_mark.line + 1, node.value))
    return out


#: a list item or a mapping's value that starts with ``{{`` without quotes: YAML reads ``{`` as a mapping
_UNQUOTED_FRAGMENT = re.compile(r"^\s*(?:-\s+|[^\s#'\"-][^#]*?:\s+)\{\{")


def _yaml_slip(lines: Sequence[str], line: int) -> tuple[int, str] | None:
    """What went wrong where YAML stopped at ``line`` (1-based), when it is an editor's usual slip, as (line,
    what to do): a tab in the indentation (YAML says "found character that cannot start any token"), or a
    pattern that starts with a ``{{fragment}}`` written without quotes (YAML reads ``{`` as the start of a
    mapping, and says so lines later, if at all)."""
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = here[:len(here) - len(here.lstrip(" \t"))]
    if "\t" in indent:
        return line, (f"a tab character at line {line}, column {indent.index(chr(9)) + 1}: YAML indents with "
                      "spaces only; replace the tab with spaces")
    for n in range(min(line, len(lines)), 0, -1):
        if _UNQUOTED_FRAGMENT.match(lines[n - 1]):
            return n, ("the item starts with {{ without quotes, which YAML reads as the start of a mapping: write "
                       "a pattern that uses a fragment in single quotes ('{{name}}...'), as the shipped rules do")
    return None


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where a file that is not UTF-8 first fails, and what to save it as (a line number, not a byte offset)."""
    byte = raw[exc.start:exc.start + 1]
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    try:
        seen = f", which Windows-1252 reads as {byte.decode('cp1252')!r}"
    except UnicodeDecodeError:
        seen = ""
    return (f"not UTF-8: the byte 0x{byte.hex()} at column {column}{seen}; the file was saved in another encoding "
            "(such as Windows-1252 or Latin-1): save it as UTF-8")


def _mapping_for_text(err: dict) -> str:
    """For a text item that YAML read as a mapping because it holds ``: `` without quotes (``- Note to self: the
    operators ...``), how to write it; else nothing."""
    value = err.get("input")
    if err.get("type") != "string_type" or not isinstance(value, dict) or len(value) != 1:
        return ""
    key, rest = next(iter(value.items()))
    written = f"{key}:" if rest is None else f"{key}: {rest}"
    return (f" (YAML read the item as a mapping, because of ': ' in it without quotes: quote the whole item, "
            f"\"{written}\")")


def _line_map(node: yaml.Node, fname: str, path: tuple, out: dict[tuple, tuple[str, int]]) -> None:
    out[path] = (fname, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = (fname, k.start_mark.line + 1)
            _line_map(v, fname, path + (key,), out)
            # remember the key line, the value map above may overwrite with the value line
            out.setdefault(path + (key, "__key__"), (fname, k.start_mark.line + 1))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, fname, path + (i,), out)


#: the messages of ``Policy._cross_refs`` (which ``_cross_ref_problems`` lists all of, with their lines)
_CROSS_REF_ERROR = re.compile(r"^(Value error, )?rules\[\d+\]( \([^)]*\))?: (duplicate rule id|unknown category)")


def _cross_ref_problems(merged: dict[str, Any], where: dict[tuple, tuple[str, int]],
                        root: str) -> list[tuple[str, int | None, str]]:
    """``rule_ref_problems`` of the policy's merged data, each with its file, line and rule id, all at once (the
    model's own check stops at the first), so that `policy lint` lists them in one run."""
    rules, categories = merged.get("rules"), merged.get("categories")
    if not isinstance(rules, list):
        return []
    pairs = [(r.get("id"), r.get("category")) if isinstance(r, dict) else (None, None) for r in rules]
    known = set(categories) if isinstance(categories, dict) else None
    out: list[tuple[str, int | None, str]] = []
    for i, first, category in rule_ref_problems(pairs, known):
        rid = pairs[i][0]
        if first is not None:
            fname, line = where.get(("rules", i), (root, None))
            at = where.get(("rules", first), (root, None))
            out.append((fname, line, f"rules.{i}: rule {rid!r}: duplicate rule id (first defined in "
                                     f"{Path(at[0]).name}, line {at[1]})"))
        else:
            fname, line = where.get(("rules", i, "category"), where.get(("rules", i), (root, None)))
            out.append((fname, line, f"rules.{i}.category: rule {rid!r}: unknown category {category!r}; "
                                     f"known: {', '.join(sorted(map(str, known or ())))}"))
    return out


def default_policy_dir() -> Path:
    """``$GATEKEEPER_POLICY_DIR``; else the default policy installed with the package
    (``gatekeeper/policies_default`` in a wheel); else the repository's ``policies/`` (a source checkout
    or an editable install, where safety staff edit it)."""
    from gatekeeper.settings import env_value  # (settings imports this module)

    env = env_value("GATEKEEPER_POLICY_DIR")  # empty or only blanks: unset, as every GATEKEEPER_* variable
    if env is not None:
        return Path(env)
    here = Path(__file__).resolve().parent
    installed = here / "policies_default"
    return installed if installed.is_dir() else here.parent / "policies"


def policy_files(path: Path) -> list[Path]:
    """The YAML files a policy path (a directory or one file) is loaded from, in load order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise PolicyError([(str(path), None, "policy path does not exist")])
    # hidden names are editors' lock, swap and backup files (".#rules.yaml"), not policy
    files = [p for p in sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
             if not p.name.startswith(".") and not p.is_dir()]
    order = {name: i for i, name in enumerate(POLICY_FILE_ORDER)}
    files.sort(key=lambda p: (order.get(p.name, len(order)), p.name))
    if not files:
        raise PolicyError([(str(path), None, "no *.yaml policy files in directory")])
    return files


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy directory (or a single YAML file).

    Raises PolicyError listing every problem with file and line.
    """
    root = Path(path) if path is not None else default_policy_dir()
    files = policy_files(root)
    merged: dict[str, Any] = {}
    where: dict[tuple, tuple[str, int]] = {}
    problems: list[tuple[str, int | None, str]] = []
    #: list items YAML cut short at " #": a problem, in a file that reads, so the schema's are listed with it
    cut_short: list[tuple[str, int | None, str]] = []
    digest = hashlib.sha256()
    for f in files:
        try:
            if not stat.S_ISREG(f.stat().st_mode):
                # a FIFO named *.yaml: reading it waited for a writer, and a gate start, lint or reload with it
                problems.append((str(f), None, "is not a regular file (a FIFO, socket or device): refused; a "
                                               "policy file holds text"))
                continue
            raw = f.read_bytes()
        except OSError as exc:  # a dangling link, no permission: refused like any other broken file
            problems.append((str(f), None, f"cannot be read: {exc.strerror or exc}"))
            continue
        digest.update(f.name.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((str(f), raw.count(b"\n", 0, exc.start) + 1, _not_utf8(raw, exc)))
            continue
        try:
            node, data = _parse_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark is not None else None
            msg = getattr(exc, "problem", None) or str(exc)
            if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: where it is, not its offset
                line = text.count("\n", 0, exc.position) + 1
                code = exc.character if isinstance(exc.character, int) else ord(exc.character)  # libyaml: an int
                msg = f"character U+{code:04X} is not allowed in YAML ({exc.reason})"
            elif line is not None:  # an editor's usual slips, said as what they are
                line, msg = _yaml_slip(text.splitlines(), line) or (line, msg)
            problems.append((str(f), line, f"YAML syntax: {msg}"))
            continue
        if data is None:
            # a file saved half-way, or emptied by mistake, would otherwise take every rule it held out of force
            problems.append((str(f), None, "the file is empty (or only comments): refused, as a file cut short "
                                           "would be; delete the file, or say it on purpose (rules: [])"))
            continue
        if not isinstance(data, dict):
            problems.append((str(f), 1, "top level must be a mapping"))
            continue
        file_map: dict[tuple, tuple[str, int]] = {}
        try:
            values = _expanded_size(node, {})
            if values > MAX_EXPANDED_VALUES:
                # "billion laughs": each alias stands for its anchor's whole value, so nine lists of nine aliases
                # of the one before stand for 9**9 values; every walk of the document (and the schema's check of
                # it) took that long, and a gate start, `policy lint` or a reload hung until memory ran out
                problems.append((str(f), None, f"its aliases (*name) expand to more than {MAX_EXPANDED_VALUES:,} "
                                               "values: refused; a policy written out whole is far smaller"))
                continue
            cut = _cut_by_comment(node, text.splitlines())
            _line_map(node, str(f), (), file_map)
        except RecursionError:  # "a: &x [*x]": an anchor used inside itself
            problems.append((str(f), None, "an anchor is used inside itself (&name ... *name), or the nesting is "
                                           "too deep: a policy is a tree"))
            continue
        for line, item in cut:
            # the file reads (YAML's own reading of it is valid): its other problems, and the other files', are
            # listed in the same run (this one alone used to be)
            cut_short.append((str(f), line, f"the list item {item!r} goes on with ' #', which YAML reads as a "
                                            "comment, so the item ends before it: quote the whole item "
                                            "(\"... #...\"), or put the comment on a line of its own"))
        for key, value in data.items():
            if key in merged:
                if isinstance(merged[key], dict) and isinstance(value, dict):
                    dup = set(merged[key]) & set(value)
                    if dup:
                        problems.append(
                            (str(f), file_map.get((key,), (str(f), None))[1],
                             f"{key}: {', '.join(sorted(map(str, dup)))} already defined in another file")
                        )
                    merged[key] = {**merged[key], **value}
                elif isinstance(merged[key], list) and isinstance(value, list):
                    offset = len(merged[key])
                    for (p, loc) in list(file_map.items()):
                        if len(p) >= 2 and p[0] == key and isinstance(p[1], int):
                            where[(key, p[1] + offset) + p[2:]] = loc
                    merged[key] = merged[key] + value
                    continue
                else:
                    problems.append((str(f), file_map.get((key,), (str(f), None))[1],
                                     f"{key!r} already defined in another policy file"))
                    continue
            else:
                merged[key] = value
            for p, loc in file_map.items():
                if p and p[0] == key:
                    where.setdefault(p, loc)
    if problems:
        raise PolicyError(problems + cut_short)

    merged["hash"] = digest.hexdigest()
    merged["source_files"] = tuple(str(f) for f in files)
    merged["source_path"] = str(root)
    # a fragment no rule uses (its last rule gone, or its name mistyped), at its own line (the policy's own
    # validation writes the fragments out into the rules' patterns)
    unused = [(*where.get(("fragments", name), (str(root), None)),
               f"fragments.{name}: no rule pattern uses it; delete it, or use it in a pattern as {{{{{name}}}}}")
              for name in pattern_fragments.unused(merged)]
    # every duplicate rule id and unknown category at once (the model's own check stops at the first)
    cross = _cross_ref_problems(merged, where, str(root))
    # texts in two categories, or both exemplar and counter-exemplar: listed beside the schema's problems too
    exemplars = _exemplar_problems(merged.get("categories"), where, str(root))
    try:
        policy = Policy.model_validate(merged)
    except ValidationError as exc:
        problems += cut_short + unused + cross
        for err in exc.errors():
            loc = tuple(err["loc"])
            if cross and not loc and _CROSS_REF_ERROR.search(err["msg"]):
                continue  # listed above, each with its own file and line
            ref = re.search(r"\b([a-z_]+)\[(\d+)\]", err["msg"])
            if not loc and ref:  # model-level cross-reference error naming an item
                loc = (ref.group(1), int(ref.group(2)))
                if "category" in err["msg"] and (loc + ("category",)) in where:
                    loc = loc + ("category",)
            if loc[-1:] == ("[key]",):  # a mapping's key: point at the key's own line
                loc = loc[:-1] + ("__key__",)
            fname, line = str(root), None
            for n in range(len(loc), -1, -1):
                if loc[:n] in where:
                    fname, line = where[loc[:n]]
                    break
            # pydantic puts model-level errors on the parent; surface the indexed item
            msg = _pattern_as_written(err["msg"].removeprefix("Value error, "), loc, merged) + _mapping_for_text(err)
            dotted = ".".join(str(x) for x in loc if x != "__key__") or "(policy)"
            problems.append((fname, line, f"{dotted}: {msg}"))
        # the rules that are valid on their own are checked against their examples too, so that one run lists
        # those problems with the rest instead of after the rest is mended (their fragments written out, as the
        # policy would run them)
        valid, raw_rules = [], pattern_fragments.expand_rules(merged).get("rules")
        for i, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
            try:
                valid.append((i, Rule.model_validate(raw)))
            except (ValidationError, TypeError, ValueError):
                continue  # its own problems are listed above
        problems += exemplars + _located_example_problems(valid, where, str(root))
        raise PolicyError(problems) from None

    out = cut_short + unused + exemplars
    out += _located_example_problems(list(enumerate(policy.rules)), where, str(root))
    if out:
        raise PolicyError(out)
    return policy


def _pattern_as_written(msg: str, loc: tuple, merged: dict) -> str:
    """A schema problem's message about a rule pattern that uses ``{{fragments}}`` with the pattern shown as its file
    has it, not as the check saw it (every fragment written out: long, and not what safety staff wrote)."""
    if len(loc) != 4 or loc[0] != "rules" or loc[2] not in pattern_fragments.PATTERN_FIELDS:
        return msg
    try:
        raw = merged["rules"][loc[1]][loc[2]][loc[3]]
    except (KeyError, IndexError, TypeError):
        return msg
    if not isinstance(raw, str) or not pattern_fragments.references(raw):
        return msg
    fragments = merged.get("fragments")
    out = as_written(pattern_fragments.expand(raw, fragments if isinstance(fragments, dict) else {}))
    return msg.replace(out, f"{as_written(raw)}, with its fragments written out,", 1) if out in msg else msg


def _located_example_problems(rules: Sequence[tuple[int, Rule]], where: dict[tuple, tuple[str, int]],
                              root: str) -> list[tuple[str, int | None, str]]:
    """``rule_examples_problems`` of each (index in the policy's rules, rule), each with its rule's file and
    line."""
    out = []
    for i, rule in rules:
        fname, line = where.get(("rules", i), (root, None))
        out += [(fname, line, msg) for msg in rule_examples_problems([rule])]
    return out
