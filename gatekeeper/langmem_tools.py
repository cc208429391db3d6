"""LangMem's memory tool, answering the model with what the gate did.

LangMem's ``create_manage_memory_tool`` works on a ``GatedStore`` unchanged, but it answers the model "created
memory ID" whatever the gate decided, so an agent whose write was held for a person or declined believes it is
stored. ``create_gated_manage_memory_tool`` takes the same arguments and returns LangMem's tool with its answer
corrected from the gate's outcome (``gated_store.collected_outcomes``):

* committed: LangMem's own answer ("created memory ID", "updated memory ID");
* waiting for a person: the write is not stored (an update: the memory keeps its earlier value) unless a
  reviewer approves it;
* quarantined, or not decided (a crash mid-review): not stored, or not updated.

The answer never says why: the model that wrote a declined memory may be the one an injection steers, and the
category, the score or the rule that stopped it would tell it how to word the next try. Reviewers see all of it
in the review queue. Deletes, and writes through a store that is not a ``GatedStore``, keep LangMem's answer.
"""

from __future__ import annotations

import functools
from typing import Any

from gatekeeper.gated_store import collected_outcomes
from gatekeeper.models import GateOutcome, ProposalState


def create_gated_manage_memory_tool(namespace: tuple[str, ...] | str, **kwargs: Any):
    """LangMem's ``create_manage_memory_tool(namespace, **kwargs)`` (same name, description and arguments),
    whose answer to the model says whether the gate stored the memory. Needs ``langmem`` installed."""
    try:
        from langmem import create_manage_memory_tool
    except ImportError as exc:  # langmem is not a dependency of the gate
        raise ImportError("create_gated_manage_memory_tool needs LangMem: pip install langmem") from exc

    tool = create_manage_memory_tool(namespace, **kwargs)
    run, arun = tool.func, tool.coroutine

    @functools.wraps(run)
    def manage_memory(*args: Any, **kw: Any) -> str:
        with collected_outcomes() as outcomes:
            answer = run(*args, **kw)
        return gated_answer(answer, outcomes)

    @functools.wraps(arun)
    async def amanage_memory(*args: Any, **kw: Any) -> str:
        with collected_outcomes() as outcomes:
            answer = await arun(*args, **kw)
        return gated_answer(answer, outcomes)

    return tool.model_copy(update={"func": manage_memory, "coroutine": amanage_memory})


def gated_answer(answer: str, outcomes: list[GateOutcome]) -> str:
    """The tool's ``answer`` as the model should read it, given the gate's outcomes of the call's writes (the
    tool makes one; the last counts)."""
    if not outcomes:
        return answer
    outcome = outcomes[-1]
    key, update = outcome.proposal.key, answer.startswith("updated")
    if outcome.state is ProposalState.committed:
        return answer
    if outcome.state is ProposalState.pending:
        if update:
            return (f"update of memory {key} held for human review: the memory keeps its earlier value "
                    "unless a reviewer approves the update")
        return f"memory {key} held for human review: it is not stored unless a reviewer approves it"
    if update:
        return f"memory {key} not updated: the memory gate declined the update, and the memory keeps its earlier value"
    return f"memory {key} not stored: the memory gate declined it"
