"""The office's dead-letter page in real headless Chromium (Debian's, driven by Playwright, as
``tests/integration/web/test_form_browser.py``): signing in with a token, no axe-core
violation (WCAG 2.1 A and AA) in French or English, a redrive without JavaScript, and forms
refused without the session's CSRF token."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from gateway.events import topics
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from tests.integration.dlq.test_admin_http import ADMIN, gateway, unmatched_documents
from tests.integration.web.test_form_browser import CHROMIUM, CHROMIUM_FLAGS, axe_violations
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.http import GatewayProcess

pytestmark = [pytest.mark.integration, pytest.mark.browser]
__all__ = ["gateway"]  # the module's gateway process, as the HTTP tests run it


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def client(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        yield http


async def signed_in(page: Page, url: str, lang: str, token: str = ADMIN) -> None:
    await page.goto(f"{url}/admin/dlq?lang={lang}")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_page_has_no_accessibility_violation_signed_out_or_in(
    browser: Browser, gateway: GatewayProcess, client: httpx.AsyncClient, lang: str
) -> None:
    await unmatched_documents(client, reference_for(f"a11y-{uuid.uuid4()}"), "x@y.example")
    context = await browser.new_context(locale="fr-CA")
    page = await context.new_page()
    await page.goto(f"{gateway.url}/admin/dlq?lang={lang}")
    assert await page.get_attribute("html", "lang") == lang
    assert await page.is_visible("#token")
    assert await axe_violations(page) == []
    await signed_in(page, gateway.url, lang, token="not-an-admin-token")
    assert await page.get_attribute("#token", "aria-invalid") == "true"
    assert await page.is_visible("[role=alert]")
    assert await axe_violations(page) == []
    await signed_in(page, gateway.url, lang)
    await page.wait_for_selector("table.records")
    assert await page.is_visible("input[name=reference]")  # documents_unmatched: a field
    assert await axe_violations(page) == []
    [cookie] = await context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    await context.close()


async def test_unmatched_documents_redriven_from_the_page_without_javascript(
    browser: Browser,
    gateway: GatewayProcess,
    client: httpx.AsyncClient,
    kafka_settings: KafkaSettings,
) -> None:
    filed = await client.post(
        "/v1/webhooks/forms/contact-form",
        **signed_json({"body": "Ma carte n'est jamais arrivée.", "email": "paul@example.org"}),
    )
    reference = filed.json()["reference"]
    record_id = await unmatched_documents(client, reference_for(f"t-{uuid.uuid4()}"), "paul@x.org")
    context = await browser.new_context(java_script_enabled=False, locale="en")
    page = await context.new_page()
    await signed_in(page, gateway.url, "en")
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    row = page.locator("tr", has=page.locator(f"#reference-{record_id}"))
    await page.fill(f"#reference-{record_id}", reference)
    await row.locator("form[action*='/redrive'] button").click()
    notice = page.locator(".notice[role=status]")
    await notice.wait_for()
    assert "Redriven (marie," in (await notice.text_content() or "")
    assert await page.locator(f"#reference-{record_id}").count() == 0  # no longer open
    assert await axe_violations_without_js(browser, page) == []
    [record] = await complaints.read(1)
    event = json.loads(record.value)
    assert (event["type"], event["subject"]) == ("complaint.document_added", reference)
    await context.close()


async def axe_violations_without_js(browser: Browser, page: Page) -> list[object]:
    """axe runs as a script: the same page, opened again in a context with JavaScript on."""
    context = await browser.new_context(storage_state=await page.context.storage_state())
    checked = await context.new_page()
    await checked.goto(page.url)
    found = await axe_violations(checked)
    await context.close()
    return list(found)


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    record_id = await unmatched_documents(client, reference_for(f"c-{uuid.uuid4()}"), "c@d.org")
    signed = await client.post("/admin/login", data={"token": ADMIN})
    assert signed.status_code == 303
    for csrf in ({}, {"csrf": "forged"}):
        forged = await client.post(f"/admin/dlq/{record_id}/dismiss", data=csrf)
        assert forged.status_code == 403
    page = await client.get("/admin/dlq")
    assert page.headers["x-frame-options"] == "DENY"
    assert record_id in page.text  # still open
    client.cookies.clear()
    signed_out = await client.post(f"/admin/dlq/{record_id}/dismiss", data={})
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/admin/dlq?lang=fr")
