"""How gatekeeper logs: as a library, through the host's logging; on the command line, JSON lines on stderr.

The package never configures logging on import: a host application owns its logging. Every module logs
through :func:`get_logger`, whose events (``gate.*``, ``review.*``, ``encoder_process.*``, ``web.*``) are
routed at the time of each event:

* the host has configured structlog (``structlog.is_configured()``, which ``configure_logging`` and
  ``structlog.testing.capture_logs`` also make true): the event goes through structlog, as the host's
  configuration says;
* it has not: the event goes to the standard library logger of the module's name (``gatekeeper.gate``,
  ``gatekeeper.encoder_process``, ...) at the event's level, with its fields in the message
  (``gate.store_failed proposal_id=p-1 error_type=OSError``) and on the record (``gatekeeper_event``,
  ``gatekeeper_fields``). The host's ``logging`` configuration decides what is shown and where; with none
  at all, the standard library's last resort prints warnings and errors on stderr. Nothing is printed on
  stdout (structlog's unconfigured default would print every level there, into an MCP stdio server's
  protocol or a tool's JSON output).

The command line is a host of its own: it calls :func:`configure_logging`: JSON lines on stderr, from
``GATEKEEPER_LOG_LEVEL`` (default ``info``) or ``gatekeeper --log-level``, so that stdout carries only the
command's output (``gatekeeper check --json``). The audit ledger is not a log: it has its own writer
(``gatekeeper.ledger``) and is not affected.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")
ENV_VAR = "GATEKEEPER_LOG_LEVEL"
DEFAULT_LEVEL = "info"


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write (a test runner swaps it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _JsonLinesHandler(logging.Handler):
    """The standard library's ``gatekeeper`` records (training, export) as the same JSON lines as structlog's."""

    def __init__(self, stream: TextIO):
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = {"event": record.getMessage(), "level": record.levelname.lower(),
                     "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(), "logger": record.name}
            if record.exc_info:
                entry["exception"] = logging.Formatter().formatException(record.exc_info)
            self.stream.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


_STD_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
               "critical": logging.CRITICAL}


def _field(value: object) -> str:
    """A field's value in a standard library message: bare when that reads unambiguously, else as JSON."""
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=\\' for c in value):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return json.dumps(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


class GatekeeperLogger:
    """A module's logger: ``log.warning("gate.store_failed", proposal_id=..., error_type=...)``.

    Decides at each call where the event goes: through structlog when it is configured (by the host, the
    CLI's :func:`configure_logging`, or a test's ``capture_logs``), else to the standard library logger
    ``name``, so that a host that only uses ``logging`` filters and routes the events itself."""

    __slots__ = ("name", "_std", "_struct")

    def __init__(self, name: str):
        self.name = name
        self._std = logging.getLogger(name)
        self._struct = structlog.get_logger(name)  # a lazy proxy: it reads structlog's configuration when used

    def _log(self, level: str, event: str, args: tuple, fields: dict) -> None:
        if structlog.is_configured():
            getattr(self._struct, level)(event, *args, **fields)
            return
        std_level = _STD_LEVELS[level]
        if not self._std.isEnabledFor(std_level):
            return
        exc_info = fields.pop("exc_info", None)
        stack_info = bool(fields.pop("stack_info", False))
        if args:
            try:
                event = event % args
            except (TypeError, ValueError):
                event = " ".join([event, *map(str, args)])
        message = " ".join([event, *(f"{k}={_field(v)}" for k, v in fields.items())])
        # stacklevel 3: the record names the gatekeeper module's call, not this method or the one above
        self._std.log(std_level, "%s", message, exc_info=exc_info, stack_info=stack_info, stacklevel=3,
                      extra={"gatekeeper_event": event, "gatekeeper_fields": fields})

    def debug(self, event: str, *args, **fields) -> None:
        self._log("debug", event, args, fields)

    def info(self, event: str, *args, **fields) -> None:
        self._log("info", event, args, fields)

    def warning(self, event: str, *args, **fields) -> None:
        self._log("warning", event, args, fields)

    def error(self, event: str, *args, **fields) -> None:
        self._log("error", event, args, fields)

    def exception(self, event: str, *args, **fields) -> None:
        """An error with the exception being handled (as structlog's and the standard library's ``exception``)."""
        fields.setdefault("exc_info", True)
        self._log("error", event, args, fields)

    def critical(self, event: str, *args, **fields) -> None:
        self._log("critical", event, args, fields)


def get_logger(name: str) -> GatekeeperLogger:
    """The logger for module ``name`` (``gatekeeper.gate``): see :class:`GatekeeperLogger`."""
    return GatekeeperLogger(name)


class LogLevelError(ValueError):
    """A log level that is not one of LEVELS."""


def log_level(value: str | None = None) -> str:
    """The level to use: ``value``, else ``$GATEKEEPER_LOG_LEVEL``, else info. Refuses an unknown name. The
    variable empty or only blanks counts as unset, as every ``GATEKEEPER_*`` variable (``env_value``)."""
    from gatekeeper.settings import env_value  # here: logging is set up without the settings' imports otherwise

    name = (value if value is not None else env_value(ENV_VAR) or DEFAULT_LEVEL).strip().lower()
    if name not in LEVELS:
        raise LogLevelError(f"log level {name!r} (--log-level or {ENV_VAR}) is not one of {', '.join(LEVELS)}")
    return name


def configure_logging(level: str | None = None, *, stream: TextIO | None = None) -> str:
    """Send structlog events at ``level`` or above to ``stream`` (default: the current stderr) as JSON lines.

    Returns the level used. The standard library's ``gatekeeper`` loggers (training and export messages)
    get the same level and the same JSON lines."""
    name = log_level(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, name.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream if stream is not None else _CurrentStderr()),
        cache_logger_on_first_use=False,
    )
    global _configured
    _configured = (name, stream)
    adopt_logger("gatekeeper")
    from gatekeeper.telemetry import report_import_warnings

    report_import_warnings()  # what ``import gatekeeper`` met before this was set up, now as JSON lines
    return name


#: the level and stream ``configure_logging`` set last (None: not yet)
_configured: tuple[str, TextIO | None] | None = None


def adopt_logger(logger_name: str) -> None:
    """Give the standard library logger ``logger_name`` (``gatekeeper``'s own, or a library's such as
    ``uvicorn``) the level and the JSON lines that ``configure_logging`` set, instead of its own output."""
    name, stream = _configured if _configured is not None else (log_level(), None)
    std = logging.getLogger(logger_name)
    std.setLevel(getattr(logging, name.upper()))
    for h in [h for h in std.handlers if isinstance(h, _JsonLinesHandler)]:
        std.removeHandler(h)
    std.addHandler(_JsonLinesHandler(stream if stream is not None else _CurrentStderr()))
    std.propagate = False  # not a second, plain-text copy from the root logger's fallback


__all__ = ["LEVELS", "ENV_VAR", "GatekeeperLogger", "LogLevelError", "adopt_logger", "configure_logging", "get_logger",
           "log_level"]
