"""ChromaMemoryStore: a real chromadb PersistentClient in tmp_path, checked against
LangGraph's InMemoryStore.  The only test double is the embedder (a deterministic
hashed bag of words) so nothing is downloaded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from gatekeeper.chroma_store import ChromaMemoryStore

DIMS = 64


def bow_embed(texts: list[str]) -> list[list[float]]:
    """Deterministic test embedder: words hashed into 64 buckets, L2-normalised."""
    out = []
    for text in texts:
        v = [0.0] * DIMS
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            v[int(hashlib.sha256(w.encode()).hexdigest(), 16) % DIMS] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        out.append([x / n for x in v])
    return out


@pytest.fixture
def store(tmp_path):
    s = ChromaMemoryStore(path=tmp_path / "chroma")
    yield s
    s.close()


@pytest.fixture
def sem_store(tmp_path):
    s = ChromaMemoryStore(path=tmp_path / "chroma_sem", embed=bow_embed)
    yield s
    s.close()


def _keys(items):
    return [(it.namespace, it.key) for it in items]


# ---------------------------------------------------------------- basics


def test_telemetry_off_and_no_default_embedding_function(store):
    assert store.client.get_settings().anonymized_telemetry is False
    assert store.client.get_settings().allow_reset is False
    cfg = store.collection.configuration
    assert cfg.get("embedding_function") is None
    assert store.collection.metadata["hnsw:space"] == "cosine"


def test_put_get_update_delete(store):
    ns = ("users", "u1", "memories")
    assert store.get(ns, "m1") is None
    store.put(ns, "m1", {"content": "TPS reports go in ./Reports/TPS", "n": 1})
    item = store.get(ns, "m1")
    assert item.namespace == ns and item.key == "m1"
    assert item.value == {"content": "TPS reports go in ./Reports/TPS", "n": 1}
    assert item.created_at.tzinfo is not None and item.created_at == item.updated_at
    assert abs((datetime.now(timezone.utc) - item.created_at).total_seconds()) < 60

    store.put(ns, "m1", {"content": "TPS reports go in ./Reports/TPS-2", "n": 2})
    updated = store.get(ns, "m1")
    assert updated.value["n"] == 2
    assert updated.created_at == item.created_at  # kept on update
    assert updated.updated_at > item.updated_at  # refreshed
    assert store.count() == 1

    store.delete(ns, "m1")
    assert store.get(ns, "m1") is None
    assert store.count() == 0
    store.delete(ns, "never-existed")  # deleting a missing key is a no-op

    # a re-created item gets a fresh created_at
    store.put(ns, "m1", {"n": 3})
    assert store.get(ns, "m1").created_at > item.created_at


def test_same_key_in_other_namespace_is_distinct(store):
    store.put(("a",), "k", {"v": 1})
    store.put(("a", "b"), "k", {"v": 2})
    store.put(("b",), "k", {"v": 3})
    assert [store.get(ns, "k").value["v"] for ns in [("a",), ("a", "b"), ("b",)]] == [1, 2, 3]
    assert store.count() == 3 and store.count(("a",)) == 2 and store.count(("a", "b")) == 1


def test_batch_order_read_before_write_and_last_put_wins(store):
    ns = ("docs",)
    res = store.batch(
        [
            PutOp(ns, "k", {"v": 1}),
            GetOp(ns, "k"),
            PutOp(ns, "k", {"v": 2}),
            PutOp(ns, "gone", {"v": 0}),
            PutOp(ns, "gone", None),
            SearchOp(ns),
            ListNamespacesOp(),
        ]
    )
    assert res == [None, None, None, None, None, [], []]  # reads saw the pre-batch state
    assert store.get(ns, "k").value == {"v": 2}
    assert store.get(ns, "gone") is None
    res = store.batch([GetOp(ns, "missing"), GetOp(ns, "k"), ListNamespacesOp()])
    assert res[0] is None and res[1].value == {"v": 2} and res[2] == [ns]


def test_values_roundtrip_json(store):
    value = {"s": "ünïcödé ✓", "i": 3, "f": 1.5, "b": True, "none": None,
             "l": [1, "x", {"y": [2]}], "d": {"e": {"f": "g"}}}
    store.put(("x",), "k", value)
    assert store.get(("x",), "k").value == value


def test_invalid_namespace_rejected(store):
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("a", ""), "k", {"v": 1})])
    with pytest.raises(ValueError):
        store.put((), "k", {"v": 1})


# ---------------------------------------------------------------- search


def test_search_prefix_filter_limit_offset(store):
    for i in range(6):
        store.put(("u", "1", "facts"), f"f{i}", {"n": i, "kind": "even" if i % 2 == 0 else "odd",
                                                   "meta": {"src": "web" if i < 3 else "user"}})
    store.put(("u", "1", "prefs"), "p", {"n": 100, "kind": "even"})
    store.put(("u", "2", "facts"), "x", {"n": 1, "kind": "odd"})
    store.put(("u", "10"), "y", {"n": 1, "kind": "odd"})  # not under prefix ("u", "1")

    # newest first, score None
    res = store.search(("u", "1"))
    assert [it.key for it in res] == ["p", "f5", "f4", "f3", "f2", "f1", "f0"]
    assert all(it.score is None for it in res)
    assert [it.key for it in store.search(("u", "1"), limit=2, offset=1)] == ["f5", "f4"]
    assert [it.key for it in store.search(("u", "1", "facts"), filter={"kind": "even"})] == [
        "f4", "f2", "f0"]
    assert [it.key for it in store.search(("u",), filter={"kind": "odd"}, limit=2, offset=1)] == [
        "x", "f5"]
    assert [it.key for it in store.search(("u", "1"), filter={"n": {"$gte": 2, "$lt": 5}})] == [
        "f4", "f3", "f2"]
    assert [it.key for it in store.search(("u", "1"), filter={"n": {"$gt": 4}})] == ["p", "f5"]
    assert [it.key for it in store.search(("u", "1"), filter={"n": {"$lte": 1}})] == ["f1", "f0"]
    assert [it.key for it in store.search(("u", "1", "facts"), filter={"n": {"$ne": 0}})][-1] == "f1"
    assert [it.key for it in store.search(("u", "1"), filter={"n": {"$eq": 3}})] == ["f3"]
    assert [it.key for it in store.search(("u",), filter={"meta": {"src": "user"}})] == [
        "f5", "f4", "f3"]
    assert {it.key for it in store.search((), limit=100)} == {
        "p", "x", "y", *[f"f{i}" for i in range(6)]}
    assert store.search(("nope",)) == []
    # an update moves the item to the front
    store.put(("u", "1", "facts"), "f0", {"n": 0, "kind": "even"})
    assert store.search(("u", "1"), limit=1)[0].key == "f0"
    # ordering operators on a missing field simply do not match
    store.put(("u", "1", "facts"), "nofield", {"kind": "odd"})
    assert "nofield" not in [it.key for it in store.search(("u",), filter={"n": {"$gt": -1}})]
    with pytest.raises(ValueError):
        store.search(("u",), filter={"n": {"$regex": "x"}})


def test_query_without_embedder_is_ignored(store):
    store.put(("d",), "a", {"content": "alpha"})
    store.put(("d",), "b", {"content": "beta"})
    res = store.search(("d",), query="alpha")
    assert [it.key for it in res] == ["b", "a"] and all(it.score is None for it in res)


def test_semantic_search_ranks_right_item_first(sem_store):
    s = sem_store
    ns = ("agent", "memories")
    s.put(ns, "tps", {"content": "TPS reports go in the Reports TPS folder", "kind": "task"})
    s.put(ns, "cluster", {"content": "the staging cluster shuts down at 01:00", "kind": "task"})
    s.put(ns, "dark", {"content": "the user prefers dark mode in the editor", "kind": "pref"})
    s.put(ns, "lunch", {"content": "lunch orders are due by eleven", "kind": "task"})
    s.put(("other",), "tps2", {"content": "TPS reports go in the Reports TPS folder"})

    res = s.search(ns, query="where do TPS reports go")
    assert res[0].key == "tps"
    assert 0.0 < res[0].score <= 1.0 + 1e-6
    assert [r.score for r in res] == sorted((r.score for r in res), reverse=True)
    assert all(r.namespace == ns for r in res)  # prefix respected
    assert s.search(ns, query="when does the staging cluster shut down", limit=1)[0].key == "cluster"
    assert s.search(ns, query="editor dark mode", limit=1)[0].key == "dark"
    # filter + query + offset
    res = s.search(ns, query="TPS reports", filter={"kind": "task"}, limit=2, offset=1)
    assert len(res) == 2 and "tps" not in [r.key for r in res] and "dark" not in [r.key for r in res]
    # an item stored with index=False is never ranked, only used to fill (score None)
    s.put(ns, "hidden", {"content": "TPS reports TPS reports"}, index=False)
    res = s.search(ns, query="TPS reports", limit=10)
    assert res[0].key == "tps" and res[-1].key == "hidden" and res[-1].score is None
    assert "hidden" not in [r.key for r in s.search(ns, query="TPS reports", limit=4)]
    # per-put index paths override the default "content" field
    s.put(ns, "byfield", {"content": "nothing relevant", "title": "quarterly TPS audit"},
          index=["title"])
    assert s.search(ns, query="quarterly audit", limit=1)[0].key == "byfield"


def test_semantic_search_matches_inmemory_store(tmp_path):
    rng = random.Random(7)
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
             "omicron pi rho sigma tau upsilon phi chi psi omega").split()
    ref = InMemoryStore(index={"dims": DIMS, "embed": bow_embed, "fields": ["content"]})
    ours = ChromaMemoryStore(path=tmp_path / "c", embed=bow_embed, index_fields=["content"])
    try:
        for i in range(40):
            ns = ("m", rng.choice(["x", "y"]))
            value = {"content": " ".join(rng.sample(words, 4)), "n": rng.randint(0, 5)}
            ref.put(ns, f"k{i}", value)
            ours.put(ns, f"k{i}", value)
        for _ in range(15):
            q = " ".join(rng.sample(words, 3))
            prefix = rng.choice([("m",), ("m", "x")])
            flt = rng.choice([None, {"n": {"$gte": 2}}])
            kw = dict(query=q, filter=flt, limit=5, offset=rng.randint(0, 2))
            exp, got = ref.search(prefix, **kw), ours.search(prefix, **kw)
            assert [round(e.score, 5) for e in exp] == pytest.approx(
                [round(g.score, 5) for g in got], abs=1e-4)
            # same items at each distinct score (ties may come in either order)
            by_score = lambda items: sorted((round(i.score, 4), i.key) for i in items)  # noqa: E731
            if len({round(e.score, 4) for e in exp}) == len(exp):
                assert _keys(exp) == _keys(got)
            else:
                assert [s for s, _ in by_score(exp)] == pytest.approx([s for s, _ in by_score(got)])
    finally:
        ours.close()


def test_embedding_dimension_mismatch_is_a_clear_error(tmp_path):
    with ChromaMemoryStore(path=tmp_path / "c") as plain:
        plain.put(("a",), "k", {"content": "x"})
    with ChromaMemoryStore(path=tmp_path / "c", embed=bow_embed) as s:
        assert s.get(("a",), "k").value == {"content": "x"}
        with pytest.raises(ValueError, match="dimension"):
            s.put(("a",), "k2", {"content": "y"})


# ---------------------------------------------------------------- list_namespaces


def test_list_namespaces(store):
    for ns in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
               ("a", "c", "f"), ("b", "a", "f"), ("users", "123")]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert store.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",), ("users",)]
    assert store.list_namespaces(max_depth=2, limit=2, offset=1) == [("a", "c"), ("b", "a")]
    assert store.list_namespaces(prefix=("users", "123", "x")) == []
    assert len(store.list_namespaces()) == 7
    store.delete(("users", "123"), "k")  # emptied namespaces are not listed
    assert ("users", "123") not in store.list_namespaces()


# ---------------------------------------------------------------- persistence / modes


def test_persistence_across_clients(tmp_path):
    path = tmp_path / "persist"
    with ChromaMemoryStore(path=path, embed=bow_embed) as s1:
        s1.put(("p",), "k", {"content": "persisted TPS fact"})
        s1.put(("p",), "gone", {"content": "deleted"})
        s1.delete(("p",), "gone")
        first = s1.get(("p",), "k")
    with ChromaMemoryStore(path=path, embed=bow_embed) as s2:
        again = s2.get(("p",), "k")
        assert again == first  # value, namespace, key and both timestamps
        assert s2.get(("p",), "gone") is None
        assert s2.search(("p",), query="TPS fact")[0].key == "k"
        s2.put(("p",), "k", {"content": "updated"})
        assert s2.get(("p",), "k").created_at == first.created_at
    # and from a fresh process (no in-process chroma system cache involved)
    code = (
        "import sys, json; from gatekeeper.chroma_store import ChromaMemoryStore as S\n"
        "s = S(path=sys.argv[1]); it = s.get(('p',), 'k')\n"
        "print(json.dumps([s.count(), it.value, it.created_at.isoformat(),"
        " s.client.get_settings().anonymized_telemetry])); s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, cwd=str(_repo_root()), timeout=120)
    count, value, created, telemetry = json.loads(out.stdout.strip().splitlines()[-1])
    assert count == 1 and value == {"content": "updated"}
    assert created == first.created_at.isoformat() and telemetry is False


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_ephemeral_stores_are_isolated():
    a, b = ChromaMemoryStore(), ChromaMemoryStore()
    try:
        a.put(("n",), "k", {"v": 1})
        assert b.get(("n",), "k") is None and b.count() == 0
        assert a.client.get_settings().anonymized_telemetry is False
    finally:
        a.close()
        b.close()
    with pytest.raises(RuntimeError):
        a.get(("n",), "k")
    a.close()  # idempotent


def test_shared_client_is_not_closed(tmp_path):
    import chromadb

    from gatekeeper.telemetry import chroma_settings

    client = chromadb.PersistentClient(path=str(tmp_path / "shared"), settings=chroma_settings())
    s = ChromaMemoryStore(client=client, collection="mine")
    s.put(("a",), "k", {"v": 1})
    s.close()
    assert client.get_collection("mine").count() == 1
    client.close()


def test_from_server_is_lazy():
    s = ChromaMemoryStore.from_server("127.0.0.1", 1)  # nothing listens on port 1
    assert s._client is None  # constructing did not connect
    with pytest.raises(Exception):
        s.get(("a",), "k")
    s.close()


# ---------------------------------------------------------------- async / threads


def test_abatch_and_async_api(store):
    async def main():
        ns = ("async",)
        await store.aput(ns, "k1", {"n": 1})
        res = await store.abatch([PutOp(ns, "k2", {"n": 2}), GetOp(ns, "k1"), SearchOp(ns)])
        assert res[0] is None and res[1].value == {"n": 1} and _keys(res[2]) == [(ns, "k1")]
        got = await asyncio.gather(store.aget(ns, "k1"), store.aget(ns, "k2"),
                                   store.asearch(ns, filter={"n": 2}),
                                   store.alist_namespaces())
        assert got[0].value == {"n": 1} and got[1].value == {"n": 2}
        assert _keys(got[2]) == [(ns, "k2")] and got[3] == [ns]
        await store.adelete(ns, "k1")
        assert await store.aget(ns, "k1") is None

    asyncio.run(main())


def test_concurrent_writers(store):
    def work(t):
        for i in range(10):
            store.put(("t", str(t)), f"k{i}", {"i": i})
            store.put(("t", str(t)), f"k{i}", {"i": i, "again": True})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.count() == 60
    assert all(it.value["again"] for it in store.search(("t",), limit=100))
    assert len({it.updated_at for it in store.search(("t",), limit=100)}) == 60


# ---------------------------------------------------------------- parity with InMemoryStore


class _RefStore(InMemoryStore):
    """InMemoryStore, except that namespaces left empty (after deletes, or merely
    created by a get on a missing namespace) are not listed, as in the SQL stores."""

    def _handle_list_namespaces(self, op):
        for ns in [ns for ns, items in self._data.items() if not items]:
            del self._data[ns]
        return super()._handle_list_namespaces(op)


_NS_POOL = [("a",), ("a", "b"), ("a", "b", "c"), ("a", "x"), ("b",), ("b", "b"),
            ("c", "d", "e", "f"), ("x", "a", "b")]
_LABELS = ["a", "b", "c", "d", "e", "f", "x", "*"]


def _rand_value(rng):
    v = {"n": rng.randint(0, 9), "tag": rng.choice(["red", "green", "blue"]),
         "content": f"memory {rng.randint(0, 999)}", "meta": {"lvl": rng.randint(0, 2)}}
    if rng.random() < 0.3:
        v["tags"] = rng.choice([["x"], ["x", "y"], ["y", "x"]])
    return v


def _rand_filter(rng):
    return rng.choice([
        None, None,
        {"tag": rng.choice(["red", "green", "blue"])},
        {"tag": {"$ne": "red"}},
        {"n": {"$gt": rng.randint(0, 9)}},
        {"n": {"$gte": rng.randint(0, 5), "$lte": rng.randint(4, 9)}},
        {"n": {"$lt": rng.randint(0, 9)}},
        {"n": {"$eq": rng.randint(0, 9)}, "tag": "blue"},
        {"meta": {"lvl": rng.randint(0, 2)}},
        {"tags": ["x", "y"]},
    ])


def _rand_op(rng):
    r = rng.random()
    ns = rng.choice(_NS_POOL)
    key = f"k{rng.randint(0, 4)}"
    if r < 0.45:
        return PutOp(ns, key, _rand_value(rng))
    if r < 0.55:
        return PutOp(ns, key, None)
    if r < 0.7:
        return GetOp(ns, key)
    if r < 0.87:
        prefix = ns[: rng.randint(0, len(ns))]
        return SearchOp(prefix, filter=_rand_filter(rng), limit=rng.randint(1, 6),
                        offset=rng.randint(0, 3), query=rng.choice([None, "memory"]))
    conds = []
    if rng.random() < 0.5:
        conds.append(MatchCondition("prefix", tuple(rng.choice(_LABELS)
                                                     for _ in range(rng.randint(1, 3)))))
    if rng.random() < 0.4:
        conds.append(MatchCondition("suffix", tuple(rng.choice(_LABELS)
                                                     for _ in range(rng.randint(1, 2)))))
    return ListNamespacesOp(tuple(conds), max_depth=rng.choice([None, None, 1, 2, 3]),
                            limit=rng.randint(1, 10), offset=rng.randint(0, 2))


def _expected_search(ref, op, seq):
    """InMemoryStore's matches for op, put in newest-write-first order, then paged."""
    full = ref.batch([op._replace(limit=10**6, offset=0)])[0]
    full.sort(key=lambda it: -seq[(it.namespace, it.key)])
    return full[op.offset : op.offset + op.limit]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_inmemory_store(tmp_path, seed):
    rng = random.Random(seed)
    ref = _RefStore()
    ours = ChromaMemoryStore(path=tmp_path / f"parity{seed}")
    seq: dict = {}  # (ns, key) -> write order, to order InMemoryStore's search results
    counter = 0
    created: dict = {}  # our created_at per live item, must survive updates
    try:
        for _ in range(120):
            ops = [_rand_op(rng) for _ in range(rng.choice([1, 1, 1, 2, 3, 5]))]
            expected_search = {i: _expected_search(ref, op, seq)
                               for i, op in enumerate(ops) if isinstance(op, SearchOp)}
            exp = ref.batch(ops)
            got = ours.batch(ops)
            assert len(got) == len(ops)
            for i, op in enumerate(ops):
                if isinstance(op, PutOp):
                    assert got[i] is None
                elif isinstance(op, GetOp):
                    if exp[i] is None:
                        assert got[i] is None, op
                    else:
                        assert (got[i].namespace, got[i].key, got[i].value) == (
                            exp[i].namespace, exp[i].key, exp[i].value), op
                        assert got[i].created_at == created[(op.namespace, op.key)]
                        assert got[i].updated_at >= got[i].created_at
                elif isinstance(op, SearchOp):
                    e = expected_search[i]
                    assert [(x.namespace, x.key, x.value, x.score) for x in got[i]] == [
                        (x.namespace, x.key, x.value, None) for x in e], op
                else:
                    assert got[i] == exp[i], op
            # track write order exactly as the store dedupes a batch: last put wins
            puts: dict = {}
            for op in ops:
                if isinstance(op, PutOp):
                    puts.pop((op.namespace, op.key), None)
                    puts[(op.namespace, op.key)] = op
            for k, op in puts.items():
                if op.value is None:
                    seq.pop(k, None)
                    created.pop(k, None)
                else:
                    counter += 1
                    seq[k] = counter
                    if k not in created:
                        created[k] = ours.get(*k).created_at
        # final full comparison
        everything = ref.search((), limit=10**6)
        assert ours.count() == len(everything) == len(seq)
        assert sorted((x.namespace, x.key, json.dumps(x.value, sort_keys=True))
                      for x in ours.search((), limit=10**6)) == sorted(
            (x.namespace, x.key, json.dumps(x.value, sort_keys=True)) for x in everything)
        assert ours.list_namespaces(limit=1000) == ref.list_namespaces(limit=1000)
    finally:
        ours.close()
