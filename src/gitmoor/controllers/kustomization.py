"""The Kustomization controller: render at the source's revision, apply, prune, wait.

One reconcile, in order, each step able to stop it with Ready False and a reason:

1. dependsOn: every dependency Ready at its latest generation (and, sharing this
   Kustomization's source, at the same revision) — else ``DependencyNotReady``;
2. the source's artifact — else ``ArtifactFailed``;
3. render (kustomize, postBuild with substituteFrom read from the cluster) — else
   ``BuildFailed``; nothing is applied or pruned;
4. staged server-side apply (:mod:`gitmoor.apply.engine`) — else ``ReconciliationFailed``
   and nothing is pruned;
5. prune what left the inventory (``spec.prune``);
6. health: everything applied (``wait``) or ``healthChecks``, bounded by ``timeout`` —
   else ``HealthCheckFailed``.

Objects of a kind whose controller is not running here (a HelmRelease before gitmoor
runs releases) are not waited for: nothing would ever make them Ready; the Healthy
condition's message says which were left out.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import duration_seconds
from gitmoor.api.registry import GROUPS, parse_resource, split_api_version
from gitmoor.apply import engine
from gitmoor.apply.engine import ApplyResult, Owner, apply_objects, prune
from gitmoor.apply.health import Health, Status, aggregate, health
from gitmoor.apply.inventory import ObjectRef, entries, read_inventory, stale
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import (
    Context,
    deleting,
    dependencies,
    ready_at_latest,
    ready_status,
    suspended,
    with_ready,
    with_stalled,
)
from gitmoor.controllers.gitrepository import KIND as GIT_REPOSITORY
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.controllers.manager import Key, Result
from gitmoor.errors import ClusterError, GitmoorError, InputError, Location, RenderError
from gitmoor.manifests import KubeObject
from gitmoor.observe.events import revision_annotation
from gitmoor.render.kustomization import render_kustomization
from gitmoor.render.sops import secret_keys

KIND = Kind("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations", True)
CONTROLLER = "kustomize-controller"
HEALTH_POLL = 0.5


class KustomizationReconciler:
    kind = KIND

    def __init__(self, context: Context) -> None:
        self.context = context

    # --- what else queues a Kustomization ------------------------------------------------

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        changed = new if new is not None else old
        if changed is None:
            return []
        meta = changed.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if kind == GIT_REPOSITORY.kind and artifact_revision(old) != artifact_revision(new):
            return [_key(ks) for ks in self._all() if _source_of(ks) == (kind, namespace, name)]
        if kind == KIND.kind and _became_ready(old, new):
            return [_key(ks) for ks in self._all() if (namespace, name) in dependencies(ks)]
        return []

    def _all(self) -> list[KubeObject]:
        return self.context.manager.objects(KIND.kind)

    # --- one reconcile -----------------------------------------------------------------

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        meta = obj["metadata"]
        try:
            model = parse_resource(obj)
            assert isinstance(model, Kustomization)
        except InputError as exc:
            await context.write_status(obj, with_stalled(obj, conditions.INVALID_SPEC, str(exc)))
            return Result(None)
        owner = Owner(model.name, model.namespace, force=bool(model.spec.force))
        if deleting(obj):
            await self._finalize(obj, model, owner)
            return Result(None)
        last_applied = str((obj.get("status") or {}).get("lastAppliedRevision") or "")
        if suspended(obj):
            context.finished(obj, started=started, revision=last_applied,
                             ready=ready_status(obj), result="suspended")  # fmt: skip
            return Result(None)
        obj = await context.ensure_finalizer(obj)
        interval = duration_seconds(model.spec.interval)
        retry = duration_seconds(model.spec.retry_interval or model.spec.interval)
        timeout = duration_seconds(model.spec.timeout or model.spec.interval)

        waiting = self._unready_dependency(obj, model)
        if waiting is not None:
            message = f"dependency '{waiting}' is not ready"
            await self._fail(obj, conditions.DEPENDENCY_NOT_READY, message, started,
                             last_applied, warn=False)  # fmt: skip
            return Result(context.dependency_requeue)

        source = self._source(model)
        revision = artifact_revision(source)
        artifact_dir = _artifact_dir(context, source)
        if source is None or artifact_dir is None:
            ref = model.spec.source_ref
            message = (
                f"Source artifact not found: {ref.kind} "
                f"'{ref.namespace or model.namespace}/{ref.name}' has no artifact yet"
            )
            await self._fail(obj, conditions.ARTIFACT_FAILED, message, started, last_applied,
                             warn=False)  # fmt: skip
            return Result(retry, failed=True)

        try:
            variables = await self._substitute_from(model)
            keys = await self._decryption_keys(model)
            rendered = await asyncio.to_thread(
                render_kustomization, artifact_dir, model,
                lookup=lambda kind, name: variables.get((kind, name)), decryption_keys=keys,
            )  # fmt: skip
        except (RenderError, InputError) as exc:
            await self._fail(obj, conditions.BUILD_FAILED, str(exc), started, revision,
                             attempted=revision)  # fmt: skip
            return Result(retry, failed=True)

        old_inventory = read_inventory(obj.get("status"))
        try:
            applied = await apply_objects(context.cluster, rendered.objects, owner)
            pruned = (
                await prune(context.cluster, stale(old_inventory, applied.refs), owner)
                if model.spec.prune
                else []
            )
        except ClusterError as exc:
            await self._fail(obj, conditions.RECONCILIATION_FAILED, str(exc), started,
                             revision, attempted=revision)  # fmt: skip
            return Result(retry, failed=True)
        inventory = _inventory(applied, old_inventory, prune_enabled=model.spec.prune)
        await self._report_changes(obj, applied, pruned, revision)

        checked, skipped = self._health_targets(model, applied)
        verdict = await self._wait_healthy(checked, timeout) if checked else None
        healthy = verdict is None or verdict.status == Status.CURRENT
        status_extra: dict[str, Any] = {
            "inventory": {"entries": entries(inventory)},
            "lastAttemptedRevision": revision,
        }
        if not healthy and verdict is not None:
            message = f"health check failed after {timeout:g}s: {verdict.message}"
            status = with_ready(obj, False, conditions.HEALTH_CHECK_FAILED, message,
                                **status_extra)  # fmt: skip
            status["conditions"] = conditions.set_condition(
                status["conditions"], conditions.HEALTHY, False,
                conditions.HEALTH_CHECK_FAILED, message, generation=meta.get("generation"),
            )  # fmt: skip
            written = await context.write_status(obj, status)
            await context.recorder(CONTROLLER).record(
                written, type="Warning", reason=conditions.HEALTH_CHECK_FAILED,
                message=message, annotations=revision_annotation(written, revision),
            )  # fmt: skip
            context.finished(written, started=started, revision=last_applied, ready="False",
                             source_name=_source_of(obj)[2])  # fmt: skip
            return Result(retry, failed=True)

        status = with_ready(obj, True, conditions.RECONCILIATION_SUCCEEDED,
                            f"Applied revision: {revision}", lastAppliedRevision=revision,
                            **status_extra)  # fmt: skip
        if checked or skipped:
            note = f"Health check passed in {time.monotonic() - started:.1f}s"
            if skipped:
                note += f"; not checked (no controller runs here for them): {', '.join(skipped)}"
            status["conditions"] = conditions.set_condition(
                status["conditions"], conditions.HEALTHY, True, conditions.SUCCEEDED, note,
                generation=meta.get("generation"),
            )  # fmt: skip
        written = await context.write_status(obj, status)
        context.finished(written, started=started, revision=revision, ready="True",
                         source_name=_source_of(obj)[2])  # fmt: skip
        return Result(interval)

    # --- the steps -----------------------------------------------------------------------

    def _unready_dependency(self, obj: KubeObject, model: Kustomization) -> str | None:
        for namespace, name in dependencies(obj):
            dependency = self.context.manager.get(KIND.kind, namespace, name)
            if dependency is None or not ready_at_latest(dependency):
                return f"{namespace}/{name}"
            if _source_of(dependency) == _source_of(obj):
                source = self._source(model)
                current = artifact_revision(source)
                done = (dependency.get("status") or {}).get("lastAppliedRevision")
                if current and done != current:
                    return f"{namespace}/{name}"
        return None

    def _source(self, model: Kustomization) -> KubeObject | None:
        ref = model.spec.source_ref
        if ref.kind != GIT_REPOSITORY.kind:
            return None
        return self.context.manager.get(ref.kind, ref.namespace or model.namespace, ref.name)

    async def _substitute_from(self, model: Kustomization) -> dict[tuple[str, str], dict[str, str]]:
        """The ConfigMaps and Secrets postBuild.substituteFrom names, read from the cluster
        (a missing optional one is simply absent; the renderer decides)."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        post_build = model.spec.post_build
        for ref in (post_build.substitute_from or []) if post_build else []:
            obj = await self.context.cluster.get("v1", ref.kind, ref.name, model.namespace)
            if obj is None:
                if not ref.optional:
                    raise InputError(
                        f"substituteFrom: {ref.kind} '{model.namespace}/{ref.name}' not found",
                        Location(object=model.display, field="spec.postBuild.substituteFrom"),
                    )
                continue
            data = dict(obj.get("data") or {})
            if ref.kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            found[(ref.kind, ref.name)] = {str(k): str(v) for k, v in data.items()}
        return found

    async def _decryption_keys(self, model: Kustomization) -> dict[str, bytes] | None:
        """The data of the Secret ``spec.decryption.secretRef`` names, read from the cluster."""
        ref = model.spec.decryption.secret_ref if model.spec.decryption else None
        if ref is None:
            return None
        secret = await self.context.cluster.get("v1", "Secret", ref.name, model.namespace)
        if secret is None:
            where = Location(object=model.display, field="spec.decryption.secretRef")
            raise InputError(f"decryption Secret '{model.namespace}/{ref.name}' not found", where)
        return secret_keys(secret)

    def _health_targets(
        self, model: Kustomization, applied: ApplyResult
    ) -> tuple[list[ObjectRef], list[str]]:
        if model.spec.wait:
            targets = [c.ref for c in applied.changes if c.action != engine.SKIPPED]
        else:
            targets = []
            for check in model.spec.health_checks or []:
                group, version = split_api_version(check.api_version or "v1")
                namespace = check.namespace or model.namespace
                targets.append(ObjectRef(group, check.kind, namespace, check.name, version))
        checked: list[ObjectRef] = []
        skipped: list[str] = []
        for ref in targets:
            if ref.group in GROUPS and not self.context.manager.handles(ref.kind):
                skipped.append(str(ref))
            else:
                checked.append(ref)
        return checked, skipped

    async def _wait_healthy(self, refs: list[ObjectRef], timeout: float) -> Health:
        deadline = time.monotonic() + timeout
        cluster = self.context.cluster
        while True:
            results = []
            for ref in refs:
                try:
                    live = await cluster.get(ref.api_version or "v1", ref.kind, ref.name,
                                             ref.namespace or None)  # fmt: skip
                except ClusterError as exc:
                    results.append((str(ref), Health(Status.UNKNOWN, exc.message)))
                    continue
                results.append((str(ref), health(live)))
            verdict = aggregate(results)
            if verdict.status == Status.CURRENT or verdict.status == Status.FAILED:
                return verdict
            if time.monotonic() >= deadline:
                return verdict
            await asyncio.sleep(HEALTH_POLL)

    async def _report_changes(
        self, obj: KubeObject, applied: ApplyResult, pruned: list[engine.Change], revision: str
    ) -> None:
        lines = [str(c) for c in [*applied.changed(), *pruned] if c.action != engine.SKIPPED]
        if lines:
            await self.context.recorder(CONTROLLER).record(
                obj, type="Normal", reason="Progressing", message="\n".join(lines),
                annotations=revision_annotation(obj, revision),
            )  # fmt: skip

    async def _fail(
        self,
        obj: KubeObject,
        reason: str,
        message: str,
        started: float,
        revision: str,
        *,
        attempted: str | None = None,
        warn: bool = True,
    ) -> None:
        extra = {"lastAttemptedRevision": attempted} if attempted else {}
        written = await self.context.write_status(obj, with_ready(obj, False, reason, message,
                                                                  **extra))  # fmt: skip
        if warn:
            await self.context.recorder(CONTROLLER).record(
                written, type="Warning", reason=reason, message=message,
                annotations=revision_annotation(written, attempted or revision),
            )  # fmt: skip
        self.context.finished(written, started=started, revision=revision, ready="False",
                              source_name=_source_of(obj)[2],
                              error=GitmoorError(message) if warn else None,
                              result=None if warn else reason)  # fmt: skip

    async def _finalize(self, obj: KubeObject, model: Kustomization, owner: Owner) -> None:
        """On deletion, prune what this Kustomization applied (Flux's default policy: prune
        when ``spec.prune``; ``deletionPolicy: Orphan`` keeps it, ``Delete`` always prunes)."""
        policy = model.spec.deletion_policy or "MirrorPrune"
        remove = policy == "Delete" or (policy != "Orphan" and model.spec.prune)
        if remove and not suspended(obj):
            # A failure leaves the finalizer on: the manager retries, the object stays.
            await prune(self.context.cluster, read_inventory(obj.get("status")), owner)
        await self.context.drop_finalizer(obj)
        self.context.metrics.forget(KIND.kind, model.namespace, model.name)


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return Key(KIND.kind, meta.get("namespace", ""), meta.get("name", ""))


def _source_of(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    ref = (obj.get("spec") or {}).get("sourceRef") or {}
    namespace = ref.get("namespace") or (obj.get("metadata") or {}).get("namespace", "")
    return (str(ref.get("kind", "")), namespace, str(ref.get("name", "")))


def _became_ready(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    if new is None:
        return False
    was = old is not None and ready_at_latest(old)
    revision_moved = (old or {}).get("status", {}).get("lastAppliedRevision") != (
        new.get("status") or {}
    ).get("lastAppliedRevision")
    return ready_at_latest(new) and (not was or revision_moved)


def _artifact_dir(context: Context, source: Mapping[str, Any] | None) -> Path | None:
    artifact = ((source or {}).get("status") or {}).get("artifact") or {}
    digest = str(artifact.get("digest") or "").removeprefix("sha256:")
    if not digest:
        return None
    path = context.store.artifact_path(digest)
    return path if path.is_dir() else None


def _inventory(
    applied: ApplyResult,
    old: list[ObjectRef],
    *,
    prune_enabled: bool,
) -> list[ObjectRef]:
    """Everything in Git now; without pruning, what left Git stays listed (it is still
    this Kustomization's, and a later ``prune: true`` removes it)."""
    refs = list(applied.refs)
    if not prune_enabled:
        current = {r.identity for r in refs}
        refs += [r for r in old if r.identity not in current]
    return refs
