"""Scanned letters: OCR look-alikes repaired by position, and the letter's head read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.channels.raw import RawMessage
from gateway.events.common import Channel
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.normalizers.letter import letter_head, repair_lookalikes
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex

OCR_TEXT = """Hélène Tremblay
1234, rue Saint-Jean, app. 3
Québec (Québec) GIR 155
Tél. : 418 682-5145
No d'assurance maladie : TREM 85O3 l512

Québec, le 14 mars 2025

Commissaire aux plaintes
2915, avenue du Bourg-Royal
Québec (Québec) G1C 382

Objet : Plainte concernant mon séjour à l'urgence

Madame, Monsieur,

J'ai attendu onze heures à l'urgence sans être réévaluée.
"""


@pytest.mark.parametrize(
    ("read", "meant"),
    [
        ("GIR 155", "G1R 1S5"),
        ("H2X OC1", "H2X 0C1"),
        ("G1C 382", "G1C 3B2"),
        ("TREM 85O3 l512", "TREM 8503 1512"),
        ("C0TM 9O55 2718", "COTM 9055 2718"),
    ],
)
def test_look_alikes_are_repaired_where_the_format_says_letter_or_digit(
    read: str, meant: str
) -> None:
    assert repair_lookalikes(f"x {read} y")[0] == f"x {meant} y"


@pytest.mark.parametrize(
    "kept",
    ["Tél. : 418 682-5145", "THE END", "H2X 1Y4", "TREM 8503 1512", "ABCD 9913 1512", "No 123 456"],
)
def test_what_is_fine_or_no_code_at_all_is_left_alone(kept: str) -> None:
    assert repair_lookalikes(kept) == (kept, set())


def test_the_head_gives_sender_address_subject_and_date() -> None:
    head = letter_head(repair_lookalikes(OCR_TEXT)[0])
    assert head.name == "Hélène Tremblay"
    assert head.address == "1234, rue Saint-Jean, app. 3\nQuébec (Québec) G1R 1S5"
    assert head.subject == "Plainte concernant mon séjour à l'urgence"
    assert head.letter_date == date(2025, 3, 14)
    assert letter_head("Ann Lee\n\nMontreal, March 1st, 2026\n").letter_date == date(2026, 3, 1)
    assert letter_head("Ann Lee\n\nMontreal, March 2, 2026\n").letter_date == date(2026, 3, 2)
    assert letter_head("Paris, le 1er avril 2026").letter_date == date(2026, 4, 1)


def test_a_postal_complaint_carries_the_repaired_identifier_and_the_letter_facts() -> None:
    raw = RawMessage(
        channel=Channel.POSTAL,
        source_key="postal:" + "a" * 64,
        source_id="a" * 64,
        received_at=datetime(2026, 11, 25, 9, tzinfo=UTC),
        text=OCR_TEXT,
    )
    complaint = ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)).normalize(raw)
    assert complaint.__class__.__name__ == "ComplaintReceived"
    [nam] = complaint.identifiers  # type: ignore[union-attr]
    assert (nam.value, nam.valid, nam.repaired) == ("TREM85031512", True, True)
    assert complaint.complainant.name == "Hélène Tremblay"  # type: ignore[union-attr]
    assert complaint.complainant.phone == "+14186825145"  # type: ignore[union-attr]
    assert "G1R 1S5" in (complaint.complainant.postal_address or "")  # type: ignore[union-attr]
    assert complaint.subject == "Plainte concernant mon séjour à l'urgence"  # type: ignore[union-attr]
    assert complaint.letter_date == date(2025, 3, 14)  # type: ignore[union-attr]
