"""Representation: a text written for someone else ("au nom de ma mère", "on behalf of my son").

Forms say it in a field (``represented_person``); in free text these patterns find who, by
relationship. A name written right after the relationship ("au nom de ma mère, Jeanne Roy",
"on behalf of my son Liam O'Brien") is taken too: two to four capitalised words (or a surname in
capitals), titles such as "Madame" left out; anything else is left for the case team.
"""

from __future__ import annotations

import re

from gateway.events.common import RepresentedPerson
from gateway.normalizers.rules import fold

_RELATIONS_FR = (
    r"m(?:a|on) (?P<fr>mere|pere|fils|fille|enfant|conjointe?|epouse|mari|frere|soeur|grand-mere"
    r"|grand-pere|client|cliente|patiente?|tante|oncle|niece|neveu)"
)
_RELATIONS_EN = (
    r"my (?P<en>mother|father|son|daughter|child|wife|husband|spouse|partner|brother|sister"
    r"|grandmother|grandfather|client|patient|aunt|uncle)"
)
_ON_BEHALF_FR = r"(?:au nom de|pour le compte de|de la part de|je represente|mandataire de)"
_ROLE_FR = r"(?P<role>tuteur|tutrice|curateur|curatrice|mandataire|avocate?)"
_ROLE_EN = r"(?P<role_en>guardian|legal guardian|attorney|lawyer|power of attorney|caregiver)"
# (anchor, pattern): the pattern is only tried when its anchor occurs in the text.
_PATTERNS = (
    (
        ("au nom de", "pour le compte", "de la part", "represente", "mandataire"),
        re.compile(rf"\b{_ON_BEHALF_FR} {_RELATIONS_FR}\b"),
    ),
    (
        ("qui ne peut", "incapable", "hospitalise"),
        re.compile(rf"\bpour {_RELATIONS_FR}\b.{{0,40}}\b(?:qui ne peut|incapable|hospitalise)"),
    ),
    (
        ("behalf", "representing", "acting for"),
        re.compile(rf"\b(?:on behalf of|representing|acting for) {_RELATIONS_EN}\b"),
    ),
    (
        ("tuteur", "tutrice", "curat", "mandataire", "avocat"),
        re.compile(rf"\b(?:je suis|en tant que) (?:le |la )?{_ROLE_FR}\b"),
    ),
    (
        ("guardian", "attorney", "lawyer", "caregiver"),
        re.compile(rf"\b(?:i am|as) (?:the |his |her |their )?{_ROLE_EN}\b"),
    ),
)


# The patterns match accent-free text; the relationship is reported as the person writes it.
_ACCENTED = {
    "mere": "mère",
    "pere": "père",
    "epouse": "épouse",
    "soeur": "sœur",
    "frere": "frère",
    "grand-mere": "grand-mère",
    "grand-pere": "grand-père",
    "niece": "nièce",
}


_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
# Roy, ROY, D'Amours, O'Brien, McDonald, Jean-Pierre
_NAME_PART = (
    rf"(?:[{_UPPER}][{_LOWER}]*['\u2019])?"  # D', O'
    rf"[{_UPPER}](?:[{_LOWER}]+(?:[{_UPPER}][{_LOWER}]+)?|[{_UPPER}]+)"
)
_NAME_WORD = rf"{_NAME_PART}(?:-{_NAME_PART})*"
_TITLES = r"(?:(?i:madame|monsieur|mme|mlle|mr|mrs|ms|miss|dr)\.?\s+)?"
_NAME_AFTER = rf"(?:,\s*|\s+){_TITLES}(?P<name>{_NAME_WORD}(?:[ \u00a0]{_NAME_WORD}){{1,3}})\b"


def represented_from_text(text: str, *, folded: str | None = None) -> RepresentedPerson | None:
    """The represented person a text speaks of; ``folded`` if the caller already folded it."""
    folded = fold(text) if folded is None else folded
    for anchors, pattern in _PATTERNS:
        if not any(anchor in folded for anchor in anchors):
            continue
        match = pattern.search(folded)
        if match:
            relationship = next(value for value in match.groupdict().values() if value)
            written = _ACCENTED.get(relationship, relationship)
            return RepresentedPerson(
                name=name_after(text, (relationship, written)), relationship=written
            )
    return None


def name_after(text: str, relationship: tuple[str, ...]) -> str | None:
    """The name written right after the first mention of the relationship, if any."""
    words = "|".join(re.escape(word) for word in dict.fromkeys(relationship))
    # the relationship in any case ("Ma Mère"), the name with its own capitals
    found = re.search(rf"(?i:\b(?:{words}))\b{_NAME_AFTER}", text)
    return found.group("name") if found else None
