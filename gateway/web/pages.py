"""The gateway's own pages: the reference complaint form and "send documents for a complaint
already filed", in French and English, usable without JavaScript.

Both post multipart forms to themselves; errors re-render the form with an error summary
(announced, linked to each field) and the values kept. A hidden ``submission_id`` makes a
re-sent form (reload, double click) the same submission: same reference, no second event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.types import Scope

from gateway.channels.webform import (
    InvalidSubmission,
    Submission,
    nest_fields,
    validate_submission,
)
from gateway.dates import long_date
from gateway.errors import InvalidReference
from gateway.normalizers.contacts import normalise_email, normalise_phone
from gateway.reference import parse_reference
from gateway.web.context import WebContext
from gateway.web.hardening import csrf_field
from gateway.web.i18n import LANGUAGES, MESSAGES, choose_language
from gateway.web.problems import ProblemError, problem_responses
from gateway.web.submissions import (
    Accepted,
    Refusal,
    accept_submission,
    accepted_once,
    reject_submission,
)
from gateway.web.uploads import SpooledBody, form_parts, parse_multipart, spool_body

TEMPLATES = Path(__file__).with_name("templates")
log = structlog.get_logger(__name__)
REFERENCE_FORM = "reference-form"
DOCUMENTS_FORM = "documents-form"
UNMATCHED_DOCUMENTS = "documents_unmatched"
_PAGE_ONLY_FIELDS = ("consent", "on_behalf", "submission_id")
_FIELD_MESSAGES = {"email": "error_email", "phone": "error_phone", "body": "error_required"}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), enable_async=False
)
_environment.globals["csrf_field"] = csrf_field  # first in every form (gateway.web.hardening)


def render(name: str, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    other = next(language for language in LANGUAGES if language != lang)
    html = _environment.get_template(name).render(
        lang=lang,
        other_lang=other,
        t=MESSAGES[lang],
        format_date=lambda day: long_date(day, lang),
        **{"errors": {}, "values": {}, **context},
    )
    return HTMLResponse(html, status_code=status)


def language_of(request: Request) -> str:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


async def refused_page(scope: Scope) -> tuple[int, dict[str, str], bytes]:
    """What a form post without its page's token gets (``gateway.web.hardening``): 403, a page
    saying nothing was sent, and how to send it again."""
    request = Request(scope)
    back = request.url.path if request.url.path.startswith("/complaints/") else None
    page = render("refused.html", language_of(request), 403, back=back)
    headers = {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"}
    return 403, headers, bytes(page.body)


def _form_body(*fields: str) -> dict[str, Any]:
    properties: dict[str, Any] = {name: {"type": "string"} for name in fields}
    properties["attachments"] = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": properties}}
            },
        }
    }


_HTML = {"text/html": {"schema": {"type": "string"}}}
_PAGE_POST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _HTML, "description": "Confirmation page"},
    422: {"content": _HTML, "description": "The form again, errors announced"},
    503: {"content": _HTML, "description": "The form again: nothing saved, try later"},
    **problem_responses(400, 413, 415, 429),
}
_NEW_FIELDS = (
    "submission_id",
    "language",
    "kind",
    "subject",
    "body",
    "anonymous",
    "name",
    "email",
    "phone",
    "postal_address",
    "health_insurance_number",
    "on_behalf",
    "represented_person.name",
    "represented_person.relationship",
    "represented_person.health_insurance_number",
    "consent",
)
_DOCUMENT_FIELDS = ("submission_id", "reference", "contact", "message")


def pages_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["pages"])

    @router.get("/complaints/new", response_class=HTMLResponse, summary="The complaint form")
    async def new_complaint(request: Request) -> HTMLResponse:
        """The reference complaint form (French or English: ``?lang=`` or Accept-Language)."""
        return render("new.html", language_of(request), submission_id=str(uuid.uuid4()))

    @router.post(
        "/complaints/new",
        response_class=HTMLResponse,
        summary="Submit the form",
        responses=_PAGE_POST_RESPONSES,
        openapi_extra=_form_body(*_NEW_FIELDS),
    )
    async def submit_complaint(request: Request) -> HTMLResponse:
        return await _with_form(ctx, request, _submit_complaint)

    @router.get("/complaints/documents", response_class=HTMLResponse, summary="Documents form")
    async def documents_form(request: Request) -> HTMLResponse:
        """Send documents for a complaint already filed (reference + contact given with it)."""
        return render("documents.html", language_of(request), submission_id=str(uuid.uuid4()))

    @router.post(
        "/complaints/documents",
        response_class=HTMLResponse,
        summary="Send documents",
        responses=_PAGE_POST_RESPONSES,
        openapi_extra=_form_body(*_DOCUMENT_FIELDS),
    )
    async def send_documents(request: Request) -> HTMLResponse:
        return await _with_form(ctx, request, _send_documents)

    return router


FormHandler = Callable[
    [WebContext, str, SpooledBody, dict[str, str], list[UploadFile]], Awaitable[HTMLResponse]
]


async def _with_form(ctx: WebContext, request: Request, handle: FormHandler) -> HTMLResponse:
    """Read a page's multipart form, hand it to ``handle``, and always free its spool."""
    body, values, uploads = await _read_form(ctx, request)
    try:
        return await handle(ctx, language_of(request), body, values, uploads)
    finally:
        await body.close()


async def _read_form(
    ctx: WebContext, request: Request
) -> tuple[SpooledBody, dict[str, str], list[UploadFile]]:
    await ctx.limit(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "the form posts multipart/form-data",
        )
    body = await spool_body(request, ctx.settings.http.max_request_bytes, None)
    try:
        form = await parse_multipart(request.headers, body, ctx.settings.http.max_files)
    except BaseException:
        await body.close()
        raise
    values, uploads = form_parts(form)
    return body, values, uploads


def _complaint_errors(values: dict[str, str], lang: str) -> dict[str, str]:
    t, errors = MESSAGES[lang], {}
    anonymous = values.get("anonymous") == "true"
    if not values.get("body", "").strip():
        errors["body"] = t["error_required"]
    if anonymous and values.get("kind") != "denunciation":
        errors["anonymous"] = t["error_anonymous"]
    if not anonymous and not (values.get("email", "").strip() or values.get("phone", "").strip()):
        errors["email"] = t["error_contact"]
    if values.get("consent") != "true":
        errors["consent"] = t["error_consent"]
    return errors


def _submission(
    values: dict[str, str], lang: str, region: str
) -> tuple[Submission | None, dict[str, str]]:
    fields: dict[str, Any] = nest_fields(
        {k: v for k, v in values.items() if k not in _PAGE_ONLY_FIELDS}
    )
    if values.get("on_behalf") != "true":
        fields.pop("represented_person", None)
    if values.get("anonymous") == "true":
        fields = {k: v for k, v in fields.items() if k in ("kind", "subject", "body", "language")}
        fields["anonymous"] = True
    try:
        return validate_submission(fields, region), {}
    except InvalidSubmission as exc:
        t = MESSAGES[lang]
        return None, {
            field: t[_FIELD_MESSAGES[field]] if field in _FIELD_MESSAGES else message
            for field, message in exc.errors
        }


def _submission_key(values: dict[str, str], body: SpooledBody) -> str:
    try:
        return str(uuid.UUID(values.get("submission_id", "")))
    except ValueError:
        return f"sha256:{body.sha256}"


async def _submit_complaint(
    ctx: WebContext, lang: str, body: SpooledBody, values: dict[str, str], uploads: list[UploadFile]
) -> HTMLResponse:
    errors = _complaint_errors(values, lang)
    submission, field_errors = _submission(values, lang, ctx.settings.normalizer.default_region)
    errors = {**field_errors, **errors}
    if errors or submission is None:
        return _form_again("new.html", lang, values, errors)
    files = [upload.filename or "" for upload in uploads]
    accepted = await _accept_once(ctx, REFERENCE_FORM, submission, values, body, uploads, lang)
    if isinstance(accepted, HTMLResponse):
        return accepted
    return render(
        "confirmation.html", lang, accepted=accepted, files=files, anonymous=submission.anonymous
    )


async def _accept_once(
    ctx: WebContext,
    form_id: str,
    submission: Submission,
    values: dict[str, str],
    body: SpooledBody,
    uploads: list[UploadFile],
    lang: str,
) -> Accepted | HTMLResponse:
    """Accept a page's submission once per ``submission_id``; the form again on failure."""
    key = _submission_key(values, body)

    async def accept() -> Accepted:
        return await accept_submission(
            ctx,
            form_id=form_id,
            submission=submission,
            submission_key=key,
            body=body,
            uploads=uploads,
        )

    try:
        stored = await accepted_once(ctx, f"page:{form_id}", key, body.sha256, accept)
    except ProblemError as exc:
        page = "new.html" if form_id == REFERENCE_FORM else "documents.html"
        return _form_after(exc, page, lang, values)
    return Accepted.model_validate(stored.response)


def _form_after(
    problem: ProblemError, page: str, lang: str, values: dict[str, str]
) -> HTMLResponse:
    """The form again for a refusal the person can act on (files too large, retry later)."""
    t = MESSAGES[lang]
    if problem.problem.status == 413:
        return _form_again(page, lang, values, {"attachments": t["error_file"]})
    if problem.problem.status == 503:
        return _form_again(page, lang, values, {"body": t["error_unavailable"]}, 503)
    raise problem


def _form_again(
    page: str, lang: str, values: dict[str, str], errors: dict[str, str], status: int = 422
) -> HTMLResponse:
    return render(
        page,
        lang,
        status,
        values=values,
        errors=errors,
        submission_id=values.get("submission_id") or str(uuid.uuid4()),
    )


async def _send_documents(
    ctx: WebContext, lang: str, body: SpooledBody, values: dict[str, str], uploads: list[UploadFile]
) -> HTMLResponse:
    t, errors = MESSAGES[lang], {}
    reference = None
    try:
        reference = parse_reference(values.get("reference", ""))
    except InvalidReference:
        errors["reference"] = t["error_reference"]
    contact = values.get("contact", "").strip()
    if not contact:
        errors["contact"] = t["error_required"]
    if not uploads:
        errors["attachments"] = t["error_required"]
    if errors or reference is None:
        return _form_again("documents.html", lang, values, errors)
    region = ctx.settings.normalizer.default_region
    normalised = normalise_email(contact) or normalise_phone(contact, region) or contact
    files = [upload.filename or "" for upload in uploads]
    submission = Submission(
        body=values.get("message", "").strip() or t["documents_default_body"],
        reference=reference,
    )
    outcome: Accepted | HTMLResponse | None
    if await ctx.state.contact_matches(reference, normalised):
        outcome = await _accept_once(ctx, DOCUMENTS_FORM, submission, values, body, uploads, lang)
    else:
        outcome = await _keep_unmatched(ctx, submission, values, body, files, lang)
    if isinstance(outcome, HTMLResponse):
        return outcome
    # The same answer whether or not the pair matched: it reveals nothing about the file.
    return render("documents_done.html", lang, files=files)


async def _keep_unmatched(
    ctx: WebContext,
    submission: Submission,
    values: dict[str, str],
    body: SpooledBody,
    files: list[str],
    lang: str,
) -> HTMLResponse | None:
    """Documents whose reference and contact match no complaint (a mistyped address, an old
    phone number, or someone trying): the person is told the same as for a match, and the
    office gets the raw copy (files and contact included) on ``intake.dlq.v1`` to match by
    hand. Nothing is dropped; a failure to keep them is a 503, as for a match."""
    try:
        await reject_submission(
            ctx,
            form_id=DOCUMENTS_FORM,
            submission=submission,
            submission_key=_submission_key(values, body),
            body=body,
            refusal=Refusal(
                UNMATCHED_DOCUMENTS,
                "documents sent for a reference with a contact that is not the one given with "
                "it; kept (raw copy) for the office to match by hand",
                {"reference": submission.reference or "", "files": ", ".join(files)},
            ),
        )
    except ProblemError as exc:
        return _form_after(exc, "documents.html", lang, values)
    log.info("documents.unmatched", reference=submission.reference, files=len(files))
    return None
