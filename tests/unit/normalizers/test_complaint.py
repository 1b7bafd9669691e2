"""The whole normalizer chain, as each channel uses it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channels.raw import RawMessage, Sender
from gateway.events.common import Channel, IdentifierOwner, IdentifierScheme
from gateway.events.complaint import ComplaintReceived, DocumentAdded, Flag, Kind
from gateway.normalizers import (
    ComplaintNormalizer,
    NormalizerConfig,
    normalizer_config,
)
from gateway.normalizers.contacts import OwnContacts
from gateway.reference import reference_for
from gateway.settings import NormalizerSettings
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex

RECEIVED = datetime(2026, 11, 20, 15, tzinfo=UTC)
CONFIG = NormalizerConfig()


def raw(**overrides: Any) -> RawMessage:
    values: dict[str, Any] = {
        "channel": Channel.EMAIL,
        "source_key": "email:<m1@example.org>",
        "source_id": "<m1@example.org>",
        "received_at": RECEIVED,
    }
    values.update(overrides)
    return RawMessage(**values)


def complaint(message: RawMessage, index: SqliteDuplicateIndex | None = None) -> ComplaintReceived:
    result = ComplaintNormalizer(CONFIG, index).normalize(message)
    assert isinstance(result, ComplaintReceived)
    return result


def test_a_french_email_for_a_parent_becomes_a_complete_complaint() -> None:
    event = complaint(
        raw(
            subject="Plainte : carte jamais reçue",
            text=(
                "Bonjour,\n\nJe vous écris au nom de ma mère. Son NAM est TREM 5503 1512. Elle n'a "
                "toujours pas reçu sa carte, c'est inacceptable.\n\n"
                "--\nMarie Tremblay\n514 555 0123"
            ),
            sender=Sender(name="Marie Tremblay", email="Marie@Example.ORG"),
        )
    )
    assert event.reference == reference_for("email:<m1@example.org>")
    assert (event.kind, event.language) == (Kind.COMPLAINT, "fr")
    assert event.complainant.email == "Marie@example.org"
    assert event.complainant.phone == "+15145550123"
    assert event.represented_person is not None
    assert event.represented_person.relationship == "mère"
    assert [(i.scheme, i.valid, i.owner) for i in event.identifiers] == [
        (IdentifierScheme.CA_QC_RAMQ, True, IdentifierOwner.REPRESENTED_PERSON)
    ]
    assert event.signature is not None
    assert "514 555 0123" not in event.body
    assert event.due is not None
    assert (event.due.policy, str(event.due.acknowledge_by)) == ("ramq", "2026-11-24")
    assert event.flags == []


def test_a_web_form_uses_its_fields_and_the_kind_the_person_chose() -> None:
    event = complaint(
        raw(
            channel=Channel.WEBFORM,
            source_key="webform:contact:key-1",
            fields={
                "name": "Paul Martin",
                "email": "paul@example.org",
                "phone": "(514) 555-0199",
                "kind": "comment",
                "body": "Je n'ai toujours pas reçu ma carte, c'est inacceptable.",
                "health_insurance_number": "MART 7001 0112",
                "represented_person": {
                    "name": "Léo Martin",
                    "relationship": "fils",
                    "health_insurance_number": "MARL 1504 0212",
                },
            },
        )
    )
    assert event.kind is Kind.COMMENT  # chosen by the person: the rules do not override it
    assert event.complainant.phone == "+15145550199"
    assert event.represented_person is not None
    assert event.represented_person.name == "Léo Martin"
    assert [(i.value, i.owner) for i in event.identifiers] == [
        ("MART70010112", IdentifierOwner.COMPLAINANT),
        ("MARL15040212", IdentifierOwner.REPRESENTED_PERSON),
    ]


def test_an_anonymous_denunciation_keeps_no_personal_data_and_needs_no_review() -> None:
    event = complaint(
        raw(
            channel=Channel.WEBFORM,
            fields={"anonymous": "true", "name": "Ignored", "email": "x@example.org"},
            text="Je dénonce une fraude : cette clinique facture des soins jamais faits.",
        )
    )
    assert event.complainant.anonymous
    assert (event.complainant.name, event.complainant.email) == (None, None)
    assert event.kind is Kind.DENUNCIATION
    assert Flag.NEEDS_REVIEW not in event.flags


def test_given_no_way_to_reach_the_person_then_needs_review() -> None:
    assert Flag.NEEDS_REVIEW in complaint(raw(text="Ma carte n'est jamais arrivée.")).flags


def test_given_an_invalid_identifier_then_kept_and_needs_review() -> None:
    event = complaint(raw(text="NAM TREM 8513 1512", sender=Sender(email="a@example.org")))
    assert [i.valid for i in event.identifiers] == [False]
    assert Flag.NEEDS_REVIEW in event.flags


def test_given_an_auto_reply_then_flag_passed_through_and_no_due_dates() -> None:
    event = complaint(
        raw(
            text="Je suis absent du bureau.",
            flags=frozenset({Flag.AUTO_REPLY}),
            sender=Sender(email="a@example.org"),
        )
    )
    assert Flag.AUTO_REPLY in event.flags
    assert event.due is None


def test_given_html_only_then_the_body_is_its_text() -> None:
    event = complaint(
        raw(
            html="<p>Bonjour,</p><p>Je n'ai <b>rien</b> reçu.</p><script>x()</script>",
            sender=Sender(email="a@example.org"),
        )
    )
    assert event.body == "Bonjour,\n\nJe n'ai rien reçu."


def test_abusive_language_and_routing_flags() -> None:
    event = complaint(
        raw(
            text="Bande d'incompétents de merde, mon médecin a été négligent",
            sender=Sender(email="a@example.org"),
        )
    )
    assert {Flag.ABUSIVE_LANGUAGE, Flag.OTHER_BODY} <= set(event.flags)
    assert [hint.rule for hint in event.routing] == ["professional_misconduct"]


@pytest.mark.parametrize("where", ["subject", "body", "thread", "field"])
def test_given_a_reference_with_a_valid_check_then_document_added(where: str) -> None:
    existing = reference_for("email:<first@example.org>")
    values: dict[str, Any] = {
        "subject": f"Re: votre dossier {existing}" if where == "subject" else "Re: dossier",
        "text": f"Voici le document pour {existing}." if where == "body" else "Voici le document.",
        "thread_references": (existing,) if where == "thread" else (),
        "fields": {"reference": existing} if where == "field" else {},
    }
    result = ComplaintNormalizer(CONFIG).normalize(raw(**values))
    assert isinstance(result, DocumentAdded)
    assert result.reference == existing


def test_near_miss_a_reference_with_a_wrong_check_symbol_is_a_new_complaint() -> None:
    existing = reference_for("email:<first@example.org>")
    wrong = existing[:-1] + ("2" if existing[-1] != "2" else "3")
    result = ComplaintNormalizer(CONFIG).normalize(raw(subject=f"Re: {wrong}", text="Merci"))
    assert isinstance(result, ComplaintReceived)


def test_same_verified_person_same_text_through_two_channels_is_a_possible_duplicate() -> None:
    index = SqliteDuplicateIndex(None)
    text = "Je n'ai toujours pas reçu ma carte d'assurance maladie demandée en août dernier."
    first = complaint(
        raw(text=text, sender=Sender(email="a@example.org", email_verified=True)), index
    )
    second = complaint(
        raw(
            channel=Channel.WEBFORM,
            source_key="webform:f:k2",
            fields={"body": text, "health_insurance_number": ""},
            sender=Sender(email="A@example.org", email_verified=True),
        ),
        index,
    )
    assert Flag.POSSIBLE_DUPLICATE not in first.flags
    assert Flag.POSSIBLE_DUPLICATE in second.flags
    assert second.possible_duplicate_of == first.reference


def test_settings_build_the_configuration_and_refuse_an_unknown_policy() -> None:
    config = normalizer_config(NormalizerSettings(due_policy="inami", default_region="BE"))
    assert (config.due_policy.name, config.default_region) == ("inami", "BE")
    with pytest.raises(Exception, match="GATEWAY_NORMALIZER_DUE_POLICY"):
        normalizer_config(NormalizerSettings(due_policy="nowhere"))


def test_settings_give_the_offices_own_contacts_and_refuse_what_is_neither() -> None:
    config = normalizer_config(
        NormalizerSettings(own_contacts=["1 800 561-9749", "Info@RAMQ.example"]),
        own_contacts=["Bureau des plaintes <plaintes@ramq.example>"],
    )
    assert config.own_contacts.phones == {"+18005619749"}
    assert config.own_contacts.emails == {"info@ramq.example", "plaintes@ramq.example"}
    with pytest.raises(Exception, match="GATEWAY_NORMALIZER_OWN_CONTACTS: 'service'"):
        normalizer_config(NormalizerSettings(own_contacts=["service"]))


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=3000),
    html=st.one_of(st.none(), st.text(max_size=500)),
    subject=st.one_of(st.none(), st.text(max_size=200)),
)
def test_property_normalisation_never_raises(
    text: str, html: str | None, subject: str | None
) -> None:
    result = ComplaintNormalizer(CONFIG).normalize(
        raw(text=text, html=html, subject=subject, sender=Sender(email="a@example.org"))
    )
    assert result.reference.startswith("PL-")


def test_given_a_date_and_hour_in_the_text_then_they_are_not_taken_for_a_phone() -> None:
    # 2026-11-20 14 would be +1 202-611-2014: an SMS acknowledgement to a stranger
    message = raw(
        channel=Channel.WEBFORM,
        text="Dossier ouvert le 2026-11-20 14:32, toujours pas de réponse.",
        fields={"name": "Jan"},
    )
    result = complaint(message)
    assert result.complainant.phone is None
    assert Flag.NEEDS_REVIEW in result.flags  # no way to reach the person


OFFICE = NormalizerConfig(
    own_contacts=OwnContacts.of(
        ["Bureau des plaintes <Plaintes@RAMQ.example>", "1 800 561-9749"], "CA"
    )
)


def test_given_a_letter_quoting_the_offices_contacts_then_they_are_not_the_persons() -> None:
    # the acknowledgement would otherwise go to the office's own mailbox or number
    text = (
        "À l'attention du Bureau des plaintes, plaintes@ramq.example, 1 800 561-9749.\n\n"
        "Je n'ai toujours pas reçu ma carte. Vous pouvez me joindre au 418 682 5145 ou à "
        "paul.gagnon@example.ca."
    )
    result = ComplaintNormalizer(OFFICE, None).normalize(raw(channel=Channel.POSTAL, text=text))
    assert isinstance(result, ComplaintReceived)
    assert (result.complainant.email, result.complainant.phone) == (
        "paul.gagnon@example.ca",
        "+14186825145",
    )


def test_given_only_the_offices_contacts_in_a_text_then_the_person_has_none() -> None:
    text = "Écrivez-nous à plaintes@ramq.example ou au 1 800 561-9749, dit votre lettre. Rien reçu."
    result = ComplaintNormalizer(OFFICE, None).normalize(raw(channel=Channel.WEBFORM, text=text))
    assert isinstance(result, ComplaintReceived)
    assert (result.complainant.email, result.complainant.phone) == (None, None)
    assert Flag.NEEDS_REVIEW in result.flags
