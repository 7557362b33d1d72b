"""Fields an update may not change, judged as kube-apiserver does."""

from __future__ import annotations

import copy
from typing import Any

from gitmoor.sandbox.immutable import immutable_causes
from gitmoor.sandbox.schema import ResourceTable

TABLE = ResourceTable.builtin()


def causes(group: str, plural: str, old: dict[str, Any], new: dict[str, Any],
           subresource: str | None = None) -> list[dict[str, str]]:  # fmt: skip
    info = next(i for i in TABLE.resources(group, "v1") if i.plural == plural)
    return immutable_causes(info, old, new, subresource)


DEPLOYMENT = {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}}}}  # fmt: skip


def test_a_workload_selector_is_fixed_and_the_rest_may_change() -> None:
    scaled = copy.deepcopy(DEPLOYMENT)
    scaled["spec"]["replicas"] = 3
    assert causes("apps", "deployments", DEPLOYMENT, scaled) == []
    moved = copy.deepcopy(DEPLOYMENT)
    moved["spec"]["selector"] = {"matchLabels": {"app": "api"}}
    [cause] = causes("apps", "deployments", DEPLOYMENT, moved)
    assert cause["field"] == "spec.selector"
    assert cause["reason"] == "FieldValueInvalid"
    assert cause["message"].endswith("field is immutable")
    # The status subresource never judges the spec.
    assert causes("apps", "deployments", DEPLOYMENT, moved, "status") == []


def test_immutable_configmaps_and_secrets() -> None:
    old = {"immutable": True, "data": {"a": "1"}}
    assert causes("", "configmaps", old, copy.deepcopy(old)) == []
    changed = [c["field"] for c in causes("", "configmaps", old, {"data": {"a": "2"}})]
    assert changed == ["immutable", "data"]
    assert causes("", "configmaps", {"data": {"a": "1"}}, {"data": {"a": "2"}}) == []
    [cause] = causes("", "secrets", {"type": "Opaque"}, {"type": "kubernetes.io/tls"})
    assert cause["field"] == "type"


def test_statefulset_only_some_fields_change() -> None:
    old = {"spec": {"replicas": 1, "serviceName": "db", "template": {"a": 1}}}
    assert causes("apps", "statefulsets", old, {"spec": {"replicas": 2, "serviceName": "db",
                                                         "template": {"a": 2}}}) == []  # fmt: skip
    [cause] = causes("apps", "statefulsets", old, {"spec": {"replicas": 1, "serviceName": "x",
                                                            "template": {"a": 1}}})  # fmt: skip
    assert cause["field"] == "spec"
    assert "Forbidden" in cause["message"]


def test_job_template_ignores_the_labels_the_server_added() -> None:
    created = {"spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                        "template": {"metadata": {"labels": {
                            "batch.kubernetes.io/controller-uid": "u", "job-name": "j"}},
                            "spec": {"containers": [{"image": "a"}]}}}}  # fmt: skip
    again = copy.deepcopy(created)
    again["spec"]["template"]["metadata"] = {}
    assert causes("batch", "jobs", created, again) == []
    again["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    assert [c["field"] for c in causes("batch", "jobs", created, again)] == ["spec.template"]


def test_service_cluster_ip_and_role_ref() -> None:
    old = {"spec": {"clusterIP": "10.96.0.10"}}
    assert (
        causes("", "services", old, {"spec": {"clusterIP": "10.96.0.10", "type": "NodePort"}}) == []
    )
    [cause] = causes("", "services", old, {"spec": {"clusterIP": "10.96.0.11"}})
    assert cause["field"] == "spec.clusterIPs[0]"
    binding = {"roleRef": {"kind": "Role", "name": "a"}}
    [cause] = causes("rbac.authorization.k8s.io", "rolebindings", binding,
                     {"roleRef": {"kind": "Role", "name": "b"}})  # fmt: skip
    assert cause["message"].endswith("cannot change roleRef")
