"""Private files: what the gate writes holds memory texts, reviewers' password hashes and audit trails.

A data directory the gate creates is ``0700``; the registry / accounts databases and the ledger are created
``0600`` (SQLite gives its -wal and -shm files the database's mode). Existing files and directories keep the
mode an operator gave them.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing directory is left as it is."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
    return path


def private_file(path: str | Path) -> Path:
    """Create an empty ``path`` with mode 0600 unless it exists (its directory via ``private_dir``)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    return path
