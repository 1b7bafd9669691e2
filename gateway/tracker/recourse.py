"""The recourse named in the final notice: who the person may turn to when the answer does not
satisfy them, per due-date policy (``GATEWAY_TRACKER_RECOURSE_FILE`` adds or replaces them).

Built in, from the offices' own pages:

- ``ramq``: the Protecteur du citoyen (Québec's ombudsman), as the RAMQ's complaint procedure
  names it;
- ``inami``: the médiateur fédéral (Federal Ombudsman), with its contacts;
- ``fr-marianne``: the médiateur of the person's caisse d'assurance maladie (CPAM);
- ``ars``: the commission des usagers of the establishment, or a médiateur (for an office that
  defines a policy of that name).

The file has one table per policy, each field in French and English where it is words::

    [ramq]
    name = { fr = "Protecteur du citoyen", en = "Québec Ombudsman" }
    how = { fr = "…", en = "…" }
    website = "https://protecteurducitoyen.qc.ca"
    phone = "1 800 463-5070"
    email = "…"        # optional
    address = "…"      # optional
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

SETTING = "GATEWAY_TRACKER_RECOURSE_FILE"
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Recourse:
    name: dict[str, str]  # language -> words
    how: dict[str, str]
    website: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None

    def as_values(self) -> dict[str, Any]:
        """What a notice's template reads (JSON-ready: kept with the notification)."""
        return asdict(self)


BUILTIN_RECOURSES: dict[str, Recourse] = {
    "ramq": Recourse(
        name={
            "fr": "Protecteur du citoyen",
            "en": "Québec Ombudsman (Protecteur du citoyen)",
        },
        how={
            "fr": "Si la réponse ne vous satisfait pas, vous pouvez porter plainte au Protecteur "
            "du citoyen, sans frais.",
            "en": "If the answer does not satisfy you, you may complain to the Québec Ombudsman, "
            "free of charge.",
        },
        website="https://protecteurducitoyen.qc.ca",
        phone="1 800 463-5070",
    ),
    "inami": Recourse(
        name={"fr": "Médiateur fédéral", "en": "Federal Ombudsman (Médiateur fédéral)"},
        how={
            "fr": "Si la réponse ne vous satisfait pas, vous pouvez vous adresser gratuitement au "
            "Médiateur fédéral.",
            "en": "If the answer does not satisfy you, you may turn to the Federal Ombudsman, "
            "free of charge.",
        },
        website="https://www.mediateurfederal.be",
        phone="0800 99 961",
        email="contact@mediateurfederal.be",
        address="Rue de Louvain 48 boîte 6, 1000 Bruxelles",
    ),
    "fr-marianne": Recourse(
        name={
            "fr": "Médiateur de votre caisse d'assurance maladie",
            "en": "The mediator of your health-insurance fund (CPAM)",
        },
        how={
            "fr": "Si la réponse ne vous satisfait pas, vous pouvez saisir le médiateur de votre "
            "caisse primaire d'assurance maladie, par votre compte ameli ou par courrier.",
            "en": "If the answer does not satisfy you, you may refer the matter to the mediator "
            "of your health-insurance fund, through your ameli account or by letter.",
        },
        website="https://www.ameli.fr",
    ),
    "ars": Recourse(
        name={
            "fr": "Commission des usagers ou médiateur",
            "en": "Users' committee (commission des usagers) or a mediator",
        },
        how={
            "fr": "Si la réponse ne vous satisfait pas, vous pouvez saisir la commission des "
            "usagers de l'établissement concerné, ou demander une médiation.",
            "en": "If the answer does not satisfy you, you may refer the matter to the users' "
            "committee of the establishment concerned, or ask for mediation.",
        },
    ),
}


class RecourseBook:
    """Each policy's recourse; None for a policy that names none."""

    def __init__(self, recourses: Mapping[str, Recourse]) -> None:
        self._recourses = dict(recourses)

    def of(self, policy: str | None) -> Recourse | None:
        return self._recourses.get(policy or "")

    @classmethod
    def load(cls, path: Path | None) -> RecourseBook:
        """The built-in recourses and those of the office's file (its own win); a file that
        cannot be read stops start-up with one line naming the setting."""
        recourses = dict(BUILTIN_RECOURSES)
        if path is None:
            return cls(recourses)
        try:
            tables = tomllib.loads(path.read_text(encoding="utf-8"))
            for policy, table in tables.items():
                recourses[policy] = _recourse(policy, table)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"{SETTING}: {path}: {exc}") from None
        return cls(recourses)


def _recourse(policy: str, table: Any) -> Recourse:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{SETTING}: [{policy}] is not a table")
    words = {field: _words(policy, field, table.get(field)) for field in ("name", "how")}
    details = {}
    for field in ("website", "phone", "email", "address"):
        value = table.get(field)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{SETTING}: [{policy}] {field} is not text")
        details[field] = value
    unknown = set(table) - {"name", "how", "website", "phone", "email", "address"}
    if unknown:
        raise ConfigurationError(f"{SETTING}: [{policy}] unknown field {sorted(unknown)[0]!r}")
    return Recourse(name=words["name"], how=words["how"], **details)


def _words(policy: str, field: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(language), str) and value[language].strip() for language in LANGUAGES
    ):
        msg = f"{SETTING}: [{policy}] {field} needs fr and en words: {field} = {{ fr = …, en = … }}"
        raise ConfigurationError(msg)
    return {language: value[language].strip() for language in LANGUAGES}
