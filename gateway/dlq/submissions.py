"""Redriving a web submission or an inbound SMS from its raw copy (the request body as received:
JSON or multipart with its files; Twilio's parameters), through the code their routes use.

- Web forms: the body is parsed again (a multipart body names its own boundary on its first
  line), mapped and validated as the route does (``GATEWAY_FORM_FIELDS``, the reference form's
  own fields), its files stored again (same bytes, same objects), and it becomes the
  ``RawMessage`` the route makes, under the same source key (form and submission key).
- ``documents_unmatched`` (documents sent with a reference and a contact that did not match):
  redriven as it is, it goes through only if the contact now matches the reference; with a
  corrected ``reference`` an operator vouches for the match, and the documents become a
  ``complaint.document_added`` of that complaint.
- SMS: Twilio's parameters become the channel's ``RawMessage`` again (a follow-up when it
  answers an SMS we sent within 30 days of now).

Nothing is moved after: these inputs have no quarantine folder.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import Any

from starlette.datastructures import Headers, UploadFile

from gateway.channels.raw import RawMessage
from gateway.channels.sms import raw_sms
from gateway.channels.webform import (
    InvalidSubmission,
    Submission,
    map_fields,
    nest_fields,
    raw_message,
    validate_submission,
)
from gateway.dlq.mail import stored_object
from gateway.errors import InputRejected, InvalidReference
from gateway.normalizers.contacts import normalise_email, normalise_phone
from gateway.notifier.ledger import NotificationLedger
from gateway.reference import parse_reference
from gateway.settings import GatewaySettings
from gateway.store.claims import ClaimStore
from gateway.store.dlq import DlqRecord
from gateway.store.state import StateStore
from gateway.web.i18n import DEFAULT_LANGUAGE, MESSAGES
from gateway.web.pages import DOCUMENTS_FORM, REFERENCE_FORM, UNMATCHED_DOCUMENTS, _submission
from gateway.web.problems import ProblemError
from gateway.web.twilio_sms import REPLY_WINDOW_DAYS
from gateway.web.uploads import SpooledBody, form_parts, parse_multipart, store_upload


class SubmissionRereader:
    def __init__(self, settings: GatewaySettings, claims: ClaimStore, state: StateStore) -> None:
        self._settings = settings
        self._claims = claims
        self._state = state

    async def messages(self, record: DlqRecord, reference: str | None) -> list[RawMessage]:
        _, form_id, submission_key = record.source_key.split(":", 2)
        raw_copy = await stored_object(self._claims, record)
        body = spooled(await self._claims.get(raw_copy.sha256))
        try:
            values, uploads, received = await self._fields(body)
            submission = await self._submission(form_id, values, received, reference)
            attachments = [
                await store_upload(self._claims, upload, self._settings.http.max_file_bytes)
                for upload in uploads
            ]
        except ProblemError as exc:  # malformed multipart, a file over today's limit
            raise InputRejected("invalid_submission", exc.problem.detail or str(exc)) from None
        finally:
            await body.close()
        raw = raw_message(
            submission,
            form_id=form_id,
            submission_key=submission_key,
            received_at=record.received_at,
            attachments=attachments,
            raw_uri=raw_copy.uri,
        )
        return [raw]

    async def settle(self, record: DlqRecord, messages: list[RawMessage]) -> str:
        del record, messages
        return ""

    async def close(self) -> None:
        """Nothing held between redrives."""

    async def _fields(
        self, body: SpooledBody
    ) -> tuple[dict[str, str], list[UploadFile], dict[str, Any]]:
        """The text fields and files of a multipart body (and its nested fields), or the
        fields of a JSON one."""
        first_line = body.read_all()[:200].split(b"\r\n", 1)[0]
        if not first_line.startswith(b"--"):
            try:
                received = json.loads(body.read_all().decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputRejected("invalid_submission", f"invalid JSON: {exc}") from None
            if not isinstance(received, dict):
                raise InputRejected("invalid_submission", "the JSON body is not an object")
            return {}, [], received
        boundary = first_line[2:].decode("latin-1")
        headers = Headers({"content-type": f"multipart/form-data; boundary={boundary}"})
        form = await parse_multipart(headers, body, self._settings.http.max_files)
        values, uploads = form_parts(form)
        return values, uploads, nest_fields(values)

    async def _submission(
        self,
        form_id: str,
        values: dict[str, str],
        received: dict[str, Any],
        reference: str | None,
    ) -> Submission:
        region = self._settings.normalizer.default_region
        if form_id == DOCUMENTS_FORM:
            return await self._documents(values, reference)
        if form_id == REFERENCE_FORM:  # the page's own fields, as the page reads them
            submission, errors = _submission(values, DEFAULT_LANGUAGE, region)
            if submission is None:
                raise InputRejected(
                    "invalid_fields", "; ".join(f"{k}: {v}" for k, v in errors.items())
                )
            return submission
        fields = map_fields(received, self._settings.form_fields.get(form_id))
        try:
            return validate_submission(fields, region)
        except InvalidSubmission as exc:
            raise InputRejected("invalid_fields", str(exc)) from None

    async def _documents(self, values: dict[str, str], reference: str | None) -> Submission:
        """Documents for a complaint: matched now by the contact given with them, or by the
        operator's corrected ``reference``."""
        try:
            matched = parse_reference(reference or values.get("reference", ""))
        except InvalidReference:
            raise InputRejected(UNMATCHED_DOCUMENTS, "not a valid reference") from None
        if reference is None:
            region = self._settings.normalizer.default_region
            contact = values.get("contact", "").strip()
            normalised = normalise_email(contact) or normalise_phone(contact, region) or contact
            if not await self._state.contact_matches(matched, normalised):
                raise InputRejected(
                    UNMATCHED_DOCUMENTS,
                    f"the contact given still matches no complaint {matched}: redrive with the"
                    " right reference to match the documents by hand",
                )
        body = values.get("message", "").strip()
        return Submission(
            body=body or MESSAGES[DEFAULT_LANGUAGE]["documents_default_body"], reference=matched
        )


class SmsRereader:
    def __init__(self, claims: ClaimStore, ledger: NotificationLedger) -> None:
        self._claims = claims
        self._ledger = ledger

    async def messages(self, record: DlqRecord, reference: str | None) -> list[RawMessage]:
        del reference
        raw_copy = await stored_object(self._claims, record)
        try:
            params = json.loads(await self._claims.get(raw_copy.sha256))
        except ValueError:
            raise InputRejected("invalid_sms", "the stored parameters are not JSON") from None
        if not isinstance(params, dict):
            raise InputRejected("invalid_sms", "the stored parameters are not an object")
        params = {str(key): str(value) for key, value in params.items()}
        answers = await self._ledger.latest_sms_reference(params.get("From", ""), REPLY_WINDOW_DAYS)
        return [raw_sms(params, record.received_at, raw_copy.uri, answers)]

    async def settle(self, record: DlqRecord, messages: list[RawMessage]) -> str:
        del record, messages
        return ""

    async def close(self) -> None:
        """Nothing held between redrives."""


def spooled(data: bytes) -> SpooledBody:
    """Stored bytes as the body a route reads (a temporary file: large bodies stay on disk)."""
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (closed by body)
    spool.write(data)
    return SpooledBody(spool, len(data), hashlib.sha256(data).hexdigest())
