"""Files the gate writes: private ones, and cache artifacts published whole.

Private files: what the gate writes holds memory texts, reviewers' password hashes and audit trails.

A data directory the gate creates is ``0700``; the registry / accounts databases and the ledger are created
``0600`` (SQLite gives its -wal and -shm files the database's mode). Existing files and directories keep the
mode an operator gave them.

Artifacts (the classifier, its int8 derivation, the screen) are written into a temporary directory beside
their place and renamed into it (``staged_dir``), so a run that is killed never leaves half an artifact.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``: ``os.write`` may write less than asked (a nearly full disk, a signal)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_private_file(path: str | Path, data: bytes, *, new: bool = False) -> None:
    """Write ``data`` as the whole of ``path`` (mode 0600 when created) and fsync it; ``new``: refuse a file that
    exists (FileExistsError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if new else os.O_TRUNC) | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_text(path: str | Path, text: str) -> None:
    """Make ``text`` the whole of ``path`` (its directory made if missing) through a temporary file renamed over
    it, so a reader sees the old content or the new, never part of one. For small cache files (remembered
    digests and keys); not fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries durable (a file created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


@contextmanager
def private_dir_undone_on_error(path: str | Path) -> Iterator[Path]:
    """``private_dir(path)`` for the block: when it raises, the directories made here (``path`` and its missing
    parents) are removed again if they are still empty, so that a refused start leaves no empty data directory
    behind (a mistyped path would otherwise look like a fresh deployment). One that holds anything (files this
    block wrote, another process's) is left as it is: removing only empty ones can never lose data."""
    path = Path(path)
    missing = []
    for d in (path, *path.parents):
        if os.path.lexists(d):
            break
        missing.append(d)  # deepest first
    private_dir(path)
    try:
        yield path
    except BaseException:
        for d in missing:
            try:
                os.rmdir(d)
            except OSError:  # not empty (or gone): leave it, and what holds it
                break
        raise


def private_file(path: str | Path) -> Path:
    """Create an empty ``path`` with mode 0600 unless it exists (its directory via ``private_dir``)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    return path


@contextmanager
def exclusive_lock(path: str | Path, *, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600). It excludes other processes, and other threads of
    this one (each call takes it on a descriptor of its own). ``waiting`` is called once if the lock is held
    elsewhere, before waiting for it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def staged_dir(target: str | Path, *, replace: bool = False,
               complete: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; when the block succeeds, rename it to ``target``.

    ``replace``: an existing ``target`` is swapped out (moved aside, then deleted). Otherwise, when another
    writer published ``target`` first, theirs is kept, unless ``complete(target)`` says it is not whole (then
    the rename error is raised). The temporary directory is always removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        yield tmp
        if replace and target.exists():
            trash: Path | None = target.parent / f".old-{target.name}-{os.getpid()}-{time.monotonic_ns()}"
            try:
                os.rename(target, trash)
            except FileNotFoundError:
                trash = None
            os.rename(tmp, target)
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
        else:
            try:
                os.rename(tmp, target)
            except OSError:  # another writer published the same artifact first: keep theirs
                if complete is not None and not complete(target):
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
