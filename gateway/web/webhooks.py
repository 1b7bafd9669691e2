"""``POST /v1/webhooks/forms/{form_id}``: a web form's submission, signed by the form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from gateway.channels.webform import (
    InvalidSubmission,
    Submission,
    map_fields,
    nest_fields,
    validate_submission,
)
from gateway.web.context import WebContext
from gateway.web.problems import FieldError, ProblemError, problem_responses
from gateway.web.signature import (
    BodyVerifier,
    SignatureError,
    check_timestamp,
    parse_header,
)
from gateway.web.submissions import Accepted, accept_submission, accepted_once
from gateway.web.uploads import (
    SpooledBody,
    form_parts,
    parse_json,
    parse_multipart,
    spool_body,
)

JSON = "application/json"
MULTIPART = "multipart/form-data"

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        JSON: {"schema": {"$ref": "#/components/schemas/Submission"}},
        MULTIPART: {
            "schema": {
                "allOf": [{"$ref": "#/components/schemas/Submission"}],
                "properties": {
                    "attachments": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                    }
                },
            }
        },
    },
}


def webhook_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/v1/webhooks/forms/{form_id}",
        status_code=202,
        response_model=Accepted,
        responses=problem_responses(400, 401, 404, 409, 413, 415, 422, 429, 503),
        openapi_extra={"requestBody": _REQUEST_BODY},
        summary="Receive a web form's submission",
    )
    async def receive_form(
        request: Request,
        form_id: Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9._-]+$")],
        x_gateway_signature: Annotated[
            str | None,
            Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>"),
        ] = None,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=200)
        ] = None,
    ) -> Any:
        """Accepted (202) only once the event is in Kafka. Sign the raw body with the form's
        secret; send the same ``Idempotency-Key`` when retrying. Limited per form (the
        signature says who sends), not per address; an address whose attempts are refused
        (bad signature, unknown form) is limited as an unsigned client is."""
        await ctx.refuse_known_offender(request)
        try:
            verifier = _verifier(ctx, form_id, x_gateway_signature)
        except ProblemError:
            await ctx.count_refused(request)
            raise
        media_type = _media_type(request)
        depth = ctx.settings.http.max_json_depth if media_type == JSON else None
        body = await spool_body(request, ctx.settings.http.max_request_bytes, verifier, depth)
        try:
            try:
                verifier.verify()
            except SignatureError as exc:
                await ctx.count_refused(request)
                raise _unauthorized(str(exc)) from None
            await ctx.limit_form(form_id)
            return await _receive(ctx, request, form_id, idempotency_key, media_type, body)
        finally:
            await body.close()

    return router


async def _receive(
    ctx: WebContext,
    request: Request,
    form_id: str,
    idempotency_key: str | None,
    media_type: str,
    body: SpooledBody,
) -> Any:
    key = idempotency_key or f"sha256:{body.sha256}"

    async def accept() -> Accepted:
        submission, uploads = await _parse(ctx, request, form_id, media_type, body)
        return await accept_submission(
            ctx,
            form_id=form_id,
            submission=submission,
            submission_key=key,
            body=body,
            uploads=uploads,
        )

    stored = await accepted_once(ctx, f"form:{form_id}", key, body.sha256, accept)
    if stored.body_sha256 != body.sha256:
        raise ProblemError(
            409,
            "idempotency-conflict",
            "Idempotency key reused with another body",
            "this Idempotency-Key was used for a different submission",
        )
    return JSONResponse(stored.response, status_code=202)


async def _parse(
    ctx: WebContext, request: Request, form_id: str, media_type: str, body: SpooledBody
) -> tuple[Submission, list[UploadFile]]:
    uploads: list[UploadFile] = []
    if media_type == JSON:
        received: dict[str, Any] = parse_json(body)
    else:
        form = await parse_multipart(request.headers, body, ctx.settings.http.max_files)
        values, uploads = form_parts(form)
        received = nest_fields(values)
    fields = map_fields(received, ctx.settings.form_fields.get(form_id))
    try:
        return validate_submission(fields, ctx.settings.normalizer.default_region), uploads
    except InvalidSubmission as exc:
        raise ProblemError(
            422,
            "invalid-fields",
            "Invalid fields",
            str(exc),
            errors=[FieldError(field=field, message=message) for field, message in exc.errors],
        ) from None


def _verifier(ctx: WebContext, form_id: str, header_value: str | None) -> BodyVerifier:
    secrets = ctx.settings.webhook_secrets.get(form_id)
    if not secrets:
        raise ProblemError(404, "unknown-form", "Unknown form", f"no secret is set for {form_id!r}")
    try:
        header = parse_header(header_value)
        check_timestamp(header, ctx.settings.http.signature_tolerance_s)
    except SignatureError as exc:
        raise _unauthorized(str(exc)) from None
    return BodyVerifier(header, [secret.get_secret_value().encode() for secret in secrets])


def _media_type(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (JSON, MULTIPART):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send {JSON} or {MULTIPART}, not {media_type or 'nothing'}",
        )
    return media_type


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "bad-signature", "Signature refused", detail)
