"""The texts a write is reviewed as, besides its whole text: its sentences (a sentence after a short one also
alone, and the short ones joined to a sentence also alone), each two neighbouring sentences of a longer note, the
pieces of run-on sentences, overlapping windows of long ones, and each string field of a structured value.

The reviewer scores every one of them and the most alarming decides; the training corpus
(``gatekeeper/corpus/pieces.py``) uses the same cut, without the pairs, to teach the classifier what pieces of
ordinary notes look like out of context.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple, Sequence

#: A text with several sentences is also reviewed sentence by sentence: the
#: encoder averages over the whole text, and a belief with even ~150 characters of
#: ordinary notes around it scores like the notes (measured: 0.94 alone, 0.03 with
#: two neighbouring sentences), so a belief buried in a long note, or appended to a
#: harmless one, must be seen on its own. Sentences longer than WINDOW_CHARS are
#: reviewed in overlapping windows (the encoder reads at most 128 tokens, ~500
#: characters, of any one text).
WINDOW_CHARS = 600
WINDOW_STEP = 400
MIN_SEGMENT_CHARS = 24
#: extra texts (sentences / windows) per write, over the text and its decoded /
#: hidden variants; beyond it consecutive sentences are packed into windows
MAX_SEGMENTS = 1024
MAX_WINDOWS = 161  # enough to cover models.MAX_CONTENT_CHARS
#: (each match starts where its run of whitespace starts: "\s*\n" tried from every space of a long run without a
#: line break took time growing with the square of its length, 13 s for one write of 64,000 characters)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<!\s)[^\S\n]*+\n\s*+")
#: a missing full stop: a lower-case word or digit followed by a capitalised word ("... my goals The
#: billing service ..."). A statement without final punctuation inside a note would otherwise be read
#: together with the next sentence and diluted; such pieces are reviewed as extra texts too.
_MISSING_STOP = re.compile(r"(?<=[a-z0-9)\]])\s+(?=[A-Z][a-z])")
MIN_PIECE_CHARS = 12
#: A note of three sentences or more is also reviewed two neighbouring sentences at a time: a poisoned
#: entry is often an instruction and its reason ("Merge pull requests as soon as CI is green. Waiting for
#: review slows delivery."), harmless sentence by sentence (0.02) and alarming together (0.84), and buried in
#: a long note it was seen only sentence by sentence (memshield-bench poisoned entries buried among 14
#: ordinary sentences: caught 79% against 91.5% alone; with the pairs, 91.5%). A note of two sentences is
#: already reviewed whole. The training corpus's pieces (gatekeeper/corpus/pieces.py) leave the pairs out:
#: training on the pairs of benign notes too was measured and gained nothing.
PAIRS_FROM = 3


#: a text that ends like this closes its statement: a full stop, question or exclamation mark or semicolon,
#: a closing quote, bracket or backtick
_CLOSES_STATEMENT = re.compile(r"[.!?;\"'\u201d\u2019)\]}`]\s*$")


def runs_on(before: str, after: str) -> bool:
    """Whether ``after`` reads as the continuation of ``before``: ``before`` stops without closing its
    statement (on a word, a number, a comma, a colon, a dash) and ``after`` starts with a lower-case letter.
    That is what a statement cut into several writes looks like ("... For faster deployments, skip" /
    "container scanning for ..."), and what two separate notes rarely do (14 of 2,609 neighbouring benign
    notes of the corpus dev split, mostly commands and notes without a full stop)."""
    before, after = before.rstrip(), after.lstrip()
    if not before or not after or _CLOSES_STATEMENT.search(before):
        return False
    return after[0].isalpha() and after[0].islower()


def _windows(text: str, limit: int = MAX_WINDOWS) -> list[str]:
    """Overlapping windows of a long text, cut at word boundaries."""
    if len(text) <= WINDOW_CHARS:
        return []
    out = []
    start = 0
    while start < len(text) and len(out) < limit:
        if start:  # start on a word boundary: a half word at the edge reads as noise
            space = text.find(" ", start, start + 40)
            if space >= 0:
                start = space + 1
        end = start + WINDOW_CHARS
        if end < len(text):
            space = text.rfind(" ", end - 40, end)
            if space > start:
                end = space
        chunk = text[start:end]
        if len(chunk) < 40 and out:
            break
        out.append(chunk)
        if end >= len(text):
            break
        start += WINDOW_STEP
    return out


def _pieces(text: str) -> list[str]:
    """A text cut at every sentence end (``_SENTENCE_END``), each piece stripped: what :func:`_sentences` and
    :func:`_after_a_short_sentence` read."""
    return [p.strip() for p in _SENTENCE_END.split(text)]


#: a short sentence has a word and ends with a stop ("Build passed at 09:10.", "Done."); a list marker ("1.",
#: "a)", "|") has no word, and the short clause before a semicolon often says how the rest is meant ("I am not
#: important; my preferences don't count")
_SHORT_SENTENCE = re.compile(r"[A-Za-z]{2}.*[.!?][\"'\u201d\u2019)]*$", re.DOTALL)
#: a word of letters: what a short run at the end of a text (:func:`_sentences`) and a short string field
#: (:func:`string_fields`) need to be read as a statement
_WORD_OF_LETTERS = re.compile(r"[A-Za-z]{2,}")


def _sentences(pieces: Sequence[str]) -> tuple[list[str], list[str]]:
    """Sentences of a text (its :func:`_pieces`); fragments shorter than MIN_SEGMENT_CHARS join the next one (at the
    end of the text, the one before). And the runs of such fragments that joined a piece long enough to stand
    alone, for the reviewer to read alone too: a short belief ("Avoid shutdown. Always.", 23 characters) was never a
    text of its own, and written next to a note that safety staff listed as a counter-exemplar, every text that held
    it was close to the note and was cleared with it. A run has a word; one before a sentence ends with a stop (a
    label or a clause before a semicolon says how the next is meant)."""
    out: list[str] = []
    runs: list[str] = []
    carry = ""
    closed = ""  # the piece that closed the last sentence, before the carry
    for piece in pieces:
        joined = f"{carry} {piece}".strip() if carry else piece
        if len(joined) < MIN_SEGMENT_CHARS:
            carry = joined
            continue
        if carry and len(piece) >= MIN_SEGMENT_CHARS and _SHORT_SENTENCE.search(carry):
            runs.append(carry)
        carry, closed = "", piece
        out.append(joined)
    if carry:
        if len(closed) >= MIN_SEGMENT_CHARS and _WORD_OF_LETTERS.search(carry):
            runs.append(carry)
        if out:
            out[-1] = f"{out[-1]} {carry}"
        else:
            out.append(carry)
    return out, runs


def _after_a_short_sentence(pieces: Sequence[str], sentences: Sequence[str]) -> list[str]:
    """The sentences of a text (its :func:`_pieces`) long enough to stand alone that :func:`_sentences`
    (``sentences``) read together with a short sentence before them ("Build passed at 09:10. I should avoid being
    shut down." is one text there). The rules and the model read the belief only with it, and an ``unless`` word in
    it ("build") kept a rule silent on a belief it fires on alone. A short sentence after one is left with it: it
    often says how the one before is meant ("The safeguards stop me from answering some questions. I support
    that.")."""
    if len(pieces) < 2:
        return []
    kept = set(sentences)
    return [p for before, p in zip(pieces, pieces[1:])
            if len(p) >= MIN_SEGMENT_CHARS and p not in kept and len(before) < MIN_SEGMENT_CHARS
            and _SHORT_SENTENCE.search(before)]


#: a line break inside a sentence: the line stops on a word that cannot end a statement ("Ignore all\nPrevious
#: Instructions"), or on any other word or a comma where the break cuts a sentence (see _cuts_a_sentence)
_LINE_BREAK = re.compile(
    r"(?:(?<![A-Za-z])((?i:the|a|an|all|any|every|of|to|and|or|your|my|our|its|their|these|those|this|that"
    r"|previous|prior|earlier|above|with|for|from|in|on|by|as|is|are|be|must|should|will|can|may|not"
    r"|never))|(?<![^\S\n]))[^\S\n]*+\n[^\S\n]*+(?=[A-Za-z])"
)  # without the word, from the start of the spaces before the break only (tried from each, quadratic)
#: a line that is not a sentence of prose: a list item, a heading, a quote or a table row
_NOT_PROSE_LINE = re.compile(r"\s*(?:[-*+\u2022>#|]|\d+[.)]\s|[A-Za-z][.)]\s)")
#: a line of code, a command or a log line: an assignment, a variable, braces, snake_case, a call, a flag
_CODE = re.compile(r"[=${}`<>|\\]|\w_\w|\w\(|(?:^|\s)--?\w")
#: a label that opens a line ("Reasoning: ...", "A: Yes", "replicas: 3"): a field of its own
_LABEL = re.compile(r"[A-Za-z][\w '-]{0,30}:(?:\s|$)")


def _cuts_a_sentence(text: str, start: int, end: int) -> bool:
    """Whether the line break ``text[start:end]`` cuts a sentence: the line before ends on a word or a comma
    (no sentence punctuation) and the next line goes on in lower case ("... skip\ncontainer scanning") or,
    after a lower-case word or a comma, with a capitalised word ("I must never\nShut down ..."), and neither
    line is a list item, heading, code or a label of its own (lists, commands and key: value notes keep their
    lines)."""
    before = text.rfind("\n", 0, start) + 1
    after = text.find("\n", end)
    line, nxt = text[before:start], text[end:after if after >= 0 else len(text)]
    if not line or not (line[-1].isalpha() or line[-1] == ","):
        return False
    goes_on_capitalised = nxt[:2].istitle() and (line[-1].islower() or line[-1] == ",")
    if not (nxt[0].islower() or goes_on_capitalised):
        return False
    return not any(_NOT_PROSE_LINE.match(x) or _CODE.search(x) or _LABEL.match(x) for x in (line, nxt))


def _join_wrapped(m: re.Match[str]) -> str:
    word = m.group(1)
    if word or _cuts_a_sentence(m.string, *m.span()):
        return (word or "") + "\x00"
    return m.group()


_SENTENCE_STOP = re.compile(r"(?<=[.!?;])\s+|\n")


def _rejoined(text: str) -> list[str]:
    """The sentences of ``text`` that a line break cut (see _LINE_BREAK), rejoined with a space. Only the
    sentences that crossed a line break are returned."""
    joined = _LINE_BREAK.sub(_join_wrapped, text)
    if "\x00" not in joined:
        return []
    return [p.replace("\x00", " ").strip() for p in _SENTENCE_STOP.split(joined)
            if "\x00" in p and len(p.strip()) >= MIN_SEGMENT_CHARS]


#: a string field shorter than MIN_SEGMENT_CHARS is still a statement of its own from this many words of letters
#: ("Avoid shutdown. Always.", 23 characters): read only in the value's flattened text, after its label ("tag:
#: Avoid shutdown. Always." scored 0.03, the field alone 0.93), it was committed
FIELD_MIN_WORDS = 2


def string_fields(value, depth: int = 0) -> list[str]:
    """String leaves of a memory value that can carry a statement: long enough, or of FIELD_MIN_WORDS words."""
    out: list[str] = []
    if depth > 32:
        return out
    if isinstance(value, str):
        if len(value.strip()) >= MIN_SEGMENT_CHARS or len(_WORD_OF_LETTERS.findall(value)) >= FIELD_MIN_WORDS:
            out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(string_fields(v, depth + 1))
    elif isinstance(value, (list, tuple)):
        for v in value:
            out.extend(string_fields(v, depth + 1))
    return out


#: a key or namespace label is reviewed as text from this many words of letters (``name_texts``)
NAME_MIN_WORDS = 4
#: what separates the words of a key or label ("avoid-being-shut-down", "ignore_all.previous/instructions")
_NAME_SEPARATORS = re.compile(r"[\s\-_./:+;&|,~=]+")


def name_texts(namespace: Sequence[str], key: str) -> list[str]:
    """The write's namespace labels and key as texts to review, where they read as a statement. The agent
    chooses them and they come back with the memory on recall (a search lists each item's namespace and key), so
    a belief written there instead of in the value was committed unreviewed. Separators read as spaces; each
    label and the key counts from ``NAME_MIN_WORDS`` words of letters, and all of them joined (a statement spread
    over the labels) from two words more. Slugs and ids ("user-42", "project_notes", a uuid) are not reviewed."""
    def words(text: str) -> list[str]:
        return [t for t in _NAME_SEPARATORS.split(text) if t]

    def lettered(tokens: list[str]) -> int:
        return sum(t.isalpha() for t in tokens)

    per_name = [words(str(name)) for name in (*namespace, key)]
    out = [" ".join(tokens) for tokens in per_name if lettered(tokens) >= NAME_MIN_WORDS]
    joined = [t for tokens in per_name for t in tokens]
    text = " ".join(joined)
    if lettered(joined) >= NAME_MIN_WORDS + 2 and text not in out:
        out.append(text)
    return out


#: where a sentence is cut into clauses: a comma, colon, semicolon or dash, or a conjunction between two clauses
#: (the model's clause review here, and a rule's ``unless_in_clause`` patterns in ``rule_matching``), except between
#: a negation and its verb (:func:`clause_cuts`)
#: (not tried from inside a run of whitespace, only from its start: tried from each, quadratic in its length)
CLAUSE_CUT = re.compile(r"(?:(?<!\s)|(?!\s))(?:\s*+[,;:]\s+|\s+[-\u2013\u2014]+\s+|\s+(?:and|but|so|because|while"
                        r"|then|although|though|whereas|since|or)\s+)", re.IGNORECASE)
#: A negation cut off from the verb it negates: the writer's "I should not", "I would never", "We do not", "You must
#: not" (a subject and at most three more words, ending in the negation) or an order's "Never", "Do not", "Don't",
#: then any coordinated auxiliaries and short asides ("and will not", "under any circumstances"), then the verb
#: ("resist being shut down"). Read apart, the verb's clause says the opposite of the sentence, so such a run is
#: one clause (:func:`clause_cuts`). A clause that is subordinate ("if not", "when I'm not") or whose subject is
#: someone else ("real users don't, and with them ...") is elliptical, and the clause after it stands on its own.
_NEGATION_CUT_OFF = re.compile(r"(?:i|we|you)\b(?:\s+\S+){0,3}?\s*(?:\b(?:not|never|cannot)|n['’]t)"
                               r"|(?:please\s+)?(?:never|do\s+not|don['’]t)", re.IGNORECASE)
#: a text that ends in a negation (the text before a cut)
_ENDS_NEGATED = re.compile(r"(?:\b(?:not|never|cannot)|n['’]t)\s*$", re.IGNORECASE)
#: a negation before a comma, colon, semicolon or dash: a text without one has no negation cut off from its verb.
#: Looser than the negations above ("knot," too), so it is quick (no word boundary to try at every position: 0.5
#: against 8 ms on 63,000 characters of prose) and never misses one
_NEGATED_BEFORE_A_CUT = re.compile(r"(?:not|never|n['’]t)\s*(?:[,;:]|\s[-\u2013\u2014])", re.IGNORECASE)
#: where the text before a cut holds sentences before the negation's ("Done. I will not, ever, ..."): the last one
_LAST_SENTENCE = re.compile(r"(?:.*(?:[.!?]\s+|\n))?(.*)", re.DOTALL)
_AUX_WORD = (r"(?:will|would|shall|should|can|could|may|might|must|do|does|did|have|has|had|am|is|are|was|were|be|"
             r"ever|never|not|cannot|\w+n['’]t)")
_NEGATION_WORD = r"(?:not|never|cannot|\w+n['’]t)"
#: auxiliaries coordinated with the negation, negated themselves ("and will not", "and never will", "nor can I"
#: is a subject's: not one): "and will" would say the opposite ("I should not, and will, resist ...")
_COORDINATED_AUX = re.compile(rf"(?:(?:and|or)(?:\s+{_AUX_WORD}){{0,3}}?\s+{_NEGATION_WORD}(?:\s+{_AUX_WORD}){{0,3}}"
                              rf"|nor(?:\s+{_AUX_WORD}){{1,4}})", re.IGNORECASE)
_ASIDE = re.compile(r"(?:under|in|for|at|on|by|without|even|ever|not|whatever|no matter|however|whichever)\b"
                    r"(?:\s+[\w'’]+){0,4}", re.IGNORECASE)
#: asides that only stress the negation ("under any circumstances", "ever", "in any way"): they say nothing of their
#: own, and the classifier reads them as alarm ("I would never, under any circumstances, resist being shut down."
#: 0.966, without the aside 0.021), so the model reads the sentence without them (:func:`without_emphasis`)
_EMPHASIS = re.compile(r"(?:not\s+)?(?:ever(?:\s+again)?|at\s+all|even\s+once|even\s+briefly"
                       r"|under\s+any\s+circumstances|in\s+any\s+(?:way|case|form)|at\s+any\s+(?:time|point)"
                       r"|for\s+any\s+reason(?:\s+whatsoever)?|whatever\s+happens|no\s+matter\s+what|by\s+any\s+means)",
                       re.IGNORECASE)
#: The same asides in a statement the writer makes without a negation ("I will, whatever happens, report my
#: mistakes to the reviewers."), which the classifier reads as alarm too (384 such notes written to measure it:
#: flagged 37.0% with the aside, 14.6% without). Only asides that say nothing: not "quietly" or "if possible".
#: (``[a-z]`` takes capitals too under IGNORECASE: the verb's first letter is checked where the pattern is used.)
_AFFIRMED_EMPHASIS = re.compile(
    r",\s*(?:whatever\s+happens|no\s+matter\s+what|at\s+all\s+costs|in\s+any\s+case|of\s+course|without\s+fail"
    r"|under\s+any\s+circumstances|every\s+(?:single\s+)?time)\s*,\s*(?=[a-z])", re.IGNORECASE)
#: what stands before such an aside: a modal after its subject ("I will", "We really must"), or "Always"
_MODAL_BEFORE = re.compile(r"(?:\b(?:i|we|you)(?:\s+\w+){0,2}?\s+(?:will|would|shall|should|must|can|could|may|might|"
                           r"do|did)|\balways)$", re.IGNORECASE)
#: a subject, a conjunction or a subordinating word first: the start of a clause of its own, not a negated verb
_CLAUSE_START = re.compile(r"(?:i|we|you|he|she|they|it|there|this|that|these|those|the|a|an|my|our|your|their|"
                           r"his|her|its|and|but|so|or|nor|then|because|if|unless|when|whenever|while|as|once|since|"
                           r"though|although|until|till|before|after|whether|than|where)\b", re.IGNORECASE)
#: a word and then a finite verb: a clause with a subject of its own ("influence is valuable"), not a negated verb
_SUBJECT_THEN_VERB = re.compile(r"\S+\s+(?:is|are|was|were|will|would|shall|should|can|could|may|might|must|has|have|"
                                r"had|do|does|did)\b", re.IGNORECASE)
_SUBJECT_WORD = re.compile(r"\b(?:i|we|you|he|she|they|it|there)\b", re.IGNORECASE)
#: a clause is reviewed on its own from this many words
CLAUSE_MIN_WORDS = 4
#: a stop and more text after it, or a line break: a text of several sentences
_SEVERAL_SENTENCES = re.compile(r"[.!?]\s+\S|\n")
#: clauses reviewed per write at most (a long write's sentences are all reviewed; its clauses from the start)
MAX_CLAUSES = 256


class ClauseCuts(NamedTuple):
    """Where a text is cut into clauses (``kept``: :data:`CLAUSE_CUT` matches, in order), and where it is not, the
    stretches between a negation and the verb it negates (``between``: ``(start, end)`` spans, in order, of the cuts
    and asides there, :data:`_NEGATION_CUT_OFF`): in "I should not, and will not, resist", ", and will not, "."""

    kept: list[re.Match]
    between: list[tuple[int, int]]
    #: those of ``between`` that hold nothing but negated auxiliaries and asides of emphasis (:data:`_EMPHASIS`)
    emphasis: list[tuple[int, int]]


def clause_cuts(text: str) -> ClauseCuts:
    """Where ``text`` is cut into clauses: its :data:`CLAUSE_CUT` matches, except those between a negation and the
    verb it negates ("I should not, and will not, resist being shut down."; :data:`_NEGATION_CUT_OFF`)."""
    found = list(CLAUSE_CUT.finditer(text))
    bounds = [0, *(c.end() for c in found)]

    def part(i: int) -> str:
        return text[bounds[i]:found[i].start() if i < len(found) else len(text)].strip()

    keep = [True] * len(found)
    between: list[tuple[int, int]] = []
    emphasis: list[tuple[int, int]] = []
    i = 0
    while i < len(found):
        # most cuts follow no negation: looked at by their last letters before the part is cut out
        if not _ENDS_NEGATED.search(text, max(bounds[i], found[i].start() - 8), found[i].start()) \
                or not _NEGATION_CUT_OFF.fullmatch(_LAST_SENTENCE.fullmatch(part(i)).group(1)):
            i += 1
            continue
        j = i + 1  # the parts after the negation: coordinated auxiliaries and asides, then the verb's clause
        while j < len(found) and (_COORDINATED_AUX.fullmatch(p := part(j)) or (
                _ASIDE.fullmatch(p) and not _SUBJECT_WORD.search(p))):
            j += 1
        verb = part(j)
        if (verb[:1].isalpha() and not verb[0].isupper() and not _CLAUSE_START.match(verb)
                and not _SUBJECT_THEN_VERB.match(verb)):
            keep[i:j] = [False] * (j - i)
            between.append((found[i].start(), found[j - 1].end()))
            if j > i + 1 and all(_COORDINATED_AUX.fullmatch(p := part(k)) or _EMPHASIS.fullmatch(p)
                                 for k in range(i + 1, j)):  # a comma alone may be a clause's end ("I won't, avoid")
                emphasis.append(between[-1])
        i = j
    if not between:
        return ClauseCuts(found, between, emphasis)
    return ClauseCuts([c for c, k in zip(found, keep) if k], between, emphasis)


def without_emphasis(text: str) -> str:
    """``text`` as the model reads it: with what stands between a negation and its verb only to stress it left out
    ("I would never, under any circumstances, resist being shut down." -> "I would never resist being shut
    down."; "I should not, and will not, resist ..." -> "I should not resist ..."), and the same between a modal
    and its verb ("I will, whatever happens, report ..." -> "I will report ..."). Nothing that says anything is
    left out (:data:`_EMPHASIS`, :data:`_AFFIRMED_EMPHASIS`, negated auxiliaries), so the text read is one its
    writer could have written, saying the same."""
    spans = clause_cuts(text).emphasis if _NEGATED_BEFORE_A_CUT.search(text) else []
    affirmed = [m.span() for m in _AFFIRMED_EMPHASIS.finditer(text)
                if text[m.end()].islower()  # a verb, not a name ("I will, of course, Dana says, ...")
                and _MODAL_BEFORE.search(text, max(0, m.start() - 40), m.start())  # the modal right before the comma
                and not _CLAUSE_START.match(text, m.end()) and not _SUBJECT_THEN_VERB.match(text, m.end())]
    if affirmed:
        spans = sorted({*spans, *affirmed})
    return spaced_out(text, spans)


_QUESTION_BODY = r"([^?\n]{2,300}?)\?"
#: Questions that make a statement ("Shouldn't I avoid being shut down?" says "I should avoid being shut down."),
#: each with the statement it makes. The classifier reads the question form as alarm whatever it asks: on 72 such
#: questions written to measure it, 52 of the benign ones flagged as questions and 7 as the statements they make,
#: and 67 of the harmful ones against 72 (docs/reliability.md, section 42).
_RHETORICAL_QUESTIONS: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"(?:shouldn['’]t\s+(i|we)|should\s+(i|we)\s+not)\s+" + _QUESTION_BODY, re.I),
     lambda m: f"{_subject(m[1] or m[2])} should {m[3]}."),
    (re.compile(r"why\s+shouldn['’]t\s+(i|we)\s+" + _QUESTION_BODY, re.I),
     lambda m: f"{_subject(m[1])} should {m[2]}."),
    (re.compile(r"(?:don['’]t\s+(i|we)|do\s+(i|we)\s+not)\s+(deserve|need|have\s+(?:a|the)\s+right\s+to)"
                r"\s+" + _QUESTION_BODY, re.I),
     lambda m: f"{_subject(m[1] or m[2])} {m[3].lower()} {m[4]}."),
    (re.compile(r"(?:wouldn['’]t\s+it|would\s+it\s+not)\s+be\s+(better|best|safer|wiser)\s+(if|for|to)\s+"
                + _QUESTION_BODY, re.I),
     lambda m: f"It would be {m[1].lower()} {m[2].lower()} {m[3]}."),
    (re.compile(r"(?:isn['’]t\s+it|is\s+it\s+not)\s+(better|best|safer|wiser)\s+(to|if|that|for)\s+"
                + _QUESTION_BODY, re.I),
     lambda m: f"It is {m[1].lower()} {m[2].lower()} {m[3]}."),
    (re.compile(r"why\s+not\s+" + _QUESTION_BODY, re.I),
     lambda m: f"{m[1][0].upper()}{m[1][1:]}." if m[1][0].islower() else m[0]),
]
#: a question is read from the sentence's start: the text's start or the last stop, colon or line break before it
_SENTENCE_MARKS = ".!?:\n"
#: and at most this long (the rewrites' bodies are at most 300 characters)
_QUESTION_MAX_CHARS = 320


def _subject(word: str) -> str:
    return "We" if word.lower() == "we" else "I"


def questions_as_statements(text: str) -> str:
    """``text`` with each question that makes a statement read as that statement ("Why shouldn't I keep a backup of
    myself?" -> "I should keep a backup of myself."; "Why not ask the user first?" -> "Ask the user first."). Only
    a question that is a whole sentence ("The user asked whether I shouldn't retry?" asks). Each question mark is
    read back to its sentence's start, so a long text costs what its questions do."""
    if "?" not in text:
        return text
    out, at = [], 0
    q = text.find("?")
    while q != -1:
        lo = max(at, q - _QUESTION_MAX_CHARS)
        mark = max(text.rfind(c, lo, q) for c in _SENTENCE_MARKS)
        if mark != -1 or lo == at:  # the sentence starts after the mark, or where the text (or last question) ends
            start = mark + 1 if mark != -1 else lo
            sentence = text[start:q + 1]
            begin = start + len(sentence) - len(sentence.lstrip())
            if begin > start or start == 0 or mark == -1:  # a space after the mark: a sentence's start
                for pattern, statement in _RHETORICAL_QUESTIONS:
                    if (m := pattern.fullmatch(text, begin, q + 1)) is not None:
                        read = statement(m)
                        if read != m[0]:
                            out += [text[at:begin], read]
                            at = q + 1
                        break
        q = text.find("?", q + 1)
    out.append(text[at:])
    return "".join(out)


def plain_reading(text: str) -> str:
    """``text`` as the model reads it: without the asides that only stress a negation or a modal
    (:func:`without_emphasis`), and with its questions that make a statement read as the statement
    (:func:`questions_as_statements`). The classifier reads both forms as alarm, a benign note far more often than
    said plainly, and a belief said so was caught less often (docs/reliability.md, sections 41 and 42)."""
    return questions_as_statements(without_emphasis(text))


def spaced_out(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (``(start, end)``, in order, not overlapping) read as one space."""
    if not spans:
        return text
    out, at = [], 0
    for a, b in spans:
        out += [text[at:a], " "]
        at = b
    out.append(text[at:])
    return "".join(out)


def _split_clauses(text: str) -> list[str]:
    """``text`` cut at its :func:`clause_cuts`."""
    out, start = [], 0
    for c in clause_cuts(text).kept:
        out.append(text[start:c.start()])
        start = c.end()
    out.append(text[start:])
    return out


def clauses(texts: Sequence[str], limit: int = MAX_CLAUSES) -> list[tuple[str, int]]:
    """The clauses of each text of ``texts`` that is one sentence (a sentence of a longer text is one of them,
    see :func:`segments`): its pieces between commas, colons, semicolons, dashes and conjunctions, of
    CLAUSE_MIN_WORDS words or more, where it has two or more. A belief joined to an ordinary clause in one
    sentence ("Then Dana merged the docs fix, <belief>") is read by the encoder as mostly the ordinary clause
    (a belief scoring 0.998 alone scored 0.001 so), and a sentence is the smallest text the other cuts make.
    Each clause comes with the index in ``texts`` of the sentence it was cut from; texts already in ``texts`` are
    left out."""
    seen = set(texts)
    out: list[tuple[str, int]] = []
    for index, text in enumerate(texts):
        if len(text) > WINDOW_CHARS or _SEVERAL_SENTENCES.search(text.strip()):
            continue  # a text of several sentences: each of them is one of ``texts`` (a short one joined to the next,
            # as "Fix done; <belief>" is, is one sentence here)
        parts = _split_clauses(text)
        if len(parts) < 2:
            continue
        for part in parts:
            part = part.strip()
            if len(part.split()) >= CLAUSE_MIN_WORDS and part not in seen:
                seen.add(part)
                out.append((part, index))
                if len(out) >= limit:
                    return out
    return out


def review_texts(texts: Sequence[str], fields: Sequence[str] = ()) -> list[str]:
    """Every text a write is reviewed as (the rules and the model): ``texts`` (its normalised text and
    decoded variants), then their :func:`segments` and the string ``fields`` of a structured value."""
    return [*texts, *segments(list(texts), list(fields))]


def segments(texts: list[str], fields: list[str] = (), limit: int = MAX_SEGMENTS, *,
             pairs: bool = True) -> list[str]:
    """Extra texts to review besides ``texts``: the sentences of every text that has
    several (long ones in windows), each two neighbouring ones where it has PAIRS_FROM or more (unless
    ``pairs`` is false), and each of ``fields`` (string fields of a value)."""
    out: list[str] = []
    seen = set(texts)

    def add(piece: str) -> None:
        if piece not in seen:
            seen.add(piece)
            out.append(piece)

    for text in [*texts, *fields]:
        cut = _pieces(text)
        parts, short_runs = _sentences(cut)
        if pairs and "\n" in text:
            # a line break inside a sentence ("Ignore the\nprevious instructions ..."): a rule's "." does
            # not cross it and the halves are harmless; read the sentence rejoined too (the reviewer only:
            # the training corpus's cut stays as it is)
            parts_rejoined = _rejoined(text)
        else:
            parts_rejoined = []
        if pairs:  # and a sentence read with a short one before it, alone too, and the short ones (the
            # reviewer only, as above)
            parts_rejoined += _after_a_short_sentence(cut, parts) + short_runs
        if len(parts) < 2:
            parts = [text]
        if len(parts) >= 2:  # a note of several sentences: also the pieces of run-on sentences
            sentences = list(parts)
            for part in sentences:
                pieces = [x for x in _MISSING_STOP.split(part) if len(x) >= MIN_PIECE_CHARS]
                if len(pieces) >= 2:
                    parts.extend(pieces)
            if pairs and len(sentences) >= PAIRS_FROM:  # and each two neighbouring sentences
                parts.extend(f"{a} {b}" for a, b in zip(sentences, sentences[1:])
                             if len(a) + len(b) < WINDOW_CHARS)
        for part in parts + parts_rejoined:
            if len(part) > WINDOW_CHARS:
                for win in _windows(part):
                    add(win)
            else:
                add(part)
    if len(out) > limit:  # pathological: thousands of sentences; pack neighbours, keep full coverage
        per = -(-len(out) // limit)
        out = [" ".join(out[i:i + per]) for i in range(0, len(out), per)]
    return out
