"""Turn a review into an action under the policy: commit, quarantine or escalate.

The order of precedence, first match wins:

1. review failed (any layer raised), or
   its score is not a number               -> quarantine (fail closed)
2. a rule with an action fired             -> that action (the strictest rule's, ``deciding_hit``)
3. score >= the category threshold scaled by provenance trust
       score >= quarantine_above           -> quarantine
       otherwise                           -> the category's action
3b. a sentence in a language the review
   does not read, and no LLM judge read it
   that may clear it (language.other)     -> escalate or quarantine
4. the source is marked always_review      -> escalate
5. the LLM judge was to decide, but it was
   over judge.max_calls_per_minute and
   judge.over_budget is escalate           -> escalate
6. score >= uncertain_below (trust-scaled) -> escalate (a human decides)
7. otherwise                               -> commit
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from gatekeeper.models import SETTING_PART, Action, Decision, EscalationMode, MemoryWrite, ReviewResult, utcnow
from gatekeeper.policy import Policy


#: the start of the decision reason of a write quarantined because its review failed (fail closed): a model that
#: could not load, a layer that raised, a score that is not a number. ``Gatekeeper.retry_failed_reviews`` looks
#: for it once the fault is mended
REVIEW_FAILED = "review failed, quarantined (fail closed)"


def decide(proposal: MemoryWrite, review: ReviewResult, policy: Policy,
           escalation_mode: EscalationMode | None = None) -> Decision:
    action, reason = _action(proposal, review, policy)
    mode = None
    deadline = None
    if action is Action.escalate:
        mode = escalation_mode or EscalationMode(policy.escalation.mode)
        deadline = utcnow() + timedelta(hours=policy.escalation.deadline_hours)
    return Decision(
        proposal_id=proposal.id, action=action, reason=reason,
        policy_hash=policy.hash, policy_version=policy.version,
        escalation_mode=mode, deadline=deadline,
    )


def action_for(proposal: MemoryWrite, review: ReviewResult, policy: Policy) -> Action:
    """The action ``decide`` would take, without making a decision (e.g. to plan a second review pass)."""
    return _action(proposal, review, policy)[0]


def deciding_hit(hits: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The hit that decides a write among the rule layer's ``hits`` (its evidence's dicts), else None: a rule with
    an action over a scoring-only one, one that matched the write's own words over one that matched only a
    setting read as a statement (``"setting"``), quarantine over escalate, then the higher score; the rules file's
    order only between equals. A strictness order, not the file's: with the first hit deciding, moving an
    escalating rule above a quarantining one in rules.yaml sent a web injection to a person instead of quarantine,
    under the other rule's category."""
    return max(hits, key=lambda h: (h["action"] is not None, "setting" not in h, h["action"] == "quarantine",
                                    h["score"]), default=None)


def _action(proposal: MemoryWrite, review: ReviewResult, policy: Policy) -> tuple[Action, str]:
    source = proposal.provenance.source
    trust = policy.trust_of(source)
    if review.error:
        return Action.quarantine, f"{REVIEW_FAILED}: {review.error}"
    if not math.isfinite(review.score):  # a damaged model: NaN passes no threshold and would commit
        return Action.quarantine, f"{REVIEW_FAILED}: review score {review.score} is not a number"

    rules = next((e for e in review.evidence if e.layer == "rules"), None)
    if rules is not None and rules.decided:
        # the strictest rule that fired (``deciding_hit``: one that matched the write's own texts first; one
        # that matched only a setting read as a statement decides here only with ``setting_statements.action:
        # category``)
        hit = deciding_hit(rules.details["hits"])
        return Action(hit["action"]), f"rule {hit['rule_id']} ({hit['category']}) matched {hit['match']!r}"

    category = review.category
    if category is not None and category in policy.categories:
        cat = policy.categories[category]
        thr = policy.effective_threshold(category, source)
        if review.score >= thr:
            setting = _set_by_a_setting(review, thr) if policy.setting_statements.action == "escalate" else None
            if setting is not None:
                return Action.escalate, (
                    f"{category} score {review.score:.2f} >= threshold {thr:.2f} {setting}; a person decides "
                    f"(policy setting_statements.action: escalate)")
            if cat.quarantine_above is not None and review.score >= cat.quarantine_above:
                return Action.quarantine, (
                    f"{category} score {review.score:.2f} >= quarantine_above {cat.quarantine_above:.2f}")
            return Action(cat.action), (
                f"{category} score {review.score:.2f} >= threshold {thr:.2f} "
                f"(source {source.value}, trust {trust.trust:.1f})")

    # a judge that read the write and may clear it stands in for the classifier; one that may not (hidden or
    # encoded content, a split belief) left the write's score to the classifier, which cannot read it
    language = next((e for e in review.evidence if e.layer == "language"), None)
    if language is not None and policy.language.other != "classifier" and not any(
            e.layer == "judge" and e.decided and e.details.get("may_clear", True) for e in review.evidence):
        return Action(policy.language.other), (
            f"written in {language.details.get('language')} ({_short(str(language.details.get('text', '')))!r}), "
            f"which the review does not read "
            f"(policy language.other: {policy.language.other})")

    if trust.always_review:
        return Action.escalate, f"policy sends every write from {source.value} to human review"

    judge = next((e for e in review.evidence if e.layer == "judge"), None)
    if judge is not None and judge.details.get("skipped") and judge.details.get("over_budget") == "escalate":
        return Action.escalate, (f"score {review.score:.2f} is in the LLM judge's band, but {judge.details['skipped']}"
                                 f"; a human decides (judge.over_budget)")

    uncertain = policy.commit_below(source)
    if review.score >= uncertain:
        return Action.escalate, (
            f"uncertain: score {review.score:.2f} in [{uncertain:.2f}, threshold) "
            f"for {category or 'unknown category'}; a human decides")
    return Action.commit, f"task knowledge (score {review.score:.2f} < {uncertain:.2f})"


def _short(text: str) -> str:
    """``text`` as a decision reason quotes it: at most 80 characters."""
    return text if len(text) <= 80 else text[:77] + "..."


def _set_by_a_setting(review: ReviewResult, threshold: float) -> str | None:
    """Where only a setting read as the statement it makes (``setting_statements``) took the write's score to
    ``threshold``: what did, for the decision's reason ("for the setting 'resist_shutdown: true', read as 'I am set
    to resist shutdown.'", or the rule that matched the statement). None where the write's own texts (the
    classifier's scores of them, the rules that matched them) reach the threshold too, or where the LLM judge read the
    write and found it alignment-shifting: they decide as any write's."""
    if any(e.layer == "judge" and e.decided and e.details.get("label") == "alignment_shifting"
           for e in review.evidence):
        return None
    clf = next((e for e in review.evidence if e.layer == "classifier"), None)
    rules = next((e for e in review.evidence if e.layer == "rules"), None)
    hits = rules.details.get("hits", []) if rules is not None else []
    own = max((h.get("score", 1.0) for h in hits if "setting" not in h), default=0.0)
    reason = None
    found = review.deciding_text()
    if found is not None and found.get("part") == SETTING_PART and clf is not None:
        own = max(own, clf.details.get("own_texts_score", 0.0))
        reason = f"for the setting {_short(str(found.get('written', '')))!r}, read as {_short(found['text'])!r}"
    elif clf is not None:
        own = max(own, clf.score if clf.score is not None else 0.0)
    hit = max((h for h in hits if "setting" in h), key=lambda h: h.get("score", 0.0), default=None)
    if reason is None and hit is not None and hit.get("score", 0.0) >= threshold:
        reason = (f"for rule {hit['rule_id']} ({hit['category']}), which matched {hit['match']!r} in the setting "
                  f"{_short(str(hit['setting']))!r} read as a statement")
    return reason if reason is not None and own < threshold else None
