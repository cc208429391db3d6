"""Erasure: forget memories on request (``gatekeeper forget``).

A memory may have to be forgotten: a person asks for their data to be erased, or an agent stored a secret. The
gate keeps a memory's text in four places, and erasure takes it out of each, keeping the record that something
was written and what was decided:

* **the memory store**: a key whose current value came from an erased proposal is deleted (a ``memory.deleted``
  entry, as any delete); the embedded Chroma database's file is then scrubbed of the deleted texts
  (``ChromaMemoryStore.scrub_deleted``);
* **the registry**: each erased proposal's row becomes a receipt without content (``ProposalRegistry.erase``),
  so its id stays known and a replay of it is refused; the context evidence of the agent's other writes that
  joined the erased text is replaced;
* **the ledger**: the proposals' ``proposal.decided`` and ``review.resolved`` entries lose their text-bearing
  fields (``AuditLedger.redact``: a recorded stub that still verifies);
* a ``memory.erased`` entry records who erased what, and why.

What it does not reach: copies made before (backups: ``gatekeeper backup``), a Chroma server's own files and
log, LangGraph checkpoints of the agent's threads (their state holds the proposed memories: delete the thread
with the checkpointer), logs the operator keeps, and the memory of running processes (a gate's caches hold
recent texts until they are evicted or the process restarts).

Proposals still in review or unfinished are refused, not erased: decide them (``gatekeeper review reject``) or
recover them first, so that nothing in flight writes the text back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import structlog
from langgraph.store.base import PutOp
from pydantic import BaseModel, Field

from gatekeeper.models import utcnow
from gatekeeper.registry import ERASED, ns_to_str, row_proposal

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper

log = structlog.get_logger("gatekeeper.erasure")

#: the ledger events that carry a proposal's text
TEXT_EVENTS = ("proposal.decided", "review.resolved")
ERASED_EVENT = "memory.erased"


class ErasureRefused(ValueError):
    """The selection holds proposals that are in review or unfinished; nothing was erased."""


class ErasureReport(BaseModel):
    """What ``erase_memories`` erased (would erase, with ``dry_run``)."""

    proposals: list[str] = Field(default_factory=list, description="ids of the proposals erased")
    keys_deleted: int = Field(0, description="memory store keys deleted (their value came from an erased write)")
    ledger_entries: int = Field(0, description="ledger entries redacted")
    registry_rows: int = Field(0, description="registry rows replaced by a receipt without content")
    receipts: int = Field(0, description="receipts of pruned proposals scrubbed")
    evidence: int = Field(0, description="other writes whose context evidence joined an erased text")
    store_scrubbed: bool | None = Field(None, description="the embedded store's file was scrubbed (None: no key "
                                        "was deleted; False: a Chroma server, not scrubbed)")
    registry_checkpointed: bool | None = None
    ledger_seq: int | None = Field(None, description="seq of the memory.erased entry")
    dry_run: bool = False
    notes: list[str] = Field(default_factory=list)


@dataclass
class _Selected:
    namespace: tuple[str, ...]
    key: str
    agent_id: str | None
    texts: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)


def erase_memories(gate: Gatekeeper, *, proposal_ids: Sequence[str] = (), namespace: Sequence[str] | None = None,
                   key: str | None = None, operator: str, reason: str, dry_run: bool = False) -> ErasureReport:
    """Erase the proposals with ``proposal_ids`` and (``namespace``) every proposal under that namespace prefix
    (``key``: of that key only) from the memory store, the registry and the ledger (see the module docstring).

    Raises ``ValueError`` for a missing operator, reason or selection and for ids the gate does not know, and
    :class:`ErasureRefused` when a selected proposal, or another write of a selected key, is in review or
    unfinished; nothing is changed then. Running it again finishes an erasure that was interrupted (a ledger
    redaction recorded but not yet applied is applied) and finds nothing new to erase in what it erased."""
    operator, reason = (operator or "").strip(), (reason or "").strip()
    if not operator:
        raise ValueError("an erasure needs the operator's name, for the ledger")
    if not reason:
        raise ValueError("an erasure needs a reason (a request number, for example), for the ledger")
    ids = {str(i) for i in proposal_ids}
    prefix = tuple(namespace) if namespace else None
    if key is not None and prefix is None:
        raise ValueError("a key is erased within a namespace: give the namespace too")
    if not ids and prefix is None:
        raise ValueError("name what to erase: proposal ids, or a namespace (and key)")
    started = utcnow().isoformat()
    report = ErasureReport(dry_run=dry_run)
    if not dry_run:
        pending = gate.ledger.apply_redactions()  # an earlier erasure stopped between its record and its rewrite
        if pending:
            report.notes.append(f"finished an interrupted redaction of {pending} ledger entr"
                                f"{'y' if pending == 1 else 'ies'}")

    selected, last_write, retried = _scan_ledger(gate, ids, prefix, key)
    # a store failure retried is the same write under a new id (gate.retry_store_failures): erased with it
    while more := {new for old, new in retried.items() if old in selected and new not in selected}:
        ids |= more
        selected, last_write, retried = _scan_ledger(gate, ids, prefix, key)
    rows = gate.registry.matching(proposal_ids=sorted(ids), namespace_prefix=prefix, key=key)
    for row in rows:
        proposal = row_proposal(row)
        sel = selected.setdefault(row["id"], _Selected(tuple(proposal.namespace), proposal.key, row["agent_id"]))
        sel.texts += _texts(row["text"], proposal.text, json.loads(row["final_value_json"] or "null"))
    receipts = gate.registry.pruned_many(sorted(ids | set(selected)))
    unknown = sorted(ids - set(selected) - set(receipts))
    if unknown:
        raise ValueError(f"no proposal with id(s) {', '.join(unknown)} in the registry or the ledger; nothing was "
                         "erased")
    for pid in ids - set(selected):  # pruned, and its ledger entries gone with removed archives
        selected[pid] = _Selected((), "", receipts[pid]["agent_id"])
    keys = sorted({(s.namespace, s.key) for s in selected.values() if s.key})
    _refuse_in_flight(gate, keys)
    report.proposals = sorted(pid for pid in selected
                              if not (pid in receipts and receipts[pid]["content_hash"] == ERASED
                                      and not selected[pid].seqs))
    deletes = [k for k in keys if last_write.get(k) in selected]
    if dry_run:
        report.keys_deleted = len(deletes)
        report.ledger_entries = sum(len(s.seqs) for s in selected.values())
        report.registry_rows = len(rows)
        return report
    if not report.proposals:
        report.notes.append("nothing left to erase: the selection was erased already")
        return report

    with gate.key_locks(keys):
        _refuse_in_flight(gate, keys)  # again, now that no write of these keys can start
        # a key written again since this erasure began holds a newer memory, which stays
        deletes = [(ns, k) for ns, k in deletes if not gate.registry.committed_since(ns_to_str(ns), k, started)]
        if deletes:
            store = gate.memory_store
            gate.record_deletes(deletes, agent_id=f"operator:{operator}",
                                apply=lambda: store.batch([PutOp(ns, k, None) for ns, k in deletes]))
    report.keys_deleted = len(deletes)
    texts = [t for s in selected.values() for t in s.texts]
    records = gate.ledger.redact([q for s in selected.values() for q in s.seqs], operator=operator, reason=reason)
    report.ledger_entries = sum(len(r.fields["entries"]) for r in records)
    erased = gate.registry.erase(report.proposals, texts, {s.agent_id for s in selected.values() if s.agent_id})
    report.registry_rows, report.receipts, report.evidence = erased["rows"], erased["receipts"], erased["evidence"]
    report.registry_checkpointed = erased["checkpointed"]
    if not erased["checkpointed"]:
        report.notes.append("the registry's write-ahead log could not be emptied while another process read it: "
                            "run the erasure again with the gates stopped to clear old pages from it")
    scrub = getattr(gate.memory_store, "scrub_deleted", None)
    report.store_scrubbed = bool(scrub(deletes)) if scrub is not None and deletes else None
    if report.store_scrubbed is False:
        report.notes.append("the memory store is a Chroma server (or a client given in code): its files and log "
                            "keep the deleted texts until its operator compacts them")
    entry = gate.ledger.append(ERASED_EVENT, operator=operator, reason=reason, proposal_ids=report.proposals,
                               keys_deleted=report.keys_deleted, ledger_entries=report.ledger_entries,
                               registry_rows=report.registry_rows, receipts=report.receipts)
    report.ledger_seq = entry.seq
    log.info("erasure.done", operator=operator, proposals=len(report.proposals), keys_deleted=report.keys_deleted,
             ledger_entries=report.ledger_entries)
    return report


def _scan_ledger(gate: Gatekeeper, ids: set[str], prefix: tuple[str, ...] | None, key: str | None
                 ) -> tuple[dict[str, _Selected], dict[tuple[tuple[str, ...], str], str | None], dict[str, str]]:
    """One pass over the ledger's history: the selected proposals (their entries' seqs and texts), the last write
    of every key (the id of its last commit, None after a delete), and the retries (old id -> new id)."""
    def chosen(pid: Any, ns: tuple[str, ...], k: Any) -> bool:
        return pid in ids or (prefix is not None and ns[:len(prefix)] == prefix and (key is None or k == key))

    selected: dict[str, _Selected] = {}
    last_write: dict[tuple[tuple[str, ...], str], str | None] = {}
    retried: dict[str, str] = {}
    for e in gate.ledger.history():
        event = e.get("event")
        if event in TEXT_EVENTS:
            pid, ns, k = e.get("proposal_id"), tuple(e.get("namespace") or ()), e.get("key")
            if e.get("state") == "committed":
                last_write[(ns, k)] = pid
            if not chosen(pid, ns, k):
                continue
            sel = selected.setdefault(pid, _Selected(ns, k, e.get("agent_id")))
            if "redacted" not in e:
                sel.seqs.append(e["seq"])
            sel.texts += _texts(e.get("text"), e.get("edited_value"))
        elif event == "memory.deleted":
            last_write[(tuple(e.get("namespace") or ()), e.get("key"))] = None
        elif event == "proposal.retried" and e.get("retried_as"):
            retried[e.get("proposal_id")] = e["retried_as"]
    return selected, last_write, retried


def _texts(*values: Any) -> list[str]:
    """The strings a memory's text can be found as: plain strings, and a stored value's ``content`` or JSON."""
    out = []
    for v in values:
        if isinstance(v, str) and v.strip():
            out.append(v)
        elif isinstance(v, dict):
            content = v.get("content")
            out.append(content if isinstance(content, str) else json.dumps(v, ensure_ascii=False))
    return out


def _refuse_in_flight(gate: Gatekeeper, keys: Sequence[tuple[tuple[str, ...], str]]) -> None:
    rows, deletes = gate.registry.undecided_of_keys(keys)
    if not rows and not deletes:
        return
    parts = []
    pending = [r["id"] for r in rows if r["state"] == "pending"]
    other = [r["id"] for r in rows if r["state"] != "pending"]
    if pending:
        parts.append(f"{len(pending)} in the review queue ({', '.join(pending[:10])}"
                     f"{', ...' if len(pending) > 10 else ''}): decide them first (gatekeeper review reject ID "
                     "--reviewer NAME --reason ...)")
    if other:
        parts.append(f"{len(other)} unfinished ({', '.join(other[:10])}{', ...' if len(other) > 10 else ''}): "
                     "a gate finishes them when it opens (gate.recover()) once the process that wrote them has "
                     "ended")
    if deletes:
        parts.append(f"{len(deletes)} delete(s) not yet applied to the store: a gate applies them when it opens")
    raise ErasureRefused("cannot erase while writes of the selected keys are in flight: " + "; ".join(parts)
                         + ". Nothing was erased.")
