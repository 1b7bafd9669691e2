"""Accepting a web submission (webhook or the gateway's own pages): store the raw body and the
files, publish through the intake, and map failures to HTTP answers.

202 only after Kafka acknowledged; 503 + Retry-After when Kafka (or the claim store's disk) is
unavailable, so the caller retries and nothing is lost; 422 when the input cannot be a complaint.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from gateway.channels.webform import Submission, raw_message
from gateway.errors import (
    ClaimStoreError,
    ClaimStoreFull,
    InputRejected,
    KafkaUnavailable,
    StateStoreError,
)
from gateway.events.envelope import CloudEvent
from gateway.store.patience import until_available
from gateway.store.state import IDEMPOTENCY_CLAIM_LEASE_S, StateStore, StoredResponse
from gateway.web.context import WebContext
from gateway.web.problems import FieldError, ProblemError
from gateway.web.uploads import SpooledBody, check_upload_sizes, store_upload

RETRY_AFTER_S = 5


class Accepted(BaseModel):
    """The submission is in Kafka: ``reference`` is what the person quotes from now on."""

    reference: str = Field(examples=["PL-7K3M-9Q2X-HB4G"])
    event_id: str
    type: str = Field(description="complaint.received, or complaint.document_added")
    acknowledge_by: date | None = None
    respond_by: date | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a submission is kept aside for the office (``intake.dlq.v1``) instead of accepted."""

    code: str
    reason: str
    details: dict[str, str] = field(default_factory=dict)


def unavailable(detail: str) -> ProblemError:
    return ProblemError(
        503,
        "unavailable",
        "Service temporarily unavailable",
        detail,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def accepted_once(
    ctx: WebContext,
    scope: str,
    key: str,
    body_sha256: str,
    accept: Callable[[], Awaitable[Accepted]],
) -> StoredResponse:
    """The answer to a submission under an idempotency key: the one stored if the key was
    answered already (its body's hash with it, for the caller to compare), else ``accept()``'s,
    stored. One request at a time per key (``ctx.exclusive``); the key is also claimed in the
    state store while ``accept()`` publishes, since a lock can be lost with its database
    connection while the request goes on (``_key_claimed``)."""
    async with ctx.exclusive(scope, key):
        stored = await ctx.state.stored_response(scope, key)
        if stored is not None:
            return stored
        async with _key_claimed(ctx.state, scope, key):
            accepted = await accept()
        answer = accepted.model_dump(mode="json")
        await until_available(
            "idempotency answer",
            lambda: ctx.state.store_response(scope, key, body_sha256, answer),
        )
        return StoredResponse(body_sha256, answer)


@contextlib.asynccontextmanager
async def _key_claimed(state: StateStore, scope: str, key: str) -> AsyncIterator[None]:
    """The key claimed for the block. 503 when another request still holds the claim: one
    whose lock was lost with its database connection. The claim is let go when the block fails
    (nothing published, or the publish failed); once it succeeds, storing the answer removes it
    (``StateStore.store_response``), and if that cannot be done the claim stays until its lease
    ends, so a retry meanwhile does not publish again."""
    if not await state.claim_key(scope, key, IDEMPOTENCY_CLAIM_LEASE_S):
        raise unavailable("a request with this key is still being processed; retry")
    try:
        yield
    except BaseException:
        # A database restarting is waited out (else the client's retries would be refused
        # until the lease ends); a longer outage leaves the claim to its lease.
        with contextlib.suppress(StateStoreError):
            await until_available("idempotency claim", lambda: state.release_key(scope, key))
        raise


async def accept_submission(
    ctx: WebContext,
    *,
    form_id: str,
    submission: Submission,
    submission_key: str,
    body: SpooledBody,
    uploads: list[UploadFile],
) -> Accepted:
    check_upload_sizes(uploads, ctx.settings.http.max_file_bytes)  # before storing anything
    with _storage_unavailable():
        raw_copy = await ctx.claims.put_stream(body.chunks())
        attachments = [
            await store_upload(ctx.claims, upload, ctx.settings.http.max_file_bytes)
            for upload in uploads
        ]
    raw = raw_message(
        submission,
        form_id=form_id,
        submission_key=submission_key,
        received_at=datetime.now(UTC),
        attachments=attachments,
        raw_uri=raw_copy.uri,
    )
    try:
        event = await ctx.intake.submit(raw)
    except KafkaUnavailable:
        raise unavailable("the complaint stream is unavailable; nothing was kept, retry") from None
    except InputRejected as exc:
        raise ProblemError(
            422,
            "invalid-fields",
            "Invalid fields",
            exc.reason,
            errors=[FieldError(field="body", message=exc.reason)],
        ) from None
    return accepted(event)


async def reject_submission(
    ctx: WebContext,
    *,
    form_id: str,
    submission: Submission,
    submission_key: str,
    body: SpooledBody,
    refusal: Refusal,
) -> None:
    """Keep a submission that cannot be accepted (its raw copy, files included) and report it
    on ``intake.dlq.v1``; 503 + Retry-After, as for an accepted one, when it cannot be kept."""
    with _storage_unavailable():
        raw_copy = await ctx.claims.put_stream(body.chunks())
    raw = raw_message(
        submission,
        form_id=form_id,
        submission_key=submission_key,
        received_at=datetime.now(UTC),
        attachments=[],
        raw_uri=raw_copy.uri,
    )
    try:
        await ctx.intake.reject(raw, refusal.code, refusal.reason, refusal.details)
    except KafkaUnavailable:
        raise unavailable("the complaint stream is unavailable; nothing was kept, retry") from None


@contextlib.contextmanager
def _storage_unavailable() -> Iterator[None]:
    """The claim store's failures as 503: nothing was kept, the caller retries."""
    try:
        yield
    except ClaimStoreFull:
        raise unavailable("storage is full; nothing was kept, retry later") from None
    except ClaimStoreError as exc:
        raise unavailable(f"storage error: {exc}") from None


def accepted(event: CloudEvent[Any]) -> Accepted:
    due = getattr(event.data, "due", None)
    return Accepted(
        reference=event.subject,
        event_id=event.id,
        type=event.type,
        acknowledge_by=due.acknowledge_by if due else None,
        respond_by=due.respond_by if due else None,
    )
