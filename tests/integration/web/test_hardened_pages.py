"""Every HTML page hardened, every form post checked, on a running gateway (uvicorn, real
broker): the security headers and no server banner on each page, no script or inline style
anywhere, each form's CSRF token first, and a post without the right token refused with a page
that says so, whatever the form (multipart or urlencoded), while signed webhooks and JSON
calls go on as before."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from gateway.web.hardening import CSP
from tests.support.forms import signed_json
from tests.support.pages import page_token

pytestmark = pytest.mark.integration

PAGES = [
    "/complaints/new?lang=fr",
    "/complaints/new?lang=en",
    "/complaints/documents?lang=en",
    "/complaints/status?lang=fr",
    "/transparency?lang=en",
    "/v1/verify/email?token=not-a-token",
    "/v1/feedback?token=not-a-token",
    "/admin/dlq?lang=en",
]
# Each form the public pages post, with fields it accepts (the token is put first by the test).
FORMS = {
    "/complaints/new?lang=en": (
        {"submission_id": str(uuid.uuid4()), "body": "x"},
        [("attachments", ("letter.pdf", b"%PDF-1.4 a letter", "application/pdf"))],
    ),
    "/complaints/documents?lang=en": (
        {"reference": "PL-0000-0000-0001", "contact": "a@example.org"},
        [("attachments", ("letter.pdf", b"%PDF-1.4 a letter", "application/pdf"))],
    ),
    "/complaints/status?lang=en": ({"reference": "nope", "contact": ""}, None),
    "/v1/feedback?lang=en": ({"token": "not-a-token", "rating": "4"}, None),
    "/v1/verify/email/renew?lang=en": ({"token": "not-a-token"}, None),
}
FORM = re.compile(r'<form method="post" action="(?P<action>[^"]+)"[^>]*>\s*(?P<first><[^>]+>)')


def assert_hardened(answer: httpx.Response) -> None:
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP  # default-src 'none': no script of any origin
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "server" not in answer.headers  # no banner, no version


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_hardened_and_runs_no_script(gateway_url: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        answer = await client.get(path)
    assert_hardened(answer)
    if path.startswith("/admin/"):  # the office's page: a token bound to its session instead
        assert "gateway_csrf" not in answer.headers.get("set-cookie", "")
    else:
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("gateway_csrf=")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
    html = answer.text.lower()
    assert "<script" not in html
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)  # no inline event handler
    for form in FORM.finditer(answer.text):
        if form.group("action").startswith("/admin/"):
            continue  # the office's forms carry their session's own token
        assert 'name="csrf_token"' in form.group("first"), form.group("action")


async def test_json_answers_say_nosniff_and_no_referrer_and_no_server(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        answer = await client.get("/healthz")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "server" not in answer.headers
    assert "set-cookie" not in answer.headers


async def post(
    client: httpx.AsyncClient, action: str, token: str | None, *, first: bool = True
) -> httpx.Response:
    data, files = FORMS[action]
    if token is not None:
        data = {"csrf_token": token, **data} if first else {**data, "csrf_token": token}
    return await client.post(action, data=data, files=files)


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403
    assert_hardened(answer)
    assert "This form was not sent" in answer.text
    assert "Nothing was sent" in answer.text


@pytest.mark.parametrize("action", list(FORMS))
async def test_a_post_from_another_site_without_the_token_is_refused_with_a_page(
    gateway_url: str, action: str
) -> None:
    """GIVEN a page of another site that posts to the form (no cookie: SameSite=Strict keeps
    it, and no token) THEN 403 and a page saying nothing was sent."""
    cross_site = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=cross_site) as attacker:
        assert_refused(await post(attacker, action, None))
        assert_refused(await post(attacker, action, "0" * 64))


@pytest.mark.parametrize("action", list(FORMS))
async def test_only_the_token_of_the_browsers_own_cookie_first_in_the_form_is_taken(
    gateway_url: str, action: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=gateway_url) as person,
        httpx.AsyncClient(base_url=gateway_url) as other,
    ):
        token = await page_token(person, "/complaints/new?lang=en")
        others = await page_token(other, "/complaints/new?lang=en")
        assert token != others
        assert_refused(await post(person, action, None))
        assert_refused(await post(person, action, others))
        assert_refused(await post(person, action, token[:-1] + "0" if token[-1] != "0" else "1"))
        assert_refused(await post(person, action, token, first=False))
        taken = await post(person, action, token)
    assert taken.status_code != 403, taken.text
    assert "This form was not sent" not in taken.text


async def test_the_refusal_speaks_the_persons_language(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        answer = await client.post(
            "/complaints/status", data={"reference": "x"}, headers={"accept-language": "fr-CA"}
        )
    assert answer.status_code == 403
    assert "pas été envoyé" in answer.text
    assert 'href="/complaints/status?lang=fr"' in answer.text


async def test_signed_webhooks_and_json_calls_need_no_page_token(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        webhook = await client.post(
            "/v1/webhooks/forms/contact-form",
            **signed_json({"body": "Ma carte.", "email": "json@example.org"}),
        )
        status = await client.post(
            "/v1/complaints/status", json={"reference": "PL-0000-0000-0001", "email": "a@b.c"}
        )
        bearer = await client.post(
            "/complaints/status",
            data={"reference": "x"},
            headers={"authorization": "Bearer not-a-browser"},
        )
    assert webhook.status_code == 202
    assert status.status_code != 403
    assert bearer.status_code != 403  # a page cannot add an Authorization header
