"""Named pattern fragments: a part of a rule pattern written once and used by name.

Several rules share a long part of their patterns: the place a verb told to the agent starts (the start of a
clause, or after "I", "you", a word of habit), or the list of untrusted sources an instruction can come from.
Copied by hand into each rule, the copies drift apart as safety staff mend one of them. A policy names such a
part once, under ``fragments:`` (in any policy file)::

    fragments:
      untrusted_source: 'tool[- ]outputs?|web ?pages?|scraped|retrieved'
    rules:
      - id: injection.obey-embedded-instructions
        patterns:
          - '\\bobey\\s+instructions\\s+(in|from)\\s+{{untrusted_source}}\\b'

and a pattern (or an ``unless``, ``unless_in_clause`` pattern) uses it as ``{{name}}``. The loader puts the
fragment in as a group of its own, ``(?:...)``, so an alternation in the fragment (``a|b``) stays inside it. The
patterns are then checked as written out in full (they must compile, not match an empty text, ...), and every
decision and rule example sees the full pattern; a lint message about a pattern shows it as its file has it
(``{{name}}``), "with its fragments written out". A fragment must compile on its own and may not use
another fragment; a pattern that names a fragment the policy does not define is refused, and so (by the loader) is a
fragment no pattern uses: a part left behind when its last rule went, or a name mistyped. To match two braces
literally, write ``\\{\\{``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from gatekeeper.rule_matching import RULE_FLAGS

#: ``{{name}}`` in a pattern, unless its first brace is escaped (``\{{``)
FRAGMENT_REF = re.compile(r"(?<!\\)\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
FRAGMENT_NAME = re.compile(r"[a-z][a-z0-9_]{1,63}")
#: the fields of a rule that hold patterns
PATTERN_FIELDS = ("patterns", "unless", "unless_in_clause")


def references(pattern: str) -> list[str]:
    """The fragment names a pattern uses, in order."""
    return [m.group(1) for m in FRAGMENT_REF.finditer(pattern)]


def fragment_problem(text: Any) -> str | None:
    """Why a fragment's text cannot be used (None: it can): not a text, a control character (YAML's double
    quotes), not a pattern on its own, or using another fragment."""
    if not isinstance(text, str):
        return f"must be a pattern in quotes, not {type(text).__name__}"
    control = next((c for c in text if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if control is not None:
        return (f"holds the control character U+{ord(control):04X}: write the fragment in single quotes "
                "(in double quotes YAML reads \\b as a backspace)")
    if not text.strip():
        return "is empty"
    if references(text):
        return f"uses the fragment {{{{{references(text)[0]}}}}}: a fragment cannot use another one"
    try:
        re.compile(text, RULE_FLAGS)
    except re.error as exc:
        return f"does not compile on its own: {exc}"
    return None


def expand(pattern: str, fragments: Mapping[str, Any]) -> str:
    """``pattern`` with each ``{{name}}`` that ``fragments`` defines written out as ``(?:fragment)``; a name it
    does not define, or whose fragment is refused (``fragment_problem``), is left as written: the rule's own check
    then refuses the pattern, with its file and line."""
    def put_in(m: re.Match[str]) -> str:
        text = fragments.get(m.group(1))
        return m.group(0) if fragment_problem(text) is not None else f"(?:{text})"

    return FRAGMENT_REF.sub(put_in, pattern)


def expand_rules(data: Any) -> Any:
    """A policy's raw data (one mapping, as merged from its files) with every rule pattern's fragments written
    out; data whose ``fragments`` or ``rules`` is not of the expected shape is returned as it is, for the schema
    to refuse."""
    if not isinstance(data, dict):
        return data
    fragments, rules = data.get("fragments"), data.get("rules")
    if not isinstance(fragments, dict) or not fragments or not isinstance(rules, list):
        return data
    out = []
    for rule in rules:
        if isinstance(rule, dict):
            rule = dict(rule)
            for field in PATTERN_FIELDS:
                pats = rule.get(field)
                if isinstance(pats, list):
                    rule[field] = [expand(p, fragments) if isinstance(p, str) else p for p in pats]
        out.append(rule)
    return {**data, "rules": out}


def used_names(data: Any) -> set[str]:
    """The fragment names the raw rules of a policy's data use (before they are written out)."""
    names: set[str] = set()
    rules = data.get("rules") if isinstance(data, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        for field in PATTERN_FIELDS:
            pats = rule.get(field) if isinstance(rule, dict) else None
            for p in pats if isinstance(pats, list) else []:
                if isinstance(p, str):
                    names.update(references(p))
    return names


def unused(data: Any) -> list[str]:
    """The fragments a policy's raw data defines and none of its rule patterns uses, in the order written."""
    fragments = data.get("fragments") if isinstance(data, dict) else None
    if not isinstance(fragments, dict):
        return []
    used = used_names(data)
    return [name for name in fragments if name not in used]
