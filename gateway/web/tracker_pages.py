"""How the tracker's pages are rendered (status, satisfaction, transparency): the site's layout
and words, theirs added (``messages/tracker.<lang>.toml``), never cached."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.dates import long_date
from gateway.notifier.planner import STATUS_LABELS
from gateway.web.hardening import csrf_field
from gateway.web.i18n import LANGUAGES, MESSAGES
from gateway.web.problems import MEDIA_TYPE, Problem

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
TRACKER_MESSAGES: dict[str, dict[str, str]] = {
    language: {
        **MESSAGES[language],
        **tomllib.loads(
            (Path(__file__).with_name("messages") / f"tracker.{language}.toml").read_text("utf-8")
        ),
    }
    for language in LANGUAGES
}
_environment = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)
_environment.globals["csrf_field"] = csrf_field  # first in every form (gateway.web.hardening)


def problem_described(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses`` entry: a problem document, with what it means here."""
    return {status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}}


def page_or_problem(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses`` entry: a page (a browser's form) or a problem document."""
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    content = {"text/html": {"schema": {"type": "string"}}, MEDIA_TYPE: problem}
    return {status: {"content": content, "description": description}}


def render_page(
    name: str,
    lang: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    other = next(language for language in LANGUAGES if language != lang)
    html = _environment.get_template(name).render(
        lang=lang,
        other_lang=other,
        t=TRACKER_MESSAGES[lang],
        status_labels=STATUS_LABELS[lang],
        format_date=lambda day: long_date(day, lang),
        **{"errors": {}, "values": {}, **context},
    )
    return HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
