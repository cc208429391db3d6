"""How the ``gatekeeper`` command line sets up structlog: one JSON object per line on stderr.

The package never configures structlog on import: a host application owns its logging, and the gate's
events (``gate.*``, ``review.*``, ``encoder_process.*``, ``web.*``) go wherever the host sends them. The
command line is a host of its own, and structlog's default (coloured console lines on *stdout*, every
level) would mix debug events into output meant for people or pipes (``gatekeeper check --json``).
So the CLI calls :func:`configure_logging`: JSON lines on stderr, from ``GATEKEEPER_LOG_LEVEL``
(default ``info``) or ``gatekeeper --log-level``. The audit ledger is not a log: it has its own writer
(``gatekeeper.ledger``) and is not affected.
"""

from __future__ import annotations

import json
import logging
import os
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


class LogLevelError(ValueError):
    """A log level that is not one of LEVELS."""


def log_level(value: str | None = None) -> str:
    """The level to use: ``value``, else ``$GATEKEEPER_LOG_LEVEL``, else info. Refuses an unknown name."""
    name = (value if value is not None else os.environ.get(ENV_VAR, DEFAULT_LEVEL)).strip().lower()
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


__all__ = ["LEVELS", "ENV_VAR", "LogLevelError", "adopt_logger", "configure_logging", "log_level"]
