from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from api_samples import KIND_NAMES, sample, seed_external_secret

from gitmoor.api import KINDS
from gitmoor.api.crds import crd_manifest, crd_manifests, openapi_schema, plural
from gitmoor.api.meta import Model, Resource
from gitmoor.manifests import dump_all
from gitmoor.render.kustomize_cli import kustomize_build

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_NOT_STRUCTURAL = {"$ref", "$defs", "definitions", "title", "anyOf", "oneOf", "allOf", "not"}
_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def structural_problems(node: Mapping[str, Any], path: str = "") -> list[str]:
    """What keeps a schema from being structural in Kubernetes' sense, one line each."""
    problems = [f"{path}: {key}" for key in sorted(_NOT_STRUCTURAL & set(node))]
    kind = node.get("type")
    if kind is None and not node.get(_PRESERVE) and not node.get(_INT_OR_STRING):
        problems.append(f"{path}: no type")
    if kind is not None and kind not in _PYTHON_TYPES:
        problems.append(f"{path}: unknown type {kind!r}")
    if kind == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties and additionalProperties together")
    if "default" in node and node["default"] is None:
        problems.append(f"{path}: null default")
    for value in node.get("enum", []):
        if kind in _PYTHON_TYPES and not isinstance(value, _PYTHON_TYPES[kind]):
            problems.append(f"{path}: enum value {value!r} is not a {kind}")
    for field in node.get("required", []):
        if field not in node.get("properties", {}):
            problems.append(f"{path}: required {field!r} is not a property")
    for field, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{field}")
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}[]")
    extra = node.get("additionalProperties")
    if extra is not None:
        if isinstance(extra, Mapping):
            problems += structural_problems(extra, f"{path}.*")
        else:
            problems.append(f"{path}: additionalProperties is {extra!r}, not a schema")
    return problems


@functools.cache
def _all_crds() -> tuple[dict[str, Any], ...]:
    """Generated once: the tests only read them."""
    return tuple(crd_manifests())


def _crd(kind_name: str) -> dict[str, Any]:
    [crd] = [c for c in _all_crds() if c["spec"]["names"]["kind"] == kind_name]
    return crd


def _schema(kind_name: str, version: str | None = None) -> dict[str, Any]:
    versions = _crd(kind_name)["spec"]["versions"]
    [entry] = (
        [v for v in versions if v["storage"]]
        if version is None
        else [v for v in versions if v["name"] == version]
    )
    schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
    return schema


def _valid(kind_name: str, document: Mapping[str, Any], version: str | None = None) -> bool:
    validator = jsonschema.Draft4Validator(_schema(kind_name, version))
    return bool(validator.is_valid(document))


def test_the_checker_finds_what_is_not_structural() -> None:
    bad = {
        "type": "object",
        "properties": {
            "untyped": {},
            "ref": {"$ref": "#/$defs/X", "type": "object"},
            "list": {"type": "array"},
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "map": {"type": "object", "additionalProperties": True},
        },
        "required": ["missing"],
    }
    problems = structural_problems(bad)
    assert ".untyped: no type" in problems
    assert ".ref: $ref" in problems
    assert ".list: array without items" in problems
    assert ".choice: anyOf" in problems
    assert ".map: additionalProperties is True, not a schema" in problems
    assert ": required 'missing' is not a property" in problems


def test_one_crd_per_kind_named_plural_dot_group() -> None:
    crds = _all_crds()
    assert len(crds) == len(KINDS)
    for crd, kind in zip(crds, KINDS, strict=True):
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        names = crd["spec"]["names"]
        assert crd["metadata"]["name"] == f"{names['plural']}.{kind.GROUP}"
        assert crd["spec"]["group"] == kind.GROUP
        assert names["kind"] == kind.KIND
        assert names["listKind"] == f"{kind.KIND}List"
        assert names["singular"] == kind.KIND.lower()
        assert crd["spec"]["scope"] == ("Namespaced" if kind.NAMESPACED else "Cluster")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Kustomization", "kustomizations"),
        ("HelmRelease", "helmreleases"),
        ("GitRepository", "gitrepositories"),
        ("OCIRepository", "ocirepositories"),
        ("HelmRepository", "helmrepositories"),
        ("ClusterSecretStore", "clustersecretstores"),
        ("Gateway", "gateways"),
    ],
)
def test_plural(kind: str, expected: str) -> None:
    assert plural(kind) == expected


def test_short_names_are_the_upstream_ones() -> None:
    short = {c["spec"]["names"]["kind"]: c["spec"]["names"].get("shortNames") for c in _all_crds()}
    assert short["Kustomization"] == ["ks"]
    assert short["HelmRelease"] == ["hr"]
    assert short["GitRepository"] == ["gitrepo"]
    assert short["HelmRepository"] == ["helmrepo"]
    assert short["OCIRepository"] == ["ocirepo"]
    assert short["HelmChart"] == ["hc"]
    assert short["ExternalSecret"] == ["es"]
    assert short["SecretStore"] == ["ss"]
    assert short["ClusterSecretStore"] == ["css"]
    assert short["Receiver"] is None


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_versions_current_stored_old_served_and_deprecated(kind: type[Resource]) -> None:
    versions = _crd(kind.KIND)["spec"]["versions"]
    assert [v["name"] for v in versions] == [kind.VERSION, *kind.OLD_VERSIONS]
    assert all(v["served"] for v in versions)
    assert [v["storage"] for v in versions] == [True] + [False] * len(kind.OLD_VERSIONS)
    for old in versions[1:]:
        assert old["deprecated"] is True
        assert kind.VERSION in old["deprecationWarning"]
    for version in versions:
        assert version["subresources"] == {"status": {}}
        columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
        assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
        assert all(c["jsonPath"].startswith(".") for c in columns.values())


def test_printer_columns_follow_flux() -> None:
    def names(kind: str) -> list[str]:
        version = _crd(kind)["spec"]["versions"][0]
        return [c["name"] for c in version["additionalPrinterColumns"]]

    assert names("GitRepository") == ["URL", "Age", "Ready", "Status"]
    assert names("Kustomization") == ["Age", "Ready", "Status"]
    assert names("HelmRelease") == ["Age", "Ready", "Status"]
    assert names("Alert") == ["Age"]
    assert "Ready" in names("ExternalSecret")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_schemas_are_structural(kind: type[Resource]) -> None:
    for version in _crd(kind.KIND)["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert structural_problems(schema) == []
        assert schema["properties"]["metadata"] == {"type": "object"}
        assert schema["properties"]["status"] == {"type": "object", _PRESERVE: True}
        assert schema["required"] == ["spec"]


def test_schema_details_carry_over_from_the_models() -> None:
    spec = _schema("Kustomization")["properties"]["spec"]
    interval = spec["properties"]["interval"]
    assert interval["type"] == "string"
    assert interval["pattern"].startswith("^([0-9]+")
    assert {"interval", "prune", "sourceRef"} <= set(spec["required"])
    assert spec["properties"]["deletionPolicy"]["enum"] == [
        "MirrorPrune",
        "Delete",
        "WaitForTermination",
        "Orphan",
    ]
    values = _schema("HelmRelease")["properties"]["spec"]["properties"]["values"]
    assert values == {"type": "object", _PRESERVE: True}
    provider = _schema("SecretStore")["properties"]["spec"]["properties"]["provider"]
    assert provider["type"] == "object"
    assert provider[_PRESERVE] is True
    assert (provider["minProperties"], provider["maxProperties"]) == (1, 1)
    assert "server" in provider["properties"]["vault"]["required"]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_samples_validate_against_their_crd(kind: str) -> None:
    validator = jsonschema.Draft4Validator(_schema(kind))
    assert list(validator.iter_errors(sample(kind))) == []


def test_seed_external_secret_validates_against_v1beta1() -> None:
    assert _valid("ExternalSecret", seed_external_secret(), "v1beta1")


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("ExternalSecret", ("spec", "target", "creationPolicy"), "Forever"),
        ("ExternalSecret", ("spec", "refreshInterval"), "1hour"),
        ("Kustomization", ("spec", "interval"), "10 minutes"),
        ("Kustomization", ("spec", "prune"), "yes"),
        ("HelmRelease", ("spec", "upgrade", "remediation", "strategy"), "reinstall"),
        ("Receiver", ("spec", "type"), "bitbucket-cloud"),
        ("Alert", ("spec", "eventSeverity"), "warning"),
        ("ClusterSecretStore", ("spec", "provider", "vault", "version"), "v3"),
    ],
)
def test_bad_enum_or_duration_fails_validation(
    kind: str, path: tuple[str, ...], value: str
) -> None:
    document = sample(kind)
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    assert not _valid(kind, document)


def test_zero_refresh_interval_validates() -> None:
    document = seed_external_secret()
    document["spec"]["refreshInterval"] = "0"
    assert _valid("ExternalSecret", document, "v1beta1")


def test_missing_required_field_fails_validation() -> None:
    document = sample("Receiver")
    del document["spec"]["resources"]
    assert not _valid("Receiver", document)


def test_a_store_with_two_providers_fails_validation() -> None:
    document = sample("SecretStore")
    document["spec"]["provider"]["gcpsm"] = {"projectID": "p"}
    assert not _valid("SecretStore", document)


class _Git(Model):
    url: str


class _Oci(Model):
    reference: str


class _Tree(Model):
    children: list[_Tree] | None = None


class _Ports(Model):
    port: int | str
    tags: set[str] | None = None


def _resource(spec_type: Any) -> type[Resource]:
    class Example(Resource):
        GROUP = "example.com"
        KIND = "Example"
        VERSION = "v1"

        spec: spec_type

    return Example


def test_union_of_models_is_refused_with_its_path() -> None:
    with pytest.raises(TypeError, match=r"Example\.spec: a union of 2 schemas"):
        crd_manifest(_resource(_Git | _Oci))


def test_recursive_model_is_refused() -> None:
    with pytest.raises(TypeError, match="refers to itself"):
        crd_manifest(_resource(_Tree))


def test_int_or_string_and_unknown_keywords() -> None:
    with pytest.raises(TypeError, match=r"Example\.spec\.tags: JSON schema keyword 'uniqueItems'"):
        crd_manifest(_resource(_Ports))

    class _Port(Model):
        port: int | str

    port = openapi_schema(_resource(_Port))["properties"]["spec"]["properties"]["port"]
    assert port == {"x-kubernetes-int-or-string": True}


@pytest.mark.integration
def test_real_kustomize_reads_the_crds_back_unchanged(tmp_path: Path) -> None:
    crds = list(_all_crds())
    (tmp_path / "crds.yaml").write_text(dump_all(crds))
    (tmp_path / "kustomization.yaml").write_text("resources: [crds.yaml]\n")
    built = kustomize_build(tmp_path)

    def by_name(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(objects, key=lambda obj: str(obj["metadata"]["name"]))

    assert by_name(built) == by_name(crds)
