"""Satisfaction after the final answer: ``GET /v1/feedback?token=...`` (the page of the link in
the final notice: a 5-point scale and an optional comment, nothing personal asked) and
``POST /v1/feedback`` (the page's form, or JSON ``{"token", "rating", "comment"}``).

One answer per complaint: under the complaint's key lock, an answer already recorded for its
reference (``StateStore.processed_event``, any replica) refuses the next, whatever link it comes
through; otherwise ``complaint.feedback_received`` is published (its id derives from the
reference) and then recorded. Links are valid ``GATEWAY_TRACKER_FEEDBACK_VALID_DAYS`` (30).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from gateway.errors import PublishError, TokenRefused
from gateway.events.envelope import make_event
from gateway.events.feedback import MAX_COMMENT, FeedbackReceived
from gateway.notifier.feedback_links import FeedbackClaim, FeedbackLinks
from gateway.web.context import WebContext
from gateway.web.depth import depth_checked_route
from gateway.web.i18n import choose_language
from gateway.web.problems import FieldError, ProblemError, problem_responses
from gateway.web.tracker_pages import (
    NO_STORE,
    TRACKER_MESSAGES,
    page_or_problem,
    problem_described,
    render_page,
)

SOURCE = "urn:intake-gateway:feedback"
MAX_TOKEN = 1000
_HTML = {"text/html": {"schema": {"type": "string"}}}


class FeedbackAnswer(BaseModel):
    token: str = Field(max_length=MAX_TOKEN, description="from the link of the final notice")
    rating: int = Field(ge=1, le=5, description="1 very dissatisfied ... 5 very satisfied")
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class FeedbackRecorded(BaseModel):
    reference: str
    rating: int


_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": FeedbackAnswer.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "string"},
                        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                        "comment": {"type": "string", "maxLength": MAX_COMMENT},
                    },
                    "required": ["token"],
                }
            },
        },
    }
}
_POST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _HTML, "description": "The page's form: thanks, or the form again"},
    201: {"model": FeedbackRecorded, "description": "JSON: the answer was recorded"},
    **page_or_problem(400, "the link is not valid, or the request malformed"),
    **problem_described(409, "this complaint's satisfaction was given already (JSON)"),
    **page_or_problem(410, "the link has expired, or (page) was used already"),
    **page_or_problem(422, "no rating 1 to 5, or a comment too long"),
    **problem_responses(429),
    **page_or_problem(503, "Kafka unavailable: nothing recorded, retry"),
}


def feedback_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(
        tags=["feedback"], route_class=depth_checked_route(ctx.settings.http.max_json_depth)
    )
    links = FeedbackLinks(ctx.components.tokens.link_key, ctx.settings.tracker.feedback_valid_days)
    days = ctx.settings.tracker.feedback_valid_days

    @router.get(
        "/v1/feedback",
        response_class=HTMLResponse,
        summary="The satisfaction page",
        responses={
            200: {"content": _HTML, "description": "the scale and the comment"},
            400: {"content": _HTML, "description": "invalid link"},
            410: {"content": _HTML, "description": "expired, or already answered"},
            **problem_responses(429, 503),
        },
    )
    async def feedback_page(request: Request, token: str = "") -> HTMLResponse:
        """The link of the final notice (valid 30 days, one answer per complaint)."""
        await ctx.limit(request)
        try:
            claim = links.read(token[:MAX_TOKEN])
        except TokenRefused as refused:
            return _refused_page(request, refused, days)
        lang = _language(request, claim)
        if await _answered(ctx, claim):
            return render_page("feedback.html", lang, 410, outcome="used")
        return _form(lang, claim, token)

    @router.post(
        "/v1/feedback",
        summary="Give one's satisfaction",
        responses=_POST_RESPONSES,
        openapi_extra=_POST_BODY,
        response_model=None,
    )
    async def give_feedback(request: Request) -> Response:
        await ctx.limit(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            return await _from_json(ctx, links, request)
        return await _from_form(ctx, links, request, days)

    return router


async def _from_json(ctx: WebContext, links: FeedbackLinks, request: Request) -> Response:
    try:
        answer = FeedbackAnswer.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [
            FieldError(field=".".join(map(str, error["loc"])), message=error["msg"])
            for error in exc.errors()
        ]
        raise ProblemError(422, "invalid-fields", "Invalid fields", errors=errors) from None
    try:
        claim = links.read(answer.token)
    except TokenRefused as refused:
        if refused.reason == "expired":
            raise ProblemError(410, "link-expired", "The link has expired") from None
        raise ProblemError(400, "invalid-link", "The link is not valid") from None
    if not await _record(ctx, claim, answer.rating, answer.comment, claim.language):
        raise ProblemError(409, "already-answered", "This complaint's feedback was given already")
    recorded = FeedbackRecorded(reference=claim.reference, rating=answer.rating)
    return JSONResponse(recorded.model_dump(), status_code=201, headers=NO_STORE)


async def _from_form(
    ctx: WebContext, links: FeedbackLinks, request: Request, days: int
) -> HTMLResponse:
    form = await request.form(max_files=0, max_fields=10)
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    token = values.get("token", "")[:MAX_TOKEN]
    try:
        claim = links.read(token)
    except TokenRefused as refused:
        return _refused_page(request, refused, days)
    lang = _language(request, claim)
    t, errors = TRACKER_MESSAGES[lang], {}
    rating = values.get("rating", "")
    if rating not in {"1", "2", "3", "4", "5"}:
        errors["rating"] = t["feedback_error_rating"]
    comment = values.get("comment", "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = t["feedback_error_comment"]
    if errors:
        return _form(lang, claim, token, 422, errors=errors, values=values)
    try:
        recorded = await _record(ctx, claim, int(rating), comment or None, lang)
    except PublishError:
        notice = t["feedback_unavailable"]
        return _form(lang, claim, token, 503, values=values, notice=notice)
    return render_page("feedback.html", lang, 200 if recorded else 410, outcome=_done(recorded))


async def _record(
    ctx: WebContext, claim: FeedbackClaim, rating: int, comment: str | None, language: str | None
) -> bool:
    """Publish the answer, once per complaint; False when one was given already."""
    key = _answered_key(claim)
    async with ctx.exclusive("feedback", claim.reference):
        if await ctx.state.processed_event(key) is not None:
            return False
        given = FeedbackReceived(
            reference=claim.reference,
            rating=rating,
            comment=comment,
            language=language if language in ("fr", "en") else None,
            given_at=datetime.now(UTC),
        )
        event = make_event(given, source_key=key, source=SOURCE)
        await ctx.publisher.publish(event)
        await ctx.state.mark_processed(key, event.id)
    return True


async def _answered(ctx: WebContext, claim: FeedbackClaim) -> bool:
    return await ctx.state.processed_event(_answered_key(claim)) is not None


def _answered_key(claim: FeedbackClaim) -> str:
    return f"feedback:{claim.reference}"


def _done(recorded: bool) -> str:
    return "thanks" if recorded else "used"


def _language(request: Request, claim: FeedbackClaim | None) -> str:
    asked = request.query_params.get("lang") or (claim.language if claim else None)
    return choose_language(asked, request.headers.get("accept-language"))


def _refused_page(request: Request, refused: TokenRefused, days: int) -> HTMLResponse:
    claim = refused.claim if isinstance(refused.claim, FeedbackClaim) else None
    lang = _language(request, claim)
    if refused.reason == "expired":
        return render_page("feedback.html", lang, 410, outcome="expired", valid_days=days)
    return render_page("feedback.html", lang, 400, outcome="invalid")


def _form(
    lang: str, claim: FeedbackClaim, token: str, status: int = 200, **context: Any
) -> HTMLResponse:
    return render_page(
        "feedback.html",
        lang,
        status,
        outcome="form",
        reference=claim.reference,
        token=token,
        headers={"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"},
        **context,
    )
