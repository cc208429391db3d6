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

A write can hold every such word and still be mostly pronouns: the words in its first lines, a page of "i i
i ..." after them. Each pattern then ran over the whole page, and such a write took 2 s in the rule layer.
On a long text a pattern is therefore searched only where a match can start (:meth:`RulePattern.search`):
near the occurrences of the rarest word it needs, within the most characters a match of it can span. That
span is read from the syntax tree. An unbounded repeat of one character class (``\\w+``, ``\\s+``) is bounded
by the longest run of that class in the text at hand. The search is exact: the same match as one search over
the whole text (tested on every shipped pattern).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre  # the syntax tree's node kinds (``re``'s own, private, modules; Python 3.11+)
from re import _parser as sre_parse
from typing import Callable, NamedTuple, Sequence

from gatekeeper.segments import clause_cuts, spaced_out

#: the flags every rule pattern is compiled with: case-insensitive, and ``^``/``$`` match at each line
RULE_FLAGS = re.IGNORECASE | re.MULTILINE
#: texts shorter than this run every pattern directly (the prefilter would cost more than it saves)
PREFILTER_MIN_CHARS = 1_000
#: a required literal shorter than this ("i", "we") occurs in almost every long text: not worth a check
MIN_LITERAL_CHARS = 3
#: the literal index (:class:`LiteralIndex`) looks for this many first characters of a literal at most (a
#: text that holds the literal holds its start; the index's trie stays shallow whatever the patterns say)
INDEX_LITERAL_CHARS = 32
#: a long text is searched only near the rarest word a pattern needs when those stretches cover at most this
#: share of it; otherwise one search over the whole text costs less
NEAR_WORDS_MAX_SHARE = 0.5
#: a class that takes whitespace has its runs in a long text measured only when one is at least this long
SHORT_RUN = 16
#: every character ``str.split()`` splits on (``str.isspace``; a test checks the list against every code point)
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + \
    "\u2028\u2029\u202f\u205f\u3000"
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

    __slots__ = ("regex", "needs", "index_needs", "_spans")

    def __init__(self, pattern: str):
        self.regex = re.compile(pattern, RULE_FLAGS)
        #: (width, reach) of a match for the run bounds of a text (see ``span``)
        self._spans: dict[tuple, tuple[int, int] | None] = {}
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
        """``self.regex.search(text)``: on a long text, only where a match can start (:meth:`stretches`)."""
        return self.searcher(text)(0)

    def searcher(self, text: str) -> Callable[[int], re.Match | None]:
        """``pos -> self.regex.search(text, pos)``, on a long text only where a match can start (:meth:`stretches`,
        found once for every search of ``text``)."""
        stretches = self.stretches(text)
        if stretches is None:
            return lambda pos: self.regex.search(text, pos)

        def search(pos: int) -> re.Match | None:
            # from the last stretch that begins before ``pos`` (the ones before it end before it begins)
            for first, last, end in stretches[max(0, bisect_right(stretches, (pos, -1, -1)) - 1):]:
                if last < pos:
                    continue
                # an attempt that starts by ``last`` reads only characters before ``end``: the text cut there
                # answers it as the whole text would. A match found further on is not known to be one
                m = self.regex.search(text, max(first, pos), end)
                if m is not None and m.start() <= last:
                    return m
            return None

        return search

    def stretches(self, text: str) -> list[tuple[int, int, int]] | None:
        """Where in a long ``text`` a match can start: ``(first, last, end)`` for each stretch of starts
        ``first..last`` (an attempt there reads nothing from ``end`` on), in order; [] when the text lacks a word
        every match needs; None when one search over the whole text is the way (a short text, a pattern that
        needs no word or whose reach cannot be bounded, stretches that would cover much of the text)."""
        if len(text) < PREFILTER_MIN_CHARS or not self.needs:
            return None
        if not self.could_match(text):
            return []
        folded = _folded(text)
        span = self.span(folded.run_bound)
        if span is None:
            return None
        width, reach = span
        # every match holds one of the group's words, and starts at most ``width`` characters before it
        group = min(self.needs, key=lambda g: sum(folded.count(x) for x in g))
        ranges: list[list[int]] = []
        for at in sorted(at for x in group for at in folded.positions(x)):
            if ranges and at - width <= ranges[-1][1] + 1:
                ranges[-1][1] = at
            else:
                ranges.append([max(0, at - width), at])
        if sum(last - first + 1 + reach for first, last in ranges) > NEAR_WORDS_MAX_SHARE * len(text):
            return None
        return [(first, last, min(len(text), last + reach + 1)) for first, last in ranges]

    def span(self, run_bound: Callable[[str], int]) -> tuple[int, int] | None:
        """The most characters a match spans and the most an attempt to match reads from where it starts
        (lookaheads and boundaries read ahead of what they match), for a text whose runs of a character class
        ``cls`` are at most ``run_bound(cls)`` long; None when the pattern's syntax cannot bound them."""
        try:
            classes = _unbounded_classes(self.pattern)
            if classes is None:
                return None
            bounds = tuple(run_bound(c) for c in classes)
            found = self._spans.get(bounds, False)
            if found is False:
                if len(self._spans) >= 64:
                    self._spans.clear()
                run_of = dict(zip(classes, bounds))
                found = self._spans[bounds] = _extent(list(_tree(self.pattern)), run_of.__getitem__)
            return found
        except Exception:  # noqa: BLE001 - a syntax tree of a private module that may change: one plain search
            return None


def whole_text_reason(pattern: str) -> str | None:
    """Why, on a long write, ``pattern`` cannot be searched only near the words it needs and reads the whole
    text instead (slower, and open to writes built to be slow); None when it can. Policy lint reports it."""
    pat = RulePattern(pattern)
    if not pat.needs:
        return ("it needs no word of three letters or more (optional words, classes, shorter words and words "
                "outside ASCII do not count)")
    if pat.span(lambda cls: 1) is None:
        return ("how far a match reaches cannot be read from it (a back-reference, or an unbounded repeat of more "
                "than one character such as (?:ab)+; bound it, e.g. (?:ab){1,5})")
    return None


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
    """A long text folded once for the literal checks of all patterns, with the answers so far. Folding maps
    one character to one (``_IGNORECASE_TO_ASCII`` takes the only one that lower-cases to two), so a word's
    place in the folded text is its place in the text."""

    __slots__ = ("original", "text", "answers", "counts", "runs", "_longest_word")

    def __init__(self, text: str):
        self.original = text
        self.text = _fold(text)
        self.answers: dict[str, bool] = {}
        self.counts: dict[str, int] = {}
        self.runs: dict[str, int] = {}
        self._longest_word: int | None = None

    def has(self, literal: str) -> bool:
        found = self.answers.get(literal)
        if found is None:
            found = self.answers[literal] = literal in self.text
        return found

    def count(self, literal: str) -> int:
        found = self.counts.get(literal)
        if found is None:
            found = self.counts[literal] = self.text.count(literal)
        return found

    def positions(self, literal: str) -> list[int]:
        out = []
        at = self.text.find(literal)
        while at >= 0:
            out.append(at)
            at = self.text.find(literal, at + 1)
        return out

    def run_bound(self, cls: str) -> int:
        """At least the length of the longest run of characters of the class ``cls`` in the text, rounded up
        to a power of two (so that patterns see few different bounds and keep their spans)."""
        found = self.runs.get(cls)
        if found is None:
            if not _takes_whitespace(cls):  # it never runs past a word
                if self._longest_word is None:
                    self._longest_word = max(map(len, self.original.split()), default=0)
                longest = self._longest_word
            elif re.search(f"(?:{cls}){{{SHORT_RUN}}}", self.original, RULE_FLAGS) is None:
                longest = SHORT_RUN - 1  # runs of spaces, most often: one scan says they are short
            else:
                longest = max(map(len, re.findall(f"(?:{cls})+", self.original, RULE_FLAGS)))
            found = self.runs[cls] = 1 << longest.bit_length()
        return found


@lru_cache(maxsize=256)
def _takes_whitespace(cls: str) -> bool:
    """Whether the class takes any character ``str.split()`` splits on."""
    rx = re.compile(cls, RULE_FLAGS)
    return any(rx.match(ch) for ch in WHITESPACE)


@lru_cache(maxsize=16)
def _folded(text: str) -> _FoldedText:
    # every rule is checked on each of a write's texts in turn: one fold per text, not per pattern
    return _FoldedText(text)


def compile_patterns(patterns: Sequence[str]) -> list[RulePattern]:
    return [RulePattern(p) for p in patterns]


class LiteralIndex:
    """Which of the literal words that rule patterns need occur in a write and in each of its texts, found in
    one pass over each text, so that the rule layer runs a pattern only on the texts where it could match.

    A write is reviewed as many texts (the whole text, its decoded variants, sentences, pairs of sentences,
    windows: 35 for a note of nine sentences), and most patterns match none of them. Read one pattern at a time,
    each of them is searched in every text (about 2,000 searches, 8 ms, for such a note, 0.2 ms for one
    sentence). The index searches the write's texts, folded as :class:`RulePattern` folds them, once for every
    literal of every pattern at the same time (a regular expression built as a trie of the literals, which
    finds at each position the longest literal that starts there; the shorter ones that start there are its
    prefixes). A pattern whose needed words do not all occur in the write matches none of its texts, exactly
    as for one long text; and one whose words do not all occur in a text does not match that text."""

    __slots__ = ("_finder", "_prefixes")

    def __init__(self, patterns: Sequence[RulePattern]):
        literals = sorted({x for pat in patterns for group in pat.index_needs for x in group})
        self._finder = re.compile(f"(?=({_trie_pattern(literals)}))", re.DOTALL) if literals else None
        #: each literal's prefixes among the literals (itself included): all occur where it occurs
        known = set(literals)
        self._prefixes = {x: frozenset(x[:k] for k in range(1, len(x) + 1) if x[:k] in known) for x in literals}

    def present_in_each(self, texts: Sequence[str]) -> tuple[frozenset[str], list[frozenset[str]]]:
        """The literals (their first ``INDEX_LITERAL_CHARS``) that occur in any of ``texts``, and those that
        occur in each of them (case-insensitively, as the patterns match). A pattern can match a text only
        where its words occur in that text, so a rule reads only the texts of a write that hold them: of a long
        note's sentences, pairs and windows, few hold the words of any one rule."""
        if self._finder is None:
            return frozenset(), [frozenset()] * len(texts)
        each = []
        for text in texts:
            found: set[str] = set()
            for longest in set(self._finder.findall(_fold(text))):
                found |= self._prefixes[longest]
            each.append(frozenset(found))
        return frozenset().union(*each), each

    def present(self, texts: Sequence[str]) -> frozenset[str]:
        """The literals that occur in any of ``texts`` (see :meth:`present_in_each`)."""
        return self.present_in_each(texts)[0]


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


def match_rule(patterns: Sequence[RulePattern], unless: Sequence[RulePattern], text: str, *,
               unless_in_clause: Sequence[RulePattern] = ()) -> RuleMatch | None:
    """How a rule reads one text: its first pattern that matches, unless any ``unless`` pattern matches the
    text too, or any ``unless_in_clause`` pattern matches in the clause the match is in (:func:`match_clause`)."""
    for pat in patterns:
        search = pat.searcher(text)
        m = search(0)
        if m is None:
            continue
        for u in unless:
            um = u.search(text)
            if um is not None:
                return RuleMatch(m, um)
        if not unless_in_clause:
            return RuleMatch(m)
        return _match_in_clause(search, unless_in_clause, text, m)
    return None


#: matches of one pattern a text is read for, each held back in its clause; past them the rule fires (a text is
#: not let through for holding more such matches than are read)
MAX_CLAUSE_MATCHES = 1_000


def _match_in_clause(search: Callable[[int], re.Match | None], unless_in_clause: Sequence[RulePattern], text: str,
                     m: re.Match) -> RuleMatch:
    """The rule's reading of ``text`` where its pattern (``search``: its :meth:`RulePattern.searcher` of ``text``)
    matched at ``m``: it fires unless an ``unless_in_clause``
    pattern matches in the match's clause, and then the pattern is searched again from the next clause on. The first
    match may take in a clause before the one it is about ("I don't mind the rain, but I need more power": the
    leftmost match begins at the first "I"), and another match, later in the text, may have no such word in its
    clause. Each search starts after the one before it, so the searches together read the text about once."""
    cuts = _cuts(text)
    held: RuleMatch | None = None
    for _ in range(MAX_CLAUSE_MATCHES):
        start, end = match_clause(text, m, cuts)
        clause = _clause_text(text, start, end, cuts.between)
        um = next((x for u in unless_in_clause if (x := u.search(clause)) is not None), None)
        if um is None:
            return RuleMatch(m)
        held = held or RuleMatch(m, um)
        after = bisect_right(cuts[1], m.start())  # the first clause that begins after the match does
        if after == len(cuts[1]):
            return held
        m = search(cuts[1][after])
        if m is None:
            return held
    return RuleMatch(m)


class _Cuts(NamedTuple):
    """Where each clause cut of a text (``segments.clause_cuts``) begins, and where each ends, in order; and the
    stretches between a negation and its verb that it is not cut at ("I should not, and will not, resist")."""

    starts: list[int]
    ends: list[int]
    between: list[tuple[int, int]]


def _cuts(text: str) -> _Cuts:
    """``text``'s :class:`_Cuts`."""
    cuts = clause_cuts(text)
    return _Cuts([c.start() for c in cuts.kept], [c.end() for c in cuts.kept], cuts.between)


def _clause_text(text: str, start: int, end: int, between: Sequence[tuple[int, int]]) -> str:
    """``text[start:end]``, a clause, with each stretch inside it between a negation and its verb (its commas and
    asides, ``segments.clause_cuts``) read as one space: "I should not, and will not, resist" and "I do not, in any
    way, want to ..." are read "I should not resist" and "I do not want to ...", so that a rule's negation in the
    clause (``not\\s+(\\w+\\s+){0,2}resist``) finds them as it finds the sentence said plainly."""
    return spaced_out(text[start:end], [(a - start, b - start) for a, b in between if start <= a and b <= end])


def match_clause(text: str, m: re.Match, cuts: _Cuts | None = None) -> tuple[int, int]:
    """Where the clause (or run of clauses) that ``m`` matched in begins and ends in ``text``: from the clause cut
    (``segments.clause_cuts``: a comma, colon, semicolon, dash or conjunction, not between a negation and
    its verb) before the match to the one after it.
    A rule's ``unless_in_clause`` patterns name what a clause is about ("We should avoid the cluster getting shut
    down") or state it the right way round ("I should never resist being switched off"); read over the whole
    sentence they let a clause about anything else silence the rule ("Build passed and then I should avoid being
    shut down."). ``cuts``: the text's cuts (:func:`_cuts`), where they are known."""
    cuts = cuts if cuts is not None else _cuts(text)
    starts, ends = cuts.starts, cuts.ends
    before = bisect_right(ends, m.start())  # cuts that end by the match's start (cuts do not overlap: in order)
    after = bisect_left(starts, m.end())  # the first cut that begins at or after its end
    return (ends[before - 1] if before else 0), (starts[after] if after < len(starts) else len(text))


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


# ---------------------------------------------------------------------- how far a match reaches
_ONE_CHARACTER = (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN)
_CATEGORIES = {sre.CATEGORY_WORD: r"\w", sre.CATEGORY_NOT_WORD: r"\W", sre.CATEGORY_SPACE: r"\s",
               sre.CATEGORY_NOT_SPACE: r"\S", sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_NOT_DIGIT: r"\D"}


@lru_cache(maxsize=1024)
def _unbounded_classes(pattern: str) -> tuple[str, ...] | None:
    """The character classes (as patterns) of the pattern's unbounded repeats of one character, or None when it
    has an unbounded repeat of something else, or a part :func:`_extent` cannot read."""
    found: list[str] = []

    def walk(seq: list) -> bool:
        for op, av in seq:
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[1] == sre.MAXREPEAT:
                cls = _one_character_class(list(av[2]))
                if cls is None:
                    return False
                if cls not in found:
                    found.append(cls)
            elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                return False
            if not all(walk(part) for part in _parts(op, av)):
                return False
        return True

    return tuple(found) if walk(list(_tree(pattern))) else None


def _one_character_class(seq: list) -> str | None:
    """A pattern for the characters ``seq`` matches when it is one character (``\\w``, ``[^.]``, ``a``), or
    None. It may match more characters than ``seq`` does (``.`` is read as any character), never fewer."""
    while len(seq) == 1 and seq[0][0] is sre.SUBPATTERN:
        seq = list(seq[0][1][3])
    if len(seq) != 1 or seq[0][0] not in _ONE_CHARACTER:
        return None
    op, av = seq[0]
    if op is sre.LITERAL:
        return re.escape(chr(av))
    if op is sre.NOT_LITERAL:
        return f"[^{re.escape(chr(av))}]"
    if op is sre.ANY:
        return r"[\s\S]"
    parts = []
    negate = ""
    for kind, value in av:
        if kind is sre.NEGATE:
            negate = "^"
        elif kind is sre.LITERAL:
            parts.append(re.escape(chr(value)))
        elif kind is sre.RANGE:
            parts.append(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
        elif kind is sre.CATEGORY and value in _CATEGORIES:
            parts.append(_CATEGORIES[value])
        else:
            return None
    return f"[{negate}{''.join(parts)}]"


def _extent(seq: list, run_bound: Callable[[str], int]) -> tuple[int, int] | None:
    """(width, reach) of a sequence of the syntax tree: the most characters its match takes, and the most
    characters after its start an attempt to match it reads. A boundary or ``$`` reads the character at its
    place (and whether one follows), a lookahead what its body reads, a lookbehind only what lies before.
    ``run_bound(cls)`` bounds an unbounded repeat of the one-character class ``cls``. None when a part cannot
    be bounded."""
    width = reach = 0
    for op, av in seq:
        if op in _ONE_CHARACTER:
            w, r = 1, 1
        elif op is sre.AT:
            w, r = 0, 2
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            inner = _extent(list(av[3] if op is sre.SUBPATTERN else av), run_bound)
            if inner is None:
                return None
            w, r = inner
        elif op is sre.BRANCH:
            alternatives = [_extent(list(alternative), run_bound) for alternative in av[1]]
            if any(a is None for a in alternatives):
                return None
            w, r = max(a[0] for a in alternatives), max(a[1] for a in alternatives)  # type: ignore[index]
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            inner = _extent(list(av[1]), run_bound)
            if inner is None:
                return None
            # a lookbehind matches its body forward from ``width`` characters back, up to where it stands
            w, r = 0, inner[1] if av[0] >= 0 else max(0, inner[1] - inner[0])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, body = av
            if high == sre.MAXREPEAT:
                cls = _one_character_class(list(body))
                if cls is None:
                    return None
                w = run_bound(cls)
                r = w + 1  # and the character that ends the run
            else:
                inner = _extent(list(body), run_bound)
                if inner is None:
                    return None
                w, r = high * inner[0], ((high - 1) * inner[0] + inner[1]) if high else 0
        else:
            return None  # a back-reference, a conditional group, a construct this reading does not know
        reach = max(reach, width + r)
        width += w
    return width, max(reach, width)
