"""Sessions, CSRF tokens and the server secret of the web review queue.

* The session is a signed cookie (itsdangerous, the secret lives in the data
  directory as ``web_secret``, mode 0600): ``{"uid", "sk", "csrf"}``. It is
  HttpOnly and SameSite=Strict, expires after ``max_age`` seconds without use (the
  app signs it again as it is used, at most every few minutes) and at the latest a
  fixed time after login (``"at"``), and is checked against the account on every
  request: a disabled account or a changed password ends it.
* Every POST form carries the session's CSRF token (compared in constant time).
  The login form has one too: an anonymous session is set when the form is shown,
  and a new session (new token) is issued on login.
* Failed logins are throttled per account name.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from gatekeeper.log_setup import get_logger

log = get_logger("gatekeeper.web")

SESSION_COOKIE = "gk_session"
SECRET_FILE = "web_secret"


def load_or_create_secret(data_dir: str | Path) -> bytes:
    """The server's session secret: created once (0600) in the data directory."""
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("web.secret_permissions_fixed", path=str(path), mode=oct(mode))
            os.chmod(path, 0o600)
        secret = path.read_bytes().strip()
        if len(secret) < 32:
            raise RuntimeError(f"{path} holds no usable secret (delete it to create a new one)")
        return secret
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode("ascii"))
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes().strip()


class SessionCodec:
    def __init__(self, secret: bytes, *, max_age: int = 8 * 3600):
        self.serializer = URLSafeTimedSerializer(secret, salt="gatekeeper.web.session")
        self.max_age = max_age

    def dumps(self, data: dict[str, Any]) -> str:
        return self.serializer.dumps(data)

    def loads(self, value: str | None) -> dict[str, Any] | None:
        return self.loads_dated(value)[0]

    def loads_dated(self, value: str | None) -> tuple[dict[str, Any] | None, datetime | None]:
        """The data and when it was signed (UTC), or (None, None) when the value is not ours or has expired."""
        if not value or len(value) > 4096:
            return None, None
        try:
            data, signed = self.serializer.loads(value, max_age=self.max_age, return_timestamp=True)
        except BadSignature:  # also SignatureExpired
            return None, None
        return (data, signed) if isinstance(data, dict) else (None, None)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class LoginThrottle:
    """At most ``limit`` logins that fail per account name in ``window`` seconds.

    An attempt is counted when it begins (``begin``), before the password is checked, and forgotten with the
    name's other failures when it succeeds: logins sent at once for one name cannot each pass the check before
    any failure is recorded. Only names with failures inside the window are kept, and at most ``max_names`` of
    them: when the table is full, expired entries are dropped first, then the names that are not accounts, then
    those that are, each with the oldest last failure first and names that are not blocked before blocked ones.
    Unauthenticated logins with ever new names cannot grow the table without bound, nor push an account's
    failures out of it.
    """

    def __init__(self, limit: int = 5, window: float = 300.0, max_names: int = 10_000):
        self.limit, self.window, self.max_names = limit, window, max(1, max_names)
        #: name -> failure times (oldest first); ordered by last failure (least recent first)
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        #: the names in ``_fails`` that are accounts
        self._accounts: set[str] = set()
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            self._forget(key)
            return None
        return q

    def _forget(self, key: str) -> None:
        self._fails.pop(key, None)
        self._accounts.discard(key)

    def _make_room(self, now: float) -> None:
        """Called when the table is full: leaves it with a tenth of ``max_names`` free (one pass over the
        table per that many new names)."""
        for key in [k for k, q in self._fails.items() if not q or now - q[-1] > self.window]:
            self._forget(key)  # every failure of these is outside the window
        excess = len(self._fails) - (self.max_names - 1 - self.max_names // 10)
        if excess <= 0:
            return
        # least recent last failure first within each group: names that are not accounts, then accounts; in each,
        # names that are not blocked before blocked ones
        order = sorted(self._fails, key=lambda k: (k in self._accounts, len(self._fails[k]) >= self.limit))
        for key in order[:excess]:  # sorted() is stable: each group keeps the least recent first
            self._forget(key)

    def begin(self, key: str, *, account: bool = True) -> bool:
        """Count a login attempt for ``key`` before its password is checked: False (nothing counted) when the
        name is blocked. ``account``: whether the name is an account (kept before names that are not, when the
        table is full)."""
        with self._lock:
            now = time.monotonic()
            q = self._prune(key, now)
            if q is not None and len(q) >= self.limit:
                return False
            self._record(key, q, now, account)
            return True

    def blocked(self, key: str) -> bool:
        with self._lock:
            q = self._prune(key, time.monotonic())
            return q is not None and len(q) >= self.limit

    def failed(self, key: str, *, account: bool = True) -> None:
        """Count a failure that no ``begin`` counted (an attempt counted by ``begin`` that fails is counted
        already)."""
        with self._lock:
            now = time.monotonic()
            self._record(key, self._prune(key, now), now, account)

    def _record(self, key: str, q: deque[float] | None, now: float, account: bool) -> None:
        """Add a failure at ``now`` to ``key``'s (``q``, pruned; None when it has none), under the lock."""
        if q is None:
            if len(self._fails) >= self.max_names:
                self._make_room(now)
            q = self._fails[key] = deque()
        q.append(now)
        self._fails.move_to_end(key)
        if account:
            self._accounts.add(key)

    def succeeded(self, key: str) -> None:
        """A login for ``key`` succeeded: its failures are forgotten."""
        with self._lock:
            self._forget(key)

    def passed(self, key: str) -> None:
        """The attempt ``begin`` just counted for ``key`` succeeded: it is not counted, and the failures before it
        still are (for a key shared by several accounts, such as a client's address, where one account's success
        says nothing of the others' failures)."""
        with self._lock:
            q = self._prune(key, time.monotonic())
            if q is not None:
                q.pop()
                if not q:
                    self._forget(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._fails)
