"""JSON patch, merge patch and strategic merge patch as the Kubernetes API server applies them.

Strategic merge patches run against a stand-in schema built from plain dicts here; the
tests at the end run against the real Kubernetes 1.37 schemas.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.patch import json_patch, merge_patch, strategic_merge_patch
from gitmoor.sandbox.schema import SchemaNode, Schemas

INVALID = "the server rejected our request due to an error in our request"


@dataclass(frozen=True)
class FakeSchema:
    """A schema node from a dict with the keys ``strategy``, ``key``, ``fields``, ``items``."""

    spec: Mapping[str, Any]

    @property
    def patch_strategy(self) -> str | None:
        return self.spec.get("strategy")

    @property
    def patch_merge_key(self) -> str | None:
        return self.spec.get("key")

    def field(self, name: str) -> FakeSchema | None:
        found = self.spec.get("fields", {}).get(name)
        return FakeSchema(found) if found is not None else None

    def items(self) -> FakeSchema | None:
        found = self.spec.get("items")
        return FakeSchema(found) if found is not None else None


_CONTAINER = {
    "fields": {
        "ports": {"strategy": "merge", "key": "containerPort", "items": {}},
        "env": {"strategy": "merge", "key": "name", "items": {}},
        "volumeMounts": {"strategy": "merge", "key": "mountPath", "items": {}},
        "args": {"items": {}},
        "resources": {"fields": {"limits": {}, "requests": {}}},
    }
}
_POD_SPEC = {
    "fields": {
        "containers": {"strategy": "merge", "key": "name", "items": _CONTAINER},
        "volumes": {"strategy": "merge,retainKeys", "key": "name", "items": {}},
        "tolerations": {"items": {}},
        "nodeSelector": {},
    }
}
_METADATA = {
    "fields": {
        "finalizers": {"strategy": "merge", "items": {}},
        "labels": {},
        "annotations": {},
        "ownerReferences": {"strategy": "merge", "key": "uid", "items": {}},
    }
}
DEPLOYMENT = FakeSchema(
    {
        "fields": {
            "metadata": _METADATA,
            "spec": {
                "fields": {
                    "selector": {"strategy": "replace"},
                    "strategy": {"strategy": "retainKeys"},
                    "template": {"fields": {"metadata": _METADATA, "spec": _POD_SPEC}},
                }
            },
        }
    }
)


def deployment(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": list(containers), **spec}},
        },
    }


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def pod_patch(**pod_spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": pod_spec}}}


def smp(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    return strategic_merge_patch(obj, patch, DEPLOYMENT)


def merging_list(*items: Any) -> dict[str, Any]:
    """An object with only a list merged by ``name`` (the containers of a pod spec)."""
    return {"containers": list(items)}


def smp_list(live: list[Any], patch: dict[str, Any]) -> list[Any]:
    result = strategic_merge_patch(merging_list(*live), patch, FakeSchema(_POD_SPEC))
    containers: list[Any] = result["containers"]
    return containers


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [item["name"] for item in items]


# --- JSON patch ---------------------------------------------------------------------------


def test_json_patch_applies_operations_in_order() -> None:
    obj = deployment({"name": "app", "image": "nginx:1.25"})
    patched = json_patch(
        obj,
        [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": "nginx:1.27",
            },
            {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
            {"op": "remove", "path": "/spec/replicas"},
            {"op": "test", "path": "/metadata/labels/tier", "value": "web"},
        ],
    )
    assert containers_of(patched) == [{"name": "app", "image": "nginx:1.27"}]
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "web"}
    assert "replicas" not in patched["spec"]


def test_json_patch_leaves_the_original_alone() -> None:
    obj = deployment({"name": "app", "image": "nginx"})
    before = copy.deepcopy(obj)
    json_patch(obj, [{"op": "add", "path": "/metadata/labels/x", "value": "y"}])
    assert obj == before


def test_json_patch_appends_with_dash() -> None:
    obj = deployment({"name": "a", "image": "x"})
    path = "/spec/template/spec/containers/-"
    patched = json_patch(obj, [{"op": "add", "path": path, "value": {"name": "b", "image": "y"}}])
    assert names(containers_of(patched)) == ["a", "b"]


def test_json_patch_add_without_value_adds_null() -> None:
    patched = json_patch({"metadata": {}}, [{"op": "add", "path": "/metadata/note"}])
    assert patched == {"metadata": {"note": None}}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "remove", "path": "/spec/paused"},
        {"op": "replace", "path": "/spec/paused", "value": True},
        {"op": "add", "path": "/spec/missing/child", "value": 1},
        {"op": "move", "from": "/spec/missing", "path": "/spec/other"},
        {"op": "frobnicate", "path": "/spec"},
        {"path": "/spec"},
        {"op": "add", "path": "spec", "value": 1},
    ],
)
def test_json_patch_operation_that_does_not_apply_is_422(operation: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch(deployment({"name": "a", "image": "x"}), [operation])
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        422,
        "Invalid",
        INVALID,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("add", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
        ([[1]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
    ],
)
def test_json_patch_that_is_not_a_list_of_operations_is_400(body: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"metadata": {}}, body)
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400,
        "BadRequest",
        message,
    )


def test_json_patch_null_body_changes_nothing() -> None:
    obj = deployment({"name": "a", "image": "x"})
    assert json_patch(obj, None) == obj


def test_json_patch_with_too_many_operations_is_413() -> None:
    operations = [{"op": "test", "path": "/kind", "value": "Deployment"}] * 10_001
    with pytest.raises(ApiError) as caught:
        json_patch(deployment(), operations)
    assert (caught.value.code, caught.value.reason) == (413, "RequestEntityTooLarge")
    assert caught.value.message.endswith("is 10000, got 10001")


def test_json_patch_whose_result_is_not_an_object_is_invalid() -> None:
    with pytest.raises(ApiError) as caught:
        json_patch(deployment(), [{"op": "replace", "path": "", "value": [1]}])
    error = caught.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message.startswith(' "" is invalid: patch: Invalid value: "[1]": ')
    assert error.details is not None
    assert [cause["field"] for cause in error.details["causes"]] == ["patch"]


# --- merge patch --------------------------------------------------------------------------


def test_merge_patch_merges_maps_and_deletes_with_null() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}}
    patch = {"metadata": {"labels": {"a": None, "c": "3"}, "annotations": None}}
    assert merge_patch(obj, patch) == {"metadata": {"labels": {"b": "2", "c": "3"}}}


def test_merge_patch_replaces_lists() -> None:
    obj = deployment({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    patched = merge_patch(obj, pod_patch(containers=[{"name": "b", "image": "z"}]))
    assert containers_of(patched) == [{"name": "b", "image": "z"}]


def test_merge_patch_prunes_nulls_from_new_values_but_keeps_null_list_items() -> None:
    patch = {"spec": {"new": {"a": None, "b": {"c": None, "d": 1}}, "list": [{"x": None}, None]}}
    assert merge_patch({}, patch) == {"spec": {"new": {"b": {"d": 1}}, "list": [{}, None]}}


def test_merge_patch_replaces_a_scalar_with_an_object_and_back() -> None:
    obj = {"a": "text", "b": {"c": 1}}
    patched = merge_patch(obj, {"a": {"nested": 1, "gone": None}, "b": "text"})
    assert patched == {"a": {"nested": 1}, "b": "text"}


def test_merge_patch_leaves_the_original_alone() -> None:
    obj = {"metadata": {"labels": {"a": "1"}}}
    merge_patch(obj, {"metadata": {"labels": {"a": None}}})
    assert obj == {"metadata": {"labels": {"a": "1"}}}


@pytest.mark.parametrize("body", [None, 5, "text", True])
def test_merge_patch_that_is_not_an_object_is_400(body: Any) -> None:
    with pytest.raises(ApiError) as caught:
        merge_patch({"metadata": {}}, body)
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400,
        "BadRequest",
        "Invalid JSON Patch",
    )


def test_merge_patch_with_a_list_body_is_invalid() -> None:
    with pytest.raises(ApiError) as caught:
        merge_patch({"metadata": {}}, [{"a": None}])
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")
    assert 'Invalid value: "[{}]"' in caught.value.message


# --- strategic merge patch: lists merged by key ------------------------------------------


def test_adding_a_container_puts_it_before_the_live_ones() -> None:
    obj = deployment({"name": "app", "image": "nginx"})
    patched = smp(obj, pod_patch(containers=[{"name": "sidecar", "image": "envoy"}]))
    assert containers_of(patched) == [
        {"name": "sidecar", "image": "envoy"},
        {"name": "app", "image": "nginx"},
    ]


def test_changing_one_containers_image_keeps_the_rest() -> None:
    obj = deployment(
        {"name": "app", "image": "nginx:1.25", "args": ["-v"]},
        {"name": "sidecar", "image": "envoy:1"},
    )
    patched = smp(obj, pod_patch(containers=[{"name": "app", "image": "nginx:1.27"}]))
    assert containers_of(patched) == [
        {"name": "app", "image": "nginx:1.27", "args": ["-v"]},
        {"name": "sidecar", "image": "envoy:1"},
    ]


def test_patch_delete_removes_a_container() -> None:
    obj = deployment({"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"})
    patched = smp(obj, pod_patch(containers=[{"name": "sidecar", "$patch": "delete"}]))
    assert containers_of(patched) == [{"name": "app", "image": "a"}]


def test_patch_delete_removes_every_duplicate_and_ignores_missing_items() -> None:
    live = [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]
    patch = merging_list(
        {"name": 1, "$patch": "delete"},
        {"name": 3, "$patch": "delete"},
        {"name": 9, "$patch": "delete"},
    )
    assert smp_list(live, patch) == [{"name": 2, "value": "a"}]


def test_env_is_merged_by_name() -> None:
    obj = deployment(
        {"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    )
    env = [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
    patched = smp(obj, pod_patch(containers=[{"name": "app", "env": env}]))
    assert containers_of(patched)[0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]


def test_ports_are_merged_by_container_port() -> None:
    obj = deployment(
        {"name": "app", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}]}
    )
    ports = [{"containerPort": 9090, "name": "metrics"}, {"containerPort": 443}]
    patched = smp(obj, pod_patch(containers=[{"name": "app", "ports": ports}]))
    assert containers_of(patched)[0]["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 9090, "name": "metrics"},
        {"containerPort": 443},
    ]


def test_merge_keys_compare_as_go_does_so_a_float_key_is_a_new_item() -> None:
    live = [{"name": 1, "value": "a"}]
    assert smp_list(live, merging_list({"name": 1.0, "value": "b"})) == [
        {"name": 1.0, "value": "b"},
        {"name": 1, "value": "a"},
    ]


def test_patch_order_wins_and_server_only_items_keep_their_place() -> None:
    live = [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]
    patch = merging_list({"name": 3, "value": "c"}, {"name": 1, "value": "a"})
    assert smp_list(live, patch) == [
        {"name": 2, "value": "b"},
        {"name": 3, "value": "c"},
        {"name": 1, "value": "a"},
    ]


def test_patch_replace_in_a_list_replaces_the_whole_list() -> None:
    live = [{"name": "a"}, {"name": "b"}]
    patch = merging_list({"$patch": "replace"}, {"name": "c", "image": "x"})
    assert smp_list(live, patch) == [{"name": "c", "image": "x"}]


def test_patch_replace_alone_empties_the_list() -> None:
    assert smp_list([{"name": "a"}], merging_list({"$patch": "replace"})) == []


def test_patch_merge_in_a_list_is_refused_as_the_api_server_does() -> None:
    with pytest.raises(ApiError) as caught:
        smp_list([{"name": "a"}], merging_list({"$patch": "merge", "name": "a"}))
    assert (caught.value.code, caught.value.message) == (
        500,
        "merging lists cannot yet be specified in the patch",
    )


def test_unknown_list_directive_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        smp_list([{"name": "a"}], merging_list({"$patch": "upsert", "name": "a"}))
    assert caught.value.code == 500
    assert caught.value.message == "unknown patch type: upsert in map: map[$patch:upsert name:a]"


def test_list_item_without_merge_key_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        smp_list([{"name": "a"}], merging_list({"image": "x"}))
    assert (caught.value.code, caught.value.message) == (
        500,
        "map: map[image:x] does not contain declared merge key: name",
    )


def test_deleting_an_item_without_merge_key_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        smp_list([{"name": "a"}], merging_list({"$patch": "delete"}))
    assert (
        caught.value.message == "map: map[$patch:delete] does not contain declared merge key: name"
    )


def test_list_of_lists_is_invalid() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}})
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        422,
        "Invalid",
        INVALID,
    )


def test_list_items_of_different_types_are_refused() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [1]}})
    assert caught.value.code == 500
    assert caught.value.message == "list element types are not identical: [[a] [1]]"


# --- strategic merge patch: lists of scalars ---------------------------------------------


def test_finalizers_merge_as_a_set_new_ones_first() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    patched = smp(obj, {"metadata": {"finalizers": ["b", "c", "c"]}})
    assert patched["metadata"]["finalizers"] == ["a", "b", "c"]
    patched = smp(obj, {"metadata": {"finalizers": ["c"]}})
    assert patched["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list_removes_every_copy() -> None:
    obj = {"metadata": {"finalizers": ["a", "b", "b", "c"]}}
    patched = smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "z"]}})
    assert patched["metadata"]["finalizers"] == ["a", "c"]


def test_delete_from_primitive_list_works_on_a_list_that_is_replaced_otherwise() -> None:
    obj = deployment({"name": "app", "args": ["-a", "-b", "-c"]})
    container = {"name": "app", "$deleteFromPrimitiveList/args": ["-b"]}
    patched = smp(obj, pod_patch(containers=[container]))
    assert containers_of(patched)[0]["args"] == ["-a", "-c"]


def test_delete_from_primitive_list_does_not_create_the_list() -> None:
    obj = {"metadata": {"name": "x"}}
    patched = smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert patched == {"metadata": {"name": "x"}}


def test_add_and_delete_scalars_in_order() -> None:
    obj = {"metadata": {"finalizers": ["1", "2", "3", "4"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["1", "2", "5"],
            "$deleteFromPrimitiveList/finalizers": ["3"],
            "finalizers": ["5"],
        }
    }
    assert smp(obj, patch)["metadata"]["finalizers"] == ["1", "2", "5", "4"]


def test_malformed_delete_from_primitive_list_key_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"metadata": {}}, {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}})
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400,
        "BadRequest",
        "invalid patch format of primitive list",
    )


# --- strategic merge patch: $setElementOrder ---------------------------------------------


def test_set_element_order_orders_merged_containers() -> None:
    obj = deployment({"name": "a", "image": "1"}, {"name": "b", "image": "2"})
    patch = pod_patch(
        **{
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "c", "image": "3"}],
        }
    )
    assert containers_of(smp(obj, patch)) == [
        {"name": "c", "image": "3"},
        {"name": "b", "image": "2"},
        {"name": "a", "image": "1"},
    ]


def test_set_element_order_alone_reorders() -> None:
    live = [{"name": 1}, {"name": 3}]
    patch = {"$setElementOrder/containers": [{"name": 3}, {"name": 2}, {"name": 1}]}
    assert names(smp_list(live, patch)) == [3, 1]


def test_set_element_order_places_server_only_items_by_live_order() -> None:
    live = [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]
    patch = {
        "$setElementOrder/containers": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
        "containers": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
    }
    assert smp_list(live, patch) == [
        {"name": 4, "value": 4},
        {"name": 1, "other": "a"},
        {"name": 2, "value": 2, "other": "b"},
        {"name": 3, "value": 3},
    ]


@pytest.mark.parametrize(
    ("live", "patched", "expected"),
    [
        (
            [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}],
            [{"name": 3}, {"name": 1, "$patch": "delete"}],
            [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}],
        ),
        (
            [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}],
            [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}],
            [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}],
        ),
    ],
)
def test_set_element_order_with_an_add_and_a_delete(
    live: list[dict[str, Any]], patched: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    # Where the server-only item 4 lands follows the API server's in-place merge.
    patch = {"$setElementOrder/containers": [{"name": 2}, {"name": 3}], "containers": patched}
    assert smp_list(live, patch) == expected


def test_set_element_order_that_contradicts_the_patch_is_refused() -> None:
    patch = {
        "$setElementOrder/containers": [{"name": 1}, {"name": 2}, {"name": 3}],
        "containers": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
    }
    with pytest.raises(ApiError) as caught:
        smp_list([{"name": 1}, {"name": 3}, {"name": 2}], patch)
    assert caught.value.code == 500
    assert "doesn't match $setElementOrder list" in caught.value.message


def test_set_element_order_for_a_new_list_drops_directive_items() -> None:
    patch = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "b"}, {"name": "x", "$patch": "delete"}, {"name": "a", "x": None}],
    }
    result = strategic_merge_patch({}, patch, FakeSchema(_POD_SPEC))
    assert result == {"containers": [{"name": "b"}, {"name": "a"}]}


def test_malformed_set_element_order_key_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"metadata": {}}, {"metadata": {"$setElementOrderX/finalizers": ["a"]}})
    assert (caught.value.code, caught.value.message) == (
        400,
        "invalid patch format of setElementOrder list",
    )


def test_set_element_order_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"$setElementOrder/finalizers": "a"}})
    assert (caught.value.code, caught.value.message) == (
        500,
        "expected a []interface {}, but received a string",
    )


# --- strategic merge patch: maps, nulls, replace ------------------------------------------


def test_nested_maps_are_merged_and_null_deletes() -> None:
    obj = deployment(nodeSelector={"disk": "ssd", "zone": "a"})
    obj["metadata"]["annotations"] = {"note": "x"}
    patch = {
        "metadata": {"labels": {"tier": "web"}, "annotations": None},
        "spec": {"template": {"spec": {"nodeSelector": {"zone": None, "arch": "arm64"}}}},
    }
    patched = smp(obj, patch)
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "web"}
    assert "annotations" not in patched["metadata"]
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd", "arch": "arm64"}


def test_null_for_a_missing_field_changes_nothing() -> None:
    obj = deployment({"name": "a"})
    assert smp(obj, {"spec": {"paused": None}}) == obj


def test_list_of_maps_without_merge_strategy_is_replaced() -> None:
    tolerations = [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]
    obj = deployment({"name": "app"}, tolerations=tolerations)
    new = [{"key": "c", "operator": "Exists"}]
    patched = smp(obj, pod_patch(tolerations=new))
    assert patched["spec"]["template"]["spec"]["tolerations"] == new


def test_patch_replace_in_a_map_replaces_it() -> None:
    obj = deployment()
    patch = {"metadata": {"labels": {"$patch": "replace", "tier": "web", "gone": None}}}
    assert smp(obj, patch)["metadata"]["labels"] == {"tier": "web"}


def test_patch_delete_in_a_map_empties_it() -> None:
    obj = deployment()
    assert smp(obj, {"metadata": {"labels": {"$patch": "delete"}}})["metadata"]["labels"] == {}


def test_patch_replace_at_the_root_replaces_the_object() -> None:
    assert smp(deployment(), {"$patch": "replace", "kind": "Deployment"}) == {"kind": "Deployment"}


def test_patch_merge_in_a_map_is_refused_as_the_api_server_does() -> None:
    with pytest.raises(ApiError) as caught:
        smp(deployment(), {"metadata": {"labels": {"$patch": "merge", "a": "b"}}})
    assert caught.value.code == 500
    assert caught.value.message == "unknown patch type: merge in map: map[$patch:merge a:b]"


def test_replace_strategy_map_is_replaced() -> None:
    obj = deployment()
    obj["spec"]["selector"] = {"matchLabels": {"app": "web"}, "matchExpressions": []}
    patched = smp(obj, {"spec": {"selector": {"matchLabels": {"app": "api"}}}})
    assert patched["spec"]["selector"] == {"matchLabels": {"app": "api"}}


def test_a_value_of_another_type_replaces() -> None:
    obj = {"spec": {"a": {"b": 1}, "c": [1], "d": "x"}}
    patched = strategic_merge_patch(
        obj, {"spec": {"a": "flat", "c": {"k": None, "v": 1}}}, DEPLOYMENT
    )
    assert patched == {"spec": {"a": "flat", "c": {"v": 1}, "d": "x"}}


def test_no_directive_ends_up_in_the_result() -> None:
    obj = deployment({"name": "app", "image": "a"})
    new_container = {
        "name": "sidecar",
        "image": "b",
        "command": None,
        "$setElementOrder/env": [{"name": "X"}],
        "$retainKeys": ["name", "image", "env", "resources"],
        "env": [{"name": "X", "value": "1", "valueFrom": None}],
        "resources": {"limits": {"$patch": "delete"}, "requests": {"cpu": "1"}},
    }
    patch = pod_patch(
        containers=[new_container],
        volumes=[{"name": "v", "emptyDir": {}, "$patch": "replace"}],
        extra={"$patch": "delete"},
    )
    patched = smp(obj, patch)
    assert containers_of(patched)[0] == {
        "name": "sidecar",
        "image": "b",
        "env": [{"name": "X", "value": "1"}],
        "resources": {"requests": {"cpu": "1"}},
    }
    assert patched["spec"]["template"]["spec"]["volumes"] == []
    assert "extra" not in patched["spec"]["template"]["spec"]


def test_strategic_merge_patch_leaves_its_inputs_alone() -> None:
    obj = deployment({"name": "app", "image": "a"})
    patch = pod_patch(
        **{"$setElementOrder/containers": [{"name": "app"}], "containers": [{"name": "app"}]}
    )
    before_obj, before_patch = copy.deepcopy(obj), copy.deepcopy(patch)
    smp(obj, patch)
    assert (obj, patch) == (before_obj, before_patch)


# --- strategic merge patch: $retainKeys ---------------------------------------------------


def test_retain_keys_clears_the_fields_it_does_not_name() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(obj, patch)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_in_a_merged_list_item() -> None:
    obj = deployment(volumes=[{"name": "v", "configMap": {"name": "cm"}}, {"name": "w"}])
    volume = {"$retainKeys": ["name", "secret"], "name": "v", "secret": {"secretName": "s"}}
    patched = smp(obj, pod_patch(volumes=[volume]))
    assert patched["spec"]["template"]["spec"]["volumes"] == [
        {"name": "v", "secret": {"secretName": "s"}},
        {"name": "w"},
    ]


def test_retain_keys_with_a_null_deletes_too() -> None:
    obj = {"spec": {"strategy": {"type": "A", "value": "a", "other": "x"}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "value": None}}}
    assert smp(obj, patch) == {"spec": {"strategy": {"type": "A"}}}


@pytest.mark.parametrize(
    "strategy",
    [
        {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}},
        {"$retainKeys": "type", "type": "Recreate"},
    ],
)
def test_retain_keys_that_do_not_cover_the_patch_are_400(strategy: dict[str, Any]) -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "RollingUpdate"}
    with pytest.raises(ApiError) as caught:
        smp(obj, {"spec": {"strategy": strategy}})
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400,
        "BadRequest",
        "invalid patch format of retainKeys",
    )


# --- strategic merge patch: bodies and schemaless objects --------------------------------


def test_strategic_merge_patch_that_is_not_an_object_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        smp(deployment(), [{"op": "add"}])
    assert (caught.value.code, caught.value.message) == (
        400,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    )


def test_strategic_merge_patch_null_body_changes_nothing() -> None:
    obj = deployment({"name": "a"})
    assert smp(obj, None) == obj


def test_without_schema_a_strategic_merge_patch_is_a_merge_patch() -> None:
    obj = {"spec": {"items": [{"name": "a"}, {"name": "b"}], "keep": 1, "drop": 2}}
    patch = {"spec": {"items": [{"name": "c"}], "drop": None}}
    assert strategic_merge_patch(obj, patch, None) == {
        "spec": {"items": [{"name": "c"}], "keep": 1}
    }


# --- strategic merge patch with the real Kubernetes schemas -------------------------------


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas.load()


def real_schema(schemas: Schemas, group: str, version: str, kind: str) -> SchemaNode:
    node = schemas.for_kind(group, version, kind)
    assert node is not None, f"no schema for {group}/{version} {kind}"
    return node


def test_real_deployment_patch_as_kubectl_apply_sends_it(schemas: Schemas) -> None:
    obj = deployment(
        {"name": "app", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "envoy:1"},
    )
    app = {
        "name": "app",
        "image": "nginx:1.27",
        "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
        "env": [{"name": "B", "value": "2"}],
    }
    patch = pod_patch(
        **{
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [app],
        }
    )
    patched = strategic_merge_patch(obj, patch, real_schema(schemas, "apps", "v1", "Deployment"))
    assert containers_of(patched) == [
        {
            "name": "app",
            "image": "nginx:1.27",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        {"name": "sidecar", "image": "envoy:1"},
    ]


def test_real_deployment_merges_containers_ports_and_mounts(schemas: Schemas) -> None:
    obj = deployment(
        {
            "name": "app",
            "ports": [{"containerPort": 80}],
            "volumeMounts": [{"mountPath": "/data", "name": "data"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        }
    )
    app = {
        "name": "app",
        "ports": [{"containerPort": 80, "name": "http"}],
        "volumeMounts": [{"mountPath": "/cache", "name": "cache"}],
        "resources": {"limits": {"memory": "2Gi"}},
    }
    patch = pod_patch(containers=[app, {"name": "init", "image": "busybox"}])
    patched = strategic_merge_patch(obj, patch, real_schema(schemas, "apps", "v1", "Deployment"))
    assert containers_of(patched) == [
        {
            "name": "app",
            "ports": [{"containerPort": 80, "name": "http"}],
            "volumeMounts": [
                {"mountPath": "/cache", "name": "cache"},
                {"mountPath": "/data", "name": "data"},
            ],
            "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
        },
        {"name": "init", "image": "busybox"},
    ]


def test_real_deployment_retain_keys_on_strategy_and_volumes(schemas: Schemas) -> None:
    obj = deployment({"name": "app"}, volumes=[{"name": "v", "configMap": {"name": "cm"}}])
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
            "template": {
                "spec": {
                    "volumes": [{"$retainKeys": ["name", "emptyDir"], "name": "v", "emptyDir": {}}]
                }
            },
        }
    }
    patched = strategic_merge_patch(obj, patch, real_schema(schemas, "apps", "v1", "Deployment"))
    assert patched["spec"]["strategy"] == {"type": "Recreate"}
    assert patched["spec"]["template"]["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


def test_real_deployment_replaces_tolerations_and_merges_finalizers(schemas: Schemas) -> None:
    obj = deployment({"name": "app"}, tolerations=[{"key": "a", "operator": "Exists"}])
    obj["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    patch = {
        "metadata": {
            "finalizers": ["example.com/c"],
            "$deleteFromPrimitiveList/finalizers": ["example.com/a"],
        },
        "spec": {"template": {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}},
    }
    patched = strategic_merge_patch(obj, patch, real_schema(schemas, "apps", "v1", "Deployment"))
    assert patched["metadata"]["finalizers"] == ["example.com/c", "example.com/b"]
    assert patched["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "b", "operator": "Exists"}
    ]


def test_real_service_ports_merge_by_port(schemas: Schemas) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]},
    }
    patch = {"spec": {"ports": [{"port": 443, "name": "https"}, {"port": 80, "$patch": "delete"}]}}
    patched = strategic_merge_patch(obj, patch, real_schema(schemas, "", "v1", "Service"))
    assert patched["spec"]["ports"] == [{"port": 443, "targetPort": 8443, "name": "https"}]


def test_real_pod_disruption_budget_selector_is_replaced(schemas: Schemas) -> None:
    obj = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web", "tier": "a"}}},
    }
    patch = {"spec": {"selector": {"matchLabels": {"app": "api"}}}}
    schema = real_schema(schemas, "policy", "v1", "PodDisruptionBudget")
    patched = strategic_merge_patch(obj, patch, schema)
    assert patched["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}
