"""Times as Kubernetes writes and prints them: RFC 3339 timestamps in, ``3m20s`` ages out.

kubectl, flux and kube-apiserver's table printers all show ages with apimachinery's
``duration.HumanDuration``; the CLI and the sandbox print them the same way.
"""

from __future__ import annotations

import re
from datetime import datetime

# metav1.Time (seconds) and metav1.MicroTime (a fraction); Go's RFC 3339 wants the "T" and
# a zone, "Z" or an offset.
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_time(value: object) -> datetime | None:
    """A metav1.Time or MicroTime (``2024-05-01T10:00:00Z``, with or without a fraction of
    a second, in UTC or with an offset) as an aware datetime; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{whole}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:  # well-formed but impossible: month 13, hour 25...
        return None


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: ``45s``, ``3m20s``, ``25m``, ``5h10m``,
    ``3d4h``, ``400d``, ``2y70d``, ``9y`` — two significant figures at most; ``0s`` just
    under zero (clock skew), ``<invalid>`` further below."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return _pair(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _pair(hours // 24 // 365, "y", hours // 24 % 365, "d")
    return f"{hours // 24 // 365}y"


def _pair(value: int, unit: str, rest: int, rest_unit: str) -> str:
    return f"{value}{unit}{rest}{rest_unit}" if rest else f"{value}{unit}"


def since(value: object, now: datetime) -> str:
    """How long before ``now`` a timestamp was, as :func:`human_duration` prints it;
    ``<unknown>`` when there is none."""
    moment = parse_time(value)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())
