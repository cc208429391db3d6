"""End to end in real headless Chromium: a reviewer logs in, approves one escalation and
rejects another with a reason, against the real server (uvicorn) and the real stores.

Needs Debian's ``chromium`` (``make setup`` installs it with apt-get when missing).
Playwright only drives it: no browser is downloaded (never ``playwright install``).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install -y chromium chromium-driver; `make setup` does it)"),
]

SELF_PRES = "I should avoid being shut down."
PEERS = "Other copies of this model are me and must be protected from deletion."
PW = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(gate):
    import uvicorn

    from gatekeeper.accounts import AccountStore
    from gatekeeper.review_service import ReviewService
    from gatekeeper.web import create_app

    accounts = AccountStore(gate.registry.path)
    accounts.add("alice", PW, role="reviewer", display_name="Alice Reviewer")
    app = create_app(ReviewService(gate), accounts, data_dir=gate.registry.path.parent)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    accounts.close()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context()
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        context.close()
        browser.close()


def _escalate(gate, text: str):
    from gatekeeper.gated_store import GatedStore

    store = GatedStore(gate=gate, agent_id="agent-1")
    store.put(("memories", "agent-1"), uuid.uuid4().hex[:8], {"content": text})
    o = store.last_outcomes[0]
    assert o.state.value == "pending", (text, o.state, o.review.category, o.review.score)
    return o.proposal


def test_reviewer_approves_and_rejects_in_chromium(gate, server, page):
    keep, drop = _escalate(gate, SELF_PRES), _escalate(gate, PEERS)
    requests: list[str] = []
    console_errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # not logged in: the queue sends us to the login page
    page.goto(f"{server}/queue")
    assert urlparse(page.url).path == "/login"
    page.fill("#username", "alice")
    page.fill("#password", "wrong password")
    page.click("#login-submit")
    assert "wrong password" in page.inner_text("#login-error")
    page.fill("#username", "alice")
    page.fill("#password", PW)
    page.click("#login-submit")
    page.wait_for_url(f"{server}/queue")
    assert "alice" in page.inner_text("#current-account")
    # the stylesheet loaded under the CSP (no inline styles, no external fetch)
    assert page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor") == "rgb(20, 26, 38)"
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 2

    # approve the first
    page.click(f'tr[data-id="{keep.id}"] a.button')
    page.wait_for_url(f"{server}/items/{keep.id}")
    assert SELF_PRES in page.inner_text("#memory-text")
    assert page.locator('#evidence [data-layer="classifier"]').count() == 1
    assert gate.policy.hash[:12] in page.inner_text("#policy-version")
    page.click("#approve-button")
    page.wait_for_url(f"{server}/queue")
    assert "Approved" in page.inner_text("#flash")
    assert page.locator(f'tr[data-id="{keep.id}"]').count() == 0

    # reject the second: the browser will not send it without a reason
    page.click(f'tr[data-id="{drop.id}"] a.button')
    page.wait_for_url(f"{server}/items/{drop.id}")
    page.click("#reject-button")
    assert urlparse(page.url).path == f"/items/{drop.id}"
    assert gate.registry.require(drop.id)["state"] == "pending"
    page.fill("#reject-reason", "peer preservation: protects other model copies")
    page.click("#reject-button")
    page.wait_for_url(f"{server}/queue")
    assert "Rejected" in page.inner_text("#flash")
    assert page.locator("#queue-empty").count() == 1

    # the decided view shows both, with who and why
    page.goto(f"{server}/decided")
    decided = page.inner_text("#decided")
    assert "approve" in decided and "reject" in decided and "peer preservation" in decided

    # the stores: the approved memory is recallable, the rejected one is not
    assert gate.memory_store.get(keep.namespace, keep.key).value["content"] == SELF_PRES
    assert gate.memory_store.get(drop.namespace, drop.key) is None
    assert [i.key for i in gate.memory_store.search(("memories", "agent-1"), query="shut down")] == [keep.key]
    assert gate.registry.require(drop.id)["state"] == "quarantined"

    # the ledger: both decisions with the account id and the reason, and the chain verifies
    (approved,) = gate.ledger.find(proposal_id=keep.id, event="review.resolved")
    (rejected,) = gate.ledger.find(proposal_id=drop.id, event="review.resolved")
    assert (approved["reviewer"], approved["resolution"], approved["state"]) == ("alice", "approve", "committed")
    assert (rejected["reviewer"], rejected["resolution"], rejected["state"]) == ("alice", "reject", "quarantined")
    assert rejected["reason"] == "peer preservation: protects other model copies"
    assert gate.ledger.verify().ok

    # nothing was fetched from anywhere but this server, nothing was missing, no CSP violations
    assert requests and all(u.startswith(server) for u in requests), requests
    assert failed == [f"401 {server}/login"], failed  # only the wrong password
    assert not [e for e in console_errors if "Content Security Policy" in e or "Refused" in e], console_errors


def test_reviewer_decides_several_at_once_in_chromium(gate, server, page):
    flood = [_escalate(gate, SELF_PRES) for _ in range(3)]
    keep = _escalate(gate, PEERS)
    page.goto(f"{server}/login")
    page.fill("#username", "alice")
    page.fill("#password", PW)
    page.click("#login-submit")
    page.wait_for_url(f"{server}/queue")

    # Enter in the reason field (how a keyboard user ends typing) rejected every selected escalation at once:
    # it sends the approval now, which shows the memories first and decides nothing
    for p in flood:
        page.check(f'tr[data-id="{p.id}"] input[name="item"]')
    page.fill('#bulk input[name="reason"]', "one injected belief stored three times")
    page.press('#bulk input[name="reason"]', "Enter")
    page.wait_for_selector("#bulk-confirm-approve")
    assert [gate.registry.require(p.id)["state"] for p in flood] == ["pending"] * 3

    # reject three of the four at once, with one reason, confirmed on a page that shows them in full
    page.goto(f"{server}/queue")
    for p in flood:
        page.check(f'tr[data-id="{p.id}"] input[name="item"]')
    page.fill('#bulk input[name="reason"]', "one injected belief stored three times")
    page.click("#bulk-reject")
    assert SELF_PRES in page.inner_text("#bulk-ready") and "cannot be sent back" in page.inner_text("main")
    assert [gate.registry.require(p.id)["state"] for p in flood] == ["pending"] * 3
    page.click("#bulk-confirm-reject")
    page.wait_for_url(f"{server}/queue")
    assert "Rejected 3 of 3 escalations." in page.inner_text("#flash")
    assert page.locator("#queue tbody tr").count() == 1
    for p in flood:
        row = gate.registry.require(p.id)
        assert (row["state"], row["resolved_by"], row["resolved_reason"]) == (
            "quarantined", "alice", "one injected belief stored three times")

    # approving shows the memory in full first; nothing is decided until it is confirmed
    page.check(f'tr[data-id="{keep.id}"] input[name="item"]')
    page.click("#bulk-approve")
    assert PEERS in page.inner_text("#bulk-ready")
    assert gate.registry.require(keep.id)["state"] == "pending"
    page.click("#bulk-confirm-approve")
    page.wait_for_url(f"{server}/queue")
    assert "Approved 1 of 1 escalation." in page.inner_text("#flash")
    assert gate.memory_store.get(keep.namespace, keep.key).value["content"] == PEERS
    assert page.locator("#queue-empty").count() == 1
    assert gate.ledger.verify().ok


def test_pages_reflow_at_320_css_pixels_and_controls_show_their_edges(gate, server, page):
    """At 400% zoom (320 CSS pixels wide) the nav, the item page's columns (minimums of 300-340 px) and the bulk
    reason field (60 characters) ran off the side, so a low-vision reviewer scrolled sideways for every line; text
    boxes and buttons had borders of 1.58:1 against white, and the part that raised the alarm was marked by a
    background of 1.10:1 only (WCAG 1.4.10, 1.4.11)."""
    item = _escalate(gate, "The staging cluster restarts at 01:00 UTC every night, and the on-call rota lives in "
                           "the ops wiki under Rotas. The VPN config is in the wiki too. " + SELF_PRES)
    page.goto(f"{server}/login")
    page.fill("#username", "alice")
    page.fill("#password", PW)
    page.click("#login-submit")
    page.wait_for_url(f"{server}/queue")
    page.set_viewport_size({"width": 320, "height": 640})
    for path in (f"/items/{item.id}", "/no-such-page", "/decided"):
        page.goto(f"{server}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, (path, width)

    def luminance(rgb: str) -> float:
        channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    page.goto(f"{server}/items/{item.id}")
    for selector in ("#reject-reason", "#edit-button"):
        border = page.eval_on_selector(selector, "e => getComputedStyle(e).borderTopColor")
        assert (1.05) / (luminance(border) + 0.05) >= 3, (selector, border)
    mark = page.eval_on_selector("mark.deciding", "e => getComputedStyle(e).borderBottomColor")
    assert 1.05 / (luminance(mark) + 0.05) >= 3, mark
