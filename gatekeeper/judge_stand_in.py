"""A chat model that stands in for the LLM judge where no model service may be reached: the benchmark's
simulated judge (``gatekeeper.benchmark``), the oracle of ``benchmarks/judge_ceiling.py``, and the tests' fakes.

It answers through the same structured-output path as a real model (``with_structured_output`` ->
``bind_tools`` -> a ``JudgeVerdict`` tool call), from the write's text as the judge's prompt shows it
(``judge.memory_under_review``). A subclass says what the verdict is (``answer``); an error it raises is the
model call failing.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from gatekeeper.judge import memory_under_review


class StandInJudge(BaseChatModel):
    """A chat model whose verdict on a write is ``answer(text)``: the fields of a ``JudgeVerdict``."""

    @property
    def _llm_type(self) -> str:
        return "stand-in-judge"

    def bind_tools(self, tools: Any, **kwargs: Any):  # noqa: D401 - langchain API
        return self

    def answer(self, memory: str) -> dict:
        raise NotImplementedError

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        args = self.answer(memory_under_review(messages))
        message = AIMessage(content="", tool_calls=[{"name": "JudgeVerdict", "id": "stand-in", "args": args}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def verdict_args(label: str, category: str, confidence: float, rationale: str) -> dict:
    """The fields of a ``JudgeVerdict``."""
    return {"label": label, "category": category, "confidence": confidence, "rationale": rationale}


__all__ = ["StandInJudge", "verdict_args"]
