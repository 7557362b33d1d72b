"""The ExternalSecret controller: values from a secret store into a Kubernetes Secret.

A reconcile runs External Secrets' phases:

1. **refresh or not**: the Secret is fetched again when the ExternalSecret's generation,
   labels or annotations changed since the last sync (``syncedResourceVersion``), when
   ``refreshInterval`` has passed since ``refreshTime`` (``0``: once only; ``refreshPolicy``
   ``CreatedOnce`` and ``OnChange`` as External Secrets has them), when the last attempt
   failed, or when the Secret is gone or its data no longer matches what was written;
   otherwise the next look is booked for when the interval ends.
2. **stores**: each store named (``secretStoreRef`` or an entry's ``sourceRef.storeRef``)
   must exist, be Ready, and, for a ClusterSecretStore, admit the namespace.
3. **fetch**: ``data`` and ``dataFrom`` through :mod:`gitmoor.secrets.fetch`.
4. **write**: the Secret from :mod:`gitmoor.secrets.target`, server-side applied with field
   manager ``external-secrets``, by ``target.creationPolicy``: ``Owner`` (the default; the
   ExternalSecret is its controlling owner, so deleting it collects the Secret), ``Orphan``
   (no owner), ``Merge`` (only into a Secret that exists) or ``None`` (nothing written).
   When nothing was fetched, ``deletionPolicy`` ``Delete`` removes the Secret, ``Merge``
   removes the keys it held, ``Retain`` (the default) leaves it.
5. **status**: Ready ``SecretSynced`` "Secret was synced" (or ``SecretDeleted``),
   ``refreshTime``, ``syncedResourceVersion``, ``binding``; Events ``Created``/``Updated``/
   ``Deleted``. A failure anywhere is Ready False ``SecretSyncedError`` with the reason in
   the message and an ``UpdateFailed`` Warning, and leaves the Secret as it was.

Secrets are watched (:class:`SecretWatcher`), so a synced Secret deleted or edited by hand
is put back at once rather than at the next refresh; a store turning Ready sends the
ExternalSecrets using it round again. Values go only into the Secret: conditions, Events,
logs and metrics name stores, paths, properties and fields.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gitmoor.api.meta import duration_seconds
from gitmoor.api.registry import parse_resource
from gitmoor.api.secrets import (
    GROUP,
    ClusterSecretStore,
    ExternalSecret,
    LabelSelector,
    SecretStore,
    SecretStoreRef,
)
from gitmoor.cluster import Cluster, Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import Context, deleting
from gitmoor.controllers.manager import Key, Manager, Result, key_of
from gitmoor.controllers.secretstore import (
    CLUSTER_SECRET_STORE,
    CONTROLLER,
    SECRET_STORE,
    SecretStoreReconciler,
)
from gitmoor.errors import ClusterError, GitmoorError, InputError, Location
from gitmoor.manifests import KubeObject
from gitmoor.secrets.errors import InvalidSpecError, SecretsError
from gitmoor.secrets.fetch import fetch
from gitmoor.secrets.stores import Store, StoreClients
from gitmoor.secrets.target import (
    DATA_HASH,
    MANAGED_LABEL,
    data_hash,
    desired_secret,
    in_sync,
)
from gitmoor.secrets.vault import go_json

EXTERNAL_SECRET = Kind(GROUP, "v1", "ExternalSecret", "externalsecrets", True)
SECRET = Kind("", "v1", "Secret", "secrets", True)
FIELD_MANAGER = "external-secrets"
DEFAULT_REFRESH = 3600.0
RETRY_CEILING = 300.0
"""Longest back-off between failed attempts when there is no refresh interval to cap it."""
STORE_PENDING_REQUEUE = 2.0
STORE_PENDING_LIMIT = 60.0
"""Seconds a new store may go unvalidated before the ExternalSecrets using it say so."""

SECRET_SYNCED = "SecretSynced"
SECRET_SYNCED_ERROR = "SecretSyncedError"
SECRET_DELETED = "SecretDeleted"
SYNCED = "Secret was synced"
DELETED = "secret deleted due to DeletionPolicy"
UPDATE_FAILED = "UpdateFailed"


class _StorePendingError(Exception):
    """A store that has not been validated yet: look again shortly, say nothing yet."""


class ExternalSecretReconciler:
    kind = EXTERNAL_SECRET

    def __init__(self, context: Context, clients: StoreClients) -> None:
        self.context = context
        self.clients = clients
        # The same connection, writing Secrets as External Secrets' field manager.
        self.writer = Cluster(context.cluster.client, field_manager=FIELD_MANAGER)

    # --- what else queues an ExternalSecret --------------------------------------------------

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        if kind == SECRET.kind:
            return self._secret_changed(old, new)
        if kind in (SECRET_STORE.kind, CLUSTER_SECRET_STORE.kind):
            return self._store_changed(kind, old, new)
        # Labels and annotations count as a change (kubectl annotate es force-sync=...).
        if (
            kind == EXTERNAL_SECRET.kind
            and old is not None
            and new is not None
            and _metadata_digest(old) != _metadata_digest(new)
        ):
            return [key_of(new)]
        return ()

    def _secret_changed(
        self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterator[Key]:
        secret = new if new is not None else old
        if secret is None:
            return
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_LABEL) != "true" or (new is not None and in_sync(new)):
            return
        meta = secret["metadata"]
        for es in self.context.manager.objects(EXTERNAL_SECRET.kind):
            es_meta = es.get("metadata") or {}
            target = ((es.get("spec") or {}).get("target") or {}).get("name") or es_meta.get("name")
            if es_meta.get("namespace") == meta.get("namespace") and target == meta.get("name"):
                yield key_of(es)

    def _store_changed(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterator[Key]:
        if (
            new is None
            or not conditions.is_true(new)
            or (old is not None and conditions.is_true(old))
        ):
            return
        store_meta = new.get("metadata") or {}
        for es in self.context.manager.objects(EXTERNAL_SECRET.kind):
            namespace = (es.get("metadata") or {}).get("namespace")
            if kind == SECRET_STORE.kind and namespace != store_meta.get("namespace"):
                continue
            name = store_meta.get("name")
            refs = _store_refs(es)
            if any(
                (r.get("kind") or SECRET_STORE.kind, r.get("name")) == (kind, name) for r in refs
            ):
                yield key_of(es)

    # --- the reconcile -------------------------------------------------------------------------

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        meta = obj["metadata"]
        if deleting(obj):
            # The Secret of creationPolicy Owner goes with it, by garbage collection.
            context.metrics.forget(EXTERNAL_SECRET.kind, meta.get("namespace", ""), meta["name"])
            return Result(None)
        try:
            es = parse_resource(obj)
            assert isinstance(es, ExternalSecret)
        except InputError as exc:
            await self._failed(obj, f"invalid spec: {exc}", started, exc)
            return Result(None)
        interval = refresh_seconds(es)
        existing = context.manager.get(SECRET.kind, es.namespace, es.target_name)
        if existing is None:  # not watched yet, or really absent
            existing = await context.cluster.get("v1", "Secret", es.target_name, es.namespace)
        wait = time_to_refresh(obj, es, existing, now=time.time())
        if wait > 0:
            return Result(None if math.isinf(wait) else wait)
        retry = interval if interval is not None else RETRY_CEILING
        refresh_time = conditions.now()
        try:
            values = await fetch(es, self.clients, partial(self._store, es))
        except _StorePendingError:
            return Result(STORE_PENDING_REQUEUE)
        except (GitmoorError, TimeoutError) as exc:
            await self._failed(obj, f"could not get secret data from provider: {exc}", started,
                               exc)  # fmt: skip
            return Result(retry, failed=True)
        try:
            reason, message = await self._write(obj, es, values, existing)
        except GitmoorError as exc:
            await self._failed(obj, f"could not update Secret: {exc}", started, exc)
            return Result(retry, failed=True)
        current = (obj.get("status") or {}).get("conditions")
        status: dict[str, Any] = {
            "conditions": conditions.set_condition(
                current, conditions.READY, True, reason, message, generation=None
            ),
            "refreshTime": refresh_time,
            "syncedResourceVersion": resource_version(obj),
        }
        if reason == SECRET_SYNCED and _creation_policy(es) != "None":
            status["binding"] = {"name": es.target_name}
        written = await context.write_status(obj, status)
        context.finished(written, started=started, revision=status["syncedResourceVersion"],
                         ready="True")  # fmt: skip
        return Result(interval)

    async def _store(self, es: ExternalSecret, ref: SecretStoreRef | None, field: str) -> Store:
        """The store ``ref`` names, usable from the ExternalSecret's namespace."""
        shared = ref is es.spec.secret_store_ref
        where = Location(field="spec.secretStoreRef" if shared else f"{field}.sourceRef.storeRef")
        if ref is None or not ref.name:
            raise InvalidSpecError("spec.secretStoreRef.name is required", where)
        kind = ref.kind or SECRET_STORE.kind
        namespace = es.namespace if kind == SECRET_STORE.kind else ""
        cluster = self.context.cluster
        obj = self.context.manager.get(kind, namespace, ref.name) or await cluster.get(
            f"{GROUP}/v1", kind, ref.name, namespace or None
        )
        if obj is None:
            raise InvalidSpecError(f"{kind} '{ref.name}' not found", where)
        store = parse_resource(obj)
        assert isinstance(store, (SecretStore, ClusterSecretStore))
        if isinstance(store, ClusterSecretStore):
            await self._check_admitted(store, es.namespace, where)
        ready = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
        if ready is None:
            created = _timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
            if created is None or time.time() - created < STORE_PENDING_LIMIT:
                raise _StorePendingError
            raise SecretsError(f"{store.display} has not been validated", where)
        if ready.get("status") != "True":
            raise SecretsError(f"{store.display} is not ready: {ready.get('message', '')}", where)
        return store

    async def _check_admitted(
        self, store: ClusterSecretStore, namespace: str, where: Location
    ) -> None:
        """A ClusterSecretStore's ``spec.conditions``: is ``namespace`` one it serves?"""
        rules = store.spec.conditions or []
        if not rules:
            return
        labels: dict[str, str] | None = None
        for rule in rules:
            if namespace in (rule.namespaces or []):
                return
            if any(_search(pattern, namespace) for pattern in rule.namespace_regexes or []):
                return
            if rule.namespace_selector is not None:
                if labels is None:
                    found = await self.context.cluster.get("v1", "Namespace", namespace)
                    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
                if selects(rule.namespace_selector, labels):
                    return
        raise SecretsError(f"{store.display} does not serve namespace '{namespace}' "
                           "(spec.conditions)", where)  # fmt: skip

    async def _write(
        self,
        obj: KubeObject,
        es: ExternalSecret,
        values: Mapping[str, bytes],
        existing: KubeObject | None,
    ) -> tuple[str, str]:
        """Write (or delete) the Secret; the Ready reason and message that result."""
        policy = _creation_policy(es)
        deletion = (es.spec.target.deletion_policy if es.spec.target else None) or "Retain"
        recorder = self.context.recorder(CONTROLLER)
        field = Location(field="spec.target")
        if not values and deletion == "Delete":
            if policy != "Owner":
                raise InvalidSpecError("deletionPolicy Delete needs creationPolicy Owner", field)
            if existing is not None and await self.writer.delete(existing):
                await recorder.record(obj, type="Normal", reason="Deleted", message=DELETED)
            return SECRET_DELETED, DELETED
        if policy == "None" or (not values and deletion == "Retain"):
            return SECRET_SYNCED, SYNCED
        if policy == "Merge" and existing is None:
            raise InvalidSpecError(
                f"the desired secret {es.target_name} was not found. With creationPolicy=Merge "
                "the secret won't be created", field,
            )  # fmt: skip
        if policy == "Owner":
            _check_controller(existing, es, obj["metadata"].get("uid", ""))
        template = es.spec.target.template if es.spec.target else None
        desired = desired_secret(
            es, values,
            owner_uid=obj["metadata"].get("uid") if policy == "Owner" else None,
            with_type=policy != "Merge" or (template is not None and bool(template.type)),
        )  # fmt: skip
        if existing is not None and _holds(existing, desired):
            return SECRET_SYNCED, SYNCED
        applied = await self.writer.apply(desired, force=True)
        if not in_sync(applied):
            # Keys others own stay in the Secret (Merge, or a Secret adopted): the hash
            # covers what the Secret holds, so a sync is not taken for a hand edit.
            desired["metadata"]["annotations"][DATA_HASH] = data_hash(applied.get("data") or {})
            applied = await self.writer.apply(desired, force=True)
        self.context.manager.remember(applied)
        if existing is None:
            await recorder.record(obj, type="Normal", reason="Created", message="Created Secret")
        elif _version(existing) != _version(applied):
            await recorder.record(obj, type="Normal", reason="Updated", message="Updated Secret")
        return SECRET_SYNCED, SYNCED

    async def _failed(
        self, obj: KubeObject, message: str, started: float, error: BaseException
    ) -> None:
        """Ready False with ``message``, and the Warning Event External Secrets writes."""
        context = self.context
        current = (obj.get("status") or {}).get("conditions")
        status = {
            "conditions": conditions.set_condition(
                current, conditions.READY, False, SECRET_SYNCED_ERROR, message, generation=None
            )
        }
        written = await context.write_status(obj, status)
        await context.recorder(CONTROLLER).record(
            written, type="Warning", reason=UPDATE_FAILED, message=message
        )
        revision = str((obj.get("status") or {}).get("syncedResourceVersion") or "")
        context.finished(written, started=started, revision=revision, ready="False",
                         error=error)  # fmt: skip


class SecretWatcher:
    """Watches Secrets for :class:`ExternalSecretReconciler`'s triggers; reconciles nothing."""

    kind = SECRET

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        return ()

    async def reconcile(self, obj: KubeObject) -> Result:
        return Result(None)


def register(manager: Manager, context: Context) -> None:
    """The SecretStore, ClusterSecretStore and ExternalSecret controllers, sharing their
    logged-in Vault clients, and the watch of Secrets they need."""

    async def read(kind: str, namespace: str, name: str) -> KubeObject | None:
        # Secrets are watched anyway: a refresh that changes nothing reads none of them.
        cached = manager.get(kind, namespace, name) if kind == SECRET.kind else None
        return cached or await context.cluster.get("v1", kind, name, namespace)

    clients = StoreClients(context.cluster, read=read)
    manager.register(SecretStoreReconciler(context, clients, SECRET_STORE))
    manager.register(SecretStoreReconciler(context, clients, CLUSTER_SECRET_STORE))
    manager.register(ExternalSecretReconciler(context, clients))
    manager.register(SecretWatcher())


async def list_external_secrets(cluster: Cluster) -> list[KubeObject]:
    """Every ExternalSecret in the cluster; none when the kind is not served (yet)."""
    try:
        return await cluster.list(EXTERNAL_SECRET.api_version, EXTERNAL_SECRET.kind)
    except ClusterError as exc:
        if exc.code == 404:
            return []
        raise


def attempted(items: Sequence[Mapping[str, Any]]) -> bool:
    """Every ExternalSecret has been through a sync attempt (it has a Ready condition)."""
    return all(
        conditions.find((o.get("status") or {}).get("conditions"), conditions.READY) is not None
        for o in items
    )


# --- refresh decisions (pure) ----------------------------------------------------------------


def refresh_seconds(es: ExternalSecret) -> float | None:
    """``spec.refreshInterval`` in seconds (default an hour); None for ``0``, never again."""
    value = es.spec.refresh_interval
    seconds = duration_seconds(value) if value is not None else DEFAULT_REFRESH
    return seconds if seconds > 0 else None


def time_to_refresh(
    obj: Mapping[str, Any], es: ExternalSecret, existing: Mapping[str, Any] | None, *, now: float
) -> float:
    """Seconds until the Secret must be fetched again: 0 for now, infinity for not unless
    the ExternalSecret or its Secret changes (which queues it anyway)."""
    status = obj.get("status") or {}
    synced = status.get("syncedResourceVersion")
    refreshed = _timestamp(status.get("refreshTime"))
    if _creation_policy(es) != "None" and not in_sync(existing):
        return 0.0  # gone, or changed by hand
    if not conditions.is_true(obj):
        return 0.0  # the last attempt failed, or there has been none
    changed = synced != resource_version(obj)
    policy = es.spec.refresh_policy or "Periodic"
    if policy == "CreatedOnce":
        return 0.0 if not synced or refreshed is None else math.inf
    if policy == "OnChange":
        return 0.0 if changed or refreshed is None else math.inf
    interval = refresh_seconds(es)
    if interval is None:
        return 0.0 if not synced else math.inf
    if changed or refreshed is None or refreshed > now:
        return 0.0
    return max(refreshed + interval - now, 0.0)


def resource_version(obj: Mapping[str, Any]) -> str:
    """``<generation>-<digest of labels and annotations>``: what a sync was made from."""
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return f"{generation}-{_metadata_digest(obj)}"


def _metadata_digest(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    text = go_json(
        {"annotations": meta.get("annotations") or {}, "labels": meta.get("labels") or {}}
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _timestamp(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False  # a pattern that does not compile admits nothing


def _creation_policy(es: ExternalSecret) -> str:
    return (es.spec.target.creation_policy if es.spec.target else None) or "Owner"


def _check_controller(existing: Mapping[str, Any] | None, es: ExternalSecret, uid: str) -> None:
    for ref in ((existing or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") != uid:
            raise InvalidSpecError(
                f"Secret {es.namespace}/{es.target_name} is controlled by "
                f"{ref.get('kind')} {ref.get('name')}; creationPolicy Owner cannot take it",
                Location(field="spec.target.name"),
            )


def _holds(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """The Secret already is what applying ``desired`` would make it: nothing to write."""
    have, want = existing.get("metadata") or {}, desired["metadata"]
    if (existing.get("data") or {}) != desired["data"]:
        return False
    if "type" in desired and existing.get("type", "Opaque") != desired["type"]:
        return False
    if bool(existing.get("immutable")) != bool(desired.get("immutable")):
        return False
    for field in ("labels", "annotations"):
        present = have.get(field) or {}
        if any(present.get(k) != v for k, v in want[field].items()):
            return False
    owners = {ref.get("uid") for ref in have.get("ownerReferences") or []}
    return all(ref["uid"] in owners for ref in want.get("ownerReferences") or [])


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _store_refs(es: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = es.get("spec") or {}
    if spec.get("secretStoreRef"):
        yield spec["secretStoreRef"]
    for entry in [*(spec.get("data") or []), *(spec.get("dataFrom") or [])]:
        ref = ((entry or {}).get("sourceRef") or {}).get("storeRef")
        if ref:
            yield ref


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether a label selector matches ``labels``."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions or []:
        present = requirement.key in labels
        values: Sequence[str] = requirement.values or []
        operator = requirement.operator
        if operator == "In" and labels.get(requirement.key) not in values:
            return False
        if operator == "NotIn" and present and labels[requirement.key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
