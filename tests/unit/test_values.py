from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from gitmoor.api import HelmRelease, parse_resource
from gitmoor.errors import RenderError
from gitmoor.render.values import ValuesLookup, compose_values, values_digest

SECRET_TEXT = "hunter2-do-not-print"


def release(spec: dict[str, Any]) -> HelmRelease:
    document = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "web"}, **spec},
    }
    hr = parse_resource(document)
    assert isinstance(hr, HelmRelease)
    return hr


def store(objects: Mapping[tuple[str, str, str], Mapping[str, str]]) -> ValuesLookup:
    def lookup(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        return objects.get((kind, namespace, name))

    return lookup


def test_sources_merge_in_order_and_inline_wins() -> None:
    hr = release(
        {
            "valuesFrom": [
                {"kind": "ConfigMap", "name": "base"},
                {"kind": "Secret", "name": "creds", "valuesKey": "extra.yaml"},
            ],
            "values": {"app": {"replicas": 5}, "ports": [9090]},
        }
    )
    lookup = store(
        {
            ("ConfigMap", "apps", "base"): {
                "values.yaml": "app: {replicas: 1, image: nginx}\nports: [80, 443]\nfrom: cm\n"
            },
            ("Secret", "apps", "creds"): {"extra.yaml": "app: {password: s3cret}\nfrom: secret\n"},
        }
    )
    assert compose_values(hr, lookup) == {
        "app": {"replicas": 5, "image": "nginx", "password": "s3cret"},  # maps merged
        "ports": [9090],  # lists replaced
        "from": "secret",
    }


def test_values_are_read_as_helm_reads_them() -> None:
    hr = release({"valuesFrom": [{"kind": "ConfigMap", "name": "c"}]})
    lookup = store(
        {("ConfigMap", "apps", "c"): {"values.yaml": "enabled: yes\nmode: 010\n---\nx: 1"}}
    )
    # YAML 1.1 booleans and octals, first document only: Helm's chartutil.ReadValues
    assert compose_values(hr, lookup) == {"enabled": True, "mode": 8}


def test_target_path_uses_helms_set_parser() -> None:
    hr = release(
        {
            "valuesFrom": [
                {"kind": "ConfigMap", "name": "base"},
                {"kind": "Secret", "name": "s", "valuesKey": "count", "targetPath": "app.replicas"},
                {"kind": "Secret", "name": "s", "valuesKey": "tag", "targetPath": "app.tag"},
                {"kind": "Secret", "name": "s", "valuesKey": "flag", "targetPath": "app.debug"},
                {"kind": "Secret", "name": "s", "valuesKey": "host", "targetPath": "hosts[1]"},
                {"kind": "Secret", "name": "s", "valuesKey": "dot", "targetPath": r"ann.a\.b"},
            ]
        }
    )
    lookup = store(
        {
            ("ConfigMap", "apps", "base"): {"values.yaml": "app: {name: web}\nhosts: [a, b, c]\n"},
            ("Secret", "apps", "s"): {
                "count": "3",
                "tag": "'1.10'",
                "flag": "true",
                "host": "z",
                "dot": "v",
            },
        }
    )
    assert compose_values(hr, lookup) == {
        "app": {"name": "web", "replicas": 3, "tag": "1.10", "debug": True},
        "hosts": ["a", "z", "c"],  # only the named index is replaced
        "ann": {"a.b": "v"},
    }


def test_target_path_value_that_the_parser_rejects_is_not_quoted() -> None:
    hr = release(
        {"valuesFrom": [{"kind": "Secret", "name": "s", "valuesKey": "k", "targetPath": "a.b"}]}
    )
    lookup = store({("Secret", "apps", "s"): {"k": f"x,{SECRET_TEXT}"}})
    with pytest.raises(RenderError) as caught:
        compose_values(hr, lookup)
    assert caught.value.location.field == "spec.valuesFrom[0]"
    assert caught.value.location.object == "HelmRelease apps/web"
    assert SECRET_TEXT not in str(caught.value)


def test_optional_references_are_skipped_when_missing() -> None:
    hr = release(
        {
            "valuesFrom": [
                {"kind": "ConfigMap", "name": "absent", "optional": True},
                {"kind": "Secret", "name": "s", "valuesKey": "nope", "optional": True},
                {"kind": "Secret", "name": "s", "valuesKey": "yes"},
            ]
        }
    )
    lookup = store({("Secret", "apps", "s"): {"yes": "a: 1"}})
    assert compose_values(hr, lookup) == {"a": 1}


@pytest.mark.parametrize(
    ("reference", "data", "fragment"),
    [
        ({"kind": "Secret", "name": "gone"}, {}, "Secret apps/gone not found"),
        (
            {"kind": "ConfigMap", "name": "c", "valuesKey": "v.yaml"},
            {("ConfigMap", "apps", "c"): {"other": "a: 1"}},
            "key 'v.yaml' not found in ConfigMap apps/c",
        ),
    ],
)
def test_missing_reference_names_release_and_field(
    reference: dict[str, Any],
    data: Mapping[tuple[str, str, str], Mapping[str, str]],
    fragment: str,
) -> None:
    hr = release({"valuesFrom": [{"kind": "ConfigMap", "name": "ok", "optional": True}, reference]})
    with pytest.raises(RenderError) as caught:
        compose_values(hr, store(data))
    assert fragment in caught.value.message
    assert caught.value.location.object == "HelmRelease apps/web"
    assert caught.value.location.field == "spec.valuesFrom[1]"


def test_invalid_secret_yaml_does_not_leak_its_content() -> None:
    hr = release({"valuesFrom": [{"kind": "Secret", "name": "s"}]})
    for broken in (f"password: [{SECRET_TEXT}", SECRET_TEXT, f"- {SECRET_TEXT}"):
        lookup = store({("Secret", "apps", "s"): {"values.yaml": broken}})
        with pytest.raises(RenderError) as caught:
            compose_values(hr, lookup)
        assert SECRET_TEXT not in str(caught.value)
        assert caught.value.location.field == "spec.valuesFrom[0]"


def test_inline_nulls_are_kept_for_helm_to_delete_defaults() -> None:
    hr = release({"valuesFrom": [{"kind": "ConfigMap", "name": "c"}], "values": {"a": {"b": None}}})
    lookup = store({("ConfigMap", "apps", "c"): {"values.yaml": "a: {b: 1, c: 2}"}})
    assert compose_values(hr, lookup) == {"a": {"b": None, "c": 2}}


def test_compose_does_not_change_the_release() -> None:
    hr = release({"values": {"a": {"b": 1}}})
    values = compose_values(hr, store({}))
    values["a"]["b"] = 2
    assert hr.spec.values == {"a": {"b": 1}}


def test_digest_follows_values_not_key_order() -> None:
    first = values_digest({"a": 1, "b": {"c": [1, 2], "d": "é"}})
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first)
    assert values_digest({"b": {"d": "é", "c": [1, 2]}, "a": 1}) == first
    assert values_digest({"a": 1, "b": {"c": [2, 1], "d": "é"}}) != first
    assert values_digest({"a": "1", "b": {"c": [1, 2], "d": "é"}}) != first
