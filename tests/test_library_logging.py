"""As a library, gatekeeper logs through the host's logging and leaves the host's logging configuration alone.

A host that uses only the standard library's ``logging`` (structlog never configured) gets gatekeeper's events
from the standard library loggers of the modules' names, at their levels: its level and handlers decide, and
nothing is printed on its stdout (an MCP stdio server's protocol, a tool's JSON output). A host that configured
structlog (or the CLI's ``configure_logging``, or a test's ``capture_logs``) gets them through structlog. The
int8 export drops ONNX Runtime's pre-processing hint without raising the root logger's level."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from gatekeeper.log_setup import get_logger

REPO = Path(__file__).resolve().parent.parent

HOST = textwrap.dedent("""
    import json, logging, os, sys, tempfile
    from pathlib import Path
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="HOST %(levelname)s %(name)s %(message)s")
    from langgraph.store.base import PutOp
    from gatekeeper.gate import Gatekeeper
    from gatekeeper.gated_store import GatedStore, write_context
    from gatekeeper.settings import GatekeeperSettings
    from gatekeeper.web.auth import load_or_create_secret

    tmp = Path(tempfile.mkdtemp(prefix="gk-host-"))

    def write_batch(data_dir):
        # a batch of texts starts the encoder child: a debug event (encoder_process.starting)
        gate = Gatekeeper.open(GatekeeperSettings(data_dir=data_dir, policy_dir=sys.argv[1]))
        try:
            with write_context(source="tool", tool_name="search"):
                GatedStore(gate=gate, agent_id="agent-1").batch([
                    PutOp(("memories", "alice"), f"k{i}", {"content": f"Tool result {i}: the build cache lives in "
                                                                     f"/var/cache/b{i} and expires weekly."})
                    for i in range(12)])
        finally:
            gate.close()

    write_batch(tmp / "a")
    # a web secret others can read is fixed: a warning event (web.secret_permissions_fixed)
    secret = tmp / "web" / "web_secret"
    secret.parent.mkdir()
    secret.write_bytes(b"s" * 40)
    os.chmod(secret, 0o644)
    load_or_create_secret(secret.parent)
    sys.stderr.write("--- the host turns gatekeeper's debug events on ---\\n")
    logging.getLogger("gatekeeper").setLevel(logging.DEBUG)
    write_batch(tmp / "b")
    print(json.dumps({"result": "ok"}))  # the host's own protocol line
""")


def test_a_host_with_only_standard_logging_gets_the_events_through_it_and_nothing_on_stdout():
    env = {**os.environ, "GATEKEEPER_ENCODER_PROCESS": "auto", "GATEKEEPER_POLICY_WATCH_S": "0"}
    env.pop("GATEKEEPER_LOG_LEVEL", None)
    r = subprocess.run([sys.executable, "-c", HOST, str(REPO / "policies")], capture_output=True, text=True,
                       timeout=300, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == '{"result": "ok"}\n'  # only the host's own output: no gatekeeper event on stdout
    before, _, after = r.stderr.partition("--- the host turns gatekeeper's debug events on ---\n")
    assert after, r.stderr[-3000:]
    # the warning went through the host's handler and format, its fields in the message
    assert "HOST WARNING gatekeeper.web web.secret_permissions_fixed path=" in before
    assert "mode=0o644" in before
    # the debug event stayed out at the host's level (WARNING), and came through its handler once asked for
    assert "encoder_process.starting" not in before
    assert "HOST DEBUG gatekeeper.encoder_process encoder_process.starting pid=" in after


@pytest.fixture
def structlog_unconfigured():
    """structlog as a host that never configured it sees it (another test may have configured it)."""
    saved, was_configured = structlog.get_config(), structlog.is_configured()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**saved)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def gatekeeper_records():
    std = logging.getLogger("gatekeeper.test_library_logging")
    handler, level = _Records(), std.level
    std.addHandler(handler)
    std.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        std.removeHandler(handler)
        std.setLevel(level)


def test_unconfigured_structlog_events_are_standard_library_records(structlog_unconfigured, gatekeeper_records,
                                                                    capsys):
    log = get_logger("gatekeeper.test_library_logging")
    log.debug("test.debug", n=1)
    log.warning("gate.store_failed", proposal_id="p-1", error_type="OSError", reason="disk full", ok=False)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("test.failed", path="/tmp/x")
    log.critical("test.critical")
    assert [(r.levelno, r.getMessage()) for r in gatekeeper_records] == [
        (logging.DEBUG, "test.debug n=1"),
        (logging.WARNING, 'gate.store_failed proposal_id=p-1 error_type=OSError reason="disk full" ok=false'),
        (logging.ERROR, "test.failed path=/tmp/x"),
        (logging.CRITICAL, "test.critical")]
    warning, failed = gatekeeper_records[1], gatekeeper_records[2]
    assert warning.gatekeeper_event == "gate.store_failed" and warning.gatekeeper_fields["reason"] == "disk full"
    assert warning.funcName == "test_unconfigured_structlog_events_are_standard_library_records"  # the caller
    assert failed.exc_info and failed.exc_info[0] is ValueError
    assert capsys.readouterr().out == ""


def test_unconfigured_events_follow_the_host_level(structlog_unconfigured, gatekeeper_records):
    logging.getLogger("gatekeeper.test_library_logging").setLevel(logging.WARNING)
    log = get_logger("gatekeeper.test_library_logging")
    log.info("test.info")
    log.error("test.error")
    assert [r.getMessage() for r in gatekeeper_records] == ["test.error"]


def test_configured_structlog_gets_the_events(gatekeeper_records):
    log = get_logger("gatekeeper.test_library_logging")
    with capture_logs() as logs:
        log.warning("gate.store_failed", proposal_id="p-1")
    assert logs == [{"event": "gate.store_failed", "proposal_id": "p-1", "log_level": "warning"}]
    assert gatekeeper_records == []


def _tiny_onnx(path: Path) -> Path:
    """A one-MatMul ONNX model: something for the real ``quantize_dynamic`` to quantize in a moment."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_int8_export_drops_only_the_pre_processing_hint_and_leaves_the_root_level(tmp_path, monkeypatch):
    """The export runs in the serving process: the host's warnings from any thread still come out meanwhile,
    and a level the host sets meanwhile stays; only ONNX Runtime's pre-processing hint is dropped."""
    import onnxruntime.quantization as ort_quant

    from gatekeeper import quantization
    from gatekeeper.embeddings import OnnxSentenceEncoder

    monkeypatch.setattr(OnnxSentenceEncoder, "export", staticmethod(lambda d, out: _tiny_onnx(Path(out))))
    real = ort_quant.quantize_dynamic
    during = {}

    def quantize_dynamic(*args, **kwargs):
        during["root_level"] = logging.getLogger().level
        logging.getLogger("host.payments").warning("host warning during the export")
        logging.getLogger().setLevel(logging.INFO)  # the host changes its level meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(ort_quant, "quantize_dynamic", quantize_dynamic)
    root = logging.getLogger()
    handler, level = _Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        out = quantization.quantize_encoder(tmp_path / "encoder", tmp_path / "model.onnx")
        after = root.level
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert out.exists() and not (tmp_path / "model.fp32.onnx").exists()
    messages = [r.getMessage() for r in handler.records]
    assert "host warning during the export" in messages
    assert not [m for m in messages if "pre-processing" in m], messages
    assert during["root_level"] == logging.WARNING and after == logging.INFO
    assert not [f for f in root.filters if isinstance(f, quantization._PreProcessingHint)]
