"""CustomResourceDefinitions generated from the resource models.

The models are the one description of each kind's schema; the CRDs gitmoor installs
are derived from them, so what a cluster accepts and what gitmoor reads cannot drift.
Pydantic's JSON schema is turned into the structural OpenAPI v3 subset Kubernetes
requires: references inlined, every node typed, no ``anyOf`` but the int-or-string
form, open parts marked ``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gitmoor.api.meta import Resource
from gitmoor.api.registry import KINDS

# JSON schema keywords that carry over to a structural schema unchanged.
_KEPT = frozenset(
    {
        "type",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    }
)
# Annotations with no meaning for the API server: Python titles and docstrings.
_DROPPED = frozenset({"title", "description"})
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def _column(name: str, json_path: str, value_type: str = "string") -> dict[str, str]:
    return {"name": name, "type": value_type, "jsonPath": json_path}


_READY_CONDITION = '.status.conditions[?(@.type=="Ready")]'
_AGE = _column("Age", ".metadata.creationTimestamp", "date")
_READY = _column("Ready", f"{_READY_CONDITION}.status")
_STATUS = _column("Status", f"{_READY_CONDITION}.message")
_REASON = _column("Status", f"{_READY_CONDITION}.reason")
_URL = _column("URL", ".spec.url")
_CAPABILITIES = _column("Capabilities", ".status.capabilities")

# The columns ``kubectl get`` shows, as Flux's and External Secrets' own CRDs define them
# (with Age added where External Secrets leaves it out).
_COLUMNS: dict[str, tuple[dict[str, str], ...]] = {
    "GitRepository": (_URL, _AGE, _READY, _STATUS),
    "HelmRepository": (_URL, _AGE, _READY, _STATUS),
    "OCIRepository": (_URL, _READY, _STATUS, _AGE),
    "HelmChart": (
        _column("Chart", ".spec.chart"),
        _column("Version", ".spec.version"),
        _column("Source Kind", ".spec.sourceRef.kind"),
        _column("Source Name", ".spec.sourceRef.name"),
        _AGE,
        _READY,
        _STATUS,
    ),
    "Bucket": (_column("Endpoint", ".spec.endpoint"), _AGE, _READY, _STATUS),
    "Alert": (_AGE,),
    "Provider": (_AGE,),
    "ExternalSecret": (
        _column("StoreType", ".spec.secretStoreRef.kind"),
        _column("Store", ".spec.secretStoreRef.name"),
        _column("Refresh Interval", ".spec.refreshInterval"),
        _REASON,
        _READY,
        _AGE,
    ),
    "ClusterExternalSecret": (
        _column("Store", ".spec.externalSecretSpec.secretStoreRef.name"),
        _column("Refresh Interval", ".spec.refreshTime"),
        _READY,
        _AGE,
    ),
    "SecretStore": (_AGE, _REASON, _CAPABILITIES, _READY),
    "ClusterSecretStore": (_AGE, _REASON, _CAPABILITIES, _READY),
    "PushSecret": (_AGE, _REASON, _column("Last Sync", ".status.refreshTime", "date")),
}
_DEFAULT_COLUMNS = (_AGE, _READY, _STATUS)

_SHORT_NAMES: dict[str, list[str]] = {
    "GitRepository": ["gitrepo"],
    "HelmRepository": ["helmrepo"],
    "OCIRepository": ["ocirepo"],
    "HelmChart": ["hc"],
    "Kustomization": ["ks"],
    "HelmRelease": ["hr"],
    "ExternalSecret": ["es"],
    "ClusterExternalSecret": ["ces"],
    "SecretStore": ["ss"],
    "ClusterSecretStore": ["css"],
    "PushSecret": ["ps"],
}


def plural(kind: str) -> str:
    """The resource name of a kind: ``gitrepositories``, ``kustomizations``."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def crd_manifest(kind: type[Resource]) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind.

    ``VERSION`` is served and stored; each of ``OLD_VERSIONS`` is served with the same
    schema and marked deprecated, so the API server converts by renaming the version,
    which is what reading an old manifest does in gitmoor.
    """
    name = plural(kind.KIND)
    names: dict[str, Any] = {
        "kind": kind.KIND,
        "listKind": f"{kind.KIND}List",
        "plural": name,
        "singular": kind.KIND.lower(),
    }
    if kind.KIND in _SHORT_NAMES:
        names["shortNames"] = list(_SHORT_NAMES[kind.KIND])
    schema = openapi_schema(kind)
    versions = [_version(kind, kind.VERSION, schema, current=True)]
    versions += [_version(kind, old, schema, current=False) for old in kind.OLD_VERSIONS]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{name}.{kind.GROUP}"},
        "spec": {
            "group": kind.GROUP,
            "names": names,
            "scope": "Namespaced" if kind.NAMESPACED else "Cluster",
            "versions": versions,
        },
    }


EXTERNAL_SECRETS_GROUP = "external-secrets.io"


def crd_manifests(*, external_secrets: bool = True) -> list[dict[str, Any]]:
    """The CRDs of every kind gitmoor reads, in the order of ``KINDS``; without
    External Secrets' when ``external_secrets`` is False (a cluster usually gets those from
    the external-secrets chart, whose CRDs would conflict with gitmoor's copy)."""
    return [
        crd_manifest(kind)
        for kind in KINDS
        if external_secrets or kind.GROUP != EXTERNAL_SECRETS_GROUP
    ]


def _version(
    kind: type[Resource], version: str, schema: dict[str, Any], *, current: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": current,
        "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            dict(column) for column in _COLUMNS.get(kind.KIND, _DEFAULT_COLUMNS)
        ],
    }
    if not current:
        entry["deprecated"] = True
        entry["deprecationWarning"] = (
            f"{kind.GROUP}/{version} {kind.KIND} is deprecated, use {kind.GROUP}/{kind.VERSION}"
        )
    return entry


def openapi_schema(kind: type[Resource]) -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of a kind, derived from its model."""
    schema = kind.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    properties = dict(schema["properties"])
    # The API server owns metadata's schema; status is written by controllers, and
    # leaving it open lets them grow it without a CRD change.
    properties["metadata"] = {"type": "object"}
    properties["status"] = {"type": "object", "additionalProperties": True}
    # apiVersion, kind and metadata are always there once stored; only spec is ours
    # to require.
    required = [field for field in schema.get("required", []) if field == "spec"]
    root = {**schema, "properties": properties, "required": required}
    return _structural(root, definitions, kind.KIND, ())


def _structural(
    node: Mapping[str, Any],
    definitions: Mapping[str, Any],
    path: str,
    expanding: tuple[str, ...],
) -> dict[str, Any]:
    if "$ref" in node:
        ref = str(node["$ref"])
        name = ref.removeprefix("#/$defs/")
        if name in expanding:
            raise TypeError(f"{path}: {name} refers to itself; a CRD schema cannot recurse")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        target = {**definitions[name], **siblings}
        return _structural(target, definitions, path, (*expanding, name))
    if "anyOf" in node:
        return _union(node, definitions, path, expanding)
    if not node or set(node) <= _DROPPED | {"default"}:
        return {_PRESERVE: True}  # Any
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT or key == "required":
            result[key] = value
        elif key == "const":
            result["enum"] = [value]
        elif key == "default":
            if value is not None:
                result[key] = value
        elif key == "properties":
            result[key] = {
                field: _structural(sub, definitions, f"{path}.{field}", expanding)
                for field, sub in value.items()
            }
        elif key == "items":
            result[key] = _structural(value, definitions, f"{path}[]", expanding)
        elif key == "additionalProperties":
            # False (extra="forbid") is the API server's pruning already; True is an
            # open object; a schema types the values of a map.
            if value is True:
                result[_PRESERVE] = True
            elif isinstance(value, Mapping):
                result[key] = _structural(value, definitions, f"{path}.*", expanding)
        elif key not in _DROPPED:
            raise TypeError(f"{path}: JSON schema keyword {key!r} has no structural form")
    if "required" in result and not result["required"]:
        del result["required"]
    # Type first, as kubectl and controller-gen print it; the order means nothing else.
    return dict(sorted(result.items(), key=lambda item: item[0] != "type"))


def _union(
    node: Mapping[str, Any],
    definitions: Mapping[str, Any],
    path: str,
    expanding: tuple[str, ...],
) -> dict[str, Any]:
    """``X | None`` becomes X, optional; ``int | str`` becomes int-or-string."""
    branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    if len(branches) == 1:
        return _structural({**branches[0], **rest}, definitions, path, expanding)
    if len(branches) == 2 and {branch.get("type") for branch in branches} == {"integer", "string"}:
        return {"x-kubernetes-int-or-string": True}
    raise TypeError(f"{path}: a union of {len(branches)} schemas has no structural form")
