"""Raw API calls: Status objects and codes as a real API server returns them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

CONFIGMAPS = "/api/v1/namespaces/apps/configmaps"


def configmap(name: str, **extra: object) -> bytes:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}
    return json.dumps(obj).encode()


def with_namespace(sandbox: Sandbox) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    code, _ = sandbox.request("POST", "/api/v1/namespaces", body.encode())
    assert code == 201


def test_no_token_or_a_wrong_one_is_unauthorized(sandbox: Sandbox) -> None:
    for token in ("", "wrong"):
        code, body = sandbox.request("GET", "/api/v1/namespaces", token=token)
        assert code == 401
        assert body["kind"] == "Status"
        assert body["reason"] == "Unauthorized"


def test_malformed_json_is_a_bad_request(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    code, body = sandbox.request("POST", CONFIGMAPS, b"{not json")
    assert code == 400
    assert (body["kind"], body["status"], body["reason"]) == ("Status", "Failure", "BadRequest")


def test_invalid_name_is_unprocessable(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    code, body = sandbox.request("POST", CONFIGMAPS, configmap("Not_Valid"))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_duplicate_create_is_already_exists(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    assert sandbox.request("POST", CONFIGMAPS, configmap("c"))[0] == 201
    code, body = sandbox.request("POST", CONFIGMAPS, configmap("c"))
    assert (code, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "c" already exists'


def test_stale_resource_version_is_a_conflict(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    _, created = sandbox.request("POST", CONFIGMAPS, configmap("c", data={"a": "1"}))
    stale = created["metadata"]["resourceVersion"]
    created["data"] = {"a": "2"}
    code, updated = sandbox.request("PUT", f"{CONFIGMAPS}/c", json.dumps(created).encode())
    assert code == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(stale)
    created["metadata"]["resourceVersion"] = stale
    code, body = sandbox.request("PUT", f"{CONFIGMAPS}/c", json.dumps(created).encode())
    assert (code, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


def test_generate_name_and_server_metadata(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    body = json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}}
    )
    code, created = sandbox.request("POST", CONFIGMAPS, body.encode())
    assert code == 201
    metadata = created["metadata"]
    assert metadata["name"].startswith("job-")
    assert len(metadata["name"]) == 9
    assert metadata["namespace"] == "apps"
    assert metadata["uid"]
    assert metadata["creationTimestamp"]
    assert metadata["resourceVersion"]


def test_unknown_resource_is_not_found(sandbox: Sandbox) -> None:
    code, body = sandbox.request("GET", "/apis/apps/v1/namespaces/apps/gizmos")
    assert (code, body["reason"]) == (404, "NotFound")


def test_list_has_kind_and_resource_version(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    for name in ("a", "b", "c"):
        sandbox.request("POST", CONFIGMAPS, configmap(name))
    code, listed = sandbox.request("GET", f"{CONFIGMAPS}?limit=2")
    assert code == 200
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    token = listed["metadata"]["continue"]
    _, rest = sandbox.request("GET", f"{CONFIGMAPS}?limit=2&continue={token}")
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]


def test_status_subresource_is_separate(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "apps"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 7},
    }  # fmt: skip
    path = "/apis/apps/v1/namespaces/apps/deployments"
    code, created = sandbox.request("POST", path, json.dumps(deployment).encode())
    assert code == 201
    assert "replicas" not in (created.get("status") or {})  # the main resource ignores status
    # The workload simulator writes this status too: read, write, and retry on a conflict,
    # as any controller does.
    for _ in range(10):
        _, latest = sandbox.request("GET", f"{path}/d")
        latest["status"] = {"replicas": 3}
        code, updated = sandbox.request("PUT", f"{path}/d/status", json.dumps(latest).encode())
        if code != 409:
            break
    assert code == 200
    assert updated["status"]["replicas"] == 3
    assert updated["metadata"]["generation"] == 1  # status writes leave generation alone


def test_unknown_field_under_strict_validation_is_refused(sandbox: Sandbox) -> None:
    with_namespace(sandbox)
    body = configmap("c", data={"a": "1"}, spec={"typo": True})
    code, status = sandbox.request("POST", f"{CONFIGMAPS}?fieldValidation=Strict", body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert 'unknown field "spec"' in status["message"]
    # Otherwise the field is dropped, as a real server does when it decodes the object.
    code, created = sandbox.request("POST", f"{CONFIGMAPS}?fieldValidation=Ignore", body)
    assert code == 201
    assert "spec" not in created
    assert created["data"] == {"a": "1"}
