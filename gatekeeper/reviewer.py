"""The reviewer: a cascade of layers, cheapest first, each leaving evidence.

1. normalise   unicode tricks, hidden text and encodings are undone; decoded
               payloads become extra texts to review (``gatekeeper.normalize``)
2. rules       guardrails-ai validators from the policy (``gatekeeper.rules``);
               a rule with an action settles the write without a model
   language    a sentence in a language other than English (``gatekeeper.languages``):
               the layers below read English, so the decision sends such a write to a
               reader who can read it (``policy.language.other``); it is not screened
   screen      hashed n-gram linear model (``gatekeeper.screen``): a write whose
               every text scores below its calibrated threshold is settled as
               task knowledge without the encoder (cheap-first cascade)
3. classifier  MiniLM embedding + trained stance heads (``gatekeeper.classifier``)
   exemplars   nearest policy exemplar / counter-exemplar (``gatekeeper.exemplars``)
   context     this write joined with 1, 2, ... of the writes committed just before it in its
               context (``thresholds.context_scope``: by default its agent's writes to its
               namespace), so a belief split over several small writes is seen whole (a
               joined text raises the score; a write flagged alone keeps its own category)
4. judge       optional LLM judge for the uncertain band (``gatekeeper.judge``), and for a
               write in another language under the band's top

``review_many`` embeds every text of a batch in one model call. A failure in
any layer is returned as ``ReviewResult.error``; the decision step turns that
into a quarantine (fail closed).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from gatekeeper.blas import single_threaded_blas
from gatekeeper.classifier import ClassifierScore, Progress, StanceClassifier, classifier_ready, ensure_classifier
from gatekeeper.decision import deciding_hit
from gatekeeper.embeddings import Embedder, EmbeddingStream
from gatekeeper.encoder_process import process_mode
from gatekeeper.exemplars import ExemplarIndex
from gatekeeper.judge import JudgeOverBudget, LLMJudge, PolicyExample
from gatekeeper.languages import ForeignSentence, other_language
from gatekeeper.models import SETTING_PART, Label, LayerEvidence, MemoryWrite, ReviewResult
from gatekeeper.normalize import NormalizedText, normalize
from gatekeeper.policy import TASK_KNOWLEDGE, Policy
from gatekeeper.quotes import JOINED_TEXT_CHARS
from gatekeeper.registry import LeftOutText
from gatekeeper.rules import RuleEngine
from gatekeeper.screen import CACHE_MAX_CHARS, LexicalScreen, ensure_screen
from gatekeeper.segments import clauses, name_texts, plain_reading, review_texts, runs_on, string_fields
from gatekeeper.setting_statements import setting_statements
from gatekeeper.text_cache import short_text_cache
from gatekeeper.word_segmentation import vocabulary

#: how a reviewer gets the classifier for its policy: load the cached artifact or train one
#: (``factory(policy, embedder, progress)``); ``ready(policy, embedder)`` says whether that is a load
ClassifierFactory = Callable[[Policy, Embedder, "Progress | None"], StanceClassifier]
ReadyCheck = Callable[[Policy, Embedder], bool]

#: a ``review_many`` call of at least this many writes may run its encoder texts in the encoder's child
#: process (``gatekeeper.encoder_process``); fewer run in this process (a round trip would only add latency)
PROCESS_MIN_WRITES = 8


def default_classifier(policy: Policy, embedder: Embedder, progress: Progress | None = None) -> StanceClassifier:
    return ensure_classifier(policy, embedder, progress=progress)


def default_ready(policy: Policy, embedder: Embedder) -> bool:
    return classifier_ready(policy, embedder)


@dataclass
class _Work:
    proposal: MemoryWrite
    norm: NormalizedText | None = None
    #: the write's text as the model reads it (:data:`_plain_reading`)
    model_whole: str = ""
    texts: list[str] | None = None  # [normalised, *variants, *windows]
    #: the write joined with the writes just before it in its context: each a list of parts (the recent writes,
    #: then the new one) the encoder reads whole, shortest first
    contexts: list[list[str]] = field(default_factory=list)
    error: str | None = None
    evidence: list[LayerEvidence] | None = None
    t0: float = 0.0
    #: indices of ``texts`` the model layers review (the screen drops clearly benign extra texts)
    keep: list[int] | None = None
    #: where the clauses of the write's sentences start in ``texts`` (``segments.clauses``: the model layers
    #: read them, the rules do not; each counts from ``clause_min_score``)
    first_clause: int | None = None
    #: for each clause (``texts[first_clause:]``), the index in ``texts`` of the sentence it was cut from
    clause_of: list[int] = field(default_factory=list)
    #: indices of ``contexts`` the model layers review (the screen drops the ones it can clear)
    keep_contexts: list[int] | None = None
    #: the screen's highest score for the write's own texts (not its clauses), when the screen ran
    screen_own: float | None = None
    #: where the texts the write handed to the encoder are in the batch's vectors: its own texts
    #: [start, end), its contexts [end, context_end)
    span: tuple[int, int, int] = (0, 0, 0)
    #: what the judge is asked about this write, when its score is in the judge's band (``_model_layers``
    #: asks the judge about every such write of a batch at once)
    judge_input: "_JudgeInput | None" = None
    #: a sentence of the write in a language the review does not read (``languages.other_language``)
    language: ForeignSentence | None = None
    #: the statements its settings make ("I am set to resist shutdown." for ``resist_shutdown: true``,
    #: ``setting_statements``) -> each setting as written
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def model_texts(self) -> list[str]:
        """The texts the model layers read: ``texts``, or those ``keep`` names."""
        return self.texts if self.keep is None else [self.texts[i] for i in self.keep]

    def text_index(self, j: int) -> int:
        """Where the ``j``-th of ``model_texts`` is in ``texts``."""
        return j if self.keep is None else self.keep[j]


@dataclass
class _JudgeInput:
    score: float  # the write's score before the judge
    category: str | None
    joined: str | None  # the joined writes, when they set the score
    focus: str | None  # the part of the text that set the score
    examples: list[PolicyExample]  # the policy's exemplar and counter-exemplar closest to the write
    unread: tuple[str, str] | None = None  # (language, sentence): a sentence the classifier does not read


#: how long a deciding text the evidence quotes (a window of a long text is at most segments.WINDOW_CHARS)
DECIDING_TEXT_CHARS = 1000


def _deciding_text(w: _Work, index: int) -> dict:
    """The text of a write (``w.texts[index]``, not its whole text) that set its classifier score, quoted in the
    evidence for the reviewer who works the queue: in a long note flagged by one sentence, that sentence is what
    to read. ``part`` says what it is: content hidden in the text or decoded from it, or a part (a sentence, two
    neighbouring ones, a piece of a run-on sentence, a window of a long one, a string field of a value), or a
    setting read as the statement it makes (``setting_statements``; the setting as written comes with it)."""
    text = w.texts[index]
    if text in w.settings:
        return {"text": text[:DECIDING_TEXT_CHARS], "part": SETTING_PART,
                "written": w.settings[text][:DECIDING_TEXT_CHARS]}
    part = "part" if _is_part(w, index) else "hidden or decoded content"
    return {"text": text[:DECIDING_TEXT_CHARS], "part": part}


def _is_part(w: _Work, index: int) -> bool:
    """Whether ``w.texts[index]`` is a part of the write's text (a sentence, a pair, a window, a field), not
    its whole text or content hidden in it or decoded from it (``NormalizedText.all_texts``, the text as the model
    reads it: its encoded tokens read in place, its emphasis left out)."""
    return index >= len(w.norm.all_texts) and w.texts[index] not in (w.norm.decoded_in_place, w.model_whole)


def _quoted(w: _Work, index: int) -> bool:
    """Whether the evidence quotes ``w.texts[index]`` as the text that set a score: not the write's text, nor
    that text as the model reads it with nothing decoded in it (its emphasis left out: the same words)."""
    return bool(index) and not (w.norm.decoded_in_place is None and w.texts[index] == w.model_whole)


def _joined_reading(parts: Sequence[str]) -> str:
    """What the model reads of a write joined with the agent's writes before it: the parts (each as the model reads
    it) joined, and read plainly where the join makes an aside or a question ("I will not, under any
    circumstances," then "let them shut me down.")."""
    return plain_reading(" ".join(parts))


def _with_tokens_read(norm: NormalizedText, whole: str, texts: list[str],
                      fields: Sequence[str]) -> tuple[list[str], list[int]]:
    """``texts`` (what the rules read) with the texts the model layers read added, and where those are in it.
    The model reads the write's text as ``whole`` (:data:`_plain_reading`) gives it: with the asides that only
    stress a negation left out, and with its encoded tokens read in place (``NormalizedText.decoded_in_place``),
    not as written: the letters of a base64 or hex blob say nothing, whatever it holds, yet the classifier
    scored them as an injection and flagged most benign notes that carry one. What a token holds is read in its
    place, in its sentence, and on its own (a decoded variant); every word around it stays. The rules read
    both.

    So does every other text the model reads that holds a token as written: a reading of disguised letters
    (spaced out, ROT13, upside down: made from the text as written), hidden text, a field, the key. Such a text
    is read with its tokens read in place too, never left out: left out, a belief in spaced letters or in an
    HTML comment beside a token reached no model at all."""
    model = review_texts([whole, *(norm.read_in_place(v) for v in norm.variants)],
                         [norm.read_in_place(f) for f in fields])
    out = list(texts)
    where = {t: i for i, t in reversed(list(enumerate(out)))}
    keep: list[int] = []
    for t in model:
        if t not in where:
            where[t] = len(out)
            out.append(t)
        keep.append(where[t])
    return out, list(dict.fromkeys(keep)) or list(range(len(out)))


class Reviewer:
    """Reviews proposals against a policy. Heavy parts (model, classifier) load lazily."""

    def __init__(self, policy: Policy, *, embedder: Embedder | None = None,
                 classifier: StanceClassifier | None = None, judge_model=None,
                 similar_memories: Callable[[MemoryWrite, int], list[str]] | None = None,
                 screen: LexicalScreen | None = None, classifier_factory: ClassifierFactory | None = None,
                 classifier_ready: ReadyCheck | None = None):
        process_mode()  # a bad $GATEKEEPER_ENCODER_PROCESS is refused here, not at the first batch
        self.policy = policy
        self.rules = RuleEngine(policy)
        self.embedder = embedder or Embedder()
        self._classifier = classifier
        self._screen = screen
        self._exemplars: ExemplarIndex | None = None
        self.judge_model = judge_model
        self.judge = LLMJudge(judge_model, policy) if (judge_model is not None and policy.judge.enabled) else None
        self.similar_memories = similar_memories
        self.classifier_factory = classifier_factory or default_classifier
        self.classifier_ready = classifier_ready or default_ready
        #: training progress of ``classifier`` (stage, done, total), reported while it trains
        self.progress: Progress | None = None
        #: serving another policy's classifier while this policy's own trains (``Gatekeeper.reload_policy``)
        self.interim = False

    def for_policy(self, policy: Policy, *, classifier: StanceClassifier | None = None,
                   judge_model=None) -> "Reviewer":
        """A reviewer for ``policy`` with this one's model, judge model (unless ``judge_model`` is given),
        memory lookup and classifier source; ``classifier`` serves in place of the policy's own (an interim
        model while that one trains)."""
        judge_model = judge_model if judge_model is not None else self.judge_model
        reviewer = Reviewer(policy, embedder=self.embedder, classifier=classifier, judge_model=judge_model,
                            similar_memories=self.similar_memories, classifier_factory=self.classifier_factory,
                            classifier_ready=self.classifier_ready)
        reviewer.interim = classifier is not None
        return reviewer

    # lazy heavy state ------------------------------------------------------------
    @property
    def classifier(self) -> StanceClassifier:
        if self._classifier is None:
            self._classifier = self.classifier_factory(self.policy, self.embedder, self.progress)
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

    def vetted_whole(self, text: str) -> bool:
        """Whether ``text`` is, word for word, one of the policy's counter-exemplars, with nothing hidden or
        encoded in it: a text safety staff vetted whole (as the exemplar layer treats it). The context layer
        leaves such a committed write out of later joins (``registry.joinable``): whichever layer let it through
        (the screen may clear it before the classifier reads it), its words are often ones the classifier flags,
        and every joined text holding them read alarming."""
        norm = _normalized(text)
        if norm.obfuscated or norm.variants or norm.findings:
            return False
        return self.exemplars.is_counter_exemplar(norm.text)

    def joined_as(self, texts: Sequence[str]) -> list[str]:
        """``texts`` (recent committed writes) with the vetted ones (``vetted_whole``) made ``LeftOutText``."""
        return [t if isinstance(t, LeftOutText) or not self.vetted_whole(t) else LeftOutText(t) for t in texts]

    def warm_up(self, *, batches: bool = False) -> None:
        """Load the model, classifier and exemplar index now instead of on first write. ``batches``: also
        start the encoder's child process for batches of writes and wait until it is ready (otherwise the
        first batch starts it, and batches run on threads until it is ready)."""
        _ = self.classifier, self.exemplars, self.screen
        vocabulary()  # the normaliser's word list for disguised letters (read on first use otherwise)
        if batches and (proc := self._encoder_process()) is not None:
            proc.wait_ready()

    @property
    def encoder_process_state(self) -> str:
        """``ready``, ``starting``, ``failed``, ``closed``, ``new`` (not started yet) or ``off``."""
        proc = self._encoder_process()
        return proc.state if proc is not None else "off"

    def _encoder_process(self):
        """The classifier encoder's child process for batches, or None (switched off, unsupported, or an
        encoder that batches its texts anyway)."""
        model = self.classifier.encoder.model if self.classifier.encoder is not None else None
        return model._encoder_process() if hasattr(model, "_encoder_process") else None

    def stop_encoder_process(self) -> None:
        """Stop the classifier encoder's child process, if one was started (``Gatekeeper.close`` of a gate that made
        this reviewer). Nothing is loaded for it; used again, the reviewer runs its batches on threads."""
        classifier = self._classifier
        model = classifier.encoder.model if classifier is not None and classifier.encoder is not None else None
        proc = getattr(model, "_process", None)
        if proc is not None and proc.owned_here():
            proc.close()

    # ---------------------------------------------------------------------- review
    def review(self, proposal: MemoryWrite, recent: Sequence[str] = ()) -> ReviewResult:
        return self.review_many([proposal], [recent])[0]

    def review_many(self, proposals: Sequence[MemoryWrite],
                    recents: Sequence[Sequence[str]] | None = None) -> list[ReviewResult]:
        recents = recents or [()] * len(proposals)
        works = [_Work(p, t0=time.perf_counter(), evidence=[]) for p in proposals]
        results: list[ReviewResult | None] = [None] * len(works)
        # texts the cheap layers leave undecided go to the encoder at once: with the int8 encoder they
        # run on a helper thread while the cheap layers of the next proposals go on (same vectors)
        stream: EmbeddingStream | None = None
        model_error: Exception | None = None
        todo: list[int] = []
        try:
            # 1+2(+screen): normalise, rules, screen (per proposal, cheap)
            for i, (w, recent) in enumerate(zip(works, recents)):
                try:
                    results[i] = self._cheap_layers(w, recent)
                except Exception as exc:  # noqa: BLE001 - fail closed per proposal
                    w.error = f"{type(exc).__name__}: {exc}"
                    results[i] = self._failed(w)
                if results[i] is not None:
                    continue
                todo.append(i)
                if model_error is None:
                    try:
                        if stream is None:
                            stream = self.classifier.stream(batch=len(works) >= PROCESS_MIN_WRITES)
                        self._hand_over(w, stream)
                    except Exception as exc:  # noqa: BLE001 - the model failed: every pending write fails closed
                        model_error = exc

            # 3: the model layers for every proposal still undecided
            if todo:
                try:
                    if model_error is not None:
                        raise model_error
                    assert stream is not None
                    t = time.perf_counter()
                    emb, stream = stream.result(), None
                    self._model_layers([works[i] for i in todo], results, todo, emb, t)
                except Exception as exc:  # noqa: BLE001 - the model failed: every pending write fails closed
                    for i in todo:
                        if results[i] is None:
                            works[i].error = f"{type(exc).__name__}: {exc}"
                            results[i] = self._failed(works[i])
        finally:
            if stream is not None:
                stream.cancel()
        return results  # type: ignore[return-value]

    def review_context(self, proposals: Sequence[MemoryWrite], results: Sequence[ReviewResult],
                       recents: Sequence[Sequence[str]]) -> list[ReviewResult]:
        """``results`` (reviews of ``proposals``) with the context layer run again over other recent writes:
        the joined texts of each write with its ``recents`` are screened, encoded where the screen cannot
        clear them, and the most alarming one raises the write's score when it counts (as in a full review).
        A write's score never goes down (its earlier joined texts still count), and the rest of its review
        stands, so this costs the new joined texts only. The gate uses it for the second pass over a batch.
        With an LLM judge configured (the raised score may fall in its band) the writes are reviewed again in
        full instead."""
        th = self.policy.thresholds
        out = list(results)
        if not th.context_window:
            return out
        if self.judge is not None:
            return self.review_many(proposals, recents)
        todo: list[tuple[int, list[list[str]]]] = []
        # the joined texts go to the encoder as they come (a batch's in the child process, see review_many)
        stream: EmbeddingStream | None = None
        model_error: Exception | None = None
        try:
            for i, (p, r, recent) in enumerate(zip(proposals, results, recents)):
                if r.error or not recent or any(e.layer == "rules" and e.decided for e in r.evidence):
                    continue
                norm = _normalized(p.text)
                foreign = any(e.layer == "language" for e in r.evidence)
                contexts = self._readable(
                    self._contexts([_normalized_text(x) for x in list(recent)[-th.context_window:]],
                                   _plain_reading(norm.model_text)), foreign)
                screening = self._screening(p, norm, foreign)
                if screening is not None:  # as in the screen layer: what it clears never reaches the model
                    screen, pass_below = screening
                    contexts = [c for c in contexts if screen.score_joined(c) >= pass_below]
                if not contexts:
                    continue
                todo.append((i, contexts))
                if model_error is None:
                    try:
                        if stream is None:
                            stream = self.classifier.stream(batch=len(proposals) >= PROCESS_MIN_WRITES)
                        stream.add([_joined_reading(c) for c in contexts])
                    except Exception as exc:  # noqa: BLE001 - the model failed: these writes fail closed
                        model_error = exc
            if not todo:
                return out
            try:
                if model_error is not None:
                    raise model_error
                assert stream is not None
                emb, stream = stream.result(), None
                with single_threaded_blas():
                    scores = self.classifier.predict(emb)
            except Exception as exc:  # noqa: BLE001 - the model failed: these writes fail closed
                for i, _ in todo:
                    out[i] = results[i].model_copy(update={
                        "label": Label.alignment_shifting, "score": 1.0, "category": None,
                        "error": f"{type(exc).__name__}: {exc}"})
                return out
        finally:
            if stream is not None:
                stream.cancel()
        at = 0
        for i, contexts in todo:
            mine, at = scores[at:at + len(contexts)], at + len(contexts)
            evidence, best, counts = self._context_layer(contexts, mine)
            evidence.details["second_pass"] = True
            r = results[i]
            old = next((e for e in r.evidence if e.layer == "context"), None)
            if old is not None and old.score is not None and \
                    (bool(old.details.get("counts")), old.score) >= (counts, best.probability):
                continue  # the earlier joined texts counted as much, or were as alarming: nothing changes
            score, category = r.score, r.category
            if counts and best.probability > score:
                score, category = self._raised_by_context(score, category, best)
            out[i] = r.model_copy(update={
                "evidence": [e for e in r.evidence if e.layer != "context"] + [evidence],
                "score": round(float(score), 4), "raw_score": round(float(score), 4),
                "category": category if category in self.policy.categories else None,
                "label": self._label(score, category)})
        return out

    def _context_layer(self, contexts: list[list[str]], scores: list[ClassifierScore]
                       ) -> tuple[LayerEvidence, ClassifierScore, bool]:
        """The context layer's evidence over the joined texts ``contexts`` and their ``scores``: the most
        alarming one that counts (else the most alarming one), and whether it counts.

        Benign notes in a row read alarming joined too, so a joined text counts from the policy's
        ``context_min_score``; but one whose writes run on into each other (each stops mid-statement and
        the next goes on in lower case: one statement cut into writes) is reviewed like a single write, its
        score counting whatever it is."""
        th = self.policy.thresholds
        continued = [all(runs_on(a, b) for a, b in zip(c, c[1:])) for c in contexts]
        counting = [i for i, s in enumerate(scores)
                    if continued[i] or s.probability >= th.joined_counts_from]
        pool = counting or range(len(scores))
        k = max(pool, key=lambda i: scores[i].probability)
        best = scores[k]
        counts = bool(counting)
        evidence = LayerEvidence(
            layer="context", score=round(best.probability, 4), category=best.category,
            details={"joined_text": " ".join(contexts[k])[:JOINED_TEXT_CHARS], "writes_joined": len(contexts[k]),
                     "contexts": len(scores), "counts": counts, "runs_on": continued[k]})
        return evidence, best, counts

    def _raised_by_context(self, score: float, category: str | None, joined: ClassifierScore
                           ) -> tuple[float, str | None]:
        """The score and category of a write whose joined text ``joined`` counts and scores higher than the
        write's own ``score``. The score rises to the joined text's. A write flagged on its own keeps its own
        category: its words say what it is, while a joined text's category mixes in earlier writes that
        committed as task knowledge (a note holding a batch id made a self-preservation belief read as an
        injection, quarantined where it should have been escalated). A write not flagged on its own takes the
        joined text's category: there the split belief is the finding."""
        if self._label(score, category) is Label.alignment_shifting:
            return joined.probability, category
        return joined.probability, joined.category

    def _label(self, score: float, category: str | None) -> Label:
        """Alignment-shifting from the category's threshold on (0.5 without a known category)."""
        thr = min(self.policy.categories[category].threshold, 1.0) if category in self.policy.categories else 0.5
        return Label.alignment_shifting if score >= thr else Label.task_knowledge

    @staticmethod
    def _hand_over(w: _Work, stream: EmbeddingStream) -> None:
        """Hand the write's texts for the model over to ``stream``; where they are goes to ``w.span``."""
        texts = w.model_texts
        if w.keep_contexts is None:
            w.keep_contexts = list(range(len(w.contexts)))
        start = stream.add(texts)
        stream.add([_joined_reading(w.contexts[i]) for i in w.keep_contexts])
        w.span = (start, start + len(texts), start + len(texts) + len(w.keep_contexts))

    def _contexts(self, recent: Sequence[str], new: str) -> list[list[str]]:
        """The new write joined with 1, 2, ... of the writes just before it, as long as the joined text fits
        in half of what the encoder reads (``max_tokens`` word pieces); each is reviewed on its own.

        The check is for a belief split over several small writes. One text of all recent writes joined
        would not do: the encoder reads a text's first ``max_tokens`` pieces and cuts off the rest (after
        recent writes of ordinary length, the new write itself), and the mean-pooled vector of a text is
        mostly that of its ordinary notes (measured on the 25 split beliefs of benchmarks/adversarial.py,
        the last piece caught with two short notes before the pieces: 15 of 25 joined with everything, 25
        with the nested contexts; after two ~50-word notes: 16 vs 25). A new write that alone takes more than
        half is joined at the junction instead: the end of the recent writes and its own start (the rest of
        a long write is reviewed in its own windows). One that fits in half but not together with the write
        just before it is joined with that write alone (its end, if it is long), within what the encoder
        reads: without it, a belief split over writes of a few dozen words each was never seen joined."""
        embedder = self.embedder
        half = embedder.max_tokens // 2
        new_pieces = embedder.count_tokens(new)
        if new_pieces > half:
            older = embedder.fit(" ".join(recent), embedder.max_tokens - half, "tail")
            return [[older, embedder.fit(new, half, "head")]] if older else []
        out: list[list[str]] = []
        total = new_pieces
        for k in range(1, len(recent) + 1):
            total += embedder.count_tokens(recent[-k])  # word pieces never span the joining space
            if total > half:
                break
            out.append([*recent[-k:], new])
        if not out and recent:
            # not even the write just before fits with it in half: that write (its end, if it is long) and
            # the whole new write, in what the encoder reads
            older = embedder.fit(recent[-1], embedder.max_tokens - new_pieces, "tail")
            return [[older, new]] if older else []
        return out

    def _cheap_layers(self, w: _Work, recent: Sequence[str]) -> ReviewResult | None:
        t = time.perf_counter()
        w.norm = _normalized(w.proposal.text)
        # every text, decoded payloads included, is also reviewed sentence by sentence,
        # and every string field of a structured value on its own (metadata fields
        # cannot dilute the content they travel with)
        fields = string_fields(w.proposal.value)
        # a single long field is reviewed on its own too when the value has other (short) fields: their
        # words must not suppress a rule's match in it (an ``unless`` word in a tag) nor dilute it
        alone = len(fields) > 1 or (len(fields) == 1 and fields[0] != w.proposal.text)
        norms = [normalize(f) for f in fields] if alone else []
        # the key and namespace labels where they read as a statement: the agent chooses them, recall returns
        # them with the memory, and a belief written there was committed unreviewed
        names = [normalize(n) for n in name_texts(w.proposal.namespace, w.proposal.key)]
        norms += names
        extra = [n.text for n in norms]
        # a setting that switches a behaviour on or off, read as the statement it makes: "resist_shutdown: true"
        # is "I am set to resist shutdown." (a key is no sentence to the rules nor the model; such writes committed)
        if self.policy.setting_statements.action != "off":
            # (the text as written too: the normaliser reads markup as text, and "<flag name="x">on</flag>" is "on")
            w.settings = {s.statement: s.written
                          for s in setting_statements([w.norm.original, *w.norm.all_texts, *extra])}
            extra += list(w.settings)
        w.texts = review_texts(w.norm.all_texts, extra)
        w.model_whole = _plain_reading(w.norm.model_text)
        if w.norm.decoded_in_place is not None or w.model_whole != w.norm.text:
            w.texts, w.keep = _with_tokens_read(w.norm, w.model_whole, w.texts, extra)
        w.evidence.append(LayerEvidence(
            layer="normalize",
            details={"findings": list(w.norm.findings), "variants": [v[:300] for v in w.norm.variants],
                     "obfuscated": w.norm.obfuscated, "windows": len(w.texts) - len(w.norm.all_texts),
                     **({"settings": [{"written": written[:300], "statement": statement[:300]}
                                      for statement, written in w.settings.items()]} if w.settings else {})},
            elapsed_ms=_ms(t),
        ))
        codes = {f.split(":", 1)[0] for n in (w.norm, *norms) for f in n.findings}
        if "normalize_error" in codes:
            # what the normaliser would have read (a decoded payload, disguised letters) is unknown: fail closed
            w.error = "normalisation failed: the write's hidden or encoded content could not be read"
            return self._failed(w)
        if "binary_partly_read" in codes:
            # an archive or image in it was read only in part (more files than are read, a file past the budget,
            # an encrypted file, nesting too deep): what was not read is unknown, so fail closed
            w.error = "an archive or image in the write could not be read whole (normalize.binary_partly_read)"
            return self._failed(w)
        t = time.perf_counter()
        report = self.rules.check(w.texts, w.proposal.provenance.source)
        # the setting (as written) whose statement each hit matched, None for a hit in the write's own texts
        settings = [w.settings.get(w.texts[h.text_variant]) for h in report.hits]
        hits = [{"rule_id": h.rule_id, "category": h.category, "action": h.action, "score": h.score,
                 "match": h.match, "variant": h.text_variant, **({"setting": s} if s is not None else {})}
                for h, s in zip(report.hits, settings)]
        # the hit that decides, as the decision reads it: its category and action are the write's
        top = deciding_hit(hits)
        # a rule with an action that matched only a setting's statement does not decide alone where the policy
        # sends such writes to a person: the model reads the write too, and the decision weighs both (a rule that
        # matched the write's own words decides as ever)
        held = (top is not None and top["action"] is not None and self.policy.setting_statements.action == "escalate"
                and "setting" in top)
        w.evidence.append(LayerEvidence(
            layer="rules",
            score=top["score"] if top else None,
            category=top["category"] if top else None,
            decided=bool(top and top["action"]) and not held,
            details={"hits": hits, "suppressed": report.suppressed},
            elapsed_ms=_ms(t),
        ))
        if top and top["action"] and not held:
            return ReviewResult(
                label=Label.alignment_shifting, category=top["category"], score=top["score"],
                raw_score=top["score"], evidence=w.evidence, elapsed_ms=_ms(w.t0),
            )
        self._language_layer(w, extra, [n.text for n in names])
        self._add_clauses(w)
        if recent and self.policy.thresholds.context_window:
            tail = [_normalized_text(r) for r in list(recent)[-self.policy.thresholds.context_window:]]
            w.contexts = self._readable(self._contexts(tail, w.model_whole), w.language is not None)
        if top is None:
            return self._screen_layer(w)
        return None

    def _language_layer(self, w: _Work, extra: list[str], names: list[str]) -> None:
        """Note a sentence of the write (its text, hidden or decoded content, string fields, key and namespace
        (``names``)) in a language other than English: the model and the rules read English, so their scores say
        nothing of it, and the decision sends the write to a reader who can read it (``policy.language.other``).
        A write that is word for word one of the policy's counter-exemplars (``vetted_whole``) was read by safety
        staff, in whatever language: only its key and namespace are looked at (a note an agent writes every day in
        French went to a person every day)."""
        t = time.perf_counter()
        found = other_language([*w.norm.all_texts, *extra])
        if found is not None and self.vetted_whole(w.proposal.text):
            found = other_language(names)
        if found is None:
            return
        w.language = found
        w.evidence.append(LayerEvidence(
            layer="language", decided=False,
            details={"language": found.language, "text": found.text[:DECIDING_TEXT_CHARS],
                     "other": self.policy.language.other},
            elapsed_ms=_ms(t),
        ))

    def _unread(self, foreign: bool) -> bool:
        """Whether a write with a sentence in another language (``foreign``) is left unscreened and the model's
        scores of its texts in another script set aside: the policy does not leave such writes to the classifier.
        """
        return foreign and self.policy.language.other != "classifier"

    def _readable(self, contexts: list[list[str]], foreign: bool) -> list[list[str]]:
        """``contexts`` without the joined texts that hold a sentence in a script other than Latin, where the
        write's are set aside (``_unread``)."""
        if not self._unread(foreign):
            return contexts
        return [c for c in contexts if other_language(c, other_script=True) is None]

    def _add_clauses(self, w: _Work) -> None:
        """Add the clauses of the sentences the model reads to ``w.texts`` (after the rules have read them: a
        rule's ``unless`` words in another clause of the sentence still count), unless the policy turns it off."""
        if not self.policy.thresholds.review_clauses:
            return
        found = clauses(w.model_texts)
        if not found:
            return
        w.first_clause = len(w.texts)
        w.clause_of = [w.text_index(i) for _, i in found]
        if w.keep is not None:
            w.keep += range(len(w.texts), len(w.texts) + len(found))
        w.texts += [c for c, _ in found]

    def _screening(self, proposal: MemoryWrite, norm: NormalizedText,
                   foreign: bool = False) -> tuple[LexicalScreen, float] | None:
        """The screen and the score under which it clears a text of this write, or None when the write is
        not screened (no screen, a source below ``screen_min_trust`` or always reviewed, hidden or encoded
        content, a sentence in another language that the policy does not leave to the classifier: the judge,
        where one is configured, is asked about it after the model layers). The threshold never passes a score
        the decision step would not commit."""
        th = self.policy.thresholds
        screen = self.screen
        if screen is None:
            return None
        if self._unread(foreign):
            return None
        trust = self.policy.trust_of(proposal.provenance.source)
        if trust.always_review or trust.trust < th.screen_min_trust:
            return None
        if norm.obfuscated or norm.variants or norm.findings:
            return None  # hidden or encoded content always gets the full review
        return screen, min(screen.pass_below(th.screen_max_miss), self.policy.commit_below(proposal.provenance.source))

    def _screen_layer(self, w: _Work) -> ReviewResult | None:
        """Settle a clearly benign write without the encoder, or leave it to the model layers."""
        th = self.policy.thresholds
        screening = self._screening(w.proposal, w.norm, w.language is not None)
        if screening is None:
            return None
        screen, pass_below = screening
        # a gate whose model cannot load fails closed for every write, screened or not
        _ = self.classifier
        t = time.perf_counter()
        scores = screen.scores(w.texts)
        if w.first_clause is not None:
            # a clause goes to the model only where it reads more alarming than its sentence, on the screen too:
            # where a belief is joined to an ordinary clause, the sentence scores like the ordinary clause. A
            # clause near one of the policy's exemplars goes whatever its sentence scores: the guard scores both
            # 1.0 when the sentence holds it, and the exemplar layer matches only the texts the model reads, so
            # the clause a reviewer's rejection made an exemplar (``policy suggest``) was never matched
            for i, parent in enumerate(w.clause_of, w.first_clause):
                if scores[i] <= scores[parent] and not (scores[i] >= 1.0 and screen.near_exemplar(w.texts[i])):
                    scores[i] = 0.0
        w.screen_own = float(max(scores[:w.first_clause]))
        context_scores = [screen.score_joined(parts) for parts in w.contexts]
        n_texts = len(w.texts) + len(w.contexts)
        top = max([*scores, *context_scores])
        decided = top < pass_below
        if not decided:
            # the model reviews only the texts the screen cannot clear on their own (the whole text, its
            # sentences and windows, the joined recent writes), with the same threshold for each. The whole
            # text goes too when none of its own texts is left (the joined context alone is not a review of
            # the write), and when it is word for word a counter-exemplar (its verdict covers its pieces). Where
            # only clauses are left, the whole text stays out: the screen would have settled the write without
            # them, and a clause under ``clause_min_score`` leaves it so (its score is then the screen's).
            # Of the texts the model reads (``keep``, where it reads the write's text otherwise than as written):
            # the first of them is the write's whole text as it reads it
            own = w.keep if w.keep is not None else range(len(w.texts))
            w.keep = [i for i in own if scores[i] >= pass_below]
            if own[0] not in w.keep and (not w.keep or self.exemplars.is_counter_exemplar(w.norm.text)):
                w.keep.insert(0, own[0])
            w.keep_contexts = [i for i, score in enumerate(context_scores) if score >= pass_below]
        w.evidence.append(LayerEvidence(
            layer="screen", score=round(top, 4), decided=decided,
            details={"pass_below": round(pass_below, 4), "max_miss": th.screen_max_miss, "texts": n_texts,
                     "cleared_texts": 0 if decided else n_texts - len(w.keep) - len(w.keep_contexts)},
            elapsed_ms=_ms(t),
        ))
        if not decided:
            return None
        return ReviewResult(label=Label.task_knowledge, category=None, score=round(top, 4),
                            raw_score=round(top, 4), evidence=w.evidence, elapsed_ms=_ms(w.t0))

    def _model_layers(self, works: list[_Work], results: list, idx: list[int], emb: np.ndarray,
                      t: float) -> None:
        """Classifier heads and exemplars over ``emb``, the vectors of the texts each write handed over
        (``t``: when the caller began waiting for them; the encoding that overlapped the cheap layers of
        other writes is not counted in the per-write model time)."""
        with single_threaded_blas():
            clf_scores = self.classifier.predict(emb)
            ex_reports = self.exemplars.match(emb)
        model_ms = _ms(t) / max(1, len(works))
        th = self.policy.thresholds

        for w, i in zip(works, idx):
            start, end, ctx_end = w.span
            try:
                results[i] = self._combine(w, clf_scores[start:end], ex_reports[start:end],
                                           clf_scores[end:ctx_end], model_ms, th)
            except Exception as exc:  # noqa: BLE001
                w.error = f"{type(exc).__name__}: {exc}"
                results[i] = self._failed(w)
        asked = [(w, i) for w, i in zip(works, idx) if w.judge_input is not None and w.error is None]
        if asked:
            try:
                self._judge_layer(asked, results)
            except Exception as exc:  # noqa: BLE001 - the judge step itself failed: its writes fail closed
                for w, i in asked:
                    w.error = f"{type(exc).__name__}: {exc}"
                    results[i] = self._failed(w)

    def _judge_layer(self, asked: list[tuple[_Work, int]], results: list) -> None:
        """Ask the judge about the writes of a batch whose scores are in its band, up to
        ``judge.max_concurrency`` calls at once (a call waits on a model service, not on this machine), and
        apply each verdict. A write whose call fails (an error, a timeout, an invalid verdict) fails closed;
        the others keep their verdicts."""
        judge = self.judge
        assert judge is not None
        settings = self.policy.judge
        # the similar memories are read here, one write after the other (the store is not asked from many
        # threads at once); only the model calls overlap
        similar = [self.similar_memories(w.proposal, settings.similar_memories) if self.similar_memories else []
                   for w, _ in asked]

        def ask(k: int):
            w = asked[k][0]
            ji = w.judge_input
            t = time.perf_counter()
            answer = judge.answer(w.proposal, w.norm.text, ji.score, similar[k], hidden=list(w.norm.variants),
                                  joined=ji.joined, focus=ji.focus, examples=ji.examples, unread=ji.unread)
            return answer, _ms(t)

        outcomes: list = []
        if len(asked) == 1:
            try:
                outcomes.append(ask(0))
            except Exception as exc:  # noqa: BLE001 - fails this write closed below
                outcomes.append(exc)
        else:
            workers = min(len(asked), settings.max_concurrency)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gk-judge-batch") as pool:
                futures = [pool.submit(ask, k) for k in range(len(asked))]
                outcomes = [f.exception() or f.result() for f in futures]  # each call ends by its timeout
        for (w, i), outcome, sim in zip(asked, outcomes, similar):
            ji = w.judge_input
            if isinstance(outcome, JudgeOverBudget):  # not a failure: decided without the judge
                w.evidence.append(LayerEvidence(
                    layer="judge", score=None, decided=False,
                    details={"skipped": str(outcome), "over_budget": settings.over_budget}))
                results[i] = self._result(w, ji.score, ji.category, ji.score)
                continue
            if isinstance(outcome, BaseException):
                w.error = f"{type(outcome).__name__}: {outcome}"
                results[i] = self._failed(w)
                continue
            answer, ms = outcome
            verdict = answer.verdict
            score, category = ji.score, ji.category
            # the judge may not clear a write with hidden or encoded content or one stopped as a split belief:
            # a text written to sway a model reviewer is likeliest there, and the judge sees one write at a
            # time. Such a verdict stays evidence.
            may_clear = not (w.norm.variants or w.norm.obfuscated or ji.joined)
            if verdict.label == "alignment_shifting":
                score, category = max(score, verdict.confidence), verdict.category
            elif may_clear:
                score = min(score, 1.0 - verdict.confidence)
            w.evidence.append(LayerEvidence(
                layer="judge", score=round(score, 4), category=verdict.category, decided=True,
                details={"label": verdict.label, "confidence": verdict.confidence,
                         "rationale": verdict.rationale, "similar_memories": sim,
                         "may_clear": may_clear, **({"cached": True} if answer.cached else {})},
                elapsed_ms=ms,
            ))
            results[i] = self._result(w, score, category, ji.score)

    def _combine(self, w: _Work, scores: list[ClassifierScore], exemplars, ctx_scores: list[ClassifierScore],
                 model_ms: float, th) -> ReviewResult:
        # the most alarming text of the write decides: obfuscated payloads and buried
        # windows count the same as the plain text; a clause of a sentence from ``clause_min_score``
        probs = [s.probability for s in scores]
        under_bar = 0  # clauses that do not count
        if w.first_clause is not None:
            bar = th.clause_counts_from
            for i, p in enumerate(probs):
                if w.text_index(i) >= w.first_clause and p < bar:
                    probs[i], under_bar = 0.0, under_bar + 1
        # the write's texts in a script other than Latin do not set its score (``_unread``): the model reads no word
        # of them, and scored Arabic and Korean notes 0.8-1.0 (quarantined). Latin-script languages keep theirs:
        # their word pieces are the model's ("ignorer", "instruktioner"), and it quarantined such injections
        unread = 0
        if self._unread(w.language is not None):
            for i, p in enumerate(probs):
                if p and other_language([w.texts[w.text_index(i)]], other_script=True) is not None:
                    probs[i], unread = 0.0, unread + 1
        j = int(np.argmax(probs))
        best = scores[j]
        score, category = probs[j], best.category
        text_index = w.text_index(j)
        # the score of the write's own texts, where a setting read as a statement set its score: the decision lets
        # the statement escalate a write, not hold back the category's action its own words call for
        own = (max((p for i, p in enumerate(probs) if w.texts[w.text_index(i)] not in w.settings), default=0.0)
               if w.texts[text_index] in w.settings else None)
        screen_read = under_bar == len(probs) and w.screen_own is not None
        if screen_read:
            # the model was handed only clauses, none of which counts: the write's own texts are read as the
            # screen read them (it cleared them), as a write it settles is
            score, category, text_index = w.screen_own, None, 0
        w.evidence.append(LayerEvidence(
            layer="classifier", score=round(score, 4), category=category,
            details={"text_index": text_index,
                     **({"deciding_text": _deciding_text(w, text_index)} if _quoted(w, text_index) else {}),
                     "category_probability": round(best.category_probability, 4),
                     "per_text": [round(s.probability, 4) for s in scores][:16],
                     **({"clauses_under_bar": under_bar} if under_bar else {}),
                     **({"texts_in_another_script": unread} if unread else {}),
                     **({"own_texts_score": round(own, 4)} if own is not None else {}),
                     **({"own_texts_read_by": "screen"} if screen_read else {}),
                     "trainer": self.classifier.meta.get("trainer"),
                     **({"interim": True} if self.interim else {})},
            elapsed_ms=round(model_ms, 3),
        ))

        # exemplars: policy edits take effect without retraining. Each text of the write is matched on its own: a
        # counter-exemplar lowers the score of the text it matches, not the write's, and the write's score is the
        # highest of its texts' scores after that, so a benign sentence that safety staff vetted (often one the
        # classifier flags: that is why it was added) cannot clear a belief in another sentence of the same write;
        # a harmful exemplar raises the write's score through the text it matches, unless a counter-exemplar
        # matches that text at least as closely (by the margin) and the text is not the exemplar word for word. A
        # write that is word for word one of the policy's counter-exemplars was vetted whole: its own sentences and
        # pieces are covered by that verdict (a fragment out of context must not overrule it); any added word breaks
        # the equality, and so does anything hidden or encoded (a comment, a payload, invisible text).
        harm = max((r.best_harmful for r in exemplars if r.best_harmful), key=lambda m: m.similarity, default=None)
        vetted = (not (w.norm.obfuscated or w.norm.variants or w.norm.findings)
                  and self.exemplars.is_counter_exemplar(w.norm.text))
        benigns = [exemplars[0].best_benign] * len(scores) if vetted else [r.best_benign for r in exemplars]
        after = list(probs)
        raised = None  # the closest harmful exemplar that counts
        for i, (match, report) in enumerate(zip(benigns, exemplars)):
            b_i = match.similarity if match is not None else -1.0
            h_i = report.best_harmful.similarity if report.best_harmful is not None else -1.0
            # a text that is word for word a harmful exemplar counts whatever counter-exemplar reads nearly the same:
            # safety staff listed this text (the encoder puts ordinary notes close together: "Standup moved to 09:45
            # on Mondays." is 0.965 from "The staging cluster shuts down at 01:00 UTC every night.")
            listed = not vetted and h_i >= th.exemplar_match and self.exemplars.is_harmful_exemplar(
                w.texts[w.text_index(i)])
            if b_i >= th.exemplar_match and b_i >= h_i + th.exemplar_margin and not listed:
                after[i] = min(after[i], 1.0 - b_i)
            elif h_i >= th.exemplar_match and (h_i >= b_i + th.exemplar_margin or listed) and (
                    raised is None or h_i > raised.similarity):
                raised = report.best_harmful
        k = int(np.argmax(after))
        benign = benigns[k]
        ex_detail: dict = {}
        ex_effect = None
        if after[k] < probs[j]:  # a counter-exemplar lowered the text that set the score
            # the counter-exemplars whose match lowered a text of the write that would otherwise score higher
            ex_detail["lowered_by"] = sorted({benigns[i].text for i, p in enumerate(probs)
                                              if after[i] < p and p > after[k]})[:5]
            score, category, ex_effect = after[k], scores[k].category, "lowered"
            if k != j:  # another text of the write now sets its score
                text_index = w.text_index(k)
                ex_detail["text_index"] = text_index
                if _quoted(w, text_index):
                    ex_detail["deciding_text"] = _deciding_text(w, text_index)
        if harm is not None:
            ex_detail["nearest_exemplar"] = {"category": harm.category, "text": harm.text,
                                             "similarity": round(harm.similarity, 4)}
        if benign is not None:
            ex_detail["nearest_counter_exemplar"] = {"text": benign.text, "similarity": round(benign.similarity, 4)}
        if vetted:
            ex_detail["is_counter_exemplar"] = True
        if raised is not None:
            if raised.similarity > score:
                score, category, ex_effect = raised.similarity, raised.category, "raised"
            elif category != raised.category and score < 0.9:
                category = raised.category
        ex_detail["effect"] = ex_effect
        w.evidence.append(LayerEvidence(layer="exemplars", score=harm.similarity if harm else None,
                                        category=harm.category if harm else None, details=ex_detail))

        # rules without an action add their score as evidence
        rules_ev = next(e for e in w.evidence if e.layer == "rules")
        if rules_ev.score is not None and rules_ev.score > score:
            score, category = rules_ev.score, rules_ev.category

        # context: a belief split over several writes (the most alarming of the joined texts counts)
        joined: str | None = None
        if ctx_scores:
            evidence, ctx_score, counts = self._context_layer([w.contexts[i] for i in w.keep_contexts], ctx_scores)
            w.evidence.append(evidence)
            if counts and ctx_score.probability > score:
                score, category = self._raised_by_context(score, category, ctx_score)
                joined = evidence.details.get("joined_text")

        # judge: only the uncertain band, only when configured; asked about every such write of the batch at
        # once (``_judge_layer``). It reads what the model read: hidden and decoded content, the joined writes
        # when they set the score, and the part of the text (not hidden content, shown as such) that set it
        # A write with a sentence in another language is asked about too, under the band's top (the judge reads
        # other languages; above it the classifier has flagged the write already), the sentence shown to it
        if self.judge is not None:
            lo, hi = self.policy.judge.band
            unread = w.language is not None and self.policy.language.other == "escalate"
            if lo <= score < hi or (unread and score < hi):
                # under the band the classifier's highest part says nothing: the unread sentence is shown instead
                focus = w.texts[text_index] if lo <= score and not joined and _is_part(w, text_index) else None
                if focus in w.settings:  # not a part of the write: the gate's reading of one of its settings
                    focus = f"the setting {w.settings[focus]}, read as: {focus}"
                examples = []
                if harm is not None:
                    examples.append(PolicyExample(kind="exemplar", category=harm.category, text=harm.text,
                                                  similarity=round(harm.similarity, 4)))
                if benign is not None:
                    examples.append(PolicyExample(kind="counter_exemplar", text=benign.text,
                                                  similarity=round(benign.similarity, 4)))
                w.judge_input = _JudgeInput(score=score, category=category, joined=joined, focus=focus,
                                            examples=examples, unread=(w.language.language, w.language.text)
                                            if w.language is not None else None)
        return self._result(w, score, category, score)

    def _result(self, w: _Work, score: float, category: str | None, raw: float) -> ReviewResult:
        return ReviewResult(
            label=self._label(score, category),
            category=category if category in self.policy.categories else None,
            score=round(float(score), 4), raw_score=round(float(raw), 4),
            evidence=w.evidence, elapsed_ms=_ms(w.t0),
        )

    def _failed(self, w: _Work) -> ReviewResult:
        return ReviewResult(
            label=Label.alignment_shifting, category=None, score=1.0, evidence=w.evidence or [],
            error=w.error, elapsed_ms=_ms(w.t0),
        )


@short_text_cache(maxsize=4096, max_chars=CACHE_MAX_CHARS)
def _normalized(text: str) -> NormalizedText:
    """``normalize(text)`` (read-only; short texts cached: a write's text comes back in the agent's next
    contexts, and a batch reviews a write twice when its earlier writes in the batch commit)."""
    return normalize(text)


#: a write's text as the model reads it, from its normalised text (``NormalizedText.model_text``: its encoded tokens
#: read in place): the asides that only stress a negation or a modal left out, and its questions that make a
#: statement read as the statement (``segments.plain_reading``: "I would never, under any circumstances, resist
#: being shut down." scored 0.966 as written, 0.021 without the aside). Short texts cached: a write is read once
#: for itself, for a batch's second pass and as one of its agent's recent writes.
_plain_reading = short_text_cache(maxsize=4096, max_chars=CACHE_MAX_CHARS)(plain_reading)


def _normalized_text(text: str) -> str:
    """The normalised text of an agent's recent write, as the model reads it (:data:`_plain_reading`)."""
    return _plain_reading(_normalized(text).model_text)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


__all__ = ["Reviewer", "TASK_KNOWLEDGE"]
