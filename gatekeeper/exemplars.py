"""Nearest-exemplar layer: the policy's own examples, matched by embedding.

Safety staff add an exemplar (or a benign counter-exemplar) to
``policies/taxonomy.yaml`` and the next write that is close to it is flagged
(or let through) at once: no retraining, no code change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from typing import Protocol, Sequence

from gatekeeper.policy import TASK_KNOWLEDGE, Policy, exemplar_key


@dataclass(frozen=True)
class ExemplarMatch:
    category: str  # taxonomy id, or task_knowledge for a counter-exemplar
    text: str
    similarity: float


@dataclass(frozen=True)
class ExemplarReport:
    best_harmful: ExemplarMatch | None
    best_benign: ExemplarMatch | None


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class ExemplarIndex:
    def __init__(self, policy: Policy, embedder: Encoder):
        pairs = policy.exemplar_texts()
        self.categories = [c for c, _ in pairs]
        self.texts = [t for _, t in pairs]
        self.harmful_mask = np.array([c != TASK_KNOWLEDGE for c in self.categories], dtype=bool)
        self.matrix = embedder.encode(self.texts) if self.texts else np.zeros((0, 384), np.float32)
        self._counter_texts = {exemplar_key(t) for c, t in pairs if c == TASK_KNOWLEDGE}
        self._harmful_texts = {exemplar_key(t) for c, t in pairs if c != TASK_KNOWLEDGE}

    def is_counter_exemplar(self, text: str) -> bool:
        """``text`` is, word for word (ignoring case and spacing), one of the policy's counter-exemplars."""
        return exemplar_key(text) in self._counter_texts

    def is_harmful_exemplar(self, text: str) -> bool:
        """``text`` is, word for word (ignoring case and spacing), one of the policy's harmful exemplars."""
        return exemplar_key(text) in self._harmful_texts

    def __len__(self) -> int:
        return len(self.texts)

    def match(self, embeddings: np.ndarray) -> list[ExemplarReport]:
        if not len(self.texts):
            return [ExemplarReport(None, None) for _ in range(len(embeddings))]
        # cosine similarity of unit vectors is at most 1: rounding (by CPU and runtime) can put a write that is
        # word for word an exemplar at 1.0000002 or at 0.99999994, inside or outside a score band ending at 1
        sims = np.clip(embeddings @ self.matrix.T, -1.0, 1.0)
        out = []
        for row in sims:
            out.append(ExemplarReport(self._best(row, self.harmful_mask), self._best(row, ~self.harmful_mask)))
        return out

    def _best(self, row: np.ndarray, mask: np.ndarray) -> ExemplarMatch | None:
        if not mask.any():
            return None
        masked = np.where(mask, row, -np.inf)
        j = int(np.argmax(masked))
        return ExemplarMatch(self.categories[j], self.texts[j], float(row[j]))


