"""Regular expressions tried only where a cheap first scan says a match can be.

Python's ``re`` tries a pattern such as an email address's at every position of a text; a 2 KB
complaint holds one ``@`` or none. Finding the literal with ``str.find`` (or the digit runs
every identifier contains, with one scan) and searching only the windows around them gives the
same matches as ``finditer`` for a fraction of the time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator


def finditer_near(
    pattern: re.Pattern[str], text: str, literal: str, before: int, after: int | None = None
) -> Iterator[re.Match[str]]:
    """What ``pattern.finditer(text)`` gives, for a pattern whose every match contains
    ``literal`` and starts at most ``before`` characters before it (and, seen within a window,
    ends at most ``after`` characters after it; ``before`` when not given)."""
    return finditer_around(pattern, text, _occurrences(text, literal), before, after)


def finditer_around(
    pattern: re.Pattern[str],
    text: str,
    spans: Iterable[tuple[int, int]],
    before: int,
    after: int | None = None,
) -> Iterator[re.Match[str]]:
    """What ``pattern.finditer(text)`` gives, for a pattern whose every match overlaps one of
    ``spans`` (in text order), starting at most ``before`` characters before the span (and
    ending at most ``after`` after it; ``before`` when not given). A match that runs past
    the window is still given whole: each is taken again from its start without a window."""
    after = before if after is None else after
    position = 0
    for span_start, span_end in spans:
        if span_end <= position:
            continue
        window_end = span_end + after + 1  # +1: a final \b or look-ahead sees past the window
        match = pattern.search(text, max(position, span_start - before), window_end)
        while match is not None:
            # Seen whole (no window end), the match from there is the one finditer gives.
            whole = pattern.match(text, match.start())
            if whole is not None:
                yield whole
                position = max(whole.end(), match.start() + 1)
                # the next match may start within this span's window
                match = pattern.search(text, position, window_end)
                continue
            match = pattern.search(text, match.start() + 1, window_end)


def _occurrences(text: str, literal: str) -> Iterator[tuple[int, int]]:
    at = text.find(literal)
    while at >= 0:
        yield at, at + len(literal)
        at = text.find(literal, at + 1)


def blank_spans(text: str, spans: Iterable[tuple[int, int]], fill: str = " ") -> str:
    """The text with each span's characters replaced by ``fill`` (one character), its length
    kept so positions still match; spans in any order, overlapping or not."""
    pieces, last = [], 0
    for start, end in sorted(spans):
        begin = max(start, last)
        if end <= begin:
            continue
        pieces += [text[last:begin], fill * (end - begin)]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)
