"""A second look for items a harness's vector search missed: is the item lost from the stored
index, or only unreachable in the index build this process loaded?

chromadb builds a process's HNSW index from disk with parallel inserts, so two builds from the same
files differ. Among near-identical vectors (the harnesses' template texts) a build can leave an
item unreachable by any query, even one filtered to its id, while other builds find it
(docs/reliability.md, "Several processes"). An item that no fresh build finds is lost.
"""

from __future__ import annotations

#: fresh loads of the vector index in which an item missed by the verifying process is looked for again
FRESH_BUILDS = 3


def recheck_in_fresh_builds(path: str | None, collection: str,
                            missed: dict[str, tuple[list[float], int]]) -> tuple[list[str], list[str]]:
    """Split ``missed`` (id -> (its vector, search depth)) into those some fresh load of the index at
    ``path`` finds at that depth (unreachable in one build only) and those none finds (lost)."""
    from gatekeeper.chroma_store import _owned_persistent_client

    left = dict(missed)
    for _ in range(FRESH_BUILDS if path and left else 0):
        client = _owned_persistent_client(path)
        try:
            col = client.get_collection(collection)
            for id_, (vec, depth) in list(left.items()):
                if id_ in col.query(query_embeddings=[vec], n_results=depth, include=[])["ids"][0]:
                    del left[id_]
        finally:
            client.close()
        if not left:
            break
    return [i for i in missed if i not in left], list(left)


def vector_misses(col, depths: dict[str, int]) -> tuple[int, dict[str, tuple[list[float], int]]]:
    """Query ``col`` with each stored item's own vector for its nearest ``depths[id]``. Returns how
    many found themselves and, for the others, id -> (vector, depth) for ``recheck_in_fresh_builds``."""
    hits = 0
    missed: dict[str, tuple[list[float], int]] = {}
    got = col.get(ids=list(depths), include=["embeddings"]) if depths else {"ids": [], "embeddings": []}
    for id_, emb in zip(got["ids"], got["embeddings"]):
        vec = list(map(float, emb))
        if id_ in col.query(query_embeddings=[vec], n_results=depths[id_], include=[])["ids"][0]:
            hits += 1
        else:
            missed[id_] = (vec, depths[id_])
    return hits, missed
