"""The office's page of the dead-letter queue, ``/admin/dlq`` (French and English,
server-rendered, plain HTML forms: works without JavaScript).

An operator signs in once by pasting an admin token (``admin_session``: a signed cookie, 8
hours); the page lists the open records with their reasons and, for each, a "redrive" button
(with a field for the right reference when documents did not match) and a "dismiss" one. Every
form carries the session's CSRF token; each action redirects back to the list (a reload sends
nothing again), which says what became of the record. The pages are never cached and never
framed (``X-Frame-Options``, ``frame-ancestors``): a button cannot be clicked from another site.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.dlq.operations import DlqOperations, DlqRefusal, RecordNotOpen
from gateway.errors import (
    ChannelUnavailable,
    ClaimStoreError,
    EventRejected,
    InvalidReference,
    PublishError,
)
from gateway.privacy.audit import record_raw_copy_read
from gateway.reference import parse_reference
from gateway.store.dlq import AmbiguousId, DlqStatus
from gateway.web.admin_session import (
    COOKIE,
    SESSION_S,
    AdminSession,
    admin_of_token,
    admin_problems,
    check_csrf,
    new_session_cookie,
    secure_cookie,
    session_of,
)
from gateway.web.context import WebContext
from gateway.web.i18n import LANGUAGES, MESSAGES
from gateway.web.pages import language_of

TEMPLATES = Path(__file__).with_name("templates")
ADMIN_MESSAGES = {
    language: {
        **MESSAGES[language],
        **tomllib.loads(
            (Path(__file__).with_name("messages") / f"admin.{language}.toml").read_text("utf-8")
        ),
    }
    for language in LANGUAGES
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}
PROBLEMS = ("not_open", "cannot", "reference", "unavailable")
_HTML = {"text/html": {"schema": {"type": "string"}}}
_BACK: dict[int | str, dict[str, Any]] = {
    303: {"description": "Back to the list, which says what became of the record"},
    **admin_problems(403),
}
_environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
)


def render_admin(name: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    other = next(language for language in LANGUAGES if language != lang)
    html = _environment.get_template(name).render(
        lang=lang,
        other_lang=other,
        t=ADMIN_MESSAGES[lang],
        format_time=lambda moment: moment.astimezone().strftime("%Y-%m-%d %H:%M"),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def admin_page_routes(router: APIRouter, ctx: WebContext, operations: DlqOperations) -> None:
    tokens = ctx.settings.admin_tokens
    privacy = ctx.components.backend.privacy

    @router.get("/admin/dlq", response_class=HTMLResponse, summary="The office's DLQ page")
    async def dlq_page(
        request: Request, record: str | None = None, problem: str | None = None
    ) -> HTMLResponse:
        """Open records and their reasons, with redrive buttons (sign-in form without a session)."""
        lang = language_of(request)
        session = session_of(request, tokens)
        if session is None:
            return render_admin("admin_login.html", lang)
        notice = await _notice(operations, lang, record, problem)
        return render_admin(
            "admin_dlq.html",
            lang,
            admin=session.admin,
            csrf=session.csrf,
            records=await operations.records(),
            notice=notice,
        )

    @router.post(
        "/admin/login",
        response_class=HTMLResponse,
        summary="Sign in with a token",
        responses={
            303: {"description": "Signed in: to the list, with the session cookie"},
            401: {"content": _HTML, "description": "The sign-in form again: not an admin's"},
            **admin_problems(429),
        },
    )
    async def sign_in(request: Request) -> Response:
        await ctx.limit(request)  # the per-address allowance: no guessing tokens at speed
        lang = language_of(request)
        token = (await request.form()).get("token")
        admin = admin_of_token(token if isinstance(token, str) else "", tokens)
        if admin is None:
            return render_admin("admin_login.html", lang, 401, error=True)
        response = _back(lang)
        response.set_cookie(
            COOKIE,
            new_session_cookie(admin, tokens),
            max_age=SESSION_S,
            path="/admin",
            secure=secure_cookie(request, ctx.settings),
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/admin/logout", response_class=HTMLResponse, summary="Sign out", responses=_BACK)
    async def sign_out(request: Request) -> Response:
        session, _ = await _posted(request, tokens)
        response = _back(language_of(request))
        if session is not None:
            response.delete_cookie(COOKIE, path="/admin")
        return response

    @router.post(
        "/admin/dlq/{record_id}/redrive",
        response_class=HTMLResponse,
        summary="Redrive a record from the page",
        responses=_BACK,
    )
    async def redrive(request: Request, record_id: str) -> Response:
        lang = language_of(request)
        session, form = await _posted(request, tokens)
        if session is None:
            return _back(lang)
        reference = str(form.get("reference") or "").strip() or None
        if reference is not None and not _is_reference(reference):
            return _back(lang, record_id, "reference")
        problem = await _attempt(operations.redrive(record_id, session.admin, reference))
        if problem is None:  # its raw copy was read again: on record
            record = await operations.record(record_id)
            await record_raw_copy_read(privacy, record, session.admin, "redrive (office's page)")
        return _back(lang, record_id, problem)

    @router.post(
        "/admin/dlq/{record_id}/dismiss",
        response_class=HTMLResponse,
        summary="Dismiss a record from the page",
        responses=_BACK,
    )
    async def dismiss(request: Request, record_id: str) -> Response:
        lang = language_of(request)
        session, _ = await _posted(request, tokens)
        if session is None:
            return _back(lang)
        problem = await _attempt(operations.dismiss(record_id, session.admin, "from the page"))
        return _back(lang, record_id, problem)


async def _posted(request: Request, tokens: Any) -> tuple[AdminSession | None, dict[str, str]]:
    """The session of a posted form (its CSRF token checked: 403 otherwise), and its fields;
    no session: the page asks to sign in again."""
    session = session_of(request, tokens)
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    if session is not None:
        check_csrf(session, form.get("csrf", ""))
    return session, form


async def _attempt(action: Any) -> str | None:
    """Run a redrive or dismissal; the problem key to show, or None when it was done."""
    try:
        await action
    except RecordNotOpen:
        return "not_open"
    except (DlqRefusal, AmbiguousId, EventRejected):
        return "cannot"
    except (PublishError, ClaimStoreError, ChannelUnavailable):
        return "unavailable"
    return None


def _is_reference(text: str) -> bool:
    try:
        parse_reference(text)
    except InvalidReference:
        return False
    return True


async def _notice(
    operations: DlqOperations, lang: str, record_id: str | None, problem: str | None
) -> dict[str, Any] | None:
    """What the last action did, said above the list."""
    t = ADMIN_MESSAGES[lang]
    try:
        record = await operations.record(record_id) if record_id else None
    except (DlqRefusal, AmbiguousId):
        record = None
    if problem in PROBLEMS:
        return {"record": record, "text": t[f"problem_{problem}"], "problem": True}
    if record is None:
        return None
    when = _when(record.closed_at)
    texts = {
        DlqStatus.REDRIVEN: f"{t['notice_redriven']} ({record.closed_by}, {when})",
        DlqStatus.DISMISSED: f"{t['notice_dismissed']} ({record.closed_by}, {when})",
    }
    if record.status in texts:
        return {"record": record, "text": texts[record.status], "problem": False}
    still = t["notice_still_rejected"] if record.attempts else t["notice_open"]
    return {"record": record, "text": f"{still}: {record.reason}", "problem": record.attempts > 0}


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


def _back(lang: str, record_id: str | None = None, problem: str | None = None) -> Response:
    """303 to the list (a reload of it sends nothing again)."""
    query = {"lang": lang}
    if record_id:
        query["record"] = record_id
    if problem:
        query["problem"] = problem
    return RedirectResponse(f"/admin/dlq?{urlencode(query)}", status_code=303, headers=HEADERS)
