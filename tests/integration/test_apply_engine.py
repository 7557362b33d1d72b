"""The apply engine against the sandbox: staged apply, no-op detection, drift, pruning."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.apply import engine
from gitmoor.apply.engine import Owner, apply_objects, prune
from gitmoor.apply.inventory import ref_of, stale
from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

OWNER = Owner("apps", "flux-system")

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


def objects() -> list[dict[str, Any]]:
    return copy.deepcopy([
        {"apiVersion": "example.com/v1", "kind": "Widget",
         "metadata": {"name": "w", "namespace": "shop"}, "spec": {"size": 3}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": "shop"}, "data": {"mode": "fast"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "shop"},
         "stringData": {"user": "admin"}},
        CRD,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    ])  # fmt: skip


@pytest.fixture
async def cluster(sandbox: Sandbox) -> AsyncIterator[Cluster]:
    connected = Cluster.connect(sandbox.kubeconfig)
    yield connected
    await connected.close()


def actions(result: engine.ApplyResult) -> dict[str, str]:
    return {str(c.ref): c.action for c in result.changes}


async def test_first_apply_creates_in_stages_and_second_is_a_no_op(cluster: Cluster) -> None:
    first = await apply_objects(cluster, objects(), OWNER)
    assert set(actions(first).values()) == {engine.CREATED}
    order = [c.ref.kind for c in first.changes]
    # Cluster definitions first, then the rest in Helm's install order.
    assert order[:2] == ["Namespace", "CustomResourceDefinition"]
    assert order.index("Secret") < order.index("ConfigMap") < order.index("Deployment")
    widget = await cluster.get("example.com/v1", "Widget", "w", "shop")
    assert widget is not None
    assert widget["spec"] == {"size": 3}
    labels = widget["metadata"]["labels"]
    assert labels == {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }

    again = await apply_objects(cluster, objects(), OWNER)
    assert actions(again) == {k: engine.UNCHANGED for k in actions(again)}


async def test_a_changed_value_and_a_hand_edit_are_applied(cluster: Cluster) -> None:
    await apply_objects(cluster, objects(), OWNER)
    changed = objects()
    changed[2]["data"]["mode"] = "slow"
    deployment = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert deployment is not None
    await cluster.patch(deployment, {"spec": {"replicas": 5}})

    result = await apply_objects(cluster, changed, OWNER)
    assert actions(result)["ConfigMap/shop/settings"] == engine.CONFIGURED
    assert actions(result)["Deployment.apps/shop/web"] == engine.CONFIGURED
    assert actions(result)["Secret/shop/creds"] == engine.UNCHANGED
    live = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    assert live["spec"]["replicas"] == 2


async def test_a_field_removed_from_git_is_removed_from_the_cluster(cluster: Cluster) -> None:
    with_label = objects()
    with_label[2]["metadata"]["labels"] = {"tier": "cache"}
    await apply_objects(cluster, with_label, OWNER)
    result = await apply_objects(cluster, objects(), OWNER)
    assert actions(result)["ConfigMap/shop/settings"] == engine.CONFIGURED
    live = await cluster.get("v1", "ConfigMap", "settings", "shop")
    assert live is not None
    assert "tier" not in live["metadata"]["labels"]


async def test_an_invalid_object_stops_its_stage_before_anything_is_written(
    cluster: Cluster,
) -> None:
    await apply_objects(cluster, objects(), OWNER)
    broken = objects()
    broken[2]["data"]["mode"] = "changed"
    bad_name = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "Not_A_Name", "namespace": "shop"}}  # fmt: skip
    with pytest.raises(ClusterError) as caught:
        await apply_objects(cluster, [*broken, bad_name], OWNER)
    assert caught.value.code == 422
    assert "ConfigMap shop/Not_A_Name" in str(caught.value)
    live = await cluster.get("v1", "ConfigMap", "settings", "shop")
    assert live is not None
    assert live["data"] == {"mode": "fast"}


async def test_an_unknown_kind_fails_before_anything_is_applied(cluster: Cluster) -> None:
    unknown = {"apiVersion": "nowhere.io/v1", "kind": "Gadget",
               "metadata": {"name": "g", "namespace": "shop"}}  # fmt: skip
    with pytest.raises(ClusterError) as caught:
        await apply_objects(cluster, [*objects(), unknown], OWNER)
    assert caught.value.location.object == "Gadget shop/g"
    assert await cluster.get("v1", "Namespace", "shop") is None


async def test_prune_deletes_only_what_this_owner_applied(cluster: Cluster) -> None:
    first = await apply_objects(cluster, objects(), OWNER)
    # A ConfigMap of the same name applied by another Kustomization is not ours to delete.
    other = Owner("infra", "flux-system")
    foreign = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "foreign", "namespace": "shop"}}  # fmt: skip
    await apply_objects(cluster, [foreign], other)
    kept = [o for o in objects() if o["kind"] not in ("ConfigMap", "Widget")]
    second = await apply_objects(cluster, kept, OWNER)
    gone = stale([*first.refs, ref_of(foreign)], second.refs)
    pruned = await prune(cluster, gone, OWNER)
    assert {str(c.ref): c.action for c in pruned} == {
        "Widget.example.com/shop/w": engine.DELETED,
        "ConfigMap/shop/settings": engine.DELETED,
        "ConfigMap/shop/foreign": engine.SKIPPED,
    }
    assert await cluster.get("v1", "ConfigMap", "settings", "shop") is None
    assert await cluster.get("v1", "ConfigMap", "foreign", "shop") is not None


async def test_annotations_disable_prune_and_reconcile(cluster: Cluster) -> None:
    marked = objects()
    marked[2]["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    marked[1]["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    first = await apply_objects(cluster, marked, OWNER)
    marked[1]["spec"]["replicas"] = 7
    second = await apply_objects(cluster, marked, OWNER)
    assert actions(second)["Deployment.apps/shop/web"] == engine.SKIPPED
    live = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    assert live["spec"]["replicas"] == 2
    pruned = await prune(cluster, [r for r in first.refs if r.kind == "ConfigMap"], OWNER)
    assert [c.action for c in pruned] == [engine.SKIPPED]
    assert await cluster.get("v1", "ConfigMap", "settings", "shop") is not None


async def test_an_immutable_change_fails_unless_force_recreates(cluster: Cluster) -> None:
    await apply_objects(cluster, objects(), OWNER)
    before = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert before is not None
    moved = objects()
    deployment = moved[1]
    deployment["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    with pytest.raises(ClusterError) as caught:
        await apply_objects(cluster, moved, OWNER)
    assert caught.value.code == 422
    assert "field is immutable" in caught.value.message
    still = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert still is not None
    assert still["metadata"]["uid"] == before["metadata"]["uid"]

    forced = await apply_objects(cluster, moved, Owner("apps", "flux-system", force=True))
    assert actions(forced)["Deployment.apps/shop/web"] == engine.CONFIGURED
    after = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert after is not None
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["selector"] == {"matchLabels": {"app": "web2"}}
