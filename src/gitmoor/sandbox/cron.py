"""Cron schedules as CronJobs spell them: five fields, names, ranges, steps, descriptors.

The rules are those of the library the CronJob controller uses (robfig/cron's standard
parser): minute, hour, day of month, month (1-12 or JAN-DEC), day of week (0-6 or
SUN-SAT); ``*`` and ``?`` for any, ``a-b``, ``a/n`` (from a to the end), ``*/n``, lists;
``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``,
``@hourly``. When both day fields are restricted a day matching either one matches;
when either is ``*`` or ``?``, both must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# How far to search for a matching minute before deciding there is none ("0 0 30 2 *").
_HORIZON = timedelta(days=5 * 366)
_MINUTE = timedelta(minutes=1)


def _field(
    text: str, low: int, high: int, names: dict[str, int], what: str
) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it was a bare ``*`` or ``?``."""
    values: set[int] = set()
    star = False

    def number(token: str) -> int:
        upper = token.upper()
        if upper in names:
            return names[upper]
        if not token.isdigit():
            raise ValueError(f"failed to parse {what} {text!r}: {token!r} is not a number")
        return int(token)

    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"failed to parse {what} {text!r}: bad step {step_text!r}")
            step = int(step_text)
        if span in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        else:
            first, dash, last = span.partition("-")
            start = number(first)
            end = number(last) if dash else (high if step_text else start)
        if start < low or end > high or start > end:
            raise ValueError(f"failed to parse {what} {text!r}: {span!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # the day of month or the day of week is * or ?: both must match

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """ValueError, saying which field is wrong, for what the CronJob API refuses."""
        spec = _DESCRIPTORS.get(text.strip().lower(), text)
        fields = spec.split()
        if len(fields) != 5:
            raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {text!r}")
        minutes, _ = _field(fields[0], 0, 59, {}, "minute")
        hours, _ = _field(fields[1], 0, 23, {}, "hour")
        days, day_star = _field(fields[2], 1, 31, {}, "day of month")
        months, _ = _field(fields[3], 1, 12, _MONTHS, "month")
        weekdays, weekday_star = _field(fields[4], 0, 6, _DAYS, "day of week")
        return cls(minutes, hours, days, months, weekdays, day_star or weekday_star)

    def _day_matches(self, moment: datetime) -> bool:
        by_date = moment.day in self.days
        by_weekday = (moment.isoweekday() % 7) in self.weekdays
        return by_date and by_weekday if self.any_day else by_date or by_weekday

    def next_after(self, moment: datetime) -> datetime | None:
        """The first scheduled minute after ``moment`` (in ``moment``'s time zone)."""
        at = moment.replace(second=0, microsecond=0) + _MINUTE
        limit = at + _HORIZON
        while at < limit:
            if at.month not in self.months:
                year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
                at = at.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += _MINUTE
            else:
                return at
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last scheduled minute at or before ``moment``."""
        at = moment.replace(second=0, microsecond=0)
        limit = at - _HORIZON
        while at > limit:
            if at.month not in self.months:
                at = at.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0) - _MINUTE
            elif at.hour not in self.hours:
                at = at.replace(minute=0) - _MINUTE
            elif at.minute not in self.minutes:
                at -= _MINUTE
            else:
                return at
        return None
