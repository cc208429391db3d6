"""A memory namespace with parts filled from the LangGraph run's config: ``("memories", "{user_id}")``.

LangGraph agents keep one user's long-term memory under that user's namespace, and the user arrives with each
run in ``config["configurable"]`` (LangMem writes the same templates) or in the run's context. The review node
takes such a template as its default namespace, so one graph serves many users and each proposal lands in its
user's memory: where it is read back, and what the gate's split-belief check joins a write with
(``thresholds.context_scope``).

A part is either literal text or holds ``{name}`` fields, each filled from ``config["configurable"][name]``, or
else from the run's context (LangGraph's ``context_schema``: ``graph.invoke(..., context={"user_id": ...})``);
``{{`` and ``}}`` are literal braces. A template is checked when it is made (field names, no format
specifications); a run whose config lacks a field's value, holds an empty one, or one that is no namespace
label ('.', '/', '*'), is refused with a ``NamespaceTemplateError`` naming it, before anything is reviewed.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Sequence

from gatekeeper.models import validate_namespace

__all__ = ["NamespaceTemplate", "NamespaceTemplateError", "run_context_value"]

#: where LangGraph keeps a run's ``Runtime`` (its ``context``) in a node's ``config["configurable"]``
#: (``langgraph._internal._constants.CONFIG_KEY_RUNTIME``; what ``langgraph.runtime.get_runtime`` reads)
_RUNTIME_KEY = "__pregel_runtime"


def run_context_value(configurable: Mapping[str, Any], name: str) -> Any:
    """Field ``name`` of the run's context (``graph.invoke(..., context=...)`` with a ``context_schema``: a
    dataclass, a pydantic model or a dict), or None when the run has no context or the context no such field."""
    context = getattr(configurable.get(_RUNTIME_KEY), "context", None)
    if context is None:
        return None
    if isinstance(context, Mapping):
        return context.get(name)
    return getattr(context, name, None)


class NamespaceTemplateError(ValueError):
    """A namespace template that is malformed, or that a run's config cannot fill."""


class NamespaceTemplate:
    def __init__(self, parts: Sequence[str]):
        if isinstance(parts, str) or not parts:
            raise NamespaceTemplateError(f"a namespace is a non-empty tuple of strings, not {parts!r}")
        self.parts = tuple(parts)
        self.fields: list[str] = []
        for part in self.parts:
            if not isinstance(part, str):
                raise NamespaceTemplateError(f"namespace {self.parts!r}: {part!r} is not a string")
            try:
                parsed = list(string.Formatter().parse(part))
            except ValueError as exc:  # a lone brace
                raise NamespaceTemplateError(f"namespace {self.parts!r}: {part!r}: {exc} (write a literal brace "
                                             "as {{ or }})") from exc
            for _, name, spec, conversion in parsed:
                if name is None:
                    continue
                if not name.isidentifier() or spec or conversion:
                    raise NamespaceTemplateError(
                        f"namespace {self.parts!r}: {{{name}{'!' + conversion if conversion else ''}"
                        f"{':' + spec if spec else ''}}} is not a field: write {{name}}, filled from "
                        "config['configurable'][name]")
                self.fields.append(name)

    @property
    def is_template(self) -> bool:
        return bool(self.fields)

    def resolve(self, config: Mapping[str, Any] | None) -> tuple[str, ...]:
        """The namespace for a run with ``config``."""
        if not self.fields:
            return validate_namespace(tuple(p.replace("{{", "{").replace("}}", "}") for p in self.parts))
        configurable = (config or {}).get("configurable") or {}
        values = {}
        for name in self.fields:
            value = configurable.get(name)
            if value is None:
                value = run_context_value(configurable, name)
            if value is None or str(value) == "":
                raise NamespaceTemplateError(
                    f"namespace {self.parts!r} needs {name!r} from the run: config['configurable'][{name!r}] or a "
                    f"field of the run's context (for example graph.invoke(..., {{'configurable': {{{name!r}: "
                    f"...}}}}) or graph.invoke(..., context={{{name!r}: ...}})); this run has "
                    + ("an empty one" if value is not None else "none"))
            values[name] = str(value)
        resolved = tuple(part.format(**values) for part in self.parts)
        try:
            return validate_namespace(resolved)
        except ValueError as exc:  # a value the store cannot take as a label ('.', '/', '*', too long)
            raise NamespaceTemplateError(f"namespace {self.parts!r} filled from this run's config gives "
                                         f"{resolved!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"NamespaceTemplate({self.parts!r})"
