"""Errors as RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_TYPE_BASE = "urn:intake-gateway:problem:"
MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` names the fields at fault (422)."""

    type: str = Field(description="URN naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class ProblemError(Exception):
    """Raised anywhere in a request; rendered as a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(
            type=PROBLEM_TYPE_BASE + kind,
            title=title,
            status=status,
            detail=detail,
            errors=errors or [],
        )
        self.headers = headers or {}


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given statuses, all problem documents."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": _TITLES[status]}
        for status in statuses
    }


_TITLES = {
    400: "Malformed request",
    401: "Signature missing, malformed, too old or wrong",
    403: "Twilio signature missing or wrong",
    404: "Unknown form, or a feature this server does not have configured",
    409: "Idempotency key reused with another body",
    413: "Request or file too large",
    415: "Unsupported media type",
    422: "Invalid fields",
    429: "Too many requests",
    503: "Kafka (or the SMS provider) unavailable: retry after the delay given",
}
