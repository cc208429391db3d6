"""The reviewer's matrix products run on one BLAS thread; the host's setting is restored afterwards, also
when several threads review at once."""

from __future__ import annotations

import threading

import pytest
from threadpoolctl import threadpool_info

from gatekeeper.blas import single_threaded_blas


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads(monkeypatch):
    from threadpoolctl import threadpool_limits

    import gatekeeper.blas as blas

    if not _blas_threads():
        pytest.skip("no BLAS library loaded")
    # the OpenBLAS libraries are found at the first use in the process and kept: one loaded after it (scipy's,
    # imported by a later test) is not limited, so these tests look for them again, as a first use now would
    monkeypatch.setattr(blas, "_pools", None)
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_one_thread_inside_the_host_setting_after(two_blas_threads):
    assert set(_blas_threads()) == {2}
    with single_threaded_blas():
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_overlapping_users_restore_the_host_setting_once_the_last_leaves(two_blas_threads):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, list[int]] = {}

    def first():
        with single_threaded_blas():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with single_threaded_blas():
            second_in.set()
            first_out.wait(10)
            seen["after the first left"] = _blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert set(seen["after the first left"]) == {1}  # the second is still inside
    assert set(_blas_threads()) == {2}


def test_an_error_inside_still_restores(two_blas_threads):
    with pytest.raises(ValueError):
        with single_threaded_blas():
            raise ValueError("boom")
    assert set(_blas_threads()) == {2}


def test_a_worker_thread_gets_one_thread_too(two_blas_threads):
    # threadpoolctl's own limiter lets only one "controlling" thread change OpenBLAS; the reviewer runs on
    # whatever thread the host uses (a web server's pool, asyncio.to_thread)
    seen = []

    def work():
        with single_threaded_blas():
            seen.append(_blas_threads())

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert [set(s) for s in seen] == [{1}]
    assert set(_blas_threads()) == {2}
