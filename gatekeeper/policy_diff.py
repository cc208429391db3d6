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

``gatekeeper policy diff CANDIDATE`` prints the result; nothing is written to the registry, the ledger or the
memory store.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime, timedelta
from typing import Sequence

from pydantic import BaseModel, Field, computed_field

from gatekeeper.classifier import Progress
from gatekeeper.decision import decide
from gatekeeper.models import MemoryWrite, ReviewResult
from gatekeeper.policy import Policy
from gatekeeper.registry import ProposalRegistry, WriteContext, row_context, row_proposal
from gatekeeper.reviewer import Reviewer

#: writes reviewed per ``review_many`` call
BATCH = 64
#: no limit on a registry query (SQLite clamps it)
_ALL = 2**62


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


class PolicyDiff(BaseModel):
    current_policy: str = Field(description="hash of the policy in force")
    candidate_policy: str = Field(description="hash of the candidate")
    reviewed: int = Field(description="writes reviewed under both")
    unchanged: int
    interim: bool = Field(description="the candidate was reviewed with the classifier in force, not its own")
    transitions: dict[str, int] = Field(description="'<action in force> -> <candidate action>': how many writes")
    changed: list[ChangedDecision]

    @computed_field  # type: ignore[prop-decorator]  # in the JSON too: the number a CI check looks at
    @property
    def newly_committed(self) -> int:
        """Writes the candidate would commit that the policy in force does not (the riskier direction)."""
        return sum(1 for c in self.changed if c.candidate.action == "commit" != c.current.action)


def diff_policies(registry: ProposalRegistry, current: Reviewer, candidate: Policy, *, limit: int = 500,
                  train: bool = True, progress: Progress | None = None) -> PolicyDiff:
    """Review the newest ``limit`` writes of ``registry`` with ``current`` (the reviewer of the policy in force)
    and with a reviewer of ``candidate``; the writes whose action changes, newest first.

    ``train``: train the candidate's classifier when it is not cached (``progress`` reports it); otherwise
    review the candidate with ``current``'s classifier when its own is not ready."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    ready = current.classifier_ready(candidate, current.embedder)
    interim = not ready and not train
    if interim and sorted(current.classifier.categories) != sorted(candidate.categories):
        # the gate never serves such an edit with the classifier in force: it trains first (reload_policy)
        added = sorted(set(candidate.categories) - set(current.classifier.categories))
        removed = sorted(set(current.classifier.categories) - set(candidate.categories))
        raise PolicyDiffError(
            "the candidate " + " and ".join(filter(None, (
                f"adds categories {', '.join(added)}" if added else "",
                f"removes categories {', '.join(removed)}" if removed else ""))) +
            ": the classifier in force was made for other categories, and a gate trains the candidate's own "
            "classifier before such an edit takes effect; try it with training")
    other = current.for_policy(candidate, classifier=current.classifier if interim else None)
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
    return PolicyDiff(current_policy=current.policy.hash, candidate_policy=candidate.hash, reviewed=len(rows),
                      unchanged=len(rows) - len(changed), interim=interim,
                      transitions=dict(transitions.most_common()), changed=changed)


def _decided(proposal: MemoryWrite, review: ReviewResult, policy: Policy) -> ReviewedAs:
    d = decide(proposal, review, policy)
    return ReviewedAs(action=d.action.value, category=review.category, score=review.score, reason=d.reason)


def _review(reviewer: Reviewer, proposals: Sequence[MemoryWrite], rows: Sequence[dict],
            registry: ProposalRegistry) -> list[ReviewResult]:
    recents = _recents(reviewer.policy, rows, registry)
    out: list[ReviewResult] = []
    for i in range(0, len(proposals), BATCH):
        out.extend(reviewer.review_many(proposals[i:i + BATCH], recents[i:i + BATCH]))
    return out


def _recents(policy: Policy, rows: Sequence[dict], registry: ProposalRegistry) -> list[list[str]]:
    """For each row, the texts committed in its context (by default its agent's writes to its namespace:
    ``thresholds.context_scope``) in the ``context_minutes`` before it (at most ``context_window``, oldest
    first): what the gate joined it with. "Before" is the registry's order (time, then the order of
    journaling): the writes of one batch share their time, and the gate joins each with the writes before it
    in the batch that commit (``Gatekeeper._review_in_order``); never with itself or a later write.

    "Committed" is as the gate found them when it reviewed the row: a write a person approved (or edited) was
    pending until then, so it counts only for the rows journaled after the decision, with its text as decided."""
    th = policy.thresholds
    if not th.context_window or not rows:
        return [[] for _ in rows]
    span = timedelta(minutes=th.context_minutes)
    since = min(datetime.fromisoformat(r["created_at"]) for r in rows) - span
    position: dict[str, int] = {}  # proposal id -> where it is among its context's writes (registry order)
    # context -> its committed writes' (positions, created_at, texts, committed from: a person's decision time
    # or None for the gate's own commit), in registry order
    committed: dict[WriteContext, tuple[list[int], list[str], list[str], list[str | None]]] = {}
    for context in {row_context(r, th.context_scope) for r in rows}:
        at, times, texts, decided = committed.setdefault(context, ([], [], [], []))
        for i, row in enumerate(registry.query(context=context, newer_than=since, limit=_ALL)):
            position[row["id"]] = i
            if row["state"] == "committed":
                at.append(i)
                times.append(row["created_at"])
                texts.append(row["text"])
                decided.append(row["resolved_at"] if row["resolution"] in ("approve", "edit") else None)
    out = []
    for r in rows:
        at, times, texts, decided = committed[row_context(r, th.context_scope)]
        start = bisect.bisect_left(times, (datetime.fromisoformat(r["created_at"]) - span).isoformat())
        end = bisect.bisect_left(at, position[r["id"]])
        seen = [texts[k] for k in range(start, end) if decided[k] is None or decided[k] <= r["created_at"]]
        out.append(seen[-th.context_window:])
    return out


__all__ = ["ChangedDecision", "PolicyDiff", "PolicyDiffError", "ReviewedAs", "diff_policies"]
