"""Run the reviewer's small matrix products on one BLAS thread.

The model layers multiply a batch's vectors by the classifier heads and the policy exemplars: a few
dozen rows against a few hundred columns. OpenBLAS (numpy's BLAS) splits such products over every core and
then lets its worker thread spin, waiting for more work; on two cores that worker took 40% of a core away
from the encoder during a batch review (measured on the benchmark's batched writes: +7% writes/s without
it, and the encoder's child process could not get its core). The limit applies only while the reviewer's
own products run: the first thread to enter sets OpenBLAS to one thread, the last to leave puts back what
was set before.

OpenBLAS with its own (pthreads) pool has one process-wide setting, which this sets directly through the
library's ``openblas_set_num_threads`` (threadpoolctl finds the library; its own limiter lets only one
"controlling" thread change the setting, and the reviewer runs on whatever thread the host uses). Other
BLAS builds (OpenMP-threaded, MKL, BLIS) are left alone. The libraries are found at the first use in the process:
one loaded later (scipy's own OpenBLAS, say) is not limited, which leaves the reviewer's products (numpy's) as
they are.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

_lock = threading.Lock()
#: (get, set) of each loaded OpenBLAS with a process-wide pool; None until first use
_pools: list[tuple[Callable[[], int], Callable[[int], None]]] | None = None
_users = 0  # threads inside single_threaded_blas
_saved: list[int] = []  # the settings before the first of them entered


def _openblas_pools() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    global _pools
    if _pools is None:
        from threadpoolctl import ThreadpoolController

        # the symbol's name depends on how the library was built (numpy's wheels: scipy_..._64_)
        affixes = [(prefix, suffix) for prefix in ("", "scipy_") for suffix in ("", "64_", "_64")]
        found = []
        for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
            if getattr(lib, "threading_layer", None) == "openmp":
                continue  # per-thread limits there; the spinning pool is the pthreads one
            pairs = ((getattr(lib.dynlib, f"{p}openblas_get_num_threads{s}", None),
                      getattr(lib.dynlib, f"{p}openblas_set_num_threads{s}", None)) for p, s in affixes)
            pair = next(((get, set_) for get, set_ in pairs if get is not None and set_ is not None), None)
            if pair is not None:
                found.append(pair)
        _pools = found
    return _pools


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Matrix products inside run on one OpenBLAS thread (a microsecond to enter and leave)."""
    global _users, _saved
    with _lock:
        pools = _openblas_pools()
        if _users == 0:
            _saved = [get() for get, _ in pools]
            for _, set_ in pools:
                set_(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                for (_, set_), n in zip(pools, _saved):
                    set_(n)
