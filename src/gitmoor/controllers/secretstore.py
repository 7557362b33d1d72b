"""The SecretStore and ClusterSecretStore controllers: can the store be used?

Each refresh (``spec.refreshInterval`` seconds, else every five minutes, External Secrets'
default) logs in to Vault afresh and checks the token and the mount
(:meth:`gitmoor.secrets.stores.StoreClients.validate`). The store's Ready condition says how
that went, with External Secrets' reasons:

- ``Valid``, "store validated": the login and the mount work;
- ``InvalidProviderConfig``: the spec, the Secrets or ServiceAccount it names, or the
  credentials are wrong (a provider other than vault, a missing Secret, a refused login);
- ``ValidationFailed``: Vault cannot be reached or fails, or the mount cannot be used;
- ``InvalidStoreConfiguration``: the store does not match its schema.

A ClusterSecretStore whose credentials live in each user's namespace (references without a
namespace) cannot be checked on its own and is Ready once its spec is usable. Failures are
Warning Events; becoming valid is a Normal one. Stores keep no finalizer: deleting one
leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from gitmoor.api.registry import parse_resource
from gitmoor.api.secrets import GROUP, ClusterSecretStore, SecretStore
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import Context, deleting, ready_status
from gitmoor.controllers.manager import Key, Result
from gitmoor.errors import GitmoorError, InputError
from gitmoor.manifests import KubeObject
from gitmoor.secrets.errors import InvalidStoreError, UnauthorizedError
from gitmoor.secrets.stores import StoreClients

SECRET_STORE = Kind(GROUP, "v1", "SecretStore", "secretstores", True)
CLUSTER_SECRET_STORE = Kind(GROUP, "v1", "ClusterSecretStore", "clustersecretstores", False)
CONTROLLER = "external-secrets"
DEFAULT_REFRESH = 300.0

VALID = "Valid"
INVALID_PROVIDER_CONFIG = "InvalidProviderConfig"
VALIDATION_FAILED = "ValidationFailed"
INVALID_STORE = "InvalidStoreConfiguration"
STORE_VALIDATED = "store validated"
# gitmoor only reads from stores (no PushSecret), whatever the provider could do.
CAPABILITIES = "ReadOnly"


class SecretStoreReconciler:
    """Validates stores of one kind (SecretStore or ClusterSecretStore)."""

    def __init__(self, context: Context, clients: StoreClients, kind: Kind) -> None:
        self.context = context
        self.clients = clients
        self.kind = kind

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        return ()

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        meta = obj["metadata"]
        if deleting(obj):
            context.metrics.forget(self.kind.kind, meta.get("namespace", ""), meta["name"])
            return Result(None)
        try:
            store = parse_resource(obj)
            assert isinstance(store, (SecretStore, ClusterSecretStore))
        except InputError as exc:
            await self._record(obj, False, INVALID_STORE, str(exc), started, exc)
            return Result(None)
        interval = float(store.spec.refresh_interval or DEFAULT_REFRESH)
        try:
            checked = await self.clients.validate(store)
        except (InvalidStoreError, UnauthorizedError) as exc:
            message = f"unable to create client: {exc}"
            await self._record(obj, False, INVALID_PROVIDER_CONFIG, message, started, exc)
            return Result(interval, failed=True)
        except GitmoorError as exc:
            message = f"unable to validate store: {exc}"
            await self._record(obj, False, VALIDATION_FAILED, message, started, exc)
            return Result(interval, failed=True)
        message = STORE_VALIDATED if checked else (
            f"{STORE_VALIDATED} (its credentials are looked up in the namespace of each "
            "ExternalSecret using it)"
        )  # fmt: skip
        await self._record(obj, True, VALID, message, started, None)
        return Result(interval)

    async def _record(
        self,
        obj: KubeObject,
        ready: bool,
        reason: str,
        message: str,
        started: float,
        error: BaseException | None,
    ) -> None:
        context = self.context
        was_ready = ready_status(obj) == "True"
        current = (obj.get("status") or {}).get("conditions")
        status = {
            "conditions": conditions.set_condition(
                current, conditions.READY, ready, reason, message, generation=None
            ),
            "capabilities": CAPABILITIES,
        }
        written = await context.write_status(obj, status)
        if not ready or not was_ready:
            await context.recorder(CONTROLLER).record(
                written, type="Normal" if ready else "Warning", reason=reason, message=message
            )
        context.finished(written, started=started, revision="",
                         ready="True" if ready else "False", error=error)  # fmt: skip
