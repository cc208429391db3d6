"""What a screen-reader user hears of the review pages' errors and where they are (WCAG 2.4.2, 3.3.1, 4.1.2)."""

from __future__ import annotations

import re

from conftest import web_login


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_an_error_is_in_the_page_title_and_announced_and_the_current_page_is_marked(review_web):
    """A filter error had no role, printed its limit as "1e+06" (read as "1 e plus 06") and left the title as on
    success; the nav did not say which page is the current one."""
    app, _ = review_web
    bob = web_login(app, "bob")
    fine = bob.get("/queue").text
    assert not _title(fine).startswith("Error:")
    assert re.search(r'<a href="/queue" class="on" aria-current="page">', fine)
    assert 'href="/decided" class="" aria-current' not in fine
    bad = bob.get("/queue?min_age_hours=soon").text
    assert _title(bad).startswith("Error: ")
    assert re.search(r'<div class="flash error" role="alert">minimum age must be a number of hours from 0 to '
                     r'1,000,000</div>', bad), re.findall(r'<div class="flash error".*?</div>', bad)
