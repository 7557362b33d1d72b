"""Tables and times as flux and kubectl print them: aligned columns, ``3m20s`` ages, short
digests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from rich.table import Table
from rich.text import Text

from gitmoor.cli.common import Output

# flux shortens any SHA-1 … SHA-512 hex digest in revisions and messages to 8 characters.
_HEX = re.compile(r"\b[a-f0-9]{40,128}\b")
_GAP = "   "
_CONDITION_STYLES = {"True": "green", "False": "red", "Unknown": "yellow"}


def truncate_hex(text: str) -> str:
    return _HEX.sub(lambda m: m.group(0)[:8], text)


def parse_time(value: object) -> datetime | None:
    """A metav1.Time or MicroTime (``2024-05-01T10:00:00Z``, with or without a fraction)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: ``45s``, ``3m20s``, ``25m``, ``5h10m``, ``3d4h``, ``2y``."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(value: object, now: datetime) -> str:
    """How long ago a timestamp was, or ``<unknown>`` when there is none."""
    moment = parse_time(value)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, show_header: bool = True
) -> str:
    """Columns padded to their widest cell, three spaces apart, the last one not padded."""
    lines = [list(row) for row in rows]
    if show_header:
        lines.insert(0, list(headers))
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "".join(
        _GAP.join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def _style(cell: str, condition: bool) -> str:
    return _CONDITION_STYLES.get(cell, "") if condition else ""


def print_table(
    output: Output,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    show_header: bool = True,
    condition_column: str | None = None,
) -> None:
    """On a terminal a rich table (the condition column coloured); piped, plain columns."""
    if not output.out.is_terminal:
        output.data(plain_table(headers, rows, show_header=show_header))
        return
    table = Table(box=None, pad_edge=False, show_header=show_header, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = zip(row, headers, strict=True)
        table.add_row(*(Text(cell, style=_style(cell, h == condition_column)) for cell, h in cells))
    output.out.print(table)
