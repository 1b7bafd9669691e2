"""Text: HTML to clean plain text, Unicode NFC, control characters out, quoted replies and
signatures separated from what the person wrote."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\ufeff]")
_BLANK_RUN = re.compile(r"\n{3,}")


class LineStartPattern:
    """A pattern that matches only where a line starts (what ``^`` means under MULTILINE),
    searched the fast way: Python's ``re`` cannot skip ahead to a ``^`` and tries every position
    of the text, but it finds a leading literal ``\\n`` with a plain scan. So the pattern is
    tried at the text's start, then as ``\\n`` + pattern: the same matches, several times
    sooner on a long text."""

    def __init__(self, pattern: str, flags: re.RegexFlag = re.IGNORECASE) -> None:
        flags |= re.MULTILINE
        self._at_start = re.compile(pattern, flags)
        self._after_newline = re.compile(f"\n(?:{pattern})", flags)

    def first(self, text: str) -> int | None:
        """Where the first match starts, or None."""
        if self._at_start.match(text):
            return 0
        match = self._after_newline.search(text)
        return match.start() + 1 if match else None


# A quoted reply starts at its header line ("On ... wrote:", "Le ... a écrit :") or a forwarded
# block; everything from there on is the earlier conversation.
_QUOTE_HEADERS = LineStartPattern(
    r"(?:"
    r"On\b.{4,200}\bwrote:"
    r"|Le\b.{4,200}\ba écrit\s?:"
    r"|Op\b.{4,200}\bschreef.{0,80}:"
    r"|Am\b.{4,200}\bschrieb.{0,80}:"
    r"|-{2,}\s*(?:Original Message|Message d'origine|Oorspronkelijk bericht|Forwarded message"
    r"|Message transféré)\s*-{2,}"
    r"|_{10,}"
    r")\s*$"
)
# Outlook's header block: "From: ..." / "De : ..." followed within two lines by Sent/Envoyé/Date.
_OUTLOOK_HEADER = LineStartPattern(
    r"(?:From|De|Van)\s?:.*\n(?:.*\n){0,2}?(?:Sent|Envoyé|Date|Verzonden)\s?:"
)
_QUOTED_LINES = LineStartPattern(r"(?:>.*(?:\n|$)){2,}", re.NOFLAG)
# RFC 3676 signature delimiter "-- ", and the phone mailers' signatures.
_SIGNATURE = LineStartPattern(
    r"(?:-- ?|Sent from my .{2,40}|Envoyé de mon .{2,40}|Verzonden vanaf mijn .{2,40}"
    r"|Get Outlook for .{2,40}|Obtenir Outlook pour .{2,40})\s*$"
)


@dataclass(frozen=True)
class SplitText:
    """What the person wrote, apart from the conversation they quoted and their signature."""

    body: str
    quoted: str | None
    signature: str | None


@lru_cache(maxsize=1)
def _html_config() -> ParserConfig:
    return ParserConfig(display_links=True)


def html_to_text(html: str) -> str:
    """Readable text from HTML: paragraphs kept, links as ``[text](url)``, scripts/styles gone."""
    return clean_text(get_text(html, _html_config()))


def clean_text(text: str) -> str:
    """NFC, no control or invisible direction characters, Unix newlines, no trailing spaces."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    joined = "\n".join([line.strip() for line in text.split("\n")])
    return (_BLANK_RUN.sub("\n\n", joined) if "\n\n\n" in joined else joined).strip()


def split_reply(text: str) -> SplitText:
    """Separate the new text from quoted replies and the signature (never loses a character)."""
    quoted_at = _first_match(text, _QUOTE_HEADERS, _OUTLOOK_HEADER, _QUOTED_LINES)
    new, quoted = (text[:quoted_at], text[quoted_at:]) if quoted_at is not None else (text, "")
    signature_at = _first_match(new, _SIGNATURE)
    body, signature = (new[:signature_at], new[signature_at:]) if signature_at else (new, "")
    if not body.strip():  # all quoted (a bare forward): the quoted text is the complaint
        return SplitText(body=text.strip(), quoted=None, signature=None)
    return SplitText(
        body=body.strip(), quoted=quoted.strip() or None, signature=signature.strip() or None
    )


def _first_match(text: str, *patterns: LineStartPattern) -> int | None:
    starts = [start for pattern in patterns if (start := pattern.first(text)) is not None]
    return min(starts) if starts else None
