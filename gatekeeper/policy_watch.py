"""Put policy edits in force in a running gate: safety staff edit the files, the gate notices.

A :class:`PolicyWatcher` looks at the policy files the gate's policy was loaded from every ``interval_s``
seconds (a ``stat`` of each file, in a daemon thread: nothing on the write path). When their names, sizes,
modification or change times differ from what it last saw, it loads them:

* a policy that does not load (a YAML typo, a rule failing its own examples) is refused: the policy in force
  stays, the problem (file and line) is logged (``policy.watch_refused``) and ledgered
  (``policy.reload_refused``), once per edit, not on every look; ``refused`` holds it until a later edit loads
  (``refusals`` counts them), for the review app's ``/metrics`` (``gatekeeper_policy_reload_refused``);
* a policy with the same content hash as the one in force (a file touched, saved unchanged) changes nothing;
* files changed less than ``settle_s`` seconds ago (the newest change time of the files and of the policy
  directory itself, which a file added, removed or renamed changes) are not read yet: several files written one
  after another (a ``git pull``, a "save all", a rule moved to another file) can load as a consistent mix of old
  and new, and would be put in force until the next look. The next look after they have been quiet for
  ``settle_s`` reads them all;
* files that changed while they were read (a save in progress, a write slower than ``settle_s``) are
  neither put in force nor refused: the next look reads them again;
* any other is put in force with ``Gatekeeper.reload_policy`` (ledgered ``policy.reloaded``; an exemplar edit
  trains the policy's classifier in the background, as that method documents).

An edit that adds or removes a category needs its own classifier before it can take effect (the serving one
cannot name the new categories); when it is not cached yet, the watcher trains it first, the way a background
training does (``Gatekeeper.reload_policy``): in a child process at ``training_nice`` (torch never enters the
serving process, see ``gatekeeper.training_process``), or, where it cannot (a classifier factory that cannot be
imported by name, ``GATEKEEPER_TRAINING_PROCESS=off``, the files edited again before the child read them), in a
thread of its own whose priority is lowered by ``training_nice``. The old policy stays in force meanwhile;
``stop`` stops the training (the child is killed). A training that fails leaves the old policy in force and is
logged (``policy.watch_training_failed``) and ledgered (``classifier.training_failed``, with the edited
policy's hash and the error), once per edit, not on every look.

``Gatekeeper.open`` starts one when ``GatekeeperSettings.policy_watch_s`` is above 0 (``GATEKEEPER_POLICY_WATCH_S``,
default 5 seconds; ``settle_s`` is ``policy_settle_s``, ``GATEKEEPER_POLICY_SETTLE_S``, default 1 second);
``Gatekeeper.close`` stops it, after the look in progress (a closed gate's policy and ledger do not change any
more). The watcher holds its gate weakly: a gate that is dropped without ``close`` is still
collected, and its watcher then ends.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING


from gatekeeper.log_setup import get_logger
from gatekeeper.models import utcnow
from gatekeeper.policy import Policy, PolicyError, load_policy, policy_files
from gatekeeper.settings import DEFAULT_POLICY_SETTLE_S, MAX_POLICY_SETTLE_S
from gatekeeper.training_process import PolicyChanged, TrainingCancelled, run_in_child

if TYPE_CHECKING:
    from gatekeeper.gate import Gatekeeper

log = get_logger("gatekeeper.policy_watch")

#: (file, size, modification time, change time) of each policy file; None when the path cannot be read
Signature = tuple[tuple[str, int, int, int], ...] | None


def policy_signature(path: str | Path) -> Signature:
    """What changes when a policy file is edited, added, removed or replaced (cheap: one stat per file)."""
    try:
        stats = [(f, f.stat()) for f in policy_files(Path(path))]
    except (OSError, PolicyError):
        return None
    return tuple((str(f), st.st_size, st.st_mtime_ns, st.st_ctime_ns) for f, st in stats)


def last_change_ns(path: str | Path, signature: Signature) -> int:
    """The newest change time (ns since the epoch) of the files in ``signature`` and of ``path`` itself when it
    is a directory (a file added, removed or renamed in it changes the directory's times)."""
    times = [max(mtime, ctime) for _, _, mtime, ctime in signature or ()]
    try:
        st = os.stat(path)
        if Path(path).is_dir():
            times.append(max(st.st_mtime_ns, st.st_ctime_ns))
    except OSError:
        pass
    return max(times, default=0)


class _Stopped(Exception):
    """Raised from a classifier training's progress callback when the watcher is stopped."""


class PolicyWatcher:
    """Reload a gate's policy when its files change (see the module docstring)."""

    def __init__(self, gate: Gatekeeper, interval_s: float, settle_s: float = DEFAULT_POLICY_SETTLE_S):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be above 0, not {interval_s!r}")
        if not 0 <= settle_s <= MAX_POLICY_SETTLE_S:
            raise ValueError(f"settle_s must be from 0 to {MAX_POLICY_SETTLE_S:g} seconds, not {settle_s!r}")
        #: how long the files must have been quiet before a look reads them (see the module docstring)
        self.settle_s = float(settle_s)
        self._stop = stop = threading.Event()
        # weak, so that the thread does not keep a gate nobody closes alive; once it is collected, the thread ends
        self._gate = weakref.ref(gate, lambda _: stop.set())
        self.interval_s = float(interval_s)
        # nothing seen yet: the first look reads the files and compares their content with the policy in force,
        # so an edit made between the gate's load and this watcher's start is not missed
        self._seen: Signature = None
        #: the last edit refused, while the files stay so ({"path", "problems", "at"}: UTC time of the look); None
        #: once an edit loads (put in force, the same policy as in force, or one whose classifier failed to train)
        self.refused: dict[str, str] | None = None
        #: edits refused since the watcher started (each once, as ledgered)
        self.refusals = 0
        self._thread: threading.Thread | None = None

    @property
    def gate(self) -> Gatekeeper | None:
        """The gate watched; None once it was collected."""
        return self._gate()

    def start(self) -> PolicyWatcher:
        self._thread = threading.Thread(target=self._run, name="gatekeeper-policy-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop looking, and wait (at most ``timeout`` seconds) for the look in progress: a reload it began
        finishes (a classifier it trains for new categories stops at its next step, its child process is
        killed, and the old policy stays), so that nothing changes the gate after ``Gatekeeper.close``."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one failed look
                log.error("policy.watch_failed", error=f"{type(exc).__name__}: {exc}")

    def check(self) -> str | None:
        """Look once: ``"reloaded"``, ``"refused"``, ``"unchanged"`` (files changed, content did not),
        ``"training_failed"`` (the classifier of an edit adding or removing categories could not be made: the
        old policy stays), ``"settling"`` (files changed less than ``settle_s`` ago: read at a later look), or
        None when the files are as last seen (or the policy in force was not loaded from files, or the watcher
        was stopped)."""
        gate = self._gate()
        if gate is None or self._stop.is_set():
            return None
        path = gate.policy.source_path
        if not path:
            return None
        signature = policy_signature(path)
        if signature == self._seen:
            return None
        age_s = (time.time_ns() - last_change_ns(path, signature)) / 1e9
        if 0 <= age_s < self.settle_s:  # (a change time ahead of this clock, another machine's: not waited for)
            return "settling"
        edited: Policy | None = None
        try:
            edited = load_policy(path)
        except PolicyError as exc:
            problems = str(exc)
        if policy_signature(path) != signature:
            # files saved while being read (several files written one by one: a git pull, a rule moved to another
            # file, a save in progress) may have given a mix of old and new: neither put in force nor refused, it
            # is judged at the next look
            return None
        if edited is None:
            self._seen = signature  # once per edit: the next look waits for the next save
            return self._refuse(gate, path, problems)
        # seen before the reload: a reload that fails for another reason (a classifier that cannot train) is
        # logged (and ledgered) once per edit, not tried again at every look
        self._seen = signature
        self.refused = None  # the files load again: whatever becomes of this edit, it is not a refused one
        if edited.hash == gate.policy.hash:
            return "unchanged"
        old_hash = gate.policy.hash
        try:
            self._train_new_categories(gate, edited, Path(path))
        except _Stopped:
            log.info("policy.watch_stopped", path=path, policy_hash=edited.hash)
            return None
        except Exception as exc:  # noqa: BLE001 - the old policy stays in force; staff learn why from the ledger
            if self._stop.is_set():  # stopped meanwhile (the gate closed): not a failure of the edit
                log.info("policy.watch_stopped", path=path, policy_hash=edited.hash)
                return None
            error = f"{type(exc).__name__}: {exc}"
            log.error("policy.watch_training_failed", path=path, policy_hash=edited.hash, in_force=old_hash,
                      error=error)
            gate._record_training("classifier.training_failed", policy_hash=edited.hash, error=error[:4000],
                                  path=path, in_force=old_hash)
            return "training_failed"
        # one reload at a time: code that put another policy in force meanwhile (``reload_policy(other)``) is
        # not undone by this look, which read the files of the policy in force before it
        with gate.reload_lock:
            if self._stop.is_set() or gate.policy.source_path != path:
                return None
            if gate.policy.hash == edited.hash:  # code reloaded these very files meanwhile
                return "unchanged"
            try:
                gate.reload_policy(path)
            except PolicyError as exc:  # edited again between the two reads: judged again at the next look
                self._seen = None
                log.error("policy.watch_refused", path=path, problems=str(exc), in_force=old_hash)
                return "refused"
            except Exception as exc:  # noqa: BLE001 - the files load, but the reviewer for them did not
                # (a cache that cannot be written, an artifact that does not load): the old policy stays in
                # force, and staff see why where they see a refused edit (status, /metrics, the ledger), once
                # per edit; saving the files again tries again
                if self._stop.is_set():
                    log.info("policy.watch_stopped", path=path, policy_hash=edited.hash)
                    return None
                return self._refuse(gate, path, f"the files load, but the policy could not be put in force "
                                                f"({type(exc).__name__}: {exc}); the policy in force stays. Mend "
                                                "the cause, then save a policy file again")
        log.info("policy.watch_reloaded", path=path, old_hash=old_hash, new_hash=gate.policy.hash)
        return "reloaded"

    def _refuse(self, gate: Gatekeeper, path: str, problems: str) -> str:
        """Record an edit not put in force (``problems`` says why; the policy in force stays): logged, shown by
        ``refused`` (status, /metrics) and ledgered (``policy.reload_refused``). Returns ``"refused"``."""
        log.error("policy.watch_refused", path=path, problems=problems, in_force=gate.policy.hash)
        self.refused = {"path": str(path), "problems": problems, "at": utcnow().isoformat()}
        self.refusals += 1
        gate.record_refused_policy(path, problems)
        return "refused"

    def _train_new_categories(self, gate: Gatekeeper, edited: Policy, policy_dir: Path) -> None:
        """Make the classifier of a policy whose categories the serving classifier cannot name, which
        ``reload_policy`` would train in the watcher's thread first, in the serving process (minutes that
        ``stop`` could not cut short): here, as a background training is made (``Gatekeeper._training_job``),
        in a child process at ``training_nice`` whose artifact is then only loaded from the cache, or in a
        thread at lowered priority where there is no child job (or the files changed again before the child
        read them). ``stop`` stops either at its next step (the child is killed); ``reload_policy`` then loads
        the artifact. Raises ``_Stopped`` when stopped, the training's error when it fails."""
        serving = gate.reviewer
        if (sorted(serving.classifier.categories) == sorted(edited.categories)
                or serving.classifier_ready(edited, serving.embedder)):
            return
        trainer = serving.for_policy(edited)
        trainer.progress = self._unless_stopped
        job = gate._training_job(edited, trainer, policy_dir)
        if job is not None:
            log.info("policy.watch_training", policy_hash=edited.hash, process="child")
            try:
                run_in_child(job, progress=self._unless_stopped, cancelled=self._stop.is_set)
            except TrainingCancelled:
                raise _Stopped("the watcher was stopped") from None
            except PolicyChanged as exc:  # edited again since this look read them: train what it read, here
                log.info("policy.watch_training_in_thread", policy_hash=edited.hash, reason=str(exc))
        else:
            log.info("policy.watch_training", policy_hash=edited.hash, process="thread")
        # after a child's training this only loads the artifact it made (a cache hit); otherwise it trains here
        _in_lowered_thread(gate.training_nice, lambda: trainer.classifier)

    def _unless_stopped(self, stage: str, done: int, total: int) -> None:
        if self._stop.is_set():
            raise _Stopped(stage)


def _in_lowered_thread(nice: int, work: Callable[[], object]) -> None:
    """Run ``work`` in a thread of its own whose priority is lowered by ``nice`` (as a gate's background
    training thread is, see ``gatekeeper.gate._lower_this_threads_priority``) and wait for it; raise what it
    raised. A thread of its own, since a thread's nice value cannot be raised again: the watcher's thread (or
    the caller of ``check``) keeps its priority for the reloads that follow."""
    from gatekeeper.gate import _lower_this_threads_priority

    raised: list[BaseException] = []

    def run() -> None:
        try:
            _lower_this_threads_priority(nice)
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            raised.append(exc)

    thread = threading.Thread(target=run, name="gatekeeper-policy-watch-train", daemon=True)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]
