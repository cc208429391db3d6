"""gatekeeper: a System-2 reviewer on the write path of LLM agent memory."""

from gatekeeper.telemetry import disable_telemetry as _disable_telemetry

_disable_telemetry()

__version__ = "0.1.0"
