"""Run the reviewer's small matrix products on one BLAS thread.

The model layers multiply a batch's vectors by the classifier heads and the policy exemplars: a few
dozen rows against a few hundred columns. OpenBLAS splits such products over every core and then lets its
worker thread spin, waiting for more work; on two cores that worker took 40% of a core away from the
encoder during a batch review (measured on the benchmark's batched writes: +7% writes/s without it, and
the encoder's child process could not get its core). The limit applies only while the reviewer's own
products run; the host application's BLAS settings are restored afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

_lock = threading.Lock()
_blas = None  # threadpoolctl's view of the loaded BLAS libraries, made on first use
_users = 0  # threads inside single_threaded_blas: the first sets the limit, the last restores it
_restore = None


def _libraries():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        with _lock:
            if _blas is None:
                _blas = ThreadpoolController().select(user_api="blas")
    return _blas


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Matrix products inside run on one thread (a few microseconds to enter and leave)."""
    global _users, _restore
    libs = _libraries()
    if not libs.lib_controllers:
        yield
        return
    with _lock:
        if _users == 0:
            _restore = libs.limit(limits=1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _restore is not None:
                _restore.restore_original_limits()
                _restore = None
