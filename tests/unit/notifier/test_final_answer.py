"""The final notice: the recourse of the complaint's policy and a single-use satisfaction link,
in both languages, by email and SMS (a letter gets the recourse, not a link to type)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.errors import TokenRefused
from gateway.events.notification import Medium
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.feedback_links import FeedbackLinks
from gateway.notifier.final_answer import FinalAnswers
from gateway.notifier.ledger import Contact
from gateway.notifier.planner import PlannedNotification, plan_status_update
from gateway.notifier.templates import TemplateLibrary
from gateway.notifier.tokens import EmailTokens
from gateway.settings import load_settings
from gateway.store.sqlite_ledger import SqliteLedger
from gateway.store.sqlite_tracker import SqliteTrackerStore
from gateway.tracker.recourse import RecourseBook
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.tracker import local, received, reference, status

KEY = Fernet.generate_key()
DAY = 86_400


def contact(name: str, language: str = "fr", **routes: str | None) -> Contact:
    values: dict[str, Any] = {"email": "marie@example.org", **routes}
    return Contact(reference=reference(name), name="Marie Tremblay", language=language, **values)


async def final_values(name: str, policy: str | None, value: str = "answered") -> dict[str, Any]:
    tracker = SqliteTrackerStore(None)
    if policy is not None:
        entry = entry_of(received(name, local("ramq", 2026, 6, 1, 10), policy=policy))
        assert entry is not None
        await tracker.apply([entry], ComplaintFold(BUILTIN_POLICIES))
    answers = FinalAnswers(RecourseBook.load(None), tracker, default_policy="ramq")
    change = status(name, value, local("ramq", 2026, 6, 20, 10)).data
    return await answers.values(change)


async def test_an_answer_or_a_closing_names_the_recourse_of_the_complaints_policy() -> None:
    inami = await final_values("a", "inami")
    assert inami["final"] is True
    assert inami["recourse"]["name"]["fr"] == "Médiateur fédéral"
    assert inami["recourse"]["phone"] == "0800 99 961"
    closed = await final_values("b", "fr-marianne", "closed")
    assert "caisse" in closed["recourse"]["name"]["fr"]
    untracked = await final_values("c", None)  # the tracker never saw it: the office's default
    assert untracked["recourse"]["name"]["fr"] == "Protecteur du citoyen"
    assert await final_values("d", "inami", "in_progress") == {}


def render(planned: PlannedNotification, feedback: FeedbackLinks | None) -> Any:
    settings = load_settings(public_url="https://plaintes.example.org")
    dispatcher = Dispatcher(
        settings,
        {},
        SqliteLedger(None),
        None,  # type: ignore[arg-type]
        TemplateLibrary(),
        EmailTokens(KEY),
        feedback=feedback,
    )
    return dispatcher.render(planned)


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_the_final_email_carries_the_recourse_and_a_link_that_reads_back(
    language: str,
) -> None:
    links = FeedbackLinks(KEY)
    event = status("e", "answered", local("ramq", 2026, 6, 20, 10), "Votre carte est partie.")
    planned = plan_status_update(
        event, contact("e", language), None, await final_values("e", "inami")
    )
    assert isinstance(planned, PlannedNotification)
    message = render(planned, links)
    assert "Médiateur fédéral" in message.text
    assert "0800 99 961" in message.text
    assert "https://www.mediateurfederal.be" in message.html
    url = next(word for word in message.text.split() if "/v1/feedback?token=" in word)
    assert url.startswith("https://plaintes.example.org/v1/feedback?token=")
    claim = links.read(url.split("token=", 1)[1])
    assert (claim.reference, claim.language) == (reference("e"), language)
    assert url in message.html
    assert ("30 jours" if language == "fr" else "30 days") in message.text


async def test_no_link_in_a_letter_nor_before_the_final_answer_but_the_sms_has_both() -> None:
    links = FeedbackLinks(KEY)
    final = await final_values("f", "ramq")
    event = status("f", "closed", local("ramq", 2026, 6, 20, 10))
    letter = plan_status_update(
        event, contact("f", email=None, postal_address="1 rue X"), None, final
    )
    assert isinstance(letter, PlannedNotification)
    assert letter.medium == Medium.LETTER
    printed = render(letter, links)
    assert "Protecteur du citoyen" in printed.text
    assert "/v1/feedback" not in printed.text
    sms = plan_status_update(event, contact("f", email=None, phone="+15145550123"), None, final)
    assert isinstance(sms, PlannedNotification)
    texted = render(sms, links).sms
    assert "Protecteur du citoyen" in texted
    assert "/v1/feedback?token=" in texted
    progress = plan_status_update(
        status("f", "in_progress", local("ramq", 2026, 6, 5, 10)), contact("f"), None, {}
    )
    assert isinstance(progress, PlannedNotification)
    plain = render(progress, links)
    assert "/v1/feedback" not in plain.text
    assert "Protecteur" not in plain.text


def test_a_link_is_refused_forged_altered_expired_or_of_another_kind() -> None:
    links = FeedbackLinks(KEY, valid_days=30)
    now = int(time.time())
    token = links.issue(reference("g"), "fr", at=now - 29 * DAY)
    assert links.read(token).reference == reference("g")
    with pytest.raises(TokenRefused) as expired:
        links.read(links.issue(reference("g"), "fr", at=now - 31 * DAY))
    assert expired.value.reason == "expired"
    assert getattr(expired.value.claim, "reference", None) == reference("g")
    for forged in (
        FeedbackLinks(Fernet.generate_key()).issue(reference("g")),  # another installation
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # altered
        EmailTokens(KEY).issue(reference("g"), "marie@example.org"),  # an email link
        "nonsense",
        "é",
    ):
        with pytest.raises(TokenRefused) as refused:
            links.read(forged)
        assert refused.value.reason == "invalid"
    with pytest.raises(TokenRefused):
        EmailTokens(KEY).read(token)  # and a satisfaction link is no email link
