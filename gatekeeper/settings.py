"""Where the gatekeeper keeps its data and finds its policy.

Environment variables override the defaults:

* ``GATEKEEPER_DATA_DIR``   default ``./.gatekeeper`` — chroma/, gatekeeper.db, ledger.jsonl
* ``GATEKEEPER_POLICY_DIR`` default the package's own policy: ``policies/`` of a source checkout,
  ``gatekeeper/policies_default`` of a wheel
* ``GATEKEEPER_CACHE``      default ``~/.cache/gatekeeper`` — trained classifier and screen artifacts,
  ONNX exports of the encoders
* ``GATEKEEPER_EMBED_BACKEND`` default ``onnx`` (onnxruntime); ``torch`` runs sentence-transformers
* ``GATEKEEPER_ENCODER_PROCESS`` default ``auto``: batches of writes run the int8 encoder in a child
  process beside the reviewer (``gatekeeper.encoder_process``); ``off`` keeps it on helper threads
* ``GATEKEEPER_TRAINING_NICE`` default ``19``: how much lower than the writes a classifier training started
  by a policy reload runs (``GatekeeperSettings.training_nice``)
* ``GATEKEEPER_TRAINING_PROCESS`` default ``on``: that training runs in a child process
  (``gatekeeper.training_process``); ``off`` runs it in a thread of the serving process
* ``GATEKEEPER_ENCODER_PRECISION`` default ``int8`` (``gatekeeper.quantization``); ``fp32``
* ``GATEKEEPER_POLICY_WATCH_S`` default ``5``: how often (seconds) a gate opened from settings looks at its
  policy files and puts an edit in force (``gatekeeper.policy_watch``); ``0`` turns it off
* ``GATEKEEPER_POLICY_SETTLE_S`` default ``1``: how long the policy files must have been quiet before the watcher
  reads them, so that an edit of several files (a git pull) is put in force whole (``0`` to ``60``)
* ``GATEKEEPER_STORE_WRITE_TIMEOUT_S`` default ``60``: how long a write into chromadb (embedded, or a Chroma server)
  may take before the gate stops waiting and quarantines it as a store failure
  (``ChromaMemoryStore.write_timeout_s``; 1 to 3600)
* ``GATEKEEPER_CHROMA_URL`` default unset: the committed memories live in an embedded chromadb under the data
  directory; ``http://host:port`` (or ``https://``) keeps them on a Chroma server instead, so every process
  of a deployment (agents, the review app, the CLI) reads and writes the same memories
* ``GATEKEEPER_CHROMA_TOKEN`` default unset: sent to that server as ``Authorization: Bearer <token>``
* ``GATEKEEPER_CHROMA_COLLECTION`` default ``gatekeeper_memories``: the collection (one per deployment on a
  shared server)
* ``GATEKEEPER_MEMORY_STORE`` default unset: the memory store a gate opened from these settings writes committed
  memories into, ``module:attribute`` or ``path/to/file.py:attribute`` naming a LangGraph store or a function that
  returns one (``gatekeeper.store_identity``): the agent's own store (a ``SqliteStore`` file, a ``PostgresStore``),
  so that ``gatekeeper review``, ``gatekeeper serve`` and ``gatekeeper forget`` write where the agent reads. A gate
  writes a proposal only into the store it was proposed for; not with ``GATEKEEPER_CHROMA_URL``
* ``GATEKEEPER_JUDGE_MODEL`` default unset: the LLM judge's chat model, ``module:attribute`` or
  ``path/to/file.py:attribute`` (``gatekeeper.judge_spec``); used where the policy enables the judge
* ``GATEKEEPER_LOG_LEVEL`` default ``info``: the least severe log event the CLI prints as JSON lines on stderr
  (``gatekeeper.log_setup``; ``gatekeeper --log-level``)

An empty value counts as unset. A bad value is refused when :class:`GatekeeperSettings` is built (so before
the gate opens), with a ``ValueError`` naming the variable and the values it takes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gatekeeper.policy import default_policy_dir


def env_value(name: str) -> str | None:
    """``$name``, or None when it is unset, empty or only blanks (an empty value counts as unset)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    """``$name`` as one of ``allowed`` (case and surrounding blanks ignored; ``default`` when unset)."""
    raw = env_value(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in allowed:
        raise ValueError(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
    return value


def cache_root() -> Path:
    """Trained artifacts and ONNX exports (``$GATEKEEPER_CACHE``, default ``~/.cache/gatekeeper``)."""
    raw = env_value("GATEKEEPER_CACHE")
    return Path(raw) if raw is not None else Path.home() / ".cache" / "gatekeeper"


def check_cache_root() -> Path:
    """The model cache (``cache_root``), refused with a ``ValueError`` when it, or a folder it is to be made in,
    is not a directory: every write would otherwise be quarantined with NotADirectoryError when the classifier,
    the screen or an encoder export is first looked up there."""
    root = cache_root()
    named = "GATEKEEPER_CACHE" if env_value("GATEKEEPER_CACHE") is not None else "GATEKEEPER_CACHE unset"
    for path in (root, *root.parents):
        try:
            if path.is_dir():
                return root
            there = path.exists() or path.is_symlink()
        except OSError:  # not ours to look into (permissions): the first use says what is wrong
            return root
        if there:
            what = "" if path == root else ", and the cache is to be made in it"
            raise ValueError(f"the model cache {root} ({named}): {path} is not a directory{what}; point "
                             f"GATEKEEPER_CACHE at a directory (it is made when missing), or move {path} away")
    return root


def _data_dir() -> Path:
    return Path(env_value("GATEKEEPER_DATA_DIR") or ".gatekeeper")


EMBED_BACKENDS = ("onnx", "torch")
ENCODER_PRECISIONS = ("int8", "fp32")


def embed_backend() -> str:
    """``$GATEKEEPER_EMBED_BACKEND`` (``onnx`` when unset); an unknown value is a clear error."""
    return _choice("GATEKEEPER_EMBED_BACKEND", EMBED_BACKENDS, "onnx")


def encoder_precision_setting() -> str:
    """``$GATEKEEPER_ENCODER_PRECISION`` (``int8`` when unset); an unknown value is a clear error."""
    return _choice("GATEKEEPER_ENCODER_PRECISION", ENCODER_PRECISIONS, "int8")


#: the nice value a background classifier training adds to its child process or thread unless configured
#: otherwise
DEFAULT_TRAINING_NICE = 19


def _number_setting(name: str, parse: Callable[[str], float], default: float, low: float, high: float,
                    expected: str):
    """``$name`` read with ``parse`` (``default`` when unset); a value that does not parse or is not within
    [low, high] (NaN included) is a ValueError saying ``expected``."""
    raw = env_value(name)
    if raw is None:
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails the comparison
        raise ValueError(f"{name} must be {expected}, not {raw!r}")
    return value


def _training_nice() -> int:
    return _number_setting("GATEKEEPER_TRAINING_NICE", int, DEFAULT_TRAINING_NICE, 0, 19,
                           "a whole number from 0 to 19")


#: how often a gate opened from settings looks for policy edits unless configured otherwise (seconds)
DEFAULT_POLICY_WATCH_S = 5.0
MAX_POLICY_WATCH_S = 3600.0


def _policy_watch_s() -> float:
    return _number_setting("GATEKEEPER_POLICY_WATCH_S", float, DEFAULT_POLICY_WATCH_S, 0, MAX_POLICY_WATCH_S,
                           f"a number of seconds from 0 (off) to {MAX_POLICY_WATCH_S:g}")


#: how long the policy files must have been quiet before the watcher reads them (seconds): the files of one
#: edit (a git pull, a "save all") are read together, not half old and half new
DEFAULT_POLICY_SETTLE_S = 1.0
MAX_POLICY_SETTLE_S = 60.0


def _policy_settle_s() -> float:
    return _number_setting("GATEKEEPER_POLICY_SETTLE_S", float, DEFAULT_POLICY_SETTLE_S, 0, MAX_POLICY_SETTLE_S,
                           f"a number of seconds from 0 to {MAX_POLICY_SETTLE_S:g}")


#: how long a write into the embedded chromadb may take (seconds) before the gate stops waiting for it
#: (``ChromaMemoryStore.write_timeout_s``): after a disk error chromadb's own write was seen to block for ever
DEFAULT_STORE_WRITE_TIMEOUT_S = 60.0
MAX_STORE_WRITE_TIMEOUT_S = 3600.0


def _store_write_timeout_s() -> float:
    return _number_setting("GATEKEEPER_STORE_WRITE_TIMEOUT_S", float, DEFAULT_STORE_WRITE_TIMEOUT_S, 1,
                           MAX_STORE_WRITE_TIMEOUT_S, f"a number of seconds from 1 to {MAX_STORE_WRITE_TIMEOUT_S:g}")


def _training_process() -> bool:
    raw = env_value("GATEKEEPER_TRAINING_PROCESS")
    value = "on" if raw is None else raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"GATEKEEPER_TRAINING_PROCESS must be on or off, not {raw!r}")
    return value == "on"


#: the collection of committed memories unless configured otherwise
DEFAULT_CHROMA_COLLECTION = "gatekeeper_memories"
#: Chroma's own rule for collection names (checked here so a bad name fails before the gate opens)
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``http(s)://host[:port]`` as (host, port, ssl); the port defaults to 8000 (Chroma's) for http and
    443 for https, and an IPv6 host keeps its brackets (``[::1]``: chromadb's client needs them). Anything
    else (another scheme, a path, credentials in the URL) is a ``ValueError`` that shows the URL without
    what may be a secret."""
    raw = url.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"GATEKEEPER_CHROMA_URL={_shown_url(raw)!r}: {exc}") from None
    if parts.username or parts.password:
        raise ValueError("GATEKEEPER_CHROMA_URL holds credentials: put the token in GATEKEEPER_CHROMA_TOKEN, "
                         "not in the URL (URLs are logged)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"GATEKEEPER_CHROMA_URL={_shown_url(raw)!r}: expected http://host:port or "
                         "https://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"GATEKEEPER_CHROMA_URL={_shown_url(raw)!r}: a Chroma server URL has no path or query")
    ssl = parts.scheme == "https"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host, port if port is not None else (443 if ssl else 8000), ssl


def _shown_url(raw: str) -> str:
    """``raw`` as an error shows it: scheme and host, as credentials, a path or a query may hold a secret
    (``https://admin:pw@host``, ``https://host/?api_key=...``)."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "", raw
    authority, *after = re.split(r"[/?#]", rest, maxsplit=1)
    _, at, host = authority.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}{'/...' if after else ''}"


def _chroma_url() -> str | None:
    return env_value("GATEKEEPER_CHROMA_URL")


def _chroma_token() -> SecretStr | None:
    raw = env_value("GATEKEEPER_CHROMA_TOKEN")
    return check_chroma_token(SecretStr(raw.strip())) if raw is not None else None


def check_chroma_token(token: SecretStr) -> SecretStr:
    """Refuse a token an HTTP header cannot carry (a line break, another control or a non-ASCII character): the
    HTTP client's error would quote the whole header, token included, into every refused write's reason."""
    if not re.fullmatch(r"[\x20-\x7e]*", token.get_secret_value()):
        raise ValueError("GATEKEEPER_CHROMA_TOKEN holds a line break, another control character or a non-ASCII "
                         "character, which an HTTP header cannot carry")
    return token


def _chroma_collection() -> str:
    return (env_value("GATEKEEPER_CHROMA_COLLECTION") or DEFAULT_CHROMA_COLLECTION).strip()


def check_chroma_collection(name: str) -> str:
    if not _COLLECTION_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"chroma collection {name!r}: expected 3-512 characters of letters, digits, '.', '_' "
                         "and '-', starting and ending with a letter or digit (GATEKEEPER_CHROMA_COLLECTION)")
    return name


#: both name where the committed memories live
_BOTH_STORES = ("GATEKEEPER_MEMORY_STORE and GATEKEEPER_CHROMA_URL both name the memory store: set one of them "
                "(a Chroma server is named by GATEKEEPER_CHROMA_URL alone)")


def _memory_store() -> str | None:
    from gatekeeper.store_identity import check_memory_store_spec

    raw = env_value("GATEKEEPER_MEMORY_STORE")
    return check_memory_store_spec(raw) if raw is not None else None


def _judge_model() -> str | None:
    from gatekeeper.judge_spec import check_judge_spec

    raw = env_value("GATEKEEPER_JUDGE_MODEL")
    return check_judge_spec(raw) if raw is not None else None


def check_environment() -> None:
    """Refuse a bad value of any ``GATEKEEPER_*`` variable read later (when the encoder loads or a write is
    reviewed) now, with a :class:`ValueError` that names the variable and the values it takes."""
    from gatekeeper.encoder_process import process_mode

    embed_backend()
    encoder_precision_setting()
    process_mode()
    _training_nice()
    _training_process()
    _policy_watch_s()
    _policy_settle_s()
    _store_write_timeout_s()
    if (url := _chroma_url()) is not None:
        parse_chroma_url(url)
    _chroma_token()
    check_chroma_collection(_chroma_collection())
    _judge_model()
    if _memory_store() is not None and _chroma_url() is not None:
        raise ValueError(_BOTH_STORES)
    check_cache_root()


class GatekeeperSettings(BaseModel):
    """Where the gate keeps its data, and how it trains. Building one checks every ``GATEKEEPER_*``
    variable (:func:`check_environment`), so a bad value stops the gate before it serves a write."""

    # validate_default: a value from the environment (a default factory) is held to the same bounds;
    # hide_input_in_errors: an error does not repeat the value given (a Chroma URL may hold a secret)
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)

    def __init__(self, **data):
        check_environment()
        super().__init__(**data)

    data_dir: Path = Field(default_factory=_data_dir)
    policy_dir: Path = Field(default_factory=default_policy_dir)
    #: the nice value added to a classifier training that a policy reload starts in the background (0-19):
    #: to its child process (``training_process``), or to its thread (Linux, where nice is per thread and
    #: the threads it starts inherit it), so that the writes served meanwhile keep most of the CPU; an idle
    #: machine still gives the training all of it.
    #: Measured with a training process beside 1,000 single writes on two cores (docs/performance.md):
    #: mean / p99 4.1 / 9-10 ms idle, 8.9-9.4 / 23-24 ms beside a training at nice 0, 6.6 / 16.6 at 10,
    #: 5.4 / 14.9 at 19
    training_nice: int = Field(default_factory=_training_nice, ge=0, le=19)
    #: run that training in a child process (the whole process at ``training_nice``; torch and its memory
    #: leave with it), where the classifier factory can be imported by name (the default one can); the
    #: serving process then only loads the finished artifact
    training_process: bool = Field(default_factory=_training_process)
    #: how often (seconds) the gate looks at its policy files and puts an edit in force; 0: never (edits then
    #: take effect with ``Gatekeeper.reload_policy`` or a restart)
    policy_watch_s: float = Field(default_factory=_policy_watch_s, ge=0, le=MAX_POLICY_WATCH_S)
    #: how long a write into the embedded chromadb may take before it is quarantined as a store failure
    store_write_timeout_s: float = Field(default_factory=_store_write_timeout_s, ge=1,
                                         le=MAX_STORE_WRITE_TIMEOUT_S)
    #: how long (seconds) the policy files must have been quiet before the watcher reads them, so that the files
    #: of one edit (a git pull, a "save all") are put in force together, never a mix of old and new
    policy_settle_s: float = Field(default_factory=_policy_settle_s, ge=0, le=MAX_POLICY_SETTLE_S)
    #: a Chroma server for the committed memories (``http(s)://host:port``); None keeps them in the embedded
    #: chromadb under ``data_dir``. The registry, the ledger and the review queue stay in ``data_dir``: the
    #: processes that work one queue share that directory.
    chroma_url: str | None = Field(default_factory=_chroma_url)
    #: the server's token, sent as ``Authorization: Bearer``; never printed (``SecretStr``)
    chroma_token: SecretStr | None = Field(default_factory=_chroma_token)
    chroma_collection: str = Field(default_factory=_chroma_collection)
    #: the LLM judge's chat model: ``module:attribute`` or ``path/to/file.py:attribute`` naming a langchain-core
    #: chat model or a function returning one (``gatekeeper.judge_spec``), loaded when a gate opens from these
    #: settings; None: no judge (the policy's uncertain band is escalated). Only the form is checked here.
    judge_model: str | None = Field(default_factory=_judge_model)
    #: the memory store a gate opened from these settings writes into: ``module:attribute`` or
    #: ``path/to/file.py:attribute`` naming a LangGraph store or a function returning one
    #: (``gatekeeper.store_identity.load_memory_store``), loaded when the gate opens; None: the Chroma server of
    #: ``chroma_url``, or the embedded chromadb under ``data_dir``. Only the form is checked here.
    memory_store: str | None = Field(default_factory=_memory_store)

    @field_validator("memory_store")
    @classmethod
    def _valid_memory_store(cls, value: str | None) -> str | None:
        from gatekeeper.store_identity import check_memory_store_spec

        return check_memory_store_spec(value) if value is not None and value.strip() else None

    @model_validator(mode="after")
    def _one_memory_store(self) -> "GatekeeperSettings":
        if self.memory_store is not None and self.chroma_url is not None:
            raise ValueError(_BOTH_STORES)
        return self

    @field_validator("chroma_url")
    @classmethod
    def _valid_chroma_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_chroma_url(value)
        return value

    @field_validator("chroma_token")
    @classmethod
    def _valid_chroma_token(cls, value: SecretStr | None) -> SecretStr | None:
        return check_chroma_token(value) if value is not None else None

    @field_validator("judge_model")
    @classmethod
    def _valid_judge_model(cls, value: str | None) -> str | None:
        from gatekeeper.judge_spec import check_judge_spec

        return check_judge_spec(value) if value is not None and value.strip() else None

    @field_validator("chroma_collection")
    @classmethod
    def _valid_chroma_collection(cls, value: str) -> str:
        return check_chroma_collection(value)

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.jsonl"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "gatekeeper.db"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
