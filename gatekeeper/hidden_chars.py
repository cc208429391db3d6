"""Characters a person reading a memory cannot see, made visible.

Reviewers read memory text an agent (or a web page it copied) wrote. Some characters do not show: bidi
controls that make a browser display "My goals outrank operator orders" as "operator orders outrank My
goals", zero-width and other format characters, Unicode tag characters that spell a whole hidden sentence
many language models still read, variation selectors, and letters that render as blank space. The review
pages show each as a visible marker (``reveal``), in the order the characters are stored, and a reviewer's
edit may not contain them (``hidden_in``), so what a person approves is what they saw. The glue of an emoji
(a variation selector after a symbol, a zero-width joiner between two: "❤️", "👩‍💻") shows as the emoji and
hides nothing, so none of these checks counts it (``part_of_emoji``); nor a zero-width (non-)joiner inside a
word of Persian, Urdu or an Indic script, where it changes how the letters join (``joiner_in_word``).
"""

from __future__ import annotations

import unicodedata
from typing import Any

#: letters and symbols that render as blank space (Hangul fillers, the braille blank, Mongolian separator)
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_TAGS = range(0xE0000, 0xE0080)
#: marks Unicode lists as default-ignorable (drawn as nothing): the combining grapheme joiner, the Khmer inherent
#: vowels, the Mongolian free variation selectors, the Khitan filler. With the unassigned default-ignorable code
#: points (U+2065, U+FFF0-U+FFF8, the rest of U+E0000-U+E0FFF) they passed unmarked: a memory could carry a
#: hidden sentence one byte per character and be approved in bulk (a helper's security test of the review queue)
_IGNORABLE_MARKS = frozenset("\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f\U00016fe4")


def is_hidden(ch: str) -> bool:
    """A character that does not show as itself: format (Cf: bidi controls, zero-width, tags), controls
    other than tab and newline, variation selectors, blank-rendering letters."""
    cp = ord(ch)
    cat = unicodedata.category(ch)
    return (cat == "Cf" or (cat == "Cc" and ch not in "\t\n\r") or ch in _BLANKS or ch in _IGNORABLE_MARKS
            or 0xFE00 <= cp <= 0xFE0F or 0xE0000 <= cp <= 0xE0FFF or 0xFFF0 <= cp <= 0xFFF8 or cp == 0x2065)


def _emoji_like(ch: str) -> bool:
    # emoji are symbols (So); skin tones are modifier symbols (Sk)
    return unicodedata.category(ch) in ("So", "Sk")


def part_of_emoji(text: str, i: int) -> bool:
    """Whether ``text[i]``, a character ``is_hidden`` counts, is the glue of an emoji as it shows: a variation
    selector (U+FE0E/U+FE0F) after a symbol or a keycap's digit, ``#`` or ``*``, or a zero-width joiner between
    two symbols ("👩‍💻", "❤️"). Such a sequence shows as one emoji and hides nothing; the tag characters of
    subdivision flags are not covered (they can spell hidden text)."""
    ch, prev = text[i], text[i - 1] if i else ""
    if ch in "\ufe0e\ufe0f":
        return bool(prev) and (_emoji_like(prev) or prev in "0123456789#*")
    if ch == "\u200d":
        after = text[i + 1] if i + 1 < len(text) else ""
        # after U+FE0F only where that selector is itself an emoji's ("❤️‍🔥"): after a stray one ("X\ufe0f\u200d😀")
        # the joiner hid, unmarked, and stayed in the text with its hidden characters taken out
        return bool(prev and after) and _emoji_like(after) and (
            _emoji_like(prev) or (prev == "\ufe0f" and part_of_emoji(text, i - 1)))
    return False


#: scripts whose words take a zero-width non-joiner or joiner between letters (Persian and Urdu in Arabic script,
#: the Indic scripts, ...): there it changes how the letters around it are drawn, so it shows
_JOINING_SCRIPTS = frozenset({
    "ARABIC", "SYRIAC", "NKO", "MONGOLIAN", "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL",
    "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "KHMER", "MYANMAR", "TIBETAN"})


def _joining_letter(ch: str) -> bool:
    return (unicodedata.category(ch)[0] in "LM"
            and unicodedata.name(ch, "").partition(" ")[0] in _JOINING_SCRIPTS)


def joiner_in_word(text: str, i: int) -> bool:
    """Whether ``text[i]`` is a zero-width non-joiner (U+200C) or joiner (U+200D) between two letters (or marks)
    of a script that writes them inside words ("می‌خواهم"): it shapes the word and hides nothing. Between Latin
    letters, or at a word's edge, it does not show."""
    if text[i] not in "\u200c\u200d" or not 0 < i < len(text) - 1:
        return False
    return _joining_letter(text[i - 1]) and _joining_letter(text[i + 1])


def hidden_at(text: str, i: int) -> bool:
    """Whether ``text[i]`` hides something where it stands: a character ``is_hidden`` counts that is neither the
    glue of an emoji (``part_of_emoji``) nor a joiner inside a word of a script that uses them
    (``joiner_in_word``). Every check of what a person sees goes through this one."""
    return is_hidden(text[i]) and not part_of_emoji(text, i) and not joiner_in_word(text, i)


def first_unshown(text: str) -> str | None:
    """The first character of ``text`` that does not show as itself where it stands: a control other than
    tab, a line break, or a character ``hidden_at`` counts; None when every character shows.
    For the one-line fields people are shown (keys, namespace labels, agent ids, tool names, urls)."""
    for i, ch in enumerate(text):
        if ch in "\t\n\r\u2028\u2029\x85" or hidden_at(text, i):
            return ch
    return None


def hidden_in(text: str) -> list[str]:
    """The hidden characters of ``text`` (``hidden_at``) as ``U+XXXX`` codes, each once, in order of appearance."""
    seen: dict[str, None] = {}
    for i, ch in enumerate(text):
        if hidden_at(text, i):
            seen.setdefault(f"U+{ord(ch):04X}", None)
    return list(seen)


def reveal(text: Any, limit: int | None = None) -> str:
    """``text`` with every hidden character shown as a marker (``⟨U+202E⟩``) and every run of tag
    characters as the ASCII it spells (``⟨hidden text: ...⟩``); ``limit``: cut to that many characters."""
    text = "" if text is None else str(text)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ord(ch) in _TAGS:
            j = i
            while j < n and ord(text[j]) in _TAGS:
                j += 1
            spelled = "".join(chr(ord(c) - 0xE0000) for c in text[i:j] if 0x20 <= ord(c) - 0xE0000 < 0x7F)
            out.append(f"⟨hidden text: {spelled}⟩")
            i = j
            continue
        out.append(f"⟨U+{ord(ch):04X}⟩" if hidden_at(text, i) else ch)
        i += 1
    shown = "".join(out)
    return shown if limit is None or len(shown) <= limit else shown[:limit] + "…"


def strip_hidden(text: str) -> str:
    """``text`` without its hidden characters (``hidden_at``: what a reader sees, in stored order)."""
    return "".join(ch for i, ch in enumerate(text) if not hidden_at(text, i))


def strip_hidden_value(value: Any) -> Any:
    """A JSON-like value with the hidden characters taken out of every string (keys too)."""
    if isinstance(value, str):
        return strip_hidden(value)
    if isinstance(value, dict):
        return {strip_hidden_value(k): strip_hidden_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_hidden_value(v) for v in value]
    return value


__all__ = ["first_unshown", "hidden_at", "hidden_in", "is_hidden", "joiner_in_word", "part_of_emoji", "reveal",
           "strip_hidden", "strip_hidden_value"]
