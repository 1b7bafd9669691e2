"""Language of a text, with lingua (made for short texts); None when unsure."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

DEFAULT_LANGUAGES = ("fr", "en", "nl", "de", "es", "it", "pt", "ar")
MIN_LETTERS = 20  # below this, any guess is a coin toss: say nothing
SAMPLE_CHARS = 200  # the opening paragraphs decide; the rest only costs time
MIN_RELATIVE_DISTANCE = 0.15
_LETTERS = re.compile(r"[^\W\d_]")


_BUILDING = threading.Lock()  # one detector built at a time: two would double the memory


def _detector(languages: tuple[str, ...]) -> LanguageDetector:
    with _BUILDING:
        return _built(languages)


def warm_up(languages: Sequence[str] = DEFAULT_LANGUAGES) -> None:
    """Load the language models now (some seconds, ~400 MB) rather than on the first
    complaint, which would wait for them: the services call it in a thread as they start."""
    _detector(tuple(languages))


@lru_cache(maxsize=4)
def _built(languages: tuple[str, ...]) -> LanguageDetector:
    chosen = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in languages
    ]
    return (
        LanguageDetectorBuilder.from_languages(*chosen)
        .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
        .with_preloaded_language_models()
        .build()
    )


def detect_language(text: str, languages: Sequence[str] = DEFAULT_LANGUAGES) -> str | None:
    """ISO 639-1 code of the text's language, or None when the text is too short or unclear."""
    sample = text[:SAMPLE_CHARS]
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return None
    detected = _detector(tuple(languages)).detect_language_of(sample)
    return detected.iso_code_639_1.name.lower() if detected is not None else None
