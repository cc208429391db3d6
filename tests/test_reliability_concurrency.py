"""Several processes on one embedded data directory: no lost or duplicated writes.

chromadb's embedded PersistentClient loses vectors when several processes write
(each persists its own stale HNSW index; see chroma_store's module docstring and
docs/reliability.md). ChromaMemoryStore serialises writers with a lock file and
reloads its index when another process wrote; these tests hold it to that.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gatekeeper.chroma_store import LOCK_FILE, ChromaMemoryStore

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))


def _embed(texts):
    from concurrency import _embed as e  # deterministic random unit vectors, no model

    return e(texts)


@pytest.mark.slow
def test_eight_gated_writer_processes(tmp_path):
    out = tmp_path / "concurrency.json"
    r = subprocess.run([sys.executable, "benchmarks/concurrency.py", "--procs", "8", "--writes", "6",
                        "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(out.read_text())
    print(r.stdout[-1500:])
    assert not s["writer_errors"], s["writer_errors"]
    assert s["n_problems"] == 0, s["problems"]
    assert s["read_your_writes_misses"] == 0
    assert s["proposals"] == 48 and sum(s["registry_states"].values()) == 48
    # every committed item is in the vector index: found by the verifying process, or (near-identical
    # vectors can leave one unreachable in a given build of the index) by a fresh load of it
    assert s["vector_lost"] == 0
    assert s["store_items"] == s["keys_committed"] == s["vector_hits"] + s["vector_unreachable_in_one_build"]
    assert s["keys_committed"] > 0


def test_recheck_tells_an_item_of_the_stored_index_from_one_it_lacks(tmp_path):
    """The harness's second look: a stored item is found by a fresh load of the index, a vector the
    index does not hold is reported lost."""
    from _vector_index import recheck_in_fresh_builds

    with ChromaMemoryStore(path=tmp_path / "chroma", embed=_embed) as store:
        store.put(("n",), "k1", {"content": "alpha note"})
        store.put(("n",), "k2", {"content": "beta note"})
        col = store.collection
        got = col.get(include=["embeddings"])
        stored = {i: (list(map(float, e)), 1) for i, e in zip(got["ids"], got["embeddings"])}
        stranger = [-x for x in next(iter(stored.values()))[0]]  # no stored vector is near it
        missed = {**stored, "never-written": (stranger, 1)}
        found, lost = recheck_in_fresh_builds(store.path, store.collection_name, missed)
    assert sorted(found) == sorted(stored) and lost == ["never-written"]


@pytest.mark.slow
def test_store_processes_lose_no_vectors(tmp_path):
    """ChromaMemoryStore alone (no model): 4 processes x 40 writes, every vector found."""
    # run the probe in a fresh interpreter: forking this pytest process (torch and chroma
    # threads already running) can deadlock the children on an inherited lock
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); from concurrency import run_probe; "
            "print(json.dumps(run_probe(procs=4, per=40, modes=('store',))['store'], default=str))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert not res["open_errors"] and res["write_errors"] == 0
    assert res["fresh"] == {"stored": 160, "vector_found": 160}
    found, asked = res["live_vector_hits"].split("/")
    assert found == asked  # every live process sees every other's writes


def test_two_stores_on_one_path_see_each_others_writes(tmp_path):
    """Two stores in one process behave like two processes: each has its own chroma
    system, and a semantic search in one sees the other's writes (generation reload)."""
    path = tmp_path / "chroma"
    a = ChromaMemoryStore(path=path, embed=_embed)
    b = ChromaMemoryStore(path=path, embed=_embed)
    try:
        assert b.search(("n",), query="alpha note") == []
        a.put(("n",), "k1", {"content": "alpha note"})
        hits = b.search(("n",), query="alpha note", limit=1)
        assert hits and hits[0].key == "k1"
        b.put(("n",), "k2", {"content": "beta note"})
        hits = a.search(("n",), query="beta note", limit=1)
        assert hits and hits[0].key == "k2"
        assert a.reloads >= 1 and b.reloads >= 1
        assert (path / LOCK_FILE).exists()
    finally:
        a.close()
        b.close()
    with ChromaMemoryStore(path=path, embed=_embed) as c:
        assert c.count() == 2
        assert c.search(("n",), query="alpha note", limit=1)[0].key == "k1"


def test_concurrent_first_open_of_a_new_directory(tmp_path):
    """Bare chromadb races in its migrations when two processes create a directory at once
    ("table collections already exists"); the store's lock makes creation one at a time."""
    code = ("import sys; sys.path.insert(0, '.'); from gatekeeper.chroma_store import ChromaMemoryStore as S\n"
            "s = S(path=sys.argv[1]); s.put(('n',), sys.argv[2], {'v': 1}); print(s.count()); s.close()\n")
    path = tmp_path / "fresh"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"k{i}"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    with ChromaMemoryStore(path=path) as s:
        assert s.count() == 4
