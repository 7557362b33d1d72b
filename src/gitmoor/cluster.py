"""A Kubernetes cluster as gitmoor talks to it: plain-dict objects over lightkube.

Every object gitmoor applies comes out of a render as a dict, and most of them are of kinds
only known at run time (custom resources whose definitions arrive in the same render), so
this client works on dicts and generic resources throughout. It maps ``apiVersion``/``kind``
to the REST resource from lightkube's built-in table, then from the cluster's
CustomResourceDefinitions (and definitions not yet in the cluster that the caller declares,
for objects applied together with their CRD).

Errors come out as :class:`ClusterError`, carrying the HTTP code and reason of the API's
Status, or ``Unavailable`` when the server could not be reached.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ALL_NS, AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError, LoadResourceError
from lightkube.core.resource import ApiInfo, NamespacedResource
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericGlobalStatus,
    GenericNamespacedResource,
    GenericNamespacedStatus,
    create_api_info,
)
from lightkube.types import CascadeType, OnErrorAction, OnErrorResult, PatchType

from gitmoor.api.registry import split_api_version
from gitmoor.errors import ClusterError, Location
from gitmoor.manifests import KubeObject

FIELD_MANAGER = "gitmoor"

# lightkube's overloads are written for its typed models; with generic resources built at
# run time they cannot be checked, so the resource classes pass through as Any.
GenericResource = Any

RequestHook = Callable[[httpx2.Request], Awaitable[None]]
"""Called with every HTTP request sent to the API server (an httpx2 event hook)."""


@dataclass(frozen=True)
class Kind:
    """Where the API serves one kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def resource(self) -> GenericResource:
        return _generic(self)


@functools.cache
def _generic(kind: Kind) -> GenericResource:
    """A lightkube resource class that reads and writes dicts, for any kind.

    Built like lightkube's own generic resources but kept out of its registry: the registry
    refuses a generic class for a kind its typed models also hold (Namespace, Deployment …).
    """
    main: type = GenericNamespacedResource if kind.namespaced else GenericGlobalResource
    status: type = GenericNamespacedStatus if kind.namespaced else GenericGlobalStatus
    info = create_api_info(kind.group, kind.version, kind.kind, kind.plural)
    status_info = ApiInfo(
        resource=info.resource,
        parent=info.resource,
        plural=info.plural,
        verbs=["get", "patch", "put"],
        action="status",
    )
    status_class = type(f"{kind.kind}Status", (status,), {"_api_info": status_info})
    return type(kind.kind, (main,), {"_api_info": info, "Status": status_class})


def crd_kinds(crd: Mapping[str, Any]) -> list[Kind]:
    """The kinds a CustomResourceDefinition serves, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    return [
        Kind(
            spec.get("group", ""),
            version["name"],
            names.get("kind", ""),
            names.get("plural", ""),
            spec.get("scope") == "Namespaced",
        )
        for version in spec.get("versions") or []
        if version.get("served", True)
    ]


def describe(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` (or ``Kind name``), as messages and events name objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "")
    return (
        f"{obj.get('kind', '?')} {namespace}/{name}" if namespace else f"{obj.get('kind')} {name}"
    )


def _every(kind: Kind, namespace: str | None) -> str | None:
    """The namespace argument for a list or watch: all of them unless one is named (lightkube
    would otherwise fall back to its default namespace)."""
    if not kind.namespaced:
        return None
    return namespace or ALL_NS


def _error(exc: Exception, what: str) -> ClusterError:
    if isinstance(exc, ApiError):
        status = exc.status
        return ClusterError(
            f"{what}: {status.message or status.reason}",
            Location(object=what),
            code=status.code or 0,
            reason=status.reason or "",
        )
    return ClusterError(
        f"{what}: the API server cannot be reached ({type(exc).__name__})",
        Location(object=what),
        code=0,
        reason="Unavailable",
    )


class Cluster:
    """One API server, reached through lightkube's async client."""

    def __init__(self, client: AsyncClient, *, field_manager: str = FIELD_MANAGER) -> None:
        self.client: Any = client
        self.field_manager = field_manager
        self._crd_kinds: dict[tuple[str, str], Kind] = {}
        self._crds_loaded = False

    @classmethod
    def connect(
        cls,
        kubeconfig: Path | None = None,
        *,
        context: str | None = None,
        on_request: RequestHook | None = None,
    ) -> Cluster:
        """From a kubeconfig file, else $KUBECONFIG / ~/.kube/config / in-cluster config.
        ``on_request`` sees every request sent (to count them, say)."""
        config = (
            KubeConfig.from_file(str(kubeconfig)) if kubeconfig else KubeConfig.from_env()
        ).get(context_name=context)
        client = AsyncClient(config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(30))
        if on_request is not None:
            # lightkube has no hook of its own; the httpx2 client under it has event hooks.
            client._client._client.event_hooks["request"].append(on_request)
        return cls(client)

    async def close(self) -> None:
        await self.client.close()

    # --- kinds -------------------------------------------------------------------------

    async def kind(
        self, api_version: str, kind: str, *, declared: Iterable[Mapping[str, Any]] = ()
    ) -> Kind:
        """The REST resource of ``apiVersion``/``kind``; ``declared`` CRDs count too."""
        group, version = split_api_version(api_version)
        try:
            typed = resource_registry.load(api_version, kind)
        except LoadResourceError:
            typed = None
        if typed is not None:
            # Built-in kinds, and custom ones this process has already met.
            info = typed._api_info
            return Kind(group, version, kind, info.plural, issubclass(typed, NamespacedResource))
        for crd in declared:
            for found in crd_kinds(crd):
                if (found.api_version, found.kind) == (api_version, kind):
                    return found
        if (api_version, kind) not in self._crd_kinds or not self._crds_loaded:
            await self._load_crds()
        found_kind = self._crd_kinds.get((api_version, kind))
        if found_kind is None:
            raise ClusterError(
                f"no kind {kind} is served at {api_version}",
                Location(field="apiVersion"),
                code=404,
                reason="NotFound",
            )
        return found_kind

    async def _load_crds(self) -> None:
        crds = await self.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        self._crd_kinds = {(k.api_version, k.kind): k for crd in crds for k in crd_kinds(crd)}
        self._crds_loaded = True

    # --- reads -------------------------------------------------------------------------

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> KubeObject | None:
        """The object, or None when it does not exist."""
        found = await self.kind(api_version, kind)
        try:
            obj = await self.client.get(
                found.resource(), name, namespace=namespace if found.namespaced else None
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _error(exc, f"{kind} {namespace}/{name}") from None
        except httpx2.HTTPError as exc:
            raise _error(exc, f"{kind} {namespace}/{name}") from None
        return dict(obj.to_dict())

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[KubeObject]:
        found = await self.kind(api_version, kind)
        try:
            return [
                dict(o.to_dict())
                async for o in self.client.list(
                    found.resource(), namespace=_every(found, namespace),
                    labels=dict(labels) if labels else None,
                )
            ]  # fmt: skip
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, f"list {kind}") from None

    async def watch(
        self, kind: Kind, *, namespace: str | None = None
    ) -> AsyncIterator[tuple[str, KubeObject]]:
        """Events of one kind, forever: the current objects as ADDED first, then changes.

        A watch that breaks or expires starts again from the current state, so a consumer
        sees every object again (as ADDED) rather than missing a change.
        """
        res = kind.resource()

        def on_error(exc: Exception, attempts: int) -> OnErrorResult:
            return OnErrorResult(OnErrorAction.RETRY, sleep=min(2.0**attempts, 30.0))

        while True:
            try:
                async for event, obj in self.client.watch(
                    res, namespace=_every(kind, namespace), on_error=on_error
                ):
                    yield event, dict(obj.to_dict())
            except (ApiError, httpx2.HTTPError):
                await asyncio.sleep(1.0)

    # --- writes ------------------------------------------------------------------------

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        force: bool = False,
        dry_run: bool = False,
        declared: Iterable[Mapping[str, Any]] = (),
        field_manager: str | None = None,
    ) -> KubeObject:
        """Server-side apply of ``obj`` as gitmoor's field manager, or ``field_manager``."""
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""), declared=declared)
        res = kind.resource()
        meta = obj.get("metadata") or {}
        try:
            applied = await self.client.apply(
                res(dict(obj)),
                namespace=meta.get("namespace") if kind.namespaced else None,
                field_manager=field_manager or self.field_manager,
                force=force,
                dry_run=dry_run,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, describe(obj)) from None
        return dict(applied.to_dict())

    async def patch_status(self, obj: Mapping[str, Any], status: Mapping[str, Any]) -> KubeObject:
        """Replace the status fields given, through the status subresource (merge patch)."""
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        res = kind.resource()
        meta = obj.get("metadata") or {}
        try:
            patched = await self.client.patch(
                res.Status,
                meta["name"],
                {"status": dict(status)},
                namespace=meta.get("namespace") if kind.namespaced else None,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, describe(obj)) from None
        return dict(patched.to_dict())

    async def patch(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> KubeObject:
        """A merge patch of the object itself (annotations, spec.suspend ...)."""
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        try:
            patched = await self.client.patch(
                kind.resource(),
                meta["name"],
                dict(patch),
                namespace=meta.get("namespace") if kind.namespaced else None,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, describe(obj)) from None
        return dict(patched.to_dict())

    async def create(self, obj: Mapping[str, Any]) -> KubeObject:
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        try:
            created = await self.client.create(
                kind.resource()(dict(obj)),
                namespace=meta.get("namespace") if kind.namespaced else None,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, describe(obj)) from None
        return dict(created.to_dict())

    async def replace(self, obj: Mapping[str, Any]) -> KubeObject:
        """PUT the whole object; its ``metadata.resourceVersion`` makes this a compare-and-swap
        (a :class:`ClusterError` with code 409 when someone else wrote it since)."""
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        try:
            replaced = await self.client.replace(
                kind.resource()(dict(obj)),
                namespace=meta.get("namespace") if kind.namespaced else None,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error(exc, describe(obj)) from None
        return dict(replaced.to_dict())

    async def delete(self, obj: Mapping[str, Any], *, background: bool = True) -> bool:
        """Delete the object; False when it was already gone."""
        kind = await self.kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        try:
            await self.client.delete(
                kind.resource(),
                meta["name"],
                namespace=meta.get("namespace") if kind.namespaced else None,
                cascade=CascadeType.BACKGROUND if background else CascadeType.FOREGROUND,
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return False
            raise _error(exc, describe(obj)) from None
        except httpx2.HTTPError as exc:
            raise _error(exc, describe(obj)) from None
        return True
