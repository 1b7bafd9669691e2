"""JSON nested too deeply is refused (400 ``too-deep``) before anything parses it.

Two ways in: the form webhook reads its raw body itself and scans each chunk as it is spooled
(``gateway.web.uploads.spool_body``); routes whose body FastAPI parses (``/v1/verify/sms/*``,
any JSON endpoint declared with a pydantic body) use ``depth_checked_route``, which scans the
body FastAPI is about to hand to ``json.loads``. A test walks the app's routes so that a new
JSON endpoint without the check fails it.
"""

from __future__ import annotations

import asyncio
import email.message
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute

from gateway.jsondepth import check_depth
from gateway.web.problems import ProblemError

OFF_LOOP_BYTES = 256 * 1024  # a larger body is scanned in a thread (some 100 MB/s)


def too_deep(limit: int) -> ProblemError:
    return ProblemError(
        400,
        "too-deep",
        "JSON nested too deeply",
        f"arrays and objects may nest at most {limit} levels deep",
    )


def is_json(content_type: str | None) -> bool:
    """What FastAPI parses as JSON (``application/json``, ``application/*+json``); a body with no
    content type is treated as JSON too, in case the route is lenient about it."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def check_body_depth(request: Request, limit: int) -> None:
    """Scan a JSON body FastAPI will parse; Starlette keeps the body read, FastAPI reuses it."""
    if not is_json(request.headers.get("content-type")):
        return
    body = await request.body()
    try:
        if len(body) > OFF_LOOP_BYTES:
            await asyncio.to_thread(check_depth, body, limit)
        else:
            check_depth(body, limit)
    except ValueError:
        raise too_deep(limit) from None


def parses_json_body(route: APIRoute) -> bool:
    """Whether FastAPI parses this route's body as JSON."""
    return route.body_field is not None and not isinstance(route.body_field.field_info, Form)


def depth_checked_route(limit: int) -> type[APIRoute]:
    """An ``APIRoute`` class (``APIRouter(route_class=...)``) whose JSON bodies are scanned for
    depth before FastAPI parses them."""

    class DepthCheckedRoute(APIRoute):
        max_json_depth = limit

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if not parses_json_body(self):
                return handler

            async def checked(request: Request) -> Response:
                await check_body_depth(request, limit)
                return await handler(request)

            return checked

    return DepthCheckedRoute
