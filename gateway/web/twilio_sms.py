"""``POST /v1/webhooks/twilio/sms``: inbound SMS, checked as Twilio signs them.

The signature (``X-Twilio-Signature``) covers the URL Twilio called, so it is checked against
``GATEWAY_PUBLIC_URL`` + path + query, not the local URL: behind a reverse proxy the two differ,
and checking the local one refuses every genuine message. The raw parameters are kept in the
claim store before anything else; the answer is TwiML, given only once Kafka has the event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from gateway.channels.raw import RawMessage
from gateway.channels.sms import message_sid, raw_sms
from gateway.errors import InputRejected
from gateway.events.common import Channel
from gateway.events.complaint import DocumentAdded
from gateway.web.context import WebContext
from gateway.web.problems import ProblemError, problem_responses

TWIML = "application/xml"
MAX_BODY = 64 * 1024
REPLY_WINDOW_DAYS = 30
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml_message(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escaped}</Message></Response>'
    )


def twilio_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/v1/webhooks/twilio/sms",
        response_class=Response,
        responses={
            200: {"content": {TWIML: {}}, "description": "TwiML"},
            **problem_responses(403, 404, 413, 415, 503),
        },
    )
    async def inbound_sms(
        request: Request,
        signature: Annotated[str, Header(alias="X-Twilio-Signature")] = "",
    ) -> Response:
        """An SMS sent to the office's number: a new complaint, or a follow-up of one."""
        params = await _signed_params(ctx, request, signature)
        reply = await _receive(ctx, params)
        return Response(reply, media_type=TWIML)

    return router


async def _signed_params(ctx: WebContext, request: Request, signature: str) -> dict[str, str]:
    token = ctx.settings.twilio.auth_token
    if token is None:
        raise ProblemError(404, "sms-not-configured", "Inbound SMS is not configured here")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ProblemError(415, "unsupported-media-type", "Twilio posts form-encoded bodies")
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise ProblemError(413, "too-large", "Request too large")
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    url = _public_url(ctx, request)
    if not RequestValidator(token.get_secret_value()).validate(url, params, signature):
        raise ProblemError(403, "bad-signature", "X-Twilio-Signature does not match")
    return params


def _public_url(ctx: WebContext, request: Request) -> str:
    base = str(ctx.settings.public_url).rstrip("/")
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def _receive(ctx: WebContext, params: dict[str, str]) -> str:
    now = datetime.now(UTC)
    raw_copy = await ctx.claims.put(json.dumps(params, sort_keys=True).encode())
    try:
        source_key = f"sms:{message_sid(params)}"
        if await ctx.state.processed_event(source_key) is not None:
            return EMPTY_TWIML  # Twilio sent it again: already published
        answers = await ctx.components.ledger.latest_sms_reference(
            params.get("From", ""), REPLY_WINDOW_DAYS
        )
        event = await ctx.intake.submit(raw_sms(params, now, raw_copy.uri, answers))
    except InputRejected as exc:
        if exc.reason_code == "invalid_sms":  # not yet reported: the intake never saw it
            await _report(ctx, exc, raw_copy.uri, raw_copy.sha256, now)
        return EMPTY_TWIML
    await ctx.state.mark_processed(source_key, event.id)
    if isinstance(event.data, DocumentAdded):
        reference = event.subject
        return twiml_message(f"Merci, ajouté au dossier {reference}. / Added to file {reference}.")
    return EMPTY_TWIML  # the notifier sends the acknowledgement


async def _report(
    ctx: WebContext, exc: InputRejected, raw_uri: str, sha256: str, now: datetime
) -> None:
    unreadable = RawMessage(
        channel=Channel.SMS,
        source_key=f"sms:sha256:{sha256}",
        source_id=sha256,
        received_at=now,
        raw_uri=raw_uri,
    )
    await ctx.intake.reject(unreadable, exc.reason_code, exc.reason)
