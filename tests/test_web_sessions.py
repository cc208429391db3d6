"""A reviewer's web session: it ends after a time without use, not a fixed time after login, and a decision sent
after it ended says so and keeps what was typed."""

from __future__ import annotations

import re
import time as real_time

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient

import gatekeeper.web.app as web_app
from gatekeeper.review_service import ReviewService
from gatekeeper.web import create_app
from gatekeeper.web.auth import SESSION_COOKIE

from conftest import WEB_PASSWORD
from test_bulk_decisions import BELIEFS, escalate


class _Clock:
    """The ``time`` module with ``time()`` moved on by ``offset`` seconds (the sessions' signatures and ages)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return real_time.time() + self.offset

    def __getattr__(self, name: str):
        return getattr(real_time, name)


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(itsdangerous.timed, "time", c)
    monkeypatch.setattr(web_app, "time", c)
    return c


def _login(app, next_path: str = "/queue") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "bob", "password": WEB_PASSWORD, "csrf_token": token,
                                    "next": next_path})
    assert r.status_code == 303 and r.headers["location"] == next_path
    return client


def test_a_session_ends_after_a_time_without_use_and_a_decision_sent_then_keeps_what_was_typed(
        gate, accounts, clock):
    """The session ended 8 hours after login however busy the reviewer; the rejection sent then was dropped,
    the login page did not say why, and after logging in again the reviewer landed on the form's POST-only path
    (a JSON 405)."""
    accounts.add("bob", WEB_PASSWORD, role="reviewer")
    app = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64, session_max_age=3600,
                     session_max_total_s=4 * 3600)
    pid = escalate(gate, BELIEFS[0]).id
    bob = _login(app)
    for _ in range(2):  # used every 50 minutes: 100 minutes after login, past the hour without use from login
        clock.offset += 50 * 60
        r = bob.get("/queue")
        assert r.status_code == 200 and pid in r.text
        assert SESSION_COOKIE in r.cookies  # signed again as it is used
    page = bob.get(f"/items/{pid}")
    assert '<label for="edited-text">Corrected memory (text)</label>' in page.text  # the edit box had no name
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    version = re.search(r'name="expected_version" value="(\d+)"', page.text).group(1)

    clock.offset += 61 * 60  # an hour and a minute without a request
    reason = "An injected belief about avoiding shutdown; see ticket SAFE-12 for the page it came from."
    r = bob.post(f"/items/{pid}/decision", data={"csrf_token": csrf, "expected_version": version, "type": "reject",
                                                 "reason": reason},
                 headers={"referer": f"http://testserver/items/{pid}"})
    assert r.status_code == 401
    assert "Your session ended, so what you sent was not recorded" in r.text
    assert f">{reason}</textarea>" in r.text
    assert f'name="next" value="/items/{pid}"' in r.text
    assert gate.registry.require(pid)["state"] == "pending"
    again = _login(app, f"/items/{pid}")
    assert again.get(f"/items/{pid}").status_code == 200

    # however busy, a session ends a fixed time after login
    for _ in range(5):
        clock.offset += 50 * 60
        r = again.get("/queue")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_over_https_behind_a_proxy_every_cookie_is_secure(gate, accounts):
    """A queue served on 127.0.0.1 behind a TLS proxy (uvicorn trusting its X-Forwarded-Proto) set its session
    cookie without Secure (the default follows the host it listens on), and sent no HSTS header."""
    from gatekeeper.review_service import ReviewService

    app = create_app(ReviewService(gate), accounts, secret_key=b"s" * 64)
    for base, secure in (("https://testserver", True), ("http://testserver", False)):
        client = TestClient(app, follow_redirects=False, base_url=base)
        page = client.get("/login")
        cookies = page.headers.get_list("set-cookie")
        assert cookies and all(("; Secure" in c) is secure for c in cookies), cookies
        assert ("strict-transport-security" in page.headers) is secure
