"""Planning an apply: stages and order, ownership labels, annotations, and whether an apply
would change a live object."""

from __future__ import annotations

import base64
import copy
from typing import Any

from gitmoor.apply import plan
from gitmoor.apply.inventory import ObjectRef, entries, parse_entry, ref_of, stale


def obj(kind: str, name: str, api_version: str = "v1", **rest: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **rest}


def test_stages_put_definitions_first_and_sort_by_install_order() -> None:
    objects = [
        obj("Deployment", "web", "apps/v1"),
        obj("Widget", "w", "example.com/v1"),
        obj("StorageClass", "fast", "storage.k8s.io/v1"),
        obj("ConfigMap", "settings"),
        obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1"),
        obj("Namespace", "shop"),
        obj("ServiceAccount", "runner"),
    ]
    ordered = [[o["kind"] for o in stage] for stage in plan.stages(objects)]
    assert ordered == [
        ["Namespace", "CustomResourceDefinition"],
        ["StorageClass"],
        ["ServiceAccount", "ConfigMap", "Deployment", "Widget"],
    ]


def test_owned_labels_and_folds_string_data() -> None:
    secret = obj("Secret", "db", stringData={"password": "pw"}, data={"user": "dXNlcg=="})
    labelled = plan.owned(secret, "apps", "flux-system")
    assert labelled["metadata"]["labels"] == {
        plan.NAME_LABEL: "apps",
        plan.NAMESPACE_LABEL: "flux-system",
    }
    assert "stringData" not in labelled
    assert labelled["data"] == {"user": "dXNlcg==", "password": base64.b64encode(b"pw").decode()}
    assert "labels" not in secret["metadata"]  # the input is left alone
    assert plan.is_owned_by(labelled, "apps", "flux-system")
    assert not plan.is_owned_by(labelled, "apps", "other")


def test_annotations_decide_the_apply_policy() -> None:
    plain = obj("ConfigMap", "a")
    assert plan.apply_policy(plain, None) == "apply"
    create_only = obj("ConfigMap", "a", metadata={"name": "a", "annotations": {
        plan.SSA_ANNOTATION: "IfNotPresent"}})  # fmt: skip
    assert plan.apply_policy(create_only, None) == "create"
    assert plan.apply_policy(create_only, plain) == "skip"
    ignored = obj("ConfigMap", "a", metadata={"name": "a", "annotations": {
        plan.SSA_ANNOTATION: "Ignore"}})  # fmt: skip
    assert plan.apply_policy(ignored, None) == "skip"
    disabled = obj("ConfigMap", "a", metadata={"name": "a", "annotations": {
        plan.RECONCILE_ANNOTATION: "disabled"}})  # fmt: skip
    # Disabled in Git, or on the live object by hand in an emergency.
    assert plan.apply_policy(disabled, None) == "skip"
    assert plan.apply_policy(plain, disabled) == "skip"
    assert plan.prune_disabled(obj("ConfigMap", "a", metadata={"name": "a", "annotations": {
        plan.PRUNE_ANNOTATION: "Disabled"}}))  # fmt: skip


def managed(fields: dict[str, Any], manager: str = "gitmoor") -> list[dict[str, Any]]:
    return [{"manager": manager, "operation": "Apply", "fieldsV1": fields}]


DESIRED = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}},
}  # fmt: skip
FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
        'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {},
                             "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                                 ".": {}, "f:containerPort": {}}}}}}}},
}  # fmt: skip


def live_of(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores: the applied fields plus defaults and bookkeeping."""
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="u", resourceVersion="7", managedFields=managed(FIELDS))
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["ports"][0]["protocol"] = "TCP"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    return live


def test_in_sync_ignores_defaults_and_bookkeeping() -> None:
    assert plan.in_sync(DESIRED, live_of(DESIRED), "gitmoor")


def test_a_hand_edit_or_a_missing_object_is_out_of_sync() -> None:
    assert not plan.in_sync(DESIRED, None, "gitmoor")
    edited = live_of(DESIRED)
    edited["spec"]["replicas"] = 5
    assert not plan.in_sync(DESIRED, edited, "gitmoor")
    image = live_of(DESIRED)
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:latest"
    assert not plan.in_sync(DESIRED, image, "gitmoor")


def test_a_field_dropped_from_git_is_out_of_sync() -> None:
    # Applied with a label before; Git no longer has it, so an apply would remove it.
    live = live_of(DESIRED)
    live["metadata"]["labels"]["tier"] = "front"
    live["metadata"]["managedFields"] = managed(
        {**FIELDS, "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}}
    )
    assert not plan.in_sync(DESIRED, live, "gitmoor")
    # The same label set by someone else is theirs, and not a difference.
    live["metadata"]["managedFields"] = [*managed(FIELDS),
                                         *managed({"f:metadata": {"f:labels": {
                                             "f:tier": {}}}}, "kubectl")]  # fmt: skip
    assert plan.in_sync(DESIRED, live, "gitmoor")


def test_never_applied_by_this_manager_is_out_of_sync() -> None:
    live = live_of(DESIRED)
    live["metadata"]["managedFields"] = managed(FIELDS, "kubectl-client-side-apply")
    assert not plan.in_sync(DESIRED, live, "gitmoor")


def test_scalar_lists_compare_whole_and_numbers_by_value() -> None:
    desired = obj("ConfigMap", "a", data={"x": "1"})
    desired["spec"] = {"args": ["a", "b"], "ratio": 1}
    live = copy.deepcopy(desired)
    fields = {"f:data": {"f:x": {}}, "f:spec": {"f:args": {}, "f:ratio": {}}}
    live["metadata"]["managedFields"] = managed(fields)
    live["spec"]["ratio"] = 1.0
    assert plan.in_sync(desired, live, "gitmoor")
    live["spec"]["args"] = ["a", "b", "c"]
    assert not plan.in_sync(desired, live, "gitmoor")


def test_inventory_ids_round_trip_and_stale_ignores_versions() -> None:
    ref = ref_of({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": "shop"}})  # fmt: skip
    assert ref.id == "shop_web_apps_Deployment"
    [entry] = entries([ref])
    assert entry == {"id": "shop_web_apps_Deployment", "v": "v1"}
    assert parse_entry(entry) == ref
    namespace = ObjectRef("", "Namespace", "", "shop", "v1")
    assert namespace.id == "_shop__Namespace"
    old = [ref, namespace]
    new = [ObjectRef("apps", "Deployment", "shop", "web", "v2")]
    assert stale(old, new) == [namespace]
