"""Kubernetes Events about the objects gitmoor reconciles, written as Flux writes them.

Flux records core/v1 Events through client-go's legacy recorder; so does this module, field
for field: the involved object's reference, ``source.component`` and ``reportingComponent``
(client-go's ReportingController) naming the controller, ``firstTimestamp``,
``lastTimestamp`` and ``count``; ``eventTime`` left unset, as the legacy recorder leaves it
(which also spares messages the 1 KiB limit the API server puts on events that set it);
names ``<object name>.<hex unix nanoseconds>``.

Repeats are folded the way client-go's correlator folds them: an event identical to one
already written (same involved object, type, reason and message) bumps ``count`` and
``lastTimestamp`` of that Event instead of creating another. The recorder remembers the last
4096 distinct events; once the API server has expired an Event (an hour by default), the
next repeat creates a new one.

Messages and annotations go to the cluster verbatim: callers must never put secret values in
them (name the Secret and the key instead).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gitmoor.api.registry import split_api_version
from gitmoor.cluster import Cluster, describe
from gitmoor.errors import ClusterError

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

# client-go's maxLruCacheEntries: how many distinct events the correlator remembers.
REMEMBERED_EVENTS = 4096


def revision_annotation(obj: Mapping[str, Any], revision: str) -> dict[str, str]:
    """Flux's revision annotation for an event about ``obj``: ``<api group>/revision``."""
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    return {f"{group}/revision": revision}


@dataclass
class _Written:
    """An Event already in the cluster that repeats of it are folded into."""

    namespace: str
    name: str
    count: int


def _timestamp(nanos: int) -> str:
    """metav1.Time as it goes over the wire: RFC 3339 in UTC, whole seconds."""
    return datetime.fromtimestamp(nanos // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reference(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    fields = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {key: str(value) for key, value in fields.items() if value}


class EventRecorder:
    """Writes core/v1 Events on behalf of one controller (``kustomize-controller`` ...)."""

    def __init__(self, cluster: Cluster, *, controller: str) -> None:
        self.cluster = cluster
        self.controller = controller
        # client-go fills reportingInstance from source.host; the host name is what tells
        # two gitmoor replicas apart (a Pod's host name is its name).
        self.instance = socket.gethostname()
        self._written: OrderedDict[tuple[str, ...], _Written] = OrderedDict()

    async def record(
        self,
        obj: Mapping[str, Any],
        *,
        type: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Record an event about ``obj``; a failure is logged and dropped, never raised.

        ``annotations`` (Flux's ``<group>/revision`` ...) go onto a new Event as they are.
        """
        try:
            await self._record(obj, type, reason, message, annotations or {})
        except ClusterError as exc:
            log.warning("event %s about %s dropped: %s", reason, describe(obj), exc)
        except Exception:
            # A bug here must still not fail the reconcile that reported the event.
            log.warning("event %s about %s dropped", reason, describe(obj), exc_info=True)

    async def _record(
        self,
        obj: Mapping[str, Any],
        type_: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str],
    ) -> None:
        involved = _reference(obj)
        # client-go's correlation key; resourceVersion is left out, as there, since every
        # status update changes it.
        key = (
            *(involved.get(f, "") for f in ("kind", "namespace", "name", "uid", "apiVersion")),
            type_,
            reason,
            message,
        )
        now = time.time_ns()
        # No lock: the key names one object, and no two reconciles of one object run at
        # once, so two records of the same key never interleave.
        written = self._written.get(key)
        if written is not None:
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": written.name, "namespace": written.namespace},
            }
            change = {"count": written.count + 1, "lastTimestamp": _timestamp(now)}
            try:
                await self.cluster.patch(event, change)
            except ClusterError as exc:
                if exc.code != 404:
                    raise
                # Expired on the server: this occurrence starts a new Event.
                del self._written[key]
            else:
                written.count += 1
                self._written.move_to_end(key)
                return
        created = await self.cluster.create(
            self._event(involved, type_, reason, message, annotations, now)
        )
        meta = created["metadata"]
        self._written[key] = _Written(meta["namespace"], meta["name"], 1)
        if len(self._written) > REMEMBERED_EVENTS:
            self._written.popitem(last=False)

    def _event(
        self,
        involved: Mapping[str, str],
        type_: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str],
        nanos: int,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": f"{involved.get('name', '')}.{nanos:x}",
            # Events about cluster-scoped objects live in "default", as client-go puts them.
            "namespace": involved.get("namespace") or "default",
        }
        if annotations:
            metadata["annotations"] = dict(annotations)
        stamp = _timestamp(nanos)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": dict(involved),
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.controller, "host": self.instance},
            # client-go's ReportingController; its JSON name is reportingComponent.
            "reportingComponent": self.controller,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
