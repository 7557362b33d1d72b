"""Tables as flux and kubectl print them: aligned columns, short digests."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from gitmoor.cli.common import Output

# flux shortens any SHA-1 … SHA-512 hex digest in revisions and messages to 8 characters.
_HEX = re.compile(r"\b[a-f0-9]{40,128}\b")
_GAP = "   "
_CONDITION_STYLES = {"True": "green", "False": "red", "Unknown": "yellow"}


def truncate_hex(text: str) -> str:
    return _HEX.sub(lambda m: m.group(0)[:8], text)


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
