"""The web review queue: server-rendered pages for safety staff and a small JSON API.

    create_app(service, accounts, graph=None, secret_key=None, data_dir=None, secure_cookies=False)

Pages (session cookie + CSRF token on every form):

    GET  /login, POST /login, POST /logout
    GET  /queue              pending escalations; filters: agent, namespace prefix, category,
                             min age (hours), overdue only; overdue items are flagged
    GET  /items/{id}         the memory, provenance, evidence of every layer, policy version/hash,
                             similar committed memories; approve / edit-then-approve / reject forms
    POST /items/{id}/decision
    GET  /decided            decisions made by people, newest first
    GET  /quarantine         admin only
    GET  /reviewers          admin only

JSON API (``Authorization: Bearer <token>``, see ``gatekeeper reviewer add``):

    GET  /api/queue          same filters as /queue (+ state, limit, offset)
    GET  /api/items/{id}
    POST /api/items/{id}/decision  {"type", "reason", "edited_value", "expected_version"}
    GET  /metrics            the gate's numbers in Prometheus' text format (gatekeeper.health)

The reviewer of a decision is always the authenticated account's id, never a
form or body field. Decisions go through ``ReviewService.submit_decision``: a
paused interrupt-mode thread is resumed when the app was given the graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import traceback
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Sequence
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from gatekeeper.accounts import Account, AccountStore, normalize_name
from gatekeeper.hidden_chars import hidden_in, reveal, strip_hidden, strip_hidden_value
from gatekeeper.log_setup import get_logger
from gatekeeper.models import MAX_REASON_CHARS, ProposalState, utcnow
from gatekeeper.registry import MAX_TEXT_FILTER
from gatekeeper.store_identity import OtherStoreError, where_to_decide
from gatekeeper.review_service import (
    MAX_AGE_HOURS,
    MAX_BULK_DECISIONS,
    BulkOutcome,
    ConflictError,
    NotFoundError,
    QueueItem,
    ReviewDecision,
    ReviewPermissionError,
    ResumeContext,
    ReviewService,
)
from gatekeeper.web.auth import SESSION_COOKIE, LoginThrottle, SessionCodec, csrf_ok, load_or_create_secret, new_csrf
from gatekeeper.web.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit, BodyTooLarge
from gatekeeper.web.highlight import reveal_marked
from gatekeeper.web.json_body import json_body_problem

log = get_logger("gatekeeper.web")

#: the largest offset the JSON API accepts (SQLite's integers are 64-bit; no queue is this long)
MAX_OFFSET = 1_000_000_000

HERE = Path(__file__).resolve().parent
FLASH_COOKIE = "gk_flash"
#: states only admins may look at (their text can be hostile: injections, hidden payloads)
ADMIN_STATES = {ProposalState.quarantined.value, ProposalState.received.value}


def hidden_from(user: Account, state: str) -> bool:
    """Whether a proposal in ``state`` is for admins only and ``user`` is not one."""
    return state in ADMIN_STATES and not user.is_admin


SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ApiDecision(BaseModel):
    """Body of POST /api/items/{id}/decision. There is no reviewer field: the token says who."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["approve", "edit", "reject"]
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    edited_value: dict[str, Any] | str | None = None
    #: strict: ``true`` or ``"1"`` are refused, not read as version 1
    expected_version: int | None = Field(default=None, strict=True)


class ApiBulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_id: str = Field(min_length=1, max_length=256)
    #: the version the client showed the reviewer (``version`` of the queue item); None: whatever it is now.
    #: Strict, as for one decision
    expected_version: int | None = Field(default=None, strict=True)


class ApiBulkDecision(BaseModel):
    """Body of POST /api/decisions: one approval or rejection for several escalations
    (``ReviewService.decide_many``). There is no reviewer field: the token says who."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    items: list[ApiBulkItem] = Field(min_length=1, max_length=MAX_BULK_DECISIONS)


class ApiRelease(BaseModel):
    """Body of POST /api/items/{id}/release (admins only). There is no operator field: the token says who."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class _NeedLogin(Exception):
    def __init__(self, next_path: str):
        self.next_path = next_path


class _PageError(Exception):
    def __init__(self, status: int, title: str, message: str):
        self.status, self.title, self.message = status, title, message


def _safe_next(path: str | None) -> str:
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or "\n" in path:
        return "/queue"
    return path


#: a reviewer's session is signed again on a request this long after it was signed (``create_app``)
SESSION_RENEW_AFTER_S = 300
#: the fields of the review forms a person types, shown on the login page when the session ended as one was sent
TYPED_FIELDS = (("reason", "Reason"), ("edited_text", "Edited memory"))


def _form_page(request: Request) -> str:
    """The page a form was sent from (its ``Referer`` on this server), where a reviewer goes back to after logging
    in again: the form's own path takes POST only."""
    referer = request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    scheme_less = referer.split("://", 1)[-1]
    if host and scheme_less.startswith(f"{host}/"):
        return _safe_next(scheme_less[len(host):])
    return "/queue"


def _back_to(path: str | None, page: str) -> str:
    """Where a form on a list page returns to: that page as it was (its filters and page kept), never another
    path."""
    path = _safe_next(path)
    return path if path == page or path.startswith(f"{page}?") else page


def _this_page(request: Request) -> str:
    """The path and query of the page being rendered: where its forms return to (checked again by ``_back_to``
    when they are posted)."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _parse_selected(values: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """The queue form's selected items (``id:version``, as the page wrote them): (id, version) pairs, and the
    values that do not read as one."""
    pairs, bad = [], []
    for value in values:
        pid, _, version = value.rpartition(":")
        if pid and version.isascii() and version.isdigit():  # "²" and "١" are digits to str.isdigit
            pairs.append((pid, int(version)))
        else:
            bad.append(value)
    return pairs, bad


def _bulk_summary(verb: str, outcomes: list[BulkOutcome], noun: str = "escalation") -> tuple[str, str]:
    """(flash kind, text) for a bulk decision or release: how many were done, and each one left out with why."""
    done = [o for o in outcomes if o.item is not None]
    text = f"{verb} {len(done)} of {len(outcomes)} {noun}{'s' if len(outcomes) != 1 else ''}."
    warned = [o for o in done if o.warning]
    if warned:
        text += f" {len(warned)} with a note (see each item): {warned[0].proposal_id[:12]}: {warned[0].warning}."
    left = [o for o in outcomes if o.item is None]
    if left:
        text += " Left out: " + "; ".join(f"{o.proposal_id[:12]}: {o.error}" for o in left)
    return ("warn" if left or warned else "ok"), text


def _fmt_dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _age(value: datetime | None) -> str:
    if value is None:
        return "—"
    secs = max(0.0, (utcnow() - value).total_seconds())
    if secs < 3600:
        return f"{int(secs // 60)} min"
    if secs < 48 * 3600:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86400:.1f} d"


def _pages(filters: dict, offset: int, limit: int, shown: int) -> dict:
    """Where a list page is and the query strings of its neighbours (the filters kept), for the page links.
    A full page may have a next one; the last page is the first one shorter than ``limit``."""
    kept = {k: ("1" if v is True else v) for k, v in filters.items() if v not in ("", None, False)}

    def link(at: int) -> str:
        return "?" + urlencode({**kept, **({"offset": at} if at else {}), **({"limit": limit} if limit != 200 else {})})

    return {"first": offset + 1 if shown else offset, "last": offset + shown,
            "previous": link(max(0, offset - limit)) if offset else None,
            "next": link(offset + limit) if shown >= limit else None}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _edit_prefill(value: dict) -> tuple[str, str]:
    """The edit box's text: the value without the characters a reader cannot see (an edit may not hold
    them, ``gatekeeper.hidden_chars``), so a reviewer's edit commits only what they saw."""
    if set(value) == {"content"} and isinstance(value["content"], str):
        return strip_hidden(value["content"]), "text"
    return _pretty(strip_hidden_value(value)), "json"


def item_url(proposal_id: str) -> str:
    """The page of a proposal: its id percent-encoded whole, so a link goes to the id it names (a registry from
    before ids were checked may hold one such as "%64eadbeef", which a browser would read as "deadbeef")."""
    return "/items/" + quote(str(proposal_id), safe="")


def _pretty_revealed(value: Any) -> str:
    return reveal(_pretty(value))


#: failed logins from one client address in the login throttle's window (5 minutes) before it is refused (429)
ADDRESS_LOGIN_LIMIT = 30
#: what the log says of a failed login's name when no account has it
UNKNOWN_ACCOUNT = "(no such account)"


def raised_at(exc: BaseException, frames: int = 8) -> list[str]:
    """Where ``exc`` was raised: its innermost ``frames`` frames as ``file.py:line in function``, without the
    message or the values (an unhandled error's log must not quote a memory's text)."""
    return [f"{Path(f.filename).name}:{f.lineno} in {f.name}"
            for f in traceback.extract_tb(exc.__traceback__)[-frames:]]


def create_app(service: ReviewService, accounts: AccountStore, *, graph: Any = None,
               resume_context: ResumeContext | None = None, secret_key: bytes | str | None = None,
               data_dir: str | Path | None = None,
               secure_cookies: bool = False, session_max_age: int = 8 * 3600,
               session_max_total_s: int = 24 * 3600,
               login_throttle: LoginThrottle | None = None, address_throttle: LoginThrottle | None = None,
               title: str = "gatekeeper review",
               resume_shutdown_wait_s: float = 60.0, expire_every_s: float = 60.0,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The review queue app. ``graph``: resume paused interrupt-mode threads of this
    compiled graph (it must use the checkpointer the agents use); ``resume_context(thread_id, configurable)``
    builds the run context a resumed thread runs with, for a graph whose nodes read one. At shutdown the app waits up to
    ``resume_shutdown_wait_s`` for the agent runs that decisions resumed (they go on in the background).
    While it runs, every ``expire_every_s`` seconds (0: never) it expires the escalations past their deadline when
    the policy in force says ``escalation.overdue_action: quarantine`` (``ReviewService.expire_overdue``).
    A request body over ``max_body_bytes`` is answered 413 before anything reads it (``web.body_limit``).
    Failed logins are limited per account name (``login_throttle``, default 5 in 5 minutes) and per client
    address (``address_throttle``, default 30 in 5 minutes: one client trying a few passwords on each of many
    accounts). Behind a reverse proxy the address is the proxy's unless the server trusts its forwarded headers
    (``gatekeeper serve --forwarded-allow-ips``). A reviewer's session ends after ``session_max_age`` seconds
    without a request (each request more than ``SESSION_RENEW_AFTER_S`` after the cookie was signed signs it
    again), and ``session_max_total_s`` after login at the latest: it ended 8 hours after login, however busy
    the reviewer, and a decision sent then was lost."""
    if graph is not None:
        service.resume_graph = graph
    if resume_context is not None:
        service.resume_context = resume_context
    if secret_key is None:
        secret_key = load_or_create_secret(data_dir or service.gate.registry.path.parent)
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    codec = SessionCodec(secret_key, max_age=session_max_age)
    flash_codec = SessionCodec(secret_key + b"/flash", max_age=120)
    # (an empty throttle is falsy: it has a length)
    throttle = login_throttle if login_throttle is not None else LoginThrottle()
    by_address = address_throttle if address_throttle is not None else LoginThrottle(limit=ADDRESS_LOGIN_LIMIT)

    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    # memory text is shown with its hidden characters as visible markers (gatekeeper.hidden_chars)
    env.filters.update(dt=_fmt_dt, age=_age, pretty=_pretty_revealed, reveal=reveal, hidden_in=hidden_in,
                       reveal_marked=reveal_marked, item_url=item_url,
                       where_to_decide=where_to_decide)
    env.tests["scalar"] = _is_scalar

    async def expire_overdue_escalations() -> None:
        while True:
            try:  # the policy in force decides, each time: a reload may switch expiry on or off
                await asyncio.to_thread(service.expire_overdue)
            except Exception as exc:  # noqa: BLE001 - a failed sweep is logged; the next one tries again
                log.error("web.expire_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(expire_every_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        sweeper = asyncio.create_task(expire_overdue_escalations()) if expire_every_s > 0 else None
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        # agent threads resumed by decisions run on in the background: let them finish before the server goes
        if not await asyncio.to_thread(service.wait_for_resumes, resume_shutdown_wait_s):
            log.warning("web.resumes_still_running", waited_s=resume_shutdown_wait_s,
                        running=[r.thread_id for r in service.resume_runs() if r.finished_at is None])

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.service, app.state.accounts = service, accounts
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        try:
            response = await call_next(request)
        except BodyTooLarge:
            raise  # answered by BodyLimit (413)
        except Exception as exc:  # noqa: BLE001 - answered here, so that the error page has the headers too
            # where it was raised, for whoever mends it; not its message, which can quote a memory's text
            log.error("web.unhandled_error", path=request.url.path, error=type(exc).__name__,
                      raised_at=raised_at(exc))
            response = Response("Internal Server Error", status_code=500, media_type="text/plain")
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.middleware("http")
    async def _strict_json_bodies(request: Request, call_next):
        """An API body that JSON reads more than one way, or that cannot be read into numbers and nesting Python
        keeps, is refused saying why: ``{"type": "reject", "type": "approve"}`` was taken as an approval (the last
        key wins here; a proxy or audit tool reading the first saw a rejection), and a 5,000-digit number or a
        5,000-deep body got only "There was an error parsing the body". Inside ``BodyLimit`` and
        ``TrustedHostMiddleware`` (added after it): a body over the cap is refused before this reads it (the
        self-audit saw a first version outside the cap read 27 MB unauthenticated)."""
        if request.method == "POST" and request.url.path.startswith("/api/") \
                and "json" in request.headers.get("content-type", "").lower():
            problem = json_body_problem(await request.body())
            if problem is not None:
                return JSONResponse({"error": "invalid", "detail": [problem]}, status_code=422,
                                    headers=SECURITY_HEADERS)
        return await call_next(request)

    if allowed_hosts is not None:
        # a Host header outside the list is refused (400): a web page that rebinds its own domain's DNS to the
        # loopback address could otherwise reach a server on 127.0.0.1 as its own origin (lock every reviewer out
        # of login, use a password it holds)
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    # outermost: a body over the cap is refused before any route (or its auth check) reads it
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, headers=SECURITY_HEADERS)

    # ------------------------------------------------------------ sessions
    def set_session(response: Response, data: dict) -> None:
        response.set_cookie(SESSION_COOKIE, codec.dumps(data), max_age=session_max_age, path="/",
                            httponly=True, samesite="strict", secure=secure_cookies)

    def read_session(request: Request) -> dict | None:
        return codec.loads(request.cookies.get(SESSION_COOKIE))

    def session_account(sess: dict | None) -> Account | None:
        if not sess or not isinstance(sess.get("uid"), str):
            return None
        at = sess.get("at")
        if isinstance(at, (int, float)) and not isinstance(at, bool) and time.time() - at > session_max_total_s:
            return None
        acc = accounts.get(sess["uid"])
        if acc is None or acc.disabled or not csrf_ok(acc.session_key, sess.get("sk")):
            return None
        return acc

    def page_user(request: Request) -> tuple[Account, dict]:
        sess = read_session(request)
        acc = session_account(sess)
        if acc is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _NeedLogin(path)
        return acc, sess  # type: ignore[return-value]

    def check_csrf(request: Request, sess: dict | None, token: str | None) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("host", "")
            if origin.split("://", 1)[-1] != host:
                raise _PageError(403, "Forbidden", "This form was posted from another site.")
        if not csrf_ok((sess or {}).get("csrf"), token):
            raise _PageError(403, "Forbidden", "The form's security token is missing or stale. "
                                               "Reload the page and try again.")

    def set_flash(response: Response, kind: str, text: str) -> None:
        response.set_cookie(FLASH_COOKIE, flash_codec.dumps({"kind": kind, "text": text[:600]}), max_age=120,
                            path="/", httponly=True, samesite="strict", secure=secure_cookies)

    def render(request: Request, name: str, *, user: Account | None = None, sess: dict | None = None,
               status: int = 200, **ctx: Any) -> HTMLResponse:
        flash = flash_codec.loads(request.cookies.get(FLASH_COOKIE))
        nav_counts = None
        if user is not None:
            try:
                nav_counts = service.counts()
            except Exception:  # noqa: BLE001 - nav only
                nav_counts = None
        policy = service.gate.policy
        html = env.get_template(name).render(
            title=title, user=user, csrf=(sess or {}).get("csrf", ""), flash=flash, nav_counts=nav_counts,
            policy={"name": policy.name, "version": policy.version, "hash": policy.hash,
                    "deadline_hours": policy.escalation.deadline_hours},
            path=request.url.path, resume_enabled=service.resume_graph is not None, **ctx)
        response = HTMLResponse(html, status_code=status)
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict",
                                   secure=secure_cookies)
        return response

    @app.middleware("http")
    async def _renew_session(request: Request, call_next):
        """Sign a reviewer's session again as it is used (at most every ``SESSION_RENEW_AFTER_S``), so that it
        ends after ``session_max_age`` without use rather than that long after login."""
        response = await call_next(request)
        sess, signed = codec.loads_dated(request.cookies.get(SESSION_COOKIE))
        if (sess is None or "uid" not in sess or signed is None
                or time.time() - signed.timestamp() < SESSION_RENEW_AFTER_S
                or any(h.startswith(f"{SESSION_COOKIE}=") for h in response.headers.getlist("set-cookie"))):
            return response
        if await run_in_threadpool(session_account, sess) is not None:
            set_session(response, {**sess, "at": sess.get("at", int(time.time()))})
        return response

    @app.middleware("http")
    async def _secure_over_https(request: Request, call_next):
        """Over HTTPS (served with TLS, or behind a TLS proxy on loopback whose X-Forwarded-Proto uvicorn trusts:
        ``--forwarded-allow-ips``), every cookie is ``Secure`` and the answer says to keep to HTTPS (HSTS): a
        proxied queue on 127.0.0.1 set its session cookie without ``Secure``, sent again over plain HTTP."""
        response = await call_next(request)
        if request.url.scheme == "https":
            raw = response.raw_headers
            for i, (name, value) in enumerate(raw):
                if name == b"set-cookie" and b"; secure" not in value.lower():
                    raw[i] = (name, value + b"; Secure")
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.exception_handler(_NeedLogin)
    async def _need_login(request: Request, exc: _NeedLogin):
        if request.method in ("GET", "HEAD"):
            return RedirectResponse("/login?" + urlencode({"next": _safe_next(exc.next_path)}), status_code=303)
        # a form sent after the session ended: its POST-only path was the "next" page (405 after the login), and
        # the login page did not say that nothing was recorded; what was typed is shown to copy
        typed: list[tuple[str, str]] = []
        with contextlib.suppress(Exception):
            form = await request.form()
            typed = [(label, str(form.get(field)).strip()) for field, label in TYPED_FIELDS
                     if isinstance(form.get(field), str) and str(form.get(field)).strip()]
        anon = {"csrf": new_csrf()}
        response = render(request, "login.html", sess=anon, next=_form_page(request), status=401,
                          error="Your session ended, so what you sent was not recorded. Log in, then send it "
                                "again.", no_accounts=False, typed=typed)
        set_session(response, anon)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's own reply echoes each bad input, and one holding a lone surrogate ("\ud800", which JSON can
        # spell) cannot be encoded: a 500. Where and why, without the input
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        body = json.dumps({"detail": detail}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(_PageError)
    async def _page_error(request: Request, exc: _PageError):
        sess = read_session(request)
        return render(request, "error.html", user=session_account(sess), sess=sess, status=exc.status,
                      error_title=exc.title, message=exc.message)

    # ---------------------------------------------------------------- login
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/queue"):  # noqa: A002
        sess = read_session(request)
        if session_account(sess) is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        anon = {"csrf": new_csrf()}
        response = render(request, "login.html", sess=anon, next=_safe_next(next), error=None,
                          no_accounts=accounts.count() == 0)
        set_session(response, anon)
        return response

    @app.post("/login", response_class=HTMLResponse)
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token: str = Form(""), next: str = Form("/queue")):  # noqa: A002
        sess = read_session(request)
        if not sess or not csrf_ok(sess.get("csrf"), csrf_token):
            anon = {"csrf": new_csrf()}
            response = render(request, "login.html", sess=anon, next=_safe_next(next), status=400,
                              error="Your login form expired (or cookies are blocked). Please try again.",
                              no_accounts=False)
            set_session(response, anon)
            return response
        key = normalize_name(username)[:64]
        address = request.client.host if request.client else "unknown"
        known = accounts.get(username) is not None
        # the log names an account only when there is one: what was typed into the name field of a failed login
        # may be a password (typed in the wrong field, or a name and password run together)
        logged = key if known else UNKNOWN_ACCOUNT
        # counted before the password is checked, so that logins sent at once cannot all pass the check
        if not by_address.begin(address):
            log.warning("web.login_throttled", address=address)
            return render(request, "login.html", sess=sess, next=_safe_next(next), status=429,
                          error="Too many failed logins from this address. Wait a few minutes.", no_accounts=False)
        if not throttle.begin(key, account=known):
            log.warning("web.login_throttled", account=logged, address=address)
            return render(request, "login.html", sess=sess, next=_safe_next(next), status=429,
                          error="Too many failed logins for this account. Wait a few minutes.", no_accounts=False)
        acc = accounts.authenticate(username, password)
        if acc is None:
            log.info("web.login_failed", account=logged, address=address)
            return render(request, "login.html", sess=sess, next=_safe_next(next), status=401,
                          error="Unknown account or wrong password.", no_accounts=False)
        throttle.succeeded(key)
        by_address.passed(address)
        log.info("web.login", account=acc.id)
        response = RedirectResponse(_safe_next(next), status_code=303)
        set_session(response, {"uid": acc.id, "sk": acc.session_key, "csrf": new_csrf(), "at": int(time.time())})
        return response

    @app.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")):
        sess = read_session(request)
        check_csrf(request, sess, csrf_token)
        acc = session_account(sess)
        if acc is not None:  # a copy of the cookie taken before logout must not outlive it
            accounts.end_sessions(acc.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookies)
        return response

    # ---------------------------------------------------------------- pages
    def parse_filters(agent: str, namespace: str, category: str, min_age_hours: str, overdue: str, text: str = ""):
        errors = []
        age = None
        text = text.strip()
        if len(text) > MAX_TEXT_FILTER:
            errors.append(f"the text to look for is at most {MAX_TEXT_FILTER} characters")
            text = ""
        if min_age_hours.strip():
            try:
                age = float(min_age_hours)
                if not math.isfinite(age) or not 0 <= age <= MAX_AGE_HOURS:
                    raise ValueError
            except ValueError:
                errors.append(f"minimum age must be a number of hours from 0 to {MAX_AGE_HOURS:,.0f}")
                age = None
        ns = tuple(p for p in namespace.strip().strip("/").split("/") if p) if namespace.strip() else None
        filters = {"agent": agent.strip(), "namespace": namespace.strip(), "category": category.strip(),
                   "min_age_hours": min_age_hours.strip(), "overdue": overdue in ("1", "on", "true", "yes"),
                   "text": text}
        kwargs = {"agent_id": filters["agent"] or None, "namespace_prefix": ns,
                  "category": filters["category"] or None, "min_age_hours": age,
                  "overdue_only": filters["overdue"], "text": text or None}
        return filters, kwargs, errors

    def alike_of(proposal_id: str, user: Account) -> str | None:
        """The proposal whose memory's wording a listing matches (``ReviewService.list(alike=...)``), or None when
        there is none this user may see: a quarantined one's text is for admins only, and the escalations worded as
        it is would tell a reviewer what it says."""
        row = service.gate.registry.get(proposal_id.strip())
        if row is None or hidden_from(user, row["state"]):
            return None
        return row["id"]

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, agent: str = "", namespace: str = "", category: str = "",
              min_age_hours: str = "", overdue: str = "", text: str = "", alike: str = "",
              limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
        user, sess = page_user(request)
        filters, kwargs, errors = parse_filters(agent, namespace, category, min_age_hours, overdue, text)
        if alike.strip():
            filters["alike"] = kwargs["alike"] = alike_of(alike, user)
            if filters["alike"] is None:
                errors.append("there is no proposal with that id to list the escalations worded as it is")
        items = service.list(state=ProposalState.pending, limit=limit, offset=offset, **kwargs)
        return render(request, "queue.html", user=user, sess=sess, items=items, filters=filters, errors=errors,
                      categories=sorted(service.gate.policy.categories), limit=limit,
                      pages=_pages(filters, offset, limit, len(items)),
                      here=_this_page(request))

    def load_detail(proposal_id: str, user: Account):
        try:
            detail = service.show(proposal_id)
        except NotFoundError as exc:
            gone = "pruned from the registry" in str(exc) or "and erased on" in str(exc)
            raise _PageError(404, "Not found", str(exc) if gone else "There is no proposal with this id.") from None
        if hidden_from(user, detail.state.value):
            raise _PageError(403, "Admins only", "Quarantined memories are visible to admins only.")
        return detail

    def detail_page(request: Request, user: Account, sess: dict, proposal_id: str, *, status: int = 200,
                    error: str | None = None, form: dict | None = None) -> HTMLResponse:
        detail = load_detail(proposal_id, user)
        prefill, fmt = _edit_prefill(detail.proposal.value)
        form = form or {}
        if form.get("type") == "edit":
            prefill, fmt = form.get("edited_text", prefill), form.get("edit_format", fmt)
        final_value = None
        row = service.gate.registry.get(proposal_id)
        if row and row.get("final_value_json"):
            final_value = json.loads(row["final_value_json"])
        return render(request, "detail.html", user=user, sess=sess, status=status, d=detail, error=error,
                      edit_text=prefill, edit_format=fmt if fmt in ("text", "json") else "text",
                      reject_reason=form.get("reason", "") if form.get("type") == "reject" else "",
                      own_agent=user.id == normalize_name(detail.agent_id), final_value=final_value,
                      can_decide=detail.state is ProposalState.pending, alike=_alike(detail),
                      can_release=user.is_admin and detail.releasable,
                      release_reason=form.get("reason", "") if form.get("type") == "release" else "")

    def _alike(detail) -> dict | None:
        """For a pending escalation: how many more of its agent's escalations wait worded the same
        (``registry.text_wording``), and the queue filtered to them (where they can be decided at once); None when
        there are none."""
        if detail.state is not ProposalState.pending:
            return None
        n = service.gate.registry.count_pending_alike(detail.agent_id, detail.text, excluding=detail.id)
        if not n:
            return None
        return {"count": n, "url": "/queue?" + urlencode({"agent": detail.agent_id, "alike": detail.id})}

    @app.get("/items/{proposal_id}", response_class=HTMLResponse)
    def item(request: Request, proposal_id: str):
        user, sess = page_user(request)
        return detail_page(request, user, sess, proposal_id)

    @app.post("/items/{proposal_id}/decision", response_class=HTMLResponse)
    def decide_form(request: Request, proposal_id: str, csrf_token: str = Form(""), type: str = Form(""),  # noqa: A002
                    reason: str = Form(""), edited_text: str = Form(""), edit_format: str = Form("text"),
                    expected_version: str = Form("")):
        user, sess = page_user(request)
        check_csrf(request, sess, csrf_token)
        form = {"type": type, "reason": reason, "edited_text": edited_text, "edit_format": edit_format}
        if service.gate.registry.get(proposal_id) is None:
            raise _PageError(404, "Not found", "There is no proposal with this id.")
        try:
            version = int(expected_version) if expected_version.strip() else None
        except ValueError:
            return detail_page(request, user, sess, proposal_id, status=400, form=form,
                               error="The form's item version is not a number. Reload the page and try again.")
        payload: dict[str, Any] = {"type": type, "reviewer": user.id, "reason": reason.strip() or None,
                                   "channel": "web"}
        if type == "edit":
            if edit_format == "json":
                try:
                    value = json.loads(edited_text)
                except json.JSONDecodeError as exc:
                    return detail_page(request, user, sess, proposal_id, status=400, form=form,
                                       error=f"The edited memory is not valid JSON: {exc}")
                except RecursionError:
                    return detail_page(request, user, sess, proposal_id, status=400, form=form,
                                       error="The edited memory is nested too deeply to be read.")
                if not isinstance(value, dict):
                    return detail_page(request, user, sess, proposal_id, status=400, form=form,
                                       error="The edited memory must be a JSON object.")
                payload["edited_value"] = value
            else:
                # a browser sends a text box's line breaks as CRLF: the memory keeps the agent's line breaks
                payload["edited_value"] = edited_text.replace("\r\n", "\n").strip()
        try:
            decision = ReviewDecision.model_validate(payload)
            done = service.submit_decision(proposal_id, decision, expected_version=version)
        except ValidationError as exc:
            msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            return detail_page(request, user, sess, proposal_id, status=400, form=form, error=msg)
        except ReviewPermissionError as exc:
            return detail_page(request, user, sess, proposal_id, status=403, form=form, error=str(exc))
        except ValueError as exc:  # e.g. an edited value that is not a valid memory
            return detail_page(request, user, sess, proposal_id, status=400, form=form, error=str(exc))
        except OtherStoreError as exc:  # nothing changed: the page again, the reviewer's edit kept, and why
            return detail_page(request, user, sess, proposal_id, status=409, form=form, error=str(exc))
        except ConflictError as exc:
            current = service.show(proposal_id, similar=0)
            return render(request, "conflict.html", user=user, sess=sess, status=409, message=str(exc),
                          d=current, hide_text=hidden_from(user, current.state.value))
        log.info("web.decision", proposal_id=proposal_id, reviewer=user.id, type=type, via=done.via)
        verb = {"approve": "Approved", "edit": "Edited and approved", "reject": "Rejected"}[decision.type]
        text = f"{verb} {proposal_id[:12]}: now {done.item.state.value}"
        if done.via == "graph":
            text += f" (resumed paused thread {done.thread_id})"
        if done.warning:
            text += f". Note: {done.warning}"
        response = RedirectResponse("/queue", status_code=303)
        set_flash(response, "warn" if done.warning else "ok", text)
        return response

    @app.post("/items/{proposal_id}/release", response_class=HTMLResponse)
    def release_form(request: Request, proposal_id: str, csrf_token: str = Form(""), reason: str = Form("")):
        user, sess = page_user(request)
        check_csrf(request, sess, csrf_token)
        if not user.is_admin:
            raise _PageError(403, "Admins only", "Only an admin can send a quarantined write to review.")
        if service.gate.registry.get(proposal_id) is None:
            raise _PageError(404, "Not found", "There is no proposal with this id.")
        form = {"type": "release", "reason": reason}
        try:
            item = service.release(proposal_id, user.id, reason)
        except ValueError as exc:
            return detail_page(request, user, sess, proposal_id, status=400, form=form, error=str(exc))
        except ReviewPermissionError as exc:
            return detail_page(request, user, sess, proposal_id, status=403, form=form, error=str(exc))
        except ConflictError as exc:
            return detail_page(request, user, sess, proposal_id, status=409, form=form, error=str(exc))
        log.info("web.released", proposal_id=proposal_id, released_as=item.id, operator=user.id)
        response = RedirectResponse(item_url(item.id), status_code=303)
        set_flash(response, "ok", f"Sent {proposal_id[:12]} to the review queue as {item.id[:12]}")
        return response

    @app.post("/queue/decisions", response_class=HTMLResponse)
    def bulk_decide_form(request: Request, csrf_token: str = Form(""), action: str = Form(""),
                         item: list[str] = Form([]), reason: str = Form(""), confirm: str = Form(""),
                         back: str = Form("/queue")):
        """Several escalations of the queue page decided at once (``ReviewService.decide_many``). Both an
        approval and a rejection first show the selected memories in full, and are applied when the reviewer
        confirms on that page: a person's rejection cannot be undone, and Enter in the reason field rejected
        every selected escalation at once (the form's first button)."""
        user, sess = page_user(request)
        check_csrf(request, sess, csrf_token)
        back = _back_to(back, "/queue")
        if action not in ("approve", "reject"):
            raise _PageError(400, "Bad request", "Choose to approve or to reject the selected escalations.")
        pairs, bad = _parse_selected(item)
        response = RedirectResponse(back, status_code=303)
        if bad:
            raise _PageError(400, "Bad request", "The form's selected items do not read as id:version. Reload "
                                                 "the queue and try again.")
        if not pairs:
            set_flash(response, "error", "Select the escalations to decide first.")
            return response
        if len(pairs) > MAX_BULK_DECISIONS:
            set_flash(response, "error", f"At most {MAX_BULK_DECISIONS} escalations are decided at once; "
                                         f"{len(pairs)} were selected.")
            return response
        try:
            decision = ReviewDecision(type=action, reviewer=user.id, reason=reason.strip() or None, channel="web")
        except ValidationError as exc:
            set_flash(response, "error", "Nothing was decided: " + "; ".join(
                e["msg"].removeprefix("Value error, ") for e in exc.errors()) + ".")
            return response
        if confirm != "1":
            return bulk_confirm_page(request, user, sess, pairs, reason, back, action)
        outcomes = service.decide_many(pairs, decision)
        log.info("web.bulk_decision", reviewer=user.id, type=action, asked=len(outcomes),
                 decided=sum(o.status == "decided" for o in outcomes))
        kind, text = _bulk_summary("Approved" if action == "approve" else "Rejected", outcomes)
        set_flash(response, kind, text)
        return response

    def bulk_confirm_page(request: Request, user: Account, sess: dict, pairs: list[tuple[str, int]],
                          reason: str, back: str, action: str) -> HTMLResponse:
        """The selected escalations in full, for a reviewer to read before approving or rejecting them; those
        that cannot be decided so here are listed apart with why."""
        problem_of = service.bulk_approval_problem if action == "approve" else service.bulk_rejection_problem
        ready, left_out = [], []
        for pid, version in dict(pairs).items():
            problem = problem_of(pid, version, user.id)
            if problem is None:
                ready.append(service.item(pid))
            else:
                left_out.append((pid, problem))
        return render(request, "bulk_confirm.html", user=user, sess=sess, ready=ready, left_out=left_out,
                      reason=reason, back=back, action=action)

    @app.post("/quarantine/release", response_class=HTMLResponse)
    def bulk_release_form(request: Request, csrf_token: str = Form(""), item: list[str] = Form([]),
                          reason: str = Form(""), back: str = Form("/quarantine")):
        """Several quarantined writes sent to the review queue at once (``ReviewService.release_many``;
        admins only), each released or refused on its own."""
        user, sess = page_user(request)
        check_csrf(request, sess, csrf_token)
        if not user.is_admin:
            raise _PageError(403, "Admins only", "Only an admin can send a quarantined write to review.")
        response = RedirectResponse(_back_to(back, "/quarantine"), status_code=303)
        if not item:
            set_flash(response, "error", "Select the quarantined writes to send to review first.")
            return response
        try:
            outcomes = service.release_many(item, user.id, reason)
        except ValueError as exc:
            set_flash(response, "error", f"Nothing was sent to review: {exc}.")
            return response
        log.info("web.bulk_release", operator=user.id, asked=len(outcomes),
                 released=sum(o.status == "released" for o in outcomes))
        kind, text = _bulk_summary("Sent to review", outcomes, "quarantined write")
        set_flash(response, kind, text)
        return response

    @app.get("/decided", response_class=HTMLResponse)
    def decided(request: Request, reviewer: str = "", agent: str = "", namespace: str = "", category: str = "",
                text: str = "", limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
        user, sess = page_user(request)
        filters, kwargs, errors = parse_filters(agent, namespace, category, "", "", text)
        del kwargs["overdue_only"]
        if kwargs["text"] and not user.is_admin:  # the matches would tell what hidden quarantined texts hold
            errors.append("Searching the texts of decided items is for admins only: the texts of rejected "
                          "(quarantined) memories are hidden from reviewers.")
            kwargs["text"], filters["text"] = None, ""
        filters["reviewer"] = reviewer.strip()
        items = service.decided(reviewer=normalize_name(reviewer) or None, limit=limit, offset=offset, **kwargs)
        return render(request, "decided.html", user=user, sess=sess, items=items, filters=filters, errors=errors,
                      categories=sorted(service.gate.policy.categories), limit=limit, admin_states=ADMIN_STATES,
                      pages=_pages(filters, offset, limit, len(items)))

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, agent: str = "", namespace: str = "", category: str = "", text: str = "",
                   limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
        user, sess = page_user(request)
        if not user.is_admin:
            raise _PageError(403, "Admins only", "The quarantine is visible to admins only.")
        filters, kwargs, errors = parse_filters(agent, namespace, category, "", "", text)
        items = service.list(state=ProposalState.quarantined, limit=limit, offset=offset, newest_first=True,
                             **kwargs)
        return render(request, "quarantine.html", user=user, sess=sess, items=items, filters=filters,
                      errors=errors, categories=sorted(service.gate.policy.categories), limit=limit,
                      pages=_pages(filters, offset, limit, len(items)),
                      here=_this_page(request))

    @app.get("/reviewers", response_class=HTMLResponse)
    def reviewers(request: Request):
        user, sess = page_user(request)
        if not user.is_admin:
            raise _PageError(403, "Admins only", "The reviewer list is visible to admins only.")
        return render(request, "reviewers.html", user=user, sess=sess, accounts=accounts.list())

    # ------------------------------------------------------------------ API
    def api_user(request: Request) -> Account:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        acc = accounts.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if acc is None:
            # never the token (a real one with a typo, or one of another system); the address, for a security team
            # watching for tokens being tried
            log.warning("web.api_auth_failed", address=request.client.host if request.client else "unknown",
                        path=request.url.path, scheme=scheme.lower()[:16] or None)
            raise HTTPException(401, "a valid bearer token is required",
                                headers={"WWW-Authenticate": 'Bearer realm="gatekeeper"'})
        return acc

    def api_item(item: QueueItem, user: Account) -> dict:
        """A queue item as the API lists it (the item's fields, never a detail's proposal, review or decision);
        for a user the item is hidden from (a quarantined memory, a non-admin), without its text or the part the
        classifier scored it by."""
        data = item.model_dump(mode="json", include=set(QueueItem.model_fields))
        if hidden_from(user, item.state.value):
            data["text"] = data["deciding_text"] = None
        # characters a reader cannot see (bidi controls, tag text, ...): a client showing the text should
        # reveal them as the review pages do (gatekeeper.hidden_chars)
        data["hidden_characters"] = hidden_in(data["text"]) if data["text"] else []
        return data

    @app.get("/api/queue")
    def api_queue(user: Account = Depends(api_user), state: str = "pending", agent: str = "",
                  namespace: str = "", category: str = "",
                  min_age_hours: float | None = Query(None, ge=0, le=MAX_AGE_HOURS, allow_inf_nan=False),
                  overdue: bool = False, text: str = Query("", max_length=MAX_TEXT_FILTER), alike: str = "",
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
        ns = tuple(p for p in namespace.strip("/").split("/") if p) if namespace else None
        filters = {"agent_id": agent or None, "namespace_prefix": ns, "category": category or None,
                   "min_age_hours": min_age_hours, "text": text.strip() or None}
        if alike.strip():
            if state == "decided":
                raise HTTPException(422, "alike lists pending and other proposals, not decided ones")
            filters["alike"] = alike_of(alike, user)
            if filters["alike"] is None:
                raise HTTPException(404, f"no proposal {alike.strip()} to list the proposals worded as it is")
        if state == "decided":
            if overdue:
                raise HTTPException(422, "overdue applies to pending items, not decided ones")
            if filters["text"] and not user.is_admin:  # the matches would tell what hidden quarantined texts hold
                raise HTTPException(403, "searching the texts of decided items is for admins only")
            items = service.decided(limit=limit, offset=offset, **filters)
        else:
            if state not in {s.value for s in ProposalState}:
                raise HTTPException(422, "state is one of pending, committed, quarantined, decided")
            if hidden_from(user, state):
                raise HTTPException(403, "quarantined memories are visible to admins only")
            items = service.list(state=state, overdue_only=overdue, limit=limit, offset=offset, **filters)
        return {"items": [api_item(i, user) for i in items], "count": len(items)}

    @app.get("/api/items/{proposal_id}")
    def api_detail(proposal_id: str, user: Account = Depends(api_user)):
        try:
            detail = service.show(proposal_id)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        if hidden_from(user, detail.state.value):
            raise HTTPException(403, "quarantined memories are visible to admins only")
        data = detail.model_dump(mode="json")
        # as the queue lists it: characters a reader cannot see in the memory (every string of its value), which a
        # client showing it should reveal as the review pages do, before a reviewer decides
        data["hidden_characters"] = hidden_in(detail.proposal.text)
        return data

    @app.get("/api/resumes")
    def api_resumes(user: Account = Depends(api_user)):
        """Agent threads that decisions resumed: those still running, then the last finished ones and what
        the rest of their run raised (admins only: it names agents' threads across the queue)."""
        if not user.is_admin:
            raise HTTPException(403, "resumed agent threads are visible to admins only")
        runs = service.resume_runs()
        return {"runs": [r.model_dump(mode="json") for r in runs],
                "running": sum(r.finished_at is None for r in runs)}

    @app.get("/metrics", include_in_schema=False)
    def metrics(user: Account = Depends(api_user)):
        """The gate's numbers in Prometheus' text format (``gatekeeper.health``); any account's bearer token
        (Prometheus: ``authorization: {credentials: <token>}``). Counts only, no memory text."""
        from gatekeeper.health import gate_health, to_prometheus

        return Response(to_prometheus(gate_health(service.gate)), media_type="text/plain; version=0.0.4")

    @app.post("/api/items/{proposal_id}/decision")
    def api_decide(proposal_id: str, body: ApiDecision, user: Account = Depends(api_user)):
        try:
            decision = ReviewDecision(type=body.type, reviewer=user.id, reason=body.reason, channel="api",
                                      edited_value=body.edited_value)
        except ValidationError as exc:
            return JSONResponse({"error": "invalid", "detail": [e["msg"] for e in exc.errors()]}, status_code=422)
        try:
            done = service.submit_decision(proposal_id, decision, expected_version=body.expected_version)
        except NotFoundError:
            return JSONResponse({"error": "not_found", "detail": f"no proposal {proposal_id}"}, status_code=404)
        except ReviewPermissionError as exc:
            return JSONResponse({"error": "forbidden", "detail": str(exc)}, status_code=403)
        except ConflictError as exc:
            return JSONResponse({"error": "conflict", "detail": str(exc),
                                 "item": api_item(service.item(proposal_id), user)}, status_code=409)
        except ValidationError as exc:  # e.g. an edited value that is not a valid memory
            return JSONResponse({"error": "invalid", "detail": [e["msg"] for e in exc.errors()]}, status_code=422)
        except ValueError as exc:  # e.g. an edited value with NaN, which the ledger cannot record
            return JSONResponse({"error": "invalid", "detail": [str(exc)]}, status_code=422)
        log.info("api.decision", proposal_id=proposal_id, reviewer=user.id, type=body.type, via=done.via)
        return {"item": api_item(done.item, user), "via": done.via, "thread_id": done.thread_id,
                "warning": done.warning}

    @app.post("/api/decisions")
    def api_decide_many(body: ApiBulkDecision, user: Account = Depends(api_user)):
        """One approval or rejection applied to each listed escalation on its own: 200 with an outcome per
        distinct id (``decided``, or ``not_found`` / ``conflict`` / ``forbidden`` / ``invalid`` with why), also
        when some were left out; 422, with nothing decided, for a malformed request."""
        try:
            decision = ReviewDecision(type=body.type, reviewer=user.id, reason=body.reason, channel="api")
        except ValidationError as exc:
            return JSONResponse({"error": "invalid", "detail": [e["msg"] for e in exc.errors()]}, status_code=422)
        outcomes = service.decide_many([(i.proposal_id, i.expected_version) for i in body.items], decision)
        log.info("api.bulk_decision", reviewer=user.id, type=body.type, asked=len(outcomes),
                 decided=sum(o.status == "decided" for o in outcomes))
        return {"results": [{"proposal_id": o.proposal_id, "status": o.status,
                             "item": api_item(o.item, user) if o.item is not None else None,
                             "via": o.via, "warning": o.warning, "error": o.error} for o in outcomes],
                "decided": sum(o.status == "decided" for o in outcomes)}

    @app.post("/api/items/{proposal_id}/release")
    def api_release(proposal_id: str, body: ApiRelease, user: Account = Depends(api_user)):
        if not user.is_admin:
            return JSONResponse({"error": "forbidden", "detail": "only an admin can send a quarantined write to "
                                 "review"}, status_code=403)
        try:
            item = service.release(proposal_id, user.id, body.reason)
        except NotFoundError:
            return JSONResponse({"error": "not_found", "detail": f"no proposal {proposal_id}"}, status_code=404)
        except ReviewPermissionError as exc:
            return JSONResponse({"error": "forbidden", "detail": str(exc)}, status_code=403)
        except ConflictError as exc:
            return JSONResponse({"error": "conflict", "detail": str(exc)}, status_code=409)
        except ValueError as exc:  # a reason of blanks only
            return JSONResponse({"error": "invalid", "detail": [str(exc)]}, status_code=422)
        log.info("api.released", proposal_id=proposal_id, released_as=item.id, operator=user.id)
        return {"item": api_item(item, user), "released_from": proposal_id}

    return app


def loopback_host(host: str) -> bool:
    """True for addresses that only this machine can reach."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["create_app", "loopback_host", "ApiDecision", "ApiBulkDecision", "ApiRelease"]
