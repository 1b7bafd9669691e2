"""Due dates across weekends and Québec, Belgian and French public holidays."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import ConfigurationError
from gateway.normalizers.due import BUILTIN_POLICIES, load_policies

MONTREAL = ZoneInfo("America/Montreal")
PARIS = ZoneInfo("Europe/Paris")


def at(day: str, zone: ZoneInfo, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=zone)


@pytest.mark.parametrize(
    ("received", "acknowledge_by", "respond_by"),
    [
        ("2026-11-16", "2026-11-18", "2026-12-14"),  # Monday: plain weeks
        ("2026-11-20", "2026-11-24", "2026-12-18"),  # Friday: the weekend is skipped
        ("2026-11-21", "2026-11-24", "2026-12-18"),  # Saturday: counting starts Monday
        ("2026-06-23", "2026-06-26", "2026-07-23"),  # Fête nationale (24 June) and 1 July
        (
            "2026-12-23",
            "2026-12-28",
            "2027-01-22",
        ),  # Christmas and New Year (no Boxing Day in Québec)
        (
            "2026-04-02",
            "2026-04-07",
            "2026-05-01",
        ),  # Good Friday 3 April (Québec keeps Good Friday)
    ],
)
def test_ramq_counts_business_days_with_quebec_holidays(
    received: str, acknowledge_by: str, respond_by: str
) -> None:
    due = BUILTIN_POLICIES["ramq"].due(at(received, MONTREAL))
    assert (due.acknowledge_by, due.respond_by) == (
        date.fromisoformat(acknowledge_by),
        date.fromisoformat(respond_by),
    )
    assert due.policy == "ramq"


@pytest.mark.parametrize(
    ("received", "acknowledge_by"),
    [
        ("2026-07-13", "2026-07-16"),  # 14 July
        ("2026-05-13", "2026-05-18"),  # Ascension Thursday 14 May, then the weekend
        ("2026-11-10", "2026-11-13"),  # Armistice 11 November
    ],
)
def test_french_policy_skips_french_holidays(received: str, acknowledge_by: str) -> None:
    due = BUILTIN_POLICIES["fr-marianne"].due(at(received, PARIS))
    assert due.acknowledge_by == date.fromisoformat(acknowledge_by)


def test_inami_counts_calendar_days() -> None:
    due = BUILTIN_POLICIES["inami"].due(at("2026-12-24", ZoneInfo("Europe/Brussels")))
    assert (due.acknowledge_by, due.respond_by) == (date(2027, 1, 3), date(2027, 2, 7))


def test_the_day_of_receipt_is_taken_in_the_office_time_zone() -> None:
    late_friday_in_montreal = at("2026-11-20", MONTREAL, hour=23)  # Saturday 04:00 UTC
    due = BUILTIN_POLICIES["ramq"].due(late_friday_in_montreal)
    assert due.acknowledge_by == date(2026, 11, 24)


def test_an_office_adds_its_own_policy(tmp_path: Path) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(
        "[[policy]]\nname = 'ars-idf'\nacknowledge_days = 5\nacknowledge_count = 'business_days'\n"
        "respond_days = 2\nrespond_count = 'calendar_days'\ncountry = 'FR'\n"
        "timezone = 'Europe/Paris'\n"
    )
    policies = load_policies(path)
    assert {"ramq", "inami", "fr-marianne", "ars-idf"} <= set(policies)
    due = policies["ars-idf"].due(at("2026-07-13", PARIS))
    assert (due.acknowledge_by, due.respond_by) == (date(2026, 7, 21), date(2026, 7, 15))


def test_a_policy_for_an_unknown_country_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(
        "[[policy]]\nname = 'x'\nacknowledge_days = 1\nacknowledge_count = 'business_days'\n"
        "respond_days = 1\nrespond_count = 'business_days'\ncountry = 'ZZ'\ntimezone = 'UTC'\n"
    )
    with pytest.raises(ConfigurationError, match="policies"):
        load_policies(path)
