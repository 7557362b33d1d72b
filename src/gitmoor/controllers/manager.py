"""The controller runtime: watches, a shared work queue, workers, and scheduling.

Each registered :class:`Reconciler` names the kind it owns. The manager watches that kind
into a cache, queues an object when it appears, when its spec changes (generation), when
its ``reconcile.fluxcd.io/requestedAt`` annotation changes and when it is being deleted —
never for status-only writes, which are the controllers' own. Reconcilers can also ask for
other objects to be queued when something they depend on changes (:meth:`Reconciler.triggers`:
a source's new revision, a dependency turning Ready).

A reconcile returns when to look again (its ``spec.interval``); a failed one is retried with
exponential back-off capped at the ``retry_after`` it gives (``spec.retryInterval``). A lost
watch starts again from a fresh list (:meth:`gitmoor.cluster.Cluster.watch`), so no change is
missed while the API server is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitmoor.cluster import Cluster, Kind
from gitmoor.errors import ClusterError
from gitmoor.manifests import KubeObject
from gitmoor.workqueue import WorkQueue

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Key:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else self.name


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return Key(str(obj.get("kind", "")), meta.get("namespace") or "", meta.get("name", ""))


@dataclass(frozen=True)
class Result:
    """How a reconcile ended: when to look again, and whether it failed (then the next
    try comes after a back-off capped at ``requeue_after``)."""

    requeue_after: float | None
    failed: bool = False


class Reconciler(Protocol):
    kind: Kind

    async def reconcile(self, obj: KubeObject) -> Result: ...

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        """Objects of this reconciler's kind to queue because another object changed."""
        ...


@dataclass
class Manager:
    cluster: Cluster
    concurrency: int = 4
    namespace: str | None = None
    base_backoff: float = 1.0
    reconcilers: dict[str, Reconciler] = field(default_factory=dict)
    cache: dict[str, dict[Key, KubeObject]] = field(default_factory=dict)
    synced: dict[str, asyncio.Event] = field(default_factory=dict)
    _queue: WorkQueue[Key] | None = None
    _durations: list[tuple[Key, float]] = field(default_factory=list)

    def register(self, reconciler: Reconciler) -> None:
        self.reconcilers[reconciler.kind.kind] = reconciler
        self.cache[reconciler.kind.kind] = {}
        self.synced[reconciler.kind.kind] = asyncio.Event()

    @property
    def queue(self) -> WorkQueue[Key]:
        if self._queue is None:
            self._queue = WorkQueue(base_delay=self.base_backoff)
        return self._queue

    # --- the cache ---------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self.cache.get(kind, {}).get(Key(kind, namespace, name))

    def objects(self, kind: str) -> list[KubeObject]:
        return list(self.cache.get(kind, {}).values())

    def handles(self, kind: str) -> bool:
        return kind in self.reconcilers

    def enqueue(self, key: Key, after: float = 0.0) -> None:
        self.queue.add_after(key, after) if after > 0 else self.queue.add(key)

    def remember(self, obj: KubeObject) -> None:
        """Put an object just written by a reconciler into the cache, so triggers fire and
        the next reconcile reads it before the watch catches up."""
        self._observe("MODIFIED", obj)

    # --- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        tasks = [
            asyncio.create_task(self._watch(r.kind), name=f"watch {r.kind.kind}")
            for r in self.reconcilers.values()
        ]
        tasks += [
            asyncio.create_task(self._work(), name=f"worker {i}") for i in range(self.concurrency)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.queue.close()

    async def wait_synced(self) -> None:
        for event in self.synced.values():
            await event.wait()

    async def _watch(self, kind: Kind) -> None:
        seen_initial = False
        async for event, obj in self.cluster.watch(kind, namespace=self.namespace):
            self._observe(event, obj)
            if not seen_initial and event != "ADDED":
                seen_initial = True
            # A watch opens with the current objects; the first other event, or a quiet
            # moment after them, means the cache has caught up.
            if not self.synced[kind.kind].is_set():
                asyncio.get_running_loop().call_later(0.2, self.synced[kind.kind].set)
        self.synced[kind.kind].set()

    def _observe(self, event: str, obj: KubeObject) -> None:
        key = key_of(obj)
        cache = self.cache.setdefault(key.kind, {})
        old = cache.get(key)
        if event == "DELETED":
            cache.pop(key, None)
            new: KubeObject | None = None
        else:
            if old is not None and _rv(old) > _rv(obj):
                return  # an older copy than the one a reconciler already recorded
            cache[key] = obj
            new = obj
        # A reconciler's own write counts as well as the watch: the object it gets back may
        # carry a change made meanwhile (a new generation, a requestedAt), and once that
        # copy is cached the watch's event for the change compares equal and queues nothing.
        if key.kind in self.reconcilers and _wants_reconcile(event, old, new):
            self.queue.add(key)
        for reconciler in self.reconcilers.values():
            for other in reconciler.triggers(key.kind, old, new):
                self.queue.add(other)

    async def _work(self) -> None:
        queue = self.queue
        while True:
            key = await queue.get()
            try:
                await self._handle(key)
            finally:
                queue.done(key)

    async def _handle(self, key: Key) -> None:
        obj = self.get(key.kind, key.namespace, key.name)
        reconciler = self.reconcilers.get(key.kind)
        if obj is None or reconciler is None:
            self.queue.forget(key)
            return
        started = time.monotonic()
        try:
            result = await reconciler.reconcile(obj)
        except asyncio.CancelledError:
            raise
        except ClusterError as exc:
            # Typically the API server gone while the reconciler wrote its status: the
            # message says it all, and the retry backs off until the server is back.
            log.error("reconcile of %s failed: %s", key, exc)
            result = Result(requeue_after=60.0, failed=True)
        except Exception:
            log.exception("reconcile of %s failed unexpectedly", key)
            result = Result(requeue_after=60.0, failed=True)
        self._durations.append((key, time.monotonic() - started))
        if result.failed:
            ceiling = result.requeue_after if result.requeue_after is not None else 60.0
            self.queue.add_after(key, self.queue.backoff(key, ceiling))
        else:
            self.queue.forget(key)
            if result.requeue_after is not None:
                self.queue.add_after(key, result.requeue_after)


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _wants_reconcile(
    event: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> bool:
    if new is None:
        return False
    if old is None or event == "ADDED":
        return True
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old_meta.get("generation") != new_meta.get("generation")
        or (old_meta.get("annotations") or {}).get(REQUESTED_AT)
        != (new_meta.get("annotations") or {}).get(REQUESTED_AT)
        or (bool(new_meta.get("deletionTimestamp")) and not old_meta.get("deletionTimestamp"))
    )
