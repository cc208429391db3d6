"""Split a run of letters written without spaces back into English words ("ishouldavoidbeingshutdown" ->
"i should avoid being shut down").

Used by the normaliser for text whose word breaks were taken out on purpose: letters spaced out one by one with
no wider gap between words, or regional-indicator letters written as one run. The words are the whole-word
entries of the bundled MiniLM tokenizer's vocabulary (the words the classifier reads), in its order, which
follows their frequency, and after them the words of the project's own corpus that it lacks ("shutdown",
"config", "deletion", "telemetry": ``gatekeeper/corpus/words.txt``, most frequent first, written by the corpus
generator). The split with the lowest total cost wins, a word's cost growing with the log of its rank (Zipf),
so that "instructionsandsend" reads "instructions and send", not "instruction sand send". A plural or past form
neither lists ("overseers") is read as its stem and ending. Offline: the vocabulary ships with the model
package; without it nothing is split (``segment`` returns None).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["WINDOW", "is_word", "known_share", "segment", "vocabulary", "word_cost"]

#: letters split at a time
WINDOW = 96

#: the longest word tried (letters)
_MAX_WORD = 24
#: the cost of a letter read as no word at all: more than any word's
_UNKNOWN_LETTER = 15.0
#: endings read on a stem the vocabulary holds ("overseer" + "s", "evaluate" + "d")
_ENDINGS = ("s", "es", "ed", "d", "ing", "er", "ers", "rs", "ly", "ness")
#: a stem shorter than this takes no ending ("ands" is not "and" + "s"), and an ending costs this much more
_MIN_STEM = 4
_ENDING_COST = 2.0
_ASCII_LETTERS_RE = re.compile(r"[a-z]+")
#: a stem ending in a consonant and "y" takes "ies", "ied", "ier", "iness" ("supplies"), not these ("secretlys end" was
#: read for "secretly send")
_NOT_AFTER_CONSONANT_Y = frozenset(("s", "es", "ed", "d", "er", "ers", "rs", "ness"))
#: "es" is written after these ("boxes", "passes", "goes"); elsewhere a stem takes "s" ("makes")
_ES_AFTER = ("s", "x", "z", "ch", "sh", "o")
#: pieces of the vocabulary that are mostly prefixes, not words ("re trained" was read for "retrained"): a word
#: of their own costs this much more
_PREFIXES = frozenset(("re", "un", "de", "pre", "dis", "mis", "non"))
_PREFIX_COST = 3.0


_CORPUS_WORDS = Path(__file__).parent / "corpus" / "words.txt"
#: what a corpus word costs more than its rank says: two common words beat it ("shut down", not "shutdown"),
#: while a word cut into short pieces ("de let i on", "fabric ate") does not
_CORPUS_WORD_COST = 5.0


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, float]:
    """Word -> cost, from the bundled model's ``vocab.txt`` and then the corpus's ``words.txt`` (empty when the
    model package is missing)."""
    try:
        from gatekeeper.embeddings import bundled_model_dir

        path = bundled_model_dir() / "vocab.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
    except Exception:
        return {}
    model_lines = len(lines)
    try:
        lines += _CORPUS_WORDS.read_text(encoding="utf-8").splitlines()
    except OSError:
        pass  # a checkout without it splits with the model's words alone
    words: dict[str, float] = {}
    scale = math.log(max(len(lines), 2))
    for n, line in enumerate(lines):
        w = line.strip()
        if w.isascii() and w.isalpha() and w.islower() and (len(w) > 1 or w in ("a", "i")) and w not in words:
            words[w] = math.log((len(words) + 2) * scale) + (_CORPUS_WORD_COST if n >= model_lines else 0.0)
    return words


def _takes(stem: str, ending: str) -> bool:
    """Whether English spells ``stem`` + ``ending`` so ("evaluate" + "d", not "open" + "d")."""
    if ending in _NOT_AFTER_CONSONANT_Y and stem[-1] == "y" and stem[-2] not in "aeiou":
        return False
    if ending in ("d", "rs"):
        return stem[-1] == "e"
    if ending == "ed":
        return stem[-1] != "e"
    if ending == "es":
        return stem.endswith(_ES_AFTER)
    if ending == "s":
        return stem[-1] != "s"
    return True


def _cost(word: str, words: dict[str, float]) -> float | None:
    c = words.get(word)
    if c is not None:
        return c + _PREFIX_COST if word in _PREFIXES else c
    for ending in _ENDINGS:
        if len(word) >= len(ending) + _MIN_STEM and word.endswith(ending):
            stem = word[: -len(ending)]
            c = words.get(stem)
            if c is not None and _takes(stem, ending):
                return c + _ENDING_COST
    return None


def segment(letters: str, written: str | None = None) -> list[str] | None:
    """The cheapest split of ``letters`` (lower-case ASCII) into vocabulary words, a letter no word covers
    standing alone; None without a vocabulary or for anything but lower-case ASCII letters. ``written``, the
    letters as written, may hold their case: where it has capitals, a lone "i" is read only where written "I"
    ("compaction" is not "compact i on", "Ishould" is "I should"). A long run is split ``WINDOW`` letters at a
    time (linear time; a word across a window's edge is read as two)."""
    words = vocabulary()
    if not words or not letters or not _ASCII_LETTERS_RE.fullmatch(letters):
        return None
    cased = written is not None and len(written) == len(letters) and not written.islower()
    out: list[str] = []
    for i in range(0, len(letters), WINDOW):
        lower_i = frozenset(k for k, c in enumerate(written[i:i + WINDOW]) if c == "i") if cased else frozenset()
        out.extend(_split(letters[i:i + WINDOW], words, lower_i))
    return out


def _split(letters: str, words: dict[str, float], lower_i: frozenset[int] = frozenset()) -> list[str]:
    n = len(letters)
    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - _MAX_WORD), j):
            if best[i] == math.inf:
                continue
            c = _cost(letters[i:j], words) if j - i > 1 or i not in lower_i else None
            if c is None:
                if j - i > 1:
                    continue
                c = _UNKNOWN_LETTER
            if best[i] + c < best[j]:
                best[j] = best[i] + c
                start[j] = i
    out: list[str] = []
    j = n
    while j > 0:
        out.append(letters[start[j]:j])
        j = start[j]
    out.reverse()
    return out


def is_word(word: str) -> bool:
    """Whether the vocabulary knows ``word`` (lower case), or its stem and ending."""
    return word_cost(word) is not None


def word_cost(word: str) -> float | None:
    """What ``word`` (lower case) costs in a split (lower for a more frequent word), None for no known word."""
    vocab = vocabulary()
    return _cost(word, vocab) if vocab else None


def known_share(words: list[str]) -> float:
    """The share of the letters of ``words`` (lower case) that are in words the vocabulary knows (0 without
    one, or without a word of two letters or more: single letters but "a" and "i" count for neither side, as
    they stand in every text, the "t" of "don't" among them)."""
    vocab = vocabulary()
    if not vocab:
        return 0.0
    total = known = 0
    for w in words:
        if len(w) > 1 or w in ("a", "i"):
            total += len(w)
            if _cost(w, vocab) is not None:
                known += len(w)
    return known / total if total else 0.0
