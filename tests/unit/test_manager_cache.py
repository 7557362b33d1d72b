"""The manager's cache: which observed changes queue a reconcile, whoever observed them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import pytest

from gitmoor.cluster import Cluster, Kind
from gitmoor.controllers.manager import Key, Manager, Result
from gitmoor.errors import ClusterError

WIDGET = Kind("example.dev", "v1", "Widget", "widgets", True)
KEY = Key("Widget", "apps", "w")


class Widgets:
    kind = WIDGET

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        return ()

    async def reconcile(self, obj: dict[str, Any]) -> Result:
        return Result(None)


def widget(resource_version: int, generation: int, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.dev/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps", "generation": generation,
                     "resourceVersion": str(resource_version)},
        "status": status,
    }  # fmt: skip


def manager() -> Manager:
    # The cache and the queue never touch the cluster.
    built = Manager(cast(Cluster, None))
    built.register(Widgets())
    return built


async def test_a_status_write_that_returns_a_newer_generation_queues_it() -> None:
    """The reconciler read generation 1; its status write comes back at generation 2 (the
    spec changed meanwhile), ahead of the watch, whose events then compare equal."""
    watched = manager()
    watched._observe("ADDED", widget(10, 1))
    assert await watched.queue.get() == KEY  # a worker takes it and reconciles

    watched.remember(widget(12, 2, observedGeneration=1))
    watched._observe("MODIFIED", widget(11, 2))  # the spec change, older than the cache
    watched._observe("MODIFIED", widget(12, 2, observedGeneration=1))
    watched.queue.done(KEY)

    assert len(watched.queue) == 1
    assert await watched.queue.get() == KEY


async def test_a_status_write_of_the_same_generation_queues_nothing() -> None:
    watched = manager()
    watched._observe("ADDED", widget(10, 1))
    assert await watched.queue.get() == KEY

    watched.remember(widget(11, 1, observedGeneration=1))
    watched._observe("MODIFIED", widget(11, 1, observedGeneration=1))
    watched.queue.done(KEY)

    assert len(watched.queue) == 0


class Unreachable(Widgets):
    async def reconcile(self, obj: dict[str, Any]) -> Result:
        raise ClusterError("Widget apps/w: the API server cannot be reached (ConnectError)")


async def test_an_unreachable_api_server_is_one_log_line_and_a_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watched = Manager(cast(Cluster, None))
    watched.register(Unreachable())
    watched._observe("ADDED", widget(10, 1))
    key = await watched.queue.get()

    with caplog.at_level(logging.ERROR, logger="gitmoor.controllers.manager"):
        await watched._handle(key)
    watched.queue.done(key)

    [record] = caplog.records
    assert record.getMessage() == (
        "reconcile of Widget apps/w failed: "
        "Widget apps/w: the API server cannot be reached (ConnectError)"
    )
    assert record.exc_info is None
    assert watched.queue.scheduled(KEY)
    watched.queue.close()
