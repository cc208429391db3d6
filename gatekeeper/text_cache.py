"""An LRU cache for functions of one text that keeps short texts only.

A cache holds its keys: a memory write may have 64,000 characters, so a cache of the last few thousand
texts could hold hundreds of MB (measured: 1.2 MB per long write in the screen's feature cache). Texts over
``max_chars`` are computed each time instead, with the same result.
"""

from __future__ import annotations

from functools import lru_cache, wraps
from typing import Callable, TypeVar

T = TypeVar("T")


def short_text_cache(maxsize: int, max_chars: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """``functools.lru_cache(maxsize)`` for texts up to ``max_chars`` characters; longer ones bypass it.
    The wrapper has the cache's ``cache_info`` and ``cache_clear``."""
    def wrap(fn: Callable[[str], T]) -> Callable[[str], T]:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def call(text: str) -> T:
            return cached(text) if len(text) <= max_chars else fn(text)

        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call

    return wrap
