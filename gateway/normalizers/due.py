"""Due dates: what the office promised, in business days (public holidays from the ``holidays``
package) or calendar days, counted from the day of receipt in the office's time zone.

Built-in policies (an office adds its own in ``GATEWAY_DUE_POLICIES_FILE``):

- ``ramq``: acknowledge within 2 business days, answer within 20 business days (Québec holidays);
- ``inami``: acknowledge within 10 calendar days, answer within 45 calendar days (Belgium);
- ``fr-marianne``: acknowledge within 2 business days, answer within 15 business days (France),
  after the Référentiel Marianne of French public services.

Business days: Monday to Friday except public holidays; the day of receipt is day 0, so mail
received on Friday with 2 business days is due on Tuesday. Calendar days: plain addition.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

from gateway.errors import ConfigurationError
from gateway.events.common import Due

SATURDAY = 5


class DayCount(StrEnum):
    BUSINESS = "business_days"
    CALENDAR = "calendar_days"


@dataclass(frozen=True)
class Period:
    days: int
    count: DayCount


@dataclass(frozen=True)
class DuePolicy:
    name: str
    acknowledge: Period
    respond: Period
    country: str
    subdivision: str | None
    timezone: str

    def due(self, received_at: datetime) -> Due:
        return _due_from(self, received_at.astimezone(ZoneInfo(self.timezone)).date())

    def date_after(self, start: date, period: Period) -> date:
        if period.count is DayCount.CALENDAR:
            return start + timedelta(days=period.days)
        day, remaining = start, period.days
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < SATURDAY and day not in _holidays(
            self.country, self.subdivision, day.year
        )


@lru_cache(maxsize=256)
def _due_from(policy: DuePolicy, received: date) -> Due:
    """The dates of one day of receipt (the same for every complaint of that day: counted
    once, not for each complaint)."""
    return Due(
        acknowledge_by=policy.date_after(received, policy.acknowledge),
        respond_by=policy.date_after(received, policy.respond),
        policy=policy.name,
    )


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


BUILTIN_POLICIES = {
    policy.name: policy
    for policy in (
        DuePolicy(
            "ramq",
            Period(2, DayCount.BUSINESS),
            Period(20, DayCount.BUSINESS),
            "CA",
            "QC",
            "America/Montreal",
        ),
        DuePolicy(
            "inami",
            Period(10, DayCount.CALENDAR),
            Period(45, DayCount.CALENDAR),
            "BE",
            None,
            "Europe/Brussels",
        ),
        DuePolicy(
            "fr-marianne",
            Period(2, DayCount.BUSINESS),
            Period(15, DayCount.BUSINESS),
            "FR",
            None,
            "Europe/Paris",
        ),
    )
}


def load_policies(path: Path | None) -> dict[str, DuePolicy]:
    """Built-in policies plus those of an office's TOML file (``[[policy]]`` tables)."""
    policies = dict(BUILTIN_POLICIES)
    if path is None:
        return policies
    try:
        for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("policy", []):
            policy = DuePolicy(
                name=entry["name"],
                acknowledge=Period(
                    int(entry["acknowledge_days"]), DayCount(entry["acknowledge_count"])
                ),
                respond=Period(int(entry["respond_days"]), DayCount(entry["respond_count"])),
                country=entry["country"],
                subdivision=entry.get("subdivision"),
                timezone=entry["timezone"],
            )
            _holidays(policy.country, policy.subdivision, 2026)  # unknown country: fail now
            ZoneInfo(policy.timezone)
            policies[policy.name] = policy
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError, NotImplementedError) as exc:
        raise ConfigurationError(f"due policies {path}: {exc!r}") from None
    return policies
