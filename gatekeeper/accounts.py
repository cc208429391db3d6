"""Reviewer accounts for the human review queue.

One SQLite table, ``reviewers``, in the same database file as the proposal
registry (``gatekeeper.db``). An account has

* ``id``            the login name, lower case; it is what the ledger records as
                    the reviewer of every decision made with this account
* ``display_name``  for the pages only
* ``role``          ``reviewer`` (work the queue) or ``admin`` (also see the
                    quarantine and the reviewer list)
* ``password_hash`` ``scrypt$n$r$p$salt$hash`` (hashlib.scrypt, a random salt per
                    account), compared in constant time
* ``token_sha256``  the sha256 of the account's API token; the token itself is
                    shown once when it is created and never stored
* ``disabled``      a disabled account cannot log in, its sessions and its token
                    stop working at once

Accounts are managed with ``gatekeeper reviewer add|list|disable|token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, Field

from gatekeeper.files import private_file
from gatekeeper.models import utcnow
from gatekeeper.thread_connections import ThreadConnections

__all__ = ["Account", "AccountStore", "AccountError", "Role", "hash_password", "verify_password",
           "RESERVED_NAMES", "MIN_PASSWORD_CHARS"]

Role = Literal["reviewer", "admin"]
ROLES: tuple[str, ...] = ("reviewer", "admin")

#: names that already mean something in the ledger (the gate itself, the
#: default reviewer of ReviewDecision) and so cannot be an account
RESERVED_NAMES = frozenset({"gatekeeper", "human", "system", "agent", "root"})
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
TOKEN_PREFIX = "gk_"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")

# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB, ~50 ms per check on one core
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32

SCHEMA = """
CREATE TABLE IF NOT EXISTS reviewers (
    id             TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('reviewer','admin')),
    password_hash  TEXT NOT NULL,
    token_sha256   TEXT UNIQUE,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_login_at  TEXT,
    session_epoch  INTEGER NOT NULL DEFAULT 0
);
"""


class AccountError(ValueError):
    """An account cannot be created or changed as asked (the message says why)."""


class Account(BaseModel):
    id: str
    display_name: str
    role: Role
    disabled: bool = False
    created_at: datetime
    last_login_at: datetime | None = None
    #: changes whenever the password changes; sessions carry it, so a new
    #: password ends the sessions made with the old one
    session_key: str = Field(default="", exclude=True, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# --------------------------------------------------------------------- hashing
def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode("ascii").rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                        dklen=_SCRYPT_LEN, maxmem=64 * 1024 * 1024)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, want = stored.split("$")
        if scheme != "scrypt":
            return False
        dk = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                            dklen=len(_unb64(want)), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, _unb64(want))


# a hash to check against when the account does not exist, so a login for an
# unknown name takes as long as one with a wrong password
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _session_key(password_hash: str, epoch: int = 0) -> str:
    """What a session cookie must carry: changes with the password and whenever sessions are ended."""
    return hashlib.sha256(f"{password_hash}:{epoch}".encode("ascii")).hexdigest()[:16]


def normalize_name(name: str) -> str:
    return (name or "").strip().lower()


# ----------------------------------------------------------------------- store
class AccountStore:
    """The ``reviewers`` table (thread-safe: one connection per thread, WAL)."""

    def __init__(self, path: str | Path):
        self.path = private_file(path)  # password hashes: 0600
        self._connections = ThreadConnections(self._connect)
        con = self._con()
        con.executescript(SCHEMA)
        cols = {r["name"] for r in con.execute("PRAGMA table_info(reviewers)")}
        if "session_epoch" not in cols:  # databases created before sessions could be ended
            try:
                con.execute("ALTER TABLE reviewers ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0")
            except sqlite3.OperationalError as exc:  # another process migrated it first
                if "duplicate column" not in str(exc).lower():
                    raise

    def _con(self) -> sqlite3.Connection:
        return self._connections.get()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def close(self) -> None:
        """Close this thread's connection and let go of the others (``ThreadConnections.close``); a call
        afterwards opens its thread a new one."""
        self._connections.close()

    # --------------------------------------------------------------- writes
    def add(self, name: str, password: str, *, role: Role = "reviewer", display_name: str | None = None,
            reserved: Iterable[str] = ()) -> tuple[Account, str]:
        """Create an account. Returns it with its API token (shown once; only its hash is kept).

        ``reserved`` names (e.g. the agent ids seen in the queue) are refused, so
        no account can carry an agent's identity.
        """
        account_id = normalize_name(name)
        if not _NAME.match(account_id):
            raise AccountError("an account name is 1-64 characters: a-z 0-9 . _ @ - (starting with a letter "
                               "or digit)")
        if account_id in RESERVED_NAMES:
            raise AccountError(f"{account_id!r} is a reserved name")
        if account_id in {normalize_name(r) for r in reserved}:
            raise AccountError(f"{account_id!r} is the id of an agent whose writes are reviewed; "
                               "an agent's identity cannot be a reviewer account")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        _check_password(password)
        display = (display_name or account_id).strip()[:128] or account_id
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow().isoformat()
        try:
            self._con().execute(
                """INSERT INTO reviewers (id, display_name, role, password_hash, token_sha256, disabled,
                                          created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)""",
                (account_id, display, role, hash_password(password), token_digest(token), now, now))
        except sqlite3.IntegrityError:
            raise AccountError(f"an account named {account_id!r} already exists") from None
        return self.require(account_id), token

    def disable(self, name: str) -> Account:
        return self._set_disabled(name, True)

    def enable(self, name: str) -> Account:
        return self._set_disabled(name, False)

    def _set_disabled(self, name: str, disabled: bool) -> Account:
        account_id = normalize_name(name)
        # disabling ends the account's web sessions too: they stopped working while it was disabled, and a cookie
        # copied before came back to life when it was enabled again
        cur = self._con().execute("UPDATE reviewers SET disabled=?, session_epoch=session_epoch+?, updated_at=? "
                                  "WHERE id=?", (int(disabled), int(disabled), utcnow().isoformat(), account_id))
        if cur.rowcount != 1:
            raise AccountError(f"no account named {account_id!r}")
        return self.require(account_id)

    def rotate_token(self, name: str) -> str:
        """A new API token for the account (the old one stops working)."""
        account_id = normalize_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        cur = self._con().execute("UPDATE reviewers SET token_sha256=?, updated_at=? WHERE id=?",
                                  (token_digest(token), utcnow().isoformat(), account_id))
        if cur.rowcount != 1:
            raise AccountError(f"no account named {account_id!r}")
        return token

    def end_sessions(self, name: str) -> None:
        """End every web session of the account (log out everywhere); the next request must log in."""
        account_id = normalize_name(name)
        cur = self._con().execute(
            "UPDATE reviewers SET session_epoch=session_epoch+1, updated_at=? WHERE id=?",
            (utcnow().isoformat(), account_id))
        if cur.rowcount != 1:
            raise AccountError(f"no account named {account_id!r}")

    def set_password(self, name: str, password: str) -> Account:
        account_id = normalize_name(name)
        _check_password(password)
        cur = self._con().execute("UPDATE reviewers SET password_hash=?, updated_at=? WHERE id=?",
                                  (hash_password(password), utcnow().isoformat(), account_id))
        if cur.rowcount != 1:
            raise AccountError(f"no account named {account_id!r}")
        return self.require(account_id)

    def set_role(self, name: str, role: Role) -> Account:
        """Make the account a reviewer or an admin; its sessions and token carry on with the new role (each
        request reads the account)."""
        if role not in ("reviewer", "admin"):
            raise AccountError(f"role must be reviewer or admin, not {role!r}")
        account_id = normalize_name(name)
        cur = self._con().execute("UPDATE reviewers SET role=?, updated_at=? WHERE id=?",
                                  (role, utcnow().isoformat(), account_id))
        if cur.rowcount != 1:
            raise AccountError(f"no account named {account_id!r}")
        return self.require(account_id)

    # ---------------------------------------------------------------- reads
    def get(self, name: str) -> Account | None:
        row = self._con().execute("SELECT * FROM reviewers WHERE id=?", (normalize_name(name),)).fetchone()
        return _account(row) if row else None

    def require(self, name: str) -> Account:
        acc = self.get(name)
        if acc is None:
            raise AccountError(f"no account named {normalize_name(name)!r}")
        return acc

    def list(self) -> list[Account]:
        return [_account(r) for r in self._con().execute("SELECT * FROM reviewers ORDER BY id")]

    def count(self, *, enabled_only: bool = True) -> int:
        sql = "SELECT COUNT(*) FROM reviewers" + (" WHERE disabled=0" if enabled_only else "")
        return int(self._con().execute(sql).fetchone()[0])

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account if the name and password match and it is enabled, else None.

        Takes the same time whether or not the account exists."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            return None
        row = self._con().execute("SELECT * FROM reviewers WHERE id=?", (normalize_name(name),)).fetchone()
        ok = verify_password(password, row["password_hash"] if row else _DUMMY_HASH)
        if not (row and ok) or row["disabled"]:
            return None
        self._con().execute("UPDATE reviewers SET last_login_at=? WHERE id=?",
                            (utcnow().isoformat(), row["id"]))
        return _account(row)

    def by_token(self, token: str) -> Account | None:
        """The enabled account whose API token this is, else None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_digest(token)
        row = self._con().execute("SELECT * FROM reviewers WHERE token_sha256=?", (digest,)).fetchone()
        if row is None or row["disabled"] or not hmac.compare_digest(row["token_sha256"], digest):
            return None
        return _account(row)

    def agent_ids(self) -> set[str]:
        """Agent ids seen in the proposal registry of the same database (lower case)."""
        con = self._con()
        has = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='proposals'").fetchone()
        if not has:
            return set()
        seen = {normalize_name(r[0]) for r in con.execute("SELECT DISTINCT agent_id FROM proposals")}
        if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='pruned'").fetchone():
            # agents whose proposals were all pruned (gatekeeper prune) are still agents
            seen |= {normalize_name(r[0]) for r in con.execute("SELECT DISTINCT agent_id FROM pruned")}
        return seen


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"a password has at most {MAX_PASSWORD_CHARS} characters")


def _account(row: sqlite3.Row) -> Account:
    return Account(id=row["id"], display_name=row["display_name"], role=row["role"],
                   disabled=bool(row["disabled"]), created_at=datetime.fromisoformat(row["created_at"]),
                   last_login_at=datetime.fromisoformat(row["last_login_at"]) if row["last_login_at"] else None,
                   session_key=_session_key(row["password_hash"], int(row["session_epoch"] or 0)))
