"""The pure parts of syncing secrets: KV paths and values as External Secrets reads them,
key conversion, rewrites and decoding, the Secret written, and when to refresh."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest

from gitmoor.api.secrets import ExternalSecret, ExternalSecretRewrite, LabelSelector
from gitmoor.controllers.externalsecret import (
    resource_version,
    selects,
    time_to_refresh,
)
from gitmoor.secrets.errors import InvalidSpecError, MissingPropertyError
from gitmoor.secrets.fetch import convert_keys, decode, rewrite
from gitmoor.secrets.target import DATA_HASH, MANAGED_LABEL, desired_secret, in_sync
from gitmoor.secrets.vault import data_path, go_json, metadata_path, scrub, select, value_bytes

NOW = 1_800_000_000.0
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SECRET = "s3cr3t-value-never-printed"


@pytest.mark.parametrize(
    ("key", "mount", "version", "expected"),
    [
        ("my-app", "secret", "v2", "secret/data/my-app"),
        ("secret/my-app", "secret", "v2", "secret/data/my-app"),
        ("secret/data/my-app", "secret", "v2", "secret/data/my-app"),
        ("team/app", "secret", "v2", "secret/data/team/app"),
        ("app", "kv1", "v1", "kv1/app"),
        ("kv1/app", "kv1", "v1", "kv1/app"),
        ("secret/data/my-app", None, "v2", "secret/data/my-app"),
        ("secret/my-app", None, "v2", "secret/data/my-app"),
        ("kv1/app", None, "v1", "kv1/app"),
    ],
)
def test_data_paths_are_built_as_external_secrets_builds_them(
    key: str, mount: str | None, version: Any, expected: str
) -> None:
    assert data_path(key, mount, version) == expected


def test_metadata_paths() -> None:
    assert metadata_path("team/", "secret", "v2") == "secret/metadata/team/"
    assert metadata_path("secret/data/app", "secret", "v2") == "secret/metadata/app"
    assert metadata_path("secret/data/app", None, "v2") == "secret/metadata/app"
    assert metadata_path("", "kv1", "v1") == "kv1/"
    with pytest.raises(InvalidSpecError, match="not a KV v2 path"):
        metadata_path("secret/app", None, "v2")


DATA = {
    "database_url": "postgres://db",
    "port": 5432,
    "ratio": 0.25,
    "big": 1e20,
    "enabled": True,
    "nothing": None,
    "nested": {"b": [1, {"c": "deep"}], "a": "<&>"},
    "dotted.key": "as is",
}


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ("database_url", b"postgres://db"),
        ("port", b"5432"),
        ("ratio", b"0.25"),
        ("big", b"100000000000000000000"),
        ("enabled", b"true"),
        ("nothing", b""),
        ("dotted.key", b"as is"),
        ("nested.a", b"<&>"),
        ("nested.b.1.c", b"deep"),
        ("nested", b'{"a":"\\u003c\\u0026\\u003e","b":[1,{"c":"deep"}]}'),
    ],
)
def test_properties_select_values_like_gjson(prop: str, expected: bytes) -> None:
    assert select(DATA, prop, key="secret/data/app") == expected


def test_no_property_gives_the_whole_secret_as_go_json() -> None:
    whole = select({"b": "2", "a": "1"}, None, key="k")
    assert whole == b'{"a":"1","b":"2"}'


def test_a_missing_property_names_property_and_key_only() -> None:
    with pytest.raises(MissingPropertyError) as caught:
        select({"password": SECRET}, "passwd", key="secret/data/app")
    assert "property 'passwd' not found in secret 'secret/data/app'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_value_bytes_and_go_json_escape_as_go_does() -> None:
    assert value_bytes(["x", 1]) == b'["x",1]'
    assert go_json({"k": "a\u2028b"}) == '{"k":"a\\u2028b"}'


def test_scrub_removes_credentials_and_their_base64() -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    text = scrub(f"denied for {SECRET} ({encoded})", (SECRET, "ab"))
    assert SECRET not in text
    assert encoded not in text
    assert text == "denied for *** (***)"


def test_keys_are_converted_for_secrets() -> None:
    values = {"team/db.url": b"1", "api key": b"2"}
    assert convert_keys(values, None, "f") == {"team_db.url": b"1", "api_key": b"2"}
    assert convert_keys(values, "Unicode", "f") == {
        "team_U002f_db.url": b"1",
        "api_U0020_key": b"2",
    }
    with pytest.raises(InvalidSpecError, match="collide"):
        convert_keys({"a/b": b"1", "a_b": b"2"}, "Default", "f")


def test_rewrites_use_gos_replacement_syntax_and_templates() -> None:
    steps = [
        ExternalSecretRewrite.model_validate(
            {"regexp": {"source": "^team/(.*)$", "target": "${1}_$1"}}
        ),
        ExternalSecretRewrite.model_validate({"transform": {"template": "{{ .value | upper }}"}}),
    ]
    assert rewrite({"team/db": b"v"}, steps, "spec.dataFrom[0].rewrite") == {"DB_DB": b"v"}


@pytest.mark.parametrize(
    ("value", "strategy", "expected"),
    [
        (b"aGVsbG8=", "Base64", b"hello"),
        (b"aGk_Pz8-", "Base64URL", b"hi???>"),
        (b"aGVsbG8", "Auto", b"hello"),
        (b"not base64!", "Auto", b"not base64!"),
        (b"aGVsbG8=", "None", b"aGVsbG8="),
        (b"aGVsbG8=", None, b"aGVsbG8="),
    ],
)
def test_decoding_strategies(value: bytes, strategy: str | None, expected: bytes) -> None:
    assert decode(value, strategy, "spec.data[0].remoteRef") == expected


def test_a_value_that_does_not_decode_is_an_error_without_the_value() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        decode(SECRET.encode(), "Base64", "spec.data[0].remoteRef")
    assert SECRET not in str(caught.value)


# --- the Secret written ----------------------------------------------------------------------


def external_secret(**spec: Any) -> ExternalSecret:
    return ExternalSecret.model_validate(
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {
                "name": "app", "namespace": "apps", "labels": {"team": "a"},
                "annotations": {"note": "n", LAST_APPLIED: "{}"},
            },
            "spec": {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"}, **spec},
        }
    )  # fmt: skip


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in secret["data"].items()}


def test_without_a_template_the_values_and_the_metadata_are_copied() -> None:
    secret = desired_secret(external_secret(), {"URL": b"u"}, owner_uid="uid-1")
    assert decoded(secret) == {"URL": b"u"}
    assert secret["type"] == "Opaque"
    meta = secret["metadata"]
    assert meta["labels"] == {"team": "a", MANAGED_LABEL: "true"}
    assert set(meta["annotations"]) == {"note", DATA_HASH}
    assert meta["ownerReferences"] == [
        {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "app",
         "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}
    ]  # fmt: skip
    assert in_sync(secret)


def test_a_template_makes_type_metadata_and_data() -> None:
    es = external_secret(target={"name": "creds", "template": {
        "type": "kubernetes.io/basic-auth",
        "metadata": {"labels": {"user": "{{ .user }}"}},
        "data": {"username": "{{ .user }}", "password": "{{ .pw | upper }}"},
    }})  # fmt: skip
    secret = desired_secret(es, {"user": b"bob", "pw": b"x"}, owner_uid=None)
    assert secret["metadata"]["name"] == "creds"
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["metadata"]["labels"] == {"user": "bob", MANAGED_LABEL: "true"}
    assert decoded(secret) == {"username": b"bob", "password": b"X"}
    assert "ownerReferences" not in secret["metadata"]


def test_merge_policy_keeps_the_fetched_values_beside_the_template() -> None:
    es = external_secret(target={"template": {"mergePolicy": "Merge", "data": {"b": "{{ .a }}!"}}})
    assert decoded(desired_secret(es, {"a": b"1"}, owner_uid=None)) == {"a": b"1", "b": b"1!"}


def test_a_secret_edited_by_hand_is_not_in_sync() -> None:
    secret = desired_secret(external_secret(), {"URL": b"u"}, owner_uid=None)
    secret["data"]["URL"] = base64.b64encode(b"changed").decode()
    assert not in_sync(secret)
    assert not in_sync(None)


def test_template_from_is_refused() -> None:
    es = external_secret(target={"template": {"templateFrom": [{"literal": "x"}]}})
    with pytest.raises(InvalidSpecError, match="templateFrom"):
        desired_secret(es, {}, owner_uid=None)


# --- when to refresh -------------------------------------------------------------------------


def live(es: ExternalSecret, *, ready: bool, refreshed: str | None, synced: bool) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(es.model_dump_json(by_alias=True, exclude_none=True))
    obj["metadata"]["generation"] = 1
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]
    }
    if refreshed:
        status["refreshTime"] = refreshed
    if synced:
        status["syncedResourceVersion"] = resource_version(obj)
    obj["status"] = status
    return obj


IN_SYNC = desired_secret(external_secret(), {"k": b"v"}, owner_uid=None)
TEN_MINUTES_AGO = "2027-01-15T07:50:00Z"  # NOW is 2027-01-15T08:00:00Z


def test_a_synced_secret_waits_for_the_rest_of_its_interval() -> None:
    es = external_secret(refreshInterval="1h")
    obj = live(es, ready=True, refreshed=TEN_MINUTES_AGO, synced=True)
    assert time_to_refresh(obj, es, IN_SYNC, now=NOW) == pytest.approx(3000.0)
    assert time_to_refresh(obj, es, IN_SYNC, now=NOW + 3600) == 0.0


@pytest.mark.parametrize(
    ("ready", "synced", "secret"),
    [
        (False, True, IN_SYNC),  # the last attempt failed
        (True, False, IN_SYNC),  # the spec or metadata changed since
        (True, True, None),  # the Secret is gone
        (True, True, {**IN_SYNC, "data": {}}),  # the Secret was emptied by hand
    ],
)
def test_these_refresh_at_once(ready: bool, synced: bool, secret: dict[str, Any] | None) -> None:
    es = external_secret(refreshInterval="1h")
    obj = live(es, ready=ready, refreshed=TEN_MINUTES_AGO, synced=synced)
    assert time_to_refresh(obj, es, secret, now=NOW) == 0.0


def test_interval_zero_and_created_once_sync_only_once() -> None:
    for es in (external_secret(refreshInterval="0"), external_secret(refreshPolicy="CreatedOnce")):
        obj = live(es, ready=True, refreshed=TEN_MINUTES_AGO, synced=True)
        assert math.isinf(time_to_refresh(obj, es, IN_SYNC, now=NOW + 86400))
        fresh = live(es, ready=True, refreshed=None, synced=False)
        assert time_to_refresh(fresh, es, IN_SYNC, now=NOW) == 0.0


def test_label_selectors() -> None:
    selector = LabelSelector.model_validate(
        {"matchLabels": {"env": "prod"},
         "matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]},
                              {"key": "legacy", "operator": "DoesNotExist"}]}
    )  # fmt: skip
    assert selects(selector, {"env": "prod", "team": "a"})
    assert not selects(selector, {"env": "prod", "team": "c"})
    assert not selects(selector, {"env": "prod", "team": "a", "legacy": "1"})
