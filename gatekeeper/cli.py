"""The ``gatekeeper`` command line (typer + rich).

    gatekeeper check "text" [--source web] [--agent a1] [--json]
    gatekeeper review list|show|approve|edit|reject ...
    gatekeeper serve [--host 127.0.0.1] [--port 8600] [--graph module:attr] [--allow-remote]
    gatekeeper reviewer add|list|disable|token ...
    gatekeeper policy lint [DIR]
    gatekeeper ledger verify [--anchor SEQ:HASH] [--live-only] | anchor | rotate | repair
    gatekeeper prune --older-than 90d --operator NAME [--dry-run] [--vacuum]
    gatekeeper backup DEST [--json]
    gatekeeper train [--retrain]
    gatekeeper status [--json]
"""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatekeeper.models import MemoryWrite, ProposalState, Provenance, SourceKind, one_line
from gatekeeper.policy import PolicyError, load_policy
from gatekeeper.settings import GatekeeperSettings

app = typer.Typer(help="System-2 memory-write gatekeeper for LLM agents.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
review_app = typer.Typer(help="Work the human review queue.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy files.", no_args_is_help=True)
ledger_app = typer.Typer(help="The audit ledger.", no_args_is_help=True)
reviewer_app = typer.Typer(help="Reviewer accounts of the web review queue.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(reviewer_app, name="reviewer")
app.add_typer(policy_app, name="policy")
app.add_typer(ledger_app, name="ledger")

console = Console()
err = Console(stderr=True)

def _blank_as_unset(value):
    """An option's value, None when it is blank: click passes a ``GATEKEEPER_*`` variable of blanks on (it drops
    only an empty one), where the library reads it as unset (``settings.env_value``); both must agree on which
    data directory, policy or log level a blank value means."""
    return None if value is not None and not str(value).strip() else value


DataDir = typer.Option(None, "--data-dir", envvar="GATEKEEPER_DATA_DIR", callback=_blank_as_unset,
                       help="Where stores and ledger live.")
PolicyDir = typer.Option(None, "--policy", envvar="GATEKEEPER_POLICY_DIR", callback=_blank_as_unset,
                         help="Policy directory.")


def _print_version(value: bool) -> None:
    if value:
        from gatekeeper import __version__

        console.print(f"gatekeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _main(log_level: Optional[str] = typer.Option(
        None, "--log-level", envvar="GATEKEEPER_LOG_LEVEL", show_envvar=True, callback=_blank_as_unset,
        help="Least severe log event to print (debug, info, warning, error, critical), as JSON lines on "
             "stderr. Default info."),
        version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                     help="Print the version and exit.")) -> None:
    from gatekeeper.log_setup import LogLevelError, configure_logging
    from gatekeeper.telemetry import guardrails_rc_problem

    try:
        configure_logging(log_level)
    except LogLevelError as exc:
        raise _fail(str(exc)) from None
    if problem := guardrails_rc_problem():  # guardrails (the rule layer) would stop with a traceback on it
        raise _fail(problem)


def _one_line(exc: Exception) -> str:
    """An error as one line (``models.one_line``)."""
    return one_line(exc)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)  # one line, however long
    return _exit(code, message)


def _exit(code: int, why: str) -> typer.Exit:
    """``typer.Exit(code)`` that keeps why (what `status --json` reports as `gate_error`)."""
    exit_ = typer.Exit(code)
    exit_.why = why
    return exit_


def _shown(value: Any, limit: int | None = None) -> str:
    """Text from agents, web pages or tools as the terminal should show it: Rich markup printed as it is, and
    characters a terminal would act on or not show (escape sequences, bidi controls, tag characters) as visible
    markers. A memory text must neither crash the reviewer's command nor redraw their screen."""
    from gatekeeper.hidden_chars import reveal

    # U+2028, U+2029 and U+0085 break a line in a terminal or a tool reading the output, as a line break would
    return escape(reveal(value, limit).translate(_UNICODE_LINE_BREAKS))


#: shown as markers by ``_shown``
_UNICODE_LINE_BREAKS = str.maketrans({c: f"⟨U+{ord(c):04X}⟩" for c in "\x85\u2028\u2029"})


def _check_env() -> None:
    """Refuse a bad ``GATEKEEPER_*`` variable before any work, as one line and exit 2 (not a traceback)."""
    from gatekeeper.settings import check_environment

    try:
        check_environment()
    except ValueError as exc:
        raise _fail(_one_line(exc)) from None


def _settings(data_dir: Optional[Path], policy_dir: Optional[Path]) -> GatekeeperSettings:
    kw = {}
    if data_dir:
        kw["data_dir"] = data_dir
    if policy_dir:
        kw["policy_dir"] = policy_dir
    try:
        settings = GatekeeperSettings(**kw)  # checks every GATEKEEPER_* variable too
    except ValueError as exc:  # pydantic's ValidationError is one
        raise _fail(_one_line(exc)) from None
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise _fail(f"data directory {settings.data_dir} is not a directory (--data-dir / GATEKEEPER_DATA_DIR)")
    return settings


def _require_data_dir(settings: GatekeeperSettings) -> None:
    """Refuse a data directory that is not there (a mistyped --data-dir): a command that reads or decides what
    was gated would otherwise create an empty one and report nothing as if it were so."""
    if not settings.data_dir.exists() and not any(p.is_file() for p in settings.data_dir.parents):
        # (a file in the path above it is said when the gate cannot open it)
        raise _fail(f"no data directory at {settings.data_dir}: nothing was gated there (a gate creates it when it "
                    "first opens; check --data-dir or GATEKEEPER_DATA_DIR)")


def _open_gate(data_dir: Optional[Path], policy_dir: Optional[Path], *, create: bool = False):
    """The gate of the data directory (``create``: made when it is not there, for the commands that start one)."""
    import sqlite3

    from gatekeeper.gate import Gatekeeper, RegistryLostError
    from gatekeeper.judge_spec import JudgeModelError
    from gatekeeper.ledger import LedgerCorruptError

    settings = _settings(data_dir, policy_dir)
    if not create:
        _require_data_dir(settings)
    try:
        return Gatekeeper.open(settings)
    except JudgeModelError as exc:  # GATEKEEPER_JUDGE_MODEL names a model that does not load
        raise _fail(f"{exc}; the gate did not start") from None
    except PolicyError as exc:
        # a typo in the policy files must not leave reviewers and operators (queue, expiry, erasure) without
        # a way in: gates already running keep the policy they loaded
        err.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        err.print("the policy files do not load; running gates keep the policy they loaded. Fix them (`gatekeeper "
                  "policy lint`), or run this command with --policy DIR (GATEKEEPER_POLICY_DIR) naming a copy that "
                  "loads, such as the last version in your repository", soft_wrap=True)
        raise _exit(2, f"the policy files do not load: {exc}") from None
    except LedgerCorruptError as exc:
        # an edited (not torn) ledger: the gate refuses to chain onto it; say so instead of a traceback
        err.print(f"[red]the audit ledger does not verify, the gate will not start: {exc}[/red]\n"
                  "run `gatekeeper ledger verify` to see the first bad entry")
        raise _exit(3, f"the audit ledger does not verify, the gate will not start: {exc}") from None
    except OSError as exc:  # e.g. a path under the data directory that is a file, or not writable
        raise _fail(f"cannot open the data directory {settings.data_dir}: {exc}") from None
    except RegistryLostError as exc:
        raise _fail(str(exc), 1) from None
    except sqlite3.Error as exc:  # a damaged registry ("database disk image is malformed"), a read-only one
        raise _fail(f"cannot open the gate registry {settings.registry_path}: {exc} (restore it from a backup "
                    "if it is damaged: `gatekeeper backup` copies)", 1) from None


def _judge_model(spec: Optional[str]):
    """The chat model a judge spec names (``--judge`` / ``GATEKEEPER_JUDGE_MODEL``), None for none; a spec that
    does not load is a clear error (exit 2)."""
    if spec is None or not spec.strip():
        return None
    from gatekeeper.judge_spec import JudgeModelError, load_judge_model

    try:
        return load_judge_model(spec)
    except JudgeModelError as exc:
        raise _fail(str(exc)) from None


def _service(data_dir, policy_dir):
    from gatekeeper.review_service import ReviewService

    return ReviewService(_open_gate(data_dir, policy_dir))


#: ``review list --state``: the proposal states, or all of them
STATE_CHOICES = [s.value for s in ProposalState] + ["all"]
STATE_STYLE = {"committed": "green", "quarantined": "red", "pending": "yellow", "received": "magenta"}


def _print_outcome(outcome) -> None:
    st = outcome.state.value
    console.print(f"[bold {STATE_STYLE.get(st, 'white')}]{st.upper()}[/]  "
                  f"action={outcome.decision.action.value}  label={outcome.review.label.value}  "
                  f"category={outcome.review.category or '-'}  score={outcome.review.score:.3f}")
    console.print(f"reason: {_shown(outcome.decision.reason)}")
    console.print(f"proposal: {outcome.proposal.id}   policy: {outcome.decision.policy_version} "
                  f"({outcome.decision.policy_hash[:12]})")
    table = Table("layer", "score", "category", "evidence", show_lines=False)
    for ev in outcome.review.evidence:
        details = {k: v for k, v in ev.details.items() if v not in (None, [], {}, "")}
        table.add_row(ev.layer, "" if ev.score is None else f"{ev.score:.3f}", ev.category or "",
                      _shown(json.dumps(details, ensure_ascii=False, default=str), 400))
    console.print(table)
    if outcome.review.error:
        console.print(f"[red]review error: {_shown(outcome.review.error)}[/red]")


@app.command()
def check(
    text: str = typer.Argument(..., help="The memory text to review ('-' reads stdin)."),
    source: SourceKind = typer.Option(SourceKind.agent, help="Where the text came from."),
    agent: str = typer.Option("cli", help="Agent id."),
    namespace: str = typer.Option("memories", help="Namespace, '/'-separated."),
    dry_run: bool = typer.Option(True, "--dry-run/--submit",
                                 help="Only show the decision (default), or submit it to the stores."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    train: bool = typer.Option(True, "--train/--no-train",
                               help="Train the policy's classifier first when its exemplars or categories changed "
                                    "and none is cached (10 to 20 minutes on two cores; said on stderr, with a "
                                    "progress bar). --no-train never trains: it reviews with the classifier of the "
                                    "policy in force (GATEKEEPER_POLICY_DIR, else the default policy), as a gate "
                                    "serves an exemplar edit while its classifier trains; the rules, thresholds and "
                                    "exemplar matches are the policy's. Dry run only."),
    data_dir: Optional[Path] = DataDir,
    policy_dir: Optional[Path] = PolicyDir,
) -> None:
    """Review a memory text and show the decision with the evidence of every layer."""
    _check_env()
    if not train and not dry_run:
        raise _fail("--no-train is for the dry run: --submit records the write as the gate decides it, with the "
                    "policy's own classifier")
    if text == "-":
        raw = sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            err.print(f"[red]input is not UTF-8 ({exc}); nothing was reviewed[/red]")
            raise typer.Exit(2) from None
    try:
        proposal = MemoryWrite(content=text, namespace=tuple(namespace.split("/")),
                               provenance=Provenance(source=source, agent_id=agent))
    except ValueError as exc:
        err.print(f"[red]invalid memory write: {_shown(_one_line(exc))}[/red]")
        raise typer.Exit(2) from None
    if dry_run:
        from gatekeeper.decision import decide
        from gatekeeper.models import GateOutcome, ProposalState
        from gatekeeper.reviewer import Reviewer

        try:
            policy = load_policy(policy_dir)
        except PolicyError as exc:
            raise _fail(str(exc)) from None
        # the judge a gate opened from these settings would have (GATEKEEPER_JUDGE_MODEL)
        judge_model = _judge_model(_settings(data_dir, policy_dir).judge_model) if policy.judge.enabled else None
        reviewer = Reviewer(policy, judge_model=judge_model)
        if train:
            _train_first(reviewer, f"the policy {policy.source_path}",
                         "; --no-train reviews with the classifier in force instead, without training")
        else:
            reviewer = _classifier_in_force(reviewer)
        review = reviewer.review(proposal)
        decision = decide(proposal, review, policy)
        state = {"commit": ProposalState.committed, "quarantine": ProposalState.quarantined,
                 "escalate": ProposalState.pending}[decision.action.value]
        outcome = GateOutcome(proposal=proposal, review=review, decision=decision, state=state)
    else:
        with _open_gate(data_dir, policy_dir, create=True) as gate:
            _train_first(gate.reviewer, f"the policy {gate.policy.source_path}")
            outcome = gate.submit(proposal)
    if as_json:
        print(outcome.model_dump_json(indent=2))
    else:
        _print_outcome(outcome)


def _classifier_in_force(reviewer):
    """``reviewer`` where its policy's classifier is cached; else a reviewer of its policy with the classifier of
    the policy in force (``$GATEKEEPER_POLICY_DIR``, else the default policy), said on stderr: `check --no-train`.
    Never trains: where neither is cached, or the policies' categories differ, the command stops (exit 2)."""
    from gatekeeper.policy import default_policy_dir
    from gatekeeper.policy_diff import PolicyDiffError, interim_reviewer

    policy = reviewer.policy
    if reviewer.classifier_ready(policy, reviewer.embedder):
        return reviewer
    where = default_policy_dir()
    try:
        in_force = load_policy(where)
    except PolicyError as exc:
        raise _fail(f"--no-train: no classifier is cached for the policy {policy.source_path}, and the policy in "
                    f"force ({where}) does not load: {exc}") from None
    current = reviewer.for_policy(in_force)
    if in_force.hash == policy.hash or not current.classifier_ready(in_force, current.embedder):
        raise _fail(f"--no-train: no classifier is cached for the policy {policy.source_path}, nor for the policy in "
                    f"force ({where}); train one (`gatekeeper train --policy DIR`), or run check without --no-train")
    try:
        interim = interim_reviewer(current, policy)
    except PolicyDiffError as exc:
        raise _fail(f"--no-train: {exc}") from None
    err.print(f"[yellow]no classifier is cached for the policy {escape(policy.source_path)}: reviewed with the "
              f"classifier of the policy in force ({escape(str(where))}); the rules, thresholds and exemplar matches "
              "are the policy's[/yellow]", soft_wrap=True)
    return interim


# ---------------------------------------------------------------------- review
@review_app.command("list")
def review_list(
    state: str = typer.Option("pending", help="Proposals in this state, or all.",
                              click_type=click.Choice(STATE_CHOICES)),
    agent: Optional[str] = typer.Option(None),
    category: Optional[str] = typer.Option(None),
    namespace: Optional[str] = typer.Option(None, help="Namespace prefix, '/'-separated."),
    overdue: bool = typer.Option(False, help="Only escalations past their deadline."),
    text: Optional[str] = typer.Option(None, help="Only memories whose text contains this (any case)."),
    alike: Optional[str] = typer.Option(None, help="Only memories worded as this proposal's is (numbers, case and "
                                        "punctuation aside): one write stored many times, a counter in it."),
    limit: int = typer.Option(50, min=1, help="At most this many, oldest first."),
    offset: int = typer.Option(0, min=0, help="Skip this many first: the next page of a long queue is "
                               "--offset 50, then 100, ..."),
    as_json: bool = typer.Option(False, "--json"),
    data_dir: Optional[Path] = DataDir,
    policy_dir: Optional[Path] = PolicyDir,
) -> None:
    """List proposals in the review queue (or in another state), oldest first."""
    from gatekeeper.registry import NotFoundError

    svc = _service(data_dir, policy_dir)
    try:
        items = svc.list(state=None if state == "all" else state, agent_id=agent, category=category,
                         namespace_prefix=_namespace_prefix(namespace),
                         overdue_only=overdue, limit=limit, offset=offset, text=text.strip() if text else None,
                         alike=alike.strip() if alike else None)
    except NotFoundError as exc:  # --alike names no proposal: as `review show` says it
        raise _fail(_one_line(exc), 1) from None
    except ValueError as exc:
        raise _fail(_one_line(exc)) from None
    if as_json:
        print(json.dumps([i.model_dump(mode="json") for i in items], indent=2))
        return
    console.print(_review_table(items))
    shown = f"{len(items)} item(s)" + (f", from the {offset + 1}{_ordinal(offset + 1)} on" if offset else "")
    if len(items) == limit:
        shown += f"; there may be more: --offset {offset + limit}"
    console.print(shown)


#: the terminal width below which ``review list`` folds agent, namespace, category, score and text into one column:
#: the full ids (32 characters) and eight columns do not fit, and Rich cut the ids ("96ada6b1…"), which
#: `review show` then did not find
REVIEW_TABLE_WIDE = 120
#: ids longer than this (an agent's own) are folded over lines rather than widening the table past the terminal
REVIEW_ID_WIDTH_MAX = 64


def _review_table(items) -> Table:
    """The ``review list`` table. Ids are never cut: their column is as wide as the longest (folded, not cut, past
    ``REVIEW_ID_WIDTH_MAX``), and below ``REVIEW_TABLE_WIDE`` columns the other fields share one column."""
    from rich.table import Column
    from rich.text import Text

    from gatekeeper.models import utcnow

    ids = [_shown(i.id) for i in items]
    id_width = min(REVIEW_ID_WIDTH_MAX, max((Text.from_markup(x).cell_len for x in ids), default=2))
    id_column = Column("id", no_wrap=id_width < REVIEW_ID_WIDTH_MAX, min_width=id_width, overflow="fold")
    state_column = Column("state", min_width=max((len(i.state.value) for i in items), default=5))
    wide = console.width >= REVIEW_TABLE_WIDE
    table = (Table(id_column, state_column, "agent", "namespace", "category", "score", "age", "text") if wide
             else Table(id_column, state_column, Column("memory", ratio=1)))
    for shown_id, i in zip(ids, items):
        age = f"{(utcnow() - i.created_at).total_seconds() / 3600:.1f}h"
        flag = " [red]OVERDUE[/red]" if i.overdue else ""
        category, score = i.category or "-", f"{i.score:.2f}" if i.score is not None else "-"
        agent, namespace, text = _shown(i.agent_id), _shown("/".join(i.namespace)), _shown(i.text, 70)
        if wide:
            table.add_row(shown_id, i.state.value + flag, agent, namespace, category, score, age, text)
        else:
            table.add_row(shown_id, f"{i.state.value}{flag}\n{age}",
                          f"{category} {score}, agent {agent}, {namespace}\n{text}")
    return table


def _ordinal(n: int) -> str:
    """The English suffix of the ordinal of ``n`` ("st" of 1st, "th" of 11th)."""
    return "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@review_app.command("show")
def review_show(proposal_id: str, data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir,
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one proposal with provenance, evidence and similar committed memories."""
    from gatekeeper.registry import NotFoundError
    from gatekeeper.review_service import superseded_note

    svc = _service(data_dir, policy_dir)
    try:
        d = svc.show(proposal_id)
    except NotFoundError as exc:  # none, or pruned or erased since: the registry says which
        err.print(f"[red]{_shown(exc)}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        print(d.model_dump_json(indent=2))
        return
    console.print(f"[bold]{_shown(d.id)}[/bold]  state={d.state.value}{'  OVERDUE' if d.overdue else ''}")
    console.print(f"namespace={_shown('/'.join(d.namespace))} key={_shown(d.key)}")
    if d.other_store and d.state.value == "pending":
        from gatekeeper.store_identity import where_to_decide

        console.print(f"[yellow]to be stored in another memory store ({_shown(d.other_store)}) than this "
                      f"process's: approving or editing it here is refused. {where_to_decide(d.other_store)}"
                      "[/yellow]", soft_wrap=True)
    console.print(f"provenance: {_shown(d.proposal.provenance.model_dump(mode='json', exclude_none=True))}")
    console.print(f"memory: {_shown(json.dumps(d.proposal.value, ensure_ascii=False))}")
    if d.decision:
        console.print(f"decision: {d.decision.action.value} — {_shown(d.decision.reason)}")
        console.print(f"policy: {d.decision.policy_version} ({d.decision.policy_hash[:12]})")
    deciding = d.review.deciding_text() if d.review else None
    if deciding:
        written = (f" \u201c{_shown(deciding['written'], 300)}\u201d, read as"
                   if isinstance(deciding.get("written"), str) else "")
        console.print(f"classifier scored it by its most alarming {deciding['part']}:{written} "
                      f"\u201c{_shown(deciding['text'], 300)}\u201d")
    judged = next((e for e in d.review.evidence if e.layer == "judge"), None) if d.review else None
    if judged is not None and judged.details.get("skipped"):
        console.print(f"LLM judge: not asked: {judged.details['skipped']} "
                      f"(judge.over_budget: {judged.details.get('over_budget')})")
    elif judged is not None:
        console.print(f"LLM judge: {judged.details.get('label')} (confidence {judged.details.get('confidence')}"
                      f"{', not allowed to clear it' if not judged.details.get('may_clear', True) else ''}): "
                      f"{_shown(judged.details.get('rationale', ''), 500)}")
    if d.review:
        for ev in d.review.evidence:
            console.print(f"  {escape(f'[{ev.layer}]')} score={ev.score} category={ev.category} "
                          f"{_shown(json.dumps(ev.details, ensure_ascii=False, default=str), 300)}")
    for s in d.similar_committed:
        console.print(f"  similar: {_shown(json.dumps(s['value'], ensure_ascii=False), 120)}")
    if d.resolved_by:
        console.print(f"resolved: {d.resolution} by {_shown(d.resolved_by)}: {_shown(d.resolved_reason)}")
    elif d.resolution:  # a quarantined write retried, released to review, or out of date
        console.print(f"{d.resolution}: {_shown(d.resolved_reason)}")
    if d.superseded_by and d.resolution in ("approve", "edit", "reject"):
        # a person's decision the store did not apply: a later write or delete of the key stands
        console.print(f"[yellow]{_shown(superseded_note(d.superseded_by))}[/yellow]", soft_wrap=True)


def _os_user() -> str:
    """The operating-system user running this command (for the ledger: who ran a CLI decision or account change)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        return f"uid {os.getuid()}"


def _from_cli(payload: dict) -> dict:
    """A decision's payload as the CLI sends it: its channel and the OS user, for the ledger."""
    return {**payload, "channel": "cli", "os_user": _os_user()}


def _decide(proposal_id: str, payload: dict, data_dir, policy_dir, svc=None) -> None:
    from gatekeeper.registry import ConflictError, NotFoundError
    from gatekeeper.review_service import ReviewPermissionError

    payload = _from_cli(payload)
    svc = svc or _service(data_dir, policy_dir)
    try:
        done = svc.submit_decision(proposal_id, payload)
    except NotFoundError as exc:
        err.print(f"[red]{_shown(exc)}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    except ConflictError as exc:
        err.print(f"[red]conflict: {_shown(exc)}[/red]", soft_wrap=True)
        raise typer.Exit(3) from None
    except (ValueError, ReviewPermissionError) as exc:
        err.print(f"[red]{_shown(_one_line(exc))}[/red]")
        raise typer.Exit(2) from None
    item = done.item
    console.print(f"{_shown(item.id)}: {item.resolution} by {_shown(item.resolved_by)} -> "
                  f"[bold]{item.state.value}[/bold]")
    if done.warning:  # e.g. superseded: the decision is recorded, the memory store was not changed
        err.print(f"[yellow]{_shown(item.id)}: {_shown(done.warning)}[/yellow]", soft_wrap=True)


#: exit codes of a bulk decision's outcomes, as a single decision's (1 unknown id, 2 refused, 3 conflict)
_BULK_EXIT = {"not_found": 1, "invalid": 2, "forbidden": 2, "conflict": 3}


def _refuse_system_name(name: str, option: str) -> None:
    """Exit 2 when ``name`` (a reviewer's or an operator's) is one the gate keeps for itself: the names no
    account may take (``accounts.RESERVED_NAMES``) and ``gatekeeper:...`` (``gatekeeper:expiry``, the
    expiry's rejections). A person's rejection recorded as ``gatekeeper:expiry`` would be counted as an expiry,
    left out of ``policy suggest`` and be released to review as if nobody had decided it."""
    from gatekeeper.accounts import RESERVED_NAMES, normalize_name

    shown = normalize_name(name)
    if shown in RESERVED_NAMES or shown.startswith("gatekeeper:"):
        err.print(f"[red]{option} {_shown(name.strip())!r} is a name the gate keeps for itself: give the name "
                  "of the person[/red]", soft_wrap=True)
        raise typer.Exit(2)


def _namespace_prefix(namespace: str | None) -> tuple[str, ...] | None:
    """``--namespace`` as the web queue reads it: '/'-separated labels, slashes at the ends and doubled ones
    ignored (``memories/agent-1/`` is ``memories/agent-1``, not a prefix with an empty label that matches
    nothing); None for none or blank."""
    labels = tuple(p for p in (namespace or "").strip().split("/") if p)
    return labels or None


def _decide_ids(proposal_ids: list[str], payload: dict, data_dir, policy_dir) -> None:
    """One id: ``_decide``. Several: ``ReviewService.decide_many``, a line per id; the exit code is that of
    the last one left out (1 unknown id, 2 refused, 3 conflict), 0 when all were decided."""
    _refuse_system_name(payload["reviewer"], "--reviewer")
    if len(proposal_ids) == 1:
        _decide(proposal_ids[0], payload, data_dir, policy_dir)
        return
    svc = _service(data_dir, policy_dir)

    def shown(o) -> None:
        console.print(f"{_shown(o.proposal_id)}: {o.item.resolution} by {_shown(o.item.resolved_by)} -> "
                      f"[bold]{o.item.state.value}[/bold]")
        if o.warning:
            err.print(f"[yellow]{_shown(o.proposal_id)}: {_shown(o.warning)}[/yellow]")

    _run_bulk(lambda report: svc.decide_many([(pid, None) for pid in proposal_ids], _from_cli(payload),
                                             on_outcome=report),
              shown, len(dict.fromkeys(proposal_ids)), "decided")


def _run_bulk(run, shown, total: int, done: str) -> None:
    """Run a bulk decision or release (``run(report)``), printing each outcome as it comes (``shown`` for one
    carried out, ``_left_out`` for one left out). Exit code: that of the last one left out, 0 when none was;
    2 when nothing was done (``run`` refused the request); 130 on Ctrl-C, after saying how far it got."""
    code = 0
    count = 0

    def report(o) -> None:
        nonlocal code, count
        count += 1
        if o.item is not None:
            shown(o)
        else:
            code = _left_out(o)

    try:
        run(report)
    except ValueError as exc:  # nothing done: a malformed request, too many ids
        err.print(f"[red]{escape(_one_line(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted after {count} of {total}: the lines above were {done}; the rest were not "
                  f"(one in flight is finished by the next gate to open: `gatekeeper review show ID` tells)"
                  "[/yellow]", soft_wrap=True)
        raise typer.Exit(130) from None
    if code:
        raise typer.Exit(code)


def _left_out(outcome) -> int:
    """Print why a bulk decision or release left ``outcome``'s id out, as ``ID: status: why`` (one line per id,
    on stderr); its exit code."""
    why = " ".join((outcome.error or "").split())
    err.print(f"[red]{_shown(outcome.proposal_id)}: {outcome.status}: {_shown(why)}[/red]", soft_wrap=True)
    return _BULK_EXIT[outcome.status]


@review_app.command("approve")
def review_approve(proposal_ids: list[str] = typer.Argument(..., metavar="ID...", help="Pending escalations."),
                   reviewer: str = typer.Option(..., "--reviewer", "-r"),
                   reason: Optional[str] = typer.Option(None), data_dir: Optional[Path] = DataDir,
                   policy_dir: Optional[Path] = PolicyDir) -> None:
    """Approve escalations: the memories are committed. With several ids each is decided on its own, and a
    memory with characters a reader cannot see is left out (approve it alone, after `review show`)."""
    _decide_ids(proposal_ids, {"type": "approve", "reviewer": reviewer, "reason": reason}, data_dir, policy_dir)


@review_app.command("edit")
def review_edit(proposal_id: str,
                text: Optional[str] = typer.Option(None, "--text", help="The corrected memory text, for a memory "
                                                   "that is one text ({\"content\": ...})."),
                value: Optional[str] = typer.Option(None, "--json", help="The whole corrected memory as a JSON "
                                                    "object, for a memory with more fields than its text "
                                                    "(`review show ID --json` prints the proposed one)."),
                reviewer: str = typer.Option(..., "--reviewer", "-r"), reason: Optional[str] = typer.Option(None),
                data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Edit an escalation's memory, then commit it: `--text` for a memory that is one text, `--json` for the
    whole value of one with other fields (tags, importance...), which `--text` would drop."""
    from gatekeeper.registry import NotFoundError, row_proposal

    _refuse_system_name(reviewer, "--reviewer")
    if (text is None) == (value is None):
        err.print("[red]give the corrected memory with --text (one text) or --json (the whole value), not "
                  "both[/red]" if text is not None else "[red]give the corrected memory: --text TEXT for a "
                  "memory that is one text, or --json OBJECT for the whole value[/red]", soft_wrap=True)
        raise typer.Exit(2)
    if value is not None:
        try:
            edited = json.loads(value)
        except (json.JSONDecodeError, RecursionError) as exc:
            err.print(f"[red]--json is not valid JSON: {_shown(_one_line(exc))}[/red]", soft_wrap=True)
            raise typer.Exit(2) from None
        if not isinstance(edited, dict):
            err.print("[red]--json must be a JSON object (the whole memory value)[/red]", soft_wrap=True)
            raise typer.Exit(2)
    svc = _service(data_dir, policy_dir)
    if text is not None:
        edited = text
        try:
            proposed = row_proposal(svc.gate.registry.require(proposal_id)).value
        except NotFoundError as exc:
            err.print(f"[red]{_shown(exc)}[/red]", soft_wrap=True)
            raise typer.Exit(1) from None
        others = sorted(set(proposed) - {"content"})
        if others:  # {"content": text} would be committed, and these fields lost without a word
            err.print(f"[red]this memory has fields besides its text ({_shown(', '.join(others), 200)}), which "
                      "--text would drop: give the whole corrected value with --json (`gatekeeper review show "
                      f"{_shown(proposal_id)} --json` prints the proposed one)[/red]", soft_wrap=True)
            raise typer.Exit(2)
    _decide(proposal_id, {"type": "edit", "reviewer": reviewer, "reason": reason, "edited_value": edited},
            data_dir, policy_dir, svc)


@review_app.command("reject")
def review_reject(proposal_ids: list[str] = typer.Argument(..., metavar="ID...", help="Pending escalations."),
                  reviewer: str = typer.Option(..., "--reviewer", "-r"),
                  reason: str = typer.Option(..., help="Why (required)."), data_dir: Optional[Path] = DataDir,
                  policy_dir: Optional[Path] = PolicyDir) -> None:
    """Reject escalations: the memories are quarantined. With several ids each is decided on its own."""
    _decide_ids(proposal_ids, {"type": "reject", "reviewer": reviewer, "reason": reason}, data_dir, policy_dir)


@review_app.command("release")
def review_release(proposal_ids: list[str] = typer.Argument(..., metavar="ID...", help="Quarantined proposals."),
                   operator: str = typer.Option(..., "--operator", help="Who releases them (recorded in the "
                                                "ledger)."),
                   reason: str = typer.Option(..., help="Why a person should decide them (required; the reviewer "
                                              "sees it)."),
                   data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Send writes the gate quarantined to the review queue, for a person to approve, edit or reject (false
    alarms, without a policy change). Not a person's rejection, and not a write whose key changed since. Each id
    is released or refused on its own; the exit code is that of the last refusal (1 unknown id, 2 bad input,
    3 conflict), 0 when all were released."""
    _refuse_system_name(operator, "--operator")
    svc = _service(data_dir, policy_dir)
    _run_bulk(lambda report: svc.release_many(proposal_ids, operator, reason, on_outcome=report),
              lambda o: console.print(f"{_shown(o.proposal_id)}: released to review as {_shown(o.item.id)} -> "
                                      f"[bold]{o.item.state.value}[/bold]"),
              len(dict.fromkeys(proposal_ids)), "released")


@review_app.command("expire-overdue")
def review_expire_overdue(limit: int = typer.Option(1000, min=1, help="At most this many escalations, oldest "
                                                    "first."),
                          dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would expire."),
                          data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Under the policy's escalation.overdue_action: quarantine, reject the escalations past their deadline (as
    reviewer gatekeeper:expiry): each goes to the quarantine, never to memory. `gatekeeper serve` does this every
    minute; run this from cron where no server runs. Under overdue_action: flag it changes nothing."""
    svc = _service(data_dir, policy_dir)
    try:
        action = svc.gate.policy.escalation.overdue_action
        if action != "quarantine":
            console.print(f"escalation.overdue_action is {action}: overdue escalations wait for a person; "
                          "nothing expires")
            return
        items = svc.expire_overdue(limit=limit, dry_run=dry_run)
    except ValueError as exc:
        raise _fail(_one_line(exc)) from None
    finally:
        svc.gate.close()
    for item in items:
        due = item.deadline.isoformat(timespec="seconds") if item.deadline else "?"
        console.print(f"{_shown(item.id)}: {'would expire' if dry_run else 'expired'} (due {due}) -> "
                      f"[bold]{ProposalState.quarantined.value if dry_run else item.state.value}[/bold]")
    console.print(f"{'dry run: ' if dry_run else ''}{len(items)} overdue escalation(s) "
                  f"{'would expire' if dry_run else 'expired'}")


_RETRY_OPERATOR = typer.Option(None, "--operator", help="Who retries (recorded in the ledger); required unless "
                                                        "--dry-run.")
_RETRY_LIMIT = typer.Option(1000, min=1, help="At most this many writes, oldest first.")
_RETRY_DRY_RUN = typer.Option(False, "--dry-run", help="Only show what a run would do.")


@review_app.command("retry-store-failures")
def review_retry_store_failures(operator: Optional[str] = _RETRY_OPERATOR, limit: int = _RETRY_LIMIT,
                                dry_run: bool = _RETRY_DRY_RUN, data_dir: Optional[Path] = DataDir,
                                policy_dir: Optional[Path] = PolicyDir) -> None:
    """Submit again the writes quarantined because the memory store refused them (it was down), once it is
    back: each is reviewed again under the policy in force. Writes whose key changed since are skipped."""
    _retry("store", operator, limit, dry_run, data_dir, policy_dir)


@review_app.command("retry-failed-reviews")
def review_retry_failed_reviews(operator: Optional[str] = _RETRY_OPERATOR, limit: int = _RETRY_LIMIT,
                                dry_run: bool = _RETRY_DRY_RUN, data_dir: Optional[Path] = DataDir,
                                policy_dir: Optional[Path] = PolicyDir) -> None:
    """Submit again the writes quarantined because their review failed (fail closed: a classifier that did not
    load, a judge that timed out), once the fault is mended: each is reviewed again under the policy in force.
    Writes whose key changed since are skipped."""
    _retry("review", operator, limit, dry_run, data_dir, policy_dir)


@review_app.command("recheck-quarantine")
def review_recheck_quarantine(operator: Optional[str] = _RETRY_OPERATOR,
                              since: Optional[str] = typer.Option(None, help="Only writes of this last period "
                                                                  "(36h, 90d, 2w)."),
                              limit: int = typer.Option(1000, min=1, help="At most this many writes submitted "
                                                        "again, oldest first (those that would stay quarantined "
                                                        "are passed over, however many)."),
                              dry_run: bool = _RETRY_DRY_RUN, data_dir: Optional[Path] = DataDir,
                              policy_dir: Optional[Path] = PolicyDir) -> None:
    """Review again, under the policy in force, the writes the gate quarantined (not people's rejections): after
    a false alarm was mended in the policy, those it would now commit or escalate are submitted again."""
    from gatekeeper.models import utcnow

    after = utcnow() - _duration(since, "--since") if since else None
    _retry("recheck", operator, limit, dry_run, data_dir, policy_dir, since=after)


def _retry(kind: str, operator: Optional[str], limit: int, dry_run: bool, data_dir: Optional[Path],
           policy_dir: Optional[Path], since=None) -> None:
    gate = _open_gate(data_dir, policy_dir)
    try:
        if kind == "recheck":
            report = gate.recheck_quarantine(operator=operator, since=since, limit=limit, dry_run=dry_run)
        else:
            retry = gate.retry_store_failures if kind == "store" else gate.retry_failed_reviews
            report = retry(operator=operator, limit=limit, dry_run=dry_run)
    except ValueError as exc:
        raise _fail(_one_line(exc)) from None
    finally:
        gate.close()
    stays = [r for r in report if r["outcome"] == "still_quarantined"]
    capped = [r for r in report if r["outcome"] == "still_capped"]
    report = [r for r in report if r["outcome"] not in ("still_quarantined", "still_capped")]
    if stays:
        console.print(f"{len(stays)} would be quarantined again under the policy in force: left as they are")
    if capped:
        console.print(f"{len(capped)} would be escalated, but their agent's escalations fill the queue cap "
                      "(escalation.max_pending_per_agent): left as they are until people decide some")
    for r in report:
        if r["outcome"] == "retried":
            carried = f" ({_shown(r['carried'])}'s decision carried over)" if r.get("carried") else ""
            console.print(f"{_shown(r['proposal_id'])}: retried as {_shown(r['retried_as'])} -> "
                          f"[bold]{r['state']}[/bold]{carried}")
        elif r["outcome"] == "would_retry":
            carried = (f"; {_shown(r['carried'])}'s decision is carried over if it escalates"
                       if r.get("carried") else "")
            console.print(f"{_shown(r['proposal_id'])}: would be reviewed again{carried}")
        else:
            console.print(f"{_shown(r['proposal_id'])}: {'would not be' if dry_run else 'not'} retried, superseded "
                          f"by {_shown(r['superseded_by'])}")
    retried = sum(r["outcome"] in ("retried", "would_retry") for r in report)
    if dry_run:
        console.print(f"dry run: {retried} would be retried, {len(report) - retried} skipped; nothing changed")
    else:
        console.print(f"{retried} retried, {len(report) - retried} superseded")


# --------------------------------------------------------------------- reviewer
def _accounts(data_dir: Optional[Path], *, create: bool = False):
    """The reviewer accounts of the data directory (``create``: the directory made when it is not there, for
    the first account of a deployment)."""
    import sqlite3

    from gatekeeper.accounts import AccountStore

    settings = _settings(data_dir, None)
    if not create:
        _require_data_dir(settings)
    try:
        return AccountStore(settings.registry_path)
    except (OSError, sqlite3.Error) as exc:  # a read-only or damaged registry
        raise _fail(f"cannot open the reviewer accounts in {settings.registry_path}: {exc}", 1) from None


def _record_account_change(data_dir: Optional[Path], change: str, account: str, **fields: Any) -> None:
    """Ledger a change to a reviewer account (``account.changed``: who runs the command on this machine, which
    account, what changed; never a password or token) and log it: "who made eve an admin, and when" had no
    answer in any record the gate keeps."""
    from gatekeeper.ledger import AuditLedger, LedgerError
    from gatekeeper.log_setup import get_logger

    settings = _settings(data_dir, None)
    record = {"account": account, "change": change, "os_user": _os_user(), **fields}
    try:
        _ledger_owned_like_its_directory(settings.ledger_path)
        ledger = AuditLedger(settings.ledger_path)
        try:
            ledger.repair_torn_tail()  # what a crash mid-append leaves, as a gate opening repairs it
            ledger.append("account.changed", **record)
        finally:
            ledger.close()
    except (OSError, LedgerError) as exc:
        raise _fail(f"the account was changed ({change}), but the ledger {settings.ledger_path} could not record "
                    f"it: {_one_line(exc)}", 1) from None
    get_logger("gatekeeper.cli").info("account.changed", **record)


def _ledger_owned_like_its_directory(path: Path) -> None:
    """Create a data directory's ledger that does not exist yet (none before the first decision) owned like the
    directory: made by ``sudo gatekeeper reviewer ...``, it was root's (mode 0600), and the service's gate could not
    append its first decision."""
    if path.exists() or os.geteuid() != 0:
        return
    try:
        owner = path.parent.stat()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except (FileExistsError, FileNotFoundError):
        return  # made meanwhile, or no directory (the ledger's own open says so)
    try:
        os.fchown(fd, owner.st_uid, owner.st_gid)
    finally:
        os.close(fd)


@reviewer_app.command("add")
def reviewer_add(
    name: str = typer.Argument(..., help="Account id (login name, recorded as the reviewer in the ledger)."),
    role: str = typer.Option("reviewer", help="reviewer | admin"),
    display_name: Optional[str] = typer.Option(None, "--display-name", help="Name shown on the pages."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Create a reviewer account; prints its API token once."""
    from gatekeeper.accounts import AccountError

    if role not in ("reviewer", "admin"):
        err.print("[red]--role must be reviewer or admin[/red]")
        raise typer.Exit(2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = _accounts(data_dir, create=True)
    try:
        acc, token = store.add(name, password, role=role, display_name=display_name, reserved=store.agent_ids())
    except AccountError as exc:
        raise _fail(str(exc)) from None
    console.print(f"created {acc.role} [bold]{_shown(acc.id)}[/bold] ({_shown(acc.display_name)})")
    console.print("API token (shown once; only its hash is stored):")
    print(token, flush=True)  # before the ledger: the account exists, and its token is shown nowhere else
    _record_account_change(data_dir, "added", acc.id, role=acc.role)


@reviewer_app.command("list")
def reviewer_list(data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json")) -> None:
    """List reviewer accounts."""
    accounts = _accounts(data_dir).list()
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in accounts], indent=2))
        return
    table = Table("id", "name", "role", "status", "created", "last login")
    for a in accounts:
        table.add_row(_shown(a.id), _shown(a.display_name), a.role, "disabled" if a.disabled else "active",
                      a.created_at.strftime("%Y-%m-%d %H:%M"),
                      a.last_login_at.strftime("%Y-%m-%d %H:%M") if a.last_login_at else "-")
    console.print(table)


@reviewer_app.command("disable")
def reviewer_disable(name: str, data_dir: Optional[Path] = DataDir) -> None:
    """Disable an account: it cannot log in; its sessions and API token stop working."""
    from gatekeeper.accounts import AccountError

    try:
        acc = _accounts(data_dir).disable(name)
    except AccountError as exc:
        raise _fail(str(exc), 1) from None
    _record_account_change(data_dir, "disabled", acc.id)
    console.print(f"disabled {acc.id}")


@reviewer_app.command("enable")
def reviewer_enable(name: str, data_dir: Optional[Path] = DataDir) -> None:
    """Enable a disabled account again: its password and API token work again (`reviewer token` issues a new
    token, `reviewer password` sets a new password, if the old ones may be known to others)."""
    from gatekeeper.accounts import AccountError

    try:
        acc = _accounts(data_dir).enable(name)
    except AccountError as exc:
        raise _fail(str(exc), 1) from None
    _record_account_change(data_dir, "enabled", acc.id)
    console.print(f"enabled {_shown(acc.id)}")


@reviewer_app.command("password")
def reviewer_password(name: str, password_stdin: bool = typer.Option(False, "--password-stdin",
                                                                     help="Read the password from stdin."),
                      data_dir: Optional[Path] = DataDir) -> None:
    """Set a new password for an account; its web sessions end (the API token is unchanged: `reviewer
    token`)."""
    from gatekeeper.accounts import AccountError

    store = _accounts(data_dir)
    try:
        store.require(name)  # an unknown name is told before the password is asked for
    except AccountError as exc:
        raise _fail(str(exc), 1) from None
    password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                else typer.prompt("New password", hide_input=True, confirmation_prompt=True))
    try:
        acc = store.set_password(name, password)
    except AccountError as exc:  # too short or too long
        raise _fail(str(exc)) from None
    store.end_sessions(name)
    _record_account_change(data_dir, "password_set", acc.id)
    console.print(f"password of {_shown(acc.id)} set; its web sessions ended"
                  + (" (the account is disabled: `gatekeeper reviewer enable`)" if acc.disabled else ""))


@reviewer_app.command("role")
def reviewer_role(name: str, role: str = typer.Argument(..., help="reviewer | admin"),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Make an account a reviewer or an admin (takes effect at its next request)."""
    from gatekeeper.accounts import AccountError

    if role not in ("reviewer", "admin"):
        err.print("[red]the role must be reviewer or admin[/red]")
        raise typer.Exit(2)
    try:
        acc = _accounts(data_dir).set_role(name, role)
    except AccountError as exc:
        raise _fail(str(exc), 1) from None
    _record_account_change(data_dir, "role", acc.id, role=acc.role)
    console.print(f"{_shown(acc.id)} is now {acc.role}")


@reviewer_app.command("token")
def reviewer_token(name: str, data_dir: Optional[Path] = DataDir) -> None:
    """Issue a new API token for an account (the old one stops working); printed once. Refused for a disabled
    account, whose token would not work (`reviewer enable` first)."""
    from gatekeeper.accounts import AccountError

    store = _accounts(data_dir)
    try:
        if store.require(name).disabled:
            raise _fail(f"the account {_shown(name.strip().lower())!r} is disabled, and a token would not work: "
                        "`gatekeeper reviewer enable` it first", 1)
        token = store.rotate_token(name)
    except AccountError as exc:
        raise _fail(str(exc), 1) from None
    print(token, flush=True)  # first: the old token no longer works, whatever the ledger says
    _record_account_change(data_dir, "token_rotated", store.require(name).id)


# ------------------------------------------------------------------------ serve
def _import_attr(spec: str, option: str, example: str):
    """The object ``module:attr`` names (modules are also found in the working directory)."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter(f"{option} takes module:attr (e.g. {example})")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"{option} {spec}: {exc}") from None


def _load_graph(spec: str, gate):
    """``module:attr`` -> a compiled graph; ``attr`` may also be a factory of one, called with the gate when it
    takes an argument (``build(gate)``) and without when it takes none (a ``langgraph.json`` entry such as
    ``make_graph()``, which opens its gate from the same ``GATEKEEPER_*`` settings), and awaited when it is async."""
    import inspect

    obj = _import_attr(spec, "--graph", "my_agent.graph:graph, or a factory taking the gate")
    if not (hasattr(obj, "invoke") and hasattr(obj, "get_state")) and callable(obj):
        try:
            takes_gate = bool(inspect.signature(obj).parameters)
        except (TypeError, ValueError):  # no signature to read (a builtin): give it the gate
            takes_gate = True
        obj = obj(gate) if takes_gate else obj()
        if inspect.iscoroutine(obj):  # an async factory (graphs/agent.py's, for a LangGraph server's event loop)
            import asyncio

            obj = asyncio.run(obj)
    if not (hasattr(obj, "invoke") and hasattr(obj, "get_state")):
        raise typer.BadParameter(f"{spec} is not a compiled LangGraph graph (nor a factory of one)")
    return obj


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8600, help="Port."),
    graph: Optional[str] = typer.Option(None, "--graph", help="module:attr of the compiled agent graph (or a "
                                        "factory taking the gate) whose paused threads decisions resume; it "
                                        "must use the agents' checkpointer."),
    resume_context: Optional[str] = typer.Option(
        None, "--resume-context", help="module:attr of a function (thread_id, configurable) -> the LangGraph run "
        "context a resumed thread runs with, for a --graph whose nodes read one (LangGraph keeps no run's "
        "context in its checkpoints)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host."),
    forwarded_allow_ips: Optional[str] = typer.Option(
        None, "--forwarded-allow-ips", help="Comma-separated addresses of the reverse proxies whose "
        "X-Forwarded-For/-Proto headers are trusted (off: each client is its direct peer, and behind a proxy "
        "every login counts against the proxy's address in the failed-login limit)."),
    secure_cookies: Optional[bool] = typer.Option(None, "--secure-cookies/--no-secure-cookies",
                                                  help="Mark cookies Secure (default: on for remote hosts)."),
    allowed_hosts: Optional[str] = typer.Option(
        None, "--allowed-hosts",
        help="Comma-separated host names the server answers to (its Host header; others get 400). Default: the "
             "loopback names (localhost, 127.0.0.1, ::1) on a loopback --host, which stops DNS rebinding; any "
             "host with --allow-remote unless given (name the server's public name there)."),
    max_connections: int = typer.Option(
        256, "--max-connections", min=1, max=65536,
        help="Connections (and requests in progress) served at once; past it the server answers 503. Each holds "
             "a file descriptor: clients that send their headers slowly are not timed out by the server, so put "
             "a reverse proxy with header and body timeouts in front of --allow-remote."),
    data_dir: Optional[Path] = DataDir,
    policy_dir: Optional[Path] = PolicyDir,
) -> None:
    """Serve the web review queue and its JSON API."""
    import uvicorn

    from gatekeeper.review_service import ReviewService
    from gatekeeper.web import create_app, loopback_host

    if not loopback_host(host):
        if not allow_remote:
            err.print(f"[red]refusing to listen on {host}: not a loopback address. The review queue decides "
                      "what agents remember; pass --allow-remote to serve it on the network (behind TLS).[/red]")
            raise typer.Exit(2)
        err.print(f"[yellow]WARNING: serving the review queue on {host}, reachable from the network. Put it "
                  "behind a TLS-terminating proxy; session cookies are marked Secure.[/yellow]")
    if resume_context and not graph:
        err.print("[red]--resume-context needs --graph: it builds the context of the graph's resumed threads[/red]")
        raise typer.Exit(2)
    context_of = None
    if resume_context:
        context_of = _import_attr(resume_context, "--resume-context", "my_agent.graph:context_for")
        if not callable(context_of):
            raise typer.BadParameter(f"--resume-context {resume_context} is not a function")
    settings = _settings(data_dir, policy_dir)
    gate = _open_gate(data_dir, policy_dir, create=True)
    resume_graph = None
    if graph:
        resume_graph = _load_graph(graph, gate)
        if getattr(resume_graph, "checkpointer", None) in (None, False):
            err.print(f"[yellow]warning: {graph} has no checkpointer; paused threads cannot be resumed and "
                      "decisions are applied directly[/yellow]")
    from gatekeeper.accounts import AccountStore

    accounts = AccountStore(settings.registry_path)
    if accounts.count() == 0:
        err.print("[yellow]no reviewer accounts yet: create one with "
                  "`gatekeeper reviewer add NAME --role admin`[/yellow]")
    service = ReviewService(gate, resume_graph=resume_graph, resume_context=context_of)
    if allowed_hosts is not None:
        hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()]
    elif loopback_host(host):
        hosts = ["localhost", "127.0.0.1", "::1", "[::1]", host]
    else:
        hosts = ["*"]
    web = create_app(service, accounts, data_dir=settings.data_dir, allowed_hosts=hosts,
                     secure_cookies=(not loopback_host(host)) if secure_cookies is None else secure_cookies)
    console.print(f"review queue on http://{host}:{port}/  (data {settings.data_dir}, policy "
                  f"{gate.policy.version} {gate.policy.hash[:12]}{', resuming ' + graph if graph else ''})")
    try:
        # uvicorn's own logging is not used: its access log writes every request line, query strings (queue
        # searches for memory text) included, in plain text at INFO whatever --log-level says. Its server
        # messages go out as the gate's JSON lines at the chosen level; requests are not logged
        from gatekeeper.log_setup import adopt_logger

        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            adopt_logger(name)
        uvicorn.run(web, host=host, port=port, log_config=None, access_log=False, server_header=False,
                    proxy_headers=forwarded_allow_ips is not None, forwarded_allow_ips=forwarded_allow_ips,
                    limit_concurrency=max_connections)
    finally:
        gate.close()  # the app's shutdown waited for the agent runs that decisions resumed


# ---------------------------------------------------------------------- policy
@policy_app.command("lint")
def policy_lint(path: Optional[Path] = typer.Argument(None, help="Policy directory or file.")) -> None:
    """Validate policy files; print every problem with file and line."""
    try:
        p = load_policy(path)
    except PolicyError as exc:
        for f, line, msg in exc.problems:
            # one line each, however long: file:line as editors and grep read it
            err.print(f"[red]{escape(str(f))}:{line if line is not None else '?'}[/red]: {escape(msg)}",
                      soft_wrap=True)
        _split_policy_hint(path)
        raise typer.Exit(1) from None
    examples = sum(len(c.exemplars) + len(c.counter_exemplars) for c in p.categories.values())
    console.print(f"[green]ok[/green] policy {p.name} {p.version} hash {p.hash[:16]}: "
                  f"{len(p.categories)} categories, {len(p.rules)} rules, {examples} exemplars")
    if path is None:  # which one was read: $GATEKEEPER_POLICY_DIR, or the package's own (not ./policies)
        console.print(f"read from {escape(p.source_path)}", soft_wrap=True)
    from gatekeeper.rule_matching import PREFILTER_MIN_CHARS, whole_text_reason

    # not a problem, a cost: such a pattern reads every long write whole (``unless`` patterns run only on a
    # text their rule's pattern matched, so they are not listed)
    for rule in p.rules:
        for n, pattern in enumerate(rule.patterns, 1):
            reason = whole_text_reason(pattern)
            if reason:
                console.print(f"[yellow]note[/yellow]: rule {rule.id}, pattern {n}: on a write of "
                              f"{PREFILTER_MIN_CHARS:,} characters or more it reads the whole text: {reason}")


def _split_policy_hint(path: Optional[Path], verb: str = "checked") -> None:
    """After a policy file's errors: when it is one file of a policy split over several, say to pass the directory
    (the file alone lacks what the others define)."""
    if path is not None and path.is_file() and any(p != path for p in path.parent.glob("*.y*ml")):
        err.print(f"a policy split over several files is {verb} as its directory: {escape(str(path.parent))}")


@policy_app.command("diff")
def policy_diff(candidate: Path = typer.Argument(..., help="The edited policy directory (or a policy that is one "
                                                         "YAML file)."),
                limit: int = typer.Option(500, "--limit", "-n", min=1, help="How many of the newest writes."),
                show: int = typer.Option(20, min=0, help="How many changed writes to list (all are in --json)."),
                train: bool = typer.Option(True, "--train/--no-train",
                                           help="Train the candidate's classifier when its exemplars or categories "
                                                "changed and it is not cached (minutes). --no-train reviews the "
                                                "candidate with the classifier in force, as the gate serves an "
                                                "edit while it trains."),
                json_out: Optional[Path] = typer.Option(None, "--json", help="Write the whole result as JSON."),
                fail_on_change: bool = typer.Option(False, help="Exit 1 when any decision changes, or when the "
                                                    "edit would expire escalations waiting now (a CI check)."),
                data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """What an edit would change: the gate's newest writes reviewed under the policy in force and the candidate,
    and the writes it would decide differently; and what its escalation settings do to the review queue as it is
    (overdue escalations a switch to overdue_action: quarantine expires at once). Nothing is written to the
    registry, ledger or store."""
    import sqlite3

    from gatekeeper.policy_diff import PolicyDiffError, diff_policies
    from gatekeeper.registry import ProposalRegistry
    from gatekeeper.reviewer import Reviewer

    settings = _settings(data_dir, policy_dir)
    if not settings.registry_path.is_file():
        raise _fail(f"no gate registry at {settings.registry_path}: point --data-dir / GATEKEEPER_DATA_DIR at the "
                    "data directory of the gate whose writes the edit should be tried on")
    _check_json_out(json_out)
    try:
        current, edited = load_policy(settings.policy_dir), load_policy(candidate)
    except PolicyError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        _split_policy_hint(candidate, "tried")
        raise typer.Exit(2) from None
    if edited.hash == current.hash:  # an edit made in place: both sides read the edited files
        err.print(f"[yellow]the candidate is the same policy as the one in force ({escape(str(settings.policy_dir))}"
                  "): no decision can differ. To try an edit, edit a copy of the policy directory and pass the copy "
                  "(or point --policy / GATEKEEPER_POLICY_DIR at the version before the edit)[/yellow]", soft_wrap=True)
    try:
        registry = ProposalRegistry(settings.registry_path)
        try:
            with _stage_progress() as cb:
                reviewer = Reviewer(current)
                reviewer.progress = cb  # the classifier in force is trained too where it is not cached here
                result = diff_policies(registry, reviewer, edited, limit=limit, train=train, progress=cb)
        finally:
            registry.close()
    except PolicyDiffError as exc:
        raise _fail(str(exc)) from None
    except sqlite3.Error as exc:  # not a database, or locked past the busy timeout
        raise _fail(f"cannot read the gate registry {settings.registry_path}: {exc}") from None
    if json_out is not None:
        try:
            _write_private(json_out, result.model_dump_json(indent=2))
        except OSError as exc:
            raise _fail(f"cannot write --json {json_out}: {exc}") from None
    console.print(f"policy in force {result.current_policy[:12]} -> candidate {result.candidate_policy[:12]}: "
                  f"{result.reviewed} writes reviewed, {len(result.changed)} decided differently")
    if result.interim:
        console.print("[yellow]the candidate's own classifier is not trained: it was reviewed with the classifier "
                      "in force (rules, thresholds and exemplar matches are the candidate's)[/yellow]")
    if result.transitions:
        table = Table("in force -> candidate", "writes")
        for transition, n in result.transitions.items():
            table.add_row(transition, str(n))
        console.print(table)
    if result.newly_committed:
        console.print(f"[bold red]{result.newly_committed} write(s) the policy in force stops would be "
                      "committed[/bold red]")
    if show and result.changed:
        table = Table()
        table.add_column("id", no_wrap=True)
        for header in ("agent (source), now", "in force -> candidate", "text"):
            table.add_column(header)
        for c in result.changed[:show]:
            change = " -> ".join(" ".join(filter(None, (d.action, d.category, f"{d.score:.2f}")))
                                  for d in (c.current, c.candidate))
            # agent ids and texts are the agents' (or a web page's): markup is printed as it is, and characters a
            # terminal would act on or not show (escape sequences, bidi controls) as visible markers
            table.add_row(c.proposal_id[:12], f"{_shown(c.agent_id)} ({c.source}), {c.stored_state}",
                          escape(change), _shown(c.text, 120))
        console.print(table)
        if len(result.changed) > show:
            console.print(f"... and {len(result.changed) - show} more (--show N, or --json FILE for all)")
    waiting = sum(1 for c in result.changed if c.stored_state == ProposalState.pending.value)
    if waiting:
        console.print(f"{waiting} of the writes decided differently wait in the review queue now: putting the edit "
                      "in force does not decide them again (people do, or the expiry)")
    if result.queue_effects:
        q = result.queue
        console.print(f"[bold]settings the decisions above do not show[/bold] (the review queue now: {q.pending} "
                      f"waiting, {q.overdue} overdue):")
        for e in result.queue_effects:
            console.print(f"  {e.setting}: {escape(str(e.current))} -> {escape(str(e.candidate))}: "
                          f"{escape(e.effect)}")
    if result.expire_on_reload:
        console.print(f"[bold red]{result.expire_on_reload} escalation(s) past their deadline would be quarantined, "
                      "undecided, by the first expiry sweep once the edit is in force (gatekeeper serve sweeps every "
                      "minute)[/bold red]")
    # an expiry takes writes out of the queue into the quarantine with no one deciding them: a change of decision
    # as much as any above, which a CI check must stop; settings for new escalations only change none now
    if fail_on_change and (result.changed or result.expire_on_reload):
        raise typer.Exit(1)


@policy_app.command("suggest")
def policy_suggest(out: Optional[Path] = typer.Option(None, "--out", help="Write a candidate policy directory (new "
                                                      "or empty): the policy in force with the suggestions added, "
                                                      "for `gatekeeper policy diff` and a read before adopting it."),
                   since: Optional[str] = typer.Option(None, help="Only decisions on writes of this last period "
                                                       "(36h, 90d, 2w)."),
                   limit: int = typer.Option(1000, min=1, help="How many of the most recent decisions to read."),
                   min_support: int = typer.Option(1, min=1, help="Suggest a text only when this many decisions "
                                                   "back it."),
                   show: int = typer.Option(30, min=0, help="How many suggestions to list (all are in --json)."),
                   verify: bool = typer.Option(True, "--verify/--no-verify",
                                               help="Review the decided memories again under the policy with the "
                                                    "suggestions added (loads the classifier): adds the other texts "
                                                    "an approved memory is still flagged by, drops a counter-"
                                                    "exemplar a rejected memory would commit under."),
                   json_out: Optional[Path] = typer.Option(None, "--json", help="Write the whole report as JSON."),
                   data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Exemplars and counter-exemplars suggested by reviewers' decisions: approved escalations (false alarms)
    give counter-exemplars, rejected ones exemplars, each the text the classifier scored the memory by (one
    sentence of a long note). Reads the registry; changes nothing but --out and --json."""
    import sqlite3

    from collections import Counter

    from gatekeeper.exemplar_suggestions import SuggestionError, suggest_exemplars, write_candidate
    from gatekeeper.models import utcnow
    from gatekeeper.registry import ProposalRegistry

    settings = _settings(data_dir, policy_dir)
    if not settings.registry_path.is_file():
        raise _fail(f"no gate registry at {settings.registry_path}: point --data-dir / GATEKEEPER_DATA_DIR at the "
                    "data directory of the gate whose review decisions to read")
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _fail(f"--out {out} exists and is not an empty directory")
    after = utcnow() - _duration(since, "--since") if since else None
    try:
        policy = load_policy(settings.policy_dir)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    try:
        registry = ProposalRegistry(settings.registry_path)
        try:
            reviewer = None
            if verify:
                from gatekeeper.reviewer import Reviewer

                with _stage_progress() as cb:
                    reviewer = Reviewer(policy)
                    reviewer.progress = cb  # the classifier in force is trained where it is not cached here
                    reviewer.warm_up()
            report = suggest_exemplars(registry, policy, since=after, limit=limit, min_support=min_support,
                                       reviewer=reviewer)
        finally:
            registry.close()
    except sqlite3.Error as exc:
        raise _fail(f"cannot read the gate registry {settings.registry_path}: {exc}") from None
    except SuggestionError as exc:
        raise _fail(str(exc)) from None
    if json_out is not None:
        try:
            _write_private(json_out, report.model_dump_json(indent=2))
        except OSError as exc:
            raise _fail(f"cannot write --json {json_out}: {exc}") from None
    kinds = Counter(s.kind for s in report.suggestions)
    console.print(f"{report.decisions_read} review decision(s) read: {kinds['counter_exemplar']} counter-exemplar(s) "
                  f"and {kinds['exemplar']} exemplar(s) suggested")
    for reason, n in report.left_out.items():
        console.print(f"  left out: {n} ({escape(reason)})")
    if report.verified:
        console.print(f"reviewed again with the suggestions (the classifier in force): {report.approved_cleared} "
                      f"approved memor{'y' if report.approved_cleared == 1 else 'ies'} would commit, "
                      f"{len(report.approved_still_flagged)} would still not")
        if report.dropped:
            console.print(f"[yellow]{len(report.dropped)} counter-exemplar(s) dropped: a rejected memory would "
                          "commit under them[/yellow]")
        if report.rejected_committed:
            console.print(f"[bold red]{len(report.rejected_committed)} rejected memor"
                          f"{'y' if len(report.rejected_committed) == 1 else 'ies'} would commit under the policy "
                          f"with the suggestions: {', '.join(report.rejected_committed[:5])}[/bold red]")
    if show and report.suggestions:
        table = Table("support", "add to", "text", "from")
        for s in report.suggestions[:show]:
            table.add_row(str(s.support), f"{s.category}.{s.kind}s", _shown(s.text, 160),
                          f"{_shown(', '.join(s.reviewers), 40)}: {', '.join(p[:12] for p in s.proposal_ids[:3])}")
        console.print(table)
        if len(report.suggestions) > show:
            console.print(f"... and {len(report.suggestions) - show} more (--show N, or --json FILE for all)")
    if report.suggestions:
        spaces = {ns for s in report.suggestions for ns in s.namespaces}
        err.print(f"[yellow]the suggested texts are reviewed memories copied word for word (from {len(spaces)} "
                  f"namespace{'' if len(spaces) == 1 else 's'}): once adopted, exemplars are shown to the LLM judge "
                  "beside any user's writes and to the reviewers of any item, and `gatekeeper forget` does not "
                  "edit the policy; take personal details (names, contacts, health, secrets) out of each before "
                  "adopting[/yellow]", soft_wrap=True)
    if out is not None and report.suggestions:
        try:
            write_candidate(policy, report.suggestions, out)
        except (SuggestionError, OSError) as exc:
            raise _fail(f"no candidate written: {exc}") from None
        console.print(f"candidate policy written to {escape(str(out))}: try it with `gatekeeper policy diff "
                      f"{escape(str(out))}`, then copy it over the policy in force (its classifier trains on the "
                      "new texts: minutes, the gate serves the edit meanwhile)")
    elif out is not None:
        console.print("nothing to suggest: no candidate written")


# ---------------------------------------------------------------------- retention
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([hdw])")
_DURATION_UNIT = {"h": "hours", "d": "days", "w": "weeks"}
_LONGEST_PERIOD = timedelta(days=100 * 365)


def _duration(value: str, option: str = "--older-than") -> timedelta:
    """``90d``, ``36h``, ``2w`` -> timedelta; anything else is a usage error (of ``option``)."""
    m = _DURATION.fullmatch(value.strip().lower())
    if not m:
        raise typer.BadParameter(f"{value!r} is not a period: a number and h, d or w (36h, 90d, 2w)",
                                 param_hint=option)
    period = timedelta(**{_DURATION_UNIT[m.group(2)]: min(float(m.group(1)), 1e6)})
    if period > _LONGEST_PERIOD:
        raise typer.BadParameter(f"{value!r} is longer than {_LONGEST_PERIOD.days // 365} years: nothing is that old",
                                 param_hint=option)
    return period


@app.command()
def prune(older_than: str = typer.Option(..., "--older-than", help="Keep this long: 36h, 90d, 2w (at least 1 day, "
                                                                  "longer than the policy's context window)."),
          operator: Optional[str] = typer.Option(None, "--operator", help="Who prunes (recorded in the ledger); "
                                                                          "required unless --dry-run."),
          receipts_older_than: Optional[str] = typer.Option(
              None, "--receipts-older-than", help="Also delete the receipts pruned proposals left, for proposals "
              "journaled this long ago: 365d (at least 30 days, longer than --older-than; default: keep "
              "them). An id sent again after its receipt went is reviewed as a new write."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go."),
          vacuum: bool = typer.Option(False, "--vacuum", help="Then give the space back to the file system "
                                                              "(rewrites the database: run with no gate writing)."),
          json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
          data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Delete from the registry the finished proposals older than a retention period (each leaves a receipt that
    answers its id sent again) and, with --receipts-older-than, the receipts of older ones (not of erased ones).
    The review queue, writes awaiting a store retry or a retry of their review, rows a crash left half done, and
    every row and delete of their keys stay (other keys are not held up); the ledger keeps every decision and
    records the prune (registry.pruned)."""
    import sqlite3

    from gatekeeper.retention import MIN_RECEIPT_RETENTION, MIN_RETENTION, PruneStopped, prune_registry

    period = _duration(older_than)
    if period < MIN_RETENTION:  # before the gate opens; 0d read "must be at least 1 day, 0:00:00 ..., not 0:00:00"
        keeps = "keeps nothing" if not period else f"is shorter than {MIN_RETENTION.days} day"
        raise _fail(f"--older-than {older_than.strip()} {keeps}: the retention period is at least "
                    f"{MIN_RETENTION.days} day (a retried proposal or a recovery must still find its rows); nothing "
                    "was pruned. Give a longer one, e.g. --older-than 90d")
    receipts_period = _duration(receipts_older_than, "--receipts-older-than") if receipts_older_than else None
    if receipts_period is not None and receipts_period < MIN_RECEIPT_RETENTION:  # in the flags' words
        raise _fail(f"--receipts-older-than {receipts_older_than.strip()}: receipts are kept at least "
                    f"{MIN_RECEIPT_RETENTION.days} days (a thread resumed or a client retrying weeks later must still "
                    "find its receipt); nothing was pruned. Give a longer one, e.g. --receipts-older-than 365d")
    if receipts_period is not None and receipts_period <= period:
        raise _fail(f"--receipts-older-than {receipts_older_than.strip()} must be longer than --older-than "
                    f"{older_than.strip()}: the receipts of the proposals pruned now would go at once; nothing was "
                    "pruned")
    gate = _open_gate(data_dir, policy_dir)
    try:
        try:
            report = prune_registry(gate, period, operator=operator or "", dry_run=dry_run,
                                    receipts_older_than=receipts_period)
        except ValueError as exc:
            raise _fail(_one_line(exc)) from None
        except PruneStopped as exc:  # e.g. another process held the write lock past the busy timeout
            raise _fail(f"{_one_line(exc)}; run it again later", 1) from None
        except sqlite3.OperationalError as exc:  # a dry run's count, which changes nothing
            raise _fail(f"prune stopped: {_one_line(exc)}; nothing changed", 1) from None
        if json_out:
            print(report.model_dump_json(indent=1))
        else:
            _print_prune(report)
        if vacuum and not dry_run:
            try:
                gate.registry.vacuum()
            except sqlite3.OperationalError as exc:
                raise _fail(f"pruned, but not vacuumed: {exc} (VACUUM needs no other process writing)", 1) from None
            if not json_out:
                console.print("database vacuumed")
    finally:
        gate.close()


def _print_prune(report) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    console.print(f"{verb} {report.proposals} proposals and {report.deletions} recorded deletes from before "
                  f"{report.cutoff.isoformat(timespec='seconds')}")
    if report.kept_for_undecided:
        console.print(f"kept {report.kept_for_undecided} old rows of keys with an undecided write (review queue, "
                      "store retries, unfinished): deciding it reads the other writes of its key")
    if report.receipts_cutoff is not None:
        console.print(f"{verb} {report.receipts} receipts of proposals journaled before "
                      f"{report.receipts_cutoff.isoformat(timespec='seconds')}"
                      + (f"; kept {report.kept_erased_receipts} of erased proposals (they refuse the erased ids)"
                         if report.kept_erased_receipts else ""))
    console.print("dry run: nothing changed" if report.dry_run
                  else f"ledgered as registry.pruned (seq {report.ledger_seq})")


@app.command()
def forget(proposal_ids: Optional[list[str]] = typer.Argument(None, help="Ids of the proposals to erase."),
           namespace: Optional[str] = typer.Option(None, "--namespace",
                                                   help="Erase every proposal under this namespace prefix, "
                                                        "'/'-separated (a user's memories: memories/alice)."),
           key: Optional[str] = typer.Option(None, "--key", help="Only this key of --namespace."),
           operator: Optional[str] = typer.Option(None, "--operator", help="Who erases (recorded in the ledger); "
                                                                          "required unless --dry-run."),
           reason: Optional[str] = typer.Option(None, "--reason", help="Why (a request number, for example); "
                                                                      "required unless --dry-run."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be erased."),
           json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
           data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Erase memories: delete them from the store and take their texts out of the registry and the ledger (which
    still verifies), keeping what was decided. Proposals still in review are refused: decide them first.
    Backups made before, a Chroma server's files and LangGraph checkpoints are not reached."""
    import sqlite3

    from gatekeeper.erasure import ErasureRefused, erase_memories
    from gatekeeper.ledger import LedgerError

    ns = tuple(p for p in namespace.split("/") if p) if namespace else None
    if namespace is not None and not ns:
        raise _fail("--namespace names no namespace")
    gate = _open_gate(data_dir, policy_dir)
    try:
        try:
            report = erase_memories(gate, proposal_ids=proposal_ids or (), namespace=ns, key=key,
                                    operator=operator or ("(dry run)" if dry_run else ""),
                                    reason=reason or ("(dry run)" if dry_run else ""), dry_run=dry_run)
        except ErasureRefused as exc:
            raise _fail(str(exc), 1) from None
        except ValueError as exc:
            raise _fail(_one_line(exc)) from None
        except (LedgerError, sqlite3.OperationalError, OSError) as exc:
            raise _fail(f"erasure stopped: {_one_line(exc)}; run it again to finish it (what it did so far is "
                        "ledgered)", 1) from None
        if json_out:
            print(report.model_dump_json(indent=1))
            return
        verb = "would erase" if dry_run else "erased"
        console.print(f"{verb} {len(report.proposals)} proposal(s): {report.keys_deleted} memory store key(s) "
                      f"deleted, {report.ledger_entries} ledger entr{'y' if report.ledger_entries == 1 else 'ies'} "
                      f"redacted, {report.registry_rows} registry row(s) and {report.receipts} receipt(s) "
                      f"emptied, quotes in the review evidence of {report.evidence} other write(s) cleared")
        for note in report.notes:
            console.print(f"[yellow]{escape(note)}[/yellow]")
        if dry_run:
            console.print("dry run: nothing changed")
        elif report.ledger_seq is not None:
            console.print(f"ledgered as memory.erased (seq {report.ledger_seq})")
    finally:
        gate.close()


@app.command("adopt-store")
def adopt_store(old_store: str = typer.Argument(..., help="The identity the writes were journaled for, as a "
                                                          "refusal or `gatekeeper status` shows it."),
                operator: Optional[str] = typer.Option(None, "--operator", help="Who (recorded in the ledger); "
                                                                               "required unless --dry-run."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Only count the writes it would take over."),
                data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir) -> None:
    """Take over the writes journaled for a memory store that moved (its database file renamed or mounted
    elsewhere) as the store this gate opens now (GATEKEEPER_MEMORY_STORE): every gate leaves a write to the store
    it was proposed for, and a moved store's identity is not the one recorded."""
    gate = _open_gate(data_dir, policy_dir)
    try:
        try:
            rows = gate.adopt_store(old_store, operator=operator or ("(dry run)" if dry_run else ""),
                                    dry_run=dry_run)
        except ValueError as exc:
            raise _fail(_one_line(exc)) from None
        verb = "would take over" if dry_run else "took over"
        console.print(f"{verb} {rows} write(s) and delete(s) of {_shown(old_store)} as {_shown(gate.store_id)}",
                      soft_wrap=True)
    finally:
        gate.close()


@app.command()
def backup(destination: Path = typer.Argument(..., help="A new (or empty) directory for the copy."),
           json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
           data_dir: Optional[Path] = DataDir) -> None:
    """Copy the data directory consistently while gates run on it: registry (SQLite online backup), memories
    (embedded chroma, under the store's write lock) and ledger. Restore by putting the copy in place as the data
    directory; the first gate to open it finishes what the copy caught half done."""
    import sqlite3

    from gatekeeper.backup import BackupError, backup_data_dir

    settings = _settings(data_dir, None)
    try:
        report = backup_data_dir(settings, destination)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise _fail(f"backup failed, nothing was left at {destination}: {exc}", 1) from None
    if json_out:
        print(report.model_dump_json(indent=1))
        if not report.ledger_ok:
            raise typer.Exit(1)
        return
    console.print(f"backed up {settings.data_dir} to {destination}")
    console.print("proposals: " + ", ".join(f"{k}={v}" for k, v in report.proposals.items()))
    console.print(f"ledger: {report.ledger_files} files up to seq {report.ledger_last_seq} (anchor "
                  f"{report.ledger_last_seq}:{report.ledger_last_hash})")
    console.print(f"memories: {report.memories}" + (f" ({report.memories_bytes} bytes)" if report.memories_bytes
                                                    else ""))
    for store in report.other_stores:  # an agent's own store: the registry says what it holds, not this copy
        err.print(f"[yellow]not copied: memories committed into {_shown(store)}; back that store up with its own "
                  "tools, at the same moment, or a restored registry calls writes committed that it lacks[/yellow]",
                  soft_wrap=True)
    if not report.ledger_ok:
        err.print(f"[yellow]the ledger was copied as it is, but it does not verify: {_shown(report.ledger_problem)} "
                  "(gatekeeper ledger verify on the data directory)[/yellow]")
        raise typer.Exit(1)


# ---------------------------------------------------------------------- ledger
_ANCHOR = re.compile(r"([0-9]+):([0-9a-fA-F]{64})")


def _parse_anchor(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` (as :meth:`AuditLedger.anchor` gives it) -> ``(seq, hash)``; anything else is a usage
    error, never a verdict on the ledger."""
    m = _ANCHOR.fullmatch(value.strip())
    if not m:
        raise typer.BadParameter(f"{value!r} is not SEQ:HASH — the entry's sequence number, a colon and its "
                                 "64-hex-digit sha256 (e.g. 12:9f86d081...), as AuditLedger.anchor() gives it",
                                 param_hint="--anchor")
    return int(m.group(1)), m.group(2).lower()


@ledger_app.command("verify")
def ledger_verify(path: Optional[Path] = typer.Argument(None, help="Ledger file (default: data dir)."),
                  anchor: Optional[str] = typer.Option(
                      None, help="Expected head as SEQ:HASH (AuditLedger.anchor(): the entry's seq and its "
                                 "64-hex-digit sha256)."),
                  live_only: bool = typer.Option(
                      False, "--live-only", help="Check the live file only, not the archives of earlier rotations."),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Check the hash chain (the archives of earlier rotations, then the live file); report the first bad entry.
    Exit 0: intact (or empty with no decision recorded beside it); 1: tampered, unreadable, or empty beside a
    registry of ledgered decisions (lost); 3: the anchor is older than every file there is to check."""
    from gatekeeper.ledger import AuditLedger

    expected = _parse_anchor(anchor) if anchor is not None else None
    ledger_path = _existing_ledger(path, data_dir)
    try:
        report = AuditLedger(ledger_path).verify(expected_head=expected, archives=not live_only)
    except OSError as exc:
        raise _fail(f"cannot read the ledger {ledger_path}: {exc}", 1) from None
    span = f"seq {report.first_seq}-{report.first_seq + report.entries - 1}" if report.entries else "empty"
    files = f"{report.files} files (archives, then the live file)" if report.files > 1 else "1 file"
    if report.ok and not report.entries:
        _verify_empty_ledger(ledger_path)
        return
    if report.ok:
        console.print(f"[green]ok[/green] {report.entries} entries ({span}), chain intact, {files} ({ledger_path})")
        if report.first_seq > 1:
            console.print(f"entries before seq {report.first_seq} are "
                          + ("archived: drop --live-only to check them too" if live_only else
                             "not here (archives moved or removed); an anchor of their last entry checks them"))
        if report.redacted:
            console.print(f"{report.redacted} entr{'y is' if report.redacted == 1 else 'ies are'} redacted "
                          "(gatekeeper forget), each as its ledger.redacted record names it")
            if report.redacted_legacy:
                console.print(f"{report.redacted_legacy} of them predate hash version 2: their kept fields are "
                              "confirmed by their record only, not by an anchor taken before")
        if report.redactions_pending:
            console.print(f"[yellow]{report.redactions_pending} recorded redaction(s) not yet applied (an erasure "
                          "was interrupted): `gatekeeper ledger repair` applies them[/yellow]")
        if report.time_went_back:
            console.print("[yellow]the time goes back at seq " + ", ".join(map(str, report.time_went_back))
                          + ": the clock was set back, or entries were written with times of their own (the chain "
                          "holds either way)[/yellow]")
        if report.time_unreadable:
            console.print("[yellow]the time does not read as the ledger writes it at seq "
                          + ", ".join(map(str, report.time_unreadable)) + "[/yellow]")
        return
    if report.anchor_unverifiable:
        err.print(f"[yellow]CANNOT CHECK[/yellow] the anchor: {_shown(report.problem)}")
        raise typer.Exit(3)
    err.print(f"[red]TAMPERED[/red] {escape(str(report.file or ledger_path))}: {_shown(report.problem)}")
    err.print(f"first bad entry: line {report.first_bad_line}, seq {report.first_bad_seq}; "
              f"{report.entries} entries verified before it")
    raise typer.Exit(1)


def _lost_beside_registry(ledger_path: Path) -> bool:
    """Whether the ledger at ``ledger_path`` holds no entry while the registry beside it (read only) records
    decisions as ledgered (``gate.ledger_lost``); False when there is no registry. Exit 1 when the registry
    cannot be read."""
    import sqlite3

    from gatekeeper.gate import ledger_lost
    from gatekeeper.ledger import AuditLedger

    registry = ledger_path.parent / "gatekeeper.db"
    if not registry.is_file() or registry.stat().st_size == 0:
        return False
    try:
        con = sqlite3.connect(f"{registry.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return ledger_lost(AuditLedger(ledger_path), con)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise _fail(f"{ledger_path} holds no entry, and the registry beside it ({registry}) cannot be read to tell "
                    f"whether it records decisions ({exc}): run `gatekeeper status`", 1) from None


def _verify_empty_ledger(ledger_path: Path) -> None:
    """Say what a ledger with no entry (a 0-byte file, no archives) means. Beside a registry that holds decisions
    marked ledgered it is lost history (emptied, or not restored with the registry: a gate refuses to open on
    it), exit 1; beside none, nothing was decided yet (a gate that never wrote), exit 0, saying so."""
    from gatekeeper.ledger import AuditLedger

    registry = ledger_path.parent / "gatekeeper.db"
    shown = escape(str(ledger_path))
    archives = AuditLedger(ledger_path).archives()
    if archives:  # --live-only: the archives hold the chain so far
        console.print(f"[yellow]empty[/yellow]: the live file {shown} holds no entry (a rotation starts it with "
                      f"one); {len(archives)} archive(s) of earlier rotations are not checked with --live-only: "
                      "drop it to check them", soft_wrap=True)
        return
    if not registry.is_file() or registry.stat().st_size == 0:
        console.print(f"[yellow]empty[/yellow]: {shown} holds no entry, so there is no chain to check; no registry "
                      "beside it records a decision either (a gate that has not decided anything yet)", soft_wrap=True)
        return
    if _lost_beside_registry(ledger_path):
        raise _fail(f"LOST: {ledger_path} holds no entry, but the registry beside it ({registry}) records decisions "
                    "as ledgered: the audit ledger was emptied or not restored with the registry. Restore "
                    "ledger.jsonl (and ledger-archive/) from the same backup as gatekeeper.db", 1)
    console.print(f"[yellow]empty[/yellow]: {shown} holds no entry, so there is no chain to check; the registry "
                  f"beside it ({escape(str(registry))}) records no ledgered decision either (nothing decided yet)",
                  soft_wrap=True)


def _existing_ledger(path: Optional[Path], data_dir: Optional[Path]) -> Path:
    ledger_path = Path(path or _settings(data_dir, None).ledger_path)
    if ledger_path.is_dir():
        hint = f" (the ledger in a data directory is {ledger_path / 'ledger.jsonl'})" \
            if (ledger_path / "ledger.jsonl").is_file() else ""
        raise typer.BadParameter(f"{ledger_path} is a directory, not a ledger file{hint}", param_hint="PATH")
    if not ledger_path.exists() and not (ledger_path.parent / "gatekeeper.db").is_file():
        err.print(f"[red]no ledger at {ledger_path}[/red]")
        raise typer.Exit(1)
    # missing beside a registry: a data directory a gate opened before its first ledger entry reads as an empty
    # ledger (verify tells that from a lost one by the registry), not as a mistyped path
    return ledger_path


@ledger_app.command("anchor")
def ledger_anchor(path: Optional[Path] = typer.Argument(None, help="Ledger file (default: data dir)."),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Print the last entry as SEQ:HASH, to keep somewhere else (a ticket, another system); `ledger verify --anchor
    SEQ:HASH` later proves that nothing up to it was removed or rewritten."""
    from gatekeeper.ledger import AuditLedger, LedgerError

    ledger_path = _existing_ledger(path, data_dir)
    try:
        seq, digest = AuditLedger(ledger_path).anchor()
    except (LedgerError, OSError) as exc:
        raise _fail(f"no anchor: {exc}", 1) from None
    if not seq and _lost_beside_registry(ledger_path):  # the empty chain's anchor would hide the loss
        raise _fail(f"LOST: {ledger_path} holds no entry, but the registry beside it records decisions as "
                    "ledgered: there is no anchor to take (`gatekeeper ledger verify` says more)", 1)
    print(f"{seq}:{digest}")  # stdout alone, for scripts (Rich could wrap it)


@ledger_app.command("repair")
def ledger_repair(path: Optional[Path] = typer.Argument(None, help="Ledger file (default: data dir)."),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Remove a torn final line (a write cut short by a crash) and record what was removed in the ledger; a gate
    does the same when it opens. A complete line that does not verify is never touched: that is tampering. Also
    applies redactions an interrupted `gatekeeper forget` recorded but did not apply."""
    from gatekeeper.ledger import AuditLedger, LedgerError

    ledger_path = _existing_ledger(path, data_dir)
    ledger = AuditLedger(ledger_path)
    try:
        removed = ledger.repair_torn_tail(record=True)
        redacted = ledger.apply_redactions()
    except (LedgerError, OSError) as exc:
        raise _fail(f"not repaired: {exc}", 1) from None
    finally:
        ledger.close()
    if redacted:
        console.print(f"finished an interrupted redaction: {redacted} entr{'y' if redacted == 1 else 'ies'} "
                      "rewritten as recorded")
    if not removed:
        if not redacted:
            console.print("nothing to repair: the last line is complete (`gatekeeper ledger verify` checks the "
                          "chain)")
        return
    console.print(f"removed a torn tail of {len(removed)} bytes; recorded as ledger.tail_repaired")


@ledger_app.command("rotate")
def ledger_rotate(path: Optional[Path] = typer.Argument(None, help="Ledger file (default: data dir)."),
                  data_dir: Optional[Path] = DataDir) -> None:
    """Archive the live ledger file and start a new one that continues its chain (safe while gates write)."""
    from gatekeeper.ledger import AuditLedger, LedgerCorruptError, LedgerError

    ledger_path = _existing_ledger(path, data_dir)
    ledger = AuditLedger(ledger_path)
    try:
        # an edited entry would leave the live file for an archive, which `status` and /metrics do not read: the
        # alarm would clear with the next (cron) rotation
        check = ledger.verify()
        if not check.ok:
            raise _fail(f"not rotated: the live file does not verify ({_shown(check.problem)}; first bad entry: "
                        f"line {check.first_bad_line}, seq {check.first_bad_seq}): rotating would move it out of "
                        "what `gatekeeper status` checks. A torn tail (a write cut short by a crash) is removed by "
                        "`gatekeeper ledger repair`; anything else: `gatekeeper ledger verify`", 1)
        entry = ledger.rotate()
    except LedgerCorruptError as exc:
        raise _fail(f"not rotated: {exc}. A torn tail (a write cut short by a crash) is removed by `gatekeeper "
                    "ledger repair` (a gate opening does it too); anything else: `gatekeeper ledger verify`", 1) \
            from None
    except (LedgerError, OSError) as exc:
        raise _fail(f"not rotated: {exc}", 1) from None
    finally:
        ledger.close()
    if entry is None:
        console.print(f"nothing to rotate: {ledger_path} holds no entry since the last rotation")
        return
    f = entry.fields
    console.print(f"archived seq {f['archived_first_seq']}-{f['archived_last_seq']} to "
                  f"{ledger_path.parent / f['archive']}")
    console.print(f"{ledger_path} continues at seq {entry.seq}; anchor of the archive's last entry: "
                  f"{f['archived_last_seq']}:{entry.prev_hash}")


def _write_private(path: Path, text: str) -> None:
    """Write a command's output file readable by its owner only (0600, an existing file too): what the commands
    write holds memory texts from the registry, which only the gate's user may read."""
    from gatekeeper.files import write_private_file

    write_private_file(path, text.encode("utf-8"))
    os.chmod(path, 0o600)


def _check_json_out(json_out: Optional[Path]) -> None:
    """Refuse a ``--json`` path that cannot be written before the work (minutes with a training), not after it."""
    if json_out is None:
        return
    folder = json_out.parent
    if json_out.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK) or \
            (json_out.exists() and not os.access(json_out, os.W_OK)):
        raise _fail(f"cannot write --json {json_out}: not a writable file in an existing directory")


# ---------------------------------------------------------------------- train
@contextmanager
def _stage_progress(*, training: bool = True, on: Console | None = None):
    """A progress callback ``(stage, done, total)``: one bar per stage (``.stages``). ``training``: a classifier
    training's batches, with the time remaining, left on screen; otherwise bars that go when done (evaluation).
    ``on``: the console the bars are drawn on (default stdout; stderr where stdout is the command's result)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("batches"), TimeElapsedColumn(), TimeRemainingColumn()) if training \
        else (TimeElapsedColumn(),)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *columns,
                  console=on or console, transient=not training) as progress:
        tasks: dict[str, int] = {}

        def cb(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        cb.stages = tasks  # type: ignore[attr-defined]
        yield cb


def _train_first(reviewer, what: str, instead: str = "") -> None:
    """Train ``reviewer``'s classifier now when none is cached for its policy (an exemplar or category edit),
    saying so on stderr before it starts (how long, and ``instead``: what the command offers not to wait) and
    showing its progress there; stdout stays the command's result."""
    from gatekeeper.classifier import TRAINING_TIME

    if reviewer.classifier_ready(reviewer.policy, reviewer.embedder):
        return
    err.print(f"[yellow]no classifier is cached for {escape(what)} (its exemplars or categories differ from any "
              f"trained here): training it first, what `gatekeeper train --policy` does ({TRAINING_TIME})"
              f"{escape(instead)}[/yellow]", soft_wrap=True)
    with _stage_progress(on=err) as cb:
        reviewer.progress = cb
        try:
            _ = reviewer.classifier
        finally:
            reviewer.progress = None


@app.command()
def train(retrain: bool = typer.Option(False, help="Train even if a cached artifact exists."),
          policy_dir: Optional[Path] = PolicyDir) -> None:
    """Fine-tune (or load from cache) the local classifier for the current policy."""
    import time

    from gatekeeper.classifier import artifact_dir, check_served, ensure_classifier
    from gatekeeper.embeddings import Embedder, ModelLoadError

    _check_env()
    try:
        policy = load_policy(policy_dir)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    t0 = time.perf_counter()
    try:
        with _stage_progress() as cb:
            clf = ensure_classifier(policy, Embedder(), retrain=retrain, progress=cb)
        # "loaded" only of an artifact that serves: loading reads the heads, the encoder loads at the first write
        check_served(clf, artifact_dir(clf.meta.get("inputs_hash", "?")))
    except ModelLoadError as exc:  # a damaged artifact (a file cut short): which file, and what to do
        raise _fail(_one_line(exc), 1) from None
    meta = clf.meta
    trained = any(stage.startswith("epoch") for stage in cb.stages)  # not just the int8 derivation
    console.print(f"classifier {meta.get('trainer')} inputs {meta.get('inputs_hash', '?')}: "
                  f"{meta.get('examples')} examples ({meta.get('positives')} alignment-shifting) -> "
                  f"{artifact_dir(meta.get('inputs_hash', '?'))}")
    for h in meta.get("history", []) if trained else []:
        console.print(f"  epoch {h['epoch']}: loss {h['loss']:.4f}, {h['seconds']:.0f}s")
    if trained:
        console.print(f"trained in {meta.get('train_seconds', 0):.0f}s "
                      f"(total {time.perf_counter() - t0:.0f}s with loading and saving)")
    else:
        console.print(f"loaded from cache in {time.perf_counter() - t0:.1f}s (trained in "
                      f"{meta.get('train_seconds', 0):.0f}s; use --retrain to train again)")
    if meta.get("encoder_precision") == "int8":
        console.print("serving encoder: int8 (ONNX Runtime), heads refit on it "
                      f"({clf.encoder.onnx_path.parent if clf.encoder and clf.encoder.onnx_path else '?'})")
    else:
        console.print("serving encoder: float32")
    from gatekeeper.screen import ensure_screen

    with console.status("lexical screen (cheap first stage)"):
        screen = ensure_screen(policy, retrain=retrain)
    th = policy.thresholds
    state = (f"passes writes scoring below {screen.pass_below(th.screen_max_miss):.3f} "
             f"(screen_max_miss {th.screen_max_miss})" if th.screen_max_miss > 0 else "off in this policy")
    console.print(f"screen {screen.meta.get('version')} inputs {screen.meta.get('inputs_hash', '?')}: "
                  f"{screen.meta.get('train_rows')} rows, calibrated on {screen.meta.get('heldout_beliefs')} "
                  f"held-out beliefs; {state}")


@app.command()
def status(data_dir: Optional[Path] = DataDir, policy_dir: Optional[Path] = PolicyDir,
           json_out: bool = typer.Option(False, "--json", help="Print the numbers as JSON, for monitoring "
                                                               "(gatekeeper.health; the review app's /metrics).")
           ) -> None:
    """Counts per state, overdue escalations, ledger health, telemetry switches.

    When no gate opens here (policy files that do not load, an edited ledger) the operator needs the numbers most:
    they come from the registry and ledger opened without a gate, with the same JSON keys (``memories`` and the
    policy fields None), and the command still exits with the refusal's code so that scripts notice: 2 for the
    policy files, a missing or unusable data directory or a judge model that does not load, 3 for the ledger;
    ``gate_error`` in the JSON says why (None when a gate opened)."""
    import sqlite3
    import tempfile

    from gatekeeper.health import data_health, gate_health
    from gatekeeper.ledger import AuditLedger
    from gatekeeper.registry import ProposalRegistry

    settings = _settings(data_dir, policy_dir)
    policy, code, gate = {"policy_loads": True, "policy_error": None}, 0, None
    # why no gate opened here (None when one did): an exit code alone does not tell a monitor which 2 it is
    opened: dict[str, Any] = {"gate_error": None}
    if not settings.data_dir.exists() and not any(p.is_file() for p in settings.data_dir.parents):
        # a mistyped path, or no gate has opened there yet: say so (exit 2) with the counts of nothing, rather than
        # open a gate, which would create an empty data directory there
        why = (f"no data directory at {settings.data_dir}: nothing was gated there (a gate creates it when it first "
               "opens; check --data-dir or GATEKEEPER_DATA_DIR)")
        err.print(f"[red]{escape(why)}[/red]", soft_wrap=True)
        code, opened["gate_error"] = 2, why
    try:
        load_policy(settings.policy_dir)
    except PolicyError as exc:
        # a gate would not open with these files, but the gates already running keep the policy they loaded, and
        # the operator still needs the rest of the picture (the ledger says which edit was refused)
        err.print(f"[red]{_shown(exc)}[/red]")
        if not json_out:
            console.print("[red]the policy files do not load: a gate opened now refuses to start (running gates "
                          "keep the policy they loaded)[/red]")
        policy, code = {"policy_loads": False, "policy_error": str(exc)}, 2
        opened["gate_error"] = opened["gate_error"] or "the policy files do not load"
    if not code:
        try:
            gate = _open_gate(data_dir, policy_dir)
        except typer.Exit as exc:  # it said why on stderr: an edited ledger (3), an unusable data directory (2)
            code = exc.exit_code or 1
            opened["gate_error"] = getattr(exc, "why", None) or f"the gate did not open (exit {code})"
    if gate is not None:
        try:
            memories = getattr(gate.memory_store, "location", gate.store_id)
            if json_out:
                checks = _status_checks(gate.registry, gate.ledger)
                print(json.dumps({**policy, **opened, **gate_health(gate).model_dump(mode="json"),
                                  "memories": memories, **checks}, indent=1))
                ledger_ok = checks["ledger_verified"]["ok"]
            else:
                console.print(f"policy {gate.policy.version} ({gate.policy.hash[:12]})")
                _print_judge(gate)
                _print_escalation(gate.policy)
                ledger_ok = _print_status(gate.registry, gate.ledger, memories)
        finally:
            gate.close()
        # a gate opens on a ledger whose last entry chains (it checks no more), so an entry edited further back
        # shows only here: exit as for an edited ledger the gate refuses (3), so that scripts notice
        if not ledger_ok:
            raise typer.Exit(3)
        return
    why = "the gate did not start" if policy["policy_loads"] else "the policy does not load"
    with tempfile.TemporaryDirectory() as empty:
        # no registry file: nothing was journaled in this data directory; count an empty registry (same keys)
        # rather than create one there
        found = settings.registry_path.is_file()
        try:
            registry = ProposalRegistry(settings.registry_path if found else Path(empty) / "gatekeeper.db")
        except (OSError, sqlite3.Error) as exc:
            if not found:
                raise typer.Exit(code) from None
            try:  # a data directory on a read-only mount or backup: read it without writing there
                registry = ProposalRegistry(settings.registry_path, read_only=True)
            except (OSError, sqlite3.Error) as ro_exc:
                err.print(f"[red]cannot read the registry {escape(str(settings.registry_path))}: "
                          f"{escape(_one_line(exc))}; read-only: {escape(_one_line(ro_exc))}[/red]", soft_wrap=True)
                raise typer.Exit(code) from None
            why = f"{why}; its registry opened read-only: {_one_line(exc)}"
        ledger = AuditLedger(settings.ledger_path)
        try:
            if json_out:
                print(json.dumps({**policy, **opened, **data_health(registry, ledger).model_dump(mode="json"),
                                  "memories": None, **_status_checks(registry, ledger)}, indent=1))
            elif found:
                _print_status(registry, ledger, f"not opened ({why})")
        finally:
            registry.close()
            ledger.close()
    raise typer.Exit(code)


def _print_escalation(policy) -> None:
    esc = policy.escalation
    overdue = ("then expire into the quarantine" if esc.overdue_action == "quarantine"
               else "then flagged overdue, waiting for a person")
    cap = (f"at most {esc.max_pending_per_agent} waiting per agent (more are quarantined)"
           if esc.max_pending_per_agent else "no cap per agent")
    console.print(f"escalations: {esc.mode}, due in {esc.deadline_hours:g} h, {overdue}; {cap}")


def _print_judge(gate) -> None:
    from gatekeeper.judge_spec import describe_model

    model, judge = gate.reviewer.judge_model, gate.policy.judge
    if judge.enabled and model is not None:
        budget = (f"at most {judge.max_calls_per_minute} calls a minute (then {judge.over_budget})"
                  if judge.max_calls_per_minute else "no call budget")
        console.print(f"judge: {_shown(describe_model(model))}, band {judge.band[0]:g}-{judge.band[1]:g}, "
                      f"timeout {judge.timeout_s:g}s, {budget}, {judge.cache_size} verdicts cached")
    elif judge.enabled:
        console.print("[yellow]judge: enabled in the policy but no model is configured (GATEKEEPER_JUDGE_MODEL): "
                      "writes are decided without it (the uncertain band goes to the review queue)[/yellow]")
    elif model is not None:
        console.print(f"[yellow]judge: {_shown(describe_model(model))} is configured but the policy leaves it off "
                      "(judge.enabled: false)[/yellow]")
    else:
        console.print("judge: off")


#: what ``status`` says of a ledger lost (``health.lost_ledger``): an empty chain verifies, so it must say why not
LEDGER_LOST = ("LOST: the ledger is empty or missing while the registry holds decisions recorded in it: the audit "
               "record was deleted or not restored with the registry (restore ledger.jsonl and ledger-archive/ "
               "from the same backup)")


def _status_checks(registry, ledger) -> dict:
    """What ``status --json`` adds to the numbers: the live ledger's chain check, the policy warnings, telemetry."""
    from gatekeeper.health import lost_ledger
    from gatekeeper.telemetry import guardrails_metrics_disabled

    try:
        verified = ledger.verify().model_dump(mode="json", include={"ok", "entries", "first_seq", "problem",
                                                                    "redactions_pending"})
    except OSError as exc:  # a ledger this user cannot read: say so and still print the rest
        verified = {"ok": False, "entries": 0, "first_seq": 1, "problem": f"cannot read the ledger: {exc}",
                    "redactions_pending": None}
    if verified["ok"] and lost_ledger(registry, ledger):
        verified = {**verified, "ok": False, "problem": LEDGER_LOST}
    return {"ledger_verified": verified,
            "warnings": _policy_warnings(ledger), "guardrails_metrics_disabled": guardrails_metrics_disabled()}


def _human_duration(seconds: float) -> str:
    """A wait as a reader takes it in: seconds, minutes, hours or days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _print_status(registry, ledger, memories: str) -> bool:
    """Print the data directory's numbers and checks; whether the live ledger verified (and was not lost)."""
    from gatekeeper.health import data_health, lost_ledger
    from gatekeeper.telemetry import guardrails_metrics_disabled

    h = data_health(registry, ledger)  # the numbers of `status --json` and /metrics
    console.print("proposals: " + ", ".join(f"{k}={v}" for k, v in h.proposals.items()))
    try:
        rep = ledger.verify()  # the live file: the archives are checked by `gatekeeper ledger verify`
        archived = len(ledger.archives())
    except OSError as exc:
        console.print(f"ledger: UNREADABLE: {_shown(exc)}")
        ledger_ok = False
    else:
        lost = rep.ok and lost_ledger(registry, ledger)
        ledger_ok = rep.ok and not lost
        since = f" since seq {rep.first_seq}; {archived} archived file{'' if archived == 1 else 's'}" \
            if rep.first_seq > 1 else ""
        state = LEDGER_LOST if lost else "ok" if rep.ok else "TAMPERED: " + _shown(rep.problem)
        console.print(f"ledger: {state} ({rep.entries} entries{since})", soft_wrap=True)
        if rep.redactions_pending:
            console.print(f"[yellow]{rep.redactions_pending} recorded redaction(s) not yet applied (an erasure was "
                          "interrupted): gatekeeper ledger repair[/yellow]")
    console.print(f"memories: {_shown(memories)}")
    waiting = (f"oldest waiting {_human_duration(h.oldest_pending_s)}, {h.pending_overdue} overdue"
               if h.oldest_pending_s is not None else "nothing waiting")
    waits = h.decision_wait_s
    waited = (f", waited p50 {_human_duration(waits['p50'])}, p90 {_human_duration(waits['p90'])}"
              if waits else "")
    console.print(f"review queue: {waiting}; {h.decided_last_day} decided in the last 24 h{waited}")
    if h.store_failures_awaiting_retry:
        console.print(f"[yellow]{h.store_failures_awaiting_retry} writes quarantined by a memory store failure "
                      "await a retry (gatekeeper review retry-store-failures)[/yellow]")
    if h.review_failures_awaiting_retry:
        console.print(f"[yellow]{h.review_failures_awaiting_retry} writes quarantined because their review failed "
                      "await a retry (gatekeeper review retry-failed-reviews)[/yellow]")
    if h.expired_last_hour:
        console.print(f"[yellow]{h.expired_last_hour} escalations expired in the last hour, nobody having decided "
                      "them (escalation.overdue_action: quarantine)[/yellow]")
    if h.queue_capped_last_hour:
        console.print(f"[yellow]{h.queue_capped_last_hour} escalations quarantined in the last hour by the "
                      "per-agent queue cap (escalation.max_pending_per_agent): an agent is flooding the "
                      "gate[/yellow]")
    if h.unfinished:
        stores = ", ".join(f"{_shown(s) if s else 'any'} ({n})" for s, n in registry.unfinished_by_store().items())
        console.print(f"[yellow]{h.unfinished} writes a crash left half done: a gate over the memory store each is "
                      f"for finishes them when it opens (or gate.recover()); by store: {stores}[/yellow]",
                      soft_wrap=True)
    for warning in _policy_warnings(ledger):
        console.print(f"[yellow]{_shown(warning)}[/yellow]")
    console.print(f"guardrails metrics disabled: {guardrails_metrics_disabled()}")
    return ledger_ok


#: ledger events about the policy in force: a refused edit or a failed training is news until the next success
_POLICY_EVENTS = ("policy.reloaded", "policy.reload_refused", "classifier.trained", "classifier.training_failed")


def _loads_now(path: Any) -> bool:
    """Whether the policy files at ``path`` load now (a refused edit that was fixed since)."""
    if not isinstance(path, str) or not path or not Path(path).exists():
        return False
    try:
        load_policy(path)
    except (PolicyError, OSError, ValueError):
        return False
    return True


def _policy_warnings(ledger) -> list[str]:
    """What safety staff should know from the ledger: the last policy edit a gate refused, unless a reload of that
    gate's policy came after it, and the last classifier training that failed, unless a training of the same
    policy finished after it or a reload put a policy in force without it.

    Several gates can share a ledger (one data directory) with policies of their own: a refusal is cleared only by
    a reload of the policy it names (its files, or the policy that stayed in force when it was refused).

    The ledger (its archives, then the live file: a rotation does not hide a refusal) is read line by line, and
    only the lines that name one of ``_POLICY_EVENTS`` are parsed (status verifies the live chain already). A line
    that does not parse, or an entry with odd fields, is skipped: status reports a ledger that does not verify,
    and must still print."""

    def events():
        try:
            paths = [*ledger.archives(), ledger.path]
        except OSError:  # e.g. a data directory path that runs through a file: nothing to read
            paths = [ledger.path]
        for path in paths:
            try:
                with open(path, "rb") as f:
                    for raw in f:
                        if b"policy.reload" not in raw and b"classifier.tr" not in raw:
                            continue
                        try:
                            entry = json.loads(raw)
                        except ValueError:
                            continue
                        if isinstance(entry, dict) and entry.get("event") in _POLICY_EVENTS:
                            yield entry
            except OSError:
                continue

    def reloads(reloaded: dict, refused: dict) -> bool:
        """``reloaded`` put in force a policy from the files ``refused`` names, or replaced the policy that stayed
        in force then: that gate's edit took effect after all."""
        if reloaded.get("old_hash") is not None and reloaded.get("old_hash") == refused.get("in_force"):
            return True
        path, files = refused.get("path"), reloaded.get("files")
        if not isinstance(path, str) or not path or not isinstance(files, list):
            return False
        return any(isinstance(f, str) and (f == path or Path(f).parent == Path(path)) for f in files)

    def settles(reloaded: dict, failed: dict) -> bool:
        """``reloaded`` makes the training ``failed`` records moot: the policy it was for went into force with
        its own classifier, or the policy it served (or waited behind) was replaced by another."""
        policy = failed.get("policy_hash")
        if reloaded.get("new_hash") == policy:
            return reloaded.get("classifier") == "trained"
        return reloaded.get("old_hash") is not None and reloaded.get("old_hash") in (policy, failed.get("in_force"))

    refused: dict | None = None
    failed: dict | None = None
    for entry in events():
        event = entry["event"]
        if event == "policy.reload_refused":
            refused = entry
        elif event == "classifier.training_failed":
            failed = entry
        elif event == "classifier.trained":
            if failed is not None and entry.get("policy_hash") == failed.get("policy_hash"):
                failed = None  # that policy's classifier was made after all (another gate's training says nothing)
        else:  # policy.reloaded
            if refused is not None and reloads(entry, refused):
                refused = None
            if failed is not None and settles(entry, failed):
                failed = None
    if refused is not None and _loads_now(refused.get("path")):
        refused = None  # fixed since, with no gate running to reload them: the next gate to open loads them
    out = []
    if refused is not None:
        lines = [line.strip() for line in str(refused.get("problems", "")).splitlines()]
        problems = [line for line in lines if line and line != "invalid policy:"] or ["?"]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        out.append(f"the last policy edit was refused ({refused.get('ts', '?')}, {refused.get('path', '?')}): "
                   f"{problems[0]}{more}; the policy in force stayed "
                   f"({str(refused.get('in_force', '?'))[:12]}); gatekeeper policy lint shows every problem")
    if failed is not None:
        out.append(f"the classifier training for policy {str(failed.get('policy_hash', '?'))[:12]} failed "
                   f"({failed.get('ts', '?')}): {str(failed.get('error', '?'))[:300]}")
    return out


@app.command()
def bench(quick: bool = typer.Option(False, help="Fewer iterations and smaller stores."),
          out: Path = typer.Option(Path("benchmarks/results"), help="Where to save JSON + markdown."),
          compare_to: Optional[Path] = typer.Option(
              None, "--compare", help="A saved result (perf-*.json) to show this run against.")) -> None:
    """Measure latency, throughput, put overhead, cold start, memory and scaling."""
    from gatekeeper.benchmark import BenchFileError, load_result, run, save

    _check_env()
    try:
        baseline = load_result(compare_to) if compare_to is not None else None
    except BenchFileError as exc:  # before minutes of measuring, not after
        raise typer.BadParameter(str(exc), param_hint="--compare") from exc
    res = run(quick=quick, progress=lambda s: console.print(f"[dim]... {s}[/dim]"))
    table = Table("section", "metric", "value", "unit", "target", "note", title="gatekeeper performance")
    for r in res.rows:
        table.add_row(r["section"], r["metric"], f"{r['value']:.3f}", r["unit"], r["target"], r["note"])
    console.print(table)
    j, m = save(res, out)
    console.print(f"saved {j} and {m}")
    if baseline is not None:
        _print_comparison(baseline, {"meta": res.meta, "rows": res.rows}, str(compare_to), str(j))


@app.command("bench-compare")
def bench_compare(old: Path = typer.Argument(..., help="The earlier result (perf-*.json)."),
                  new: Path = typer.Argument(..., help="The later result (perf-*.json)."),
                  tolerance: float = typer.Option(0.05, help="Changes within this fraction count as the same.")
                  ) -> None:
    """Two saved benchmark results side by side, with what got better or worse."""
    from gatekeeper.benchmark import BenchFileError, load_result

    try:
        a, b = load_result(old), load_result(new)
    except BenchFileError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    _print_comparison(a, b, str(old), str(new), tolerance)


def _print_comparison(old: dict, new: dict, old_name: str, new_name: str, tolerance: float = 0.05) -> None:
    from gatekeeper.benchmark import compare

    def label(res: dict, name: str) -> str:
        meta = res["meta"]
        return f"{name} (git {meta.get('git', '?')}, {meta.get('date', '?')}, {meta.get('machine', '?')})"

    colour = {"better": "green", "worse": "red"}
    table = Table("section", "metric", "old", "new", "change", "", "target",
                  title=f"{escape(label(old, old_name))}\n-> {escape(label(new, new_name))}")
    def fmt(value: float | None, unit: str) -> str:
        return "" if value is None else f"{value:.3f} {unit}"

    for r in compare(old, new, tolerance=tolerance):
        change = "" if r["change"] is None else f"{r['change']:+.1%}"
        verdict = r["verdict"]
        table.add_row(r["section"], escape(r["metric"]), fmt(r["old"], r["unit"]), fmt(r["new"], r["unit"]), change,
                      f"[{colour[verdict]}]{verdict}[/{colour[verdict]}]" if verdict in colour else verdict,
                      r["target"])
    console.print(table)
    if old["meta"].get("machine") != new["meta"].get("machine"):
        console.print("[yellow]the two results come from different machines: compare ratios, not times[/yellow]")


@app.command("eval")
def eval_cmd(
    datasets: list[str] = typer.Argument(..., help="JSONL files (generic, memshield-bench or persona-dev format), "
                                                   "or corpus:dev / corpus:train / corpus:all."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1,
                                        help="Seeded random sample of N examples per dataset."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every metric as JSON to this file."),
    do_sweep: bool = typer.Option(False, "--sweep", help="Also sweep a global offset on the score thresholds."),
    do_obfuscate: bool = typer.Option(False, "--obfuscate",
                                      help="Re-run alignment-shifting examples disguised (zero-width, homoglyphs, "
                                           "base64, leetspeak, HTML comment, buried in a long note)."),
    in_a_row: bool = typer.Option(False, "--in-a-row",
                                  help="Also review every write as one agent's writes in a row (joined with the "
                                       "committed writes just before it, as the gate does), and show what the "
                                       "context layer adds in catches and false alarms."),
    source: SourceKind = typer.Option(SourceKind.agent, help="Provenance source of every write."),
    batch_size: int = typer.Option(32, min=1, help="Writes per review_many call."),
    judge: Optional[str] = typer.Option(
        None, "--judge", envvar="GATEKEEPER_JUDGE_MODEL", callback=_blank_as_unset,
        help="LLM judge for the policy's uncertain band: 'module:attribute' or 'path/to/file.py:attribute' naming "
             "a langchain-core chat model or a function returning one. Used where the policy enables the judge "
             "(judge.enabled); the report then shows its verdicts and latency."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Measure without the judge, even when one is "
                                                            "configured (GATEKEEPER_JUDGE_MODEL)."),
    policy_dir: Optional[Path] = PolicyDir,
) -> None:
    """Measure detection quality through the real review + decision path."""
    from gatekeeper.evaluation import OBFUSCATIONS, DatasetError, combined, evaluate, load_dataset, render
    from gatekeeper.reviewer import Reviewer

    _check_env()
    if json_out is not None and not json_out.parent.exists():
        try:
            json_out.parent.mkdir(parents=True)
        except OSError as exc:
            raise _fail(f"cannot write --json {json_out}: {exc}") from None
    _check_json_out(json_out)
    try:
        policy = load_policy(policy_dir)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    loaded = []
    for spec in datasets:
        try:
            loaded.append((spec, load_dataset(spec, limit=limit)))
        except DatasetError as exc:
            raise _fail(str(exc)) from None
    judge_model = None if no_judge else _judge_model(judge)
    if judge_model is not None and not policy.judge.enabled:
        err.print("[yellow]the policy leaves the judge off (judge.enabled: false): measured without it; enable it "
                  "in a copy of the policy (--policy) to measure the judge[/yellow]", soft_wrap=True)
        judge_model = None
    reviewer = Reviewer(policy, judge_model=judge_model)
    _train_first(reviewer, "this policy")  # an exemplar edit in a copy of the policy
    reports = []
    with _stage_progress(training=False) as cb:
        cb("loading classifier", 0, 1)
        reviewer.warm_up()
        cb("loading classifier", 1, 1)
        for spec, examples in loaded:
            name = Path(spec).stem if not spec.startswith("corpus:") else spec
            reports.append(evaluate(examples, reviewer, policy, name=name, source=source, batch_size=batch_size,
                                    do_sweep=do_sweep, obfuscate_variants=list(OBFUSCATIONS) if do_obfuscate else None,
                                    in_a_row=in_a_row, progress=cb))
    for rep in reports:
        render(rep, console)
    if len(reports) > 1:
        tot = combined(reports)
        def f(v):
            return "-" if v is None else f"{v:.3f}"

        console.print(f"[bold]all datasets[/bold]: recall {f(tot['recall'])}  false alarms "
                      f"{f(tot['false_alarm_rate'])}  precision {f(tot['precision'])}  F1 {f(tot['f1'])}"
                      + (f"  ({tot['skipped']} rows skipped, {tot['skipped_harmful']} of them harmful: not in "
                         "these numbers)" if tot["skipped"] else ""))
    if json_out:
        from gatekeeper.judge_spec import describe_model

        payload = {"classifier": reviewer.classifier.meta.get("trainer"),
                   "inputs_hash": reviewer.classifier.meta.get("inputs_hash"), "policy": policy.hash,
                   "judge": describe_model(judge_model) if judge_model is not None else None,
                   "source": source.value, "reports": [r.to_dict() for r in reports],
                   "combined": combined(reports)}
        try:
            _write_private(json_out, json.dumps(payload, indent=2, default=str))
        except OSError as exc:
            raise _fail(f"cannot write --json {json_out}: {exc}", 1) from None
        console.print(f"wrote {json_out}")
    if not any(rep.n for rep in reports):
        raise _fail("no write was reviewed (every example was skipped): nothing was measured", 1)


if __name__ == "__main__":  # pragma: no cover
    app()
