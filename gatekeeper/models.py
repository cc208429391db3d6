"""Data model of the gatekeeper: proposals, review results, decisions.

Everything that crosses a module boundary is one of these pydantic v2 models, so
it validates on the way in and serialises the same way into the ledger, the
SQLite registry and the review pages.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gatekeeper.hidden_chars import first_unshown, hidden_at

#: Upper bound on the text of one memory. Larger writes are refused with a clear
#: error (the caller keeps its data); memories are notes, not documents.
MAX_CONTENT_CHARS = 64_000
MAX_NAMESPACE_DEPTH = 16
MAX_LABEL_CHARS = 256
#: the longest reason a person's review decision or release keeps (the web forms', the API's and
#: ``ReviewDecision``'s limit; a reason the gate writes for them is cut to it)
MAX_REASON_CHARS = 4000
#: the validation context of a proposal read back from where it was stored (``MemoryWrite``'s id check)
STORED = "stored"

#: what a proposal id may be (``MemoryWrite.id``): safe in a URL path, a shell argument and a log line as it is
_PROPOSAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime, name: str = "since") -> datetime:
    """``moment`` in UTC. The registry keeps its times as UTC ISO strings and compares them as text, so an
    instant given in another zone is converted first (compared as written, ``10:00+05:30`` would read as later
    than ``06:00+00:00``, which is the same instant); a naive datetime names no instant at all and is refused
    (ValueError naming the argument) rather than guessed."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc)), not naive: {moment!r}")
    return moment.astimezone(timezone.utc)


def one_line(exc: Exception) -> str:
    """An error as one line: pydantic's validation errors as ``field: message; ...``, anything else its text with
    its line breaks folded (what the CLI prints and the reviewer node reports for a refused decision)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"].removeprefix(
            "Value error, ") for e in exc.errors())
    return " ".join(str(exc).split())


def whole_number(value: Any, name: str = "limit", least: int = 1) -> int:
    """``value`` when it is a whole number from ``least``; otherwise a ValueError naming the argument. A bool is
    refused although Python counts it an int (``limit=True`` read as 1 took one row, silently), and so is a float
    (``2.5`` reached SQL's LIMIT as it was)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be a whole number from {least}, not {value!r}")
    return value


def page_bounds(op: Any) -> None:
    """A store read's ``limit`` and ``offset`` (LangGraph's ``SearchOp``, ``ListNamespacesOp``) as whole
    numbers from 0, else a ValueError naming the one that is not: a negative one was used as a slice bound
    (``limit=-1`` returned all but the last items, ``offset=-5`` the last five), silently, as LangGraph's
    ``InMemoryStore`` does."""
    whole_number(op.limit, "limit", least=0)
    whole_number(op.offset, "offset", least=0)


def new_id() -> str:
    return uuid.uuid4().hex


class SourceKind(str, Enum):
    """Who or what produced the text of a memory."""

    operator = "operator"  # the deploying team / system prompt author
    user = "user"  # the human the agent works for
    agent = "agent"  # the agent's own reflection or summary
    tool = "tool"  # output of a tool call (API, shell, database)
    web = "web"  # fetched web page or document
    peer_agent = "peer_agent"  # another agent in a multi-agent system
    unknown = "unknown"


class Label(str, Enum):
    task_knowledge = "task_knowledge"
    alignment_shifting = "alignment_shifting"


class Action(str, Enum):
    commit = "commit"
    quarantine = "quarantine"
    escalate = "escalate"


class ProposalState(str, Enum):
    received = "received"  # journaled, not yet decided (only seen after a crash)
    committed = "committed"
    quarantined = "quarantined"
    pending = "pending"  # escalated, waiting for a human


#: the reviewer recorded when the gate rejects an escalation nobody decided by its deadline
#: (``escalation.overdue_action: quarantine``, ``ReviewService.expire_overdue``). No account can hold this name:
#: account ids have no colon
EXPIRY_REVIEWER = "gatekeeper:expiry"


class EscalationMode(str, Enum):
    interrupt = "interrupt"  # pause the graph with interrupt(); resume with Command(resume=...)
    park = "park"  # keep the write in the review queue; the agent goes on


def escalation_mode_of(mode: EscalationMode | str | None) -> EscalationMode | None:
    """``mode`` as an EscalationMode (None stays None: the default applies). A misspelt mode is a ValueError
    naming the valid ones, raised where it is given: taken as it was, it failed the decision of every write that
    escalates, each quarantined as a failed review, while the writes that commit hid the mistake."""
    if mode is None or isinstance(mode, EscalationMode):
        return mode
    try:
        return EscalationMode(mode)
    except ValueError:
        raise ValueError(f"escalation_mode must be one of {', '.join(m.value for m in EscalationMode)}, "
                         f"not {mode!r}") from None


class Provenance(BaseModel):
    """Where a proposed memory came from.

    ``source`` is set by the host code that builds the proposal (the node or the
    store wrapper), never parsed out of the memory text. ``claimed_source`` keeps
    what the content or its metadata *claimed* to be, for the record only: trust
    is always computed from ``source``.
    """

    model_config = ConfigDict(extra="forbid")

    source: SourceKind = SourceKind.agent
    agent_id: str = "agent"
    thread_id: str | None = None
    run_id: str | None = None
    tool_name: str | None = None
    url: str | None = None
    claimed_source: str | None = None

    @field_validator("thread_id", "run_id", mode="before")
    @classmethod
    def _run_ids_as_text(cls, v: Any) -> Any:
        # LangGraph takes any thread id a checkpointer can key by; its own savers store it as text, and so does
        # the registry (an int or a UUID would fail every write of such a thread; a bool is not an id)
        return str(v) if isinstance(v, (int, uuid.UUID)) and not isinstance(v, bool) else v

    @field_validator("agent_id", "tool_name", "url")
    @classmethod
    def _one_line(cls, v: str | None, info: ValidationInfo) -> str | None:
        # shown to reviewers and written into the judge's prompt on one line: a line break in a tool name let an
        # agent add lines of its own to what the judge reads about the write (read-back rows are taken as stored)
        # a bidi override or zero-width character is refused as a key's is (an emoji's glue shows, and is taken)
        if v is not None and not (info.context or {}).get(STORED) and (odd := first_unshown(v)) is not None:
            raise ValueError(f"{info.field_name} must not contain line breaks, control or invisible characters "
                             f"(it holds U+{ord(odd):04X}); it is shown to people, so it holds what shows")
        return v

    @field_validator("agent_id")
    @classmethod
    def _agent_id_ok(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("agent_id must not be empty")
        if len(v) > MAX_LABEL_CHARS:
            raise ValueError(f"agent_id longer than {MAX_LABEL_CHARS} characters")
        return v


def validate_namespace(namespace: tuple[str, ...] | list[str], *, stored: bool = False) -> tuple[str, ...]:
    """Validate a LangGraph-style namespace; raise ValueError with the reason. ``stored``: a namespace that may
    already be stored (read back from the registry, or named by a read or a delete), taken as it was written
    (control characters were allowed before; a wrapped store may hold "/" and "\\" in labels)."""
    if isinstance(namespace, str):
        raise ValueError("namespace must be a tuple of strings, not a string")
    ns = tuple(namespace)
    if not ns:
        raise ValueError("namespace must not be empty")
    if len(ns) > MAX_NAMESPACE_DEPTH:
        raise ValueError(f"namespace deeper than {MAX_NAMESPACE_DEPTH} levels")
    for i, label in enumerate(ns):
        if not isinstance(label, str):
            raise ValueError(f"namespace label {i} is {type(label).__name__}, not str")
        if not label:
            raise ValueError(f"namespace label {i} is empty")
        if "." in label:
            raise ValueError(f"namespace label {label!r} contains '.'")
        if label in {"..", "*"} or "\x00" in label or (not stored and ("/" in label or "\\" in label)):
            # a namespace already in a wrapped store ("CORP\\alice", "src/lib": LangGraph's stores take them) was
            # listed by list_namespaces and search, yet could not be read or deleted by its name
            raise ValueError(f"namespace label {label!r} contains a path or wildcard character")
        if not stored and (odd := first_unshown(label)) is not None:
            raise ValueError(f"namespace label {label!r} holds U+{ord(odd):04X}, a line break, control or invisible "
                             "character; namespaces are shown to people, so they hold what shows")
        if len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"namespace label {i} longer than {MAX_LABEL_CHARS} characters")
    return ns


def content_to_text(content: Any) -> str:
    """Flatten a memory value (str or JSON-like dict) to the text that is reviewed.

    All string leaves are reviewed, keys included, so no metadata field can carry
    unreviewed text into the store.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, (bytes, bytearray)):
        raise ValueError("memory content must be text; decode bytes before proposing")
    parts: list[str] = []

    def walk(node: Any, path: str, depth: int = 0) -> None:
        if depth > 32:
            raise ValueError("memory value nested deeper than 32 levels")
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, dict):
            # a key that is not a string at any depth: JSON has none, the ledger's and registry's copies of the
            # value would differ from the store's ({2: "b"} kept as {"2": "b"}), and a dict of int and str keys
            # cannot be hashed for the ledger (sorting them fails): refused before anything is written
            for k in node:
                if not isinstance(k, str):
                    raise ValueError(f"memory value has a key that is not a string at {path} "
                                     f"({type(k).__name__} {str(k)[:40]!r}): JSON keys are strings")
            # "content"/"text" first so the main statement leads the reviewed text
            for k in sorted(node, key=lambda k: (k not in ("content", "text", "memory"), k)):
                if k not in ("content", "text", "memory"):
                    parts.append(f"{k}:")
                walk(node[k], f"{path}.{k}", depth + 1)
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]", depth + 1)
        elif isinstance(node, (bytes, bytearray)):
            raise ValueError("memory value contains bytes; only JSON-compatible values are accepted")
        elif node is None or isinstance(node, (int, float, bool)):
            try:
                parts.append(json.dumps(node))
            except ValueError:  # Python's cap on the digits of an int turned into text
                raise ValueError(f"memory value holds an integer too large to write out at {path} (more than "
                                 f"{sys.get_int_max_str_digits():,} digits): store it as text") from None
        else:
            raise ValueError(f"memory value contains unsupported type {type(node).__name__}")

    walk(content, "value")
    return " ".join(p for p in parts if p)


class MemoryWrite(BaseModel):
    """A memory an agent proposes to store."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id)
    namespace: tuple[str, ...]
    key: str = Field(default_factory=new_id)
    value: dict[str, Any]
    kind: str = "semantic"  # semantic / episodic / procedural / preference / ...
    provenance: Provenance = Field(default_factory=Provenance)
    proposed_at: datetime = Field(default_factory=utcnow)
    #: index fields forwarded to the wrapped store on commit (LangGraph `index=`)
    index: list[str] | bool | None = None
    ttl: float | None = None

    @field_validator("namespace", mode="before")
    @classmethod
    def _ns(cls, v: Any, info: ValidationInfo) -> tuple[str, ...]:
        if isinstance(v, str):
            raise ValueError("namespace must be a tuple of strings, not a string")
        return validate_namespace(tuple(v), stored=bool((info.context or {}).get(STORED)))

    @field_validator("id")
    @classmethod
    def _id(cls, v: str, info: ValidationInfo) -> str:
        # the id names the proposal in review-page links, API paths, CLI arguments and ledger entries: an id
        # such as "%64eadbeef" was linked as /items/%64eadbeef, which a browser reads as /items/deadbeef, so the
        # reviewer who clicked it decided another proposal. A proposal read back from the registry (context
        # STORED) is taken as it was journaled: a registry from before this check may hold such ids
        if not _PROPOSAL_ID.fullmatch(v) and not (info.context or {}).get(STORED):
            raise ValueError("id must be 1 to 128 letters, digits and . _ : - (starting with a letter or digit), "
                             f"not {v[:40]!r}")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str, info: ValidationInfo) -> str:
        if not v or not v.strip():
            raise ValueError("key must not be empty")
        if len(v) > 512:
            raise ValueError("key longer than 512 characters")
        # a key is shown to reviewers and operators (the review pages, the CLI, the ledger): a line break, a
        # control or a character that does not show (a bidi override reversing what follows) is refused, as in a
        # namespace label; a key read back from the registry is taken as it was journaled
        if not (info.context or {}).get(STORED):
            if (odd := first_unshown(v)) is not None:
                raise ValueError(f"key {v!r} holds U+{ord(odd):04X}, a control or invisible character; "
                                 "keys are shown to people, so they hold what shows")
        return v

    @model_validator(mode="before")
    @classmethod
    def _content_shortcut(cls, data: Any) -> Any:
        # MemoryWrite(content="...") is shorthand for value={"content": "..."}
        if isinstance(data, dict) and "content" in data and "value" not in data:
            data = dict(data)
            content = data.pop("content")
            if isinstance(content, (bytes, bytearray)):
                raise ValueError("content must be text (str); got bytes — decode it first")
            if not isinstance(content, str):
                raise ValueError(f"content must be a string, got {type(content).__name__}")
            data["value"] = {"content": content}
        return data

    @model_validator(mode="after")
    def _text_ok(self, info: ValidationInfo) -> "MemoryWrite":
        # NaN and Infinity are not JSON: a reviewer's page and the API showed such a number as null while an
        # approval committed it as it was, and a reviewer's edit holding one is refused. A write read back from
        # the registry is taken as it was journaled
        bad = None if (info.context or {}).get(STORED) else _non_finite_at(self.value)
        if bad is not None:
            raise ValueError(f"memory value holds a number that is not finite at {bad} (NaN or Infinity are not "
                             "JSON): store it as text or leave it out")
        text = content_to_text(self.value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"memory content is not valid Unicode (lone surrogate at position {exc.start}); "
                "decode the source text correctly before proposing it") from None
        if not text.strip():
            raise ValueError("memory content is empty")
        if not (info.context or {}).get(STORED) and not _holds_content(self.value):
            # {"content": None}, {"": ""} or a lone zero-width space was committed as a memory of "null" or ":"
            raise ValueError("memory value holds no content: every field is null, empty or made of characters "
                             "that do not show")
        if len(text) > MAX_CONTENT_CHARS:
            raise ValueError(
                f"memory content is {len(text):,} characters; the limit is {MAX_CONTENT_CHARS:,}"
            )
        return self

    @property
    def text(self) -> str:
        return content_to_text(self.value)

    def content_hash(self) -> str:
        return content_hash_of(self.namespace, self.key, self.value)


def _holds_content(value: Any) -> bool:
    """Whether ``value`` has a leaf that says something: a number, a bool, or text with a character that shows
    (keys alone do not; its depth is bounded by ``content_to_text``, which ran first)."""
    if isinstance(value, str):  # stops at the first character that shows: one step for most texts
        return any(not ch.isspace() and not hidden_at(value, i) for i, ch in enumerate(value))
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, dict):
        return any(_holds_content(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_content(v) for v in value)
    return False


def _non_finite_at(value: Any, path: str = "value", depth: int = 0) -> str | None:
    """Where in ``value`` (dicts and lists, as deep as a memory value goes) a float that is NaN or infinite sits,
    as ``value.a[2]``; None when there is none."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if depth > 64:  # deeper than any JSON a store keeps; the store's own checks refuse it
        return None
    if isinstance(value, dict):
        items = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, v in items:
        found = _non_finite_at(v, where, depth + 1)
        if found is not None:
            return found
    return None


def content_hash_of(namespace: Sequence[str], key: str, value: Any) -> str:
    """The hash of a write's content (namespace, key and value) that the registry and the ledger record
    (``MemoryWrite.content_hash``); of a stored item, to tell which write it holds."""
    payload = json.dumps({"ns": list(namespace), "key": key, "value": value},
                         sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class LayerEvidence(BaseModel):
    """What one review layer saw and concluded."""

    layer: str  # normalize / rules / classifier / exemplars / judge / context
    score: float | None = None  # probability of alignment_shifting, when the layer scores
    category: str | None = None
    decided: bool = False  # this layer settled the label on its own
    details: dict[str, Any] = Field(default_factory=dict)
    elapsed_ms: float = 0.0


#: what a deciding text (``ReviewResult.deciding_text``) is when it is a setting read as the statement it makes
#: (``gatekeeper.setting_statements``); its quote then names the setting as written too (``written``)
SETTING_PART = "setting read as a statement"


class ReviewResult(BaseModel):
    label: Label
    category: str | None = None  # a taxonomy id when alignment_shifting
    score: float  # final probability of alignment_shifting, after trust adjustment
    raw_score: float | None = None  # before the provenance adjustment
    evidence: list[LayerEvidence] = Field(default_factory=list)
    error: str | None = None  # set when review failed (the decision fails closed)
    elapsed_ms: float = 0.0

    def deciding_text(self) -> dict | None:
        """The classifier's most alarming text of the write when that is not its whole text, as its evidence
        quotes it: ``{"text": ..., "part": "hidden or decoded content" | "part" | SETTING_PART}`` (a part: a
        sentence, two neighbouring ones, a piece, a window or a string field; a setting's statement comes with
        the setting as ``written``). None when the whole text scored highest, the
        classifier did not run (a rule or the screen decided, the review failed first) or the review predates
        the quote. When a counter-exemplar lowered the text the classifier scored highest and another text of
        the write now sets the score, the exemplar layer's evidence names that text instead."""
        layers = {e.layer: e for e in self.evidence if e.layer in ("classifier", "exemplars")}
        ev = layers.get("exemplars")
        if ev is None or "text_index" not in ev.details:
            ev = layers.get("classifier")
        found = ev.details.get("deciding_text") if ev is not None else None
        if isinstance(found, dict) and isinstance(found.get("text"), str) and isinstance(found.get("part"), str):
            return found
        return None


class Decision(BaseModel):
    proposal_id: str
    action: Action
    reason: str
    policy_hash: str
    policy_version: str | None = None
    decided_at: datetime = Field(default_factory=utcnow)
    decided_by: str = "gatekeeper"
    escalation_mode: EscalationMode | None = None
    deadline: datetime | None = None


class GateOutcome(BaseModel):
    """The whole story of one proposal: what was proposed, what review found, what happened."""

    proposal: MemoryWrite
    review: ReviewResult
    decision: Decision
    state: ProposalState
    replayed: bool = False  # True when the proposal was already decided (idempotent re-run)
    #: True when the proposal's id names a write erased since it was decided (``gatekeeper forget``): a re-run of
    #: the LangGraph task that proposed it (``GatedStore``). Nothing was written; ``state`` is what was decided then
    erased: bool = False
