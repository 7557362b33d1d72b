"""The health of live objects, by the rules of kstatus (sigs.k8s.io/cli-utils), as Flux uses it.

Pure functions of an object as the API server returns it. The checks run in kstatus's
order: being deleted, then a generation the controller has not observed yet, then the
standard Stalled and Reconciling conditions, then the rules of the built-in kind, and
for any other kind its Ready condition. Flux's own kinds must also have observed their
latest generation and be Ready, since a Flux controller reports a failed reconcile as
Ready False without Reconciling, which kstatus alone would take for Current.

Where the two differ, gitmoor follows Flux rather than upstream kstatus: a Job is only
Current once complete (Flux waits for Jobs), and a LoadBalancer Service only once it has
an address. An object whose fields have the wrong shape is Unknown, never an exception.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Object = Mapping[str, Any]


class Status(enum.StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    status: Status
    message: str


# How bad each status is, for `aggregate`: a failure outweighs everything, an object
# that is missing or unreadable outweighs one that is merely still on its way.
_SEVERITY = {
    Status.CURRENT: 0,
    Status.IN_PROGRESS: 1,
    Status.TERMINATING: 2,
    Status.UNKNOWN: 3,
    Status.NOT_FOUND: 4,
    Status.FAILED: 5,
}
_FLUX_GROUP_SUFFIX = ".toolkit.fluxcd.io"
# The deployment controller's "no progress deadline" (math.MaxInt32).
_NO_DEADLINE = 2**31 - 1


class _MalformedError(Exception):
    """A field of the live object does not have the type the API defines for it."""


def health(obj: Object | None) -> Health:
    """The health of ``obj`` as returned by the API server; None is an object not found."""
    if obj is None:
        return Health(Status.NOT_FOUND, "Resource not found")
    try:
        return _compute(obj)
    except _MalformedError as exc:
        return Health(Status.UNKNOWN, str(exc))


def aggregate(healths: Iterable[tuple[str, Health]]) -> Health:
    """The worst of several (what, health) pairs; its message names the first object in
    that state, as ``"<what>: <message>"``."""
    worst: tuple[str, Health] | None = None
    count = 0
    for what, item in healths:
        count += 1
        if worst is None or _SEVERITY[item.status] > _SEVERITY[worst[1].status]:
            worst = (what, item)
    if worst is None or worst[1].status is Status.CURRENT:
        return Health(Status.CURRENT, f"All {count} resources are Current")
    what, item = worst
    return Health(item.status, f"{what}: {item.message}")


def _compute(obj: Object) -> Health:
    kind = _string(obj, "kind", "")
    group = _string(obj, "apiVersion", "").rpartition("/")[0]
    if _string(obj, "metadata.deletionTimestamp", ""):
        return Health(Status.TERMINATING, "Resource scheduled for deletion")
    generation = _optional_integer(obj, "metadata.generation")
    observed = _optional_integer(obj, "status.observedGeneration")
    if generation is not None and observed is not None and generation != observed:
        return _in_progress(
            f"{kind} generation is {generation}, but latest observed generation is {observed}"
        )
    stalled = _true_condition(obj, "Stalled")
    if stalled is not None:
        return Health(Status.FAILED, _describe(stalled, "Stalled"))
    reconciling = _true_condition(obj, "Reconciling")
    if reconciling is not None:
        return _in_progress(_describe(reconciling, "Reconciling"))
    rule = _RULES.get((group, kind))
    if rule is not None:
        return rule(obj)
    if group.endswith(_FLUX_GROUP_SUFFIX):
        return _flux(obj, kind, generation, observed)
    return _ready(obj, required=False)


# --- the rules of built-in kinds -----------------------------------------------------------


def _deployment(obj: Object) -> Health:
    deadline = _integer(obj, "spec.progressDeadlineSeconds", _NO_DEADLINE)
    # Without a deadline the controller never reports progress, so none is awaited.
    progressing = deadline == _NO_DEADLINE
    available = False
    for condition in _conditions(obj):
        if condition.get("type") == "Progressing":
            if condition.get("reason") == "ProgressDeadlineExceeded":
                return Health(Status.FAILED, "Progress deadline exceeded")
            if _is_true(condition) and condition.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif condition.get("type") == "Available" and _is_true(condition):
            available = True
    wanted = _integer(obj, "spec.replicas", 1)
    replicas = _integer(obj, "status.replicas", 0)
    updated = _integer(obj, "status.updatedReplicas", 0)
    ready = _integer(obj, "status.readyReplicas", 0)
    available_replicas = _integer(obj, "status.availableReplicas", 0)
    if wanted > replicas:
        return _in_progress(f"Replicas: {replicas}/{wanted}")
    if wanted > updated:
        return _in_progress(f"Updated: {updated}/{wanted}")
    if replicas > wanted:
        return _in_progress(f"Pending termination: {replicas - wanted}")
    if updated > available_replicas:
        return _in_progress(f"Available: {available_replicas}/{updated}")
    if wanted > ready:
        return _in_progress(f"Ready: {ready}/{wanted}")
    if not progressing:
        return _in_progress("ReplicaSet not Available")
    if not available:
        return _in_progress("Deployment not Available")
    return Health(Status.CURRENT, f"Deployment is available. Replicas: {replicas}")


def _replicaset(obj: Object) -> Health:
    if _true_condition(obj, "ReplicaFailure") is not None:
        return _in_progress("Replica Failure condition. Check Pods")
    wanted = _integer(obj, "spec.replicas", 1)
    replicas = _integer(obj, "status.replicas", 0)
    labelled = _integer(obj, "status.fullyLabeledReplicas", 0)
    available = _integer(obj, "status.availableReplicas", 0)
    ready = _integer(obj, "status.readyReplicas", 0)
    if wanted > labelled:
        return _in_progress(f"Labelled: {labelled}/{wanted}")
    if wanted > available:
        return _in_progress(f"Available: {available}/{wanted}")
    if wanted > ready:
        return _in_progress(f"Ready: {ready}/{wanted}")
    if replicas > wanted:
        return _in_progress(f"Pending termination: {replicas - wanted}")
    return Health(Status.CURRENT, f"ReplicaSet is available. Replicas: {replicas}")


def _statefulset(obj: Object) -> Health:
    if _string(obj, "spec.updateStrategy.type", "") == "OnDelete":
        # Pods are replaced when someone deletes them: nothing to wait for.
        return Health(Status.CURRENT, "StatefulSet is using the OnDelete update strategy")
    wanted = _integer(obj, "spec.replicas", 1)
    replicas = _integer(obj, "status.replicas", 0)
    ready = _integer(obj, "status.readyReplicas", 0)
    updated = _integer(obj, "status.updatedReplicas", 0)
    partition = _integer(obj, "spec.updateStrategy.rollingUpdate.partition", 0)
    if wanted > replicas:
        return _in_progress(f"Replicas: {replicas}/{wanted}")
    if wanted > ready:
        return _in_progress(f"Ready: {ready}/{wanted}")
    if replicas > wanted:
        return _in_progress(f"Pending termination: {replicas - wanted}")
    # Ordinals below the partition keep the old revision by design.
    to_update = max(wanted - partition, 0)
    if updated < to_update:
        return _in_progress(f"Updated: {updated}/{to_update}")
    if partition > 0:
        return Health(Status.CURRENT, f"Partition rollout complete. Updated: {updated}")
    if _string(obj, "status.currentRevision", "") != _string(obj, "status.updateRevision", ""):
        return _in_progress("Waiting for updated revision to match current")
    return Health(Status.CURRENT, f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemonset(obj: Object) -> Health:
    # Only a controller that has seen the object writes these; until then, wait.
    for path in ("metadata.generation", "status.observedGeneration"):
        if _optional_integer(obj, path) is None:
            return _in_progress(f"DaemonSet {path} not found")
    desired = _optional_integer(obj, "status.desiredNumberScheduled")
    if desired is None:
        return _in_progress("Missing status.desiredNumberScheduled")
    for field, label in (
        ("currentNumberScheduled", "Current"),
        ("updatedNumberScheduled", "Updated"),
        ("numberAvailable", "Available"),
        ("numberReady", "Ready"),
    ):
        count = _integer(obj, f"status.{field}", 0)
        if desired > count:
            return _in_progress(f"{label}: {count}/{desired}")
    return Health(Status.CURRENT, f"All replicas scheduled as expected. Replicas: {desired}")


def _pod(obj: Object) -> Health:
    phase = _string(obj, "status.phase", "")
    if phase == "Succeeded":
        return Health(Status.CURRENT, "Pod has completed successfully")
    if phase == "Failed":
        # As kstatus: a finished pod has nothing left to wait for; its owner judges it.
        return Health(Status.CURRENT, "Pod has completed, but not successfully")
    if phase == "Running":
        if _true_condition(obj, "Ready") is not None:
            return Health(Status.CURRENT, "Pod is Ready")
        crashing = _crash_looping(obj)
        if crashing:
            return Health(Status.FAILED, f"Containers in CrashLoop state: {', '.join(crashing)}")
        return _in_progress("Pod is running but is not Ready")
    if phase == "Pending":
        scheduled = _condition(obj, "PodScheduled")
        if (
            scheduled is not None
            and scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
        ):
            return Health(Status.FAILED, "Pod could not be scheduled")
        return _in_progress("Pod is in the Pending phase")
    if not phase:
        return _in_progress("Pod phase not available")
    return Health(Status.UNKNOWN, f"Pod phase is {phase}")


def _crash_looping(obj: Object) -> list[str]:
    names = []
    for container in _objects(obj, "status.containerStatuses"):
        reason = _string(container, "state.waiting.reason", "")
        if reason == "CrashLoopBackOff":
            names.append(_string(container, "name", "?"))
    return names


def _job(obj: Object) -> Health:
    parallelism = _integer(obj, "spec.parallelism", 1)
    completions = _integer(obj, "spec.completions", parallelism)
    succeeded = _integer(obj, "status.succeeded", 0)
    failed = _integer(obj, "status.failed", 0)
    active = _integer(obj, "status.active", 0)
    if _true_condition(obj, "Failed") is not None:
        return Health(Status.FAILED, f"Job Failed. failed: {failed}/{completions}")
    if _true_condition(obj, "Complete") is not None:
        return Health(Status.CURRENT, f"Job Completed. succeeded: {succeeded}/{completions}")
    if _true_condition(obj, "Suspended") is not None:
        return Health(Status.CURRENT, "Job is suspended")
    if not _string(obj, "status.startTime", ""):
        return _in_progress("Job not started")
    return _in_progress(
        f"Job in progress. succeeded: {succeeded}/{completions}, active: {active}, failed: {failed}"
    )


def _service(obj: Object) -> Health:
    if _string(obj, "spec.type", "ClusterIP") == "LoadBalancer" and not _list(
        obj, "status.loadBalancer.ingress"
    ):
        return _in_progress("Waiting for the load balancer's address")
    return Health(Status.CURRENT, "Service is ready")


def _claim(obj: Object) -> Health:
    phase = _string(obj, "status.phase", "Unknown")
    if phase != "Bound":
        return _in_progress(f"PVC is not Bound. phase: {phase}")
    return Health(Status.CURRENT, "PVC is Bound")


def _crd(obj: Object) -> Health:
    names = _condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Health(Status.FAILED, _describe(names, "Names not accepted"))
    established = _condition(obj, "Established")
    if established is not None:
        if _is_true(established):
            return Health(Status.CURRENT, "CRD is established")
        if established.get("status") == "False" and established.get("reason") != "Installing":
            return Health(Status.FAILED, _describe(established, "Not established"))
    return _in_progress("Install in progress")


def _namespace(obj: Object) -> Health:
    if _string(obj, "status.phase", "") == "Terminating":
        return Health(Status.TERMINATING, "Namespace is terminating")
    return Health(Status.CURRENT, "Namespace is active")


_RULES: dict[tuple[str, str], Callable[[Object], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("", "Pod"): _pod,
    ("batch", "Job"): _job,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _claim,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "Namespace"): _namespace,
}


# --- custom resources ------------------------------------------------------------------


def _flux(obj: Object, kind: str, generation: int | None, observed: int | None) -> Health:
    if observed is None or generation is None:
        return _in_progress(f"{kind} has not observed its latest generation yet")
    return _ready(obj, required=True)


def _ready(obj: Object, *, required: bool) -> Health:
    """The Ready condition; an object without one is Current unless ``required``."""
    ready = _condition(obj, "Ready")
    if ready is None:
        if required:
            return _in_progress("Waiting for the Ready condition")
        return Health(Status.CURRENT, "Resource is current")
    if _is_true(ready):
        return Health(Status.CURRENT, _describe(ready, "Resource is Ready"))
    return _in_progress(_describe(ready, f"Ready is {ready.get('status', 'Unknown')}"))


# --- reading fields --------------------------------------------------------------------


def _in_progress(message: str) -> Health:
    return Health(Status.IN_PROGRESS, message)


def _describe(condition: Object, fallback: str) -> str:
    message = condition.get("message")
    if isinstance(message, str) and message:
        return message
    reason = condition.get("reason")
    return reason if isinstance(reason, str) and reason else fallback


def _is_true(condition: Object) -> bool:
    return condition.get("status") == "True"


def _conditions(obj: Object) -> list[Object]:
    return _objects(obj, "status.conditions")


def _condition(obj: Object, type_: str) -> Object | None:
    return next((c for c in _conditions(obj) if c.get("type") == type_), None)


def _true_condition(obj: Object, type_: str) -> Object | None:
    condition = _condition(obj, type_)
    return condition if condition is not None and _is_true(condition) else None


def _lookup(obj: Object, path: str) -> Any:
    value: Any = obj
    walked: list[str] = []
    for part in path.split("."):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise _MalformedError(f"{'.'.join(walked) or 'the object'} is not an object")
        value = value.get(part)
        walked.append(part)
    return value


def _integer(obj: Object, path: str, default: int) -> int:
    value = _optional_integer(obj, path)
    return default if value is None else value


def _optional_integer(obj: Object, path: str) -> int | None:
    value = _lookup(obj, path)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _MalformedError(f"{path} is not an integer")
    return value


def _string(obj: Object, path: str, default: str) -> str:
    value = _lookup(obj, path)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _MalformedError(f"{path} is not a string")
    return value


def _objects(obj: Object, path: str) -> list[Object]:
    items = _list(obj, path)
    if not all(isinstance(item, Mapping) for item in items):
        raise _MalformedError(f"{path} holds an entry that is not an object")
    return items


def _list(obj: Object, path: str) -> list[Any]:
    value = _lookup(obj, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _MalformedError(f"{path} is not a list")
    return value
