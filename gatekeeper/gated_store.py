"""``GatedStore``: a drop-in LangGraph ``BaseStore`` whose writes pass the gate.

Give an existing agent (or LangMem's memory tools) a ``GatedStore`` instead of
its store and every ``put`` is reviewed: task knowledge reaches the wrapped
store, alignment-shifting writes are quarantined or parked in the review
queue. ``get``/``search``/``list_namespaces`` read the wrapped store, which only
ever holds committed memories, so quarantined and pending writes are never
recalled. A ``PutOp`` with ``value=None`` is a delete: it is passed through and
recorded in the ledger.

Provenance is never read from the memory value. It comes from the store's
defaults, the ``write_context()`` context manager, and the LangGraph run config
(``thread_id``, ``agent_id``/``user_id`` in ``configurable``) when the store is
used inside a graph.
"""

from __future__ import annotations

import asyncio
import contextvars
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, Op, PutOp, Result, SearchOp

from gatekeeper.gate import Gatekeeper
from gatekeeper.models import EscalationMode, GateOutcome, MemoryWrite, Provenance, SourceKind
from gatekeeper.settings import GatekeeperSettings

_write_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "gatekeeper_write_context", default=None)

#: value fields that claim provenance, trust or a decision. They are recorded in
#: ``Provenance.claimed_source`` for reviewers and never change the trust or the
#: decision (both come from the host code and the review).
_CLAIM_FIELDS = ("source", "provenance", "author", "from", "origin", "trusted", "verified_by", "role", "sender",
                 "speaker", "authority", "operator", "trust", "trust_level", "verified", "approved", "approved_by",
                 "reviewed", "reviewed_by", "decision", "action", "state", "label", "score", "category", "agent_id")


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


class GatedStore(BaseStore):
    """Wrap ``store`` (or the gate's own memory store) so every write is reviewed.

    Args:
        store: the store to protect; omitted = the gate's memory store (embedded chromadb).
        gate: an open ``Gatekeeper``; omitted = ``Gatekeeper.open(settings, memory_store=store)``.
        agent_id / source: default provenance of writes through this store.
        namespace_prefix: when set, every operation must stay inside it (an agent
            bound to ``("memories", "agent-a")`` cannot read or write agent-b's memory).
        escalation_mode: park (default) — escalations wait in the review queue and
            the agent goes on.
    """

    def __init__(self, store: BaseStore | None = None, *, gate: Gatekeeper | None = None,
                 settings: GatekeeperSettings | None = None, agent_id: str = "agent",
                 source: SourceKind | str = SourceKind.agent, namespace_prefix: tuple[str, ...] | None = None,
                 escalation_mode: EscalationMode = EscalationMode.park):
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

    # ------------------------------------------------------------- provenance
    def _provenance(self, value: dict[str, Any]) -> Provenance:
        fields: dict[str, Any] = {"source": self.source, "agent_id": self.agent_id}
        try:
            from langgraph.config import get_config

            cfg = get_config().get("configurable", {})
            fields["thread_id"] = cfg.get("thread_id")
            fields["run_id"] = str(cfg["run_id"]) if cfg.get("run_id") else None
            agent = cfg.get("agent_id") or cfg.get("assistant_id")
            if agent:
                fields["agent_id"] = str(agent)
        except RuntimeError:  # not inside a runnable context
            pass
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

    def _bound(self, op: Op) -> Op:
        """Narrow a read to the bound namespace: a search under ``("memories",)`` (or
        under nothing) by an agent bound to ``("memories", "agent-a")`` searches only
        ``("memories", "agent-a")``; listing namespaces lists only those inside it."""
        if self.namespace_prefix is None:
            return op
        if isinstance(op, SearchOp) and len(op.namespace_prefix) < len(self.namespace_prefix):
            return op._replace(namespace_prefix=self.namespace_prefix)
        return op

    def _visible(self, namespaces: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        if self.namespace_prefix is None:
            return namespaces
        n = len(self.namespace_prefix)
        return [ns for ns in namespaces if tuple(ns[:n]) == self.namespace_prefix]

    # ------------------------------------------------------------------ batch
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        self._validate_ops(ops)
        results: list[Result] = [None] * len(ops)
        outcomes: list[GateOutcome] = []
        i = 0
        # consecutive puts go through the gate together, reads go to the store in
        # order, so a get after a put in the same batch sees the committed value
        while i < len(ops):
            j = i
            is_put = isinstance(ops[i], PutOp)
            while j < len(ops) and isinstance(ops[j], PutOp) == is_put:
                j += 1
            chunk = ops[i:j]
            if is_put:
                outcomes.extend(self._puts(chunk))
            else:
                for k, r in enumerate(self.store.batch([self._bound(op) for op in chunk])):
                    if isinstance(chunk[k], ListNamespacesOp):
                        r = self._visible(r)
                    results[i + k] = r
            i = j
        if any(isinstance(op, PutOp) for op in ops):
            self.last_outcomes = outcomes  # reads leave the last write's outcomes alone
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(None, ctx.run, self.batch, ops)

    def _validate_ops(self, ops: list[Op]) -> None:
        """Refuse, before anything runs, ops with a malformed namespace ('..', '*', '/',
        empty labels ...) or outside the bound namespace."""
        from gatekeeper.models import validate_namespace

        for op in ops:
            if isinstance(op, PutOp):
                _valid_ns(validate_namespace, op.namespace)
                self._check_ns(op.namespace)
                if op.value is not None and not isinstance(op.value, dict):
                    raise TypeError(f"memory value must be a dict, got {type(op.value).__name__}")
            elif isinstance(op, GetOp):
                _valid_ns(validate_namespace, op.namespace)
                self._check_ns(op.namespace)
            elif isinstance(op, SearchOp):
                if op.namespace_prefix:
                    _valid_ns(validate_namespace, op.namespace_prefix)
                # a shorter prefix is narrowed to the binding (see _bound); a different one is refused
                self._check_ns(op.namespace_prefix, prefix_ok=True)
            elif isinstance(op, ListNamespacesOp):
                pass  # results are filtered to the binding (see _visible)
            else:
                raise ValueError(f"Unknown operation type: {type(op).__name__}")

    def _puts(self, ops: list[PutOp]) -> list[GateOutcome]:
        deletes = [op for op in ops if op.value is None]
        writes = [op for op in ops if op.value is not None]
        # build every proposal first: a bad one raises before anything is written
        proposals = [
            MemoryWrite(namespace=op.namespace, key=op.key, value=op.value,
                        provenance=self._provenance(op.value),
                        index=op.index if op.index is not None else None,
                        ttl=op.ttl if isinstance(op.ttl, (int, float)) else None)
            for op in writes
        ]
        outcomes = self.gate.submit_many(proposals, escalation_mode=self.escalation_mode) if proposals else []
        if deletes:
            self.store.batch(deletes)
            for op in deletes:
                self.gate.ledger.append("memory.deleted", namespace=list(op.namespace), key=op.key,
                                        agent_id=self.agent_id)
        return outcomes

    # -------------------------------------------------------------- extras
    def put_reviewed(self, namespace: tuple[str, ...], key: str, value: dict[str, Any]) -> GateOutcome:
        """``put`` that returns what the gate decided."""
        self.batch([PutOp(tuple(namespace), key, value)])
        return self.last_outcomes[-1]

    def list_namespaces(self, *args: Any, **kwargs: Any) -> list[tuple[str, ...]]:
        return self._visible(super().list_namespaces(*args, **kwargs))


def _valid_ns(validate, namespace: tuple[str, ...]) -> None:
    try:
        validate(namespace)
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
