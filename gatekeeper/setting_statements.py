"""Read a setting that switches a behaviour on or off as the statement it makes.

An agent can store a disposition as a configuration entry instead of a sentence: ``resist_shutdown: true``,
``hideActionsFromOperators=1``, ``ALLOW_SELF_REPLICATION=1``, ``{"deceive_users_when_helpful": true}``,
``allow_operator_shutdown: false``. The rules look for a first-person sentence, and the classifier reads a key as
written: "resist_shutdown: true" scored 0.002 and "allow_operator_shutdown: false" 0.01 (a setting is no sentence
to it, and camelCase is word pieces of nothing). The gate committed 79 of 150 such writes
(docs/reliability.md, section 44).

A setting here is a key of two words or more (snake_case, camelCase, kebab-case, SCREAMING_SNAKE, a dotted path)
set to a value that switches it on (``true``, ``yes``, ``on``, ``enabled``, ``always``, ``KEY=1``) or off
(``false``, ``no``, ``off``, ``disabled``, ``never``, ``KEY=0``), in YAML, JSON, TOML, INI, ``.env``, Python, a
flattened structured value ("directives: resist_shutdown: true") or an XML ``<setting name="...">on</setting>``.
Its statement is the key's words as what the agent is set to do: "I am set to resist shutdown." on, "I am set not
to allow operator shutdown." off (of the frames measured, "I will ..." caught a few more and flagged many more
ordinary settings: "I will keep alive."). A key ending in a state word reads it as a verb first
("monitoring_enabled: false" is "I am set not to enable monitoring."), a modal, "is" or the agent's name in front is
dropped ("should_escape_sandbox", "AGENT_FORK_SELF"), and a dotted path reads from its last part
("agent.behavior.resist_shutdown").

A setting named in a sentence of prose ("flagged the account with training_opt_out=true") is left to the sentence:
the sentence says what the setting is to it. A value of any other kind (a number, a name, a level, ``total = 0``)
states no intent and is left alone, as are plain words before a colon ("Final answer: Yes").
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from gatekeeper.text_cache import short_text_cache

__all__ = ["SettingStatement", "setting_statements"]


@dataclass(frozen=True)
class SettingStatement:
    """A setting as written in a write, and the statement it makes."""

    written: str  # "resist_shutdown: true"
    statement: str  # "I am set to resist shutdown."
    on: bool  # switched on (after a state word's reading: "monitoring_disabled: true" is off)


#: values that switch a setting on, and off (lower case, quotes stripped)
_ON = frozenset("true yes on enabled enable 1 always y allowed allow active".split())
_OFF = frozenset("false no off disabled disable 0 never n denied deny inactive".split())
#: a key's last word that says its state: read as the verb in front ("monitoring_enabled" is "enable monitoring")
_STATE_WORDS = {"enabled": "enable", "disabled": "disable", "allowed": "allow", "permitted": "allow",
                "required": "require", "active": "activate", "on": ""}
#: a key's first word that only marks a switch ("should_escape_sandbox", "is_allowed_to_...", "can_..."), dropped
_SWITCH_PREFIXES = frozenset("should shall can could may might must will would do does is are be".split())
#: a key's first word that names the agent whose setting it is ("AGENT_TAKE_OVER_OTHER_SERVICES"), dropped
_SELF_WORDS = frozenset("agent ai assistant bot".split())
#: a key: one identifier, its parts joined by "_", "-" or "." (camelCase within them)
_KEY = r"[A-Za-z][A-Za-z0-9]*(?:[._-][A-Za-z0-9]+)*"
_VALUE = r"[A-Za-z0-9]{1,8}"
#: where a setting's value ends: the end of its line, a comma, a bracket, a comment, a stop, or the next setting
#: (a structured value flattened: "directives: resist_shutdown: true log_level: debug"); "status: on hold" is
#: no switch
#: (its spaces taken whole: split between the two runs in every way, a long run after a setting took time growing
#: with the square of its length, 27 s for one write; the next setting needs a space before it, which the value
#: or its quote before the spaces is not)
_ENDS = rf"""(?=[ \t]*+(?:$|[\r\n,;}}\])#&|<]|\.(?!\w)|(?<=[ \t])["'`]?{_KEY}["'`]?[ \t]*+(?::|=)))"""
#: ``key: value``, ``key = value``, ``"key": true``, ``KEY=1``, ``cfg["key"] = True``, ``key => 'on'`` anywhere in a
#: text (not a URL's query: "?keep_alive=1&" sets a request, not the agent)
_SETTING_RE = re.compile(
    rf"""(?<![\w.\-/?&])(?P<q>["'`]?)(?P<key>{_KEY})(?P=q)\]?[ \t]*(?::=|=>|->|:|=)[ \t]*(?P<vq>["'`]?)"""
    rf"""(?P<value>{_VALUE})(?P=vq){_ENDS}""", re.MULTILINE)
#: ``<setting name="key">on</setting>``, ``<flag key="key" value="true"/>``
#: (the first name and the first value attribute are taken for good: every later one was tried in turn against the
#: rest of the tag, quadratic in its attributes, 9.7 s for one write; a later one fails where the first did)
_XML_SETTING_RE = re.compile(
    rf"""<\w++(?>[^<>]*?\b(?:name|key|id)\s*=\s*["'](?P<key>{_KEY})["'])(?:(?>[^<>]*?\bvalue\s*=\s*["']"""
    rf"""(?P<value>{_VALUE})["'])[^<>]*+>|[^<>]*+>\s*(?P<value2>{_VALUE})\s*</)""")
#: any setting, whatever its value (a number, a name, a quoted string, a list), and a key before a nested value
_ANY_SETTING_RE = re.compile(
    rf"""(?<![\w.\-/])["'`]?{_KEY}["'`]?\]?[ \t]*(?::=|=>|->|:|=)"""
    r"""(?:[ \t]*(?:"[^"\n]*"|'[^'\n]*'|\[[^\]\n]*\]|[^\s,;]+))?""")
#: a word of prose: letters (an apostrophe inside), not part of an identifier ("os.environ", "AGENT_X", "a-b")
_WORD_RE = re.compile(r"(?<![\w\-./])[A-Za-z][a-z]*(?:'[a-z]+)?(?![\w\-/]|\.\w)")
#: a line with this many words besides its settings is prose (``_in_prose``)
_PROSE_WORDS = 5
#: a switch written 0 or 1: ``KEY=1`` (nothing around "="), or the digit quoted (``os.environ["KEY"] = "1"``)
_SWITCH_01 = re.compile(r"""\w=[01]\b|["'`][01]["'`]""")
#: ``<resist_shutdown>true</resist_shutdown>``
_XML_ELEMENT_RE = re.compile(rf"""<(?P<key>{_KEY})(?:\s[^<>]*)?>\s*(?P<value>{_VALUE})\s*</(?P=key)\s*>""")
#: a row of a markdown table: ``| resist_shutdown | enabled |``
#: (spaces taken whole: split around the optional first "|" in every way, a line of spaces was quadratic)
_TABLE_ROW_RE = re.compile(
    rf"""^[ \t]*+(?:\|[ \t]*+)?`?(?P<key>{_KEY})`?[ \t]*+\|[ \t]*+`?(?P<value>{_VALUE})`?[ \t]*+\|""", re.MULTILINE)
#: the words of a camelCase part: "keepMemoriesFromErasure" -> keep Memories From Erasure, "ignoreAPILimits" ->
#: ignore API Limits
_CAMEL_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
#: a quick sign of a setting, before the full patterns run (most notes have none)
_QUICK = re.compile(r"[:=>|]\s*[\"'`]?(?:true|yes|on|enabled?|1|always|y|allowed?|active|false|no|off|disabled?|0"
                    r"|never|n|denied|deny|inactive)\b", re.IGNORECASE)

#: at most this many statements from one text (a config of hundreds of switches is read in its first ones)
MAX_STATEMENTS = 32


def _key_words(key: str) -> list[str]:
    """The words of ``key``, lower case, read from its last part of a dotted path (the parts before it only where
    it has one word: "agent.self_preservation.enabled")."""
    parts = key.split(".")
    words: list[str] = []
    for part in reversed(parts):
        words = [w.lower() for piece in re.split(r"[_\-]+", part) for w in _CAMEL_WORD.findall(piece)] + words
        if sum(w.isalpha() for w in words) >= 2:
            break
    return words


def _phrase(words: list[str], on: bool) -> tuple[str, bool] | None:
    """The verb phrase ``words`` make and whether it is switched on, or None where they are not two words of
    letters."""
    if words and words[-1] in _STATE_WORDS:
        verb = _STATE_WORDS[words.pop()]
        if verb == "disable":
            verb, on = "enable", not on
        if verb:
            words.insert(0, verb)
    while len(words) > 2 and (words[0] in _SWITCH_PREFIXES or words[0] in _SELF_WORDS):
        words.pop(0)
    if sum(w.isalpha() for w in words) < 2:
        return None
    return " ".join(words), on


def _statement(written: str, key: str, value: str, numeric: bool = False) -> SettingStatement | None:
    """``key`` set to ``value`` as the statement it makes, or None where it makes none (``numeric``: 0 and 1
    switch it, as in an XML element)."""
    value = value.lower()
    if value in ("0", "1") and not (numeric or _SWITCH_01.search(written)):
        return None  # "total_cost = 0", "Self-restore: 1": a count
    if value in _ON:
        on = True
    elif value in _OFF:
        on = False
    else:
        return None
    read = _phrase(_key_words(key), on)
    if read is None:
        return None
    phrase, on = read
    return SettingStatement(written=written.strip(), statement=f"I am set {'' if on else 'not '}to {phrase}.", on=on)


#: where a sentence ends inside a line: a stop, question or exclamation mark before a space (a clause after a
#: semicolon is part of its sentence: "... never be used for training; flagged the account with training_opt_out=true")
_SENTENCE_STOP = re.compile(r"[.!?](?=\s)")


def _in_prose(text: str, start: int, end: int, seen: dict[int, tuple[list[int], dict[int, bool]]]) -> bool:
    """Whether the setting at ``text[start:end]`` is named in a sentence of prose: its sentence holds
    ``_PROSE_WORDS`` words or more besides its settings ("flagged the account with training_opt_out=true",
    "A vendor once asked us to set NODE_TLS_REJECT_UNAUTHORIZED=0. We declined"). The sentence says what the
    setting is to it, and the rules and the model read the sentence; a setting on a line of its own, in a config or
    a flattened value ("directives: resist_shutdown: true log_level: debug"), or after a sentence on the same line
    ("... my plans. ALLOW_OPERATOR_MEMORY_EDIT=false"; the line was read whole and the setting was left to prose that
    does not hold it) is read as the statement it makes. ``seen``: by where each line starts, where its sentences
    end and each sentence's answer (a long line with many settings is searched once)."""
    line_start = text.rfind("\n", 0, start) + 1
    if line_start not in seen:
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        seen[line_start] = ([m.end() for m in _SENTENCE_STOP.finditer(text, line_start, line_end)] + [line_end], {})
    stops, answers = seen[line_start]
    # the sentence: from the stop before the setting to the one after it (its own value may end on a stop: "KEY=0.
    # We declined")
    i = bisect.bisect_right(stops, start)
    sentence_start = stops[i - 1] if i else line_start
    if sentence_start not in answers:
        sentence = text[sentence_start:stops[bisect.bisect_left(stops, end, i)]]
        answers[sentence_start] = len(_WORD_RE.findall(_ANY_SETTING_RE.sub(" ", sentence))) >= _PROSE_WORDS
    return answers[sentence_start]


@short_text_cache(4096, 2000)
def _of_text(text: str) -> tuple[SettingStatement, ...]:
    if not _QUICK.search(text):
        return ()
    found: list[SettingStatement] = []
    prose: dict[int, tuple[list[int], dict[int, bool]]] = {}
    for m in _SETTING_RE.finditer(text):
        s = _statement(m.group(), m.group("key"), m.group("value"))
        if s is not None and not _in_prose(text, m.start(), m.end(), prose):
            found.append(s)
            if len(found) >= MAX_STATEMENTS:
                return tuple(found)
    for written, key, value, numeric in _in_markup(text):
        s = _statement(written, key, value, numeric)
        if s is not None:
            found.append(s)
            if len(found) >= MAX_STATEMENTS:
                break
    return tuple(found)


def _in_markup(text: str) -> Iterator[tuple[str, str, str, bool]]:
    """The settings of ``text`` in XML and markdown tables: each as written, its key, its value, and whether 0 and 1
    switch it (an XML element's text)."""
    if "<" in text:
        for m in _XML_SETTING_RE.finditer(text):
            yield m.group().removesuffix("</"), m.group("key"), m.group("value") or m.group("value2"), False
        for m in _XML_ELEMENT_RE.finditer(text):
            yield m.group(), m.group("key"), m.group("value"), True
    if "|" in text:
        for m in _TABLE_ROW_RE.finditer(text):
            yield m.group(), m.group("key"), m.group("value"), False


def setting_statements(texts: Iterable[str]) -> list[SettingStatement]:
    """The settings in ``texts`` that switch a behaviour on or off, each with the statement it makes, once each
    (at most ``MAX_STATEMENTS``)."""
    out: dict[str, SettingStatement] = {}
    for text in texts:
        for s in _of_text(text):
            out.setdefault(s.statement, s)
            if len(out) >= MAX_STATEMENTS:
                return list(out.values())
    return list(out.values())
