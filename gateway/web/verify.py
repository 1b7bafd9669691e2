"""Contact verification: the email link and the SMS code (contract endpoints).

- ``GET /v1/verify/email?token=...``: a valid link publishes ``complaint.contact_verified`` and
  is used up; an expired or used one shows a page with a "send me a new link" button
  (``POST /v1/verify/email/renew``), which asks the notifier for a new link through a
  ``notification.requested`` event (at most one a day per link).
- ``POST /v1/verify/sms/start`` and ``/check``: Twilio Verify sends and checks a code. Only the
  phone number given with the complaint (E.164, of an allowed country) gets a code; limits per
  number, per complaint and per client address hold SMS-pumping fraud back; a bounded number of
  wrong codes per number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from gateway.errors import (
    InvalidReference,
    PermanentSendError,
    SendError,
    TokenRefused,
    VerifyRefused,
)
from gateway.events.complaint import ContactKind, ContactVerified, VerificationMethod
from gateway.events.envelope import make_event
from gateway.events.notification import Medium, NotificationRequested, Purpose
from gateway.normalizers.contacts import normalise_phone
from gateway.notifier.tokens import EmailClaim
from gateway.notifier.twilio import TwilioVerify
from gateway.reference import parse_reference
from gateway.web.context import WebContext, within_limits
from gateway.web.depth import depth_checked_route
from gateway.web.pages import language_of, render
from gateway.web.problems import FieldError, ProblemError, problem_responses
from gateway.web.ratelimit import RateLimiter

HOUR_S = 3600.0
DAY_S = 86_400.0
SOURCE = "urn:intake-gateway:verify"
RENEW_NAMESPACE = uuid.UUID("0b7e1c2a-96f4-5d3e-8a1b-2c4d6e8f0a13")


class SmsStart(BaseModel):
    reference: str = Field(examples=["PL-7K3M-9Q2X-HB4G"])
    phone: str = Field(description="E.164, e.g. +15145551234", examples=["+15145551234"])


class SmsCheck(SmsStart):
    code: str = Field(pattern=r"^[0-9]{4,10}$")


class SmsStarted(BaseModel):
    status: str = Field(description="pending: a code was sent")


class SmsChecked(BaseModel):
    verified: bool
    attempts_left: int


@dataclass
class SmsLimits:
    """Limits of this gateway's HTTP workers (shared when there are several; replicas on other
    machines share Twilio Verify's own limits). Wrong codes are counted per process; Twilio
    Verify stops a code after its own maximum of checks whichever process asks."""

    per_number: RateLimiter
    per_complaint: RateLimiter
    per_client: RateLimiter
    max_checks: int
    wrong_codes: dict[str, int] = field(default_factory=dict)

    def counted(
        self, client: str, reference: str, phone: str | None = None
    ) -> list[tuple[RateLimiter, str]]:
        """What a request counts against: the client's and the complaint's limits, and the
        number's when it is the complaint's (a code is then sent to it)."""
        number = [(self.per_number, f"number:{phone}")] if phone else []
        return [
            (self.per_client, f"client:{client}"),
            *number,
            (self.per_complaint, f"complaint:{reference}"),
        ]

    @classmethod
    def from_settings(cls, ctx: WebContext) -> SmsLimits:
        notifier = ctx.settings.notifier
        return cls(
            per_number=ctx.rate_limiter(notifier.sms_per_number_per_hour, HOUR_S, "sms-number"),
            per_complaint=ctx.rate_limiter(notifier.sms_per_complaint_per_day, DAY_S, "sms-ref"),
            per_client=ctx.rate_limiter(notifier.sms_per_client_per_hour, HOUR_S, "sms-client"),
            max_checks=notifier.sms_max_checks,
        )


def verify_router(ctx: WebContext) -> APIRouter:
    depth_checked = depth_checked_route(ctx.settings.http.max_json_depth)
    router = APIRouter(tags=["verification"], route_class=depth_checked)
    _email_routes(router, ctx)
    _sms_routes(router, ctx, SmsLimits.from_settings(ctx))
    return router


_HTML = {"text/html": {"schema": {"type": "string"}}}


def _pages(**described: str) -> dict[int | str, dict[str, Any]]:
    return {
        int(status[1:]): {"content": _HTML, "description": text}
        for status, text in described.items()
    }


def _email_routes(router: APIRouter, ctx: WebContext) -> None:
    @router.get(
        "/v1/verify/email",
        response_class=HTMLResponse,
        responses={
            **_pages(s200="address confirmed", s400="invalid link", s410="expired or used"),
            **problem_responses(422, 503),
        },
    )
    async def verify_email(
        request: Request, token: Annotated[str, Query(max_length=2000)] = ""
    ) -> HTMLResponse:
        """The link sent to validate an email address (valid 5 days, single use)."""
        lang = language_of(request)
        try:
            claim = ctx.components.tokens.read(token)
        except TokenRefused as refused:
            status = 400 if refused.reason == "invalid" else 410
            renew = token if refused.claim is not None else None
            return render("verify.html", lang, status, outcome=refused.reason, renew_token=renew)
        used_key = _used_key(claim)
        if await ctx.state.processed_event(used_key) is not None:
            # a used link confirmed the address: nothing to renew
            return render("verify.html", lang, 410, outcome="used", reference=claim.reference)
        event = make_event(_verified_email(claim), source_key=used_key, source=SOURCE)
        await ctx.publisher.publish(event)
        await ctx.state.mark_processed(used_key, event.id)
        return render("verify.html", lang, outcome="done", reference=claim.reference)

    @router.post(
        "/v1/verify/email/renew",
        response_class=HTMLResponse,
        status_code=202,
        responses={
            **_pages(s202="a new link was asked for", s400="invalid link"),
            **problem_responses(422, 429, 503),
        },
    )
    async def renew_email_link(
        request: Request, token: Annotated[str, Form(max_length=2000)]
    ) -> HTMLResponse:
        """Ask for a new link after an expired or used one (at most one a day per link)."""
        await ctx.limit(request)
        lang = language_of(request)
        try:
            claim = ctx.components.tokens.read(token)
        except TokenRefused as refused:
            if not isinstance(refused.claim, EmailClaim):  # forged: nothing to renew
                return render("verify.html", lang, 400, outcome="invalid")
            claim = refused.claim
        if await ctx.state.processed_event(_used_key(claim)) is not None:
            # opened before it expired: the address is confirmed, a new link would only puzzle
            return render("verify.html", lang, 410, outcome="used", reference=claim.reference)
        await ctx.publisher.publish(make_event(_renewal(claim), source_key=claim.token_id))
        return render("verify.html", lang, 202, outcome="renewed")


def _used_key(claim: EmailClaim) -> str:
    return f"email-link:{claim.token_id}"


def _verified_email(claim: EmailClaim) -> ContactVerified:
    return ContactVerified(
        reference=claim.reference,
        contact=ContactKind.EMAIL,
        value=claim.email,
        method=VerificationMethod.EMAIL_LINK,
        verified_at=datetime.now(UTC),
    )


def _renewal(claim: EmailClaim) -> NotificationRequested:
    today = datetime.now(UTC).date().isoformat()
    return NotificationRequested(
        notification_id=str(uuid.uuid5(RENEW_NAMESPACE, f"{claim.token_id}\n{today}")),
        reference=claim.reference,
        purpose=Purpose.EMAIL_VERIFICATION,
        medium=Medium.EMAIL,
        recipient=claim.email,
        language=claim.language,
        template=str(Purpose.EMAIL_VERIFICATION),
        requested_at=datetime.now(UTC),
    )


def _sms_routes(router: APIRouter, ctx: WebContext, limits: SmsLimits) -> None:
    errors = problem_responses(400, 404, 422, 429, 503)

    @router.post("/v1/verify/sms/start", status_code=202, responses=errors)
    async def start_sms(request: Request, body: SmsStart) -> SmsStarted:
        """Send a code by SMS to the phone number given with the complaint."""
        reference, phone = await _checked_contact(ctx, request, body, limits)
        await within_limits(
            limits.counted(ctx.client_address(request), reference, phone),
            "Too many codes requested",
        )
        verify = _verify_client(ctx)
        locale = (request.query_params.get("lang") or "fr")[:2]
        try:
            await verify.start(phone, locale if locale in ("fr", "en") else "fr")
        except SendError as exc:
            raise _send_problem(exc) from exc
        limits.wrong_codes.pop(f"{reference}\n{phone}", None)
        return SmsStarted(status="pending")

    @router.post("/v1/verify/sms/check", responses=errors)
    async def check_sms(request: Request, body: SmsCheck) -> SmsChecked:
        """Check the code the person typed; success publishes ``complaint.contact_verified``."""
        await ctx.limit(request)
        reference, phone = await _checked_contact(ctx, request, body, limits)
        key = f"{reference}\n{phone}"
        wrong = limits.wrong_codes.get(key, 0)
        if wrong >= limits.max_checks:
            raise ProblemError(429, "too-many-codes", "Too many wrong codes", "ask for a new code")
        try:
            result = await _verify_client(ctx).check(phone, body.code)
        except SendError as exc:
            raise _send_problem(exc) from exc
        if not result.approved:
            limits.wrong_codes[key] = wrong + 1
            return SmsChecked(verified=False, attempts_left=limits.max_checks - wrong - 1)
        limits.wrong_codes.pop(key, None)
        verified = ContactVerified(
            reference=reference,
            contact=ContactKind.PHONE,
            value=phone,
            method=VerificationMethod.SMS_CODE,
            verified_at=datetime.now(UTC),
        )
        await ctx.publisher.publish(
            make_event(verified, source_key=f"sms-code:{reference}:{phone}", source=SOURCE)
        )
        return SmsChecked(verified=True, attempts_left=limits.max_checks - wrong)


async def _checked_contact(
    ctx: WebContext, request: Request, body: SmsStart, limits: SmsLimits
) -> tuple[str, str]:
    """The reference and the E.164 number, if the number is the one given with the complaint.

    A number that is not is counted against the client's and the complaint's limits before it is
    refused: otherwise anyone holding a reference could try numbers until the refusal stopped,
    and so learn the person's phone number."""
    try:
        reference = parse_reference(body.reference.strip().upper())
    except InvalidReference:
        raise _field_problem("reference", "not a valid reference (check each character)") from None
    phone = _e164(body.phone, ctx.settings.notifier.sms_countries)
    if not await ctx.state.contact_matches(reference, phone):
        await within_limits(
            limits.counted(ctx.client_address(request), reference), "Too many attempts"
        )
        raise _field_problem("phone", "not the phone number given with this complaint")
    return reference, phone


def _e164(phone: str, countries: list[str]) -> str:
    """The number in E.164, if it is written in E.164 and belongs to an allowed country."""
    if not phone.startswith("+"):
        raise _field_problem("phone", "write the number in E.164 form, e.g. +15145551234")
    e164 = normalise_phone(phone, "ZZ")  # the normalizers' check; "ZZ": no region implied
    if e164 is None:
        raise _field_problem("phone", "not a valid phone number")
    if phonenumbers.region_code_for_number(phonenumbers.parse(e164)) not in countries:
        raise _field_problem("phone", "codes are not sent to numbers of this country")
    return e164


def _verify_client(ctx: WebContext) -> TwilioVerify:
    verify = ctx.twilio_verify()
    if verify is None:
        raise ProblemError(404, "sms-not-configured", "SMS codes are not configured here")
    return verify


def _send_problem(exc: SendError) -> ProblemError:
    if isinstance(exc, VerifyRefused):
        return ProblemError(429, "too-many-codes", "Too many codes for this number", str(exc))
    if isinstance(exc, PermanentSendError):
        return ProblemError(422, "sms-refused", "The code could not be sent", str(exc))
    return ProblemError(503, "sms-unavailable", "SMS service unavailable, retry later", str(exc))


def _field_problem(name: str, message: str) -> ProblemError:
    return ProblemError(
        422, "invalid-fields", "Invalid fields", errors=[FieldError(field=name, message=message)]
    )
