"""Vault clients for SecretStores and ClusterSecretStores.

A store's ``spec.provider.vault`` and the Secrets, ConfigMaps and ServiceAccounts it names
become a logged-in :class:`~gitmoor.secrets.vault.VaultClient`:

- ``auth.tokenSecretRef``: the token in a Secret;
- ``auth.appRole``: ``roleId`` (or ``roleRef``, a Secret) and ``secretRef`` logged in at
  ``auth/<path>`` (default ``approle``);
- ``auth.kubernetes``: a ServiceAccount token, asked of the cluster's TokenRequest API for
  ``serviceAccountRef`` (ten minutes, the audiences given) or read from ``secretRef``, or the
  Pod's own token when gitmoor runs in a cluster, logged in at ``auth/<mountPath>`` (default
  ``kubernetes``) with ``role``; Vault checks it against the cluster's TokenReview API;
- ``caBundle`` / ``caProvider``: the CA to trust for an https server.

References of a ClusterSecretStore carry their own namespace; one that does not is looked
up in the namespace of the ExternalSecret using the store, as External Secrets does
("referent" authentication), and such a store can only be validated by its users.

A client is kept per store (and per namespace using it) and reused while its credentials
and the store's spec are unchanged and its token is not due for renewal, so a refresh that
changes nothing costs the reads and no login. A refused or failed call drops it, so the next
one logs in afresh.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccountToken

from gitmoor.api.secrets import (
    ClusterSecretStore,
    SecretKeySelector,
    SecretStore,
    ServiceAccountSelector,
    VaultKubernetesAuth,
    VaultProvider,
)
from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError, Location
from gitmoor.manifests import KubeObject
from gitmoor.secrets.errors import InvalidStoreError, UnauthorizedError, UnavailableError
from gitmoor.secrets.vault import (
    AppRoleLogin,
    KubernetesLogin,
    Login,
    TokenLogin,
    VaultClient,
    VaultConfig,
    decode_ca_bundle,
    login,
)

Store = SecretStore | ClusterSecretStore
Reader = Callable[[str, str, str], Awaitable[KubeObject | None]]
"""``(kind, namespace, name)`` → the core/v1 object (Secret, ConfigMap), or None."""
_T = TypeVar("_T")

SERVICE_ACCOUNT_TOKEN_SECONDS = 600
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
FORWARD_INCONSISTENT = {"X-Vault-Inconsistent": "forward-active-node"}
AUTH = "spec.provider.vault.auth"
_UNSUPPORTED_AUTH = ("ldap", "user_pass", "jwt", "cert", "iam", "gcp")


@dataclass(frozen=True)
class _Plan:
    """How to log in: a digest of the credentials (to tell when they changed) and the
    login itself, made only when no kept client can be reused."""

    fingerprint: str
    login: Callable[[], Awaitable[Login]]


@dataclass(frozen=True)
class _Kept:
    fingerprint: str
    client: VaultClient


def vault_provider(store: Store) -> VaultProvider:
    """The store's Vault provider, or why gitmoor cannot use the store."""
    provider = store.spec.provider
    if provider.vault is None:
        raise InvalidStoreError(
            f"provider '{provider.name}' is not supported by gitmoor (only vault is)",
            Location(object=store.display, field="spec.provider"),
        )
    return provider.vault


def is_referent(store: Store) -> bool:
    """A ClusterSecretStore whose credentials are looked up in each user's namespace."""
    if not isinstance(store, ClusterSecretStore):
        return False
    auth = vault_provider(store).auth
    if auth is None:
        return False
    refs: list[SecretKeySelector | ServiceAccountSelector | None] = [auth.token_secret_ref]
    if auth.app_role is not None:
        refs += [auth.app_role.secret_ref, auth.app_role.role_ref]
    if auth.kubernetes is not None:
        refs += [auth.kubernetes.service_account_ref, auth.kubernetes.secret_ref]
    return any(ref is not None and not ref.namespace for ref in refs)


class StoreClients:
    """Logged-in Vault clients, one per store and namespace using it. ``read`` fetches the
    Secrets and ConfigMaps stores name (``kind, namespace, name``); by default from the API
    server, a controller passes its cache."""

    def __init__(self, cluster: Cluster, *, read: Reader | None = None) -> None:
        self.cluster = cluster
        self._read = read or self._from_api
        self._kept: dict[tuple[str, str, str, str], _Kept] = {}

    async def _from_api(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return await self.cluster.get("v1", kind, name, namespace)

    async def client(self, store: Store, namespace: str, *, fresh: bool = False) -> VaultClient:
        """A client reading on behalf of an object in ``namespace``; ``fresh`` logs in even
        when a kept client could be reused."""
        provider = vault_provider(store)
        config = await self._config(store, provider, namespace)
        plan = await self._plan(store, provider, namespace)
        key = _key(store, namespace)
        kept = self._kept.get(key)
        if (
            not fresh
            and kept is not None
            and kept.fingerprint == plan.fingerprint
            and kept.client.config == config
            and not kept.client.session.due
        ):
            return kept.client
        method = await plan.login()
        session = await asyncio.to_thread(login, config, method)
        client = VaultClient(config, session)
        self._kept[key] = _Kept(plan.fingerprint, client)
        return client

    async def validate(self, store: Store) -> bool:
        """Log in afresh and check the token and the mount; False when the store cannot
        be checked on its own (a referent ClusterSecretStore)."""
        if is_referent(store):
            vault_provider(store)
            return False
        client = await self.client(store, store.namespace, fresh=True)
        try:
            await asyncio.to_thread(client.check)
        except (UnauthorizedError, UnavailableError):
            self.forget(store, store.namespace)
            raise
        return True

    async def run(self, store: Store, namespace: str, call: Callable[[VaultClient], _T]) -> _T:
        """``call`` with the store's client, in a thread (hvac blocks)."""
        client = await self.client(store, namespace)
        try:
            return await asyncio.to_thread(call, client)
        except (UnauthorizedError, UnavailableError):
            # A revoked token, or a server restarted without its state: log in next time.
            self.forget(store, namespace)
            raise

    def forget(self, store: Store, namespace: str) -> None:
        self._kept.pop(_key(store, namespace), None)

    # --- the store's settings ----------------------------------------------------------------

    async def _config(self, store: Store, provider: VaultProvider, namespace: str) -> VaultConfig:
        if provider.tls is not None and (
            provider.tls.cert_secret_ref or provider.tls.key_secret_ref
        ):
            raise InvalidStoreError(
                "client certificates (spec.provider.vault.tls) are not supported by gitmoor",
                Location(object=store.display, field="spec.provider.vault.tls"),
            )
        ca_pem = None
        if provider.ca_bundle:
            ca_pem = decode_ca_bundle(provider.ca_bundle, store=store.display)
        elif provider.ca_provider is not None:
            ca_pem = await self._ca_from_provider(store, provider, namespace)
        headers = dict(provider.headers or {})
        if provider.forward_inconsistent:
            headers.update(FORWARD_INCONSISTENT)
        auth = provider.auth
        return VaultConfig(
            server=provider.server,
            store=store.display,
            mount=provider.path.strip("/") if provider.path else None,
            version=provider.version or "v2",
            namespace=provider.namespace,
            auth_namespace=auth.namespace if auth is not None else None,
            ca_pem=ca_pem,
            headers=headers,
        )

    async def _ca_from_provider(self, store: Store, provider: VaultProvider, namespace: str) -> str:
        ca = provider.ca_provider
        assert ca is not None
        field = "spec.provider.vault.caProvider"
        if isinstance(store, ClusterSecretStore) and not ca.namespace:
            raise InvalidStoreError("caProvider.namespace is required in a ClusterSecretStore",
                                    Location(object=store.display, field=field))  # fmt: skip
        where = ca.namespace if isinstance(store, ClusterSecretStore) else store.namespace
        key = ca.key or "ca.crt"
        obj = await self._read(ca.type, where or "", ca.name)
        if obj is None:
            raise InvalidStoreError(f"{ca.type} {where}/{ca.name} not found",
                                    Location(object=store.display, field=field))  # fmt: skip
        if ca.type == "Secret":
            value = (obj.get("data") or {}).get(key)
            pem = _b64(value) if value is not None else None
        else:
            pem = (obj.get("data") or {}).get(key)
        if not pem:
            raise InvalidStoreError(f"{ca.type} {where}/{ca.name} has no key '{key}'",
                                    Location(object=store.display, field=field))  # fmt: skip
        return str(pem)

    # --- credentials -------------------------------------------------------------------------

    async def _plan(self, store: Store, provider: VaultProvider, namespace: str) -> _Plan:
        auth = provider.auth
        where = Location(object=store.display, field=AUTH)
        if auth is None:
            raise InvalidStoreError("no auth method is set", where)
        for name in _UNSUPPORTED_AUTH:
            if getattr(auth, name) is not None:
                raise InvalidStoreError(
                    f"auth method '{name}' is not supported by gitmoor (tokenSecretRef, "
                    "appRole and kubernetes are)", where,
                )  # fmt: skip
        spec = provider.to_dict()
        if auth.token_secret_ref is not None:
            token = await self._secret(store, auth.token_secret_ref, namespace,
                                       f"{AUTH}.tokenSecretRef")  # fmt: skip
            return _ready_plan(spec, TokenLogin(token), token)
        if auth.app_role is not None:
            role = auth.app_role
            role_id = role.role_id or (
                await self._secret(store, role.role_ref, namespace, f"{AUTH}.appRole.roleRef")
                if role.role_ref is not None else ""
            )  # fmt: skip
            if not role_id:
                raise InvalidStoreError(
                    "appRole needs roleId or roleRef",
                    Location(object=store.display, field=f"{AUTH}.appRole"),
                )
            secret_id = await self._secret(store, role.secret_ref, namespace,
                                           f"{AUTH}.appRole.secretRef")  # fmt: skip
            method = AppRoleLogin(role.path or "approle", role_id, secret_id)
            return _ready_plan(spec, method, role_id, secret_id)
        if auth.kubernetes is not None:
            return await self._kubernetes_plan(store, auth.kubernetes, spec, namespace)
        raise InvalidStoreError("no auth method is set", where)

    async def _kubernetes_plan(
        self,
        store: Store,
        kubernetes: VaultKubernetesAuth,
        spec: dict[str, object],
        namespace: str,
    ) -> _Plan:
        mount = kubernetes.mount_path or "kubernetes"
        field = f"{AUTH}.kubernetes"
        account = kubernetes.service_account_ref
        if account is not None:
            account_namespace = _namespace(store, account.namespace, namespace)

            async def request() -> Login:
                jwt = await self._service_account_token(store, account, account_namespace)
                return KubernetesLogin(mount, kubernetes.role, jwt)

            identity = f"{account_namespace}/{account.name}/{account.audiences}"
            return _Plan(_digest(spec, identity), request)
        if kubernetes.secret_ref is not None:
            jwt = await self._secret(store, kubernetes.secret_ref, namespace,
                                     f"{field}.secretRef", default_key="token")  # fmt: skip
            return _ready_plan(spec, KubernetesLogin(mount, kubernetes.role, jwt), jwt)
        if not IN_CLUSTER_TOKEN.is_file():
            raise InvalidStoreError(
                "kubernetes auth without serviceAccountRef or secretRef needs gitmoor to run "
                f"in a Pod ({IN_CLUSTER_TOKEN} not found)",
                Location(object=store.display, field=field),
            )
        jwt = IN_CLUSTER_TOKEN.read_text().strip()
        return _ready_plan(spec, KubernetesLogin(mount, kubernetes.role, jwt), jwt)

    async def _secret(
        self,
        store: Store,
        ref: SecretKeySelector | None,
        namespace: str,
        field: str,
        *,
        default_key: str | None = None,
    ) -> str:
        where = Location(object=store.display, field=field)
        if ref is None or not ref.name:
            raise InvalidStoreError("a Secret name is required", where)
        key = ref.key or default_key
        if not key:
            raise InvalidStoreError("a key of the Secret is required", where)
        secret_namespace = _namespace(store, ref.namespace, namespace)
        secret = await self._read("Secret", secret_namespace, ref.name)
        if secret is None:
            raise InvalidStoreError(f"Secret {secret_namespace}/{ref.name} not found", where)
        value = (secret.get("data") or {}).get(key)
        if value is None:
            raise InvalidStoreError(f"Secret {secret_namespace}/{ref.name} has no key '{key}'",
                                    where)  # fmt: skip
        text = _b64(value)
        if text is None:
            raise InvalidStoreError(f"key '{key}' of Secret {secret_namespace}/{ref.name} is "
                                    "not text", where)  # fmt: skip
        return text.strip()

    async def _service_account_token(
        self, store: Store, account: ServiceAccountSelector, namespace: str
    ) -> str:
        """A ServiceAccount token from the TokenRequest API, as ``kubectl create token``."""
        request = ServiceAccountToken(
            metadata=ObjectMeta(name=account.name, namespace=namespace),
            spec=TokenRequestSpec(
                audiences=list(account.audiences or []),
                expirationSeconds=SERVICE_ACCOUNT_TOKEN_SECONDS,
            ),
        )
        what = f"ServiceAccount {namespace}/{account.name}"
        try:
            answer = await self.cluster.client.create(request, name=account.name,
                                                      namespace=namespace)  # fmt: skip
        except ApiError as exc:
            if exc.status.code == 404:
                raise InvalidStoreError(
                    f"{what} not found",
                    Location(object=store.display, field=f"{AUTH}.kubernetes.serviceAccountRef"),
                ) from None
            raise ClusterError(f"token request for {what}: {exc.status.message}",
                               Location(object=store.display), code=exc.status.code or 0,
                               reason=exc.status.reason or "") from None  # fmt: skip
        token = answer.status.token if answer.status is not None else None
        if not token:
            raise ClusterError(f"token request for {what}: the answer holds no token",
                               Location(object=store.display))  # fmt: skip
        return str(token)


def _key(store: Store, namespace: str) -> tuple[str, str, str, str]:
    return (store.KIND, store.namespace, store.name, namespace)


def _namespace(store: Store, ref_namespace: str | None, namespace: str) -> str:
    """Where a reference of the store points: a SecretStore's own namespace; for a
    ClusterSecretStore the reference's, else the namespace of the object using it."""
    if isinstance(store, ClusterSecretStore):
        return ref_namespace or namespace
    return store.namespace


def _ready_plan(spec: dict[str, object], method: Login, *material: str) -> _Plan:
    async def ready() -> Login:
        return method

    return _Plan(_digest(spec, *material), ready)


def _digest(spec: dict[str, object], *material: str) -> str:
    """What a kept client depends on; credentials enter only as a hash, kept in memory."""
    text = json.dumps([spec, *material], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(value: str) -> str | None:
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
