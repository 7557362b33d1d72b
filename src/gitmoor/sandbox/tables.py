"""Server-side printing: the ``meta.k8s.io`` Table that ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` on get, list
and watch, and prints the columns the server chooses. The columns and cells here are
those of kube-apiserver's printers (``pkg/printers/internalversion``) for built-in
resources, of the apiextensions-apiserver's table convertor (``additionalPrinterColumns``)
for custom resources, and of the generic convertor (Name, Created At) for everything
else. As on the apiserver:

- every column is sent, ``priority`` 1 ones included; kubectl shows those with ``-o wide``;
- ages are rendered by the server (``5m``, ``3d4h``) from ``now``; only the generic
  convertor's "Created At" carries the RFC 3339 timestamp itself;
- a row's ``object`` is a PartialObjectMetadata by default, the object with
  ``includeObject=Object``, nothing with ``includeObject=None``;
- cells read fields the apiserver defaults (a Service port's protocol, a Deployment's
  replicas …) with those defaults when they are absent.

Everything here is pure: objects and the current time in, Table objects out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gitmoor.humantime import human_duration, parse_time, since
from gitmoor.sandbox.errors import bad_request
from gitmoor.sandbox.fieldpath import to_json
from gitmoor.sandbox.schema import ResourceInfo

KubeObject = dict[str, Any]
Cell = str | int | float | bool | None

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("Metadata", "None", "Object")

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


# --- the Table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A TableColumnDefinition."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> KubeObject:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


CellsOf = Callable[[KubeObject, datetime], list[Cell]]
ConditionsOf = Callable[[KubeObject], list[KubeObject]]


def _no_conditions(obj: KubeObject) -> list[KubeObject]:
    return []


@dataclass(frozen=True)
class Printer:
    """The columns of a resource and how one object fills them in."""

    columns: tuple[Column, ...]
    cells: CellsOf
    conditions: ConditionsOf = field(default=_no_conditions)


@dataclass(frozen=True)
class TableView:
    """A Table as one request asks for it: the printer of its resource, the Table's API
    version (``meta.k8s.io/v1`` or ``v1beta1``) and what each row's ``object`` holds."""

    printer: Printer
    api_version: str = f"{TABLE_GROUP}/v1"
    include: str = "Metadata"

    def of_list(
        self,
        objects: Iterable[KubeObject],
        *,
        now: datetime,
        resource_version: str = "",
        continue_token: str | None = None,
        remaining: int | None = None,
    ) -> KubeObject:
        """The Table of a list (its resourceVersion, continue token and remaining count)."""
        metadata: KubeObject = {}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        if continue_token:
            metadata["continue"] = continue_token
        if remaining is not None:
            metadata["remainingItemCount"] = remaining
        return self._table(metadata, [self.row(obj, now=now) for obj in objects], headers=True)

    def of_object(self, obj: KubeObject, *, now: datetime, headers: bool = True) -> KubeObject:
        """The Table of one object: a get, or one watch event (the apiserver sends the
        column definitions with the first event of a watch only)."""
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        metadata = {"resourceVersion": rv} if rv else {}
        return self._table(metadata, [self.row(obj, now=now)], headers=headers)

    def row(self, obj: KubeObject, *, now: datetime) -> KubeObject:
        """One TableRow: the cells, the row conditions and the object as asked for."""
        row: KubeObject = {"cells": self.printer.cells(obj, now)}
        conditions = self.printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
        if self.include == "Object":
            row["object"] = obj
        elif self.include == "None":
            row["object"] = None
        else:
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": self.api_version,
                "metadata": obj.get("metadata") or {},
            }
        return row

    def _table(self, metadata: KubeObject, rows: list[KubeObject], *, headers: bool) -> KubeObject:
        columns = [c.definition() for c in self.printer.columns] if headers else None
        return {
            "kind": "Table",
            "apiVersion": self.api_version,
            "metadata": metadata,
            "columnDefinitions": columns,
            "rows": rows,
        }


def table_version(accept: str) -> str | None:
    """The Table API version an Accept header asks for before plain JSON
    (``meta.k8s.io/v1`` for kubectl), or None when it prefers JSON or names no Table."""
    clauses = []
    for position, clause in enumerate(accept.split(",")):
        kind, _, rest = clause.partition(";")
        params: dict[str, str] = {}
        for param in rest.split(";"):
            key, _, value = param.partition("=")
            if key.strip():
                params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            clauses.append((-quality, position, kind.strip().lower(), params))
    for _, _, kind, params in sorted(clauses, key=lambda clause: clause[:2]):
        if kind not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in params:
            return None
        if (
            params["as"] == "Table"
            and params.get("g") == TABLE_GROUP
            and params.get("v") in TABLE_VERSIONS
        ):
            return f"{TABLE_GROUP}/{params['v']}"
    return None


def include_object(value: str | None) -> str:
    """The ``includeObject`` query parameter, validated as the apiserver's TableOptions."""
    if not value:
        return "Metadata"
    if value not in INCLUDE_OBJECT:
        supported = ", ".join(f'"{v}"' for v in INCLUDE_OBJECT)
        raise bad_request(
            "Unable to convert to Table as requested: includeObject: Unsupported value: "
            f'"{value}": supported values: {supported}'
        )
    return value


def printer_for(info: ResourceInfo, crd: Mapping[str, Any] | None = None) -> Printer:
    """The printer of a resource: a custom resource's from the ``additionalPrinterColumns``
    of its CRD's version, a built-in one's as kube-apiserver prints it, else Name and
    Created At."""
    if crd is not None:
        versions = (crd.get("spec") or {}).get("versions") or []
        entry: Mapping[str, Any] = next((v for v in versions if v.get("name") == info.version), {})
        return _custom_printer(entry.get("additionalPrinterColumns") or [])
    if info.group == "events.k8s.io" and info.plural == "events":
        return Printer(_EVENT.columns, lambda obj, now: _EVENT.cells(_core_event(obj), now))
    return _BUILTIN.get((info.group, info.plural), DEFAULT_PRINTER)


def _age(obj: KubeObject, now: datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


# --- reading objects ------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> KubeObject:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> KubeObject:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> KubeObject:
    return obj.get("status") or {}


def _name(obj: KubeObject) -> str:
    return str(_meta(obj).get("name", ""))


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _condition(obj: KubeObject, type_: str) -> KubeObject | None:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), None)


def _condition_true(obj: KubeObject, type_: str) -> bool:
    condition = _condition(obj, type_)
    return condition is not None and condition.get("status") == "True"


def _format_labels(labels: Mapping[str, Any] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _selector_string(selector: Mapping[str, Any] | None) -> str | None:
    """A LabelSelector as ``metav1.LabelSelectorAsSelector(...).String()`` writes it; None
    when it does not convert."""
    if not selector:
        return ""
    requirements: list[tuple[str, str]] = [
        (key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or []))
        shown = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(str(operator))
        if shown is None:
            return None
        requirements.append((key, shown))
    return ",".join(text for _, text in sorted(requirements, key=lambda pair: pair[0]))


def _format_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` when empty, ``<error>`` when invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def _containers(template_spec: Mapping[str, Any]) -> list[Cell]:
    """The Containers and Images cells: names and images joined by commas."""
    containers = template_spec.get("containers") or []
    return [
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    ]


def _template_spec(obj: KubeObject) -> KubeObject:
    return _dig(obj, "spec", "template", "spec") or {}


def _with_more(items: Sequence[str], total: int, limit: int = 3) -> str:
    text = ",".join(items[:limit])
    return f"{text} + {total - limit} more..." if total > limit else text


# --- columns shared by many printers --------------------------------------------------
# Descriptions: the apiserver's own words where it writes them out; a summary of the
# field's documentation where it quotes that (kubectl never shows them).

NAME = Column("Name", format="name", description=_NAME_DOC)
AGE = Column("Age", description=_CREATED_DOC)
CONTAINERS = Column(
    "Containers", priority=1, description="Names of each container in the template."
)
IMAGES = Column(
    "Images", priority=1, description="Images referenced by each container in the template."
)
SELECTOR = Column("Selector", priority=1, description="A label query over the pods it selects.")


def _simple(columns: Iterable[Column], cells: CellsOf) -> Printer:
    return Printer((NAME, *columns), cells)


# --- workloads ------------------------------------------------------------------------

_POD_COMPLETED = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def _pod_conditions(pod: KubeObject) -> list[KubeObject]:
    phase = _status(pod).get("phase")
    if phase not in _POD_COMPLETED:
        return []
    return [
        {"type": "Completed", "status": "True", "reason": phase, "message": _POD_COMPLETED[phase]}
    ]


def _restartable(container: Mapping[str, Any] | None) -> bool:
    # A sidecar: an init container that keeps running beside the app containers.
    return (container or {}).get("restartPolicy") == "Always"


def _exit_reason(terminated: Mapping[str, Any]) -> str:
    if terminated.get("reason"):
        return str(terminated["reason"])
    if _int(terminated.get("signal")):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{_int(terminated.get('exitCode'))}"


def _latest(current: datetime | None, status: Mapping[str, Any]) -> datetime | None:
    finished = parse_time(_dig(status, "lastState", "terminated", "finishedAt"))
    if finished is None or (current is not None and current >= finished):
        return current
    return finished


def _pod_cells(pod: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(pod), _status(pod)
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(map(_restartable, init_specs.values()))
    ready = 0
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in status.get("conditions") or []
    ):
        reason = "SchedulingGated"

    restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    initializing = False
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        count = _int(container.get("restartCount"))
        restarts += count
        last_restart = _latest(last_restart, container)
        sidecar = _restartable(init_specs.get(container.get("name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _latest(last_sidecar_restart, container)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and _int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and container.get("started"):
            ready += bool(container.get("ready"))
            continue
        if terminated is not None:
            reason = f"Init:{_exit_reason(terminated)}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    initialized = _condition(pod, "Initialized")
    if not initializing or (initialized is not None and initialized.get("status") == "True"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += _int(container.get("restartCount"))
            last_restart = _latest(last_restart, container)
            state = container.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated is not None:
                reason = _exit_reason(terminated)
            elif container.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    shown_restarts = str(restarts)
    if restarts and last_restart is not None:
        ago = human_duration((now - last_restart).total_seconds())
        shown_restarts = f"{restarts} ({ago} ago)"
    gates = spec.get("readinessGates") or []
    readiness = "<none>"
    if gates:
        passed = sum(_condition_true(pod, str(g.get("conditionType"))) for g in gates)
        readiness = f"{passed}/{len(gates)}"
    ips = status.get("podIPs") or []
    ip = status.get("podIP") or (ips[0].get("ip") if ips else "") or "<none>"
    return [
        _name(pod), f"{ready}/{total}", reason, shown_restarts, _age(pod, now), ip,
        spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", readiness,
    ]  # fmt: skip


_POD = Printer(
    (
        NAME,
        Column(
            "Ready", description="The aggregate readiness state of this pod for accepting traffic."
        ),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            description="The number of times the containers in this pod have been restarted and "
            "when the last container in this pod has restarted.",
        ),
        AGE,
        Column("IP", priority=1, description="The IP address allocated to the pod."),
        Column("Node", priority=1, description="The node the pod is scheduled onto."),
        Column("Nominated Node", priority=1, description="The node the pod may preempt onto."),
        Column("Readiness Gates", priority=1, description="Readiness gates of the pod that hold."),
    ),
    _pod_cells,
    _pod_conditions,
)


def _deployment_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    selector = _selector_string(spec.get("selector"))
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{spec.get('replicas', 1)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        *_containers(_template_spec(obj)),
        "<invalid>" if selector is None else selector,
    ]


_DEPLOYMENT = _simple(
    (
        Column("Ready", description="Number of the pod with ready state"),
        Column("Up-to-date", description="Pods that have the desired template."),
        Column("Available", description="Pods ready for at least minReadySeconds."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ),
    _deployment_cells,
)


def _replicas(selector_text: Callable[[Any], str]) -> Printer:
    """ReplicaSets and ReplicationControllers; the selector of the one is a LabelSelector,
    of the other a plain map."""

    def cells(obj: KubeObject, now: datetime) -> list[Cell]:
        spec, status = _spec(obj), _status(obj)
        return [
            _name(obj),
            spec.get("replicas", 1),
            _int(status.get("replicas")),
            _int(status.get("readyReplicas")),
            _age(obj, now),
            *_containers(_template_spec(obj)),
            selector_text(spec.get("selector")),
        ]

    return _simple(
        (
            Column("Desired", "integer", "The number of desired replicas."),
            Column("Current", "integer", "The most recently observed number of replicas."),
            Column("Ready", "integer", "The number of ready replicas."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ),
        cells,
    )


def _statefulset_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    ready, desired = _int(_status(obj).get("readyReplicas")), _spec(obj).get("replicas", 1)
    return [_name(obj), f"{ready}/{desired}", _age(obj, now), *_containers(_template_spec(obj))]


_STATEFULSET = _simple(
    (Column("Ready", description="Number of the pod with ready state"), AGE, CONTAINERS, IMAGES),
    _statefulset_cells,
)

_DAEMONSET_COUNTS = (
    "desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled",
    "numberAvailable",
)  # fmt: skip


def _daemonset_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    status, template = _status(obj), _template_spec(obj)
    return [
        _name(obj),
        *(_int(status.get(count)) for count in _DAEMONSET_COUNTS),
        _format_labels(template.get("nodeSelector")),
        _age(obj, now),
        *_containers(template),
        _format_selector(_spec(obj).get("selector")),
    ]


_DAEMONSET = _simple(
    (
        Column("Desired", "integer", "Nodes that should run the daemon pod."),
        Column("Current", "integer", "Nodes running the daemon pod that should."),
        Column("Ready", "integer", "Nodes whose daemon pod is running and ready."),
        Column("Up-to-date", "integer", "Nodes running the updated daemon pod."),
        Column("Available", "integer", "Nodes whose daemon pod is available."),
        Column("Node Selector", description="The selector a node must match to run the pod."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ),
    _daemonset_cells,
)


def _job_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started = parse_time(status.get("startTime"))
    finished = parse_time(status.get("completionTime"))
    duration = ""
    if started is not None:
        duration = human_duration(((finished or now) - started).total_seconds())
    if _condition_true(obj, "Complete"):
        state = "Complete"
    elif _condition_true(obj, "Failed"):
        state = "Failed"
    elif _meta(obj).get("deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(obj, "Suspended"):
        state = "Suspended"
    elif _condition_true(obj, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    return [
        _name(obj), state, completions, duration, _age(obj, now),
        *_containers(_template_spec(obj)), _format_selector(spec.get("selector")),
    ]  # fmt: skip


_JOB = _simple(
    (
        Column("Status", description="Status of the job."),
        Column("Completions", description="The number of pods which reached phase Succeeded."),
        Column("Duration", description="Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ),
    _job_cells,
)


def _cronjob_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    last = status.get("lastScheduleTime")
    job = _dig(spec, "jobTemplate", "spec") or {}
    return [
        _name(obj),
        str(spec.get("schedule", "")),
        spec.get("timeZone") or "<none>",
        "True" if spec.get("suspend") else "False",
        len(status.get("active") or []),
        since(last, now) if last else "<none>",
        _age(obj, now),
        *_containers(_dig(job, "template", "spec") or {}),
        _format_selector(job.get("selector")),
    ]


_CRONJOB = _simple(
    (
        Column("Schedule", description="The schedule in Cron format."),
        Column("Timezone", description="The time zone name for the given schedule."),
        Column("Suspend", "boolean", "Whether subsequent executions are suspended."),
        Column("Active", "integer", "The number of currently running jobs."),
        Column("Last Schedule", description="When the job was last successfully scheduled."),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ),
    _cronjob_cells,
)


def _controllerrevision_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    owner = next((r for r in _meta(obj).get("ownerReferences") or [] if r.get("controller")), None)
    controller = "<none>"
    if owner is not None:
        group = str(owner.get("apiVersion", "")).rpartition("/")[0]
        kind = f"{owner.get('kind', '')}.{group}" if group else str(owner.get("kind", ""))
        controller = f"{kind.lower()}/{owner.get('name', '')}"
    return [_name(obj), controller, _int(obj.get("revision")), _age(obj, now)]


def _podtemplate_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    template = obj.get("template") or {}
    labels = _format_labels(_meta(template).get("labels"))
    return [_name(obj), *_containers(template.get("spec") or {}), labels]


# --- networking -----------------------------------------------------------------------


def _load_balancer(status: Mapping[str, Any]) -> str:
    """A load balancer's addresses, sorted and unique; unclipped, as the apiserver prints
    its tables wide."""
    found = {
        str(entry.get("ip") or entry.get("hostname"))
        for entry in _dig(status, "loadBalancer", "ingress") or []
        if entry.get("ip") or entry.get("hostname")
    }
    return ",".join(sorted(found))


def _external_ip(service: KubeObject) -> str:
    spec = _spec(service)
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        balancer = _load_balancer(_status(service))
        if external:
            return ",".join([*filter(None, balancer.split(",")), *external])
        return balancer or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    ports = []
    for port in spec.get("ports") or []:
        node_port = _int(port.get("nodePort"))
        through = f":{node_port}" if node_port > 0 else ""
        ports.append(f"{port.get('port')}{through}/{port.get('protocol') or 'TCP'}")
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(obj),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else "<none>",
        _external_ip(obj),
        ",".join(ports) or "<none>",
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


_SERVICE = _simple(
    (
        Column("Type", description="How the Service is exposed."),
        Column("Cluster-IP", description="The IP address of the service."),
        Column("External-IP", description="Addresses the service is reachable on from outside."),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE,
        Column("Selector", priority=1, description="The labels of the pods traffic goes to."),
    ),
    _service_cells,
)


def _endpoints_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    subsets = obj.get("subsets") or []
    if not subsets:
        return [_name(obj), "<none>", _age(obj, now)]
    shown: list[str] = []
    count = 0
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:  # a headless service without ports
            count += len(addresses)
            shown.extend(addresses)
        for port in ports:
            count += len(addresses)
            for address in addresses:
                host = f"[{address}]" if ":" in address else address
                shown.append(f"{host}:{port.get('port')}")
    return [_name(obj), _with_more(shown, count), _age(obj, now)]


def _endpointslice_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    ports = [
        str(p["port"]) if p.get("port") is not None else str(p.get("name") or "*")
        for p in obj.get("ports") or []
    ]
    addresses = [str(a) for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        _name(obj),
        str(obj.get("addressType", "")),
        _with_more(ports, len(ports)) or "<unset>",
        _with_more(addresses, len(addresses)) or "<unset>",
        _age(obj, now),
    ]


def _ingress_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    rules = spec.get("rules") or []
    hosts = [str(r["host"]) for r in rules[:3] if r.get("host")]
    shown_hosts = ",".join(hosts) or "*"
    if len(rules) > 3 and hosts:
        shown_hosts += f" + {len(rules) - 3} more..."
    return [
        _name(obj),
        spec.get("ingressClassName") or "<none>",
        shown_hosts,
        _load_balancer(_status(obj)),
        "80, 443" if spec.get("tls") else "80",
        _age(obj, now),
    ]


_INGRESS = _simple(
    (
        Column(
            "Class",
            description="The name of the IngressClass resource that should be used for additional "
            "configuration",
        ),
        Column(
            "Hosts",
            description="Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column(
            "Address",
            description="Address is a list containing ingress points for the load-balancer",
        ),
        Column("Ports", description="Ports of TLS configurations that open"),
        AGE,
    ),
    _ingress_cells,
)


def _ingressclass_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    parameters = spec.get("parameters")
    shown = "<none>"
    if parameters:
        group = f".{parameters['apiGroup']}" if parameters.get("apiGroup") else ""
        shown = f"{parameters.get('kind', '')}{group}/{parameters.get('name', '')}"
    return [_name(obj), str(spec.get("controller", "")), shown, _age(obj, now)]


# --- cluster --------------------------------------------------------------------------

_ROLE_LABEL = "node-role.kubernetes.io/"


def _node_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    ready = _condition(obj, "Ready")
    states = ["Unknown"]
    if ready is not None:
        states = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (_meta(obj).get("labels") or {}).items():
        if key.startswith(_ROLE_LABEL) and key != _ROLE_LABEL:
            roles.add(key.removeprefix(_ROLE_LABEL))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        found = [a for a in status.get("addresses") or [] if a.get("type") == kind]
        return str(found[0].get("address") or "<none>") if found else "<none>"

    return [
        _name(obj), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(obj, now),
        str(info.get("kubeletVersion", "")), address("InternalIP"), address("ExternalIP"),
        info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]  # fmt: skip


_NODE = _simple(
    (
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", priority=1, description="The node's internal address."),
        Column("External-IP", priority=1, description="The node's external address."),
        Column("OS-Image", priority=1, description="OS Image reported by the node."),
        Column("Kernel-Version", priority=1, description="Kernel Version reported by the node."),
        Column("Container-Runtime", priority=1, description="The node's container runtime."),
    ),
    _node_cells,
)


def _core_event(event: KubeObject) -> KubeObject:
    """An events.k8s.io/v1 Event in the core Event's fields, as the apiserver converts it
    before printing."""
    renamed = {
        "regarding": "involvedObject", "note": "message", "deprecatedSource": "source",
        "deprecatedFirstTimestamp": "firstTimestamp", "deprecatedLastTimestamp": "lastTimestamp",
        "deprecatedCount": "count",
    }  # fmt: skip
    return {renamed.get(key, key): value for key, value in event.items()}


def _event_cells(event: KubeObject, now: datetime) -> list[Cell]:
    first_seen = event.get("firstTimestamp") or event.get("eventTime")
    first = since(first_seen, now)
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = _int(event.get("count"))
    series = event.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # a singleton event of the new API carries no count
    involved = event.get("involvedObject") or {}
    target = str(involved.get("kind", "")).lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    source = event.get("source") or {}
    component = str(source.get("component") or event.get("reportingController") or "")
    host = str(source.get("host") or event.get("reportingInstance") or "")
    return [
        last, str(event.get("type", "")), str(event.get("reason", "")), target,
        str(involved.get("fieldPath", "")), f"{component}, {host}" if host else component,
        str(event.get("message", "")).strip(), first, count, _name(event),
    ]  # fmt: skip


_EVENT = Printer(
    (
        Column("Last Seen", description="When the event was last seen."),
        Column("Type", description="Type of this event (Normal, Warning)."),
        Column("Reason", description="Why the object is in its current state."),
        Column("Object", description="The object that this event is about."),
        Column("Subobject", priority=1, description="The part of the object it is about."),
        Column("Source", priority=1, description="The component reporting this event."),
        Column("Message", description="A human-readable description of the event."),
        Column("First Seen", priority=1, description="When the event was first seen."),
        Column("Count", priority=1, description="The number of times this event has occurred."),
        Column("Name", priority=1, format="name", description=_NAME_DOC),
    ),
    _event_cells,
)


def _namespace_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    return [_name(obj), str(_status(obj).get("phase", "")), _age(obj, now)]


def _secret_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    return [_name(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), _age(obj, now)]


def _configmap_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_name(obj), count, _age(obj, now)]


def _resourcequota_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    status = _status(obj)
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        text = f"{resource}: {used.get(resource, '0')}/{hard[resource]}"
        (limits if resource.startswith("limits.") else requests).append(text)
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _binding_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    ref = obj.get("roleRef") or {}
    subjects: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in obj.get("subjects") or []:
        kind, name = str(subject.get("kind")), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            name = f"{subject.get('namespace', '')}/{name}"
        subjects.get(kind, []).append(name)
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, now),
        *(", ".join(names) for names in subjects.values()),
    ]


def _binding_printer(kind: str) -> Printer:
    return _simple(
        (
            Column("Role", description="The role the subjects are bound to."),
            AGE,
            Column("Users", priority=1, description=f"Users in the {kind}"),
            Column("Groups", priority=1, description=f"Groups in the {kind}"),
            Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {kind}"),
        ),
        _binding_cells,
    )


def _budget_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    least, most = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [
        _name(obj),
        "N/A" if least is None else str(least),
        "N/A" if most is None else str(most),
        _int(_status(obj).get("disruptionsAllowed")),
        _age(obj, now),
    ]


def _hpa_metrics(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """The metrics and their current values; autoscaling/v1's CPU target as the apiserver
    converts it to autoscaling/v2's."""
    metrics, current = list(spec.get("metrics") or []), list(status.get("currentMetrics") or [])
    target = spec.get("targetCPUUtilizationPercentage")
    if not metrics and target is not None:
        wanted = {"type": "Utilization", "averageUtilization": target}
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": wanted}}]
        utilization = status.get("currentCPUUtilizationPercentage")
        if utilization is not None:
            now = {"averageUtilization": utilization}
            current = [{"type": "Resource", "resource": {"name": "cpu", "current": now}}]
    return metrics, current


_METRIC_SOURCES = {
    "External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
    "ContainerResource": "containerResource",
}  # fmt: skip


def _hpa_target(source_key: str, source: KubeObject, status: KubeObject | None) -> str:
    target = source.get("target") or {}
    current = (status or {}).get("current") or {}
    named = f"{source.get('name')}: " if source_key in ("resource", "containerResource") else ""
    if source_key == "pods":
        value = current.get("averageValue") if status else None
        return f"{value or '<unknown>'}/{target.get('averageValue')}"
    if target.get("averageValue") is not None:
        suffix = " (avg)" if source_key in ("external", "object") else ""
        value = current.get("averageValue") or "<unknown>"
        return f"{named}{value}/{target['averageValue']}{suffix}"
    if source_key in ("external", "object"):
        value = current.get("value") if status else None
        return f"{value or '<unknown>'}/{target.get('value')}"
    utilization, wanted = current.get("averageUtilization"), target.get("averageUtilization")
    value = "<unknown>" if utilization is None else f"{utilization}%"
    return f"{named}{value}/{'<auto>' if wanted is None else f'{wanted}%'}"


def _hpa_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    metrics, statuses = _hpa_metrics(spec, status)
    shown = []
    for index, metric in enumerate(metrics):
        key = _METRIC_SOURCES.get(str(metric.get("type")))
        if key is None:
            shown.append("<unknown type>")
            continue
        current = statuses[index].get(key) if index < len(statuses) else None
        shown.append(_hpa_target(key, metric.get(key) or {}, current))
    targets = ", ".join(shown[:2]) + (f" + {len(shown) - 2} more..." if len(shown) > 2 else "")
    ref, least = spec.get("scaleTargetRef") or {}, spec.get("minReplicas")
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        targets or "<none>",
        "<unset>" if least is None else str(least),
        _int(spec.get("maxReplicas")),
        _int(status.get("currentReplicas")),
        _age(obj, now),
    ]


_HPA = _simple(
    (
        Column("Reference", description="The scaled resource."),
        Column("Targets", description="The metrics the replica count follows."),
        Column("MinPods", description="The lower limit for the number of replicas."),
        Column("MaxPods", description="The upper limit for the number of replicas."),
        Column("Replicas", description="The current number of replicas."),
        AGE,
    ),
    _hpa_cells,
)


def _priorityclass_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    policy = obj.get("preemptionPolicy") or "PreemptLowerPriority"
    return [
        _name(obj),
        _int(obj.get("value")),
        bool(obj.get("globalDefault")),
        _age(obj, now),
        policy,
    ]


def _apiservice_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    service = _spec(obj).get("service")
    available = _condition(obj, "Available")
    state = "Unknown"
    if available is not None:
        state = str(available.get("status", ""))
        if state != "True" and available.get("reason"):
            state = f"{state} ({available['reason']})"
    where = f"{service.get('namespace', '')}/{service.get('name', '')}" if service else "Local"
    return [_name(obj), where, state, _age(obj, now)]


def _policy_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    kind = spec.get("paramKind")
    param = f"{kind.get('apiVersion', '')}/{kind.get('kind', '')}" if kind else "<unset>"
    rules = spec.get("validations") if "validations" in spec else spec.get("mutations")
    return [_name(obj), len(rules or []), param, _age(obj, now)]


def _count_cells(*path: str) -> CellsOf:
    """Name, the length of the list at ``path``, and Age."""

    def cells(obj: KubeObject, now: datetime) -> list[Cell]:
        return [_name(obj), len(_dig(obj, *path) or []), _age(obj, now)]

    return cells


def _text_cells(*path: str) -> CellsOf:
    """Name, the text at ``path``, and Age."""

    def cells(obj: KubeObject, now: datetime) -> list[Cell]:
        return [_name(obj), str(_dig(obj, *path) or ""), _age(obj, now)]

    return cells


# --- storage --------------------------------------------------------------------------


def _access_modes(modes: Iterable[Any] | None) -> str:
    given = set(modes or ())
    short = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP"))  # fmt: skip
    return ",".join(abbreviation for mode, abbreviation in short if mode in given)


def _storage_class_of(obj: KubeObject) -> str:
    legacy = (_meta(obj).get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
    return str(legacy if legacy is not None else _spec(obj).get("storageClassName") or "")


def _phase(obj: KubeObject) -> str:
    deleting = _meta(obj).get("deletionTimestamp")
    return "Terminating" if deleting else str(_status(obj).get("phase") or "")


def _volume_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    claim = spec.get("claimRef")
    return [
        _name(obj),
        str(_dig(spec, "capacity", "storage") or "0"),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "Retain",
        _phase(obj),
        f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
        _storage_class_of(obj),
        spec.get("volumeAttributesClassName") or "<unset>",
        str(_status(obj).get("reason", "")),
        _age(obj, now),
        spec.get("volumeMode") or "Filesystem",
    ]


_VOLUME = _simple(
    (
        Column("Capacity", description="The volume's capacity."),
        Column("Access Modes", description="The ways the volume can be mounted."),
        Column("Reclaim Policy", description="What happens to the volume when released."),
        Column("Status", description="Whether the volume is available, bound or released."),
        Column("Claim", description="The claim bound to the volume."),
        Column("StorageClass", description="StorageClass of the pv"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
        Column("Reason", description="Why the volume is in its phase."),
        AGE,
        Column("VolumeMode", priority=1, description="Filesystem or raw Block."),
    ),
    _volume_cells,
)


def _claim_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    bound = bool(spec.get("volumeName"))
    return [
        _name(obj),
        _phase(obj),
        str(spec.get("volumeName", "")),
        str(_dig(status, "capacity", "storage") or "0") if bound else "",
        _access_modes(status.get("accessModes")) if bound else "",
        _storage_class_of(obj),
        spec.get("volumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "Filesystem",
    ]


_CLAIM = _simple(
    (
        Column("Status", description="The phase of the claim."),
        Column("Volume", description="The volume bound to the claim."),
        Column("Capacity", description="The capacity of the bound volume."),
        Column("Access Modes", description="The access modes of the bound volume."),
        Column("StorageClass", description="StorageClass of the pvc"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        AGE,
        Column("VolumeMode", priority=1, description="Filesystem or raw Block."),
    ),
    _claim_cells,
)

_DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _storageclass_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    annotations = _meta(obj).get("annotations") or {}
    default = any(annotations.get(key) == "true" for key in _DEFAULT_CLASS)
    return [
        _name(obj) + (" (default)" if default else ""),
        str(obj.get("provisioner", "")),
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        _age(obj, now),
    ]


def _csidriver_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    audiences = spec.get("tokenRequests")
    return [
        _name(obj),
        spec.get("attachRequired", True) is not False,
        bool(spec.get("podInfoOnMount")),
        bool(spec.get("storageCapacity")),
        "<unset>" if audiences is None else ",".join(str(t.get("audience", "")) for t in audiences),
        bool(spec.get("requiresRepublish")),
        ",".join(spec.get("volumeLifecycleModes") or ["Persistent"]),
        _age(obj, now),
    ]


def _attachment_cells(obj: KubeObject, now: datetime) -> list[Cell]:
    spec = _spec(obj)
    return [
        _name(obj),
        str(spec.get("attacher", "")),
        str(_dig(spec, "source", "persistentVolumeName") or ""),
        str(spec.get("nodeName", "")),
        bool(_status(obj).get("attached")),
        _age(obj, now),
    ]


_WEBHOOKS = _simple(
    (
        Column(
            "Webhooks",
            "integer",
            "Webhooks indicates the number of webhooks registered in this configuration",
        ),
        AGE,
    ),
    _count_cells("webhooks"),
)
_PARAM_KIND = Column(
    "ParamKind",
    description="ParamKind specifies the kind of resources used to parameterize this policy",
)

_BUILTIN: Mapping[tuple[str, str], Printer] = {
    ("", "pods"): _POD,
    ("", "podtemplates"): _simple(
        (
            Column("Containers", description="Names of each container in the template."),
            Column("Images", description="Images referenced by each container in the template."),
            Column("Pod Labels", description="The labels for the pod template."),
        ),
        _podtemplate_cells,
    ),
    ("", "replicationcontrollers"): _replicas(_format_labels),
    ("", "services"): _SERVICE,
    ("", "endpoints"): _simple(
        (Column("Endpoints", description="The addresses and ports of the endpoints."), AGE),
        _endpoints_cells,
    ),
    ("", "nodes"): _NODE,
    ("", "events"): _EVENT,
    ("", "namespaces"): _simple(
        (Column("Status", description="The status of the namespace"), AGE), _namespace_cells
    ),
    ("", "secrets"): _simple(
        (
            Column("Type", description="The type of the secret's data."),
            Column("Data", description="The number of entries in the secret's data."),
            AGE,
        ),
        _secret_cells,
    ),
    ("", "configmaps"): _simple(
        (Column("Data", description="The number of entries in the config map."), AGE),
        _configmap_cells,
    ),
    ("", "serviceaccounts"): _simple(
        (Column("Secrets", description="The secrets pods of the account may use."), AGE),
        _count_cells("secrets"),
    ),
    ("", "persistentvolumes"): _VOLUME,
    ("", "persistentvolumeclaims"): _CLAIM,
    ("", "resourcequotas"): _simple(
        (
            Column(
                "Request",
                description="Request represents a minimum amount of cpu/memory that a container "
                "may consume.",
            ),
            Column(
                "Limit",
                description="Limits control the maximum amount of cpu/memory that a container may "
                "use independent of contention on the node.",
            ),
            AGE,
        ),
        _resourcequota_cells,
    ),
    ("apps", "deployments"): _DEPLOYMENT,
    ("apps", "replicasets"): _replicas(_format_selector),
    ("apps", "statefulsets"): _STATEFULSET,
    ("apps", "daemonsets"): _DAEMONSET,
    ("apps", "controllerrevisions"): _simple(
        (
            Column("Controller", description="Controller of the object"),
            Column("Revision", description="The revision of the state the object holds."),
            AGE,
        ),
        _controllerrevision_cells,
    ),
    ("batch", "jobs"): _JOB,
    ("batch", "cronjobs"): _CRONJOB,
    ("networking.k8s.io", "ingresses"): _INGRESS,
    ("networking.k8s.io", "ingressclasses"): _simple(
        (
            Column(
                "Controller", description="Controller that is responsible for handling this class"
            ),
            Column(
                "Parameters", description="A reference to a resource with additional parameters"
            ),
            AGE,
        ),
        _ingressclass_cells,
    ),
    ("networking.k8s.io", "networkpolicies"): _simple(
        (Column("Pod-Selector", description="The pods the policy applies to."), AGE),
        lambda obj, now: [
            _name(obj),
            _format_selector(_spec(obj).get("podSelector")),
            _age(obj, now),
        ],
    ),
    ("discovery.k8s.io", "endpointslices"): _simple(
        (
            Column("AddressType", description="The type of the slice's addresses."),
            Column("Ports", description="The ports each endpoint exposes."),
            Column("Endpoints", description="The addresses of the slice's endpoints."),
            AGE,
        ),
        _endpointslice_cells,
    ),
    ("policy", "poddisruptionbudgets"): _simple(
        (
            Column(
                "Min Available", description="The minimum number of pods that must be available."
            ),
            Column(
                "Max Unavailable", description="The maximum number of pods that may be unavailable."
            ),
            Column(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE,
        ),
        _budget_cells,
    ),
    ("rbac.authorization.k8s.io", "rolebindings"): _binding_printer("roleBinding"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding_printer("clusterRoleBinding"),
    ("autoscaling", "horizontalpodautoscalers"): _HPA,
    ("scheduling.k8s.io", "priorityclasses"): _simple(
        (
            Column("Value", "integer", "The priority of pods of the class."),
            Column("Global-Default", "boolean", "Whether pods without a class get this one."),
            AGE,
            Column("PreemptionPolicy", description="Whether pods of the class preempt others."),
        ),
        _priorityclass_cells,
    ),
    ("coordination.k8s.io", "leases"): _simple(
        (Column("Holder", description="The identity of the holder of the lease."), AGE),
        _text_cells("spec", "holderIdentity"),
    ),
    ("storage.k8s.io", "storageclasses"): _simple(
        (
            Column("Provisioner", description="The type of the provisioner."),
            Column("ReclaimPolicy", description="The reclaim policy of provisioned volumes."),
            Column("VolumeBindingMode", description="When claims are bound and provisioned."),
            Column("AllowVolumeExpansion", description="Whether volumes may be expanded."),
            AGE,
        ),
        _storageclass_cells,
    ),
    ("storage.k8s.io", "csidrivers"): _simple(
        (
            Column("AttachRequired", "boolean", "Whether volumes need an attach operation."),
            Column("PodInfoOnMount", "boolean", "Whether mounts get pod information."),
            Column("StorageCapacity", "boolean", "Whether scheduling considers capacity."),
            Column("TokenRequests", description="The audiences of tokens the driver gets."),
            Column("RequiresRepublish", "boolean", "Whether volumes are republished."),
            Column("Modes", description="The kinds of volumes the driver supports."),
            AGE,
        ),
        _csidriver_cells,
    ),
    ("storage.k8s.io", "csinodes"): _simple(
        (
            Column(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            AGE,
        ),
        _count_cells("spec", "drivers"),
    ),
    ("storage.k8s.io", "volumeattachments"): _simple(
        (
            Column("Attacher", format="name", description="The volume driver that attaches."),
            Column("PV", description="The persistent volume to attach."),
            Column("Node", description="The node the volume is attached to."),
            Column("Attached", "boolean", "Whether the volume is attached."),
            AGE,
        ),
        _attachment_cells,
    ),
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): _WEBHOOKS,
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): _WEBHOOKS,
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): _simple(
        (
            Column(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this "
                "configuration",
            ),
            _PARAM_KIND,
            AGE,
        ),
        _policy_cells,
    ),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"): _simple(
        (
            Column(
                "Mutations",
                "integer",
                "Mutation indicates the number of mutations rules defined in this configuration",
            ),
            _PARAM_KIND,
            AGE,
        ),
        _policy_cells,
    ),
    ("node.k8s.io", "runtimeclasses"): _simple(
        (Column("Handler", description="The runtime handler of the class."), AGE),
        _text_cells("handler"),
    ),
    ("apiregistration.k8s.io", "apiservices"): _simple(
        (
            Column(
                "Service", description="The reference to the service that hosts this API endpoint."
            ),
            Column("Available", description="Whether this service is available."),
            AGE,
        ),
        _apiservice_cells,
    ),
}


# --- the generic convertor ------------------------------------------------------------


def _created_at(obj: KubeObject) -> str:
    moment = parse_time(_meta(obj).get("creationTimestamp"))
    return (moment or datetime(1, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


DEFAULT_PRINTER = Printer(
    (NAME, Column("Created At", "date", _CREATED_DOC)),
    lambda obj, now: [_name(obj), _created_at(obj)],
)


# --- custom resources: additionalPrinterColumns ---------------------------------------


def _custom_printer(definitions: Sequence[Mapping[str, Any]]) -> Printer:
    """The apiextensions-apiserver's convertor: Name, then each printer column (an Age
    column of the creation timestamp when the version declares none)."""
    if not definitions:
        definitions = [
            {"name": "Age", "type": "date", "description": _CREATED_DOC,
             "jsonPath": ".metadata.creationTimestamp"},
        ]  # fmt: skip
    columns: list[Column] = []
    paths: list[list[_Step]] = []
    for definition in definitions:
        text = str(definition.get("jsonPath", ""))
        try:
            paths.append(parse_json_path(text))
        except ValueError:
            break  # as the apiserver: the columns before the one it cannot parse
        columns.append(
            Column(
                str(definition.get("name", "")),
                str(definition.get("type", "")),
                str(definition.get("description") or "")
                or f"Custom resource definition column (in JSONPath format): {text}",
                _int(definition.get("priority")),
                str(definition.get("format") or ""),
            )
        )

    def cells(obj: KubeObject, now: datetime) -> list[Cell]:
        row: list[Cell] = [_name(obj)]
        for column, path in zip(columns, paths, strict=True):
            try:
                found = evaluate_json_path(path, obj)
            except ValueError:
                found = []
            row.append(_custom_cell(column.type, found[0], now) if found else None)
        return row

    return Printer((NAME, *columns), cells)


def _custom_cell(kind: str, value: Any, now: datetime) -> Cell:
    """A printer column's cell from the first value its JSONPath found."""
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return value if isinstance(value, str) else _go_text(value)
    if kind == "integer" and number:
        return int(value)
    if kind == "number" and number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        if value in ("", "null"):
            return "<unknown>"
        moment = parse_time(value)
        if moment is None:
            return "<invalid>"
        return human_duration((now - moment).total_seconds())
    return None


def _go_text(value: Any) -> str:
    """A value as the JSONPath printer writes it: JSON for objects and lists (Go's
    encoding, HTML-escaped), Go's ``%v`` for scalars."""
    if isinstance(value, dict | list):
        text = to_json(value)
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escaped)
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in exponent form below 1e-4 and from
    1e6 on (``1.5e+06``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if value == 0:
        return f"{prefix}0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
        power = point - 1
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{prefix}{text}{'0' * (point - len(text))}"
    return f"{prefix}{text[:point]}.{text[point:]}"


# --- JSONPath, the part of client-go's that printer columns use ------------------------


@dataclass(frozen=True)
class _Step:
    kind: str  # field, recursive, wildcard, index, slice, filter
    names: tuple[str, ...] = ()
    indexes: tuple[int, ...] = ()
    bounds: tuple[int | None, int | None, int | None] = (None, None, None)
    left: tuple[_Step, ...] = ()
    operator: str = ""
    right: Any = None
    right_path: tuple[_Step, ...] | None = None


_FILTER = re.compile(r"^\?\(\s*(@[^=!<>]*?)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")
_TERMINATORS = frozenset(".,[]$@{} \t\r\n")


def parse_json_path(text: str) -> list[_Step]:
    """Parse a printer column's path (``.status.conditions[?(@.type=="Ready")].status``):
    fields (``\\.`` escapes a dot), ``..`` recursive descent, ``*`` and ``[*]``, indexes,
    slices, quoted names and unions, and filters comparing with a literal or a path."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = text.removeprefix("$")
    steps: list[_Step] = []
    position = 0
    while position < len(text):
        char = text[position]
        if text.startswith("..", position):
            steps.append(_Step("recursive"))
            position += 1  # the second dot starts the field that follows
            if position + 1 < len(text) and text[position + 1] == "[":
                position += 1
            continue
        if char == ".":
            name, position = _read_name(text, position + 1)
            steps.append(_Step("wildcard") if name == "*" else _Step("field", (name,)))
        elif char == "[":
            end = _closing_bracket(text, position)
            steps.append(_bracket(text[position + 1 : end].strip()))
            position = end + 1
        else:
            raise ValueError(f"unrecognized character in JSONPath {text!r} at {position}")
    return steps


def _read_name(text: str, position: int) -> tuple[str, int]:
    name: list[str] = []
    while position < len(text) and text[position] not in _TERMINATORS:
        if text[position] == "\\" and position + 1 < len(text):
            position += 1
        name.append(text[position])
        position += 1
    if not name:
        raise ValueError(f"a field name is missing in JSONPath {text!r}")
    return "".join(name), position


def _closing_bracket(text: str, start: int) -> int:
    quote: str | None = None
    depth = 0
    for position in range(start + 1, len(text)):
        char = text[position]
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "]" and depth == 0:
            return position
    raise ValueError(f"unclosed [ in JSONPath {text!r}")


def _bracket(inside: str) -> _Step:
    if inside == "*":
        return _Step("wildcard")
    if inside.startswith("?"):
        match = _FILTER.match(inside)
        if match is None:
            raise ValueError(f"unrecognized filter {inside!r}")
        left, operator, right = match.groups()
        left_path = tuple(parse_json_path(left[1:]))
        if operator is None:
            return _Step("filter", left=left_path, operator="exists")
        if right.startswith("@"):
            return _Step("filter", left=left_path, operator=operator,
                         right_path=tuple(parse_json_path(right[1:])))  # fmt: skip
        return _Step("filter", left=left_path, operator=operator, right=_literal(right))
    parts = [p.strip() for p in inside.split(",")]
    if all(len(p) >= 2 and p[0] == p[-1] and p[0] in "'\"" for p in parts):
        return _Step("field", tuple(p[1:-1] for p in parts))
    if len(parts) == 1 and ":" in inside:
        pieces = [p.strip() for p in inside.split(":")]
        if len(pieces) > 3:
            raise ValueError(f"unrecognized slice {inside!r}")
        numbers = [int(p) if p else None for p in pieces] + [None] * (3 - len(pieces))
        return _Step("slice", bounds=(numbers[0], numbers[1], numbers[2]))
    return _Step("index", indexes=tuple(int(p) for p in parts))


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"unrecognized literal {text!r} in a JSONPath filter") from None


def evaluate_json_path(steps: Sequence[_Step], value: Any) -> list[Any]:
    """The values a parsed path finds in ``value``, in order; missing keys find nothing."""
    found = [value]
    for step in steps:
        found = [result for item in found for result in _apply(step, item)]
    return found


def _apply(step: _Step, value: Any) -> list[Any]:
    if step.kind == "field":
        if not isinstance(value, dict):
            return []
        return [value[name] for name in step.names if name in value]
    if step.kind == "wildcard":
        if isinstance(value, dict):
            return [value[key] for key in sorted(value)]
        return list(value) if isinstance(value, list) else []
    if step.kind == "recursive":
        return list(_descendants(value))
    if not isinstance(value, list):
        return []
    if step.kind == "index":
        return [value[i] for i in step.indexes if -len(value) <= i < len(value)]
    if step.kind == "slice":
        start, stop, stride = step.bounds
        return value[slice(start, stop, stride)]
    return [item for item in value if _passes(step, item)]


def _descendants(value: Any) -> Iterable[Any]:
    yield value
    children = (
        [value[key] for key in sorted(value)] if isinstance(value, dict) else value
        if isinstance(value, list) else []
    )  # fmt: skip
    for child in children:
        yield from _descendants(child)


def _passes(step: _Step, item: Any) -> bool:
    lefts = evaluate_json_path(step.left, item)
    if not lefts:
        return False
    if step.operator == "exists":
        return True
    if len(lefts) > 1:
        raise ValueError("a JSONPath filter can only compare one element at a time")
    left = lefts[0]
    if step.right_path is not None:
        rights = evaluate_json_path(step.right_path, item)
        if len(rights) != 1:
            return False
        right = rights[0]
    else:
        right = step.right
    left_number = isinstance(left, int | float) and not isinstance(left, bool)
    right_number = isinstance(right, int | float) and not isinstance(right, bool)
    if left_number != right_number or (not left_number and type(left) is not type(right)):
        raise ValueError(f"cannot compare {left!r} with {right!r} in a JSONPath filter")
    if step.operator == "==":
        return bool(left == right)
    if step.operator == "!=":
        return bool(left != right)
    if isinstance(left, bool):
        raise ValueError("booleans cannot be ordered in a JSONPath filter")
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[step.operator](left, right)
