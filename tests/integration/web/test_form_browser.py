"""The reference complaint form in real headless Chromium (Debian's), driven by Playwright.

Checks what a person lives: filling the form in French with the keyboard, attaching a PDF,
seeing the reference; errors announced; no axe-core violation (WCAG 2.1 A and AA) on any page.
Set GATEWAY_UPDATE_SCREENSHOTS=1 to refresh docs/form-fr.png and docs/form-en.png.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from gateway.events import topics
from gateway.settings import GatewaySettings
from tests.conftest import REPO
from tests.support.consumer import TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = REPO / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: scripts/setup installs Debian's chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="fr-CA", viewport={"width": 1000, "height": 900})
    opened = await context.new_page()
    refused: list[str] = []  # what the pages' Content-Security-Policy blocked
    opened.on(
        "console",
        lambda message: refused.append(message.text) if "Policy" in message.text else None,
    )
    yield opened
    await context.close()
    assert refused == []


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    # Evaluated through the DevTools protocol: a <script> tag would be refused by the pages'
    # Content-Security-Policy (no script at all), which does not govern the protocol.
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]
    ]


async def tab_to(page: Page, element_id: str) -> None:
    """Move the focus with the Tab key only until ``element_id`` has it."""
    for _ in range(80):
        await page.keyboard.press("Tab")
        if (
            await page.evaluate("() => document.activeElement && document.activeElement.id")
            == element_id
        ):
            return
    raise AssertionError(f"#{element_id} cannot be reached with the keyboard")


async def test_a_person_files_in_french_with_the_keyboard_and_sees_the_reference(
    page: Page, gateway_url: str, web_settings: GatewaySettings, tmp_path: Path
) -> None:
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    letter = tmp_path / "lettre.pdf"
    letter.write_bytes(PDF)
    await page.goto(f"{gateway_url}/complaints/new")
    assert await page.get_attribute("html", "lang") == "fr"  # from Accept-Language (fr-CA)
    await tab_to(page, "body")
    await page.keyboard.type("Je n'ai toujours pas reçu ma carte d'assurance maladie.")
    await page.set_input_files("#attachments", str(letter))
    await tab_to(page, "name")
    await page.keyboard.type("Marie Tremblay")
    await tab_to(page, "email")
    await page.keyboard.type("marie.tremblay@example.org")
    await tab_to(page, "consent")
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")  # the submit button follows the consent
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#reference")
    reference = (await page.text_content("#reference") or "").strip()
    assert reference.startswith("PL-")
    assert "lettre.pdf" in (await page.content())
    assert await axe_violations(page) == []
    event = json.loads((await reader.read(1))[0].value)
    assert event["subject"] == reference
    assert event["data"]["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert event["data"]["language"] == "fr"
    assert event["data"]["kind"] == "complaint"


async def test_errors_are_announced_and_linked_to_their_fields(
    page: Page, gateway_url: str
) -> None:
    await page.goto(f"{gateway_url}/complaints/new?lang=en")
    await page.fill("#email", "not an address")
    await page.click("button[type=submit]")
    summary = page.locator(".error-summary[role=alert]")
    await summary.wait_for()
    text = await summary.text_content() or ""
    assert "The form has errors" in text
    assert "Invalid email address." in text
    assert await page.get_attribute("#body", "aria-invalid") == "true"
    assert "body-error" in (await page.get_attribute("#body", "aria-describedby") or "")
    assert await page.input_value("#email") == "not an address"  # what was typed is kept
    assert await axe_violations(page) == []


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_form_pages_have_no_accessibility_violation(
    page: Page, gateway_url: str, lang: str
) -> None:
    await page.goto(f"{gateway_url}/complaints/new?lang={lang}")
    assert await page.get_attribute("html", "lang") == lang
    assert await axe_violations(page) == []
    if os.environ.get("GATEWAY_UPDATE_SCREENSHOTS") == "1":
        await page.screenshot(path=str(REPO / "docs" / f"form-{lang}.png"), full_page=True)
    await page.goto(f"{gateway_url}/complaints/documents?lang={lang}")
    assert await axe_violations(page) == []


async def test_the_form_works_without_javascript(browser: Browser, gateway_url: str) -> None:
    context = await browser.new_context(java_script_enabled=False, locale="en")
    page = await context.new_page()
    await page.goto(f"{gateway_url}/complaints/new")
    await page.fill("#body", "A question about my card, how do I renew it?")
    await page.fill("#phone", "514 555 0123")
    await page.check("#kind-information_request")
    await page.check("#consent")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#reference")
    assert "Your request was received" in (await page.content())
    await context.close()
