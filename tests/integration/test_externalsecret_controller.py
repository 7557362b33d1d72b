"""The SecretStore, ClusterSecretStore and ExternalSecret controllers on the sandbox, against
a real OpenBao dev server: the example's ExternalSecret becomes its Secret, rotation in
OpenBao reaches it, token, AppRole and Kubernetes auth each sync, failures say why and leave
the Secret alone, creation and deletion policies, templates, dataFrom, a Secret deleted or
edited by hand comes back, and no secret value or credential shows in a log line, an
Event, a status or a metric."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.context import Context
from gitmoor.controllers.run import build_manager, install_crds
from gitmoor.demo.homelab import HOMELAB_DIR
from gitmoor.manifests import load_all
from gitmoor.render.substitute import envsubst
from gitmoor.secrets import devserver

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures", "openbao_fixtures"]
pytestmark = pytest.mark.integration

ES = "external-secrets.io/v1"
APP_NS = "my-app"
TOKEN_NS, TOKEN_SECRET = devserver.TOKEN_SECRET
EXAMPLE = HOMELAB_DIR / "apps" / "my-app"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.2)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Running:
    cluster: Cluster
    context: Context
    openbao: devserver.DevServer
    caplog: pytest.LogCaptureFixture
    secrets: set[str] = field(default_factory=set)
    """Every secret value and credential the test used: none may show outside Secrets."""

    def write(self, path: str, data: dict[str, Any], mount: str = "secret") -> None:
        self.secrets.update(str(v) for v in data.values())
        self.openbao.client().secrets.kv.v2.create_or_update_secret(
            path=path, secret=data, mount_point=mount
        )

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.cluster.apply(obj, force=True)

    async def es(self, name: str, namespace: str = APP_NS) -> dict[str, Any]:
        found = await self.cluster.get(ES, "ExternalSecret", name, namespace)
        assert found is not None
        return found

    async def secret(self, name: str, namespace: str = APP_NS) -> dict[str, Any] | None:
        return await self.cluster.get("v1", "Secret", name, namespace)

    async def values(self, name: str, namespace: str = APP_NS) -> dict[str, str]:
        found = await self.secret(name, namespace)
        assert found is not None
        return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}

    async def ready(self, kind: str, name: str, namespace: str | None = APP_NS,
                    *, status: str = "True", reason: str | None = None,
                    message: str = "") -> dict[str, Any]:  # fmt: skip
        """The Ready condition, once it has ``status`` (and ``reason``, ``message`` in it)."""
        found: dict[str, Any] = {}
        seen: list[Any] = [None]

        async def done() -> bool:
            obj = await self.cluster.get(ES, kind, name, namespace)
            ready = conditions.find(((obj or {}).get("status") or {}).get("conditions"), "Ready")
            seen[0] = ready
            if ready is None or ready.get("status") != status:
                return False
            if (reason and ready.get("reason") != reason) or message not in ready.get(
                "message", ""
            ):
                return False
            found.update(ready)
            return True

        try:
            await eventually(done)
        except AssertionError:
            raise AssertionError(f"{kind} {name}: wanted Ready {status} {reason or ''} "
                                 f"{message!r}, last saw {seen[0]}") from None  # fmt: skip
        return found

    async def events(self, name: str, reason: str, namespace: str = APP_NS) -> list[dict[str, Any]]:
        return [
            e for e in await self.cluster.list("v1", "Event", namespace=namespace)
            if e["involvedObject"]["name"] == name and e["reason"] == reason
        ]  # fmt: skip

    async def assert_nothing_leaked(self) -> None:
        """No secret value or credential in any log line, Event, status or metric."""
        texts = [self.caplog.text, self.context.metrics.exposition().decode()]
        texts += [str(e) for e in await self.cluster.list("v1", "Event")]
        for kind in ("ExternalSecret", "SecretStore", "ClusterSecretStore"):
            texts += [str(o.get("status")) for o in await self.cluster.list(ES, kind)]
        for secret in self.secrets | {self.openbao.root_token}:
            for text in texts:
                assert secret not in text, "a secret value leaked"
                assert b64(secret) not in text, "a secret value leaked (base64)"


@pytest.fixture
async def running(
    sandbox: Sandbox, openbao: devserver.DevServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Running]:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster, external_secrets=True)
    for namespace in (APP_NS, TOKEN_NS):
        await cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    for obj in devserver.example_objects(openbao, []):
        await cluster.apply(obj, force=True)
    # The example's store, as the repository has it, pointed at the test's OpenBao.
    for path in ("cluster-secret-store.yaml", "namespace.yaml"):
        text = envsubst((EXAMPLE / path).read_text(), {"VAULT_ADDR": openbao.address})
        for obj in load_all(text, file=path):
            await cluster.apply(obj, force=True)
    manager, context = build_manager(cluster, cache_dir=tmp_path / "cache")
    task = asyncio.create_task(manager.run())
    state = Running(cluster, context, openbao, caplog)
    try:
        yield state
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cluster.close()


def external_secret(name: str, *, store: str = "vault-backend", kind: str = "ClusterSecretStore",
                    refresh: str = "1h", data: list[dict[str, Any]] | None = None,
                    **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": ES, "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": APP_NS},
        "spec": {"refreshInterval": refresh, "secretStoreRef": {"name": store, "kind": kind},
                 **({"data": data} if data is not None else {}), **spec},
    }  # fmt: skip


def entry(secret_key: str, key: str, prop: str | None = None) -> dict[str, Any]:
    return {
        "secretKey": secret_key,
        "remoteRef": {"key": key, **({"property": prop} if prop else {})},
    }


async def test_the_example_becomes_its_secret_and_rotation_reaches_it(running: Running) -> None:
    url = f"postgres://my-app:{uuid.uuid4().hex}@db:5432/app"
    running.write("my-app", {"database_url": url})
    for obj in load_all(
        (EXAMPLE / "external-secret.yaml").read_text(), file="external-secret.yaml"
    ):
        await running.apply(obj)
    await running.ready("ClusterSecretStore", "vault-backend", None, reason="Valid",
                        message="store validated")  # fmt: skip
    ready = await running.ready("ExternalSecret", "app-credentials", reason="SecretSynced")
    assert ready["message"] == "Secret was synced"
    assert await running.values("app-credentials") == {"DATABASE_URL": url}
    secret = await running.secret("app-credentials")
    assert secret is not None
    es = await running.es("app-credentials")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == es["metadata"]["uid"]
    assert secret["metadata"]["managedFields"][0]["manager"] == "external-secrets"
    assert es["status"]["binding"] == {"name": "app-credentials"}
    assert es["status"]["syncedResourceVersion"].startswith("1-")
    assert await running.events("app-credentials", "Created")

    # A short interval, then a new value in OpenBao reaches the Secret at the next refresh.
    es["spec"]["refreshInterval"] = "1s"
    await running.apply({"apiVersion": ES, "kind": "ExternalSecret",
                         "metadata": {"name": "app-credentials", "namespace": APP_NS},
                         "spec": es["spec"]})  # fmt: skip
    rotated = f"postgres://my-app:{uuid.uuid4().hex}@db:5432/app"
    running.write("my-app", {"database_url": rotated})

    async def rotated_in() -> bool:
        """the rotated value is in the Secret"""
        return (await running.values("app-credentials")).get("DATABASE_URL") == rotated

    await eventually(rotated_in)
    assert await running.events("app-credentials", "Updated")
    await running.assert_nothing_leaked()


async def test_token_approle_and_kubernetes_auth_each_sync(
    running: Running, sandbox: Sandbox
) -> None:
    root = running.openbao.client()
    root.sys.create_or_update_policy("app-read", 'path "secret/data/*" { capabilities = ["read"] }')
    path = unique("auth")
    running.write(path, {"password": uuid.uuid4().hex})
    # AppRole
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("app", token_policies=["app-read"])
    role_id = root.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    running.secrets.update({role_id, secret_id})
    # A SecretStore reads Secrets of its own namespace only.
    await running.apply({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "vault-creds", "namespace": APP_NS},
                         "data": {"secret-id": b64(secret_id),
                                  "token": b64(running.openbao.root_token)}})  # fmt: skip
    # Kubernetes: the sandbox's TokenReview checks the ServiceAccount tokens OpenBao gets.
    devserver.enable_kubernetes_auth(
        running.openbao,
        devserver.KubernetesTarget(sandbox.url, sandbox.ca_cert.read_text(), sandbox.token),
    )
    root.write("auth/kubernetes/role/app", bound_service_account_names=["app"],
               bound_service_account_namespaces=[APP_NS], token_policies=["app-read"])  # fmt: skip
    await running.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "app", "namespace": APP_NS}})  # fmt: skip
    auths = {
        "token": {"tokenSecretRef": {"name": "vault-creds", "key": "token"}},
        "approle": {"appRole": {"roleId": role_id,
                                "secretRef": {"name": "vault-creds", "key": "secret-id"}}},
        "kubernetes": {"kubernetes": {"role": "app", "serviceAccountRef": {"name": "app"}}},
    }  # fmt: skip
    for name, auth in auths.items():
        await running.apply({
            "apiVersion": ES, "kind": "SecretStore",
            "metadata": {"name": name, "namespace": APP_NS},
            "spec": {"provider": {"vault": {"server": running.openbao.address, "path": "secret",
                                            "version": "v2", "auth": auth}}},
        })  # fmt: skip
        data = [entry("password", path, "password")]
        await running.apply(external_secret(f"by-{name}", store=name, kind="SecretStore",
                                            data=data))  # fmt: skip
    for name in auths:
        await running.ready("SecretStore", name, reason="Valid")
        await running.ready("ExternalSecret", f"by-{name}", reason="SecretSynced")
        assert set(await running.values(f"by-{name}")) == {"password"}
    await running.assert_nothing_leaked()


async def test_failures_say_why_and_leave_the_secret_untouched(running: Running) -> None:
    path = unique("guarded")
    password = uuid.uuid4().hex
    running.write(path, {"password": password})
    await running.apply(external_secret("guarded", data=[entry("password", path, "password")]))
    await running.ready("ExternalSecret", "guarded", reason="SecretSynced")
    before = await running.secret("guarded")
    assert before is not None

    async def broken(change: dict[str, Any], message: str, store: str = "vault-backend") -> None:
        await running.apply(external_secret("guarded", store=store, **change))
        ready = await running.ready("ExternalSecret", "guarded", status="False",
                                    reason="SecretSyncedError", message=message)  # fmt: skip
        assert ready["message"].startswith("could not get secret data from provider")
        after = await running.secret("guarded")
        assert after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    await broken({"data": [entry("password", path, "passwd")]},
                 f"property 'passwd' not found in secret '{path}'")  # fmt: skip
    await broken({"data": [entry("password", f"{path}-gone", "password")]},
                 f"secret '{path}-gone' not found")  # fmt: skip

    wrong_token = f"hvs.{uuid.uuid4().hex}"
    running.secrets.add(wrong_token)
    await running.apply({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "wrong-token", "namespace": TOKEN_NS},
                         "data": {"token": b64(wrong_token)}})  # fmt: skip
    await running.apply({
        "apiVersion": ES, "kind": "ClusterSecretStore", "metadata": {"name": "wrong-token"},
        "spec": {"provider": {"vault": {"server": running.openbao.address, "path": "secret",
            "auth": {"tokenSecretRef": {"name": "wrong-token", "namespace": TOKEN_NS,
                                        "key": "token"}}}}},
    })  # fmt: skip
    store = await running.ready(
        "ClusterSecretStore", "wrong-token", None, status="False",
        reason="InvalidProviderConfig", message="permission denied",
    )  # fmt: skip
    assert store["message"].startswith("unable to create client")
    await broken({"data": [entry("password", path, "password")]},
                 "ClusterSecretStore wrong-token is not ready", store="wrong-token")  # fmt: skip

    # A server that goes away after the store was validated.
    gone = devserver.start(running.openbao.directory.parent / unique("short-lived"))
    running.secrets.add(gone.root_token)
    await running.apply({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "short-lived", "namespace": TOKEN_NS},
                         "data": {"token": b64(gone.root_token)}})  # fmt: skip
    await running.apply({
        "apiVersion": ES, "kind": "ClusterSecretStore", "metadata": {"name": "short-lived"},
        "spec": {"provider": {"vault": {"server": gone.address, "path": "secret",
            "auth": {"tokenSecretRef": {"name": "short-lived", "namespace": TOKEN_NS,
                                        "key": "token"}}}}},
    })  # fmt: skip
    await running.ready("ClusterSecretStore", "short-lived", None, reason="Valid")
    devserver.stop(gone.directory)
    await broken({"data": [entry("password", path, "password")]}, "cannot be reached",
                 store="short-lived")  # fmt: skip
    assert await running.events("guarded", "UpdateFailed")
    unreachable = await running.ready("ExternalSecret", "guarded", status="False")
    assert gone.address in unreachable["message"]
    await running.assert_nothing_leaked()


async def test_creation_policies_owner_orphan_and_none(running: Running) -> None:
    path = unique("policy")
    running.write(path, {"token": uuid.uuid4().hex})
    await running.apply(external_secret("owned", data=[entry("token", path, "token")]))
    for name, policy in (("orphan", "Orphan"), ("unwritten", "None")):
        await running.apply(external_secret(name, data=[entry("token", path, "token")],
                                            target={"creationPolicy": policy}))  # fmt: skip
    for name in ("owned", "orphan", "unwritten"):
        await running.ready("ExternalSecret", name, reason="SecretSynced")
    assert await running.secret("unwritten") is None
    orphan = await running.secret("orphan")
    assert orphan is not None
    assert "ownerReferences" not in orphan["metadata"]
    for name in ("owned", "orphan"):
        await running.cluster.delete(await running.es(name))

    async def owned_collected() -> bool:
        """the owned Secret was garbage-collected with its ExternalSecret"""
        return await running.secret("owned") is None

    await eventually(owned_collected)
    assert await running.secret("orphan") is not None
    await running.assert_nothing_leaked()


async def test_merge_into_an_existing_secret_only(running: Running) -> None:
    path = unique("merge")
    running.write(path, {"key": uuid.uuid4().hex})
    await running.apply(external_secret("merged", data=[entry("from-vault", path, "key")],
                                        target={"creationPolicy": "Merge"}))  # fmt: skip
    refused = "With creationPolicy=Merge the secret won't be created"
    await running.ready("ExternalSecret", "merged", status="False", message=refused)
    assert await running.secret("merged") is None
    await running.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": "merged", "namespace": APP_NS},
                         "data": {"own": b64("kept")}})  # fmt: skip
    await running.ready("ExternalSecret", "merged", reason="SecretSynced")
    values = await running.values("merged")
    assert values["own"] == "kept"
    assert set(values) == {"own", "from-vault"}
    await running.assert_nothing_leaked()


async def test_deletion_policy_delete_removes_the_secret_when_the_remote_is_gone(
    running: Running,
) -> None:
    path = unique("ephemeral")
    running.write(path, {"key": uuid.uuid4().hex})
    await running.apply(external_secret("ephemeral", refresh="1s",
                                        data=[entry("key", path, "key")],
                                        target={"deletionPolicy": "Delete"}))  # fmt: skip
    await running.ready("ExternalSecret", "ephemeral", reason="SecretSynced")
    running.openbao.client().secrets.kv.v2.delete_metadata_and_all_versions(path=path)
    await running.ready("ExternalSecret", "ephemeral", reason="SecretDeleted")
    assert await running.secret("ephemeral") is None
    assert await running.events("ephemeral", "Deleted")


async def test_a_secret_deleted_or_edited_by_hand_comes_back(running: Running) -> None:
    path = unique("restored")
    value = uuid.uuid4().hex
    running.write(path, {"key": value})
    await running.apply(external_secret("restored", data=[entry("key", path, "key")]))
    await running.ready("ExternalSecret", "restored", reason="SecretSynced")
    secret = await running.secret("restored")
    assert secret is not None
    await running.cluster.delete(secret)

    async def back() -> bool:
        """the Secret was put back"""
        found = await running.secret("restored")
        return found is not None and found["metadata"]["uid"] != secret["metadata"]["uid"]

    await eventually(back)
    assert await running.values("restored") == {"key": value}
    await running.cluster.patch(secret, {"data": {"key": b64("tampered")}})

    async def reverted() -> bool:
        """the hand edit was reverted"""
        return (await running.values("restored")).get("key") == value

    await eventually(reverted)
    await running.assert_nothing_leaked()


async def test_templates_extract_and_find(running: Running) -> None:
    base = unique("team")
    user, password = "svc", uuid.uuid4().hex
    running.write(f"{base}/db", {"user": user, "password": password})
    running.write(f"{base}/cache", {"url": "redis://cache"})
    await running.apply(external_secret(
        "templated",
        data=[entry("user", f"{base}/db", "user"), entry("password", f"{base}/db", "password")],
        target={"name": "db-auth", "template": {
            "type": "kubernetes.io/basic-auth",
            "metadata": {"labels": {"app": "db"}, "annotations": {"user": "{{ .user }}"}},
            "data": {"username": "{{ .user }}",
                     "dsn": "postgres://{{ .user }}:{{ .password }}@db/app",
                     "password": "{{ .password }}"},
        }},
    ))  # fmt: skip
    await running.apply(external_secret("extracted", dataFrom=[
        {"extract": {"key": f"{base}/db"}},
        {"find": {"path": base, "name": {"regexp": "cache$"}},
         "rewrite": [{"regexp": {"source": ".*/(.*)", "target": "found-$1"}}]},
    ]))  # fmt: skip
    await running.ready("ExternalSecret", "templated", reason="SecretSynced")
    secret = await running.secret("db-auth")
    assert secret is not None
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["metadata"]["labels"]["app"] == "db"
    assert secret["metadata"]["annotations"]["user"] == user
    assert await running.values("db-auth") == {
        "username": user, "password": password, "dsn": f"postgres://{user}:{password}@db/app",
    }  # fmt: skip
    await running.ready("ExternalSecret", "extracted", reason="SecretSynced")
    assert await running.values("extracted") == {
        "user": user, "password": password, "found-cache": '{"url":"redis://cache"}',
    }  # fmt: skip
    await running.assert_nothing_leaked()
