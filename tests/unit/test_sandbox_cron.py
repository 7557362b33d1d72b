"""CronJob schedules: parsing and the next and latest scheduled minutes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gitmoor.sandbox.cron import CronSchedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * *", "2025-03-04T10:15:30", "2025-03-04T10:16:00"),
        ("*/15 * * * *", "2025-03-04T10:15:00", "2025-03-04T10:30:00"),
        ("5 4 * * *", "2025-03-04T10:15:00", "2025-03-05T04:05:00"),
        ("0 0 1 * *", "2025-12-31T23:59:00", "2026-01-01T00:00:00"),
        ("0 9 * * MON-FRI", "2025-03-07T10:00:00", "2025-03-10T09:00:00"),  # Fri → Mon
        ("0 0 * FEB *", "2025-03-01T00:00:00", "2026-02-01T00:00:00"),
        ("30 2 29 2 *", "2025-01-01T00:00:00", "2028-02-29T02:30:00"),  # leap years only
        ("10/20 * * * *", "2025-03-04T10:31:00", "2025-03-04T10:50:00"),
        ("0 12 1,15 * *", "2025-03-02T00:00:00", "2025-03-15T12:00:00"),
        ("@hourly", "2025-03-04T10:15:00", "2025-03-04T11:00:00"),
        ("@weekly", "2025-03-04T10:15:00", "2025-03-09T00:00:00"),  # Sunday
    ],
)
def test_next_after(schedule: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(schedule).next_after(at(after)) == at(expected)


def test_both_day_fields_restricted_match_either() -> None:
    # The 13th of the month or any Friday, as cron (and the CronJob controller) reads it.
    schedule = CronSchedule.parse("0 0 13 * 5")
    assert schedule.next_after(at("2025-06-01T00:00:00")) == at("2025-06-06T00:00:00")
    assert schedule.next_after(at("2025-06-12T00:00:00")) == at("2025-06-13T00:00:00")
    # With a star in one of them, both must match: Fridays that are the 13th.
    assert CronSchedule.parse("0 0 13 * ?").next_after(at("2025-06-01T00:00:00")) == at(
        "2025-06-13T00:00:00"
    )


def test_latest_at_or_before() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")
    assert schedule.latest_at_or_before(at("2025-03-04T10:17:42")) == at("2025-03-04T10:15:00")
    assert schedule.latest_at_or_before(at("2025-03-04T10:15:00")) == at("2025-03-04T10:15:00")
    monthly = CronSchedule.parse("0 6 1 * *")
    assert monthly.latest_at_or_before(at("2025-03-01T05:59:00")) == at("2025-02-01T06:00:00")


def test_a_time_zone_is_wall_clock_time() -> None:
    zone = ZoneInfo("Europe/Berlin")
    after = datetime(2025, 3, 4, 10, 0, tzinfo=zone)
    assert CronSchedule.parse("0 2 * * *").next_after(after) == datetime(
        2025, 3, 5, 2, 0, tzinfo=zone
    )


def test_a_day_that_never_comes() -> None:
    assert CronSchedule.parse("0 0 30 2 *").next_after(at("2025-01-01T00:00:00")) is None


@pytest.mark.parametrize(
    ("schedule", "complaint"),
    [
        ("* * * *", "exactly 5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 7", "day of week"),
        ("*/0 * * * *", "bad step"),
        ("a * * * *", "not a number"),
        ("5-1 * * * *", "minute"),
    ],
)
def test_what_is_refused(schedule: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        CronSchedule.parse(schedule)
