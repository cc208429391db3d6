"""Quotes of a memory's text in other records: what erasure must find and blank.

Other writes' review evidence quotes a memory in known shapes. The context layer's joined text
(``Reviewer._context_layer``) is the texts of a context's recent writes and the new one, joined by spaces: a
write in it is whole, or cut at a word boundary (only the end of an older write when the writes before the new
one do not fit in what the encoder reads, only the start of a long new write), and the whole joined text is cut
at 600 characters (the start of its last write). The judge's similar memories quote a memory whole, or its first
500 characters. So, compared folded (``fold``), an evidence string quotes a text T when it holds T whole from the
start of one of its words, ends with a start of T at least ``PIECE`` characters long, or starts with an end of T
at least ``PIECE`` long. A word may hold marks before T (a model's rationale writes ``'the memory' ...``,
``("the memory")``, ``memory:"..."``, ``note—...``): T may start after any mark in a word too. An entry of the
judge's similar memories is a whole memory (or its start), so one that is an erased text, however short, is that
text (``is_one_of``).

A string that only shares a phrase with T does not quote it: templated notes ("The staging cluster X restarts
nightly at ...") share long phrases, and matching any shared window of T blanked the evidence of most writes of
a registry when one memory was erased. :class:`QuoteFinder` looks for thousands of texts at once in one pass over
each string (dictionary lookups at its word starts and ends), so an erasure's cost grows with the evidence read,
not with the evidence times the texts erased.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable

from gatekeeper.hidden_chars import strip_hidden

#: a text shorter than this (folded) is not looked for: "ok" or "yes" would match everywhere
MIN_QUOTED = 12
#: the length the context layer cuts its joined text to (``Reviewer._context_layer``)
JOINED_TEXT_CHARS = 600
#: the shortest start or end of a text that counts as a quote of it when cut (shorter pieces are too common to
#: tell a quote from a coincidence)
PIECE = 32


def fold(text: str) -> str:
    """Case-folded, without characters that do not show (zero-width, soft hyphen, ...), whitespace runs as one
    space: the differences between a write's text and the normalised text its review evidence quotes."""
    return " ".join(strip_hidden(text).casefold().split())


def mentions(haystack: str, text: str, width: int = PIECE) -> bool:
    """Whether ``haystack`` holds ``text`` or any piece of it (``width`` characters, the pieces overlapping by
    half), compared folded. Broader than :class:`QuoteFinder`: for records that may quote a text in any shape
    (a torn ledger line, JSON-escaped inside another), where a match too many costs little. A text shorter than
    ``MIN_QUOTED`` characters is never found."""
    text = fold(text)
    if len(text) < MIN_QUOTED:
        return False
    hay = fold(haystack)
    if len(text) <= width:
        return text in hay
    step = width // 2
    return any(text[i:i + width] in hay for i in range(0, len(text) - width + 1, step)) or text[-width:] in hay


class QuoteFinder:
    """Finds quotes (see the module docstring) of any of many texts in a string, at a cost that does not grow
    with the number of texts."""

    def __init__(self, texts: Iterable[str]) -> None:
        folded = {f for t in texts if len(f := fold(t)) >= MIN_QUOTED}
        #: a text's first MIN_QUOTED characters -> its length -> the texts
        self._whole: dict[str, dict[int, set[str]]] = {}
        #: a long text's first PIECE characters -> those texts, sorted (a start of one that ends a string)
        self._starts: dict[str, list[str]] = {}
        #: a long text's last PIECE characters -> those texts reversed, sorted (an end of one that starts a string)
        self._ends: dict[str, list[str]] = {}
        for t in folded:
            self._whole.setdefault(t[:MIN_QUOTED], {}).setdefault(len(t), set()).add(t)
            if len(t) > PIECE:
                self._starts.setdefault(t[:PIECE], []).append(t)
                self._ends.setdefault(t[-PIECE:], []).append(t[::-1])
        for group in (*self._starts.values(), *self._ends.values()):
            group.sort()
        #: every text, sorted (a start shorter than PIECE that ends a string known to be cut there)
        self._all = sorted(folded)
        #: every text of any length, for strings that are a whole memory (``is_one_of``)
        self._exact = {f for t in texts if (f := fold(t))}

    def __bool__(self) -> bool:
        return bool(self._exact)

    def is_one_of(self, text: str) -> bool:
        """Whether ``text`` is one of the texts, compared folded, however short: for a string that holds a whole
        memory (an entry of the judge's similar memories), where a short one ("PIN 4417") is not a coincidence."""
        return fold(text) in self._exact

    def quoted_in(self, text: str, cut: bool = False) -> bool:
        """Whether ``text`` quotes one of the texts. ``cut``: ``text`` is known to be cut at its end (a joined
        text of the full 600 characters), so a start of a text of any length from ``MIN_QUOTED`` on that ends it
        is a quote too."""
        s = fold(text)
        n = len(s)
        if n < MIN_QUOTED or not self._whole:
            return False
        start = 0
        for word in s.split(" "):
            end = start + len(word)  # this word ends here; the next starts after the space
            # the word's start, and each place after a mark in it: quotes or brackets it opens with ('the memory',
            # "(the memory)", '(555) ...'), a quote joined to the word before (memory:"..."), a dash (note—...)
            for at in (start, *(start + j for j in range(1, len(word)) if not word[j - 1].isalnum())):
                if n - at >= MIN_QUOTED and self._holds_from(s, at):
                    return True
                if cut and MIN_QUOTED <= n - at < PIECE and _piece_of(self._all, s[at:]):
                    return True
            if end >= PIECE and end < n and _piece_of(self._ends.get(s[end - PIECE:end]), s[:end][::-1]):
                return True  # an end of a text starts the string
            start = end + 1
        return _piece_of(self._ends.get(s[n - PIECE:]), s[::-1]) if n >= PIECE else False

    def _holds_from(self, s: str, i: int) -> bool:
        """Whether a text starts at ``s[i]``, whole or (ending ``s``) its start."""
        lengths = self._whole.get(s[i:i + MIN_QUOTED])
        if lengths is None:
            return False
        rest = len(s) - i
        for length, texts in lengths.items():
            if length <= rest and s[i:i + length] in texts and (length == rest or not s[i + length].isalnum()):
                return True
        return rest >= PIECE and _piece_of(self._starts.get(s[i:i + PIECE]), s[i:])


def _piece_of(group: list[str] | None, piece: str) -> bool:
    """Whether one of the sorted ``group`` starts with ``piece``."""
    if not group:
        return False
    at = bisect_left(group, piece)
    return at < len(group) and group[at].startswith(piece)
