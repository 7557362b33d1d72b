"""What every reconciler shares: the cluster, the manager's cache, events, metrics, and the
status and finalizer bookkeeping they all do the same way."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gitmoor.api.meta import LocalObjectReference, Resource
from gitmoor.api.registry import parse_resource
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.manager import REQUESTED_AT, Key, Manager
from gitmoor.errors import InputError, Location
from gitmoor.manifests import KubeObject
from gitmoor.observe.events import EventRecorder
from gitmoor.observe.logs import reconcile_log
from gitmoor.observe.metrics import Metrics
from gitmoor.source.artifacts import ArtifactStore

FINALIZER = "finalizers.fluxcd.io"

R = TypeVar("R", bound=Resource)

log = logging.getLogger("gitmoor.controllers")


@dataclass
class Context:
    cluster: Cluster
    manager: Manager
    store: ArtifactStore
    metrics: Metrics = field(default_factory=Metrics)
    dependency_requeue: float = 10.0
    """Seconds before a Kustomization whose dependencies are not Ready looks again (a
    dependency turning Ready queues it at once anyway)."""
    _recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def recorder(self, controller: str) -> EventRecorder:
        if controller not in self._recorders:
            self._recorders[controller] = EventRecorder(self.cluster, controller=controller)
        return self._recorders[controller]

    async def write_status(self, obj: Mapping[str, Any], status: Mapping[str, Any]) -> KubeObject:
        """Patch the status and put the written object into the cache at once."""
        written = await self.cluster.patch_status(obj, status)
        self.manager.remember(written)
        return written

    async def ensure_finalizer(self, obj: KubeObject) -> KubeObject:
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if FINALIZER in finalizers:
            return obj
        written = await self.cluster.patch(
            obj,
            {"metadata": {"finalizers": [*finalizers, FINALIZER],
                          "resourceVersion": obj["metadata"].get("resourceVersion")}},
        )  # fmt: skip
        self.manager.remember(written)
        return written

    async def drop_finalizer(self, obj: KubeObject) -> None:
        finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
        if FINALIZER in finalizers:
            finalizers.remove(FINALIZER)
            await self.cluster.patch(obj, {"metadata": {"finalizers": finalizers}})

    async def referenced_secret(
        self, model: Resource, ref: LocalObjectReference | None, field: str
    ) -> dict[str, bytes] | None:
        """The decoded ``data`` of the Secret that ``ref`` (the spec's ``field``) names in
        the model's namespace; None without a reference, InputError naming the field when
        the Secret is missing."""
        if ref is None:
            return None
        secret = await self.cluster.get("v1", "Secret", ref.name, model.namespace)
        if secret is None:
            raise InputError(f"secret '{model.namespace}/{ref.name}' not found",
                             Location(object=model.display, field=field))  # fmt: skip
        return secret_bytes(secret)

    async def opening(self, obj: KubeObject, model_type: type[R], *, revision: str) -> R | None:
        """The first steps of a source's reconcile: an object being deleted loses its
        finalizer, a spec that does not parse stalls (nothing to retry until it changes), a
        suspended object is left alone. The parsed model to go on with, or None when the
        reconcile ends here."""
        meta = obj["metadata"]
        if deleting(obj):
            await self.drop_finalizer(obj)
            self.metrics.forget(str(obj.get("kind")), meta.get("namespace", ""), meta["name"])
            return None
        try:
            model = parse_resource(obj)
        except InputError as exc:
            invalid = with_stalled(obj, conditions.INVALID_SPEC, str(exc))
            await self.write_status(obj, invalid)
            return None
        assert isinstance(model, model_type)
        if suspended(obj):
            self.finished(obj, started=time.monotonic(), revision=revision,
                          ready=ready_status(obj), result="suspended")  # fmt: skip
            return None
        return model

    def finished(
        self,
        obj: Mapping[str, Any],
        *,
        started: float,
        revision: str,
        ready: str,
        source_name: str = "",
        error: BaseException | None = None,
        result: str | None = None,
    ) -> None:
        """Metrics and the log line at the end of a reconcile."""
        meta = obj.get("metadata") or {}
        kind, namespace, name = str(obj.get("kind")), meta.get("namespace", ""), meta["name"]
        seconds = time.monotonic() - started
        self.metrics.observe_reconcile(kind, namespace, name, seconds)
        self.metrics.set_resource_info(
            kind, namespace, name, ready=ready, suspended=suspended(obj),
            revision=revision, source_name=source_name,
        )  # fmt: skip
        outcome = result or ("succeeded" if ready == "True" else "failed")
        reconcile_log(
            log, kind=kind, namespace=namespace, name=name, revision=revision,
            duration=seconds, result=outcome, error=error,
        )  # fmt: skip


def suspended(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("suspend"))


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def base_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields every reconcile writes: the generation it saw and the
    reconcile request it handled."""
    meta = obj.get("metadata") or {}
    status: dict[str, Any] = {"observedGeneration": meta.get("generation")}
    requested = (meta.get("annotations") or {}).get(REQUESTED_AT)
    if requested:
        status["lastHandledReconcileAt"] = requested
    return status


def with_ready(
    obj: Mapping[str, Any], ready: bool, reason: str, message: str, **others: Any
) -> dict[str, Any]:
    """A status with Ready set (and Reconciling/Stalled cleared on success, Reconciling
    set with ProgressingWithRetry on failure, as Flux shows a retry under way)."""
    generation = (obj.get("metadata") or {}).get("generation")
    current = (obj.get("status") or {}).get("conditions") or []
    updated = conditions.set_condition(current, conditions.READY, ready, reason, message,
                                       generation=generation)  # fmt: skip
    updated = conditions.remove(updated, conditions.STALLED)
    if ready:
        updated = conditions.remove(updated, conditions.RECONCILING)
    else:
        updated = conditions.set_condition(
            updated, conditions.RECONCILING, True, conditions.PROGRESSING_WITH_RETRY,
            message, generation=generation,
        )  # fmt: skip
    return {**base_status(obj), **others, "conditions": updated}


def with_stalled(obj: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """A status for a failure retrying cannot mend until the object changes."""
    generation = (obj.get("metadata") or {}).get("generation")
    status = with_ready(obj, False, reason, message)
    status["conditions"] = conditions.set_condition(
        conditions.remove(status["conditions"], conditions.RECONCILING),
        conditions.STALLED, True, reason, message, generation=generation,
    )  # fmt: skip
    return status


def ready_status(obj: Mapping[str, Any]) -> str:
    """The status of the object's Ready condition: True, False or Unknown."""
    found = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
    return str(found.get("status")) if found else "Unknown"


def dependencies(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(namespace, name)`` of each ``spec.dependsOn`` entry (namespace defaulted)."""
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    return [
        (d.get("namespace") or namespace, d.get("name", ""))
        for d in (obj.get("spec") or {}).get("dependsOn") or []
    ]


def ready_at_latest(obj: Mapping[str, Any]) -> bool:
    """Ready True for the object's latest generation."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    return status.get("observedGeneration") == generation and conditions.is_true(obj)


class Reconciling:
    """What the reconcilers share: the context, and no objects to queue when other kinds
    change (a reconciler that depends on another kind says so in its own ``triggers``)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        return ()


def secret_bytes(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's ``data``, base64-decoded."""
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
