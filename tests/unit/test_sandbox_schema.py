"""The sandbox's resource table and type schemas (gitmoor.sandbox.schema)."""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_samples import widget_crd

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import (
    ResourceInfo,
    ResourceTable,
    SchemaNode,
    Schemas,
    version_sort_key,
)

STABLE_GROUPS = {
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
}
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
APISERVER_VERBS = set(ALL_VERBS)
RW = ("get", "patch", "update")
TOKEN_REQUEST = ("authentication.k8s.io", "v1", "TokenRequest")


@pytest.fixture(scope="module")
def builtin() -> ResourceTable:
    return ResourceTable.builtin()


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas.load()


# --- the built-in resource table ----------------------------------------------------------


def test_every_stable_group_and_no_prerelease_version(builtin: ResourceTable) -> None:
    groups = builtin.groups()
    assert {group for group, _, _ in groups} == STABLE_GROUPS
    for group, versions, preferred in groups:
        assert preferred == versions[0]
        for version in versions:
            assert "alpha" not in version
            assert "beta" not in version
            assert builtin.resources(group, version), (group, version)


def test_groups_in_the_apiservers_priority_order(builtin: ResourceTable) -> None:
    order = [group for group, _, _ in builtin.groups()]
    assert order[:4] == ["", "apiregistration.k8s.io", "apps", "events.k8s.io"]
    assert order.index("admissionregistration.k8s.io") < order.index("apiextensions.k8s.io")
    assert order.index("batch") < order.index("networking.k8s.io")


def test_autoscaling_serves_v2_and_v1_and_prefers_v2(builtin: ResourceTable) -> None:
    assert ("autoscaling", ["v2", "v1"], "v2") in builtin.groups()
    for version in ("v1", "v2"):
        hpa = builtin.lookup("autoscaling", version, "horizontalpodautoscalers")
        assert hpa is not None
        assert hpa.short_names == ("hpa",)
        assert hpa.storage_version == "v2"


@pytest.mark.parametrize(
    ("group", "version", "plural", "kind", "namespaced", "short_names"),
    [
        ("", "v1", "pods", "Pod", True, ("po",)),
        ("", "v1", "services", "Service", True, ("svc",)),
        ("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
        ("", "v1", "secrets", "Secret", True, ()),
        ("", "v1", "namespaces", "Namespace", False, ("ns",)),
        ("", "v1", "nodes", "Node", False, ("no",)),
        ("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",)),
        ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",)),
        ("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
        ("", "v1", "endpoints", "Endpoints", True, ("ep",)),
        ("", "v1", "events", "Event", True, ("ev",)),
        ("", "v1", "limitranges", "LimitRange", True, ("limits",)),
        ("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",)),
        ("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",)),
        ("apps", "v1", "deployments", "Deployment", True, ("deploy",)),
        ("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",)),
        ("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",)),
        ("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
        ("batch", "v1", "jobs", "Job", True, ()),
        ("batch", "v1", "cronjobs", "CronJob", True, ("cj",)),
        ("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
        ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
        ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, ()),
        ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",)),
        ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, ()),
        ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, ()),
        ("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
        ("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
        ("coordination.k8s.io", "v1", "leases", "Lease", True, ()),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
        ),
        (
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            False,
            ("csr",),
        ),
        ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, ()),
        ("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
        ("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False, ()),
        ("apiregistration.k8s.io", "v1", "apiservices", "APIService", False, ()),
        (
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            False,
            (),
        ),
        ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema", False, ()),
    ],
)
def test_known_resources(
    builtin: ResourceTable,
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    short_names: tuple[str, ...],
) -> None:
    info = builtin.lookup(group, version, plural)
    assert info is not None
    assert (info.kind, info.namespaced, info.short_names) == (kind, namespaced, short_names)
    assert info.singular == kind.lower()
    assert info.list_kind == f"{kind}List"
    assert builtin.by_kind(group, version, kind) == info
    assert info.api_version == (f"{group}/{version}" if group else version)


def test_category_all_is_what_kubectl_get_all_shows(builtin: ResourceTable) -> None:
    in_all = {(i.group, i.plural) for i in builtin.all_resources() if "all" in i.categories}
    assert in_all == {
        ("", "pods"),
        ("", "services"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("autoscaling", "horizontalpodautoscalers"),
    }
    crds = builtin.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crds is not None
    assert crds.categories == ("api-extensions",)


def test_verbs_are_the_apiservers(builtin: ResourceTable) -> None:
    for info in builtin.all_resources():
        assert set(info.verbs) <= APISERVER_VERBS, info
        assert list(info.verbs) == sorted(info.verbs)
        for name in info.subresources:
            sub = info.subresource(name)
            assert sub is not None
            assert set(sub.verbs) <= APISERVER_VERBS, (info.plural, sub)
    deployments = builtin.lookup("apps", "v1", "deployments")
    namespaces = builtin.lookup("", "v1", "namespaces")
    reviews = builtin.lookup("authentication.k8s.io", "v1", "tokenreviews")
    access = builtin.lookup("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
    assert deployments is not None
    assert namespaces is not None
    assert reviews is not None
    assert access is not None
    assert deployments.verbs == ALL_VERBS
    assert "deletecollection" not in namespaces.verbs
    assert reviews.verbs == ("create",)
    assert access.verbs == ("create",)
    assert not access.namespaced


@pytest.mark.parametrize(
    ("group", "plural", "name", "sub_gvk", "verbs"),
    [
        ("apps", "deployments", "status", ("apps", "v1", "Deployment"), RW),
        ("apps", "deployments", "scale", ("autoscaling", "v1", "Scale"), RW),
        ("apps", "statefulsets", "scale", ("autoscaling", "v1", "Scale"), RW),
        ("", "pods", "eviction", ("policy", "v1", "Eviction"), ("create",)),
        ("", "pods", "log", ("", "v1", "Pod"), ("get",)),
        ("", "pods", "binding", ("", "v1", "Binding"), ("create",)),
        ("", "serviceaccounts", "token", TOKEN_REQUEST, ("create",)),
        ("", "namespaces", "finalize", ("", "v1", "Namespace"), ("update",)),
        ("batch", "jobs", "status", ("batch", "v1", "Job"), RW),
    ],
)  # fmt: skip
def test_subresources(
    builtin: ResourceTable,
    group: str,
    plural: str,
    name: str,
    sub_gvk: tuple[str, str, str],
    verbs: tuple[str, ...],
) -> None:
    info = builtin.lookup(group, "v1", plural)
    assert info is not None
    assert name in info.subresources
    sub = info.subresource(name)
    assert sub is not None
    assert (sub.group, sub.version, sub.kind) == sub_gvk
    assert sub.verbs == verbs


def test_configmaps_have_no_subresources(builtin: ResourceTable) -> None:
    configmaps = builtin.lookup("", "v1", "configmaps")
    assert configmaps is not None
    assert configmaps.subresources == ()
    assert configmaps.subresource("status") is None


def test_subresource_defaults_when_not_detailed() -> None:
    info = ResourceInfo(
        group="example.com",
        version="v1",
        kind="Widget",
        plural="widgets",
        singular="widget",
        namespaced=True,
        verbs=ALL_VERBS,
        short_names=(),
        subresources=("scale", "status"),
        categories=(),
        list_kind="WidgetList",
    )
    status = info.subresource("status")
    scale = info.subresource("scale")
    assert status is not None
    assert scale is not None
    assert (status.group, status.version, status.kind) == ("example.com", "v1", "Widget")
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")


def test_unknown_resources_are_none(builtin: ResourceTable) -> None:
    assert builtin.lookup("apps", "v1", "widgets") is None
    assert builtin.lookup("apps", "v1beta1", "deployments") is None
    assert builtin.by_kind("", "v1", "Deployment") is None
    assert builtin.resources("example.com", "v1") == []


def test_resources_sorted_by_plural(builtin: ResourceTable) -> None:
    plurals = [info.plural for info in builtin.resources("", "v1")]
    assert plurals == sorted(plurals)
    assert {"pods", "services", "bindings", "componentstatuses"} <= set(plurals)


def test_builtin_tables_are_independent() -> None:
    first, second = ResourceTable.builtin(), ResourceTable.builtin()
    first.add_crd(widget_crd())
    assert second.lookup("example.com", "v1", "widgets") is None


def test_storage_version_hash_is_the_apiservers(builtin: ResourceTable) -> None:
    # The values a Kubernetes apiserver publishes for these resources.
    daemonsets = builtin.lookup("apps", "v1", "daemonsets")
    deployments = builtin.lookup("apps", "v1", "deployments")
    assert daemonsets is not None
    assert deployments is not None
    assert daemonsets.storage_version_hash == "dd7pWHUlMKQ="
    assert deployments.storage_version_hash == "8aSe+NMegvE="


def test_version_priority() -> None:
    versions = ["v1alpha1", "foo", "v2", "v1beta2", "v1", "v11beta1", "v1beta1", "bar", "v2alpha1"]
    assert sorted(versions, key=version_sort_key) == [
        "v2",
        "v1",
        "v11beta1",
        "v1beta2",
        "v1beta1",
        "v2alpha1",
        "v1alpha1",
        "bar",
        "foo",
    ]


# --- CRDs in the table --------------------------------------------------------------------


def test_add_crd_serves_each_served_version() -> None:
    table = ResourceTable.builtin()
    added = table.add_crd(widget_crd())
    assert [info.version for info in added] == ["v1", "v1beta1"]
    v1 = table.lookup("example.com", "v1", "widgets")
    assert v1 is not None
    assert v1 == added[0]
    assert v1.kind == "Widget"
    assert v1.namespaced
    assert v1.short_names == ("wd",)
    assert v1.categories == ("all", "toys")
    assert v1.subresources == ("scale", "status")
    assert v1.verbs == ALL_VERBS
    assert v1.list_kind == "WidgetList"
    assert v1.storage_version == "v1"
    beta = table.lookup("example.com", "v1beta1", "widgets")
    assert beta is not None
    assert beta.subresources == ()
    assert beta.storage_version == "v1"
    assert table.lookup("example.com", "v1alpha1", "widgets") is None
    assert table.by_kind("example.com", "v1", "Widget") == v1
    assert table.crd_name("example.com", "v1", "widgets") == "widgets.example.com"
    assert table.crd_name("apps", "v1", "deployments") is None
    assert table.groups()[-1] == ("example.com", ["v1", "v1beta1"], "v1")


def test_crd_defaults_for_singular_and_list_kind() -> None:
    crd = widget_crd(scope="Cluster")
    del crd["spec"]["names"]["singular"]
    table = ResourceTable()
    (info, _) = table.add_crd(crd)
    assert info.singular == "widget"
    assert info.list_kind == "WidgetList"
    assert not info.namespaced
    assert table.groups() == [("example.com", ["v1", "v1beta1"], "v1")]


def test_crd_groups_sort_after_builtins_by_name() -> None:
    table = ResourceTable.builtin()
    other = widget_crd(group="aaa.example.org")
    other["metadata"]["name"] = "widgets.aaa.example.org"
    table.add_crd(widget_crd())
    table.add_crd(other)
    names = [group for group, _, _ in table.groups()]
    assert names[-2:] == ["aaa.example.org", "example.com"]


def test_adding_a_crd_again_replaces_what_it_served() -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    before = table.fingerprint("example.com", "v1")
    changed = widget_crd()
    changed["spec"]["names"]["shortNames"] = ["wdg"]
    changed["spec"]["versions"][1]["served"] = False
    table.add_crd(changed)
    v1 = table.lookup("example.com", "v1", "widgets")
    assert v1 is not None
    assert v1.short_names == ("wdg",)
    assert table.lookup("example.com", "v1beta1", "widgets") is None
    assert table.fingerprint("example.com", "v1") != before


def test_a_crd_schema_change_changes_the_fingerprint() -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    before = table.fingerprint("example.com", "v1")
    apps = table.fingerprint("apps", "v1")
    changed = widget_crd()
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "new"
    table.add_crd(changed)
    assert table.fingerprint("example.com", "v1") != before
    assert table.fingerprint("apps", "v1") == apps


def test_remove_crd() -> None:
    table = ResourceTable.builtin()
    table.add_crd(widget_crd())
    table.remove_crd(widget_crd())
    assert table.lookup("example.com", "v1", "widgets") is None
    assert table.by_kind("example.com", "v1beta1", "Widget") is None
    assert table.crd_name("example.com", "v1", "widgets") is None
    assert "example.com" not in {group for group, _, _ in table.groups()}
    table.remove_crd(widget_crd())  # removing again changes nothing
    assert table.lookup("apps", "v1", "deployments") is not None


def _without(path: str) -> dict[str, Any]:
    crd = widget_crd()
    *parents, last = path.split(".")
    node: Any = crd
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[int(last) if isinstance(node, list) else last]
    return crd


@pytest.mark.parametrize(
    ("crd", "field"),
    [
        (_without("spec.group"), "spec.group"),
        (_without("spec.names.plural"), "spec.names.plural"),
        (_without("spec.names.kind"), "spec.names.kind"),
        (widget_crd(scope="Global"), "spec.scope"),
        (widget_crd(versions=[]), "spec.versions"),
        (_without("spec.versions.0.schema"), "spec.versions[0].schema.openAPIV3Schema"),
        (_without("spec.versions.0.name"), "spec.versions[0].name"),
        (_without("spec.versions.0.storage"), "spec.versions"),
        (widget_crd(group="example.org"), "metadata.name"),
        (_without("spec"), "spec"),
    ],
)
def test_malformed_crds_are_invalid(crd: dict[str, Any], field: str) -> None:
    table = ResourceTable.builtin()
    with pytest.raises(ApiError) as caught:
        table.add_crd(crd)
    assert caught.value.code == 422
    assert caught.value.reason == "Invalid"
    details = caught.value.details or {}
    assert details["kind"] == "CustomResourceDefinition"
    assert details["group"] == "apiextensions.k8s.io"
    assert details["name"] == "widgets.example.com"
    assert field in [cause["field"] for cause in details["causes"]]
    assert table.lookup("example.com", "v1", "widgets") is None
    with pytest.raises(ApiError):
        Schemas.load().add_crd(crd)


# --- schemas and their patch metadata -----------------------------------------------------


def walk(node: SchemaNode | None, *path: str) -> SchemaNode:
    """Follow fields; ``[]`` steps into a list's items."""
    for step in path:
        assert node is not None, step
        node = node.items() if step == "[]" else node.field(step)
    assert node is not None, path
    return node


@pytest.mark.parametrize(
    ("gvk", "path", "strategy", "merge_key", "list_type", "map_keys"),
    [
        (("", "v1", "Pod"), ("spec", "containers"), "merge", "name", "map", ("name",)),
        (("", "v1", "Pod"), ("spec", "initContainers"), "merge", "name", "map", ("name",)),
        (("", "v1", "Pod"), ("spec", "containers", "[]", "ports"), "merge", "containerPort", "map",
         ("containerPort", "protocol")),
        (("", "v1", "Pod"), ("spec", "containers", "[]", "env"), "merge", "name", "map", ("name",)),
        (("", "v1", "Pod"), ("spec", "containers", "[]", "volumeMounts"), "merge", "mountPath",
         "map", ("mountPath",)),
        (("", "v1", "Pod"), ("spec", "volumes"), "merge,retainKeys", "name", "map", ("name",)),
        (("", "v1", "Pod"), ("spec", "tolerations"), None, None, "atomic", ()),
        (("", "v1", "Service"), ("spec", "ports"), "merge", "port", "map", ("port", "protocol")),
        (("apps", "v1", "Deployment"), ("spec", "template", "spec", "containers"), "merge",
         "name", "map", ("name",)),
        (("apps", "v1", "Deployment"), ("metadata", "ownerReferences"), "merge", "uid", "map",
         ("uid",)),
        (("apps", "v1", "Deployment"), ("metadata", "finalizers"), "merge", None, "set", ()),
        (("apps", "v1", "Deployment"), ("metadata", "managedFields"), None, None, "atomic", ()),
    ],
)  # fmt: skip
def test_strategic_merge_metadata(
    schemas: Schemas,
    gvk: tuple[str, str, str],
    path: tuple[str, ...],
    strategy: str | None,
    merge_key: str | None,
    list_type: str | None,
    map_keys: tuple[str, ...],
) -> None:
    node = walk(schemas.for_kind(*gvk), *path)
    assert node.is_array
    assert not node.is_object
    assert node.patch_strategy == strategy
    assert node.patch_merge_key == merge_key
    assert node.list_type == list_type
    assert node.list_map_keys == map_keys


def test_struct_and_map_metadata(schemas: Schemas) -> None:
    deployment = schemas.for_kind("apps", "v1", "Deployment")
    assert deployment is not None
    assert deployment.is_object
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(deployment.properties)
    assert walk(deployment, "spec", "strategy").patch_strategy == "retainKeys"
    selector = walk(deployment, "spec", "selector")
    assert selector.map_type == "atomic"
    assert selector.is_object
    assert not selector.is_map
    labels = walk(deployment, "metadata", "labels")
    assert labels.is_map
    assert labels.map_type == "granular"
    assert walk(labels, "any-key").types == frozenset({"string"})
    assert walk(deployment, "spec", "replicas").types == frozenset({"integer"})
    assert "selector" in walk(deployment, "spec").required
    spec = walk(deployment, "spec")
    assert spec.field("notAField") is None
    assert spec.items() is None
    assert not spec.preserves_unknown
    assert spec.default is None


def test_nullable_types_are_read_as_their_type(schemas: Schemas) -> None:
    # kubernetes-validate writes optional fields' types as ["array", "null"].
    volumes = walk(schemas.for_kind("", "v1", "Pod"), "spec", "volumes")
    assert volumes.raw["type"] == ["array", "null"]
    assert volumes.types == frozenset({"array"})
    assert walk(volumes, "[]").is_object
    containers = walk(schemas.for_kind("", "v1", "Pod"), "spec", "containers")
    assert containers.raw["type"] == "array"  # required fields are not nullable
    assert containers.types == frozenset({"array"})


def test_list_kinds_and_unknown_kinds(schemas: Schemas) -> None:
    listing = schemas.for_kind("apps", "v1", "DeploymentList")
    assert listing is not None
    assert walk(listing, "items", "[]", "spec", "replicas").types == frozenset({"integer"})
    assert schemas.for_kind("apps", "v1", "Widget") is None
    assert schemas.for_kind("apps", "v1beta1", "Deployment") is None
    assert schemas.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    delete = schemas.definition_name("apps", "v1", "DeleteOptions")
    assert delete == "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"


def test_definitions_are_read_once() -> None:
    assert Schemas.load().definitions is Schemas.load().definitions


def test_crd_schemas(schemas: Schemas) -> None:
    mine = Schemas.load()
    mine.add_crd(widget_crd())
    widget = mine.for_kind("example.com", "v1", "Widget")
    assert widget is not None
    ports = walk(widget, "spec", "ports")
    assert ports.list_type == "map"
    assert ports.list_map_keys == ("port", "protocol")
    assert walk(ports, "[]", "protocol").default == "TCP"
    assert walk(widget, "spec", "size").types == frozenset({"integer"})
    extra = walk(widget, "spec", "extra")
    assert extra.preserves_unknown
    assert extra.field("anything") is None
    # metadata is ObjectMeta, whatever the CRD says, as the apiserver treats it
    owners = walk(widget, "metadata", "ownerReferences")
    assert (owners.patch_merge_key, owners.list_type) == ("uid", "map")
    assert walk(widget, "kind").types == frozenset({"string"})
    assert mine.for_kind("example.com", "v1beta1", "Widget") is not None
    assert mine.for_kind("example.com", "v1alpha1", "Widget") is None
    root = mine.crd_schema("example.com", "v1", "Widget")
    assert root is not None
    assert root["properties"]["spec"]["properties"]["size"]["type"] == "integer"
    # the shared, loaded schemas are not changed
    assert schemas.for_kind("example.com", "v1", "Widget") is None


def test_crd_schema_fingerprint_and_removal() -> None:
    mine = Schemas.load()
    before = mine.fingerprint("example.com", "v1")
    mine.add_crd(widget_crd())
    added = mine.fingerprint("example.com", "v1")
    assert added != before
    assert mine.fingerprint("apps", "v1") == before
    mine.remove_crd(widget_crd())
    assert mine.for_kind("example.com", "v1", "Widget") is None
    assert mine.crd_schema("example.com", "v1", "Widget") is None
    assert mine.fingerprint("example.com", "v1") == before
