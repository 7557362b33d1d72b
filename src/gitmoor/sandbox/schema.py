"""What the sandbox serves: its resource table and the schemas of the types it stores.

``ResourceTable`` says which resources exist (group, version, plural, kind, scope, verbs,
short names, subresources), for the stable built-in API groups and for the
CustomResourceDefinitions created at run time. ``Schemas`` holds each type's OpenAPI
schema with the metadata strategic merge patch and server-side apply need (patch
strategies, merge keys, list and map types), wrapped in ``SchemaNode``.

The built-in resources come from lightkube-models' ``_api_info``; the built-in schemas from
the Kubernetes OpenAPI definitions that kubernetes-validate ships. Both are read once per
process and shared, read-only, by every table and ``Schemas`` made from them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from gitmoor.sandbox.errors import ApiError, invalid

KUBERNETES_VERSION = "v1.37.0"
"""The Kubernetes release whose built-in types the sandbox serves."""

Definition = Mapping[str, Any]

_STABLE_VERSION = re.compile(r"^v\d+$")
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
DEFINITIONS_REF = "#/$defs/"
"""How a definition refers to another: ``{"$ref": DEFINITIONS_REF + name}``."""
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# The apiserver's own verb names for lightkube's client methods; global_list and
# global_watch are list and watch across namespaces, which discovery does not name.
_VERBS = {
    "post": "create",
    "put": "update",
    "delete": "delete",
    "deletecollection": "deletecollection",
    "get": "get",
    "list": "list",
    "patch": "patch",
    "watch": "watch",
}
_SUBRESOURCE_VERBS = ("get", "patch", "update")
_CRD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Short names and categories as the apiserver's REST storages declare them
# (ShortNamesProvider / CategoriesProvider); lightkube does not carry them.
_SHORT_NAMES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "componentstatuses"): ("cs",),
    ("", "configmaps"): ("cm",),
    ("", "endpoints"): ("ep",),
    ("", "events"): ("ev",),
    ("", "limitranges"): ("limits",),
    ("", "namespaces"): ("ns",),
    ("", "nodes"): ("no",),
    ("", "persistentvolumeclaims"): ("pvc",),
    ("", "persistentvolumes"): ("pv",),
    ("", "pods"): ("po",),
    ("", "replicationcontrollers"): ("rc",),
    ("", "resourcequotas"): ("quota",),
    ("", "serviceaccounts"): ("sa",),
    ("", "services"): ("svc",),
    ("apps", "daemonsets"): ("ds",),
    ("apps", "deployments"): ("deploy",),
    ("apps", "replicasets"): ("rs",),
    ("apps", "statefulsets"): ("sts",),
    ("autoscaling", "horizontalpodautoscalers"): ("hpa",),
    ("batch", "cronjobs"): ("cj",),
    ("certificates.k8s.io", "certificatesigningrequests"): ("csr",),
    ("events.k8s.io", "events"): ("ev",),
    ("networking.k8s.io", "ingresses"): ("ing",),
    ("networking.k8s.io", "ipaddresses"): ("ip",),
    ("networking.k8s.io", "networkpolicies"): ("netpol",),
    ("policy", "poddisruptionbudgets"): ("pdb",),
    ("scheduling.k8s.io", "priorityclasses"): ("pc",),
    ("storage.k8s.io", "storageclasses"): ("sc",),
    ("storage.k8s.io", "volumeattributesclasses"): ("vac",),
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("crd", "crds"),
}
_ALL = ("all",)
_API_EXTENSIONS = ("api-extensions",)
_CATEGORIES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): _ALL,
    ("", "replicationcontrollers"): _ALL,
    ("", "services"): _ALL,
    ("apps", "daemonsets"): _ALL,
    ("apps", "deployments"): _ALL,
    ("apps", "replicasets"): _ALL,
    ("apps", "statefulsets"): _ALL,
    ("autoscaling", "horizontalpodautoscalers"): _ALL,
    ("batch", "cronjobs"): _ALL,
    ("batch", "jobs"): _ALL,
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"): _API_EXTENSIONS,
    ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"): _API_EXTENSIONS,
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): _API_EXTENSIONS,
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): _API_EXTENSIONS,
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): _API_EXTENSIONS,
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): _API_EXTENSIONS,
    ("apiextensions.k8s.io", "customresourcedefinitions"): _API_EXTENSIONS,
    ("apiregistration.k8s.io", "apiservices"): _API_EXTENSIONS,
}
# Discovery lists groups in the aggregator's priority order (kube-aggregator's
# apiVersionPriorities); a CRD's group gets the default 1000 and ties sort by name.
_GROUP_PRIORITY: Mapping[str, int] = {
    "": 18000,
    "apiregistration.k8s.io": 18000,
    "apps": 17800,
    "events.k8s.io": 17750,
    "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600,
    "autoscaling": 17500,
    "batch": 17400,
    "certificates.k8s.io": 17300,
    "networking.k8s.io": 17200,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800,
    "admissionregistration.k8s.io": 16700,
    "apiextensions.k8s.io": 16700,
    "scheduling.k8s.io": 16600,
    "coordination.k8s.io": 16500,
    "node.k8s.io": 16300,
    "discovery.k8s.io": 16200,
    "flowcontrol.apiserver.k8s.io": 16100,
    "resource.k8s.io": 15900,
    "storagemigration.k8s.io": 15800,
}
_CRD_GROUP_PRIORITY = 1000


@dataclass(frozen=True)
class Subresource:
    """A subresource and the type it reads and writes (``scale`` takes autoscaling/v1 Scale)."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceInfo:
    """One resource of one group version, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...]
    subresources: tuple[str, ...]
    categories: tuple[str, ...]
    list_kind: str
    subresource_details: tuple[Subresource, ...] = ()
    storage_version: str = ""
    """The version objects are stored in; empty means ``version``."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def subresource(self, name: str) -> Subresource | None:
        """The type and verbs of subresource ``name``; status and scale as the apiserver
        serves them when no detail was given."""
        if name not in self.subresources:
            return None
        for detail in self.subresource_details:
            if detail.name == name:
                return detail
        if name == "scale":
            return Subresource(name, "autoscaling", "v1", "Scale", _SUBRESOURCE_VERBS)
        return Subresource(name, self.group, self.version, self.kind, _SUBRESOURCE_VERBS)

    @property
    def storage_version_hash(self) -> str:
        """The apiserver's ``storageVersionHash``: the storage group/version/kind, hashed."""
        gvk = f"{self.group}/{self.storage_version or self.version}/{self.kind}"
        return base64.b64encode(hashlib.sha256(gvk.encode()).digest()[:8]).decode()


def version_sort_key(version: str) -> tuple[int, int, int, int, str]:
    """Kubernetes' version priority: GA before beta before alpha, higher numbers first,
    versions that are not Kubernetes-like last, by name."""
    match = _KUBE_VERSION.match(version)
    if not match:
        return (1, 0, 0, 0, version)
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (0, stage_rank, -int(major), -int(minor or 0), "")


def _group_sort_key(group: str) -> tuple[int, str]:
    return (-_GROUP_PRIORITY.get(group, _CRD_GROUP_PRIORITY), group)


class ResourceTable:
    """The resources the sandbox serves, by group/version/plural and group/version/kind."""

    def __init__(self, resources: Iterable[ResourceInfo] = ()) -> None:
        self._by_plural: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceInfo] = {}
        # Each CRD's registrations and the spec they came from, by the CRD's name.
        self._crds: dict[str, tuple[list[ResourceInfo], str]] = {}
        self._crd_of: dict[tuple[str, str, str], str] = {}
        for info in resources:
            self._add(info)

    @classmethod
    def builtin(cls) -> ResourceTable:
        """A table of every resource of the stable built-in API groups."""
        return cls(_builtin_resources())

    def _add(self, info: ResourceInfo) -> None:
        self._by_plural[(info.group, info.version, info.plural)] = info
        self._by_kind[(info.group, info.version, info.kind)] = info

    def _discard(self, info: ResourceInfo) -> None:
        self._by_plural.pop((info.group, info.version, info.plural), None)
        if self._by_kind.get((info.group, info.version, info.kind)) == info:
            del self._by_kind[(info.group, info.version, info.kind)]

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_plural.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((group, version, kind))

    def all_resources(self) -> list[ResourceInfo]:
        """Every resource of every group version, in discovery order."""
        return [
            info
            for group, versions, _ in self.groups()
            for version in versions
            for info in self.resources(group, version)
        ]

    def groups(self) -> list[tuple[str, list[str], str]]:
        """(group, versions, preferred version) in discovery order; the core group is ""
        and comes first. Versions are in priority order, the preferred one first."""
        versions: dict[str, set[str]] = {}
        for group, version, _ in self._by_plural:
            versions.setdefault(group, set()).add(version)
        ordered = []
        for group in sorted(versions, key=_group_sort_key):
            by_priority = sorted(versions[group], key=version_sort_key)
            ordered.append((group, by_priority, by_priority[0]))
        return ordered

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        """The resources of one group version, sorted by plural as discovery lists them."""
        found = [info for (g, v, _), info in self._by_plural.items() if g == group and v == version]
        return sorted(found, key=lambda info: info.plural)

    def crd_name(self, group: str, version: str, plural: str) -> str | None:
        """The name of the CRD that serves a resource; None for a built-in one."""
        return self._crd_of.get((group, version, plural))

    def fingerprint(self, group: str, version: str) -> str:
        """Changes whenever what the table serves for this group version changes, including
        the schemas of the CRDs that serve it (for OpenAPI document hashes and caches)."""
        digest = hashlib.sha256(repr(self.resources(group, version)).encode())
        for name in sorted(self._crds):
            infos, spec = self._crds[name]
            if any(i.group == group and i.version == version for i in infos):
                digest.update(spec.encode())
        return digest.hexdigest()

    def add_crd(self, crd: Mapping[str, Any]) -> list[ResourceInfo]:
        """Serve every served version of an apiextensions.k8s.io/v1 CRD (again, if it was
        already served: an update replaces what it served before). ApiError 422 if the
        CRD is malformed."""
        validate_crd(crd)
        self.remove_crd(crd)
        spec = crd["spec"]
        names = spec["names"]
        group, kind = spec["group"], names["kind"]
        storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
        infos = []
        for entry in spec["versions"]:
            if not entry.get("served", False):
                continue
            declared = entry.get("subresources") or {}
            subresources = tuple(name for name in ("scale", "status") if name in declared)
            info = ResourceInfo(
                group=group,
                version=entry["name"],
                kind=kind,
                plural=names["plural"],
                singular=names.get("singular") or kind.lower(),
                namespaced=spec["scope"] == "Namespaced",
                verbs=_CRD_VERBS,
                short_names=tuple(names.get("shortNames") or ()),
                subresources=subresources,
                categories=tuple(names.get("categories") or ()),
                list_kind=names.get("listKind") or f"{kind}List",
                storage_version=storage,
            )
            self._add(info)
            self._crd_of[(info.group, info.version, info.plural)] = crd["metadata"]["name"]
            infos.append(info)
        self._crds[crd["metadata"]["name"]] = (infos, json.dumps(spec, sort_keys=True))
        return infos

    def remove_crd(self, crd: Mapping[str, Any]) -> None:
        """Stop serving what a CRD served; nothing happens if it served nothing."""
        name = (crd.get("metadata") or {}).get("name", "")
        infos, _ = self._crds.pop(name, ([], ""))
        for info in infos:
            self._discard(info)
            self._crd_of.pop((info.group, info.version, info.plural), None)


@cache
def _builtin_resources() -> tuple[ResourceInfo, ...]:
    import lightkube.resources
    from lightkube.core.resource import NamespacedResource, Resource

    tops: dict[tuple[str, str, str], tuple[Any, bool]] = {}
    subs: dict[tuple[str, str, str], list[Subresource]] = {}
    for module_info in pkgutil.iter_modules(lightkube.resources.__path__):
        if not _STABLE_VERSION.match(module_info.name.rsplit("_", 1)[-1]):
            continue
        module = importlib.import_module(f"lightkube.resources.{module_info.name}")
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and issubclass(cls, Resource)):
                continue
            api = getattr(cls, "_api_info", None)
            if api is None or cls.__module__ != module.__name__:
                continue
            if api.parent is None:
                namespaced = issubclass(cls, NamespacedResource)
                tops[(api.resource.group, api.resource.version, api.resource.kind)] = (
                    api,
                    namespaced,
                )
            else:
                parent = (api.parent.group, api.parent.version, api.parent.kind)
                sub = Subresource(
                    name=api.action,
                    group=api.resource.group,
                    version=api.resource.version,
                    kind=api.resource.kind,
                    verbs=_discovery_verbs(api.verbs),
                )
                subs.setdefault(parent, []).append(sub)
    preferred = {group: versions[0] for group, versions in _builtin_versions(tops).items()}
    infos = []
    for (group, version, kind), (api, namespaced) in tops.items():
        details = tuple(sorted(subs.get((group, version, kind), []), key=lambda s: s.name))
        infos.append(
            ResourceInfo(
                group=group,
                version=version,
                kind=kind,
                plural=api.plural,
                singular=kind.lower(),
                namespaced=namespaced,
                verbs=_discovery_verbs(api.verbs),
                short_names=_SHORT_NAMES.get((group, api.plural), ()),
                subresources=tuple(s.name for s in details),
                categories=_CATEGORIES.get((group, api.plural), ()),
                list_kind=f"{kind}List",
                subresource_details=details,
                storage_version=preferred[group],
            )
        )
    return tuple(infos)


def _builtin_versions(tops: Mapping[tuple[str, str, str], Any]) -> dict[str, list[str]]:
    versions: dict[str, set[str]] = {}
    for group, version, _ in tops:
        versions.setdefault(group, set()).add(version)
    return {group: sorted(found, key=version_sort_key) for group, found in versions.items()}


def _discovery_verbs(verbs: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({_VERBS[v] for v in verbs if v in _VERBS}))


def validate_crd(crd: Mapping[str, Any]) -> None:
    """What the apiserver checks of a CRD before serving it; ApiError 422 Invalid if wrong."""
    name = str((crd.get("metadata") or {}).get("name") or "")
    spec = crd.get("spec")
    causes: list[dict[str, str]] = []

    def required(field: str) -> None:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field})

    def wrong(field: str, value: object, why: str) -> None:
        message = f"Invalid value: {json.dumps(value)}: {why}"
        causes.append({"reason": "FieldValueInvalid", "message": message, "field": field})

    if not isinstance(spec, Mapping):
        required("spec")
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    group = spec.get("group")
    names: Mapping[str, Any] = spec["names"] if isinstance(spec.get("names"), Mapping) else {}
    if not group:
        required("spec.group")
    for field in ("plural", "kind"):
        if not names.get(field):
            required(f"spec.names.{field}")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        wrong("spec.scope", spec.get("scope"), 'supported values: "Cluster", "Namespaced"')
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        required("spec.versions")
        versions = []
    for index, entry in enumerate(versions):
        if not isinstance(entry, Mapping) or not entry.get("name"):
            required(f"spec.versions[{index}].name")
            continue
        schema = (entry.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, Mapping):
            required(f"spec.versions[{index}].schema.openAPIV3Schema")
    storage = [v for v in versions if isinstance(v, Mapping) and v.get("storage")]
    if versions and len(storage) != 1:
        wrong(
            "spec.versions",
            [v.get("name") for v in storage],
            "must have exactly one version marked as storage version",
        )
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        wrong("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)


class SchemaNode:
    """One node of an OpenAPI schema; ``$ref`` is followed when the node is looked into.

    Patch and apply metadata is read where Kubernetes puts it: on the field itself
    (``x-kubernetes-patch-strategy``, list types) or on the type it refers to
    (``x-kubernetes-map-type: atomic`` on LabelSelector, for instance).
    """

    __slots__ = ("_definitions", "_raw", "_target")

    def __init__(self, raw: Definition, definitions: Mapping[str, Definition]) -> None:
        self._raw = raw
        self._definitions = definitions
        self._target: Definition | None = None

    @property
    def raw(self) -> Definition:
        """The node as written, ``$ref`` not followed."""
        return self._raw

    @property
    def resolved(self) -> Definition:
        """The node with ``$ref`` followed to the definition it names."""
        if self._target is None:
            node = self._raw
            while "$ref" in node:
                node = self._definitions[str(node["$ref"]).removeprefix(DEFINITIONS_REF)]
            self._target = node
        return self._target

    def _extension(self, key: str) -> Any:
        node = self._raw
        while key not in node and "$ref" in node:
            node = self._definitions[str(node["$ref"]).removeprefix(DEFINITIONS_REF)]
        return node.get(key)

    @property
    def types(self) -> frozenset[str]:
        """The JSON types the node allows, ``null`` left out; empty when unconstrained."""
        declared = self.resolved.get("type")
        if declared is None:
            return frozenset()
        found = {declared} if isinstance(declared, str) else set(declared)
        return frozenset(found - {"null"})

    @property
    def is_object(self) -> bool:
        node = self.resolved
        return "object" in self.types or "properties" in node or "additionalProperties" in node

    @property
    def is_map(self) -> bool:
        """An object whose keys are free (labels, data): ``field`` gives the value schema."""
        node = self.resolved
        return isinstance(node.get("additionalProperties"), Mapping) and not node.get("properties")

    @property
    def is_array(self) -> bool:
        return "array" in self.types or "items" in self.resolved

    @property
    def preserves_unknown(self) -> bool:
        return bool(self._extension("x-kubernetes-preserve-unknown-fields"))

    @property
    def properties(self) -> tuple[str, ...]:
        return tuple(self.resolved.get("properties") or ())

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.resolved.get("required") or ())

    @property
    def default(self) -> Any:
        """The declared default value; None if there is none."""
        return self._extension("default")

    def field(self, name: str) -> SchemaNode | None:
        """The schema of field ``name``, or of a map's values; None if the type has no
        such field (or preserves unknown fields without describing them)."""
        node = self.resolved
        properties = node.get("properties") or {}
        if name in properties:
            return SchemaNode(properties[name], self._definitions)
        values = node.get("additionalProperties")
        if isinstance(values, Mapping):
            return SchemaNode(values, self._definitions)
        return None

    def items(self) -> SchemaNode | None:
        """The schema of a list's items."""
        items = self.resolved.get("items")
        return SchemaNode(items, self._definitions) if isinstance(items, Mapping) else None

    @property
    def patch_strategy(self) -> str | None:
        """``merge``, ``retainKeys``, ``merge,retainKeys``, ``replace`` or None."""
        value = self._extension("x-kubernetes-patch-strategy")
        return str(value) if value else None

    @property
    def patch_merge_key(self) -> str | None:
        value = self._extension("x-kubernetes-patch-merge-key")
        return str(value) if value else None

    @property
    def list_type(self) -> str | None:
        """``atomic``, ``set`` or ``map``; None if unspecified (server-side apply then
        treats the list as atomic)."""
        value = self._extension("x-kubernetes-list-type")
        return str(value) if value else None

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self._extension("x-kubernetes-list-map-keys") or ())

    @property
    def map_type(self) -> str:
        """``atomic`` or ``granular`` (the default)."""
        return str(self._extension("x-kubernetes-map-type") or "granular")

    def __repr__(self) -> str:
        return f"SchemaNode({json.dumps(self._raw)[:80]})"


@dataclass(frozen=True)
class _CrdSchema:
    """One served version of a CRD: its schema, rooted as the apiserver roots it."""

    group: str
    version: str
    kind: str
    list_kind: str
    root: Definition
    openapi: Definition


class Schemas:
    """The schemas of the built-in types and of the CRDs added at run time."""

    def __init__(self, definitions: Mapping[str, Definition]) -> None:
        self._definitions = definitions
        self._by_kind = _index(definitions)
        self._crds: dict[str, list[_CrdSchema]] = {}
        self._crd_by_kind: dict[tuple[str, str, str], _CrdSchema] = {}

    @classmethod
    def load(cls) -> Schemas:
        """The built-in types' schemas (read from kubernetes-validate once per process)."""
        return cls(_builtin_definitions())

    @property
    def definitions(self) -> Mapping[str, Definition]:
        """The built-in definitions by name (``io.k8s.api.apps.v1.Deployment``); read-only."""
        return self._definitions

    def definition_name(self, group: str, version: str, kind: str) -> str | None:
        """The name of the built-in definition of a kind."""
        return self._by_kind.get((group, version, kind))

    def crd_schema(self, group: str, version: str, kind: str) -> Definition | None:
        """A CRD version's root schema: its openAPIV3Schema with apiVersion, kind and
        metadata described by the standard types; ``$ref``s point into ``definitions``."""
        found = self._crd_by_kind.get((group, version, kind))
        return found.root if found else None

    def for_kind(self, group: str, version: str, kind: str) -> SchemaNode | None:
        """The root schema of a type; None if neither a built-in nor a CRD describes it."""
        crd = self._crd_by_kind.get((group, version, kind))
        if crd is not None:
            return SchemaNode(crd.root, self._definitions)
        name = self._by_kind.get((group, version, kind))
        if name is None:
            return None
        return SchemaNode(self._definitions[name], self._definitions)

    def fingerprint(self, group: str, version: str) -> str:
        """Changes whenever the schemas of this group version change."""
        digest = hashlib.sha256(KUBERNETES_VERSION.encode())
        for name in sorted(self._crds):
            for crd in self._crds[name]:
                if crd.group == group and crd.version == version:
                    digest.update(json.dumps([crd.kind, crd.openapi], sort_keys=True).encode())
        return digest.hexdigest()

    def add_crd(self, crd: Mapping[str, Any]) -> None:
        """Hold the schema of every served version of a CRD, replacing an earlier one."""
        validate_crd(crd)
        self.remove_crd(crd)
        spec = crd["spec"]
        kind = spec["names"]["kind"]
        list_kind = spec["names"].get("listKind") or f"{kind}List"
        held = []
        for entry in spec["versions"]:
            if not entry.get("served", False):
                continue
            openapi = copy.deepcopy(entry["schema"]["openAPIV3Schema"])
            held.append(
                _CrdSchema(
                    spec["group"],
                    entry["name"],
                    kind,
                    list_kind,
                    custom_resource_root(openapi),
                    openapi,
                )
            )
        self._crds[crd["metadata"]["name"]] = held
        for schema in held:
            self._crd_by_kind[(schema.group, schema.version, schema.kind)] = schema

    def remove_crd(self, crd: Mapping[str, Any]) -> None:
        name = (crd.get("metadata") or {}).get("name", "")
        for schema in self._crds.pop(name, []):
            self._crd_by_kind.pop((schema.group, schema.version, schema.kind), None)


def custom_resource_root(openapi: Mapping[str, Any]) -> Definition:
    """A custom resource's root schema as the apiserver uses it: the CRD's schema with
    apiVersion, kind and metadata described by the standard types, whatever the CRD says
    of them (the apiserver publishes and merges CRD objects with ObjectMeta's metadata)."""
    root = dict(openapi)
    properties = dict(root.get("properties") or {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"$ref": f"{DEFINITIONS_REF}{OBJECT_META}"}
    root["properties"] = properties
    root.setdefault("type", "object")
    return root


@cache
def _builtin_definitions() -> Mapping[str, Definition]:
    directory = f"{KUBERNETES_VERSION}-local"
    path = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / directory
        / "_definitions.json"
    )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ApiError(
            500,
            "InternalError",
            f"kubernetes-validate has no {directory}/_definitions.json: install "
            f"kubernetes-validate {KUBERNETES_VERSION.removeprefix('v')}",
        ) from err
    return MappingProxyType(document["$defs"])


def _index(definitions: Mapping[str, Definition]) -> Mapping[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, definition in definitions.items():
        gvks = definition.get("x-kubernetes-group-version-kind") or []
        # Types like DeleteOptions carry every group's GVK; a type of its own group wins.
        for gvk in gvks:
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            if key not in index or len(gvks) == 1:
                index[key] = name
    return MappingProxyType(index)
