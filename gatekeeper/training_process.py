"""A classifier training in a child process, for a policy reload in a serving process.

An exemplar edit retrains the classifier (minutes, torch). Run in a thread of the serving process, the
training competes with the writes for the CPU and leaves torch and its memory (a gigabyte or more) in the
process after it is done; nice is per thread on Linux, and torch's worker threads, once started by an
earlier training in the main thread, keep that thread's priority. A child process isolates all of it:
the whole process runs at the training's nice value, its memory goes back when it exits, and the parent
only loads the finished artifact from the cache (the ONNX encoder, seconds).

The child gets what it needs to make the same artifact the parent's classifier factory would make: the
policy directory (it loads it again and checks the policy hash), the factory by import name, the base
model directory and the inference backend. It reports progress as JSON lines on stdout and ends with
``{"ok": true}`` or ``{"error": "..."}``. Closing the gate stops the child; a child whose parent died
stops at its next progress report, which has nowhere to go (seen: within seconds of a ``kill -9`` of the
parent). Only a factory that can be imported by name (a module-level
function) runs in a child; others (closures, bound methods) train in the caller's thread as before
(:func:`importable_name`).

    python -m gatekeeper.training_process < job.json
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

#: exit status of a child that found the policy directory changed since the reload (another edit): the
#: caller trains the policy it holds in its own thread instead
POLICY_CHANGED = 3


class TrainingJob(BaseModel):
    """What a child process needs to make a policy's classifier artifact."""

    model_config = ConfigDict(extra="forbid")

    policy_dir: str
    policy_hash: str
    #: ``module:qualname`` of the classifier factory, ``factory(policy, embedder, progress)``
    factory: str
    #: directories put first on the child's import path (the factory's module may live outside the package)
    import_paths: list[str] = []
    model_dir: str
    backend: str
    nice: int = 0


class TrainingProcessError(RuntimeError):
    """The child process could not make the artifact (its error, or how it ended)."""


class PolicyChanged(TrainingProcessError):
    """The policy directory no longer holds the policy the job was made for."""


class TrainingCancelled(Exception):
    """The caller cancelled the training (the child was stopped)."""


def importable_name(func: Callable[..., Any]) -> tuple[str, str | None] | None:
    """``("module:qualname", directory to import it from or None)`` when ``func`` can be imported by name
    in another process; None for closures, lambdas, methods and functions of ``__main__``."""
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or module == "__main__" or not qualname or "<" in qualname or "." in qualname:
        return None
    mod = sys.modules.get(module)
    if mod is None or getattr(mod, qualname, None) is not func:
        return None
    path = None
    if "." not in module and getattr(mod, "__file__", None):
        path = str(Path(mod.__file__).resolve().parent)  # a top-level module outside the package (tests)
    return f"{module}:{qualname}", path


def run_in_child(job: TrainingJob, *, progress: Callable[[str, int, int], None] | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
    """Run ``job`` in ``python -m gatekeeper.training_process`` and wait for it.

    ``progress`` gets the child's (stage, done, total) reports. When ``cancelled()`` turns true (checked at
    every report and twice a second) the child is stopped and :class:`TrainingCancelled` raised. Raises
    :class:`PolicyChanged` or :class:`TrainingProcessError` when the child does not finish the artifact."""
    # the child imports the same gatekeeper as this process, installed or not
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "gatekeeper.training_process"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env)
    stderr: deque[str] = deque(maxlen=200)  # its log, for the error message
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    stop = threading.Event()

    def watch() -> None:  # stops the child when the caller cancels, even while it reports nothing
        while not stop.wait(0.5):
            if cancelled():
                _stop(proc)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result: dict[str, Any] = {}
    try:
        proc.stdin.write(job.model_dump_json())  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        for line in proc.stdout:  # type: ignore[union-attr]
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a library printed something; reports are JSON objects
            if not isinstance(msg, dict):
                continue
            if "stage" in msg and progress is not None:
                progress(str(msg["stage"]), int(msg.get("done", 0)), int(msg.get("total", 0)))
            elif "ok" in msg or "error" in msg:
                result = msg
            if cancelled():
                _stop(proc)
                break
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        stop.set()
        watcher.join()
        drain.join(5)
    if cancelled():
        raise TrainingCancelled("the training was cancelled")
    if code == POLICY_CHANGED:
        raise PolicyChanged(result.get("error") or "the policy directory changed")
    if code != 0 or not result.get("ok"):
        tail = "".join(stderr)[-2000:].strip()
        raise TrainingProcessError(result.get("error") or f"the training process ended with status {code}"
                                   + (f": {tail}" if tail else ""))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the child and anything it started (own session)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _report(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    try:
        job = TrainingJob.model_validate_json(sys.stdin.read())
    except ValueError as exc:
        _report({"error": f"bad training job: {exc}"})
        return 2
    if job.nice > 0:
        try:
            os.nice(job.nice)  # the whole process: every thread torch and ONNX Runtime start inherits it
        except OSError:
            pass  # runs at the caller's priority
    for p in reversed(job.import_paths):
        sys.path.insert(0, p)
    try:
        from gatekeeper.embeddings import Embedder
        from gatekeeper.policy import load_policy

        policy = load_policy(job.policy_dir)
        if policy.hash != job.policy_hash:
            _report({"error": f"the policy in {job.policy_dir} changed since the reload "
                              f"(hash {policy.hash[:12]}, expected {job.policy_hash[:12]})"})
            return POLICY_CHANGED
        module, _, qualname = job.factory.partition(":")
        factory = getattr(importlib.import_module(module), qualname)
        embedder = Embedder(model_dir=job.model_dir, backend=job.backend)
        clf = factory(policy, embedder, lambda stage, done, total: _report(
            {"stage": stage, "done": done, "total": total}))
        _report({"ok": True, "inputs_hash": clf.meta.get("inputs_hash")})
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which records it
        _report({"error": f"{type(exc).__name__}: {exc}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
