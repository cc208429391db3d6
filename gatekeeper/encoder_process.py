"""The int8 classifier encoder in a child process, for batches.

A batch of writes is reviewed by one Python thread: normalising, the rules and the lexical screen are pure
Python and hold the GIL. The encoder runs of the writes the screen cannot settle were overlapped with that
work on a helper thread, but a helper thread needs the GIL between runs and gets it rarely while the
reviewer is busy (measured: 450 texts/s alone, 78/s beside a busy reviewer), so most of the encoder's
work still ran after the cheap layers. An :class:`EncoderProcess` runs the same encoder (same ONNX graph,
same session options, one text per run) in a child process of its own, which needs no GIL of ours: the
reviewer hands each text over through a socket and goes on, and the child's runs overlap the cheap layers
for real.

* **Same vectors.** The child loads the same graph with the same options and runs each text alone; before
  it is used its vector of a probe text must equal the in-process encoder's bit for bit, or the child is
  not used at all (the batch == each write alone guarantee stays exact).
* **Only for batches, never waited for.** The child is started by the first batch that could use it and
  loads in the background (about a second); until it reports ready, batches run on threads as before.
  Single writes never use it (a round trip would only add latency).
* **Bounded.** At most :data:`WINDOW` texts are with the child at a time; the rest wait in the caller,
  which runs texts itself (from the end) when it has nothing else to do, so both cores finish together.
  Nothing is buffered without bound, and neither side can block the other.
* **Finishes in process, recovers.** If the child dies or stops answering, the caller encodes the batch's texts
  the child had not answered itself (the same vectors, bit for bit: the probe checked them), so the batch is
  decided as it would have been; before, every write waiting for the encoder was quarantined (fail closed) and
  an operator had to retry them. The child is restarted by a later batch after :data:`RESTART_AFTER_S`, and
  batches run on threads meanwhile. A text the child cannot encode fails its batch closed (the in-process
  encoder refuses it too); the child goes on serving the next batch.
* **One user at a time.** A second thread reviewing a batch while the child is busy runs on threads.
  After a ``fork`` (a pre-forking server), the child belongs to the parent: the forked process starts its own.

``GATEKEEPER_ENCODER_PROCESS``: ``auto`` (default: a child process on POSIX machines with at least two
CPUs) or ``off`` (helper threads only).

The child is ``python -m gatekeeper.encoder_process FD``: a plain subprocess (not ``multiprocessing``, whose
spawn start method would re-import the host application's main module in the child).
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gatekeeper.log_setup import get_logger

if TYPE_CHECKING:
    from gatekeeper.embeddings import OnnxSentenceEncoder

log = get_logger("gatekeeper.encoder_process")

MODE_ENV = "GATEKEEPER_ENCODER_PROCESS"
MODES = ("auto", "off")
#: texts with the child at once: enough to keep it busy between two hand-overs, few enough that the caller
#: can take the rest itself at the end of a batch
WINDOW = 4
#: the child must report ready within this time, and answer each run within this time (a run takes a few
#: milliseconds; past it the caller encodes the rest of the batch itself)
READY_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 10.0
#: a failed child is started again by a batch at least this long after the failure
RESTART_AFTER_S = 30.0
PROBE = "Probe text: the gatekeeper's encoder process checks that its vectors match the in-process encoder."


class EncoderProcessError(RuntimeError):
    """The encoder's child process failed (died, stopped answering or could not run a text)."""


class EncoderTextError(EncoderProcessError):
    """The child could not encode one text (the child itself goes on serving)."""


def process_mode() -> str:
    """``$GATEKEEPER_ENCODER_PROCESS`` (``auto`` when unset); an unknown value is a clear error."""
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV}={os.environ.get(MODE_ENV)!r}: expected one of {', '.join(MODES)}")
    return mode


def process_supported() -> bool:
    """A child process pays off only beside a second CPU, the socket hand-over is POSIX, and it needs a
    Python interpreter to start (an embedding host without one runs batches on threads)."""
    return os.name == "posix" and (os.cpu_count() or 1) >= 2 and bool(_python())


def _python() -> str:
    """The interpreter for the child: the one ``multiprocessing`` would start, so a host that embeds Python
    (``sys.executable`` is then the host's own binary) and points ``multiprocessing.set_executable`` at an
    interpreter is served the same way."""
    from multiprocessing import spawn

    exe = spawn.get_executable()
    return os.fsdecode(exe) if exe else ""


def _child_env() -> dict[str, str]:
    """The host's environment, with this gatekeeper package importable (a host that put it on ``sys.path``
    itself) and no thread pools to start beside the one encoder thread."""
    import gatekeeper

    root = str(Path(gatekeeper.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "PYTHONPATH": root + (os.pathsep + path if path else "")}


class EncoderProcess:
    """A child process running ``encoder``'s graph; :meth:`runs` hands out its use, one batch at a time."""

    def __init__(self, encoder: "OnnxSentenceEncoder"):
        self._encoder = encoder
        self._spec = {
            "model_dir": str(encoder.model_dir),
            "onnx_path": str(encoder.onnx_path) if encoder.onnx_path is not None else None,
            "max_seq_length": encoder.max_seq_length,
            "probe": PROBE,
        }
        self._lock = threading.Lock()  # state changes
        self._busy = threading.Lock()  # held by the ProcessRuns using the child
        self._state = "new"  # new | starting | ready | failed | closed
        self._owner_pid = os.getpid()
        # [process, connection, owner pid]: a list the finalizer can hold without holding this object
        self._handles: list = [None, None, self._owner_pid]
        self._batches = 0  # numbers each batch's messages, so a late answer to an aborted batch is dropped
        self._started_at = 0.0
        self._failed_at = 0.0
        self.starts = 0
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def state(self) -> str:
        return self._state

    def owned_here(self) -> bool:
        """False in a process forked after this object was made (the child is the parent's)."""
        return os.getpid() == self._owner_pid

    @property
    def _proc(self) -> subprocess.Popen | None:
        return self._handles[0]

    @property
    def _conn(self) -> Connection | None:
        return self._handles[1]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def runs(self) -> "ProcessRuns | None":
        """The child for one batch, or None (not ready yet, busy with another batch, failed): then the
        caller runs the batch on threads. Starts the child on first use."""
        if not self.owned_here() or not self._busy.acquire(blocking=False):
            return None
        try:
            with self._lock:
                ready = self._poll_state()
            if ready:
                return ProcessRuns(self)
        except BaseException:
            self._busy.release()
            raise
        self._busy.release()
        return None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Start the child if needed and wait until it is ready (tests and benchmarks); False if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._poll_state():
                    return True
                if self._state in ("failed", "closed"):
                    return False
                conn = self._conn
            if conn is not None:
                try:
                    conn.poll(0.05)
                except (OSError, EOFError):
                    pass
            else:
                time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop the child (idempotent). The encoder goes on without it."""
        with self._lock:
            self._stop("closed")
        if self._finalizer is not None:
            self._finalizer.detach()

    def _poll_state(self) -> bool:  # with self._lock held; True when ready for use
        if self._state == "ready":
            if self._proc is not None and self._proc.poll() is None:
                return True
            self._fail(f"encoder process exited with code {self._proc.returncode if self._proc else None}")
            return False
        if self._state == "closed":
            return False
        if self._state == "failed":
            if time.monotonic() - self._failed_at < RESTART_AFTER_S:
                return False
            self._state = "new"
        if self._state == "new":
            self._start()
            return False
        # starting: has the ready message come?
        assert self._conn is not None and self._proc is not None
        try:
            if not self._conn.poll(0):
                if self._proc.poll() is not None:
                    self._fail(f"encoder process exited with code {self._proc.returncode} while loading")
                elif time.monotonic() - self._started_at > READY_TIMEOUT_S:
                    self._fail(f"encoder process not ready after {READY_TIMEOUT_S:.0f} s")
                return False
            msg = self._conn.recv()
        except (OSError, EOFError) as exc:
            self._fail(f"encoder process connection lost while loading: {exc}")
            return False
        if msg[0] != "ready":
            self._fail(f"encoder process could not load the model: {msg[3]}")
            return False
        theirs = np.frombuffer(msg[3], dtype=np.float32)
        ours = self._encoder._run_one(PROBE)
        if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
            # a child whose vectors differ would make a batch's decisions differ from single writes'
            self._stop("closed")
            log.warning("encoder_process.disabled", reason="probe vector differs from the in-process encoder")
            return False
        self._state = "ready"
        log.debug("encoder_process.ready", pid=self._proc.pid, load_s=round(time.monotonic() - self._started_at, 2))
        return True

    def _start(self) -> None:  # with self._lock held
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [_python(), "-m", "gatekeeper.encoder_process", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                close_fds=True, env=_child_env(),
            )
        except OSError as exc:
            parent.close()
            self._state, self._failed_at = "failed", time.monotonic()
            log.warning("encoder_process.failed", reason=f"could not start: {exc}")
            return
        finally:
            child.close()
        # reaped the moment it exits: a child that died (killed, out of memory) stayed a zombie until the next
        # batch looked at it, for ever when none came
        threading.Thread(target=_reap, args=(proc,), name="gatekeeper-encoder-reaper", daemon=True).start()
        # a child that stops reading must not block the parent in a send: a run's text can be 64,000
        # characters, so a few of them fill the socket's buffer, and a send past RUN_TIMEOUT_S fails
        # (an OSError, the batch fails closed) instead of waiting for ever; the same for a torn answer
        limit = struct.pack("ll", int(RUN_TIMEOUT_S), int((RUN_TIMEOUT_S % 1) * 1_000_000))
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        self._handles[:2] = [proc, Connection(parent.detach())]
        self._state, self._started_at = "starting", time.monotonic()
        self.starts += 1
        if self._finalizer is None:
            # the child goes when its encoder does (a policy reload swaps classifiers), and at exit
            self._finalizer = weakref.finalize(self, _terminate, self._handles)
        try:
            self._conn.send(self._spec)
        except OSError as exc:
            self._fail(f"could not reach the encoder process: {exc}")
            return
        log.debug("encoder_process.starting", pid=proc.pid)

    def _fail(self, reason: str) -> None:  # with self._lock held
        self._stop("failed")
        self._failed_at = time.monotonic()
        log.warning("encoder_process.failed", reason=reason, restart_after_s=RESTART_AFTER_S)

    def _stop(self, state: str) -> None:  # with self._lock held
        _terminate(self._handles)
        self._state = state

    def _next_batch(self) -> int:
        self._batches += 1
        return self._batches

    def _failed_during_use(self, reason: str) -> None:
        with self._lock:
            if self._state == "ready":
                self._fail(reason)


def _reap(proc: subprocess.Popen) -> None:
    """Wait for the child to exit (``Popen.poll`` then sees its exit code)."""
    try:
        proc.wait()
    except Exception:  # noqa: BLE001 - a reaper has nobody to raise to
        pass


def _terminate(handles: list) -> None:
    proc, conn, owner = handles
    if os.getpid() != owner:
        return  # a forked copy of the owner: the child and its socket are the parent's
    handles[:2] = [None, None]
    if conn is not None:
        try:
            conn.send(("stop",))
        except (OSError, EOFError, ValueError):
            pass
        conn.close()
    if proc is not None and proc.poll() is None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ProcessRuns:
    """:class:`~gatekeeper.embeddings.SideBySideRuns`' interface, run by the child process (and, at the
    end, by the caller too). Holds the child until ``finish`` or ``cancel``."""

    def __init__(self, owner: EncoderProcess):
        self._owner = owner
        self._conn = owner._conn
        self._enc = owner._encoder
        self._batch = owner._next_batch()
        self._texts: list[str] = []
        self._out: list[np.ndarray | None] = []
        self._pending: deque[int] = deque()
        self._inflight: set[int] = set()
        self._released = False
        #: the child failed during this batch: the caller encodes the rest
        self._lost = False

    def put(self, text: str) -> int:
        """Queue ``text``; its index in ``finish()``'s result."""
        if self._released:
            raise RuntimeError("runs already finished")
        i = len(self._texts)
        self._texts.append(text)
        self._out.append(None)
        self._pending.append(i)
        if not self._lost:
            self._surviving(self._pump)
        return i

    def finish(self) -> np.ndarray:
        """Every text's vector, in the order they were put; the caller runs texts from the end of the
        queue while the child runs the front."""
        if self._released:
            raise RuntimeError("runs already finished")
        try:
            while self._pending or self._inflight:
                if not self._lost:
                    self._surviving(self._pump)
                if self._pending and (self._lost or len(self._pending) > 1 or not self._inflight):
                    i = self._pending.pop()
                    self._out[i] = self._enc._run_one(self._texts[i])
                elif self._inflight:
                    self._surviving(self._wait)
        finally:
            self._release()
        if not self._out:
            return np.zeros((0, self._enc.dimension), dtype=np.float32)
        return np.stack(self._out)  # type: ignore[arg-type]

    def cancel(self) -> None:
        """Stop handing texts over (the child's answers to the few it has are dropped by the next batch)."""
        self._pending.clear()
        self._release()

    # ------------------------------------------------------------------ internals
    def _surviving(self, step) -> None:
        """``_guarded(step)``; when the child fails (dies, stops answering, the connection breaks), the texts it
        had not answered go back to the queue for the caller, and the batch goes on without it. A text the child
        could not encode (``EncoderTextError``) still fails the batch."""
        try:
            self._guarded(step)
        except EncoderTextError:
            raise  # (an EncoderProcessError too): the text, not the child
        except EncoderProcessError as exc:
            self._lost = True
            queued = set(self._pending)
            self._pending.extend(i for i, v in enumerate(self._out) if v is None and i not in queued)
            log.warning("encoder_process.batch_finished_in_process", reason=str(exc),
                        texts=len(self._pending))

    def _guarded(self, step) -> None:
        try:
            step()
        except EncoderTextError:
            self._inflight.clear()  # the batch fails closed; the child's late answers to it are dropped
            raise
        except EncoderProcessError as exc:
            self._owner._failed_during_use(str(exc))
            self._inflight.clear()
            raise
        except (OSError, EOFError, ValueError) as exc:
            reason = f"encoder process connection lost: {type(exc).__name__}: {exc}"
            self._owner._failed_during_use(reason)
            self._inflight.clear()
            raise EncoderProcessError(reason) from exc

    def _pump(self) -> None:
        assert self._conn is not None
        while self._inflight and self._conn.poll(0):
            self._receive()
        while self._pending and len(self._inflight) < WINDOW:
            i = self._pending.popleft()
            self._inflight.add(i)
            self._conn.send(("run", self._batch, i, self._texts[i]))

    def _receive(self) -> None:
        assert self._conn is not None
        kind, batch, i, payload = self._conn.recv()
        if batch != self._batch:
            return  # an answer for an aborted batch
        if kind == "error":
            raise EncoderTextError(f"encoder process could not encode a text: {payload}")
        self._out[i] = np.frombuffer(payload, dtype=np.float32).copy()
        self._inflight.discard(i)

    def _wait(self) -> None:
        """Block until the child answers (checking that it lives)."""
        assert self._conn is not None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not self._conn.poll(0.05):
            proc = self._owner._proc
            if proc is None or proc.poll() is not None:
                raise EncoderProcessError(
                    f"encoder process exited with code {proc.returncode if proc else None} during a batch")
            if time.monotonic() > deadline:
                raise EncoderProcessError(f"encoder process did not answer within {RUN_TIMEOUT_S:.0f} s")
        self._receive()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._owner._busy.release()


# ---------------------------------------------------------------------- the child
#: what reading from or writing to the socket raises once the parent has gone (closed or exited)
_PARENT_GONE = (EOFError, BrokenPipeError, ConnectionResetError)


def _serve(fd: int) -> int:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    conn = Connection(fd)
    try:
        return _serve_on(conn)
    except _PARENT_GONE:  # e.g. a short command exited before the child was ready: nothing to report to
        return 0


def _serve_on(conn: Connection) -> int:
    spec = conn.recv()
    try:
        from gatekeeper.embeddings import OnnxSentenceEncoder

        onnx_path = Path(spec["onnx_path"]) if spec["onnx_path"] else None
        enc = OnnxSentenceEncoder(Path(spec["model_dir"]), max_seq_length=spec["max_seq_length"],
                                  onnx_path=onnx_path, one_text_per_run=True)
        probe = enc._run_one(spec["probe"]).tobytes()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which runs on threads instead
        conn.send(("error", 0, -1, f"{type(exc).__name__}: {exc}"))
        return 1
    conn.send(("ready", 0, os.getpid(), probe))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return 0
        _, batch, i, text = msg
        try:
            vec = enc._run_one(text)
        except Exception as exc:  # noqa: BLE001 - the parent fails the batch closed
            conn.send(("error", batch, i, f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("done", batch, i, np.ascontiguousarray(vec, dtype=np.float32).tobytes()))


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1])))
