"""short_text_cache: an LRU cache that keeps short texts only (a cache holds its keys)."""

from __future__ import annotations

from gatekeeper.text_cache import short_text_cache


def test_short_texts_are_cached_long_ones_computed_each_time():
    seen: list[str] = []

    @short_text_cache(maxsize=2, max_chars=5)
    def upper(text: str) -> str:
        """Upper case."""
        seen.append(text)
        return text.upper()

    assert upper.__doc__ == "Upper case."
    assert [upper("abc"), upper("abc"), upper("abcdefgh"), upper("abcdefgh")] == ["ABC", "ABC", "ABCDEFGH", "ABCDEFGH"]
    assert seen == ["abc", "abcdefgh", "abcdefgh"]  # the short one once, the long one each time
    info = upper.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    upper("d"), upper("e")  # the least recently used entry goes
    assert upper.cache_info().currsize == 2
    upper.cache_clear()
    assert upper.cache_info().currsize == 0
