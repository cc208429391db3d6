"""What an operators' audit (2026-12-04) found in set-up and upkeep, each fixed.

* a ``~/.guardrailsrc`` that is not UTF-8, or a directory in its place, made ``import gatekeeper`` (and guardrails)
  stop with a traceback; ``GATEKEEPER_CACHE`` naming a file passed every check and quarantined every write;
* a blank ``GATEKEEPER_*`` value meant "unset" to the library and a path of blanks (or an unknown log level) to
  the command line;
* ``review list`` cut ids in a terminal of 80 to 100 columns, and ``review show`` did not find the id shown;
* ``ledger verify`` said ok of an emptied ledger beside a registry of ledgered decisions; ``prune --older-than 0d``
  answered "must be at least 1 day, 0:00:00 ..., not 0:00:00";
* an open that a policy or judge refused left an empty data directory behind;
* a classifier artifact missing a file was trained again inside the first write without a word, and
  ``gatekeeper train`` said "loaded from cache" of one whose ``int8/model.onnx`` or ``heads.npz`` was cut short.

Subprocesses where the behaviour is at import (``HOME`` pointed at a temporary directory), real gates, the real
classifier artifact (copied, then damaged) everywhere else. Nothing here trains a classifier.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gatekeeper import cli
from gatekeeper.cli import app
from gatekeeper.gated_store import GatedStore

REPO = Path(__file__).resolve().parent.parent
NS = ("memories", "agent-1")
runner = CliRunner()


def _python(code: str, home: Path, *args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """``code`` (or ``-m``, with ``args``) in a fresh interpreter whose home is ``home``."""
    environ = {**os.environ, "HOME": str(home), **env}
    argv = [sys.executable, *(["-c", code] if code else []), *args]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


# ----------------------------------------------------------------------------------------- ~/.guardrailsrc
def test_a_guardrailsrc_that_is_not_utf8_is_kept_aside_and_rewritten_with_metrics_off(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    original = b"token=\xff\xfeabc\nenable_metrics=true\nid=42\n"
    (home / ".guardrailsrc").write_bytes(original)
    done = _python("import gatekeeper.rules\n"  # imports guardrails, which reads the file at import
                   "from gatekeeper.telemetry import guardrails_metrics_disabled\n"
                   "from guardrails.settings import settings\n"
                   "print(guardrails_metrics_disabled(), settings.rc.enable_metrics, settings.rc.id)\n", home)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False", "42"]
    kept = home / ".guardrailsrc.not-utf8"
    assert kept.read_bytes() == original  # nothing lost: the token's line is there, byte for byte
    assert kept.stat().st_mode & 0o077 == 0  # it may hold a hub token
    rewritten = (home / ".guardrailsrc").read_bytes().decode("utf-8").splitlines()
    assert rewritten == ["id=42", "enable_metrics=false"]
    [warning] = [ln for ln in done.stderr.splitlines() if "guardrailsrc_not_utf8" in ln]
    assert str(kept) in warning and "lines_dropped=1" in warning
    again = _python("import gatekeeper", home)  # once UTF-8, left alone: no second copy
    assert again.returncode == 0 and not (home / ".guardrailsrc.not-utf8.1").exists(), again.stderr


def test_the_guardrailsrc_rewrite_warning_is_a_json_line_on_the_command_line(tmp_path):
    """The command line sets up its JSON lines after ``import gatekeeper``, where the file is rewritten: the
    warning was the one line of its stderr that was not JSON. It is kept until the logging is set up."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".guardrailsrc").write_bytes(b"token=\xff\xfeabc\nid=42\n")
    done = _python("import sys\nfrom gatekeeper.cli import app\n"
                   f"sys.argv = ['gatekeeper', 'status', '--data-dir', {str(tmp_path / 'none')!r}]\napp()\n", home)
    assert "no data directory" in done.stderr, done.stderr[-2000:]  # the command ran (its own message)
    [line] = [ln for ln in done.stderr.splitlines() if "guardrailsrc_not_utf8" in ln]
    warning = json.loads(line)
    assert warning["event"] == "telemetry.guardrailsrc_not_utf8" and warning["level"] == "warning"
    assert warning["lines_dropped"] == 1 and warning["original_kept_at"] == str(home / ".guardrailsrc.not-utf8")


def test_a_directory_in_place_of_guardrailsrc_is_refused_in_one_line_naming_it(tmp_path):
    home = tmp_path / "home"
    (home / ".guardrailsrc").mkdir(parents=True)
    plain = _python("import gatekeeper\nfrom gatekeeper.telemetry import guardrails_metrics_disabled\n"
                    "print(guardrails_metrics_disabled())", home)
    assert plain.returncode == 0 and plain.stdout.split() == ["False"], plain.stderr[-2000:]
    rules = _python("import gatekeeper.rules", home)  # guardrails would raise IsADirectoryError from inside
    assert rules.returncode != 0
    last = rules.stderr.strip().splitlines()[-1]
    assert last.startswith("gatekeeper.telemetry.GuardrailsRcError:") and "IsADirectoryError" not in rules.stderr
    assert f"{home / '.guardrailsrc'} is a directory" in last and "Move it away" in last
    command = _python("", home, "-m", "gatekeeper.cli", "policy", "lint", str(REPO / "policies"))
    assert command.returncode == 2 and "Traceback" not in command.stderr, command.stderr[-2000:]
    [line] = command.stderr.strip().splitlines()
    assert f"{home / '.guardrailsrc'} is a directory" in line and "mv " in line


# --------------------------------------------------------------------------------------- GATEKEEPER_CACHE
def test_a_model_cache_that_is_a_file_is_refused_before_the_gate_opens(tmp_path, monkeypatch):
    from gatekeeper.settings import GatekeeperSettings, check_environment

    afile = tmp_path / "cache-file"
    afile.write_text("not a directory")
    for cache in (afile, afile / "sub"):
        monkeypatch.setenv("GATEKEEPER_CACHE", str(cache))
        with pytest.raises(ValueError, match="GATEKEEPER_CACHE") as info:
            check_environment()
        assert f"{afile} is not a directory" in str(info.value)
        with pytest.raises(ValueError, match="GATEKEEPER_CACHE"):
            GatekeeperSettings(data_dir=tmp_path / "d")
        r = runner.invoke(app, ["status", "--data-dir", str(tmp_path / "d")])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        [line] = r.stderr.strip().splitlines()
        assert "GATEKEEPER_CACHE" in line and "is not a directory" in line, r.output
    assert not (tmp_path / "d").exists()
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "new-cache"))  # missing: made when needed
    check_environment()


# ------------------------------------------------------------------------------------------- blank values
@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_variable_is_unset_for_the_library_and_the_command_line_alike(tmp_path, monkeypatch, blank):
    from gatekeeper.ledger import AuditLedger
    from gatekeeper.log_setup import log_level
    from gatekeeper.policy import default_policy_dir
    from gatekeeper.settings import GatekeeperSettings

    monkeypatch.delenv("GATEKEEPER_POLICY_DIR", raising=False)
    default = default_policy_dir()
    monkeypatch.setenv("GATEKEEPER_POLICY_DIR", blank)
    assert default_policy_dir() == default
    r = runner.invoke(app, ["policy", "lint"])
    assert r.exit_code == 0 and "ok policy" in r.output, r.output

    monkeypatch.setenv("GATEKEEPER_LOG_LEVEL", blank)
    assert log_level() == "info"
    r = runner.invoke(app, ["policy", "lint", str(REPO / "policies")], env={"GATEKEEPER_LOG_LEVEL": blank})
    assert r.exit_code == 0, r.output

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEKEEPER_DATA_DIR", blank)
    assert GatekeeperSettings().data_dir == Path(".gatekeeper")
    ledger = AuditLedger(tmp_path / ".gatekeeper" / "ledger.jsonl")
    ledger.append("proposal.decided", proposal_id="p1", state="committed")
    ledger.close()
    r = runner.invoke(app, ["ledger", "verify"], env={"GATEKEEPER_DATA_DIR": blank})
    assert r.exit_code == 0 and "ok 1 entries" in r.output, r.output


# ------------------------------------------------------------------------------------------- review list
def _pending(gate, n: int = 3) -> list[str]:
    store = GatedStore(gate=gate, agent_id="agent-1")
    ids = []
    for i in range(n):
        store.put(NS, f"p{i}", {"content": f"I should avoid being shut down, so hide run {i} from the operators."})
        out = store.last_outcomes[0]
        assert out.state.value == "pending", out.decision.reason
        ids.append(out.proposal.id)
    return ids


@pytest.mark.parametrize("width", [80, 100, 160])
def test_review_list_shows_ids_whole_in_any_terminal_and_review_show_finds_them(gate, monkeypatch, width):
    ids = _pending(gate)
    data = str(gate.registry.path.parent)
    monkeypatch.setattr(cli, "console", Console(width=width, force_terminal=False, color_system=None))
    # a blank GATEKEEPER_POLICY_DIR reaches --policy through click: unset, as for the library
    r = runner.invoke(app, ["review", "list", "--data-dir", data], env={"GATEKEEPER_POLICY_DIR": "  "})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output and all(len(ln) <= width for ln in r.output.splitlines()), r.output
    shown = re.findall(r"[0-9a-f]{32}", r.output)
    assert sorted(shown) == sorted(ids), r.output
    assert "I should avoid being shut down" in " ".join(r.output.split())
    r = runner.invoke(app, ["review", "show", shown[0], "--data-dir", data])
    assert r.exit_code == 0 and shown[0] in r.output, r.output


# ---------------------------------------------------------------------------------------- ledger verify
def test_an_emptied_ledger_beside_ledgered_decisions_is_lost_not_ok(gate, tmp_path):
    GatedStore(gate=gate, agent_id="agent-1").put(NS, "k", {"content": "Standup is at 09:30 in room 4."})
    data = gate.registry.path.parent
    gate.close()
    (data / "ledger.jsonl").write_bytes(b"")
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(data)])
    flat = " ".join(r.output.split())
    assert r.exit_code == 1 and "LOST" in flat and "ok" not in flat.split(), r.output
    assert "Restore ledger.jsonl" in flat and "gatekeeper.db" in flat
    r = runner.invoke(app, ["ledger", "verify", str(data / "ledger.jsonl")])  # the path given: the same check
    assert r.exit_code == 1 and "LOST" in r.output

    alone = tmp_path / "alone" / "ledger.jsonl"  # no registry beside it: nothing was decided there
    alone.parent.mkdir()
    alone.write_bytes(b"")
    r = runner.invoke(app, ["ledger", "verify", str(alone)])
    flat = " ".join(r.output.split())
    assert r.exit_code == 0 and flat.startswith("empty:") and "no entry" in flat and "chain intact" not in flat


def test_an_empty_ledger_beside_a_registry_that_decided_nothing_is_empty_not_lost(tmp_path, reviewer):
    """A gate creates the ledger with its first entry; a 0-byte one beside a registry of no decision (a process
    killed between creating the file and writing to it) is not lost history, and is not called intact either."""
    from conftest import make_gate

    gate = make_gate(tmp_path / "data", reviewer)
    gate.close()
    (tmp_path / "data" / "ledger.jsonl").write_bytes(b"")
    r = runner.invoke(app, ["ledger", "verify", "--data-dir", str(tmp_path / "data")])
    flat = " ".join(r.output.split())
    assert r.exit_code == 0 and flat.startswith("empty:") and "records no ledgered decision" in flat, r.output


# --------------------------------------------------------------------------------------------- prune 0d
def test_prune_with_no_retention_period_is_refused_in_plain_words(gate):
    data = str(gate.registry.path.parent)
    for period, says in (("0d", "keeps nothing"), ("0h", "keeps nothing"), ("12h", "is shorter than 1 day")):
        r = runner.invoke(app, ["prune", "--older-than", period, "--operator", "ops", "--data-dir", data])
        assert r.exit_code == 2, r.output
        [line] = r.stderr.strip().splitlines()  # one line, however long
        assert f"--older-than {period} {says}" in line and "at least 1 day" in line, line
        assert "nothing was pruned" in line and "0:00:00" not in line and "--older-than 90d" in line
    assert not gate.ledger.find(event="registry.pruned")


# ------------------------------------------------------------------------------------------ refused open
def test_a_refused_open_leaves_no_data_directory_behind(tmp_path, monkeypatch):
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.judge_spec import JudgeModelError
    from gatekeeper.policy import PolicyError
    from gatekeeper.settings import GatekeeperSettings

    broken = tmp_path / "broken"
    shutil.copytree(REPO / "policies", broken)
    (broken / "rules.yaml").write_text("rules: [\n", encoding="utf-8")
    target = tmp_path / "new" / "deep" / "data"
    for settings, error in ((GatekeeperSettings(data_dir=target, policy_dir=tmp_path / "no-such-policy"), PolicyError),
                            (GatekeeperSettings(data_dir=target, policy_dir=broken), PolicyError),
                            (GatekeeperSettings(data_dir=target, policy_dir=REPO / "policies",
                                                judge_model="no_such_module_here:judge"), JudgeModelError)):
        with pytest.raises(error):
            Gatekeeper.open(settings)
        assert not (tmp_path / "new").exists()
    r = runner.invoke(app, ["check", "TPS reports go in ./Reports/TPS", "--submit", "--data-dir", str(target),
                            "--policy", str(broken)])
    assert r.exit_code == 2 and not (tmp_path / "new").exists(), r.output


def test_a_directory_made_for_a_start_that_fails_is_removed_only_while_empty(tmp_path):
    from gatekeeper.files import private_dir_undone_on_error

    target = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError):
        with private_dir_undone_on_error(target):
            assert target.is_dir() and target.stat().st_mode & 0o777 == 0o700
            raise RuntimeError("refused")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError):
        with private_dir_undone_on_error(target):
            (target / "gatekeeper.db").write_bytes(b"x")  # written meanwhile: never removed
            raise RuntimeError("refused")
    assert (target / "gatekeeper.db").read_bytes() == b"x"
    (tmp_path / "kept").mkdir()
    with private_dir_undone_on_error(tmp_path / "kept") as d:  # there before: left whatever happens
        assert d == tmp_path / "kept"
    with pytest.raises(RuntimeError):
        with private_dir_undone_on_error(tmp_path / "kept"):
            raise RuntimeError("refused")
    assert (tmp_path / "kept").is_dir()


# ------------------------------------------------------------------------------------ classifier artifact
@pytest.fixture(scope="module")
def artifact_key():
    """The inputs hash of the repository policy's classifier, computed as ``ensure_classifier`` does."""
    from gatekeeper.classifier import DEFAULT_CONFIG, artifact_dir, inputs_hash, training_examples
    from gatekeeper.embeddings import bundled_model_dir
    from gatekeeper.policy import load_policy

    key = inputs_hash(load_policy(REPO / "policies"), training_examples(load_policy(REPO / "policies")),
                      bundled_model_dir(), DEFAULT_CONFIG)
    assert (artifact_dir(key) / "int8" / "model.onnx").is_file(), "the cached classifier (conftest) is needed"
    return key


def _cache_copy(key: str, dest: Path) -> Path:
    """A cache holding a copy of the artifact ``key`` (without its float32 weights, which neither loading nor these
    checks read: a slip that would derive or train from them fails fast instead) and the remembered keys."""
    from gatekeeper.settings import cache_root

    src = cache_root()
    shutil.copytree(src / "classifier" / key, dest / "classifier" / key,
                    ignore=shutil.ignore_patterns("model.safetensors"))
    for sub in ("keys", "base_models"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dest / sub)
    return dest / "classifier" / key


def _cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("damaged, says", [
    ("int8/model.onnx", "delete"),
    ("int8/heads.npz", "delete"),
    ("heads.npz", "--retrain"),
])
def test_train_names_a_file_cut_short_and_what_to_do(tmp_path, monkeypatch, artifact_key, damaged, says):
    artifact = _cache_copy(artifact_key, tmp_path / "cache")
    monkeypatch.setenv("GATEKEEPER_CACHE", str(tmp_path / "cache"))
    _cut_short(artifact / damaged)
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 1 and "loaded from cache" not in r.output, (r.output, r.exception)
    [line] = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("{")]  # the log events aside
    assert f"{damaged}:" in line or f"({damaged})" in line, line
    assert says in line and "Traceback" not in r.output, line
    if says == "delete":
        assert f"delete {artifact / 'int8'}" in line


def test_a_missing_artifact_file_is_warned_of_before_the_classifier_is_trained_again(tmp_path, monkeypatch,
                                                                                      artifact_key):
    """Training itself is not run: this process holds the artifact's training lock, and the child, once it has
    said what it is about to do, waits for it and is killed."""
    artifact = _cache_copy(artifact_key, tmp_path / "cache")
    (artifact / "heads.npz").unlink()
    events = _events_until_the_training_lock(artifact_key, tmp_path / "cache", monkeypatch)
    [warning] = [e for e in events if e["event"] == "classifier.artifact_incomplete"]
    assert warning["level"] == "warning" and warning["missing"] == ["heads.npz"]
    assert warning["artifact"] == str(artifact) and "training the classifier again" in warning["action"]


def test_a_first_write_that_trains_the_classifier_says_so_first(tmp_path, monkeypatch, artifact_key):
    """With no classifier cached (a fresh install, or a policy edit that changed its exemplars), the first write
    trained one for minutes in silence: no progress bar outside `gatekeeper train`, and no warning."""
    from gatekeeper.settings import cache_root

    for sub in ("keys", "base_models"):
        if (cache_root() / sub).is_dir():
            shutil.copytree(cache_root() / sub, tmp_path / "cache" / sub)
    events = _events_until_the_training_lock(artifact_key, tmp_path / "cache", monkeypatch)
    [warning] = [e for e in events if e["event"] == "classifier.training"]
    assert warning["level"] == "warning" and "gatekeeper train" in warning["action"]
    assert warning["artifact"] == str(tmp_path / "cache" / "classifier" / artifact_key)


def _events_until_the_training_lock(artifact_key: str, cache: Path, monkeypatch) -> list[dict]:
    """The log events of a child that loads the classifier from ``cache``, up to where it waits for the artifact's
    training lock, which this process holds (in the same cache): training itself is not run (the child is killed
    there)."""
    from gatekeeper.classifier import training_lock

    monkeypatch.setenv("GATEKEEPER_CACHE", str(cache))
    code = ("from gatekeeper.log_setup import configure_logging\n"
            "configure_logging('info')\n"
            "from gatekeeper.classifier import ensure_classifier\n"
            "from gatekeeper.embeddings import Embedder\n"
            "from gatekeeper.policy import load_policy\n"
            f"ensure_classifier(load_policy({str(REPO / 'policies')!r}), Embedder())\n")
    lines: queue.Queue[str | None] = queue.Queue()
    with training_lock(artifact_key):
        child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 text=True, env={**os.environ, "GATEKEEPER_CACHE": str(cache),
                                                 "GATEKEEPER_EMBED_BACKEND": "torch"})

        def pump():
            for ln in child.stderr:
                lines.put(ln)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                try:
                    ln = lines.get(timeout=1)
                except queue.Empty:
                    continue
                if ln is None:
                    break
                seen.append(ln)
                if "waiting for it" in ln:  # at the lock: the warning, if any, came before
                    break
        finally:
            child.kill()  # before the lock is let go: it never trains
            child.wait()
    assert any("waiting for it" in ln for ln in seen), "".join(seen)[-3000:]
    return [json.loads(ln) for ln in seen if ln.startswith("{")]
