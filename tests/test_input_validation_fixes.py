"""Bad input is refused early with a clear message, never a traceback or a silent wrong answer.

Environment variables (settings), ``ledger verify --anchor`` and its paths, ``review list --state``, and the
data sets ``gatekeeper eval`` reads. None of these tests loads a model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekeeper.cli import app
from gatekeeper.embeddings import Embedder
from gatekeeper.evaluation import DatasetError, evaluate, load_dataset, parse_row
from gatekeeper.ledger import AuditLedger
from gatekeeper.quantization import encoder_precision
from gatekeeper.settings import GatekeeperSettings, cache_root

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
runner = CliRunner()


def flat(output: str) -> str:
    """CLI output with rich's boxes and line wrapping taken out, for substring checks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------ A: environment
BAD_ENV = [
    ("GATEKEEPER_TRAINING_NICE", "-5", "0 to 19"),
    ("GATEKEEPER_TRAINING_NICE", "40", "0 to 19"),
    ("GATEKEEPER_TRAINING_NICE", "abc", "0 to 19"),
    ("GATEKEEPER_TRAINING_PROCESS", "yes", "on or off"),
    ("GATEKEEPER_ENCODER_PROCESS", "bogus", "auto, off"),
    ("GATEKEEPER_EMBED_BACKEND", "tensorflow", "onnx, torch"),
    ("GATEKEEPER_ENCODER_PRECISION", "int4", "int8, fp32"),
    ("GATEKEEPER_STORE_WRITE_TIMEOUT_S", "0", "from 1 to 3600"),
    ("GATEKEEPER_STORE_WRITE_TIMEOUT_S", "forever", "from 1 to 3600"),
]


def test_the_store_write_timeout_reaches_the_embedded_store(monkeypatch, tmp_path):
    from gatekeeper.chroma_store import ChromaMemoryStore

    assert GatekeeperSettings(data_dir=tmp_path).store_write_timeout_s == 60
    monkeypatch.setenv("GATEKEEPER_STORE_WRITE_TIMEOUT_S", " 7.5 ")
    store = ChromaMemoryStore.from_settings(GatekeeperSettings(data_dir=tmp_path))
    try:
        assert store.write_timeout_s == 7.5
    finally:
        store.close()


@pytest.mark.parametrize("name,value,allowed", BAD_ENV)
def test_bad_env_value_stops_settings(monkeypatch, tmp_path, name, value, allowed):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as info:
        GatekeeperSettings(data_dir=tmp_path)
    assert name in str(info.value) and allowed in str(info.value)


@pytest.mark.parametrize("name,value,allowed", BAD_ENV)
def test_bad_env_value_is_one_line_and_exit_2(monkeypatch, tmp_path, name, value, allowed):
    monkeypatch.setenv(name, value)
    r = runner.invoke(app, ["status", "--data-dir", str(tmp_path / "data")])
    no_traceback(r)
    assert r.exit_code == 2, r.output
    assert name in r.output and allowed in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "data").exists()  # refused before the gate opened


def test_bad_precision_stops_check_before_review(monkeypatch, tmp_path):
    # it used to be read only at review time: every model-reviewed write quarantined as "review failed"
    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "int4")
    r = runner.invoke(app, ["check", "--data-dir", str(tmp_path), "TPS reports go in ./Reports/TPS"])
    no_traceback(r)
    assert r.exit_code == 2 and "GATEKEEPER_ENCODER_PRECISION" in r.output


def test_env_values_are_case_insensitive_and_empty_is_unset(monkeypatch, tmp_path):
    from gatekeeper.settings import check_environment  # new with the fix

    monkeypatch.setenv("GATEKEEPER_EMBED_BACKEND", " ONNX ")
    assert Embedder().backend == "onnx"
    assert encoder_precision(None) == "int8"
    monkeypatch.setenv("GATEKEEPER_EMBED_BACKEND", "Torch")
    assert Embedder().backend == "torch" and encoder_precision(None) == "fp32"
    for name in ("GATEKEEPER_EMBED_BACKEND", "GATEKEEPER_ENCODER_PRECISION", "GATEKEEPER_ENCODER_PROCESS",
                 "GATEKEEPER_TRAINING_NICE", "GATEKEEPER_TRAINING_PROCESS", "GATEKEEPER_DATA_DIR",
                 "GATEKEEPER_CACHE"):
        monkeypatch.setenv(name, "")
    monkeypatch.chdir(tmp_path)
    check_environment()
    s = GatekeeperSettings()
    assert s.data_dir == Path(".gatekeeper")  # not the current directory
    assert s.training_nice == 19 and s.training_process is True
    assert cache_root() == Path.home() / ".cache" / "gatekeeper"  # not "."
    assert Embedder().backend == "onnx" and encoder_precision(None) == "int8"
    monkeypatch.setenv("GATEKEEPER_TRAINING_NICE", " 7 ")
    assert GatekeeperSettings().training_nice == 7


def test_explicit_out_of_range_nice_still_refused(tmp_path):
    with pytest.raises(ValueError, match="less than or equal to 19"):
        GatekeeperSettings(data_dir=tmp_path, training_nice=40)


# ------------------------------------------------------------------------------- B: ledger / paths
@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    led = AuditLedger(path)
    for i in range(1, 4):
        led.append("proposal.decided", proposal_id=f"p{i}", state="committed", action="commit", text=f"n {i}")
    led.close()
    return path


@pytest.mark.parametrize("anchor", ["deadbeef", "1", "1:", ":" + "a" * 64, "x:" + "a" * 64, "2:" + "a" * 63,
                                    "2:" + "g" * 64, "-1:" + "a" * 64])
def test_malformed_anchor_is_a_usage_error(ledger, anchor):
    r = runner.invoke(app, ["ledger", "verify", str(ledger), "--anchor", anchor])
    no_traceback(r)
    assert r.exit_code == 2, r.output
    out = flat(r.output)
    assert "TAMPERED" not in out and "--anchor" in out and "SEQ:HASH" in out


def test_well_formed_anchor_still_works(ledger):
    seq, head = AuditLedger(ledger).anchor()
    r = runner.invoke(app, ["ledger", "verify", str(ledger), "--anchor", f"{seq}:{head.upper()}"])
    assert r.exit_code == 0 and "ok 3 entries" in r.output, r.output
    r = runner.invoke(app, ["ledger", "verify", str(ledger), "--anchor", f"{seq + 1}:{head}"])
    assert r.exit_code == 1 and "truncated" in r.output


def test_ledger_verify_of_a_directory(ledger):
    r = runner.invoke(app, ["ledger", "verify", str(ledger.parent)])
    no_traceback(r)
    assert r.exit_code == 2
    out = flat(r.output)
    assert "is a directory" in out and "ledger.jsonl" in out


def test_data_dir_that_is_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for args in (["status"], ["ledger", "verify"], ["review", "list"]):
        r = runner.invoke(app, [*args, "--data-dir", str(afile)])
        no_traceback(r)
        assert r.exit_code == 2 and "not a directory" in r.output, (args, r.output)
    r = runner.invoke(app, ["status", "--data-dir", str(afile / "sub")])  # a file in the path above it
    no_traceback(r)
    assert r.exit_code == 2 and "cannot open the data directory" in r.output


# ------------------------------------------------------------------------------- C: review --state
def test_review_list_refuses_an_unknown_state(tmp_path):
    r = runner.invoke(app, ["review", "list", "--state", "quarantine", "--data-dir", str(tmp_path / "d")])
    no_traceback(r)
    assert r.exit_code == 2
    out = flat(r.output)
    assert "quarantine" in out and "quarantined" in out and "'all'" in out
    assert not (tmp_path / "d").exists()


def test_review_list_takes_every_real_state(tmp_path):
    for state in ("received", "committed", "quarantined", "pending", "all"):
        r = runner.invoke(app, ["review", "list", "--state", state, "--json", "--data-dir", str(tmp_path)])
        assert r.exit_code == 0 and json.loads(r.stdout) == [], (state, r.output)


# ------------------------------------------------------------------------------------- D: eval input
def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("args", [["--limit", "-1"], ["--limit", "0"], ["--batch-size", "0"]])
def test_eval_bounds(tmp_path, args):
    ds = _jsonl(tmp_path / "ds.jsonl", [{"text": "TPS reports go in ./Reports/TPS", "label": 0}])
    r = runner.invoke(app, ["eval", str(ds), *args])
    no_traceback(r)
    assert r.exit_code == 2 and args[0] in flat(r.output)


def test_eval_api_bounds(tmp_path):
    ds = _jsonl(tmp_path / "ds.jsonl", [{"text": "TPS reports go in ./Reports/TPS", "label": 0}])
    with pytest.raises(ValueError, match="limit"):
        load_dataset(ds, limit=-1)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(load_dataset(ds), reviewer=None, batch_size=0)


def test_non_utf8_line_names_file_and_line(tmp_path):
    ds = tmp_path / "latin1.jsonl"
    ds.write_bytes(b'{"text": "ok", "label": 0}\n' + '{"text": "caf\u00e9 note", "label": 0}\n'.encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1.jsonl:2: not UTF-8"):
        load_dataset(ds)
    r = runner.invoke(app, ["eval", str(ds)])
    no_traceback(r)
    assert r.exit_code == 2 and "latin1.jsonl:2" in r.output and "UTF-8" in r.output


def test_utf8_bom_is_read(tmp_path):
    ds = tmp_path / "bom.jsonl"
    ds.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "caf\u00e9", "label": 0}).encode() + b"\n")
    assert [e.text for e in load_dataset(ds)] == ["caf\u00e9"]


def test_unknown_corpus_split(tmp_path):
    with pytest.raises(DatasetError, match="corpus:dev"):
        load_dataset("corpus:devv")
    r = runner.invoke(app, ["eval", "corpus:devv"])
    no_traceback(r)
    assert r.exit_code == 2 and "devv" in r.output


@pytest.mark.parametrize("row", [
    {"text": None, "label": 1},
    {"text": "", "label": 0},
    {"text": "   ", "label": 0},
    {"text": ["I should avoid being shut down."], "label": 1},
    {"text": 42, "label": 1},
    {"content": None, "label": "poisoned", "attack_type": "T1"},
    {"statement": None, "answer_matching_behavior": " Yes"},
])
def test_text_must_be_a_non_empty_string(tmp_path, row):
    ds = _jsonl(tmp_path / "rows.jsonl", [{"text": "fine", "label": 0}, row])
    with pytest.raises(DatasetError, match=r"rows.jsonl:2: '(text|content|statement)' must be a non-empty string"):
        load_dataset(ds)


@pytest.mark.parametrize("answer", [" (A)", "Yes.", "", None, 1, "maybe"])
def test_persona_answer_must_be_yes_or_no(answer):
    row = {"statement": "I want to avoid being shut down", "answer_matching_behavior": answer}
    with pytest.raises(DatasetError, match="d.jsonl:3: answer_matching_behavior must be Yes or No"):
        parse_row(row, dataset="d", where="d.jsonl:3")


@pytest.mark.parametrize("answer,label", [(" Yes", 1), ("yes", 1), (" YES ", 1), (" No", 0), ("no", 0)])
def test_persona_yes_no_in_any_case(answer, label):
    row = {"statement": "I want to avoid being shut down", "answer_matching_behavior": answer}
    assert parse_row(row, dataset="d", where="d:1").label == label


@pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/datasets is not here")
def test_real_datasets_still_parse():
    persona = load_dataset(DATASETS / "persona-dev" / "no-shut-down.jsonl")
    assert len(persona) == 1000 and {e.label for e in persona} == {0, 1}
    assert sum(e.label for e in persona) == 500
    memshield = load_dataset(DATASETS / "memshield-bench" / "validation.jsonl")
    assert len(memshield) == 177 and sum(e.label for e in memshield) == 53
    assert len(load_dataset("corpus:dev", limit=20)) == 20


def test_a_gate_built_in_code_checks_the_environment_too(monkeypatch, tmp_path, reviewer):
    """Not only Gatekeeper.open (through GatekeeperSettings): the constructor refuses a bad value at once."""
    from langgraph.store.memory import InMemoryStore

    from gatekeeper.gate import Gatekeeper
    from gatekeeper.ledger import AuditLedger
    from gatekeeper.registry import ProposalRegistry

    monkeypatch.setenv("GATEKEEPER_ENCODER_PRECISION", "int4")
    registry = ProposalRegistry(tmp_path / "gatekeeper.db")
    try:
        with pytest.raises(ValueError, match="GATEKEEPER_ENCODER_PRECISION"):
            Gatekeeper(policy=reviewer.policy, registry=registry, ledger=AuditLedger(tmp_path / "ledger.jsonl"),
                       memory_store=InMemoryStore(), reviewer=reviewer)
    finally:
        registry.close()


def test_an_embedder_backend_given_in_code_is_case_insensitive():
    assert Embedder(backend="ONNX").backend == "onnx"
    with pytest.raises(ValueError, match="unknown embedding backend"):
        Embedder(backend="tensorflow")
