from __future__ import annotations

from typing import Any

import pytest
from api_samples import KIND_NAMES, sample, seed_external_secret

from gitmoor.api import KINDS, parse_resource
from gitmoor.api.notification import Alert, Provider, Receiver
from gitmoor.api.secrets import ClusterSecretStore, ExternalSecret, PushSecret, SecretStore
from gitmoor.api.source import Bucket, HelmChart
from gitmoor.errors import ManifestError


def _parse(document: dict[str, Any]) -> Any:
    return parse_resource(document, file="repo/apps.yaml", index=2)


def _error(document: dict[str, Any]) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        _parse(document)
    return caught.value


def test_every_kind_has_a_sample() -> None:
    assert sorted(KIND_NAMES) == sorted(kind.KIND for kind in KINDS)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_samples_parse_and_write_back_unchanged(kind: str) -> None:
    document = sample(kind)
    resource = _parse(document)
    assert type(resource).KIND == kind
    # camelCase aliases must match the wire names exactly, or fields would be renamed.
    assert resource.to_dict() == document


def test_seed_external_secret_v1beta1_is_read_as_v1() -> None:
    secret = _parse(seed_external_secret())
    assert isinstance(secret, ExternalSecret)
    assert secret.api_version == "external-secrets.io/v1"
    assert secret.display == "ExternalSecret my-app/app-credentials"
    assert secret.spec.refresh_interval == "1h"
    store = secret.spec.secret_store_ref
    assert store is not None
    assert (store.name, store.kind) == ("vault-backend", "ClusterSecretStore")
    assert secret.target_name == "app-credentials"
    [entry] = secret.spec.data or []
    assert entry.secret_key == "DATABASE_URL"
    assert entry.remote_ref.key == "secret/data/my-app"
    assert entry.remote_ref.property == "database_url"


def test_external_secret_target_defaults_to_its_own_name() -> None:
    document = seed_external_secret()
    del document["spec"]["target"]
    assert _parse(document).target_name == "app-credentials"


def test_unknown_field_names_file_object_and_field() -> None:
    document = seed_external_secret()
    document["spec"]["data"][0]["remoteRef"]["proprety"] = "database_url"
    error = _error(document)
    assert error.location.file == "repo/apps.yaml"
    assert error.location.document == 2
    assert error.location.object == "ExternalSecret my-app/app-credentials"
    assert error.location.field == "spec.data[0].remoteRef.proprety"
    assert error.message == "unknown field"


def test_wrong_version_lists_the_supported_ones() -> None:
    document = seed_external_secret()
    document["apiVersion"] = "external-secrets.io/v1alpha1"
    error = _error(document)
    assert error.location.field == "apiVersion"
    assert "v1, v1beta1" in error.message


def test_unknown_kind_in_a_known_group() -> None:
    document = sample("Receiver")
    document["kind"] = "Reciever"
    error = _error(document)
    assert error.location.field == "kind"
    assert "Alert" in error.message
    assert "Receiver" in error.message


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("ExternalSecret", ("spec", "target", "creationPolicy"), "Forever"),
        ("ExternalSecret", ("spec", "refreshInterval"), "1hour"),
        ("ExternalSecret", ("spec", "secretStoreRef", "kind"), "Vault"),
        ("ExternalSecret", ("spec", "data", 0, "remoteRef", "decodingStrategy"), "hex"),
        ("ClusterSecretStore", ("spec", "provider", "vault", "version"), "v3"),
        ("Receiver", ("spec", "type"), "bitbucket-cloud"),
        ("Receiver", ("spec", "resources", 0, "kind"), "Deployment"),
        ("Alert", ("spec", "eventSeverity"), "warning"),
        ("Alert", ("spec", "summary"), "x" * 256),
        ("Provider", ("spec", "type"), "email"),
        ("Provider", ("spec", "proxy"), "proxy.internal:3128"),
        ("HelmChart", ("spec", "sourceRef", "kind"), "OCIRepository"),
        ("Bucket", ("spec", "interval"), "5 minutes"),
        ("PushSecret", ("spec", "updatePolicy"), "Always"),
    ],
)
def test_bad_values_are_refused_at_their_field(
    kind: str, path: tuple[str | int, ...], value: str
) -> None:
    document = sample(kind)
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    error = _error(document)
    expected = ".".join(str(p) for p in path).replace(".0.", "[0].")
    assert error.location.field == expected
    assert value not in str(error)  # values are never echoed: they may be secret


def test_refresh_interval_zero_means_once() -> None:
    document = seed_external_secret()
    document["spec"]["refreshInterval"] = "0"
    assert _parse(document).spec.refresh_interval == "0"


def test_cluster_secret_store_is_cluster_scoped_with_vault_modelled() -> None:
    store = _parse(sample("ClusterSecretStore"))
    assert isinstance(store, ClusterSecretStore)
    assert not ClusterSecretStore.NAMESPACED
    assert SecretStore.NAMESPACED
    assert store.display == "ClusterSecretStore vault-backend"
    provider = store.spec.provider
    assert provider.name == "vault"
    assert provider.vault is not None
    assert provider.vault.server == "https://vault.vault.svc:8200"
    auth = provider.vault.auth
    assert auth is not None
    assert auth.kubernetes is not None
    assert auth.kubernetes.role == "external-secrets"


def test_vault_auth_fields_are_checked() -> None:
    document = sample("ClusterSecretStore")
    document["spec"]["provider"]["vault"]["auth"] = {"appRole": {"roleId": "r"}}
    error = _error(document)
    assert error.location.field == "spec.provider.vault.auth.appRole.secretRef"


def test_other_providers_are_kept_as_given() -> None:
    store = _parse(sample("SecretStore"))
    assert store.spec.provider.name == "aws"
    assert store.spec.provider.to_dict()["aws"]["region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"valut": {"server": "http://vault:8200"}}, "unknown provider 'valut'"),
        ({}, "exactly one provider must be set, found 0"),
        ({"aws": {}, "gcpsm": {}}, "exactly one provider must be set, found 2"),
    ],
)
def test_a_store_has_exactly_one_known_provider(provider: dict[str, Any], message: str) -> None:
    document = sample("SecretStore")
    document["spec"]["provider"] = provider
    error = _error(document)
    assert error.location.field == "spec.provider"
    assert message in error.message


def test_receiver_v1beta2_is_read_as_v1() -> None:
    document = sample("Receiver")
    document["apiVersion"] = "notification.toolkit.fluxcd.io/v1beta2"
    receiver = _parse(document)
    assert isinstance(receiver, Receiver)
    assert receiver.api_version == "notification.toolkit.fluxcd.io/v1"
    assert [r.kind for r in receiver.spec.resources] == ["GitRepository", "Kustomization"]


def test_receiver_oidc_providers_use_flux_field_names() -> None:
    document = sample("Receiver")
    document["spec"] = {
        "type": "generic-oidc",
        "resources": [{"kind": "GitRepository", "name": "flux-system"}],
        "oidcProviders": [
            {
                "issuerURL": "https://token.actions.githubusercontent.com",
                "validations": [
                    {"expression": "claims.repository_owner == 'me'", "message": "owner"}
                ],
            }
        ],
    }
    receiver = _parse(document)
    assert receiver.to_dict()["spec"] == document["spec"]
    document["spec"]["oidcProviders"][0]["validations"] = []
    assert _error(document).location.field == "spec.oidcProviders[0].validations"


@pytest.mark.parametrize("kind", ["Alert", "Provider"])
def test_alert_and_provider_v1beta2_are_read_as_v1beta3(kind: str) -> None:
    document = sample(kind)
    document["apiVersion"] = "notification.toolkit.fluxcd.io/v1beta2"
    resource = _parse(document)
    assert isinstance(resource, (Alert, Provider))
    assert resource.api_version == "notification.toolkit.fluxcd.io/v1beta3"


def test_alert_v1_does_not_exist_yet() -> None:
    document = sample("Alert")
    document["apiVersion"] = "notification.toolkit.fluxcd.io/v1"
    assert _error(document).location.field == "apiVersion"


def test_bucket_v1beta2_drops_access_from() -> None:
    document = sample("Bucket")
    document["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2"
    document["spec"]["accessFrom"] = {"namespaceSelectors": [{"matchLabels": {"a": "b"}}]}
    bucket = _parse(document)
    assert isinstance(bucket, Bucket)
    assert bucket.api_version == "source.toolkit.fluxcd.io/v1"
    assert "accessFrom" not in bucket.to_dict()["spec"]


def test_helm_chart_keeps_access_from_in_v1() -> None:
    document = sample("HelmChart")
    document["spec"]["accessFrom"] = {"namespaceSelectors": []}
    chart = _parse(document)
    assert isinstance(chart, HelmChart)
    assert chart.spec.access_from == {"namespaceSelectors": []}


def test_push_secret_is_v1alpha1() -> None:
    push = _parse(sample("PushSecret"))
    assert isinstance(push, PushSecret)
    [entry] = push.spec.data or []
    assert entry.match.remote_ref.remote_key == "certs/my-app"
