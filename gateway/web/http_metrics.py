"""HTTP metrics of every request (``gateway_http_*`` in ``gateway.metrics``), as ASGI middleware.

Labels stay bounded whatever clients send: the route is the matched route's template
(``/v1/webhooks/forms/{form_id}``), ``unmatched`` when none matched; methods other than the
usual ones count as ``other``. With several HTTP workers the series live in prometheus_client's
multiprocess files, so one scrape of any worker shows the whole server.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import HTTP_REFUSALS, HTTP_REQUESTS, HTTP_SECONDS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

# A problem document's kind -> the reason a refusal is counted under.
REFUSAL_REASONS = {
    "bad-signature": "signature",
    "too-large": "too_large",
    "rate-limited": "rate_limited",
    "too-many-codes": "rate_limited",
    "malformed": "invalid",
    "invalid-fields": "invalid",
    "invalid-request": "invalid",
    "unsupported-media-type": "invalid",
    "unknown-form": "unknown_form",
    "too-deep": "too_deep",
    "idempotency-conflict": "conflict",
}


def count_refusal(kind: str) -> None:
    """Counts a problem document of this kind if it refuses the request's input."""
    reason = REFUSAL_REASONS.get(kind)
    if reason is not None:
        HTTP_REFUSALS.labels(reason).inc()


class HttpMetrics:
    """Counts each request by route, method and status, and times it by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server's error middleware answers if the app raises

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED
