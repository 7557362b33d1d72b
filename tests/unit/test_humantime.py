"""gitmoor.humantime: Kubernetes timestamps read, ages printed as kubectl prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gitmoor.humantime import human_duration, parse_time, since


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"), (-3, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"),
        (59, "59s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (200, "3m20s"),
        (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"), (3 * 3600 + 30 * 60, "3h30m"), (5 * 3600 + 600, "5h10m"),
        (8 * 3600 + 59 * 60, "8h"), (30 * 3600, "30h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
        (50 * 3600, "2d2h"), (3 * 86400 + 4 * 3600, "3d4h"), (8 * 86400, "8d"),
        (100 * 86400, "100d"), (400 * 86400, "400d"), (730 * 86400, "2y"),
        (800 * 86400, "2y70d"), (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y"),
        (10 * 365 * 86400, "10y"),
    ],
)  # fmt: skip
def test_human_duration_as_apimachinery(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
        # metav1.MicroTime: microseconds, and finer fractions cut to them
        ("2024-05-01T10:00:00.123456Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5Z", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        (
            "2024-05-01T12:00:00+02:00",
            datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_timestamps_parse_as_rfc3339(text: str, moment: datetime) -> None:
    assert parse_time(text) == moment


@pytest.mark.parametrize(
    "value",
    [None, "", 1714557600, "2024-05-01", "2024-05-01T10:00:00", "2024-05-01 10:00:00Z",
     "2024-13-01T10:00:00Z", "yesterday"],
)  # fmt: skip
def test_anything_else_is_no_time(value: object) -> None:
    assert parse_time(value) is None


def test_since_is_the_age_at_a_moment() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert since("2024-05-01T11:56:40Z", now) == "3m20s"
    assert since("2024-05-01T11:59:59.900000Z", now) == "0s"
    assert since(None, now) == "<unknown>"
    assert since("not a time", now) == "<unknown>"
