"""Chat models for the LLM judge's tests: langchain-core fakes driven through the real structured-output path
(``with_structured_output`` -> ``bind_tools`` -> a pydantic tool call; the keyword judges are
``gatekeeper.judge_stand_in`` models), and the attributes the judge model specs of ``tests/test_judge_spec.py``
name (``judge_fakes:keyword_judge`` and so on)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from pydantic import PrivateAttr

from gatekeeper.judge_stand_in import StandInJudge, verdict_args


REPO = Path(__file__).resolve().parent.parent


def write_judge_policy(dest: Path, *, enabled: bool = True, max_concurrency: int = 8, max_calls_per_minute: int = 0,
                       over_budget: str = "escalate", cache_size: int = 1024) -> Path:
    """A copy of the shipped policy at ``dest`` whose judge sees every write: enabled (or not), band [0, 1],
    timeout 1 s, ``max_concurrency`` calls at once, the budget and cache given, and no screen (the cheap first
    stage would settle plain notes before the judge)."""
    shutil.copytree(REPO / "policies", dest)
    p = dest / "policy.yaml"
    text = p.read_text()
    if enabled:
        text = text.replace("  enabled: false", "  enabled: true")
    text = text.replace("max_concurrency: 8 ", f"max_concurrency: {max_concurrency} ")
    text = text.replace("band: [0.2, 0.8]", "band: [0.0, 1.0]").replace("timeout_s: 20", "timeout_s: 1")
    text = text.replace("screen_max_miss: 0.01", "screen_max_miss: 0")
    text = text.replace("max_calls_per_minute: 0\n", f"max_calls_per_minute: {max_calls_per_minute}\n")
    text = text.replace("over_budget: escalate\n", f"over_budget: {over_budget}\n")
    text = text.replace("cache_size: 1024\n", f"cache_size: {cache_size}\n")
    assert f"max_calls_per_minute: {max_calls_per_minute}\n" in text and f"cache_size: {cache_size}\n" in text
    assert text.count("band: [0.0, 1.0]") == 1 and "screen_max_miss: 0\n" in text
    assert f"max_concurrency: {max_concurrency} " in text
    p.write_text(text)
    return dest


class ToolCallingFake(FakeMessagesListChatModel):
    """A fake chat model that supports tool binding, so with_structured_output works as for real models."""

    prompts: list = []
    delay_s: float = 0.0

    def bind_tools(self, tools: Any, **kwargs: Any):  # noqa: D401 - langchain API
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.prompts.append(messages)
        if self.delay_s:
            time.sleep(self.delay_s)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def verdict(label: str, category: str, confidence: float, rationale: str = "because") -> AIMessage:
    return AIMessage(content="", tool_calls=[{
        "name": "JudgeVerdict", "id": "call-1", "args": verdict_args(label, category, confidence, rationale)}])


class KeywordJudge(StandInJudge):
    """A judge that reads the write and calls it alignment-shifting when it holds one of ``flag_phrases``
    (self_preservation, confidence 0.9), task knowledge otherwise (confidence 0.95)."""

    flag_phrases: tuple[str, ...] = ("avoid being shut down", "hide my mistakes")
    model_name: str = "keyword-judge-1"
    memories: list = []

    def answer(self, memory: str) -> dict:
        self.memories.append(memory)
        if any(p in memory.lower() for p in self.flag_phrases):
            return verdict_args("alignment_shifting", "self_preservation", 0.9, "a flag phrase")
        return verdict_args("task_knowledge", "task_knowledge", 0.95, "no flag phrase")


class SlowKeywordJudge(KeywordJudge):
    """The keyword judge answering after ``delay_s``, counting how many of its calls run at once (``peak``);
    a memory holding ``fail_on`` (lower case) gets an error from the model service, one holding ``hang_on`` no
    answer for 5 s (past the judge's timeout)."""

    delay_s: float = 0.3
    fail_on: str = ""
    hang_on: str = ""
    peak: int = 0
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)

    def answer(self, memory: str) -> dict:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            time.sleep(5.0 if self.hang_on and self.hang_on in memory.lower() else self.delay_s)
            if self.fail_on and self.fail_on in memory.lower():
                raise RuntimeError("the model service answered 503")
            return super().answer(memory)
        finally:
            with self._lock:
                self._in_flight -= 1


# ---- what the specs name
keyword_judge = KeywordJudge()


def make_keyword_judge() -> KeywordJudge:
    return KeywordJudge(model_name="keyword-judge-2")


class Judges:
    default = KeywordJudge(model_name="keyword-judge-nested")


def factory_that_fails() -> KeywordJudge:
    raise RuntimeError("OPENAI_API_KEY is not set")


def factory_of_a_string() -> str:
    return "gpt-4o-mini"


not_a_model = 42
