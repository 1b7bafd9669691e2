"""Structured logging (structlog, JSON lines) that never writes personal data in clear.

Every log event passes through ``mask_personal_data``: email addresses, phone numbers and
health-insurance numbers (NAM, NIR, NISS shapes) found in any string value are masked.
"""

from __future__ import annotations

import logging
import re
import sys
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


def mask_text(text: str) -> str:
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


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(name)s: %(message)s")
    for chatty in ("aiokafka", "kafka"):  # connection chatter at INFO; warnings still show
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            mask_personal_data,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
