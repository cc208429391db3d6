"""The LLM judge's chat model, named in the settings instead of passed in code.

``Gatekeeper.open(judge_model=...)`` takes a chat model object, which only Python callers can give. Every other
way of running the gate (the CLI's ``check``, ``eval``, ``serve`` and the review commands that review writes
again, a LangGraph server loading ``graphs/agent.py``) opens it from :class:`~gatekeeper.settings.GatekeeperSettings`,
so the judge is named there: ``GATEKEEPER_JUDGE_MODEL`` (or ``GatekeeperSettings(judge_model=...)``) holds a
*spec* in the form LangGraph's ``langgraph.json`` uses for graphs::

    my_package.judges:judge            # a module importable from the process
    ./deploy/judge.py:make_judge       # a Python file, relative to the working directory

The attribute is a langchain-core chat model (``BaseChatModel``: ``ChatOpenAI(...)``, ``ChatAnthropic(...)``,
any other with ``with_structured_output``), or a callable taking no arguments that returns one (so an API key
is read when the gate opens, not when the module is imported). The judge still runs only where the policy
enables it (``judge.enabled``) and only for scores in its band.

A spec that does not load stops the gate from opening (:class:`JudgeModelError`, a ``ValueError`` naming the
spec and what is wrong): a deployment that configured a judge must not run without it unnoticed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

ENV_VAR = "GATEKEEPER_JUDGE_MODEL"

#: a dotted name: a module (``my_package.judges``) or an attribute path (``judges.default``)
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


class JudgeModelError(ValueError):
    """The judge's chat model spec does not name a chat model that loads."""


def check_judge_spec(spec: str) -> str:
    """``spec`` stripped, when it has the form ``module:attribute`` or ``path/to/file.py:attribute``; a
    :class:`JudgeModelError` saying what form it should have otherwise. Nothing is imported."""
    _parts(spec)
    return spec.strip()


def _parts(spec: str) -> tuple[str, str, bool]:
    """(target, attribute, target is a file)."""
    target, _, attr = spec.strip().rpartition(":")  # the last colon: a Windows path has one of its own
    target = target.strip()
    if not target or not _DOTTED.match(attr):
        raise JudgeModelError(f"judge model {spec!r}: expected 'module:attribute' or 'path/to/file.py:attribute' "
                              f"({ENV_VAR}), naming a langchain-core chat model or a function that returns one")
    is_file = target.endswith(".py")
    if not is_file and not _DOTTED.match(target):
        raise JudgeModelError(f"judge model {spec!r}: {target!r} is neither a module name (dotted, like "
                              f"'my_package.judges') nor a Python file ending in .py ({ENV_VAR})")
    return target, attr, is_file


def load_judge_model(spec: str):
    """The chat model ``spec`` names (see the module docstring); a :class:`JudgeModelError` when the module
    or file does not import, the attribute is missing, a factory fails, or what it gives is not a
    langchain-core chat model."""
    from langchain_core.language_models import BaseChatModel

    target, attr, is_file = _parts(spec)
    module = _import_file(spec, target) if is_file else _import_module(spec, target)
    obj = module
    for name in attr.split("."):
        if not hasattr(obj, name):
            raise JudgeModelError(f"judge model {spec!r}: {target} has no attribute {attr!r}")
        obj = getattr(obj, name)
    if isinstance(obj, BaseChatModel):
        return _structured(spec, obj)
    if (isinstance(obj, type) and not issubclass(obj, BaseChatModel)) or not callable(obj):
        raise JudgeModelError(f"judge model {spec!r}: {attr} is a {type(obj).__name__}, not a langchain-core chat "
                              "model (BaseChatModel) or a function that returns one")
    try:
        model = obj()
    except Exception as exc:  # noqa: BLE001 - a factory's own error (a missing API key, a bad argument)
        raise JudgeModelError(f"judge model {spec!r}: calling {attr}() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, BaseChatModel):
        raise JudgeModelError(f"judge model {spec!r}: {attr}() returned a {type(model).__name__}, not a langchain-core "
                              "chat model (BaseChatModel)")
    return _structured(spec, model)


def _structured(spec: str, model):
    """``model``, once it is known to give the judge's structured output (a ``JudgeModelError`` naming ``spec``
    otherwise: checked when the gate opens, not at the first write in the judge's band)."""
    from gatekeeper.judge import structured_judge

    try:
        structured_judge(model)
    except JudgeModelError as exc:
        raise JudgeModelError(f"judge model {spec!r}: {exc}") from exc.__cause__
    return model


def _import_module(spec: str, target: str):
    try:
        return importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - ImportError, or the module's own error while it runs
        hint = (f" (a file in the working directory is named by its path: './{target.replace('.', '/')}.py:...')"
                if isinstance(exc, ModuleNotFoundError) and exc.name == target.split(".")[0] else "")
        raise JudgeModelError(f"judge model {spec!r}: module {target!r} does not import: "
                              f"{type(exc).__name__}: {exc}{hint}") from exc


def _import_file(spec: str, target: str):
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise JudgeModelError(f"judge model {spec!r}: no Python file at {path} (a relative path is read from the "
                              "working directory)")
    # one module per version of the file, under a name of its own: a second gate in the process reuses it, and
    # a gate opened after the file was edited loads the edit
    stat = path.stat()
    name = "gatekeeper_judge_" + hashlib.sha256(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise JudgeModelError(f"judge model {spec!r}: {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the file's own error
        del sys.modules[name]
        raise JudgeModelError(f"judge model {spec!r}: {path} does not import: {type(exc).__name__}: {exc}") from exc
    return module


def describe_model(model) -> str:
    """A short name for status lines and reports: the class, and the model it calls when it says
    (``ChatOpenAI (gpt-4o-mini)``). Never a key or an endpoint."""
    name = type(model).__name__
    for field in ("model_name", "model", "model_id"):
        value = getattr(model, field, None)
        if isinstance(value, str) and value:
            return f"{name} ({value})"
    return name
