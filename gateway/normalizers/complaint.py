"""The normalizer chain: a ``RawMessage`` becomes a ``complaint.received`` payload (or a
``complaint.document_added`` when it carries the reference of an existing complaint).

Stages, in order (each a small function, timed by bench/normalize.py):
text -> language -> identifiers -> contacts -> people -> kind/routing/abuse -> due -> flags
-> duplicates. Pure apart from the duplicate index (local SQLite, no network).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.channels.raw import RawMessage
from gateway.events.common import (
    Channel,
    Identifier,
    IdentifierOwner,
    Person,
    RepresentedPerson,
    SourceMessage,
)
from gateway.events.complaint import ComplaintReceived, DocumentAdded, Flag, Kind
from gateway.normalizers.contacts import (
    OwnContacts,
    find_emails,
    find_phones,
    find_postal_address,
    normalise_email,
    normalise_phone,
)
from gateway.normalizers.due import BUILTIN_POLICIES, DuePolicy
from gateway.normalizers.duplicates import DuplicateIndex, shingles_of_words
from gateway.normalizers.identifiers import find_identifiers, identifier_from_field
from gateway.normalizers.language import DEFAULT_LANGUAGES, detect_language
from gateway.normalizers.letter import LetterInput, letter_input
from gateway.normalizers.representation import represented_from_text
from gateway.normalizers.rules import RuleSet, fold, load_rules, words_of
from gateway.normalizers.text import SplitText, clean_text, html_to_text, split_reply
from gateway.reference import DEFAULT_PREFIX, find_references, reference_for
from gateway.textsearch import blank_spans

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "oui"})


@dataclass(frozen=True)
class NormalizerConfig:
    """What an office configures about normalisation."""

    default_region: str = "CA"
    due_policy: DuePolicy = BUILTIN_POLICIES["ramq"]
    rules: RuleSet = field(default_factory=load_rules)
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    reference_prefix: str = DEFAULT_PREFIX
    own_contacts: OwnContacts = field(default_factory=OwnContacts)


@dataclass(frozen=True)
class Extracted:
    """What the text stages found, before people and flags are decided."""

    split: SplitText
    language: str | None
    identifiers: list[Identifier]
    emails: list[str]
    phones: list[str]
    postal_address: str | None


class ComplaintNormalizer:
    """``normalize(raw)``: the canonical payload of one input."""

    def __init__(self, config: NormalizerConfig, duplicates: DuplicateIndex | None = None) -> None:
        self._config = config
        self._duplicates = duplicates

    def normalize(self, raw: RawMessage) -> ComplaintReceived | DocumentAdded:
        letter = letter_input(raw) if raw.channel == Channel.POSTAL else None
        if letter is not None:
            raw = letter.raw
        split = split_reply(plain_text(raw))
        existing = self._existing_reference(raw, split)
        if existing is not None:
            return self._document_added(raw, existing, split)
        complaint = self._complaint(raw, split)
        return complaint if letter is None else _with_letter_facts(complaint, letter)

    def _existing_reference(self, raw: RawMessage, split: SplitText) -> str | None:
        field_reference = str(raw.fields.get("reference") or "")
        for text in (field_reference, *raw.thread_references, raw.subject or "", split.body):
            found = find_references(text)
            if found:
                return found[0]
        return None

    def _document_added(self, raw: RawMessage, reference: str, split: SplitText) -> DocumentAdded:
        return DocumentAdded(
            reference=reference,
            channel=raw.channel,
            received_at=raw.received_at,
            body=split.body or None,
            attachments=list(raw.attachments),
            source_message=SourceMessage(id=raw.source_id, uri=raw.raw_uri),
            flags=sorted(raw.flags),
        )

    def _complaint(self, raw: RawMessage, split: SplitText) -> ComplaintReceived:
        extracted = self._extract(raw, split)
        folded_subject, folded_body = fold(raw.subject or ""), fold(split.body)
        folded = f"{folded_subject}\n{folded_body}"  # = fold(subject + "\n" + body)
        body_words = words_of(folded_body)
        represented = represented_person(raw.fields, split.body, folded)
        identifiers = owned_identifiers(raw.fields, extracted.identifiers, represented is not None)
        complainant = self._complainant(raw, extracted)
        rules = self._config.rules.evaluate(folded)
        kind = chosen_kind(raw.fields) or rules.kind
        routing = rules.routing
        reference = reference_for(raw.source_key, self._config.reference_prefix)
        flags = set(raw.flags)
        if self._config.rules.abusive.found_in_words(words_of(folded_subject) + body_words):
            flags.add(Flag.ABUSIVE_LANGUAGE)
        if routing:
            flags.add(Flag.OTHER_BODY)
        if needs_review(complainant, split.body, raw, identifiers):
            flags.add(Flag.NEEDS_REVIEW)
        duplicate_of = self._duplicate_of(reference, complainant, identifiers, raw, body_words)
        if duplicate_of:
            flags.add(Flag.POSSIBLE_DUPLICATE)
        no_promise = {Flag.AUTO_REPLY, Flag.BOUNCE} & flags
        return ComplaintReceived(
            reference=reference,
            channel=raw.channel,
            received_at=raw.received_at,
            kind=kind,
            language=extracted.language,
            subject=clean_text(raw.subject) if raw.subject else None,
            body=split.body,
            quoted_text=split.quoted,
            signature=split.signature,
            complainant=complainant,
            represented_person=represented,
            identifiers=identifiers,
            attachments=list(raw.attachments),
            source_message=SourceMessage(id=raw.source_id, uri=raw.raw_uri),
            flags=sorted(flags),
            due=None if no_promise else self._config.due_policy.due(raw.received_at),
            routing=routing,
            possible_duplicate_of=duplicate_of,
        )

    def _extract(self, raw: RawMessage, split: SplitText) -> Extracted:
        own_text = "\n".join(part for part in (split.body, split.signature) if part)
        found = find_identifiers(own_text)
        without_ids = blank_spans(own_text, [(f.start, f.end) for f in found])  # phones skip ids
        emails, phones = self._config.own_contacts.others(
            find_emails(own_text), find_phones(without_ids, self._config.default_region)
        )
        return Extracted(
            split=split,
            language=str(raw.fields.get("language") or "")  # a form's choice: no guessing
            or detect_language(split.body, self._config.languages),
            identifiers=[f.identifier for f in found],
            emails=emails,
            phones=phones,
            postal_address=find_postal_address(own_text)
            if raw.channel in {Channel.POSTAL, Channel.SMS}
            else None,
        )

    def _complainant(self, raw: RawMessage, extracted: Extracted) -> Person:
        fields, sender = raw.fields, raw.sender
        anonymous = str(fields.get("anonymous", "")).casefold() in TRUE_WORDS
        if anonymous:
            return Person(anonymous=True)
        email = (
            normalise_email(str(fields.get("email") or ""))
            or (normalise_email(sender.email) if sender.email else None)
            or next(iter(extracted.emails), None)
        )
        phone = (
            normalise_phone(str(fields.get("phone") or ""), self._config.default_region)
            or (
                normalise_phone(sender.phone, self._config.default_region) if sender.phone else None
            )
            or next(iter(extracted.phones), None)
        )
        return Person(
            name=_text_field(fields, "name") or sender.name,
            email=email,
            email_verified=sender.email_verified and email == normalise_email(sender.email or ""),
            phone=phone,
            phone_verified=sender.phone_verified,
            postal_address=_text_field(fields, "postal_address")
            or sender.postal_address
            or extracted.postal_address,
        )

    def _duplicate_of(
        self,
        reference: str,
        complainant: Person,
        identifiers: list[Identifier],
        raw: RawMessage,
        body_words: list[str],
    ) -> str | None:
        if self._duplicates is None:
            return None
        keys = [f"id:{i.scheme}:{i.value}" for i in identifiers if i.valid]
        if complainant.email and complainant.email_verified:
            keys.append(f"email:{complainant.email.casefold()}")
        if complainant.phone and complainant.phone_verified:
            keys.append(f"phone:{complainant.phone}")
        if not keys:
            return None
        own = shingles_of_words(body_words)
        return self._duplicates.find_and_record(keys, reference, own, raw.received_at)


def plain_text(raw: RawMessage) -> str:
    """The input's text: the plain part, else the HTML part converted."""
    if raw.text.strip():
        return clean_text(raw.text)
    if raw.html:
        return html_to_text(raw.html)
    return clean_text(str(raw.fields.get("body") or ""))


def chosen_kind(fields: Mapping[str, Any]) -> Kind | None:
    """The kind a person chose on a form (wins over the rules), if it is one of ours."""
    try:
        return Kind(str(fields.get("kind") or "").strip().lower())
    except ValueError:
        return None


def represented_person(
    fields: Mapping[str, Any], body: str, folded: str | None = None
) -> RepresentedPerson | None:
    given = fields.get("represented_person")
    if isinstance(given, Mapping) and any(given.values()):
        return RepresentedPerson(
            name=_text_field(given, "name"), relationship=_text_field(given, "relationship")
        )
    return represented_from_text(body, folded=folded)


def owned_identifiers(
    fields: Mapping[str, Any], from_text: list[Identifier], has_represented: bool
) -> list[Identifier]:
    """Identifiers from the form fields (with their owner) first, then those of the text."""
    found: list[Identifier] = []
    own = _text_field(fields, "health_insurance_number")
    if own and (identifier := identifier_from_field(own, IdentifierOwner.COMPLAINANT)):
        found.append(identifier)
    given = fields.get("represented_person")
    theirs = _text_field(given, "health_insurance_number") if isinstance(given, Mapping) else None
    if theirs and (identifier := identifier_from_field(theirs, IdentifierOwner.REPRESENTED_PERSON)):
        found.append(identifier)
    known = {(i.scheme, i.value) for i in found}
    owner = IdentifierOwner.REPRESENTED_PERSON if has_represented and not found else None
    for identifier in from_text:
        if (identifier.scheme, identifier.value) not in known:
            found.append(identifier.model_copy(update={"owner": owner}) if owner else identifier)
    return found


def needs_review(
    complainant: Person, body: str, raw: RawMessage, identifiers: list[Identifier]
) -> bool:
    """Essential data missing: no way to reach a named person, nothing to read, a bad number."""
    unreachable = not complainant.anonymous and not (
        complainant.email or complainant.phone or complainant.postal_address
    )
    empty = not body.strip() and not raw.attachments
    return unreachable or empty or any(not identifier.valid for identifier in identifiers)


def _text_field(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return clean_text(str(value)) or None if value not in (None, "") else None


def _with_letter_facts(complaint: ComplaintReceived, letter: LetterInput) -> ComplaintReceived:
    """Identifiers whose OCR look-alikes were repaired say so; the letter's own date is kept."""
    identifiers = [
        identifier.model_copy(update={"repaired": True})
        if identifier.value in letter.repaired
        else identifier
        for identifier in complaint.identifiers
    ]
    return complaint.model_copy(
        update={"identifiers": identifiers, "letter_date": letter.letter_date}
    )
