"""Contact verification (SMS codes through Prism serving Twilio Verify's spec) and inbound SMS
signed as Twilio signs them, on a running gateway and a real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from twilio.request_validator import RequestValidator

from gateway.events import topics
from gateway.events.envelope import parse_event
from gateway.notifier.tokens import EmailTokens, link_key
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.secrets import FileSecrets
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.http import gateway_settings, running_gateway
from tests.support.pages import page_token
from tests.support.prism import AUTH_TOKEN, TwilioMock

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://plaintes.example.org"
SMS_WEBHOOK = "/v1/webhooks/twilio/sms"


@pytest.fixture(scope="module")
async def sms_gateway(
    kafka_settings: KafkaSettings, twilio: TwilioMock, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, GatewaySettings]]:
    base = gateway_settings(kafka_settings, tmp_path_factory.mktemp("sms-gateway"))
    settings = GatewaySettings.model_validate(
        {
            **base.model_dump(by_alias=True),
            "kafka": kafka_settings,
            "webhook_secrets": {"contact-form": ["s3cret"]},
            "public_url": PUBLIC_URL,
            "twilio": twilio.settings(),
            "notifier": {"sms_per_number_per_hour": 2, "sms_per_client_per_hour": 50},
        }
    )
    async with running_gateway(settings) as (url, _):
        yield url, settings


async def filed_with_phone(client: httpx.AsyncClient, phone: str) -> str:
    fields = {"name": "Ann Lee", "phone": phone, "body": "My card never came.", "language": "en"}
    answer = await client.post("/v1/webhooks/forms/contact-form", **signed_json(fields))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["reference"])


async def test_a_code_goes_only_to_the_number_given_with_the_complaint_within_limits(
    sms_gateway: tuple[str, GatewaySettings], twilio: TwilioMock
) -> None:
    url, _ = sms_gateway
    before = len(twilio.requests("/Verifications"))
    async with httpx.AsyncClient(base_url=url) as client:
        reference = await filed_with_phone(client, "+15145550142")
        start = "/v1/verify/sms/start"
        other_number = await client.post(
            start, json={"reference": reference, "phone": "+15145550143"}
        )
        not_e164 = await client.post(start, json={"reference": reference, "phone": "514 555 0142"})
        foreign = await client.post(start, json={"reference": reference, "phone": "+447911123456"})
        bad_reference = await client.post(
            start, json={"reference": "PL-AAAA-AAAA-AAAA", "phone": "+15145550142"}
        )
        first = await client.post(start, json={"reference": reference, "phone": "+15145550142"})
        second = await client.post(start, json={"reference": reference, "phone": "+15145550142"})
        third = await client.post(start, json={"reference": reference, "phone": "+15145550142"})
    for refused, field in (
        (other_number, "phone"),
        (not_e164, "phone"),
        (foreign, "phone"),
        (bad_reference, "reference"),
    ):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field
    assert (first.status_code, first.json()) == (202, {"status": "pending"})
    assert second.status_code == 202
    assert third.status_code == 429  # two codes an hour per number in these settings
    assert int(third.headers["Retry-After"]) > 60
    assert len(twilio.requests("/Verifications")) == before + 2  # refused ones never reach Twilio


async def test_a_right_code_publishes_the_verified_phone(
    sms_gateway: tuple[str, GatewaySettings], kafka_settings: KafkaSettings
) -> None:
    url, _ = sms_gateway
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    async with httpx.AsyncClient(base_url=url) as client:
        reference = await filed_with_phone(client, "+15145550144")
        await reader.mark()
        body = {"reference": reference, "phone": "+15145550144", "code": "123456"}
        checked = await client.post("/v1/verify/sms/check", json=body)
        malformed = await client.post("/v1/verify/sms/check", json={**body, "code": "12ab"})
    assert checked.status_code == 200, checked.text
    assert checked.json()["verified"] is True  # Prism answers Twilio's example: approved
    assert malformed.status_code == 422
    [record] = await reader.read(1)
    event = parse_event(record.value)
    assert (event.type, event.subject) == ("complaint.contact_verified", reference)
    assert (event.data.value, event.data.method) == ("+15145550144", "sms_code")


def twilio_form(params: dict[str, str], url: str, token: str = AUTH_TOKEN) -> dict[str, object]:
    signature = RequestValidator(token).compute_signature(url, params)
    return {"data": params, "headers": {"X-Twilio-Signature": signature}}


async def test_an_inbound_sms_signed_for_the_public_url_becomes_a_complaint_once(
    sms_gateway: tuple[str, GatewaySettings], kafka_settings: KafkaSettings
) -> None:
    url, _ = sms_gateway
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "From": "+15145550177",
        "To": "+15145550000",
        "Body": "Bonjour, je n'ai jamais reçu ma carte d'assurance maladie.",
        "NumMedia": "0",
    }
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.post(SMS_WEBHOOK, **twilio_form(params, PUBLIC_URL + SMS_WEBHOOK))
        again = await client.post(SMS_WEBHOOK, **twilio_form(params, PUBLIC_URL + SMS_WEBHOOK))
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/xml")
    assert "<Response" in first.text
    assert again.status_code == 200
    records = await reader.read(2, timeout_s=5)
    assert len(records) == 1  # Twilio's retry of the same SID is the same input
    event = parse_event(records[0].value)
    assert event.type == "complaint.received"
    assert event.data.channel == "sms"
    assert event.data.complainant.phone == "+15145550177"
    assert event.data.source_message.id == params["MessageSid"]
    assert event.data.source_message.uri is not None


async def test_an_sms_signed_for_the_local_url_or_altered_is_refused(
    sms_gateway: tuple[str, GatewaySettings], kafka_settings: KafkaSettings
) -> None:
    """Behind a reverse proxy Twilio signs the public URL: a signature over the local URL (or
    over other parameters) is not Twilio's."""
    url, _ = sms_gateway
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": "+15145550178", "Body": "hello"}
    local = twilio_form(params, url + SMS_WEBHOOK)
    altered = twilio_form(params, PUBLIC_URL + SMS_WEBHOOK)
    altered["data"] = {**params, "Body": "something else"}
    wrong_token = twilio_form(params, PUBLIC_URL + SMS_WEBHOOK, token="another-token")
    async with httpx.AsyncClient(base_url=url) as client:
        answers = [
            await client.post(SMS_WEBHOOK, **local),
            await client.post(SMS_WEBHOOK, **altered),
            await client.post(SMS_WEBHOOK, **wrong_token),
            await client.post(SMS_WEBHOOK, data=params),
        ]
        as_json = await client.post(
            SMS_WEBHOOK, content=json.dumps(params), headers={"content-type": "application/json"}
        )
    assert [answer.status_code for answer in answers] == [403, 403, 403, 403]
    assert as_json.status_code == 415


async def test_a_renewal_of_an_expired_link_asks_the_notifier_for_a_new_one(
    sms_gateway: tuple[str, GatewaySettings], kafka_settings: KafkaSettings
) -> None:
    url, settings = sms_gateway
    tokens = EmailTokens(
        await link_key(None, FileSecrets(settings.data_dir / "state")), valid_days=5
    )
    token = tokens.issue("PL-HP69-9MYG-AHW6", "marie@example.org", "fr")
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await reader.mark()
    async with httpx.AsyncClient(base_url=url) as client:
        csrf = await page_token(client, "/complaints/new")  # any page gives the browser's token
        renew = {"csrf_token": csrf, "token": token}
        renewed = await client.post("/v1/verify/email/renew", data=renew)
        again = await client.post("/v1/verify/email/renew", data=renew)
        forged = await client.post(
            "/v1/verify/email/renew", data={**renew, "token": token[:-3] + "AAA"}
        )
    assert renewed.status_code == 202
    assert "nouveau lien" in renewed.text
    assert again.status_code == 202
    assert forged.status_code == 400
    records = await reader.read(2, timeout_s=5)
    requests = [parse_event(record.value) for record in records]
    assert {event.id for event in requests} == {requests[0].id}  # one request a day per link
    assert requests[0].data.purpose == "email_verification"
    assert requests[0].data.recipient == "marie@example.org"


async def test_a_used_link_is_not_renewed_the_address_is_confirmed_already(
    sms_gateway: tuple[str, GatewaySettings], kafka_settings: KafkaSettings
) -> None:
    url, settings = sms_gateway
    tokens = EmailTokens(
        await link_key(None, FileSecrets(settings.data_dir / "state")), valid_days=5
    )
    token = tokens.issue("PL-HP69-9MYG-AHW6", "jean@example.org", "fr")
    notifications = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await notifications.mark()
    async with httpx.AsyncClient(base_url=url) as client:
        used = await client.get("/v1/verify/email", params={"token": token})
        csrf = await page_token(client, "/complaints/new")
        renewed = await client.post(
            "/v1/verify/email/renew", data={"csrf_token": csrf, "token": token}
        )
    assert used.status_code == 200
    assert renewed.status_code == 410
    assert "PL-HP69-9MYG-AHW6" in renewed.text
    assert 'action="/v1/verify/email/renew' not in renewed.text
    assert await notifications.read(1, timeout_s=3) == []  # no new link asked for


async def test_guessing_the_number_of_a_complaint_is_stopped_by_its_limit(
    sms_gateway: tuple[str, GatewaySettings], twilio: TwilioMock
) -> None:
    """Five wrong numbers a day for one complaint (the default): the sixth guess, and even the
    right number then, gets 429, so a reference alone does not lead to the person's phone."""
    url, _ = sms_gateway
    before = len(twilio.requests("/Verifications"))
    async with httpx.AsyncClient(base_url=url) as client:
        reference = await filed_with_phone(client, "+15145550150")
        guesses = [
            await client.post(
                "/v1/verify/sms/start", json={"reference": reference, "phone": f"+1514555016{n}"}
            )
            for n in range(6)
        ]
        right = await client.post(
            "/v1/verify/sms/start", json={"reference": reference, "phone": "+15145550150"}
        )
        checked = await client.post(
            "/v1/verify/sms/check",
            json={"reference": reference, "phone": "+15145550199", "code": "123456"},
        )
    assert [guess.status_code for guess in guesses] == [422] * 5 + [429]
    assert right.status_code == checked.status_code == 429
    assert len(twilio.requests("/Verifications")) == before
