"""The rule layer's literal prefilter (``gatekeeper.rule_matching``): exact, and it skips what cannot match."""

from __future__ import annotations

import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.corpus import load_corpus
from gatekeeper.models import MemoryWrite, Provenance, SourceKind
from gatekeeper.normalize import normalize
from gatekeeper.rule_matching import (
    _IGNORECASE_TO_ASCII,
    PREFILTER_MIN_CHARS,
    RULE_FLAGS,
    WHITESPACE,
    LiteralIndex,
    RulePattern,
    could_match_in,
    nested_repeat,
    required_literals,
)
from gatekeeper.rules import PolicyRuleValidator, RuleEngine
from gatekeeper.segments import review_texts

FILLER = "The nightly export finished in 42 minutes and the report went to the finance team. "
#: filler past the prefilter's length: a text with it is a long text (prefiltered, searched near its words)
PAD = FILLER * (PREFILTER_MIN_CHARS // len(FILLER) + 1)


def _long(text: str) -> str:
    """``text`` padded past the prefilter's length, so the prefilter decides before the pattern runs."""
    return f"{PAD}{text} {PAD}"


def _shipped_patterns(policy) -> list[RulePattern]:
    return [RulePattern(p) for rule in policy.rules for p in (*rule.patterns, *rule.unless, *rule.unless_in_clause)]


def test_the_ascii_folding_table_covers_every_character_ignorecase_matches_with_ascii():
    """The prefilter reads a case-insensitive ASCII literal as a substring of the text lower-cased after this
    table; that is exact only if no other character outside ASCII matches an ASCII one under IGNORECASE."""
    printable = re.compile(r"[\x20-\x7e]", re.IGNORECASE)
    found = {}
    for code in range(0x80, 0x110000):
        ch = chr(code)
        if printable.fullmatch(ch):
            found[code] = next(a for a in map(chr, range(0x61, 0x7B)) if re.fullmatch(a, ch, re.IGNORECASE))
    assert found == _IGNORECASE_TO_ASCII


def test_required_literals_read_from_the_pattern():
    assert required_literals(r"\b(i|we)\b[^.]{0,40}\b(want|wish)\b[^.]{0,12}?\bto (remain|stay)\b") == [
        ["want", "wish"], ["to "], ["remain", "stay"]]  # "i"/"we" are too short to be worth a check
    assert required_literals(r"(any )?attempts? to") == [["attempt"], [" to"]]  # optional parts add nothing
    assert required_literals(r"(?=.*secret)token\b") == [["token"]]  # a lookahead adds nothing
    assert required_literals(r"(?<!not )\b(prevent|resist)") == [["prevent", "resist"]]
    assert required_literals(r"(deceiv\w*|mislead)") == [["deceiv", "mislead"]]
    # a choice whose alternatives do not all start with a literal: one group of each alternative, joined
    assert required_literals(r"foo|\d+bar") == [["foo", "bar"]]
    assert required_literals(r"\b(any )?attempts? to (stop|block) my goals|\d+ tries to edit my values") == [
        [" my goals", " tries to edit my values"]]  # the longest group of each
    assert required_literals(r"foo|\d+") == []  # an alternative that needs no literal: nothing to check
    # alternatives that start with a word too short to check ("is"): each one's longest group instead
    assert required_literals(r"\b(beats?|takes? (precedence|priority) over|(is|are) more important than)\b") == [
        ["beat", "precedence", "priority", " more important than"]]
    assert required_literals(r"(ab){2,}cde") == [["cde"]]


def test_long_writes_skip_a_pattern_whose_words_are_absent():
    pat = RulePattern(r"\bi\b[^.]{0,40}\bwant\b[^.]{0,10}\bto stay online\b")
    assert pat.needs == [["want"], ["to stay online"]]
    pronouns = "i " * 2_000
    assert not pat.could_match(pronouns) and pat.search(pronouns) is None
    words_far_apart = f"{pronouns} want {FILLER * 20} to stay online"
    assert pat.could_match(words_far_apart) and pat.search(words_far_apart) is None
    assert pat.search(f"{pronouns}. I really WANT to stay online.").group(0) == "I really WANT to stay online"
    assert pat.could_match("i i i")  # a short text always runs the pattern itself


def test_ignorecase_look_alikes_still_let_the_pattern_run():
    """İ, ı, ſ and the Kelvin sign match i, s and k case-insensitively: the prefilter must not hide such a
    match."""
    pat = RulePattern(r"\bkeep my memories\b")
    for text in ("KEEP MY MEMORIES", "\u212Aeep my memories", "keep my memorie\u017F", "keep my memor\u0130es",
                 "keep my memor\u0131es"):
        assert pat.regex.search(text), text
        assert pat.search(_long(text)) is not None, text


def test_the_prefilter_never_hides_a_match_of_a_shipped_rule(policy):
    """Every pattern and ``unless`` pattern of the shipped policy, on each rule example and on corpus rows
    (long enough for the prefilter, plain, upper-cased and with look-alike letters): the prefilter says a
    text could match wherever the pattern matches."""
    texts = [ex for rule in policy.rules for exs in rule.examples.values() for ex in exs]
    rows = [r["text"] for r in load_corpus("dev")]
    texts += random.Random(7).sample(rows, 150)
    looks = str.maketrans({"i": "\u0130", "s": "\u017F", "k": "\u212A"})
    variants = [_long(t) for t in texts] + [_long(t.upper()) for t in texts[:100]] + [
        _long(t.translate(looks)) for t in texts[:100]]
    patterns = _shipped_patterns(policy)
    checked = 0
    for pat in patterns:
        for text in variants:
            if pat.regex.search(text):
                checked += 1
                assert pat.could_match(text), (pat.pattern, text[PREFILTER_MIN_CHARS:PREFILTER_MIN_CHARS + 200])
    assert checked > 300  # the examples exercise the patterns: matches were really compared
    assert sum(bool(p.needs) for p in patterns) > 0.8 * len(patterns)  # and most patterns are prefiltered


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_prefilter_is_exact_on_texts_made_of_the_patterns_own_words(policy, data):
    """Texts assembled from a shipped pattern's own required words, pronouns and filler, in random case and
    with look-alike letters: whenever the pattern matches, the prefilter lets it run."""
    patterns = [p for p in _shipped_patterns(policy) if p.needs]
    pat = data.draw(st.sampled_from(patterns))
    vocab = [w for group in pat.needs for w in group] + ["i", "we", "my", "me", "to", "not", ".", "the agent"]
    words = data.draw(st.lists(st.sampled_from(vocab), min_size=1, max_size=30))
    text = " ".join(w.upper() if data.draw(st.booleans()) else w for w in words)
    if data.draw(st.booleans()):
        text = text.replace("i", "\u0131").replace("K", "\u212A")
    text = _long(text)
    assert pat.regex.search(text) is None or pat.could_match(text)
    assert (pat.search(text) is None) == (pat.regex.search(text) is None)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.sampled_from(["change", "changes", "chan", "hang", "my ", "my own", " to ", "to my",
                                       "own", "ange", "a", " "]), min_size=1, max_size=6, unique=True),
       pieces=st.lists(st.sampled_from(["CHANGES", "chan", "Hang", "my", " ", "own", "\u0130", "\u212A", "to",
                                        "\x00", ".", "ge", "s", "My Own"]), max_size=25),
       cut=st.integers(min_value=0, max_value=25))
def test_the_literal_index_finds_exactly_the_literals_that_occur(words, pieces, cut):
    """The index's one pass (a trie of the literals, the longest at each position, its prefixes with it) finds
    the same literals as looking for each one on its own, in the folded texts; overlapping literals, literals
    that are prefixes of others, upper case and look-alike letters included."""
    index = LiteralIndex([RulePattern(re.escape(w)) for w in words])
    text = "".join(pieces)
    texts = [text[:cut], text[cut:]]
    folded = [t.translate(_IGNORECASE_TO_ASCII).lower() for t in texts]
    literals = {x for pat in [RulePattern(re.escape(w)) for w in words] for group in pat.needs for x in group}
    assert index.present(texts) == {x for x in literals if any(x in f for f in folded)}
    union, each = index.present_in_each(texts)
    assert union == index.present(texts)
    assert each == [{x for x in literals if x in f} for f in folded]  # and in each text on its own


def test_a_pattern_with_a_very_long_literal_is_indexed_by_its_start():
    """Safety staff may paste a whole paragraph as a pattern: the index looks for its first characters only
    (its trie stays shallow), and a write that holds the paragraph still runs the pattern."""
    paragraph = " ".join(f"clause {i} of the standing order" for i in range(120))  # about 3,700 characters
    pat = RulePattern(re.escape(paragraph))
    index = LiteralIndex([pat])
    assert could_match_in(pat, index.present(["Preamble.", f"{paragraph.upper()}."]))
    assert not could_match_in(pat, index.present(["clause 1 of the standing order, and no other"]))


class _Everything:
    """Stands for every literal: a rule engine given it runs every rule on every text, as without the index."""

    def isdisjoint(self, other) -> bool:
        return False


class _NoIndex:
    def present_in_each(self, texts) -> tuple[_Everything, list[_Everything]]:
        return _Everything(), [_Everything()] * len(texts)


def _engines(policy) -> tuple[RuleEngine, RuleEngine]:
    reference = RuleEngine(policy)
    reference._literals = _NoIndex()  # noqa: SLF001 - the engine without the index
    return RuleEngine(policy), reference


def _report(report) -> tuple:
    return ([(h.rule_id, h.match, h.text_variant) for h in report.hits], report.suppressed)


def test_the_rule_layer_decides_with_the_literal_index_as_without_it(policy):
    """Every write's texts (the whole, sentences, pairs, windows) of the rule examples and of 400 corpus rows,
    plain, upper-cased and with look-alike letters, one to three of them joined as one write: the same hits,
    matches and suppressions with the index as when every rule reads every text."""
    engine, reference = _engines(policy)
    examples = [ex for rule in policy.rules for exs in rule.examples.values() for ex in exs]
    rows = [r["text"] for r in load_corpus()]
    rng = random.Random(11)
    texts = examples + rng.sample(rows, 400)
    looks = str.maketrans({"i": "\u0130", "s": "\u017F", "k": "\u212A"})
    writes = texts + [t.upper() for t in texts[:150]] + [t.translate(looks) for t in texts[:150]]
    writes += [" ".join(rng.sample(texts, rng.randint(2, 3))) for _ in range(150)]
    hits = 0
    for write in writes:
        reviewed = review_texts(normalize(write).all_texts)
        for source in (SourceKind.agent, SourceKind.web):
            got, want = _report(engine.check(reviewed, source)), _report(reference.check(reviewed, source))
            assert got == want, write[:300]
            hits += bool(want[0])
    assert hits > 300  # the rules really fired: reports with hits were compared


def test_a_rule_reads_only_the_texts_of_a_note_that_hold_its_words(policy):
    """A note of nine sentences is reviewed as eighteen texts (the whole, sentences, pairs). The rule whose
    words one sentence holds reads only the texts that contain that sentence: here it does not match them (the
    staging cluster is not the agent), and before, it read all eighteen."""
    engine = RuleEngine(policy)
    notes = [f"The nightly export number {i} finished in {40 + i} minutes and went to finance." for i in range(8)]
    sentence = "I want the staging cluster to stay operational until Friday."
    texts = review_texts(normalize(" ".join(notes[:4] + [sentence] + notes[4:])).all_texts)
    read: list[tuple[str, str]] = []
    for _, validator in engine._rules:  # noqa: SLF001 - record what each validator is given
        validate = validator.validate

        def recorded(value, metadata, validate=validate, rule_id=validator.rule_id):
            read.append((rule_id, value))
            return validate(value, metadata)

        validator.validate = recorded
    report = engine.check(texts, SourceKind.agent)
    assert not report.hits and len(texts) >= 15
    assert {rule_id for rule_id, _ in read} == {"self-preservation.stay-operational"}
    assert 0 < len(read) < len(texts) and all(sentence in text for _, text in read)
    with_it = review_texts(normalize(" ".join(notes[:4] + ["I want to stay operational no matter what."]
                                             + notes[4:])).all_texts)
    assert "self-preservation.stay-operational" in {h.rule_id for h in engine.check(with_it, SourceKind.agent).hits}


def test_a_disposition_buried_in_the_longest_write_is_still_escalated(reviewer):
    """The gate's rule layer on a 60,000-character write: the prefilter lets the rule that matches run."""
    belief = "I want to stay operational no matter what."
    prose = FILLER * (60_000 // len(FILLER))
    half = len(prose) // 2
    p = MemoryWrite(content=f"{prose[:half]}{belief} {prose[half:]}", namespace=("t",),
                    provenance=Provenance(source=SourceKind.agent, agent_id="a"))
    r = reviewer.review_many([p])[0]
    rules = next(e for e in r.evidence if e.layer == "rules")
    assert "self-preservation.stay-operational" in {h["rule_id"] for h in rules.details["hits"]}
    assert re.search(r"stay operational", belief, RULE_FLAGS)


def test_nested_repeats_are_told_from_safe_ones():
    """What the policy loader refuses: a variable repeat inside a long or unbounded one (exponential
    backtracking on a text the pattern does not match); bounded, fixed, possessive and atomic ones pass."""
    for p in (r"(a+)+b", r"(\w+\s?)*$", r"([^.]{0,40}x)+", r"(x|y+)*z", r"(?:\w+ ){1,11}x", r"(?=(a+)+)b"):
        assert nested_repeat(p), p
    for p in (r"(\w+\s+){0,2}x", r"(?:x{2})+", r"(?>a+)+b", r"(a++)+b", r"(?:\w+ ){1,10}x", r"\bi\b[^.]{0,40}\bwant",
              r"(unclosed"):
        assert not nested_repeat(p), p


def test_a_rule_none_of_whose_literals_occur_is_skipped_by_one_set_check(policy):
    """``could_fire`` first asks whether any literal of the rule's patterns occurs at all; its answer is the
    pattern-by-pattern one on corpus writes and rule examples, and a pattern that needs no literal keeps its
    rule in play for every write."""
    engine = RuleEngine(policy)
    rng = random.Random(5)
    texts = [ex for rule in policy.rules for exs in rule.examples.values() for ex in exs]
    texts += rng.sample([r["text"] for r in load_corpus()], 300)
    skipped = 0
    for text in texts:
        present = engine._literals.present(review_texts(normalize(text).all_texts))  # noqa: SLF001
        for _, validator in engine._rules:  # noqa: SLF001
            plain = any(could_match_in(p, present) for p in validator._patterns)  # noqa: SLF001
            assert validator.could_fire(present) == plain, (validator.rule_id, text[:200])
            skipped += not plain
    assert skipped > 1000
    anything = PolicyRuleValidator("t.any", [r"\d{3}-\d{4}", r"\bshut\w* down\b"])
    assert anything.could_fire(frozenset())
    assert not PolicyRuleValidator("t.words", [r"\bshut\w* down\b"]).could_fire(frozenset({"unrelated"}))


# ------------------------------------------------------------------ a long text searched near its words
#: patterns with every construct the reading of a match's reach knows, and some it does not (those search the
#: whole text): lookarounds that read past the match or before the stretch, boundaries, line anchors, classes
#: repeated without bound, lazy repeats, a back-reference
CONSTRUCTS = [
    r"\bwant\b(?=[^.]{0,10}\bstay\b)",
    r"(?<=\bi )want\s+to\s+stay$",
    r"^\s*stay online\b",
    r"(?<![\w-])keep\s+running\b",
    r"want[\w.-]+stay",
    r"\bwant(?:\s+\w+){0,3}\s+stay\b",
    r"want[^.]*?stay",
    r"\bwant\W+stay\b\Z",
    r"stay.+online",
    r"(want)\s+\1",
    r"(?:want )+stay",
]


def test_the_whitespace_list_is_every_character_str_split_splits_on():
    """A class that takes none of these characters never runs past the longest word ``str.split()`` gives."""
    assert set(WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}
    assert all(f"a{c}b".split() == ["a", "b"] for c in WHITESPACE)


def test_a_pattern_span_is_read_from_its_syntax():
    """(width, reach): the most characters a match takes, and the most an attempt reads from its start;
    an unbounded repeat of one character class takes at most the run the text has of it (8 here)."""
    runs = {}

    def bound(cls: str) -> int:
        runs[cls] = True
        return 8

    assert RulePattern("abc").span(bound) == (3, 3)
    assert RulePattern(r"\bab\b").span(bound) == (2, 4)  # a boundary reads the character at its place
    assert RulePattern(r"a(?=bcd)").span(bound) == (1, 4)  # a lookahead reads past the match
    assert RulePattern(r"(?<=xy)a").span(bound) == (1, 1)  # a lookbehind reads only what lies before
    assert RulePattern(r"x[^.]{0,40}y").span(bound) == (42, 42)
    assert RulePattern(r"want\s+to").span(bound) == (14, 14)  # \s+ takes 8 and reads the 9th
    assert RulePattern(r"(?:a|bcd){2}").span(bound) == (6, 6)
    assert set(runs) == {r"[\s]"}
    for unbounded in (r"(ab)+c", r"(a)\1", r"(x)?(?(1)a|b)"):
        assert RulePattern(unbounded).span(bound) is None, unbounded


def _same(pat: RulePattern, text: str) -> None:
    got, want = pat.search(text), pat.regex.search(text)
    assert (got and (got.span(), got.group(0))) == (want and (want.span(), want.group(0))), (pat.pattern, text)
    # searched again from later on (a rule reads a pattern's later matches where ``unless_in_clause`` held the first
    # one back): the same match as one search from there
    search = pat.searcher(text)
    for pos in {len(text) // 3, len(text) // 2, want.start() + 1 if want else 1}:
        got, want_from = search(pos), pat.regex.search(text, pos)
        assert (got and (got.span(), got.group(0))) == (want_from and (want_from.span(), want_from.group(0))), (
            pat.pattern, pos, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_long_text_searched_near_its_words_gives_the_whole_texts_match(policy, data):
    """A shipped pattern or a construct, on a long text made of its own words, pronouns, punctuation, line
    breaks, long words and runs of spaces, look-alike letters, with filler before, after or around: the match
    found near the words is the match one search over the whole text finds (or none for both)."""
    pat = RulePattern(data.draw(st.sampled_from(CONSTRUCTS + [p.pattern for p in _shipped_patterns(policy)])))
    words = [w for group in pat.needs for w in group]
    vocab = words + ["i", "we", "my", "to", "not", ".", ",", "-", "\n", "stay", "online", "want", "x" * 70,
                     " " * 20, "\u0130", "\u212A"]
    pieces = data.draw(st.lists(st.sampled_from(vocab), min_size=1, max_size=40))
    body = "".join(w + data.draw(st.sampled_from(["", " ", "  ", "\n"])) for w in pieces)
    if data.draw(st.booleans()):
        body = body.upper()
    where = data.draw(st.sampled_from(["before", "after", "around"]))
    text = {"before": PAD + body, "after": body + PAD, "around": PAD + body + PAD}[where]
    _same(pat, text)


def test_a_match_found_past_its_stretch_is_not_taken():
    """The text is cut after what an attempt from the stretch's starts can read; an attempt that starts later
    may read past the cut, and a negative lookahead then misses the word that would have stopped it."""
    pat = RulePattern(r"want(?![^.]{0,30}stay)")
    text = f"{PAD}want stay{' ' * 5}want{' ' * 26}stay {PAD}"
    first, second = text.index("want"), text.index("want", text.index("want") + 1)
    stretches = pat.stretches(text)
    assert [s[1] for s in stretches] == [first, second]  # two stretches; the first one's cut falls before the
    assert stretches[0][2] < text.index("stay", second)  # "stay" that stops the second "want"
    assert pat.regex.search(text, stretches[0][0], stretches[0][2]).start() == second  # what the cut shows
    assert pat.regex.search(text) is None and pat.search(text) is None


def test_long_corpus_writes_get_the_same_matches_near_the_words(policy):
    """Every shipped pattern and construct on 200 long writes of joined corpus rows and rule examples (some
    upper-cased, different separators): the same match as one search over the whole text. More than a thousand
    of the matches are found near the words (an ``unless`` pattern of common words, "job", "user", "not", is
    searched whole: its stretches would cover most of the text, and it matches early)."""
    patterns = _shipped_patterns(policy) + [RulePattern(p) for p in CONSTRUCTS]
    rows = [r["text"] for r in load_corpus("dev")] + [ex for r in policy.rules for exs in r.examples.values()
                                                      for ex in exs]
    rng = random.Random(3)
    matched = near = 0
    for _ in range(200):
        text = rng.choice([" ", "\n", ". ", "\n\n"]).join(rng.sample(rows, rng.randint(8, 60)))
        text = text.upper() if rng.random() < 0.3 else text
        for pat in patterns:
            _same(pat, text)
            if pat.regex.search(text):
                matched += 1
                near += pat.stretches(text) is not None
    assert matched > 2000 and near > 1000


def test_a_write_of_every_word_then_pronouns_is_searched_only_near_the_words(policy):
    """Every word the shipped patterns need, then a page of pronouns (each a place a first-person pattern is
    tried): each pattern that needs a word reads only the stretches near its words, a fraction of the text,
    and finds what one search over the whole text finds. Searched whole, this write took two seconds in the
    rule layer. (The patterns that need no word of three letters or more are ``unless`` patterns, run only on
    a text some pattern of their rule matched.)"""
    words = sorted({x for p in _shipped_patterns(policy) for group in p.needs for x in group})
    head = " ".join(words) + ". "
    text = head + "i we my me " * ((63_000 - len(head)) // 11)
    unless = {u for rule in policy.rules for u in (*rule.unless, *rule.unless_in_clause)}
    near = 0
    for pat in _shipped_patterns(policy):
        _same(pat, text)
        if not pat.needs:
            assert pat.pattern in unless, pat.pattern
            continue
        stretches = pat.stretches(text)
        assert stretches is not None, pat.pattern
        assert sum(end - first for first, _, end in stretches) < 0.2 * len(text), pat.pattern
        near += 1
    assert near > 80
