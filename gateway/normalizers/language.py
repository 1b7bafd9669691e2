"""Language of a text, with lingua (made for short texts); None when unsure.

Two readings, the second only when the first does not decide: lingua in its low-accuracy mode
(trigrams only) on the first ``QUICK_CHARS`` characters of a text that reads as prose, accepted
only when its best language leads clearly (``QUICK_MIN_RELATIVE_DISTANCE``); else lingua in its
high-accuracy mode on the first ``SAMPLE_CHARS``. lingua's cost is in proportion to the
characters it reads: most complaints open with a clear sentence and cost half. A text that is
not prose (headers, markup, encoded data, numbers) is never decided by the quick reading, on
which lingua is overconfident.
"""

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
QUICK_CHARS = 120
QUICK_MIN_RELATIVE_DISTANCE = 0.5
QUICK_MAX_NOT_PROSE = QUICK_CHARS // 10  # characters that are neither letters nor spaces
_LETTERS = re.compile(r"[^\W\d_]")
_NOT_PROSE = re.compile(r"[^\w\s]|[\d_]")


_BUILDING = threading.Lock()  # one detector built at a time: two would double the memory


def _detector(languages: tuple[str, ...], quick: bool = False) -> LanguageDetector:
    with _BUILDING:
        return _built(languages, quick)


def warm_up(languages: Sequence[str] = DEFAULT_LANGUAGES) -> None:
    """Load the language models now (some seconds, ~400 MB) rather than on the first
    complaint, which would wait for them: the services call it in a thread as they start."""
    _detector(tuple(languages))
    _detector(tuple(languages), quick=True)


@lru_cache(maxsize=8)
def _built(languages: tuple[str, ...], quick: bool) -> LanguageDetector:
    chosen = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in languages
    ]
    builder = LanguageDetectorBuilder.from_languages(*chosen)
    if quick:  # the trigram models only, which the high-accuracy mode loads too (shared)
        builder = builder.with_low_accuracy_mode().with_minimum_relative_distance(
            QUICK_MIN_RELATIVE_DISTANCE
        )
    else:
        builder = builder.with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
    return builder.with_preloaded_language_models().build()


def detect_language(text: str, languages: Sequence[str] = DEFAULT_LANGUAGES) -> str | None:
    """ISO 639-1 code of the text's language, or None when the text is too short or unclear."""
    sample = text[:SAMPLE_CHARS]
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return None
    chosen = tuple(languages)
    opening = text[:QUICK_CHARS]
    if len(opening) == QUICK_CHARS and reads_as_prose(opening):
        quick = _detector(chosen, quick=True).detect_language_of(opening)
        if quick is not None:
            return quick.iso_code_639_1.name.lower()
    return careful_reading(sample, chosen)


def careful_reading(sample: str, languages: tuple[str, ...]) -> str | None:
    """The high-accuracy reading alone (what ``detect_language`` falls back to)."""
    detected = _detector(languages).detect_language_of(sample)
    return detected.iso_code_639_1.name.lower() if detected is not None else None


def reads_as_prose(opening: str) -> bool:
    """Letters and spaces, with few digits or signs: a sentence, not headers or data."""
    return len(_NOT_PROSE.findall(opening)) <= QUICK_MAX_NOT_PROSE
