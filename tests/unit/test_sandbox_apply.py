"""Server-side apply and managedFields against the behaviour of the Kubernetes API server.

Most tests use a small schema written as OpenAPI dicts; the Deployment tests use the
real 1.37 definitions through ``gitmoor.sandbox.schema``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gitmoor.sandbox.apply import (
    LAST_APPLIED,
    MAX_UPDATE_MANAGERS,
    SchemaNode,
    field_set,
    record_update,
    server_side_apply,
)
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.fieldpath import FieldSet, PathElement, path_string
from gitmoor.sandbox.schema import Schemas

T0, T1, T2, T3 = (f"2024-05-0{day}T10:00:00Z" for day in range(1, 5))


class DictNode:
    """A schema node read from an OpenAPI-shaped dict, as a stand-in for the real one."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(self.spec.get("properties", {}))

    def field(self, name: str) -> DictNode | None:
        properties = self.spec.get("properties", {})
        if name in properties:
            return DictNode(properties[name])
        values = self.spec.get("additionalProperties")
        return DictNode(values) if isinstance(values, dict) else None

    def items(self) -> DictNode | None:
        items = self.spec.get("items")
        return DictNode(items) if items else None

    @property
    def list_type(self) -> str | None:
        return self.spec.get("x-kubernetes-list-type")

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self.spec.get("x-kubernetes-list-map-keys", ()))

    @property
    def map_type(self) -> str | None:
        return self.spec.get("x-kubernetes-map-type")

    @property
    def patch_strategy(self) -> str | None:
        return self.spec.get("x-kubernetes-patch-strategy")

    @property
    def patch_merge_key(self) -> str | None:
        return self.spec.get("x-kubernetes-patch-merge-key")


STRING = {"type": "string"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
METADATA = {
    "properties": {
        "name": STRING,
        "namespace": STRING,
        "uid": STRING,
        "resourceVersion": STRING,
        "generation": {"type": "integer"},
        "creationTimestamp": STRING,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": {"type": "array", "items": STRING, "x-kubernetes-list-type": "set"},
    }
}
CONFIGMAP = DictNode(
    {"properties": {"apiVersion": STRING, "kind": STRING, "metadata": METADATA, "data": STRING_MAP}}
)
CONTAINER = {
    "properties": {
        "name": STRING,
        "image": STRING,
        "args": {"type": "array", "items": STRING, "x-kubernetes-list-type": "atomic"},
        "env": {
            "type": "array",
            "items": {"properties": {"name": STRING, "value": STRING}},
            "x-kubernetes-patch-merge-key": "name",
            "x-kubernetes-patch-strategy": "merge",
        },
    }
}
POD = DictNode(
    {
        "properties": {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": METADATA,
            "spec": {
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": CONTAINER,
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                    },
                    "nodeSelector": {**STRING_MAP, "x-kubernetes-map-type": "atomic"},
                }
            },
            "status": {"properties": {"phase": STRING}},
        }
    }
)


def configmap(data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm", "namespace": "default", **metadata},
        "data": data,
    }


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": list(containers), **spec},
    }


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    schema: SchemaNode | None = CONFIGMAP,
    force: bool = False,
    now: str = T1,
    **options: Any,
) -> dict[str, Any]:
    return server_side_apply(
        live, applied, manager=manager, force=force, schema=schema, now=now, **options
    )


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    schema: SchemaNode | None = CONFIGMAP,
    now: str = T1,
    **options: Any,
) -> dict[str, Any]:
    return record_update(
        old, new, manager=manager, operation="Update", now=now, schema=schema, **options
    )


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """managedFields by (manager, operation)."""
    return {
        (entry["manager"], entry["operation"]): entry
        for entry in obj["metadata"].get("managedFields", [])
    }


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    fields: dict[str, Any] = entries(obj)[(manager, operation)]["fieldsV1"]
    return fields


def causes(error: ApiError) -> list[dict[str, str]]:
    assert error.details is not None
    found: list[dict[str, str]] = error.details["causes"]
    return found


def conflict_of(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert (caught.value.code, caught.value.reason) == (409, "Conflict")
    return caught.value


@pytest.fixture(scope="module")
def deployment_schema() -> SchemaNode:
    schema = Schemas.load().for_kind("apps", "v1", "Deployment")
    assert schema is not None
    return schema


def nginx(replicas: int = 3, image: str = "nginx:1.14.2") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


# --- the FieldsV1 format --------------------------------------------------------------


def test_fields_v1_reads_and_writes_in_the_api_server_order() -> None:
    # Keys as the API server writes them: fields, then list-map keys (by their values,
    # numbers numerically), set values, indexes; "." after a member's children.
    text = (
        '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},'
        '"f:spec":{"f:ports":{'
        '"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}},'
        '"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}}},'
        '"f:finalizers":{"v:\\"a\\"":{},"v:\\"b\\"":{}},"f:args":{"i:2":{},"i:10":{}}}}'
    )
    fields = FieldSet.from_fields_v1(json.loads(text))

    written = json.dumps(fields.to_fields_v1(), separators=(",", ":"))

    assert written == (
        '{"f:metadata":{"f:labels":{"f:app":{},".":{}}},'
        '"f:spec":{"f:args":{"i:2":{},"i:10":{}},"f:finalizers":{"v:\\"a\\"":{},"v:\\"b\\"":{}},'
        '"f:ports":{"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{"f:port":{},".":{}},'
        '"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}":{"f:port":{},".":{}}}}}'
    )
    assert FieldSet.from_fields_v1(json.loads(written)) == fields


def test_path_elements_print_as_in_conflict_messages() -> None:
    path = (
        PathElement.field("spec"),
        PathElement.field("ports"),
        PathElement.parse('k:{"protocol":"TCP","port":80}'),
    )

    assert path_string(path) == '.spec.ports[port=80,protocol="TCP"]'
    assert PathElement.parse('k:{"protocol":"TCP","port":80}').serialize() == (
        'k:{"port":80,"protocol":"TCP"}'
    )
    assert str(PathElement.value("x")) == '[="x"]'
    assert str(PathElement.index(3)) == "[3]"
    assert PathElement.value(1.0) == PathElement.value(1)


def test_difference_keeps_children_of_removed_members_and_recursive_difference_does_not() -> None:
    spec, a, b = PathElement.field("spec"), PathElement.field("a"), PathElement.field("b")
    fields = FieldSet.of((spec,), (spec, a), (spec, b))

    assert list(fields.difference(FieldSet.of((spec,))).paths()) == [(spec, a), (spec, b)]
    assert fields.recursive_difference(FieldSet.of((spec,))).empty()
    assert list(fields.difference(FieldSet.of((spec, a))).paths()) == [(spec,), (spec, b)]


# --- apply ----------------------------------------------------------------------------


def test_apply_creates_the_object_with_the_documented_managed_fields() -> None:
    # The example of the Kubernetes documentation, "Server-Side Apply".
    created = apply(
        None, configmap({"key": "some value"}, labels={"test-label": "test"}), "kubectl", now=T0
    )

    assert created["data"] == {"key": "some value"}
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}},
        }
    ]
    fields_v1 = created["metadata"]["managedFields"][0]["fieldsV1"]
    assert json.dumps(fields_v1, separators=(",", ":")) == (
        '{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:test-label":{}}}}'
    )


def test_an_update_takes_the_field_it_changed_as_documented() -> None:
    # The documentation's second example: kube-controller-manager updates data.key.
    created = apply(
        None, configmap({"key": "some value"}, labels={"test-label": "test"}), "kubectl"
    )
    changed = copy.deepcopy(created)
    changed["data"]["key"] = "new value"

    updated = update(created, changed, "kube-controller-manager", now=T2)

    assert updated["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}},
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}},
        },
    ]


def test_a_second_apply_changes_a_field_and_stamps_the_time() -> None:
    created = apply(None, configmap({"a": "1", "b": "2"}), "gitmoor", now=T0)

    changed = apply(created, configmap({"a": "1", "b": "3"}), "gitmoor", now=T1)
    unchanged = apply(changed, configmap({"a": "1", "b": "3"}), "gitmoor", now=T2)

    assert changed["data"] == {"a": "1", "b": "3"}
    assert [e["time"] for e in changed["metadata"]["managedFields"]] == [T1]
    assert unchanged == changed


def test_apply_removes_the_fields_it_stopped_applying() -> None:
    live = apply(None, configmap({"a": "1", "b": "2"}, labels={"team": "x"}, uid="u-1"), "gitmoor")

    after = apply(live, configmap({"a": "1"}), "gitmoor")

    assert after["data"] == {"a": "1"}
    assert "labels" not in after["metadata"]
    assert after["metadata"]["uid"] == "u-1"  # never owned by anyone, never pruned
    assert owned(after, "gitmoor") == {"f:data": {"f:a": {}}}


def test_a_field_another_manager_owns_stays_when_the_applier_stops_applying_it() -> None:
    live = apply(None, configmap({"a": "1", "b": "2"}), "gitmoor")
    live = apply(live, configmap({"b": "2"}), "helm")

    after = apply(live, configmap({"a": "1"}), "gitmoor")

    assert after["data"] == {"a": "1", "b": "2"}
    assert owned(after, "gitmoor") == {"f:data": {"f:a": {}}}
    assert owned(after, "helm") == {"f:data": {"f:b": {}}}


def test_two_appliers_setting_the_same_value_share_the_field() -> None:
    live = apply(None, configmap({"a": "1"}), "alice")

    shared = apply(live, configmap({"a": "1"}), "bob")

    assert owned(shared, "alice") == owned(shared, "bob") == {"f:data": {"f:a": {}}}
    # Any change of a shared field is then a conflict, whoever makes it.
    error = conflict_of(lambda: apply(shared, configmap({"a": "2"}), "alice"))
    assert error.message == 'Apply failed with 1 conflict: conflict with "bob": .data.a'


def test_a_conflict_names_the_field_and_its_manager() -> None:
    live = apply(None, configmap({"a": "1", "b": "2"}), "alice")

    error = conflict_of(lambda: apply(live, configmap({"a": "9"}), "bob"))

    assert error.message == 'Apply failed with 1 conflict: conflict with "alice": .data.a'
    assert error.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "alice"',
                "field": ".data.a",
            }
        ]
    }
    assert error.status()["code"] == 409


def test_conflicts_with_several_managers_are_listed_by_manager() -> None:
    live = apply(None, configmap({"a": "1", "b": "1"}), "alice")
    changed = copy.deepcopy(live)
    changed["data"]["c"] = "1"
    live = update(live, changed, "kubectl-edit")

    error = conflict_of(lambda: apply(live, configmap({"a": "2", "b": "2", "c": "2"}), "bob"))

    assert error.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "alice":\n- .data.a\n- .data.b\n'
        'conflicts with "kubectl-edit" using v1:\n- .data.c'
    )
    assert [cause["field"] for cause in causes(error)] == [
        ".data.a",
        ".data.b",
        ".data.c",
    ]


def test_force_takes_the_field_from_its_owner() -> None:
    live = apply(None, configmap({"a": "1", "b": "2"}), "alice")

    forced = apply(live, configmap({"a": "9"}), "bob", force=True)

    assert forced["data"] == {"a": "9", "b": "2"}
    assert owned(forced, "alice") == {"f:data": {"f:b": {}}}
    assert owned(forced, "bob") == {"f:data": {"f:a": {}}}


def test_a_manager_left_with_nothing_loses_its_entry() -> None:
    live = apply(None, configmap({"a": "1"}), "alice")

    forced = apply(live, configmap({"a": "9"}), "bob", force=True)

    assert list(entries(forced)) == [("bob", "Apply")]


def test_list_map_items_are_owned_per_key() -> None:
    live = apply(None, pod({"name": "app", "image": "app:1"}), "alice", schema=POD)
    live = apply(live, pod({"name": "sidecar", "image": "proxy:1"}), "bob", schema=POD)

    assert [c["name"] for c in live["spec"]["containers"]] == ["app", "sidecar"]
    assert owned(live, "bob") == {
        "f:spec": {"f:containers": {'k:{"name":"sidecar"}': {"f:image": {}, "f:name": {}, ".": {}}}}
    }

    after = apply(live, pod(), "alice", schema=POD)

    assert after["spec"]["containers"] == [{"name": "sidecar", "image": "proxy:1"}]
    assert ("alice", "Apply") not in entries(after)


def test_fields_inside_a_list_item_conflict_by_key() -> None:
    live = apply(None, pod({"name": "app", "image": "app:1"}), "alice", schema=POD)

    error = conflict_of(
        lambda: apply(live, pod({"name": "app", "image": "app:2"}), "bob", schema=POD)
    )

    assert causes(error)[0]["field"] == '.spec.containers[name="app"].image'


def test_patch_merge_key_stands_in_for_missing_list_map_keys() -> None:
    env = [{"name": "A", "value": "1"}]
    live = apply(None, pod({"name": "app", "env": env}), "alice", schema=POD)
    more = [{"name": "B", "value": "2"}]
    live = apply(live, pod({"name": "app", "env": more}), "bob", schema=POD)

    assert live["spec"]["containers"][0]["env"] == env + more
    containers = owned(live, "bob")["f:spec"]["f:containers"]
    assert 'k:{"name":"B"}' in containers['k:{"name":"app"}']["f:env"]


def test_set_lists_are_a_union_owned_per_value() -> None:
    live = apply(None, configmap({}, finalizers=["a"]), "alice")
    live = apply(live, configmap({}, finalizers=["b"]), "bob")

    assert live["metadata"]["finalizers"] == ["a", "b"]
    assert owned(live, "bob") == {"f:metadata": {"f:finalizers": {'v:"b"': {}}}}

    after = apply(live, configmap({}), "alice")

    assert after["metadata"]["finalizers"] == ["b"]


def test_atomic_lists_are_replaced_and_owned_whole() -> None:
    live = apply(None, pod({"name": "app", "args": ["--a", "--b"]}), "alice", schema=POD)
    assert owned(live, "alice")["f:spec"]["f:containers"]['k:{"name":"app"}']["f:args"] == {}

    error = conflict_of(
        lambda: apply(live, pod({"name": "app", "args": ["--c"]}), "bob", schema=POD)
    )
    assert causes(error)[0]["field"] == '.spec.containers[name="app"].args'

    forced = apply(live, pod({"name": "app", "args": ["--c"]}), "bob", schema=POD, force=True)
    assert forced["spec"]["containers"][0]["args"] == ["--c"]
    assert "f:args" not in owned(forced, "alice")["f:spec"]["f:containers"]['k:{"name":"app"}']


def test_atomic_maps_are_replaced_whole() -> None:
    live = apply(None, pod(nodeSelector={"disk": "ssd", "zone": "a"}), "alice", schema=POD)

    after = apply(live, pod(nodeSelector={"zone": "b"}), "alice", schema=POD)

    assert after["spec"]["nodeSelector"] == {"zone": "b"}
    assert owned(after, "alice") == {"f:spec": {"f:nodeSelector": {}}}


def test_list_order_follows_the_applied_order_for_shared_items() -> None:
    names = ["a", "b", "c"]
    live = apply(None, pod(*({"name": n} for n in names)), "alice", schema=POD)

    after = apply(live, pod({"name": "c"}, {"name": "a"}), "bob", schema=POD)

    assert [c["name"] for c in after["spec"]["containers"]] == ["b", "c", "a"]


def test_without_a_schema_maps_are_granular_and_lists_atomic() -> None:
    thing = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}}
    live = apply(None, {**thing, "spec": {"a": 1, "list": [1, 2]}}, "alice", schema=None)

    assert owned(live, "alice") == {"f:spec": {"f:a": {}, "f:list": {}, ".": {}}}

    after = apply(live, {**thing, "spec": {"b": 2, "list": [3]}}, "bob", schema=None, force=True)

    assert after["spec"] == {"a": 1, "list": [3], "b": 2}
    assert owned(after, "alice") == {"f:spec": {"f:a": {}, ".": {}}}


def test_nulls_in_an_applied_configuration_are_not_applied() -> None:
    live = apply(None, configmap({"a": "1", "b": "2"}), "alice")

    after = apply(live, {**configmap({"a": "1"}), "data": {"a": "1", "b": None}}, "alice")

    assert after["data"] == {"a": "1"}


def test_an_object_nobody_tracked_belongs_to_before_first_apply() -> None:
    untracked = configmap({"a": "1"})

    error = conflict_of(lambda: apply(untracked, configmap({"a": "2"}), "gitmoor"))

    assert error.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a'
    )


def test_reset_fields_are_neither_applied_nor_owned() -> None:
    live = {**pod({"name": "app"}), "status": {"phase": "Running"}}
    live = update(None, live, "kubelet", schema=POD, reset_fields=[("spec",)])
    applied = {**pod({"name": "app", "image": "x"}), "status": {"phase": "Failed"}}

    after = apply(live, applied, "gitmoor", schema=POD, reset_fields=[("status",)])

    assert after["status"] == {"phase": "Running"}
    assert "f:status" not in owned(after, "gitmoor")
    assert owned(after, "kubelet", "Update") == {"f:status": {"f:phase": {}, ".": {}}}


def test_managed_fields_in_an_applied_configuration_are_refused() -> None:
    applied = configmap({"a": "1"}, managedFields=[{"manager": "x"}])

    with pytest.raises(ApiError) as caught:
        apply(None, applied, "gitmoor")

    assert (caught.value.code, caught.value.message) == (400, "metadata.managedFields must be nil")


def test_duplicate_keys_in_an_applied_configuration_are_refused() -> None:
    applied = pod({"name": "app"}, {"name": "app"})

    with pytest.raises(ApiError) as caught:
        apply(None, applied, "gitmoor", schema=POD)

    assert caught.value.code == 500
    assert caught.value.message == (
        "failed to create typed patch object (default/web; /v1, Kind=Pod): "
        '.spec.containers: duplicate entries for key [name="app"]'
    )


def test_kubectl_takes_over_what_client_side_apply_set_without_conflicts() -> None:
    config = configmap({"a": "1"})
    annotated = configmap({"a": "1"}, annotations={LAST_APPLIED: json.dumps(config)})
    live = update(None, annotated, "kubectl-client-side-apply")

    after = apply(live, configmap({"a": "2"}), "kubectl")

    assert after["data"] == {"a": "2"}
    assert owned(after, "kubectl") == {"f:data": {"f:a": {}}}
    last_applied = after["metadata"]["annotations"][LAST_APPLIED]
    assert last_applied.endswith("\n")
    assert json.loads(last_applied) == configmap({"a": "2"})
    # Other managers get no such pass.
    conflict_of(lambda: apply(live, configmap({"a": "3"}), "gitmoor"))


def test_kubectl_conflicts_over_what_changed_since_client_side_apply() -> None:
    config = configmap({"a": "1"})
    annotated = configmap({"a": "1"}, annotations={LAST_APPLIED: json.dumps(config)})
    live = update(None, annotated, "kubectl-client-side-apply")
    edited = copy.deepcopy(live)
    edited["data"]["a"] = "5"
    live = update(live, edited, "kubectl-edit")

    error = conflict_of(lambda: apply(live, configmap({"a": "2"}), "kubectl"))

    assert causes(error)[0]["message"] == 'conflict with "kubectl-edit" using v1'


# --- Deployments with the real schema -------------------------------------------------


def test_a_deployment_is_keyed_as_the_api_server_keys_it(deployment_schema: SchemaNode) -> None:
    created = apply(None, nginx(), "kubectl", schema=deployment_schema)

    # Ports without a protocol are keyed by its default, TCP; LabelSelector is atomic.
    assert owned(created, "kubectl") == {
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"nginx"}': {
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    "f:containerPort": {},
                                    ".": {},
                                }
                            },
                            ".": {},
                        }
                    }
                },
            },
        }
    }


def test_replicas_set_by_client_side_apply_conflict_with_an_applier(
    deployment_schema: SchemaNode,
) -> None:
    live = update(None, nginx(), "kubectl-client-side-apply", schema=deployment_schema)

    error = conflict_of(lambda: apply(live, nginx(replicas=5), "gitmoor", schema=deployment_schema))

    assert error.message == (
        "Apply failed with 1 conflict: conflict with "
        '"kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )


def test_kubectl_scale_then_apply_replicas_conflicts(deployment_schema: SchemaNode) -> None:
    live = apply(None, nginx(), "gitmoor", schema=deployment_schema)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    live = update(live, scaled, "kubectl", schema=deployment_schema, subresource="scale")

    assert "f:replicas" not in owned(live, "gitmoor")["f:spec"]
    scaler = live["metadata"]["managedFields"][1]
    assert (scaler["manager"], scaler["subresource"]) == ("kubectl", "scale")
    assert scaler["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    error = conflict_of(lambda: apply(live, nginx(), "gitmoor", schema=deployment_schema))
    assert error.message == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
        "using apps/v1: .spec.replicas"
    )
    # Giving up replicas settles it; the scaled value stays.
    released = nginx()
    del released["spec"]["replicas"]
    after = apply(live, released, "gitmoor", schema=deployment_schema)
    assert after["spec"]["replicas"] == 5


def test_changing_the_image_keeps_the_other_containers_fields(
    deployment_schema: SchemaNode,
) -> None:
    live = apply(None, nginx(), "gitmoor", schema=deployment_schema)
    defaulted = copy.deepcopy(live)
    container = defaulted["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["protocol"] = "TCP"
    container["imagePullPolicy"] = "IfNotPresent"
    live = update(live, defaulted, "kube-apiserver-defaults", schema=deployment_schema)

    after = apply(live, nginx(image="nginx:1.27"), "gitmoor", schema=deployment_schema)

    container = after["spec"]["template"]["spec"]["containers"][0]
    assert container == {
        "name": "nginx",
        "image": "nginx:1.27",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "imagePullPolicy": "IfNotPresent",
    }


# --- record_update --------------------------------------------------------------------


def test_a_create_owns_what_the_request_set_but_not_server_metadata() -> None:
    created = configmap(
        {"a": "1"},
        labels={"app": "x"},
        uid="u-1",
        resourceVersion="7",
        generation=1,
        creationTimestamp=T0,
    )

    recorded = update(None, created, "kubectl-create")

    assert recorded["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {"f:a": {}, ".": {}},
                "f:metadata": {"f:labels": {"f:app": {}, ".": {}}},
            },
        }
    ]
    assert {k: v for k, v in recorded.items() if k != "metadata"} == {
        k: v for k, v in created.items() if k != "metadata"
    }


def test_an_update_moves_changed_fields_and_drops_removed_ones() -> None:
    live = apply(None, configmap({"a": "1", "b": "2", "c": "3"}), "alice")
    changed = copy.deepcopy(live)
    changed["data"] = {"a": "9", "c": "3"}

    updated = update(live, changed, "bob")

    assert owned(updated, "alice") == {"f:data": {"f:c": {}}}
    assert owned(updated, "bob", "Update") == {"f:data": {"f:a": {}}}


def test_updates_by_one_manager_merge_into_one_entry() -> None:
    live = update(None, configmap({"a": "1"}), "bob", now=T0)
    changed = copy.deepcopy(live)
    changed["data"]["b"] = "2"

    updated = update(live, changed, "bob", now=T2)

    assert list(entries(updated)) == [("bob", "Update")]
    assert owned(updated, "bob", "Update") == {"f:data": {"f:a": {}, "f:b": {}, ".": {}}}
    assert entries(updated)[("bob", "Update")]["time"] == T2


def test_an_update_that_changes_nothing_tracked_keeps_the_time() -> None:
    live = update(None, configmap({"a": "1"}), "bob", now=T0)
    touched = copy.deepcopy(live)
    touched["metadata"]["resourceVersion"] = "99"

    updated = update(live, touched, "bob", now=T2)

    assert entries(updated)[("bob", "Update")]["time"] == T0


def test_managed_fields_can_be_reset_but_not_emptied() -> None:
    live = apply(None, configmap({"a": "1"}), "alice")
    kept = {**copy.deepcopy(live), "metadata": {**live["metadata"], "managedFields": []}}
    reset = {**copy.deepcopy(live), "metadata": {**live["metadata"], "managedFields": [{}]}}
    reset_and_changed = copy.deepcopy(reset)
    reset_and_changed["data"]["b"] = "2"

    assert (
        update(live, kept, "bob")["metadata"]["managedFields"] == live["metadata"]["managedFields"]
    )
    assert "managedFields" not in update(live, reset, "bob")["metadata"]
    assert list(entries(update(live, reset_and_changed, "bob"))) == [("bob", "Update")]


def test_managed_fields_a_request_sets_are_kept() -> None:
    live = apply(None, configmap({"a": "1"}), "alice")
    handed_over = copy.deepcopy(live)
    handed_over["metadata"]["managedFields"][0]["manager"] = "gitmoor"

    updated = update(live, handed_over, "kubectl-patch")

    assert list(entries(updated)) == [("gitmoor", "Apply")]


def test_a_subresource_write_keeps_the_stored_managed_fields() -> None:
    live = apply(None, {**pod({"name": "app"}), "status": {"phase": "Pending"}}, "a", schema=POD)
    written = copy.deepcopy(live)
    written["status"]["phase"] = "Running"
    written["metadata"]["managedFields"] = [{}]

    updated = update(live, written, "kubelet", schema=POD, subresource="status")

    assert ("a", "Apply") in entries(updated)
    assert entries(updated)[("kubelet", "Update")]["subresource"] == "status"


def test_update_entries_beyond_the_cap_merge_into_ancient_changes() -> None:
    live = update(None, configmap({}), "creator", now="2024-01-01T00:00:00Z")
    for number in range(MAX_UPDATE_MANAGERS + 1):
        changed = copy.deepcopy(live)
        changed["data"][f"k{number}"] = "v"
        live = update(live, changed, f"m{number}", now=f"2024-01-01T00:{number + 1:02d}:00Z")

    managers = [manager for manager, _ in entries(live)]

    assert len(managers) == MAX_UPDATE_MANAGERS
    assert "ancient-changes" in managers
    assert {"creator", "m0", "m1"}.isdisjoint(managers)
    assert owned(live, "ancient-changes", "Update")["f:data"].keys() >= {"f:k0", "f:k1"}


def test_field_set_of_an_object_follows_its_schema() -> None:
    fields = field_set(pod({"name": "app", "image": "x"}), POD)

    assert {path_string(path) for path in fields.paths()} == {
        ".apiVersion",
        ".kind",
        ".metadata.name",
        ".metadata.namespace",
        '.spec.containers[name="app"]',
        '.spec.containers[name="app"].name',
        '.spec.containers[name="app"].image',
    }
