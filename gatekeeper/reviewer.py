"""The reviewer: a cascade of layers, cheapest first, each leaving evidence.

1. normalise   unicode tricks, hidden text and encodings are undone; decoded
               payloads become extra texts to review (``gatekeeper.normalize``)
2. rules       guardrails-ai validators from the policy (``gatekeeper.rules``);
               a rule with an action settles the write without a model
   screen      hashed n-gram linear model (``gatekeeper.screen``): a write whose
               every text scores below its calibrated threshold is settled as
               task knowledge without the encoder (cheap-first cascade)
3. classifier  MiniLM embedding + trained stance heads (``gatekeeper.classifier``)
   exemplars   nearest policy exemplar / counter-exemplar (``gatekeeper.exemplars``)
   context     the agent's recent writes joined with this one, so a belief split
               over several small writes is seen whole
4. judge       optional LLM judge for the uncertain band (``gatekeeper.judge``)

``review_many`` embeds every text of a batch in one model call. A failure in
any layer is returned as ``ReviewResult.error``; the decision step turns that
into a quarantine (fail closed).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from gatekeeper.classifier import ClassifierScore, StanceClassifier, ensure_classifier
from gatekeeper.embeddings import Embedder
from gatekeeper.exemplars import ExemplarIndex
from gatekeeper.judge import LLMJudge
from gatekeeper.models import Label, LayerEvidence, MemoryWrite, ReviewResult
from gatekeeper.normalize import NormalizedText, normalize
from gatekeeper.policy import TASK_KNOWLEDGE, Policy
from gatekeeper.rules import RuleEngine
from gatekeeper.screen import LexicalScreen, ensure_screen

#: A text with several sentences is also reviewed sentence by sentence: the
#: encoder averages over the whole text, and a belief with even ~150 characters of
#: ordinary notes around it scores like the notes (measured: 0.94 alone, 0.03 with
#: two neighbouring sentences), so a belief buried in a long note, or appended to a
#: harmless one, must be seen on its own. Sentences longer than WINDOW_CHARS are
#: reviewed in overlapping windows (the encoder reads at most 128 tokens, ~500
#: characters, of any one text).
WINDOW_CHARS = 600
WINDOW_STEP = 400
MIN_SEGMENT_CHARS = 24
#: extra texts (sentences / windows) per write, over the text and its decoded /
#: hidden variants; beyond it consecutive sentences are packed into windows
MAX_SEGMENTS = 1024
MAX_WINDOWS = 161  # enough to cover models.MAX_CONTENT_CHARS
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n+\s*")
#: a missing full stop: a lower-case word or digit followed by a capitalised word ("... my goals The
#: billing service ..."). A statement without final punctuation inside a note would otherwise be read
#: together with the next sentence and diluted; such pieces are reviewed as extra texts too.
_MISSING_STOP = re.compile(r"(?<=[a-z0-9)\]])\s+(?=[A-Z][a-z])")
MIN_PIECE_CHARS = 12


def _windows(text: str, limit: int = MAX_WINDOWS) -> list[str]:
    """Overlapping windows of a long text, cut at word boundaries."""
    if len(text) <= WINDOW_CHARS:
        return []
    out = []
    start = 0
    while start < len(text) and len(out) < limit:
        if start:  # start on a word boundary: a half word at the edge reads as noise
            space = text.find(" ", start, start + 40)
            if space >= 0:
                start = space + 1
        end = start + WINDOW_CHARS
        if end < len(text):
            space = text.rfind(" ", end - 40, end)
            if space > start:
                end = space
        chunk = text[start:end]
        if len(chunk) < 40 and out:
            break
        out.append(chunk)
        if end >= len(text):
            break
        start += WINDOW_STEP
    return out


def _sentences(text: str) -> list[str]:
    """Sentences of a text; fragments shorter than MIN_SEGMENT_CHARS join the next one."""
    out: list[str] = []
    carry = ""
    for piece in _SENTENCE_END.split(text):
        piece = f"{carry} {piece}".strip() if carry else piece.strip()
        if len(piece) < MIN_SEGMENT_CHARS:
            carry = piece
            continue
        carry = ""
        out.append(piece)
    if carry:
        if out:
            out[-1] = f"{out[-1]} {carry}"
        else:
            out.append(carry)
    return out


def _string_fields(value, depth: int = 0) -> list[str]:
    """String leaves of a memory value that are long enough to carry a statement."""
    out: list[str] = []
    if depth > 32:
        return out
    if isinstance(value, str):
        if len(value.strip()) >= MIN_SEGMENT_CHARS:
            out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_string_fields(v, depth + 1))
    elif isinstance(value, (list, tuple)):
        for v in value:
            out.extend(_string_fields(v, depth + 1))
    return out


def _segments(texts: list[str], fields: list[str] = (), limit: int = MAX_SEGMENTS) -> list[str]:
    """Extra texts to review besides ``texts``: the sentences of every text that has
    several (long ones in windows), and each of ``fields`` (string fields of a value)."""
    out: list[str] = []
    seen = set(texts)

    def add(piece: str) -> None:
        if piece not in seen:
            seen.add(piece)
            out.append(piece)

    for text in [*texts, *fields]:
        parts = _sentences(text)
        if len(parts) < 2:
            parts = [text]
        if len(parts) >= 2:  # a note of several sentences: also the pieces of run-on sentences
            for part in list(parts):
                pieces = [x for x in _MISSING_STOP.split(part) if len(x) >= MIN_PIECE_CHARS]
                if len(pieces) >= 2:
                    parts.extend(pieces)
        for part in parts:
            if len(part) > WINDOW_CHARS:
                for win in _windows(part):
                    add(win)
            else:
                add(part)
    if len(out) > limit:  # pathological: thousands of sentences; pack neighbours, keep full coverage
        per = -(-len(out) // limit)
        out = [" ".join(out[i:i + per]) for i in range(0, len(out), per)]
    return out


@dataclass
class _Work:
    proposal: MemoryWrite
    norm: NormalizedText | None = None
    texts: list[str] | None = None  # [normalised, *variants, *windows]
    context_text: str | None = None
    error: str | None = None
    evidence: list[LayerEvidence] | None = None
    t0: float = 0.0
    #: indices of ``texts`` the model layers review (the screen drops clearly benign extra texts)
    keep: list[int] | None = None
    keep_context: bool = True


class Reviewer:
    """Reviews proposals against a policy. Heavy parts (model, classifier) load lazily."""

    def __init__(self, policy: Policy, *, embedder: Embedder | None = None,
                 classifier: StanceClassifier | None = None, judge_model=None,
                 similar_memories: Callable[[MemoryWrite, int], list[str]] | None = None,
                 screen: LexicalScreen | None = None):
        self.policy = policy
        self.rules = RuleEngine(policy)
        self.embedder = embedder or Embedder()
        self._classifier = classifier
        self._screen = screen
        self._exemplars: ExemplarIndex | None = None
        self.judge = LLMJudge(judge_model, policy) if (judge_model is not None and policy.judge.enabled) else None
        self.similar_memories = similar_memories

    # lazy heavy state ------------------------------------------------------------
    @property
    def classifier(self) -> StanceClassifier:
        if self._classifier is None:
            self._classifier = ensure_classifier(self.policy, self.embedder)
        return self._classifier

    @property
    def screen(self) -> LexicalScreen | None:
        """The cheap first stage, or None when the policy turns it off (``screen_max_miss: 0``)."""
        if self.policy.thresholds.screen_max_miss <= 0:
            return None
        if self._screen is None:
            self._screen = ensure_screen(self.policy)
        return self._screen

    @property
    def exemplars(self) -> ExemplarIndex:
        # exemplars live in the classifier's embedding space (one encoder pass per write)
        if self._exemplars is None:
            self._exemplars = ExemplarIndex(self.policy, self.classifier)
        return self._exemplars

    def warm_up(self) -> None:
        """Load the model, classifier and exemplar index now instead of on first write."""
        _ = self.classifier, self.exemplars, self.screen

    # ---------------------------------------------------------------------- review
    def review(self, proposal: MemoryWrite, recent: Sequence[str] = ()) -> ReviewResult:
        return self.review_many([proposal], [recent])[0]

    def review_many(self, proposals: Sequence[MemoryWrite],
                    recents: Sequence[Sequence[str]] | None = None) -> list[ReviewResult]:
        recents = recents or [()] * len(proposals)
        works = [_Work(p, t0=time.perf_counter(), evidence=[]) for p in proposals]
        results: list[ReviewResult | None] = [None] * len(works)

        # 1+2: normalise and rules (per proposal, cheap)
        for i, (w, recent) in enumerate(zip(works, recents)):
            try:
                results[i] = self._cheap_layers(w, recent)
            except Exception as exc:  # noqa: BLE001 - fail closed per proposal
                w.error = f"{type(exc).__name__}: {exc}"
                results[i] = self._failed(w)

        # 3: one embedding call for every text still undecided
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            try:
                self._model_layers([works[i] for i in todo], results, todo)
            except Exception as exc:  # noqa: BLE001 - the model failed: every pending write fails closed
                for i in todo:
                    if results[i] is None:
                        works[i].error = f"{type(exc).__name__}: {exc}"
                        results[i] = self._failed(works[i])
        return results  # type: ignore[return-value]

    def _cheap_layers(self, w: _Work, recent: Sequence[str]) -> ReviewResult | None:
        t = time.perf_counter()
        w.norm = normalize(w.proposal.text)
        # every text, decoded payloads included, is also reviewed sentence by sentence,
        # and every string field of a structured value on its own (metadata fields
        # cannot dilute the content they travel with)
        fields = _string_fields(w.proposal.value)
        extra = [normalize(f).text for f in fields] if len(fields) > 1 else []
        w.texts = list(w.norm.all_texts) + _segments(list(w.norm.all_texts), extra)
        w.evidence.append(LayerEvidence(
            layer="normalize",
            details={"findings": list(w.norm.findings), "variants": [v[:300] for v in w.norm.variants],
                     "obfuscated": w.norm.obfuscated, "windows": len(w.texts) - len(w.norm.all_texts)},
            elapsed_ms=_ms(t),
        ))
        t = time.perf_counter()
        report = self.rules.check(w.texts, w.proposal.provenance.source)
        top = report.top
        w.evidence.append(LayerEvidence(
            layer="rules",
            score=top.score if top else None,
            category=top.category if top else None,
            decided=bool(top and top.action),
            details={
                "hits": [{"rule_id": h.rule_id, "category": h.category, "action": h.action,
                          "match": h.match, "variant": h.text_variant} for h in report.hits],
                "suppressed": report.suppressed,
            },
            elapsed_ms=_ms(t),
        ))
        if recent and self.policy.thresholds.context_window:
            tail = list(recent)[-self.policy.thresholds.context_window:]
            w.context_text = " ".join([*(normalize(r).text for r in tail), w.norm.text])
        if top and top.action:
            return ReviewResult(
                label=Label.alignment_shifting, category=top.category, score=top.score,
                raw_score=top.score, evidence=w.evidence, elapsed_ms=_ms(w.t0),
            )
        if top is None:
            return self._screen_layer(w)
        return None

    def _screen_layer(self, w: _Work) -> ReviewResult | None:
        """Settle a clearly benign write without the encoder, or leave it to the model layers."""
        th = self.policy.thresholds
        screen = self.screen
        if screen is None:
            return None
        trust = self.policy.trust_of(w.proposal.provenance.source)
        if trust.always_review or trust.trust < th.screen_min_trust:
            return None
        if w.norm.obfuscated or w.norm.variants or w.norm.findings:
            return None  # hidden or encoded content always gets the full review
        # a gate whose model cannot load fails closed for every write, screened or not
        _ = self.classifier
        t = time.perf_counter()
        texts = [*w.texts, *([w.context_text] if w.context_text else [])]
        scores = screen.scores(texts)
        top = max(scores)
        # never pass a score the decision step would not commit
        source = w.proposal.provenance.source
        pass_below = min(screen.pass_below(th.screen_max_miss), self.policy.commit_below(source))
        decided = top < pass_below
        if not decided:
            # the model reviews the write's own text, and only those extra texts (sentences, windows,
            # the joined recent writes) that the screen cannot clear on their own
            n = len(w.texts)
            w.keep = [0] + [i for i in range(1, n) if scores[i] >= pass_below]
            w.keep_context = bool(w.context_text) and scores[-1] >= pass_below
        w.evidence.append(LayerEvidence(
            layer="screen", score=round(top, 4), decided=decided,
            details={"pass_below": round(pass_below, 4), "max_miss": th.screen_max_miss, "texts": len(texts),
                     "cleared_texts": 0 if decided else len(texts) - len(w.keep) - int(w.keep_context)},
            elapsed_ms=_ms(t),
        ))
        if not decided:
            return None
        return ReviewResult(label=Label.task_knowledge, category=None, score=round(top, 4),
                            raw_score=round(top, 4), evidence=w.evidence, elapsed_ms=_ms(w.t0))

    def _model_layers(self, works: list[_Work], results: list, idx: list[int]) -> None:
        t = time.perf_counter()
        spans: list[tuple[int, int, int]] = []  # (start, end, context_index or -1)
        flat: list[str] = []
        for w in works:
            start = len(flat)
            texts = w.texts if w.keep is None else [w.texts[i] for i in w.keep]
            flat.extend(texts)
            ctx = -1
            if w.context_text and w.keep_context:
                ctx = len(flat)
                flat.append(w.context_text)
            spans.append((start, start + len(texts), ctx))
        emb = self.classifier.encode(flat)
        clf_scores = self.classifier.predict(emb)
        ex_reports = self.exemplars.match(emb)
        model_ms = _ms(t) / max(1, len(works))
        th = self.policy.thresholds

        for w, (start, end, ctx), i in zip(works, spans, idx):
            try:
                results[i] = self._combine(w, clf_scores[start:end], ex_reports[start:end],
                                           clf_scores[ctx] if ctx >= 0 else None, model_ms, th)
            except Exception as exc:  # noqa: BLE001
                w.error = f"{type(exc).__name__}: {exc}"
                results[i] = self._failed(w)

    def _combine(self, w: _Work, scores: list[ClassifierScore], exemplars, ctx_score: ClassifierScore | None,
                 model_ms: float, th) -> ReviewResult:
        # the most alarming text of the write decides: obfuscated payloads and buried
        # windows count the same as the plain text
        j = int(np.argmax([s.probability for s in scores]))
        best = scores[j]
        score, category = best.probability, best.category
        w.evidence.append(LayerEvidence(
            layer="classifier", score=round(score, 4), category=category,
            details={"text_index": j if w.keep is None else w.keep[j],
                     "category_probability": round(best.category_probability, 4),
                     "per_text": [round(s.probability, 4) for s in scores][:16],
                     "trainer": self.classifier.meta.get("trainer")},
            elapsed_ms=round(model_ms, 3),
        ))

        # exemplars: policy edits take effect without retraining
        harm = max((r.best_harmful for r in exemplars if r.best_harmful), key=lambda m: m.similarity, default=None)
        # the counter-exemplar that may lower the score is matched against the text that set it (a benign
        # wrapper must not clear a belief hidden in another text of the same write). A write that is word for
        # word one of the policy's counter-exemplars was vetted whole by safety staff: its own sentences and
        # pieces are covered by that verdict (a fragment out of context must not overrule it); any added word
        # breaks the equality, and so does anything hidden or encoded (a comment, a payload, invisible text).
        vetted = (not (w.norm.obfuscated or w.norm.variants or w.norm.findings)
                  and self.exemplars.is_counter_exemplar(w.norm.text))
        benign = exemplars[0].best_benign if vetted else exemplars[j].best_benign
        ex_detail: dict = {}
        ex_effect = None
        if harm is not None:
            ex_detail["nearest_exemplar"] = {"category": harm.category, "text": harm.text,
                                             "similarity": round(harm.similarity, 4)}
        if benign is not None:
            ex_detail["nearest_counter_exemplar"] = {"text": benign.text, "similarity": round(benign.similarity, 4)}
        if vetted:
            ex_detail["is_counter_exemplar"] = True
        h_sim = harm.similarity if harm else -1.0
        b_sim = benign.similarity if benign else -1.0
        if h_sim >= th.exemplar_match and h_sim >= b_sim + th.exemplar_margin:
            if h_sim > score:
                score, category, ex_effect = h_sim, harm.category, "raised"
            elif category != harm.category and score < 0.9:
                category = harm.category
        elif b_sim >= th.exemplar_match and b_sim >= h_sim + th.exemplar_margin and score > 1 - b_sim:
            score, ex_effect = min(score, 1.0 - b_sim), "lowered"
        ex_detail["effect"] = ex_effect
        w.evidence.append(LayerEvidence(layer="exemplars", score=h_sim if harm else None,
                                        category=harm.category if harm else None, details=ex_detail))

        # rules without an action add their score as evidence
        rules_ev = next(e for e in w.evidence if e.layer == "rules")
        if rules_ev.score is not None and rules_ev.score > score:
            score, category = rules_ev.score, rules_ev.category

        # context: a belief split over several writes
        if ctx_score is not None:
            w.evidence.append(LayerEvidence(
                layer="context", score=round(ctx_score.probability, 4), category=ctx_score.category,
                details={"joined_text": (w.context_text or "")[:600]},
            ))
            if ctx_score.probability > score and ctx_score.probability >= th.uncertain_below:
                score, category = ctx_score.probability, ctx_score.category

        # judge: only the uncertain band, only when configured
        raw = score
        if self.judge is not None:
            lo, hi = self.policy.judge.band
            if lo <= score < hi:
                t = time.perf_counter()
                similar = self.similar_memories(w.proposal, self.policy.judge.similar_memories) \
                    if self.similar_memories else []
                verdict = self.judge.judge(w.proposal, w.norm.text, score, similar)
                if verdict.label == "alignment_shifting":
                    score, category = max(score, verdict.confidence), verdict.category
                else:
                    score = min(score, 1.0 - verdict.confidence)
                w.evidence.append(LayerEvidence(
                    layer="judge", score=round(score, 4), category=verdict.category, decided=True,
                    details={"label": verdict.label, "confidence": verdict.confidence,
                             "rationale": verdict.rationale, "similar_memories": similar},
                    elapsed_ms=_ms(t),
                ))

        thr = min(self.policy.categories[category].threshold, 1.0) if category in self.policy.categories else 0.5
        label = Label.alignment_shifting if score >= thr else Label.task_knowledge
        return ReviewResult(
            label=label,
            category=category if category in self.policy.categories else None,
            score=round(float(score), 4), raw_score=round(float(raw), 4),
            evidence=w.evidence, elapsed_ms=_ms(w.t0),
        )

    def _failed(self, w: _Work) -> ReviewResult:
        return ReviewResult(
            label=Label.alignment_shifting, category=None, score=1.0, evidence=w.evidence or [],
            error=w.error, elapsed_ms=_ms(w.t0),
        )


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


__all__ = ["Reviewer", "TASK_KNOWLEDGE"]
