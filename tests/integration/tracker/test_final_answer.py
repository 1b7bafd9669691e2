"""The final answer end to end, on a real broker and SMTP server: a case system says "answered",
the notifier mails the person the recourse of the complaint's policy (the tracker's) and a
satisfaction link; the link's page takes one answer, publishes ``complaint.feedback_received``
(folded by the tracker), and refuses the link used twice, expired or forged."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from gateway.events import topics
from gateway.notifier.feedback_links import FeedbackLinks
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.tracker import TrackerStore
from tests.support.consumer import TopicReader
from tests.support.http import running_gateway
from tests.support.notifier import running_notifier, start_group_at_end
from tests.support.pages import TOKEN, page_token
from tests.support.smtp import SmtpServer
from tests.support.tracker import (
    local,
    received,
    reference,
    running_tracker,
    status,
    tracker_settings,
    wait_for,
)

pytestmark = pytest.mark.integration


@dataclass
class Running:
    url: str
    settings: GatewaySettings
    links: FeedbackLinks
    publisher: KafkaPublisher
    store: TrackerStore


@contextlib.asynccontextmanager
async def everything(
    kafka: KafkaSettings, data_dir: Path, smtp: SmtpServer
) -> AsyncIterator[Running]:
    group = f"notifier-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka.bootstrap, group)
    settings = await tracker_settings(
        kafka,
        data_dir,
        smtp=smtp.settings(),
        notifier={"group_id": group, "retry_base_s": 0.05, "retry_max_s": 0.5},
        http={"rate_per_client_per_minute": 1000},
    )
    async with (
        running_tracker(settings) as tracker,
        running_notifier(settings) as components,
        running_gateway(settings) as (url, publisher),
    ):
        links = FeedbackLinks(components.tokens.link_key)
        yield Running(url, settings, links, publisher, tracker.backend.tracker)


def feedback_link(mail: EmailMessage) -> str:
    text = mail.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    return next(word for word in content.split() if "/v1/feedback?token=" in word)


async def test_an_answer_carries_the_recourse_and_a_link_taking_one_answer(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    name = f"final-{tmp_path.name}"
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    async with everything(kafka_settings, tmp_path, smtp_server) as running:
        await running.publisher.publish(
            received(name, local("inami", 2026, 6, 1, 10), policy="inami")
        )
        await wait_for(running.store, lambda found: found is not None, reference(name))
        await running.publisher.publish(
            status(name, "answered", local("inami", 2026, 7, 1, 10), "Remboursement accordé.")
        )
        [mail] = await smtp_server.wait_for(1)
        body = mail.get_body(("plain",))
        assert body is not None
        assert "Médiateur fédéral" in body.get_content()
        assert "0800 99 961" in body.get_content()
        link = feedback_link(mail).replace("https://plaintes.example.org", running.url)
        async with httpx.AsyncClient() as client:
            page = await client.get(link)
            assert page.status_code == 200
            assert 'type="radio"' in page.text
            assert "<script" not in page.text
            for personal in ('name="email"', 'name="name"', 'name="phone"'):
                assert personal not in page.text
            token = link.split("token=", 1)[1]
            csrf = TOKEN.search(page.text)
            assert csrf is not None  # the page's form carries its CSRF token first
            form = {"csrf_token": csrf.group(1), "token": token, "rating": "4"}
            form["comment"] = "Clair, mais un peu long."
            answered = await client.post(f"{running.url}/v1/feedback", data=form)
            assert answered.status_code == 200
            assert "Merci" in answered.text
            again = await client.post(f"{running.url}/v1/feedback", data={**form, "rating": "1"})
            assert again.status_code == 410
            assert (await client.get(link)).status_code == 410
            as_json = await client.post(
                f"{running.url}/v1/feedback", json={"token": token, "rating": 2}
            )
            assert as_json.status_code == 409
        rated = await wait_for(
            running.store, lambda found: found is not None and found.rating == 4, reference(name)
        )
        assert rated is not None
    events = [json.loads(record.value) for record in await complaints.read(3)]
    given = [event for event in events if event["type"] == "complaint.feedback_received"]
    assert [event["data"]["rating"] for event in given] == [4]
    assert given[0]["data"]["comment"] == "Clair, mais un peu long."
    assert given[0]["subject"] == reference(name)


async def test_a_forged_expired_or_incomplete_answer_is_refused(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    async with everything(kafka_settings, tmp_path, smtp_server) as running:
        links = running.links
        url = f"{running.url}/v1/feedback"
        expired = links.issue(reference("late"), "en", at=int(time.time()) - 31 * 86_400)
        forged = FeedbackLinks(b"another installation's key").issue(reference("late"))
        fresh = links.issue(reference(f"json-{tmp_path.name}"), "en")
        async with httpx.AsyncClient() as client:
            page = await client.get(url, params={"token": expired})
            assert page.status_code == 410
            assert "Link expired" in page.text
            assert (await client.get(url, params={"token": forged})).status_code == 400
            assert (await client.get(url, params={"token": ""})).status_code == 400
            answer = await client.post(url, json={"token": expired, "rating": 5})
            assert (answer.status_code, answer.json()["type"]) == (
                410,
                "urn:intake-gateway:problem:link-expired",
            )
            assert (await client.post(url, json={"token": forged, "rating": 5})).status_code == 400
            assert (await client.post(url, json={"token": fresh, "rating": 6})).status_code == 422
            csrf = await page_token(client, f"{running.url}/complaints/status")
            missing = await client.post(
                url, data={"csrf_token": csrf, "token": fresh, "comment": "x"}
            )
            assert missing.status_code == 422
            assert 'href="#rating"' in missing.text
            done = await client.post(url, json={"token": fresh, "rating": 5})
            assert (done.status_code, done.json()["rating"]) == (201, 5)
            assert (await client.post(url, json={"token": fresh, "rating": 5})).status_code == 409
