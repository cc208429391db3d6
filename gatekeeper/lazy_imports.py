"""Defer expensive imports that the gate never uses on its write path.

guardrails-ai imports jsonschema, whose format module imports ``rfc3987_syntax`` when installed; that
module compiles an IRI grammar at import time (~0.8 s idle, ~1.7 s on a busy 2-core machine: a third of
the gate's cold start). The gate does not validate IRIs. ``defer_rfc3987_syntax()`` puts a stand-in module
in ``sys.modules`` whose ``is_valid_syntax`` imports the real module on first call and delegates to it, so
jsonschema's ``iri`` / ``iri-reference`` format checks keep working for a host application that uses them;
they just pay for the grammar when first used instead of at import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

_NAME = "rfc3987_syntax"
_lock = threading.Lock()


def defer_rfc3987_syntax() -> None:
    """Install the stand-in unless the real module is loaded already or not installed."""
    if _NAME in sys.modules:
        return
    try:
        if importlib.util.find_spec(_NAME) is None:
            return
    except (ImportError, ValueError):
        return
    stand_in = types.ModuleType(_NAME)
    stand_in.__dict__["__gatekeeper_deferred__"] = True
    real: list[types.ModuleType] = []

    def _load() -> types.ModuleType:
        with _lock:
            if not real:
                if sys.modules.get(_NAME) is stand_in:
                    del sys.modules[_NAME]
                try:
                    real.append(importlib.import_module(_NAME))
                except BaseException:
                    sys.modules.setdefault(_NAME, stand_in)
                    raise
        return real[0]

    def is_valid_syntax(*args, **kwargs):
        return _load().is_valid_syntax(*args, **kwargs)

    def __getattr__(name: str):  # any other public attribute: load the real module
        if name.startswith("__"):  # the import system probes __path__, __spec__ ...: not a use
            raise AttributeError(name)
        return getattr(_load(), name)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
