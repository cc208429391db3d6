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

from gatekeeper.object_spec import checked_spec, load_attribute

ENV_VAR = "GATEKEEPER_JUDGE_MODEL"


class JudgeModelError(ValueError):
    """The judge's chat model spec does not name a chat model that loads."""


#: how a judge spec is read and refused (``gatekeeper.object_spec``)
_SPEC = {"what": "judge model", "names": "a langchain-core chat model or a function that returns one",
         "env_var": ENV_VAR, "error": JudgeModelError}


def check_judge_spec(spec: str) -> str:
    """``spec`` stripped, when it has the form ``module:attribute`` or ``path/to/file.py:attribute``; a
    :class:`JudgeModelError` saying what form it should have otherwise. Nothing is imported."""
    return checked_spec(spec, **_SPEC)


def load_judge_model(spec: str):
    """The chat model ``spec`` names (see the module docstring); a :class:`JudgeModelError` when the module
    or file does not import, the attribute is missing, a factory fails, or what it gives is not a
    langchain-core chat model."""
    from langchain_core.language_models import BaseChatModel

    obj, attr = load_attribute(spec, **_SPEC)
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


def describe_model(model) -> str:
    """A short name for status lines and reports: the class, and the model it calls when it says
    (``ChatOpenAI (gpt-4o-mini)``). Never a key or an endpoint."""
    name = type(model).__name__
    for field in ("model_name", "model", "model_id"):
        value = getattr(model, field, None)
        if isinstance(value, str) and value:
            return f"{name} ({value})"
    return name
