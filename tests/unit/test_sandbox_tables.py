"""Server-side printing (gitmoor.sandbox.tables): the Table kube-apiserver sends kubectl get.

Expected cells are those kube-apiserver's printers and the apiextensions-apiserver's table
convertor produce for the same objects at the same moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import ResourceTable
from gitmoor.sandbox.tables import (
    DEFAULT_PRINTER,
    TableView,
    evaluate_json_path,
    include_object,
    parse_json_path,
    printer_for,
    table_version,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
TABLE = ResourceTable.builtin()


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "apps", "creationTimestamp": ago(minutes=5), **more}


def columns(group: str, version: str, plural: str) -> list[tuple[str, str, int]]:
    """(name, type, priority) of each column of a built-in resource."""
    info = TABLE.lookup(group, version, plural)
    assert info is not None
    return [(c.name, c.type, c.priority) for c in printer_for(info).columns]


def row(group: str, version: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The cells of one object's row, by column name."""
    info = TABLE.lookup(group, version, plural)
    assert info is not None
    table = TableView(printer_for(info)).of_list([obj], now=NOW)
    names = [c["name"] for c in table["columnDefinitions"]]
    [only] = table["rows"]
    assert len(only["cells"]) == len(names)
    return dict(zip(names, only["cells"], strict=True))


# --- pods ------------------------------------------------------------------------------


def running_pod(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("web-1"),
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.5",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "web", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
            **status,
        },
    }


def test_pod_columns() -> None:
    assert columns("", "v1", "pods") == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]


def test_running_pod() -> None:
    assert row("", "v1", "pods", running_pod()) == {
        "Name": "web-1",
        "Ready": "1/1",
        "Status": "Running",
        "Restarts": "0",
        "Age": "5m",
        "IP": "10.244.1.5",
        "Node": "node-1",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }


def test_crash_looping_pod_shows_the_reason_and_when_it_last_restarted() -> None:
    pod = running_pod(
        conditions=[{"type": "Ready", "status": "False"}],
        containerStatuses=[
            {
                "name": "web",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=40)}},
            }
        ],
    )
    cells = row("", "v1", "pods", pod)
    assert (cells["Ready"], cells["Status"], cells["Restarts"]) == (
        "0/1",
        "CrashLoopBackOff",
        "3 (40s ago)",
    )


def test_completed_pod_and_its_row_condition() -> None:
    pod = running_pod(
        phase="Succeeded",
        containerStatuses=[
            {
                "name": "web",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
        ],
    )
    info = TABLE.lookup("", "v1", "pods")
    assert info is not None
    [only] = TableView(printer_for(info)).of_list([pod], now=NOW)["rows"]
    assert only["cells"][1:3] == ["0/1", "Completed"]
    assert only["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_pod_status_reasons() -> None:
    terminating = running_pod()
    terminating["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert row("", "v1", "pods", terminating)["Status"] == "Terminating"

    exited = running_pod(
        containerStatuses=[{"name": "web", "state": {"terminated": {"exitCode": 2}}}]
    )
    assert row("", "v1", "pods", exited)["Status"] == "ExitCode:2"

    pending = running_pod(phase="Pending", containerStatuses=[
        {"name": "web", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    ])  # fmt: skip
    assert row("", "v1", "pods", pending)["Status"] == "ContainerCreating"

    gated = running_pod(
        phase="Pending",
        containerStatuses=[],
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert row("", "v1", "pods", gated)["Status"] == "SchedulingGated"


def test_pod_init_containers_and_sidecars() -> None:
    pod = running_pod(
        phase="Pending",
        initContainerStatuses=[
            {"name": "migrate", "restartCount": 2,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ],
    )  # fmt: skip
    pod["spec"]["initContainers"] = [{"name": "migrate", "image": "tool"}]
    cells = row("", "v1", "pods", pod)
    assert (cells["Status"], cells["Restarts"]) == ("Init:CrashLoopBackOff", "2")

    pod["status"]["initContainerStatuses"] = [{"name": "migrate", "state": {"running": {}}}]
    assert row("", "v1", "pods", pod)["Status"] == "Init:0/1"

    # A sidecar (an init container that keeps running) counts as a container.
    pod["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    pod["status"]["phase"] = "Running"
    pod["status"]["initContainerStatuses"] = [
        {"name": "proxy", "started": True, "ready": True, "restartCount": 1,
         "state": {"running": {}}},
    ]  # fmt: skip
    cells = row("", "v1", "pods", pod)
    assert (cells["Ready"], cells["Status"], cells["Restarts"]) == ("2/2", "Running", "1")


def test_pod_readiness_gates() -> None:
    pod = running_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "lb/ready"}, {"conditionType": "other"}]
    pod["status"]["conditions"].append({"type": "lb/ready", "status": "True"})
    assert row("", "v1", "pods", pod)["Readiness Gates"] == "1/2"


# --- workloads -------------------------------------------------------------------------


def workload(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                {"name": "log", "image": "fluent:2"}]},
    }  # fmt: skip
    return {
        "kind": kind,
        "metadata": meta("web"),
        "spec": {"template": template, **spec},
        "status": status,
    }


def test_deployment() -> None:
    assert [c[0] for c in columns("apps", "v1", "deployments")] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
    }
    deployment = workload(
        "Deployment",
        {"replicas": 3, "selector": selector},
        {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1},
    )
    assert row("apps", "v1", "deployments", deployment) == {
        "Name": "web",
        "Ready": "1/3",
        "Up-to-date": 2,
        "Available": 1,
        "Age": "5m",
        "Containers": "web,log",
        "Images": "nginx:1,fluent:2",
        "Selector": "app=web,tier in (a,b)",
    }


def test_replicaset_statefulset_daemonset() -> None:
    selector = {"matchLabels": {"app": "web"}}
    replicaset = workload(
        "ReplicaSet", {"replicas": 2, "selector": selector}, {"replicas": 2, "readyReplicas": 1}
    )
    assert list(row("apps", "v1", "replicasets", replicaset).values()) == [
        "web", 2, 2, 1, "5m", "web,log", "nginx:1,fluent:2", "app=web",
    ]  # fmt: skip
    controller = workload("ReplicationController", {"selector": {"app": "web"}}, {})
    assert list(row("", "v1", "replicationcontrollers", controller).values()) == [
        "web", 1, 0, 0, "5m", "web,log", "nginx:1,fluent:2", "app=web",
    ]  # fmt: skip
    statefulset = workload("StatefulSet", {"replicas": 3}, {"readyReplicas": 2})
    assert list(row("apps", "v1", "statefulsets", statefulset).values()) == [
        "web", "2/3", "5m", "web,log", "nginx:1,fluent:2",
    ]  # fmt: skip
    counts = {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
        "updatedNumberScheduled": 3, "numberAvailable": 2,
    }  # fmt: skip
    daemonset = workload("DaemonSet", {"selector": selector}, counts)
    daemonset["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    assert row("apps", "v1", "daemonsets", daemonset) == {
        "Name": "web", "Desired": 3, "Current": 3, "Ready": 2, "Up-to-date": 3, "Available": 2,
        "Node Selector": "kubernetes.io/os=linux", "Age": "5m", "Containers": "web,log",
        "Images": "nginx:1,fluent:2", "Selector": "app=web",
    }  # fmt: skip


def test_jobs() -> None:
    assert [c[0] for c in columns("batch", "v1", "jobs")][:5] == [
        "Name", "Status", "Completions", "Duration", "Age",
    ]  # fmt: skip
    done = workload(
        "Job",
        {"completions": 1, "parallelism": 1},
        {
            "succeeded": 1,
            "startTime": ago(minutes=4),
            "completionTime": ago(minutes=3, seconds=50),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    )
    cells = row("batch", "v1", "jobs", done)
    assert [cells[c] for c in ("Status", "Completions", "Duration", "Age", "Selector")] == [
        "Complete", "1/1", "10s", "5m", "<none>",
    ]  # fmt: skip
    running = workload("Job", {"parallelism": 3}, {"startTime": ago(seconds=30)})
    cells = row("batch", "v1", "jobs", running)
    assert [cells[c] for c in ("Status", "Completions", "Duration")] == [
        "Running", "0/1 of 3", "30s",
    ]  # fmt: skip
    failed = workload("Job", {"completions": 2}, {
        "conditions": [{"type": "FailureTarget", "status": "True"},
                       {"type": "Failed", "status": "True"}]})  # fmt: skip
    cells = row("batch", "v1", "jobs", failed)
    assert [cells[c] for c in ("Status", "Completions", "Duration")] == ["Failed", "0/2", ""]


def test_cronjob() -> None:
    cronjob = {
        "metadata": meta("nightly"),
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "backup", "image": "restic"}]}}}},
        },
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(minutes=2)},
    }  # fmt: skip
    assert row("batch", "v1", "cronjobs", cronjob) == {
        "Name": "nightly", "Schedule": "0 3 * * *", "Timezone": "<none>", "Suspend": "False",
        "Active": 1, "Last Schedule": "2m", "Age": "5m", "Containers": "backup",
        "Images": "restic", "Selector": "<none>",
    }  # fmt: skip


# --- networking ------------------------------------------------------------------------


def service(kind: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": {"type": kind, **spec}, "status": {}}


def test_services() -> None:
    assert [c[0] for c in columns("", "v1", "services")] == [
        "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector",
    ]  # fmt: skip
    plain = service(
        "ClusterIP", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"],
        ports=[{"port": 80}, {"port": 53, "protocol": "UDP"}], selector={"app": "web"},
    )  # fmt: skip
    assert list(row("", "v1", "services", plain).values()) == [
        "web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "5m", "app=web",
    ]  # fmt: skip
    pending = service("LoadBalancer", clusterIPs=["10.96.0.11"],
                      ports=[{"port": 443, "nodePort": 30443, "protocol": "TCP"}])  # fmt: skip
    cells = row("", "v1", "services", pending)
    assert [cells["External-IP"], cells["Port(s)"], cells["Selector"]] == [
        "<pending>", "443:30443/TCP", "<none>",
    ]  # fmt: skip
    pending["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.255.2"}]}}
    assert row("", "v1", "services", pending)["External-IP"] == "172.18.255.2"
    external = service("ExternalName", externalName="db.example.com")
    cells = row("", "v1", "services", external)
    assert [cells["Cluster-IP"], cells["External-IP"], cells["Port(s)"]] == [
        "<none>", "db.example.com", "<none>",
    ]  # fmt: skip


def test_endpoints_list_three_and_count_the_rest() -> None:
    endpoints = {
        "metadata": meta("web"),
        "subsets": [{
            "addresses": [{"ip": f"10.244.1.{n}"} for n in range(1, 5)],
            "ports": [{"port": 8080}],
        }],
    }  # fmt: skip
    assert row("", "v1", "endpoints", endpoints)["Endpoints"] == (
        "10.244.1.1:8080,10.244.1.2:8080,10.244.1.3:8080 + 1 more..."
    )
    assert row("", "v1", "endpoints", {"metadata": meta("none")})["Endpoints"] == "<none>"


def test_ingress() -> None:
    ingress = {
        "metadata": meta("web"),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
            "tls": [{"hosts": ["a.example.com"]}],
        },
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}},
    }
    assert row("networking.k8s.io", "v1", "ingresses", ingress) == {
        "Name": "web", "Class": "nginx", "Hosts": "a.example.com,b.example.com",
        "Address": "lb.example.com", "Ports": "80, 443", "Age": "5m",
    }  # fmt: skip


# --- the cluster -----------------------------------------------------------------------


def test_namespaces_configmaps_secrets_serviceaccounts() -> None:
    namespace = {"metadata": meta("apps"), "status": {"phase": "Terminating"}}
    assert list(row("", "v1", "namespaces", namespace).values()) == ["apps", "Terminating", "5m"]
    configmap = {"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert list(row("", "v1", "configmaps", configmap).values()) == ["c", 2, "5m"]
    secret = {"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "x": ""}}
    assert list(row("", "v1", "secrets", secret).values()) == ["s", "kubernetes.io/tls", 2, "5m"]
    account = {"metadata": meta("default")}
    assert list(row("", "v1", "serviceaccounts", account).values()) == ["default", 0, "5m"]


def test_nodes() -> None:
    node = {
        "metadata": meta("node-1", labels={"node-role.kubernetes.io/control-plane": "",
                                           "kubernetes.io/role": "edge"}),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian",
                         "containerRuntimeVersion": "containerd://2.0"},
        },
    }  # fmt: skip
    assert row("", "v1", "nodes", node) == {
        "Name": "node-1", "Status": "NotReady,SchedulingDisabled", "Roles": "control-plane,edge",
        "Age": "5m", "Version": "v1.37.0", "Internal-IP": "172.18.0.2", "External-IP": "<none>",
        "OS-Image": "Debian", "Kernel-Version": "<unknown>",
        "Container-Runtime": "containerd://2.0",
    }  # fmt: skip


def test_core_and_events_api_events() -> None:
    core = {
        "metadata": meta("web.1"),
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
        "type": "Warning", "reason": "BackOff", "message": "Back-off restarting\n",
        "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=1), "count": 4,
        "source": {"component": "kubelet", "host": "node-1"},
    }  # fmt: skip
    assert list(row("", "v1", "events", core).values()) == [
        "60s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}", "kubelet, node-1",
        "Back-off restarting", "10m", 4, "web.1",
    ]  # fmt: skip
    new = {
        "metadata": meta("web.2"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "type": "Normal", "reason": "ScalingReplicaSet", "note": "Scaled up",
        "eventTime": "2025-06-01T11:57:59.500000Z", "reportingController": "deployment-controller",
    }  # fmt: skip
    assert list(row("events.k8s.io", "v1", "events", new).values()) == [
        "2m", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
        "Scaled up", "2m", 1, "web.2",
    ]  # fmt: skip


def test_rbac_roles_use_the_generic_convertor_and_bindings_list_subjects() -> None:
    role = {"metadata": meta("reader", creationTimestamp="2025-05-01T08:00:00Z")}
    assert row("rbac.authorization.k8s.io", "v1", "roles", role) == {
        "Name": "reader",
        "Created At": "2025-05-01T08:00:00Z",
    }
    assert columns("rbac.authorization.k8s.io", "v1", "clusterroles") == [
        ("Name", "string", 0),
        ("Created At", "date", 0),
    ]
    binding = {
        "metadata": meta("readers"),
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "ann"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
            {"kind": "User", "name": "bob"},
        ],
    }
    assert row("rbac.authorization.k8s.io", "v1", "rolebindings", binding) == {
        "Name": "readers", "Role": "ClusterRole/view", "Age": "5m", "Users": "ann, bob",
        "Groups": "devs", "ServiceAccounts": "tools/ci",
    }  # fmt: skip


def test_storage() -> None:
    claim = {
        "metadata": meta("data"),
        "spec": {"storageClassName": "standard", "volumeName": "pvc-1"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                   "accessModes": ["ReadWriteMany", "ReadWriteOnce"]},
    }  # fmt: skip
    assert list(row("", "v1", "persistentvolumeclaims", claim).values()) == [
        "data", "Bound", "pvc-1", "1Gi", "RWO,RWX", "standard", "<unset>", "5m", "Filesystem",
    ]  # fmt: skip
    pending = {"metadata": meta("later"), "spec": {}, "status": {"phase": "Pending"}}
    assert list(row("", "v1", "persistentvolumeclaims", pending).values())[1:5] == [
        "Pending", "", "", "",
    ]  # fmt: skip
    volume = {
        "metadata": meta("pvc-1"),
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                 "claimRef": {"namespace": "apps", "name": "data"}},
        "status": {"phase": "Bound"},
    }  # fmt: skip
    assert list(row("", "v1", "persistentvolumes", volume).values()) == [
        "pvc-1", "1Gi", "RWO", "Delete", "Bound", "apps/data", "standard", "<unset>", "", "5m",
        "Filesystem",
    ]  # fmt: skip
    storage_class = {
        "metadata": meta(
            "standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
        ),
        "provisioner": "example.com/hostpath",
    }
    assert list(row("storage.k8s.io", "v1", "storageclasses", storage_class).values()) == [
        "standard (default)", "example.com/hostpath", "Delete", "Immediate", False, "5m",
    ]  # fmt: skip


def test_leases_budgets_priority_classes() -> None:
    lease = {"metadata": meta("leader"), "spec": {"holderIdentity": "gitmoor-1"}}
    assert list(row("coordination.k8s.io", "v1", "leases", lease).values()) == [
        "leader", "gitmoor-1", "5m",
    ]  # fmt: skip
    budget = {"metadata": meta("web"), "spec": {"minAvailable": "50%"},
              "status": {"disruptionsAllowed": 1}}  # fmt: skip
    assert list(row("policy", "v1", "poddisruptionbudgets", budget).values()) == [
        "web", "50%", "N/A", 1, "5m",
    ]  # fmt: skip
    priority = {"metadata": meta("high"), "value": 1000}
    assert list(row("scheduling.k8s.io", "v1", "priorityclasses", priority).values()) == [
        "high", 1000, False, "5m", "PreemptLowerPriority",
    ]  # fmt: skip


def test_horizontal_pod_autoscalers() -> None:
    v2 = {
        "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
                    "type": "AverageValue", "averageValue": "10"}}},
            ],
        },
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource",
             "resource": {"name": "cpu", "current": {"averageUtilization": 45}}},
        ]},
    }  # fmt: skip
    assert list(row("autoscaling", "v2", "horizontalpodautoscalers", v2).values()) == [
        "web", "Deployment/web", "cpu: 45%/80%, <unknown>/10", "2", 5, 3, "5m",
    ]  # fmt: skip
    v1 = {
        "metadata": meta("api"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "maxReplicas": 4,
                 "targetCPUUtilizationPercentage": 70},
        "status": {"currentReplicas": 1},
    }  # fmt: skip
    assert list(row("autoscaling", "v1", "horizontalpodautoscalers", v1).values())[2:4] == [
        "cpu: <unknown>/70%", "<unset>",
    ]  # fmt: skip


def test_other_resources_get_name_and_created_at() -> None:
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-01-02T03:04:05Z"}}
    assert row("apiextensions.k8s.io", "v1", "customresourcedefinitions", crd) == {
        "Name": "widgets.example.com",
        "Created At": "2025-01-02T03:04:05Z",
    }
    info = TABLE.lookup("", "v1", "limitranges")
    assert info is not None
    assert printer_for(info) is DEFAULT_PRINTER


# --- the Table itself ------------------------------------------------------------------


def configmap_view(**options: Any) -> TableView:
    info = TABLE.lookup("", "v1", "configmaps")
    assert info is not None
    return TableView(printer_for(info), **options)


def test_a_list_table_carries_list_metadata_and_partial_object_metadata() -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c", labels={"a": "b"})}
    table = configmap_view().of_list(
        [configmap], now=NOW, resource_version="42", continue_token="next", remaining=3
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {
        "resourceVersion": "42",
        "continue": "next",
        "remainingItemCount": 3,
    }
    assert table["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": table["columnDefinitions"][0]["description"],
        "priority": 0,
    }
    assert table["columnDefinitions"][0]["description"].startswith("Name must be unique")
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": configmap["metadata"],
    }


def test_include_object_and_the_table_version() -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c")}
    whole = configmap_view(include="Object").of_list([configmap], now=NOW)
    assert whole["rows"][0]["object"] == configmap
    bare = configmap_view(include="None").of_list([configmap], now=NOW)
    assert bare["rows"][0]["object"] is None
    beta = configmap_view(api_version="meta.k8s.io/v1beta1").of_list([configmap], now=NOW)
    assert beta["apiVersion"] == beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_a_watch_event_table_has_one_row_and_headers_only_when_asked() -> None:
    configmap = {"metadata": {**meta("c"), "resourceVersion": "7"}, "data": {"a": "1"}}
    first = configmap_view().of_object(configmap, now=NOW)
    later = configmap_view().of_object(configmap, now=NOW, headers=False)
    assert first["metadata"] == later["metadata"] == {"resourceVersion": "7"}
    assert [c["name"] for c in first["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert later["columnDefinitions"] is None
    assert first["rows"] == later["rows"]
    assert [r["cells"] for r in later["rows"]] == [["c", 1, "5m"]]


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        (KUBECTL_ACCEPT, "meta.k8s.io/v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "meta.k8s.io/v1beta1"),
        ("application/json", None),
        ("", None),
        ("*/*", None),
        # Protobuf Tables are not served; plain JSON comes next.
        ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json", None),
        ("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json", None),
        ("application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io", "meta.k8s.io/v1"),
        ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json", None),
    ],
)
def test_table_version_from_accept(accept: str, version: str | None) -> None:
    assert table_version(accept) == version


def test_include_object_values() -> None:
    assert include_object(None) == include_object("") == "Metadata"
    assert include_object("Object") == "Object"
    with pytest.raises(ApiError) as caught:
        include_object("Everything")
    assert caught.value.code == 400
    assert caught.value.message == (
        "Unable to convert to Table as requested: includeObject: Unsupported value: "
        '"Everything": supported values: "Metadata", "None", "Object"'
    )


# --- custom resources ------------------------------------------------------------------


def widget_crd(printer_columns: list[dict[str, Any]] | None) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True, "schema": schema}
    if printer_columns is not None:
        version["additionalPrinterColumns"] = printer_columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [version],
        },
    }


def widget_row(crd: dict[str, Any], widget: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    table = ResourceTable()
    [info] = table.add_crd(crd)
    view = TableView(printer_for(info, crd))
    result = view.of_list([widget], now=NOW)
    return result["columnDefinitions"], result["rows"][0]["cells"]


WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w1", "namespace": "apps", "creationTimestamp": ago(hours=3),
                 "labels": {"app.kubernetes.io/name": "shop"}},
    "spec": {"size": 3, "ratio": 1.5, "enabled": True, "ports": [{"port": 80}, {"port": 443}],
             "extra": {"b": "<x>", "a": 1}, "big": 1500000.0, "tiny": 0.00001},
    "status": {"conditions": [{"type": "Stalled", "status": "False"},
                              {"type": "Ready", "status": "True", "message": "ok",
                               "lastTransitionTime": ago(minutes=2)}]},
}  # fmt: skip


def test_custom_resource_printer_columns() -> None:
    crd = widget_crd(
        [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Ready", "type": "string",
             "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Since", "type": "date",
             "jsonPath": '.status.conditions[?(@.type=="Ready")].lastTransitionTime'},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1,
             "description": "How wide it is."},
            {"name": "On", "type": "boolean", "jsonPath": ".spec.enabled", "format": "flag"},
            {"name": "Port", "type": "integer", "jsonPath": ".spec.ports[*].port"},
            {"name": "Last", "type": "integer", "jsonPath": ".spec.ports[-1].port"},
            {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"},
            {"name": "Wrong", "type": "integer", "jsonPath": ".status.conditions[0].type"},
            {"name": "App", "type": "string",
             "jsonPath": ".metadata.labels.app\\.kubernetes\\.io/name"},
            {"name": "Extra", "type": "string", "jsonPath": ".spec.extra"},
            {"name": "Size Text", "type": "string", "jsonPath": ".spec.size"},
            {"name": "Big", "type": "string", "jsonPath": ".spec.big"},
            {"name": "Tiny", "type": "string", "jsonPath": ".spec.tiny"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    )  # fmt: skip
    definitions, cells = widget_row(crd, WIDGET)
    assert definitions[0]["name"] == "Name"
    assert definitions[1] == {
        "name": "Size",
        "type": "integer",
        "format": "",
        "description": "Custom resource definition column (in JSONPath format): .spec.size",
        "priority": 0,
    }
    assert (definitions[4]["description"], definitions[4]["priority"]) == ("How wide it is.", 1)
    assert definitions[5]["format"] == "flag"
    assert cells == [
        "w1", 3, "True", "2m", 1.5, True, 80, 443, None, None, "shop",
        '{"a":1,"b":"\\u003cx\\u003e"}', "3", "1.5e+06", "1e-05", "3h",
    ]  # fmt: skip


def test_custom_resource_without_printer_columns_shows_its_age() -> None:
    definitions, cells = widget_row(widget_crd(None), WIDGET)
    assert [(d["name"], d["type"]) for d in definitions] == [("Name", "string"), ("Age", "date")]
    assert cells == ["w1", "3h"]


def test_custom_resource_columns_stop_at_one_that_does_not_parse() -> None:
    crd = widget_crd(
        [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Broken", "type": "string", "jsonPath": ".spec[?(@.a ~ 1)]"},
            {"name": "After", "type": "string", "jsonPath": ".spec.size"},
        ]
    )
    definitions, cells = widget_row(crd, WIDGET)
    assert [d["name"] for d in definitions] == ["Name", "Size"]
    assert cells == ["w1", 3]


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".spec.ports[0:1]", [{"port": 80}]),
        (".spec.ports[*].port", [80, 443]),
        (".spec['size','ratio']", [3, 1.5]),
        (".spec.ports[?(@.port > 100)].port", [443]),
        (".spec.ports[?(@.port)].port", [80, 443]),
        ("..port", [80, 443]),
        ("{.metadata.name}", ["w1"]),
        ("$.metadata.name", ["w1"]),
        (".spec.nothing.deeper", []),
        (".spec.ports[5]", []),
    ],
)
def test_json_path(path: str, found: list[Any]) -> None:
    assert evaluate_json_path(parse_json_path(path), WIDGET) == found


@pytest.mark.parametrize("path", ["spec", ".spec[", ".spec.ports[?(@.port ~ 1)]", "."])
def test_json_path_errors(path: str) -> None:
    with pytest.raises(ValueError, match=r"JSONPath|filter"):
        parse_json_path(path)
