"""Contacts: email addresses normalised, phone numbers to E.164, postal address blocks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from gateway.textsearch import blank_spans, finditer_around, finditer_near

_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d \u00a0().\-/]{5,18}\d(?![\w])")
# The digits of every candidate, found by a pattern that starts with a digit (which ``re`` skips
# to fast); the candidate itself, at most 23 characters, is then searched only around them.
_DIGIT_GROUP = re.compile(r"\d[\d \u00a0().\-/]{5,18}\d")
_PHONE_REACH = 24
# Dates written with a four-digit year (2026-11-20, 20/11/2026, 20.11.2026) are never part of a
# phone number, but a date and the hour after it can spell a valid one: "2026-11-20 14:32" holds
# "2026-11-20 14", +1 202-611-2014, and a person's acknowledgement would go to a stranger by SMS.
# A slash inside a number (Belgian 02/511.22.33) has no space beside it: " / " separates items.
_NOT_IN_A_PHONE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2(?:19|20)\d\d)(?!\d)"
    r"|(?<=\s)/|/(?=\s)"
)
# Words that name a number as something else than a phone ("facture no 4185551234", "numéro de
# dossier : ...", "claim # ...", "my file number is ..."); "Numéro : 514 ..." alone stays a phone.
_OTHER_NUMBER_KINDS = frozenset(
    [
        *("dossier", "facture", "client", "référence", "reference", "réf", "ref", "contrat"),
        *("police", "compte", "demande", "commande", "réclamation", "reclamation", "matricule"),
        *("ticket", "file", "case", "claim", "invoice", "account", "policy", "request", "order"),
        *("assurance", "insurance", "membre", "member", "patient", "usager"),
    ]
)
_NUMBER_WORDS = frozenset(["no", "n°", "nº", "num", "numéro", "numero", "number", "#"])
_LABEL_REACH = 40
_LABEL_PUNCTUATION = ".,;()[]"
_HAS_SEPARATOR = re.compile(r"[-/.]").search  # every date and list slash has one of these
_DATE_REACH = 10  # a date is at most 10 characters: one overlapping a digit group is this near
_NOT_A_DIGIT_OR_SEPARATOR = "|"  # what a date is blanked with: no candidate runs across it
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EMAIL_REACH = 65  # a local part has at most 64 characters (RFC 5321), then the "@"
# Postal codes that close an address block: Canada (H2X 1Y4), France (75001 Paris), Belgium
# (1000 Bruxelles); the block is that line and up to three lines above it.
_POSTAL_LINE = re.compile(
    r"^.*\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b.*$"
    r"|^\s*(?:F-|B-)?\d{4,5}\s+[^\W\d_][\w' -]+$",
    re.IGNORECASE,
)


class _NormalForms:
    """What a normaliser returned lately, each its own normal form: a web form's address and
    phone are normalised when the submission is checked, then the normaliser meets them again
    in that form (``+15145550123``), which would otherwise be a new parse each (~30 µs apiece
    for phonenumbers and email_validator). Kept up to ``limit``, then forgotten at once (a
    ``clear`` is atomic: the normalisers run in threads)."""

    def __init__(self, limit: int = 4096) -> None:
        self._known: dict[str, None] = {}
        self._limit = limit

    def __contains__(self, value: str) -> bool:
        return value in self._known

    def remember(self, value: str | None) -> str | None:
        if value is not None:
            if len(self._known) >= self._limit:
                self._known.clear()
            self._known[value] = None
        return value


_NORMAL_EMAILS = _NormalForms()
_NORMAL_PHONES = _NormalForms()  # E.164, the same in every region


def normalise_email(address: str) -> str | None:
    """The address in normal form (domain lower-cased, IDNA), None when it is not an address."""
    if address in _NORMAL_EMAILS:
        return address
    return _NORMAL_EMAILS.remember(_normalised_email(address))


@lru_cache(maxsize=4096)
def _normalised_email(address: str) -> str | None:
    try:
        return str(validate_email(address.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def find_emails(text: str) -> list[str]:
    """Addresses in a text, normalised; one per mailbox (local parts compared without case)."""
    if "@" not in text:  # most complaint texts: skip the scan
        return []
    matches = finditer_near(_EMAIL, text, "@", _EMAIL_REACH)
    found = (normalise_email(match.group(0).rstrip(".")) for match in matches)
    by_mailbox: dict[str, str] = {}
    for address in found:
        if address:
            by_mailbox.setdefault(address.casefold(), address)
    return list(by_mailbox.values())


def normalise_phone(number: str, default_region: str) -> str | None:
    """E.164 form of a valid phone number (``+15145550123``), None otherwise."""
    if number in _NORMAL_PHONES:
        return number
    return _NORMAL_PHONES.remember(_normalised_phone(number, default_region))


@lru_cache(maxsize=4096)
def _normalised_phone(number: str, default_region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not _valid(parsed, default_region):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _valid(number: phonenumbers.PhoneNumber, default_region: str) -> bool:
    """``is_valid_number``, asked first of the region the number was read in: a number of
    country code 1 is otherwise tried against each of the 25 regions that share it, the
    United States first, which was most of a web submission's phone reading (a number valid
    in one of its country code's regions is valid)."""
    return phonenumbers.is_valid_number_for_region(
        number, default_region
    ) or phonenumbers.is_valid_number(number)


def find_phones(text: str, default_region: str) -> list[str]:
    """Valid phone numbers in a text, E.164. Candidates (digits with the separators people
    write) are found with one regular expression, then each is parsed and validated by
    phonenumbers: some ten times faster than its PhoneNumberMatcher on a 2 KB text."""
    groups = [match.span() for match in _DIGIT_GROUP.finditer(text)]
    if not groups:
        return []
    text = _without_dates_and_lists(text, groups)
    matches = finditer_around(_PHONE_CANDIDATE, text, groups, _PHONE_REACH)
    return _unique(
        number
        for match in matches
        if (number := normalise_phone(match.group(0), default_region))
        and not _labelled_as_another_number(text, match.start())
    )


def _labelled_as_another_number(text: str, start: int) -> bool:
    """Whether the words just before a candidate name it an invoice, file, claim or account
    number ("facture no 4185551234", "dossier : ...", "claim #..."): such a number can be a
    valid phone number, and an acknowledgement sent to it would reach a stranger."""
    before = text[max(0, start - _LABEL_REACH) : start].casefold()
    words = [
        word.strip(_LABEL_PUNCTUATION).removeprefix("d'").removeprefix("d\u2019")
        for word in before.replace(":", " ").replace("#", " # ").split()
    ]
    words = [word for word in words if word]
    if words and words[-1] in ("est", "is"):
        words.pop()
    if words and words[-1] in _NUMBER_WORDS:
        words.pop()
    return bool(words) and words[-1] in _OTHER_NUMBER_KINDS


def _without_dates_and_lists(text: str, groups: list[tuple[int, int]]) -> str:
    """The text with each date and each list slash (" / ") near a digit group blanked (the
    digit groups still cover every phone candidate: blanking only removes digits and
    separators)."""
    dates = {
        match.span()
        for start, end in groups
        if _HAS_SEPARATOR(text, start, end)  # "514 555 0123": nothing to look for
        for match in _NOT_IN_A_PHONE.finditer(
            text, max(0, start - _DATE_REACH), _window_end(text, end)
        )
    }
    # spans seen from two windows may overlap: each character is blanked once
    return blank_spans(text, dates, _NOT_A_DIGIT_OR_SEPARATOR) if dates else text


def _window_end(text: str, end: int) -> int:
    """``end`` + ``_DATE_REACH``, moved past any digits there: a window never cuts a number, so
    the date pattern's closing ``(?!\\d)`` sees what follows it in the text."""
    window_end = min(len(text), end + _DATE_REACH)
    while window_end < len(text) and text[window_end].isdigit():
        window_end += 1
    return window_end


@dataclass(frozen=True)
class OwnContacts:
    """The office's own addresses and numbers: a letter or a form that quotes them ("écrivez à
    plaintes@...", "service à la clientèle : 1 800 ...") does not make them the person's, which
    would send the acknowledgement to the office itself."""

    emails: frozenset[str] = frozenset()  # casefolded
    phones: frozenset[str] = frozenset()  # E.164

    @classmethod
    def of(cls, written: Iterable[str], default_region: str) -> OwnContacts:
        emails, phones = set(), set()
        for value in written:
            if "@" in value:
                spec = parseaddr(value)[1] or value.strip()  # "Name <addr>" or a bare address
                emails.add((normalise_email(spec) or spec).casefold())
            elif number := normalise_phone(value, default_region):
                phones.add(number)
        return cls(frozenset(emails), frozenset(phones))

    def others(self, emails: list[str], phones: list[str]) -> tuple[list[str], list[str]]:
        """The emails and phones found in a text, less the office's own."""
        return (
            [email for email in emails if email.casefold() not in self.emails],
            [phone for phone in phones if phone not in self.phones],
        )


def find_postal_address(text: str) -> str | None:
    """The first address block: a line ending with a postal code and town, and the lines above."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _POSTAL_LINE.match(line) and not _EMAIL.search(line):
            start = index
            while start > 0 and index - start < 3 and lines[start - 1].strip():
                start -= 1
            return "\n".join(part.strip() for part in lines[start : index + 1])
    return None


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
