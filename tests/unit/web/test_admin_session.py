"""The admin page's session cookie and CSRF token (``gateway.web.admin_session``), and its words
in both languages."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from gateway.settings import GatewaySettings
from gateway.web.admin_page import ADMIN_MESSAGES
from gateway.web.admin_session import (
    COOKIE,
    SESSION_S,
    admin_of_token,
    check_csrf,
    new_session_cookie,
    secure_cookie,
    session_of,
)
from gateway.web.problems import ProblemError

TOKENS = {"marie": SecretStr("token-of-marie"), "paul.é": SecretStr("token-of-paul")}


def request(cookie: str | None = None, url: str = "http://127.0.0.1:8080/admin/dlq") -> Request:
    scheme, rest = url.split("://")
    host, _, path = rest.partition("/")
    headers = [(b"host", host.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "scheme": scheme,
        "path": f"/{path}",
        "headers": headers,
        "query_string": b"",
        "server": (host.split(":")[0], 443 if scheme == "https" else 80),
    }
    return Request(scope)


def test_a_pasted_token_names_its_admin_and_nothing_else_does() -> None:
    assert admin_of_token(" token-of-marie\n", TOKENS) == "marie"
    assert admin_of_token("token-of-mari", TOKENS) is None
    assert admin_of_token("", TOKENS) is None


def test_a_session_is_read_back_with_its_admin_and_a_csrf_token() -> None:
    for admin in TOKENS:
        session = session_of(request(new_session_cookie(admin, TOKENS)), TOKENS)
        assert session is not None
        assert session.admin == admin
        check_csrf(session, session.csrf)
        with pytest.raises(ProblemError):
            check_csrf(session, "x" + session.csrf[1:])  # not hex: always another token
    one = session_of(request(new_session_cookie("marie", TOKENS)), TOKENS)
    other = session_of(request(new_session_cookie("marie", TOKENS)), TOKENS)
    assert one is not None
    assert other is not None
    assert one.csrf != other.csrf  # each session its own


def test_a_forged_altered_expired_or_revoked_session_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cookie = new_session_cookie("marie", TOKENS)
    name, issued, nonce, mac = cookie.split(".")
    as_paul = new_session_cookie("paul.é", TOKENS).split(".")[0]
    for forged in (
        f"{as_paul}.{issued}.{nonce}.{mac}",  # another admin's name on marie's signature
        f"{name}.{int(issued) + 60}.{nonce}.{mac}",  # made to last longer
        f"{name}.{issued}.{nonce}.{'0' * 64}",
        "garbage",
        "",
    ):
        assert session_of(request(forged), TOKENS) is None, forged
    assert session_of(request(cookie), {"marie": SecretStr("a new token")}) is None
    assert session_of(request(), TOKENS) is None
    monkeypatch.setattr(time, "time", lambda: int(issued) + SESSION_S + 1)
    assert session_of(request(cookie), TOKENS) is None


def test_the_cookie_is_secure_over_https_or_under_the_public_https_address() -> None:
    plain = GatewaySettings.model_validate({"public_url": "http://127.0.0.1:8080"})
    public = GatewaySettings.model_validate({"public_url": "https://plaintes.example"})
    assert not secure_cookie(request(), plain)
    assert secure_cookie(request(url="https://127.0.0.1:8443/admin/dlq"), plain)
    assert secure_cookie(request(url="http://plaintes.example/admin/dlq"), public)
    assert not secure_cookie(request(url="http://10.0.0.5:8080/admin/dlq"), public)


def test_the_admin_page_says_everything_in_both_languages() -> None:
    assert set(ADMIN_MESSAGES["fr"]) == set(ADMIN_MESSAGES["en"])
    assert all(text.strip() for words in ADMIN_MESSAGES.values() for text in words.values())
