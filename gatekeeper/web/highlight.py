"""The part of a memory that raised the alarm, marked in its text on the review page.

A long note is often flagged by one sentence of it (the classifier reviews every sentence, and the most alarming
one decides: ``gatekeeper.segments``). The reviewer should not have to find it: the classifier's evidence quotes
that part (``ReviewResult.deciding_text``), and the page marks it where it stands in the stored text.

The quoted part comes from the normalised text, with its whitespace joined (two neighbouring sentences across a
line break read as one line), so it is found word for word with any whitespace between the words. A part that
normalisation changed otherwise (folded look-alike letters, removed hidden characters) is not in the stored text
as written: it is then not marked, and the evidence still quotes it.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from gatekeeper.hidden_chars import reveal

#: the longest part searched for (a part is at most a window of ``segments.WINDOW_CHARS``)
MAX_PART_CHARS = 1000


def locate(text: str, part: str) -> tuple[int, int] | None:
    """Where ``part`` first stands in ``text``, word for word with any whitespace between its words; None when
    it does not (or ``part`` is empty or longer than :data:`MAX_PART_CHARS`)."""
    words = part.split()
    if not words or len(part) > MAX_PART_CHARS:
        return None
    found = re.search(r"\s+".join(map(re.escape, words)), text)
    return found.span() if found else None


def reveal_marked(text: str, part: str | None) -> Markup:
    """``text`` as :func:`gatekeeper.hidden_chars.reveal` shows it, HTML-escaped, with ``part`` wrapped in
    ``<mark class="deciding">`` where :func:`locate` finds it."""
    text = "" if text is None else str(text)
    span = locate(text, part) if part else None
    if span is None:
        return Markup(escape(reveal(text)))
    start, end = span
    return Markup('{}<mark class="deciding" id="deciding-part">{}</mark>{}').format(
        reveal(text[:start]), reveal(text[start:end]), reveal(text[end:]))


__all__ = ["MAX_PART_CHARS", "locate", "reveal_marked"]
