"""What the senders hand over: the MIME of an email, a printable letter."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.letters import LetterPrinter, letter_pdf
from gateway.notifier.outbox import FolderOutbox
from gateway.notifier.smtp import compose
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
    mail = compose(MESSAGE, "Plaintes RAMQ <plaintes@ramq.example>")
    assert mail["Message-ID"] == ("<PL-HP69-9MYG-AHW6.5b0c8f1e00005000@ramq.example>")
    assert mail["In-Reply-To"] == "<abc@mail.example.org>"
    assert mail["References"] == "<abc@mail.example.org>"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["Subject"] == CONTENT.subject
    assert mail.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mail.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_a_new_message_is_auto_generated_not_a_reply() -> None:
    fresh = OutgoingMessage(**{**MESSAGE.__dict__, "in_reply_to": None})
    mail = compose(fresh, "plaintes@ramq.example")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["In-Reply-To"] is None


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
    path = Path(await outbox.send(MESSAGE))
    assert path.suffix == ".eml"
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["To"] == MESSAGE.recipient
    assert mail.get_body(("plain",)).get_content() == CONTENT.text
    sms = Path(await FolderOutbox(tmp_path, Medium.SMS, "").send(MESSAGE))
    assert sms.read_text().endswith(CONTENT.sms + "\n")
