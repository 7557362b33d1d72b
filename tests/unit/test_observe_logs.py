"""JSON and plain log lines: one object per line, Flux's field names, errors as ``error``."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from gitmoor.errors import Location, RenderError
from gitmoor.observe.logs import configure_logging, reconcile_log


@pytest.fixture
def gitmoor_logger() -> Iterator[logging.Logger]:
    """The ``gitmoor`` logger, put back as it was afterwards."""
    logger = logging.getLogger("gitmoor")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_its_fields(gitmoor_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="info", stream=stream)
    log = logging.getLogger("gitmoor.controllers.kustomization")
    log.info("applied %d objects", 3, extra={"fields": {"name": "apps", "objects": ["a", "b"]}})
    log.debug("not shown at info")
    log.warning("multi\nline message")
    first, second = lines(stream)
    assert first["level"] == "info"
    assert first["logger"] == "gitmoor.controllers.kustomization"
    assert first["msg"] == "applied 3 objects"
    assert first["name"] == "apps"
    assert first["objects"] == ["a", "b"]
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    assert first["ts"].endswith("Z")
    assert (second["level"], second["msg"]) == ("warn", "multi\nline message")


def test_a_reconcile_line_carries_kind_name_namespace_revision_and_duration(
    gitmoor_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    reconcile_log(
        logging.getLogger("gitmoor.controllers"),
        kind="Kustomization",
        namespace="flux-system",
        name="apps",
        revision="main@sha1:0123abcd",
        duration=1.25,
        result="succeeded",
    )
    [line] = lines(stream)
    assert line["level"] == "info"
    assert line["controller"] == "kustomization"
    assert line["controllerKind"] == "Kustomization"
    assert line["Kustomization"] == {"name": "apps", "namespace": "flux-system"}
    assert (line["namespace"], line["name"]) == ("flux-system", "apps")
    assert line["revision"] == "main@sha1:0123abcd"
    assert line["duration"] == 1.25
    assert line["result"] == "succeeded"
    assert "error" not in line


def test_a_failed_reconcile_is_an_error_line_with_the_message_and_no_stack(
    gitmoor_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    failure = RenderError("kustomize build failed", Location(object="Kustomization x/apps"))
    reconcile_log(
        logging.getLogger("gitmoor.controllers"),
        kind="Kustomization",
        namespace="x",
        name="apps",
        revision="",
        duration=0.5,
        result="failed",
        error=failure,
    )
    [line] = lines(stream)
    assert line["level"] == "error"
    assert line["error"] == str(failure)
    assert "stacktrace" not in line


def test_an_unexpected_exception_keeps_its_stack(gitmoor_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    settings: dict[str, str] = {}
    try:
        settings["missing"]
    except KeyError:
        logging.getLogger("gitmoor.x").exception("crashed")
    [line] = lines(stream)
    assert line["error"] == "'missing'"
    assert "KeyError" in line["stacktrace"]


def test_configuring_again_replaces_the_handler_and_text_mode_is_plain(
    gitmoor_logger: logging.Logger,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(json=False, level="debug", stream=second)
    logging.getLogger("gitmoor.cli").debug("fetched", extra={"fields": {"revision": "v1"}})
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert line.split()[1:] == ["debug", "fetched", "revision=v1"]


def test_an_unknown_level_is_refused(gitmoor_logger: logging.Logger) -> None:
    with pytest.raises(ValueError, match="verbose"):
        configure_logging(level="verbose")
