"""Normalizers: pure functions from a ``RawMessage`` (and configuration) to a canonical event
payload. No network I/O of their own; the duplicate index is the one piece of state (a
``DuplicateIndex`` they are given: SQLite, or the shared database)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gateway.channels.raw import RawMessage
from gateway.errors import ConfigurationError
from gateway.events.complaint import ComplaintReceived, DocumentAdded
from gateway.normalizers.complaint import ComplaintNormalizer, NormalizerConfig
from gateway.normalizers.contacts import OwnContacts, normalise_phone
from gateway.normalizers.due import load_policies
from gateway.normalizers.duplicates import DuplicateIndex
from gateway.normalizers.rules import load_rules
from gateway.reference import DEFAULT_PREFIX
from gateway.settings import NormalizerSettings

__all__ = [
    "ComplaintNormalizer",
    "DuplicateIndex",
    "Normalizer",
    "NormalizerConfig",
    "normalizer_config",
]


class Normalizer(Protocol):
    """A pure function of a raw input (and configuration) to a canonical payload."""

    def normalize(self, raw: RawMessage) -> ComplaintReceived | DocumentAdded: ...


def normalizer_config(
    settings: NormalizerSettings,
    reference_prefix: str = DEFAULT_PREFIX,
    own_contacts: Iterable[str] = (),
) -> NormalizerConfig:
    """The normalizers' configuration from the settings; ConfigurationError if a file is wrong.
    ``own_contacts``: the office's addresses and numbers besides ``settings.own_contacts``."""
    policies = load_policies(settings.due_policies_file)
    if settings.due_policy not in policies:
        known = ", ".join(sorted(policies))
        msg = f"unknown policy {settings.due_policy!r} (known: {known})"
        raise ConfigurationError(f"GATEWAY_NORMALIZER_DUE_POLICY: {msg}")
    for written in settings.own_contacts:
        if "@" not in written and normalise_phone(written, settings.default_region) is None:
            msg = f"{written!r} is neither an email address nor a valid phone number"
            raise ConfigurationError(f"GATEWAY_NORMALIZER_OWN_CONTACTS: {msg}")
    return NormalizerConfig(
        default_region=settings.default_region,
        due_policy=policies[settings.due_policy],
        rules=load_rules(settings.rules, settings.abusive_words),
        languages=tuple(settings.languages),
        reference_prefix=reference_prefix,
        own_contacts=OwnContacts.of(
            [*settings.own_contacts, *own_contacts], settings.default_region
        ),
    )
