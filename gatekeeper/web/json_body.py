"""The API's JSON bodies read one way only.

Python's ``json`` keeps the last of a key repeated in one object, so ``{"type": "reject", "type": "approve"}`` was
taken as an approval while a proxy or an audit tool reading the first key saw a rejection; and a body holding a
number of 5,000 digits, or nested 5,000 deep, got FastAPI's "There was an error parsing the body" without why.
``json_body_problem`` says what is wrong with such a body before the API reads it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["json_body_problem"]


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen[key] = value
    return seen


def json_body_problem(raw: bytes) -> str | None:
    """Why an API request's JSON body is refused before it is read as a request, or None: a key repeated in one
    object, a number too long for Python to read, nesting too deep to read. A body that is no JSON at all is
    left to FastAPI's own answer (422 naming where)."""
    try:
        json.loads(raw, object_pairs_hook=_unique_keys)
    except _RepeatedKey as exc:
        return f"the JSON body repeats the key {str(exc)[:64]!r} in one object: send each key once"
    except RecursionError:
        return "the JSON body is nested too deep to read"
    except ValueError as exc:
        if "digits" in str(exc):  # Python's cap on the digits of an int read from text
            return (f"a number in the JSON body has more than {sys.get_int_max_str_digits():,} digits: send it "
                    "as a string")
        return None  # not JSON (or not UTF-8): FastAPI's answer says where
    return None
