"""A consistent copy of a data directory while gates keep running (``gatekeeper backup DEST``).

What a copy must hold together: every proposal the registry copy says was committed and applied is in the
memories copy, and every row it says was ledgered has its entry in the ledger copy. Copying the three with
``cp`` while agents write breaks both: a commit applied after the memories were copied and before the registry
was is marked applied in the copy and missing from its memories; a ledger copied before the registry misses
entries the registry copy marks as written. So:

1. the embedded memory store's inter-process lock is taken exclusively (``chroma_store``: every gate's store
   write takes it, so none happens until the copy is done; semantic searches wait too);
2. the registry is copied with SQLite's online backup (a consistent snapshot, whatever other processes do);
3. the memories directory is copied, and the lock released. A row the snapshot shows decided but not applied
   is finished by ``recover()`` when a gate first opens the copy, as after a crash;
4. the ledger (its archives and the live file, one consistent cut) is copied last, so it holds every entry the
   registry copy marks as ledgered; entries written after the snapshot are there too, for rows recovery marks.

Memories on a Chroma server are not copied (back the server up with its own tools); the copy says so.
Restoring is copying the backup into place as the data directory: the first gate to open it repairs and
recovers what the copy caught half done. ``manifest.json`` records what was copied and the ledger's head.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gatekeeper.files import private_dir
from gatekeeper.ledger import AuditLedger
from gatekeeper.models import utcnow
from gatekeeper.settings import GatekeeperSettings

#: what a backup directory holds besides the data directory's own files
MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    """The backup could not be made; nothing usable was left at the destination."""


class BackupReport(BaseModel):
    """What ``backup_data_dir`` copied (also written as ``manifest.json`` in the copy)."""

    model_config = ConfigDict(frozen=True)

    source: str
    destination: str
    at: datetime
    proposals: dict[str, int]
    ledger_files: int
    ledger_last_seq: int
    ledger_last_hash: str
    memories: str  # "copied", or why not ("on the Chroma server at ...", "no memories directory")
    memories_bytes: int


def backup_data_dir(settings: GatekeeperSettings, destination: str | Path) -> BackupReport:
    """Copy ``settings``' data directory to ``destination`` (a new or empty directory) consistently while gates
    run on it (see the module docstring). Raises :class:`BackupError` for a destination that is not empty or a
    source that is not a data directory."""
    from gatekeeper.chroma_store import LOCK_FILE, _ProcessLock
    from gatekeeper.registry import ProposalRegistry

    source = Path(settings.data_dir)
    dest = Path(destination)
    if not settings.registry_path.is_file():
        raise BackupError(f"{source} is not a gatekeeper data directory (no {settings.registry_path.name})")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory: a backup goes to a new place")
    if dest.resolve() == source.resolve() or source.resolve() in dest.resolve().parents:
        raise BackupError(f"{dest} is inside the data directory {source}: choose a place outside it")
    private_dir(dest)
    chroma = settings.chroma_path
    embedded = settings.chroma_url is None and chroma.is_dir()
    try:
        lock = _ProcessLock(str(chroma)).hold(exclusive=True) if embedded else nullcontext()
        with lock:
            registry = ProposalRegistry(settings.registry_path)
            try:
                target = sqlite3.connect(dest / settings.registry_path.name)
                try:
                    registry._con().backup(target)  # noqa: SLF001 - SQLite's online backup needs the connection
                    counts = {state: 0 for state in registry.counts()}
                    counts.update(target.execute("SELECT state, COUNT(*) FROM proposals GROUP BY state").fetchall())
                finally:
                    target.close()
                os.chmod(dest / settings.registry_path.name, 0o600)
            finally:
                registry.close()
            copied = 0
            if embedded:
                shutil.copytree(chroma, dest / chroma.name, ignore=shutil.ignore_patterns(LOCK_FILE))
                copied = sum(f.stat().st_size for f in (dest / chroma.name).rglob("*") if f.is_file())
        head = AuditLedger(settings.ledger_path).copy_to(dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # half a backup is worse than none: it would be trusted
        raise
    if settings.chroma_url is not None:
        memories = f"not copied: on the Chroma server at {settings.chroma_url} (back it up with its own tools)"
    else:
        memories = "copied" if embedded else "no memories directory"
    report = BackupReport(source=str(source), destination=str(dest), at=utcnow(), proposals=counts,
                          ledger_files=head[2], ledger_last_seq=head[0], ledger_last_hash=head[1],
                          memories=memories, memories_bytes=copied)
    (dest / MANIFEST).write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return report


def read_manifest(path: str | Path) -> BackupReport:
    """The manifest of a backup directory."""
    return BackupReport.model_validate(json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8")))


__all__ = ["MANIFEST", "BackupError", "BackupReport", "backup_data_dir", "read_manifest"]
