"""Chroma-backed LangGraph ``BaseStore``: the committed-memory store of gatekeeper.

``ChromaMemoryStore`` is a drop-in :class:`langgraph.store.base.BaseStore` (same ops,
same results as :class:`langgraph.store.memory.InMemoryStore`) whose items live in a
chromadb collection, so committed memories survive restarts (``path=``), can be shared
through a Chroma server (:meth:`ChromaMemoryStore.from_server`) and can be recalled by
semantic search when an ``embed`` function is supplied.

Storage layout: one chroma record per item.

* id: ``sha256(json.dumps([list(namespace), key]))`` -- stable across processes.
* document: the JSON of the value.
* embedding: the embedding of the indexed text (see ``index_fields``) when an ``embed``
  function is configured; otherwise a constant placeholder vector (``has_vec`` False).
  Chroma's default embedding function is never used (it downloads an ONNX model):
  collections are always opened with ``embedding_function=None``.
* metadata: ``ns`` (JSON list of labels), ``ns_depth``, ``ns_0..ns_{d-1}`` (labels from
  the root, for prefix ``where`` filters), ``nsr_0..nsr_{d-1}`` (labels from the leaf,
  for suffix filters), ``key``, ``created_at``/``updated_at`` (ISO 8601),
  ``created_at_ts``/``updated_at_ts`` (float epoch seconds), ``created_at_us``/
  ``updated_at_us`` (int epoch microseconds, used for ordering) and ``has_vec``.

Semantics (mirroring ``InMemoryStore`` unless noted):

* Ops in a batch return results in op order; reads in a batch see the state before the
  batch's writes; several puts to one (namespace, key) in a batch: the last wins.
* ``PutOp`` with ``value=None`` deletes.
* ``search``: namespace prefix, value ``filter`` (equality, nested dicts, lists, and the
  ``$eq $ne $gt $gte $lt $lte`` operators), ``limit``/``offset``.  With a ``query`` and an
  ``embed`` function, results are ranked by cosine similarity (``score = 1 - distance``)
  and, when fewer than ``limit`` embedded items match, filled with unembedded matches
  (score ``None``) exactly like ``InMemoryStore``.  Without a query (or without
  ``embed``), matches come back newest first (``updated_at`` descending, as LangGraph's
  Postgres/SQLite stores do) with score ``None``.
* ``list_namespaces``: prefix/suffix match conditions with ``"*"`` wildcards,
  ``max_depth`` truncation, sorted, ``limit``/``offset``.

Deliberate differences from ``InMemoryStore`` (which are bugs or accidents there):

* ``created_at`` is kept when an item is updated (``InMemoryStore`` resets it).
* Search without a query orders newest first (``InMemoryStore`` returns dict insertion
  order, an implementation detail).
* ``list_namespaces`` lists only namespaces that hold at least one item
  (``InMemoryStore`` also lists namespaces that were emptied by deletes or merely read).
* ``$gt/$gte/$lt/$lte`` on a missing or non-numeric value is "no match" instead of a
  ``TypeError``/``ValueError`` that aborts the whole search.
* Values are dicts (others are refused) and round-trip through JSON (tuples come back as lists, integer
  dict keys as strings), like the SQL stores.
* Several ``index_fields`` give one embedding of their texts joined by newlines (one
  record per item) rather than one vector per field with max pooling.

Several processes on one ``path`` (embedded mode)
-------------------------------------------------

chromadb's embedded ``PersistentClient`` is not built for several writer processes.
Measured with chromadb 1.5 (``benchmarks/concurrency.py --probe``, docs/reliability.md):
every process keeps its own in-memory HNSW vector index and persists it after each
write, so a process that writes after another one overwrites the other's vectors with
its stale index (8 writers x 300 upserts: 87 of 2,400 items lost from vector search
for good, while ``get``/``count``, which read chroma's SQLite, still saw them); live
processes answered ``query=`` searches from stale indexes; and two processes opening a
new directory at the same moment raced in chroma's migrations ("table collections
already exists").

So with ``path=`` the store coordinates with other processes through a lock file
(``<path>/gatekeeper-chroma.lock``) that also holds a write generation counter:

* opening the collection and every write take an exclusive ``flock``; a writer bumps
  the generation before it writes;
* semantic (``query=``) searches take a shared ``flock``;
* whenever the generation moved since this store last looked, it re-opens its own
  private chromadb system (a fresh HNSW index loaded from disk) before going on.
  Metadata reads (``get``, filtered/listing searches, ``count``) read SQLite and are
  always current, so they need neither.

Limits: writes are serialised across processes, and the first write or semantic
search after another process wrote reloads the vector index from disk (~0.2 s at a
few thousand items, growing with the collection). Only writes made through
``ChromaMemoryStore`` take part (do not write the directory with a bare
``chromadb.PersistentClient`` at the same time). For many writer processes or hosts
use a Chroma server: :meth:`ChromaMemoryStore.from_server`. Semantic search is
approximate: chromadb builds each load of the HNSW index with parallel inserts, and
among near-identical vectors a load can leave an item unreachable by any query
(docs/reliability.md); ``get`` and searches without a query always find it.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import queue
import sqlite3
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from gatekeeper.log_setup import get_logger
from gatekeeper.models import page_bounds
from gatekeeper.settings import DEFAULT_CHROMA_COLLECTION, DEFAULT_STORE_WRITE_TIMEOUT_S, parse_chroma_url
from gatekeeper.telemetry import chroma_settings

__all__ = ["ChromaMemoryStore", "DEFAULT_COLLECTION"]

DEFAULT_COLLECTION = DEFAULT_CHROMA_COLLECTION
_SCHEMA_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

EmbedFn = Callable[[list[str]], list[list[float]]]


def _local_settings() -> Settings:
    return chroma_settings()  # Settings(anonymized_telemetry=False, allow_reset=False)


LOCK_FILE = "gatekeeper-chroma.lock"
#: a shared ``flock`` on this file is held by every process that has the database open (``_Presence``)
PRESENCE_FILE = "gatekeeper-chroma.open"


def _owned_persistent_client(path: str) -> Any:
    """A chromadb client on a *private* system for ``path``.

    ``chromadb.PersistentClient`` shares one system (and its cached HNSW indexes) per
    path per process, so it cannot be re-opened to pick up another process's writes.
    This client owns its system: closing it drops the cached indexes, and a new one
    loads them fresh from disk.
    """
    from chromadb.api import ServerAPI
    from chromadb.api.client import Client
    from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, System
    from chromadb.telemetry.product import ProductTelemetryClient

    class _OwnedClient(Client):
        def __init__(self, settings: Settings) -> None:  # noqa: D401 - no shared-system registration
            self._own_system = System(settings)
            self._own_system.instance(ProductTelemetryClient)
            self._server = self._own_system.instance(ServerAPI)
            self._own_system.start()
            self.tenant, self.database = DEFAULT_TENANT, DEFAULT_DATABASE
            self._identifier = f"gatekeeper-private-{uuid.uuid4().hex}"
            self._closed = False

        @property
        def _system(self) -> Any:  # type: ignore[override]
            return self._own_system

        def close(self) -> None:
            if not self._closed:
                self._closed = True
                self._own_system.stop()

    settings = _local_settings()
    settings.persist_directory = path
    settings.is_persistent = True
    return _OwnedClient(settings)


class _ProcessLock:
    """``flock`` on ``<path>/gatekeeper-chroma.lock``; the file holds the write generation."""

    def __init__(self, directory: str) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None
        self._pid = -1

    def fd(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # re-open after fork: flock is per open file
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[int]:
        fd = self.fd()
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def generation(self) -> int:
        raw = os.pread(self.fd(), 8, 0)
        return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0

    def bump(self, gen: int) -> int:
        os.pwrite(self.fd(), struct.pack("<Q", gen + 1), 0)
        return gen + 1

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None


log = get_logger("gatekeeper.chroma_store")


class StoreWriteTimeout(RuntimeError):
    """A write into the memory store did not finish within the store's ``write_timeout_s`` (or an earlier one has
    not finished yet, so this one was not tried). The caller stops waiting; a gate quarantines the write as a
    store failure, for ``gatekeeper review retry-store-failures`` once the store answers again."""


class _WriterThread:
    """One daemon thread that runs a store's writes in order (``ChromaMemoryStore._within_deadline``). A daemon:
    a write blocked for ever must not keep the process from exiting, as a ``ThreadPoolExecutor``'s worker would
    (its threads are joined at exit). A forked child has none of its parent's threads: a store on a Chroma server
    starts its own there, the others refuse their writes (``ChromaMemoryStore._after_fork``)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, write: Callable[[], Any]) -> Future:
        future: Future = Future()
        self._jobs.put((future, write))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, write = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(write())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

    def shutdown(self) -> None:
        self._jobs.put(None)


class _Presence:
    """A shared ``flock`` on ``<path>/gatekeeper-chroma.open`` held while a store of this process has the embedded
    database open (one per process and directory, however many stores), so that an erasure can tell whether
    other processes have it open too (``elsewhere``): their memory may hold the erased texts, which chroma can
    write into its vector index files again at its next save of the index."""

    _lock = threading.Lock()
    #: (process id, path) -> [fd, stores of this process holding it]: a forked process opens its own (a flock is
    #: the open file's, which a fork shares, so the parent's would say no other process holds the database)
    _held: dict[tuple[int, str], list[int]] = {}
    #: the descriptor ``elsewhere`` holds an exclusive probe on, while it does: a child forked then closes its
    #: copy (``after_fork``), which would otherwise keep the probe's lock, and its own shared one would wait on it
    _probing: int | None = None

    @classmethod
    def after_fork(cls) -> None:
        """In a forked child, before anything else: a new lock (another thread of the parent may have held it,
        and the child would wait for ever), and the parent's probe closed."""
        cls._lock = threading.Lock()
        if cls._probing is not None:
            try:
                os.close(cls._probing)
            except OSError:
                pass
            cls._probing = None

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, PRESENCE_FILE)
        self._pid = os.getpid()
        with self._lock:
            held = self._held.get((self._pid, self.path))
            if held is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_SH)
                held = self._held[(self._pid, self.path)] = [fd, 0]
            held[1] += 1
        self._open = True

    def elsewhere(self) -> bool:
        """Whether another process has the database open: this process's lock is let go for a moment and an
        exclusive one tried."""
        with self._lock:
            held = self._held.get((os.getpid(), self.path))
            if held is not None:
                fcntl.flock(held[0], fcntl.LOCK_UN)
            try:
                probe = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                _Presence._probing = probe
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                finally:
                    _Presence._probing = None
                    os.close(probe)  # (closing it lets go of its lock)
                return False
            finally:
                if held is not None:
                    fcntl.flock(held[0], fcntl.LOCK_SH)

    def close(self) -> None:
        if not self._open or self._pid != os.getpid():
            return
        self._open = False
        with self._lock:
            held = self._held.get((self._pid, self.path))
            if held is not None:
                held[1] -= 1
                if held[1] <= 0:
                    del self._held[(self._pid, self.path)]
                    os.close(held[0])


#: every store of this process, reset in a forked child (``ChromaMemoryStore._after_fork``)
_OPEN_STORES: weakref.WeakSet = weakref.WeakSet()
#: what a forked child's stores let go of: the parent's clients, threads and futures, kept (never closed or dropped)
_LEFT_BY_PARENT: list[tuple] = []


#: why an embedded store cannot be used in a process forked after it was used (``ChromaMemoryStore._after_fork``)
EMBEDDED_AFTER_FORK = (
    "it is an embedded chromadb database opened before this process forked, and chromadb's embedded client does "
    "not work in a process forked after it started (its calls wait for ever): open the gate (or the store) in "
    "the worker, after the fork (gunicorn without --preload, multiprocessing's \"spawn\"), or keep the memories "
    "on a Chroma server (GATEKEEPER_CHROMA_URL)")
#: set in a forked child of a process that had an embedded or in-memory chromadb client open: a new one made
#: there waits for ever too, so it is refused
_EMBEDDED_BEFORE_FORK = False
_EMBEDDED_OPENED = False


def _reset_stores_after_fork() -> None:
    global _EMBEDDED_BEFORE_FORK
    _EMBEDDED_BEFORE_FORK = _EMBEDDED_BEFORE_FORK or _EMBEDDED_OPENED
    _Presence.after_fork()
    for store in list(_OPEN_STORES):
        store._after_fork()  # noqa: SLF001


os.register_at_fork(after_in_child=_reset_stores_after_fork)


#: how many memories past a page a semantic search fetches to find every one tied with the page's last
TIE_FETCH = 256


class ChromaMemoryStore(BaseStore):
    """LangGraph ``BaseStore`` backed by a chromadb collection.

    Args:
        path: directory of a persistent Chroma database (``chromadb.PersistentClient``).
        client: an existing chromadb client to use instead (the store does not close it).
        collection: collection name.  With neither ``path`` nor ``client`` the store uses
            an in-process ``EphemeralClient``; since all ephemeral clients of a process
            share one database, a random suffix is then added to the name so two such
            stores never see each other's data, and the collection is dropped on
            :meth:`close`.
        embed: ``texts -> vectors`` function (or a LangChain ``Embeddings`` object) used
            for semantic search.  Without it ``query=`` is ignored, as in
            ``InMemoryStore`` without an index.
        index_fields: value paths (LangGraph path syntax, e.g. ``"content"``,
            ``"facts[*].text"``, ``"$"`` for the whole value) whose text is embedded.
            Default: the ``"content"`` field when present, else the JSON of the value.
            A ``PutOp.index`` list overrides it per item; ``index=False`` skips embedding.
    """

    supports_ttl = False

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        client: Any | None = None,
        collection: str = DEFAULT_COLLECTION,
        embed: EmbedFn | Any | None = None,
        index_fields: list[str] | None = None,
        write_timeout_s: float = DEFAULT_STORE_WRITE_TIMEOUT_S,
    ) -> None:
        if path is not None and client is not None:
            raise ValueError("pass either path= or client=, not both")
        scratch = False
        ipc: _ProcessLock | None = None
        if client is not None:
            factory: Callable[[], Any] = lambda: client  # noqa: E731
            owns = False
        elif path is not None:
            p = str(Path(path).expanduser().resolve())
            factory = lambda: _owned_persistent_client(p)  # noqa: E731
            owns = True
            ipc = _ProcessLock(p)
        else:
            factory = lambda: chromadb.EphemeralClient(  # noqa: E731
                settings=_local_settings()
            )
            owns = True
            scratch = True
            collection = f"{collection}-{uuid.uuid4().hex[:12]}"
        self._setup(
            factory=factory,
            owns_client=owns,
            scratch_collection=scratch,
            collection=collection,
            embed=embed,
            index_fields=index_fields,
            write_timeout_s=write_timeout_s,
        )
        self._ipc = ipc
        #: the persistent database's directory (resolved), None for client=, ephemeral and server stores
        self.path = p if path is not None else None
        self._presence = _Presence(p) if path is not None else None
        self._ensure_collection()  # local modes: open eagerly so errors surface here

    @classmethod
    def from_server(
        cls,
        host: str = "localhost",
        port: int = 8000,
        *,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        collection: str = DEFAULT_COLLECTION,
        embed: EmbedFn | Any | None = None,
        index_fields: list[str] | None = None,
        write_timeout_s: float = DEFAULT_STORE_WRITE_TIMEOUT_S,
    ) -> ChromaMemoryStore:
        """A store on a Chroma server.  The HTTP client is created on first use."""

        def factory() -> Any:
            return chromadb.HttpClient(
                host=host,
                port=port,
                ssl=ssl,
                headers=headers,
                settings=Settings(anonymized_telemetry=False),
            )

        self = cls.__new__(cls)
        self._setup(
            factory=factory,
            owns_client=True,
            scratch_collection=False,
            collection=collection,
            embed=embed,
            index_fields=index_fields,
            write_timeout_s=write_timeout_s,
        )
        self.server_url = f"{'https' if ssl else 'http'}://{host}:{port}"
        return self

    @classmethod
    def from_settings(cls, settings: Any, *, embed: EmbedFn | Any | None = None) -> ChromaMemoryStore:
        """The memory store a deployment's :class:`~gatekeeper.settings.GatekeeperSettings` name: its Chroma
        server (``chroma_url``, with ``chroma_token`` as a bearer token) or, by default, the embedded database
        in ``data_dir/chroma`` (created private: it holds the committed memories' texts)."""
        from gatekeeper.files import private_dir

        if settings.chroma_url is None:
            return cls(path=private_dir(settings.chroma_path), collection=settings.chroma_collection, embed=embed,
                       write_timeout_s=settings.store_write_timeout_s)
        host, port, ssl = parse_chroma_url(settings.chroma_url)
        token = settings.chroma_token.get_secret_value() if settings.chroma_token is not None else None
        return cls.from_server(host, port, ssl=ssl, collection=settings.chroma_collection, embed=embed,
                               headers={"Authorization": f"Bearer {token}"} if token else None,
                               write_timeout_s=settings.store_write_timeout_s)

    def _setup(
        self,
        *,
        factory: Callable[[], Any],
        owns_client: bool,
        scratch_collection: bool,
        collection: str,
        embed: EmbedFn | Any | None,
        index_fields: list[str] | None,
        write_timeout_s: float = DEFAULT_STORE_WRITE_TIMEOUT_S,
    ) -> None:
        self._client_factory = factory
        self.path: str | None = None
        #: the Chroma server's URL in server mode, else None
        self.server_url: str | None = None
        self._client: Any | None = None
        self._collection: Any | None = None
        self._owns_client = owns_client
        self._scratch_collection = scratch_collection
        self.collection_name = collection
        self._embed_docs, self._embed_query = _embedders(embed)
        self.index_fields = list(index_fields) if index_fields is not None else None
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._last_stamp_us = 0
        self._dim: int | None = None
        self._closed = False
        self._ipc: _ProcessLock | None = None
        self._presence: _Presence | None = None
        #: how long a write into chromadb may take before the caller stops waiting (``StoreWriteTimeout``)
        self.write_timeout_s = float(write_timeout_s)
        self._writer: _WriterThread | None = None
        self._stuck: Future | None = None  # a write that passed its deadline and has not finished
        self._gen = -1  # write generation of the lock file our vector index reflects
        self._op_lock = threading.RLock()
        #: how often this store re-opened chroma to see other processes' writes
        self.reloads = 0
        #: why this store cannot be used in this process (set in a forked child when its client cannot be reopened)
        self._unusable: str | None = None
        _OPEN_STORES.add(self)

    def _after_fork(self) -> None:
        """In a forked child (``os.register_at_fork``), before anything else runs. chromadb's embedded client
        does not survive a fork: its threads stay in the parent, and the child's calls wait for ever, on the
        parent's client and (measured: most forks after the parent wrote) on a new one too. A child used the
        parent's client, and every write was quarantined at the store's deadline as if the disk were blocked.
        The store's writer thread and locks another thread may have held do not survive either. A store on a
        Chroma server opens its own connection in the child on first use; an embedded database, an in-memory one
        (its memories are the parent's) and a client given by the caller cannot be used there: the store says
        so at once. The parent's objects are kept, never closed or dropped (that could wait on the parent's
        threads or touch its files)."""
        _LEFT_BY_PARENT.append((self._client, self._collection, self._writer, self._stuck))
        self._client = self._collection = None
        self._writer = self._stuck = None
        self._gen = -1
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._op_lock = threading.RLock()
        if self._closed or self.server_url is not None:
            return
        if self.path is not None:
            self._unusable = EMBEDDED_AFTER_FORK
        elif not self._owns_client:
            self._unusable = ("its chromadb client was given by the caller before this process forked, and a "
                              "chromadb client does not work in a forked process: make the client (and the "
                              "store) in the process that uses it")
        elif self._scratch_collection:
            self._unusable = ("it is an in-memory chromadb database made before this process forked (its memories "
                              "stay in the parent's): give the store a path= or a server, or make it in the "
                              "process that uses it")

    @property
    def location(self) -> str:
        """Where the memories live, for status output (never a credential)."""
        if self.server_url is not None:
            return f"chroma server {self.server_url}, collection {self.collection_name}"
        if self.path is not None:
            return f"embedded chromadb {self.path}, collection {self.collection_name}"
        if self._scratch_collection:
            return f"in-memory chromadb (nothing kept), collection {self.collection_name}"
        return f"chromadb client given by the caller, collection {self.collection_name}"

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Any:
        """The chromadb client (created on first access for server mode)."""
        self._ensure_collection()
        return self._client

    @property
    def collection(self) -> Any:
        """The chromadb collection holding the items."""
        return self._ensure_collection()

    @property
    def semantic(self) -> bool:
        """Whether ``query=`` searches are ranked by embedding similarity."""
        return self._embed_docs is not None

    def _ensure_collection(self) -> Any:
        if self._closed:
            raise RuntimeError("ChromaMemoryStore is closed")
        if self._unusable is not None:
            raise RuntimeError(f"this ChromaMemoryStore cannot be used in this process: {self._unusable}")
        col = self._collection
        if col is not None:
            return col
        with self._open_lock:
            if self._collection is None:
                if self._ipc is not None:
                    # creating the database / collection is a write: one process at a time
                    with self._ipc.hold(exclusive=True):
                        self._gen = self._ipc.generation()
                        self._open_client()
                else:
                    self._open_client()
            return self._collection

    def _open_client(self) -> None:
        global _EMBEDDED_OPENED
        if self.server_url is None and self._owns_client:
            if _EMBEDDED_BEFORE_FORK:
                raise RuntimeError(f"a ChromaMemoryStore cannot be opened in this process: {EMBEDDED_AFTER_FORK}")
            _EMBEDDED_OPENED = True
        client = self._client_factory()
        try:
            col = client.get_or_create_collection(
                name=self.collection_name,
                metadata={"hnsw:space": "cosine", "gatekeeper_schema": _SCHEMA_VERSION},
                embedding_function=None,
            )
        except BaseException:
            if self._owns_client:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            raise
        self._client, self._collection = client, col

    def _reload(self) -> None:
        """Drop our chroma system (and its cached vector index) and open a fresh one."""
        self._drop_client()
        self._open_client()
        self.reloads += 1

    def _drop_client(self) -> None:
        """Close our chroma system (it saves its vector index as it closes); the next operation opens a new one."""
        old = self._client
        self._client = self._collection = None
        if old is not None:
            try:
                old.close()
            except Exception:  # noqa: BLE001 - the old system is being thrown away anyway
                pass

    @contextmanager
    def _coherent(self, *, write: bool, vector: bool) -> Iterator[Any]:
        """The collection, made consistent with other processes' writes (path mode).

        ``write``: exclusive lock, bump the generation. ``vector``: a semantic search
        that reads the HNSW index. Neither: SQLite-backed reads, always current.
        """
        col = self._ensure_collection()
        if self._ipc is None:
            yield col
            return
        if not (write or vector):
            with self._op_lock:  # a reload in another thread must not close it under us
                yield self._ensure_collection()
            return
        with self._op_lock, self._ipc.hold(exclusive=write):
            if self._closed:
                raise RuntimeError("ChromaMemoryStore is closed")
            gen = self._ipc.generation()
            if gen != self._gen or self._collection is None:
                self._reload()
            self._gen = self._ipc.bump(gen) if write else gen
            yield self._collection

    def count(self, namespace_prefix: tuple[str, ...] = ()) -> int:
        """Number of stored items, optionally under a namespace prefix."""
        with self._coherent(write=False, vector=False) as col:
            if not namespace_prefix:
                return int(col.count())
            res = col.get(where=_where(_prefix_conds(tuple(namespace_prefix))), include=[])
            return len(res["ids"])

    def scrub_history(self, keys: Iterable[tuple[tuple[str, ...], str]]) -> bool:
        """Take the past values of these items out of the embedded database's file (``gatekeeper forget``): what
        a delete or an overwrite left behind. The current value of an item still stored stays.

        A delete or an overwrite leaves the old text in chroma's SQLite file: in its operation log
        (``embeddings_queue``, kept until the vector index is next persisted), in the full-text index until its
        segments are merged, and in freed pages. Under the write lock this clears the logged metadata and
        document of each of the items' log rows that a later operation on the item replaced (the log's vectors
        stay, for the index to replay), merges the full-text index, and rewrites the file (VACUUM).
        The vector index files get the unused part of their capacity zeroed (``_zero_unused_capacity``: hnswlib
        saves memory it never cleared, which can hold any text the writing process handled), with this store's
        client closed; it and other processes' stores reopen at their next operation, as after any write. An
        index opened again gets its unused capacity from the opening process's memory and saves it at its next
        save, so a process that held an erased text can write it there again: erase from a process of its own
        (``gatekeeper forget``). A deleted item's vector stays in the index, marked deleted, until chroma
        rebuilds it.

        Returns False, changing nothing, when the store is not an embedded database of its own (a Chroma
        server, or a client given by the caller): the server's files are its operator's to scrub."""
        if self.path is None or self._ipc is None:
            return False
        ids = list(dict.fromkeys(_item_id(tuple(ns), key) for ns, key in keys))
        with self._coherent(write=True, vector=False):
            con = sqlite3.connect(os.path.join(self.path, "chroma.sqlite3"), timeout=30.0, isolation_level=None)
            try:
                con.execute("PRAGMA secure_delete=ON")
                con.execute("BEGIN IMMEDIATE")
                try:
                    for start in range(0, len(ids), 500):
                        chunk = ids[start:start + 500]
                        con.execute(
                            f"""UPDATE embeddings_queue SET metadata=NULL
                                WHERE id IN ({','.join('?' * len(chunk))}) AND metadata IS NOT NULL
                                AND EXISTS (SELECT 1 FROM embeddings_queue d WHERE d.topic = embeddings_queue.topic
                                            AND d.id = embeddings_queue.id AND d.seq_id > embeddings_queue.seq_id)""",
                            chunk)
                    con.execute("INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES('optimize')")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
                con.execute("VACUUM")
            finally:
                con.close()
            # closed first (a closing index saves its buffers once more). An index loaded from its files gets its
            # unused capacity from this process's memory, not from the files, and saves it whole at its next save:
            # it applies the log's deletes when it is next searched and saves itself then, so that is done here,
            # and the files cleaned once more after it closes; the client stays closed (the next operation opens
            # it; an erasing CLI process has ended by then)
            self._drop_client()
            self._zero_index_files()
            self._open_client()
            try:
                peek = self._collection.get(limit=1, include=["embeddings"])
                embs = peek.get("embeddings")
                if embs is not None and len(embs) > 0:
                    self._collection.query(query_embeddings=[list(embs[0])], n_results=1, include=[])
            finally:
                self._drop_client()
            self._zero_index_files()
        return True

    def open_elsewhere(self) -> bool | None:
        """Whether another process has this embedded database open (an agent, ``gatekeeper serve``); None for a
        store that is not one (a Chroma server, a client given in code)."""
        return self._presence.elsewhere() if self._presence is not None else None

    def _zero_index_files(self) -> None:
        """``_zero_unused_capacity`` of each vector index of this database (an embedded one: ``path`` is set)."""
        if self.path is None:
            return
        for header in Path(self.path).glob("*/header.bin"):
            _zero_unused_capacity(header.parent)

    def close(self) -> None:
        """Release the client if this store created it.  Idempotent."""
        if self._closed:
            return
        with self._write_lock, self._op_lock:
            self._closed = True
            client, self._client, self._collection = self._client, None, None
        if self._ipc is not None:
            self._ipc.close()
        if self._presence is not None:
            self._presence.close()
        if self._writer is not None:
            self._writer.shutdown()  # a blocked write keeps its thread; close does not wait for it
        if client is None or not self._owns_client:
            return
        try:
            if self._scratch_collection:
                client.delete_collection(self.collection_name)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> ChromaMemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ batch API

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        for op in ops:
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise ValueError(f"Unknown operation type: {type(op)}")
            validate_op_namespace(op)
            if isinstance(op, (SearchOp, ListNamespacesOp)):
                page_bounds(op)  # before any put of the batch is applied
            if isinstance(op, PutOp) and op.value is not None and not isinstance(op.value, Mapping):
                # BaseStore values are dicts (InMemoryStore refuses others too): a list or number stored here
                # came back as such and failed every filtered search of its namespace afterwards
                raise ValueError(f"a store value must be a dict (a mapping), not {type(op.value).__name__} "
                                 f"(namespace {tuple(op.namespace)!r}, key {op.key!r})")
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        get_ix: list[int] = []
        for i, op in enumerate(ops):
            if isinstance(op, PutOp):
                k = (tuple(op.namespace), str(op.key))
                puts.pop(k, None)  # last put wins, and counts as the latest write
                puts[k] = op
            elif isinstance(op, GetOp):
                get_ix.append(i)

        # Serialise and embed outside every lock (embedding may be slow).
        prepared = self._prepare_puts(puts) if puts else None
        vector = self._embed_query is not None and any(
            isinstance(op, SearchOp) and op.query for op in ops
        )
        with self._coherent(write=bool(puts), vector=vector) as col:
            # Reads see the state before this batch's writes (as in InMemoryStore).
            if get_ix:
                found = self._fetch_items(
                    col, [(tuple(ops[i].namespace), str(ops[i].key)) for i in get_ix]
                )
                for i in get_ix:
                    results[i] = found.get((tuple(ops[i].namespace), str(ops[i].key)))
            for i, op in enumerate(ops):
                if isinstance(op, SearchOp):
                    results[i] = self._search(col, op)
                elif isinstance(op, ListNamespacesOp):
                    results[i] = self._list_namespaces(col, op)

            if prepared is not None:
                self._commit_puts(col, *prepared)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    # ------------------------------------------------------------------ reads

    def _fetch_items(
        self, col: Any, keys: Sequence[tuple[tuple[str, ...], str]]
    ) -> dict[tuple[tuple[str, ...], str], Item]:
        ids = list(dict.fromkeys(_item_id(ns, key) for ns, key in keys))
        res = col.get(ids=ids, include=["metadatas", "documents"])
        out: dict[tuple[tuple[str, ...], str], Item] = {}
        for meta, doc in zip(res["metadatas"] or [], res["documents"] or [], strict=True):
            ns, key = _ns_of(meta), meta["key"]
            out[(ns, key)] = _to_item(meta, doc)
        return out

    def _search(self, col: Any, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        flt = op.filter or None
        if op.query and self._embed_query is not None:
            return self._semantic_search(col, op, prefix, flt)

        base = _prefix_conds(prefix)
        if flt is None:
            # Order on metadata alone, then read documents only for the page.
            res = col.get(where=_where(base), include=["metadatas"])
            rows = sorted(
                zip(res["ids"], res["metadatas"] or [], strict=True),
                key=lambda r: _recency_key(r[1]),
            )
            page = rows[op.offset : op.offset + op.limit]
            if not page:
                return []
            docs = col.get(ids=[r[0] for r in page], include=["documents"])
            doc_by_id = dict(zip(docs["ids"], docs["documents"] or [], strict=True))
            return [
                _to_search_item(meta, doc_by_id[id_], None)
                for id_, meta in page
                if id_ in doc_by_id  # deleted between the two reads
            ]

        res = col.get(where=_where(base), include=["metadatas", "documents"])
        rows = sorted(
            zip(res["metadatas"] or [], res["documents"] or [], strict=True),
            key=lambda r: _recency_key(r[0]),
        )
        matched = []
        for meta, doc in rows:
            value = json.loads(doc)
            if _matches(value, flt):
                matched.append((meta, value))
        return [
            _to_search_item(meta, value, None, parsed=True)
            for meta, value in matched[op.offset : op.offset + op.limit]
        ]

    def _semantic_search(
        self,
        col: Any,
        op: SearchOp,
        prefix: tuple[str, ...],
        flt: dict[str, Any] | None,
    ) -> list[SearchItem]:
        assert self._embed_query is not None
        qvec = [float(x) for x in self._embed_query(op.query)]
        want = op.offset + op.limit
        base = _prefix_conds(prefix)
        ranked: list[tuple[float, dict, dict]] = []  # (score, meta, value)
        if want > 0:
            where = _where(base + [{"has_vec": True}])
            total = col.count()
            # one past the page: the memories tied with its last one in score are fetched too (below)
            n = want + 1 if flt is None else max(4 * want, 32)
            while True:
                n_req = max(1, min(n, total))
                try:
                    res = col.query(
                        query_embeddings=[qvec],
                        n_results=n_req,
                        where=where,
                        include=["metadatas", "documents", "distances"],
                    )
                except Exception as exc:  # dimension mismatch and the like
                    raise _dim_error(exc, len(qvec)) from exc
                ids = res["ids"][0]
                ranked = []
                for meta, doc, dist in zip(
                    res["metadatas"][0], res["documents"][0], res["distances"][0], strict=True
                ):
                    value = json.loads(doc)
                    if flt is None or _matches(value, flt):
                        ranked.append((1.0 - float(dist), meta, value))
                # enough once a memory past the page scores below the page's last: every memory tied with that
                # one is in hand. Chroma returns tied memories in no fixed order, and the page was cut among
                # them, so a paged search returned some twice and skipped others. At most TIE_FETCH past the
                # page (thousands of tied memories made each page a search of them all; chroma's approximate
                # index does not return every one of so many ties anyway)
                if (len(ranked) > want and ranked[-1][0] < ranked[want - 1][0]) or len(ids) < n_req \
                        or n_req >= total or (len(ranked) >= want and n_req >= want + TIE_FETCH):
                    break
                n *= 4
            ranked.sort(key=lambda r: (-r[0], r[1]["ns"], r[1]["key"]))  # ties in a fixed order
        kept = ranked[op.offset : op.offset + op.limit] if want > 0 else []
        out = [_to_search_item(meta, value, score, parsed=True) for score, meta, value in kept]
        if len(out) < op.limit:
            # InMemoryStore corner case: fill with unembedded matches, score None.
            res = col.get(where=_where(base + [{"has_vec": False}]), include=["metadatas", "documents"])
            rows = sorted(
                zip(res["metadatas"] or [], res["documents"] or [], strict=True),
                key=lambda r: _recency_key(r[0]),
            )
            for meta, doc in rows:
                if len(out) >= op.limit:
                    break
                value = json.loads(doc)
                if flt is None or _matches(value, flt):
                    out.append(_to_search_item(meta, value, None, parsed=True))
        return out

    def _list_namespaces(self, col: Any, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conds: list[dict[str, Any]] = []
        min_depth = 0
        for cond in op.match_conditions or ():
            path = tuple(cond.path)
            min_depth = max(min_depth, len(path))
            if cond.match_type == "prefix":
                conds += [{f"ns_{i}": lab} for i, lab in enumerate(path) if lab != "*"]
            elif cond.match_type == "suffix":
                conds += [
                    {f"nsr_{i}": lab} for i, lab in enumerate(reversed(path)) if lab != "*"
                ]
            else:
                raise ValueError(f"Unsupported match type: {cond.match_type}")
        if min_depth:
            conds.append({"ns_depth": {"$gte": min_depth}})
        res = col.get(where=_where(conds), include=["metadatas"])
        namespaces = {_ns_of(meta) for meta in res["metadatas"] or []}
        namespaces = {
            ns
            for ns in namespaces
            if all(_does_match(c, ns) for c in op.match_conditions or ())
        }
        if op.max_depth is not None:
            namespaces = {ns[: op.max_depth] for ns in namespaces}
        return sorted(namespaces)[op.offset : op.offset + op.limit]

    # ------------------------------------------------------------------ writes

    def _apply_puts(self, col: Any, puts: dict[tuple[tuple[str, ...], str], PutOp]) -> None:
        self._commit_puts(col, *self._prepare_puts(puts))

    def _prepare_puts(self, puts: dict[tuple[tuple[str, ...], str], PutOp]) -> tuple:
        upserts = [(k, op) for k, op in puts.items() if op.value is not None]
        deletes = [_item_id(ns, key) for (ns, key), op in puts.items() if op.value is None]

        docs = [json.dumps(op.value, ensure_ascii=False) for _, op in upserts]
        vectors: list[list[float] | None] = [None] * len(upserts)
        if self._embed_docs is not None:
            texts = [self._index_text(op) for _, op in upserts]
            uniq = list(dict.fromkeys(t for t in texts if t is not None))
            if uniq:
                embs = self._embed_docs(uniq)
                if len(embs) != len(uniq):
                    raise ValueError(
                        f"embed returned {len(embs)} vectors for {len(uniq)} texts"
                    )
                by_text = {t: [float(x) for x in e] for t, e in zip(uniq, embs, strict=True)}
                dims = {len(v) for v in by_text.values()}
                if len(dims) != 1:
                    raise ValueError(f"embed returned vectors of mixed dimensions {dims}")
                vectors = [by_text[t] if t is not None else None for t in texts]
        return upserts, deletes, docs, vectors

    def _commit_puts(self, col: Any, upserts: list, deletes: list[str], docs: list[str],
                     vectors: list[list[float] | None]) -> None:
        with self._write_lock:
            if self._closed:
                raise RuntimeError("ChromaMemoryStore is closed")
            self._within_deadline(lambda: self._write_to(col, upserts, deletes, docs, vectors))

    def _within_deadline(self, write: Callable[[], None]) -> None:
        """Run ``write`` (chromadb calls) on this store's writer thread and wait for it at most ``write_timeout_s``:
        after a disk error (a full disk) chromadb's upsert was seen to block for ever, and the agent's ``put`` with
        it, holding the key's lock. Past the deadline ``StoreWriteTimeout`` is raised (the gate quarantines the
        write as a store failure); while that write has not finished, later ones are refused at once rather than
        queued behind it. Called under ``_write_lock``."""
        stuck = self._stuck
        if stuck is not None:
            if not stuck.done():
                raise StoreWriteTimeout(
                    f"an earlier write into the memory store has not finished after more than {self.write_timeout_s:g}"
                    " s (chromadb is blocked: a full or failing disk?); this write was not tried")
            self._stuck = None
            log.warning("chroma_store.blocked_write_finished",
                        detail="a write that passed its deadline finished late; the gate quarantined it as a store "
                               "failure: `gatekeeper review retry-store-failures` writes it again")
        if self._writer is None:
            self._writer = _WriterThread("gatekeeper-chroma-write")
        future = self._writer.submit(write)
        try:
            future.result(timeout=self.write_timeout_s)
        except FutureTimeout:
            self._stuck = future
            log.error("chroma_store.write_timeout", timeout_s=self.write_timeout_s, path=self.path,
                      detail="chromadb did not finish a write in time (a full or failing disk?); writes are "
                             "quarantined as store failures until it does")
            raise StoreWriteTimeout(
                f"a write into the memory store did not finish within {self.write_timeout_s:g} s (chromadb is "
                "blocked: a full or failing disk?); GATEKEEPER_STORE_WRITE_TIMEOUT_S sets the limit") from None

    def _write_to(self, col: Any, upserts: list, deletes: list[str], docs: list[str],
                  vectors: list[list[float] | None]) -> None:
        """The chromadb calls of ``_commit_puts`` (on the writer thread)."""
        if upserts:
            ids = [_item_id(ns, key) for (ns, key), _ in upserts]
            prev = col.get(ids=ids, include=["metadatas"])
            created = {
                id_: meta
                for id_, meta in zip(prev["ids"], prev["metadatas"] or [], strict=True)
            }
            dim = self._vector_dim(col, vectors)
            placeholder = [1.0] + [0.0] * (dim - 1)
            metas, embeddings = [], []
            for (id_, ((ns, key), _op)), vec in zip(
                zip(ids, upserts, strict=True), vectors, strict=True
            ):
                now_us = self._stamp()
                old = created.get(id_)
                created_us = _us_of(old, "created_at") if old else now_us
                metas.append(_metadata(ns, key, created_us, now_us, vec is not None))
                embeddings.append(vec if vec is not None else placeholder)
            step = max(1, int(self._client.get_max_batch_size()))
            for s in range(0, len(ids), step):
                try:
                    col.upsert(
                        ids=ids[s : s + step],
                        embeddings=embeddings[s : s + step],
                        documents=docs[s : s + step],
                        metadatas=metas[s : s + step],
                    )
                except Exception as exc:
                    raise _dim_error(exc, dim) from exc
        if deletes:
            col.delete(ids=deletes)

    def _index_text(self, op: PutOp) -> str | None:
        value = op.value
        assert value is not None
        if op.index is False:
            return None
        if op.index is None and self.index_fields is None:
            if value.get("content") is not None:
                texts = get_text_at_path(value, "content")
                if texts:
                    return "\n".join(texts)
            return get_text_at_path(value, "$")[0]
        paths = self.index_fields if op.index is None else list(op.index)
        texts = []
        for p in paths:
            texts += get_text_at_path(value, p if p == "$" else tokenize_path(p))
        return "\n".join(texts) if texts else None

    def _vector_dim(self, col: Any, vectors: list[list[float] | None]) -> int:
        for v in vectors:
            if v is not None:
                self._dim = len(v)
                return self._dim
        if self._dim is None:
            peek = col.get(limit=1, include=["embeddings"])
            embs = peek.get("embeddings")
            if embs is not None and len(embs) > 0:
                self._dim = len(embs[0])
            elif self._embed_docs is not None:
                self._dim = len(self._embed_docs(["dimension probe"])[0])
            else:
                self._dim = 1
        return self._dim

    def _stamp(self) -> int:
        """Strictly increasing epoch microseconds (so newest-first order is total)."""
        now = time.time_ns() // 1000
        self._last_stamp_us = max(now, self._last_stamp_us + 1)
        return self._last_stamp_us


# ---------------------------------------------------------------------- helpers


def _embedders(
    embed: Any,
) -> tuple[Callable[[list[str]], list[list[float]]] | None, Callable[[str], list[float]] | None]:
    if embed is None:
        return None, None
    if hasattr(embed, "embed_documents") and hasattr(embed, "embed_query"):
        return embed.embed_documents, embed.embed_query
    if not callable(embed):
        raise TypeError("embed must be a callable texts -> vectors or an Embeddings object")
    return (lambda texts: embed(texts)), (lambda text: embed([text])[0])


#: the layout of an HNSW index's ``header.bin`` in chroma's hnswlib (version, then hnswlib's own header):
#: version, offset_level0, max_elements, cur_element_count, size_data_per_element, ...
_HNSW_HEADER = struct.Struct("<I5Q")
#: bytes per element in ``length.bin`` (hnswlib's link-list size, an unsigned int)
_LINK_LIST_SIZE = 4


def _zero_unused_capacity(index_dir: Path) -> None:
    """Zero the part of ``data_level0.bin`` and ``length.bin`` past the index's elements. hnswlib allocates the
    whole capacity without clearing it and saves it whole, so the unused part holds whatever the writing
    process's memory held there: documents, metadata and keys of any item it handled, erased or not (in
    ``length.bin``, one 4-byte link-list size per element of the capacity, too). The elements themselves are
    cleared when added. A header that does not read as expected is left alone (another chroma version)."""
    try:
        head = (index_dir / "header.bin").read_bytes()
        _version, _offset, max_elements, count, per_element, *_ = _HNSW_HEADER.unpack_from(head)
    except (OSError, struct.error):
        return
    if not (0 < per_element and count <= max_elements):
        return
    _zero_tail(index_dir / "data_level0.bin", count * per_element, max_elements * per_element)
    _zero_tail(index_dir / "length.bin", count * _LINK_LIST_SIZE, max_elements * _LINK_LIST_SIZE)


def _zero_tail(path: Path, used: int, expected_size: int) -> None:
    """Zero ``path`` from ``used`` on, when the file is the size the header says (else left alone)."""
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size != expected_size or used >= size:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        zeros = bytes(min(size - used, 1 << 20))
        pos = used
        while pos < size:
            pos += os.pwrite(fd, zeros[:size - pos], pos)
        os.fsync(fd)
    finally:
        os.close(fd)


def _item_id(namespace: tuple[str, ...], key: str) -> str:
    raw = json.dumps([list(namespace), key], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _prefix_conds(prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{f"ns_{i}": label} for i, label in enumerate(prefix)]


def _where(conds: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not conds:
        return None
    if len(conds) == 1:
        return conds[0]
    return {"$and": conds}


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _metadata(
    ns: tuple[str, ...], key: str, created_us: int, updated_us: int, has_vec: bool
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "ns": json.dumps(list(ns), ensure_ascii=False),
        "ns_depth": len(ns),
        "key": key,
        "created_at": _dt(created_us).isoformat(),
        "updated_at": _dt(updated_us).isoformat(),
        "created_at_ts": created_us / 1e6,
        "updated_at_ts": updated_us / 1e6,
        "created_at_us": created_us,
        "updated_at_us": updated_us,
        "has_vec": has_vec,
        "gk_schema": _SCHEMA_VERSION,
    }
    for i, label in enumerate(ns):
        meta[f"ns_{i}"] = label
    for i, label in enumerate(reversed(ns)):
        meta[f"nsr_{i}"] = label
    return meta


def _us_of(meta: dict[str, Any], field: str) -> int:
    us = meta.get(f"{field}_us")
    if isinstance(us, int):
        return us
    dt = datetime.fromisoformat(meta[field])
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _ns_of(meta: dict[str, Any]) -> tuple[str, ...]:
    return tuple(json.loads(meta["ns"]))


def _recency_key(meta: dict[str, Any]) -> tuple[int, str, str]:
    return (-_us_of(meta, "updated_at"), meta["ns"], meta["key"])


def _to_item(meta: dict[str, Any], doc: str) -> Item:
    return Item(
        value=json.loads(doc),
        key=meta["key"],
        namespace=_ns_of(meta),
        created_at=_dt(_us_of(meta, "created_at")),
        updated_at=_dt(_us_of(meta, "updated_at")),
    )


def _to_search_item(
    meta: dict[str, Any], doc: Any, score: float | None, *, parsed: bool = False
) -> SearchItem:
    return SearchItem(
        namespace=_ns_of(meta),
        key=meta["key"],
        value=doc if parsed else json.loads(doc),
        created_at=_dt(_us_of(meta, "created_at")),
        updated_at=_dt(_us_of(meta, "updated_at")),
        score=score,
    )


def _dim_error(exc: Exception, dim: int) -> Exception:
    if "dimension" in str(exc).lower():
        return ValueError(
            f"embedding dimension {dim} does not match the vectors already stored in this "
            f"chroma collection ({exc}); a collection written without embed= (or with another "
            "embedder) cannot be reused with this one: pick another collection name"
        )
    return exc


def _matches(value: Any, flt: dict[str, Any]) -> bool:
    if not isinstance(value, Mapping):  # a value stored before dicts were required: no field to match
        return False
    return all(_compare_values(value.get(k), fv) for k, fv in flt.items())


# Same semantics as langgraph.store.memory's private helpers (copied, not imported, so
# a langgraph upgrade cannot silently change them), except that ordering operators on
# missing or non-numeric values do not match instead of raising.


def _does_match(match_condition: MatchCondition, key: tuple[str, ...]) -> bool:
    match_type = match_condition.match_type
    path = match_condition.path
    if len(key) < len(path):
        return False
    if match_type == "prefix":
        pairs = zip(key, path, strict=False)
    elif match_type == "suffix":
        pairs = zip(reversed(key), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {match_type}")
    return all(p == "*" or k == p for k, p in pairs)


def _compare_values(item_value: Any, filter_value: Any) -> bool:
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(
                _apply_operator(item_value, op_key, op_value)
                for op_key, op_value in filter_value.items()
            )
        if not isinstance(item_value, dict):
            return False
        return all(_compare_values(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, (list, tuple)):
        return (
            isinstance(item_value, (list, tuple))
            and len(item_value) == len(filter_value)
            and all(
                _compare_values(iv, fv) for iv, fv in zip(item_value, filter_value, strict=False)
            )
        )
    return item_value == filter_value


def _apply_operator(value: Any, operator: str, op_value: Any) -> bool:
    if operator == "$eq":
        return value == op_value
    if operator == "$ne":
        return value != op_value
    if operator not in ("$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"Unsupported operator: {operator}")
    try:
        a, b = float(value), float(op_value)
    except (TypeError, ValueError):
        return False
    if operator == "$gt":
        return a > b
    if operator == "$gte":
        return a >= b
    if operator == "$lt":
        return a < b
    return a <= b
