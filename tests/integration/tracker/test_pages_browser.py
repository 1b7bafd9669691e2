"""The status, transparency and satisfaction pages in real headless Chromium (Debian's), driven
by Playwright, with JavaScript off as a person may have it: filled with the keyboard, no
axe-core violation (WCAG 2.1 A and AA) in French and English.
Set GATEWAY_UPDATE_SCREENSHOTS=1 to refresh docs/status.png and docs/transparency.png."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Browser, Page

from gateway.notifier.feedback_links import FeedbackLinks
from gateway.settings import KafkaSettings
from tests.conftest import REPO
from tests.integration.web.test_form_browser import axe_violations, browser, tab_to
from tests.support.forms import signed_json
from tests.support.http import SECRETS, running_gateway
from tests.support.tracker import (
    reference,
    running_tracker,
    status,
    synthetic_stream,
    tracker_settings,
    utc,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]
__all__ = ["browser"]  # the module's Chromium, shared with the form's tests

SCREENSHOTS = os.environ.get("GATEWAY_UPDATE_SCREENSHOTS") == "1"


@dataclass
class Site:
    url: str
    reference: str
    links: FeedbackLinks


@pytest.fixture(scope="module")
async def site(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    settings = await tracker_settings(
        kafka_settings,
        tmp_path_factory.mktemp("pages"),
        webhook_secrets=SECRETS,
        tracker={"indicators_refresh_s": 0.2},
    )
    prefix = f"{uuid.uuid4().hex[:6]}-"
    async with running_gateway(settings) as (url, publisher), running_tracker(settings) as tracker:
        fields = {"name": "Marie Tremblay", "email": "marie@example.org", "body": "Ma carte."}
        async with httpx.AsyncClient(base_url=url) as client:
            filed = await client.post("/v1/webhooks/forms/contact-form", **signed_json(fields))
        ref = filed.json()["reference"]
        change = status("page", "in_progress", utc(2026, 12, 7, 15), "Dossier confié à Mme Roy.")
        data = change.data.model_copy(update={"reference": ref})
        await publisher.publish(change.model_copy(update={"subject": ref, "data": data}))
        for event in synthetic_stream(prefix):
            await publisher.publish(event)
        store = tracker.backend.tracker
        await wait_for(store, lambda found: bool(found and found.status_at), ref)
        await wait_for(
            store, lambda found: bool(found and found.closed_at), reference(prefix + "F")
        )
        await wait_for(store, lambda found: bool(found and found.rating), reference(prefix + "B"))
        links = FeedbackLinks(tracker.tokens.link_key)
        yield Site(url, ref, links)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A person's browser with JavaScript off: the pages must not need it."""
    context = await browser.new_context(
        locale="fr-CA", viewport={"width": 1100, "height": 900}, java_script_enabled=False
    )
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_a_person_looks_a_complaint_up_with_the_keyboard(
    page: Page, checker: Page, site: Site, lang: str
) -> None:
    await page.goto(f"{site.url}/complaints/status?lang={lang}")
    assert await page.get_attribute("html", "lang") == lang
    assert await violations(page, checker) == []
    await page.click("button[type=submit]")  # empty: errors announced and linked
    assert await page.is_visible(".error-summary a[href='#reference']")
    assert await violations(page, checker) == []
    await tab_to(page, "reference")
    await page.keyboard.type(site.reference.lower())
    await tab_to(page, "contact")
    await page.keyboard.type("Marie@Example.org")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#status")
    assert "Dossier confié à Mme Roy." in (await page.text_content("#last-change") or "")
    assert await violations(page, checker) == []
    if SCREENSHOTS and lang == "fr":
        await page.screenshot(path=str(REPO / "docs" / "status.png"), full_page=True)
    await page.fill("#reference", site.reference)
    await page.fill("#contact", "someone.else@example.org")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#outcome")
    assert await violations(page, checker) == []


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_transparency_page_reads_without_javascript(
    page: Page, checker: Page, site: Site, lang: str
) -> None:
    await page.goto(f"{site.url}/transparency?lang={lang}")
    assert await page.get_attribute("html", "lang") == lang
    assert await page.locator("table.figures").count() >= 3
    assert await page.locator("svg.bar").count() > 0
    assert await violations(page, checker) == []
    if SCREENSHOTS and lang == "en":
        await page.screenshot(path=str(REPO / "docs" / "transparency.png"), full_page=True)


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_satisfaction_page_is_accessible_and_answers_once(
    page: Page, checker: Page, site: Site, lang: str
) -> None:
    token = site.links.issue(reference(f"browser-{lang}-{uuid.uuid4().hex[:6]}"), lang)
    await page.goto(f"{site.url}/v1/feedback?token={token}")
    assert await page.get_attribute("html", "lang") == lang
    assert await violations(page, checker) == []
    await page.click("button[type=submit]")  # no rating: said, and linked
    assert await page.is_visible(".error-summary")
    assert await violations(page, checker) == []
    await page.check("#rating-4")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#outcome")
    assert await violations(page, checker) == []
    await page.goto(f"{site.url}/v1/feedback?token={token}")
    assert await page.text_content("#outcome") in ("Avis déjà donné", "Already answered")


@pytest.fixture
async def checker(browser: Browser, site: Site) -> AsyncIterator[Page]:
    """A page with JavaScript for axe-core, at the site's address (the person's has none)."""
    context = await browser.new_context(locale="fr-CA", viewport={"width": 1100, "height": 900})
    checking = await context.new_page()
    await checking.goto(f"{site.url}/healthz")  # relative links resolve against the site
    yield checking
    await context.close()


async def violations(page: Page, checker: Page) -> list[dict[str, object]]:
    """axe-core's WCAG 2.1 A/AA violations of what ``page`` shows (copied into ``checker``)."""
    await checker.set_content(await page.content())
    return await axe_violations(checker)
