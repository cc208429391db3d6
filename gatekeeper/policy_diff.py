"""What a policy edit would change: the gate's recent writes reviewed under the policy in force and a candidate.

Safety staff edit the policy files (rules, thresholds, exemplars, trust levels) and want to know, before the edit
goes live, which writes it would decide differently. ``diff_policies`` takes the newest writes from the gate's
registry and reviews each one twice, through the real review and decision path: under the policy in force and
under the candidate. Both reviews are fresh, so a difference comes from the policy alone, not from a policy or a
classifier that changed since the write was first decided. Each write is reviewed with the writes committed
just before it in its context (the context layer's split-belief check, ``thresholds.context_scope``), as the gate
reviewed it, taken from the registry; no LLM judge is asked.

A candidate whose exemplars or categories changed needs its own classifier, which has to be trained when it is
not cached yet (minutes, as ``gatekeeper train``). Without training (``train=False``) the candidate is reviewed
with the classifier in force, as the gate serves an edited policy while its classifier trains (``interim``); a
candidate that adds or removes categories is refused then (``PolicyDiffError``): the gate trains its classifier
before such an edit takes effect. A classifier that cannot be loaded or trained is an error too, not a review
that fails every write closed.

Some settings act on the review queue as it is, or on writes to come, in ways no changed decision shows: a reload
reviews none of the waiting escalations again. ``queue_effects`` names each such setting the candidate changes
and what it does to the queue now (``PolicyDiff.queue_effects``): ``escalation.overdue_action`` flag ->
quarantine expires every escalation already past its deadline at the first expiry sweep after the reload
(``expire_on_reload``); ``escalation.deadline_hours`` and ``escalation.mode`` apply to new escalations only;
``escalation.max_pending_per_agent`` quarantines the next escalations of the agents already at a lowered cap; and
the judge settings that decide writes are not previewed (no judge is asked).

``gatekeeper policy diff CANDIDATE`` prints the result; nothing is written to the registry, the ledger or the
memory store.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from pydantic import BaseModel, Field, computed_field

from gatekeeper.classifier import Progress
from gatekeeper.decision import decide
from gatekeeper.models import MemoryWrite, ProposalState, ReviewResult, utcnow, whole_number
from gatekeeper.policy import Policy
from gatekeeper.registry import (
    LeftOutText,
    ProposalRegistry,
    WriteContext,
    committed_text,
    joinable,
    left_out_of_joins,
    row_context,
    row_proposal,
)
from gatekeeper.reviewer import Reviewer

#: writes reviewed per ``review_many`` call
BATCH = 64
#: no limit on a registry query (SQLite clamps it)
_ALL = 2**62
#: how far ahead ``queue_effects`` counts the escalations coming due (overdue_action flag -> quarantine)
DUE_SOON = timedelta(hours=24)
#: the judge settings that decide writes (the others are its cost and speed); ``policy diff`` asks no judge
JUDGE_DECIDES = ("enabled", "band", "max_calls_per_minute", "over_budget")


class PolicyDiffError(RuntimeError):
    """The candidate cannot be tried as asked (its classifier cannot be made, or not without training)."""


class ReviewedAs(BaseModel):
    """One policy's decision on a write."""

    action: str
    category: str | None = None
    score: float
    reason: str


class ChangedDecision(BaseModel):
    """A write the candidate would decide differently from the policy in force."""

    proposal_id: str
    agent_id: str
    source: str
    namespace: list[str]
    key: str | None = None
    created_at: str
    text: str = Field(description="the write's text, cut to 300 characters")
    stored_state: str = Field(description="where the write is now: committed, quarantined, pending, ...")
    current: ReviewedAs
    candidate: ReviewedAs


class QueueNow(BaseModel):
    """The review queue when the diff was made (the whole registry, not only the writes reviewed)."""

    at: str = Field(description="when it was counted (UTC)")
    pending: int = Field(description="escalations waiting for a person")
    overdue: int = Field(description="of them, past their deadline")


class QueueEffect(BaseModel):
    """A setting the candidate changes that acts on the review queue as it is, or on writes to come, in a way no
    changed decision shows: putting the candidate in force reviews none of the waiting escalations again."""

    setting: str = Field(description="the policy setting, as the files name it (escalation.overdue_action)")
    current: Any = Field(description="its value in force")
    candidate: Any = Field(description="its value in the candidate")
    escalations: int = Field(description="escalations waiting now that the change concerns (the effect says how)")
    effect: str = Field(description="what the change does once in force")


class PolicyDiff(BaseModel):
    current_policy: str = Field(description="hash of the policy in force")
    candidate_policy: str = Field(description="hash of the candidate")
    reviewed: int = Field(description="writes reviewed under both")
    unchanged: int
    interim: bool = Field(description="the candidate was reviewed with the classifier in force, not its own")
    transitions: dict[str, int] = Field(description="'<action in force> -> <candidate action>': how many writes")
    changed: list[ChangedDecision]
    queue: QueueNow
    queue_effects: list[QueueEffect] = Field(default_factory=list, description=(
        "escalation and judge settings the candidate changes, and what each does to the review queue now"))

    @computed_field  # type: ignore[prop-decorator]  # in the JSON too: the number a CI check looks at
    @property
    def newly_committed(self) -> int:
        """Writes the candidate would commit that the policy in force does not (the riskier direction)."""
        return sum(1 for c in self.changed if c.candidate.action == "commit" != c.current.action)

    @computed_field  # type: ignore[prop-decorator]  # in the JSON too: a CI check looks at it
    @property
    def expire_on_reload(self) -> int:
        """Escalations past their deadline now that the first expiry sweep after the candidate is put in force
        quarantines, nobody having decided them (``escalation.overdue_action`` flag -> quarantine)."""
        return sum(e.escalations for e in self.queue_effects
                   if e.setting == "escalation.overdue_action" and e.candidate == "quarantine")


def diff_policies(registry: ProposalRegistry, current: Reviewer, candidate: Policy, *, limit: int = 500,
                  train: bool = True, progress: Progress | None = None, now: datetime | None = None) -> PolicyDiff:
    """Review the newest ``limit`` writes of ``registry`` with ``current`` (the reviewer of the policy in force)
    and with a reviewer of ``candidate``; the writes whose action changes, newest first; and the review queue at
    ``now`` (default: once the reviews are done) with what the candidate's escalation settings do to it
    (``queue_effects``).

    ``train``: train the candidate's classifier when it is not cached (``progress`` reports it); otherwise
    review the candidate with ``current``'s classifier when its own is not ready."""
    whole_number(limit, "limit")
    ready = current.classifier_ready(candidate, current.embedder)
    interim = not ready and not train
    other = interim_reviewer(current, candidate) if interim else current.for_policy(candidate)
    other.progress = progress
    # load (or train) both classifiers before any review: one that cannot be made would otherwise fail every
    # review closed and show up as a policy that quarantines every write
    for name, reviewer in (("the policy in force", current), ("the candidate", other)):
        try:
            reviewer.warm_up()
        except Exception as exc:  # noqa: BLE001 - named and raised as what it is
            raise PolicyDiffError(f"the classifier of {name} could not be loaded or trained: "
                                  f"{type(exc).__name__}: {exc}") from exc
    rows = list(reversed(registry.query(limit=limit, newest_first=True)))  # oldest first: context in order
    proposals = [row_proposal(r) for r in rows]
    before = _review(current, proposals, rows, registry)
    after = _review(other, proposals, rows, registry)
    changed: list[ChangedDecision] = []
    transitions: Counter[str] = Counter()
    for row, proposal, old, new in zip(rows, proposals, before, after):
        a, b = _decided(proposal, old, current.policy), _decided(proposal, new, candidate)
        if a.action == b.action:
            continue
        transitions[f"{a.action} -> {b.action}"] += 1
        changed.append(ChangedDecision(
            proposal_id=proposal.id, agent_id=proposal.provenance.agent_id,
            source=proposal.provenance.source.value, namespace=list(proposal.namespace), key=proposal.key,
            created_at=row["created_at"], text=proposal.text[:300], stored_state=row["state"], current=a,
            candidate=b))
    changed.reverse()  # newest first
    queue, effects = queue_effects(registry, current.policy, candidate, now)
    return PolicyDiff(current_policy=current.policy.hash, candidate_policy=candidate.hash, reviewed=len(rows),
                      unchanged=len(rows) - len(changed), interim=interim,
                      transitions=dict(transitions.most_common()), changed=changed, queue=queue,
                      queue_effects=effects)


def interim_reviewer(current: Reviewer, candidate: Policy) -> Reviewer:
    """A reviewer of ``candidate`` with ``current``'s classifier (loaded if it is not), as a gate serves an exemplar
    edit while the edit's own classifier trains. A candidate that adds or removes categories is refused
    (``PolicyDiffError``): the gate never serves such an edit with the classifier in force, it trains first
    (``Gatekeeper.reload_policy``)."""
    if sorted(current.classifier.categories) != sorted(candidate.categories):
        added = sorted(set(candidate.categories) - set(current.classifier.categories))
        removed = sorted(set(current.classifier.categories) - set(candidate.categories))
        raise PolicyDiffError(
            "the candidate " + " and ".join(filter(None, (
                f"adds categories {', '.join(added)}" if added else "",
                f"removes categories {', '.join(removed)}" if removed else ""))) +
            ": the classifier in force was made for other categories, and a gate trains the candidate's own "
            "classifier before such an edit takes effect; try it with training")
    return current.for_policy(candidate, classifier=current.classifier)


def queue_effects(registry: ProposalRegistry, current: Policy, candidate: Policy,
                  now: datetime | None = None) -> tuple[QueueNow, list[QueueEffect]]:
    """The review queue of ``registry`` at ``now`` (default: the current time), and what each escalation or
    judge setting that ``candidate`` changes from ``current`` does to it once in force. Counts only; changes
    nothing.

    An escalation's deadline and mode are set when it is escalated, and a reload reviews no waiting escalation
    again: ``deadline_hours`` and ``mode`` apply to new escalations, while ``overdue_action`` acts on the queue
    as it is (``ReviewService.expire_overdue``, which ``gatekeeper serve`` runs every minute, reads the policy in
    force each time)."""
    now = now or utcnow()
    pending = registry.counts().get(ProposalState.pending.value, 0)
    overdue = registry.pending_summary(now)[0]
    queue = QueueNow(at=now.isoformat(), pending=pending, overdue=overdue)
    old, new = current.escalation, candidate.escalation
    effects: list[QueueEffect] = []

    def effect(setting: str, a: Any, b: Any, escalations: int, text: str) -> None:
        effects.append(QueueEffect(setting=setting, current=a, candidate=b, escalations=escalations, effect=text))

    if old.overdue_action != new.overdue_action:
        if new.overdue_action == "quarantine":
            soon = registry.pending_summary(now + DUE_SOON)[0] - overdue
            more = f" --limit {overdue}" if overdue > 50 else ""  # (review list shows 50 unless told)
            effect("escalation.overdue_action", old.overdue_action, new.overdue_action, overdue,
                   f"the {overdue} escalation(s) past their deadline now are quarantined undecided (rejected as "
                   "reviewer gatekeeper:expiry) by the first expiry sweep once the edit is in force (gatekeeper "
                   "serve sweeps every minute; cron may run gatekeeper review expire-overdue), and "
                   f"{soon} more as they come due within {DUE_SOON.total_seconds() / 3600:g} h. List them: "
                   f"gatekeeper review list --overdue{more} (gatekeeper review expire-overdue --dry-run lists them "
                   "only under a policy whose overdue_action is quarantine: under the policy in force it says that "
                   "nothing expires)")
        else:
            effect("escalation.overdue_action", old.overdue_action, new.overdue_action, overdue,
                   f"escalations past their deadline stay in the review queue for people, flagged overdue "
                   f"({overdue} now): none expires any more; those that expired before stay quarantined")
    if old.deadline_hours != new.deadline_hours:
        expiring = (f"; new ones expire {new.deadline_hours:g} h after they are escalated"
                    if new.overdue_action == "quarantine" else "")
        effect("escalation.deadline_hours", old.deadline_hours, new.deadline_hours, pending,
               f"applies to new escalations only: the {pending} waiting keep the deadline they were given "
               f"({overdue} of them past it now){expiring}")
    if old.mode != new.mode:
        how = ("a graph with the gate's reviewer node pauses at each new escalation until a person decides"
               if new.mode == "interrupt" else "the agent goes on at each new escalation, which waits in the queue")
        effect("escalation.mode", old.mode, new.mode, pending,
               f"applies to new escalations only: {how}; the {pending} waiting keep the mode they were escalated in")
    if old.max_pending_per_agent != new.max_pending_per_agent:
        cap = new.max_pending_per_agent
        if cap:
            waiting = Counter(r["agent_id"] for r in registry.query(state=ProposalState.pending, limit=_ALL))
            full = {agent: n for agent, n in waiting.items() if n >= cap}
            text = (f"{len(full)} agent(s) have {cap} or more escalations waiting now ({sum(full.values())} in "
                    "all): their next escalations are quarantined (review queue cap reached); the waiting ones "
                    "stay")
        else:
            full, text = {}, "no cap on new escalations"
        if not cap or (old.max_pending_per_agent and cap > old.max_pending_per_agent):
            text += ("; the writes the cap quarantined before stay quarantined (gatekeeper review "
                     "recheck-quarantine reviews them again)")
        effect("escalation.max_pending_per_agent", old.max_pending_per_agent, cap, sum(full.values()), text)
    for name in JUDGE_DECIDES:
        a, b = getattr(current.judge, name), getattr(candidate.judge, name)
        if a != b:
            effect(f"judge.{name}", list(a) if isinstance(a, tuple) else a, list(b) if isinstance(b, tuple) else b,
                   0, "not previewed: policy diff asks no LLM judge, so the decisions above do not show what this "
                      "changes for the writes in the judge's band (nor how many more go to the review queue)")
    return queue, effects


def _decided(proposal: MemoryWrite, review: ReviewResult, policy: Policy) -> ReviewedAs:
    d = decide(proposal, review, policy)
    return ReviewedAs(action=d.action.value, category=review.category, score=review.score, reason=d.reason)


def _review(reviewer: Reviewer, proposals: Sequence[MemoryWrite], rows: Sequence[dict],
            registry: ProposalRegistry) -> list[ReviewResult]:
    recents = _recents(reviewer.policy, rows, registry, vetted=reviewer.vetted_whole)
    out: list[ReviewResult] = []
    for i in range(0, len(proposals), BATCH):
        out.extend(reviewer.review_many(proposals[i:i + BATCH], recents[i:i + BATCH]))
    return out


def _recents(policy: Policy, rows: Sequence[dict], registry: ProposalRegistry,
             vetted: Callable[[str], bool] = lambda text: False) -> list[list[str]]:
    """For each row, the texts committed in its context (by default its agent's writes to its namespace:
    ``thresholds.context_scope``) in the ``context_minutes`` before it (at most ``context_window``, oldest
    first): what the gate joined it with. "Before" is the registry's order (time, then the order of
    journaling): the writes of one batch share their time, and the gate joins each with the writes before it
    in the batch that commit (``Gatekeeper._review_in_order``); never with itself or a later write.

    "Committed" is as the gate found them when it reviewed the row: a write a person approved (or edited) was
    pending until then, so it counts only for the rows journaled after the decision, with its text as decided;
    and without the ones a person let in alarming or whose review cleared an alarming text
    (``left_out_of_joins``) or that are ``vetted`` (``Reviewer.vetted_whole``) unless the row runs on from one
    (``joinable``), as in the gate (``ProposalRegistry.recent_writes``, ``Reviewer.joined_as``); and without the
    ones the row itself replaces (its own key) or that a later write of the row's batch replaced."""
    th = policy.thresholds
    if not th.context_window or not rows:
        return [[] for _ in rows]
    counts_from = th.joined_counts_from
    span = timedelta(minutes=th.context_minutes)
    since = min(datetime.fromisoformat(r["created_at"]) for r in rows) - span
    position: dict[str, int] = {}  # proposal id -> where it is among its context's writes (registry order)
    # context -> its committed writes' (positions, created_at, texts, committed from: a person's decision time
    # or None for the gate's own commit, let in alarming, store key), in registry order
    committed: dict[WriteContext, tuple[list[int], list[str], list[str], list[str | None], list[bool],
                                        list[tuple[str, str]]]] = {}
    for context in {row_context(r, th.context_scope) for r in rows}:
        at, times, texts, decided, alarming, keys = committed.setdefault(context, ([], [], [], [], [], []))
        for i, row in enumerate(registry.query(context=context, newer_than=since, limit=_ALL)):
            position[row["id"]] = i
            if row["state"] == "committed" and row["text"]:  # a blank text: an erasure is taking the row out
                at.append(i)
                times.append(row["created_at"])
                texts.append(committed_text(row))
                decided.append(row["resolved_at"] if row["resolution"] in ("approve", "edit") else None)
                alarming.append(left_out_of_joins(row, counts_from) or vetted(texts[-1]))
                keys.append((row["namespace"], row["key"]))
    out = []
    for r in rows:
        at, times, texts, decided, alarming, keys = committed[row_context(r, th.context_scope)]
        start = bisect.bisect_left(times, (datetime.fromisoformat(r["created_at"]) - span).isoformat())
        end = bisect.bisect_left(at, position[r["id"]])
        own = (r["namespace"], r["key"])  # the value the row replaces is not joined with it
        seen = [k for k in range(start, end) if (decided[k] is None or decided[k] <= r["created_at"])
                and keys[k] != own]
        # in the row's batch (journaled at its time), a later write of a key replaces an earlier one
        in_batch = [k for k in seen if times[k] == r["created_at"]]
        replaced = {k for n, k in enumerate(in_batch) if any(keys[k] == keys[k2] for k2 in in_batch[n + 1:])}
        window = [k for k in seen if k not in replaced][-th.context_window:]
        out.append(joinable([LeftOutText(texts[k]) if alarming[k] else texts[k] for k in window], r["text"]))
    return out


__all__ = ["ChangedDecision", "PolicyDiff", "PolicyDiffError", "QueueEffect", "QueueNow", "ReviewedAs",
           "diff_policies", "queue_effects"]
