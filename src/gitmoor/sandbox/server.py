"""The sandbox's HTTP API: the Kubernetes API conventions clients depend on.

Routing, content negotiation and authentication live here; what happens to an object
on a write is in :mod:`objects`, patches in :mod:`patch`, server-side apply in
:mod:`apply`, storage and watch in :mod:`store`, discovery documents in
:mod:`discovery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gitmoor import __version__
from gitmoor.errors import ManifestError
from gitmoor.manifests import load
from gitmoor.sandbox import discovery, protobuf
from gitmoor.sandbox.apply import record_update, server_side_apply
from gitmoor.sandbox.collector import mark_for_deletion
from gitmoor.sandbox.errors import ApiError, already_exists, bad_request, invalid, not_found
from gitmoor.sandbox.immutable import immutable_causes
from gitmoor.sandbox.objects import (
    KubeObject,
    apply_defaults,
    generate_job_selector,
    now,
    prepare_create,
    prepare_update,
    unknown_fields,
)
from gitmoor.sandbox.patch import json_kind, json_patch, merge_patch, strategic_merge_patch
from gitmoor.sandbox.pki import Pki
from gitmoor.sandbox.schema import ResourceInfo, ResourceTable, Schemas
from gitmoor.sandbox.selectors import FieldSelector, LabelSelector, field_labels
from gitmoor.sandbox.store import Key, Store
from gitmoor.sandbox.tables import TableView, include_object, printer_for, table_version
from gitmoor.sandbox.tokens import TokenIssuer, token_request, token_review
from gitmoor.sandbox.validation import (
    check_applied,
    check_body,
    check_patched,
    validate_custom_resource,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CRD_GROUP = "apiextensions.k8s.io"
JSON = "application/json"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_TIMEOUT_SECONDS = 1800
BOOKMARK_SECONDS = 60.0


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None

    def key(self, name: str | None = None) -> Key:
        chosen = name if name is not None else self.name
        return Key(self.info.group, self.info.plural, self.namespace or "", chosen or "")


class Sandbox:
    """The state behind the routes: storage, the resource table, the schemas."""

    def __init__(self, state_dir: Path, *, token: str) -> None:
        self.token = token
        self.tokens = TokenIssuer.load(state_dir / "pki")
        self.store = Store(state_dir / "state.db")
        self.table = ResourceTable.builtin()
        self.schemas = Schemas.load()
        self.background: set[asyncio.Task[None]] = set()
        crds = self.store.list(CRD_GROUP, "customresourcedefinitions", None).items
        for crd in crds:
            self._register_crd(crd)
        self._ensure_system_namespaces()

    def lookup(self, resource: str, namespace: str, name: str) -> KubeObject | None:
        """A core object by resource, namespace and name (for token reviews)."""
        return self.store.get(Key("", resource, namespace, name))

    def authenticated(self, header: str) -> bool:
        """The sandbox's own token, or a ServiceAccount token it issued and still honours."""
        scheme, _, given = header.partition(" ")
        if scheme != "Bearer" or not given:
            return False
        if hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        review = self.tokens.review(given, (), lookup=self.lookup)
        return bool(review.get("authenticated"))

    def _ensure_system_namespaces(self) -> None:
        """The namespaces every cluster starts with."""
        namespaces = self.table.lookup("", "v1", "namespaces")
        assert namespaces is not None  # a built-in resource
        target = Target(namespaces, None, None, None)
        for name in SYSTEM_NAMESPACES:
            if self.store.get(target.key(name)) is None:
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                self.create(target, body, manager="gitmoor-sandbox", dry_run=False)

    # --- routing --------------------------------------------------------------------

    def target(self, request: web.Request) -> Target:
        parts = [p for p in request.match_info["path"].split("/") if p]
        if request.path.startswith("/api/"):
            group, version, rest = "", parts[0] if parts else "", parts[1:]
        else:
            if len(parts) < 2:
                raise not_found("", "", request.path)
            group, version, rest = parts[0], parts[1], parts[2:]
        namespace: str | None = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and self.table.lookup(group, version, rest[2])
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise not_found(group, "", request.path)
        info = self.table.lookup(group, version, rest[0])
        if info is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not info.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and subresource not in info.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(info, namespace, name, subresource)

    # --- reads ---------------------------------------------------------------------

    def read(self, target: Target) -> KubeObject:
        assert target.name is not None
        obj = self.store.get(target.key())
        if obj is None:
            raise not_found(target.info.group, target.info.plural, target.name)
        return self.as_version(target.info, obj)

    @staticmethod
    def as_version(info: ResourceInfo, obj: KubeObject) -> KubeObject:
        # Versions of one resource share storage; without conversion webhooks only the
        # apiVersion differs between them.
        return {**obj, "apiVersion": info.api_version}

    # --- writes --------------------------------------------------------------------

    def create(
        self, target: Target, body: KubeObject, *, manager: str, dry_run: bool
    ) -> KubeObject:
        info = target.info
        obj = prepare_create(info, body, target.namespace)
        obj = validate_custom_resource(info, self.schemas, obj)
        if info.namespaced:
            self.require_namespace(obj["metadata"]["namespace"])
        apply_defaults(info, obj)
        obj = record_update(
            None, obj, manager=manager, operation="Update", now=now(), schema=self.schema(info),
            reset_fields=_reset_fields(info, None),
        )  # fmt: skip
        obj = self.on_create(info, obj)
        if dry_run:
            if self.store.get(target.key(obj["metadata"]["name"])) is not None:
                raise already_exists(info.group, info.plural, obj["metadata"]["name"])
            return obj
        stored = self.store.create(target.key(obj["metadata"]["name"]), obj)
        self.after_write(info, stored)
        return self.as_version(info, stored)

    def update(
        self,
        target: Target,
        body: KubeObject,
        *,
        manager: str,
        dry_run: bool,
        operation: str = "Update",
    ) -> KubeObject:
        info = target.info
        assert target.name is not None
        live = self.store.get(target.key())
        if live is None:
            raise not_found(info.group, info.plural, target.name)
        name = (body.get("metadata") or {}).get("name")
        if name and name != target.name:
            raise bad_request("the name of the object does not match the name on the URL")
        expected = (body.get("metadata") or {}).get("resourceVersion") or None
        new = prepare_update(info, live, body, subresource=target.subresource)
        new = validate_custom_resource(info, self.schemas, new, live)
        self.keep_allocations(info, live, new)
        apply_defaults(info, new)
        causes = immutable_causes(info, live, new, target.subresource)
        if causes:
            raise invalid(info.kind, info.group, target.name, causes)
        if operation == "Update":
            new = record_update(
                live,
                new,
                manager=manager,
                operation="Update",
                now=now(),
                schema=self.schema(info),
                subresource=target.subresource,
                reset_fields=_reset_fields(info, target.subresource),
            )
        if new == live:
            return self.as_version(info, live)
        if dry_run:
            return self.as_version(info, new)
        stored = self.store.update(target.key(), new, expected_rv=expected)
        meta = stored["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone: the deletion it held back happens now.
            deleted = self.store.delete(target.key())
            self.after_delete(info, deleted)
            return self.as_version(info, deleted)
        self.after_write(info, stored)
        return self.as_version(info, stored)

    def patch(
        self, target: Target, kind: str, body: bytes, *, manager: str, force: bool, dry_run: bool
    ) -> tuple[KubeObject, int]:
        info = target.info
        assert target.name is not None
        live = self.store.get(target.key())
        schema = self.schema(info)
        if kind == "apply":
            applied = _decode_yaml(body)
            if not isinstance(applied, dict):
                raise bad_request("an apply patch must be an object")
            applied.setdefault("metadata", {}).setdefault("name", target.name)
            check_applied(info, self.schemas, applied)
            if live is None:
                base = prepare_create(info, applied, target.namespace)
                base = validate_custom_resource(info, self.schemas, base)
                if info.namespaced:
                    self.require_namespace(base["metadata"]["namespace"])
                merged = server_side_apply(
                    None, base, manager=manager, force=force, schema=schema, now=now(),
                    reset_fields=_reset_fields(info, None),
                )  # fmt: skip
                apply_defaults(info, merged)
                merged = self.on_create(info, merged)
                if dry_run:
                    return merged, 201
                stored = self.store.create(target.key(), merged)
                self.after_write(info, stored)
                return self.as_version(info, stored), 201
            merged = server_side_apply(
                live, applied, manager=manager, force=force, schema=schema, now=now(),
                subresource=target.subresource,
                reset_fields=_reset_fields(info, target.subresource),
            )  # fmt: skip
            updated = self.update(
                target, merged, manager=manager, dry_run=dry_run, operation="Apply"
            )
            return updated, 200
        if live is None:
            raise not_found(info.group, info.plural, target.name)
        current = self.as_version(info, copy.deepcopy(live))
        document = _decode_json(body)
        if kind == "json":
            if not isinstance(document, list):
                raise bad_request("a JSON patch must be a list of operations")
            patched = json_patch(current, document)
            names_rv = any(
                op.get("path") == "/metadata/resourceVersion"
                for op in document
                if isinstance(op, dict)
            )
        else:
            if not isinstance(document, dict):
                raise bad_request("a merge patch must be an object")
            if kind == "strategic":
                if schema is None or self.is_custom(info):
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml",
                    )
                patched = strategic_merge_patch(current, document, schema)
            else:
                patched = merge_patch(current, document)
            names_rv = "resourceVersion" in (document.get("metadata") or {})
        check_patched(info, self.schemas, kind, patched, document)
        if not names_rv:
            # A patch applies to whatever is stored; only a resourceVersion it sets itself
            # is a precondition.
            patched.setdefault("metadata", {}).pop("resourceVersion", None)
        return self.update(target, patched, manager=manager, dry_run=dry_run), 200

    def is_custom(self, info: ResourceInfo) -> bool:
        return self.table.crd_name(info.group, info.version, info.plural) is not None

    def check_fields(self, info: ResourceInfo, obj: KubeObject, validation: str) -> None:
        """Fields the schema does not declare: refused with fieldValidation=Strict (kubectl's
        default, since the OpenAPI documents say the server validates), dropped otherwise;
        before that, the body has to decode into the kind's type."""
        check_body(info, self.schemas, obj)
        unknown = unknown_fields(obj, self.schema(info), prune=validation != "Strict")
        if unknown and validation == "Strict":
            listed = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise bad_request(f"strict decoding error: {listed}")

    def delete(self, target: Target, *, dry_run: bool, options: KubeObject) -> KubeObject:
        info = target.info
        assert target.name is not None
        live = self.store.get(target.key())
        if live is None:
            raise not_found(info.group, info.plural, target.name)
        preconditions = options.get("preconditions") or {}
        expected = preconditions.get("resourceVersion")
        if preconditions.get("uid") and preconditions["uid"] != live["metadata"].get("uid"):
            raise ApiError(
                409, "Conflict", "Precondition failed: UID in precondition does not match"
            )
        if dry_run:
            return self.as_version(info, live)
        if info.group == "" and info.plural == "namespaces":
            return self.terminate_namespace(target, live)
        marked = mark_for_deletion(info, live, options, now=now())
        if marked is not None:
            # A finalizer (the caller's, or the collector's for foreground and orphan
            # propagation) holds the object until it is removed.
            if marked != live:
                live = self.store.update(target.key(), marked, expected_rv=expected)
            return self.as_version(info, live)
        deleted = self.store.delete(target.key(), expected_rv=expected)
        self.after_delete(info, deleted)
        return self.as_version(info, deleted)

    # --- rules that depend on the kind ---------------------------------------------

    def require_namespace(self, namespace: str) -> None:
        found = self.store.get(Key("", "namespaces", "", namespace))
        if found is None:
            raise not_found("", "namespaces", namespace)
        if (found.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )

    def on_create(self, info: ResourceInfo, obj: KubeObject) -> KubeObject:
        if info.group == "" and info.plural == "namespaces":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        if info.group == CRD_GROUP and info.plural == "customresourcedefinitions":
            obj["status"] = _crd_status(obj)
        if info.group == "" and info.plural == "secrets":
            obj.setdefault("type", "Opaque")
        if info.group == "" and info.plural == "services":
            self._allocate_service_addresses(obj)
        if info.group == "batch" and info.plural == "jobs":
            generate_job_selector(obj)
        return obj

    def _allocate_service_addresses(self, service: KubeObject) -> None:
        """A ClusterIP from 10.96.0.0/16 and node ports, at create, as the apiserver does."""
        spec = service.setdefault("spec", {})
        kind = spec.setdefault("type", "ClusterIP")
        if kind == "ExternalName":
            return
        existing = self.store.list("", "services", None).items
        if not spec.get("clusterIP"):
            taken = {(s.get("spec") or {}).get("clusterIP") for s in existing}
            address = next(
                ip for ip in (f"10.96.{n // 254}.{n % 254 + 1}" for n in range(1, 65000))
                if ip not in taken
            )  # fmt: skip
            spec["clusterIP"] = address
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if kind in ("NodePort", "LoadBalancer"):
            used = {
                p.get("nodePort")
                for s in existing
                for p in (s.get("spec") or {}).get("ports") or []
            }
            free = (n for n in range(30000, 32768) if n not in used)
            for port in spec.get("ports") or []:
                port.setdefault("nodePort", next(free))

    def keep_allocations(self, info: ResourceInfo, live: KubeObject, new: KubeObject) -> None:
        """An update that leaves out what the server allocated keeps it."""
        if (info.group, info.plural) != ("", "services"):
            return
        before, after = live.get("spec") or {}, new.setdefault("spec", {})
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if field in before and field not in after:
                after[field] = before[field]

    def after_write(self, info: ResourceInfo, obj: KubeObject) -> None:
        if info.group == "" and info.plural == "namespaces":
            self._default_service_account(obj["metadata"]["name"])
        if info.group == CRD_GROUP and info.plural == "customresourcedefinitions":
            self._register_crd(obj)

    def after_delete(self, info: ResourceInfo, obj: KubeObject) -> None:
        if info.group == CRD_GROUP and info.plural == "customresourcedefinitions":
            group = obj["spec"]["group"]
            plural = obj["spec"]["names"]["plural"]
            for item in self.store.list(group, plural, None).items:
                meta = item["metadata"]
                self.store.delete(Key(group, plural, meta.get("namespace") or "", meta["name"]))
            self.table.remove_crd(obj)
            self.schemas.remove_crd(obj)

    def _default_service_account(self, namespace: str) -> None:
        """Every namespace has a ServiceAccount named default, as its controller makes it."""
        key = Key("", "serviceaccounts", namespace, "default")
        accounts = self.table.lookup("", "v1", "serviceaccounts")
        if accounts is None or self.store.get(key) is not None:
            return
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        target = Target(accounts, namespace, None, None)
        with contextlib.suppress(ApiError):  # a namespace being terminated takes nothing new
            self.create(target, body, manager="gitmoor-sandbox", dry_run=False)

    def _register_crd(self, crd: KubeObject) -> None:
        self.table.add_crd(crd)
        self.schemas.add_crd(crd)

    def terminate_namespace(self, target: Target, live: KubeObject) -> KubeObject:
        """Mark it Terminating, then delete what it holds and, last, the namespace."""
        name = live["metadata"]["name"]
        if (live.get("status") or {}).get("phase") != "Terminating":
            marked = copy.deepcopy(live)
            marked["metadata"]["deletionTimestamp"] = now()
            marked["status"] = {"phase": "Terminating"}
            live = self.store.update(target.key(), marked, expected_rv=None)
            task = asyncio.get_running_loop().create_task(self._empty_namespace(target, name))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return self.as_version(target.info, live)

    async def _empty_namespace(self, target: Target, namespace: str) -> None:
        for group, _, preferred in self.table.groups():
            for info in self.table.resources(group, preferred):
                if not info.namespaced:
                    continue
                for item in self.store.list(info.group, info.plural, namespace).items:
                    key = Key(info.group, info.plural, namespace, item["metadata"]["name"])
                    with contextlib.suppress(ApiError):
                        self.store.delete(key)
                await asyncio.sleep(0)
        with contextlib.suppress(ApiError):
            self.store.delete(target.key())

    def schema(self, info: ResourceInfo) -> Any:
        return self.schemas.for_kind(info.group, info.version, info.kind)


def _reset_fields(info: ResourceInfo, subresource: str | None) -> tuple[tuple[str, ...], ...]:
    """What a write may not own: a kind with a status subresource splits spec from status."""
    if "status" not in info.subresources:
        return ()
    return (("spec",),) if subresource == "status" else (("status",),)


def _crd_status(crd: KubeObject) -> KubeObject:
    spec = crd.get("spec") or {}
    stamp = now()
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "acceptedNames": spec.get("names") or {},
        "storedVersions": storage,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
    }


# --- request and response plumbing ------------------------------------------------------


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from None


def _decode_yaml(body: bytes) -> Any:
    try:
        return load(body.decode(), file="request body")
    except (ManifestError, UnicodeDecodeError) as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None


async def _body_object(request: web.Request) -> KubeObject:
    raw = await request.read()
    content_type = request.content_type
    if content_type == protobuf.CONTENT_TYPE:
        return protobuf.decode_object(raw)
    try:
        if content_type in ("application/yaml", "application/x-yaml"):
            document = load(raw.decode(), file="request body")
        else:
            document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, ManifestError) as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(document, dict):
        raise bad_request("couldn't get version/kind; json parse error: not an object")
    return document


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body, separators=(",", ":")), content_type=JSON
    )


def _manager(request: web.Request) -> str:
    given = request.query.get("fieldManager")
    if given:
        return given
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    if any(v != "All" for v in values):
        raise bad_request(f"unsupported dry run values: {values}")
    return bool(values)


def _list_body(
    info: ResourceInfo, items: list[KubeObject], rv: str, cont: str | None, remaining: int | None
) -> KubeObject:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        metadata["continue"] = cont
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": info.list_kind,
        "apiVersion": info.api_version,
        "metadata": metadata,
        "items": [Sandbox.as_version(info, i) for i in items],
    }


# --- the application -------------------------------------------------------------------


def create_app(state_dir: Path, *, token: str, nodes: int = 1) -> web.Application:
    sandbox = Sandbox(state_dir, token=token)

    @web.middleware
    async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not sandbox.authenticated(request.headers.get("Authorization", "")):
            return _json(ApiError(401, "Unauthorized", "Unauthorized").status(), 401)
        try:
            return await handler(request)
        except ApiError as exc:
            return _json(exc.status(), exc.code)

    app = web.Application(middlewares=[errors_and_auth], client_max_size=3 * 1024 * 1024)
    routes = web.RouteTableDef()

    @routes.get("/version")
    async def version(request: web.Request) -> web.Response:
        return _json({
            "major": "1", "minor": "37", "gitVersion": f"v1.37.0-gitmoor.{__version__}",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "",
            "compiler": "gitmoor", "platform": "linux/amd64",
        })  # fmt: skip

    for probe in ("/readyz", "/livez", "/healthz"):
        routes.get(probe)(_ok)

    @routes.get("/api")
    async def core_groups(request: web.Request) -> web.Response:
        if _wants_aggregated(request):
            return _aggregated(discovery.aggregated_discovery(sandbox.table, legacy=True))
        return _json(discovery.api_versions())

    @routes.get("/apis")
    async def groups(request: web.Request) -> web.Response:
        if _wants_aggregated(request):
            return _aggregated(discovery.aggregated_discovery(sandbox.table, legacy=False))
        return _json(discovery.api_group_list(sandbox.table))

    @routes.get("/openapi/v3")
    async def openapi_index(request: web.Request) -> web.Response:
        return _json(discovery.openapi_v3_index(sandbox.table))

    @routes.get("/openapi/v3/{gv:.+}")
    async def openapi_document(request: web.Request) -> web.Response:
        parts = request.match_info["gv"].split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(discovery.openapi_v3_document(sandbox.table, sandbox.schemas, group, version))

    @routes.get("/openapi/v2")
    async def openapi_v2(request: web.Request) -> web.Response:
        if "protobuf" in request.headers.get("Accept", "") and JSON not in request.headers.get(
            "Accept", ""
        ):
            raise ApiError(406, "NotAcceptable", "only application/json is served")
        return _json(discovery.openapi_v2(sandbox.table, sandbox.schemas))

    async def group_version(request: web.Request, group: str, version: str) -> web.Response:
        if not any(g == group and version in vs for g, vs, _ in sandbox.table.groups()):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _json(discovery.api_resource_list(sandbox.table, group, version))

    async def resource(request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info["path"].split("/") if p]
        if request.method == "GET":
            if request.path.startswith("/api/") and len(parts) == 1:
                return await group_version(request, "", parts[0])
            if request.path.startswith("/apis/") and len(parts) == 2:
                return await group_version(request, parts[0], parts[1])
        target = sandbox.target(request)
        return await _dispatch(sandbox, target, request)

    app.router.add_routes(routes)
    app.router.add_route("*", "/api/{path:.*}", resource)
    app.router.add_route("*", "/apis/{path:.*}", resource)
    controllers: list[asyncio.Task[None]] = []

    async def start_controllers(app: web.Application) -> None:
        # Imported here: both modules use this one's Sandbox and Target.
        from gitmoor.sandbox.collector import run_collector
        from gitmoor.sandbox.simulator import run_simulator

        controllers.append(asyncio.create_task(run_simulator(sandbox, nodes=nodes)))
        controllers.append(asyncio.create_task(run_collector(sandbox)))

    async def stop_controllers(app: web.Application) -> None:
        for task in controllers:
            task.cancel()
        await asyncio.gather(*controllers, return_exceptions=True)
        controllers.clear()

    app.on_startup.append(start_controllers)
    app.on_cleanup.append(stop_controllers)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _wants_aggregated(request: web.Request) -> bool:
    return "as=APIGroupDiscoveryList" in request.headers.get("Accept", "")


def _aggregated(body: KubeObject) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")),
        headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE},
    )


async def _dispatch(sandbox: Sandbox, target: Target, request: web.Request) -> web.StreamResponse:
    method = request.method
    dry_run = _dry_run(request) if method in ("POST", "PUT", "PATCH", "DELETE") else False
    info = target.info
    if target.subresource == "scale":
        return await _scale(sandbox, target, request, dry_run)
    if target.subresource == "token" and method == "POST":
        body = await _body_object(request)
        issued = token_request(
            sandbox.tokens, body, namespace=target.namespace or "", name=target.name or "",
            lookup=sandbox.lookup,
        )  # fmt: skip
        return _json(issued, 201)
    if (info.group, info.plural, method) == ("authentication.k8s.io", "tokenreviews", "POST"):
        review = token_review(sandbox.tokens, await _body_object(request), lookup=sandbox.lookup)
        return _json(review, 201)
    if method == "GET" and target.name is None:
        if request.query.get("watch") in ("true", "1"):
            return await _watch(sandbox, target, request)
        return _list(sandbox, target, request)
    if method == "GET":
        obj = sandbox.read(target)
        view = _table_view(sandbox, info, request)
        return _json(obj if view is None else view.of_object(obj, now=datetime.now(UTC)))
    validation = request.query.get("fieldValidation", "")
    if method == "POST" and target.name is None:
        body = await _body_object(request)
        sandbox.check_fields(info, body, validation)
        created = sandbox.create(target, body, manager=_manager(request), dry_run=dry_run)
        return _json(created, 201)
    if method == "PUT" and target.name is not None:
        body = await _body_object(request)
        sandbox.check_fields(info, body, validation)
        return _json(sandbox.update(target, body, manager=_manager(request), dry_run=dry_run))
    if method == "PATCH" and target.name is not None:
        kind = PATCH_TYPES.get(request.content_type)
        if kind is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media "
                f"types include: {', '.join(PATCH_TYPES)}",
            )
        force = request.query.get("force") in ("true", "1")
        if force and kind != "apply":
            raise bad_request("force is only supported for apply patches")
        if kind == "apply" and "fieldManager" not in request.query:
            raise bad_request("PATCH requests with apply-patch content type require fieldManager")
        obj, status = sandbox.patch(
            target,
            kind,
            await request.read(),
            manager=_manager(request),
            force=force,
            dry_run=dry_run,
        )
        return _json(obj, status)
    if method == "DELETE":
        options = await _delete_options(request)
        if target.name is not None:
            return _json(sandbox.delete(target, dry_run=dry_run, options=options))
        return _delete_collection(sandbox, target, request, dry_run, options)
    raise ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({info.plural})",
    )


def _selectors(
    sandbox: Sandbox, info: ResourceInfo, request: web.Request
) -> tuple[LabelSelector | None, FieldSelector | None]:
    labels = request.query.get("labelSelector")
    fields = request.query.get("fieldSelector")
    return (
        LabelSelector.parse(labels) if labels else None,
        FieldSelector.parse(fields, field_labels(info, _crd(sandbox, info))) if fields else None,
    )


def _crd(sandbox: Sandbox, info: ResourceInfo) -> KubeObject | None:
    """The CRD that serves a resource; None for a built-in one."""
    crd_name = sandbox.table.crd_name(info.group, info.version, info.plural)
    if crd_name is None:
        return None
    return sandbox.store.get(Key(CRD_GROUP, "customresourcedefinitions", "", crd_name))


def _table_view(sandbox: Sandbox, info: ResourceInfo, request: web.Request) -> TableView | None:
    """The Table a get, list or watch asks for in its Accept header (kubectl get does);
    None when it wants the objects themselves."""
    api_version = table_version(",".join(request.headers.getall("Accept", [])))
    if api_version is None:
        return None
    include = include_object(request.query.get("includeObject"))
    return TableView(printer_for(info, _crd(sandbox, info)), api_version, include)


def _list(sandbox: Sandbox, target: Target, request: web.Request) -> web.Response:
    labels, fields = _selectors(sandbox, target.info, request)
    limit = int(request.query["limit"]) if request.query.get("limit") else None
    result = sandbox.store.list(
        target.info.group, target.info.plural, target.namespace, labels=labels, fields=fields,
        limit=limit, continue_token=request.query.get("continue") or None,
    )  # fmt: skip
    view = _table_view(sandbox, target.info, request)
    if view is not None:
        return _json(view.of_list(
            [Sandbox.as_version(target.info, item) for item in result.items],
            now=datetime.now(UTC), resource_version=result.resource_version,
            continue_token=result.continue_token, remaining=result.remaining,
        ))  # fmt: skip
    return _json(
        _list_body(
            target.info,
            result.items,
            result.resource_version,
            result.continue_token,
            result.remaining,
        )
    )


async def _delete_options(request: web.Request) -> KubeObject:
    """The DeleteOptions of a request: its body, and the query parameters that say the same."""
    options = await _body_object(request) if (await request.read()).strip() else {}
    for name in ("propagationPolicy", "orphanDependents", "gracePeriodSeconds"):
        if name in request.query and name not in options:
            value: Any = request.query[name]
            if name == "orphanDependents":
                value = value in ("true", "1")
            elif name == "gracePeriodSeconds":
                value = int(value)
            options[name] = value
    return options


def _delete_collection(
    sandbox: Sandbox, target: Target, request: web.Request, dry_run: bool, options: KubeObject
) -> web.Response:
    labels, fields = _selectors(sandbox, target.info, request)
    result = sandbox.store.list(
        target.info.group, target.info.plural, target.namespace, labels=labels, fields=fields
    )
    deleted = []
    for item in result.items:
        one = Target(target.info, item["metadata"].get("namespace"), item["metadata"]["name"], None)
        with contextlib.suppress(ApiError):
            deleted.append(sandbox.delete(one, dry_run=dry_run, options=options))
    return _json(_list_body(target.info, deleted, str(sandbox.store.current_rv()), None, None))


async def _watch(sandbox: Sandbox, target: Target, request: web.Request) -> web.StreamResponse:
    info = target.info
    labels, fields = _selectors(sandbox, target.info, request)
    since = request.query.get("resourceVersion") or None
    timeout = float(request.query.get("timeoutSeconds") or WATCH_TIMEOUT_SECONDS)
    bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
    view = _table_view(sandbox, info, request)
    headers = True  # a Table watch sends its column definitions with the first event only
    response = web.StreamResponse(headers={"Content-Type": JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def send(event_type: str, obj: KubeObject) -> None:
        nonlocal headers
        if view is not None and event_type != "ERROR":
            obj = view.of_object(obj, now=datetime.now(UTC), headers=headers)
            headers = False
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
        await response.write(line.encode() + b"\n")

    try:
        # With no resourceVersion (or "0") the store first sends the current objects as
        # ADDED, under the same lock as the watch starts, so nothing falls in between.
        initial = request.query.get("sendInitialEvents")
        watch = sandbox.store.watch(
            info.group, info.plural, target.namespace, since_rv=since, labels=labels,
            fields=fields, send_initial_events=None if initial is None else initial == "true",
        )  # fmt: skip
    except ApiError as exc:
        await send("ERROR", exc.status())
        return response
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    events = watch.__aiter__()
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = min(remaining, BOOKMARK_SECONDS) if bookmarks else remaining
            try:
                event_type, obj = await asyncio.wait_for(events.__anext__(), wait)
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    rv = str(sandbox.store.current_rv())
                    await send(
                        "BOOKMARK",
                        {
                            "kind": info.kind,
                            "apiVersion": info.api_version,
                            "metadata": {"resourceVersion": rv},
                        },
                    )
                continue
            except StopAsyncIteration:
                break
            if event_type == "BOOKMARK":
                # The store's bookmarks (the end of the initial events) carry metadata only.
                obj = {"kind": info.kind, "apiVersion": info.api_version, **obj}
            await send(event_type, Sandbox.as_version(info, obj))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watch.close()
    return response


async def _scale(
    sandbox: Sandbox, target: Target, request: web.Request, dry_run: bool
) -> web.Response:
    obj = sandbox.read(target)
    if request.method in ("PUT", "PATCH"):
        if request.method == "PUT":
            scale = await _body_object(request)
        else:
            kind = PATCH_TYPES.get(request.content_type, "merge")
            document = _decode_json(await request.read())
            scale = (
                json_patch(_scale_of(obj), document)
                if kind == "json"
                else merge_patch(_scale_of(obj), document)
            )
        replicas = (scale.get("spec") or {}).get("replicas")
        if replicas is None:
            replicas = 0  # unset or null: Go's zero
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            raise bad_request(
                'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                f"{json_kind(replicas)} into Go struct field ScaleSpec.spec.replicas of type int32"
            )
        if replicas < 0:
            message = f"Invalid value: {replicas}: must be greater than or equal to 0"
            cause = {"reason": "FieldValueInvalid", "message": message, "field": "spec.replicas"}
            raise invalid("Scale", "autoscaling", target.name or "", [cause])
        changed = copy.deepcopy(obj)
        changed.setdefault("spec", {})["replicas"] = replicas
        main = Target(target.info, target.namespace, target.name, None)
        obj = sandbox.update(main, changed, manager=_manager(request), dry_run=dry_run)
    return _json(_scale_of(obj))


def _scale_of(obj: KubeObject) -> KubeObject:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }


async def serve(
    state_dir: Path, *, host: str = "127.0.0.1", port: int, nodes: int = 1, pki: Pki
) -> None:
    """Serve HTTPS until cancelled (SIGTERM in the background process)."""
    context = pki.server_ssl_context()
    app = create_app(state_dir, token=pki.token, nodes=nodes)
    # Cancelling a handler when its client goes away ends watches with their connection.
    # On shutdown, open watches get a second, not aiohttp's minute, before their
    # connections are closed: clients then see the server go and relist when it is back,
    # instead of waiting on a stream nobody writes to.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
