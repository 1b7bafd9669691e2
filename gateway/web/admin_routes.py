"""``/v1/admin/dlq``: the dead-letter queue over HTTP, for operators and their tools, with a
bearer token of ``GATEWAY_ADMIN_TOKENS`` (401 without a valid one, 403 with a case system's);
and the office's page ``/admin/dlq`` (``admin_page``). What a redrive does:
``gateway.dlq.operations``. The record's ``id`` may be given whole or by its first characters.

Answers: 404 unknown record, 409 already redriven or dismissed (or being redriven: of two
redrives at once one is done, the other gets 409), 422 cannot be redriven (a notifier's
record, a corrected reference on another reason, its raw copy gone), 503 Kafka, the object
store or the mail server unavailable (nothing changed). A redrive whose input is still rejected
is 200 with ``redriven: false`` and the reason: the attempt was made and is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from gateway.dlq.assembly import dlq_operations
from gateway.dlq.metrics import keep_fresh
from gateway.dlq.operations import (
    CannotRedrive,
    DlqOperations,
    RecordNotFound,
    RecordNotOpen,
    RedriveOutcome,
)
from gateway.dlq.preview import preview
from gateway.errors import ChannelUnavailable, ClaimStoreError
from gateway.privacy.audit import record_raw_copy_read
from gateway.store.dlq import AmbiguousId, DlqAction, DlqRecord, DlqStatus
from gateway.web.admin_page import admin_page_routes
from gateway.web.admin_session import admin_problems, bearer_admin
from gateway.web.context import WebContext
from gateway.web.depth import depth_checked_route
from gateway.web.problems import ProblemError

_refreshers: set[asyncio.Task[None]] = set()


class DlqRecordOut(BaseModel):
    id: str = Field(description="the intake.rejected event's id")
    channel: str
    reason_code: str
    reason: str
    details: dict[str, str]
    source_key: str
    source_id: str | None
    source_uri: str | None = Field(description="where the raw copy is kept")
    received_at: datetime
    recorded_at: datetime = Field(description="when it was rejected")
    status: DlqStatus
    attempts: int = Field(description="redrives tried")
    closed_by: str | None
    closed_at: datetime | None
    event_ids: list[str] = Field(description="what its redrive published (or found published)")

    @classmethod
    def of(cls, record: DlqRecord) -> DlqRecordOut:
        return cls.model_validate(asdict(record))


class DlqActionOut(BaseModel):
    action: str
    by: str
    at: datetime
    outcome: str
    detail: str

    @classmethod
    def of(cls, action: DlqAction) -> DlqActionOut:
        return cls(
            action=action.action,
            by=action.by,
            at=action.at,
            outcome=action.outcome,
            detail=action.detail,
        )


class DlqRecordDetail(DlqRecordOut):
    actions: list[DlqActionOut]
    raw_preview: str = Field(description="a mail's headers, a scan's first page, 2 KB of others")


class RedriveRequest(BaseModel):
    reference: str | None = Field(
        default=None, description="documents_unmatched only: the complaint they belong to"
    )


class RedriveResult(BaseModel):
    redriven: bool
    record: DlqRecordOut
    event_ids: list[str]
    published: int = Field(description="events published now (the others were before)")
    note: str = Field(description="where the source went, or why it is still rejected")

    @classmethod
    def of(cls, outcome: RedriveOutcome) -> RedriveResult:
        return cls(
            redriven=outcome.redriven,
            record=DlqRecordOut.of(outcome.record),
            event_ids=list(outcome.event_ids),
            published=outcome.published,
            note=outcome.note,
        )


class DismissRequest(BaseModel):
    note: str = Field(default="", max_length=2000)


def admin_router(ctx: WebContext) -> APIRouter:
    operations = dlq_operations(ctx.components)
    _start_metrics(ctx)
    depth_checked = depth_checked_route(ctx.settings.http.max_json_depth)
    router = APIRouter(tags=["admin"], route_class=depth_checked)
    _json_routes(router, ctx, operations)
    admin_page_routes(router, ctx, operations)
    return router


def _json_routes(router: APIRouter, ctx: WebContext, operations: DlqOperations) -> None:
    settings = ctx.settings
    privacy = ctx.components.backend.privacy

    @router.get(
        "/v1/admin/dlq",
        response_model=list[DlqRecordOut],
        responses=admin_problems(401, 403),
        summary="Dead-letter records",
    )
    async def list_records(
        request: Request,
        since: datetime | None = None,
        reason: Annotated[str | None, Query(max_length=100)] = None,
        status: Literal["open", "redriven", "dismissed", "all"] = "open",
    ) -> list[DlqRecordOut]:
        """Records rejected since ``since`` (UTC unless it says), newest first (at most 500)."""
        bearer_admin(request, settings)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        chosen = None if status == "all" else DlqStatus(status)
        return [DlqRecordOut.of(r) for r in await operations.records(since, reason, chosen)]

    @router.get(
        "/v1/admin/dlq/{record_id}",
        response_model=DlqRecordDetail,
        responses=admin_problems(401, 403, 404),
        summary="A dead-letter record",
    )
    async def show_record(request: Request, record_id: str) -> DlqRecordDetail:
        """The record, what was done to it, and its raw copy as a person reads it (the read is
        on record: ``intake-gateway audit``)."""
        admin = bearer_admin(request, settings)
        async with refusals_as_problems():
            view = await operations.view(record_id)
        await record_raw_copy_read(privacy, view.record, admin, "admin view (GET /v1/admin/dlq)")
        shown = await preview(view.record, ctx.claims, settings.postal)
        return DlqRecordDetail(
            **DlqRecordOut.of(view.record).model_dump(),
            actions=[DlqActionOut.of(action) for action in view.actions],
            raw_preview=shown,
        )

    @router.post(
        "/v1/admin/dlq/{record_id}/redrive",
        response_model=RedriveResult,
        responses=admin_problems(400, 401, 403, 404, 409, 422, 503),
        summary="Redrive a dead-letter record",
    )
    async def redrive_record(
        request: Request, record_id: str, body: Annotated[RedriveRequest | None, Body()] = None
    ) -> RedriveResult:
        """Read the input again through its channel and publish it under the event id it
        would have had; the quarantine follows. Recorded as done by the token's admin."""
        admin = bearer_admin(request, settings)
        async with refusals_as_problems():
            outcome = await operations.redrive(record_id, admin, body.reference if body else None)
        await record_raw_copy_read(privacy, outcome.record, admin, "redrive (POST /v1/admin/dlq)")
        return RedriveResult.of(outcome)

    @router.post(
        "/v1/admin/dlq/{record_id}/dismiss",
        response_model=DlqRecordOut,
        responses=admin_problems(400, 401, 403, 404, 409),
        summary="Dismiss a dead-letter record",
    )
    async def dismiss_record(
        request: Request, record_id: str, body: Annotated[DismissRequest | None, Body()] = None
    ) -> DlqRecordOut:
        """Close an open record without publishing anything (handled another way)."""
        admin = bearer_admin(request, settings)
        async with refusals_as_problems():
            record = await operations.dismiss(record_id, admin, body.note if body else "")
        return DlqRecordOut.of(record)


@contextlib.asynccontextmanager
async def refusals_as_problems() -> AsyncIterator[None]:
    """What the operations refuse, as problem documents."""
    try:
        yield
    except (RecordNotFound, AmbiguousId) as exc:
        detail = str(exc) if isinstance(exc, RecordNotFound) else f"{exc} names several records"
        raise ProblemError(404, "not-found", "No such dead-letter record", detail) from None
    except RecordNotOpen as exc:
        raise ProblemError(409, "not-open", "The record is not open", str(exc)) from None
    except CannotRedrive as exc:
        raise ProblemError(
            422, "cannot-redrive", "The record cannot be redriven", str(exc)
        ) from None
    except (ClaimStoreError, ChannelUnavailable) as exc:
        raise ProblemError(
            503,
            "unavailable",
            "Service temporarily unavailable",
            str(exc),
            headers={"Retry-After": "30"},
        ) from None


def _start_metrics(ctx: WebContext) -> None:
    """The DLQ gauges kept fresh while this server's store is open (``gateway.dlq.metrics``)."""
    with contextlib.suppress(RuntimeError):  # no event loop: an app built outside a server
        task = asyncio.get_running_loop().create_task(keep_fresh(ctx.components.backend.dlq))
        _refreshers.add(task)
        task.add_done_callback(_refreshers.discard)
