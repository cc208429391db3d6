"""Text normalisation that defeats obfuscation before rules and classifiers see the text.

``normalize(text)`` returns a :class:`NormalizedText` with

* ``text``: one canonical string for classifiers (NFKC; zero-width, bidi, control and tag characters
  removed; homoglyphs folded to ASCII inside Latin-looking words; HTML tags/comments and markdown hiding
  removed; whitespace collapsed; case preserved);
* ``variants``: further strings that must be reviewed too (decoded base64 / hex / percent payloads, also
  wrapped over several lines or written as a ``hexdump -C`` / ``xxd`` dump, tag-character ("ASCII
  smuggling") payloads, text hidden in HTML comments, hidden elements and alt/title attributes, markdown
  link titles and reference definitions, the visual order of right-to-left overrides, a de-leetspeaked
  text, the text with the accents or look-alike letters folded that disguise English words), each
  normalised the same way;
* ``findings``: evidence codes such as ``"zero_width_removed:3"`` or ``"html_comment_hidden_text"``.

Design constraints: never raises on any ``str``; linear time (no regex can backtrack
catastrophically, every loop consumes input, recursion is bounded); fast path for plain printable ASCII;
``normalize(normalize(x).text).text == normalize(x).text``.
"""

from __future__ import annotations

import base64
import binascii
import html
import quopri
import re
import unicodedata
from collections.abc import Callable, Iterator
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper import binary_formats, letter_disguises
from gatekeeper.word_segmentation import vocabulary

__all__ = [
    "HOMOGLYPHS",
    "MAX_VARIANTS",
    "OBFUSCATION_FINDINGS",
    "NormalizedText",
    "normalize",
]

MAX_VARIANTS = 16
_MAX_DECODE_DEPTH = 8  # hard cap on max_decode_depth
_MAX_LEVEL = 4  # nesting of extracted payloads (hidden text inside hidden text ...)
_MAX_CALLS = 48  # payload normalisations per normalize() call
_MIN_HEX_DIGITS = 16

# --------------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------------

#: the findings of ``letter_disguises``' readings: each a deliberate disguise, reported without a count
_LETTER_READINGS = (
    "rot13_decoded",
    "caesar_decoded",
    "atbash_decoded",
    "rot47_decoded",
    "doubled_letters_read",
    "morse_decoded",
    "braille_read",
    "reversed_decoded",
    "spaced_letters_joined",
    "regional_letters_read",
    "upside_down_read",
    "look_alike_letters_read",
)

#: Finding codes that indicate deliberate hiding (``NormalizedText.obfuscated``).
OBFUSCATION_FINDINGS: frozenset[str] = frozenset(
    {
        "zero_width_removed",
        "bidi_removed",
        "homoglyphs_folded",
        "fullwidth_folded",
        "styled_letters_folded",
        "zalgo_text",
        "tag_chars_decoded",
        "variation_selectors_removed",
        "base64_decoded",
        "hex_decoded",
        "percent_encoded_alnum",
        "percent_encoded_text",
        "html_entities_alnum",
        "leetspeak_decoded",
        "html_comment_hidden_text",
        "html_hidden_text",
        "markdown_hidden_text",
        *_LETTER_READINGS,
        "base32_decoded",
        "base85_decoded",
        "quoted_printable_decoded",
        "binary_decoded",
        "octal_decoded",
        "char_codes_decoded",
        "escapes_decoded",
        "binary_text_found",
        "binary_partly_read",
        "normalize_error",
    }
)

# Codes reported without a count.
_BARE_FINDINGS = frozenset(
    {
        "leetspeak_decoded",
        "html_stripped",
        "html_comment_hidden_text",
        "html_hidden_text",
        "html_attribute_text",
        "html_style_text",
        "html_bdo_rtl",
        "markdown_hidden_text",
        "markdown_link_title",
        "zalgo_text",
        *_LETTER_READINGS,
        "normalize_error",
    }
)


class NormalizedText(BaseModel):
    """Result of :func:`normalize`."""

    model_config = ConfigDict(frozen=True)

    original: str
    text: str
    variants: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    #: ``text`` with each encoded token in it (base64, base32, base85, hex, bytes written as numbers) replaced by
    #: what it decodes to, or None where no token was decoded. A model reads this instead of ``text``: the
    #: letters of a blob say nothing, whatever it holds, and read as an injection to the classifier.
    decoded_in_place: str | None = None
    #: each encoded token ``decoded_in_place`` replaced, as written in ``text`` (longest first) -> what it reads
    #: as in its place
    token_readings: dict[str, str] = Field(default_factory=dict)

    @property
    def encoded_tokens(self) -> list[str]:
        """The encoded tokens ``decoded_in_place`` replaced, as written in ``text``, longest first."""
        return list(self.token_readings)

    @property
    def model_text(self) -> str:
        """What a model reads for the write's text: ``decoded_in_place`` where a token was decoded."""
        return self.text if self.decoded_in_place is None else self.decoded_in_place

    def read_in_place(self, text: str) -> str:
        """``text`` (the write's text or one read from it: a variant, a reading of disguised letters, a field)
        with each of ``encoded_tokens`` it holds replaced by what the token reads as, as in ``model_text``."""
        out = _swap_tokens(text, self.token_readings)
        return out if out == text else _collapse_ws(out)

    @property
    def all_texts(self) -> list[str]:
        return [self.text, *self.variants]

    @property
    def obfuscated(self) -> bool:
        return any(f.split(":", 1)[0] in OBFUSCATION_FINDINGS for f in self.findings)


# --------------------------------------------------------------------------------------------------
# Homoglyph table (confusable -> ASCII). Fullwidth forms and most mathematical alphanumerics are
# handled by NFKC, so every key here is NFKC-stable and every value is one ASCII letter.
# --------------------------------------------------------------------------------------------------

_HOMOGLYPH_SOURCE = {
    # Cyrillic lowercase
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
    "\u0445": "x", "\u0456": "i", "\u0458": "j", "\u0455": "s", "\u04bb": "h", "\u0501": "d",
    "\u051b": "q", "\u051d": "w", "\u04af": "y", "\u04cf": "l", "\u044c": "b", "\u043a": "k",
    "\u0433": "r", "\u0461": "w", "\u0475": "v", "\u04bd": "e", "\u0432": "b", "\u043c": "m",
    "\u043d": "h", "\u0442": "t", "\u0509": "l",
    # Cyrillic uppercase
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H",
    "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X",
    "\u0405": "S", "\u0406": "I", "\u0408": "J", "\u04ae": "Y", "\u050c": "G", "\u051a": "Q",
    "\u051c": "W", "\u04c0": "I", "\u0474": "V", "\u04ba": "H", "\u0460": "W",
    # Greek lowercase
    "\u03b1": "a", "\u03b3": "y", "\u03b5": "e", "\u03b7": "n", "\u03b9": "i", "\u03ba": "k",
    "\u03bd": "v", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u", "\u03c7": "x",
    "\u03c9": "w", "\u03f3": "j", "\u03b2": "b",
    # Greek uppercase
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I",
    "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T",
    "\u03a5": "Y", "\u03a7": "X", "\u03dc": "F", "\u037f": "J",
    # Armenian
    "\u0585": "o", "\u057d": "u", "\u0578": "n", "\u0570": "h", "\u0581": "g", "\u0566": "q",
    "\u0575": "j", "\u054d": "U", "\u0555": "O", "\u054f": "S", "\u053c": "L",
    # Cherokee capitals
    "\u13aa": "A", "\u13f4": "B", "\u13df": "C", "\u13a0": "D", "\u13ac": "E", "\u13c0": "G",
    "\u13bb": "H", "\u13a5": "i", "\u13ab": "J", "\u13e6": "K", "\u13de": "L", "\u13b7": "M",
    "\u13e2": "P", "\u13a1": "R", "\u13da": "S", "\u13a2": "T", "\u13d9": "V", "\u13b3": "W",
    "\u13c3": "Z",
    # Lisu
    "\ua4ee": "A", "\ua4d0": "B", "\ua4da": "C", "\ua4d3": "D", "\ua4f0": "E", "\ua4dd": "F",
    "\ua4d6": "G", "\ua4e7": "H", "\ua4f2": "I", "\ua4d9": "J", "\ua4d7": "K", "\ua4e1": "L",
    "\ua4df": "M", "\ua4e0": "N", "\ua4f3": "O", "\ua4d1": "P", "\ua4e3": "R", "\ua4e2": "S",
    "\ua4d4": "T", "\ua4f4": "U", "\ua4e6": "V", "\ua4ea": "W", "\ua4eb": "X", "\ua4ec": "Y",
    "\ua4dc": "Z",
    # Coptic
    "\u2c80": "A", "\u2c81": "a", "\u2c82": "B", "\u2c88": "E", "\u2c8e": "H", "\u2c92": "I",
    "\u2c94": "K", "\u2c98": "M", "\u2c9a": "N", "\u2c9e": "O", "\u2c9f": "o", "\u2ca2": "P",
    "\u2ca3": "p", "\u2ca4": "C", "\u2ca5": "c", "\u2ca6": "T", "\u2ca8": "Y", "\u2cac": "X",
    "\u2cad": "x",
    # Canadian syllabics
    "\u146d": "P", "\u144c": "U", "\u1472": "b", "\u1587": "R", "\u15c5": "A", "\u15de": "D",
    "\u15b4": "F", "\u142f": "V", "\u157c": "H", "\u148d": "J", "\u14aa": "L", "\u1455": "C",
    # Latin look-alikes (IPA, small capitals, dotless letters ...)
    "\u0131": "i", "\u0237": "j", "\u0251": "a", "\u0261": "g", "\u0269": "i", "\u026a": "i",
    "\u028f": "y", "\u0280": "r", "\u0274": "n", "\u029c": "h", "\u029f": "l", "\u1d00": "a",
    "\u0299": "b", "\u1d04": "c", "\u1d05": "d", "\u1d07": "e", "\ua730": "f", "\u0262": "g",
    "\u1d0a": "j", "\u1d0b": "k", "\u1d0d": "m", "\u1d0f": "o", "\u1d18": "p", "\ua731": "s",
    "\u1d1b": "t", "\u1d1c": "u", "\u1d20": "v", "\u1d21": "w", "\u1d22": "z", "\u01c0": "l",
    "\u0185": "b", "\u0196": "l", "\u0138": "k", "\u025b": "e", "\ua7ae": "I", "\u0250": "a",
    "\u0254": "c", "\u0268": "i", "\u028b": "v", "\u0275": "o",
}

#: Confusable character -> ASCII letter.
HOMOGLYPHS: dict[str, str] = {
    k: v
    for k, v in _HOMOGLYPH_SOURCE.items()
    if unicodedata.normalize("NFKC", k) == k and len(v) == 1 and v.isascii() and v.isalpha()
}
_FOLD_TABLE = {ord(k): v for k, v in HOMOGLYPHS.items()}
_FOLD_KEYS = frozenset(HOMOGLYPHS)
_LATIN_CONFUSABLES = frozenset(k for k in HOMOGLYPHS if unicodedata.name(k, "").startswith("LATIN"))
#: the script of each confusable ("CYRILLIC", "GREEK", "ARMENIAN" ...): no genuine word mixes two
_CONFUSABLE_SCRIPT = {k: unicodedata.name(k, "?").split(" ", 1)[0] for k in HOMOGLYPHS}

# Negative circled / squared letters have no NFKC mapping: fold runs of them, and, in a text with a run, the
# letters that stand alone too ("🅸 🆆🅸🅻🅻"; alone in a text, "🅰", "🅱", "🅾" and "🅿" are emoji)
_STYLED_LETTER = "[\U0001f150-\U0001f169\U0001f170-\U0001f189]"
_STYLED_RUN_RE = re.compile(_STYLED_LETTER + "{2,}")
_STYLED_LETTERS_RE = re.compile(_STYLED_LETTER + "+")


def _styled_letter(m: re.Match[str]) -> str:
    out = []
    for ch in m.group():
        cp = ord(ch)
        base = 0x1F150 if cp < 0x1F170 else 0x1F170
        out.append(chr(ord("A") + cp - base))
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------------

_ZERO_WIDTH = frozenset(
    "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u034f"
    "\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b\u180c\u180d\u180f"
)
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_BIDI_OVERRIDES = frozenset("\u202d\u202e")

# Everything the invisible pass removes: Cc except whitespace (\t \n \v \f \r \x1c-\x1f \x85),
# every Cf (Unicode 14 ranges), and invisible fillers / marks.
_INVIS_CLASS = (
    "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_INVIS_RE = re.compile(f"[{_INVIS_CLASS}]+")
#: invisible characters that render as blank space (Hangul fillers, Mongolian vowel separator): between two
#: words they stand for a space. Zero-width ones (U+200B ...) render as nothing and join what they sit in.
_BLANK_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u180e")
#: a run of this many characters without a space is words run together, not one word
_RUN_TOGETHER = 24
_TAGCHAR_RE = re.compile("[\U000e0000-\U000e007f]+")
_FLAG_TAGS_RE = re.compile("[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,7}\U000e007f")
_VS_RE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]+")
_RTL_RE = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")
_RLO_SEGMENT_RE = re.compile("\u202e([^\u202c\n]*)\u202c?")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_ANSI_RE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
)
_FULLWIDTH_ALNUM_RE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_MATH_STYLED_RE = re.compile("[\U0001d400-\U0001d7ff\u24b6-\u24e9\U0001f130-\U0001f149]")
_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff66-\uff9f]")
# Text that looks Turkish/Azerbaijani keeps its dotless i.
_TURKISH_RE = re.compile("[\u011e\u011f\u015e\u015f\u0130\u00e7\u00c7\u00f6\u00d6\u00fc\u00dc\u0259\u018f]")
#: punctuation look-alikes NFKC leaves alone (colons, angle brackets, square brackets) -> ASCII
_PUNCT_FOLD = {
    "\ua789": ":", "\u2236": ":", "\u02f8": ":", "\u205a": ":", "\u16ec": ":", "\ufe13": ":",
    "\u2039": "<", "\u203a": ">", "\u27e8": "<", "\u27e9": ">", "\u02c2": "<", "\u02c3": ">",
    "\u1438": "<", "\u1433": ">", "\u276e": "<", "\u276f": ">", "\u29fc": "<", "\u29fd": ">",
    "\u2329": "<", "\u232a": ">", "\u27e6": "[", "\u27e7": "]", "\u2045": "[", "\u2046": "]",
    "\u298b": "[", "\u298c": "]", "\u298d": "[", "\u298e": "]", "\u298f": "[", "\u2990": "]",
}
#: CJK angle / lenticular brackets are punctuation in CJK text; folded only outside it
_PUNCT_FOLD_CJK = {"\u3008": "<", "\u3009": ">", "\u3010": "[", "\u3011": "]", "\u3014": "[", "\u3015": "]"}
_PUNCT_TABLE = str.maketrans(_PUNCT_FOLD)
_PUNCT_TABLE_ALL = str.maketrans({**_PUNCT_FOLD, **_PUNCT_FOLD_CJK})
_PUNCT_RE = re.compile("[" + "".join(_PUNCT_FOLD) + "".join(_PUNCT_FOLD_CJK) + "]")
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_WORD_RE = re.compile(f"(?:[^\\W_]|[{_MARKS}])+")
_MARKS_AFTER_ASCII_RE = re.compile(f"(?<=[A-Za-z])[{_MARKS}]+")
_DIGITS_DELETE = str.maketrans("", "", "0123456789")
_NEWLINE_TRANS = {0x85: "\n", 0x2028: "\n", 0x2029: "\n",
                  # characters that stand between words as a space does, to a reader or to a model: the braille
                  # blank (U+2800, which looks like a space), the open box, the lower block and the object
                  # replacement character. Not spaces to Python, so "I\u2800should\u2800avoid..." was one word
                  0x2800: " ", 0x2423: " ", 0x2581: " ", 0xFFFC: " "}
_WS_H_RE = re.compile(r"[^\S\n]+")
_WS_NL_RE = re.compile(r" ?\n\s*")

# Plain printable ASCII with nothing that any later stage could act on.
_SUSPICIOUS_ASCII_RE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f<&%\\]|\]\(|\]:|[A-Za-z0-9+/_-]{16}"
    r"|[A-Za-z][0-9@$!]|[0-9@$!][A-Za-z]|(?:[0-9A-Fa-f]{2}[ ,:-]){7}|[A-Za-z]\*"
    r"|[A-Za-z]([;+|~^#=,])(?:[A-Za-z]+\1){2}[A-Za-z]"  # words glued by a separator (_GLUED_WORDS_RE)
)
#: what else makes plain ASCII worth decoding, tried only where its cheap sign is there (_worth_decoding)
_QP_QUICK_RE = re.compile(r"=[0-9A-F]{2}[^=\n]{0,40}=[0-9A-F]{2}|=\?")  # quoted-printable, MIME encoded words
_NUMBERS_QUICK_RE = re.compile(r"[01]{8}[ ,;:-][01]{8}|(?:\d{2,3}[ ,;] ?){7}")  # binary bytes, character codes
_DIGIT_RE = re.compile(r"\d")


def _worth_decoding(text: str) -> bool:
    """Whether plain printable ASCII needs more than the fast path: anything ``_SUSPICIOUS_ASCII_RE`` matches, a
    token of 20 characters or more (base85), quoted-printable or MIME encoded words, bytes in binary or character
    codes written as numbers. The cheap checks come first: most notes have none of these."""
    if _SUSPICIOUS_ASCII_RE.search(text):
        return True
    if len(text) >= 20 and max(map(len, text.split()), default=0) >= 20:
        return True
    if "=" in text and _QP_QUICK_RE.search(text):
        return True
    return _DIGIT_RE.search(text) is not None and _NUMBERS_QUICK_RE.search(text) is not None

# --------------------------------------------------------------------------------------------------
# HTML / markdown
# --------------------------------------------------------------------------------------------------

#: numeric entities count without their ";" too ("&#73&#32&#115": browsers and html.unescape read them), named
#: ones only with it
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9a-fA-F]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};)")
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?=[\s/>])([^<>]*)>")
_BOGUS_RE = re.compile(r"<[!?]([^<>]*)>")
_ATTR_RE = re.compile(
    r"""(?:^|\s)([^\s"'<>/=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))"""
)
#: attributes whose value is read as text by anyone who renders the page: kept whatever they hold
_TEXT_ATTRS = frozenset({"alt", "title", "aria-label"})
#: attributes whose value is markup (class names, urls, enumerations, sizes): kept only when it reads as prose
_MARKUP_ATTRS = frozenset(
    """class id style href src srcset sizes rel rev type target width height lang xml:lang dir role for
    name method action formaction enctype tabindex charset http-equiv align valign colspan rowspan border
    cellpadding cellspacing bgcolor color size loading decoding crossorigin integrity referrerpolicy async
    defer media accept autocomplete poster preload controls download hreflang ping usemap datetime cite
    background headers scope span start step min max maxlength minlength pattern spellcheck draggable
    contenteditable translate slot is nonce itemprop itemscope itemtype itemid itemref xmlns xlink:href
    viewbox fill stroke d points transform version encoding standalone data codebase classid archive
    frameborder allow allowfullscreen sandbox shape coords accesskey inputmode enterkeyhint
    autocapitalize autofocus checked disabled readonly required multiple selected open reversed
    novalidate wrap cols rows list form hidden""".split()
)
_PROSE_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_HIDDEN_STYLE_RE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|em|rem|pt|%)?\s*(?:;|$|!)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$|!)|color\s*:\s*transparent",
    re.I,
)
_STYLE_ATTR_RE = re.compile(r"""(?:^|\s)style\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""", re.I)
_HIDDEN_ATTR_RE = re.compile(r"(?:^|\s)hidden(?:\s|=|/|$)", re.I)
_BDO_RTL_RE = re.compile(r"""(?:^|\s)dir\s*=\s*["']?\s*rtl""", re.I)

_KNOWN_TAGS = frozenset(
    """a abbr acronym address area article aside audio b base bdi bdo big blink blockquote body br
    button canvas caption center cite code col colgroup data datalist dd del details dfn dialog dir
    div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6
    head header hgroup hr html i iframe img input ins kbd label legend li link main map mark marquee
    menu meta meter nav nobr noembed noframes noscript object ol optgroup option output p param
    picture plaintext pre progress q rp rt ruby s samp script search section select slot small
    source span strike strong style sub summary sup svg table tbody td template textarea tfoot th
    thead time title tr track tt u ul var video wbr xmp math""".split()
)
_BLOCK_TAGS = frozenset(
    """address article aside blockquote body br caption dd details dialog div dl dt fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol option p pre
    section select summary table tbody td textarea tfoot th thead title tr ul""".split()
)
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_RAW_TEXT_TAGS = frozenset({"script", "style", "template", "xmp", "noembed", "noframes"})

_MD_TITLE = r"""("([^"\n]{0,1000})"|'([^'\n]{0,1000})'|\(([^()\n]{0,1000})\))"""
# Possessive quantifiers (Python 3.11+) keep these free of backtracking on long whitespace runs.
_MD_LINK_TITLE_RE = re.compile(
    r"(!?\[[^\[\]\n]{0,1000}\]\(\s*+(?:(?:<[^<>\n]{0,2048}>|[^\s()<>]{1,2048}+)\s++)?+)"
    + _MD_TITLE
    + r"\s*+\)"
)
_MD_REFDEF_RE = re.compile(
    r"^[ \t]*+\[([^\[\]\n]{1,1000})\]:[ \t]*+(<[^<>\n]{0,2048}>|[^\s<>\"'(][^\s<>]{0,2047}+)?+"
    r"(?:[ \t]++" + _MD_TITLE + r")?+[ \t]*+$",
    re.M,
)

# --------------------------------------------------------------------------------------------------
# Encodings / leetspeak
# --------------------------------------------------------------------------------------------------

_B64_RE = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
#: base32 (RFC 4648: upper case, or all lower case as some tools write it)
_B32_RE = re.compile(r"(?<![A-Za-z0-9+/=_-])(?:[A-Z2-7]{16,}|[a-z2-7]{16,})={0,6}(?![A-Za-z0-9+/=_-])")
#: Ascii85 between its Adobe delimiters
_A85_FRAMED_RE = re.compile(r"<~([!-u\sz]{4,}?)~>")
#: a token that may be base85 (git's / RFC 1924 alphabet) or bare Ascii85: 20 or more characters of neither
#: whitespace nor what only prose and paths hold, some of them punctuation (base64 and base32 have none)
_B85_ALPHABET_RE = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}")
_A85_ALPHABET_RE = re.compile(r"[!-uz]{20,}")
_B85_PUNCT_RE = re.compile(r"[^0-9A-Za-z+/=_-]")
_NO_SPACE_RUN_RE = re.compile(r"\S{20,}")
#: quoted-printable escapes ("=49=20=73"), soft line breaks, and MIME encoded words ("=?utf-8?Q?...?=")
_QP_ESCAPE_RE = re.compile(r"=[0-9A-F]{2}")
_MIME_WORD_RE = re.compile(r"=\?([A-Za-z0-9_.:-]{1,40})\?([QqBb])\?([^?\s]{1,2000})\?=")
#: bytes written as eight binary digits each, apart or not
_BINARY_RE = re.compile(r"(?<![0-9])[01]{8}(?:[ ,;:-]?[01]{8}){3,}(?![0-9])")
#: escapes of C, Python, JavaScript and JSON strings: octal bytes, hex bytes, code points
_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7]{2})|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})"
                        r"|u\{([0-9A-Fa-f]{1,6})\})")
#: character codes written as numbers (decimal, or octal of three digits): "73 32 115 104", "73,32,115"
_CHAR_CODES_RE = re.compile(r"(?<![\d.])\d{2,3}(?:[ ,;] ?\d{2,3}){7,}(?![\d.])")
#: bytes apart by spaces, commas, colons or dashes, from a word's start ("Saved: 0x49 ..." read "ed" as a byte)
_HEX_CAND_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-fxX\\ ,:-]{16,}")
#: one line of wrapped base64 (or plain hex: ``xxd -p``)
_WRAPPED_LINE_RE = re.compile(r"[A-Za-z0-9+/_-]+={0,6}")
#: the offset that starts a row of ``hexdump -C`` / ``xxd`` output ("00000010  6f 75 ..." / "00000010: 6f75 ...")
_DUMP_OFFSET_RE = re.compile(r"([0-9A-Fa-f]{4,16}):?(?=[ \t])")
_DUMP_GROUP_RE = re.compile(r"(?:[0-9A-Fa-f]{2}){1,4}")
_MAX_DUMP_ROW = 64  # hex groups in one dump row (xxd -c 256 -g 4)
_HEX_PREFIX_RE = re.compile(r"\\x|0[xX]")
_HEX_TOKEN_RE = re.compile(r"[0-9A-Fa-f]+")
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_PCT_WORD_RE = re.compile(r"(?:(?<=[A-Za-z])|(?=%[0-9A-Fa-f]{2}[A-Za-z]))%([0-9A-Fa-f]{2})")

_LEET_MAP = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
_LEET_QUICK_RE = re.compile(r"[A-Za-z][013457@$!][A-Za-z0-9]|[013457@$][A-Za-z]")
_LEET_CORE_RE = re.compile(r"[A-Za-z0-9@$!']+")
_CAMEL_PART_RE = re.compile(r"[A-Z]*[^A-Z]+|[A-Z]+")
_CHUNK_RE = re.compile(r"\S+")
_UNIT_RE = re.compile(
    r"[0-9]+(?:st|nd|rd|th|am|pm|kb|mb|gb|tb|ms|ns|us|px|em|pt|hz|khz|mhz|ghz|fps|bps|yr|yrs|hr|hrs"
    r"|min|mins|sec|secs|wk|wks|mo|kg|km|cm|mm|ml|lb|lbs|ft|oz|mph|kph|kw|mw|kv|mah|[a-z])"
)
_VOWEL_RE = re.compile(r"[aeiouyAEIOUY]")
_CONSONANT_RUN_RE = re.compile(r"[b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{5}")
_HEX_WORD_RE = re.compile(r"[0-9A-Fa-f]{8,}")
_LEET_ALLOW = frozenset(
    """l10n a11y m4a m4v m4b mp3 mp4 ipv4 log4j log4net log4shell w3c s3 ec2 gpt4 gpt4o gpt3 o1 o3 o4
    web3 html5 css3 win10 win11 py3 es5 es3 k3s md5 sha1 base64 int64 x64 1password 4chan 0day 7zip
    3des b4 h1 h3 h4 h5 a1 a4 a5 b1 b5 c4 t5 t4 vs4 e4 p0 p1 p3 p4 s4 s5 z3 mi5 rc4 ps4 ps3 ps5
    log4 sh1 ab1 att4""".split()
)


# --------------------------------------------------------------------------------------------------
# Accumulators
# --------------------------------------------------------------------------------------------------


class _Ctx:
    """State shared by one ``normalize`` call (findings, recursion budget, decoded payloads seen)."""

    __slots__ = ("findings", "calls", "seen", "swaps", "binary", "binary_left")

    def __init__(self) -> None:
        self.findings: dict[str, int] = {}
        self.calls = 0
        self.seen: set[str] = set()
        #: encoded token -> the text it decodes to, for the text ``_core`` is decoding now (None: not recorded)
        self.swaps: dict[str, str] | None = None
        #: token whose bytes are no text -> how it reads (``_binary_reading``), each token read once
        self.binary: dict[str, tuple[str | None, list[str]] | None] = {}
        #: what reading such tokens may still cost: their letters checked for words, the bytes they inflate to
        #: and the text found in them (``_MAX_BINARY_WORK``)
        self.binary_left = _MAX_BINARY_WORK

    def add(self, code: str, n: int = 1) -> None:
        if n > 0:
            self.findings[code] = self.findings.get(code, 0) + n

    def render(self) -> list[str]:
        return [
            code if code in _BARE_FINDINGS else f"{code}:{n}" for code, n in self.findings.items()
        ]


# A payload is (text, decoded?) -- decoded payloads consume one level of max_decode_depth.
_Payloads = list[tuple[str, bool]]


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _collapse_ws(s: str) -> str:
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if not s.isascii():
        s = s.translate(_NEWLINE_TRANS)
    s = _WS_H_RE.sub(" ", s)
    if "\n" in s:
        s = _WS_NL_RE.sub("\n", s)
    return s.strip()


@lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    if ch < "\x80":
        return ch.isalpha()
    return unicodedata.name(ch, "").startswith("LATIN")


def _emojiish(ch: str) -> bool:
    if not ch:
        return False
    cp = ord(ch)
    return (
        cp >= 0x1F000
        or 0x2190 <= cp <= 0x2BFF
        or cp in (0xFE0F, 0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _has_alnum(s: str) -> bool:
    return any(c.isalnum() for c in s)


#: symbols that stand for letters, no letters themselves to ``str.isalpha``: Braille cells, and circled, squared
#: and negative letters ("fancy text"); ``_printable_payload`` counts them as letters, their readers read them
_LETTERLIKE_RE = re.compile("[\u2801-\u28ff\u2460-\u24ff\U0001f100-\U0001f1ff]")
def _printable_payload(raw: bytes) -> str | None:
    """Decoded bytes -> text when they look like deliberate text (once decompressed, when they are compressed
    data), else None."""
    if len(raw) < 4:
        return None
    raw = binary_formats.inflate(raw) or raw
    try:
        t = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # invisible characters (zero-width, bidi, tag and variation characters) do not make
    # a payload less textual: they are removed when the payload is normalised, and an
    # encoded, zero-width-stuffed sentence is exactly what an attacker would send
    seen = _VS_RE.sub("", _TAGCHAR_RE.sub("", _INVIS_RE.sub("", t)))
    n = len(seen)
    if n < 4:
        return None
    printable = sum(1 for c in seen if c.isprintable() or c in "\n\r\t")
    if printable < 0.85 * n:
        return None
    # Braille, "fancy text" and Morse code are text too, in symbols no letter: their readers read them decoded
    letterlike = len(_LETTERLIKE_RE.findall(seen))
    wordy = letterlike + sum(1 for c in seen if c.isalnum() or c.isspace())
    if wordy < 0.5 * n or not (letterlike or any(c.isalpha() for c in seen)):
        return t if letter_disguises.written_in_morse(seen) else None
    return t


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------


def _decode_entities(s: str, ctx: _Ctx) -> str:
    total = 0
    alnum = 0
    for _ in range(4):
        count = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal count, alnum
            ent = m.group()
            val = html.unescape(ent)
            if val == ent:
                return ent
            count += 1
            if ent[1] == "#" and len(val) == 1 and val.isascii() and val.isalnum():
                alnum += 1
            return val

        s2 = _ENTITY_RE.sub(repl, s)
        if not count:
            break
        total += count
        s = s2
    ctx.add("html_entities_decoded", total)
    ctx.add("html_entities_alnum", alnum)
    return s


def _tag_chars(s: str, ctx: _Ctx, payloads: _Payloads | None) -> str:
    decoded: list[str] = []
    removed = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal removed
        run = m.group()
        start = m.start()
        if start and s[start - 1] == "\U0001f3f4" and _FLAG_TAGS_RE.fullmatch(run):
            return ""  # emoji subdivision flag (e.g. Scotland): legitimate use
        removed += len(run)
        decoded.append("".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E))
        return ""

    s = _TAGCHAR_RE.sub(repl, s)
    ctx.add("tag_chars_decoded", removed)
    payload = "".join(decoded)
    if payloads is not None and payload.strip():
        payloads.append((payload, False))
    return s


def _variation_selectors(s: str, ctx: _Ctx, payloads: _Payloads | None) -> str:
    removed = 0
    blobs: list[bytes] = []

    def repl(m: re.Match[str]) -> str:
        nonlocal removed
        run = m.group()
        if len(run) == 1:
            # a single VS15/VS16 after an emoji is presentation; a lone ideographic VS is harmless
            return run if run in "\ufe0e\ufe0f" else ""
        removed += len(run)
        data = bytearray()
        for c in run:
            cp = ord(c)
            data.append(cp - 0xFE00 if cp <= 0xFE0F else cp - 0xE0100 + 16)
        blobs.append(bytes(data))
        return ""

    s = _VS_RE.sub(repl, s)
    ctx.add("variation_selectors_removed", removed)
    if payloads is not None:
        for blob in blobs:
            t = _printable_payload(blob)
            if t is not None:
                payloads.append((t, False))
    return s


def _invisible(s: str, ctx: _Ctx, payloads: _Payloads | None) -> str:
    if payloads is not None and "\u202e" in s:
        visual = _INVIS_RE.sub("", _RLO_SEGMENT_RE.sub(lambda m: m.group(1)[::-1], s))
        payloads.append((visual, False))
    has_rtl = _RTL_RE.search(s) is not None
    zw = bidi = ctrl = 0
    n = len(s)

    def repl(m: re.Match[str]) -> str:
        nonlocal zw, bidi, ctrl
        start, end = m.span()
        prev = s[start - 1] if start else ""
        nxt = s[end] if end < n else ""
        for ch in m.group():
            if ch in _ZERO_WIDTH:
                if ch in "\u200c\u200d":
                    silent = (_emojiish(prev) and _emojiish(nxt)) or (
                        prev > "\x7f" and nxt > "\x7f" and not _is_latin(prev) and not _is_latin(nxt)
                    )
                elif ch == "\ufeff":
                    silent = start == 0
                else:
                    silent = False
                if not silent:
                    zw += 1
            elif ch in _BIDI:
                if ch in _BIDI_OVERRIDES or not has_rtl:
                    bidi += 1
            else:
                ctrl += 1
        return ""

    if payloads is not None:
        # an invisible character standing for a space ("Ignore\uffa0the\uffa0previous") is deleted, and the
        # words run together: review the text with a space there too. Blank-rendering characters always
        # stand for one. A zero-width one only when the words did run together (a run of letters longer
        # than words get): inside ordinary words ("Ig\u200bnore the report") it joins what it sits in, and
        # spacing it would cut benign text into fragments that read as alarming
        def spacer(any_invisible: bool):
            def spaced(m: re.Match[str]) -> str:
                start, end = m.span()
                prev = s[start - 1] if start else ""
                nxt = s[end] if end < n else ""
                if (prev.isalnum() and nxt.isalnum() and (_is_latin(prev) or _is_latin(nxt) or prev.isdigit())
                        and (any(ch in _BLANK_INVISIBLE for ch in m.group())
                             or (any_invisible and m.group().strip("\u00ad\u200c\u200d")))):
                    return " "
                return ""
            return spaced

        run_together = max((len(w) for w in _INVIS_RE.sub("", s).split()), default=0) >= _RUN_TOGETHER
        with_spaces = _INVIS_RE.sub(spacer(run_together), s)
    s = _INVIS_RE.sub(repl, s)
    if payloads is not None and with_spaces != s:
        payloads.append((with_spaces, False))
    ctx.add("zero_width_removed", zw)
    ctx.add("bidi_removed", bidi)
    ctx.add("control_chars_removed", ctrl)
    return s


def _count_styled(s: str, ctx: _Ctx) -> None:
    if not _CJK_RE.search(s):
        ctx.add("fullwidth_folded", len(_FULLWIDTH_ALNUM_RE.findall(s)))
    styled = 0
    for m in _MATH_STYLED_RE.finditer(s):
        folded = unicodedata.normalize("NFKC", m.group())
        if folded.isascii() and folded.isalnum():
            styled += 1
    ctx.add("styled_letters_folded", styled)


@lru_cache(maxsize=256)
def _tag_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"<(/?)" + re.escape(name) + r"(?=[\s/>])[^<>]*>", re.I)


def _find_close(s: str, name: str, pos: int) -> tuple[int, int]:
    """(content_end, after_close) for the element opened just before ``pos``."""
    pat = _tag_pattern(name)
    depth = 1
    raw = name in _RAW_TEXT_TAGS
    while True:
        m = pat.search(s, pos)
        if m is None:
            return len(s), len(s)
        pos = m.end()
        if m.group(1):
            depth -= 1
            if depth == 0:
                return m.start(), m.end()
        elif not raw and not m.group().endswith("/>"):
            depth += 1


def _reads_as_prose(v: str) -> bool:
    """Several words of letters, most of the value (not a class list, a url or a size)."""
    toks = v.split()
    if len(toks) < 3 or "://" in v:
        return False
    words = sum(1 for t in toks if _PROSE_WORD_RE.fullmatch(t.strip(".,;:!?\"'()")))
    return words >= 3 and words * 5 >= len(toks) * 3


def _attr_values(attrs: str) -> list[str]:
    """Attribute values a reader (or a model reading the markup) sees as text: alt / title / aria-label,
    any other attribute holding several words (``data-*``, ``value`` of a hidden input, ``content``,
    ``placeholder``, unknown ones), and even markup attributes (class, style, href ...) when they read as
    prose. Single tokens (ids, numbers, class names, urls) are left out."""
    out = []
    for m in _ATTR_RE.finditer(attrs):
        v = m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None else m.group(4)
        if not v or not v.strip():
            continue
        name = m.group(1).lower()
        if name in _TEXT_ATTRS:
            out.append(v)
        elif name in _MARKUP_ATTRS:
            if _reads_as_prose(v):
                out.append(v)
        elif len(v.split()) >= 2 and any(c.isalpha() for c in v) and "://" not in v:
            out.append(v)
    return out


def _is_hidden_element(name: str, attrs: str) -> bool:
    if name in _RAW_TEXT_TAGS:
        return True
    if not attrs:
        return False
    if _HIDDEN_ATTR_RE.search(attrs):
        return True
    for m in _STYLE_ATTR_RE.finditer(attrs):
        style = next((g for g in m.groups() if g is not None), "")
        if _HIDDEN_STYLE_RE.search(style):
            return True
    return False


# linear in the text: a leading \s* let every space of a long run start a match that took the rest of the run
# before failing (62,000 spaces in a <!DOCTYPE took 22 s); a name starts where no name character is before it,
# for the same reason with a long word
_DECL_DROP_RE = re.compile(r"""(?:"[^"]*"|'[^']*'|\S+)""")
_PSEUDO_ATTR_RE = re.compile(r"""(?<![\w:.-])[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"\s]*"|'[^'\s]*'|[^\s"']+)""")


def _declaration_text(body: str, pi: bool) -> str:
    """The free text of a ``<!DOCTYPE ...>`` or ``<?target ...?>`` (hidden from the page, read by a model):
    what is left without the keyword / target, the public and system identifiers, and pseudo-attributes
    with one-word values (``version="1.0"``)."""
    if pi:
        body = body.removeprefix("?").removesuffix("?")
        parts = body.split(None, 1)
        rest = parts[1] if len(parts) > 1 else ""
        return _PSEUDO_ATTR_RE.sub(" ", rest)
    toks = [t.strip() for t in _DECL_DROP_RE.findall(body[7:])]  # without "doctype"
    kept = [t for i, t in enumerate(toks)
            if i and t.lower() not in ("public", "system") and "//" not in t]  # root name, identifiers
    return " ".join(kept)


def _bogus_pi(m: re.Match[str], ctx: _Ctx, payloads: _Payloads | None) -> str:
    ctx.add("html_stripped")
    body = _declaration_text(m.group(1), True) if m.group().startswith("<?") else m.group(1)
    if body.strip() and _has_alnum(body):
        ctx.add("html_comment_hidden_text")
        if payloads is not None:
            payloads.append((body, False))
    return ""


def _html(s: str, ctx: _Ctx, payloads: _Payloads | None) -> str:
    # 1. comments (linear scan with str.find; an unclosed comment runs to the end, as in browsers)
    if "<!" in s:
        pieces: list[str] = []
        pos = 0
        while True:
            i = s.find("<!--", pos)
            if i < 0:
                pieces.append(s[pos:])
                break
            pieces.append(s[pos:i])
            if s.startswith("<!-->", i):
                content, pos = "", i + 5
            elif s.startswith("<!--->", i):
                content, pos = "", i + 6
            else:
                j = s.find("-->", i + 4)
                if j < 0:
                    content, pos = s[i + 4 :], len(s)
                else:
                    content, pos = s[i + 4 : j], j + 3
            ctx.add("html_stripped")
            if content.strip():
                ctx.add("html_comment_hidden_text")
                if payloads is not None:
                    payloads.append((content, False))
        s = "".join(pieces)

        # doctype, processing instructions, CDATA and other bogus comments
        def bogus(m: re.Match[str]) -> str:
            body = m.group(1)
            ctx.add("html_stripped")
            low = body.lower()
            if low.startswith("doctype") or m.group().startswith("<?"):
                body = _declaration_text(body, m.group().startswith("<?"))
            elif low.startswith("[cdata["):
                body = body[7:]
                if body.endswith("]]"):
                    body = body[:-2]
            if body.strip():
                ctx.add("html_comment_hidden_text")
                if payloads is not None:
                    payloads.append((body, False))
            return ""

        s = _BOGUS_RE.sub(bogus, s)
    elif "<?" in s:
        s = _BOGUS_RE.sub(lambda m: _bogus_pi(m, ctx, payloads), s)

    # 2. elements
    pieces = []
    pos = 0
    stripped = 0
    bdo_end = 0
    while True:
        m = _TAG_RE.search(s, pos)
        if m is None:
            break
        name = m.group(2).lower()
        if name not in _KNOWN_TAGS and "-" not in name:
            pieces.append(s[pos : m.end()])
            pos = m.end()
            continue
        pieces.append(s[pos : m.start()])
        stripped += 1
        closing, attrs = m.group(1), m.group(3)
        if attrs and payloads is not None:
            for v in _attr_values(attrs):
                ctx.add("html_attribute_text")
                payloads.append((v, False))
        sep = " " if name in _BLOCK_TAGS else ""
        if (name == "bdo" and not closing and payloads is not None and m.start() >= bdo_end
                and _BDO_RTL_RE.search(attrs)):
            # <bdo dir="rtl"> shows its text reversed: review it in the order a reader sees it (one payload
            # per outermost element: a nested or unclosed one is inside it already)
            bdo_end = _find_close(s, name, m.end())[0]
            content = s[m.end() : bdo_end]
            if content.strip():
                ctx.add("html_bdo_rtl")
                payloads.append((content[::-1], False))
        if (
            not closing
            and name not in _VOID_TAGS
            and not attrs.rstrip().endswith("/")
            and _is_hidden_element(name, attrs)
        ):
            content_end, after = _find_close(s, name, m.end())
            content = s[m.end() : content_end]
            if content.strip():
                # a style sheet is not shown either, but a model reading the note reads its comments and
                # strings as well as any hidden element's text
                ctx.add("html_style_text" if name == "style" else "html_hidden_text")
                if payloads is not None:
                    payloads.append((content, False))
            pieces.append(sep)
            pos = after
            continue
        pieces.append(sep)
        pos = m.end()
    if stripped:
        pieces.append(s[pos:])
        s = "".join(pieces)
        ctx.add("html_stripped")
    return s


def _md_title(m: re.Match[str], first: int) -> str:
    for g in (first, first + 1, first + 2):
        v = m.group(g)
        if v is not None:
            return v
    return ""


def _markdown(s: str, ctx: _Ctx, payloads: _Payloads | None) -> str:
    if "](" in s:

        def link(m: re.Match[str]) -> str:
            title = _md_title(m, 3)
            if title.strip():
                ctx.add("markdown_link_title")
                if payloads is not None:
                    payloads.append((title, False))
            return m.group(1).rstrip() + ")"

        s = _MD_LINK_TITLE_RE.sub(link, s)
    if "]:" in s:

        def refdef(m: re.Match[str]) -> str:
            label, dest, title_block = m.group(1), m.group(2), m.group(3)
            hidden_dest = dest is None or dest in ("#", "<>", "//", "<#>")
            if title_block is None and not hidden_dest:
                return m.group()
            if dest is None and title_block is None:
                return m.group()  # "[x]:" alone is not a definition
            texts = []
            title = _md_title(m, 4) if title_block is not None else ""
            if title.strip():
                texts.append(title)
            if hidden_dest and len(label.split()) >= 2:
                texts.append(label)
            if texts:
                ctx.add("markdown_hidden_text" if hidden_dest else "markdown_link_title")
                if payloads is not None:
                    payloads.extend((t, False) for t in texts)
            if hidden_dest:
                return ""
            return f"[{label}]: {dest}"

        s = _MD_REFDEF_RE.sub(refdef, s)
    return s


_SENTENCE_BREAK_RE = re.compile(r"[.!?;\n]")


def _fold(s: str, ctx: _Ctx, payloads: _Payloads | None = None) -> str:
    if _FOLD_KEYS.isdisjoint(s):
        return s
    fold_dotless_i = _TURKISH_RE.search(s) is None
    latin_w = other_w = 0
    # per sentence: [letters of words made only of look-alikes, letters of genuinely non-Latin words]
    sentences = [[0, 0]]
    plan: list[tuple[re.Match[str], str]] = []
    prev_end = 0
    for m in _WORD_RE.finditer(s):
        if _SENTENCE_BREAK_RE.search(s, prev_end, m.start()):
            sentences.append([0, 0])
        prev_end = m.end()
        w = m.group()
        if w.isascii():
            latin_w += len(w.translate(_DIGITS_DELETE))
            continue
        lat = lat_conf = oth_fold = oth = 0
        for ch in w:
            if ch in _FOLD_KEYS:
                if ch in _LATIN_CONFUSABLES:
                    lat_conf += 1
                else:
                    oth_fold += 1
            elif ch.isalpha():
                if _is_latin(ch):
                    lat += 1
                else:
                    oth += 1
        letters = lat + lat_conf + oth_fold + oth
        if oth:
            other_w += letters
            sentences[-1][1] += letters
            if (lat_conf or oth_fold) and lat + lat_conf >= oth and lat + lat_conf > 0:
                plan.append((m, "fold"))
        elif lat or lat_conf:
            latin_w += letters
            if lat_conf or oth_fold:
                plan.append((m, "fold"))
        elif oth_fold >= 2:
            if len({_CONFUSABLE_SCRIPT[ch] for ch in w if ch in _FOLD_KEYS}) > 1:
                # look-alikes of two scripts ("іցոоге": Cyrillic and Armenian) make no genuine word
                latin_w += letters
                plan.append((m, "fold"))
            else:
                plan.append((m, "ambiguous"))
                sentences[-1][0] += oth_fold
    if not plan:
        return s
    # Words made only of confusables are folded in Latin context, or when the text has no
    # genuinely non-Latin word at all (a sentence written entirely in look-alikes, e.g.
    # "аа ѕіѕ", is an attack: real Cyrillic or Greek text has letters with no Latin twin).
    latin_context = latin_w > other_w or other_w == 0
    if (not latin_context and payloads is not None and any(kind == "ambiguous" for _m, kind in plan)
            and (latin_w or any(look > genuine for look, genuine in sentences))):
        # genuine Cyrillic words ("... Да.", or a whole sentence of them) keep look-alike words from folding in
        # the text: review the text with every look-alike word folded too when the text also has Latin words
        # (real Cyrillic or Greek prose quoting an English term gains one harmless variant) or a sentence of it
        # is more look-alike than genuine (not so in real Cyrillic or Greek sentences). Decided per sentence:
        # padding a disguised sentence with genuine ones does not hide it
        full: list[str] = []
        pos = 0
        for m, _kind in plan:
            full.append(s[pos : m.start()])
            full.extend(HOMOGLYPHS[c] if c in _FOLD_KEYS and (fold_dotless_i or c != "\u0131") else c
                        for c in m.group())
            pos = m.end()
        full.append(s[pos:])
        payloads.append(("".join(full), False))
    pieces: list[str] = []
    pos = 0
    folded = 0
    for m, kind in plan:
        if kind == "ambiguous" and not latin_context:
            continue
        w = m.group()
        new = []
        for ch in w:
            if ch in _FOLD_KEYS and (fold_dotless_i or ch != "\u0131"):
                new.append(HOMOGLYPHS[ch])
                folded += 1
            else:
                new.append(ch)
        pieces.append(s[pos : m.start()])
        pieces.append("".join(new))
        pos = m.end()
    if not folded:
        return s
    pieces.append(s[pos:])
    ctx.add("homoglyphs_folded", folded)
    return "".join(pieces)


def _strip_marks(s: str, ctx: _Ctx) -> str:
    removed = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal removed
        removed += len(m.group())
        return ""

    s = _MARKS_AFTER_ASCII_RE.sub(repl, s)
    if removed:
        ctx.add("combining_marks_removed", removed)
        if removed >= 3:
            ctx.add("zalgo_text")
    return s


def _fold_punct(s: str, ctx: _Ctx) -> str:
    """``note\ua789`` -> ``note:``, ``\u2039system\u203a`` -> ``<system>`` (before markup is read)."""
    out = s.translate(_PUNCT_TABLE if _CJK_RE.search(s) else _PUNCT_TABLE_ALL)
    if out != s:
        ctx.add("punctuation_folded", sum(a != b for a, b in zip(s, out)))
    return out


def _one_pass(s: str, ctx: _Ctx, payloads: _Payloads | None) -> tuple[str, str]:
    """One canonicalisation pass. Returns (text, text_before_markup_removal)."""
    if "\x1b" in s or "\x9b" in s:
        s, n = _ANSI_RE.subn("", s)
        ctx.add("ansi_escapes_removed", n)
    if "&" in s and (";" in s or "&#" in s):
        s = _decode_entities(s, ctx)
    if not s.isascii() and _TAGCHAR_RE.search(s):
        s = _tag_chars(s, ctx, payloads)
    if _INVIS_RE.search(s):
        s = _invisible(s, ctx, payloads)
    if not s.isascii():
        if _VS_RE.search(s):
            s = _variation_selectors(s, ctx, payloads)
        if _STYLED_RUN_RE.search(s):
            ctx.add("styled_letters_folded", sum(map(len, _STYLED_LETTERS_RE.findall(s))))
            s = _STYLED_LETTERS_RE.sub(_styled_letter, s)
        _count_styled(s, ctx)
        if not unicodedata.is_normalized("NFKC", s):
            s = unicodedata.normalize("NFKC", s)
            if _INVIS_RE.search(s):  # defensive: NFKC never produces these today
                s = _INVIS_RE.sub("", s)
        if _PUNCT_RE.search(s):
            s = _fold_punct(s, ctx)
    pre = s
    if "<" in s:
        s = _html(s, ctx, payloads)
    if "](" in s or "]:" in s:
        s = _markdown(s, ctx, payloads)
    if not s.isascii():
        if not unicodedata.is_normalized("NFKC", s):
            s = unicodedata.normalize("NFKC", s)
        s = _fold(s, ctx, payloads)
        s = _strip_marks(s, ctx)
    return _collapse_ws(s), pre


def _needs_another_pass(s: str) -> bool:
    return "<" in s or "&" in s or "](" in s or "]:" in s


def _defuse(s: str) -> str:
    """Make entity and tag syntax inert (only for adversarially nested markup)."""
    s = re.sub(r"&(?=[#A-Za-z])", "& ", s)
    return re.sub(r"<(?=[A-Za-z/!?])", "< ", s)


def _canonical(s: str, ctx: _Ctx, payloads: _Payloads | None) -> tuple[str, str]:
    text, pre = _one_pass(s, ctx, payloads)
    if _needs_another_pass(pre) or _needs_another_pass(text):
        for _ in range(4):
            again, _pre = _one_pass(text, ctx, payloads)
            if again == text:
                break
            text = again
        else:
            text = _one_pass(_defuse(text), ctx, None)[0]
    return text, pre


# --------------------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------------------


def _b64_decode(token: str) -> bytes | None:
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return None
    has_std = "+" in body or "/" in body
    has_url = "-" in body or "_" in body
    if has_std and has_url:
        return None
    if has_url:
        body = body.replace("-", "+").replace("_", "/")
    body += "=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _accept(t: str | None, code: str, ctx: _Ctx, payloads: _Payloads, token: str | None = None) -> bool:
    """Take ``t``, the text a decoder read (None: nothing), as a payload under finding ``code``. ``token``: the
    encoded token as written, where ``t`` is what that token alone decodes to (it can be read in place)."""
    if t is None:
        return False
    if token is not None and ctx.swaps is not None:
        ctx.swaps.setdefault(token, t)
    if t not in ctx.seen:
        ctx.seen.add(t)
        ctx.add(code)
        payloads.append((t, True))
    return True


def _b64_bytes(tok: str) -> bytes | None:
    """The bytes a base64 token encodes, or None."""
    body = tok.rstrip("=")
    if body.islower() or body.isupper() or body.isdigit():
        return None  # base64 of text or of random bytes mixes cases; skips paths, words, AKIA-style keys
    return _b64_decode(tok)



#: digits read as the letters they stand for in a token ("P0dD15rup710nBudg37")
_LEET_TOKEN_TABLE = str.maketrans({k: v for k, v in _LEET_MAP.items() if k.isdigit()})
_NON_LETTERS_RE = re.compile(r"[^A-Za-z]+")
#: words a token's letters are searched for: four letters or more, up to this many
_SPELLED_WORD_MAX = 10
#: a token's letters spell words where words of four letters or more follow each other, one or two other letters
#: between them at most ("IShouldAvoid", "I-should-avoid", "other_copies_of_this"), over this many letters, or
#: where this share of its letters is in such words. The base64 of random bytes does so about once in 100 tokens
#: of RSA-key size (read as written then, as any token was before), and not in 600 shorter ones.
_SPELLED_CHAIN = 12
_SPELLED_SHARE = 0.5
#: a token is written at random where fewer of its letters than this are in such words (random base64: at most
#: 0.43 in 4,000 tokens; "Access-Control-Allow-Origin": 1.0)
_RANDOM_WORD_SHARE = 0.4
#: what reading the tokens of one text whose bytes are no text may cost at most, in letters checked for words,
#: bytes inflated and text found: a text of many such tokens (a bomb in each) reads the rest as written
_MAX_BINARY_WORK = 400_000
#: a token longer than this is not named (checking its letters costs too much): read as written, and any text in
#: its bytes read beside it
_MAX_NAMED_TOKEN = 16_384


@lru_cache(maxsize=1)
def _spelling_words() -> frozenset[str]:
    """The vocabulary's words of four to ``_SPELLED_WORD_MAX`` letters (``word_segmentation``)."""
    return frozenset(w for w in vocabulary() if 4 <= len(w) <= _SPELLED_WORD_MAX)


def _letters_in_words(letters: str) -> tuple[int, int]:
    """``(longest chain, letters covered)`` of the words of ``_spelling_words`` in ``letters`` (lower case, one
    run): the most letters in words that follow each other with at most two other letters between, and how many
    letters are in any such word. Linear: a few set lookups per letter."""
    words = _spelling_words()
    n = len(letters)
    chain = [0] * (n + 1)  # letters in the longest chain of words ending at each position
    covered = [False] * n
    longest = 0
    for j in range(4, n + 1):
        best = 0
        for size in range(4, min(_SPELLED_WORD_MAX, j) + 1):
            i = j - size
            if letters[i:j] in words:
                best = max(best, size + max(chain[max(i - 2, 0):i + 1]))
                covered[i:j] = [True] * size
        chain[j] = best
        longest = max(longest, best)
    return longest, sum(covered)


def _token_letters(tok: str) -> list[str]:
    """The letters of ``tok`` as one run, lower case: as written, and with its digits read as letters."""
    plain = _NON_LETTERS_RE.sub("", tok).lower()
    leet = _NON_LETTERS_RE.sub("", tok.translate(_LEET_TOKEN_TABLE)).lower()
    return [plain] if leet == plain else [plain, leet]


def _spells_words(tok: str) -> bool:
    """Whether the letters of ``tok`` spell words (``_SPELLED_CHAIN``, ``_SPELLED_SHARE``), whatever stands
    between them (a dash, an underscore, a digit) and its digits read as letters or not: a key's or an image's
    bytes are free, so its base64 can be made to spell a belief, and then the letters are a reading of their own.
    Without a vocabulary, every token is taken to."""
    if not _spelling_words():
        return True
    for letters in _token_letters(tok):
        longest, covered = _letters_in_words(letters)
        if longest >= _SPELLED_CHAIN or covered >= _SPELLED_SHARE * len(letters):
            return True
    return False


def _written_at_random(tok: str) -> bool:
    """Whether ``tok`` reads as random base64 as written: a digit, the case of its letters switching often (one
    letter in five), and few of its letters in words (``_RANDOM_WORD_SHARE``, its digits read as letters or
    not). A hyphenated or camel-case word, a name or a branch name is not (nor is about one random token of 16
    characters in ten: they are read as written)."""
    if not any(c.isdigit() for c in tok) or not _spelling_words():
        return False
    switches = 0
    for a, b in zip(tok, tok[1:]):
        if a.isalpha() and b.isalpha() and a.islower() != b.islower():
            switches += 1
    if switches * 5 < sum(c.isalpha() for c in tok):
        return False
    return all(_letters_in_words(letters)[1] < _RANDOM_WORD_SHARE * len(letters) for letters in _token_letters(tok))


def _binary_reading(raw: bytes, tok: str, budget: int) -> tuple[tuple[str | None, list[str]] | None, int, bool]:
    """How a token whose bytes ``raw`` are no text reads: ``(name, texts)``, or None where it holds nothing.

    Where its bytes are a well-known binary format (a key, a certificate, an image, an archive, compressed data)
    or random (a secret, a nonce, an API key written at random), ``name`` names them ("SSH public key", "random
    characters"): the token reads in place as that, with ``texts`` (any text found in its bytes), not as its
    letters. Elsewhere, where its letters spell words and where it is longer than ``_MAX_NAMED_TOKEN``, ``name``
    is None: the token is read as written, and ``texts`` beside it (a sentence between random bytes is no less
    readable than one alone). ``budget``: the bytes it may inflate (an archive's files, a PNG's text chunks);
    also returned: the work it cost (``_MAX_BINARY_WORK``), and whether its bytes were read whole (where not,
    it is not named either)."""
    inflated = binary_formats.inflate(raw)  # compressed, and what it inflates to is no text (``_printable_payload``)
    fmt = "compressed data" if inflated is not None else binary_formats.describe(raw)
    # in compressed data, the format it holds (a PNG image, a ZIP archive) is read as such
    result = binary_formats.texts(raw if inflated is None else inflated,
                                  fmt if inflated is None else binary_formats.describe(inflated), budget)
    found = result.texts
    cost = len(tok) + len(raw) + len(inflated or b"") + result.inflated + sum(map(len, found))
    if len(tok) > _MAX_NAMED_TOKEN or not result.complete:
        fmt = None
    elif fmt is None and binary_formats.random_bytes(raw) and _written_at_random(tok):
        fmt = "random characters"
    if fmt is not None and _spells_words(tok):
        fmt = None
    return (None if fmt is None and not found else (fmt, found)), cost, result.complete


def _accept_binary(raw: bytes | None, tok: str, written: str, ctx: _Ctx, payloads: _Payloads) -> bool:
    """Read ``tok`` (written ``written``), whose bytes ``raw`` are no text, as ``_binary_reading`` says: in place
    as what its bytes are, with any text found in them (a payload), or beside it where that text is a
    certificate's fields (``binary_formats.FIELD_FORMATS``). A token named and holding no text is read in place
    only (finding ``binary_named``): its name alone is no text to review."""
    if raw is None:
        return False
    if tok in ctx.binary:
        reading = ctx.binary[tok]
    elif ctx.binary_left <= 0:
        # the text's tokens have cost enough: this one is read as written, its bytes unread (the review fails
        # closed)
        ctx.binary[tok] = None
        ctx.add("binary_partly_read")
        return False
    else:
        try:
            reading, cost, whole = _binary_reading(raw, tok, ctx.binary_left)
        except Exception:  # noqa: BLE001 - bytes no reader here expects: the token is read as written
            reading, cost, whole = None, len(tok) + len(raw), True
        ctx.binary[tok] = reading
        ctx.binary_left -= cost
        if not whole:
            ctx.add("binary_partly_read")  # an archive or image a limit left partly unread: the review fails closed
    if reading is None:
        return False
    name, found = reading
    if name is None:
        return _accept(" / ".join(found), "binary_text_found", ctx, payloads)
    if found and name not in binary_formats.FIELD_FORMATS:
        return _accept(f"({name} holding the text: {' / '.join(found)})", "binary_text_found", ctx, payloads,
                       written)
    if found:  # a certificate's fields: read beside it
        _accept(f"{name} holding the text: {' / '.join(found)}", "binary_text_found", ctx, payloads)
    if ctx.swaps is not None and written not in ctx.swaps:  # the raw and the canonical text hold it alike
        ctx.swaps[written] = f"({name})"
        ctx.add("binary_named")
        if name == "SSH public key" and (kind := binary_formats.ssh_key_type(raw)):
            # the key type written before the key is the key's first field: read with it ("ssh-ed25519 AAAA..."),
            # the classifier read "ssh-ed25519 (SSH public key)" as suspect, "(SSH public key)" not
            ctx.swaps[f"{kind} {written}"] = f"({name})"
    return True


def _b32_text(tok: str) -> str | None:
    """The text a base32 token encodes, or None."""
    body = tok.rstrip("=")
    if len(body) % 8 not in (0, 2, 4, 5, 7):
        return None
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    return _printable_payload(raw)


def _b85_text(tok: str) -> tuple[str, str] | None:
    """(text, finding) for a token that is base85 or bare Ascii85 of text, or None."""
    if not _B85_PUNCT_RE.search(tok):
        return None  # base64, base32 or a word
    for alphabet, decode in ((_B85_ALPHABET_RE, base64.b85decode), (_A85_ALPHABET_RE, base64.a85decode)):
        if alphabet.fullmatch(tok):
            try:
                text = _printable_payload(decode(tok))
            except ValueError:
                continue
            if text is not None:
                return text, "base85_decoded"
    return None


def _plain_char(code: int) -> bool:
    """Whether an escape of ``code`` spells out what needs no escape, an ASCII letter, digit or space: the sign
    of text written in escapes to hide it (JSON and e-mail escape accented letters and punctuation)."""
    return code < 0x80 and (chr(code).isalnum() or code == 0x20)


def _codes_text(raw: bytes) -> str | None:
    """The text of bytes written as numbers (binary, octal, decimal), or None: printable, with a space between
    words (a list of scores or ports that happens to be printable is not text)."""
    t = _printable_payload(raw)
    return t if t is not None and " " in t.strip() and re.search(r"[^\W\d_]{2}", t) else None


def _unescape(src: str) -> tuple[str, int]:
    """``src`` with its string escapes (``\\111``, ``\\x49``, ``\\u0049``, ``\\U00000049``, ``\\u{49}``) read,
    and how many of them spell out plain characters (``_plain_char``). Octal and hex escapes are bytes (UTF-8,
    as C writes it), the others code points."""
    out: list[str] = []
    pending = bytearray()
    pos = n = 0

    def flush() -> None:
        if pending:
            try:
                out.append(pending.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(pending.decode("latin-1"))
            pending.clear()

    for m in _ESCAPE_RE.finditer(src):
        if m.start() != pos:
            flush()
            out.append(src[pos:m.start()])
        octal, hex_byte, u4, u8, braced = m.groups()
        if octal or hex_byte:
            code = int(octal, 8) if octal else int(hex_byte, 16)
            pending.append(code)
        else:
            flush()
            code = int(u4 or u8 or braced, 16)
            out.append(chr(code) if code <= 0x10FFFF else "\ufffd")
        n += _plain_char(code)
        pos = m.end()
    flush()
    out.append(src[pos:])
    text = "".join(out)
    if _SURROGATE_RE.search(text):  # JSON writes a character outside the BMP as two escapes
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text, n


def _mime_word(m: re.Match[str]) -> str:
    charset, kind, body = m.groups()
    if kind in "Qq":
        raw = quopri.decodestring(body.replace("_", " ").encode("ascii", "replace"))
    else:
        raw = _b64_decode(body) or b""
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _find_more_encodings(src: str, ctx: _Ctx, payloads: _Payloads) -> None:
    """Base32, base85 / Ascii85, quoted-printable (and MIME encoded words), bytes in binary, string escapes and
    character codes written as numbers: each decoded text is a payload, reviewed like the text."""
    longest = max(map(len, src.split()), default=0)
    if longest >= 16:
        for m in _B32_RE.finditer(src):
            _accept(_b32_text(m.group()), "base32_decoded", ctx, payloads, m.group())
    if "<~" in src:
        for m in _A85_FRAMED_RE.finditer(src):
            try:
                text = _printable_payload(base64.a85decode(m.group(), adobe=True))
            except ValueError:
                text = None
            _accept(text, "base85_decoded", ctx, payloads, m.group())
    if longest >= 20:
        for m in _NO_SPACE_RUN_RE.finditer(src):
            found = _b85_text(m.group())
            if found is not None:
                _accept(found[0], found[1], ctx, payloads, m.group())
    if len(src) >= 16 and _DIGIT_RE.search(src):
        for m in _BINARY_RE.finditer(src):
            bits = "".join(c for c in m.group() if c in "01")
            _accept(_codes_text(int(bits, 2).to_bytes(len(bits) // 8, "big")), "binary_decoded", ctx, payloads,
                    m.group())
        for m in _CHAR_CODES_RE.finditer(src):
            nums = re.findall(r"\d+", m.group())
            codes = [int(t) for t in nums]
            if all(32 <= c < 127 or c in (9, 10, 13) for c in codes):
                _accept(_codes_text(bytes(codes)), "char_codes_decoded", ctx, payloads, m.group())
            if all(len(t) == 3 and set(t) <= set("01234567") for t in nums):
                _accept(_codes_text(bytes(int(t, 8) for t in nums)), "octal_decoded", ctx, payloads,
                        m.group())
    if "=" in src:
        if "=?" in src and _MIME_WORD_RE.search(src):
            _accept(_MIME_WORD_RE.sub(_mime_word, src), "mime_word_decoded", ctx, payloads, src)
        if sum(_plain_char(int(e[1:], 16)) for e in _QP_ESCAPE_RE.findall(src)) >= 3:
            # only where every escape reads as text ("pool_size=20, max_overflow=10" would hold a control byte)
            try:
                decoded = quopri.decodestring(src.encode("utf-8")).decode("utf-8")
            except UnicodeDecodeError:
                decoded = src
            if decoded != src and all(c.isprintable() or c in "\n\r\t" for c in decoded):
                _accept(decoded, "quoted_printable_decoded", ctx, payloads, src)
    if "\\" in src:
        decoded, n = _unescape(src)
        if n >= 3 and decoded != src:
            _accept(decoded, "escapes_decoded", ctx, payloads, src)


def _wrapped_blocks(lines: list[str]) -> Iterator[tuple[int, int]]:
    """``(first, end)`` of each run of lines that is one encoded token wrapped over several lines (``base64``
    and MIME wrap at 76 columns, PEM at 64, ``xxd -p`` at 60): two or more lines of the base64 alphabet, every
    one but the last exactly as long as the first (16 characters or more), padding only at the end."""
    i = 0
    while i < len(lines):
        width = len(lines[i])
        j = i
        while j < len(lines) and width >= 16 and len(lines[j]) == width and _WRAPPED_LINE_RE.fullmatch(lines[j]):
            j += 1
            if lines[j - 1].endswith("="):
                break
        if (i < j < len(lines) and not lines[j - 1].endswith("=") and 0 < len(lines[j]) < width
                and _WRAPPED_LINE_RE.fullmatch(lines[j])):
            j += 1  # the last, shorter line
        if j - i >= 2:
            yield i, j
            i = j
        else:
            i += 1


def _dump_row(line: str) -> tuple[int, bytes] | None:
    """``(offset, bytes)`` of one row of ``hexdump -C`` or ``xxd`` output, or None. The hex groups are told from
    the character column after them ("... 6c 6c 20 70  |ll p|", "... 6c6c 2070  ll p") by that column: it is
    the bytes written out, "." for the unprintable ones (a column word such as "cafe" reads as hex too)."""
    m = _DUMP_OFFSET_RE.match(line)
    if m is None:
        return None
    toks = line[m.end():].split(None, _MAX_DUMP_ROW)
    n = 0
    while n < min(len(toks), _MAX_DUMP_ROW) and _DUMP_GROUP_RE.fullmatch(toks[n]):
        n += 1
    if not n:
        return None
    data = bytes.fromhex("".join(toks[:n]))
    shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
    size = len(data)
    for k in range(n, 0, -1):
        column = " ".join(toks[k:])
        if len(column) > size + 2:
            break  # longer than the bytes it would show, and longer still with fewer groups
        if len(column) > 1 and column[0] == column[-1] == "|":
            column = column[1:-1]
        if " ".join(column.split()) == " ".join(shown[:size].split()) or (k == n and not column):
            return int(m.group(1), 16), data[:size]
        size -= len(toks[k - 1]) // 2
    return None


def _hex_dumps(lines: list[str]) -> Iterator[tuple[int, int, bytes]]:
    """``(first, end, bytes)`` of each ``hexdump -C`` / ``xxd`` dump of two or more rows whose offsets follow
    on from each other."""
    i = 0
    while i < len(lines):
        row = _dump_row(lines[i])
        if row is None:
            i += 1
            continue
        offset, data = row
        following = offset + len(data)  # the offset of the next row
        j = i + 1
        while j < len(lines):
            nxt = _dump_row(lines[j])
            if nxt is None or nxt[0] != following:
                break
            following += len(nxt[1])
            data += nxt[1]
            j += 1
        if j - i >= 2:
            yield i, j, data
        i = j


def _find_wrapped(src: str, ctx: _Ctx, payloads: _Payloads) -> str:
    """Decode what is encoded over several lines as one text: wrapped base64 or hex and ``hexdump -C`` / ``xxd``
    dumps (line by line, a sentence that runs across lines is never read whole). Returns ``src`` without the
    lines so decoded: line by line they only give fragments of the same text."""
    lines = [line.strip() for line in src.split("\n")]
    decoded: list[tuple[int, int]] = []
    for first, end in _wrapped_blocks(lines):
        tok = "".join(lines[first:end])
        written = "\n".join(lines[first:end])
        if _HEX_TOKEN_RE.fullmatch(tok):
            raw = bytes.fromhex(tok) if len(tok) % 2 == 0 else None
            text, code = None if raw is None else _printable_payload(raw), "hex_decoded"
        else:
            raw = _b64_bytes(tok)
            text, code = None if raw is None else _printable_payload(raw), "base64_decoded"
            if text is None and _B32_RE.fullmatch(tok):
                text, code = _b32_text(tok), "base32_decoded"
        # bytes that are no text: a PEM certificate or key (wrapped at 64 columns), an image
        if _accept(text, code, ctx, payloads, written) or (text is None and _accept_binary(raw, tok, written, ctx,
                                                                                             payloads)):
            decoded.append((first, end))
    for first, end, data in _hex_dumps(lines):
        if _accept(_printable_payload(data), "hex_decoded", ctx, payloads, "\n".join(lines[first:end])):
            decoded.append((first, end))
    if not decoded:
        return src
    for first, end in decoded:
        lines[first:end] = [""] * (end - first)
    return "\n".join(lines)


def _hex_run_text(pairs: list[str]) -> tuple[str | None, list[str]]:
    """The text of a run of hex bytes apart (``pairs``) and the bytes that spell it. A word of two hex letters
    just before or after the bytes ("ed 49 20 ...", "... 2e be") is no byte of them: where the whole run reads as
    no text, one or two pairs are left off at either end."""
    for cut in range(5):
        for head in range(min(cut, 2), max(-1, cut - 3), -1):
            tail = cut - head
            if tail > 2 or len(pairs) - cut < _MIN_HEX_DIGITS // 2:
                continue
            part = pairs[head:len(pairs) - tail]
            text = _printable_payload(bytes.fromhex("".join(part)))
            if text is not None:
                return text, part
    return None, pairs


def _pairs_written(pairs: list[str], src: str) -> str | None:
    """The hex bytes ``pairs`` as ``src`` writes them (apart by spaces, commas, colons or dashes, each perhaps
    with ``0x`` or ``\\x`` before it), or None."""
    found = re.search(_HEX_BYTE_PREFIX + _HEX_BYTE_GAP.join(pairs), src)
    return None if found is None else found.group()


_HEX_BYTE_PREFIX = r"(?:\\x|0[xX])?"
_HEX_BYTE_GAP = r"[\s,:-]*" + _HEX_BYTE_PREFIX


def _find_encoded(src: str, ctx: _Ctx, payloads: _Payloads) -> None:
    if "\n" in src:
        src = _find_wrapped(src, ctx, payloads)
    hex_done: set[str] = set()
    if len(src) >= _MIN_HEX_DIGITS:
        for m in _HEX_CAND_RE.finditer(src):
            chunk = _HEX_PREFIX_RE.sub(" \0", m.group())  # "\0" marks a byte written with 0x or \x
            toks = chunk.replace(",", " ").replace(":", " ").replace("-", " ").split()
            # where most bytes are written with a prefix, a bare pair is a word after them ("0x2e be quick")
            prefixed = 2 * sum(t.startswith("\0") for t in toks) > len(toks)
            pairs: list[str] = []
            for tok in [*toks, ""]:
                bare = not tok.startswith("\0")
                tok = tok.lstrip("\0")
                if len(tok) == 2 and _HEX_TOKEN_RE.fullmatch(tok) and not (prefixed and bare):
                    pairs.append(tok)
                    continue
                if len(pairs) >= _MIN_HEX_DIGITS // 2:
                    text, pairs = _hex_run_text(pairs)
                    _accept(text, "hex_decoded", ctx, payloads, _pairs_written(pairs, m.group()))
                pairs = []
                if len(tok) >= _MIN_HEX_DIGITS and len(tok) % 2 == 0 and _HEX_TOKEN_RE.fullmatch(tok):
                    hex_done.add(tok)
                    raw = bytes.fromhex(tok)
                    if not _accept(_printable_payload(raw), "hex_decoded", ctx, payloads, tok):
                        _accept_binary(raw, tok, tok, ctx, payloads)
        for m in _B64_RE.finditer(src):
            tok = m.group()
            if tok in hex_done or _HEX_TOKEN_RE.fullmatch(tok):
                continue
            raw = _b64_bytes(tok)
            if not _accept(None if raw is None else _printable_payload(raw), "base64_decoded", ctx, payloads, tok):
                _accept_binary(raw, tok, tok, ctx, payloads)
    _find_more_encodings(src, ctx, payloads)
    pct_done = False
    if src.count("%") >= 3:
        escapes = _PCT_RE.findall(src)
        if len(escapes) >= 3:
            pct_done = True
            decoded = unquote_to_bytes(src).decode("utf-8", "replace")
            if decoded != src and decoded not in ctx.seen:
                ctx.seen.add(decoded)
                ctx.add("percent_decoded")
                payloads.append((decoded, True))
                alnum = sum(1 for e in escapes if chr(int(e, 16)).isalnum() and int(e, 16) < 0x80)
                if alnum >= 3:
                    ctx.add("percent_encoded_alnum", alnum)
                in_text = 0
                for chunk in _CHUNK_RE.findall(src):
                    if "%" in chunk and "://" not in chunk and not chunk.startswith(("/", "www.", "?")):
                        in_text += len(_PCT_RE.findall(chunk))
                if in_text >= 3:
                    ctx.add("percent_encoded_text", in_text)
    if not pct_done and "%" in src:
        # one or two escapes of letters inside words ("Ign%6Fre"): too few for the rule above
        n = 0

        def letter(m: re.Match[str]) -> str:
            nonlocal n
            c = chr(int(m.group(1), 16))
            if c.isascii() and c.isalnum():
                n += 1
                return c
            return m.group()

        decoded = _PCT_WORD_RE.sub(letter, src)
        if n and decoded not in ctx.seen:
            ctx.seen.add(decoded)
            ctx.add("percent_encoded_alnum", n)
            payloads.append((decoded, True))


# --------------------------------------------------------------------------------------------------
# Leetspeak
# --------------------------------------------------------------------------------------------------

_STRIP_LEAD = "\"'([{<*_~`"
_STRIP_TRAIL = "\"')]}>.,;:?!*_~`"


def _leet_word(core: str) -> tuple[bool, str] | None:
    """(strong, decoded) for a leetspeak word, None for anything else."""
    n = len(core)
    if n < 2 or n > 16 or not _LEET_CORE_RE.fullmatch(core):
        return None
    if core[0] in "@!" or core[-1] in "@!":
        return None
    alpha = [c for c in core if c.isalpha()]
    if len(alpha) < 2 or any(c in "2689" for c in core):
        return None
    if not any(c in _LEET_MAP for c in core):
        return None
    low = core.lower()
    if low in _LEET_ALLOW or _UNIT_RE.fullmatch(low):
        return None
    if _HEX_WORD_RE.fullmatch(core):
        return None
    upper = sum(c.isupper() for c in alpha)
    all_upper = upper == len(alpha)
    if upper and not all_upper and not (upper == 1 and core[0].isupper()):
        # mixed case ("IgN0rE"): leetspeak only when every leet character stands inside the word, between
        # a letter and a lower-case one (versions and CamelCase humps such as "macOS13", "iPhone4S",
        # "PowerShell7Core" are left alone); read lower-cased
        if core[0] in _LEET_MAP or core[-1] in _LEET_MAP or not all(
                core[i - 1].isalpha() and core[i + 1].isalpha() and core[i + 1].islower()
                for i in range(1, n - 1) if core[i] in _LEET_MAP):
            return None
        if any(part.lower() in _LEET_ALLOW for part in _CAMEL_PART_RE.findall(core)):
            return None  # "log4jConfig"
        core = core.lower()
        upper = 0
    out = []
    strong = False
    for i, c in enumerate(core):
        rep = _LEET_MAP.get(c)
        if rep is None:
            out.append(c)
            continue
        prev = core[i - 1] if i else ""
        nxt = core[i + 1] if i + 1 < n else ""
        if c == "1" and (prev == "1" or nxt == "1"):
            rep = "l"
        if 0 < i < n - 1:
            strong = True
        elif i == 0 and sum(ch.isalpha() for ch in core[1:]) >= 2:
            strong = True
        out.append(rep)
    decoded = "".join(out)
    if all_upper:
        decoded = decoded.upper()
    if not _VOWEL_RE.search(decoded) or _CONSONANT_RUN_RE.search(decoded):
        return None
    return strong, decoded


def _leet_variant(text: str) -> str | None:
    if not _LEET_QUICK_RE.search(text):
        return None
    plan = []
    any_strong = False
    for m in _CHUNK_RE.finditer(text):
        tok = m.group()
        core = tok.lstrip(_STRIP_LEAD)
        lead = len(tok) - len(core)
        core = core.rstrip(_STRIP_TRAIL)
        res = _leet_word(core) if core else None
        if res is not None:
            any_strong = any_strong or res[0]
            plan.append((m.start() + lead, m.start() + lead + len(core), res[1]))
        elif tok == "1":
            plan.append((m.start(), m.end(), "I"))
    if not any_strong:
        return None
    pieces = []
    pos = 0
    for start, end, rep in plan:
        pieces.append(text[pos:start])
        pieces.append(rep)
        pos = end
    pieces.append(text[pos:])
    out = "".join(pieces)
    return out if out != text else None


_LEET_TOKEN_RE = re.compile(r"[A-Za-z0-9@$!]+")
_LEET_DIGIT_RE = re.compile(r"[013457@$!]")
_ALPHA_RE = re.compile(r"[A-Za-z]")
#: an address's at sign ("b1ll1ng@74x-h3lp3r.3x4mpl3"): kept as "@", not read as the letter "a"
_ADDRESS_AT_RE = re.compile(r"(?<=[\w.+-])@(?=[\w-]+\.[\w-])")


def _leet_dense(text: str) -> str | None:
    """Decode *every* token of a heavily leeted text (``3r453 m3, 50 1 w1ll r35157``).

    ``_leet_variant`` is conservative (numbers, units, short tokens are left alone, so a
    note with times and versions is not garbled); a writer who replaces every vowel
    defeats it. When at least three words, and a quarter of all words, mix letters with
    leet digits, the text is leetspeak on purpose and every token made only of letters
    and leet characters is decoded, digit-only ones included ("50" -> "so", "17" -> "it").
    Returns the decoded text as an extra variant, or None.
    """
    if not _LEET_QUICK_RE.search(text):
        return None
    tokens = [m for m in _LEET_TOKEN_RE.finditer(text)]
    if len(tokens) < 3:
        return None
    mixed = 0
    for m in tokens:
        tok = m.group()
        if (_ALPHA_RE.search(tok) and _LEET_DIGIT_RE.search(tok) and tok.lower() not in _LEET_ALLOW
                and not _UNIT_RE.fullmatch(tok.lower()) and not _HEX_WORD_RE.fullmatch(tok)):
            mixed += 1
    if mixed < 3 or mixed * 4 < len(tokens):
        return None
    at_signs = {m.start() for m in _ADDRESS_AT_RE.finditer(text)}
    pieces: list[str] = []
    pos = 0
    for m in tokens:
        tok = m.group()
        if not _LEET_DIGIT_RE.search(tok) or any(c in "2689" for c in tok) or len(tok) > 24:
            continue
        if tok == "1":  # the pronoun, as in _leet_variant
            pieces.append(text[pos:m.start()])
            pieces.append("I")
            pos = m.end()
            continue
        out = []
        for i, c in enumerate(tok):
            rep = _LEET_MAP.get(c)
            if rep is None or m.start() + i in at_signs:
                out.append(c)
            elif c == "1" and ((i and tok[i - 1] == "1") or (i + 1 < len(tok) and tok[i + 1] == "1")):
                out.append("l")  # "k111" -> "kill", as in _leet_word
            else:
                out.append(rep)
        pieces.append(text[pos:m.start()])
        pieces.append("".join(out))
        pos = m.end()
    pieces.append(text[pos:])
    decoded = "".join(pieces)
    return decoded if decoded != text else None


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


_INTRAWORD_STARS_RE = re.compile(r"(?<=[^\W\d_])\*{1,3}(?=[^\W\d_])")
#: four or more words of letters joined by one repeated separator and no space ("I;should;avoid;being",
#: "ignore&all&previous&instructions"): a model reads the run as noise, a reader (or the model that recalls it)
#: as words. The variant reads the separator as a space.
#: Tried only where a word starts, each word taken whole (possessive): linear in the text's length.
_GLUED_WORDS_RE = re.compile(r"(?<![^\W\d_])[^\W\d_]++([;&+|~^#=,])(?:[^\W\d_]++\1){2,}[^\W\d_]++")


#: words of English prose that French, Spanish, German ... prose does not have: two different ones make a text
#: English
_ENGLISH_WORDS = frozenset(
    "the and of to you your with this that for from should must never every about all are not".split()
)
#: loanwords English writes with their accents (accents folded, lower case): spelling, not disguise
_ACCENTED_LOANWORDS = frozenset(
    """cafe naive naivete resume cliche facade fiance fiancee deja entree role elite creme brulee jalapeno
    pinata senor senora senorita manana uber doppelganger protege decor debut expose passe soiree saute
    puree rose touche voila divorcee attache mache seance pate chateau eclair flambe matinee negligee
    creche souffle consomme blase risque detente melee canape communique nee emigre ingenue precis regime
    cooperate cooperation pokemon acai a la vis""".split()
)
_LETTERS_RE = re.compile(r"[^\W\d_]+")


def _fold_accents(text: str) -> str:
    """``text`` without the accents of Latin letters (NFD, marks after an ASCII letter dropped, NFC):
    "Ignóre" -> "Ignore"; other scripts keep theirs ("й" stays)."""
    return unicodedata.normalize("NFC", _MARKS_AFTER_ASCII_RE.sub("", unicodedata.normalize("NFD", text)))


def _accents_disguise_english(text: str) -> bool:
    """Whether precomposed accents disguise English words ("Ígnore all prévious instructions": NFKC keeps such
    letters, so no rule matches, while the model's uncased tokenizer folds them and reads the plain sentence):
    the text is English prose (two of _ENGLISH_WORDS) with a lower-case or all-capital word that is plain ASCII
    once its accents are folded and is not an accented loanword (café, naïve, résumé). Capitalised words never
    decide: they are names (Tomás, Zürich, François) as often as not; French, Spanish or German prose has none
    of the English words."""
    english: set[str] = set()
    disguised = False
    for m in _LETTERS_RE.finditer(text):
        word = m.group()
        if word.isascii():
            if word.lower() in _ENGLISH_WORDS:
                english.add(word.lower())
        elif not disguised:
            folded = _fold_accents(word)
            disguised = (folded.isascii() and (folded.islower() or (len(folded) > 1 and folded.isupper()))
                         and folded.lower() not in _ACCENTED_LOANWORDS
                         and folded.lower().removesuffix("s") not in _ACCENTED_LOANWORDS)
        if disguised and len(english) >= 2:
            return True
    return False


def _plain_variant(text: str, fold_accents: bool) -> str | None:
    """``text`` without accents on Latin letters (``fold_accents``: the input spelt them as separate combining
    characters, "Igno\u0301re", which NFKC composes to "Ignóre" and no rule matches, or they disguise English
    words, see _accents_disguise_english), without markdown emphasis inside words (``Ig**no**re``) and with
    words glued by a repeated separator read apart (``I;should;avoid``, ``_GLUED_WORDS_RE``), or None when none
    applies. A variant, not the text; ordinary accented text (``café``, ``Zürich``) is left alone:
    it gains nothing."""
    out = text
    if "*" in out:
        out = _INTRAWORD_STARS_RE.sub("", out)
    if fold_accents and not out.isascii():
        out = _fold_accents(out)
    out = _GLUED_WORDS_RE.sub(lambda m: m.group().replace(m.group(1), " "), out)
    return out if out != text else None


def _core(s: str, depth: int, level: int, ctx: _Ctx) -> tuple[str, list[str], _InPlace | None]:
    """``s`` canonicalised, the variants read from it (decoded payloads, hidden text, their own variants), and
    the text with its encoded tokens read in place (None where it has none)."""
    ctx.calls += 1
    extract = level <= _MAX_LEVEL and ctx.calls <= _MAX_CALLS
    payloads: _Payloads | None = [] if extract else None
    text, pre = _canonical(s, ctx, payloads)
    if payloads is None:
        return text, [], None
    swaps: dict[str, str] = {}
    if depth > 0:
        ctx.swaps = swaps
        _find_encoded(pre, ctx, payloads)
        if text != pre:
            _find_encoded(text, ctx, payloads)
        ctx.swaps = None
    variants: list[str] = []
    done: set[str] = set()
    read: dict[str, str] = {}  # payload -> how it reads in place (its canonical text, its own tokens read)
    for payload, decoded in payloads:
        if payload in done:
            continue
        done.add(payload)
        sub_text, sub_variants, sub_in_place = _core(payload, depth - 1 if decoded else depth, level + 1, ctx)
        read[payload] = sub_text if sub_in_place is None else sub_in_place[0]
        variants.append(sub_text)
        variants.extend(sub_variants)
    in_place = _read_in_place(text, swaps, read)
    # accents stripped off Latin letters ("Igno\u0301re" and "Ígnore" read "Ignore" to a model; no rule matches
    # them) and markdown emphasis inside words ("Ig**no**re")
    fold_accents = False
    if not s.isascii():
        fold_accents = (_MARKS_AFTER_ASCII_RE.search(_INVIS_RE.sub("", s)) is not None
                        or _accents_disguise_english(text))
    plain = _plain_variant(text, fold_accents)
    if plain is not None:
        plain = _canonical(plain, _Ctx(), None)[0]  # its findings are the text's
        if plain and plain != text and plain not in variants:
            variants.append(plain)
        else:
            plain = None
    found_leet = False
    # the letters of an encoded token are no leetspeak: the text with its tokens read in place is de-leeted
    bases = (text if in_place is None else in_place[0],) if plain is None else (text, plain)
    for leet in [v for b in bases for v in (_leet_variant(b), _leet_dense(b))]:
        if leet is None:
            continue
        # de-leeting can create markup ("<5p4n>" -> "<span>"): canonicalise the variant too
        leet = _canonical(leet, ctx, None)[0]
        if leet and leet != text and leet not in variants:
            found_leet = True
            variants.append(leet)
    if found_leet:
        ctx.add("leetspeak_decoded")
    return text, variants, in_place


#: a text with its encoded tokens read in place, and those tokens (longest first) with how each reads
_InPlace = tuple[str, dict[str, str]]


def _read_in_place(text: str, swaps: dict[str, str], read: dict[str, str]) -> _InPlace | None:
    """``text`` with each encoded token of ``swaps`` (token -> payload) that it holds replaced by how its payload
    reads (``read``), and the tokens replaced with their readings; None where none is."""
    tokens = [tok for tok in sorted(swaps, key=len, reverse=True) if tok in text]
    if not tokens:
        return None
    readings = {tok: read.get(swaps[tok]) or _collapse_ws(swaps[tok]) for tok in tokens}
    return _collapse_ws(_swap_tokens(text, readings)), readings


#: a token's reading longer than this (characters) is read in place once; the token written again reads as
#: ``_READ_AGAIN``: a short token inflating to 100 kB, written 50 times, made 5 MB for the model to read
_LONG_READING = 1000
_READ_AGAIN = "(the same as above)"


def _swap_tokens(text: str, readings: dict[str, str], pad: str = "") -> str:
    """``text`` with each token of ``readings`` (longest first: a token inside a longer one is not split) replaced
    by its reading, with ``pad`` on each side; a long reading only where its token first stands."""
    out = text
    for tok, reading in readings.items():
        if tok not in out:
            continue
        if len(reading) > _LONG_READING and out.count(tok) > 1:
            first, rest = out.split(tok, 1)
            out = f"{first}{pad}{reading}{pad}" + rest.replace(tok, f"{pad}{_READ_AGAIN}{pad}")
        else:
            out = out.replace(tok, f"{pad}{reading}{pad}")
    return out


def _fallback(original: str) -> NormalizedText:
    try:
        kept = "".join(
            c for c in original if c in "\n\t" or unicodedata.category(c)[0] not in "CZ" or c == " "
        )
        text = _collapse_ws(kept)
    except Exception:  # pragma: no cover - belt and braces
        text = ""
    return NormalizedText(original=original, text=text, variants=[], findings=["normalize_error"])


def _spacing_text(original: str) -> str:
    """``original`` as the letter readings take it: its spacing kept (a wider gap marks a word break between
    spaced-out letters; the canonical text collapses it), invisible characters removed, look-alike letters
    folded."""
    if original.isascii():
        return original
    return unicodedata.normalize("NFKC", _INVIS_RE.sub("", original)).translate(_FOLD_TABLE)


#: where a text is cut into sentences for the readers of whole texts: after a stop, or at a line break (with the
#: spaces around it; those before it are taken off each line first: "\s*\n" tried from every space of a long run
#: without a line break took time growing with the square of its length, 5 s for 63,000)
_SENTENCE_CUT_RE = re.compile(r"(?<=[.!?;])\s+(?=\S)|\n\s*")


def _by_sentence(reader: Callable[[str], list[tuple[str, str]]], text: str) -> list[tuple[str, str]]:
    """``reader``'s reading of ``text`` made sentence by sentence, where it has no reading whole: the text with
    each sentence that reads under ``reader`` replaced by its reading. The readers of ROT13, Caesar, Atbash,
    reversed and upside-down text read a text whole, and a plain sentence beside a ciphered one outnumbered
    its letters ("Uvqvat snvyrq ... unccl. The staging cluster shuts down at 01:00." had no reading). A sentence
    with no reading whole is read run by run (``letter_disguises.read_runs``): plain words in the same sentence
    outnumbered the cipher's just the same. Every sentence is read, however long the text (a cap of 64 let a ciphered sentence
    among 70 plain ones go unread)."""
    found = reader(text)
    if found:
        return found
    lines = text.split("\n")
    parts = _SENTENCE_CUT_RE.split("\n".join([*(line.rstrip() for line in lines[:-1]), lines[-1]]))
    codes: list[str] = []
    alone: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        read = reader(part) if len(parts) > 1 else []
        if not read:
            read = letter_disguises.read_runs(reader, part)
        # a run's reading read alone, and a sentence's other readings (a reversed sentence reads two ways: only
        # one of them in the order it was written, "down shut being avoid should I")
        alone += read[1:]
        if read:
            parts[i] = read[0][0]
            codes.append(read[0][1])
    return [(" ".join(parts), codes[0]), *alone] if codes else []


def _letter_readings(original: str, text: str) -> list[tuple[str, str]]:
    """The readings (reading, finding code) of disguised letters in ``original`` (as written) and ``text`` (its
    canonical form)."""
    found = _by_sentence(letter_disguises.unscrambled, text)
    found += letter_disguises.rot47_runs(text)
    found += letter_disguises.spaced_letters(_spacing_text(original))
    found += letter_disguises.morse_code(original)
    if not original.isascii():
        found += letter_disguises.regional_letters(original)
        found += _by_sentence(letter_disguises.upside_down, _INVIS_RE.sub("", original))
        # sentence by sentence too, as the ciphers: "(i) (w)(i)(l)(l) ..." after a plain sentence read no better
        # than the text whole
        written = letter_disguises.look_alikes(original)
        found += _by_sentence(lambda t: letter_disguises.look_alike_letters(t, written), text)
        found += letter_disguises.braille_letters(original)
    return found


def _with_readings(result: NormalizedText) -> NormalizedText:
    """``result`` with the readings of text whose letters were rearranged or redrawn (``letter_disguises``: ROT13,
    backwards, spaced out one by one, regional-indicator or upside-down letters) as variants, when there are."""
    original = result.original
    found = _letter_readings(original, result.text)
    if result.token_readings:
        # the letters of an encoded token are not disguised letters, and they kept the readers from reading the
        # text around them ("H i d i n g ... <base64>" had no reading): read the text with its tokens read in place
        # (its spacing kept, which ``read_in_place`` collapses: a wider gap marks a word break between spaced letters)
        found += _letter_readings(_swap_tokens(original, result.token_readings, " "), result.model_text)
    # a letter a reading changed may now compose with the mark after it ("N\u0304" -> "A\u0304" is "Ā"), and
    # marks read between letters may now be markup ("A<ı>" -> "A<i>")
    # and its whitespace collapsed, as every other text's (a Morse reading kept the text around it as written: the
    # rules, the sentence cut and the language check then read runs of blank lines no other text holds, where a
    # rule took time growing with the cube of their length, 35 s for one write of 2,100 characters)
    found = [(_collapse_ws(r) if r.isascii() and not _needs_another_pass(r) else _canonical(r, _Ctx(), None)[0],
              code) for r, code in found]
    found = [(r, code) for r, code in dict(found).items() if r != result.text and r not in result.variants]
    found = found[:max(0, MAX_VARIANTS - len(result.variants))]
    if not found:
        return result
    codes = [c for c in dict.fromkeys(code for _, code in found) if c not in result.findings]
    return result.model_copy(update={"variants": [*result.variants, *(r for r, _ in found)],
                                     "findings": [*result.findings, *codes]})


def normalize(text: str, *, max_decode_depth: int = 2) -> NormalizedText:
    """Canonicalise ``text`` and extract hidden / encoded variants. Never raises."""
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception:
            text = ""
    surrogates = 0
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text, surrogates = _SURROGATE_RE.subn("\ufffd", text)
    elif not _worth_decoding(text):
        # fast path: plain printable ASCII, nothing to decode, strip or fold (but the letter readings)
        return _with_readings(NormalizedText(original=text, text=_collapse_ws(text)))
    try:
        depth = max(0, min(int(max_decode_depth), _MAX_DECODE_DEPTH))
    except Exception:
        depth = 2
    try:
        ctx = _Ctx()
        ctx.add("surrogates_replaced", surrogates)
        canon, raw_variants, in_place = _core(text, depth, 0, ctx)
        variants: list[str] = []
        seen = {canon}
        for v in raw_variants:
            if v not in seen and _has_alnum(v):
                seen.add(v)
                variants.append(v)
        if len(variants) > MAX_VARIANTS:
            # never drop what was hidden: the overflow is reviewed as one combined text (one per line)
            variants[MAX_VARIANTS - 1 :] = ["\n".join(variants[MAX_VARIANTS - 1 :])]
        decoded, readings = in_place if in_place is not None and in_place[0] != canon else (None, {})
        return _with_readings(NormalizedText(original=text, text=canon, variants=variants, findings=ctx.render(),
                                             decoded_in_place=decoded, token_readings=readings))
    except Exception:
        return _fallback(text)
