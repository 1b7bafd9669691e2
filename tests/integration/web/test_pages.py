"""The confirmation page says what the person can expect, and nothing they cannot."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.pages import post_form

pytestmark = pytest.mark.integration


async def file_on_the_page(gateway_url: str, lang: str = "fr", **fields: str) -> httpx.Response:
    form = {"submission_id": str(uuid.uuid4()), "consent": "true", "language": lang, **fields}
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        return await post_form(
            client,
            f"/complaints/new?lang={lang}",
            f"/complaints/new?lang={lang}",
            form,
            files=[("attachments", ("", b"", "application/octet-stream"))],  # none chosen
        )


async def test_an_anonymous_report_is_promised_no_answer_and_no_online_documents(
    gateway_url: str,
) -> None:
    page = await file_on_the_page(
        gateway_url,
        kind="denunciation",
        anonymous="true",
        body="Je signale une fraude : cette clinique facture des soins jamais faits.",
    )
    assert page.status_code == 200, page.text
    assert 'id="reference"' in page.text
    assert "nous ne pourrons pas vous répondre" in page.text
    assert "Réponse au plus tard" not in page.text  # nobody to answer
    assert "/complaints/documents" not in page.text  # no contact to send documents with


async def test_a_named_complaint_is_given_its_due_dates_and_the_documents_page(
    gateway_url: str,
) -> None:
    page = await file_on_the_page(
        gateway_url,
        kind="complaint",
        email="nomme@example.org",
        body="Ma carte n'est jamais arrivée.",
    )
    assert page.status_code == 200, page.text
    assert "Réponse au plus tard" in page.text
    assert "/complaints/documents" in page.text
    assert "nous ne pourrons pas vous répondre" not in page.text


async def test_the_reference_is_introduced_as_each_language_writes_it(gateway_url: str) -> None:
    pages = {
        lang: await file_on_the_page(
            gateway_url,
            lang,
            kind="comment",
            email=f"ponctuation-{lang}@example.org",
            body="Merci pour votre accueil.",
        )
        for lang in ("fr", "en")
    }
    assert "Votre numéro de dossier : <strong" in pages["fr"].text  # French: space, colon
    assert "Your file number: <strong" in pages["en"].text  # English: no space before it
