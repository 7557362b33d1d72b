"""kstatus-style health of live objects, shaped as the API server (or the sandbox) returns them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitmoor.apply.health import Health, Status, aggregate, health

KubeObject = dict[str, Any]
NOW = "2026-11-25T10:00:00Z"


def meta(name: str, *, namespace: str | None = "apps", generation: int | None = 1) -> KubeObject:
    metadata: KubeObject = {
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": "4711",
        "creationTimestamp": NOW,
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    if generation is not None:
        metadata["generation"] = generation
    return metadata


def condition(type_: str, status: str, reason: str = "", message: str = "") -> KubeObject:
    found: KubeObject = {"type": type_, "status": status, "lastTransitionTime": NOW}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def changed(obj: KubeObject, **fields: Any) -> KubeObject:
    """``obj`` with fields set, ``a__b`` naming ``a.b`` (None removes the field)."""
    result = copy.deepcopy(obj)
    for path, value in fields.items():
        *parents, last = path.split("__")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return result


# --- Deployments -------------------------------------------------------------------------


def deployment(generation: int = 1, replicas: int = 3) -> KubeObject:
    """A Deployment whose rollout is done, as the deployment controller leaves it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("web", generation=generation),
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    'ReplicaSet "web-7d4b9c8f6" has successfully progressed.',
                ),
            ],
        },
    }


def rolling_deployment() -> KubeObject:
    """Generation 2 observed, one new pod of three up, the old ones still serving."""
    rolling = deployment(generation=2)
    rolling["status"].update(
        replicas=4, updatedReplicas=1, readyReplicas=3, availableReplicas=3, unavailableReplicas=1
    )
    rolling["status"]["conditions"][1] = condition(
        "Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-5f6c7b9d8" is progressing.'
    )
    return rolling


def stalled_deployment() -> KubeObject:
    stalled = rolling_deployment()
    stalled["status"]["conditions"] = [
        condition(
            "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum."
        ),
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            'ReplicaSet "web-5f6c7b9d8" has timed out progressing.',
        ),
    ]
    return stalled


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            deployment(),
            Health(Status.CURRENT, "Deployment is available. Replicas: 3"),
            id="rolled-out",
        ),
        pytest.param(
            changed(deployment(), status=None),
            Health(Status.IN_PROGRESS, "Replicas: 0/3"),
            id="just-created",
        ),
        pytest.param(
            changed(deployment(generation=3), status__observedGeneration=2),
            Health(
                Status.IN_PROGRESS,
                "Deployment generation is 3, but latest observed generation is 2",
            ),
            id="generation-not-observed",
        ),
        pytest.param(
            rolling_deployment(), Health(Status.IN_PROGRESS, "Updated: 1/3"), id="rolling-update"
        ),
        pytest.param(
            changed(rolling_deployment(), status__updatedReplicas=3),
            Health(Status.IN_PROGRESS, "Pending termination: 1"),
            id="old-pods-terminating",
        ),
        pytest.param(
            changed(deployment(), status__availableReplicas=2),
            Health(Status.IN_PROGRESS, "Available: 2/3"),
            id="not-all-available",
        ),
        pytest.param(
            changed(deployment(), status__readyReplicas=2),
            Health(Status.IN_PROGRESS, "Ready: 2/3"),
            id="not-all-ready",
        ),
        pytest.param(
            changed(
                deployment(),
                status__conditions=[
                    deployment()["status"]["conditions"][0],
                    condition("Progressing", "True", "ReplicaSetUpdated", "progressing"),
                ],
            ),
            Health(Status.IN_PROGRESS, "ReplicaSet not Available"),
            id="progressing-not-yet-complete",
        ),
        pytest.param(
            changed(
                deployment(),
                status__conditions=[
                    condition("Available", "False", "MinimumReplicasUnavailable"),
                    deployment()["status"]["conditions"][1],
                ],
            ),
            Health(Status.IN_PROGRESS, "Deployment not Available"),
            id="not-available",
        ),
        pytest.param(
            changed(
                deployment(),
                spec__progressDeadlineSeconds=2**31 - 1,
                status__conditions=[deployment()["status"]["conditions"][0]],
            ),
            Health(Status.CURRENT, "Deployment is available. Replicas: 3"),
            id="no-deadline-no-progressing-condition",
        ),
        pytest.param(
            stalled_deployment(),
            Health(Status.FAILED, "Progress deadline exceeded"),
            id="progress-deadline-exceeded",
        ),
        pytest.param(
            changed(
                deployment(replicas=0),
                status={
                    "observedGeneration": 1,
                    "conditions": deployment()["status"]["conditions"],
                },
            ),
            Health(Status.CURRENT, "Deployment is available. Replicas: 0"),
            id="scaled-to-zero",
        ),
        pytest.param(
            changed(deployment(), spec__replicas=None),
            Health(Status.IN_PROGRESS, "Pending termination: 2"),
            id="replicas-default-to-one",
        ),
    ],
)
def test_deployment(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


# --- StatefulSets, DaemonSets, ReplicaSets -----------------------------------------------------


def statefulset(partition: int = 0) -> KubeObject:
    """Three ready pods at one revision; the API server defaults the partition to 0."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta("db"),
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:17"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "currentRevision": "db-5c8b6d9f7",
            "updateRevision": "db-5c8b6d9f7",
            "collisionCount": 0,
        },
    }


def rolling_statefulset(partition: int = 0, updated: int = 1) -> KubeObject:
    """A new template (generation 2) rolled out to ``updated`` pods from the top ordinal."""
    rolling = statefulset(partition)
    rolling["metadata"]["generation"] = 2
    rolling["status"].update(
        observedGeneration=2,
        currentReplicas=3 - updated,
        updatedReplicas=updated,
        updateRevision="db-7f9d4c6b8",
    )
    return rolling


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            statefulset(),
            Health(Status.CURRENT, "All replicas scheduled as expected. Replicas: 3"),
            id="rolled-out",
        ),
        pytest.param(
            changed(statefulset(), status={"observedGeneration": 1, "replicas": 1}),
            Health(Status.IN_PROGRESS, "Replicas: 1/3"),
            id="first-pod-starting",
        ),
        pytest.param(
            changed(statefulset(), status__readyReplicas=2),
            Health(Status.IN_PROGRESS, "Ready: 2/3"),
            id="not-all-ready",
        ),
        pytest.param(
            rolling_statefulset(), Health(Status.IN_PROGRESS, "Updated: 1/3"), id="rolling-update"
        ),
        pytest.param(
            changed(rolling_statefulset(updated=3), status__currentReplicas=0),
            Health(Status.IN_PROGRESS, "Waiting for updated revision to match current"),
            id="revision-not-yet-current",
        ),
        pytest.param(
            rolling_statefulset(partition=2, updated=1),
            Health(Status.CURRENT, "Partition rollout complete. Updated: 1"),
            id="partition-rolled-out",
        ),
        pytest.param(
            rolling_statefulset(partition=1, updated=1),
            Health(Status.IN_PROGRESS, "Updated: 1/2"),
            id="partition-rolling",
        ),
        pytest.param(
            changed(rolling_statefulset(), spec__updateStrategy={"type": "OnDelete"}),
            Health(Status.CURRENT, "StatefulSet is using the OnDelete update strategy"),
            id="on-delete",
        ),
    ],
)
def test_statefulset(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def daemonset(**status: int) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("agent"),
        "spec": {
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberMisscheduled": 0,
            "numberReady": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 2,
        }
        | status,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            daemonset(),
            Health(Status.CURRENT, "All replicas scheduled as expected. Replicas: 2"),
            id="rolled-out",
        ),
        pytest.param(
            changed(daemonset(), status=None),
            Health(Status.IN_PROGRESS, "DaemonSet status.observedGeneration not found"),
            id="not-yet-seen",
        ),
        pytest.param(
            daemonset(currentNumberScheduled=1, numberReady=1, numberAvailable=1),
            Health(Status.IN_PROGRESS, "Current: 1/2"),
            id="new-node",
        ),
        pytest.param(
            daemonset(updatedNumberScheduled=0, numberReady=0, numberAvailable=0),
            Health(Status.IN_PROGRESS, "Updated: 0/2"),
            id="rolling-update",
        ),
        pytest.param(
            daemonset(numberAvailable=1, numberReady=1, numberUnavailable=1),
            Health(Status.IN_PROGRESS, "Available: 1/2"),
            id="not-available",
        ),
        pytest.param(
            daemonset(
                desiredNumberScheduled=0,
                currentNumberScheduled=0,
                numberReady=0,
                updatedNumberScheduled=0,
                numberAvailable=0,
            ),
            Health(Status.CURRENT, "All replicas scheduled as expected. Replicas: 0"),
            id="no-matching-node",
        ),
    ],
)
def test_daemonset(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def replicaset(**status: Any) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta("web-7d4b9c8f6"),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "replicas": 2,
            "fullyLabeledReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 1,
        }
        | status,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            replicaset(),
            Health(Status.CURRENT, "ReplicaSet is available. Replicas: 2"),
            id="available",
        ),
        pytest.param(
            replicaset(readyReplicas=1, availableReplicas=1),
            Health(Status.IN_PROGRESS, "Available: 1/2"),
            id="starting",
        ),
        pytest.param(
            replicaset(
                replicas=1,
                fullyLabeledReplicas=1,
                conditions=[
                    condition("ReplicaFailure", "True", "FailedCreate", 'pods "web-" is forbidden')
                ],
            ),
            Health(Status.IN_PROGRESS, "Replica Failure condition. Check Pods"),
            id="replica-failure",
        ),
    ],
)
def test_replicaset(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


# --- Pods, Jobs, CronJobs ------------------------------------------------------------------


def pod(phase: str, *conditions: KubeObject, waiting: str | None = None) -> KubeObject:
    state: KubeObject = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta("web-7d4b9c8f6-x2k9p", generation=None),
        "spec": {"nodeName": "sandbox-node-1", "containers": [{"name": "web", "image": "web:1"}]},
        "status": {
            "phase": phase,
            "conditions": list(conditions),
            "containerStatuses": [
                {
                    "name": "web",
                    "image": "web:1",
                    "ready": not waiting and phase == "Running",
                    "restartCount": 3 if waiting == "CrashLoopBackOff" else 0,
                    "state": state,
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            pod("Running", condition("Ready", "True"), condition("PodScheduled", "True")),
            Health(Status.CURRENT, "Pod is Ready"),
            id="ready",
        ),
        pytest.param(
            pod("Running", condition("Ready", "False", "ContainersNotReady")),
            Health(Status.IN_PROGRESS, "Pod is running but is not Ready"),
            id="never-ready",
        ),
        pytest.param(
            pod("Running", condition("Ready", "False"), waiting="CrashLoopBackOff"),
            Health(Status.FAILED, "Containers in CrashLoop state: web"),
            id="crash-loop",
        ),
        pytest.param(
            pod("Pending", condition("PodScheduled", "True"), waiting="ContainerCreating"),
            Health(Status.IN_PROGRESS, "Pod is in the Pending phase"),
            id="creating",
        ),
        pytest.param(
            changed(
                pod(
                    "Pending",
                    condition(
                        "PodScheduled",
                        "False",
                        "Unschedulable",
                        "0/1 nodes are available: 1 Insufficient cpu.",
                    ),
                ),
                status__containerStatuses=None,
            ),
            Health(Status.FAILED, "Pod could not be scheduled"),
            id="unschedulable",
        ),
        pytest.param(
            pod("Succeeded"), Health(Status.CURRENT, "Pod has completed successfully"), id="done"
        ),
        pytest.param(
            pod("Failed"),
            Health(Status.CURRENT, "Pod has completed, but not successfully"),
            id="finished-failed",
        ),
        pytest.param(
            changed(pod("Running"), status=None),
            Health(Status.IN_PROGRESS, "Pod phase not available"),
            id="not-yet-seen",
        ),
        pytest.param(
            pod("Unknown"), Health(Status.UNKNOWN, "Pod phase is Unknown"), id="node-lost"
        ),
    ],
)
def test_pod(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def job(completions: int = 1, **status: Any) -> KubeObject:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("migrate"),
        "spec": {
            "completions": completions,
            "parallelism": 1,
            "backoffLimit": 1,
            "completionMode": "NonIndexed",
            "suspend": False,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": "migrate:1"}],
                }
            },
        },
        "status": {"ready": 0, "terminating": 0, "uncountedTerminatedPods": {}} | status,
    }


def job_condition(type_: str, reason: str, message: str) -> KubeObject:
    return {**condition(type_, "True", reason, message), "lastProbeTime": NOW}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            job(
                startTime=NOW,
                completionTime=NOW,
                succeeded=1,
                conditions=[
                    job_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected"),
                    job_condition("Complete", "CompletionsReached", "Reached expected"),
                ],
            ),
            Health(Status.CURRENT, "Job Completed. succeeded: 1/1"),
            id="complete",
        ),
        pytest.param(
            job(
                startTime=NOW,
                failed=2,
                conditions=[
                    job_condition("FailureTarget", "BackoffLimitExceeded", "backoff limit"),
                    job_condition("Failed", "BackoffLimitExceeded", "backoff limit"),
                ],
            ),
            Health(Status.FAILED, "Job Failed. failed: 2/1"),
            id="failed",
        ),
        pytest.param(
            job(completions=3, startTime=NOW, active=1, ready=1, succeeded=1, failed=1),
            Health(Status.IN_PROGRESS, "Job in progress. succeeded: 1/3, active: 1, failed: 1"),
            id="running",
        ),
        pytest.param(job(), Health(Status.IN_PROGRESS, "Job not started"), id="not-started"),
        pytest.param(
            job(conditions=[job_condition("Suspended", "JobSuspended", "Job suspended")]),
            Health(Status.CURRENT, "Job is suspended"),
            id="suspended",
        ),
    ],
)
def test_job(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def test_cronjob_is_current_between_and_during_runs() -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta("backup"),
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {}}},
        "status": {
            "active": [{"kind": "Job", "namespace": "apps", "name": "backup-29410000"}],
            "lastScheduleTime": NOW,
            "lastSuccessfulTime": NOW,
        },
    }
    assert health(cronjob).status is Status.CURRENT
    assert health(changed(cronjob, status=None)).status is Status.CURRENT


# --- Services, claims, budgets, CRDs, Namespaces, objects without a status ---------------------


def service(type_: str, **status: Any) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("web", generation=None),
        "spec": {
            "type": type_,
            "clusterIP": "10.96.14.3",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
        "status": {"loadBalancer": status},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            service("ClusterIP"), Health(Status.CURRENT, "Service is ready"), id="cluster-ip"
        ),
        pytest.param(
            service("LoadBalancer"),
            Health(Status.IN_PROGRESS, "Waiting for the load balancer's address"),
            id="load-balancer-pending",
        ),
        pytest.param(
            service("LoadBalancer", ingress=[{"ip": "172.18.255.1", "ipMode": "VIP"}]),
            Health(Status.CURRENT, "Service is ready"),
            id="load-balancer-with-address",
        ),
    ],
)
def test_service(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def test_claim_is_current_once_bound() -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta("data-db-0", generation=None),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
        "status": {"phase": "Pending"},
    }
    assert health(claim) == Health(Status.IN_PROGRESS, "PVC is not Bound. phase: Pending")
    bound = changed(claim, status={"phase": "Bound", "capacity": {"storage": "2Gi"}})
    assert health(bound) == Health(Status.CURRENT, "PVC is Bound")


def test_disruption_budget_follows_its_observed_generation() -> None:
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("web", generation=2),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "observedGeneration": 2,
            "currentHealthy": 3,
            "desiredHealthy": 1,
            "disruptionsAllowed": 2,
            "expectedPods": 3,
            "conditions": [condition("DisruptionAllowed", "True", "SufficientPods")],
        },
    }
    assert health(budget).status is Status.CURRENT
    assert health(changed(budget, status__observedGeneration=1)) == Health(
        Status.IN_PROGRESS,
        "PodDisruptionBudget generation is 2, but latest observed generation is 1",
    )


def crd(*conditions: KubeObject) -> KubeObject:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta("widgets.example.com", namespace=None),
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
        "status": {
            "conditions": list(conditions),
            "acceptedNames": {"kind": "", "plural": ""},
            "storedVersions": ["v1"],
        },
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            crd(
                condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                condition("Established", "True", "InitialNamesAccepted", "the initial names"),
            ),
            Health(Status.CURRENT, "CRD is established"),
            id="established",
        ),
        pytest.param(
            changed(crd(), status=None),
            Health(Status.IN_PROGRESS, "Install in progress"),
            id="just-created",
        ),
        pytest.param(
            crd(
                condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                condition("Established", "False", "Installing", "the initial names have been"),
            ),
            Health(Status.IN_PROGRESS, "Install in progress"),
            id="installing",
        ),
        pytest.param(
            crd(
                condition("Established", "False", "NotAccepted", "not all names are accepted"),
                condition(
                    "NamesAccepted", "False", "MultipleNamesConflict", '"widget" is already in use'
                ),
            ),
            Health(Status.FAILED, '"widget" is already in use'),
            id="names-not-accepted",
        ),
    ],
)
def test_custom_resource_definition(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def test_namespace_active_and_terminating() -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta("apps", namespace=None, generation=None),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert health(namespace) == Health(Status.CURRENT, "Namespace is active")
    terminating = changed(namespace, status={"phase": "Terminating"})
    assert health(terminating) == Health(Status.TERMINATING, "Namespace is terminating")
    deleted = changed(terminating, metadata__deletionTimestamp=NOW)
    assert health(deleted).status is Status.TERMINATING


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings"), "data": {"a": "1"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("reader", namespace=None),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("app", generation=None)},
    ],
    ids=["configmap", "clusterrole", "serviceaccount"],
)
def test_objects_without_a_status_are_current(obj: KubeObject) -> None:
    assert health(obj) == Health(Status.CURRENT, "Resource is current")


def test_secret_is_current_and_its_data_never_in_the_message() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("creds", generation=None),
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg=="},
    }
    result = health(secret)
    assert result.status is Status.CURRENT
    assert "aHVudGVyMg" not in result.message


def test_deleted_object_is_terminating_whatever_its_state() -> None:
    deleting = changed(stalled_deployment(), metadata__deletionTimestamp=NOW)
    deleting["metadata"]["finalizers"] = ["foregroundDeletion"]
    assert health(deleting) == Health(Status.TERMINATING, "Resource scheduled for deletion")


def test_missing_object_is_not_found() -> None:
    assert health(None).status is Status.NOT_FOUND


# --- custom resources and Flux's own kinds --------------------------------------------------


def widget(*conditions: KubeObject, generation: int = 1, observed: int | None = 1) -> KubeObject:
    status: KubeObject = {"conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("gear", generation=generation),
        "spec": {"size": 3},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            widget(condition("Ready", "True", "Provisioned", "Widget is ready")),
            Health(Status.CURRENT, "Widget is ready"),
            id="ready",
        ),
        pytest.param(
            widget(condition("Ready", "False", "Provisioning", "Waiting for the gear")),
            Health(Status.IN_PROGRESS, "Waiting for the gear"),
            id="not-ready",
        ),
        pytest.param(
            widget(condition("Ready", "Unknown")),
            Health(Status.IN_PROGRESS, "Ready is Unknown"),
            id="ready-unknown",
        ),
        pytest.param(
            widget(
                condition("Ready", "False", "InvalidSize", "size 3 is not allowed"),
                condition("Stalled", "True", "InvalidSize", "size 3 is not allowed"),
            ),
            Health(Status.FAILED, "size 3 is not allowed"),
            id="stalled",
        ),
        pytest.param(
            widget(condition("Reconciling", "True", "Progressing", "Provisioning the gear")),
            Health(Status.IN_PROGRESS, "Provisioning the gear"),
            id="reconciling",
        ),
        pytest.param(
            widget(condition("Ready", "True"), generation=2, observed=1),
            Health(
                Status.IN_PROGRESS, "Widget generation is 2, but latest observed generation is 1"
            ),
            id="generation-not-observed",
        ),
        pytest.param(
            changed(widget(), status=None),
            Health(Status.CURRENT, "Resource is current"),
            id="no-status",
        ),
    ],
)
def test_custom_resource(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def kustomization(*conditions: KubeObject, generation: int = 1, observed: int = 1) -> KubeObject:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta("apps", namespace="flux-system", generation=generation),
        "spec": {
            "interval": "10m",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
        "status": {
            "observedGeneration": observed,
            "lastAppliedRevision": "main@sha1:3f1c2e9",
            "conditions": list(conditions),
        },
    }


APPLIED = condition(
    "Ready", "True", "ReconciliationSucceeded", "Applied revision: main@sha1:3f1c2e9"
)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            kustomization(APPLIED),
            Health(Status.CURRENT, "Applied revision: main@sha1:3f1c2e9"),
            id="applied",
        ),
        pytest.param(
            kustomization(APPLIED, generation=2, observed=1),
            Health(
                Status.IN_PROGRESS,
                "Kustomization generation is 2, but latest observed generation is 1",
            ),
            id="new-generation",
        ),
        pytest.param(
            kustomization(
                condition("Ready", "False", "BuildFailed", "kustomize build failed: bad YAML")
            ),
            Health(Status.IN_PROGRESS, "kustomize build failed: bad YAML"),
            id="failed-will-retry",
        ),
        pytest.param(
            kustomization(
                condition("Ready", "False", "InvalidPath", "path ./apps not found"),
                condition("Stalled", "True", "InvalidPath", "path ./apps not found"),
            ),
            Health(Status.FAILED, "path ./apps not found"),
            id="stalled",
        ),
        pytest.param(
            kustomization(
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress"),
                condition("Reconciling", "True", "Progressing", "Running health checks"),
            ),
            Health(Status.IN_PROGRESS, "Running health checks"),
            id="reconciling",
        ),
        pytest.param(
            changed(kustomization(), status=None),
            Health(Status.IN_PROGRESS, "Kustomization has not observed its latest generation yet"),
            id="never-reconciled",
        ),
        pytest.param(
            kustomization(),
            Health(Status.IN_PROGRESS, "Waiting for the Ready condition"),
            id="no-ready-condition",
        ),
    ],
)
def test_flux_kustomization(obj: KubeObject, expected: Health) -> None:
    assert health(obj) == expected


def test_flux_helmrelease_and_gitrepository() -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": meta("podinfo", namespace="flux-system"),
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "podinfo"}}},
        # helm-controller's default before its first reconcile
        "status": {"observedGeneration": -1},
    }
    assert health(release).status is Status.IN_PROGRESS
    installed = changed(
        release,
        status={
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "True", "InstallSucceeded", "Helm install succeeded"),
                condition("Released", "True", "InstallSucceeded", "Helm install succeeded"),
            ],
        },
    )
    assert health(installed) == Health(Status.CURRENT, "Helm install succeeded")

    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": meta("flux-system", namespace="flux-system"),
        "spec": {"interval": "1m", "url": "ssh://git@127.0.0.1/homelab.git"},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "GitOperationFailed", "failed to checkout: timeout"),
                condition("FetchFailed", "True", "GitOperationFailed", "failed to checkout"),
            ],
        },
    }
    assert health(repository) == Health(Status.IN_PROGRESS, "failed to checkout: timeout")


# --- malformed objects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(
            changed(deployment(), status__replicas="s3cret"),
            "status.replicas is not an integer",
            id="string-count",
        ),
        pytest.param(
            changed(deployment(), status__conditions={"type": "Available"}),
            "status.conditions is not a list",
            id="conditions-not-a-list",
        ),
        pytest.param(
            changed(deployment(), status__conditions=["Available"]),
            "status.conditions holds an entry that is not an object",
            id="condition-not-an-object",
        ),
        pytest.param(
            changed(deployment(), status="s3cret"), "status is not an object", id="status-string"
        ),
    ],
)
def test_malformed_object_is_unknown_naming_the_field(obj: KubeObject, message: str) -> None:
    assert health(obj) == Health(Status.UNKNOWN, message)


# --- aggregate ------------------------------------------------------------------------------


def test_aggregate_of_current_objects_is_current() -> None:
    result = aggregate(
        [
            ("Deployment/apps/web", health(deployment())),
            ("ConfigMap/apps/settings", Health(Status.CURRENT, "Resource is current")),
        ]
    )
    assert result.status is Status.CURRENT
    assert aggregate([]).status is Status.CURRENT


def test_aggregate_is_the_worst_naming_the_first_in_that_state() -> None:
    healths = [
        ("Deployment/apps/web", health(deployment())),
        ("StatefulSet/apps/db", health(rolling_statefulset())),
        ("Deployment/apps/api", health(stalled_deployment())),
        ("Job/apps/migrate", Health(Status.FAILED, "Job Failed. failed: 2/1")),
    ]
    assert aggregate(healths) == Health(
        Status.FAILED, "Deployment/apps/api: Progress deadline exceeded"
    )
    assert aggregate(healths[:2]) == Health(Status.IN_PROGRESS, "StatefulSet/apps/db: Updated: 1/3")


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (Status.CURRENT, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, Status.TERMINATING),
        (Status.TERMINATING, Status.UNKNOWN),
        (Status.UNKNOWN, Status.NOT_FOUND),
        (Status.NOT_FOUND, Status.FAILED),
    ],
)
def test_aggregate_order_of_statuses(better: Status, worse: Status) -> None:
    pairs = [("a", Health(better, "better")), ("b", Health(worse, "worse"))]
    assert aggregate(pairs) == Health(worse, "b: worse")
    assert aggregate(reversed(pairs)) == Health(worse, "b: worse")
