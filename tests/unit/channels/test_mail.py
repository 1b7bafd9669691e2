"""Reading emails: real-world messages from the shared corpus, and French cases made here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channels.mail import parse_mail
from gateway.channels.raw import RawMessage, Sender
from gateway.events.common import Channel
from gateway.events.complaint import DocumentAdded, Flag
from gateway.normalizers import ComplaintNormalizer, DuplicateIndex, NormalizerConfig
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "email"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("sisimai-set-of-emails/bsd/rhost-franceptt-05.eml", {Flag.BOUNCE}),
        # a DSN that also says Auto-Submitted: auto-replied is a bounce, not an auto-reply
        ("sisimai-set-of-emails/bsd/lhost-exchange2007-06.eml", {Flag.BOUNCE}),
        ("mailgun-flanker/bounce/gmail-invalid-address.eml", {Flag.BOUNCE}),
        ("sisimai-set-of-emails/bsd/rfc3834-06.eml", {Flag.AUTO_REPLY}),
        ("mikel-mail/attachment_emails/attachment_with_quoted_filename.eml", set()),
    ],
)
def test_bounces_and_auto_replies_are_told_apart(name: str, flags: set[Flag]) -> None:
    assert set(parse_mail(corpus(name)).flags) == flags


def test_a_bounce_names_the_message_that_bounced() -> None:
    parsed = parse_mail(corpus("sisimai-set-of-emails/bsd/lhost-exchange2007-06.eml"))
    assert parsed.bounced_message_ids == (
        "<1513177790.ha3dsljxgizc2mjrgq2dkobx@mb.newsletter-autos.fr>",
    )


@pytest.mark.parametrize(
    ("name", "filename", "media_type"),
    [
        (
            "mikel-mail/attachment_emails/attachment_with_quoted_filename.eml",
            "Eelanalüüsi päring.jpg",
            "image/jpeg",
        ),
        (
            "mikel-mail/multi_charset/japanese_attachment_long_name.eml",
            "かきくけこかきくけこかきくけこかきくけこかきくけこ.txt",
            "text/plain",
        ),
        (
            "mikel-mail/attachment_emails/attachment_message_rfc822.eml",
            "ForwardedMessage.eml",
            "message/rfc822",
        ),
    ],
)
def test_attachment_names_in_any_encoding_and_nested_messages(
    name: str, filename: str, media_type: str
) -> None:
    attachments = parse_mail(corpus(name)).attachments
    assert (attachments[0].filename, attachments[0].media_type) == (filename, media_type)


def french_mail(headers: str, body: bytes, charset: str = "utf-8") -> bytes:
    return (
        f"From: =?utf-8?q?H=C3=A9l=C3=A8ne_C=C3=B4t=C3=A9?= <helene@example.org>\r\n"
        f"Message-ID: <fr-1@example.org>\r\n{headers}"
        f"Content-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode() + body


def test_rfc2047_sender_and_a_wrong_charset_still_give_readable_text() -> None:
    raw = french_mail(
        "Subject: =?iso-8859-1?q?R=E9clamation?=\r\n", "Reçu à Montréal".encode("cp1252"), "utf-8"
    )
    parsed = parse_mail(raw)
    assert parsed.sender_name == "Hélène Côté"
    assert parsed.subject == "Réclamation"
    assert parsed.text == "Reçu à Montréal"  # declared utf-8, sent as Windows-1252


@pytest.mark.parametrize(
    "headers",
    [
        "Subject: Réponse automatique : absent du bureau\r\n",
        "Subject: Absent du bureau jusqu'au 2 décembre\r\n",
        "Subject: Re: dossier\r\nAuto-Submitted: auto-replied\r\n",
        "Subject: Out of Office\r\n",
        "Subject: Re: dossier\r\nX-Autoreply: yes\r\n",
    ],
)
def test_french_and_english_auto_replies(headers: str) -> None:
    assert parse_mail(french_mail(headers, b"Je suis absente.")).flags == {Flag.AUTO_REPLY}


def test_a_reply_carries_its_thread() -> None:
    raw = french_mail(
        "Subject: Re\r\nIn-Reply-To: <PL-7K3M-9Q2X-HB4G.ack@gateway>\r\n"
        "References: <a@b> <c@d>\r\n",
        b"Merci",
    )
    assert parse_mail(raw).thread_ids == ("<PL-7K3M-9Q2X-HB4G.ack@gateway>", "<a@b>", "<c@d>")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_property_any_bytes_parse_without_raising(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert isinstance(parsed.text, str)


def test_every_corpus_message_parses() -> None:
    files = sorted(Path(CORPUS).rglob("*.eml"))
    assert len(files) >= 90
    for path in files:
        parse_mail(path.read_bytes())


def test_a_200_kb_header_is_decoded_without_the_quadratic_parser() -> None:
    parsed = parse_mail(corpus("mailgun-flanker/long-header.eml"))
    assert parsed.subject is not None
    assert parsed.subject.startswith("Die heiße Zypernsonne quälte Max und Victoria")


DSN_OF_OUR_ACKNOWLEDGEMENT = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: plaintes@ramq.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-42@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

This is the mail system. Your message could not be delivered to marie@example.org.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Final-Recipient: rfc822; marie@example.org
Action: failed
Status: 5.1.1

--b
Content-Type: text/rfc822-headers

From: plaintes@ramq.example
To: marie@example.org
Subject: =?utf-8?q?Accus=C3=A9_de_r=C3=A9ception?=
Message-ID: <PL-HP69-9MYG-AHW6.5b0c8f1e00005000@ramq.example>

--b--
"""


def test_a_bounce_of_our_acknowledgement_becomes_a_bounce_of_that_complaint() -> None:
    """The notifier's Message-ID carries the reference: the DSN is filed with the complaint,
    flagged ``bounce``, which makes the notifier fall back to SMS or a letter."""
    parsed = parse_mail(DSN_OF_OUR_ACKNOWLEDGEMENT)
    assert parsed.flags == {Flag.BOUNCE}
    raw = RawMessage(
        channel=Channel.EMAIL,
        source_key="email:<dsn-42@mx.example.org>",
        source_id="<dsn-42@mx.example.org>",
        received_at=datetime(2026, 11, 25, tzinfo=UTC),
        text=parsed.text,
        subject=parsed.subject,
        sender=Sender(email=parsed.sender_email),
        flags=parsed.flags,
        thread_references=parsed.thread_ids + parsed.bounced_message_ids,
    )
    event = ComplaintNormalizer(NormalizerConfig(), DuplicateIndex(None)).normalize(raw)
    assert isinstance(event, DocumentAdded)
    assert event.reference == "PL-HP69-9MYG-AHW6"
    assert Flag.BOUNCE in event.flags
