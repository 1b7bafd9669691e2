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
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")
_NAM = re.compile(r"\b[A-Za-z]{4}\s?\d{4}\s?\d{4}\b")


def mask_text(text: str) -> str:
    text = _EMAIL.sub(r"\1***@\2", text)
    text = _NAM.sub(lambda m: m.group(0)[:2] + "**********", text)
    return _PHONE.sub(lambda m: "*" * (len(m.group(0)) - 2) + m.group(0)[-2:], text)


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
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
