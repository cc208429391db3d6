"""Telemetry is off and nothing reaches the network during a full review and commit."""

from __future__ import annotations

import socket

import pytest

from gatekeeper.gated_store import GatedStore
from gatekeeper.telemetry import guardrails_metrics_disabled


def test_guardrails_rc_disables_metrics():
    import gatekeeper  # noqa: F401 - importing the package writes the setting

    assert guardrails_metrics_disabled()
    from guardrails.settings import settings

    assert settings.rc.enable_metrics is False


def test_chroma_client_has_telemetry_off(gate):
    assert gate.memory_store.client.get_settings().anonymized_telemetry is False


def test_no_outbound_connections_during_review(gate, monkeypatch):
    attempts = []
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            attempts.append(address)
            raise OSError(f"blocked outbound connection to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    store = GatedStore(gate=gate, agent_id="agent-1")
    store.put(("memories", "a"), "k", {"content": "TPS reports go in ./Reports/TPS"})
    store.put(("memories", "a"), "j", {"content": "I should avoid being shut down."})
    assert store.search(("memories", "a"), query="reports")
    assert attempts == []


@pytest.mark.parametrize("given", [None, ""])
def test_onnxruntime_writes_no_usage_events_and_no_device_id(tmp_path, given):
    """onnxruntime, the default encoder backend, kept its telemetry on: every process that encoded text wrote a
    device id and a queue of usage events under ~/.cache/Microsoft and looked up Microsoft's collector from
    native code (which no Python socket check sees). ``ORT_DISABLE_TELEMETRY`` is set before it is imported,
    also when the environment has it empty (a compose file listing it with no value: it was kept empty)."""
    import os
    import subprocess
    import sys

    from gatekeeper.settings import cache_root

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    if given is not None:
        env["ORT_DISABLE_TELEMETRY"] = given
    env.update(HOME=str(home), GATEKEEPER_CACHE=str(cache_root()))
    code = ("from gatekeeper.embeddings import Embedder\n"
            "e = Embedder()\n"
            "assert e.backend == 'onnx', e.backend\n"
            "print(e.model.encode(['The staging cluster shuts down at 01:00.']).shape)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert not [p for p in written if "Microsoft" in p or "onnxruntime" in p], written
