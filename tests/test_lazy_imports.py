"""Deferring rfc3987_syntax keeps jsonschema's IRI format checks working (in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

CODE = r"""
import sys
import gatekeeper.rules  # imports guardrails, hence jsonschema
mod = sys.modules.get("rfc3987_syntax")
deferred = mod is not None and getattr(mod, "__gatekeeper_deferred__", False)
import jsonschema
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
ok = checker.conforms("https://example.org/caf\u00e9", "iri")
bad = checker.conforms("not an iri at all", "iri")
real = sys.modules["rfc3987_syntax"]
print(deferred, ok, bad, getattr(real, "__gatekeeper_deferred__", False))
"""


def test_iri_checks_still_work_after_the_deferred_import():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    deferred, ok, bad, still_stand_in = out.stdout.split()
    assert deferred == "True"  # not loaded at import
    assert (ok, bad) == ("True", "False")  # the real grammar ran on first use
    assert still_stand_in == "False"  # and replaced the stand-in
