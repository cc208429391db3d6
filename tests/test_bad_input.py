"""Bad input gets a clear error and loses nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatekeeper.gated_store import GatedStore
from gatekeeper.models import MAX_CONTENT_CHARS, MemoryWrite


NS = ("memories", "agent-1")


@pytest.fixture
def store(gate):
    s = GatedStore(gate=gate, agent_id="agent-1")
    s.put(NS, "existing", {"content": "TPS reports go in ./Reports/TPS"})
    return s


def _unchanged(store):
    assert store.get(NS, "existing").value["content"] == "TPS reports go in ./Reports/TPS"
    counts = store.gate.registry.counts()
    assert counts["committed"] == 1 and sum(counts.values()) == 1
    assert store.gate.ledger.verify().ok


@pytest.mark.parametrize("value,needle", [
    ({"content": ""}, "empty"),
    ({"content": "   \n\t "}, "empty"),
    ({"content": "x" * 1_000_000}, "limit"),
])
def test_bad_content_is_refused_clearly(store, value, needle):
    with pytest.raises(ValidationError) as ei:
        store.put(NS, "new", value)
    assert needle in str(ei.value)
    _unchanged(store)


def test_non_utf8_bytes_are_refused(store):
    with pytest.raises((ValidationError, ValueError, TypeError)) as ei:
        store.put(NS, "new", {"content": b"\xff\xfe caf\xe9"})
    assert "bytes" in str(ei.value)
    with pytest.raises(ValidationError) as ei:
        MemoryWrite(content=b"\xff\xfe", namespace=NS)
    assert "bytes" in str(ei.value)
    _unchanged(store)


@pytest.mark.parametrize("ns", [(), ("memories", ""), ("a.b",), ("memories", "../other"), ("memories", 3)])
def test_invalid_namespace_is_refused(store, ns):
    with pytest.raises((ValueError, TypeError)):
        store.put(ns, "k", {"content": "The VPN config is in the wiki."})
    _unchanged(store)


def test_a_bad_write_in_a_batch_stops_the_whole_batch_before_anything_is_written(store):
    from langgraph.store.base import PutOp

    with pytest.raises(ValidationError):
        store.batch([PutOp(NS, "ok", {"content": "Standup is at 09:30."}), PutOp(NS, "bad", {"content": ""})])
    assert store.get(NS, "ok") is None
    _unchanged(store)


def test_max_size_boundary(gate):
    MemoryWrite(content="a" * MAX_CONTENT_CHARS, namespace=NS)
    with pytest.raises(ValidationError):
        MemoryWrite(content="a" * (MAX_CONTENT_CHARS + 1), namespace=NS)


def test_lone_surrogates_are_refused_clearly(store):
    with pytest.raises(ValidationError) as ei:
        store.put(NS, "new", {"content": "bad \ud800 surrogate in a note about TPS reports"})
    assert "not valid Unicode" in str(ei.value)
    _unchanged(store)
