"""Message templates (Jinja2) in French and English, editable by an office without code changes.

Each purpose has two files per language: ``<purpose>.txt.j2`` with the blocks ``subject``,
``text`` (the plain-text part, always sent) and ``sms``, and ``<purpose>.html.j2`` (the HTML
part, autoescaped). A folder given in ``GATEWAY_NOTIFIER_TEMPLATES`` is searched first, so an
office overrides one file and keeps the rest. The language is the complaint's when a template
exists for it, else the office's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from gateway.dates import long_date
from gateway.errors import ConfigurationError

BUILT_IN = Path(__file__).with_name("templates")
_BLANK_LINES = re.compile(r"\n{3,}")  # sections left out leave one blank line, not three
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class RenderedMessage:
    language: str
    subject: str
    text: str
    html: str
    sms: str


class TemplateLibrary:
    def __init__(self, override: Path | None = None, default_language: str = "fr") -> None:
        folders = [str(override)] if override else []
        self._environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*folders, str(BUILT_IN)]),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # an edited template takes effect at the next start
        )
        self._default_language = default_language
        # (language, purpose) -> its two templates: Jinja2's own look-up (loader, cache key,
        # lock) cost ~2% of an acknowledgement, twice; templates never reload (above)
        self._pairs: dict[tuple[str, str], tuple[jinja2.Template, jinja2.Template]] = {}

    def language_for(self, language: str | None) -> str:
        return language if language in LANGUAGES else self._default_language

    def render(self, purpose: str, language: str | None, values: dict[str, Any]) -> RenderedMessage:
        """Every part of one message; raises ``jinja2.TemplateError`` when a template is broken."""
        chosen = self.language_for(language)
        context = {**values, "language": chosen}
        context["long_date"] = lambda value: long_date(value, chosen)
        text, html = self._templates(chosen, purpose)
        blocks = text.new_context(context)  # one context for the three blocks
        return RenderedMessage(
            language=chosen,
            subject=" ".join(_block(text, "subject", blocks).split()),
            text=_BLANK_LINES.sub("\n\n", _block(text, "text", blocks)).strip() + "\n",
            html=html.render(context),
            sms=" ".join(_block(text, "sms", blocks).split()),
        )

    def _templates(self, language: str, purpose: str) -> tuple[jinja2.Template, jinja2.Template]:
        if (pair := self._pairs.get((language, purpose))) is None:
            pair = (
                self._environment.get_template(f"{language}/{purpose}.txt.j2"),
                self._environment.get_template(f"{language}/{purpose}.html.j2"),
            )
            self._pairs[(language, purpose)] = pair
        return pair

    def check(self) -> None:
        """Load every template once (start-up): a broken file stops the notifier with its name."""
        for name in self._environment.list_templates(extensions=["j2"]):
            try:
                self._environment.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                msg = f"GATEWAY_NOTIFIER_TEMPLATES: {name}, line {exc.lineno}: {exc.message}"
                raise ConfigurationError(msg) from None


def _block(template: jinja2.Template, name: str, context: jinja2.runtime.Context) -> str:
    render = template.blocks.get(name)
    if render is None:
        return ""
    return "".join(render(context))
