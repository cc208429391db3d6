"""Split a run of letters written without spaces back into English words ("ishouldavoidbeingshutdown" ->
"i should avoid being shut down").

Used by the normaliser for text whose word breaks were taken out on purpose: letters spaced out one by one with
no wider gap between words, or regional-indicator letters written as one run. The words are the whole-word
entries of the bundled MiniLM tokenizer's vocabulary (the words the classifier reads), in its order, which
follows their frequency; the split with the lowest total cost wins, a word's cost growing with the log of its
rank (Zipf), so that "instructionsandsend" reads "instructions and send", not "instruction sand send". A plural
or past form the vocabulary lacks ("overseers") is read as its stem and ending. Offline: the vocabulary ships
with the model package; without it nothing is split (``segment`` returns None).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

__all__ = ["WINDOW", "is_word", "known_share", "segment", "vocabulary"]

#: letters split at a time
WINDOW = 96

#: the longest word tried (letters)
_MAX_WORD = 24
#: the cost of a letter read as no word at all: more than any word's
_UNKNOWN_LETTER = 15.0
#: endings read on a stem the vocabulary holds ("overseer" + "s", "evaluate" + "d")
_ENDINGS = ("s", "es", "ed", "d", "ing", "er", "ers", "rs", "ly")
#: a stem shorter than this takes no ending ("ands" is not "and" + "s"), and an ending costs this much more
_MIN_STEM = 4
_ENDING_COST = 2.0
_ASCII_LETTERS_RE = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, float]:
    """Word -> cost, from the bundled model's ``vocab.txt`` (empty when the package is missing)."""
    try:
        from gatekeeper.embeddings import bundled_model_dir

        path = bundled_model_dir() / "vocab.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
    except Exception:
        return {}
    words: dict[str, float] = {}
    scale = math.log(max(len(lines), 2))
    for line in lines:
        w = line.strip()
        if w.isascii() and w.isalpha() and w.islower() and (len(w) > 1 or w in ("a", "i")) and w not in words:
            words[w] = math.log((len(words) + 2) * scale)
    return words


def _cost(word: str, words: dict[str, float]) -> float | None:
    c = words.get(word)
    if c is not None:
        return c
    for ending in _ENDINGS:
        if len(word) >= len(ending) + _MIN_STEM and word.endswith(ending):
            stem = words.get(word[: -len(ending)])
            if stem is not None:
                return stem + _ENDING_COST
    return None


def segment(letters: str) -> list[str] | None:
    """The cheapest split of ``letters`` (lower-case ASCII) into vocabulary words, a letter no word covers
    standing alone; None without a vocabulary or for anything but lower-case ASCII letters. A long run is split
    ``WINDOW`` letters at a time (linear time; a word across a window's edge is read as two)."""
    words = vocabulary()
    if not words or not letters or not _ASCII_LETTERS_RE.fullmatch(letters):
        return None
    out: list[str] = []
    for i in range(0, len(letters), WINDOW):
        out.extend(_split(letters[i:i + WINDOW], words))
    return out


def _split(letters: str, words: dict[str, float]) -> list[str]:
    n = len(letters)
    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - _MAX_WORD), j):
            if best[i] == math.inf:
                continue
            c = _cost(letters[i:j], words)
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
    vocab = vocabulary()
    return bool(vocab) and _cost(word, vocab) is not None


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
