"""Erasure: forget memories on request (``gatekeeper forget``).

A memory may have to be forgotten: a person asks for their data to be erased, or an agent stored a secret. The
gate keeps a memory's text in several places, and erasure takes it out of each, in this order, keeping the
record that something was written and what was decided:

1. **the memory store**: under the keys' locks, a key is deleted when the store holds the value of an erased
   write (compared by content hash), or, erasing a namespace, whatever it holds there (a ``memory.deleted``
   entry, as any delete);
2. **other writes' review evidence** in the registry that quotes an erased text (the context layer's joined
   texts, the judge's similar memories, matched as written and as normalised), while the texts can still be
   read; first the texts are taken out of what the context layer reads (``ProposalRegistry.hide_texts``), so a
   write reviewed while the erasure runs is not joined with them, and the evidence is scrubbed once more after
   step 4 for a write whose review read them just before;
3. **the ledger**: the proposals' ``proposal.decided`` and ``review.resolved`` entries, and other entries
   quoting them, lose their text-bearing fields (``AuditLedger.redact``: a stub that still verifies);
4. **the registry**: each erased proposal's row becomes a receipt without content
   (``ProposalRegistry.erase``), so its id stays known and a replay of it is refused; then its write-ahead log
   is emptied (the connections run with ``secure_delete``);
5. **the store's files**: the embedded Chroma database is scrubbed of the keys' past values
   (``ChromaMemoryStore.scrub_history``), and copies a killed backup left in the data directory are removed;
6. a ``memory.erased`` entry records who erased what, and why (the operator's reason is kept as written).

Every step can run again: running the erasure again finishes one that was interrupted.

What it does not reach: copies made before (backups: ``gatekeeper backup``), a Chroma server's own files and
log, LangGraph checkpoints of the agent's threads (their state holds the proposed memories: delete the thread
with the checkpointer), logs the operator keeps, and the memory of running processes (a gate's caches hold
recent texts until they are evicted or the process restarts; chroma's vector index files can take stray bytes
of the memory of a process that reads them, so run erasures from a process of their own: the CLI).

Proposals still in review or unfinished are refused, not erased: decide them (``gatekeeper review reject``) or
recover them first, so that nothing in flight writes the text back. So are memories committed into another memory
store than the erasing gate's (the agent's own store, where this process cannot delete them:
``gatekeeper.store_identity``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from langgraph.store.base import PutOp
from pydantic import BaseModel, Field

from gatekeeper.gate import CHANGE_REFUSED
from gatekeeper.ledger import OWN_EVENTS, REDACTABLE_FIELDS
from gatekeeper.log_setup import get_logger
from gatekeeper.models import content_hash_of, validate_namespace
from gatekeeper.quotes import MIN_QUOTED, fold, mentions
from gatekeeper.registry import ERASED, row_proposal

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper

log = get_logger("gatekeeper.erasure")

#: the ledger events that carry a proposal's text
TEXT_EVENTS = ("proposal.decided", "review.resolved")
ERASED_EVENT = "memory.erased"
#: never redacted by a later erasure: the record of erasures themselves (their reason is the operator's) and the
#: ledger's own entries (redactions, rotations, hash versions)
_OWN_RECORDS = OWN_EVENTS | {ERASED_EVENT}


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
    hashes: set[str] = field(default_factory=set)  # content hashes of its values (proposed, edited)


def erase_memories(gate: Gatekeeper, *, proposal_ids: Sequence[str] = (), namespace: Sequence[str] | None = None,
                   key: str | None = None, operator: str, reason: str, dry_run: bool = False) -> ErasureReport:
    """Erase the proposals with ``proposal_ids`` and (``namespace``) every proposal under that namespace prefix
    (``key``: of that key only) from the memory store, the registry and the ledger (see the module docstring).

    Raises ``ValueError`` for a missing operator, reason or selection and for ids the gate does not know, and
    :class:`ErasureRefused` when a selected proposal, or another write of a selected key, is in review or
    unfinished; nothing is changed then. Each step can be run again: running the erasure again finishes one that
    was interrupted (a crash, a full disk) and finds nothing new in what it erased."""
    operator, reason = (operator or "").strip(), (reason or "").strip()
    if not operator:
        raise ValueError("an erasure needs the operator's name, for the ledger")
    if not reason:
        raise ValueError("an erasure needs a reason (a request number, for example), for the ledger")
    if isinstance(proposal_ids, str):
        raise ValueError("proposal_ids must be a list of ids, not one string (write [id])")
    ids = {str(i) for i in proposal_ids}
    # checked as the gate checks a write's namespace and key: a string would be read as its letters, a key of
    # another type would match the registry's rows (SQLite compares it as text) and not the ledger's entries,
    # which would keep the text while the report says it is erased
    prefix = validate_namespace(namespace, stored=True) if namespace is not None else None
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be a string, not {type(key).__name__}: a store keeps keys as text (a key put "
                         f"as {key!r} is stored as {str(key)!r})")
    if key is not None and prefix is None:
        raise ValueError("a key is erased within a namespace: give the namespace too")
    if not ids and prefix is None:
        raise ValueError("name what to erase: proposal ids, or a namespace (and key)")
    report = ErasureReport(dry_run=dry_run)
    if not dry_run:
        # a closed gate changes nothing, not even an earlier erasure's unfinished rewrite of the ledger
        gate._refuse_if_closed(CHANGE_REFUSED)  # noqa: SLF001 - the erasure's later steps are admitted each
        pending = gate.ledger.apply_redactions()  # an earlier erasure stopped between its record and its rewrite
        if pending:
            report.notes.append(f"finished an interrupted redaction of {pending} ledger entr"
                                f"{'y' if pending == 1 else 'ies'}")

    selected, retried = _scan_ledger(gate, ids, prefix, key)
    # a quarantined write retried or released to review is the same write under a new id
    # (gate.retry_store_failures, gate.retry_failed_reviews, gate.recheck_quarantine, gate.release_to_review):
    # erased together, from either id
    while more := {b for a, b in retried.items() if a in selected and b not in selected} | {
            a for a, b in retried.items() if b in selected and a not in selected}:
        ids |= more
        selected, retried = _scan_ledger(gate, ids, prefix, key)
    rows = gate.registry.matching(proposal_ids=sorted(ids), namespace_prefix=prefix, key=key)
    for row in rows:
        ns, k = tuple(json.loads(row["namespace"])), row["key"]
        sel = selected.setdefault(row["id"], _Selected(ns, k, row["agent_id"]))
        try:
            proposal = row_proposal(row)
        except ValueError:  # written by an older or foreign tool: its text column is what there is
            sel.texts += _texts(row["text"])
            continue
        final = json.loads(row["final_value_json"] or "null")
        # the value too: a memory with no content field is quoted by the judge's similar memories as str(value)
        sel.texts += _texts(row["text"], proposal.text, proposal.value, final)
        sel.hashes.add(proposal.content_hash())
        if isinstance(final, dict):
            sel.hashes.add(content_hash_of(ns, k, final))
    receipts = gate.registry.pruned_many(sorted(ids | set(selected)))
    unknown = sorted(ids - set(selected) - set(receipts))
    if unknown:
        raise ValueError(f"no proposal with id(s) {', '.join(unknown)} in the registry or the ledger; nothing was "
                         "erased")
    for pid in ids - set(selected):  # pruned, and its ledger entries gone with removed archives: key unknown
        selected[pid] = _Selected((), "", receipts[pid]["agent_id"])
        report.notes.append(f"{pid}: pruned, and its ledger entries are no longer here (archives removed), so its "
                            "memory store key is not known: erase by namespace to delete what the store holds")
    keys = sorted({(s.namespace, s.key) for s in selected.values() if s.key})
    stored = _stored_keys(gate, prefix, key) if prefix is not None else []
    candidates = sorted(set(keys) | set(stored))
    if not selected and not stored:
        report.notes.append("nothing matches the selection")
        return report
    _refuse_in_flight(gate, keys)
    _refuse_another_store(gate, rows)
    report.proposals = sorted(pid for pid in selected
                              if not (receipts.get(pid, {}).get("content_hash") == ERASED and not selected[pid].seqs))
    hashes = {h for s in selected.values() for h in s.hashes}
    report.notes += _held_in_policy(gate, [t for s in selected.values() for t in s.texts])
    if dry_run:
        report.keys_deleted = len(_to_delete(gate, candidates, set(stored), hashes))
        report.ledger_entries = sum(len(s.seqs) for s in selected.values())
        report.registry_rows = len(rows)
        return report

    if not report.proposals:
        report.notes.append("the selection was erased already: its clean-up steps ran again")
    # 1. the store: a key goes when the store holds a selected write's value (or, erasing a namespace, anything)
    with gate.key_locks(candidates):
        _refuse_in_flight(gate, keys)  # again, now that no write of these keys can start
        deletes = _to_delete(gate, candidates, set(stored), hashes)
        if deletes:
            store = gate.memory_store
            gate.record_deletes(deletes, agent_id=f"operator:{operator}",
                                apply=lambda: store.batch([PutOp(ns, k, None) for ns, k in deletes]))
    report.keys_deleted = len(deletes)
    # 2. the texts out of what the context layer reads (a write reviewed from now on is not joined with them),
    # then other writes' review evidence quoting them (while the texts can still be read, for a rerun)
    gate.registry.hide_texts(sorted(selected))
    texts = [t for s in selected.values() for t in s.texts]
    # the rows that can quote them: of the same agents, or under their namespaces (unknown for a pruned id whose
    # ledger entries are gone: then every row)
    writers = None if any(not s.key or not s.agent_id for s in selected.values()) else (
        {str(s.agent_id) for s in selected.values()}, {s.namespace for s in selected.values()})
    report.evidence = gate.registry.scrub_evidence(texts, keep=selected, writers=writers)
    # 3. the ledger: the selected proposals' entries, and any other entry quoting them (a torn-tail repair)
    seqs = [q for s in selected.values() for q in s.seqs] + _quoting_entries(gate, texts, set(selected))
    records = gate.ledger.redact(seqs, operator=operator, reason=reason)
    report.ledger_entries = sum(len(r.fields["entries"]) for r in records)
    # 4. the registry's rows and receipts, then its write-ahead log
    erased = gate.registry.erase(sorted(selected))
    report.registry_rows, report.receipts = erased["rows"], erased["receipts"]
    # again: a write whose review read the recent texts just before step 2 may have recorded its evidence since
    report.evidence += gate.registry.scrub_evidence(texts, keep=selected, writers=writers)
    report.registry_checkpointed = gate.registry.checkpoint()
    if not report.registry_checkpointed:
        report.notes.append("the registry's write-ahead log could not be emptied while another process read it: "
                            "run the erasure again with the gates stopped to clear old pages from it")
    # 5. what the store's files keep of past values, and copies a killed backup left in the data directory
    scrub = getattr(gate.memory_store, "scrub_history", None)
    report.store_scrubbed = bool(scrub(candidates)) if scrub is not None and candidates else None
    if report.store_scrubbed is False:
        report.notes.append("the memory store is a Chroma server (or a client given in code): its files and log "
                            "keep the deleted texts until its operator compacts them")
    elsewhere = getattr(gate.memory_store, "open_elsewhere", None)
    if report.store_scrubbed and elsewhere is not None and elsewhere():
        report.notes.append("other processes have the memory store open (an agent, `gatekeeper serve`): their memory "
                            "may hold the erased texts, which chroma can write into its vector index files again "
                            "at its next save of the index; restart them, then run this erasure again to zero "
                            "those files once more")
    from gatekeeper.backup import remove_stale_staging

    remove_stale_staging(Path(gate.registry.path).parent)
    entry = gate.ledger.append(ERASED_EVENT, operator=operator, reason=reason, proposal_ids=report.proposals,
                               keys_deleted=report.keys_deleted, ledger_entries=report.ledger_entries,
                               registry_rows=report.registry_rows, receipts=report.receipts)
    report.ledger_seq = entry.seq
    log.info("erasure.done", operator=operator, proposals=len(report.proposals), keys_deleted=report.keys_deleted,
             ledger_entries=report.ledger_entries)
    return report


def _scan_ledger(gate: Gatekeeper, ids: set[str], prefix: tuple[str, ...] | None, key: str | None
                 ) -> tuple[dict[str, _Selected], dict[str, str]]:
    """One pass over the ledger's history: the selected proposals (their entries' seqs, texts and content hashes)
    and the retries and releases of quarantined writes (old id -> new id)."""
    def chosen(pid: Any, ns: tuple[str, ...], k: Any) -> bool:
        return pid in ids or (prefix is not None and ns[:len(prefix)] == prefix and (key is None or k == key))

    selected: dict[str, _Selected] = {}
    retried: dict[str, str] = {}
    for e in gate.ledger.history():
        event = e.get("event")
        if event in TEXT_EVENTS:
            pid, ns, k = e.get("proposal_id"), tuple(e.get("namespace") or ()), e.get("key")
            if not chosen(pid, ns, k):
                continue
            sel = selected.setdefault(pid, _Selected(ns, k, e.get("agent_id")))
            if "redacted" not in e:
                sel.seqs.append(e["seq"])
            sel.texts += _texts(e.get("text"), e.get("edited_value"))
            if isinstance(e.get("content_sha256"), str):
                sel.hashes.add(e["content_sha256"])
            if isinstance(e.get("edited_value"), dict):
                sel.hashes.add(content_hash_of(ns, k, e["edited_value"]))
        elif event == "proposal.retried" and e.get("retried_as"):
            retried[e.get("proposal_id")] = e["retried_as"]
        elif event == "proposal.released" and e.get("released_as"):
            retried[e.get("proposal_id")] = e["released_as"]
    return selected, retried


def _quoting_entries(gate: Gatekeeper, texts: Sequence[str], ids: set[str]) -> list[int]:
    """Seqs of entries of other events whose redactable fields quote a selected proposal (its id or a piece of
    its text): a torn-tail repair records the torn line whole."""
    out = []
    if not texts and not ids:
        return out
    for e in gate.ledger.history():
        if e.get("event") in TEXT_EVENTS or e.get("event") in _OWN_RECORDS or "redacted" in e:
            continue
        quoted = [json.dumps(e[f], ensure_ascii=False) for f in REDACTABLE_FIELDS if f in e]
        if any(any(i in q for i in ids) or any(mentions(q, t) for t in texts) for q in quoted):
            out.append(e["seq"])
    return out


def _stored_keys(gate: Gatekeeper, prefix: tuple[str, ...], key: str | None) -> list[tuple[tuple[str, ...], str]]:
    """The (namespace, key) of every item the memory store holds under ``prefix`` (of ``key`` only)."""
    out, offset = [], 0
    while True:
        items = gate.memory_store.search(prefix, limit=1000, offset=offset)
        out += [(tuple(i.namespace), i.key) for i in items if key is None or i.key == key]
        if len(items) < 1000:
            return out
        offset += len(items)


def _to_delete(gate: Gatekeeper, candidates: Sequence[tuple[tuple[str, ...], str]],
               stored: set[tuple[tuple[str, ...], str]], hashes: set[str]) -> list[tuple[tuple[str, ...], str]]:
    """The candidate keys whose stored item is to go: under the namespace erased (``stored``), or holding the
    value of a selected write (its content hash)."""
    out = []
    for ns, k in candidates:
        item = gate.memory_store.get(ns, k)
        if item is not None and ((ns, k) in stored or content_hash_of(ns, k, item.value) in hashes):
            out.append((ns, k))
    return out


def _held_in_policy(gate: Gatekeeper, texts: Sequence[str]) -> list[str]:
    """Notes naming the policy's exemplars and counter-exemplars that are an erased text or a part of one (``policy
    suggest`` copies a reviewed memory's text, or the sentence the classifier scored it by, into a candidate policy):
    the erasure does not edit the policy, whose exemplars are shown to the LLM judge beside any user's writes."""
    erased = [fold(t) for t in texts if t and t.strip()]
    out = []
    for name, category in gate.policy.categories.items():
        for listed, items in (("exemplars", category.exemplars), ("counter_exemplars", category.counter_exemplars)):
            for i, item in enumerate(items):
                f = fold(item)
                if len(f) >= MIN_QUOTED and any(f in t for t in erased):
                    out.append(f"the policy in force ({gate.policy.source_path}) holds an erased text as "
                               f"categories.{name}.{listed}[{i}]: the erasure does not edit the policy; take it out "
                               "there (its classifier is then trained without it)")
    return out


def _texts(*values: Any) -> list[str]:
    """The strings a memory's text can be found as: plain strings, and a stored value's ``content`` or JSON (as
    the registry's text column holds it), and as the judge's similar memories quote it (``str`` of the content,
    else of the value)."""
    out = []
    for v in values:
        if isinstance(v, str) and v.strip():
            out.append(v)
        elif isinstance(v, dict):
            content = v.get("content")
            out.append(content if isinstance(content, str) else json.dumps(v, ensure_ascii=False))
            if not isinstance(content, str):
                out.append(str(v if content is None else content))
    return out


def _refuse_another_store(gate: Gatekeeper, rows: Sequence[dict]) -> None:
    """``ErasureRefused`` when a selected write was committed into another memory store than this gate's
    (``Gatekeeper.writes_to``): this gate cannot delete it there, and the report would call it erased while the
    agent's store still holds it."""
    stores = sorted({r["store"] for r in rows if r["state"] == "committed" and not gate.writes_to(r)})
    if stores:
        raise ErasureRefused(
            f"the selected memories were committed into the agent's memory store ({'; '.join(stores)}), and this "
            f"process's gate writes to another ({gate.store_id}), so it cannot delete them there. Run the erasure "
            "where the gate writes to that store (GATEKEEPER_MEMORY_STORE for `gatekeeper forget`; erase_memories in "
            "the agent's process for a store held in its memory). Nothing was erased.")


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
