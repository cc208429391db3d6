"""Which memory store a gate writes into, as the registry records it for each write.

The processes of a deployment share one data directory (registry, ledger, review queue) but each opens its gate
with a memory store of its own: the agent's ``GatedStore`` wraps the store its graph reads (LangGraph's
``InMemoryStore``, ``SqliteStore``, ``PostgresStore``, the embedded chromadb ...), while ``gatekeeper review``
and ``gatekeeper serve`` open the data directory's store (the embedded chromadb under it, or the Chroma server
of ``GATEKEEPER_CHROMA_URL``) unless ``GATEKEEPER_MEMORY_STORE`` names the agent's. An approval made in the
terminal committed the agent's escalated write into the data directory's chromadb, where the agent never reads
it, and the registry called it applied; a crash's unfinished commit was finished the same way by whichever
process recovered first.

So every write and delete is journaled with the identity of its gate's store, and only a gate whose store has
that identity writes it there (``Gatekeeper.writes_to``). A gate with another store leaves it: recovery leaves
it to a gate of its store, and a person's approval there is refused with what to do. Rows journaled before the
identity was recorded (``store`` NULL) are written by any gate, as they were, which records its store on them.

The identity is what tells stores apart without a name given to them: a chromadb's directory or server and
collection, a SQLite store's database file, a Postgres store's host, port and database, and otherwise the
store's class (two stores of one class that this cannot tell apart read as the same store). A path inside the data
directory is recorded relative to it (``<data dir>/chroma``), so a copy of the directory restored elsewhere
(``gatekeeper backup``) writes its rows into its own copy of the store. A store held in a process's memory
(LangGraph's ``InMemoryStore``, a ``SqliteStore`` on ``:memory:``, an in-memory chromadb) is that process's alone:
its identity names the process (``registry.process_token``), so no other process writes into a throwaway store of
its own and calls the write committed (nor a ``gatekeeper serve --graph`` that runs the agent's module with an
in-memory store of its own), and ``GATEKEEPER_MEMORY_STORE`` may not name such a store. Once that process has
ended, its memory went with it: its writes are rejected, or a restarted agent takes them over into its new
in-memory store explicitly (``Gatekeeper.adopt_store``, in its process).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

from gatekeeper.object_spec import checked_spec, load_attribute
from gatekeeper.registry import ConflictError, owner_alive, process_token

__all__ = ["ENV_VAR", "IN_DATA_DIR", "MemoryStoreSpecError", "OtherStoreError", "check_memory_store_spec",
           "adoption_refused", "held_in_memory", "in_memory", "load_memory_store", "store_identity",
           "where_to_decide"]

ENV_VAR = "GATEKEEPER_MEMORY_STORE"


class OtherStoreError(ConflictError):
    """A write journaled for one memory store, to be written by a gate whose store is another."""


class MemoryStoreSpecError(ValueError):
    """``GATEKEEPER_MEMORY_STORE`` does not name a memory store that loads."""


#: how a memory store spec is read and refused (``gatekeeper.object_spec``)
_SPEC = {"what": "memory store", "names": "a LangGraph store (BaseStore) or a function that returns one",
         "env_var": ENV_VAR, "error": MemoryStoreSpecError}


def check_memory_store_spec(spec: str) -> str:
    """``spec`` stripped, when it has the form ``module:attribute`` or ``path/to/file.py:attribute``; a
    :class:`MemoryStoreSpecError` saying what form it should have otherwise. Nothing is imported."""
    return checked_spec(spec, **_SPEC)


def load_memory_store(spec: str) -> Any:
    """The memory store ``spec`` names (``GATEKEEPER_MEMORY_STORE``: the agent's store, for the gates of the CLI
    and ``gatekeeper serve``): a LangGraph ``BaseStore``, or a function taking no arguments that returns one
    (called each time: each gate gets a store of its own, opened on the same database). A
    :class:`MemoryStoreSpecError` when it does not load or is not a store."""
    from langgraph.store.base import BaseStore

    obj, attr = load_attribute(spec, **_SPEC)
    if not isinstance(obj, BaseStore):
        obj = _called(spec, attr, obj, BaseStore)
    if type(obj).__name__ == "GatedStore" and hasattr(obj, "gate"):
        raise MemoryStoreSpecError(f"memory store {spec!r}: {attr} is a GatedStore: name the store it wraps")
    if in_memory(obj):
        raise MemoryStoreSpecError(f"memory store {spec!r}: {attr} is a {type(obj).__name__} held in memory: each "
                                   "process gets a store of its own, which dies with it, so no other process can "
                                   "write into the agent's; decide its writes in the agent's process "
                                   "(ReviewService(gate)), or keep its memories in a database")
    return obj


def _called(spec: str, attr: str, factory: Any, store_type: type) -> Any:
    """What ``factory`` returns, when it is a store (``store_type``); ``MemoryStoreSpecError`` otherwise."""
    if (isinstance(factory, type) and not issubclass(factory, store_type)) or not callable(factory):
        raise MemoryStoreSpecError(f"memory store {spec!r}: {attr} is a {type(factory).__name__}, not a LangGraph "
                                   "store (BaseStore) or a function that returns one")
    try:
        store = factory()
    except Exception as exc:  # noqa: BLE001 - the factory's own error (a database that does not open)
        raise MemoryStoreSpecError(f"memory store {spec!r}: calling {attr}() failed: "
                                   f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(store, store_type):
        raise MemoryStoreSpecError(f"memory store {spec!r}: {attr}() returned a {type(store).__name__}, not a "
                                   "LangGraph store (BaseStore)")
    return store


#: how an in-memory store's identity names its process: ``<kind> in process <host:pid:start>``
_IN_PROCESS = " in process "


def store_identity(store: Any, data_dir: str | Path | None = None) -> str:
    """The identity of the memory store ``store`` (see the module docstring), its paths inside ``data_dir``
    relative to it."""
    chroma = _chroma(store, data_dir)
    if chroma is not None:
        return chroma
    kind = f"{type(store).__module__}.{type(store).__qualname__}"
    if in_memory(store):
        return f"{kind}{_IN_PROCESS}{process_token()}"
    file = _sqlite_file(store)
    where = _shown_path(file, data_dir) if file else _postgres_database(store)
    return f"{kind} {where}" if where else kind


def in_memory(store: Any) -> bool:
    """Whether ``store`` keeps its memories in this process's memory: LangGraph's ``InMemoryStore``, a store on a
    ``sqlite3`` connection to ``:memory:``, a ``ChromaMemoryStore`` on an in-memory client."""
    from langgraph.store.memory import InMemoryStore

    if isinstance(store, InMemoryStore):
        return True
    if isinstance(getattr(store, "conn", None), sqlite3.Connection):
        return _sqlite_file(store) is None
    module = sys.modules.get("gatekeeper.chroma_store")
    return (module is not None and isinstance(store, module.ChromaMemoryStore) and store.server_url is None
            and store.path is None and store._scratch_collection)  # noqa: SLF001


def held_in_memory(identity: str) -> bool:
    """Whether ``identity`` is that of a store held in a process's memory (``in_memory``)."""
    return _IN_PROCESS in identity


def where_to_decide(identity: str) -> str:
    """How a person decides a write journaled for the store ``identity`` when this process's gate writes to
    another: where to approve it (a rejection stores nothing and is made anywhere)."""
    if held_in_memory(identity):
        return ("It is held in the memory of the agent's process, which no other process can write into: decide it "
                "in that process (ReviewService(gate)), or, if that process has ended, in the restarted agent's "
                "after it takes the writes over (gate.adopt_store); a rejection stores nothing and works anywhere")
    return ("Decide it where the gate writes to that store: set GATEKEEPER_MEMORY_STORE to it for `gatekeeper "
            "review` and `gatekeeper serve`, or use ReviewService(gate) in the agent's process (a rejection stores "
            "nothing and works anywhere)")


def adoption_refused(mine: str, old: str) -> str | None:
    """Why a gate over the store ``mine`` may not take over the writes journaled for ``old`` as its own
    (``Gatekeeper.adopt_store``), else None. A store held in memory is adopted only after its process has ended, and
    only into a store held in memory of the same kind, in the restarted agent's process: written anywhere else, the
    agent would never read it."""
    if old == mine:
        return f"{old} is this gate's memory store already"
    kind, sep, owner = old.partition(_IN_PROCESS)
    if not sep:
        return None
    if owner_alive(owner):
        return f"{old} is held in the memory of a process that is running: its writes are that process's to make"
    my_kind, my_sep, _ = mine.partition(_IN_PROCESS)
    if not my_sep or my_kind != kind:
        return (f"{old} was held in the memory of a process that has ended; only a restarted agent holding a new "
                f"{kind.rsplit('.', 1)[-1]} takes its writes over (gate.adopt_store in its process)")
    return None


#: how an identity writes the data directory, for a path inside it
IN_DATA_DIR = "<data dir>"


def _shown_path(path: str | Path, data_dir: str | Path | None) -> str:
    """``path`` absolute, or ``<data dir>/...`` when it is inside ``data_dir``."""
    full = Path(path).resolve()
    if data_dir is not None:
        try:
            return f"{IN_DATA_DIR}/" + full.relative_to(Path(data_dir).resolve()).as_posix()
        except ValueError:
            pass
    return str(full)


def _chroma(store: Any, data_dir: str | Path | None) -> str | None:
    """A ``ChromaMemoryStore``'s identity: its server or directory, and its collection; else None."""
    module = sys.modules.get("gatekeeper.chroma_store")  # not imported: no store of it (and chromadb stays unloaded)
    if module is None or not isinstance(store, module.ChromaMemoryStore):
        return None
    if store.server_url is not None:
        return f"chroma server {store.server_url} {store.collection_name}"
    if store.path is None and store._scratch_collection:  # noqa: SLF001 - held in this process's memory
        return f"chromadb in memory {store.collection_name}{_IN_PROCESS}{process_token()}"
    where = _shown_path(store.path, data_dir) if store.path is not None else "client given by the caller"
    return f"chromadb {where} {store.collection_name}"


def _sqlite_file(store: Any) -> str | None:
    """The database file of a store on a ``sqlite3`` connection (LangGraph's ``SqliteStore``), else None (one in
    memory has none: it is this process's alone)."""
    conn = getattr(store, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        return None
    try:
        rows = conn.execute("PRAGMA database_list").fetchall()
    except sqlite3.Error:
        return None
    return next((row[2] for row in rows if row[1] == "main"), "") or None


def _postgres_database(store: Any) -> str | None:
    """``host:port/dbname`` of a store on a psycopg connection (LangGraph's ``PostgresStore``), else None."""
    info = getattr(getattr(store, "conn", None), "info", None)
    dbname = getattr(info, "dbname", None)
    if not isinstance(dbname, str):
        return None
    return f"postgres {getattr(info, 'host', '')}:{getattr(info, 'port', '')}/{dbname}"
