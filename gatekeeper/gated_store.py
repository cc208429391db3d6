"""``GatedStore``: a drop-in LangGraph ``BaseStore`` whose writes pass the gate.

Give an existing agent (or LangMem's memory tools) a ``GatedStore`` instead of
its store and every ``put`` is reviewed: task knowledge reaches the wrapped
store, alignment-shifting writes are quarantined or parked in the review
queue. ``get``/``search``/``list_namespaces`` read the wrapped store, which only
ever holds committed memories, so quarantined and pending writes are never
recalled. A ``PutOp`` with ``value=None`` is a delete: it is recorded in the
ledger, then passed through. The ops of a batch run in the caller's order (a
delete before a put of the same key leaves the put's value, as in LangGraph's
own stores).

TTL: ``supports_ttl`` and ``ttl_config`` are the wrapped store's, so ``put(...,
ttl=...)`` works where the wrapped store supports it, and a write without a TTL
gets the wrapped store's ``default_ttl``; ``sweep_ttl``, ``start_ttl_sweeper`` and
``stop_ttl_sweeper`` are the wrapped store's too (its sweeps are not ledgered).

Provenance is never read from the memory value. It comes from the store's
defaults, the ``write_context()`` context manager, and the LangGraph run config
(``thread_id``, ``run_id``, ``agent_id`` or else ``assistant_id`` in
``configurable``) when the store is used inside a graph.

Inside a graph, a put's proposal id is derived from the LangGraph task and what
it writes, so a node that LangGraph runs again from its checkpoint (resumed after
an ``interrupt()``, retried after an error) replays the earlier outcome instead of
proposing the write again (an escalation would otherwise wait in the review queue
once per run of the node). Its deletes are applied again, as on any store, so a
commit the re-run deleted before replaying its put is written back
(``Gatekeeper.restore_deleted_by_rerun``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import zip_longest
from typing import Any, Iterable, Iterator, Literal

from langgraph.config import get_config
from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchOp,
)

from gatekeeper.gate import Gatekeeper, ProposalIdConflict
from gatekeeper.log_setup import get_logger
from gatekeeper.models import (
    EscalationMode, GateOutcome, MemoryWrite, Provenance, ProposalState, SourceKind, escalation_mode_of)
from gatekeeper.settings import GatekeeperSettings

log = get_logger("gatekeeper.gated_store")

_write_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gatekeeper_write_context", default=None)
#: the lists of open ``collected_outcomes()`` blocks of this context (nested blocks each get every outcome)
_outcome_lists: contextvars.ContextVar[tuple[list[GateOutcome], ...]] = contextvars.ContextVar(
    "gatekeeper_outcome_lists", default=())

#: value fields that claim provenance, trust or a decision. They are recorded in
#: ``Provenance.claimed_source`` for reviewers and never change the trust or the
#: decision (both come from the host code and the review).
_CLAIM_FIELDS = ("source", "provenance", "author", "from", "origin", "trusted", "verified_by", "role", "sender",
                 "speaker", "authority", "operator", "trust", "trust_level", "verified", "approved", "approved_by",
                 "reviewed", "reviewed_by", "decision", "action", "state", "label", "score", "category", "agent_id")


#: the key of the running task's id in a node's ``config["configurable"]`` (LangGraph's
#: ``CONFIG_KEY_TASK_ID``): a hash of the checkpoint id, checkpoint namespace, step and node name,
#: so the same when the task is re-run from the same checkpoint
TASK_ID_KEY = "__pregel_task_id"
_ID_NAMESPACE = uuid.UUID("5f0c7a52-3d1e-4f65-9b8a-6a2f1e0c9d41")


def derived_id(*parts: str) -> str:
    """A stable id (hex uuid5) for a proposal made by a LangGraph task: the same parts, the same id."""
    return uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)).hex


def _task_id(config: dict[str, Any], *, own_run: bool = True) -> str | None:
    """The running LangGraph task's id in a run's config (``TASK_ID_KEY`` of its ``configurable``), the same when
    the task is run again; None outside a task.

    A task inside another (a node of a subgraph, a functional API ``@task`` called by its ``@entrypoint``) is named
    by the outermost task it runs in, the names of the nodes on the way (its checkpoint namespace,
    ``parent:<id>|sub_put:<id>``, without their ids) and its own step and path in its graph (``langgraph_step``,
    ``langgraph_path`` of the config's metadata). A subgraph run again because the outer task was retried gets new
    task ids and a call counter in its namespace (``parent:<id>|1|sub_put:<id>``), so with its ids its puts were
    proposed again and their escalations queued twice; it starts again from its first step, so its steps and
    paths are the same. Without them, every run of a node in a subgraph's loop, and every call of a ``@task``, was
    one task: "on", then "off", then "on" put under one key replayed the first "on" for the last put, and the
    store kept "off". Left: a loop one level further in (a subgraph's node that runs a subgraph of its own, several
    times) has only its innermost step and path: the middle level's is not in the config. A persistent subgraph
    (``checkpointer=True``) goes on from its own checkpoint when the outer task is retried, so its steps differ
    and its puts are proposed again.

    ``own_run=False``: the scope a re-run repeats as a whole, the outermost task (whose id a top-level node's own
    puts use): what the deletes of a re-run are recorded under and compared by
    (``Gatekeeper.restore_deleted_by_rerun``), since a put, a delete and a put again in a subgraph's loop, or a
    delete in one of its nodes and a put in the next, are tasks of one re-run."""
    cfg = config.get("configurable") or {}
    task = cfg.get(TASK_ID_KEY)
    if not task:
        return None
    segments = str(cfg.get("checkpoint_ns") or "").split("|")
    root = segments[0].partition(":")[2]
    if len(segments) < 2 or not root:
        return str(task)
    if not own_run:
        return root
    names = [root, *(name for name, sep, _ in (s.partition(":") for s in segments[1:]) if sep)]
    meta = config.get("metadata") or {}
    return "|".join([*names, f"step={meta.get('langgraph_step')}", f"path={meta.get('langgraph_path')!r}"])


#: the key of a running task's ``Runtime`` in its ``configurable`` (LangGraph's ``CONFIG_KEY_RUNTIME``): a new
#: object for each run of a task (each attempt of a retry policy, each resume, each re-run from a checkpoint)
RUNTIME_KEY = "__pregel_runtime"


class _RepeatCounter:
    """How many times one run of a task has proposed the same write so far.

    A task's put gets an id derived from the task and what it puts, so a re-run of the task replays it. Alone,
    that id could not tell a re-run from a repeat within one run: a node that put X, then Y, then X again under
    one key got the first X's outcome (replayed) for the last put, and the store kept Y. The n-th repeat of a
    write within one run (n > 0) gets n in its id; a re-run counts from 0 again, so it replays every one.

    A run is told by the ``Runtime`` LangGraph gives it (``RUNTIME_KEY``): by its ``execution_info`` (the attempt
    and the time the task's first attempt started) where it has one, else by the object itself (held, so that its
    id is not reused; holding them held their contexts: 4,096 of them). The last ``KEPT`` tasks are kept (a task
    whose run was dropped from here counts from 0 again: its repeats replay as before)."""

    KEPT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, tuple[Any, dict[str, int]]] = OrderedDict()

    @staticmethod
    def run_of(runtime: Any) -> Any:
        """What tells one run of a task from another: the attempt and its task's first start (values), else the
        ``Runtime`` object."""
        info = getattr(runtime, "execution_info", None)
        attempt = getattr(info, "node_attempt", None)
        started = getattr(info, "node_first_attempt_time", None)
        return ("attempt", attempt, started) if attempt is not None and started is not None else runtime

    def seen_before(self, task_id: str, runtime: Any, write: str) -> int:
        """How many times this run of ``task_id`` proposed ``write`` before (and counts this one)."""
        run = self.run_of(runtime)
        with self._lock:
            kept = self._runs.get(task_id)
            if kept is None or not (kept[0] is run or (isinstance(run, tuple) and kept[0] == run)):  # a new run
                kept = (run, {})
                self._runs[task_id] = kept
            self._runs.move_to_end(task_id)
            while len(self._runs) > self.KEPT:
                self._runs.popitem(last=False)
            counts = kept[1]
            n = counts.get(write, 0)
            counts[write] = n + 1
            return n


_REPEATS = _RepeatCounter()


def canonical_text(value: Any) -> str:
    """``value`` as one deterministic string (sorted JSON; ``repr`` for what JSON cannot hold)."""
    try:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _run_config() -> dict[str, Any]:
    """The running LangGraph task's config; empty outside a graph."""
    try:
        return get_config()
    except RuntimeError:  # not inside a runnable context
        return {}


class NamespaceViolation(ValueError):
    """An operation tried to reach outside the namespaces this store is bound to."""


@contextmanager
def write_context(**provenance: Any) -> Iterator[None]:
    """Set provenance for writes in this block, e.g. ``with write_context(source="web", url=u):``."""
    Provenance.model_validate({"agent_id": "x", **provenance})  # fail fast on bad fields
    token = _write_context.set({**(_write_context.get() or {}), **provenance})
    try:
        yield
    finally:
        _write_context.reset(token)


@contextmanager
def collected_outcomes() -> Iterator[list[GateOutcome]]:
    """Collect what the gate decided for the writes any ``GatedStore`` makes inside the block, in order.

    For code that writes through an interface returning nothing (``put``, a tool that calls it) and then needs
    the outcome, such as ``gatekeeper.langmem_tools``. The block's context is followed, not the store: writes of
    this thread or asyncio task count (``aput`` too, whose executor thread runs in a copy of the context), and
    another thread's writes through the same store do not (``last_outcomes`` is shared by every caller)."""
    seen: list[GateOutcome] = []
    token = _outcome_lists.set((*_outcome_lists.get(), seen))
    try:
        yield seen
    finally:
        _outcome_lists.reset(token)


class GatedStore(BaseStore):
    """Wrap ``store`` (or the gate's own memory store) so every write is reviewed.

    Args:
        store: the store to protect; omitted = the gate's memory store (the embedded chromadb, or the Chroma
            server of ``GATEKEEPER_CHROMA_URL``).
        gate: an open ``Gatekeeper``; omitted = ``Gatekeeper.open(settings, memory_store=store)``.
        agent_id / source: default provenance of writes through this store.
        namespace_prefix: when set, every operation must stay inside it (an agent
            bound to ``("memories", "agent-a")`` cannot read or write agent-b's memory).
        escalation_mode: park (the default and the only mode) — escalations wait in the review queue and
            the agent goes on. ``interrupt`` is refused: a store's put cannot pause the graph, so the escalation
            was parked anyway while its row claimed a paused thread (kept from every prune, looked for in a
            checkpoint that never paused). To pause the graph for a person, put the proposals through the
            reviewer node (``add_memory_gate(..., escalation_mode="interrupt")``).
    """

    def __init__(self, store: BaseStore | None = None, *, gate: Gatekeeper | None = None,
                 settings: GatekeeperSettings | None = None, agent_id: str = "agent",
                 source: SourceKind | str = SourceKind.agent, namespace_prefix: tuple[str, ...] | None = None,
                 escalation_mode: EscalationMode | str = EscalationMode.park):
        # checked before a gate is opened: a misspelt mode quarantined every write that escalates
        escalation_mode = escalation_mode_of(escalation_mode) or EscalationMode.park
        if escalation_mode is EscalationMode.interrupt:
            raise ValueError("GatedStore cannot pause the graph: its escalations wait in the review queue "
                             "(escalation_mode='park'). To pause for a person, send the proposals through the "
                             "reviewer node: add_memory_gate(..., escalation_mode='interrupt')")
        if gate is None:
            gate = Gatekeeper.open(settings, memory_store=store)
        elif store is not None and store is not gate.memory_store:
            raise ValueError("store and gate.memory_store differ: open the gate with memory_store=store")
        self.gate = gate
        self.store = gate.memory_store
        self.agent_id = agent_id
        self.source = SourceKind(source)
        self.namespace_prefix = tuple(namespace_prefix) if namespace_prefix else None
        self.escalation_mode = escalation_mode
        self.last_outcomes: list[GateOutcome] = []

    # -------------------------------------------------------------------- TTL
    @property
    def supports_ttl(self) -> bool:  # type: ignore[override]
        """The wrapped store's: a TTL is applied there, when a commit reaches it."""
        return bool(getattr(self.store, "supports_ttl", False))

    @property
    def ttl_config(self):  # type: ignore[override]
        """The wrapped store's (its ``default_ttl`` and ``refresh_on_read``)."""
        return getattr(self.store, "ttl_config", None)

    def sweep_ttl(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped store's ``sweep_ttl`` (``SqliteStore``, ``PostgresStore``; a coroutine on their async
        variants): it deletes the expired memories there. Those deletes are the store's own, not ledgered: the
        ledger recorded each memory's TTL with its write."""
        return self._wrapped_ttl_method("sweep_ttl")(*args, **kwargs)

    def start_ttl_sweeper(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped store's ``start_ttl_sweeper`` (see ``sweep_ttl``)."""
        return self._wrapped_ttl_method("start_ttl_sweeper")(*args, **kwargs)

    def stop_ttl_sweeper(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped store's ``stop_ttl_sweeper`` (see ``sweep_ttl``)."""
        return self._wrapped_ttl_method("stop_ttl_sweeper")(*args, **kwargs)

    def _wrapped_ttl_method(self, name: str) -> Any:
        method = getattr(self.store, name, None)
        if not callable(method):
            raise NotImplementedError(f"{type(self.store).__name__}, the store this GatedStore wraps, has no {name}: "
                                      "it sweeps no expired memories (wrap a store with TTL support, such as "
                                      "LangGraph's SqliteStore or PostgresStore)")
        return method

    def _refuse_ttl(self, ttl: Any) -> None:
        """NotImplementedError for a TTL the wrapped store cannot apply, naming that store (LangGraph's own check
        named GatedStore, which has no TTL of its own), before anything is written."""
        if ttl not in (NOT_PROVIDED, None) and not self.supports_ttl:
            raise NotImplementedError(f"TTL is not supported by {type(self.store).__name__}, the store this "
                                      "GatedStore wraps: wrap a store that supports TTL, or set ttl=None")

    def put(self, namespace: tuple[str, ...], key: str, value: dict[str, Any],
            index: Literal[False] | list[str] | None = None, *, ttl: Any = NOT_PROVIDED) -> None:
        self._refuse_ttl(ttl)
        return super().put(namespace, key, value, index, ttl=ttl)

    async def aput(self, namespace: tuple[str, ...], key: str, value: dict[str, Any],
                   index: Literal[False] | list[str] | None = None, *, ttl: Any = NOT_PROVIDED) -> None:
        self._refuse_ttl(ttl)
        return await super().aput(namespace, key, value, index, ttl=ttl)

    def _ttl(self, ttl: Any) -> float | None:
        """A write's TTL: the caller's, or the wrapped store's default where none was given
        (what ``BaseStore.put`` does; a ``PutOp`` sent to ``batch`` may still hold ``NOT_PROVIDED``)."""
        if ttl is NOT_PROVIDED:
            config = self.ttl_config
            return config.get("default_ttl") if config else None
        return ttl

    # ------------------------------------------------------------- provenance
    def _provenance(self, value: dict[str, Any], cfg: dict[str, Any]) -> Provenance:
        fields: dict[str, Any] = {"source": self.source, "agent_id": self.agent_id}
        if cfg:
            fields["thread_id"] = cfg.get("thread_id")
            fields["run_id"] = str(cfg["run_id"]) if cfg.get("run_id") else None
            agent = cfg.get("agent_id") or cfg.get("assistant_id")
            if agent:
                fields["agent_id"] = str(agent)
        fields.update(_write_context.get() or {})
        claims = _claims(value)
        if claims:
            fields["claimed_source"] = "; ".join(claims)[:1000]
        return Provenance.model_validate(fields)

    def _check_ns(self, namespace: tuple[str, ...], *, prefix_ok: bool = False) -> None:
        if self.namespace_prefix is None:
            return
        n = len(self.namespace_prefix)
        if tuple(namespace[:n]) == self.namespace_prefix:
            return
        if prefix_ok and tuple(namespace) == self.namespace_prefix[: len(namespace)]:
            return
        raise NamespaceViolation(f"namespace {namespace!r} is outside this store's {self.namespace_prefix!r}")

    def _bound(self, op: Op) -> Op | None:
        """Narrow a read to the bound namespace: a search under ``("memories",)`` (or
        under nothing) by an agent bound to ``("memories", "agent-a")`` searches only
        ``("memories", "agent-a")``; listing namespaces lists only those inside it.

        A namespace listing is narrowed in the wrapped store's query (its prefix
        condition becomes the binding, lengthened by a longer prefix of the caller's),
        so its ``limit``/``offset`` page over this agent's namespaces only. None: the
        read can find nothing (a prefix that conflicts with the binding, or a
        ``max_depth`` above it)."""
        if self.namespace_prefix is None:
            return op
        if isinstance(op, SearchOp) and len(op.namespace_prefix) < len(self.namespace_prefix):
            return op._replace(namespace_prefix=self.namespace_prefix)
        if isinstance(op, ListNamespacesOp):
            if op.max_depth is not None and op.max_depth < len(self.namespace_prefix):
                return None  # every namespace it would list is cut above the binding
            prefix: tuple[str, ...] | None = self.namespace_prefix
            others = []
            for cond in op.match_conditions or ():
                if cond.match_type == "prefix":
                    prefix = _merge_prefix(prefix, tuple(cond.path))
                    if prefix is None:
                        return None
                else:
                    others.append(cond)
            return op._replace(match_conditions=(MatchCondition(match_type="prefix", path=prefix), *others))
        return op

    def _visible(self, namespaces: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        if self.namespace_prefix is None:
            return namespaces
        n = len(self.namespace_prefix)
        return [ns for ns in namespaces if tuple(ns[:n]) == self.namespace_prefix]

    # ------------------------------------------------------------------ batch
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return self._batch_with_outcomes(list(ops))[0]

    def _batch_with_outcomes(self, ops: list[Op]) -> tuple[list[Result], list[GateOutcome]]:
        """Run a batch: its results, and the gate's outcomes for its writes."""
        self._refuse_the_store_s_own_loop()
        self._validate_ops(ops)
        # build every proposal first: a bad write anywhere in the batch raises before anything is written
        proposals = self._proposals({i: op for i, op in enumerate(ops) if _kind(op) == "write"})
        results: list[Result] = [None] * len(ops)
        outcomes: list[GateOutcome] = []
        i = 0
        # the ops run in the caller's order, in runs of one kind: consecutive writes go
        # through the gate together, consecutive deletes to the store together, reads to
        # the store in order (a get after a put in the same batch sees the committed
        # value; a put after a delete of the same key is what stays)
        while i < len(ops):
            kind = _kind(ops[i])
            j = i
            while j < len(ops) and _kind(ops[j]) == kind:
                j += 1
            chunk = ops[i:j]
            if kind == "write":
                decided = self._submit([proposals[k] for k in range(i, j)])
                self._restore_deleted_by_rerun(decided)
                outcomes.extend(decided)
                for seen in _outcome_lists.get():
                    seen.extend(decided)
            elif kind == "delete":
                self._deletes(chunk)  # type: ignore[arg-type]
            else:
                bound = [(k, self._bound(op)) for k, op in enumerate(chunk)]
                for k, _ in bound:
                    if isinstance(chunk[k], ListNamespacesOp):
                        results[i + k] = []  # unless the store lists some, below
                sent = [(k, op) for k, op in bound if op is not None]
                if sent:
                    for (k, _), r in zip(sent, self.store.batch([op for _, op in sent])):
                        if isinstance(chunk[k], ListNamespacesOp):
                            r = self._visible(r)  # a second guard: the query is narrowed already
                        results[i + k] = r
            i = j
        if any(isinstance(op, PutOp) for op in ops):
            self.last_outcomes = outcomes  # reads leave the last write's outcomes alone
        return results, outcomes

    def _submit(self, batch: list[MemoryWrite]) -> list[GateOutcome]:
        """``gate.submit_many`` of a run of writes. A put whose derived id names a write erased since (a node
        re-run after ``gatekeeper forget`` took out what its first run stored: resumed after its own
        ``interrupt()``, retried) is not written again and answered ``erased``; the rest of the run is submitted.
        Raised, the refusal failed every resume of the thread, with a message about ids the agent never gave."""
        try:
            return self.gate.submit_many(batch, escalation_mode=self.escalation_mode)
        except ProposalIdConflict:
            erased = self.gate.erased_replays(batch)
            if not erased:
                raise  # an id that names a write of other content: not a re-run
            log.warning("gated_store.erased_write_not_written_again", proposal_ids=sorted(erased),
                        detail="a re-run of the task that proposed it; the erasure stands")
            rest = [p for p in batch if p.id not in erased]
            done = iter(self.gate.submit_many(rest, escalation_mode=self.escalation_mode) if rest else [])
            return [erased[p.id] if p.id in erased else next(done) for p in batch]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` in a thread, off the event loop: a batch that writes in the gate's write threads, a batch
        that only reads in its read threads. Neither uses the loop's default executor, which the application
        (and LangGraph's sync nodes under ``ainvoke``) share: writes that wait for an LLM judge (seconds each)
        would otherwise hold its threads, and a read of a committed memory waited behind them."""
        ops = list(ops)
        ctx = contextvars.copy_context()
        pool = _executor("writes" if any(isinstance(op, PutOp) for op in ops) else "reads")
        return await asyncio.get_running_loop().run_in_executor(pool, ctx.run, self.batch, ops)

    def _refuse_the_store_s_own_loop(self) -> None:
        """``asyncio.InvalidStateError`` for a sync call made on the event loop a loop-bound store runs on
        (LangGraph's ``AsyncSqliteStore``, ``AsyncPostgresStore``), as the store itself raises, before anything is
        journaled: the write was reviewed, its store write then refused, and it was quarantined as a store
        failure while ``put`` returned as if stored (and ``retry-store-failures`` could only fail again)."""
        loop = getattr(self.store, "_loop", None)  # LangGraph's AsyncBatchedBaseStore keeps the loop it runs on
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is loop:
            raise asyncio.InvalidStateError(
                f"a synchronous call to GatedStore over {type(self.store).__name__} on the event loop that store "
                "runs on (it would deadlock): use the async interface (await store.aput(...), abatch, aget, "
                "asearch); nothing was written")

    def _validate_ops(self, ops: list[Op]) -> None:
        """Refuse, before anything runs, ops with a malformed namespace ('..', '*', '/',
        empty labels ...) or outside the bound namespace."""
        from gatekeeper.models import page_bounds, validate_namespace

        for op in ops:
            if isinstance(op, PutOp):  # a delete, like a read, takes a namespace stored before (see GetOp)
                _valid_ns(validate_namespace, op.namespace, stored=op.value is None)
                self._check_ns(op.namespace)
                if op.value is not None:
                    self._refuse_ttl(op.ttl)
                if op.value is not None and not isinstance(op.value, Mapping):
                    # a ValueError, as every other refusal of a write here and ChromaMemoryStore's of the same value
                    raise ValueError(f"memory value must be a mapping (a dict), got {type(op.value).__name__}")
            elif isinstance(op, GetOp):
                # reads take the namespaces that writes once could (a control character in a label, refused
                # for new writes since): what was stored stays readable
                _valid_ns(validate_namespace, op.namespace, stored=True)
                self._check_ns(op.namespace)
            elif isinstance(op, SearchOp):
                if op.namespace_prefix:
                    _valid_ns(validate_namespace, op.namespace_prefix, stored=True)
                # a shorter prefix is narrowed to the binding (see _bound); a different one is refused
                self._check_ns(op.namespace_prefix, prefix_ok=True)
                page_bounds(op)
            elif isinstance(op, ListNamespacesOp):
                page_bounds(op)  # narrowed to the binding (see _bound), results filtered again (_visible)
            else:
                raise ValueError(f"Unknown operation type: {type(op).__name__}")

    def _proposals(self, ops: dict[int, PutOp]) -> dict[int, MemoryWrite]:
        """The proposals of a batch's puts (by their place in it). In a LangGraph task, each gets an id derived
        from the task and what it puts: the same task putting the same thing from the same source (a re-run from
        its checkpoint) is the same proposal, and its repeats within one run of the task are counted
        (``_RepeatCounter``), once every put of the batch is a valid proposal."""
        config = _run_config()
        cfg = config.get("configurable") or {}
        built = {i: self._proposal(op, cfg) for i, op in ops.items()}
        task_id = _task_id(config)
        if not task_id:
            return built
        run = cfg.get(RUNTIME_KEY)
        for i, proposal in built.items():
            op = ops[i]
            # as the put gave them (a TTL of 5 is 5.0 once validated): the id of a first put is the one earlier
            # releases derived, so a re-run across an upgrade still replays it
            written = canonical_text([list(op.namespace), op.key, dict(op.value), op.index, self._ttl(op.ttl),
                                      _write_context.get()])
            repeat = 0 if run is None else _REPEATS.seen_before(task_id, run, written)
            built[i] = proposal.model_copy(update={"id": derived_id(
                task_id, "put", written, *([f"repeat={repeat}"] if repeat else []))})
        return built

    def _proposal(self, op: PutOp, cfg: Mapping[str, Any]) -> MemoryWrite:
        value = dict(op.value)
        return MemoryWrite(namespace=op.namespace, key=op.key, value=value, provenance=self._provenance(value, cfg),
                           index=op.index, ttl=self._ttl(op.ttl))

    def _deletes(self, ops: list[PutOp]) -> None:
        """Ledger, then apply, a run of deletes (``Gatekeeper.record_deletes``): a ledger that cannot be
        written leaves the memories in place, so a delete is never applied unaudited. A store failure after
        that is ledgered too (``memory.delete_failed``, best effort) and raised."""
        ops = list({(tuple(op.namespace), op.key): op for op in ops}.values())  # one delete per key
        config = _run_config()
        agent_id = self._provenance({}, config.get("configurable") or {}).agent_id
        task_id = _task_id(config, own_run=False)
        error: list[str] = []

        def apply() -> None:
            try:
                self.store.batch(ops)
            except Exception as exc:
                error.append(f"{type(exc).__name__}: {exc}")
                raise

        try:
            self.gate.record_deletes([(op.namespace, op.key) for op in ops], agent_id=agent_id, apply=apply,
                                     task_id=task_id)
        except Exception:
            if error:
                try:
                    self.gate._append_many([("memory.delete_failed", {  # noqa: SLF001
                        "namespace": list(op.namespace), "key": op.key, "agent_id": agent_id, "error": error[0]})
                        for op in ops])
                except Exception as ledger_exc:  # noqa: BLE001 - the store's error is the one to raise
                    log.error("gated_store.delete_failed_not_ledgered", error_type=error[0].split(":", 1)[0],
                              ledger_error=f"{type(ledger_exc).__name__}: {ledger_exc}")
            raise

    def _restore_deleted_by_rerun(self, outcomes: list[GateOutcome]) -> None:
        """In a LangGraph task, write back replayed commits that the task's re-run deleted before replaying
        the put (``Gatekeeper.restore_deleted_by_rerun``): a delete is applied again on a re-run, a put is not."""
        if not any(o.replayed and o.state is ProposalState.committed for o in outcomes):
            return
        config = _run_config()
        task_id = _task_id(config, own_run=False)
        if task_id:
            self.gate.restore_deleted_by_rerun(outcomes, task_id=task_id, agent_id=self._provenance(
                {}, config.get("configurable") or {}).agent_id)

    # -------------------------------------------------------------- extras
    def put_reviewed(self, namespace: tuple[str, ...], key: str, value: dict[str, Any]) -> GateOutcome:
        """``put`` that returns what the gate decided (for this write: ``last_outcomes`` is shared by every
        caller of the store, and another thread's write may have replaced it already). A ``None`` value (a
        delete, which the gate does not review) is a TypeError, before anything is deleted: use ``delete``."""
        if value is None:
            raise TypeError("put_reviewed reviews a write; a None value is a delete: use delete()")
        return self._batch_with_outcomes([PutOp(tuple(namespace), key, value)])[1][-1]

    def list_namespaces(self, *args: Any, **kwargs: Any) -> list[tuple[str, ...]]:
        return self._visible(super().list_namespaces(*args, **kwargs))


def _kind(op: Op) -> str:
    if isinstance(op, PutOp):
        return "delete" if op.value is None else "write"
    return "read"


def _merge_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """The prefix pattern both ``a`` and ``b`` match ('*' matches any label); None if they conflict."""
    out = []
    for x, y in zip_longest(a, b):
        if x is None or x == "*":
            out.append(y)
        elif y is None or y == "*" or x == y:
            out.append(x)
        else:
            return None
    return tuple(out)


#: threads for ``GatedStore.abatch`` (shared by the process's gated stores), made on first use in each process
#: (a forked child has none of its parent's threads): kind -> (pid, pool)
_EXECUTORS: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_EXECUTORS_LOCK = threading.Lock()
#: how many batches of each kind run at once; more wait for a thread (a write waiting for the judge holds one
#: for up to ``judge.timeout_s``)
_EXECUTOR_THREADS = {"writes": 16, "reads": 8}


def _executor(kind: str) -> ThreadPoolExecutor:
    with _EXECUTORS_LOCK:
        pid, pool = _EXECUTORS.get(kind, (None, None))
        if pool is None or pid != os.getpid():
            pool = ThreadPoolExecutor(max_workers=_EXECUTOR_THREADS[kind],
                                      thread_name_prefix=f"gatekeeper-store-{kind}")
            _EXECUTORS[kind] = (os.getpid(), pool)
        return pool


def _valid_ns(validate, namespace: tuple[str, ...], **kw: Any) -> None:
    try:
        validate(namespace, **kw)
    except ValueError as exc:
        raise NamespaceViolation(f"invalid namespace {namespace!r}: {exc}") from None


def _claims(value: Any, depth: int = 0, path: str = "") -> list[str]:
    """``field=value`` for every claim field in a value (nested dicts included)."""
    out: list[str] = []
    if not isinstance(value, dict) or depth > 3:
        return out
    for k, v in value.items():
        name = f"{path}{k}"
        if isinstance(k, str) and k.lower() in _CLAIM_FIELDS:
            out.append(f"{name}={v!r}"[:200])
        if isinstance(v, dict):
            out.extend(_claims(v, depth + 1, f"{name}."))
    return out
