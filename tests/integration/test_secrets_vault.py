"""The Vault provider against a real OpenBao dev server, with stores' credentials in a real
sandbox: token, AppRole and Kubernetes auth (ServiceAccount tokens from the TokenRequest
API, checked by OpenBao through the sandbox's TokenReview API), KV v2 and v1, versions,
nested properties, extract and find, Vault namespaces, TLS with a CA bundle, kept clients,
and errors that say what failed without a credential or a value in them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import hvac  # type: ignore[import-untyped]
import pytest

from gitmoor.api.secrets import ClusterSecretStore, ExternalSecretFind, RemoteRef, SecretStore
from gitmoor.cluster import Cluster
from gitmoor.secrets import devserver
from gitmoor.secrets.errors import (
    InvalidStoreError,
    MissingPropertyError,
    ProviderError,
    SecretNotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from gitmoor.secrets.stores import StoreClients

if TYPE_CHECKING:
    from openbao_fixtures import TlsServer
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures", "openbao_fixtures"]
pytestmark = pytest.mark.integration

NS = "apps"
KV1 = "kv1"  # the KV v1 mount the openbao fixture adds


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from sandbox_fixtures import Sandbox as SandboxServer

    server = SandboxServer(tmp_path_factory.mktemp("sandbox"))
    server.start()
    server.kubectl("create", "namespace", NS)
    yield server
    server.stop()


@pytest.fixture
async def clients(cluster_server: Sandbox) -> AsyncIterator[StoreClients]:
    cluster = Cluster.connect(cluster_server.kubeconfig)
    try:
        yield StoreClients(cluster)
    finally:
        await cluster.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def put_secret(clients: StoreClients, name: str, data: dict[str, str]) -> None:
    await clients.cluster.apply({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }, force=True)  # fmt: skip


def store(vault: dict[str, Any], *, kind: str = "SecretStore", name: str = "vault") -> Any:
    body = {
        "apiVersion": "external-secrets.io/v1",
        "kind": kind,
        "metadata": {"name": name, **({"namespace": NS} if kind == "SecretStore" else {})},
        "spec": {"provider": {"vault": vault}},
    }
    model = SecretStore if kind == "SecretStore" else ClusterSecretStore
    return model.model_validate(body)


async def token_store(clients: StoreClients, server: str, token: str, **vault: Any) -> Any:
    name = unique("token")
    await put_secret(clients, name, {"token": token})
    return store({"server": server, "path": "secret", "version": "v2",
                  "auth": {"tokenSecretRef": {"name": name, "key": "token"}}, **vault})  # fmt: skip


def write(openbao: devserver.DevServer, path: str, data: dict[str, Any]) -> None:
    openbao.client().secrets.kv.v2.create_or_update_secret(path=path, secret=data)


async def value(clients: StoreClients, model: Any, **ref: Any) -> bytes:
    found: bytes = await clients.run(
        model, NS, lambda c: c.get_value(RemoteRef.model_validate(ref))
    )
    return found


async def test_token_auth_reads_kv2_values_versions_and_nested_properties(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    path = unique("app")
    write(openbao, path, {"url": "v1-url", "nested": {"port": 5432, "tags": ["a", "b"]}})
    write(openbao, path, {"url": "v2-url", "nested": {"port": 5433, "tags": ["a", "b"]}})
    model = await token_store(clients, openbao.address, openbao.root_token)
    assert await clients.validate(model)
    assert await value(clients, model, key=path, property="url") == b"v2-url"
    assert await value(clients, model, key=f"secret/data/{path}", property="url") == b"v2-url"
    assert await value(clients, model, key=path, property="url", version="1") == b"v1-url"
    assert await value(clients, model, key=path, property="nested.port") == b"5433"
    assert await value(clients, model, key=path, property="nested.tags.1") == b"b"
    assert await value(clients, model, key=path, property="nested") == (
        b'{"port":5433,"tags":["a","b"]}'
    )
    whole = await value(clients, model, key=path)
    assert whole == b'{"nested":{"port":5433,"tags":["a","b"]},"url":"v2-url"}'
    extracted = await clients.run(model, NS, lambda c: c.get_map(RemoteRef(key=path)))
    assert extracted == {"url": b"v2-url", "nested": b'{"port":5433,"tags":["a","b"]}'}


async def test_a_kept_client_is_reused_until_the_credentials_change(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    model = await token_store(clients, openbao.address, openbao.root_token)
    first = await clients.client(model, NS)
    assert await clients.client(model, NS) is first
    token_secret = model.spec.provider.vault.auth.token_secret_ref.name
    other = openbao.client().auth.token.create(policies=["root"])["auth"]["client_token"]
    await put_secret(clients, token_secret, {"token": other})
    assert await clients.client(model, NS) is not first


async def test_approle_logs_in_with_a_role_id_or_a_role_ref(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    root = openbao.client()
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(
        "read-secret", 'path "secret/data/*" { capabilities = ["read"] }'
    )
    role = unique("role")
    root.auth.approle.create_or_update_approle(
        role, token_policies=["read-secret"], token_ttl="10m"
    )
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    path = unique("approle-app")
    write(openbao, path, {"password": "from-approle"})
    name = unique("approle")
    await put_secret(clients, name, {"secret-id": secret_id, "role-id": role_id})
    for app_role in (
        {"roleId": role_id, "secretRef": {"name": name, "key": "secret-id"}},
        {
            "roleRef": {"name": name, "key": "role-id"},
            "secretRef": {"name": name, "key": "secret-id"},
        },
    ):
        model = store({"server": openbao.address, "path": "secret", "version": "v2",
                       "auth": {"appRole": app_role}}, name=unique("store"))  # fmt: skip
        assert await clients.validate(model)
        assert await value(clients, model, key=path, property="password") == b"from-approle"
    wrong = store({"server": openbao.address, "path": "secret", "auth": {"appRole": {
        "roleId": role_id, "secretRef": {"name": name, "key": "role-id"}}}})  # fmt: skip
    with pytest.raises(UnauthorizedError) as caught:
        await clients.validate(wrong)
    assert "AppRole" in str(caught.value)
    assert role_id not in str(caught.value)
    assert secret_id not in str(caught.value)


async def test_kubernetes_auth_with_a_token_request_or_a_token_in_a_secret(
    openbao: devserver.DevServer, clients: StoreClients, cluster_server: Sandbox
) -> None:
    target = devserver.KubernetesTarget(
        cluster_server.url, cluster_server.ca_cert.read_text(), cluster_server.token
    )
    devserver.enable_kubernetes_auth(openbao, target)
    root = openbao.client()
    root.sys.create_or_update_policy(
        "read-secret", 'path "secret/data/*" { capabilities = ["read"] }'
    )
    account = unique("reader")
    cluster_server.kubectl("create", "serviceaccount", account, "-n", NS)
    root.write(f"auth/kubernetes/role/{account}", bound_service_account_names=[account],
               bound_service_account_namespaces=[NS], token_policies=["read-secret"])  # fmt: skip
    path = unique("k8s-app")
    write(openbao, path, {"password": "from-kubernetes"})
    requested = store({"server": openbao.address, "path": "secret", "version": "v2", "auth": {
        "kubernetes": {"role": account, "serviceAccountRef": {"name": account}}}})  # fmt: skip
    assert await clients.validate(requested)
    assert await value(clients, requested, key=path, property="password") == b"from-kubernetes"

    jwt = cluster_server.kubectl("create", "token", account, "-n", NS).stdout.strip()
    name = unique("jwt")
    await put_secret(clients, name, {"token": jwt})
    from_secret = store({"server": openbao.address, "path": "secret", "auth": {
        "kubernetes": {"role": account, "secretRef": {"name": name}}}},
        name="from-secret")  # fmt: skip
    assert await value(clients, from_secret, key=path, property="password") == b"from-kubernetes"

    stranger = unique("stranger")
    cluster_server.kubectl("create", "serviceaccount", stranger, "-n", NS)
    refused = store({"server": openbao.address, "path": "secret", "auth": {
        "kubernetes": {"role": account, "serviceAccountRef": {"name": stranger}}}},
        name="refused")  # fmt: skip
    with pytest.raises(UnauthorizedError, match="Kubernetes auth"):
        await clients.validate(refused)
    missing = store({"server": openbao.address, "path": "secret", "auth": {
        "kubernetes": {"role": account, "serviceAccountRef": {"name": "nobody"}}}},
        name="missing")  # fmt: skip
    with pytest.raises(InvalidStoreError, match="ServiceAccount apps/nobody not found"):
        await clients.validate(missing)


async def test_kv1_stores_read_without_a_data_segment(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    path = unique("legacy")
    openbao.client().secrets.kv.v1.create_or_update_secret(
        path=path, secret={"user": "u1"}, mount_point=KV1
    )
    model = await token_store(clients, openbao.address, openbao.root_token, path=KV1, version="v1")
    assert await clients.validate(model)
    assert await value(clients, model, key=path, property="user") == b"u1"
    assert await value(clients, model, key=f"{KV1}/{path}", property="user") == b"u1"
    wrong_version = await token_store(clients, openbao.address, openbao.root_token, version="v1")
    with pytest.raises(InvalidStoreError, match="mount 'secret' is KV v2, the store says v1"):
        await clients.validate(wrong_version)


async def test_find_by_name_and_by_tags(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    team = unique("team")
    write(openbao, f"{team}/db", {"password": "p1"})
    write(openbao, f"{team}/nested/cache", {"password": "p2"})
    write(openbao, f"{team}/other", {"password": "p3"})
    openbao.client().secrets.kv.v2.update_metadata(
        path=f"{team}/other", custom_metadata={"owner": "blue"}
    )
    model = await token_store(clients, openbao.address, openbao.root_token)
    by_name = ExternalSecretFind.model_validate({"path": team, "name": {"regexp": "(db|cache)$"}})
    found = await clients.run(model, NS, lambda c: c.find(by_name))
    assert found == {
        f"{team}/db": b'{"password":"p1"}',
        f"{team}/nested/cache": b'{"password":"p2"}',
    }
    by_tag = ExternalSecretFind.model_validate({"path": team, "tags": {"owner": "blue"}})
    assert await clients.run(model, NS, lambda c: c.find(by_tag)) == {
        f"{team}/other": b'{"password":"p3"}'
    }
    nothing = ExternalSecretFind.model_validate({"path": unique("empty")})
    with pytest.raises(SecretNotFoundError, match="nothing stored under"):
        await clients.run(model, NS, lambda c: c.find(nothing))


async def test_vault_namespaces(openbao: devserver.DevServer, clients: StoreClients) -> None:
    space = unique("ns")
    root = openbao.client()
    root.sys.create_namespace(space)
    inside = hvac.Client(url=openbao.address, token=openbao.root_token, namespace=space)
    inside.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    inside.secrets.kv.v2.create_or_update_secret(path="app", secret={"where": "inside"})
    model = await token_store(clients, openbao.address, openbao.root_token, namespace=space)
    assert await clients.validate(model)
    assert await value(clients, model, key="app", property="where") == b"inside"


async def test_tls_with_a_ca_bundle_or_a_ca_provider(
    openbao_tls: TlsServer, clients: StoreClients
) -> None:
    openbao_tls.client().secrets.kv.v2.create_or_update_secret(
        path="tls-app", secret={"over": "https"}
    )
    bundle = base64.b64encode(openbao_tls.ca_pem.encode()).decode()
    model = await token_store(clients, openbao_tls.address, openbao_tls.token, caBundle=bundle)
    assert await clients.validate(model)
    assert await value(clients, model, key="tls-app", property="over") == b"https"

    await clients.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "vault-ca", "namespace": NS},
                                 "data": {"ca.crt": openbao_tls.ca_pem}}, force=True)  # fmt: skip
    provided = await token_store(clients, openbao_tls.address, openbao_tls.token,
                                 caProvider={"type": "ConfigMap", "name": "vault-ca"})  # fmt: skip
    assert await value(clients, provided, key="tls-app", property="over") == b"https"

    untrusted = await token_store(clients, openbao_tls.address, openbao_tls.token)
    with pytest.raises(UnavailableError, match="cannot be reached"):
        await clients.validate(untrusted)


async def test_errors_say_what_failed_without_credentials_or_values(
    openbao: devserver.DevServer, clients: StoreClients
) -> None:
    path = unique("guarded")
    secret_value = "v@lue-that-must-not-leak"
    write(openbao, path, {"password": secret_value})
    wrong_token = "hvs.not-a-token-that-exists"
    wrong = await token_store(clients, openbao.address, wrong_token)
    with pytest.raises(UnauthorizedError) as refused:
        await clients.validate(wrong)
    assert "permission denied" in str(refused.value)

    model = await token_store(clients, openbao.address, openbao.root_token)
    with pytest.raises(SecretNotFoundError) as missing:
        await value(clients, model, key=unique("nothing-here"), property="password")
    with pytest.raises(MissingPropertyError) as no_property:
        await value(clients, model, key=path, property="passwd")
    assert f"property 'passwd' not found in secret '{path}'" in str(no_property.value)

    from sandbox_fixtures import free_port

    down = await token_store(clients, f"http://127.0.0.1:{free_port()}", openbao.root_token)
    with pytest.raises(UnavailableError) as unreachable:
        await clients.validate(down)
    assert "cannot be reached" in str(unreachable.value)

    no_mount = await token_store(clients, openbao.address, openbao.root_token, path="nomount")
    with pytest.raises(ProviderError, match="mount 'nomount' does not exist"):
        await clients.validate(no_mount)

    no_secret = store({"server": openbao.address,
                       "auth": {"tokenSecretRef": {"name": "absent", "key": "token"}}})  # fmt: skip
    with pytest.raises(InvalidStoreError, match="Secret apps/absent not found"):
        await clients.validate(no_secret)
    aws = SecretStore.model_validate({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "aws", "namespace": NS}, "spec": {"provider": {"aws": {}}},
    })  # fmt: skip
    with pytest.raises(InvalidStoreError, match="provider 'aws' is not supported"):
        await clients.validate(aws)

    for error in (refused, missing, no_property, unreachable):
        text = str(error.value)
        assert wrong_token not in text
        assert openbao.root_token not in text
        assert secret_value not in text
