"""Reading one email: the standard library's ``email`` package (``policy.default``) and what real
mailboxes need on top of it.

- Text: the plain part, else the HTML part; undeclared, mis-declared or broken charsets are
  decoded with the declared charset, then UTF-8, then Windows-1252, replacing what still fails
  (a complaint is never refused for a byte).
- Headers: RFC 2047 encoded words and RFC 2231 file names are decoded by ``policy.default``;
  a header too broken for it falls back to its raw text.
- Attachments: every non-body part with a file name or a non-text type, nested
  ``message/rfc822`` included (as a ``.eml`` attachment); inline images kept as attachments.
- Auto-replies (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence``, and French and
  English "automatic reply" / "absent du bureau" subjects) and bounces (DSN
  ``multipart/report; report-type=delivery-status``, mailer-daemon senders) are told apart: a
  DSN is a bounce even when it also says ``Auto-Submitted: auto-replied``.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import email.utils
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from gateway.errors import InputRejected
from gateway.events.complaint import Flag

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?reply|r[ée]ponse automatique|out of (?:the )?office|absent du "
    r"bureau|absence du bureau|autoreply|abwesenheitsnotiz|automatisch antwoord|afwezig)",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(?:undeliver|delivery (?:status notification|failure|has failed)|returned mail|mail "
    r"delivery failed|non remis|[ée]chec de (?:la )?remise|failure notice)",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MAX_PARSED_HEADER = 4096  # longer headers are decoded without the structured header parser
MAX_KEPT_HEADER = 16384
# ten forwards of forwards, each alternative + related + mixed, are 30 levels
MAX_MIME_DEPTH = 64
# the parts of a delivery or read report (RFC 6522) that are its machinery, not a person's
# attachment: the status, and the returned message (our own mail; the raw copy keeps it)
_REPORT_MACHINERY = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)


@dataclass(frozen=True)
class MailPart:
    """An attachment as found in the message (bytes still in memory, to be stored)."""

    filename: str
    media_type: str
    payload: bytes


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    subject: str | None
    sender_name: str | None
    sender_email: str | None
    date: datetime | None
    text: str
    html: str | None
    attachments: list[MailPart] = field(default_factory=list)
    flags: frozenset[Flag] = frozenset()
    thread_ids: tuple[str, ...] = ()
    bounced_message_ids: tuple[str, ...] = ()


class _ParsedOncePolicy(email.policy.EmailPolicy):
    """``policy.default``, with each header value parsed once: the package parses a header
    again at every access (Content-Type some eleven times a message, in ``get_content_type``,
    ``get_param``, ``get_filename``...), which was most of a message's parsing time."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):  # already a header object
            return value
        return _fetched_header(self, name, value)


@functools.lru_cache(maxsize=4096)
def _fetched_header(policy: email.policy.EmailPolicy, name: str, value: str) -> Any:
    """Header objects do not change once made: one per (name, value) serves every access."""
    return email.policy.EmailPolicy.header_fetch_parse(policy, name, value)


MAIL_POLICY = _ParsedOncePolicy()


def parse_mail(raw: bytes) -> ParsedMail:
    """Everything the channel needs from a raw RFC 5322 message. Bad input of any kind gives a
    readable result; only a structure no reader should walk raises ``InputRejected``
    (``too_deeply_nested``: parts nested past ``MAX_MIME_DEPTH``, which would exhaust Python's
    recursion in the standard library's own generator)."""
    try:
        message = email.message_from_bytes(raw, policy=MAIL_POLICY)
        depth = mime_depth(message)
        if depth > MAX_MIME_DEPTH:
            raise InputRejected(
                "too_deeply_nested", f"parts nested {depth} deep (at most {MAX_MIME_DEPTH})"
            )
        return _parsed(message)
    except RecursionError:
        raise InputRejected("too_deeply_nested", "parts nested too deep to read") from None


def mime_depth(message: Message) -> int:
    """How deep parts nest (multipart containers and attached messages), without recursion;
    stops counting past MAX_MIME_DEPTH."""
    deepest, stack = 0, [(message, 1)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_MIME_DEPTH:
            break
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend((sub, depth + 1) for sub in payload if isinstance(sub, Message))
    return deepest


def _parsed(message: Message) -> ParsedMail:
    name, address = email.utils.parseaddr(_header(message, "From") or "")
    text, html, attachments = _bodies(message)
    is_bounce = _is_bounce(message, address)
    flags = (
        {Flag.BOUNCE} if is_bounce else ({Flag.AUTO_REPLY} if _is_auto_reply(message) else set())
    )
    return ParsedMail(
        message_id=_first_id(_header(message, "Message-ID")),
        subject=_header(message, "Subject"),
        sender_name=name or None,
        sender_email=address or None,
        date=_date(_header(message, "Date")),
        text=text,
        html=html,
        attachments=attachments,
        flags=frozenset(flags),
        thread_ids=tuple(
            _MESSAGE_ID.findall(
                f"{_header(message, 'In-Reply-To') or ''} {_header(message, 'References') or ''}"
            )
        ),
        bounced_message_ids=tuple(_bounced_ids(message)) if is_bounce else (),
    )


def message_id_of(head: bytes) -> str | None:
    """The Message-ID ``parse_mail`` would read, from a message's header alone."""
    return _first_id(_header(email.message_from_bytes(head, policy=MAIL_POLICY), "Message-ID"))


def _header(message: Message, name: str) -> str | None:
    raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return None
    if len(str(raw)) > MAX_PARSED_HEADER:  # policy.default's parser is quadratic on such input
        value: object = _decoded_words(str(raw)[:MAX_KEPT_HEADER])
    else:
        try:
            value = message.get(name)
        except (ValueError, IndexError, AttributeError, TypeError):  # too broken for the policy
            value = _decoded_words(str(raw))
    text = " ".join(str(value).split())
    return text or None


def _decoded_words(raw: str) -> str:
    """RFC 2047 words decoded the old, linear way; the raw text if even that fails."""
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return raw


def _first_id(value: str | None) -> str | None:
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else value.strip()


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decode_part(part: Message) -> str:
    """A text part's content, whatever its declared charset says."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    declared = part.get_content_charset() or ""
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("cp1252", errors="replace")


def _bodies(message: Message) -> tuple[str, str | None, list[MailPart]]:
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[MailPart] = []
    for part in _leaves(message):
        media_type = part.get_content_type()
        filename = _filename(part)
        if media_type == "message/rfc822":
            attachments.append(MailPart(filename or "message.eml", media_type, _rfc822_bytes(part)))
        elif filename or not media_type.startswith("text/") or _is_attachment(part):
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else str(part.get_payload()).encode()
            attachments.append(MailPart(filename or _default_name(media_type), media_type, data))
        elif media_type == "text/html":
            html_parts.append(decode_part(part))
        elif media_type.startswith("text/"):
            text_parts.append(decode_part(part))
    return "\n\n".join(text_parts), "\n".join(html_parts) or None, attachments


def _leaves(message: Message) -> list[Message]:
    """The parts to read: multipart containers opened, attached messages kept whole."""
    if message.is_multipart() and message.get_content_type() != "message/rfc822":
        leaves: list[Message] = []
        payload = message.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                leaves += _leaves(sub) if sub.get_content_type() != "message/rfc822" else [sub]
        if message.get_content_type() == "multipart/report":
            return [leaf for leaf in leaves if leaf.get_content_type() not in _REPORT_MACHINERY]
        return leaves
    return [message]


def _rfc822_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else payload
    if isinstance(inner, Message):
        return _message_bytes(inner)
    return str(inner).encode("utf-8", "replace")


def _message_bytes(message: Message) -> bytes:
    """An attached message as bytes, even when it declares a charset Python does not know
    (the generator re-encodes text parts with it): else its headers and undecoded body."""
    for policy in (email.policy.SMTP, email.policy.compat32):
        try:
            return message.as_bytes(policy=policy)
        except (ValueError, LookupError, UnicodeError):
            continue
    headers = "".join(f"{name}: {value}\r\n" for name, value in message.raw_items())
    body = message.get_payload()
    return (headers + "\r\n" + (body if isinstance(body, str) else "")).encode("utf-8", "replace")


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, IndexError, AttributeError, TypeError, LookupError):
        return None
    return str(name) if name else None


def _is_attachment(part: Message) -> bool:
    disposition = part.get("Content-Disposition", "")
    return str(disposition).lower().startswith("attachment")


def _default_name(media_type: str) -> str:
    extension = {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "application/pdf": ".pdf",
        "application/ms-tnef": ".dat",
    }.get(media_type, ".bin")
    return "winmail.dat" if media_type == "application/ms-tnef" else f"attachment{extension}"


def _is_auto_reply(message: Message) -> bool:
    auto_submitted = (_header(message, "Auto-Submitted") or "no").lower()
    precedence = (_header(message, "Precedence") or "").lower()
    says_so = bool(_header(message, "X-Autoreply") or _header(message, "X-Autorespond"))
    return (
        not auto_submitted.startswith("no")
        or says_so
        or precedence in ("bulk", "junk", "auto_reply")
        or bool(_AUTO_SUBJECT.search(_header(message, "Subject") or ""))
    )


def _is_bounce(message: Message, sender: str) -> bool:
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type") or "").lower()
        return report_type in ("delivery-status", "")
    subject = _header(message, "Subject") or ""
    return bool(_BOUNCE_SENDER.match(sender or "")) and bool(_BOUNCE_SUBJECT.search(subject))


def _bounced_ids(message: Message) -> list[str]:
    """Message-IDs of the mail that bounced: from the returned headers or the DSN text."""
    found: list[str] = []
    for part in message.walk():
        media_type = part.get_content_type()
        if media_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            content = (
                _rfc822_bytes(part).decode("utf-8", "replace")
                if media_type == "message/rfc822"
                else decode_part(part)
            )
            match = re.search(r"^Message-ID:\s*(<[^>]+>)", content, re.IGNORECASE | re.MULTILINE)
            if match:
                found.append(match.group(1))
    return found
