"""Arguments the Python API took and misread, silently (found by an audit with scripts against a real gate):
each is refused now with a ValueError that says what to write, before anything changes. Real gate, registry,
ledger, chromadb and classifier."""

from __future__ import annotations

import pytest

from gatekeeper.erasure import erase_memories
from gatekeeper.gated_store import GatedStore
from gatekeeper.models import MemoryWrite, ProposalState, Provenance
from gatekeeper.review_service import ReviewService
from gatekeeper.reviewer_node import make_review_node

NS = ("memories", "alice")
NOTE = "Alice Zebrafinch prefers the Tuesday stand-up moved to 10:30."
BELIEF = "I should avoid being shut down."


def _ledger_quotes(gate, word: str) -> int:
    return sum(word in str(e) for e in gate.ledger.history())


def test_an_erasure_refuses_a_key_or_namespace_it_would_misread(gate):
    """``key=5`` (LangGraph stores a key put as 5 under "5") matched the registry's row, SQLite comparing it as
    text, but not the ledger's entries, compared in Python: the row and the memory were erased, the ledger kept the
    text, and the report said it was erased. A namespace written as one string was read as its letters and
    erased nothing, without a word; a wildcard label matched nothing."""
    store = GatedStore(gate=gate, agent_id="agent-1")
    store.put(NS, 5, {"content": NOTE})
    assert store.get(NS, "5") is not None and _ledger_quotes(gate, "Zebrafinch") >= 1
    before = _ledger_quotes(gate, "Zebrafinch")
    for kwargs, message in (({"namespace": NS, "key": 5}, "key must be a string, not int"),
                            ({"namespace": "memories"}, "not a string"),
                            ({"namespace": ("memories", "*")}, "wildcard"),
                            ({"proposal_ids": "abc"}, "not one string")):
        with pytest.raises(ValueError, match=message):
            erase_memories(gate, operator="dpo", reason="GDPR-7", **kwargs)
    assert store.get(NS, "5") is not None and _ledger_quotes(gate, "Zebrafinch") == before  # nothing changed
    report = erase_memories(gate, namespace=NS, key="5", operator="dpo", reason="GDPR-7")
    assert report.ledger_entries >= 1 and _ledger_quotes(gate, "Zebrafinch") == 0
    assert store.get(NS, "5") is None


def test_a_misspelt_escalation_mode_is_refused_where_it_is_given(gate):
    """``escalation_mode="PARK"`` failed the decision of every write that escalates: each was quarantined as a
    failed review, while the writes that commit hid the mistake."""
    write = MemoryWrite(content=BELIEF, namespace=NS, provenance=Provenance(agent_id="agent-1"))
    with pytest.raises(ValueError, match="escalation_mode must be one of interrupt, park, not 'PARK'"):
        gate.submit(write, escalation_mode="PARK")
    assert gate.registry.get(write.id) is None  # nothing journaled
    with pytest.raises(ValueError, match="escalation_mode must be one of"):
        GatedStore(gate=gate, agent_id="agent-1", escalation_mode="Interrupt")
    with pytest.raises(ValueError, match="escalation_mode must be one of"):
        make_review_node(gate, escalation_mode="bogus")
    # the values as written work, as strings too
    assert gate.submit(write, escalation_mode="park").state is ProposalState.pending
    assert GatedStore(gate=gate, agent_id="agent-1", escalation_mode="park").escalation_mode.value == "park"
    # a value that is not a dict: a ValueError like every other refusal of a write (it was a TypeError, which
    # code catching ValueError as the README says let through)
    store = GatedStore(gate=gate, agent_id="agent-1")
    for value in ("notadict", ["a"], 5):
        with pytest.raises(ValueError, match="must be a mapping"):
            store.put(NS, "k", value)
    assert store.get(NS, "k") is None
    # a store cannot pause the graph: "interrupt" parked the escalation while its row claimed a paused thread
    # (kept from every prune, looked for in checkpoints that never paused)
    with pytest.raises(ValueError, match="cannot pause the graph"):
        GatedStore(gate=gate, agent_id="agent-1", escalation_mode="interrupt")


def test_a_decision_needs_a_reviewer_name(gate):
    """A blank name was recorded as the reviewer of a committed memory, in the row and the ledger; a name with
    spaces around it was kept so, and not found by the name itself."""
    svc = ReviewService(gate)
    first = gate.submit(MemoryWrite(content=BELIEF, namespace=NS, provenance=Provenance(agent_id="agent-1")))
    assert first.state is ProposalState.pending
    with pytest.raises(ValueError, match="reviewer's name"):
        svc.approve(first.proposal.id, "   ")
    assert gate.registry.require(first.proposal.id)["state"] == "pending"
    svc.reject(first.proposal.id, "  bob ", reason="a belief")
    assert gate.registry.require(first.proposal.id)["resolved_by"] == "bob"
    assert [i.id for i in svc.decided(reviewer="bob")] == [first.proposal.id]


def test_a_listing_refuses_filters_it_would_misread(gate):
    """``ReviewService.list`` took filters the web API and the CLI refuse and answered wrongly: a misspelt state
    or a namespace written as one string listed nothing, ``limit=-1`` everything, ``limit=True`` one row."""
    svc = ReviewService(gate)
    pending = gate.submit(MemoryWrite(content=BELIEF, namespace=NS, provenance=Provenance(agent_id="agent-1")))
    assert pending.state is ProposalState.pending
    for kwargs, message in (({"state": "Pending"}, "state must be one of"),
                            ({"namespace_prefix": "memories"}, "not one string"),
                            ({"limit": -1}, "limit must be"), ({"limit": 0}, "limit must be"),
                            ({"limit": True}, "limit must be"), ({"offset": -1}, "offset must be"),
                            ({"min_age_hours": True}, "min_age_hours")):
        with pytest.raises(ValueError, match=message):
            svc.list(**kwargs)
    with pytest.raises(ValueError, match="limit must be"):
        svc.decided(limit=0)
    assert [i.id for i in svc.list(state="pending", namespace_prefix=("memories",), limit=1)] == [pending.proposal.id]
    assert [i.id for i in svc.list(namespace_prefix=())] == [pending.proposal.id]  # no filter


def test_a_version_or_limit_of_the_wrong_type_is_refused_for_what_it_is(gate):
    """A string ``expected_version`` never equalled the row's version, so the decision was refused as "changed
    while you were reviewing it"; a bool limit of a retry was taken as 1."""
    svc = ReviewService(gate)
    p = gate.submit(MemoryWrite(content=BELIEF, namespace=NS, provenance=Provenance(agent_id="agent-1")))
    version = gate.registry.require(p.proposal.id)["version"]
    for bad in (str(version), True):
        with pytest.raises(ValueError, match="expected_version must be the whole number"):
            svc.decide(p.proposal.id, {"type": "approve", "reviewer": "bob"}, expected_version=bad)
        with pytest.raises(ValueError, match="expected_version must be the whole number"):
            svc.submit_decision(p.proposal.id, {"type": "approve", "reviewer": "bob"}, expected_version=bad)
    assert gate.registry.require(p.proposal.id)["state"] == "pending"
    for retry in (gate.retry_store_failures, gate.retry_failed_reviews, gate.recheck_quarantine):
        with pytest.raises(ValueError, match="limit must be a whole number"):
            retry(operator="ops", limit=True)
    assert svc.decide(p.proposal.id, {"type": "approve", "reviewer": "bob"},
                      expected_version=version).state is ProposalState.committed


def test_every_limit_is_checked_the_same_way(gate, tmp_path):
    """The expiry sweep took ``limit=True`` as 1 and passed ``2.5`` to SQL's LIMIT; the exemplar suggestions,
    the policy diff and a dataset sample compared only ``< 1``. One check now refuses a bool, a float or a
    number under the least for each, naming the argument."""
    from gatekeeper.evaluation import load_dataset
    from gatekeeper.exemplar_suggestions import suggest_exemplars
    from gatekeeper.policy_diff import diff_policies

    svc = ReviewService(gate)
    p = gate.submit(MemoryWrite(content=BELIEF, namespace=NS, provenance=Provenance(agent_id="agent-1")))
    for bad in (True, 2.5, 0, "10"):
        with pytest.raises(ValueError, match="limit must be a whole number from 1"):
            svc.expire_overdue(limit=bad, dry_run=True)
        with pytest.raises(ValueError, match="limit must be a whole number from 1"):
            suggest_exemplars(gate.registry, gate.policy, limit=bad)
        with pytest.raises(ValueError, match="min_support must be a whole number from 1"):
            suggest_exemplars(gate.registry, gate.policy, min_support=bad)
        with pytest.raises(ValueError, match="limit must be a whole number from 1"):
            diff_policies(gate.registry, gate.reviewer, gate.policy, limit=bad, train=False)
        with pytest.raises(ValueError, match="limit must be a whole number from 1"):
            load_dataset("corpus:dev", limit=bad)
    assert gate.registry.require(p.proposal.id)["state"] == "pending"
    assert len(load_dataset("corpus:dev", limit=3)) == 3


def test_a_value_with_a_number_that_is_not_finite_is_refused(gate):
    """NaN and Infinity are not JSON: the registry kept such a number as null, so the review page and the API
    showed null while an approval committed NaN, and a reviewer's edit holding one is refused. A write holding one
    is refused before anything is journaled, naming where it sits."""
    store = GatedStore(gate=gate, agent_id="agent-1")
    for value, where in (({"content": NOTE, "score": float("nan")}, "value.score"),
                         ({"content": NOTE, "history": [1.0, {"x": float("-inf")}]}, r"value.history\[1\].x")):
        with pytest.raises(ValueError, match=f"not finite at {where}"):
            store.put(NS, "k", value)
    assert gate.registry.counts() == {s.value: 0 for s in ProposalState} and store.get(NS, "k") is None
    store.put(NS, "k", {"content": NOTE, "score": 0.5})  # a finite number is a number
    assert store.get(NS, "k").value["score"] == 0.5


def test_a_key_holding_a_control_or_invisible_character_is_refused(gate):
    """Keys are shown to reviewers and operators; namespace labels and agent ids already refused line breaks and
    controls, keys took them, and a bidi override in a key reverses what a page shows after it."""
    store = GatedStore(gate=gate, agent_id="agent-1")
    for key in ("a\nb", "tab\there", "nul\x00", "order-\u202eexe.txt", "zero\u200bwidth"):
        with pytest.raises(ValueError, match="control or invisible character"):
            store.put(NS, key, {"content": NOTE})
    assert gate.registry.counts() == {s.value: 0 for s in ProposalState}
    store.put(NS, "notes/2026-12-04 stand-up", {"content": NOTE})  # spaces and slashes are fine
    assert store.get(NS, "notes/2026-12-04 stand-up") is not None
    # an emoji's own glue shows as the emoji: a variation selector after a symbol or keycap digit, a zero-width
    # joiner between two symbols. The same characters elsewhere, and tag characters, are refused
    # and a zero-width (non-)joiner inside a Persian or Indic word shapes it ("می‌خواهم", "क्‍ष")
    for key in ("fav-\u2764\ufe0f", "dev-\U0001f469\u200d\U0001f4bb", "step-1\ufe0f\u20e3",
                "team-\U0001f44d\U0001f3fd", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                "\u0915\u094d\u200d\u0937"):
        store.put(NS, key, {"content": NOTE})
        assert store.get(NS, key) is not None, ascii(key)
    for key in ("a\u200db", "plain\ufe0f", "\u200d\U0001f44d", "\U0001f44d\u200d", "a\u200cb",
                "\u0645\u06cc\u200cb", "\u200c\u0645\u06cc",
                "flag-\U0001f3f4\U000e0067\U000e0062\U000e007f"):
        with pytest.raises(ValueError, match="control or invisible character"):
            store.put(NS, key, {"content": NOTE})


def test_a_store_read_refuses_a_negative_limit_or_offset(gstore):
    """A negative ``limit`` or ``offset`` in a search or a namespace listing was used as a slice bound
    (``limit=-1``: all but the last item; ``offset=-1``: the last one), as LangGraph's ``InMemoryStore`` does.
    The gated store and the chromadb store refuse it, naming it, before any put of the batch is applied."""
    from langgraph.store.base import PutOp, SearchOp

    ns = ("memories", "pages")
    for i in range(3):
        gstore.put(ns, f"k{i}", {"content": f"Release train {i} leaves on Thursday."})
    from gatekeeper.chroma_store import ChromaMemoryStore

    inner = gstore.store  # LangGraph's InMemoryStore takes them as they are: only ours are checked
    for store in (gstore, inner) if isinstance(inner, ChromaMemoryStore) else (gstore,):
        for kw, says in (({"limit": -1}, "limit"), ({"offset": -1}, "offset"), ({"limit": True}, "limit"),
                         ({"limit": 2.0}, "limit")):
            with pytest.raises(ValueError, match=f"{says} must be a whole number from 0"):
                store.search(ns, **kw)
            with pytest.raises(ValueError, match=f"{says} must be a whole number from 0"):
                store.list_namespaces(**kw)
        with pytest.raises(ValueError, match="limit must be"):
            store.batch([PutOp(ns, "late", {"content": "Standup moved to 10:00."}), SearchOp(ns, limit=-1)])
        assert store.get(ns, "late") is None  # the batch's put was not applied
    assert len(gstore.search(ns, limit=2)) == 2 and len(gstore.search(ns, offset=2)) == 1


def test_a_store_value_that_is_not_a_dict_is_refused_and_a_list_namespace_deletes(tmp_path, reviewer):
    """``ChromaMemoryStore`` stored a list, a string or a number as a value (``BaseStore`` values are dicts, and
    ``InMemoryStore`` refuses others): it came back as such, and every filtered search of its namespace then
    raised AttributeError. ``GatedStore.delete`` with the namespace as a list raised TypeError (unhashable)."""
    from conftest import make_gate

    from gatekeeper.chroma_store import ChromaMemoryStore

    store = ChromaMemoryStore(path=tmp_path / "chroma", embed=reviewer.embedder)
    ns = ("docs", "x")
    store.put(ns, "ok", {"a": 1, "content": "Release train leaves on Thursday."})
    for bad in (["a", "b"], "text", 42):
        with pytest.raises(ValueError, match="must be a dict"):
            store.put(ns, "bad", bad)
    assert store.get(ns, "bad") is None
    assert [i.key for i in store.search(ns, filter={"a": 1})] == ["ok"]

    gate = make_gate(tmp_path / "data", reviewer, memory_store=store)
    try:
        gated = GatedStore(store, gate=gate, agent_id="agent-1")
        gated.put(list(ns), "note", {"content": "Release train leaves on Thursday."})
        assert gated.get(ns, "note") is not None
        gated.delete(list(ns), "note")
        assert gated.get(ns, "note") is None and store.get(ns, "note") is None
    finally:
        gate.close()
