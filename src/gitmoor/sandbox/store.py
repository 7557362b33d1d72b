"""The sandbox's storage: objects in SQLite, one cluster-wide resourceVersion, watch.

Kubernetes semantics ("API Concepts"), as clients see them:

- Every write is one transaction and takes the next value of a single counter, stored with
  the data, so after a restart resourceVersions go on from where they were. The object
  carries it as ``metadata.resourceVersion`` (a string). A write that changes nothing (an
  update to an identical object) is not a write: no new resourceVersion, no event, as etcd3
  storage behaves. A delete gets a resourceVersion of its own; the deleted object is
  returned, and sent to watchers, with it.
- Every write appends an event (rv, type, key, object, previous object) to a log that keeps
  the last ``event_window`` events. Events older than the log are compacted: a watch from
  an older resourceVersion, or a continue token of an older list, is 410 Gone (Expired).
- ``list`` returns objects in etcd's key order (namespace/name, bytewise). With ``limit``
  it returns a continue token (base64 JSON of the list's resourceVersion and the last
  key). Later pages are a consistent snapshot at the first page's resourceVersion, as the
  apiserver serves them from etcd: they are read from the current objects with the
  changes logged since then undone. ``remaining`` is the number of objects after the page
  in that snapshot; like remainingItemCount it is only given when no selector filters.
- ``watch`` replays logged events after ``since_rv``, then live ones. With ``since_rv``
  None or "0" it first sends the current objects as ADDED (the apiserver's "start at most
  recent"/"start at any"; both start at the current resourceVersion here). A watch with
  selectors sees an object that stops matching as DELETED (its previous state at the
  event's resourceVersion) and one that starts matching as ADDED, as the apiserver's
  watch cache sends them. ``send_initial_events=True`` sends the current objects, then a
  BOOKMARK annotated ``k8s.io/initial-events-end`` (the watch-list protocol; the
  bookmark object has only metadata: the server adds kind and apiVersion). A
  resourceVersion newer than the store's is refused at once (504, ResourceVersionTooLarge)
  where the apiserver first waits up to 3 seconds for it.

Writes may come from any thread. Watchers are fed in memory: a write appends its event to
the queue of each watcher of that resource and wakes each event loop with one
``call_soon_threadsafe`` however many of its watchers are waiting (and not again until the
loop has run it); nothing is re-read from the database per watcher, and each watcher
decodes only the events it passes on. One Store owns its file: two processes must not open
the same one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import heapq
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gitmoor.sandbox.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    gone,
    invalid,
    not_found,
)
from gitmoor.sandbox.selectors import FieldSelector, LabelSelector

KubeObject = dict[str, Any]

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    rv INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, rv, compacted) VALUES (0, 0, 0);
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL,
    resource TEXT NOT NULL,
    path TEXT NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (grp, resource, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    grp TEXT NOT NULL,
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    path TEXT NOT NULL,
    object TEXT NOT NULL,
    prev TEXT
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (grp, resource, rv);
"""
# meta.rv: the last resourceVersion handed out; meta.compacted: events up to it are gone.
# events.object: the object after the write; for DELETED the object as it was when deleted.
# events.prev: the object before a MODIFIED write.

_CONFLICT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
_CONTINUE_VERSION = "meta.k8s.io/v1"
_UINT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Key:
    group: str
    resource: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @property
    def path(self) -> str:
        """Where etcd would sort the object among its resource's: namespace/name."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class ListResult:
    items: list[KubeObject]
    resource_version: str
    continue_token: str | None
    remaining: int | None


class _Event:
    """One logged write, shared by every watcher it is offered to; each watcher hands its
    consumer a copy decoded from the JSON."""

    __slots__ = ("_object", "_prev", "namespace", "object_json", "prev_json", "rv", "type")

    def __init__(
        self,
        rv: int,
        type: str,
        namespace: str,
        object_json: str,
        prev_json: str | None,
        *,
        obj: KubeObject | None = None,
        prev: KubeObject | None = None,
    ) -> None:
        self.rv = rv
        self.type = type
        self.namespace = namespace
        self.object_json = object_json
        self.prev_json = prev_json
        self._object = obj
        self._prev = prev

    def object(self) -> KubeObject:
        """The decoded object, read-only, for selector matching."""
        if self._object is None:
            self._object = json.loads(self.object_json)
        return self._object

    def previous(self) -> KubeObject:
        if self._prev is None:
            self._prev = json.loads(self.prev_json or "{}")
        return self._prev


def _selected(obj: KubeObject, labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
    if labels is not None and not labels.matches(obj.get("metadata", {}).get("labels") or {}):
        return False
    return fields is None or fields.matches(obj)


def _encode(obj: KubeObject) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _with_rv(text: str, rv: int) -> KubeObject:
    obj: KubeObject = json.loads(text)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return obj


class Store:
    """Objects, resourceVersions and watches in one SQLite file (WAL mode)."""

    def __init__(self, path: Path, *, event_window: int = 10_000) -> None:
        if event_window < 1:
            raise ValueError("event_window must be at least 1")
        self._window = event_window
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Durable when the process dies; a power cut may lose the last writes (a sandbox).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT rv, compacted FROM meta WHERE id = 0").fetchone()
        self._rv: int = row[0]
        self._compacted: int = row[1]
        # _lock: the connection and the counter. _watch_lock (taken inside _lock, never the
        # other way round): the watcher registry and queues, held only briefly so that an
        # event loop never waits for a database read.
        self._lock = threading.Lock()
        self._watch_lock = threading.Lock()
        self._watchers: dict[tuple[str, str], set[Watch]] = {}
        self._hubs: dict[asyncio.AbstractEventLoop, _Hub] = {}
        self._dispatched = self._rv

    def close(self) -> None:
        with self._watch_lock:
            watches = [w for ws in self._watchers.values() for w in ws]
        for watch in watches:
            watch.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def current_rv(self) -> int:
        with self._lock:
            return self._rv

    # -- objects -----------------------------------------------------------------------

    def get(self, key: Key) -> KubeObject | None:
        with self._lock:
            text = self._read(key)
        return None if text is None else json.loads(text)

    def create(self, key: Key, obj: KubeObject) -> KubeObject:
        """Store a new object; returns it with its resourceVersion. 409 AlreadyExists."""
        with self._lock:
            if self._read(key) is not None:
                raise already_exists(key.group, key.resource, key.name)
            return self._put(key, ADDED, obj, None, None)

    def update(self, key: Key, obj: KubeObject, *, expected_rv: str | None) -> KubeObject:
        """Replace an object; ``expected_rv`` (if not None or "") must be its current
        resourceVersion, else 409 Conflict. 404 if there is none."""
        with self._lock:
            live_text = self._live(key, expected_rv)
            live: KubeObject = json.loads(live_text)
            candidate = {**obj, "metadata": {**(obj.get("metadata") or {})}}
            candidate["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            if candidate == live:
                return live
            return self._put(key, MODIFIED, obj, live_text, live)

    def delete(self, key: Key, *, expected_rv: str | None = None) -> KubeObject:
        """Remove an object; returns its last state at the deletion's resourceVersion."""
        with self._lock:
            return self._remove(key, self._live(key, expected_rv))

    def _read(self, key: Key) -> str | None:
        row = self._db.execute(
            "SELECT object FROM objects WHERE grp = ? AND resource = ? AND path = ?",
            (key.group, key.resource, key.path),
        ).fetchone()
        return None if row is None else str(row[0])

    def _live(self, key: Key, expected_rv: str | None) -> str:
        text = self._read(key)
        if text is None:
            raise not_found(key.group, key.resource, key.name)
        if expected_rv:
            actual = json.loads(text)["metadata"]["resourceVersion"]
            if expected_rv != actual:
                raise conflict(key.group, key.resource, key.name, _CONFLICT)
        return text

    def _put(
        self, key: Key, kind: str, obj: KubeObject, prev_text: str | None, prev: KubeObject | None
    ) -> KubeObject:
        rv = self._rv + 1
        stored = {**obj, "metadata": {**(obj.get("metadata") or {})}}
        stored["metadata"]["resourceVersion"] = str(rv)
        text = _encode(stored)
        # Decoded lazily from the JSON: ``obj`` stays the caller's to change.
        event = _Event(rv, kind, key.namespace, text, prev_text, prev=prev)
        statement = (
            "INSERT OR REPLACE INTO objects (grp, resource, path, object) VALUES (?, ?, ?, ?)"
        )
        return self._commit(key, event, statement, (key.group, key.resource, key.path, text))

    def _remove(self, key: Key, live_text: str) -> KubeObject:
        event = _Event(self._rv + 1, DELETED, key.namespace, live_text, None)
        statement = "DELETE FROM objects WHERE grp = ? AND resource = ? AND path = ?"
        return self._commit(key, event, statement, (key.group, key.resource, key.path))

    def _commit(self, key: Key, event: _Event, statement: str, args: tuple[str, ...]) -> KubeObject:
        """Write the object change, log ``event``, trim the log: one transaction."""
        rv = event.rv
        compacted = max(self._compacted, rv - self._window)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(statement, args)
            db.execute(
                "INSERT INTO events (rv, type, grp, resource, namespace, path, object, prev) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rv,
                    event.type,
                    key.group,
                    key.resource,
                    key.namespace,
                    key.path,
                    event.object_json,
                    event.prev_json,
                ),
            )
            if compacted > self._compacted:
                db.execute("DELETE FROM events WHERE rv <= ?", (compacted,))
            db.execute("UPDATE meta SET rv = ?, compacted = ? WHERE id = 0", (rv, compacted))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._rv, self._compacted = rv, compacted
        # Still under _lock: watchers get events in resourceVersion order.
        self._dispatch(key.group, key.resource, event)
        return _with_rv(event.object_json, rv)

    # -- list --------------------------------------------------------------------------

    def list(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Objects of a resource (in ``namespace``, or all when None or ""), in key order."""
        labels = None if labels is None or labels.empty else labels
        fields = None if fields is None or fields.empty else fields
        with self._lock:
            if continue_token:
                at_rv, after = self._decode_continue(continue_token)
            else:
                at_rv, after = self._rv, ""
            snapshot = _Snapshot(self._db, group, resource, namespace or None, after, at_rv)
            items: list[KubeObject] = []
            last = None
            for path, text in snapshot.rows():
                obj: KubeObject = json.loads(text)
                if _selected(obj, labels, fields):
                    items.append(obj)
                last = path
                if limit is not None and 0 < limit <= len(items):
                    break
            else:
                return ListResult(items, str(at_rv), None, None)
            assert last is not None
            remaining = snapshot.count_after(last)
        if not remaining:
            return ListResult(items, str(at_rv), None, None)
        token = base64.urlsafe_b64encode(
            json.dumps({"v": _CONTINUE_VERSION, "rv": at_rv, "start": last}).encode()
        )
        return ListResult(
            items,
            str(at_rv),
            token.decode().rstrip("="),
            remaining if labels is None and fields is None else None,
        )

    def _decode_continue(self, token: str) -> tuple[int, str]:
        def invalid_token(why: str) -> ApiError:
            return bad_request(f"invalid continue token: continue key is not valid: {why}")

        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError) as err:
            raise invalid_token(str(err)) from None
        if not isinstance(data, dict) or data.get("v") != _CONTINUE_VERSION:
            raise invalid_token("server does not recognize this encoded version")
        rv, start = data.get("rv"), data.get("start")
        if not isinstance(rv, int) or not 0 < rv <= self._rv or not isinstance(start, str):
            raise invalid_token(
                f"incorrect encoded start resourceVersion (version {_CONTINUE_VERSION})"
            )
        if rv < self._compacted:
            raise gone(_CONTINUE_EXPIRED)
        return rv, start

    # -- watch -------------------------------------------------------------------------

    def watch(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        *,
        since_rv: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        send_initial_events: bool | None = None,
    ) -> Watch:
        """Events of a resource (in ``namespace``, or all when None or ""), see the module
        docstring. May be called from any thread; the Watch binds to the event loop it is
        first iterated on."""
        namespace = namespace or None
        with self._lock:
            start = None if since_rv in (None, "", "0") else _parse_rv(since_rv, group, resource)
            if start is not None and start > self._rv:
                raise _too_large(start, self._rv)
            initial = start is None if send_initial_events is None else send_initial_events
            events: list[_Event] = []
            if initial:
                snapshot = _Snapshot(self._db, group, resource, namespace, "", self._rv)
                events = [_Event(self._rv, ADDED, "", text, None) for _, text in snapshot.rows()]
                if send_initial_events:
                    events.append(_Event(self._rv, BOOKMARK, "", "{}", None))
            elif start is not None:
                if start < self._compacted:
                    raise gone(f"too old resource version: {start} ({self._compacted})")
                events = _replay(self._db, group, resource, namespace, start)
            watch = Watch(self, (group, resource), namespace, labels, fields, events)
            with self._watch_lock:
                self._watchers.setdefault((group, resource), set()).add(watch)
        return watch

    def _dispatch(self, group: str, resource: str, event: _Event) -> None:
        with self._watch_lock:
            self._dispatched = event.rv
            for watch in self._watchers.get((group, resource), ()):
                if watch.namespace is not None and watch.namespace != event.namespace:
                    continue
                if watch._offer(event) and watch._hub is not None:
                    self._schedule(watch._hub, watch)

    def _schedule(self, hub: _Hub, watch: Watch) -> None:
        """Mark ``watch`` for waking; one callback per loop however many watches it has.
        Called with _watch_lock held."""
        hub.dirty.add(watch)
        if hub.scheduled:
            return
        try:
            hub.loop.call_soon_threadsafe(hub.wake)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return
        hub.scheduled = True


def _replay(
    db: sqlite3.Connection, group: str, resource: str, namespace: str | None, after: int
) -> list[_Event]:
    sql = (
        "SELECT rv, type, namespace, object, prev FROM events "
        "WHERE grp = ? AND resource = ? AND rv > ?"
    )
    args: tuple[object, ...] = (group, resource, after)
    if namespace is not None:
        sql += " AND namespace = ?"
        args += (namespace,)
    rows = db.execute(sql + " ORDER BY rv", args)
    return [_Event(rv, kind, ns, text, prev) for rv, kind, ns, text, prev in rows]


def _parse_rv(text: str, group: str, resource: str) -> int:
    """A resourceVersion parameter; 422 as the apiserver's versioner refuses others."""
    if _UINT.fullmatch(text) and int(text) < 2**64:
        return int(text)
    why = "value out of range" if _UINT.fullmatch(text) else "invalid syntax"
    message = f'Invalid value: "{text}": strconv.ParseUint: parsing "{text}": {why}'
    cause = {"reason": "FieldValueInvalid", "message": message, "field": "resourceVersion"}
    # The storage layer names the resource where a kind would stand.
    raise invalid(resource, group, "", [cause])


def _too_large(requested: int, current: int) -> ApiError:
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {requested}, current: {current}",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


class _Snapshot:
    """The objects of one resource as they were at ``rv``, in key order, after ``after``:
    the current rows, with the changes logged since ``rv`` undone."""

    def __init__(
        self,
        db: sqlite3.Connection,
        group: str,
        resource: str,
        namespace: str | None,
        after: str,
        rv: int,
    ) -> None:
        self._db = db
        # A namespace's keys lie between "ns/" and "ns0" ("0" follows "/").
        low = after if namespace is None else max(after, f"{namespace}/")
        self._where = "grp = ? AND resource = ? AND path > ?"
        self._args: tuple[object, ...] = (group, resource, low)
        if namespace is not None:
            self._where += " AND path < ?"
            self._args += (f"{namespace}0",)
        self.past: dict[str, str | None] = {}  # path → its JSON at rv (None: absent)
        self.exists_now: dict[str, bool] = {}
        changes = db.execute(
            f"SELECT path, type, object, prev FROM events WHERE {self._where} AND rv > ? "
            "ORDER BY rv",
            (*self._args, rv),
        )
        for path, kind, text, prev in changes:
            if path not in self.past:
                self.past[path] = None if kind == ADDED else prev if kind == MODIFIED else text
            self.exists_now[path] = kind != DELETED

    def rows(self) -> Iterator[tuple[str, str]]:
        current: Iterable[tuple[str, str]] = self._db.execute(
            f"SELECT path, object FROM objects WHERE {self._where} ORDER BY path", self._args
        )
        unchanged = ((path, text) for path, text in current if path not in self.past)
        restored = sorted((path, text) for path, text in self.past.items() if text is not None)
        return heapq.merge(unchanged, restored)

    def count_after(self, last: str) -> int:
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM objects WHERE {self._where} AND path > ?", (*self._args, last)
        ).fetchone()
        for path, text in self.past.items():
            if path > last:
                count += (text is not None) - self.exists_now[path]
        return int(count)


class _Hub:
    """The watches iterated on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store) -> None:
        self.loop = loop
        self.store = store
        self.members = 0
        self.dirty: set[Watch] = set()
        self.scheduled = False

    def wake(self) -> None:
        with self.store._watch_lock:
            self.scheduled = False
            dirty, self.dirty = self.dirty, set()
        for watch in dirty:
            watch._wakeup.set()


class Watch:
    """An async iterator of ``(type, object)``: ADDED, MODIFIED, DELETED, and BOOKMARK for
    the end of initial events. Each object is the consumer's own copy. The iteration ends
    on ``close()``, when the store closes, or when the consumer falls more than the event
    window behind (the client then resumes from the last resourceVersion it saw, as after
    the apiserver ends a slow watch). Cancelling a pending ``__anext__`` loses nothing."""

    def __init__(
        self,
        store: Store,
        resource: tuple[str, str],
        namespace: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        events: list[_Event],
    ) -> None:
        self._store = store
        self._resource = resource
        self.namespace = namespace
        self._labels = None if labels is None or labels.empty else labels
        self._fields = None if fields is None or fields.empty else fields
        self._pending: collections.deque[_Event] = collections.deque(events)
        self._max_pending = len(events) + store._window
        self._overflowed = False
        self._closed = False
        self._hub: _Hub | None = None
        self._wakeup = asyncio.Event()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> tuple[str, KubeObject]:
        self._bind()
        while True:
            if self._closed:
                raise StopAsyncIteration
            while self._pending:
                out = self._translate(self._pending.popleft())
                if out is not None:
                    return out
            if self._overflowed:
                self.close()
                raise StopAsyncIteration
            self._wakeup.clear()
            if not self._pending and not self._closed:
                await self._wakeup.wait()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def bookmark_rv(self) -> str | None:
        """A resourceVersion to send in a BOOKMARK now: this watch has delivered every
        event up to it. None while events are waiting to be read (read them first)."""
        with self._store._watch_lock:
            if self._pending or self._overflowed:
                return None
            return str(self._store._dispatched)

    def close(self) -> None:
        store = self._store
        with store._watch_lock:
            if self._closed:
                return
            self._closed = True
            watchers = store._watchers.get(self._resource)
            if watchers is not None:
                watchers.discard(self)
                if not watchers:
                    del store._watchers[self._resource]
            hub = self._hub
            if hub is not None:
                hub.members -= 1
                if not hub.members:
                    store._hubs.pop(hub.loop, None)
                store._schedule(hub, self)

    def _bind(self) -> None:
        if self._hub is not None:
            return
        loop = asyncio.get_running_loop()
        store = self._store
        with store._watch_lock:
            if self._closed:
                return
            hub = store._hubs.get(loop)
            if hub is None:
                hub = store._hubs[loop] = _Hub(loop, store)
            hub.members += 1
            self._hub = hub

    def _offer(self, event: _Event) -> bool:
        """Queue a live event (with _watch_lock held); whether to wake the consumer."""
        if self._closed or self._overflowed:
            return False
        if len(self._pending) >= self._max_pending:
            self._overflowed = True
        else:
            self._pending.append(event)
        return True

    def _translate(self, event: _Event) -> tuple[str, KubeObject] | None:
        """What this watcher's client sees of ``event``, if anything."""
        if event.type == BOOKMARK:
            metadata = {
                "resourceVersion": str(event.rv),
                "annotations": {INITIAL_EVENTS_END: "true"},
            }
            return BOOKMARK, {"metadata": metadata}
        if self._labels is None and self._fields is None:
            if event.type == DELETED:
                return DELETED, _with_rv(event.object_json, event.rv)
            return event.type, json.loads(event.object_json)
        now = _selected(event.object(), self._labels, self._fields)
        if event.type != MODIFIED:
            if not now:
                return None
            if event.type == DELETED:
                return DELETED, _with_rv(event.object_json, event.rv)
            return event.type, json.loads(event.object_json)
        before = _selected(event.previous(), self._labels, self._fields)
        if now:
            return (MODIFIED if before else ADDED), json.loads(event.object_json)
        if before:
            return DELETED, _with_rv(event.prev_json or "{}", event.rv)
        return None
