"""The workload simulator and the garbage collector, seen through the real kubectl."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gitmoor.sandbox import server
from gitmoor.sandbox.simulator import run_simulator
from gitmoor.sandbox.store import Key

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

T = TypeVar("T")


def eventually(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """``probe()`` once it is truthy; fails naming ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what} (last: {value!r})")
        time.sleep(0.1)


def get(sandbox: Sandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def deployment(name: str, *, replicas: int = 2, image: str = "nginx:1", extra: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
{extra}spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
"""


def owned_by(obj: Any, owner: Any) -> bool:
    return any(r["uid"] == owner["metadata"]["uid"] for r in obj["metadata"]["ownerReferences"])


def test_nodes_and_default_storage_class(sandbox: Sandbox) -> None:
    nodes = get(sandbox, "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["sandbox-node-1"]
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert nodes[0]["status"]["allocatable"]["pods"] == "110"
    classes = get(sandbox, "storageclasses")["items"]
    assert classes[0]["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }


def test_deployment_rolls_out_and_becomes_available(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web"))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sandbox.kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=30s")
    web = get(sandbox, "deployment", "web")
    status = web["status"]
    assert status["observedGeneration"] == web["metadata"]["generation"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (2, 2, 2)
    assert status["availableReplicas"] == 2
    assert "unavailableReplicas" not in status
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    [replicaset] = get(sandbox, "replicasets", "-l", "app=web")["items"]
    template_hash = replicaset["metadata"]["labels"]["pod-template-hash"]
    assert replicaset["metadata"]["name"] == f"web-{template_hash}"
    assert owned_by(replicaset, web)
    assert replicaset["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert replicaset["spec"]["selector"]["matchLabels"]["pod-template-hash"] == template_hash
    pods = get(sandbox, "pods", "-l", "app=web")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert owned_by(pod, replicaset)
        assert pod["metadata"]["name"].startswith(f"web-{template_hash}-")
        assert pod["spec"]["nodeName"] == "sandbox-node-1"
        assert pod["status"]["phase"] == "Running"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network("10.244.1.0/24")
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
        [container] = pod["status"]["containerStatuses"]
        assert container["ready"] is True
        assert "running" in container["state"]
    assert len({p["status"]["podIP"] for p in pods}) == 2
    shown = get(sandbox, "deployment", "web", "--show-managed-fields")
    managers = {m["manager"] for m in shown["metadata"]["managedFields"]}
    assert "gitmoor-sandbox-controller" in managers


def test_scale_up_and_down(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web", replicas=1))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sandbox.kubectl("scale", "deployment/web", "--replicas=3")
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert len(get(sandbox, "pods", "-l", "app=web")["items"]) == 3
    sandbox.kubectl("scale", "deployment/web", "--replicas=1")
    sandbox.kubectl(
        "wait", "--for=jsonpath={.status.replicas}=1", "deployment/web", "--timeout=30s"
    )
    eventually(lambda: len(get(sandbox, "pods", "-l", "app=web")["items"]) == 1, "one pod left")
    [replicaset] = get(sandbox, "replicasets", "-l", "app=web")["items"]
    assert replicaset["spec"]["replicas"] == 1
    assert replicaset["status"]["replicas"] == 1


def test_new_template_rolls_out_a_new_replicaset_and_undo_reuses_the_old(
    sandbox: Sandbox,
) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web"))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    [first] = get(sandbox, "replicasets", "-l", "app=web")["items"]
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web", image="nginx:2"))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sets = {rs["metadata"]["name"]: rs for rs in get(sandbox, "replicasets")["items"]}
    [second] = [rs for name, rs in sets.items() if name != first["metadata"]["name"]]
    assert sets[first["metadata"]["name"]]["spec"]["replicas"] == 0
    assert second["spec"]["replicas"] == 2
    assert second["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = get(sandbox, "pods", "-l", "app=web")["items"]
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {
        second["metadata"]["labels"]["pod-template-hash"]
    }
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:2"}
    history = sandbox.kubectl("rollout", "history", "deployment/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    sandbox.kubectl("rollout", "undo", "deployment/web")
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sets = {rs["metadata"]["name"]: rs for rs in get(sandbox, "replicasets")["items"]}
    assert len(sets) == 2
    revived = sets[first["metadata"]["name"]]
    assert revived["spec"]["replicas"] == 2
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    web = get(sandbox, "deployment", "web")
    assert web["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 2
  updateStrategy: {type: RollingUpdate}
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:IMAGE
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 2Gi}}
"""


def test_statefulset_pods_in_order_with_claims_and_a_rolling_update(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=STATEFULSET.replace("IMAGE", "16"))
    sandbox.kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
    db = get(sandbox, "statefulset", "db")
    status = db["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (2, 2, 2)
    assert (status["currentReplicas"], status["updatedReplicas"]) == (2, 2)
    assert status["currentRevision"] == status["updateRevision"]
    assert status["observedGeneration"] == db["metadata"]["generation"]
    pods = get(sandbox, "pods", "-l", "app=db")["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
    for pod in pods:
        assert pod["spec"]["hostname"] == pod["metadata"]["name"]
        assert pod["spec"]["subdomain"] == "db"
        [volume] = pod["spec"]["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == f"data-{pod['metadata']['name']}"
    for claim in ("data-db-0", "data-db-1"):
        sandbox.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Bound", f"pvc/{claim}", "--timeout=30s"
        )

    sandbox.kubectl("apply", "-f", "-", stdin=STATEFULSET.replace("IMAGE", "17"))
    sandbox.kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
    status = get(sandbox, "statefulset", "db")["status"]
    assert status["currentRevision"] == status["updateRevision"] != db["status"]["updateRevision"]
    pods = get(sandbox, "pods", "-l", "app=db")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"postgres:17"}
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {
        status["updateRevision"]
    }


def test_daemonset_runs_a_pod_per_node(sandbox: Sandbox) -> None:
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        stdin="""\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  updateStrategy: {type: RollingUpdate}
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: agent:1
""",
    )
    sandbox.kubectl("rollout", "status", "daemonset/agent", "--timeout=30s")
    status = get(sandbox, "daemonset", "agent")["status"]
    assert status["desiredNumberScheduled"] == status["currentNumberScheduled"] == 1
    assert status["numberReady"] == status["updatedNumberScheduled"] == 1
    assert status["numberAvailable"] == 1
    [pod] = get(sandbox, "pods", "-l", "app=agent")["items"]
    assert pod["spec"]["nodeName"] == "sandbox-node-1"


JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: default
{annotations}spec:
  completions: {completions}
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: task
        image: busybox
"""


def test_job_completes(sandbox: Sandbox) -> None:
    sandbox.kubectl(
        "apply", "-f", "-", stdin=JOB.format(name="once", annotations="", completions=2)
    )
    sandbox.kubectl("wait", "--for=condition=complete", "job/once", "--timeout=30s")
    job = get(sandbox, "job", "once")
    assert job["status"]["succeeded"] == 2
    assert job["status"]["completionTime"]
    conditions = {c["type"]: c["status"] for c in job["status"]["conditions"]}
    assert conditions == {"SuccessCriteriaMet": "True", "Complete": "True"}
    pods = get(sandbox, "pods", "-l", "job-name=once")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]
    assert all(owned_by(p, job) for p in pods)


def test_failing_job(sandbox: Sandbox) -> None:
    failing = "  annotations: {sandbox.gitmoor.dev/fail: crashloop}\n"
    sandbox.kubectl(
        "apply", "-f", "-", stdin=JOB.format(name="broken", annotations=failing, completions=1)
    )
    sandbox.kubectl("wait", "--for=condition=failed", "job/broken", "--timeout=30s")
    job = get(sandbox, "job", "broken")
    assert job["status"]["failed"] == 2  # backoffLimit 1: two tries
    failed = {c["type"]: c["reason"] for c in job["status"]["conditions"]}
    assert failed == {"FailureTarget": "BackoffLimitExceeded", "Failed": "BackoffLimitExceeded"}
    pods = get(sandbox, "pods", "-l", "job-name=broken")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Failed"}
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1


def test_cronjob_starts_the_job_it_missed(sandbox: Sandbox) -> None:
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        stdin="""\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: task
            image: busybox
""",
    )
    # As if the last run were an hour ago: the latest of the times since is due now.
    last = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sandbox.kubectl(
        "patch", "cronjob", "nightly", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"lastScheduleTime": last}}),
    )  # fmt: skip
    jobs = eventually(lambda: get(sandbox, "jobs")["items"], "a job of the cronjob")
    [job] = jobs
    cronjob = get(sandbox, "cronjob", "nightly")
    assert owned_by(job, cronjob)
    scheduled = datetime.fromisoformat(
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    )
    assert scheduled.minute % 5 == 0
    assert job["metadata"]["name"] == f"nightly-{int(scheduled.timestamp()) // 60}"
    sandbox.kubectl("wait", "--for=condition=complete", f"job/{job['metadata']['name']}")

    def recorded() -> Any:
        status = get(sandbox, "cronjob", "nightly")["status"]
        return status if status.get("lastSuccessfulTime") else None

    status = eventually(recorded, "the cronjob records the success")
    assert datetime.fromisoformat(status["lastScheduleTime"]) == scheduled
    assert "active" not in status


def test_load_balancer_gets_an_address(sandbox: Sandbox) -> None:
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        stdin="""\
apiVersion: v1
kind: Service
metadata: {name: front, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - port: 80
""",
    )
    ingress = eventually(
        lambda: get(sandbox, "service", "front")["status"].get("loadBalancer", {}).get("ingress"),
        "a load balancer address",
    )
    assert ipaddress.ip_address(ingress[0]["ip"]) in ipaddress.ip_network("172.18.255.0/24")


def test_service_gets_a_cluster_ip_when_created(sandbox: Sandbox) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "plain", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    created = sandbox.kubectl("create", "-f", "-", "-o", "json", stdin=json.dumps(service))
    cluster_ip = json.loads(created.stdout)["spec"].get("clusterIP", "")
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/16")


def test_claim_binds_to_a_provisioned_volume_deleted_with_it(sandbox: Sandbox) -> None:
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        stdin="""\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 5Gi}}
""",
    )
    sandbox.kubectl("wait", "--for=jsonpath={.status.phase}=Bound", "pvc/data", "--timeout=30s")
    claim = get(sandbox, "pvc", "data")
    volume_name = claim["spec"]["volumeName"]
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["status"]["capacity"] == {"storage": "5Gi"}
    volume = get(sandbox, "pv", volume_name)
    assert volume["status"]["phase"] == "Bound"
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert volume["spec"]["capacity"] == {"storage": "5Gi"}
    sandbox.kubectl("delete", "pvc", "data")
    eventually(lambda: not get(sandbox, "pv")["items"], "the volume is deleted with its claim")


NEVER_READY = "  annotations: {sandbox.gitmoor.dev/fail: never-ready}\n"


def test_never_ready_stalls_the_rollout_until_the_annotation_goes(sandbox: Sandbox) -> None:
    manifest = deployment("stuck", extra=NEVER_READY).replace(
        "  replicas: 2\n", "  replicas: 2\n  progressDeadlineSeconds: 2\n"
    )
    sandbox.kubectl("apply", "-f", "-", stdin=manifest)
    rollout = sandbox.kubectl("rollout", "status", "deployment/stuck", "--timeout=15s", check=False)
    assert rollout.returncode != 0
    assert "exceeded its progress deadline" in rollout.stderr
    progressing = get(sandbox, "deployment", "stuck")["status"]["conditions"]
    assert {c["type"]: (c["status"], c["reason"]) for c in progressing}["Progressing"] == (
        "False",
        "ProgressDeadlineExceeded",
    )
    pods = get(sandbox, "pods", "-l", "app=stuck")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["containerStatuses"][0]["ready"] is False
        assert "running" in pod["status"]["containerStatuses"][0]["state"]

    sandbox.kubectl("annotate", "deployment", "stuck", "sandbox.gitmoor.dev/fail-")
    sandbox.kubectl("rollout", "status", "deployment/stuck", "--timeout=30s")
    sandbox.kubectl("wait", "--for=condition=Available", "deployment/stuck", "--timeout=30s")


def test_crashloop_restarts_and_backs_off(sandbox: Sandbox) -> None:
    crashing = deployment("crash", replicas=1).replace(
        "      labels: {app: crash}\n",
        "      labels: {app: crash}\n      annotations: {sandbox.gitmoor.dev/fail: crashloop}\n",
    )
    sandbox.kubectl("apply", "-f", "-", stdin=crashing)

    def restarts() -> int:
        pods = get(sandbox, "pods", "-l", "app=crash")["items"]
        statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
        return int(statuses[0]["restartCount"]) if statuses else 0

    eventually(lambda: restarts() >= 3, "three restarts")
    [pod] = get(sandbox, "pods", "-l", "app=crash")["items"]
    assert pod["status"]["phase"] == "Running"
    [container] = pod["status"]["containerStatuses"]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["lastState"]["terminated"]["exitCode"] == 1
    assert container["ready"] is False
    assert get(sandbox, "deployment", "crash")["status"].get("availableReplicas", 0) == 0


def test_deleting_a_deployment_deletes_its_replicasets_and_pods(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web"))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sandbox.kubectl("delete", "deployment", "web")

    def leftovers() -> list[Any]:
        found: list[Any] = get(sandbox, "replicasets,pods", "-l", "app=web")["items"]
        return found

    eventually(lambda: not leftovers(), "the replicasets and pods are gone")


def test_the_simulator_carries_on_after_a_restart(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web", replicas=1))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sandbox.stop()
    sandbox.start()
    sandbox.kubectl("scale", "deployment/web", "--replicas=2")
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    pods = get(sandbox, "pods", "-l", "app=web")["items"]
    assert len(pods) == 2
    assert len({p["status"]["podIP"] for p in pods}) == 2
    assert [n["metadata"]["name"] for n in get(sandbox, "nodes")["items"]] == ["sandbox-node-1"]


# --- garbage collection of dependents --------------------------------------------------


def configmap(sandbox: Sandbox, name: str, *, owners: tuple[Any, ...] = (), **meta: Any) -> Any:
    """Create a ConfigMap owned by ``owners`` (objects), with more metadata; return it."""
    metadata: dict[str, Any] = {"name": name, "namespace": "default", **meta}
    if owners:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
            for owner in owners
        ]
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata})
    return json.loads(sandbox.kubectl("create", "-f", "-", "-o", "json", stdin=body).stdout)


def names(sandbox: Sandbox) -> set[str]:
    return {c["metadata"]["name"] for c in get(sandbox, "configmaps")["items"]} - {
        "kube-root-ca.crt"
    }


def test_foreground_deletion_waits_for_blocking_dependents(sandbox: Sandbox) -> None:
    owner = configmap(sandbox, "owner")
    configmap(sandbox, "held", owners=(owner,), finalizers=["example.com/hold"])
    configmap(sandbox, "free", owners=(owner,))
    sandbox.kubectl("delete", "configmap", "owner", "--cascade=foreground", "--wait=false")
    held = eventually(
        lambda: get(sandbox, "configmap", "held")["metadata"].get("deletionTimestamp"),
        "the held dependent is being deleted",
    )
    assert held
    eventually(lambda: "free" not in names(sandbox), "the free dependent is deleted")
    waiting = get(sandbox, "configmap", "owner")["metadata"]
    assert waiting["deletionTimestamp"]
    assert waiting["finalizers"] == ["foregroundDeletion"]
    sandbox.kubectl(
        "patch", "configmap", "held", "--type=json",
        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )  # fmt: skip
    eventually(lambda: not names(sandbox), "the owner goes after its last dependent")


def test_orphan_deletion_keeps_dependents_without_the_reference(sandbox: Sandbox) -> None:
    owner = configmap(sandbox, "owner")
    other = configmap(sandbox, "other")
    configmap(sandbox, "kept", owners=(owner, other))
    sandbox.kubectl("delete", "configmap", "owner", "--cascade=orphan")
    eventually(lambda: names(sandbox) == {"other", "kept"}, "the owner is gone")
    kept = get(sandbox, "configmap", "kept")["metadata"]
    assert [r["name"] for r in kept["ownerReferences"]] == ["other"]


def test_dependents_of_a_missing_owner_are_collected(sandbox: Sandbox) -> None:
    ghost = {"metadata": {"name": "ghost", "uid": "4b1d8ab1-0000-4000-8000-000000000000"}}
    owner = configmap(sandbox, "owner")
    configmap(sandbox, "orphaned", owners=(ghost,))
    configmap(sandbox, "shared", owners=(ghost, owner))
    eventually(lambda: names(sandbox) == {"owner", "shared"}, "the dependent is collected")
    refs = get(sandbox, "configmap", "shared")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["owner"]
    sandbox.kubectl("delete", "configmap", "owner")
    eventually(lambda: not names(sandbox), "the last owner took its dependent with it")


def test_kubectl_delete_cascade_orphan(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web", replicas=1))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    sandbox.kubectl("delete", "deployment", "web", "--cascade=orphan")
    [replicaset] = get(sandbox, "replicasets", "-l", "app=web")["items"]
    assert "ownerReferences" not in replicaset["metadata"]
    assert len(get(sandbox, "pods", "-l", "app=web")["items"]) == 1


def test_kubectl_delete_cascade_foreground(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=deployment("web", replicas=1))
    sandbox.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    [pod] = get(sandbox, "pods", "-l", "app=web")["items"]
    pod_name = pod["metadata"]["name"]
    sandbox.kubectl(
        "patch", "pod", pod_name, "--type=merge",
        "-p", '{"metadata": {"finalizers": ["example.com/hold"]}}',
    )  # fmt: skip
    sandbox.kubectl("delete", "deployment", "web", "--cascade=foreground", "--wait=false")
    eventually(
        lambda: get(sandbox, "pod", pod_name)["metadata"].get("deletionTimestamp"),
        "the pod is being deleted",
    )
    for kind in ("deployment", "replicaset"):
        [waiting] = (
            get(sandbox, kind, "-l", "app=web")["items"]
            if kind == "replicaset"
            else [get(sandbox, kind, "web")]
        )
        assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert waiting["metadata"]["deletionTimestamp"]
    sandbox.kubectl(
        "patch", "pod", pod_name, "--type=json",
        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )  # fmt: skip
    sandbox.kubectl("wait", "--for=delete", "deployment/web", "--timeout=30s")
    assert not get(sandbox, "replicasets,pods", "-l", "app=web")["items"]


# --- the simulator on its own, with more nodes ------------------------------------------


async def test_daemonset_follows_the_nodes_across_restarts(tmp_path: Path) -> None:
    sandbox = server.Sandbox(tmp_path, token="unused")
    daemonsets = sandbox.table.lookup("apps", "v1", "daemonsets")
    assert daemonsets is not None
    body = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
            },
        },
    }
    sandbox.create(
        server.Target(daemonsets, "default", None, None), body, manager="test", dry_run=False
    )

    async def scheduled_on(nodes: int) -> list[str]:
        task = asyncio.create_task(run_simulator(sandbox, nodes=nodes, delay=0.05))
        try:
            for _ in range(600):
                status = sandbox.store.get(Key("apps", "daemonsets", "default", "agent"))
                ready = (status or {}).get("status", {}).get("numberReady")
                if ready == nodes:
                    pods = sandbox.store.list("", "pods", "default").items
                    return sorted(p["spec"]["nodeName"] for p in pods)
                await asyncio.sleep(0.05)
            raise AssertionError(f"the DaemonSet never had {nodes} ready pods")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert await scheduled_on(3) == ["sandbox-node-1", "sandbox-node-2", "sandbox-node-3"]
    assert await scheduled_on(2) == ["sandbox-node-1", "sandbox-node-2"]
    nodes = [n["metadata"]["name"] for n in sandbox.store.list("", "nodes", None).items]
    assert nodes == ["sandbox-node-1", "sandbox-node-2"]
