"""The LangGraph channel that holds a thread's proposed memories until the gate's review node takes them.

A node reads ``state["proposed_memories"]`` as a plain list (a ``QueuedProposals``) and returns a list of new
proposals, which are appended, so nodes proposing in the same step (parallel branches) all reach the gate.

Each queued proposal has a queue id, given when it joins the queue (``<name>.<n>``: a random name the queue takes
each time it is read from a checkpoint, so forks and copied threads never number alike, and a number; a copy of the
channel numbers as the channel does) and kept in the thread's checkpoints. A list read from the state and changed
in place keeps each proposal's id with it. The ids make the
queue work across graphs: a compiled graph used as a subgraph node is given its parent's queue and hands back its
own when it ends. With a plain list and an appending reducer, the parent appended what it was handed back to what
it had: a subgraph that only proposed doubled every proposal queued before it (each was then reviewed, and stored,
twice), and the gate's nodes in a subgraph never took the parent's proposals off the parent's queue (each was
reviewed and stored again on every later run of the thread). Here a proposal handed over whose id is queued
already is not queued again, and what one queue took off reaches the other: the ids a queue took off among those
handed to it travel in its ``taken`` record, and a queue that numbered a proposal and holds it no more has taken
it off. The review node derives a proposal's id from its queue id, so a proposal is the same write however often
its review runs once it is queued (a re-run after a failure, a run from a checkpoint taken after it was queued).

A proposal handed over in a new list has no id: ``Send("gate", {"proposed_memories": [p]})`` for each ``p`` of
the queue, LangGraph's map-reduce idiom, gives the gate subgraph each proposal as a new one. What a queue's review
took off of such proposals travels in its ``alike`` record (a token, the proposal's id there, with a fingerprint
of its content), and the queue it is handed to takes off one proposal of the same content for each token it has
not seen before (``seen``; never for its own tokens, which a node writing back the list it read hands back).
Before, the parent's queue kept every proposal sent that way, and each later run of the thread sent and reviewed
them again: a note stored once more under a new key every turn, a belief a reviewer
had rejected escalated again. A proposal equal in every field to one a subgraph's review took off as new (a
sub-agent proposing what the parent's agent proposed in the same step) is taken off too: the same write,
reviewed once.

The channel's checkpoint is a dict (``FORMAT``); a thread checkpointed as a plain list (gatekeeper before queue
ids) gets ids for its proposals when it is read.

Not covered: a subgraph's hand-back that LangGraph restores from a checkpoint's pending writes (a step of the
parent cut short by an interrupt of another node in the same step) comes back as a plain list without ids and is
queued as new proposals, and its taken record is lost, so what that subgraph took off stays queued here (reviewed
again on the next run, which replays the outcomes by their ids); proposals of a plain-list checkpoint get new ids each time it is read, so a review of
them that runs again from that same checkpoint (a crash after the review stored them) stores them again.
"""

from __future__ import annotations

import hashlib
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
FORMAT = "gatekeeper.proposal_queue/3"
#: the taken record (ids of proposals another graph handed over, taken off here; handed back so that graph takes
#: them off too) keeps the newest TAKEN_QUEUES queues' ids, as ranges of their numbers, at most TAKEN_RANGES each
TAKEN_QUEUES = 64
TAKEN_RANGES = 256
#: how many of the names it numbered under a queue remembers (see ``ProposalQueue.names``)
NAMES_KEPT = 64
#: the alike record (proposals that joined a queue without an id and its review took off) keeps the newest this many
ALIKE_KEPT = 256
#: the seen record (other queues' alike tokens counted here) keeps the newest this many queues' tokens: more than
#: the names a queue keeps (``NAMES_KEPT``), whose tokens alone its alike record holds, so a token handed back again
#: is always still known
SEEN_QUEUES = 4 * NAMES_KEPT
#: LangGraph's dict forms of ``Overwrite`` (``{"__overwrite__": v}``, and ``Overwrite`` as JSON)
_OVERWRITE_KEY = "__overwrite__"


def fingerprint(item: Any) -> str:
    """A proposal's content as a short digest: two proposals equal in every field have the same one."""
    return hashlib.sha256(canonical_text(item).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _split(item_id: str) -> tuple[str, int]:
    """A queue id is ``<name>.<n>``: the name its queue numbered it under (16 hex digits) and its number."""
    queue, _, n = item_id.rpartition(".")
    try:
        return queue, int(n)
    except ValueError:
        return item_id, -1


class QueuedProposals(list):
    """The queued proposals as a node reads them: a plain list that also knows each proposal's queue id (``ids``)
    and, for the queues of other graphs, what to take off there (``taken``; ``names``: the names this queue numbered
    under, each with how many it numbered).

    Changed in place (``append``, ``remove``, ``sort``, ...), it keeps each proposal's id with the proposal; one
    added or put in another's place is new (no id). ``alike``: the proposals that joined the queue without an id and
    its review took off (token -> ``fingerprint``), for the queue that handed them over in a new list."""

    __slots__ = ("ids", "taken", "names", "alike")

    def __init__(self, items: Sequence[Any] = (), ids: Sequence[str | None] | None = None,
                 taken: dict[str, list[list[int]]] | None = None, names: dict[str, int] | None = None,
                 alike: dict[str, str] | None = None) -> None:
        super().__init__(items)
        self.ids = list(ids) if ids is not None else [None] * len(self)
        self.taken = {q: [list(r) for r in ranges] for q, ranges in (taken or {}).items()}
        self.names = dict(names or {})
        self.alike = dict(alike or {})
        if len(self.ids) != len(self):
            raise ValueError(f"{len(self)} proposals with {len(self.ids)} queue ids")

    def __reduce_ex__(self, protocol: Any) -> tuple:  # pickle and copy rebuild it with its ids
        return (QueuedProposals, (list(self), self.ids, self.taken, self.names, self.alike))

    # a part or a copy keeps the ids (handed to a subgraph, its proposals are the queued ones); a part does not
    # speak for the whole queue (``names``), so what it leaves out is not taken off anywhere
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return QueuedProposals(super().__getitem__(index), self.ids[index], self.taken, alike=self.alike)
        return super().__getitem__(index)

    def __add__(self, other: Any) -> QueuedProposals:
        other = list(other) if not isinstance(other, QueuedProposals) else other
        ids = other.ids if isinstance(other, QueuedProposals) else [None] * len(other)
        return QueuedProposals([*self, *other], [*self.ids, *ids], self.taken, alike=self.alike)

    def copy(self) -> QueuedProposals:
        return QueuedProposals(self, self.ids, self.taken, self.names, self.alike)

    # changed in place: the ids follow their proposals
    def append(self, item: Any) -> None:
        super().append(item)
        self.ids.append(None)

    def extend(self, items: Any) -> None:
        items = list(items)
        super().extend(items)
        self.ids.extend([None] * len(items))

    def __iadd__(self, items: Any) -> QueuedProposals:
        self.extend(items)
        return self

    def __imul__(self, n: int) -> QueuedProposals:
        if n <= 0:
            self.clear()
        else:
            self.extend(list(self) * (n - 1))  # the copies are new proposals
        return self

    def insert(self, index: int, item: Any) -> None:
        before = len(self)
        super().insert(index, item)
        self.ids.insert(min(index, before) if index >= 0 else max(before + index, 0), None)

    def remove(self, item: Any) -> None:
        del self[self.index(item)]

    def pop(self, index: int = -1) -> Any:
        item = super().pop(index)
        self.ids.pop(index)
        return item

    def clear(self) -> None:
        super().clear()
        self.ids.clear()

    def reverse(self) -> None:
        super().reverse()
        self.ids.reverse()

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        pairs = list(zip(list(self), self.ids))
        pairs.sort(key=(lambda pair: key(pair[0])) if key else (lambda pair: pair[0]), reverse=reverse)
        super().__setitem__(slice(None), [item for item, _ in pairs])
        self.ids = [item_id for _, item_id in pairs]

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            value = list(value)
            super().__setitem__(index, value)
            if index.step in (None, 1):
                start, stop, _ = index.indices(len(self.ids))
                self.ids[start:max(start, stop)] = [None] * len(value)
            else:
                self.ids[index] = [None] * len(value)
        else:
            super().__setitem__(index, value)
            self.ids[index] = None  # a proposal put in another's place is new

    def __delitem__(self, index: Any) -> None:
        super().__delitem__(index)
        del self.ids[index]


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


def _record_range(record: dict[str, list[list[int]]], item_id: str, queues: int = TAKEN_QUEUES) -> None:
    """Add ``item_id`` to ``record`` (queue name -> ranges of numbers; ``ProposalQueue.taken``, ``seen``): its
    queue moves to the newest place, at most TAKEN_RANGES ranges per queue and ``queues`` queues are kept."""
    queue, n = _split(item_id)
    ranges = record.pop(queue, [])  # re-inserted last: the newest queue
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
    record[queue] = merged[-TAKEN_RANGES:]
    while len(record) > queues:
        del record[next(iter(record))]


class ProposalQueue(BaseChannel[list, Any, dict]):
    """The channel of ``MemoryGateState.proposed_memories`` (``Annotated[list[Any], ProposalQueue]``).

    Ids are numbered under a random name of the queue, a new one each time it is read from a checkpoint; a copy of
    the channel (LangGraph reads a conditional edge's state from one) keeps the names, so it numbers new proposals
    as the channel itself will."""

    __slots__ = ("items", "ids", "handed", "taken", "names", "plain", "alike", "seen")

    def __init__(self, typ: Any = list, key: str = "") -> None:
        super().__init__(typ, key)
        self.items: list[Any] = []
        self.ids: list[str] = []
        self.handed: set[str] = set()  # ids of proposals that came from another graph's queue
        self.taken: dict[str, list[list[int]]] = {}  # queue -> ranges of numbers, the newest queue last
        #: the names this queue numbered proposals under, each with how many (the newest, the one it numbers under
        #: now, last): a new name each time the queue is read from a checkpoint, so a run from an earlier checkpoint
        #: (a fork) or a copied thread never numbers a proposal as another branch or thread did
        self.names: dict[str, int] = {}
        #: ids of the queued proposals that joined without one (a node's new proposals, a proposal sent in a new list)
        self.plain: set[str] = set()
        #: of those, the ones this queue's review took off, newest last: token (their id) -> ``fingerprint``
        self.alike: dict[str, str] = {}
        #: the tokens of other queues' alike records seen here, as ranges of their numbers (each counts once)
        self.seen: dict[str, list[list[int]]] = {}
        self._rename()

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
    def copy(self) -> Self:  # the same names: a copy numbers new proposals as the channel will
        twin = self.__class__(self.typ, self.key)
        twin.items, twin.ids, twin.handed = list(self.items), list(self.ids), set(self.handed)
        twin.taken = {q: [list(r) for r in ranges] for q, ranges in self.taken.items()}
        twin.names = dict(self.names)
        twin.plain, twin.alike = set(self.plain), dict(self.alike)
        twin.seen = {q: [list(r) for r in ranges] for q, ranges in self.seen.items()}
        return twin

    def _rename(self) -> None:
        self.names[uuid.uuid4().hex[:16]] = 0
        while len(self.names) > NAMES_KEPT:
            del self.names[next(iter(self.names))]

    def checkpoint(self) -> dict:
        return {"format": FORMAT, "names": [[name, n] for name, n in self.names.items() if n],
                "items": list(self.items),
                "ids": list(self.ids), "handed": sorted(self.handed),
                "taken": [[q, [list(r) for r in ranges]] for q, ranges in self.taken.items()],
                "plain": sorted(self.plain), "alike": [[t, f] for t, f in self.alike.items()],
                "seen": [[q, [list(r) for r in ranges]] for q, ranges in self.seen.items()]}

    def from_checkpoint(self, checkpoint: Any) -> Self:
        channel = self.__class__(self.typ, self.key)
        if checkpoint is MISSING or checkpoint is None:
            return channel
        if isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
            channel.names = {name: n for name, n in checkpoint["names"]}
            channel._rename()
            channel.items, channel.ids = list(checkpoint["items"]), list(checkpoint["ids"])
            channel.handed = set(checkpoint["handed"])
            channel.taken = {q: [list(r) for r in ranges] for q, ranges in checkpoint["taken"]}
            # (a checkpoint of an earlier version has none of these: nothing was sent in a new list then)
            channel.plain = set(checkpoint.get("plain", ())) & set(channel.ids)
            channel.alike = {t: f for t, f in checkpoint.get("alike", ())}
            channel.seen = {q: [list(r) for r in ranges] for q, ranges in checkpoint.get("seen", ())}
            return channel
        if isinstance(checkpoint, (list, tuple)):  # checkpointed by gatekeeper before queue ids: ids given now
            for item in checkpoint:
                channel._append(item)
            return channel
        raise InvalidUpdateError(f"proposed_memories: a checkpoint this version cannot read: "
                                 f"{type(checkpoint).__name__}")

    # ------------------------------------------------------------------ reads
    def get(self) -> QueuedProposals:
        return QueuedProposals(self.items, self.ids, self.taken, self.names, self.alike)

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
        reviewed: set[str] = set()
        handed_back: list[QueuedProposals] = []
        prefix = 0
        for value in values:  # first what the step takes off: what the review read, what another graph took
            if isinstance(value, dict) and REVIEWED in value:
                taken = value[REVIEWED]
                if isinstance(taken, int) and not isinstance(taken, bool):
                    prefix = max(prefix, taken)
                elif isinstance(taken, (list, tuple)):
                    reviewed.update(str(i) for i in taken)
                else:
                    raise TypeError(f"proposed_memories: {REVIEWED} takes a count or a list of queue ids")
            elif isinstance(value, QueuedProposals):
                handed_back.append(value)
        reviewed.update(self.ids[:prefix])
        gone = set(reviewed)
        for value in handed_back:
            gone.update(self._taken_by(value))
        for value in handed_back:  # proposals handed over in a new list, taken off there: the same content here
            gone.update(self._alike_taken(value, gone))
        for item, item_id in zip(self.items, self.ids):
            if item_id in reviewed and item_id in self.plain:
                self.alike[item_id] = fingerprint(item)
        # only tokens of the names this queue still knows (a queue that counted them keeps more), the newest
        self.alike = {t: f for t, f in self.alike.items() if _split(t)[0] in self.names}
        while len(self.alike) > ALIKE_KEPT:
            del self.alike[next(iter(self.alike))]
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
            name = next(reversed(self.names))
            item_id = f"{name}.{self.names[name]}"
            self.names[name] += 1
            self.plain.add(item_id)
        self.items.append(item)
        self.ids.append(item_id)

    def _alike_taken(self, value: QueuedProposals, gone: set[str]) -> set[str]:
        """The ids queued here (and not ``gone`` already) that ``value``'s alike record takes off: for each of its
        tokens not seen here before, one proposal of the same content. Each token counts once, whether or not it
        matched: a later proposal of that content is a new write."""
        # not this queue's own tokens (a node writing back the list it read hands them back here)
        fresh = [(token, fp) for token, fp in value.alike.items()
                 if _split(token)[0] not in self.names and not _taken_has(self.seen, token)]
        if not fresh:
            return set()
        by_content: dict[str, list[str]] = {}
        for item, item_id in zip(self.items, self.ids):
            if item_id not in gone:
                by_content.setdefault(fingerprint(item), []).append(item_id)
        out = set()
        for token, fp in fresh:
            _record_range(self.seen, token, SEEN_QUEUES)
            same = by_content.get(fp)
            if same:
                out.add(same.pop(0))
        return out

    def _taken_by(self, value: QueuedProposals) -> set[str]:
        """The ids queued here that another graph's queue took off: those in its taken record, and those it gave
        (the ids are its own) and holds no more."""
        held = set(value.ids)
        gone = set()
        for item_id in self.ids:
            name, n = _split(item_id)
            if _taken_has(value.taken, item_id) or (item_id not in held and n < value.names.get(name, 0)):
                gone.add(item_id)
        return gone

    def _drop(self, keep: list[bool]) -> None:
        """Take the proposals not kept off the queue; those another graph handed over are recorded as taken, so
        that graph's queue loses them too."""
        for item_id, kept in zip(self.ids, keep):
            if not kept:
                self.plain.discard(item_id)
                if item_id in self.handed:
                    self.handed.discard(item_id)
                    _record_range(self.taken, item_id)
        self.items = [item for item, kept in zip(self.items, keep) if kept]
        self.ids = [item_id for item_id, kept in zip(self.ids, keep) if kept]

    def _adopt(self, value: QueuedProposals, gone: set[str]) -> None:
        """Queue what another graph's queue holds (a subgraph's hand-back, a parent's queue given to a subgraph)
        that is not queued here already, nor was taken off. A proposal without an id (added to a list read from the
        state) is new."""
        queued = set(self.ids)
        for item, item_id in zip(value, value.ids):
            if item_id is None:
                self._append(item)
            elif item_id in queued or item_id in gone or _taken_has(self.taken, item_id):
                continue
            else:
                self.handed.add(item_id)
                self._append(item, item_id)
                queued.add(item_id)

    def _overwrite(self, value: Any) -> None:
        """``Overwrite([...])``: the queue becomes the list given. A proposal equal to one queued keeps that one's
        id (a node that filters the queue it read keeps the ids of what it keeps); what is left out is taken off."""
        given = value if isinstance(value, QueuedProposals) else QueuedProposals(_as_list(value))
        queued = set(self.ids)
        claimed = {i for i in given.ids if i in queued}  # queued proposals the list names by id
        unmatched: dict[str, list[str]] = {}  # the others, by content, for proposals without an id
        for item, item_id in zip(self.items, self.ids):
            if item_id not in claimed:
                unmatched.setdefault(canonical_text(item), []).append(item_id)
        pairs: list[tuple[Any, str | None]] = []
        seen: set[str] = set()
        for item, item_id in zip(given, given.ids):
            if item_id in seen:  # the same proposal twice in the list: the second is a new one
                item_id = None
            if item_id is None or item_id not in queued:
                same = unmatched.get(canonical_text(item))
                item_id = same.pop(0) if same else item_id
            if item_id is not None:
                seen.add(item_id)
            pairs.append((item, item_id))
        kept = {item_id for _, item_id in pairs if item_id is not None}
        handed = {i for i in kept if i in self.handed or i not in queued}
        self._drop([i in kept for i in self.ids])
        self.items, self.ids, self.handed = [], [], handed
        for item, item_id in pairs:
            self._append(item, item_id)
