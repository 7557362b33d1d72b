"""Discovery and OpenAPI documents, shaped as the Kubernetes API server serves them.

Pure functions of a ``ResourceTable`` (and ``Schemas`` for the OpenAPI documents):

- ``/api``, ``/apis``, ``/apis/GROUP``, ``/api/v1`` and ``/apis/GROUP/VERSION``
  (APIVersions, APIGroupList, APIGroup, APIResourceList);
- aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList), which kubectl asks
  for with ``Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``
  and recognises only when the response's Content-Type is ``AGGREGATED_CONTENT_TYPE``;
- ``/openapi/v3`` and its group-version documents, which kubectl reads to validate
  ``kubectl apply``, to compute client-side apply patches and for ``kubectl explain``;
- ``/openapi/v2`` as swagger 2.0 JSON.

What kubectl looks for in the OpenAPI v3 documents (k8s.io/cli-runtime
query_param_verifier_v3.go, k8s.io/kubectl apply patcher): a PATCH operation whose
``x-kubernetes-group-version-kind`` is the object's GVK and which lists a parameter named
``fieldValidation`` (then kubectl leaves validation to the server; for a CRD it checks the
Namespace PATCH instead); a request body that accepts
``application/strategic-merge-patch+json`` for built-in types (then kubectl computes its
three-way patch from ``components.schemas``, found by their
``x-kubernetes-group-version-kind`` list, reading ``x-kubernetes-patch-strategy`` and
``x-kubernetes-patch-merge-key``).

Documents are built once per content and cached (keyed by the table's and the schemas'
fingerprints of the group version); callers must not change what they get.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import (
    DEFINITIONS_REF,
    KUBERNETES_VERSION,
    OBJECT_META,
    ResourceInfo,
    ResourceTable,
    Schemas,
    Subresource,
    custom_resource_root,
)

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
"""Content-Type of an aggregated discovery response (client-go checks g, v and as)."""

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_STATUS = f"{_META}Status"
_DELETE_OPTIONS = f"{_META}DeleteOptions"
_PATCH = f"{_META}Patch"
_LIST_META = f"{_META}ListMeta"
_API_RESOURCE_LIST = f"{_META}APIResourceList"

_BUILTIN_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_CUSTOM_MEDIA = ("application/json", "application/yaml")
_PATCH_MEDIA = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)
_STRATEGIC_MERGE = "application/strategic-merge-patch+json"
_MAX_CACHED_DOCUMENTS = 128


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


# --- discovery ---------------------------------------------------------------------------


def api_versions(*, server_address: str | None = None) -> dict[str, Any]:
    """``/api``: the legacy group's versions."""
    addresses = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": addresses if server_address else [],
    }


def _group_entry(group: str, versions: list[str], preferred: str) -> dict[str, Any]:
    def version_entry(version: str) -> dict[str, str]:
        return {"groupVersion": f"{group}/{version}", "version": version}

    return {
        "name": group,
        "versions": [version_entry(v) for v in versions],
        "preferredVersion": version_entry(preferred),
    }


def api_group_list(table: ResourceTable) -> dict[str, Any]:
    """``/apis``: every named group (not the core one) in priority order."""
    groups = [_group_entry(*entry) for entry in table.groups() if entry[0]]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(table: ResourceTable, group: str) -> dict[str, Any]:
    """``/apis/GROUP``; ApiError 404 for a group the table does not serve."""
    for name, versions, preferred in table.groups():
        if name and name == group:
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                **_group_entry(name, versions, preferred),
            }
    raise _not_found()


def api_resource_list(table: ResourceTable, group: str, version: str) -> dict[str, Any]:
    """``/api/v1`` or ``/apis/GROUP/VERSION``; subresources appear as ``plural/name``.
    ApiError 404 for a group version the table does not serve."""
    infos = table.resources(group, version)
    if not infos:
        raise _not_found()
    entries = []
    for info in infos:
        entries.append(_api_resource(info))
        entries.extend(_api_subresource(info, sub) for sub in _subresources(info))
    body: dict[str, Any] = {"kind": "APIResourceList"}
    if group:  # the apiserver leaves apiVersion out of /api/v1's list
        body["apiVersion"] = "v1"
    body["groupVersion"] = f"{group}/{version}" if group else version
    body["resources"] = sorted(entries, key=lambda entry: str(entry["name"]))
    return body


def _subresources(info: ResourceInfo) -> Iterator[Subresource]:
    for name in info.subresources:
        sub = info.subresource(name)
        if sub is not None:
            yield sub


def _has_storage(info: ResourceInfo) -> bool:
    # Reviews and other create-only or read-only resources have no storage to hash.
    return "create" in info.verbs and "list" in info.verbs


def _api_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if _has_storage(info):
        entry["storageVersionHash"] = info.storage_version_hash
    return entry


def _api_subresource(info: ResourceInfo, sub: Subresource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{info.plural}/{sub.name}",
        "singularName": "",
        "namespaced": info.namespaced,
    }
    if (sub.group, sub.version) != (info.group, info.version):
        entry["group"], entry["version"] = sub.group, sub.version
    entry["kind"] = sub.kind
    entry["verbs"] = list(sub.verbs)
    return entry


def aggregated_discovery(table: ResourceTable, *, legacy: bool) -> dict[str, Any]:
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList: for ``/api`` (``legacy``) the core
    group alone, for ``/apis`` every other group, in priority order."""
    items = []
    for group, versions, _ in table.groups():
        if (group == "") != legacy:
            continue
        metadata: dict[str, Any] = {"name": group} if group else {}
        metadata["creationTimestamp"] = None
        items.append(
            {
                "metadata": metadata,
                "versions": [
                    {
                        "version": version,
                        "resources": [
                            _discovery_resource(info) for info in table.resources(group, version)
                        ],
                        "freshness": "Current",
                    }
                    for version in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _discovery_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": _gvk(info.group, info.version, info.kind),
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subresources = [
        {
            "subresource": sub.name,
            "responseKind": _gvk(sub.group, sub.version, sub.kind),
            "verbs": list(sub.verbs),
        }
        for sub in _subresources(info)
    ]
    if subresources:
        entry["subresources"] = subresources
    return entry


# --- OpenAPI: one model of the paths, rendered as v3 or as swagger 2.0 -------------------


@dataclass(frozen=True)
class _Param:
    name: str
    where: str  # "query" or "path"
    type: str
    description: str


@dataclass(frozen=True)
class _Response:
    code: str
    description: str
    definition: str | None  # None: plain text (a Pod's log)


@dataclass(frozen=True)
class _Operation:
    method: str
    operation_id: str
    description: str
    action: str
    gvk: tuple[str, str, str]
    parameters: tuple[_Param, ...]
    responses: tuple[_Response, ...]
    produces: tuple[str, ...]
    body: str | None
    body_media: tuple[str, ...]
    body_required: bool


@dataclass(frozen=True)
class _Path:
    template: str
    parameters: tuple[_Param, ...]
    operations: tuple[_Operation, ...]


# The query parameters the apiserver's operations take: name -> (type, description).
_QUERY = {
    "allowWatchBookmarks": ("boolean", 'allowWatchBookmarks requests "BOOKMARK" watch events.'),
    "container": ("string", "The container for which to stream logs."),
    "continue": ("string", "The continue token of the previous page of a list."),
    "dryRun": ("string", "When present, modifications are not persisted. Valid values: All."),
    "fieldManager": ("string", "The name of the actor or entity making these changes."),
    "fieldSelector": ("string", "A selector on the returned objects' fields."),
    "fieldValidation": (
        "string",
        "How the server handles objects in the request (POST/PUT/PATCH) with unknown or "
        "duplicate fields: Ignore, Warn or Strict.",
    ),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "force": ("boolean", "Re-acquire the fields other managers own (apply patches only)."),
    "gracePeriodSeconds": ("integer", "The duration in seconds before the object is deleted."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean",
        "Delete the resource even if it cannot be read from storage (unsafe).",
    ),
    "labelSelector": ("string", "A selector on the returned objects' labels."),
    "limit": ("integer", "The maximum number of objects a list returns."),
    "limitBytes": ("integer", "The number of bytes of log to read at most."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy."),
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "previous": ("boolean", "Return the previous terminated container's logs."),
    "propagationPolicy": ("string", "How dependents are deleted: Orphan, Background, Foreground."),
    "resourceVersion": ("string", "The resource version a request may be served from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies to a list."),
    "sendInitialEvents": ("boolean", "Start a watch with the current state (with watch=true)."),
    "sinceSeconds": ("integer", "Show logs of the last sinceSeconds seconds."),
    "tailLines": ("integer", "The number of lines from the end of the logs to show."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "timestamps": ("boolean", "Start every line of log output with an RFC 3339 timestamp."),
    "watch": ("boolean", "Watch for changes to the described resources."),
}


def _query(*names: str) -> tuple[_Param, ...]:
    return tuple(_Param(name, "query", *_QUERY[name]) for name in names)


_PRETTY = _query("pretty")
_NAMESPACE = _Param("namespace", "path", "string", "object name and auth scope")
_LIST_PARAMS = _query(
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS = _query("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = _query("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_PARAMS = _query(
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_LOG_PARAMS = _query(
    "container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines", "timestamps"
)


@dataclass(frozen=True)
class _Verb:
    """How the apiserver publishes one verb as an operation. ``operation_id`` and
    ``description`` are templates of ids (group and version), scope, kind and sub (the
    subresource, Sub capitalised); ``body`` and responses name what they carry: the
    object, its list, a Status, a Patch or DeleteOptions."""

    verb: str
    method: str
    operation_id: str
    action: str
    description: str
    parameters: tuple[_Param, ...]
    body: str
    responses: tuple[tuple[str, str, str], ...]


_OK = ("200", "OK", "object")
_CREATED = ("201", "Created", "object")
_ACCEPTED = ("202", "Accepted", "object")
_LISTED = ("200", "OK", "list")
_COLLECTION_VERBS = (
    _Verb("list", "get", "list{ids}{scope}{kind}", "list",
          "list or watch objects of kind {kind}", _LIST_PARAMS, "", (_LISTED,)),
    _Verb("create", "post", "create{ids}{scope}{kind}", "post", "create a {kind}",
          _WRITE_PARAMS, "object", (_OK, _CREATED, _ACCEPTED)),
    _Verb("deletecollection", "delete", "delete{ids}Collection{scope}{kind}",
          "deletecollection", "delete collection of {kind}", _LIST_PARAMS + _DELETE_PARAMS,
          "delete", (("200", "OK", "status"),)),
)  # fmt: skip
_ITEM_VERBS = (
    _Verb("get", "get", "read{ids}{scope}{kind}", "get", "read the specified {kind}", (), "",
          (_OK,)),
    _Verb("update", "put", "replace{ids}{scope}{kind}", "put", "replace the specified {kind}",
          _WRITE_PARAMS, "object", (_OK, _CREATED)),
    _Verb("patch", "patch", "patch{ids}{scope}{kind}", "patch",
          "partially update the specified {kind}", _PATCH_PARAMS, "patch", (_OK, _CREATED)),
    _Verb("delete", "delete", "delete{ids}{scope}{kind}", "delete", "delete a {kind}",
          _DELETE_PARAMS, "delete", (("200", "OK", "status"), ("202", "Accepted", "status"))),
)  # fmt: skip
_ALL_NAMESPACES_LIST = _Verb(
    "list", "get", "list{ids}{kind}ForAllNamespaces", "list",
    "list or watch objects of kind {kind}", _LIST_PARAMS, "", (_LISTED,),
)  # fmt: skip
_SUBRESOURCE_VERBS = (
    _Verb("get", "get", "read{ids}{scope}{kind}{Sub}", "get",
          "read {sub} of the specified {kind}", (), "", (_OK,)),
    _Verb("update", "put", "replace{ids}{scope}{kind}{Sub}", "put",
          "replace {sub} of the specified {kind}", _WRITE_PARAMS, "object", (_OK, _CREATED)),
    _Verb("patch", "patch", "patch{ids}{scope}{kind}{Sub}", "patch",
          "partially update {sub} of the specified {kind}", _PATCH_PARAMS, "patch",
          (_OK, _CREATED)),
    _Verb("create", "post", "create{ids}{scope}{kind}{Sub}", "post", "create {sub} of a {kind}",
          _WRITE_PARAMS, "object", (_OK, _CREATED, _ACCEPTED)),
)  # fmt: skip
_UNAUTHORIZED = _Response("401", "Unauthorized", None)


def _camel(group: str) -> str:
    if not group:
        return "Core"
    words = group.removesuffix(".k8s.io").replace("-", ".").split(".")
    return "".join(word[:1].upper() + word[1:] for word in words)


def _ids(group: str, version: str) -> str:
    """How operation ids name a group version: ``AppsV1``, ``RbacAuthorizationV1``."""
    return f"{_camel(group)}{version[:1].upper()}{version[1:]}"


def _tag(group: str, version: str) -> str:
    camel = _camel(group)
    return f"{camel[:1].lower()}{camel[1:]}_{version}"


def _prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


@dataclass(frozen=True)
class _Kinds:
    """Definition names of the types one resource's operations read and write."""

    item: str | None
    list: str | None
    custom: bool

    @property
    def media(self) -> tuple[str, ...]:
        return _CUSTOM_MEDIA if self.custom else _BUILTIN_MEDIA

    @property
    def patch_media(self) -> tuple[str, ...]:
        # The apiserver refuses strategic merge patches of custom resources.
        return _PATCH_MEDIA if self.custom else (*_PATCH_MEDIA, _STRATEGIC_MERGE)


def _custom_definition_name(group: str, version: str, kind: str) -> str:
    """What the apiserver names a custom resource's schema: the group reversed."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _kinds(table: ResourceTable, schemas: Schemas, info: ResourceInfo) -> _Kinds:
    if table.crd_name(info.group, info.version, info.plural) is not None:
        return _Kinds(
            _custom_definition_name(info.group, info.version, info.kind),
            _custom_definition_name(info.group, info.version, info.list_kind),
            custom=True,
        )
    return _Kinds(
        schemas.definition_name(info.group, info.version, info.kind),
        schemas.definition_name(info.group, info.version, info.list_kind),
        custom=False,
    )


def _operation(
    verb: _Verb,
    names: Mapping[str, str],
    gvk: tuple[str, str, str],
    kinds: _Kinds,
    definition: str | None,
    *,
    text: bool = False,
) -> _Operation:
    """``verb``'s operation on objects of ``definition`` (``text``: it answers plain text)."""
    carried = {"object": definition, "list": kinds.list, "status": _STATUS}
    responses = tuple(
        _Response(code, description, None if text else carried[what])
        for code, description, what in verb.responses
    )
    return _Operation(
        method=verb.method,
        operation_id=verb.operation_id.format(**names),
        description=verb.description.format(**names),
        action=verb.action,
        gvk=gvk,
        parameters=_LOG_PARAMS if text else verb.parameters,
        responses=(*responses, _UNAUTHORIZED),
        produces=("text/plain", *kinds.media) if text else kinds.media,
        body={"object": definition, "patch": _PATCH, "delete": _DELETE_OPTIONS}.get(verb.body),
        body_media=kinds.patch_media if verb.body == "patch" else ("*/*",),
        body_required=verb.body != "delete",
    )


def _resource_paths(info: ResourceInfo, kinds: _Kinds, schemas: Schemas) -> list[_Path]:
    """The paths of one resource and its subresources, with the operations its verbs allow."""
    names = {
        "ids": _ids(info.group, info.version),
        "scope": "Namespaced" if info.namespaced else "",
        "kind": info.kind,
    }
    gvk = (info.group, info.version, info.kind)
    base = _prefix(info.group, info.version)
    scoped = (_NAMESPACE,) if info.namespaced else ()
    collection = (
        f"{base}/namespaces/{{namespace}}/{info.plural}" if scoped else f"{base}/{info.plural}"
    )
    item_params = (_Param("name", "path", "string", f"name of the {info.kind}"), *scoped, *_PRETTY)

    def operations(verbs: Iterable[_Verb]) -> tuple[_Operation, ...]:
        allowed = [verb for verb in verbs if verb.verb in info.verbs]
        return tuple(_operation(verb, names, gvk, kinds, kinds.item) for verb in allowed)

    candidates = [
        _Path(collection, (*scoped, *_PRETTY), operations(_COLLECTION_VERBS)),
        _Path(f"{collection}/{{name}}", item_params, operations(_ITEM_VERBS)),
    ]
    if scoped:
        candidates.append(
            _Path(f"{base}/{info.plural}", _PRETTY, operations([_ALL_NAMESPACES_LIST]))
        )
    for sub in _subresources(info):
        if (sub.group, sub.version, sub.kind) == gvk:
            definition = kinds.item
        else:
            definition = schemas.definition_name(sub.group, sub.version, sub.kind)
        sub_names = {**names, "sub": sub.name, "Sub": sub.name[:1].upper() + sub.name[1:]}
        sub_gvk = (sub.group, sub.version, sub.kind)
        candidates.append(
            _Path(
                f"{collection}/{{name}}/{sub.name}",
                item_params,
                tuple(
                    _operation(verb, sub_names, sub_gvk, kinds, definition, text=sub.name == "log")
                    for verb in _SUBRESOURCE_VERBS
                    if verb.verb in sub.verbs
                ),
            )
        )
    return [path for path in candidates if path.operations]


def _resources_path(group: str, version: str) -> _Path:
    """The group version's own path, which answers its APIResourceList."""
    operation = _Operation(
        method="get",
        operation_id=f"get{_ids(group, version)}APIResources",
        description="get available resources",
        action="",
        gvk=("", "", ""),
        parameters=(),
        responses=(_Response("200", "OK", _API_RESOURCE_LIST), _UNAUTHORIZED),
        produces=_BUILTIN_MEDIA,
        body=None,
        body_media=("*/*",),
        body_required=False,
    )
    return _Path(f"{_prefix(group, version)}/", (), (operation,))


def _group_version_paths(
    table: ResourceTable, schemas: Schemas, group: str, version: str
) -> tuple[list[_Path], list[ResourceInfo]]:
    """A group version's paths, and its custom resources (whose schemas come from CRDs)."""
    paths = [_resources_path(group, version)]
    custom = []
    for info in table.resources(group, version):
        kinds = _kinds(table, schemas, info)
        if kinds.custom:
            custom.append(info)
        paths.extend(_resource_paths(info, kinds, schemas))
    return paths, custom


def _referenced(paths: Iterable[_Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for operation in path.operations:
            if operation.body:
                names.add(operation.body)
            names.update(r.definition for r in operation.responses if r.definition)
    return names


@dataclass(frozen=True)
class _Style:
    """How one OpenAPI version writes references and types."""

    ref_prefix: str
    v2: bool


_V3 = _Style("#/components/schemas/", v2=False)
_V2 = _Style("#/definitions/", v2=True)
_SCHEMA_KEYS = frozenset({"items", "additionalProperties", "additionalItems", "not"})
_SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "definitions"})
_SCHEMA_LIST_KEYS = frozenset({"allOf", "anyOf", "oneOf"})
# Swagger 2.0 has none of these; the apiserver drops them from what it publishes as v2.
_NOT_IN_V2 = frozenset({"nullable", "anyOf", "allOf", "not"})


def _convert(node: Any, style: _Style) -> Any:
    """A JSON-schema node in the given OpenAPI dialect: references renamed (v3 wraps a
    reference with siblings in allOf, as the apiserver does), ``null`` dropped from
    types, and for v2 the int-or-string and quantity alternatives collapsed to strings."""
    if not isinstance(node, Mapping):
        return node
    if style.v2 and "oneOf" in node:
        return _v2_scalar(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" or (style.v2 and key in _NOT_IN_V2):
            continue
        if key == "type":
            out[key] = _single_type(value)
        elif key in _SCHEMA_KEYS:
            out[key] = _convert(value, style)
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, Mapping):
            out[key] = {name: _convert(child, style) for name, child in value.items()}
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_convert(child, style) for child in value]
        else:
            out[key] = value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = {"$ref": style.ref_prefix + ref.removeprefix(DEFINITIONS_REF)}
        if out and not style.v2:
            return {"allOf": [target], **out}
        return {**target, **out}
    return out


def _single_type(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    types = [t for t in value if t != "null"]
    return types[0] if len(types) == 1 else types


def _v2_scalar(node: Mapping[str, Any]) -> dict[str, Any]:
    types = {_single_type(alternative.get("type")) for alternative in node["oneOf"]}
    out: dict[str, Any] = {k: v for k, v in node.items() if k not in ("oneOf", "type")}
    out["type"] = "string"
    if "integer" in types:
        out["format"] = "int-or-string"
    return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.removeprefix(DEFINITIONS_REF)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for child in node:
            yield from _refs(child)


@dataclass
class _Cache:
    """What has been built from one ``Schemas``: converted definitions, their
    references, and whole documents."""

    definitions: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, frozenset[str]] = field(default_factory=dict)
    documents: OrderedDict[tuple[Any, ...], dict[str, Any]] = field(default_factory=OrderedDict)


_CACHES: weakref.WeakKeyDictionary[Schemas, _Cache] = weakref.WeakKeyDictionary()


def _cache(schemas: Schemas) -> _Cache:
    found = _CACHES.get(schemas)
    if found is None:
        found = _CACHES[schemas] = _Cache()
    return found


def _cached_document(
    schemas: Schemas, key: tuple[Any, ...], build: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    documents = _cache(schemas).documents
    document = documents.get(key)
    if document is None:
        document = documents[key] = build()
        if len(documents) > _MAX_CACHED_DOCUMENTS:
            documents.popitem(last=False)
    else:
        documents.move_to_end(key)
    return document


def _definition(schemas: Schemas, name: str, style: _Style) -> dict[str, Any]:
    cache = _cache(schemas)
    key = (name, style.v2)
    converted = cache.definitions.get(key)
    if converted is None:
        raw = schemas.definitions[name]
        converted = _convert(raw, style)
        if "x-kubernetes-group-version-kind" in raw:
            # kubernetes-validate pins apiVersion and kind with enums; the apiserver does not.
            properties = dict(converted.get("properties") or {})
            for key_field in ("apiVersion", "kind"):
                if key_field in properties:
                    properties[key_field] = {
                        k: v for k, v in properties[key_field].items() if k != "enum"
                    }
            converted["properties"] = properties
        cache.definitions[key] = converted
    return converted


def _closure(schemas: Schemas, roots: Iterable[str]) -> list[str]:
    """The named built-in definitions and every definition they refer to, sorted."""
    cache = _cache(schemas)
    seen: set[str] = set()
    pending = [name for name in roots if name in schemas.definitions]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        refs = cache.refs.get(name)
        if refs is None:
            refs = cache.refs[name] = frozenset(_refs(schemas.definitions[name]))
        pending.extend(refs - seen)
    return sorted(seen)


def _custom_definitions(schemas: Schemas, info: ResourceInfo, style: _Style) -> dict[str, Any]:
    """A custom resource's schema and its list's, as the apiserver publishes them."""
    item_name = _custom_definition_name(info.group, info.version, info.kind)
    list_name = _custom_definition_name(info.group, info.version, info.list_kind)
    root = schemas.crd_schema(info.group, info.version, info.kind) or custom_resource_root(
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    item = _convert(root, style)
    item["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    listing = {
        "description": f"{info.list_kind} is a list of {info.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": style.ref_prefix + item_name}},
            "kind": {"type": "string"},
            "metadata": {"$ref": style.ref_prefix + _LIST_META},
        },
        "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind)],
    }
    return {item_name: item, list_name: listing}


def _definitions(
    schemas: Schemas,
    paths: list[_Path],
    custom: list[ResourceInfo],
    style: _Style,
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for info in custom:
        extra.update(_custom_definitions(schemas, info, style))
    roots = _referenced(paths)
    if custom:
        roots |= {OBJECT_META, _LIST_META}
    built = {name: _definition(schemas, name, style) for name in _closure(schemas, roots)}
    built.update(extra)
    return dict(sorted(built.items()))


def _render_param(param: _Param, style: _Style) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where, "description": param.description}
    if param.where == "path":
        out["required"] = True
    typed = {"type": param.type, "uniqueItems": True}
    if style.v2:
        out.update(typed)
    else:
        out["schema"] = typed
    return out


def _schema_of(definition: str | None, style: _Style) -> dict[str, Any]:
    return {"$ref": style.ref_prefix + definition} if definition else {"type": "string"}


def _render_operation(operation: _Operation, tag: str, style: _Style) -> dict[str, Any]:
    out: dict[str, Any] = {"tags": [tag], "description": operation.description}
    if style.v2:
        out["consumes"] = list(operation.body_media)
        out["produces"] = list(operation.produces)
        out["schemes"] = ["https"]
    out["operationId"] = operation.operation_id
    parameters = [_render_param(p, style) for p in operation.parameters]
    if operation.body and style.v2:
        parameters.insert(
            0,
            {
                "name": "body",
                "in": "body",
                "required": operation.body_required,
                "schema": _schema_of(operation.body, style),
            },
        )
    if parameters:
        out["parameters"] = parameters
    if operation.body and not style.v2:
        body: dict[str, Any] = {
            "content": {
                media: {"schema": _schema_of(operation.body, style)}
                for media in operation.body_media
            }
        }
        if operation.body_required:
            body["required"] = True
        out["requestBody"] = body
    responses: dict[str, Any] = {}
    for response in operation.responses:
        rendered: dict[str, Any] = {"description": response.description}
        if response.code != "401":
            schema = _schema_of(response.definition, style)
            if style.v2:
                rendered["schema"] = schema
            else:
                rendered["content"] = {media: {"schema": schema} for media in operation.produces}
        responses[response.code] = rendered
    out["responses"] = responses
    if operation.action:
        out["x-kubernetes-action"] = operation.action
    if operation.gvk[2]:
        group, version, kind = operation.gvk
        out["x-kubernetes-group-version-kind"] = {"group": group, "kind": kind, "version": version}
    return out


def _render_paths(paths: Iterable[_Path], tag: str, style: _Style) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for path in paths:
        entry: dict[str, Any] = {
            operation.method: _render_operation(operation, tag, style)
            for operation in path.operations
        }
        if path.parameters:
            entry["parameters"] = [_render_param(p, style) for p in path.parameters]
        rendered[path.template] = entry
    return rendered


_SECURITY = {
    "BearerToken": {
        "type": "apiKey",
        "description": "Bearer Token authentication",
        "name": "authorization",
        "in": "header",
    }
}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_index(table: ResourceTable) -> dict[str, Any]:
    """``/openapi/v3``: each group version's document URL, with a hash that changes
    whenever the document does (clients cache by it)."""
    paths = {}
    for group, versions, _ in table.groups():
        for version in versions:
            digest = (
                hashlib.sha512(f"{KUBERNETES_VERSION}/{table.fingerprint(group, version)}".encode())
                .hexdigest()
                .upper()
            )
            gv_path = _gv_path(group, version)
            paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_document(
    table: ResourceTable, schemas: Schemas, group: str, version: str
) -> dict[str, Any]:
    """``/openapi/v3/api/v1`` or ``/openapi/v3/apis/GROUP/VERSION``: the paths of the
    group version's resources and the schemas they use. ApiError 404 for a group version
    the table does not serve. Built once per content; do not change the result."""
    if not table.resources(group, version):
        raise _not_found()
    key = (
        "v3",
        group,
        version,
        table.fingerprint(group, version),
        schemas.fingerprint(group, version),
    )

    def build() -> dict[str, Any]:
        paths, custom = _group_version_paths(table, schemas, group, version)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": _render_paths(paths, _tag(group, version), _V3),
            "components": {
                "schemas": _definitions(schemas, paths, custom, _V3),
                "securitySchemes": _SECURITY,
            },
        }

    return _cached_document(schemas, key, build)


def openapi_v2(table: ResourceTable, schemas: Schemas) -> dict[str, Any]:
    """``/openapi/v2`` as swagger 2.0 JSON: every group version's paths and definitions.
    Built once per content; do not change the result."""
    group_versions = [(g, v) for g, versions, _ in table.groups() for v in versions]
    key = (
        "v2",
        *((g, v, table.fingerprint(g, v), schemas.fingerprint(g, v)) for g, v in group_versions),
    )

    def build() -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        all_paths: list[_Path] = []
        custom: list[ResourceInfo] = []
        for group, version in group_versions:
            paths, custom_here = _group_version_paths(table, schemas, group, version)
            rendered.update(_render_paths(paths, _tag(group, version), _V2))
            all_paths.extend(paths)
            custom.extend(custom_here)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": rendered,
            "definitions": _definitions(schemas, all_paths, custom, _V2),
            "securityDefinitions": _SECURITY,
            "security": [{"BearerToken": []}],
        }

    return _cached_document(schemas, key, build)
