"""The workload simulator: the sandbox's controllers and kubelets, as kwok fakes them.

Nothing runs; objects progress the way a real cluster's controllers would move them, so
that ``kubectl rollout status``, ``kubectl wait`` and kstatus-style health checks behave
as they do against a real cluster. All writes go through the API's own create/update/
delete with the field manager ``gitmoor-sandbox-controller``, so resourceVersions,
managedFields and watch events are those of any other client.

What it does:

- **Nodes**: ``sandbox-node-1`` … ``sandbox-node-N``, Ready, with capacity and
  allocatable (8 CPUs, 32Gi, 110 pods), a pod CIDR ``10.244.<n>.0/24`` and an InternalIP
  ``172.18.0.<n+1>``; nodes of that name beyond N are removed. A default StorageClass
  ``standard`` is created when there is none.
- **Pods** (the kubelet): a pod without a node is bound to one (round-robin); it is
  Pending (ContainerCreating) for ``delay`` seconds, then Running with every container
  ready, the Ready and ContainersReady conditions True and a pod IP from its node's
  CIDR. Pods whose ``restartPolicy`` is Never or OnFailure run for ``delay`` more
  seconds, then Succeeded (exit code 0).
- **Deployments**: a ReplicaSet per pod template, named ``<deployment>-<hash>`` and
  labelled ``pod-template-hash``, with the revision annotations ``kubectl rollout``
  reads; a new template gets a new ReplicaSet at full scale and the old ones are scaled
  to 0 once it is available (a rollback reuses the old ReplicaSet). Status as the
  deployment controller computes it: observedGeneration, replicas, updated/ready/
  available/unavailable replicas, Available (MinimumReplicasAvailable) and Progressing
  (NewReplicaSetCreated, ReplicaSetUpdated, NewReplicaSetAvailable, or False with
  ProgressDeadlineExceeded after ``spec.progressDeadlineSeconds`` without progress —
  when unset, the sandbox's ``progress_deadline``, 30 seconds by default, where a real
  apiserver would default it to 600). Old ReplicaSets beyond revisionHistoryLimit
  (default 10) are deleted.
- **ReplicaSets**: ``spec.replicas`` pods named ``<replicaset>-<random>``; status replicas,
  fullyLabeled/ready/available replicas, observedGeneration.
- **StatefulSets**: pods ``<name>-0`` … in order (with OrderedReady, each once the one
  before is ready; Parallel all at once), PVCs from volumeClaimTemplates
  (``<claim>-<name>-<ordinal>``), a new template rolled out from the highest ordinal
  down, one pod at a time, above ``partition``; status replicas, ready/current/updated/
  available replicas, currentRevision/updateRevision (``<name>-<hash>``).
- **DaemonSets**: one pod per Ready node matching ``nodeSelector``; a new template
  replaces every pod at once; status desired/current/updated NumberScheduled,
  numberReady, numberAvailable, numberUnavailable, numberMisscheduled.
- **Jobs**: ``parallelism`` pods at a time until ``completions`` (default 1) succeeded,
  then SuccessCriteriaMet and Complete (and completionTime); more than ``backoffLimit``
  (default 6) failed pods make it FailureTarget and Failed (BackoffLimitExceeded).
  ``suspend`` and ``ttlSecondsAfterFinished`` are honoured.
- **CronJobs**: a Job ``<cronjob>-<minutes since the epoch>`` at each scheduled minute
  (five-field schedules, ``timeZone``, the most recent missed time only, within
  ``startingDeadlineSeconds``), concurrencyPolicy Allow/Forbid/Replace, suspend,
  lastScheduleTime, lastSuccessfulTime, active, and the successful/failed history
  limits (3 and 1).
- **Services** of type LoadBalancer: ``status.loadBalancer.ingress`` with an address
  from 172.18.255.0/24 (``spec.loadBalancerIP`` when given).
- **PersistentVolumeClaims**: bound at once to a new PersistentVolume ``pvc-<uid>`` of
  the requested size and class (or to ``spec.volumeName``); the volume is deleted with
  its claim when its reclaim policy is Delete, else Released.

Failures, for testing health checks, timeouts and rollbacks: the annotation
``sandbox.gitmoor.dev/fail`` on a pod template (so on its pods), on the workload
(Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) or on a Job's CronJob:

- ``never-ready``: pods run but never become Ready (containers running, ``ready:
  false``); a Deployment's rollout stalls and, after its progress deadline, its
  Progressing condition turns False with ProgressDeadlineExceeded. A Job never
  completes.
- ``crashloop`` (or ``fail``): containers exit with code 1. Long-running pods stay
  Running and not Ready with their containers waiting in CrashLoopBackOff, the
  restartCount growing after ``delay``·2ⁿ seconds (n restarts so far, at most
  ``delay``·32: the kubelet's doubling back-off, scaled). Pods with restartPolicy Never
  or OnFailure fail (phase Failed), so Jobs retry and then fail.

Removing the annotation lets the pods become ready. Events and timers drive everything
(no per-object polling); after a restart the simulator lists the current state and
carries on from it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import ipaddress
import json
import logging
import math
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gitmoor.humantime import parse_time
from gitmoor.sandbox.cron import CronSchedule
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.informer import (
    Informer,
    ObjectKey,
    object_key,
    owner_refs,
    process,
    synced,
)
from gitmoor.sandbox.objects import now as timestamp
from gitmoor.sandbox.server import Sandbox, Target
from gitmoor.sandbox.store import DELETED, Key
from gitmoor.workqueue import WorkQueue

KubeObject = dict[str, Any]

FIELD_MANAGER = "gitmoor-sandbox-controller"
FAIL_ANNOTATION = "sandbox.gitmoor.dev/fail"
NEVER_READY = "never-ready"
CRASHLOOP = "crashloop"
FAIL = "fail"
DEFAULT_PROGRESS_DEADLINE = 30.0
NODE_PREFIX = "sandbox-node-"
LOAD_BALANCER_POOL = ipaddress.ip_network("172.18.255.0/24")
DEFAULT_STORAGE_CLASS = "standard"
PROVISIONER = "sandbox.gitmoor.dev/hostpath"

HASH_LABEL = "pod-template-hash"
REVISION_HASH_LABEL = "controller-revision-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Deployment annotations its ReplicaSets do not inherit (the controller's skip list).
_NOT_COPIED = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
})  # fmt: skip
_MAX_INT32 = 2**31 - 1
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's rand.SafeEncodeString
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_WATCHED = (
    ("", "nodes"),
    ("", "pods"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
)
_GROUPS = {plural: group for group, plural in _WATCHED} | {"storageclasses": "storage.k8s.io"}
# Which workload a controller reference names, by (group, kind).
_CONTROLLERS = {
    ("apps", "Deployment"): "deployments",
    ("apps", "ReplicaSet"): "replicasets",
    ("apps", "StatefulSet"): "statefulsets",
    ("apps", "DaemonSet"): "daemonsets",
    ("batch", "Job"): "jobs",
    ("batch", "CronJob"): "cronjobs",
}
_FINISHED = ("Succeeded", "Failed")

log = logging.getLogger(__name__)

_Item = tuple[str, str, str]  # (resource plural, namespace, name)


async def run_simulator(
    sandbox: Sandbox,
    *,
    nodes: int,
    delay: float = 0.5,
    progress_deadline: float = DEFAULT_PROGRESS_DEADLINE,
) -> None:
    """Simulate nodes and workload controllers on ``sandbox`` until cancelled. ``delay``:
    seconds a pod takes to start (and a run-to-completion pod to finish);
    ``progress_deadline``: a Deployment's progress deadline when its spec has none."""
    await _Simulator(sandbox, nodes, delay, progress_deadline).run()


# --- small pure helpers ------------------------------------------------------------------


def template_hash(template: KubeObject) -> str:
    """A short stable name for a pod template, in the apiserver's safe alphabet. Empty
    values count as absent (``resources: {}``, ``creationTimestamp: null``), as they do
    for the controller comparing Go structs: a rollback finds its old ReplicaSet."""
    data = json.dumps(_pruned(template), sort_keys=True, separators=(",", ":")).encode()
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(zlib.crc32(data)))


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _meta(obj: KubeObject) -> KubeObject:
    meta: KubeObject = obj.setdefault("metadata", {})
    return meta


def _annotations(obj: KubeObject | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _labels(obj: KubeObject | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _status(obj: KubeObject | None) -> KubeObject:
    return dict((obj or {}).get("status") or {})


def _spec(obj: KubeObject | None) -> KubeObject:
    return dict((obj or {}).get("spec") or {})


def _uid(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _deleting(obj: KubeObject) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _without_zeros(status: KubeObject, keep: Iterable[str] = ()) -> KubeObject:
    """As Go's omitempty encodes it: zero counts left out (but those in ``keep``)."""
    kept = set(keep)
    return {k: v for k, v in status.items() if k in kept or v not in (0, None, "", [], {})}


def _controller_ref(owner: KubeObject) -> KubeObject:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _with_condition(
    conditions: list[KubeObject], condition: KubeObject, now: str
) -> list[KubeObject]:
    """``conditions`` with ``condition`` set as Kubernetes controllers set them: nothing
    changes when its status and reason are the same; lastTransitionTime moves only when
    its status does."""
    result = []
    found = False
    for current in conditions:
        if current.get("type") != condition["type"]:
            result.append(current)
            continue
        found = True
        if current.get("status") == condition["status"] and current.get("reason") == condition.get(
            "reason"
        ):
            result.append(current)
            continue
        same_status = current.get("status") == condition["status"]
        transition = current.get("lastTransitionTime") if same_status else now
        result.append({**condition, "lastTransitionTime": transition or now})
    if not found:
        result.append({**condition, "lastTransitionTime": now})
    return result


def _condition(obj: KubeObject | None, type_: str) -> KubeObject | None:
    for condition in _status(obj).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return None


def _is_true(obj: KubeObject | None, type_: str) -> bool:
    condition = _condition(obj, type_)
    return condition is not None and condition.get("status") == "True"


def _pod_ready(pod: KubeObject) -> bool:
    return _status(pod).get("phase") == "Running" and _is_true(pod, "Ready")


def _pod_active(pod: KubeObject) -> bool:
    return not _deleting(pod) and _status(pod).get("phase") not in _FINISHED


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An intOrString like ``25%`` or ``1`` against ``total`` (surge rounds up,
    unavailability down, as the deployment controller does)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return math.ceil(total / 4) if round_up else math.floor(total / 4)


def _rolling_limits(deployment: KubeObject, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers; both zero is not allowed, so one is 1."""
    strategy = _spec(deployment).get("strategy") or {}
    if strategy.get("type") == "Recreate" or replicas == 0:
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _qos_class(spec: KubeObject) -> str:
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(name)
        and (r.get("requests") or {}).get(name, (r.get("limits") or {}).get(name))
        == (r.get("limits") or {}).get(name)
        for r in resources
        for name in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _failure_value(obj: KubeObject | None) -> str | None:
    value = _annotations(obj).get(FAIL_ANNOTATION)
    return value if value in (NEVER_READY, CRASHLOOP, FAIL) else None


# --- the simulator -----------------------------------------------------------------------


class _Simulator:
    def __init__(
        self, sandbox: Sandbox, nodes: int, delay: float, progress_deadline: float
    ) -> None:
        self.sandbox = sandbox
        self.node_count = nodes
        self.delay = delay
        self.progress_deadline = progress_deadline
        self.queue: WorkQueue[_Item] = WorkQueue()
        self.informers: dict[str, Informer[KubeObject]] = {}
        for group, plural in _WATCHED:
            self.informers[plural] = Informer(
                sandbox.store, group, plural, keep=_same, on_event=self._handler(plural)
            )
        self.reconcilers: dict[str, Callable[[ObjectKey], float | None]] = {
            "pods": self._pod,
            "services": self._service,
            "persistentvolumeclaims": self._claim,
            "deployments": self._deployment,
            "replicasets": self._replicaset,
            "statefulsets": self._statefulset,
            "daemonsets": self._daemonset,
            "jobs": self._job,
            "cronjobs": self._cronjob,
        }
        # The kubelet's clock: when each pod (by uid) starts, finishes, crashes next.
        self.start_at: dict[str, float] = {}
        self.finish_at: dict[str, float] = {}
        self.crash_at: dict[str, float] = {}
        # Addresses in use: pod IPs by node, load balancer IPs by service.
        self.pod_ips: dict[str, set[str]] = {}
        self.ip_of: dict[ObjectKey, tuple[str, str]] = {}
        self.lb_ips: dict[ObjectKey, str] = {}
        # The failure mode each workload's pods were last synced for, by workload uid.
        self.modes: dict[str, str | None] = {}
        # Claims deleted since the last look, with the volume and uid they had.
        self.released: dict[ObjectKey, tuple[str, str]] = {}
        self.next_node = -1

    def informer(self, plural: str) -> Informer[KubeObject]:
        return self.informers[plural]

    async def run(self) -> None:
        self._ensure_nodes()
        self._ensure_storage_class()
        async with asyncio.TaskGroup() as group:
            for informer in self.informers.values():
                group.create_task(informer.run())
            await synced(list(self.informers.values()))
            group.create_task(process(self.queue, self._handle))

    def _handle(self, item: _Item) -> float | None:
        plural, namespace, name = item
        return self.reconcilers[plural]((namespace, name))

    # --- events ----------------------------------------------------------------------

    def _handler(self, plural: str) -> Callable[[str, ObjectKey, KubeObject], None]:
        def on_event(event_type: str, key: ObjectKey, obj: KubeObject) -> None:
            self._on_event(plural, event_type, key, obj)

        return on_event

    def _on_event(self, plural: str, event_type: str, key: ObjectKey, obj: KubeObject) -> None:
        deleted = event_type == DELETED
        if plural == "pods":
            self._track_pod_ip(key, obj, deleted=deleted)
            if deleted:
                for clock in (self.start_at, self.finish_at, self.crash_at):
                    clock.pop(_uid(obj), None)
        elif plural == "services":
            self._track_load_balancer(key, obj, deleted=deleted)
        elif plural == "nodes":
            # Nodes need nothing themselves; DaemonSets follow them.
            for daemonset in list(self.informer("daemonsets").items):
                self.queue.add(("daemonsets", *daemonset))
            return
        elif plural == "persistentvolumeclaims" and deleted:
            volume = _spec(obj).get("volumeName")
            if volume:
                self.released[key] = (volume, _uid(obj))
        if deleted:
            self.modes.pop(_uid(obj), None)
        if not deleted or plural == "persistentvolumeclaims":
            self.queue.add((plural, *key))
        # A change to what a controller owns is the controller's business.
        for ref in owner_refs(obj):
            owner = _CONTROLLERS.get((ref.api_version.rpartition("/")[0], ref.kind))
            if ref.controller and owner is not None:
                self.queue.add((owner, key[0], ref.name))

    def _track_pod_ip(self, key: ObjectKey, pod: KubeObject, *, deleted: bool) -> None:
        status = _status(pod)
        ip = status.get("podIP")
        node = _spec(pod).get("nodeName")
        if deleted or status.get("phase") in _FINISHED or not ip or not node:
            held = self.ip_of.pop(key, None)
            if held is not None:
                self.pod_ips.get(held[0], set()).discard(held[1])
            return
        self.ip_of[key] = (node, ip)
        self.pod_ips.setdefault(node, set()).add(ip)

    def _track_load_balancer(self, key: ObjectKey, service: KubeObject, *, deleted: bool) -> None:
        ingress = (_status(service).get("loadBalancer") or {}).get("ingress") or []
        ip = ingress[0].get("ip") if ingress and isinstance(ingress[0], dict) else None
        if deleted or not ip:
            self.lb_ips.pop(key, None)
        else:
            self.lb_ips[key] = ip

    # --- writes ----------------------------------------------------------------------

    def _target(self, plural: str, namespace: str, name: str | None, sub: str | None) -> Target:
        info = self.sandbox.table.lookup(_GROUPS.get(plural, ""), "v1", plural)
        assert info is not None, plural  # built-in resources
        return Target(info, namespace or None, name, sub)

    def _create(self, plural: str, obj: KubeObject) -> KubeObject:
        namespace = _meta(obj).get("namespace") or ""
        created = self.sandbox.create(
            self._target(plural, namespace, None, None), obj, manager=FIELD_MANAGER,
            dry_run=False,
        )  # fmt: skip
        if plural in self.informers:
            self.informers[plural].record(created)
        return created

    def _update(self, plural: str, obj: KubeObject, *, status: bool = False) -> KubeObject:
        """Write ``obj`` (with its resourceVersion: a stale one is a 409 Conflict)."""
        namespace, name = object_key(obj)
        target = self._target(plural, namespace, name, "status" if status else None)
        updated = self.sandbox.update(target, obj, manager=FIELD_MANAGER, dry_run=False)
        if plural in self.informers:
            self.informers[plural].record(updated)
        return updated

    def _write_status(self, plural: str, obj: KubeObject, status: KubeObject) -> KubeObject:
        if obj.get("status") == status:
            return obj
        return self._update(plural, {**obj, "status": status}, status=True)

    def _delete(self, plural: str, obj: KubeObject) -> None:
        namespace, name = object_key(obj)
        options = {"propagationPolicy": "Background", "preconditions": {"uid": _uid(obj)}}
        result = self.sandbox.delete(
            self._target(plural, namespace, name, None), dry_run=False, options=options
        )
        informer = self.informers.get(plural)
        if informer is not None:
            if (result.get("metadata") or {}).get("finalizers"):
                informer.record(result)
            else:
                informer.forget(result)

    # --- nodes -----------------------------------------------------------------------

    def _ensure_nodes(self) -> None:
        store = self.sandbox.store
        wanted = {f"{NODE_PREFIX}{n}" for n in range(1, self.node_count + 1)}
        for node in store.list("", "nodes", None).items:
            name = node["metadata"]["name"]
            suffix = name.removeprefix(NODE_PREFIX)
            if name not in wanted and name != suffix and suffix.isdigit():
                self._delete("nodes", node)
        for number in range(1, self.node_count + 1):
            name = f"{NODE_PREFIX}{number}"
            if store.get(Key("", "nodes", "", name)) is None:
                created = self._create("nodes", _node_object(name, number))
                self._write_status("nodes", created, _node_status(name, number))

    def _ready_nodes(self) -> list[KubeObject]:
        return [
            node
            for _, node in sorted(self.informer("nodes").items.items())
            if _is_true(node, "Ready") and not _spec(node).get("unschedulable")
        ]

    def _pick_node(self) -> str | None:
        nodes = self._ready_nodes()
        if not nodes:
            return None
        self.next_node = (self.next_node + 1) % len(nodes)
        name: str = nodes[self.next_node]["metadata"]["name"]
        return name

    def _allocate_pod_ip(self, key: ObjectKey, node_name: str) -> str:
        node = self.informer("nodes").get(("", node_name))
        cidr = _spec(node).get("podCIDR") or "10.244.0.0/24"
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            network = ipaddress.ip_network("10.244.0.0/24")
        used = self.pod_ips.setdefault(node_name, set())
        for index, address in enumerate(network.hosts()):
            if index == 0:
                continue  # the node's own bridge address
            ip = str(address)
            if ip not in used:
                used.add(ip)
                self.ip_of[key] = (node_name, ip)
                return ip
        raise ApiError(500, "InternalError", f"node {node_name} has no pod address left")

    def _ensure_storage_class(self) -> None:
        if self.sandbox.store.list("storage.k8s.io", "storageclasses", None, limit=1).items:
            return
        self._create(
            "storageclasses",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": DEFAULT_STORAGE_CLASS,
                    "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                },
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )

    # --- pods: the kubelet -------------------------------------------------------------

    def _owner(self, obj: KubeObject) -> KubeObject | None:
        for ref in owner_refs(obj):
            plural = _CONTROLLERS.get((ref.api_version.rpartition("/")[0], ref.kind))
            if ref.controller and plural is not None:
                owner = self.informer(plural).get((object_key(obj)[0], ref.name))
                if owner is not None and _uid(owner) == ref.uid:
                    return owner
        return None

    def _failure_mode(self, obj: KubeObject) -> str | None:
        """The fail annotation of ``obj``, else of its controller, else of that one's."""
        current: KubeObject | None = obj
        for _ in range(3):
            if current is None:
                return None
            value = _failure_value(current)
            if value is not None:
                return CRASHLOOP if value == FAIL else value
            current = self._owner(current)
        return None

    def _resync_pods_if_mode_changed(self, owner: KubeObject) -> None:
        """Pods follow their workload's fail annotation: look at them again when it
        changes (the pods themselves did not)."""
        uid = _uid(owner)
        mode = self._failure_mode(owner)
        if uid in self.modes and self.modes[uid] == mode:
            return
        self.modes[uid] = mode
        for key, _ in self.informer("pods").owned(uid):
            self.queue.add(("pods", *key))

    def _pod(self, key: ObjectKey) -> float | None:
        pod = self.informer("pods").get(key)
        if pod is None or _deleting(pod):
            return None
        spec = _spec(pod)
        status = _status(pod)
        phase = status.get("phase")
        uid = _uid(pod)
        if phase in _FINISHED:
            return None
        if not spec.get("nodeName"):
            node = self._pick_node()
            if node is not None:
                bound = copy.deepcopy(pod)
                bound["spec"]["nodeName"] = node
                self._update("pods", bound)
            return None
        clock = asyncio.get_running_loop().time()
        if not phase:
            self.start_at[uid] = clock + self.delay
            self._write_status("pods", pod, self._pod_status(pod, "creating"))
            return self.delay
        if phase == "Pending":
            start = self.start_at.setdefault(uid, clock + self.delay)
            if clock < start:
                return start - clock
        self.start_at.pop(uid, None)
        mode = self._failure_mode(pod)
        completes = spec.get("restartPolicy", "Always") != "Always"
        if mode == NEVER_READY:
            self._write_status("pods", pod, self._pod_status(pod, "running", ready=False))
            return None
        if completes:
            finish = self.finish_at.setdefault(uid, clock + self.delay)
            if clock < finish:
                self._write_status("pods", pod, self._pod_status(pod, "running"))
                return finish - clock
            exit_code = 1 if mode == CRASHLOOP else 0
            self._write_status("pods", pod, self._pod_status(pod, "terminated", code=exit_code))
            return None
        if mode == CRASHLOOP:
            restarts = max(self._restarts(pod), 1)
            crash = self.crash_at.get(uid)
            if crash is not None and clock >= crash:
                restarts += 1
                crash = None
            if crash is None:
                crash = self.crash_at[uid] = clock + self._back_off(restarts)
            self._write_status("pods", pod, self._pod_status(pod, "crashloop", restarts=restarts))
            return crash - clock
        self.crash_at.pop(uid, None)
        self._write_status("pods", pod, self._pod_status(pod, "running"))
        return None

    def _back_off(self, restarts: int) -> float:
        return self.delay * (1 << max(min(restarts - 1, 5), 0))

    @staticmethod
    def _restarts(pod: KubeObject) -> int:
        counts = [
            _int(c.get("restartCount"), 0) for c in _status(pod).get("containerStatuses") or []
        ]
        return max(counts, default=0)

    def _pod_status(
        self,
        pod: KubeObject,
        state: str,
        *,
        ready: bool = True,
        code: int = 0,
        restarts: int = 0,
    ) -> KubeObject:
        """The status a kubelet reports; ``state``: creating, running, crashloop or
        terminated (with exit ``code``). Times already reported are kept while what they
        date does not change, so an unchanged state is an unchanged status."""
        now = timestamp()
        previous = _status(pod)
        spec = _spec(pod)
        key = object_key(pod)
        node_name = spec["nodeName"]
        phase = {"creating": "Pending", "running": "Running", "crashloop": "Running"}.get(
            state, "Failed" if code else "Succeeded"
        )
        ready = ready and state == "running"
        status: KubeObject = {
            "phase": phase,
            "hostIP": _node_ip(self.informer("nodes").get(("", node_name))),
            "startTime": previous.get("startTime") or now,
            "qosClass": _qos_class(spec),
        }
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        if state != "creating":
            held = self.ip_of.get(key)
            ip = previous.get("podIP") or (held[1] if held else None)
            if ip is None and phase not in _FINISHED:
                ip = self._allocate_pod_ip(key, node_name)
            if ip is not None:
                status["podIP"] = ip
                status["podIPs"] = [{"ip": ip}]
        prior = {c.get("name"): c for c in previous.get("containerStatuses") or []}
        containers = spec.get("containers") or []
        status["containerStatuses"] = [
            _container_status(pod, c, prior.get(c.get("name")), state, ready, code, restarts, now)
            for c in containers
        ]
        init_containers = spec.get("initContainers") or []
        if init_containers:
            prior_init = {c.get("name"): c for c in previous.get("initContainerStatuses") or []}
            status["initContainerStatuses"] = [
                _init_container_status(pod, c, prior_init.get(c.get("name")), state, now)
                for c in init_containers
            ]
        if state == "terminated":
            unready = ("PodCompleted", "")
        else:
            names = " ".join(c.get("name", "") for c in containers)
            unready = ("ContainersNotReady", f"containers with unready status: [{names}]")
        names = " ".join(c.get("name", "") for c in init_containers)
        incomplete = f"containers with incomplete status: [{names}]"
        uninitialized = ("ContainersNotInitialized", incomplete)
        conditions = list(previous.get("conditions") or [])
        for type_, true, (reason, message) in (
            ("PodReadyToStartContainers", state not in ("creating", "terminated"), ("", "")),
            ("Initialized", state != "creating" or not init_containers, uninitialized),
            ("Ready", ready, unready),
            ("ContainersReady", ready, unready),
            ("PodScheduled", True, ("", "")),
        ):
            condition: KubeObject = {
                "type": type_,
                "status": "True" if true else "False",
                "lastProbeTime": None,
            }
            if not true and reason:
                condition["reason"] = reason
                if message:
                    condition["message"] = message
            conditions = _with_condition(conditions, condition, now)
        status["conditions"] = conditions
        return status

    # --- ReplicaSets -----------------------------------------------------------------

    def _new_pod(
        self,
        owner: KubeObject,
        template: KubeObject,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        node: str | None = None,
    ) -> KubeObject:
        meta = template.get("metadata") or {}
        namespace = owner["metadata"]["namespace"]
        metadata: KubeObject = {
            "namespace": namespace,
            "labels": {**(meta.get("labels") or {}), **(labels or {})},
            "ownerReferences": [_controller_ref(owner)],
        }
        if meta.get("annotations"):
            metadata["annotations"] = dict(meta["annotations"])
        if name is None:
            metadata["generateName"] = f"{owner['metadata']['name']}-"
        else:
            metadata["name"] = name
        spec = copy.deepcopy(template.get("spec") or {})
        spec["nodeName"] = node or self._pick_node()
        if spec["nodeName"] is None:
            del spec["nodeName"]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}

    def _owned_pods(self, owner: KubeObject) -> list[KubeObject]:
        return [pod for _, pod in self.informer("pods").owned(_uid(owner))]

    def _replicaset(self, key: ObjectKey) -> float | None:
        replicaset = self.informer("replicasets").get(key)
        if replicaset is None or _deleting(replicaset):
            return None
        self._resync_pods_if_mode_changed(replicaset)
        spec = _spec(replicaset)
        wanted = _int(spec.get("replicas"), 1)
        pods = [p for p in self._owned_pods(replicaset) if _pod_active(p)]
        template = spec.get("template") or {}
        for _ in range(wanted - len(pods)):
            self._create("pods", self._new_pod(replicaset, template))
        if len(pods) > wanted:
            # The controller's preference: unscheduled, pending, unready, newer pods first.
            pods.sort(key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
            pods.sort(
                key=lambda p: (
                    bool(_spec(p).get("nodeName")),
                    _status(p).get("phase") == "Running",
                    _pod_ready(p),
                )
            )
            for pod in pods[: len(pods) - wanted]:
                self._delete("pods", pod)
        pods = [p for p in self._owned_pods(replicaset) if _pod_active(p)]
        ready = sum(1 for p in pods if _pod_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": replicaset["metadata"].get("generation", 1),
        }
        self._write_status("replicasets", replicaset, _without_zeros(status, keep=["replicas"]))
        return None

    # --- Deployments -----------------------------------------------------------------

    def _deployment(self, key: ObjectKey) -> float | None:
        deployment = self.informer("deployments").get(key)
        if deployment is None or _deleting(deployment):
            return None
        spec = _spec(deployment)
        replicas = _int(spec.get("replicas"), 1)
        template = spec.get("template") or {}
        pod_hash = template_hash(template)
        owned = [
            rs
            for _, rs in self.informer("replicasets").owned(_uid(deployment))
            if _owned_by(rs, deployment)
        ]
        revision = max((_revision(rs) for rs in owned), default=0)
        new = next((rs for rs in owned if _labels(rs).get(HASH_LABEL) == pod_hash), None)
        created = False
        if new is None and not spec.get("paused"):
            new = self._create(
                "replicasets", self._replicaset_for(deployment, pod_hash, replicas, revision + 1)
            )
            created = True
        elif new is not None:
            number = revision if _revision(new) == revision else revision + 1
            new = self._sync_replicaset(deployment, new, replicas, number)
        olds = [rs for rs in owned if new is None or _uid(rs) != _uid(new)]
        new_available = _int(_status(new).get("availableReplicas"), 0) if new else 0
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        if new is not None and (recreate or new_available >= replicas):
            for old in olds:
                if _int(_spec(old).get("replicas"), 1) != 0:
                    scaled = copy.deepcopy(old)
                    scaled["spec"]["replicas"] = 0
                    self._update("replicasets", scaled)
        olds = self._clean_up_history(deployment, [
            self.informer("replicasets").get(object_key(rs)) or rs for rs in olds
        ])  # fmt: skip
        if new is not None and _annotations(deployment).get(REVISION) != str(_revision(new)):
            annotated = copy.deepcopy(deployment)
            _meta(annotated).setdefault("annotations", {})[REVISION] = str(_revision(new))
            deployment = self._update("deployments", annotated)
        return self._deployment_status(deployment, new, olds, created=created)

    def _replicaset_for(
        self, deployment: KubeObject, pod_hash: str, replicas: int, revision: int
    ) -> KubeObject:
        spec = _spec(deployment)
        template = copy.deepcopy(spec.get("template") or {})
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        surge, _ = _rolling_limits(deployment, replicas)
        annotations = {
            **_inherited(deployment),
            REVISION: str(revision),
            DESIRED_REPLICAS: str(replicas),
            MAX_REPLICAS: str(replicas + surge),
        }
        rs_spec: KubeObject = {"replicas": replicas, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        name = deployment["metadata"]["name"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{pod_hash}",
                "namespace": deployment["metadata"]["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_controller_ref(deployment)],
            },
            "spec": rs_spec,
        }

    def _sync_replicaset(
        self, deployment: KubeObject, replicaset: KubeObject, replicas: int, revision: int
    ) -> KubeObject:
        """The current template's ReplicaSet: the deployment's scale, annotations and
        the newest revision (a rollback renumbers it)."""
        wanted = copy.deepcopy(replicaset)
        wanted["spec"]["replicas"] = replicas
        annotations = _meta(wanted).setdefault("annotations", {})
        annotations.update(_inherited(deployment))
        if FAIL_ANNOTATION not in _annotations(deployment):
            annotations.pop(FAIL_ANNOTATION, None)
        surge, _ = _rolling_limits(deployment, replicas)
        annotations[REVISION] = str(revision)
        annotations[DESIRED_REPLICAS] = str(replicas)
        annotations[MAX_REPLICAS] = str(replicas + surge)
        if wanted == replicaset:
            return replicaset
        return self._update("replicasets", wanted)

    def _clean_up_history(self, deployment: KubeObject, olds: list[KubeObject]) -> list[KubeObject]:
        limit = _int(_spec(deployment).get("revisionHistoryLimit"), 10)
        idle = [
            rs
            for rs in olds
            if _int(_spec(rs).get("replicas"), 1) == 0 and not _status(rs).get("replicas")
        ]
        idle.sort(key=_revision)
        doomed = idle[: max(len(idle) - limit, 0)]
        for rs in doomed:
            self._delete("replicasets", rs)
        gone = {_uid(rs) for rs in doomed}
        return [rs for rs in olds if _uid(rs) not in gone]

    def _deployment_status(
        self,
        deployment: KubeObject,
        new: KubeObject | None,
        olds: list[KubeObject],
        *,
        created: bool,
    ) -> float | None:
        spec = _spec(deployment)
        replicas = _int(spec.get("replicas"), 1)
        every = ([new] if new is not None else []) + olds

        def total(field: str, sets: list[KubeObject]) -> int:
            return sum(_int(_status(rs).get(field), 0) for rs in sets)

        available = total("availableReplicas", every)
        wanted_total = sum(_int(_spec(rs).get("replicas"), 1) for rs in every)
        previous = _status(deployment)
        status: KubeObject = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": total("replicas", every),
            "updatedReplicas": total("replicas", [new]) if new is not None else 0,
            "readyReplicas": total("readyReplicas", every),
            "availableReplicas": available,
            "unavailableReplicas": max(wanted_total - available, 0),
        }
        if previous.get("collisionCount"):
            status["collisionCount"] = previous["collisionCount"]
        now = timestamp()
        conditions = list(previous.get("conditions") or [])
        _, max_unavailable = _rolling_limits(deployment, replicas)
        if available >= replicas - max_unavailable:
            minimum = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            minimum = (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        conditions = _with_condition(
            conditions, _deployment_condition("Available", *minimum, now), now
        )
        if new is not None:
            subject = f'ReplicaSet "{new["metadata"]["name"]}"'
        else:
            subject = f'Deployment "{deployment["metadata"]["name"]}"'
        complete = status["updatedReplicas"] == replicas and available == replicas
        if spec.get("paused"):
            pass  # a paused rollout neither progresses nor times out
        elif created and new is not None:
            conditions = _with_condition(conditions, _deployment_condition(
                "Progressing", "True", "NewReplicaSetCreated",
                f'Created new replica set "{new["metadata"]["name"]}"', now,
            ), now)  # fmt: skip
        elif complete:
            conditions = _with_condition(conditions, _deployment_condition(
                "Progressing", "True", "NewReplicaSetAvailable",
                f"{subject} has successfully progressed.", now,
            ), now)  # fmt: skip
        elif _made_progress(previous, status) or _condition(deployment, "Progressing") is None:
            # Progress moves lastUpdateTime even when status and reason stay the same.
            condition = _deployment_condition(
                "Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.", now
            )
            current = _condition(deployment, "Progressing") or {}
            kept = current.get("status") == "True"
            transition = current.get("lastTransitionTime") if kept else None
            conditions = [c for c in conditions if c.get("type") != "Progressing"]
            conditions.append({**condition, "lastTransitionTime": transition or now})
        status["conditions"] = conditions
        retry = None
        deadline = _int(spec.get("progressDeadlineSeconds"), 0) or self.progress_deadline
        progressing = next((c for c in conditions if c.get("type") == "Progressing"), None)
        if (
            progressing is not None
            and not spec.get("paused")
            and deadline < _MAX_INT32
            and progressing.get("reason") in ("NewReplicaSetCreated", "ReplicaSetUpdated")
        ):
            since = parse_time(progressing.get("lastUpdateTime"))
            waited = (datetime.now(UTC) - since).total_seconds() if since else deadline
            if waited >= deadline:
                status["conditions"] = _with_condition(conditions, _deployment_condition(
                    "Progressing", "False", "ProgressDeadlineExceeded",
                    f"{subject} has timed out progressing.", now,
                ), now)  # fmt: skip
            else:
                # Timestamps have whole seconds: look again just after the deadline.
                retry = deadline - waited + 1.0
        self._write_status("deployments", deployment, _without_zeros(status))
        return retry

    # --- StatefulSets ----------------------------------------------------------------

    def _statefulset(self, key: ObjectKey) -> float | None:
        statefulset = self.informer("statefulsets").get(key)
        if statefulset is None or _deleting(statefulset):
            return None
        self._resync_pods_if_mode_changed(statefulset)
        spec = _spec(statefulset)
        replicas = _int(spec.get("replicas"), 1)
        template = spec.get("template") or {}
        update_revision = f"{key[1]}-{template_hash(template)}"
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        partition = _int((strategy.get("rollingUpdate") or {}).get("partition"), 0)
        pods = self._pods_by_ordinal(statefulset)
        for ordinal, pod in sorted(pods.items()):
            if _status(pod).get("phase") in _FINISHED:
                self._delete("pods", pod)  # failed and finished pods are replaced
                del pods[ordinal]
        extra = sorted((o for o in pods if o >= replicas), reverse=True)
        for ordinal in extra[:1] if ordered else extra:
            self._delete("pods", pods.pop(ordinal))
        for ordinal in range(replicas):
            existing = pods.get(ordinal)
            if existing is None:
                self._ensure_claims(statefulset, ordinal)
                pods[ordinal] = self._create(
                    "pods", self._statefulset_pod(statefulset, ordinal, update_revision)
                )
                if ordered:
                    break
            elif ordered and not _pod_ready(existing):
                break
        in_place = {o: p for o, p in pods.items() if o < replicas}
        settled = len(in_place) == replicas and all(_pod_ready(p) for p in in_place.values())
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and settled:
            outdated = [
                o
                for o, p in in_place.items()
                if o >= partition and _labels(p).get(REVISION_HASH_LABEL) != update_revision
            ]
            if outdated:
                self._delete("pods", in_place.pop(max(outdated)))
        pods = self._pods_by_ordinal(statefulset)
        previous = _status(statefulset)
        current_revision = previous.get("currentRevision") or update_revision
        revisions = [_labels(p).get(REVISION_HASH_LABEL) for p in pods.values()]
        ready = sum(1 for p in pods.values() if _pod_ready(p))
        status: KubeObject = {
            "observedGeneration": statefulset["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": revisions.count(current_revision),
            "updatedReplicas": revisions.count(update_revision),
            "availableReplicas": ready,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": _int(previous.get("collisionCount"), 0),
        }
        if status["updatedReplicas"] == len(pods) == ready:
            status["currentRevision"] = update_revision
            status["currentReplicas"] = status["updatedReplicas"]
        status = _without_zeros(status, keep=["replicas", "collisionCount"])
        self._write_status("statefulsets", statefulset, status)
        return None

    def _pods_by_ordinal(self, statefulset: KubeObject) -> dict[int, KubeObject]:
        name = statefulset["metadata"]["name"]
        pods = {}
        for pod in self._owned_pods(statefulset):
            suffix = pod["metadata"]["name"].removeprefix(f"{name}-")
            if suffix.isdigit() and not _deleting(pod):
                pods[int(suffix)] = pod
        return pods

    def _statefulset_pod(self, statefulset: KubeObject, ordinal: int, revision: str) -> KubeObject:
        name = statefulset["metadata"]["name"]
        spec = _spec(statefulset)
        pod_name = f"{name}-{ordinal}"
        labels = {
            REVISION_HASH_LABEL: revision,
            "statefulset.kubernetes.io/pod-name": pod_name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        }
        pod = self._new_pod(statefulset, spec.get("template") or {}, name=pod_name, labels=labels)
        pod["spec"]["hostname"] = pod_name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        volumes = pod["spec"].setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = (claim.get("metadata") or {}).get("name", "")
            volumes[:] = [v for v in volumes if v.get("name") != claim_name]
            volumes.append({
                "name": claim_name,
                "persistentVolumeClaim": {"claimName": f"{claim_name}-{name}-{ordinal}"},
            })  # fmt: skip
        if not volumes:
            del pod["spec"]["volumes"]
        return pod

    def _ensure_claims(self, statefulset: KubeObject, ordinal: int) -> None:
        namespace, name = object_key(statefulset)
        spec = _spec(statefulset)
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        for template in spec.get("volumeClaimTemplates") or []:
            meta = template.get("metadata") or {}
            claim_name = f"{meta.get('name', '')}-{name}-{ordinal}"
            if self.informer("persistentvolumeclaims").get((namespace, claim_name)) is not None:
                continue
            metadata: KubeObject = {
                "name": claim_name,
                "namespace": namespace,
                "labels": {**(meta.get("labels") or {}), **selector},
            }
            if meta.get("annotations"):
                metadata["annotations"] = dict(meta["annotations"])
            if policy.get("whenDeleted") == "Delete":
                metadata["ownerReferences"] = [_controller_ref(statefulset)]
            claim = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": metadata,
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
            try:
                self._create("persistentvolumeclaims", claim)
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise

    # --- DaemonSets ------------------------------------------------------------------

    def _daemonset(self, key: ObjectKey) -> float | None:
        daemonset = self.informer("daemonsets").get(key)
        if daemonset is None or _deleting(daemonset):
            return None
        self._resync_pods_if_mode_changed(daemonset)
        spec = _spec(daemonset)
        template = spec.get("template") or {}
        revision = template_hash(template)
        selector = _spec(template).get("nodeSelector") or {}
        eligible = {
            node["metadata"]["name"]
            for node in self._ready_nodes()
            if all(_labels(node).get(k) == v for k, v in selector.items())
        }
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        on_node: dict[str, KubeObject] = {}
        for pod in self._owned_pods(daemonset):
            if _deleting(pod):
                continue
            node = str(_spec(pod).get("nodeName") or "")
            outdated = rolling and _labels(pod).get(REVISION_HASH_LABEL) != revision
            finished = _status(pod).get("phase") in _FINISHED
            if node not in eligible or node in on_node or outdated or finished:
                self._delete("pods", pod)
            else:
                on_node[node] = pod
        generation = str(daemonset["metadata"].get("generation", 1))
        for node in sorted(eligible - on_node.keys()):
            labels = {REVISION_HASH_LABEL: revision, "pod-template-generation": generation}
            on_node[node] = self._create(
                "pods", self._new_pod(daemonset, template, labels=labels, node=node)
            )
        pods = [self.informer("pods").get(object_key(p)) or p for p in on_node.values()]
        ready = sum(1 for p in pods if _pod_ready(p))
        status = {
            "observedGeneration": daemonset["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "updatedNumberScheduled": sum(
                1 for p in pods if _labels(p).get(REVISION_HASH_LABEL) == revision
            ),
            "numberAvailable": ready,
            "numberUnavailable": len(eligible) - ready,
        }
        required = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled",
                    "numberReady")  # fmt: skip
        self._write_status("daemonsets", daemonset, _without_zeros(status, keep=required))
        return None

    # --- Jobs ------------------------------------------------------------------------

    def _job(self, key: ObjectKey) -> float | None:
        job = self.informer("jobs").get(key)
        if job is None or _deleting(job):
            return None
        self._resync_pods_if_mode_changed(job)
        spec = _spec(job)
        previous = _status(job)
        now = timestamp()
        pods = [p for p in self._owned_pods(job) if not _deleting(p)]
        finished_at = _job_finished_at(job)
        if finished_at is not None:
            for pod in pods:
                if _pod_active(pod):
                    self._delete("pods", pod)
            return self._expire(job, finished_at)
        conditions = list(previous.get("conditions") or [])
        status: KubeObject = {k: v for k, v in previous.items() if k in ("startTime",)}
        if spec.get("suspend"):
            for pod in pods:
                if _pod_active(pod):
                    self._delete("pods", pod)
            pods = [p for p in pods if not _pod_active(p)]
            conditions = _with_condition(conditions, _job_condition(
                "Suspended", "True", "JobSuspended", "Job suspended", now), now)  # fmt: skip
            status.pop("startTime", None)
        else:
            if _condition(job, "Suspended") is not None:
                conditions = _with_condition(conditions, _job_condition(
                    "Suspended", "False", "JobResumed", "Job resumed", now), now)  # fmt: skip
            status.setdefault("startTime", now)
        active = [p for p in pods if _pod_active(p)]
        succeeded = sum(1 for p in pods if _status(p).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if _status(p).get("phase") == "Failed")
        completions = spec.get("completions")
        completions = completions if isinstance(completions, int) else None
        parallelism = _int(spec.get("parallelism"), 1)
        if spec.get("suspend"):
            pass
        elif failed > _int(spec.get("backoffLimit"), 6):
            for pod in active:
                self._delete("pods", pod)
            active = []
            message = "Job has reached the specified backoff limit"
            for type_ in ("FailureTarget", "Failed"):
                conditions = _with_condition(conditions, _job_condition(
                    type_, "True", "BackoffLimitExceeded", message, now), now)  # fmt: skip
        elif (completions is not None and succeeded >= completions) or (
            completions is None and succeeded >= 1 and not active
        ):
            message = "Reached expected number of succeeded pods"
            for type_ in ("SuccessCriteriaMet", "Complete"):
                conditions = _with_condition(conditions, _job_condition(
                    type_, "True", "CompletionsReached", message, now), now)  # fmt: skip
            status["completionTime"] = now
        else:
            if completions is not None:
                wanted = min(parallelism, completions - succeeded)
            else:
                wanted = parallelism if succeeded == 0 else 0
            # The pods carry the template's labels, which the API server gave the Job's
            # name and uid (unless the Job brings its own selector).
            for _ in range(wanted - len(active)):
                active.append(self._create("pods", self._new_pod(job, spec.get("template") or {})))
        status.update({
            "active": len(active),
            "ready": sum(1 for p in active if _pod_ready(p)),
            "succeeded": succeeded,
            "failed": failed,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        })  # fmt: skip
        if conditions:
            status["conditions"] = conditions
        status = _without_zeros(status, keep=["ready", "terminating", "uncountedTerminatedPods"])
        job = self._write_status("jobs", job, status)
        finished_at = _job_finished_at(job)
        return None if finished_at is None else self._expire(job, finished_at)

    def _expire(self, job: KubeObject, finished_at: datetime) -> float | None:
        """ttlSecondsAfterFinished: delete the job (and its pods, by the collector)."""
        ttl = _spec(job).get("ttlSecondsAfterFinished")
        if not isinstance(ttl, int):
            return None
        left = (finished_at + timedelta(seconds=ttl) - datetime.now(UTC)).total_seconds()
        if left > 0:
            return left + 1.0
        self._delete("jobs", job)
        return None

    # --- CronJobs --------------------------------------------------------------------

    def _cronjob(self, key: ObjectKey) -> float | None:
        cronjob = self.informer("cronjobs").get(key)
        if cronjob is None or _deleting(cronjob):
            return None
        spec = _spec(cronjob)
        try:
            schedule = CronSchedule.parse(str(spec.get("schedule", "")))
            zone = ZoneInfo(spec["timeZone"]) if spec.get("timeZone") else UTC
        except (ValueError, ZoneInfoNotFoundError) as exc:
            log.warning("CronJob %s/%s: spec.schedule: %s", *key, exc)
            return None
        previous = _status(cronjob)
        jobs = [job for _, job in self.informer("jobs").owned(_uid(cronjob))]
        running = [j for j in jobs if _job_finished_at(j) is None and not _deleting(j)]
        now = datetime.now(zone)
        last = parse_time(previous.get("lastScheduleTime"))
        earliest = last or parse_time(cronjob["metadata"].get("creationTimestamp")) or now
        due = schedule.latest_at_or_before(now)
        status = {k: v for k, v in previous.items() if k != "active"}
        starting = spec.get("startingDeadlineSeconds")
        too_late = (
            isinstance(starting, int) and due is not None and (now - due).total_seconds() > starting
        )
        if due is not None and due > earliest and not spec.get("suspend") and not too_late:
            policy = spec.get("concurrencyPolicy", "Allow")
            if policy == "Forbid" and running:
                due = None
            else:
                if policy == "Replace":
                    for job in running:
                        self._delete("jobs", job)
                    running = []
                running.append(self._start_job(cronjob, due))
                status["lastScheduleTime"] = _format_time(due)
        succeeded = [j for j in jobs if _is_true(j, "Complete")]
        completed = [parse_time(_status(j).get("completionTime")) for j in succeeded]
        latest_success = max((t for t in completed if t is not None), default=None)
        if latest_success is not None:
            status["lastSuccessfulTime"] = _format_time(latest_success)
        if running:
            listed = {r.get("uid"): r for r in previous.get("active") or []}
            status["active"] = [listed.get(_uid(j)) or _reference(j) for j in running]
        self._write_status("cronjobs", cronjob, status)
        self._trim_history(cronjob, jobs)
        following = schedule.next_after(now)
        return None if following is None else (following - now).total_seconds() + 0.5

    def _start_job(self, cronjob: KubeObject, due: datetime) -> KubeObject:
        template = copy.deepcopy(_spec(cronjob).get("jobTemplate") or {})
        meta = template.get("metadata") or {}
        name = f"{cronjob['metadata']['name']}-{int(due.timestamp()) // 60}"
        job: KubeObject = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": cronjob["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "annotations": {
                    **(meta.get("annotations") or {}),
                    SCHEDULED_TIMESTAMP: due.isoformat(),
                },
                "ownerReferences": [_controller_ref(cronjob)],
            },
            "spec": template.get("spec") or {},
        }
        try:
            return self._create("jobs", job)
        except ApiError as exc:
            namespace = job["metadata"]["namespace"]
            existing = self.sandbox.store.get(Key("batch", "jobs", namespace, name))
            if exc.reason != "AlreadyExists" or existing is None:
                raise
            return existing

    def _trim_history(self, cronjob: KubeObject, jobs: list[KubeObject]) -> None:
        spec = _spec(cronjob)
        for condition, limit in (
            ("Complete", _int(spec.get("successfulJobsHistoryLimit"), 3)),
            ("Failed", _int(spec.get("failedJobsHistoryLimit"), 1)),
        ):
            done = [j for j in jobs if _is_true(j, condition) and not _deleting(j)]
            done.sort(key=lambda j: str(j["metadata"].get("creationTimestamp", "")))
            for job in done[: max(len(done) - limit, 0)]:
                self._delete("jobs", job)

    # --- Services and volumes --------------------------------------------------------

    def _service(self, key: ObjectKey) -> float | None:
        service = self.informer("services").get(key)
        if service is None or _deleting(service):
            return None
        spec = _spec(service)
        status = _status(service)
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        if spec.get("type") == "LoadBalancer":
            if ingress:
                return None
            ip = self._load_balancer_ip(key, spec.get("loadBalancerIP"))
            self.lb_ips[key] = ip
            balancer = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
            self._write_status("services", service, {**status, "loadBalancer": balancer})
        elif ingress:
            self.lb_ips.pop(key, None)
            self._write_status("services", service, {**status, "loadBalancer": {}})
        return None

    def _load_balancer_ip(self, key: ObjectKey, requested: Any) -> str:
        used = {ip for owner, ip in self.lb_ips.items() if owner != key}
        if isinstance(requested, str) and requested and requested not in used:
            return requested
        for address in LOAD_BALANCER_POOL.hosts():
            if str(address) not in used:
                return str(address)
        raise ApiError(500, "InternalError", "the load balancer address pool is exhausted")

    def _claim(self, key: ObjectKey) -> float | None:
        claim = self.informer("persistentvolumeclaims").get(key)
        if claim is None:
            released = self.released.pop(key, None)
            if released is not None:
                self._release_volume(*released)
            return None
        if _deleting(claim) or _status(claim).get("phase") == "Bound":
            return None
        spec = _spec(claim)
        storage_class = spec.get("storageClassName")
        if storage_class is None:
            storage_class = self._default_storage_class()
        volume_name = spec.get("volumeName") or f"pvc-{_uid(claim)}"
        volume = self.sandbox.store.get(Key("", "persistentvolumes", "", volume_name))
        if volume is None and (spec.get("volumeName") or not storage_class):
            # A named volume that does not exist, or no class to provision from: wait.
            self._write_status("persistentvolumeclaims", claim, {"phase": "Pending"})
            return None
        if volume is None:
            volume = self._provision(claim, volume_name, storage_class)
        bound_to = _spec(volume).get("claimRef") or {}
        if bound_to.get("uid") not in (None, _uid(claim)):
            self._write_status("persistentvolumeclaims", claim, {"phase": "Pending"})
            return None
        if not bound_to:
            volume = copy.deepcopy(volume)
            volume["spec"]["claimRef"] = _claim_ref(claim)
            volume = self._update("persistentvolumes", volume)
        self._write_status("persistentvolumes", volume, {"phase": "Bound"})
        wanted = copy.deepcopy(claim)
        wanted["spec"]["volumeName"] = volume_name
        if storage_class and spec.get("storageClassName") is None:
            wanted["spec"]["storageClassName"] = storage_class
        annotations = _meta(wanted).setdefault("annotations", {})
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
        if not spec.get("volumeName"):
            annotations["volume.kubernetes.io/storage-provisioner"] = PROVISIONER
            annotations["volume.beta.kubernetes.io/storage-provisioner"] = PROVISIONER
        if wanted != claim:
            claim = self._update("persistentvolumeclaims", wanted)
        volume_spec = _spec(volume)
        status = {
            "phase": "Bound",
            "accessModes": volume_spec.get("accessModes") or spec.get("accessModes") or [],
            "capacity": volume_spec.get("capacity") or {},
        }
        self._write_status("persistentvolumeclaims", claim, status)
        return None

    def _default_storage_class(self) -> str:
        classes = self.sandbox.store.list("storage.k8s.io", "storageclasses", None).items
        for storage_class in classes:
            if _annotations(storage_class).get(DEFAULT_CLASS_ANNOTATION) == "true":
                name: str = storage_class["metadata"]["name"]
                return name
        return ""

    def _provision(self, claim: KubeObject, name: str, storage_class: str) -> KubeObject:
        spec = _spec(claim)
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        found = self.sandbox.store.get(Key("storage.k8s.io", "storageclasses", "", storage_class))
        reclaim = (found or {}).get("reclaimPolicy") or "Delete"
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": reclaim,
                "storageClassName": storage_class,
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "claimRef": _claim_ref(claim),
                "hostPath": {
                    "path": f"/var/lib/gitmoor-sandbox/{name}",
                    "type": "DirectoryOrCreate",
                },
            },
        }
        return self._create("persistentvolumes", volume)

    def _release_volume(self, name: str, claim_uid: str) -> None:
        volume = self.sandbox.store.get(Key("", "persistentvolumes", "", name))
        if volume is None or (_spec(volume).get("claimRef") or {}).get("uid") != claim_uid:
            return
        if _spec(volume).get("persistentVolumeReclaimPolicy", "Retain") == "Delete":
            self._delete("persistentvolumes", volume)
        else:
            self._write_status("persistentvolumes", volume, {"phase": "Released"})


# --- object builders ---------------------------------------------------------------------


def _same(obj: KubeObject) -> KubeObject:
    return obj


def _owned_by(obj: KubeObject, owner: KubeObject) -> bool:
    return any(ref.uid == _uid(owner) and ref.controller for ref in owner_refs(obj))


def _revision(replicaset: KubeObject) -> int:
    value = _annotations(replicaset).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def _inherited(deployment: KubeObject) -> dict[str, str]:
    return {k: v for k, v in _annotations(deployment).items() if k not in _NOT_COPIED}


def _made_progress(before: KubeObject, after: KubeObject) -> bool:
    """The deployment controller's DeploymentProgressing."""

    def count(status: KubeObject, field: str) -> int:
        return _int(status.get(field), 0)

    old_before = count(before, "replicas") - count(before, "updatedReplicas")
    old_after = count(after, "replicas") - count(after, "updatedReplicas")
    return (
        count(after, "updatedReplicas") > count(before, "updatedReplicas")
        or old_after < old_before
        or count(after, "readyReplicas") > count(before, "readyReplicas")
        or count(after, "availableReplicas") > count(before, "availableReplicas")
    )


def _deployment_condition(
    type_: str, status: str, reason: str, message: str, now: str
) -> KubeObject:
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "reason": reason,
        "message": message,
    }


def _job_condition(type_: str, status: str, reason: str, message: str, now: str) -> KubeObject:
    return {
        "type": type_,
        "status": status,
        "lastProbeTime": now,
        "reason": reason,
        "message": message,
    }


def _job_finished_at(job: KubeObject) -> datetime | None:
    for type_ in ("Complete", "Failed"):
        condition = _condition(job, type_)
        if condition is not None and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime")) or datetime.now(UTC)
    return None


def _reference(obj: KubeObject) -> KubeObject:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }


def _claim_ref(claim: KubeObject) -> KubeObject:
    return {k: v for k, v in _reference(claim).items() if k != "resourceVersion"}


def _container_id(pod: KubeObject, name: str) -> str:
    digest = hashlib.sha256(f"{_uid(pod)}/{name}".encode()).hexdigest()
    return f"containerd://{digest}"


def _container_status(
    pod: KubeObject,
    container: KubeObject,
    prior: KubeObject | None,
    state: str,
    ready: bool,
    code: int,
    restarts: int,
    now: str,
) -> KubeObject:
    name = container.get("name", "")
    prior = prior or {}
    prior_state = prior.get("state") or {}
    status: KubeObject = {
        "name": name,
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "restartCount": restarts if state == "crashloop" else _int(prior.get("restartCount"), 0),
        "started": state == "running",
    }
    if state == "creating":
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return status
    status["containerID"] = _container_id(pod, name)
    started_at = (prior_state.get("running") or {}).get("startedAt") or now
    if state == "running":
        status["state"] = {"running": {"startedAt": started_at}}
        if prior.get("lastState"):
            status["lastState"] = prior["lastState"]
    elif state == "crashloop":
        pod_meta = pod["metadata"]
        status["state"] = {"waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off restarting failed container={name} "
                       f"pod={pod_meta['name']}_{pod_meta.get('namespace', '')}({_uid(pod)})",
        }}  # fmt: skip
        same = _int(prior.get("restartCount"), -1) == restarts and prior.get("lastState")
        status["lastState"] = prior["lastState"] if same else {"terminated": {
            "exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now,
            "containerID": status["containerID"],
        }}  # fmt: skip
    else:
        finished = prior_state.get("terminated") or {}
        status["state"] = {"terminated": {
            "exitCode": code,
            "reason": "Error" if code else "Completed",
            "startedAt": finished.get("startedAt") or started_at,
            "finishedAt": finished.get("finishedAt") or now,
            "containerID": status["containerID"],
        }}  # fmt: skip
    return status


def _init_container_status(
    pod: KubeObject, container: KubeObject, prior: KubeObject | None, state: str, now: str
) -> KubeObject:
    name = container.get("name", "")
    status: KubeObject = {
        "name": name,
        "image": container.get("image", ""),
        "imageID": "",
        "ready": state != "creating",
        "restartCount": 0,
        "started": False,
    }
    if state == "creating":
        status["state"] = {"waiting": {"reason": "PodInitializing"}}
        return status
    finished = ((prior or {}).get("state") or {}).get("terminated") or {}
    status["containerID"] = _container_id(pod, name)
    status["state"] = {"terminated": {
        "exitCode": 0, "reason": "Completed",
        "startedAt": finished.get("startedAt") or now,
        "finishedAt": finished.get("finishedAt") or now,
        "containerID": status["containerID"],
    }}  # fmt: skip
    return status


def _node_ip(node: KubeObject | None) -> str:
    for address in _status(node).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address", ""))
    return ""


def _node_object(name: str, number: int) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": f"10.244.{number}.0/24",
            "podCIDRs": [f"10.244.{number}.0/24"],
            "providerID": f"gitmoor-sandbox://{name}",
        },
    }


def _node_status(name: str, number: int) -> KubeObject:
    now = timestamp()
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}

    def condition(type_: str, status: str, reason: str, message: str) -> KubeObject:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": resources,
        "allocatable": dict(resources),
        "conditions": [
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": f"172.18.0.{number + 1}"},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "osImage": "gitmoor sandbox",
            "kernelVersion": "",
            "kubeletVersion": "v1.37.0",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "sandbox://simulated",
            "machineID": hashlib.sha256(name.encode()).hexdigest()[:32],
            "bootID": "",
        },
    }
