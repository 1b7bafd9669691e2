"""Logs never carry personal data in clear."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from gateway.logs import (
    RepeatFilter,
    _masked,
    configure_logging,
    mask_personal_data,
    mask_text,
)


@pytest.mark.parametrize(
    ("clear", "secret"),
    [
        ("from marie.tremblay@example.org", "marie.tremblay"),
        ("phone +1 514 555 0123 called", "555 0123"),
        ("NAM TREM 1234 5678 given", "1234 5678"),
        ("NAM TREM12345678", "12345678"),
        ("NIR 1 84 12 75 123 456 78", "123 456"),
        ("NISS 85.07.30-033.28", "30-033"),
    ],
)
def test_given_personal_data_in_a_log_line_then_it_is_masked(clear: str, secret: str) -> None:
    assert secret not in mask_text(clear)


@pytest.mark.parametrize(
    "kept",
    [
        "notification 357a50b5-caca-54d1-9a7e-86f3ded4f982 sent",
        "broker at 127.0.0.1:19092",
    ],
)
def test_identifiers_and_server_addresses_are_not_mistaken_for_phones(kept: str) -> None:
    assert mask_text(kept) == kept


def test_fields_that_hold_our_identifiers_are_left_as_they_are() -> None:
    event = mask_personal_data(None, "info", {"offset": "12345678901", "to": "+15145550123"})
    assert event == {"offset": "12345678901", "to": "**********23"}


def test_given_a_log_event_then_every_string_field_is_masked() -> None:
    event = mask_personal_data(None, "info", {"event": "x", "to": "a.b@example.org", "n": 3})
    assert event == {"event": "x", "to": "a***@example.org", "n": 3}


def test_given_a_configured_logger_then_timestamps_are_not_mistaken_for_phones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()  # writes to this test's captured stderr, closed once the test ends
    try:
        structlog.get_logger("t").info("mail.sent", to="a.b@example.org")
    finally:
        structlog.reset_defaults()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "*" not in line["timestamp"]
    assert line["to"] == "a***@example.org"


def test_library_logs_are_json_lines_masked_and_repeats_held_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    try:
        for _ in range(50):
            logging.getLogger("aiokafka.conn").error(
                "Unable connect to node with id %s: %s", 1, "refused for marie@example.org"
            )
        logging.getLogger("uvicorn.error").error(
            "Exception in ASGI application", exc_info=ValueError("body of +1 514 555 0123")
        )
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [line["logger"] for line in lines] == ["aiokafka.conn", "uvicorn.error"]
    assert lines[0]["event"] == "Unable connect to node with id 1: refused for m***@example.org"
    assert "555 0123" not in lines[1]["exception"]
    assert "ValueError" in lines[1]["exception"]


def test_a_repeated_message_comes_back_after_its_window_saying_how_many_were_held() -> None:
    repeats = RepeatFilter(window_s=0.0)
    record = logging.LogRecord("aiokafka", logging.ERROR, "f", 1, "lost %s", ("x",), None)
    assert repeats.filter(record)
    held = RepeatFilter(window_s=3600)
    shown = [held.filter(logging.LogRecord("k", 40, "f", 1, "m", (), None)) for _ in range(4)]
    assert shown == [True, False, False, False]
    held._seen[("k", 40, "m")] = (float("-inf"), 3)  # the window has passed
    again = logging.LogRecord("k", 40, "f", 1, "m", (), None)
    assert held.filter(again)
    assert again.getMessage() == "m [3 more like it held back in 3600 s]"


PIECES = st.sampled_from(
    ["marie@example.org", "+1 514 555 0199", "TREM 4501 0112", "10.0.0.1", "@", "7", " ", "-", "é"]
)


@given(st.lists(st.one_of(st.text(max_size=12), PIECES), max_size=8).map("".join))
def test_a_text_without_an_at_sign_or_a_digit_is_left_as_the_full_masking_leaves_it(
    text: str,
) -> None:
    """The quick path (no "@", no digit: returned at once) never decides otherwise than the
    three patterns would."""
    assert mask_text(text) == _masked(text)
