"""Where my complaint stands: ``GET/POST /complaints/status`` (a page, French and English, plain
HTML: no JavaScript needed) and ``POST /v1/complaints/status`` (JSON).

The person gives the reference and the email or phone given with it. A wrong pairing and an
unknown reference get the same answer after the same work (``StatusLookup``); every look-up
counts, before it is made, against a limit per client address and one per reference, so trying
contacts for a reference (or references for a contact) stops early. Answers are never cached.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, model_validator

from gateway.errors import InvalidReference
from gateway.normalizers.due import load_policies
from gateway.reference import parse_reference
from gateway.tracker.standing import ComplaintStanding, StatusLookup, contact_as_recorded
from gateway.web.context import WebContext, within_limits
from gateway.web.depth import depth_checked_route
from gateway.web.pages import language_of
from gateway.web.problems import FieldError, ProblemError, problem_responses
from gateway.web.tracker_pages import (
    NO_STORE,
    TRACKER_MESSAGES,
    problem_described,
    render_page,
)

HOUR_S = 3600.0
_HTML = {"text/html": {"schema": {"type": "string"}}}


class StatusQuery(BaseModel):
    """A reference and the email address or the phone number given with it (one of them)."""

    reference: str = Field(max_length=40, examples=["PL-7K3M-9Q2X-HB4G"])
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40, examples=["+15145551234"])

    @model_validator(mode="after")
    def _one_contact(self) -> StatusQuery:
        if bool(self.email) == bool(self.phone):
            msg = "give the email or the phone given with the complaint (one of them)"
            raise ValueError(msg)
        return self


class Limits:
    """The look-up limits: per client address and per reference, each per hour."""

    def __init__(self, ctx: WebContext) -> None:
        tracker = ctx.settings.tracker
        self.per_client = ctx.rate_limiter(tracker.status_per_client_per_hour, HOUR_S, "status")
        self.per_reference = ctx.rate_limiter(
            tracker.status_per_reference_per_hour, HOUR_S, "status-ref"
        )

    async def count(self, ctx: WebContext, request: Request, reference: str) -> None:
        """429 (``ProblemError``) when either limit is spent; counts the look-up otherwise."""
        await within_limits(
            [
                (self.per_client, ctx.client_address(request)),
                (self.per_reference, reference),
            ],
            "Too many look-ups",
        )


def status_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(
        tags=["status"], route_class=depth_checked_route(ctx.settings.http.max_json_depth)
    )
    policies = load_policies(ctx.settings.normalizer.due_policies_file)
    lookup = StatusLookup(ctx.state, ctx.components.backend.tracker, policies)
    limits = Limits(ctx)
    region = ctx.settings.normalizer.default_region

    @router.post(
        "/v1/complaints/status",
        responses={
            **problem_responses(422, 429, 503),
            **problem_described(404, "no complaint matches this reference and contact"),
        },
        summary="Where a complaint stands",
    )
    async def complaint_status(
        request: Request, response: Response, query: StatusQuery
    ) -> ComplaintStanding:
        """The complaint's status, received date, acknowledgement, promised dates and last
        change, for its reference and the email or phone given with it. 404 alike for an
        unknown reference and for a contact that is not the complaint's."""
        reference = _reference(query.reference)
        await limits.count(ctx, request, reference)
        contact = contact_as_recorded(query.email or query.phone or "", region)
        standing = await lookup.find(reference, contact)
        if standing is None:
            raise ProblemError(
                404,
                "no-such-complaint",
                "No complaint matches this reference and contact",
                headers=NO_STORE,
            )
        response.headers.update(NO_STORE)
        return standing

    @router.get("/complaints/status", response_class=HTMLResponse, summary="Status page")
    async def status_page(request: Request) -> HTMLResponse:
        """Where my complaint stands: the form (French or English: ``?lang=``)."""
        return _page(language_of(request))

    @router.post(
        "/complaints/status",
        response_class=HTMLResponse,
        summary="Look a complaint up",
        responses={
            422: {"content": _HTML, "description": "The form again, errors announced"},
            429: {"content": _HTML, "description": "Too many look-ups"},
        },
    )
    async def look_up(
        request: Request,
        reference: Annotated[str, Form()] = "",
        contact: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        lang = language_of(request)
        t, errors = TRACKER_MESSAGES[lang], {}
        reference, contact = reference[:40], contact[:320]
        try:
            parsed = parse_reference(reference)
        except InvalidReference:
            errors["reference"] = t["error_reference"]
        if not contact.strip():
            errors["contact"] = t["error_required"]
        if errors:
            return _page(lang, 422, errors=errors, values={"reference": reference})
        try:
            await limits.count(ctx, request, parsed)
        except ProblemError as refused:
            return _page(lang, 429, outcome="limited", headers=refused.headers)
        standing = await lookup.find(parsed, contact_as_recorded(contact, region))
        if standing is None:
            return _page(lang, outcome="not_found", values={"reference": reference})
        return _page(lang, standing=standing)

    return router


def _reference(text: str) -> str:
    try:
        return parse_reference(text)
    except InvalidReference:
        raise ProblemError(
            422,
            "invalid-fields",
            "Invalid fields",
            errors=[FieldError(field="reference", message="not a valid reference")],
        ) from None


def _page(lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render_page("status.html", lang, status, **context)
