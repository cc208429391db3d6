"""The LangGraph channel that holds a thread's proposed memories until the gate's review node takes them.

A node reads ``state["proposed_memories"]`` as a plain list (a ``QueuedProposals``) and returns a list of new
proposals, which are appended, so nodes proposing in the same step (parallel branches) all reach the gate.

Each queued proposal has a queue id, given when it joins the queue (``<queue>.<n>``: the queue's random name and a
number; a copy of the channel numbers as the channel does) and kept in the thread's checkpoints. The ids make the
queue work across graphs: a compiled graph used as a subgraph node is given its parent's queue and hands back its
own when it ends. With a plain list and an appending reducer, the parent appended what it was handed back to what
it had: a subgraph that only proposed doubled every proposal queued before it (each was then reviewed, and stored,
twice), and the gate's nodes in a subgraph never took the parent's proposals off the parent's queue (each was
reviewed and stored again on every later run of the thread). Here a proposal handed over whose id is queued
already is not queued again, and what one queue took off reaches the other: the ids a queue took off among those
handed to it travel in its ``taken`` record, and a queue that numbered a proposal and holds it no more has taken
it off. The review node derives a proposal's id from its queue id, so a proposal is the same write however often
its review runs once it is queued (a re-run after a failure, a run from a checkpoint taken after it was queued).

The channel's checkpoint is a dict (``FORMAT``); a thread checkpointed as a plain list (gatekeeper before queue
ids) gets ids for its proposals when it is read.

Not covered: a subgraph's hand-back that LangGraph restores from a checkpoint's pending writes (a step of the
parent cut short by an interrupt of another node in the same step) comes back as a plain list without ids and is
queued as new proposals; proposals of a plain-list checkpoint get new ids each time it is read, so a review of
them that runs again from that same checkpoint (a crash after the review stored them) stores them again.
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
FORMAT = "gatekeeper.proposal_queue/2"
#: the taken record (ids of proposals another graph handed over, taken off here; handed back so that graph takes
#: them off too) keeps the newest TAKEN_QUEUES queues' ids, as ranges of their numbers, at most TAKEN_RANGES each
TAKEN_QUEUES = 64
TAKEN_RANGES = 256
#: LangGraph's dict forms of ``Overwrite`` (``{"__overwrite__": v}``, and ``Overwrite`` as JSON)
_OVERWRITE_KEY = "__overwrite__"


def _split(item_id: str) -> tuple[str, int]:
    """A queue id is ``<queue>.<n>``: the queue that gave it (16 hex digits, random per queue) and its number."""
    queue, _, n = item_id.rpartition(".")
    try:
        return queue, int(n)
    except ValueError:
        return item_id, -1


class QueuedProposals(list):
    """The queued proposals as a node reads them: a plain list that also knows each proposal's queue id (``ids``)
    and, for the queues of other graphs, what to take off there (``taken``, ``queue``, ``minted``).

    Changed in place (``append``, ``remove``, ``sort``, ...), it forgets the ids and is matched by content when
    written back (a proposal equal to a queued one is that one)."""

    __slots__ = ("ids", "taken", "queue", "minted")

    def __init__(self, items: Sequence[Any] = (), ids: Sequence[str | None] | None = None,
                 taken: dict[str, list[list[int]]] | None = None, queue: str | None = None, minted: int = 0) -> None:
        super().__init__(items)
        self.ids = list(ids) if ids is not None else [None] * len(self)
        self.taken = {q: [list(r) for r in ranges] for q, ranges in (taken or {}).items()}
        self.queue, self.minted = queue, minted
        if len(self.ids) != len(self):
            raise ValueError(f"{len(self)} proposals with {len(self.ids)} queue ids")

    def __reduce_ex__(self, protocol: Any) -> tuple:  # pickle and copy rebuild it with its ids
        return (QueuedProposals, (list(self), self.ids, self.taken, self.queue, self.minted))

    def _forget_ids(self) -> None:
        self.ids, self.queue = [None] * len(self), None


def _in_place(name: str):
    method = getattr(list, name)

    def changed(self: QueuedProposals, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self._forget_ids()
        return self if result is NotImplemented or name.startswith("__i") else result

    changed.__name__ = name
    return changed


for _name in ("append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "__setitem__",
              "__delitem__", "__iadd__", "__imul__"):
    setattr(QueuedProposals, _name, _in_place(_name))


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


def _taken_has(taken: dict[str, list[list[int]]], item_id: str) -> bool:
    queue, n = _split(item_id)
    return any(lo <= n <= hi for lo, hi in taken.get(queue, ()))


class ProposalQueue(BaseChannel[list, Any, dict]):
    """The channel of ``MemoryGateState.proposed_memories`` (``Annotated[list[Any], ProposalQueue]``).

    Ids are numbered from a random name of the queue kept in its checkpoint, so a copy of the channel (LangGraph
    reads a conditional edge's state from one) gives the same ids as the channel itself."""

    __slots__ = ("items", "ids", "handed", "taken", "queue", "minted")

    def __init__(self, typ: Any = list, key: str = "") -> None:
        super().__init__(typ, key)
        self.items: list[Any] = []
        self.ids: list[str] = []
        self.handed: set[str] = set()  # ids of proposals that came from another graph's queue
        self.taken: dict[str, list[list[int]]] = {}  # queue -> ranges of numbers, the newest queue last
        self.queue = uuid.uuid4().hex[:16]
        self.minted = 0

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
        return self.from_checkpoint(self.checkpoint())

    def checkpoint(self) -> dict:
        return {"format": FORMAT, "queue": self.queue, "minted": self.minted, "items": list(self.items),
                "ids": list(self.ids), "handed": sorted(self.handed),
                "taken": [[q, [list(r) for r in ranges]] for q, ranges in self.taken.items()]}

    def from_checkpoint(self, checkpoint: Any) -> Self:
        channel = self.__class__(self.typ, self.key)
        if checkpoint is MISSING or checkpoint is None:
            return channel
        if isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
            channel.queue, channel.minted = checkpoint["queue"], checkpoint["minted"]
            channel.items, channel.ids = list(checkpoint["items"]), list(checkpoint["ids"])
            channel.handed = set(checkpoint["handed"])
            channel.taken = {q: [list(r) for r in ranges] for q, ranges in checkpoint["taken"]}
            return channel
        if isinstance(checkpoint, (list, tuple)):  # checkpointed by gatekeeper before queue ids: ids given now
            for item in checkpoint:
                channel._append(item)
            return channel
        raise InvalidUpdateError(f"proposed_memories: a checkpoint this version cannot read: "
                                 f"{type(checkpoint).__name__}")

    # ------------------------------------------------------------------ reads
    def get(self) -> QueuedProposals:
        return QueuedProposals(self.items, self.ids, self.taken, self.queue, self.minted)

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
        gone: set[str] = set()
        prefix = 0
        for value in values:  # first what the step takes off: what the review read, what another graph took
            if isinstance(value, dict) and REVIEWED in value:
                taken = value[REVIEWED]
                if isinstance(taken, int) and not isinstance(taken, bool):
                    prefix = max(prefix, taken)
                elif isinstance(taken, (list, tuple)):
                    gone.update(str(i) for i in taken)
                else:
                    raise TypeError(f"proposed_memories: {REVIEWED} takes a count or a list of queue ids")
            elif isinstance(value, QueuedProposals):
                gone.update(self._taken_by(value))
        gone.update(self.ids[:prefix])
        self._drop([item_id not in gone for item_id in self.ids])
        for value in values:  # then what it adds, in the order the step wrote it
            if value is None or (isinstance(value, dict) and REVIEWED in value):
                continue
            if isinstance(value, QueuedProposals):
                self._adopt(value, gone)
            else:
                for item in _as_list(value):
                    self._append(item)
        return True

    def _append(self, item: Any, item_id: str | None = None) -> None:
        if item_id is None:
            item_id = f"{self.queue}.{self.minted}"
            self.minted += 1
        self.items.append(item)
        self.ids.append(item_id)

    def _taken_by(self, value: QueuedProposals) -> set[str]:
        """The ids queued here that another graph's queue took off: those in its taken record, and those it gave
        (the ids are its own) and holds no more."""
        held = set(value.ids)
        return {item_id for item_id in self.ids
                if _taken_has(value.taken, item_id)
                or (value.queue is not None and _split(item_id)[0] == value.queue
                    and _split(item_id)[1] < value.minted and item_id not in held)}

    def _drop(self, keep: list[bool]) -> None:
        """Take the proposals not kept off the queue; those another graph handed over are recorded as taken, so
        that graph's queue loses them too."""
        for item_id, kept in zip(self.ids, keep):
            if not kept and item_id in self.handed:
                self.handed.discard(item_id)
                self._record_taken(item_id)
        self.items = [item for item, kept in zip(self.items, keep) if kept]
        self.ids = [item_id for item_id, kept in zip(self.ids, keep) if kept]

    def _record_taken(self, item_id: str) -> None:
        queue, n = _split(item_id)
        ranges = self.taken.pop(queue, [])  # re-inserted last: the newest queue
        for r in ranges:
            if r[0] - 1 <= n <= r[1] + 1:
                r[0], r[1] = min(r[0], n), max(r[1], n)
                break
        else:
            ranges.append([n, n])
        ranges.sort()
        merged: list[list[int]] = []
        for lo, hi in ranges:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.taken[queue] = merged[-TAKEN_RANGES:]
        while len(self.taken) > TAKEN_QUEUES:
            del self.taken[next(iter(self.taken))]

    def _adopt(self, value: QueuedProposals, gone: set[str]) -> None:
        """Queue what another graph's queue holds (a subgraph's hand-back, a parent's queue given to a subgraph)
        that is not queued here already, nor was taken off. A proposal without an id (the list was changed in
        place) that equals one queued here is that one."""
        queued = set(self.ids)
        unmatched = self._by_content()
        for item, item_id in zip(value, value.ids):
            if item_id is None:
                same = unmatched.get(canonical_text(item))
                if same:
                    same.pop(0)
                    continue
                self._append(item)
            elif item_id in queued or item_id in gone or _taken_has(self.taken, item_id):
                continue
            else:
                self.handed.add(item_id)
                self._append(item, item_id)
                queued.add(item_id)

    def _by_content(self) -> dict[str, list[int]]:
        by_text: dict[str, list[int]] = {}
        for n, item in enumerate(self.items):
            by_text.setdefault(canonical_text(item), []).append(n)
        return by_text

    def _overwrite(self, value: Any) -> None:
        """``Overwrite([...])``: the queue becomes the list given. A proposal equal to one queued keeps that one's
        id (a node that filters the queue it read keeps the ids of what it keeps); what is left out is taken off."""
        given = value if isinstance(value, QueuedProposals) else QueuedProposals(_as_list(value))
        queued = set(self.ids)
        unmatched = self._by_content()
        pairs: list[tuple[Any, str | None]] = []
        for item, item_id in zip(given, given.ids):
            if item_id is None or item_id not in queued:
                same = unmatched.get(canonical_text(item))
                item_id = self.ids[same.pop(0)] if same else item_id
            pairs.append((item, item_id))
        kept = {item_id for _, item_id in pairs if item_id is not None}
        handed = {i for i in kept if i in self.handed or i not in queued}
        self._drop([i in kept for i in self.ids])
        self.items, self.ids, self.handed = [], [], handed
        for item, item_id in pairs:
            self._append(item, item_id)
