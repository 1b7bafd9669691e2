"""Reading emails: real-world messages from the shared corpus, and French cases made here."""

from __future__ import annotations

import base64
import itertools
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from gateway.channels.mail import parse_mail
from gateway.channels.raw import RawMessage, Sender, safe_filename
from gateway.errors import InputRejected
from gateway.events.common import Channel
from gateway.events.complaint import DocumentAdded, Flag
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
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
    event = ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)).normalize(raw)
    assert isinstance(event, DocumentAdded)
    assert event.reference == "PL-HP69-9MYG-AHW6"
    assert Flag.BOUNCE in event.flags


# --- hostile structure: nesting, and MIME trees made by hypothesis -------------------------------


def nested_multiparts(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nAu fond.\r\n"
    for level in range(depth):
        mark = f"b{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="' + mark + b'"\r\n\r\n--' + mark + b"\r\n"
        ) + (body + b"--" + mark + b"--\r\n")
    return b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + body


def nested_forwards(depth: int) -> bytes:
    message = (
        b"From: a@example.org\r\nSubject: inner\r\nContent-Type: text/plain\r\n\r\nAu fond.\r\n"
    )
    for _ in range(depth):
        message = (
            b"From: a@example.org\r\nSubject: Tr: plainte\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + message
        )
    return message


def test_parts_nested_as_deep_as_real_mail_are_read() -> None:
    assert parse_mail(nested_multiparts(20)).text.strip() == "Au fond."
    assert [a.media_type for a in parse_mail(nested_forwards(10)).attachments] == ["message/rfc822"]


@pytest.mark.parametrize("message", [nested_multiparts(200), nested_forwards(500)])
def test_parts_nested_past_the_bound_are_refused_not_a_recursion_error(message: bytes) -> None:
    """A forward of a forward ... 500 deep exhausted Python's recursion in email.generator
    (and blocked the mailbox behind it): now a clear refusal the channel quarantines."""
    with pytest.raises(InputRejected) as refused:
        parse_mail(message)
    assert refused.value.reason_code == "too_deeply_nested"


@dataclass(frozen=True)
class Leaf:
    media_type: str
    charset: str
    encoding: str
    filename: str | None
    body: bytes


@dataclass(frozen=True)
class Container:
    subtype: str
    parts: list[Leaf | Container | Forward]


@dataclass(frozen=True)
class Forward:
    inner: Leaf | Container | Forward


HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\boot.ini",
    "lettre\x00.pdf",
    "a" * 1000 + ".pdf",
    "=?utf-8?b?Li4vLi4vZXRjL3Bhc3N3ZA==?=",
    "fi\r\nX-Injected: yes",
]
leaves = st.builds(
    Leaf,
    media_type=st.sampled_from(
        ["text/plain", "text/html", "application/pdf", "image/png", "message/delivery-status"]
    ),
    charset=st.sampled_from(["utf-8", "iso-8859-1", "koi8-r", "utf-16", "x-unknown", ""]),
    encoding=st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-bogus", ""]),
    filename=st.none() | st.sampled_from(HOSTILE_NAMES) | st.text(max_size=40),
    body=st.binary(max_size=300),
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.builds(
            Container,
            subtype=st.sampled_from(["mixed", "alternative", "related", "report", "digest"]),
            parts=st.lists(children, max_size=4),
        )
        | st.builds(Forward, children)
    ),
    max_leaves=12,
)


def render(node: Leaf | Container | Forward, marks: itertools.count[int]) -> bytes:
    if isinstance(node, Forward):
        inner = b"From: b@example.org\r\nSubject: Tr\r\n" + render(node.inner, marks)
        return b"Content-Type: message/rfc822\r\n\r\n" + inner
    if isinstance(node, Container):
        mark = f"=_mark{next(marks)}_=".encode()
        parts = b"".join(b"--" + mark + b"\r\n" + render(p, marks) + b"\r\n" for p in node.parts)
        head = f'Content-Type: multipart/{node.subtype}; boundary="'.encode() + mark + b'"\r\n'
        return head + b"\r\n" + parts + b"--" + mark + b"--\r\n"
    headers = f'Content-Type: {node.media_type}; charset="{node.charset}"\r\n'
    headers += f"Content-Transfer-Encoding: {node.encoding}\r\n"
    if node.filename is not None:
        quoted = urllib.parse.quote(node.filename.encode("utf-8", "surrogatepass"))
        headers += f"Content-Disposition: attachment; filename*=utf-8''{quoted}\r\n"
    body = base64.encodebytes(node.body) if node.encoding == "base64" else node.body
    return headers.encode() + b"\r\n" + body


def leaves_of(node: Leaf | Container | Forward) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Forward):
        return []  # kept whole, as an attached message
    return [leaf for part in node.parts for leaf in leaves_of(part)]


@settings(deadline=None)  # examples: the hypothesis profile (HYPOTHESIS_PROFILE=fuzz: many more)
@given(trees)
def test_property_any_mime_tree_is_read_and_no_attachment_is_lost(
    tree: Leaf | Container | Forward,
) -> None:
    raw = b"From: a@example.org\r\nSubject: =?utf-8?q?Plainte_=C3=A9?=\r\nMIME-Version: 1.0\r\n"
    raw += render(tree, itertools.count())
    note(repr(raw))
    parsed = parse_mail(raw)
    for attachment in parsed.attachments:
        name = safe_filename(attachment.filename)
        assert "/" not in name
        assert "\\" not in name
        assert name.isprintable()
        assert len(name) <= 255
    found = [attachment.payload for attachment in parsed.attachments]
    for leaf in leaves_of(tree):
        plain_name = leaf.filename is not None and leaf.filename.isalnum()
        if leaf.media_type == "application/pdf" and leaf.encoding == "base64" and plain_name:
            assert leaf.body in found, "an attachment went missing"
