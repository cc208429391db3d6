"""Keep the process's sqlite3 adapters as they were across an import that changes them.

guardrails-ai (the rule layer's validator framework) registers, when imported, a process-wide sqlite3 adapter
that writes every ``datetime`` as an integer of Unix seconds (``guardrails.call_tracing.sqlite_trace_handler``,
for its own trace log, which the gate does not use). Every other SQLite user in the process changed with it:
LangGraph's ``SqliteStore`` wrote a memory's TTL expiry as an integer, which SQLite sorts before any text, so
its ``sweep_ttl`` deleted every memory with a TTL, expired or not, in any program that imported gatekeeper.

It replaces the converter of ``TIMESTAMP`` columns too (read with ``detect_types=PARSE_DECLTYPES``, a host program's
timestamps became a ValueError). ``kept_sqlite_adapters()`` puts both registries, adapters and converters, back as
they were before the block.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

__all__ = ["kept_sqlite_adapters"]


@contextmanager
def kept_sqlite_adapters() -> Iterator[None]:
    """Run the block (an import), then restore ``sqlite3.adapters`` and ``sqlite3.converters`` to what they held
    before it."""
    adapters, converters = dict(sqlite3.adapters), dict(sqlite3.converters)
    try:
        yield
    finally:
        sqlite3.adapters.clear()
        sqlite3.adapters.update(adapters)
        sqlite3.converters.clear()
        sqlite3.converters.update(converters)
