"""X-Gateway-Signature: what passes and what is refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gateway.web.signature import (
    BodyVerifier,
    SignatureError,
    check_timestamp,
    parse_header,
    sign,
)

BODY = b'{"body": "Ma plainte"}'


def verify(header_value: str | None, body: bytes, secrets: list[str], tolerance: int = 300) -> None:
    header = parse_header(header_value)
    check_timestamp(header, tolerance)
    verifier = BodyVerifier(header, [s.encode() for s in secrets])
    for start in range(0, len(body), 5):  # fed in chunks, as it streams
        verifier.update(body[start : start + 5])
    verifier.verify()


def test_given_a_body_signed_with_the_form_secret_then_it_passes() -> None:
    verify(sign(BODY, "s3cret"), BODY, ["s3cret"])


def test_given_rotation_then_the_old_and_the_new_secret_both_pass() -> None:
    verify(sign(BODY, "old"), BODY, ["new", "old"])
    verify(sign(BODY, "new"), BODY, ["new", "old"])


def test_given_several_v1_values_then_one_good_is_enough() -> None:
    header = sign(BODY, "s3cret")
    timestamp, good = header.split(",")
    verify(f"{timestamp},v1={'0' * 64},{good}", BODY, ["s3cret"])


def signed(secret: str, shift_s: int = 0) -> Callable[[], str]:
    """A header made when the test runs, not when it is collected (the suite takes minutes,
    longer than the replay window)."""
    return lambda: sign(BODY, secret, int(time.time()) + shift_s)


@pytest.mark.parametrize(
    ("header", "body", "secrets", "reason"),
    [
        (None, BODY, ["s"], "missing"),
        ("", BODY, ["s"], "missing"),
        ("v1=abc", BODY, ["s"], "malformed"),
        ("t=abc,v1=abc", BODY, ["s"], "malformed"),
        ("t=123", BODY, ["s"], "malformed"),
        (signed("wrong"), BODY, ["s3cret"], "does not match"),
        (signed("s3cret"), BODY + b" ", ["s3cret"], "does not match"),
        (signed("s3cret", -3600), BODY, ["s3cret"], "window"),
        (signed("s3cret", 3600), BODY, ["s3cret"], "window"),
        (signed("other-form-secret"), BODY, ["s3cret"], "does not match"),
    ],
)
def test_given_a_bad_signature_then_refused_with_a_reason(
    header: str | Callable[[], str] | None, body: bytes, secrets: list[str], reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(header() if callable(header) else header, body, secrets)


def test_a_signature_does_not_move_to_another_timestamp() -> None:
    header = sign(BODY, "s3cret")
    forged = f"t={int(time.time()) + 1},{header.split(',')[1]}"
    with pytest.raises(SignatureError):
        verify(forged, BODY, ["s3cret"])
