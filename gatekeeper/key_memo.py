"""Artifact keys remembered under a fingerprint of what they are computed from.

The classifier's and the screen's cache keys are hashes of their training texts: the corpus rows the policy
selects, plus the policy's exemplars. Computing one means parsing the whole corpus (about 28,000 JSON lines,
0.4-0.5 s on two cores), and every process start paid that to find artifacts it then only loads: a sixth of
the cold start. A key is now remembered (``$GATEKEEPER_CACHE/keys/<kind>/<fingerprint>``) under a
fingerprint of everything it is computed from: the corpus file's bytes (13 ms to hash), the policy's
categories and exemplars, the training settings, and the source files of the code that selects the texts
and hashes them. A change to any of these is another fingerprint, so the key is computed again the long way
and remembered.

A remembered key is only used to find an artifact to *load*. Training a classifier or screen, and deriving
the int8 encoder, compute the key from the texts themselves. A memo that cannot be read (missing, damaged, a
read-only cache) costs the long way, never a wrong artifact: a key that is not 20 hex digits is ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from gatekeeper.files import replace_text
from gatekeeper.settings import cache_root

MEMO_VERSION = "key-memo-1"
_KEY = re.compile(r"[0-9a-f]{20}")


def fingerprint(parts: Sequence[str | bytes]) -> str:
    """A sha256 of ``parts``, each length-prefixed (so no two lists of parts run together into the same bytes)."""
    h = hashlib.sha256(MEMO_VERSION.encode())
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else bytes(part)
        h.update(f"\n{len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's bytes. Kept for the process while the file's size, inode, modification and
    change times stay the same: the classifier's and the screen's keys both read the corpus at start-up."""
    st = os.stat(path)
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


@lru_cache(maxsize=16)
def _file_digest(path: str, *_stamp: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_digest(modules: Sequence[ModuleType]) -> str:
    """A digest of the source files of ``modules``: code that changes which texts are selected, or how they are
    hashed, changes the fingerprint. Where a module's source cannot be read (no file: a frozen or zipped
    install), the digest is new on every call, so its keys are always computed the long way."""
    try:
        return fingerprint([Path(getattr(m, "__file__", None)).read_bytes() for m in modules])
    except (TypeError, OSError):
        return f"unreadable source {uuid.uuid4()}"


def memo_path(kind: str, parts: Sequence[str | bytes]) -> Path:
    return cache_root() / "keys" / kind / fingerprint(parts)[:32]


def remembered_key(kind: str, parts: Sequence[str | bytes], compute: Callable[[], str]) -> str:
    """The key remembered for ``parts``, or ``compute()`` (remembered for next time)."""
    path = memo_path(kind, parts)
    try:
        key = path.read_text(encoding="ascii").strip()
        if _KEY.fullmatch(key):
            return key
    except (OSError, ValueError):
        pass  # not remembered yet, unreadable or damaged: the long way
    key = compute()
    try:
        replace_text(path, key + "\n")
    except OSError:
        pass  # a read-only cache: the long way again next time
    return key
