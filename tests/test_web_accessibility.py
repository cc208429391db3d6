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


def test_the_queue_names_each_row_s_controls_by_its_memory(gate, review_web):
    """Each row's checkbox was named by an opaque id and each row had a "Review" link of the same name: a
    screen-reader user tabbing through the rows heard "select 3f2a9c81d0e4" and "Review" seven times."""
    from test_bulk_decisions import BELIEFS, escalate

    app, _ = review_web
    for text in BELIEFS[:2]:
        escalate(gate, text)
    page = web_login(app, "bob").get("/queue").text
    boxes = re.findall(r'<input type="checkbox" name="item" value="[^"]+" aria-label="([^"]+)"', page)
    links = re.findall(r'class="button" href="/items/[^"]+" aria-label="([^"]+)">Review</a>', page)
    assert len(boxes) == len(links) == 2 and len(set(boxes)) == len(set(links)) == 2
    for text in BELIEFS[:2]:
        assert any(text[:40] in b for b in boxes) and any(text[:40] in link for link in links), (text, boxes, links)
