"""Events recorded against the sandbox: the Event's fields, folding repeats, kubectl's view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.api import Kustomization
from gitmoor.api.crds import crd_manifest
from gitmoor.cluster import Cluster
from gitmoor.observe.events import EventRecorder, revision_annotation

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

REVISION = "main@sha1:3f2a1c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"


@pytest.fixture
async def cluster(sandbox: Sandbox) -> AsyncIterator[Cluster]:
    cluster = Cluster.connect(sandbox.kubeconfig)
    yield cluster
    await cluster.close()


async def kustomization(cluster: Cluster) -> dict[str, Any]:
    """A Kustomization flux-system/apps, as a controller would hold it."""
    await cluster.apply(crd_manifest(Kustomization))
    await cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}
    )
    return await cluster.apply(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {
                "interval": "10m",
                "path": "./apps",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            },
        }
    )


async def events(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return await cluster.list("v1", "Event", namespace=namespace)


async def test_an_event_carries_the_object_the_controller_and_the_revision(
    cluster: Cluster,
) -> None:
    obj = await kustomization(cluster)
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    await recorder.record(
        obj,
        type="Normal",
        reason="ReconciliationSucceeded",
        message="Reconciliation finished in 1.2s, next run in 10m0s",
        annotations=revision_annotation(obj, REVISION),
    )
    [event] = await events(cluster, "flux-system")
    meta = obj["metadata"]
    assert event["involvedObject"] == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "name": "apps",
        "namespace": "flux-system",
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    }
    assert event["type"] == "Normal"
    assert event["reason"] == "ReconciliationSucceeded"
    assert event["message"] == "Reconciliation finished in 1.2s, next run in 10m0s"
    assert event["source"]["component"] == "kustomize-controller"
    assert event["reportingComponent"] == "kustomize-controller"
    assert event["reportingInstance"] == event["source"]["host"] != ""
    assert event["count"] == 1
    assert event["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/revision": REVISION}
    assert event.get("eventTime") is None
    # client-go names an Event after the object and the moment, in hex nanoseconds.
    name, _, nanos = event["metadata"]["name"].rpartition(".")
    assert name == "apps"
    moment = datetime.fromtimestamp(int(nanos, 16) // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["firstTimestamp"] == event["lastTimestamp"] == moment


async def test_a_repeated_event_bumps_the_count_of_one_event(cluster: Cluster) -> None:
    obj = await kustomization(cluster)
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    for _ in range(3):
        await recorder.record(obj, type="Warning", reason="BuildFailed", message="bad YAML")
    await recorder.record(obj, type="Warning", reason="BuildFailed", message="other failure")
    found = {e["message"]: e for e in await events(cluster, "flux-system")}
    assert sorted(found) == ["bad YAML", "other failure"]
    repeated = found["bad YAML"]
    assert repeated["count"] == 3
    assert repeated["lastTimestamp"] >= repeated["firstTimestamp"]
    assert found["other failure"]["count"] == 1


async def test_a_repeat_of_an_expired_event_starts_a_new_one(cluster: Cluster) -> None:
    obj = await kustomization(cluster)
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    await recorder.record(obj, type="Normal", reason="Progressing", message="applied")
    [first] = await events(cluster, "flux-system")
    await cluster.delete(first)
    await recorder.record(obj, type="Normal", reason="Progressing", message="applied")
    [second] = await events(cluster, "flux-system")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1


async def test_events_about_cluster_scoped_objects_go_to_default(cluster: Cluster) -> None:
    await kustomization(cluster)
    namespace = await cluster.get("v1", "Namespace", "flux-system")
    assert namespace is not None
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    await recorder.record(namespace, type="Normal", reason="Created", message="created")
    [event] = await events(cluster, "default")
    assert event["involvedObject"]["kind"] == "Namespace"
    assert "namespace" not in event["involvedObject"]


async def test_kubectl_lists_the_events(sandbox: Sandbox, cluster: Cluster) -> None:
    obj = await kustomization(cluster)
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    await recorder.record(obj, type="Warning", reason="HealthCheckFailed", message="timeout")
    await recorder.record(obj, type="Warning", reason="HealthCheckFailed", message="timeout")
    [event] = await events(cluster, "flux-system")
    listed = sandbox.kubectl("get", "events", "-n", "flux-system", "-o", "name").stdout.split()
    assert listed == [f"event/{event['metadata']['name']}"]
    columns = "KIND:.involvedObject.kind,NAME:.involvedObject.name,TYPE:.type,REASON:.reason,"
    shown = sandbox.kubectl(
        "get", "events", "-n", "flux-system", "--no-headers",
        "-o", f"custom-columns={columns}COUNT:.count,FROM:.source.component,MESSAGE:.message",
    )  # fmt: skip
    assert shown.stdout.split() == [
        "Kustomization", "apps", "Warning", "HealthCheckFailed", "2", "kustomize-controller",
        "timeout",
    ]  # fmt: skip


async def test_recording_while_the_api_server_is_down_does_not_raise(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    obj = await kustomization(cluster)
    recorder = EventRecorder(cluster, controller="kustomize-controller")
    await recorder.record(obj, type="Normal", reason="Progressing", message="applied")
    sandbox.stop()
    await recorder.record(obj, type="Normal", reason="Progressing", message="applied")
    await recorder.record(obj, type="Warning", reason="Failed", message="while down")
    sandbox.start()
    await recorder.record(obj, type="Normal", reason="Progressing", message="applied")
    [event] = await events(cluster, "flux-system")
    assert event["count"] == 2
