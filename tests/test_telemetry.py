"""Telemetry is off and nothing reaches the network during a full review and commit."""

from __future__ import annotations

import socket

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
