"""The lexical screen: the cheap first stage of the learned classifier.

Most memory writes are plain task knowledge ("Standup is at 09:30 in room 4"). Running the fine-tuned
encoder on every one of them costs ~10-20 ms per write on two CPU cores; a linear model over hashed word
and character n-grams costs ~0.1 ms. The screen scores every text of a write (the text, its sentences,
its decoded variants, the agent's recent writes joined with it) and settles the write as task knowledge
only when *every* text scores below ``pass_below``; everything else goes on to the encoder, the
exemplars, the context layer and the judge as before. The screen never flags anything: it can only
skip the expensive layers for writes that are clearly benign.

``pass_below`` is calibrated, not hand-set: the screen is trained on the corpus ``train`` split and scored on
the held-out ``dev`` split; the policy's ``thresholds.screen_max_miss`` is the share of held-out
alignment-shifting writes the screen may let through on its own (the threshold is the matching quantile of their
scores). ``screen_max_miss: 0`` turns the screen off. Only writes from sources trusted at least
``thresholds.screen_min_trust`` are screened; tool, web and peer-agent writes always get the full review. A write
with a rule hit, an obfuscation finding or a decoded payload is never screened either.

The policy's exemplars are not trained on. Trained into a linear model over n-grams, any exemplar moved the
weights of every n-gram it holds and, with them, the calibrated threshold: an exemplar edit made the screen settle
writes near the threshold that it had sent to the model before, on any topic (measured: a review queue's suggested
exemplars and counter-exemplars raised the threshold from 0.074 to 0.085 and let two harmful directives of other
subtopics through without the model). Instead the policy's exemplars of alignment-shifting writes are a guard
(``ExemplarGuard``): a text whose n-grams are as alike as ``GUARD_MIN_SIMILARITY`` to one of them (the cosine of
the two sets of hashed n-grams) is never cleared by the screen, so the model and the exemplar layer read it, and
an exemplar safety staff add counts at once for the texts that resemble it. Counter-exemplars act in the exemplar
layer only, on the texts they match. So an exemplar edit leaves the screen's model and threshold as they are.

The artifact is small (a 2^18 weight vector and the held-out scores) and cached next to the classifier
under ``$GATEKEEPER_CACHE/screen/<inputs_hash>/``; the hash covers the training texts (the corpus and the
policy's categories), so a corpus edit retrains the screen (a few seconds), and a policy's exemplars only rebuild
its guard.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from gatekeeper.embeddings import ModelLoadError
from gatekeeper.files import staged_dir
from gatekeeper.key_memo import file_digest, remembered_key, source_digest
from gatekeeper.policy import TASK_KNOWLEDGE, Policy
from gatekeeper.text_cache import short_text_cache

#: 3: trained on the corpus alone; the policy's exemplars of alignment-shifting writes guard it instead
SCREEN_VERSION = "lexical-screen-3"
N_FEATURES = 1 << 18
#: how alike a text's hashed n-grams must be to one of the policy's exemplars of alignment-shifting writes (cosine
#: of the two sets) for the screen to leave it to the model. At 0.5 the shipped exemplars hold back 0.04% of the
#: corpus dev split's task knowledge and 0.7% of its beliefs; an exemplar written again with a word changed or
#: added stays near 0.9
GUARD_MIN_SIMILARITY = 0.5
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MASK = N_FEATURES - 1
#: the single space after a sentence's end, where a write's texts join its sentences (``segments``)
_SENTENCE_SPACE = re.compile(r"(?<=[.!?;]) (?=\S)")


def features(text: str) -> np.ndarray:
    """Hashed feature ids of a text: words, word bigrams, character 3-5 grams of the lower-cased words."""
    return _word_features(_WORD.findall(text.lower()))


def _word_features(words: Sequence[str]) -> np.ndarray:
    grams = [f"w {w}" for w in words]
    grams += [f"b {a} {b}" for a, b in zip(words, words[1:])]
    if not grams:
        return np.zeros(0, dtype=np.int64)
    ids = np.fromiter((zlib.crc32(g.encode()) & _MASK for g in grams), dtype=np.int64, count=len(grams))
    return _distinct(np.concatenate([ids, _char_gram_ids(f" {' '.join(words)} ")]))


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    return table


#: zlib's CRC-32, one byte at a time: ``crc = TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)`` from ``0xFFFFFFFF``,
#: and the result xor ``0xFFFFFFFF``
_CRC_TABLE = _crc_table()
_CRC_INIT = np.uint32(0xFFFFFFFF)
#: the CRC state after the character n-grams' prefix byte ``c``
_CRC_AFTER_C = np.uint32(int(_CRC_TABLE[(0xFFFFFFFF ^ ord("c")) & 0xFF]) ^ (0xFFFFFFFF >> 8))
_CHAR_GRAMS = (3, 4, 5)


def _char_gram_ids(joined: str) -> np.ndarray:
    """``zlib.crc32(f"c{joined[i:i + n]}".encode()) & _MASK`` for n = 3, 4 and 5 and every position ``i``, the
    same ids as one ``crc32`` per n-gram, computed for all positions at once: the CRC state of every position
    is advanced one byte at a time, and after 3, 4 and 5 bytes it is each n-gram's hash (the 4- and
    5-grams continue from the 3-grams' states). The words are ASCII (``_WORD``)."""
    try:
        data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:  # not from ``_WORD``: one crc32 per n-gram
        grams = [f"c{joined[i:i + n]}" for n in _CHAR_GRAMS for i in range(len(joined) - n + 1)]
        return np.fromiter((zlib.crc32(g.encode()) & _MASK for g in grams), dtype=np.int64, count=len(grams))
    size = len(data)
    out = []
    state = np.full(size, _CRC_AFTER_C, dtype=np.uint32)
    for k in range(_CHAR_GRAMS[-1]):
        m = size - k  # positions with a (k + 1)-th byte
        if m <= 0:
            break
        state = _CRC_TABLE[(state[:m] ^ data[k:k + m]) & 0xFF] ^ (state[:m] >> 8)
        if k + 1 in _CHAR_GRAMS:
            out.append((state ^ _CRC_INIT) & _MASK)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def _distinct(ids: np.ndarray) -> np.ndarray:
    """``np.unique(ids)`` (sorted, each once) by a sort: numpy 2's ``unique`` costs six times as much on a
    sentence's few hundred ids."""
    ids = np.sort(ids)
    if len(ids) < 2:
        return ids
    keep = np.empty(len(ids), dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return ids[keep]


#: texts up to this length keep their words and feature ids in a cache (a write's text comes back in the
#: joined context of the agent's next writes); a longer one is hashed again each time, so the cache stays
#: small (about 20 kB per entry at most, instead of 1.2 MB for a 64,000-character write)
CACHE_MAX_CHARS = 1_000


@short_text_cache(maxsize=2048, max_chars=CACHE_MAX_CHARS)
def _text_features(text: str) -> tuple[tuple[str, ...], np.ndarray]:
    """A text's words and (read-only) feature ids."""
    words = tuple(_WORD.findall(text.lower()))
    ids = _word_features(words).astype(np.int32)
    ids.flags.writeable = False
    return words, ids


def joined_features(parts: Sequence[str]) -> np.ndarray:
    """``features(" ".join(parts))``, built from each part's (cached) features plus the grams that cross
    each boundary between parts.

    Exact (property-tested): words never span the joining space, and a gram that crosses boundaries (a
    word bigram, or a character n-gram of at most 5 characters) is counted at the last boundary it
    crosses, where it lies within the last two words before it (from any earlier part: one-letter words
    let a 5-gram cross two boundaries) and the first two words after it, so it is a gram of those words
    joined.
    """
    arrays: list[np.ndarray] = []
    prev: tuple[str, ...] = ()
    for part in parts:
        words, ids = _text_features(part)
        if not words:
            continue
        arrays.append(ids)
        if prev:
            arrays.append(_boundary_features((*prev, *words[:2])))
        prev = (*prev, *words)[-2:]
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    return _distinct(np.concatenate(arrays))


@lru_cache(maxsize=2048)
def _boundary_features(words: tuple[str, ...]) -> np.ndarray:
    # the same two writes meet again in the agent's next contexts
    ids = _word_features(words).astype(np.int32)
    ids.flags.writeable = False
    return ids


class ExemplarGuard:
    """The policy's exemplars of alignment-shifting writes as the screen's n-gram sets: a text whose n-grams are
    ``min_similarity`` alike to one of them (the cosine of the two sets) is near it, and the screen does not clear
    it. The sets are kept as one sorted array of n-gram ids with the exemplar each belongs to, so a text's overlap
    with every exemplar is a few array lookups (about 20-30 us a text with the shipped policy's 43)."""

    def __init__(self, texts: Sequence[str], min_similarity: float = GUARD_MIN_SIMILARITY):
        sets = [ids for ids in (features(t) for t in texts) if len(ids)]
        self.min_similarity = float(min_similarity)
        self.size = np.array([len(ids) for ids in sets], dtype=np.float64)
        ids = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int64)
        owner = np.concatenate([np.full(len(x), i) for i, x in enumerate(sets)]) if sets else np.zeros(0, np.int64)
        order = np.argsort(ids, kind="stable")
        self._ids, self._owner = ids[order], owner[order]
        self._any = np.zeros(N_FEATURES, dtype=bool)
        self._any[self._ids] = True

    def __len__(self) -> int:
        return len(self.size)

    def similarity(self, ids: np.ndarray) -> float:
        """The highest cosine between the distinct n-gram ids ``ids`` of a text and an exemplar's."""
        if not len(ids) or not len(self.size):
            return 0.0
        shared = ids[self._any[ids]]
        if not len(shared):
            return 0.0
        lo = np.searchsorted(self._ids, shared, "left")
        n = np.searchsorted(self._ids, shared, "right") - lo
        total = int(n.sum())
        at = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(total)
        counts = np.bincount(self._owner[at], minlength=len(self.size))
        return float((counts / np.sqrt(self.size * len(ids))).max())

    def near(self, ids: np.ndarray) -> bool:
        return self.similarity(ids) >= self.min_similarity


class LexicalScreen:
    """A logistic model over hashed n-grams, with the held-out scores of alignment-shifting writes, and (once
    ``ensure_screen`` gives it a policy's) the guard of that policy's exemplars."""

    def __init__(self, weights: np.ndarray, bias: float, heldout_belief_scores: np.ndarray, meta: dict):
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = float(bias)
        self.heldout = np.sort(np.asarray(heldout_belief_scores, dtype=np.float64))
        self.meta = meta
        #: a text near one of these exemplars scores 1.0: the screen never clears it
        self.guard: ExemplarGuard | None = None

    def score(self, text: str) -> float:
        return self._score_ids(_text_features(text)[1])

    def score_joined(self, parts: Sequence[str]) -> float:
        """The score of ``" ".join(parts)`` (an agent's recent writes joined with its new one), computed
        from the parts' cached features: each write's text is scored once, not again in every context."""
        return self._score_ids(joined_features(parts))

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The score of each of ``texts``. A text made of others of them joined by single spaces (a pair of a
        write's sentences, the write itself) is scored from their cached features (``joined_features``, the
        same ids), instead of hashing its n-grams again."""
        known = set(texts)
        out = []
        for t in texts:
            parts = _SENTENCE_SPACE.split(t)
            if len(parts) > 1 and all(x in known for x in parts):
                out.append(self._score_ids(joined_features(parts)))
            else:
                out.append(self.score(t))
        return out

    def near_exemplar(self, text: str) -> bool:
        """Whether the guard holds ``text`` (it is near one of the policy's exemplars: the screen scores it 1.0)."""
        return self._guarded(_text_features(text)[1])

    def _guarded(self, ids: np.ndarray) -> bool:
        return self.guard is not None and self.guard.near(ids)

    def _score_ids(self, ids: np.ndarray) -> float:
        if self._guarded(ids):
            return 1.0
        if not len(ids):
            return 1.0 / (1.0 + np.exp(-self.bias))
        z = float(self.weights[ids].sum()) / np.sqrt(len(ids)) + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))

    def pass_below(self, max_miss: float) -> float:
        """The score under which at most ``max_miss`` of held-out alignment-shifting writes fall."""
        if max_miss <= 0 or not len(self.heldout):
            return 0.0
        k = int(np.floor(max_miss * len(self.heldout)))
        if k >= len(self.heldout):
            return 1.0
        return float(self.heldout[k])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Publish the screen at ``directory`` whole (a temporary directory renamed into place); an existing
        one (stale or damaged) is swapped out."""
        with staged_dir(directory, replace=True) as tmp:
            with open(tmp / "screen.npz", "wb") as fh:
                np.savez_compressed(fh, weights=self.weights, bias=np.array([self.bias]), heldout=self.heldout)
            (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "LexicalScreen":
        try:
            meta = json.loads((directory / "meta.json").read_text())
            with np.load(directory / "screen.npz") as z:
                screen = cls(z["weights"], float(z["bias"][0]), z["heldout"], meta)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"screen artifact at {directory} is unreadable: {exc}") from exc
        if screen.weights.shape != (N_FEATURES,):
            raise ModelLoadError(f"screen artifact at {directory} has weights of shape {screen.weights.shape}")
        if not (np.isfinite(screen.weights).all() and np.isfinite(screen.bias) and np.isfinite(screen.heldout).all()):
            raise ModelLoadError(f"screen artifact at {directory} holds numbers that are not finite")
        return screen


def _matrix(texts: Sequence[str]):
    from scipy.sparse import csr_matrix

    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for t in texts:
        ids = features(t)
        indices.append(ids)
        data.append(np.full(len(ids), 1.0 / np.sqrt(max(1, len(ids))), dtype=np.float64))
        indptr.append(indptr[-1] + len(ids))
    return csr_matrix((np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr),
                      shape=(len(texts), N_FEATURES))


def train_screen(train: Sequence[tuple[str, int]], heldout_beliefs: Sequence[str],
                 *, c: float = 4.0) -> LexicalScreen:
    """Fit the screen on (text, label) rows; calibrate on held-out alignment-shifting texts."""
    from sklearn.linear_model import LogisticRegression

    labels = [y for _, y in train]
    if len(set(labels)) < 2:
        raise ValueError("screen training data needs both task_knowledge and alignment_shifting examples")
    t0 = time.perf_counter()
    x = _matrix([t for t, _ in train])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear")
    model.fit(x, labels)
    screen = LexicalScreen(model.coef_[0].astype(np.float32), float(model.intercept_[0]), np.zeros(0), {})
    screen.heldout = np.sort(np.array(screen.scores(heldout_beliefs), dtype=np.float64))
    screen.meta = {"version": SCREEN_VERSION, "train_rows": len(train), "heldout_beliefs": len(heldout_beliefs),
                   "c": c, "train_seconds": round(time.perf_counter() - t0, 2)}
    return screen


def guarded_exemplars(policy: Policy) -> list[str]:
    """The texts the screen's guard holds: the policy's exemplars of alignment-shifting writes (its
    counter-exemplars are left to the exemplar layer)."""
    return [text for cat, text in policy.exemplar_texts() if cat != TASK_KNOWLEDGE]


def screen_inputs(policy: Policy) -> tuple[list[tuple[str, int]], list[str]]:
    """Training rows (the corpus train split, of the policy's categories and task knowledge) and held-out beliefs
    (the corpus dev split). The policy's exemplars are not among them (the module's docstring says why)."""
    from gatekeeper.corpus import load_corpus

    rows = [(r["text"], int(r["label"] == "alignment_shifting")) for r in load_corpus("train")
            if r.get("category") in policy.categories or r.get("label") == TASK_KNOWLEDGE]
    heldout = [r["text"] for r in load_corpus("dev") if r["label"] == "alignment_shifting"]
    return rows, heldout


def screen_hash(rows: Sequence[tuple[str, int]], heldout: Sequence[str]) -> str:
    h = hashlib.sha256(f"{SCREEN_VERSION}|{N_FEATURES}\n".encode())
    for t, y in rows:
        h.update(f"{y}\t{t}\n".encode("utf-8", "surrogatepass"))
    h.update(b"--heldout--\n")
    for t in heldout:
        h.update(f"{t}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


def _key_sources(policy: Policy) -> list[str]:
    """Everything ``screen_hash(*screen_inputs(policy))`` is computed from."""
    import gatekeeper.corpus as corpus

    return [SCREEN_VERSION, str(N_FEATURES), json.dumps(sorted(policy.categories)), file_digest(corpus.CORPUS_PATH),
            source_digest([sys.modules[__name__], corpus])]


def remembered_screen_key(policy: Policy) -> str:
    """The cache key of this policy's screen, found by the key remembered for its inputs
    (``gatekeeper.key_memo``) without parsing the corpus; computed (and remembered) the first time."""
    return remembered_key("screen", _key_sources(policy), lambda: screen_hash(*screen_inputs(policy)))


def ensure_screen(policy: Policy, *, retrain: bool = False) -> LexicalScreen:
    """Load the cached screen for this policy's inputs, or train and cache it (seconds), guarded by the policy's
    exemplars of alignment-shifting writes."""
    screen = _cached_screen(policy, retrain=retrain)
    screen.guard = ExemplarGuard(guarded_exemplars(policy))
    return screen


def _cached_screen(policy: Policy, *, retrain: bool) -> LexicalScreen:
    from gatekeeper.settings import cache_root

    if not retrain:
        # found by the key remembered for these inputs (``gatekeeper.key_memo``), without parsing the corpus
        key = remembered_screen_key(policy)
        try:
            return LexicalScreen.load(cache_root() / "screen" / key)
        except ModelLoadError:
            pass  # missing, or damaged (a file deleted, truncated): trained again and swapped in whole
    rows, heldout = screen_inputs(policy)
    key = screen_hash(rows, heldout)
    directory = cache_root() / "screen" / key
    if not retrain and directory.exists():
        try:
            return LexicalScreen.load(directory)
        except ModelLoadError:
            pass
    screen = train_screen(rows, heldout)
    screen.meta["inputs_hash"] = key
    screen.save(directory)
    return LexicalScreen.load(directory)
