"""The pages' words in French and English, and which language a visitor gets."""

from __future__ import annotations

import tomllib
from pathlib import Path

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

MESSAGES: dict[str, dict[str, str]] = {
    language: tomllib.loads(
        (Path(__file__).with_name("messages") / f"{language}.toml").read_text("utf-8")
    )
    for language in LANGUAGES
}


def choose_language(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` first, then the browser's preferences (RFC 9110 q-values), else French."""
    if query in LANGUAGES:
        return query
    ranked: list[tuple[float, str]] = []
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.split("-")[0].lower()))
    for _, language in sorted(ranked, key=lambda pair: -pair[0]):
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE
