"""Logs: one JSON object per line for the controllers, plain lines for a person at the CLI.

Structured fields travel in ``extra={"fields": {...}}`` and come out as keys of the JSON
object, named as Flux's controllers name them (``controller``, ``controllerKind``, ``name``,
``namespace``, ``revision`` ...), so log queries written for Flux find gitmoor's lines too.
An exception logged with the record comes out as ``error`` (its message), plus
``stacktrace`` when it is not one of gitmoor's own errors (those are expected failures whose
message says everything; anything else is a bug whose stack matters).

Nothing here filters values: callers must never log secret values (name the Secret and key).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from json import dumps
from typing import Any, TextIO

from gitmoor.errors import GitmoorError

LOGGER = "gitmoor"

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# zap's level names, which Flux's logs carry.
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}


def _level_name(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname.lower())


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, Mapping) else {}


def _error(record: logging.LogRecord) -> dict[str, str]:
    if not record.exc_info or record.exc_info[1] is None:
        return {}
    exc = record.exc_info[1]
    found = {"error": str(exc) or type(exc).__name__}
    if not isinstance(exc, GitmoorError):
        found["stacktrace"] = "".join(traceback.format_exception(exc)).rstrip()
    return found


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", <fields>..., "error"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": _level_name(record),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        entry.update(_error(record))
        return dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <level> <msg> key=value ...`` for a terminal; a stack trace follows."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        parts = [moment, f"{_level_name(record):<5}", record.getMessage()]
        for key, value in _fields(record).items():
            shown = value if isinstance(value, str | int | float) else dumps(value, default=str)
            parts.append(f"{key}={shown}")
        error = _error(record)
        if "error" in error:
            parts.append(f"error={error['error']}")
        line = " ".join(str(part) for part in parts)
        return f"{line}\n{error['stacktrace']}" if "stacktrace" in error else line


def configure_logging(
    *, json: bool = True, level: str = "info", stream: TextIO | None = None
) -> None:
    """Send the ``gitmoor`` loggers' records to ``stream`` (stderr) as JSON or plain lines.

    Calling it again replaces what an earlier call installed.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (one of: {', '.join(LEVELS)})")
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler.formatter, JsonFormatter | TextFormatter):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(LEVELS[level.lower()])


def reconcile_log(
    logger: logging.Logger,
    *,
    kind: str,
    namespace: str,
    name: str,
    revision: str,
    duration: float,
    result: str,
    error: BaseException | None = None,
) -> None:
    """The line a controller writes at the end of each reconcile of one object.

    ``duration`` is in seconds; ``result`` says how it ended (``succeeded``, ``failed``,
    ``suspended`` ...); ``error``, when it failed, makes the line an error with its message.
    """
    fields: dict[str, Any] = {
        # controller-runtime names Flux's controllers after the kind, lower case, and adds
        # the object under its kind as well.
        "controller": kind.lower(),
        "controllerKind": kind,
        kind: {"name": name, "namespace": namespace},
        "name": name,
        "namespace": namespace,
        "revision": revision,
        "duration": round(duration, 6),
        "result": result,
    }
    if error is None:
        logger.info("Reconciliation finished in %.3fs", duration, extra={"fields": fields})
    else:
        logger.error(
            "Reconciliation failed after %.3fs", duration, exc_info=error, extra={"fields": fields}
        )
