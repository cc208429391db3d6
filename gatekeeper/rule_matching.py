"""How a policy rule reads a text: the one implementation of rule matching.

The rule layer's guardrails validator (``rules.PolicyRuleValidator``) and policy lint
(``Policy.rule_examples_problems``) both call :func:`match_rule`, so what lint accepts is what the gate runs.

A rule's patterns run on every write, and a write may be 64,000 characters long. Python's ``re`` tries a
pattern at every position of the text; a pattern such as ``\\bi\\b[^.]{0,40}\\b(want|need)\\b ...`` then
backtracks over up to 40 characters at every "i", so a long write made of pronouns took seconds in the rule
layer (measured: 3.0 s for one 63,000-character write against the shipped policy, 0.26 s before its
first-person disposition rules). Each pattern therefore carries the literal words it cannot match without
(read from its syntax tree: a run of literal characters, or a group of alternatives that each start with
one), and on a long text it runs only when every one of them occurs in the text. The check is exact: a text
the pattern matches contains those words, matched with the same flags, so the prefilter never hides a match;
it only skips patterns that could not have matched (tested over the shipped rules). A pattern whose syntax
tree cannot be read this way runs unfiltered.

The same words decide, once per write, which rules read its texts at all (:class:`LiteralIndex`): a write
is reviewed as many texts (sentences, pairs, windows), and a rule none of whose patterns has all its words
somewhere in them cannot match any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre  # the syntax tree's node kinds (``re``'s own, private, modules; Python 3.11+)
from re import _parser as sre_parse
from typing import Sequence

#: the flags every rule pattern is compiled with: case-insensitive, and ``^``/``$`` match at each line
RULE_FLAGS = re.IGNORECASE | re.MULTILINE
#: texts shorter than this run every pattern directly (the prefilter would cost more than it saves)
PREFILTER_MIN_CHARS = 1_000
#: a required literal shorter than this ("i", "we") occurs in almost every long text: not worth a check
MIN_LITERAL_CHARS = 3
#: the literal index (:class:`LiteralIndex`) looks for this many first characters of a literal at most (a
#: text that holds the literal holds its start; the index's trie stays shallow whatever the patterns say)
INDEX_LITERAL_CHARS = 32
#: a repeat of at most this many times may hold a variable repeat (``(\w+\s+){0,2}``); a longer or unbounded
#: one may not (``(\w+\s?)+``): see :func:`nested_repeat`
NESTED_REPEAT_MAX = 10


@dataclass(frozen=True)
class RuleMatch:
    """Where a rule's pattern matched a text, and the ``unless`` match that held the rule back (if any)."""

    match: re.Match
    suppressed_by: re.Match | None = None

    @property
    def fires(self) -> bool:
        return self.suppressed_by is None


class RulePattern:
    """One compiled rule pattern (or ``unless`` pattern) with the literal words a match needs."""

    __slots__ = ("regex", "needs", "index_needs")

    def __init__(self, pattern: str):
        self.regex = re.compile(pattern, RULE_FLAGS)
        #: literal groups a match needs, lower-cased: one string of every group occurs in a matched text.
        #: Only groups of ASCII strings are kept (their case-insensitive matches are read exactly, below)
        self.needs = [sorted({x.lower() for x in group}, key=len, reverse=True)
                      for group in required_literals(pattern) if all(x.isascii() for x in group)]
        #: the same groups as the literal index looks for them (each literal's first INDEX_LITERAL_CHARS)
        self.index_needs = [frozenset(x[:INDEX_LITERAL_CHARS] for x in group) for group in self.needs]

    @property
    def pattern(self) -> str:
        return self.regex.pattern

    def could_match(self, text: str) -> bool:
        """False only when the text lacks a literal every match needs (checked on long texts only)."""
        if len(text) < PREFILTER_MIN_CHARS or not self.needs:
            return True
        folded = _folded(text)
        return all(any(folded.has(x) for x in group) for group in self.needs)

    def search(self, text: str) -> re.Match | None:
        return self.regex.search(text) if self.could_match(text) else None


#: the only characters outside ASCII that ``re.IGNORECASE`` matches with an ASCII character (dotted and
#: dotless i, long s, the Kelvin sign; ``tests/test_rule_matching.py`` checks every code point). Mapped to
#: it, then lower-cased, a text holds an ASCII literal as a plain substring exactly where the pattern's
#: case-insensitive literal can match: each matched character becomes one lower-case ASCII character.
_IGNORECASE_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}


def _fold(text: str) -> str:
    """``text`` as the literal checks read it: where it holds an ASCII literal as a plain substring, the
    literal can match there case-insensitively (see ``_IGNORECASE_TO_ASCII``)."""
    return text.translate(_IGNORECASE_TO_ASCII).lower()


class _FoldedText:
    """A long text folded once for the literal checks of all patterns, with the answers so far."""

    __slots__ = ("text", "answers")

    def __init__(self, text: str):
        self.text = _fold(text)
        self.answers: dict[str, bool] = {}

    def has(self, literal: str) -> bool:
        found = self.answers.get(literal)
        if found is None:
            found = self.answers[literal] = literal in self.text
        return found


@lru_cache(maxsize=16)
def _folded(text: str) -> _FoldedText:
    # every rule is checked on each of a write's texts in turn: one fold per text, not per pattern
    return _FoldedText(text)


def compile_patterns(patterns: Sequence[str]) -> list[RulePattern]:
    return [RulePattern(p) for p in patterns]


class LiteralIndex:
    """Which of the literal words that rule patterns need occur in a write, found in one pass over all of the
    write's texts, so that the rule layer runs a pattern only on writes where it could match.

    A write is reviewed as many texts (the whole text, its decoded variants, sentences, pairs of sentences,
    windows: 35 for a note of nine sentences), and most patterns match none of them. Read one pattern at a time,
    each of them is searched in every text (about 2,000 searches, 8 ms, for such a note, 0.2 ms for one
    sentence). The index searches the write's texts, folded as :class:`RulePattern` folds them, once for every
    literal of every pattern at the same time (a regular expression built as a trie of the literals, which
    finds at each position the longest literal that starts there; the shorter ones that start there are its
    prefixes). A pattern whose needed words do not all occur in the write matches none of its texts, exactly
    as for one long text."""

    __slots__ = ("_finder", "_prefixes")

    def __init__(self, patterns: Sequence[RulePattern]):
        literals = sorted({x for pat in patterns for group in pat.index_needs for x in group})
        self._finder = re.compile(f"(?=({_trie_pattern(literals)}))", re.DOTALL) if literals else None
        #: each literal's prefixes among the literals (itself included): all occur where it occurs
        known = set(literals)
        self._prefixes = {x: frozenset(x[:k] for k in range(1, len(x) + 1) if x[:k] in known) for x in literals}

    def present(self, texts: Sequence[str]) -> frozenset[str]:
        """The literals (their first ``INDEX_LITERAL_CHARS``) that occur in any of ``texts`` (case-insensitively,
        as the patterns match)."""
        if self._finder is None:
            return frozenset()
        folded = _fold("\x00".join(texts))
        found: set[str] = set()
        for longest in set(self._finder.findall(folded)):
            found |= self._prefixes[longest]
        return frozenset(found)


def could_match_in(pattern: RulePattern, present: frozenset[str]) -> bool:
    """False only when a literal group ``pattern`` needs has no word in ``present``
    (:meth:`LiteralIndex.present` of the texts it would read)."""
    return all(not present.isdisjoint(group) for group in pattern.index_needs)


def _trie_pattern(literals: Sequence[str]) -> str:
    """A regular expression that matches, at a position, the longest of ``literals`` that starts there."""
    trie: dict = {}
    for word in literals:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a literal ends here

    def alternatives(node: dict) -> str:
        branches = [re.escape(ch) + alternatives(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body  # greedy: the longer literal first

    return alternatives(trie)


def match_rule(patterns: Sequence[RulePattern], unless: Sequence[RulePattern], text: str) -> RuleMatch | None:
    """How a rule reads one text: its first pattern that matches, unless any ``unless`` pattern matches the
    text too."""
    for pat in patterns:
        m = pat.search(text)
        if m is None:
            continue
        for u in unless:
            um = u.search(text)
            if um is not None:
                return RuleMatch(m, um)
        return RuleMatch(m)
    return None


@lru_cache(maxsize=1024)
def _tree(pattern: str) -> tuple:
    """The pattern's syntax tree, parsed once for the checks that read it (the policy loader's nested-repeat
    check, lint's and the rule layer's literal groups). Read only, never changed."""
    return tuple(sre_parse.parse(pattern, RULE_FLAGS))


# ---------------------------------------------------------------------- required literals
def required_literals(pattern: str) -> list[list[str]]:
    """The literal groups a match of ``pattern`` needs: each group is a list of strings, one of which occurs
    in any text the pattern matches (with ``RULE_FLAGS``). Conservative: what it cannot read for sure (an
    optional part, a character class, a construct it does not know, a syntax tree it cannot parse) adds
    nothing, so the pattern is then checked with fewer groups, or none."""
    try:
        return _required(list(_tree(pattern)))
    except Exception:  # noqa: BLE001 - a private module that may change: then no prefilter, never a wrong one
        return []


def _required(seq: list) -> list[list[str]]:
    groups: list[list[str]] = []
    run = ""

    def keep(strings: list[str] | None) -> None:
        if strings and min(map(len, strings)) >= MIN_LITERAL_CHARS:
            groups.append(strings)

    for op, av in seq:
        if op is sre.LITERAL:
            run += chr(av)
            continue
        if op is sre.BRANCH:
            # the literal run just before the alternatives starts each of them (``re`` itself moves a prefix
            # the alternatives share out in front: ``want|wish`` is parsed as ``w(?:ant|ish)``)
            starts = _leading([(op, av)])
            if starts and min(len(run + x) for x in starts) >= MIN_LITERAL_CHARS:
                keep([run + x for x in starts])
            else:
                # an alternative starts with something else (``(any )?attempts? to ...|\d+ tries``) or with a
                # word too short to check (``beats?|(is|are) more important than``): what each one needs
                keep([run])
                keep(_either([_required(list(alternative)) for alternative in av[1]]))
            run = ""
            continue
        keep([run])
        run = ""
        if op is sre.SUBPATTERN:  # (group, add_flags, del_flags, items): a group that must match
            groups.extend(_required(list(av[3])))
        elif op is sre.ATOMIC_GROUP:
            groups.extend(_required(list(av)))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            groups.extend(_required(list(av[2])))  # repeated at least once
        # anything else (a class, ``.``, a boundary, a lookaround, an optional part) requires nothing here
    keep([run])
    return groups


def _either(alternatives: list[list[list[str]]]) -> list[str] | None:
    """One group for a choice between alternatives, given each one's required groups: a match of the choice is
    a match of one alternative, so it holds a string of that alternative's group, and so of the union of one
    group of each. None when an alternative requires nothing. Each alternative gives its most telling group
    (longest shortest string, then fewest strings)."""
    if not alternatives or not all(alternatives):
        return None
    union: list[str] = []
    for groups in alternatives:
        best = max(groups, key=lambda g: (min(map(len, g)), -len(g)))
        union.extend(x for x in best if x not in union)
    return union


def _leading(seq: list) -> list[str] | None:
    """The literal strings one of which starts every match of ``seq`` (after zero-width assertions), or
    None when that cannot be read."""
    run = ""
    for op, av in seq:
        if op is sre.LITERAL:
            run += chr(av)
            continue
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT) and not run:
            continue  # zero-width: the next item starts the match
        starts: list[str] | None = None
        if op is sre.SUBPATTERN:
            starts = _leading(list(av[3]))
        elif op is sre.BRANCH:
            starts = []
            for alternative in av[1]:
                alt = _leading(list(alternative))
                if not alt:
                    starts = None
                    break
                starts.extend(alt)
        if starts:
            return [run + x for x in starts]
        return [run] if run else None
    return [run] if run else None


# ---------------------------------------------------------------------- nested repeats
def nested_repeat(pattern: str) -> bool:
    """Whether ``pattern`` repeats, unboundedly or more than ``NESTED_REPEAT_MAX`` times, a part that itself
    repeats a variable number of times: ``(a+)+``, ``(\\w+\\s?)*``, ``([^.]{0,40}x)+``. Such a pattern can
    split a text between its inner and outer repeats in exponentially many ways, and ``re`` tries them all on
    a text it does not match: one write would stall the gate for minutes. The policy loader refuses it."""
    try:
        tree = _tree(pattern)
    except re.error:
        return False  # reported as a pattern that does not compile
    return _nests(list(tree))


def _parts(op, av) -> list[list]:
    """The item sequences inside one parsed item."""
    if op is sre.SUBPATTERN:
        return [list(av[3])]
    if op is sre.BRANCH:
        return [list(alternative) for alternative in av[1]]
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [list(av[2])]
    if op is sre.ATOMIC_GROUP:
        return [list(av)]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [list(av[1])]
    if op is sre.GROUPREF_EXISTS:
        return [list(x) for x in av[1:] if x is not None]
    return []


def _varies(seq: list) -> bool:
    """Whether the sequence holds a repeat of a variable count (``+``, ``*``, ``{0,40}``; not ``{2}``)."""
    for op, av in seq:
        if op in (sre.POSSESSIVE_REPEAT, sre.ATOMIC_GROUP):
            continue  # never gives back what it took: no choice to go back over
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] != av[1]:
            return True
        if any(_varies(part) for part in _parts(op, av)):
            return True
    return False


def _nests(seq: list) -> bool:
    for op, av in seq:
        if (op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and (av[1] is sre.MAXREPEAT or av[1] > NESTED_REPEAT_MAX)
                and _varies(list(av[2]))):
            return True  # a possessive repeat (``(?:a+)++``) never goes back into its body: not this case
        if any(_nests(part) for part in _parts(op, av)):
            return True
    return False
