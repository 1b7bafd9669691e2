"""What the senders hand over: the MIME of an email, a printable letter."""

from __future__ import annotations

import base64
import email
import email.policy
import random
from datetime import UTC, datetime
from pathlib import Path

from aiosmtplib.protocol import normalize_message_line_endings

from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.letters import LetterPrinter, letter_pdf
from gateway.notifier.mime import encoded_words
from gateway.notifier.outbox import FolderOutbox
from gateway.notifier.smtp import compose, transmitted_size
from gateway.notifier.templates import RenderedMessage

CONTENT = RenderedMessage(
    language="fr",
    subject="Accusé de réception, référence PL-HP69-9MYG-AHW6",
    text="Bonjour Marie,\n\nNous avons bien reçu votre plainte.\n",
    html="<p>Bonjour Marie,</p>",
    sms="Reçu : PL-HP69-9MYG-AHW6",
)
MESSAGE = OutgoingMessage(
    notification_id="5b0c8f1e-0000-5000-8000-000000000000",
    reference="PL-HP69-9MYG-AHW6",
    recipient="marie.tremblay@example.org",
    content=CONTENT,
    in_reply_to="<abc@mail.example.org>",
)


def test_an_acknowledgement_email_answers_in_the_thread_and_says_it_is_automatic() -> None:
    mail = email.message_from_bytes(
        compose(MESSAGE, "Plaintes RAMQ <plaintes@ramq.example>"), policy=email.policy.default
    )
    assert mail["Message-ID"] == "<PL-HP69-9MYG-AHW6.5b0c8f1e00005000@ramq.example>"
    assert mail["In-Reply-To"] == "<abc@mail.example.org>"
    assert mail["References"] == "<abc@mail.example.org>"
    assert mail["Auto-Submitted"] == "auto-replied"
    parsed = mail
    assert parsed["Subject"] == CONTENT.subject  # RFC 2047 round trip
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    # SMTP lines end in CRLF; the parts decode to what the templates gave
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == CONTENT.text
    assert parsed.get_body(("html",)).get_content().rstrip("\r\n") == CONTENT.html


def test_a_new_message_is_auto_generated_not_a_reply() -> None:
    fresh = OutgoingMessage(**{**MESSAGE.__dict__, "in_reply_to": None})
    mail = email.message_from_bytes(compose(fresh, "plaintes@ramq.example"))
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["In-Reply-To"] is None


def test_a_status_update_follows_our_acknowledgement_without_being_a_reply() -> None:
    update = OutgoingMessage(
        **{**MESSAGE.__dict__, "in_reply_to": None, "follows": "<PL-HP69.ack@ramq.example>"}
    )
    mail = email.message_from_bytes(compose(update, "plaintes@ramq.example"))
    assert mail["In-Reply-To"] == mail["References"] == "<PL-HP69.ack@ramq.example>"
    assert mail["Auto-Submitted"] == "auto-generated"  # RFC 3834: it answers no mail


async def test_a_letter_is_a_pdf_in_the_folder_of_the_day(tmp_path: Path) -> None:
    letter = OutgoingMessage(
        **{**MESSAGE.__dict__, "recipient": "Marie Tremblay\n123 rue Principale\nMontréal"}
    )
    path = Path(await LetterPrinter(tmp_path).send(letter))
    assert path.parent.name == datetime.now(UTC).date().isoformat()
    assert path.name.startswith("PL-HP69-9MYG-AHW6-")
    content = path.read_bytes()
    assert content.startswith(b"%PDF-")
    assert len(letter_pdf(letter, datetime.now(UTC))) > 1000


async def test_the_dev_outbox_keeps_the_exact_mime_an_smtp_server_would_get(
    tmp_path: Path,
) -> None:
    outbox = FolderOutbox(tmp_path, Medium.EMAIL, "plaintes@ramq.example")
    sent_id = await outbox.send(MESSAGE)
    [path] = tmp_path.glob("*.eml")
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["Message-ID"] == sent_id  # a status update's In-Reply-To finds it
    assert sent_id.startswith("<PL-HP69-9MYG-AHW6.")
    assert mail["To"] == MESSAGE.recipient
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == CONTENT.text
    sms = Path(await FolderOutbox(tmp_path, Medium.SMS, "").send(MESSAGE))
    assert sms.read_text().endswith(CONTENT.sms + "\n")


def test_long_lines_non_ascii_and_a_non_ascii_sender_name_survive_the_round_trip() -> None:
    text = "Ligne très longue " * 40 + "\n=3D n'est pas un code.\n.\nFin.\n"
    content = RenderedMessage("fr", "É" * 120, text, "<p>é</p>", "")
    raw = compose(
        OutgoingMessage(**{**MESSAGE.__dict__, "content": content}),
        "Bureau des plaintes \u2013 Québec <plaintes@ramq.example>",
    )
    assert raw.isascii()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "É" * 120
    assert mail["From"].addresses[0].display_name == "Bureau des plaintes \u2013 Québec"
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == text


def test_encoded_words_never_split_a_character_and_decode_to_the_subject() -> None:
    subject = "Accusé de réception \u2013 référence PL-HP69-9MYG-AHW6 " + "é🙂" * 30
    words = encoded_words(subject)
    assert all(len(word) <= 75 for word in words)
    for word in words:  # each word decodes on its own
        base64.b64decode(word[10:-2]).decode("utf-8")
    decoded = email.message_from_string(
        "Subject: " + "\r\n ".join(words) + "\r\n\r\n", policy=email.policy.default
    )["Subject"]
    assert decoded == subject


def test_the_size_announced_is_what_data_carries() -> None:
    """SIZE (RFC 1870) is counted, not rewritten: it matches aiosmtplib's own rewriting of lone
    CR and LF, whatever the line ends of the bytes."""
    composed = compose(MESSAGE, "Bureau des plaintes <plaintes@ramq.example>")
    samples = [
        composed,
        b"",
        b"no line end",
        b"a\nb\rc\r\nd",
        b"\r\r\n\n\r",
        b"ends with a lone CR\r",
        b"ends with a lone LF\n",
        bytes(random.Random(29).choice(b"ab\r\n.") for _ in range(2000)),  # noqa: S311
    ]
    for content in samples:
        assert transmitted_size(content) == len(normalize_message_line_endings(content)), content
    assert transmitted_size(composed) == len(composed)  # compose writes CRLF, ended
