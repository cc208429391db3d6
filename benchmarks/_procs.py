"""Process plumbing shared by the reliability benchmarks (durability, concurrency).

Loading torch + MiniLM costs ~5-10 s per interpreter, so the harnesses load the
model once in a *zygote* (this process) and fork the worker / verifier processes
from it. A forked child is a separate process in every respect that matters here:
it opens the stores itself (the zygote never opens chroma, SQLite or the ledger
before forking), it is killed with a real SIGKILL, and the next child sees only
what reached the disk. ``--spawn`` in the benchmarks runs workers as fresh
interpreters instead, to show the results do not depend on forking.

Torch's OpenMP pool does not survive ``fork()`` (a child that runs the model after
the parent did hangs), so the zygote pins torch to one thread *before* the first
inference; with one thread no pool exists.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_ZYGOTE: dict[str, Any] = {}


def zygote(policy_dir: str | Path | None = None):
    """Load policy, model, classifier and exemplars once; return (policy, reviewer)."""
    key = str(policy_dir)
    if key in _ZYGOTE:
        return _ZYGOTE[key]
    import torch

    torch.set_num_threads(1)  # before any inference: forked children must not inherit an OpenMP pool
    from gatekeeper.policy import load_policy
    from gatekeeper.reviewer import Reviewer

    policy = load_policy(policy_dir or REPO / "policies")
    reviewer = Reviewer(policy)
    reviewer.warm_up()
    reviewer.embedder.encode(["warm up the encoder before forking"])
    _ZYGOTE[key] = (policy, reviewer)
    return policy, reviewer


def fork_call(fn: Callable[..., Any], *args: Any, env: dict[str, str] | None = None,
              kill_after: float | None = None, timeout: float = 300.0) -> dict[str, Any]:
    """Run ``fn(*args)`` in a forked child.

    Returns ``{"status": "exited"|"killed"|"crashed", "signal": n, "result": ...,
    "error": traceback, "elapsed": s}``. ``kill_after``: SIGKILL the child after that
    many seconds (a random crash); a child that kills itself reports its signal.
    """
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            for k, v in (env or {}).items():
                os.environ[k] = v
            payload = {"ok": True, "result": fn(*args)}
        except BaseException:  # noqa: BLE001 - report everything to the parent
            payload = {"ok": False, "error": traceback.format_exc()}
            code = 1
        data = json.dumps(payload, default=str).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
        os.close(w)
        os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    killed_by_us = False
    deadline = t0 + (kill_after if kill_after is not None else timeout)
    import select

    status = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 and not killed_by_us:
            os.kill(pid, signal.SIGKILL)
            killed_by_us = True
            left = 30.0
        ready, _, _ = select.select([r], [], [], max(0.0, min(left, 0.05)))
        if ready:
            buf = os.read(r, 1 << 16)
            if not buf:  # EOF: child exited or died
                break
            chunks.append(buf)
            continue
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            # drain what the child wrote before it exited
            while True:
                buf = os.read(r, 1 << 16)
                if not buf:
                    break
                chunks.append(buf)
            break
    os.close(r)
    if status is None:
        _, status = os.waitpid(pid, 0)
    out: dict[str, Any] = {"elapsed": round(time.monotonic() - t0, 3), "signal": None}
    if os.WIFSIGNALED(status):
        out["status"] = "killed"
        out["signal"] = os.WTERMSIG(status)
        out["killed_by"] = "harness" if killed_by_us else "self"
    else:
        out["status"] = "exited" if os.WEXITSTATUS(status) == 0 else "crashed"
    if chunks:
        try:
            payload = json.loads(b"".join(chunks))
            out["result"] = payload.get("result")
            out["error"] = payload.get("error")
        except ValueError:
            out["error"] = "unreadable result from child"
    return out


def fork_many(calls: list[tuple[Callable[..., Any], tuple]], *, timeout: float = 600.0) -> list[dict[str, Any]]:
    """Run several ``fn(*args)`` at once, each in its own forked child; results in order.

    Children report through a temporary file each (they may produce more than a pipe holds)."""
    import tempfile

    tmp = tempfile.mkdtemp(prefix="gk-fork-")
    pids = []
    t0 = time.monotonic()
    for n, (fn, args) in enumerate(calls):
        out_path = os.path.join(tmp, f"{n}.json")
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                payload = {"ok": True, "result": fn(*args)}
            except BaseException:  # noqa: BLE001
                payload = {"ok": False, "error": traceback.format_exc()}
                code = 1
            with open(out_path, "w") as fh:
                json.dump(payload, fh, default=str)
            os._exit(code)
        pids.append((pid, out_path))
    results = []
    for pid, out_path in pids:
        left = max(1.0, timeout - (time.monotonic() - t0))
        end = time.monotonic() + left
        status = None
        while time.monotonic() < end:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
            time.sleep(0.05)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        res: dict[str, Any] = {"status": "exited" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                               else "failed"}
        try:
            with open(out_path) as fh:
                payload = json.load(fh)
            res["result"], res["error"] = payload.get("result"), payload.get("error")
        except (OSError, ValueError):
            res["error"] = "no result (killed or crashed)"
        results.append(res)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return results
