"""The LangGraph channel that holds a thread's proposed memories until the gate's review node takes them.

A node reads ``state["proposed_memories"]`` as a plain list (a ``QueuedProposals``) and returns a list of new
proposals, which are appended, so nodes proposing in the same step (parallel branches) all reach the gate.

Each queued proposal has a queue id, given when it joins the queue and kept in the thread's checkpoints. The ids
make the queue work across graphs: a compiled graph used as a subgraph node is given its parent's queue and hands
back its own when it ends. With a plain list and an appending reducer, the parent appended what it was handed
back to what it had: a subgraph that only proposed doubled every proposal queued before it (each was then
reviewed, and stored, twice), and the gate's nodes in a subgraph never took the parent's proposals off the
parent's queue (each was reviewed and stored again on every later run of the thread). Here a handed-back
proposal whose id is queued already is not queued again, and the ids the subgraph took off its queue (``taken``)
are taken off the parent's too. The review node derives a proposal's id from its queue id, so a proposal is the
same write however often its review runs (a re-run after a failure, a run from an earlier checkpoint).

The channel's checkpoint is a dict (``FORMAT``); a thread checkpointed as a plain list (gatekeeper before queue
ids) reads as a queue of proposals without ids, reviewed as before (ids derived from the review's task).

What is not covered: a subgraph's hand-back that LangGraph restores from a checkpoint's pending writes (a step of
the parent cut short by an interrupt of another node in the same step) comes back as a plain list without ids,
and is appended as new proposals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langgraph._internal._typing import MISSING
from langgraph.channels.base import BaseChannel
from langgraph.errors import InvalidUpdateError
from langgraph.types import Overwrite
from typing_extensions import Self

from gatekeeper.gated_store import canonical_text

#: the update with which the review node takes the proposals it reviewed off the queue: ``{REVIEWED: [ids]}``
#: (or ``{REVIEWED: n}``, the first n, for proposals without ids). A plain dict, so any checkpointer stores it.
REVIEWED = "__gatekeeper_reviewed__"
#: marks the channel's checkpoint (a dict), so a plain list checkpointed before it is told apart
FORMAT = "gatekeeper.proposal_queue/1"
#: how many taken ids of proposals handed over by another graph the queue remembers (it hands them back, so a
#: graph that handed them over takes them off its own queue)
TAKEN_KEPT = 1000
#: LangGraph's dict forms of ``Overwrite`` (``{"__overwrite__": v}``, and ``Overwrite`` as JSON)
_OVERWRITE_KEY = "__overwrite__"


class QueuedProposals(list):
    """The queued proposals as a node reads them: a plain list that also knows each proposal's queue id (``ids``,
    ``None`` for one queued before queue ids) and the ids of proposals handed over by another graph that this
    queue took off (``taken``)."""

    __slots__ = ("ids", "taken")

    def __init__(self, items: Sequence[Any] = (), ids: Sequence[str | None] | None = None,
                 taken: Sequence[str] = ()) -> None:
        super().__init__(items)
        self.ids = list(ids) if ids is not None else [None] * len(self)
        self.taken = list(taken)
        if len(self.ids) != len(self):
            raise ValueError(f"{len(self)} proposals with {len(self.ids)} queue ids")


def _overwrite_of(value: Any) -> tuple[bool, Any]:
    if isinstance(value, Overwrite):
        return True, value.value
    if isinstance(value, dict):
        if len(value) == 1 and _OVERWRITE_KEY in value:
            return True, value[_OVERWRITE_KEY]
        if value.get("type") == _OVERWRITE_KEY and "value" in value:
            return True, value["value"]
    return False, None


def _as_list(value: Any) -> list:
    if not isinstance(value, (list, tuple)):  # a lone dict would be read as its keys
        raise TypeError(f"proposed_memories takes a list of proposals, not {type(value).__name__}")
    return list(value)


def _new_id() -> str:
    return uuid.uuid4().hex


class ProposalQueue(BaseChannel[list, Any, dict]):
    """The channel of ``MemoryGateState.proposed_memories`` (``Annotated[list[Any], ProposalQueue]``)."""

    __slots__ = ("items", "ids", "handed", "taken")

    def __init__(self, typ: Any = list, key: str = "") -> None:
        super().__init__(typ, key)
        self.items: list[Any] = []
        self.ids: list[str | None] = []
        self.handed: set[str] = set()  # ids of proposals that came from another graph's queue
        self.taken: list[str] = []  # newest last

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProposalQueue)

    def __hash__(self) -> int:
        return hash(ProposalQueue)

    @property
    def ValueType(self) -> Any:  # noqa: N802 (LangGraph's name)
        return self.typ

    @property
    def UpdateType(self) -> Any:  # noqa: N802
        return self.typ

    # ------------------------------------------------------------------ checkpoints
    def copy(self) -> Self:
        twin = self.__class__(self.typ, self.key)
        twin.items, twin.ids, twin.handed, twin.taken = (list(self.items), list(self.ids), set(self.handed),
                                                         list(self.taken))
        return twin

    def checkpoint(self) -> dict:
        return {"format": FORMAT, "items": list(self.items), "ids": list(self.ids),
                "handed": sorted(self.handed), "taken": list(self.taken)}

    def from_checkpoint(self, checkpoint: Any) -> Self:
        queue = self.__class__(self.typ, self.key)
        if checkpoint is MISSING or checkpoint is None:
            return queue
        if isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
            queue.items = list(checkpoint["items"])
            queue.ids = list(checkpoint["ids"])
            queue.handed = set(checkpoint.get("handed") or ())
            queue.taken = list(checkpoint.get("taken") or ())
            return queue
        if isinstance(checkpoint, (list, tuple)):  # checkpointed by gatekeeper before queue ids
            queue.items, queue.ids = list(checkpoint), [None] * len(checkpoint)
            return queue
        raise InvalidUpdateError(f"proposed_memories: a checkpoint this version cannot read: "
                                 f"{type(checkpoint).__name__}")

    # ------------------------------------------------------------------ reads
    def get(self) -> QueuedProposals:
        return QueuedProposals(self.items, self.ids, self.taken)

    def is_available(self) -> bool:
        return True  # an empty queue is a value (the empty list), as it was with a list reducer

    # ------------------------------------------------------------------ writes
    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        overwrites = [v for v in values if _overwrite_of(v)[0]]
        if len(overwrites) > 1:
            raise InvalidUpdateError("proposed_memories: only one Overwrite per step")
        if overwrites:  # as with LangGraph's reducers, an Overwrite sets the value whatever else the step wrote
            self._overwrite(_overwrite_of(overwrites[0])[1])
            return True
        removed: set[str] = set()
        prefix = 0
        for value in values:  # what the step takes off: what the review node read, what another graph took
            if isinstance(value, dict) and REVIEWED in value:
                taken = value[REVIEWED]
                if isinstance(taken, int) and not isinstance(taken, bool):
                    prefix = max(prefix, taken)
                elif isinstance(taken, (list, tuple)):
                    removed.update(str(i) for i in taken)
                else:
                    raise TypeError(f"proposed_memories: {REVIEWED} takes a count or a list of queue ids")
            elif isinstance(value, QueuedProposals):
                removed.update(value.taken)
        removed.update(i for i in self.ids[:prefix] if i is not None)
        keep = [n >= prefix and (i is None or i not in removed) for n, i in enumerate(self.ids)]
        self._drop(keep)
        for value in values:  # then what it adds, in the order the step wrote it
            if value is None or (isinstance(value, dict) and REVIEWED in value):
                continue
            if isinstance(value, QueuedProposals):
                self._adopt(value, skip=removed)
            else:
                for item in _as_list(value):
                    self.items.append(item)
                    self.ids.append(_new_id())
        return True

    def _drop(self, keep: list[bool]) -> None:
        """Take the proposals not kept off the queue; those handed over by another graph are remembered as
        taken, so the graph's queue loses them too."""
        for item_id, kept in zip(self.ids, keep):
            if not kept and item_id in self.handed:
                self.handed.discard(item_id)
                self.taken.append(item_id)
        self.taken = self.taken[-TAKEN_KEPT:]
        self.items = [item for item, kept in zip(self.items, keep) if kept]
        self.ids = [item_id for item_id, kept in zip(self.ids, keep) if kept]

    def _adopt(self, value: QueuedProposals, skip: set[str]) -> None:
        """Queue what another graph's queue holds (a subgraph's hand-back, a parent's queue given to a subgraph)
        that is not queued here already, nor was taken off."""
        queued = set(self.ids)
        gone = skip | set(self.taken)
        for item, item_id in zip(value, value.ids):
            if item_id is None:  # queued before queue ids: nothing to recognise it by
                item_id = _new_id()
            elif item_id in queued or item_id in gone:
                continue
            else:
                self.handed.add(item_id)
            self.items.append(item)
            self.ids.append(item_id)
            queued.add(item_id)

    def _overwrite(self, value: Any) -> None:
        """``Overwrite([...])``: the queue becomes the list given. A proposal equal to one queued keeps that one's
        id (a node that filters the queue it read keeps the ids of what it keeps); what is left out is taken off."""
        given = value if isinstance(value, QueuedProposals) else QueuedProposals(_as_list(value))
        queued = set(self.ids)
        unmatched: dict[str, list[int]] = {}  # queued proposals by text, for given ones without a queued id
        for n, item in enumerate(self.items):
            unmatched.setdefault(canonical_text(item), []).append(n)
        ids: list[str | None] = []
        for item, item_id in zip(given, given.ids):
            if item_id is None or item_id not in queued:
                same = unmatched.get(canonical_text(item))
                item_id = (self.ids[same.pop(0)] if same else None) or item_id or _new_id()
            ids.append(item_id)
        handed = {i for i in ids if i in self.handed or (i not in queued and i in given.ids)}
        kept = set(ids)
        self._drop([i in kept for i in self.ids])
        self.items, self.ids, self.handed = list(given), ids, handed
