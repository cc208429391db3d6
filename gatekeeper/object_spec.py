"""An object named in the settings by a *spec*, in the form LangGraph's ``langgraph.json`` uses for graphs::

    my_package.judges:judge            # a module importable from the process
    ./deploy/judge.py:make_judge       # a Python file, relative to the working directory

The judge's chat model (``GATEKEEPER_JUDGE_MODEL``, ``gatekeeper.judge_spec``) and the memory store
(``GATEKEEPER_MEMORY_STORE``, ``gatekeeper.store_identity``) are named so, for the processes that open their gate
from the settings (the CLI, ``gatekeeper serve``, a LangGraph server). What the attribute must be is the caller's
to check; a spec of the wrong form, a module or file that does not import and a missing attribute are refused
here with the caller's error class, naming the spec, what it was to name (``what``) and the variable.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

#: a dotted name: a module (``my_package.judges``) or an attribute path (``judges.default``)
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def spec_parts(spec: str, *, what: str, names: str, env_var: str, error: type[ValueError]
               ) -> tuple[str, str, bool]:
    """(target, attribute, target is a file) of ``spec``; ``error`` saying what form it should have otherwise
    (``what``: "judge model"; ``names``: what the attribute is, for that message). Nothing is imported."""
    target, _, attr = spec.strip().rpartition(":")  # the last colon: a Windows path has one of its own
    target = target.strip()
    if not target or not _DOTTED.match(attr):
        raise error(f"{what} {spec!r}: expected 'module:attribute' or 'path/to/file.py:attribute' "
                    f"({env_var}), naming {names}")
    is_file = target.endswith(".py")
    if not is_file and not _DOTTED.match(target):
        raise error(f"{what} {spec!r}: {target!r} is neither a module name (dotted, like "
                    f"'my_package.judges') nor a Python file ending in .py ({env_var})")
    return target, attr, is_file


def checked_spec(spec: str, *, what: str, names: str, env_var: str, error: type[ValueError]) -> str:
    """``spec`` stripped, when it has the form ``module:attribute`` or ``path/to/file.py:attribute``; ``error``
    saying what form it should have otherwise (``spec_parts``). Nothing is imported."""
    spec_parts(spec, what=what, names=names, env_var=env_var, error=error)
    return spec.strip()


def load_attribute(spec: str, *, what: str, names: str, env_var: str, error: type[ValueError]) -> tuple[object, str]:
    """The object ``spec`` names, and its attribute path (for the caller's messages); ``error`` when the spec's
    form is wrong, its module or file does not import, or the attribute is missing."""
    target, attr, is_file = spec_parts(spec, what=what, names=names, env_var=env_var, error=error)
    module = _import_file(spec, target, what, error) if is_file else _import_module(spec, target, what, error)
    obj = module
    for name in attr.split("."):
        if not hasattr(obj, name):
            raise error(f"{what} {spec!r}: {target} has no attribute {attr!r}")
        obj = getattr(obj, name)
    return obj, attr


def _import_module(spec: str, target: str, what: str, error: type[ValueError]):
    try:
        return importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - ImportError, or the module's own error while it runs
        hint = (f" (a file in the working directory is named by its path: './{target.replace('.', '/')}.py:...')"
                if isinstance(exc, ModuleNotFoundError) and exc.name == target.split(".")[0] else "")
        raise error(f"{what} {spec!r}: module {target!r} does not import: "
                    f"{type(exc).__name__}: {exc}{hint}") from exc


def _import_file(spec: str, target: str, what: str, error: type[ValueError]):
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise error(f"{what} {spec!r}: no Python file at {path} (a relative path is read from the "
                    "working directory)")
    # one module per version of the file, under a name of its own: a second gate in the process reuses it, and
    # a gate opened after the file was edited loads the edit
    stat = path.stat()
    prefix = "gatekeeper_" + re.sub(r"\W", "_", what) + "_"
    name = prefix + hashlib.sha256(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise error(f"{what} {spec!r}: {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the file's own error
        del sys.modules[name]
        raise error(f"{what} {spec!r}: {path} does not import: {type(exc).__name__}: {exc}") from exc
    return module
