"""Watch-fed caches and a work queue: what the sandbox's controllers run on.

An :class:`Informer` keeps a cache of one resource current from the store's watch, as
client-go's informers do: it lists and watches at once (the watch-list protocol: initial
ADDED events, then a bookmark), resumes from the last resourceVersion when a watch ends,
lists again when that resourceVersion is too old (410 Gone) and reports as DELETED what
vanished meanwhile. Events older than what the cache holds (a controller records its own
writes at once) are dropped, so the cache never goes back in time.

Controllers take keys from a :class:`gitmoor.workqueue.WorkQueue`: they react to events
and deadlines, never by polling every object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.store import BOOKMARK, DELETED, Store
from gitmoor.workqueue import WorkQueue

KubeObject = dict[str, Any]
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
T = TypeVar("T")
Item = TypeVar("Item")

log = logging.getLogger(__name__)

# After a watch ends without a single event (the store closing, say), wait this long
# before watching again rather than spin.
_RETRY_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class OwnerRef:
    uid: str
    api_version: str
    kind: str
    name: str
    controller: bool
    block_owner_deletion: bool


def owner_refs(obj: KubeObject) -> tuple[OwnerRef, ...]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return tuple(
        OwnerRef(
            uid=str(ref.get("uid", "")),
            api_version=str(ref.get("apiVersion", "")),
            kind=str(ref.get("kind", "")),
            name=str(ref.get("name", "")),
            controller=bool(ref.get("controller")),
            block_owner_deletion=bool(ref.get("blockOwnerDeletion")),
        )
        for ref in refs
        if isinstance(ref, dict) and ref.get("uid")
    )


def object_key(obj: KubeObject) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: KubeObject) -> int:
    value = (obj.get("metadata") or {}).get("resourceVersion") or "0"
    return int(value) if str(value).isdigit() else 0


class Informer(Generic[T]):
    """A cache of one resource's objects, each kept as ``keep(object)``, with an index of
    dependents by owner uid. ``on_event(type, key, value)`` is called for every change
    (type ADDED, MODIFIED or DELETED; for DELETED ``value`` is the last state); it must
    not block."""

    def __init__(
        self,
        store: Store,
        group: str,
        resource: str,
        *,
        keep: Callable[[KubeObject], T],
        on_event: Callable[[str, ObjectKey, T], None],
    ) -> None:
        self.group = group
        self.resource = resource
        self.items: dict[ObjectKey, T] = {}
        self.synced = asyncio.Event()
        self._store = store
        self._keep = keep
        self._on_event = on_event
        # The resourceVersion of each cached object, and of recent deletions (tombstones),
        # to drop events older than what the cache holds.
        self._versions: dict[ObjectKey, int] = {}
        self._owners: dict[ObjectKey, tuple[str, ...]] = {}
        self._by_owner: dict[str, set[ObjectKey]] = {}

    def get(self, key: ObjectKey) -> T | None:
        return self.items.get(key)

    def dependents(self, owner_uid: str) -> set[ObjectKey]:
        """Keys of the cached objects that name ``owner_uid`` in their ownerReferences."""
        return self._by_owner.get(owner_uid, set())

    def owned(self, owner_uid: str) -> Iterator[tuple[ObjectKey, T]]:
        for key in sorted(self.dependents(owner_uid)):
            value = self.items.get(key)
            if value is not None:
                yield key, value

    def record(self, obj: KubeObject) -> None:
        """A write's result, cached at once so the next reconcile sees it; its watch
        event still follows."""
        key = object_key(obj)
        if _rv(obj) >= self._versions.get(key, 0):
            self._put(key, obj)

    def forget(self, obj: KubeObject) -> None:
        """A deleted object (as the delete returned it, at the deletion's version)."""
        key = object_key(obj)
        if _rv(obj) >= self._versions.get(key, 0):
            self._drop(key)
            self._versions[key] = _rv(obj)

    async def run(self) -> None:
        """Keep the cache current until cancelled."""
        since: str | None = None
        while True:
            try:
                watch = self._store.watch(
                    self.group, self.resource, None, since_rv=since,
                    send_initial_events=since is None,
                )  # fmt: skip
            except ApiError as exc:
                if exc.code != 410:
                    raise
                since = None  # too old: list again
                continue
            seen: set[ObjectKey] | None = set() if since is None else None
            delivered = False
            async with watch:
                async for event_type, obj in watch:
                    delivered = True
                    if event_type == BOOKMARK:
                        since = (obj.get("metadata") or {}).get("resourceVersion") or since
                        if seen is not None:
                            self._vanished(seen)
                            seen = None
                        self.synced.set()
                        continue
                    if seen is not None:
                        seen.add(object_key(obj))
                    else:
                        since = str(_rv(obj))
                    self._event(event_type, obj)
            if not delivered:
                await asyncio.sleep(_RETRY_SECONDS)

    def _event(self, event_type: str, obj: KubeObject) -> None:
        key = object_key(obj)
        rv = _rv(obj)
        if rv < self._versions.get(key, 0):
            return
        if event_type == DELETED:
            last = self.items.get(key)
            self._drop(key)
            self._versions.pop(key, None)
            self._on_event(DELETED, key, self._keep(obj) if last is None else last)
            return
        value = self._put(key, obj)
        self._on_event(event_type, key, value)

    def _vanished(self, seen: set[ObjectKey]) -> None:
        """After a new list: what the cache holds and the list did not have was deleted."""
        for key in [k for k in self.items if k not in seen]:
            last = self.items[key]
            self._drop(key)
            self._versions.pop(key, None)
            self._on_event(DELETED, key, last)

    def _put(self, key: ObjectKey, obj: KubeObject) -> T:
        value = self._keep(obj)
        self.items[key] = value
        self._versions[key] = _rv(obj)
        owners = tuple(ref.uid for ref in owner_refs(obj))
        before = self._owners.get(key, ())
        if owners != before:
            self._unindex(key, before)
            for uid in owners:
                self._by_owner.setdefault(uid, set()).add(key)
            if owners:
                self._owners[key] = owners
            else:
                self._owners.pop(key, None)
        return value

    def _drop(self, key: ObjectKey) -> None:
        self.items.pop(key, None)
        self._unindex(key, self._owners.pop(key, ()))

    def _unindex(self, key: ObjectKey, owners: tuple[str, ...]) -> None:
        for uid in owners:
            keys = self._by_owner.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[uid]


async def process(
    queue: WorkQueue[Item],
    handle: Callable[[Item], float | None],
    *,
    conflict_retry: float = 0.05,
) -> None:
    """Take items from ``queue`` and ``handle`` them until cancelled. ``handle`` returns
    seconds after which to look at the item again, or None. A 409 Conflict queues the
    item again soon (someone else wrote first: the next look sees their write); 404 means
    the object went away meanwhile; other errors are logged and the item dropped (an
    event about the object brings it back)."""
    try:
        while True:
            item = await queue.get()
            try:
                again = handle(item)
            except ApiError as exc:
                if exc.reason == "Conflict":
                    queue.add_after(item, conflict_retry)
                elif exc.code == 403:  # a namespace being deleted takes nothing new
                    log.debug("sandbox controller: %s: %s", item, exc.message)
                elif exc.code != 404:
                    log.warning("sandbox controller: %s: %s", item, exc.message)
            except Exception:
                log.exception("sandbox controller: %s failed", item)
            else:
                if again is not None:
                    queue.add_after(item, again)
            finally:
                queue.done(item)
            # Writes are synchronous: let the API serve requests between items.
            await asyncio.sleep(0)
    finally:
        queue.close()


async def synced(informers: list[Informer[Any]]) -> None:
    """Wait until every informer has listed its resource once."""
    for informer in informers:
        await informer.synced.wait()
