"""The ASGI application: webhooks, the reference complaint form, health, readiness, metrics,
the AsyncAPI document of the topics."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway import __version__
from gateway.channels.webform import Submission
from gateway.components import Components
from gateway.errors import EventRejected, PublishError, StateStoreError
from gateway.events.asyncapi import asyncapi_document
from gateway.events.schemas import render
from gateway.http_workers import METRICS_ENV
from gateway.publisher import KafkaPublisher
from gateway.web.admin_routes import admin_router
from gateway.web.context import WebContext
from gateway.web.feedback import feedback_router
from gateway.web.hardening import SECRET as CSRF_SECRET
from gateway.web.hardening import HardenedPages, document_refusals
from gateway.web.http_metrics import HttpMetrics, count_refusal
from gateway.web.objects import objects_router
from gateway.web.pages import pages_router, refused_page
from gateway.web.problems import (
    PROBLEM_TYPE_BASE,
    FieldError,
    Problem,
    ProblemError,
    problem_response,
)
from gateway.web.status import status_router
from gateway.web.transparency import transparency_router
from gateway.web.twilio_sms import twilio_router
from gateway.web.verify import verify_router
from gateway.web.webhooks import webhook_router

STATIC = Path(__file__).with_name("static")
log = structlog.get_logger(__name__)


class Health(BaseModel):
    status: str


def create_app(components: Components) -> FastAPI:
    ctx = WebContext.of(components)
    publisher = components.publisher
    app = FastAPI(
        title="intake-gateway",
        version=__version__,
        lifespan=_lifespan(ctx),
        docs_url=None,  # pages of inline scripts from a CDN: the document is /openapi.json
        redoc_url=None,
    )
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(PublishError, _kafka_unavailable)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(StateStoreError, _state_unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    routers = (
        webhook_router(ctx),
        pages_router(ctx),
        verify_router(ctx),
        twilio_router(ctx),
        objects_router(ctx),
        admin_router(ctx),
        status_router(ctx),
        feedback_router(ctx),
        transparency_router(ctx),
    )
    for router in routers:
        # Their routes on the app's own router, not included: FastAPI 0.16x walks an included
        # router's routes again on every request (some 0.2 ms of CPU a request, cProfile).
        app.router.routes.extend(router.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _operations(app, publisher)
    app.add_middleware(HardenedPages, **hardening(components))
    app.add_middleware(HttpMetrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def hardening(components: Components) -> dict[str, Any]:
    """What ``HardenedPages`` needs: the installation's CSRF key, the refusal page, whether a
    request came over HTTPS (directly, or to the public HTTPS address behind a proxy)."""
    secrets = components.backend.secrets
    public = components.settings.public_url

    async def key() -> bytes:
        return await secrets.secret(CSRF_SECRET, lambda: os.urandom(32))

    def secure(scope: Scope) -> bool:
        host = Headers(scope=scope).get("host", "").rsplit(":", 1)[0]
        return scope.get("scheme") == "https" or (public.scheme == "https" and host == public.host)

    return {"key": key, "refused": refused_page, "secure": secure}


def _operations(app: FastAPI, publisher: KafkaPublisher) -> None:
    asyncapi = render(asyncapi_document()).encode()  # generated once, at start

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Kafka unreachable"}},
        tags=["operations"],
    )
    async def readyz(response: Response) -> Health:
        """Readiness: Kafka answers, so submissions can be accepted."""
        if await publisher.is_ready():
            return Health(status="ready")
        response.status_code = 503
        return Health(status="kafka_unavailable")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(_latest_metrics(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["operations"], response_class=JSONResponse)
    async def asyncapi_json() -> Response:
        """AsyncAPI 3.0 document of the Kafka topics and event types (`schemas/asyncapi.json`)."""
        return Response(asyncapi, media_type="application/json")


def _latest_metrics() -> bytes:
    """This process's metrics; with several HTTP workers, every process's (the scrape lands in
    any one of them)."""
    if not os.environ.get(METRICS_ENV):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the submission schema the webhook reads from its raw body, and
    the refusal of a form post without its CSRF token."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        submission = Submission.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(submission.pop("$defs", {}))
        components["Submission"] = submission
        document_refusals(schema)
        app.openapi_schema = schema
    return app.openapi_schema


async def _problem(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ProblemError):
        raise exc
    count_refusal(exc.problem.type.removeprefix(PROBLEM_TYPE_BASE))
    return problem_response(exc.problem, exc.headers)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    count_refusal("invalid-request")
    errors = [
        FieldError(field=".".join(str(p) for p in error["loc"]), message=error["msg"])
        for error in exc.errors()
    ]
    problem = Problem(
        type="urn:intake-gateway:problem:invalid-request",
        title="Invalid request",
        status=422,
        errors=errors,
    )
    return problem_response(problem)


def _lifespan(ctx: WebContext) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.close()

    return lifespan


async def _client_gone(request: Request, _exc: Exception) -> Response:
    """The client hung up mid-request (its own timeout, a killed process): nothing was
    published, nobody reads the answer; logged, not a server error."""
    log.info("http.client_disconnected", path=request.url.path)
    return Response(status_code=400)


async def _state_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The state store failed (a full disk): retry; an event already published goes again
    under the same event id, which consumers recognise."""
    log.error("http.state_store_failed", error=str(exc))
    full = "is full" in str(exc) or "No space left" in str(exc)  # SQLite's, PostgreSQL's
    problem = Problem(
        type="urn:intake-gateway:problem:storage-unavailable",
        title="Service temporarily unavailable",
        status=503,
        detail="storage is full; retry later" if full else "storage error; retry later",
    )
    return problem_response(problem, {"Retry-After": "30"})


async def _kafka_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """Kafka did not take an event: nothing was recorded, the client may retry; or Kafka will
    never take it (too large for the broker's limit): 422, retrying would not help."""
    if isinstance(exc, EventRejected):
        return problem_response(
            Problem(
                type="urn:intake-gateway:problem:event-refused",
                title="Submission refused by the complaint stream",
                status=422,
                detail=str(exc),
            )
        )
    problem = Problem(
        type="urn:intake-gateway:problem:kafka-unavailable",
        title="Service temporarily unavailable",
        status=503,
        detail=str(exc),
    )
    return problem_response(problem, {"Retry-After": "30"})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    problem = Problem(
        type=f"urn:intake-gateway:problem:http-{exc.status_code}",
        title=str(exc.detail),
        status=exc.status_code,
    )
    return problem_response(problem, dict(exc.headers or {}))
