"""Structured logging (structlog, JSON lines) that never writes personal data in clear.

Every log event passes through ``mask_personal_data``: email addresses, phone numbers and
health-insurance numbers (NAM, NIR, NISS shapes) found in any string value are masked. The
libraries' own logs (aiokafka, uvicorn: the standard ``logging`` module) go through the same
chain, so every line is JSON and masked; a library message repeated in a loop (aiokafka logs
each failed reconnection: 18,000 lines in a few seconds of broker outage under load) is let
through once per ``REPEAT_WINDOW_S``, the next one saying how many were held back.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# digits not glued to letters or hyphenated hex (a UUID's "54d3-..." is no phone number)
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}\d(?![\w-])")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# values that are identifiers of ours, never personal data
_IDENTIFIER_KEYS = frozenset({"reference", "event_id", "notification_id", "offset", "partition"})
_NAM = re.compile(r"\b[A-Za-z]{4}\s?\d{4}\s?\d{4}\b")


# each shape above needs an "@" or a digit: a text with neither is returned as it is (most
# values of a log line: its event's name, a medium, a purpose), one search instead of three subs
_MAYBE_PERSONAL = re.compile(r"[@\d]")


def mask_text(text: str) -> str:
    if _MAYBE_PERSONAL.search(text) is None:
        return text
    return _masked(text)


def _masked(text: str) -> str:
    text = _EMAIL.sub(r"\1***@\2", text)
    text = _NAM.sub(lambda m: m.group(0)[:2] + "**********", text)
    return _PHONE.sub(_masked_phone, text)


def _masked_phone(match: re.Match[str]) -> str:
    digits = match.group(0)
    if _IPV4.match(digits):  # an address of a server, not of a person
        return digits
    return "*" * (len(digits) - 2) + digits[-2:]


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _IDENTIFIER_KEYS:
            event_dict[key] = mask_text(value)
    return event_dict


REPEAT_WINDOW_S = 30.0


class RepeatFilter(logging.Filter):
    """Lets a message (by logger, level and template) through once per ``window_s``; the first
    one after the window names how many were held back meanwhile."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self._window_s = window_s
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        shown_at, held = self._seen.get(key, (float("-inf"), 0))
        if now - shown_at < self._window_s:
            self._seen[key] = (shown_at, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like it held back in {self._window_s:.0f} s]"
        return True


TRANSIENT_BOUND_S = 60.0


class TransientFilter(logging.Filter):
    """A library's error about a condition its client retries by itself (an exception whose
    ``retriable`` is true: the group coordinator not yet elected on a fresh broker, a partition
    leader moving) is a warning, saying it is retried; it stays an error when the same condition
    has lasted ``bound_s`` (a broker that does not come back is worth a page, a start-up is not).
    """

    def __init__(self, bound_s: float = TRANSIENT_BOUND_S) -> None:
        super().__init__()
        self._bound_s = bound_s
        self._since: dict[tuple[str, str], tuple[float, float]] = {}  # first and last seen

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.ERROR or not _retriable(record):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        first, last = self._since.get(key, (now, now))
        if now - last > self._bound_s:  # it went away meanwhile: a new occurrence
            first = now
        self._since[key] = (first, now)
        if now - first < self._bound_s:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg} (transient: retrying)"
        return True


def _retriable(record: logging.LogRecord) -> bool:
    arguments = record.args if isinstance(record.args, tuple) else (record.args,)
    return any(getattr(argument, "retriable", False) is True for argument in arguments)


def configure_logging(level: str = "INFO") -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        mask_personal_data,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    _route_library_logs(level, shared)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )


def _route_library_logs(level: str, shared: list[structlog.typing.Processor]) -> None:
    """The standard ``logging`` records of libraries, rendered as our own JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TransientFilter())  # before: the repeats are counted at the final level
    handler.addFilter(RepeatFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_personal_data,  # again: a traceback may quote what a person wrote
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for chatty in ("aiokafka", "kafka"):  # connection chatter at INFO; warnings still show
        logging.getLogger(chatty).setLevel(logging.WARNING)
