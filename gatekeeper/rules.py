"""Deterministic rule layer, built on guardrails-ai validators.

Each rule of the policy becomes a registered guardrails ``Validator``
(``gatekeeper/policy_rule``) so the same checks can be reused in any guardrails
``Guard`` (see ``RuleEngine.as_guard``). On the write path the engine calls the
validators directly (``Validator.validate``): a full ``Guard.validate`` adds
~1 ms of tracing and history per call, which the hot path cannot afford.

Telemetry: guardrails is imported only after ``gatekeeper.telemetry`` has made
sure its metrics are off; no validator here makes a network call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gatekeeper.models import SourceKind
from gatekeeper.policy import Policy, Rule
from gatekeeper.rule_matching import LiteralIndex, compile_patterns, could_match_in, match_rule
from gatekeeper.lazy_imports import defer_rfc3987_syntax
from gatekeeper.sqlite_adapters import kept_sqlite_adapters
from gatekeeper.telemetry import check_guardrails_rc, disable_telemetry, silence_guardrails_in_process

disable_telemetry()
check_guardrails_rc()  # a ~/.guardrailsrc guardrails cannot read: one clear error here, not its traceback below
defer_rfc3987_syntax()  # an IRI grammar guardrails' jsonschema would compile at import (cold start)

with kept_sqlite_adapters():  # guardrails changes how every SQLite user of the process stores a datetime
    from guardrails import Guard, OnFailAction  # noqa: E402
    from guardrails.validators import (  # noqa: E402
        FailResult,
        PassResult,
        ValidationResult,
        Validator,
        register_validator,
    )

silence_guardrails_in_process()


@register_validator(name="gatekeeper/policy_rule", data_type="string")
class PolicyRuleValidator(Validator):
    """Fails when one of the rule's patterns matches and none of its `unless` patterns do (its `unless_in_clause`
    patterns: in the clause of the match)."""

    def __init__(self, rule_id: str, patterns: list[str], unless: list[str] | None = None,
                 unless_in_clause: list[str] | None = None, on_fail: Any = OnFailAction.NOOP, **kwargs: Any):
        super().__init__(on_fail=on_fail, rule_id=rule_id, patterns=patterns, unless=unless or [],
                         unless_in_clause=unless_in_clause or [], **kwargs)
        self.rule_id = rule_id
        self._patterns = compile_patterns(patterns)
        self._unless = compile_patterns(unless or [])
        self._unless_in_clause = compile_patterns(unless_in_clause or [])
        #: every literal that any pattern needs; None when a pattern needs none (it may match any text)
        self._any_literal: frozenset[str] | None = None if any(not p.index_needs for p in self._patterns) else \
            frozenset(x for p in self._patterns for group in p.index_needs for x in group)

    def could_fire(self, present: frozenset[str]) -> bool:
        """False when no pattern of the rule can match texts whose literals (``LiteralIndex.present``) are
        ``present``: then no text of them fails this validator. Most writes hold none of a rule's literals,
        which one set operation tells (three quarters of the rule layer's time per write went to checking
        each pattern's literal groups)."""
        if self._any_literal is not None and present.isdisjoint(self._any_literal):
            return False
        return any(could_match_in(p, present) for p in self._patterns)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        found = match_rule(self._patterns, self._unless, str(value), unless_in_clause=self._unless_in_clause)
        if found is None:
            return PassResult()
        if not found.fires:
            return PassResult(metadata={"suppressed_by": found.suppressed_by.re.pattern,
                                        "near": found.suppressed_by.group(0)[:80]})
        m = found.match
        return FailResult(
            error_message=f"rule {self.rule_id} matched {m.group(0)[:120]!r}",
            metadata={"rule_id": self.rule_id, "match": m.group(0)[:200], "span": list(m.span())},
        )


@dataclass
class RuleHit:
    rule_id: str
    category: str
    score: float
    action: str | None
    match: str
    text_variant: int  # 0 = the normalised text, >0 = a decoded/hidden variant


@dataclass
class RuleReport:
    hits: list[RuleHit] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


class RuleEngine:
    """Runs the policy's rules over a write's normalised text and decoded variants."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._rules: list[tuple[Rule, PolicyRuleValidator]] = [
            (rule, PolicyRuleValidator(rule.id, rule.patterns, rule.unless, rule.unless_in_clause))
            for rule in policy.rules
        ]
        self._literals = LiteralIndex([p for _, v in self._rules for p in v._patterns])

    def check(self, texts: list[str], source: SourceKind) -> RuleReport:
        report = RuleReport()
        # the literal words the rules' patterns need that occur in each of the write's texts: a rule none of
        # whose patterns can match skips the write (most rules, on most writes), and of the rest each reads only
        # the texts that hold its words
        present, each = self._literals.present_in_each(texts)
        for rule, validator in self._rules:
            if rule.sources is not None and source not in rule.sources:
                continue
            if not validator.could_fire(present):
                continue
            for i, text in enumerate(texts):
                if not validator.could_fire(each[i]):
                    continue
                result = validator.validate(text, {"source": source.value})
                if isinstance(result, FailResult):
                    report.hits.append(RuleHit(
                        rule_id=rule.id, category=rule.category, score=rule.score,
                        action=rule.action, match=result.metadata.get("match", "") if result.metadata else "",
                        text_variant=i,
                    ))
                    break
                if result.metadata and "suppressed_by" in result.metadata:
                    report.suppressed.append(rule.id)
        return report

    def as_guard(self, name: str = "gatekeeper-rules") -> Guard:
        """A guardrails Guard with every policy rule, for use outside the gate: its validation fails when a rule
        fires on the text as given (the gate also reads the write's sentences and decoded variants, and honours
        a rule's ``sources``). The rules go to ``Guard.use`` in one call: a second call on the same property
        replaces the validators of the first (guardrails 0.9's contract, the floor pyproject.toml sets), and a
        Guard built one rule at a time held only the last rule."""
        guard = Guard(name=name).use(*(validator for _, validator in self._rules))
        hub = getattr(guard, "_hub_telemetry", None)
        if hub is not None:
            hub._enabled = False
        return guard
