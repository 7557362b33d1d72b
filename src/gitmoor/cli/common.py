"""What every command shares: exit codes, output, where the cache lives."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from gitmoor.errors import GitmoorError

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_ERROR = 2

PIPE_WIDTH = 200


def default_cache_dir() -> Path:
    """``$GITMOOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/gitmoor``, else ``~/.cache/gitmoor``."""
    configured = os.environ.get("GITMOOR_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitmoor"


class Output:
    """Data goes to stdout (pipe it), messages and progress to stderr."""

    def __init__(self) -> None:
        # Piped into a file or a CI log there is no terminal to fit: 80 columns, rich's
        # default there, would cut names in tables short.
        width = None if sys.stdout.isatty() else PIPE_WIDTH
        self.out = Console(soft_wrap=True, highlight=False, width=width)
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)

    def data(self, text: str) -> None:
        self.out.file.write(text)
        self.out.file.flush()

    def error(self, exc: GitmoorError) -> None:
        self.err.print(f"[bold red]error:[/] {escape(str(exc))}")

    def info(self, text: str) -> None:
        self.err.print(text, markup=False)
