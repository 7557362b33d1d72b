"""The HelmRelease controller: real Helm releases, remediated as helm-controller does.

One reconcile:

1. dependsOn: other HelmReleases Ready at their latest generation — else
   ``DependencyNotReady``;
2. the chart (HelmRepository, OCIRepository ``chartRef``, or a GitRepository path) and the
   values (valuesFrom ConfigMaps and Secrets read from the cluster, then inline values) —
   else ``ArtifactFailed`` / ``InitFailed``;
3. the action: install when there is no release; upgrade when the chart version or the
   values' digest differs from what the release runs, when the release is not deployed, or
   when ``reconcile.fluxcd.io/forceAt`` asks; nothing when it is in sync (an unchanged
   commit never upgrades);
4. drift, when the release is in sync and ``driftDetection.mode`` is ``enabled`` or
   ``warn``: the release manifest's objects compared with the live ones
   (:mod:`gitmoor.apply.drift`), drift confirmed by a server-side dry-run apply, reported
   as a Warning Event ``DriftDetected``; with ``enabled`` the drifted objects are applied
   again (server-side, forced, as the field manager Helm applies with; deleted ones
   recreated) and a ``DriftCorrected`` Event names them;
5. on failure, remediation as configured: a failed install is uninstalled, a failed upgrade
   rolled back to the last deployed revision (or uninstalled, ``strategy: uninstall``),
   while retries remain or, once they are spent, when ``remediateLastFailure`` says so;
   with retries spent the release is Stalled (``RetriesExceeded``) until the spec changes
   or ``reconcile.fluxcd.io/resetAt`` resets the counters;
6. status as helm-controller writes it: ``history`` snapshots matching Helm's own history
   (newest first, with each revision's config digest), Ready / Released / Remediated
   conditions, lastAttempted{Revision,ConfigDigest,Generation,ReleaseAction}, failure
   counters; Events for each action.

Deleting a HelmRelease uninstalls its release (a finalizer holds the object until then).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gitmoor import releases
from gitmoor.api.helm import HelmRelease
from gitmoor.api.meta import duration_seconds
from gitmoor.api.registry import parse_resource
from gitmoor.apply import drift
from gitmoor.apply.engine import wait_established
from gitmoor.apply.plan import sort_key
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import (
    Context,
    base_status,
    deleting,
    dependencies,
    ready_at_latest,
    ready_status,
    suspended,
    with_ready,
    with_stalled,
)
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.controllers.manager import Key, Result
from gitmoor.controllers.releasecharts import (
    MissingSourceError,
    chart_source,
    chart_version,
    resolve_chart,
    values_lookup,
)
from gitmoor.errors import (
    ClusterError,
    GitmoorError,
    InputError,
    Location,
    ReleaseError,
    RenderError,
)
from gitmoor.manifests import KubeObject, ObjectKey, key_of, load_all
from gitmoor.releases import Release, Target
from gitmoor.render.helm import prepared_chart, release_crds
from gitmoor.render.repository import ChartSource
from gitmoor.render.values import compose_values, values_digest

log = logging.getLogger(__name__)

KIND = Kind("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases", True)
CONTROLLER = "helm-controller"
# The field manager of the Helm SDK's applies: Helm names it after the process (the base
# name of argv[0], pkg/kube getManagedFieldsManager). Drift is corrected as the same
# manager, so the fields put back stay Helm's to change in the next upgrade (helm-controller
# gets the same by naming Helm's manager "helm-controller").
HELM_FIELD_MANAGER = (Path(sys.orig_argv[0]).name if sys.orig_argv else "") or "unknown"
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_HISTORY = 5
SNAPSHOTS = 5
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"

RELEASED = "Released"
REMEDIATED = "Remediated"
INSTALL_SUCCEEDED = "InstallSucceeded"
UPGRADE_SUCCEEDED = "UpgradeSucceeded"
INSTALL_FAILED = "InstallFailed"
UPGRADE_FAILED = "UpgradeFailed"
ROLLBACK_SUCCEEDED = "RollbackSucceeded"
UNINSTALL_SUCCEEDED = "UninstallSucceeded"
RETRIES_EXCEEDED = "RetriesExceeded"
INIT_FAILED = "InitFailed"
TEST_SUCCESS = "TestSuccess"
TEST_SUCCEEDED = "TestSucceeded"
TEST_FAILED = "TestFailed"
STATE_ERROR = "StateError"
DRIFT_DETECTED = "DriftDetected"
DRIFT_CORRECTED = "DriftCorrected"
DRIFT_CORRECTION_FAILED = "DriftCorrectionFailed"


class HelmReleaseReconciler:
    kind = KIND

    def __init__(self, context: Context, *, kubeconfig: Path | None) -> None:
        self.context = context
        self.kubeconfig = kubeconfig

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        if kind in _SOURCE_KINDS:
            # A source's new artifact (a new index, a new tag, a new commit) may carry a
            # new chart: look at the releases that use it now rather than at their interval.
            # A source that just appeared counts too: a release may be waiting for it.
            changed = new if new is not None else old
            if changed is None:
                return []
            if old is not None and artifact_revision(old) == artifact_revision(new):
                return []
            meta = changed.get("metadata") or {}
            source = (kind, meta.get("namespace", ""), meta.get("name", ""))
            return [
                Key(KIND.kind, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                for o in self.context.manager.objects(KIND.kind)
                if chart_source(o) == source
            ]
        if kind != KIND.kind or new is None:
            return []
        meta = new.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if not ready_at_latest(new) or (old is not None and ready_at_latest(old)):
            return []
        return [
            Key(KIND.kind, (o.get("metadata") or {}).get("namespace", ""), o["metadata"]["name"])
            for o in self.context.manager.objects(KIND.kind)
            if (namespace, name) in dependencies(o)
        ]

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        try:
            model = parse_resource(obj)
            assert isinstance(model, HelmRelease)
        except InputError as exc:
            await context.write_status(obj, with_stalled(obj, conditions.INVALID_SPEC, str(exc)))
            return Result(None)
        target = self._target(model)
        if deleting(obj):
            if not suspended(obj):
                await asyncio.to_thread(
                    releases.uninstall,
                    target,
                    timeout=self._timeout(model, "uninstall"),
                    keep_history=bool(model.spec.uninstall and model.spec.uninstall.keep_history),
                    wait=not (model.spec.uninstall and model.spec.uninstall.disable_wait),
                    options=_options(model, "uninstall"),
                )
            await context.drop_finalizer(obj)
            context.metrics.forget(KIND.kind, model.namespace, model.name)
            return Result(None)
        status = dict(obj.get("status") or {})
        if suspended(obj):
            context.finished(
                obj,
                started=started,
                revision=_revision(status),
                ready=ready_status(obj),
                result="suspended",
            )
            return Result(None)
        obj = await context.ensure_finalizer(obj)
        interval = duration_seconds(model.spec.interval)

        waiting = self._unready_dependency(obj)
        if waiting is not None:
            await self._fail(
                obj,
                conditions.DEPENDENCY_NOT_READY,
                f"dependency '{waiting}' is not ready",
                started,
                warn=False,
            )
            return Result(context.dependency_requeue)

        annotations = obj["metadata"].get("annotations") or {}
        extra: dict[str, Any] = {}
        if annotations.get(RESET_AT) and annotations[RESET_AT] != status.get("lastHandledResetAt"):
            extra["lastHandledResetAt"] = annotations[RESET_AT]
            status.update(installFailures=0, upgradeFailures=0, failures=0)
        forced = bool(annotations.get(FORCE_AT)) and annotations[FORCE_AT] != status.get(
            "lastHandledForceAt"
        )
        if forced:
            extra["lastHandledForceAt"] = annotations[FORCE_AT]

        try:
            chart = await resolve_chart(self.context, model)
            version = await asyncio.to_thread(chart_version, model, chart)
            values = compose_values(model, await values_lookup(self.context, model))
        except MissingSourceError as exc:
            # Applied before its source (both often come in one Kustomization): wait
            # quietly; the source's arrival queues the release again.
            await self._fail(obj, conditions.ARTIFACT_FAILED, exc.message, started, warn=False)
            return Result(context.dependency_requeue)
        except ReleaseError as exc:
            await self._fail(obj, conditions.ARTIFACT_FAILED, exc.message, started)
            return Result(interval, failed=True)
        except (RenderError, InputError, GitmoorError) as exc:
            await self._fail(obj, INIT_FAILED, exc.message, started)
            return Result(interval, failed=True)
        digest = values_digest(values)
        current = await asyncio.to_thread(releases.current, target)
        snapshots = list(status.get("history") or [])
        in_sync = (
            current is not None
            and current.deployed
            and current.chart_version == version
            and bool(snapshots)
            and snapshots[0].get("configDigest") == digest
            and snapshots[0].get("version") == current.revision
        )
        generation = obj["metadata"].get("generation")
        attempted = dict(
            lastAttemptedRevision=version,
            lastAttemptedConfigDigest=digest,
            lastAttemptedGeneration=generation,
            storageNamespace=target.storage_namespace,
        )
        if in_sync and not forced:
            assert current is not None
            try:
                corrected = await self._drift(obj, model, target, current)
            except GitmoorError as exc:
                message = f"Could not determine release state: {exc.message}"
                await self._fail(obj, STATE_ERROR, message, started)
                return Result(interval, failed=True)
            written_as_now = {**base_status(obj), **attempted, **extra}
            stale = {k: v for k, v in written_as_now.items() if status.get(k) != v}
            if conditions.is_true(obj) and set(stale) <= _ACKNOWLEDGEMENTS:
                if stale:  # a request to acknowledge: Helm's history has nothing new
                    await context.write_status(obj, stale)
            else:
                await self._succeeded(
                    obj,
                    model,
                    current,
                    digest,
                    snapshots,
                    {**attempted, **extra},
                    action=None,
                )
            context.finished(obj, started=started, revision=version, ready="True")
            return Result(interval, failed=not corrected)

        action = "install" if current is None or current.status == "uninstalled" else "upgrade"
        failures_key = "installFailures" if action == "install" else "upgradeFailures"
        retries = self._retries(model, action)
        spent = int(status.get(failures_key) or 0)
        same_attempt = (
            status.get("lastAttemptedRevision") == version
            and status.get("lastAttemptedConfigDigest") == digest
            and status.get("lastAttemptedGeneration") == generation
        )
        if same_attempt and retries >= 0 and spent > retries and not forced:
            message = f"Failed to {action} after {spent} attempt(s)"
            written = await context.write_status(
                obj, {**with_stalled(obj, RETRIES_EXCEEDED, message), **extra}
            )
            context.finished(written, started=started, revision=version, ready="False")
            return Result(None)

        try:
            await self._crds(model, chart, action)
            # Helm is handed the chart without its crds/: they were applied above, by policy.
            with prepared_chart(
                model, chart.path, without_crds=True, version=version
            ) as helm_chart:
                released = await asyncio.to_thread(
                    self._act, action, model, target, helm_chart, values
                )
        except ReleaseError as exc:
            failures = (spent + 1) if same_attempt else 1
            return await self._failed(
                obj,
                model,
                target,
                action,
                exc,
                failures,
                retries,
                {**attempted, **extra},
                snapshots,
                started,
                interval,
            )
        except RenderError as exc:
            await self._fail(obj, INIT_FAILED, exc.message, started)
            return Result(interval, failed=True)
        tested = await self._test(model, target, released)
        if tested is not None and not tested[0] and not _ignores_test_failures(model):
            failures = (spent + 1) if same_attempt else 1
            return await self._failed(
                obj, model, target, action, ReleaseError(tested[1], Location(object=model.display)),
                failures, retries, {**attempted, **extra}, snapshots, started, interval,
                tested=tested,
            )  # fmt: skip
        await self._succeeded(
            obj,
            model,
            released,
            digest,
            snapshots,
            {**attempted, **extra, "lastAttemptedReleaseAction": action},
            action=action,
            tested=tested,
        )
        context.finished(obj, started=started, revision=version, ready="True")
        return Result(interval)

    # --- the steps -----------------------------------------------------------------------

    def _target(self, model: HelmRelease) -> Target:
        return Target(
            self.kubeconfig,
            model.release_name,
            model.release_namespace,
            model.storage_namespace,
            model.display,
        )

    def _timeout(self, model: HelmRelease, action: str) -> float:
        part = getattr(model.spec, action, None)
        value = (part.timeout if part is not None else None) or model.spec.timeout
        return duration_seconds(value) if value else DEFAULT_TIMEOUT

    def _retries(self, model: HelmRelease, action: str) -> int:
        part = getattr(model.spec, action, None)
        remediation = part.remediation if part is not None else None
        return int(remediation.retries or 0) if remediation is not None else 0

    def _remediate_last(self, model: HelmRelease, action: str) -> bool:
        part = getattr(model.spec, action, None)
        remediation = part.remediation if part is not None else None
        if remediation is not None and remediation.remediate_last_failure is not None:
            return bool(remediation.remediate_last_failure)
        return self._retries(model, action) > 0

    async def _test(
        self, model: HelmRelease, target: Target, released: Release
    ) -> tuple[bool, str] | None:
        """Helm's tests after a successful action, when ``spec.test.enable``: (passed, what
        to report), or None when tests are not asked for."""
        test = model.spec.test
        if test is None or not test.enable:
            return None
        where = f"release {target.namespace}/{target.name}.v{released.revision}"
        try:
            await asyncio.to_thread(releases.test, target, timeout=self._timeout(model, "test"))
        except ReleaseError as exc:
            return False, f"Helm test failed for {where}: {exc.message}"
        return True, (
            f"Helm test succeeded for {where} with chart "
            f"{released.chart_name}@{released.chart_version}"
        )

    async def _crds(self, model: HelmRelease, chart: ChartSource, action: str) -> None:
        """The chart's CRDs by the HelmRelease's policy, before Helm runs: Create makes the
        missing ones, CreateReplace applies them all (taking their fields over), Skip leaves
        them; then waits until they are served. A failure is the action's failure."""
        policy, crds = await asyncio.to_thread(release_crds, model, chart.path, action)
        if policy == "Skip" or not crds:
            return
        cluster = self.context.cluster
        try:
            for crd in crds:
                name = (crd.get("metadata") or {}).get("name", "")
                if policy == "Create" and await cluster.get(
                    "apiextensions.k8s.io/v1", "CustomResourceDefinition", name
                ):
                    continue
                await cluster.apply(crd, force=True)
            await wait_established(cluster, crds, timeout=self._timeout(model, action))
        except ClusterError as exc:
            raise ReleaseError(
                f"CRDs of the chart ({policy}): {exc.message}", Location(object=model.display)
            ) from None

    def _act(
        self,
        action: str,
        model: HelmRelease,
        target: Target,
        chart: Any,
        values: dict[str, Any],
    ) -> Release:
        if action == "install":
            install = model.spec.install
            return releases.install(
                target,
                chart,
                values,
                timeout=self._timeout(model, "install"),
                wait=not (install and install.disable_wait),
                create_namespace=bool(install and install.create_namespace),
                options=_options(model, "install"),
            )
        upgrade = model.spec.upgrade
        return releases.upgrade(
            target,
            chart,
            values,
            timeout=self._timeout(model, "upgrade"),
            wait=not (upgrade and upgrade.disable_wait),
            max_history=model.spec.max_history
            if model.spec.max_history is not None
            else DEFAULT_MAX_HISTORY,
            cleanup_on_fail=bool(upgrade and upgrade.cleanup_on_fail),
            options=_options(model, "upgrade"),
        )

    async def _drift(
        self, obj: KubeObject, model: HelmRelease, target: Target, current: Release
    ) -> bool:
        """Report the release's objects that drifted from its manifest and, with mode
        ``enabled``, apply them again; False when a correction failed."""
        detection = model.spec.drift_detection
        if detection is None or detection.mode not in ("enabled", "warn"):
            return True
        rules = drift.compile_rules(detection.ignore or [], what=model.display)
        cluster = self.context.cluster
        release = f"{target.namespace}/{target.name}.v{current.revision}"
        text = await asyncio.to_thread(releases.manifest, target)
        objects = load_all(text, file=f"manifest of release {release}")
        cluster_scoped = set()
        for api_version, kind in {(str(o.get("apiVersion")), str(o.get("kind"))) for o in objects}:
            if not (await cluster.kind(api_version, kind)).namespaced:
                cluster_scoped.add((api_version, kind))
        desired = drift.release_objects(
            objects, release=target.name, namespace=target.namespace, cluster_scoped=cluster_scoped
        )
        live: dict[ObjectKey, KubeObject | None] = {}
        for o in desired:
            meta = o["metadata"]
            live[key_of(o)] = await cluster.get(
                o["apiVersion"], o["kind"], meta.get("name", ""), meta.get("namespace")
            )
        found = drift.detect(desired, live, rules)
        if found:
            applied = {}
            for suspect in found:
                if suspect.missing:
                    continue
                try:
                    applied[key_of(suspect.desired)] = await cluster.apply(
                        suspect.desired, force=True, dry_run=True, field_manager=HELM_FIELD_MANAGER
                    )
                except ClusterError:
                    continue  # the correction, or the next reconcile, reports the refusal
            found = drift.detect([d.desired for d in found], live, rules, applied=applied)
        if not found:
            return True

        recorder = self.context.recorder(CONTROLLER)
        summary = "\n".join(str(d) for d in found)
        message = (
            f"Cluster state of release {release} has drifted from the desired state:\n{summary}"
        )
        log.info("%s: %s", model.display, message)
        await recorder.record(obj, type="Warning", reason=DRIFT_DETECTED, message=message)
        if detection.mode != "enabled":
            return True
        corrected, errors = [], []
        for found_drift in sorted(found, key=lambda d: sort_key(d.desired)):
            try:
                await cluster.apply(
                    found_drift.desired, force=True, field_manager=HELM_FIELD_MANAGER
                )
            except ClusterError as exc:
                # The API server's message may quote a Secret's values; its reason may not.
                detail = exc.reason if found_drift.desired.get("kind") == "Secret" else exc.message
                failure = "creation" if found_drift.missing else "patch"
                errors.append(f"{found_drift.subject} {failure} failure: {detail}")
                continue
            action = "created" if found_drift.missing else "configured"
            corrected.append(f"{found_drift.subject} {action}")
        done = "\n".join(corrected)
        if errors:
            partially = "partially " if corrected else ""
            message = f"Failed to {partially}correct cluster state of release {release}:\n"
            message += "\n".join(errors)
            if corrected:
                message += f"\n\nSuccessful corrections:\n{done}"
            log.warning("%s: %s", model.display, message)
            await recorder.record(
                obj, type="Warning", reason=DRIFT_CORRECTION_FAILED, message=message
            )
            return False
        message = f"Cluster state of release {release} has been corrected:\n{done}"
        log.info("%s: %s", model.display, message)
        await recorder.record(
            obj,
            type="Normal",
            reason=DRIFT_CORRECTED,
            message=message,
            annotations={"helm.toolkit.fluxcd.io/revision": current.chart_version},
        )
        return True

    async def _failed(
        self,
        obj: KubeObject,
        model: HelmRelease,
        target: Target,
        action: str,
        exc: ReleaseError,
        failures: int,
        retries: int,
        attempted: dict[str, Any],
        snapshots: list[dict[str, Any]],
        started: float,
        interval: float,
        *,
        tested: tuple[bool, str] | None = None,
    ) -> Result:
        """Record the failure, remediate as configured, and say when to try again."""
        context = self.context
        if tested is not None:
            reason = TEST_FAILED
        else:
            reason = INSTALL_FAILED if action == "install" else UPGRADE_FAILED
        exhausted = retries >= 0 and failures > retries
        remediation: tuple[str, str] | None = None
        if not exhausted or self._remediate_last(model, action):
            remediation = await self._remediate(model, target, action)
        history = await asyncio.to_thread(releases.history, target)
        generation = obj["metadata"].get("generation")
        status = with_ready(
            obj,
            False,
            reason,
            exc.message,
            **attempted,
            lastAttemptedReleaseAction=action,
            history=_snapshots(history, snapshots, model, {}),
            failures=int((obj.get("status") or {}).get("failures") or 0) + 1,
            **{"installFailures" if action == "install" else "upgradeFailures": failures},
        )
        status["conditions"] = _with_test(
            conditions.set_condition(
                status["conditions"], RELEASED, tested is not None, reason, exc.message,
                generation=generation,
            ), tested, generation,
        )  # fmt: skip
        if remediation is not None:
            status["conditions"] = conditions.set_condition(
                status["conditions"],
                REMEDIATED,
                True,
                remediation[0],
                remediation[1],
                generation=generation,
            )
        if exhausted:
            message = f"Failed to {action} after {failures} attempt(s): {exc.message}"
            status["conditions"] = conditions.set_condition(
                conditions.remove(status["conditions"], conditions.RECONCILING),
                conditions.STALLED,
                True,
                RETRIES_EXCEEDED,
                message,
                generation=generation,
            )
        written = await context.write_status(obj, status)
        recorder = context.recorder(CONTROLLER)
        await recorder.record(written, type="Warning", reason=reason, message=exc.message)
        if remediation is not None:
            await recorder.record(
                written, type="Normal", reason=remediation[0], message=remediation[1]
            )
        context.finished(
            written,
            started=started,
            revision=attempted["lastAttemptedRevision"],
            ready="False",
            error=exc,
        )
        return Result(None if exhausted else interval, failed=not exhausted)

    async def _remediate(
        self, model: HelmRelease, target: Target, action: str
    ) -> tuple[str, str] | None:
        """Undo a failed action: uninstall a failed install, roll a failed upgrade back to
        the last deployed revision (or uninstall, with strategy uninstall)."""
        upgrade = model.spec.upgrade
        strategy = upgrade.remediation.strategy if upgrade and upgrade.remediation else None
        try:
            if action == "install" or strategy == "uninstall":
                await asyncio.to_thread(
                    releases.uninstall,
                    target,
                    timeout=self._timeout(model, "uninstall"),
                    keep_history=False,
                    wait=True,
                    options=_options(model, "uninstall"),
                )
                return UNINSTALL_SUCCEEDED, (
                    f"Helm uninstall succeeded for release {target.namespace}/{target.name}"
                )
            history = await asyncio.to_thread(releases.history, target)
            previous = next(
                (
                    r
                    for r in history
                    if r.status in ("superseded", "deployed") and r.revision != history[0].revision
                ),
                None,
            )
            if previous is None:
                return None
            rollback = model.spec.rollback
            await asyncio.to_thread(
                releases.rollback,
                target,
                previous.revision,
                timeout=self._timeout(model, "rollback"),
                wait=not (rollback and rollback.disable_wait),
                options=_options(model, "rollback"),
            )
            return ROLLBACK_SUCCEEDED, (
                f"Helm rollback to previous release {target.namespace}/{target.name}"
                f".v{previous.revision} with chart {previous.chart_name}@"
                f"{previous.chart_version} succeeded"
            )
        except ReleaseError as exc:
            return "RemediationFailed", exc.message

    async def _succeeded(
        self,
        obj: KubeObject,
        model: HelmRelease,
        release: Release | None,
        digest: str,
        snapshots: list[dict[str, Any]],
        attempted: dict[str, Any],
        *,
        action: str | None,
        tested: tuple[bool, str] | None = None,
    ) -> None:
        context = self.context
        target = self._target(model)
        history = await asyncio.to_thread(releases.history, target)
        newest = history[0] if history else release
        assert newest is not None
        reason = (
            INSTALL_SUCCEEDED
            if action == "install" or (action is None and newest.revision == 1)
            else UPGRADE_SUCCEEDED
        )
        verb = "install" if reason == INSTALL_SUCCEEDED else "upgrade"
        message = (
            f"Helm {verb} succeeded for release {target.namespace}/{target.name}"
            f".v{newest.revision} with chart {newest.chart_name}@{newest.chart_version}"
        )
        generation = obj["metadata"].get("generation")
        failures = {"installFailures": 0, "upgradeFailures": 0, "failures": 0}
        status = with_ready(
            obj,
            True,
            reason,
            message,
            **attempted,
            **failures,
            history=_snapshots(history, snapshots, model, {newest.revision: digest}),
        )
        status["conditions"] = _with_test(conditions.set_condition(
            conditions.remove(status["conditions"], REMEDIATED),
            RELEASED,
            True,
            reason,
            message,
            generation=generation,
        ), tested, generation)  # fmt: skip
        written = await context.write_status(obj, status)
        if action is not None:
            await context.recorder(CONTROLLER).record(
                written,
                type="Normal",
                reason=reason,
                message=message,
                annotations={"helm.toolkit.fluxcd.io/revision": newest.chart_version},
            )

    def _unready_dependency(self, obj: KubeObject) -> str | None:
        for namespace, name in dependencies(obj):
            dependency = self.context.manager.get(KIND.kind, namespace, name)
            if dependency is None or not ready_at_latest(dependency):
                return f"{namespace}/{name}"
        return None

    async def _fail(
        self, obj: KubeObject, reason: str, message: str, started: float, *, warn: bool = True
    ) -> None:
        written = await self.context.write_status(obj, with_ready(obj, False, reason, message))
        if warn:
            await self.context.recorder(CONTROLLER).record(
                written, type="Warning", reason=reason, message=message
            )
        self.context.finished(
            written,
            started=started,
            revision=_revision(obj.get("status") or {}),
            ready="False",
            error=GitmoorError(message) if warn else None,
            result=None if warn else reason,
        )


_SOURCE_KINDS = ("HelmRepository", "OCIRepository", "GitRepository")
_ACKNOWLEDGEMENTS = {"lastHandledReconcileAt", "lastHandledForceAt", "lastHandledResetAt"}


def _options(model: HelmRelease, action: str) -> releases.Options:
    """The HelmRelease's disableHooks, disableWaitForJobs and force for ``action``."""
    part = getattr(model.spec, action, None)
    return releases.Options(
        disable_hooks=bool(part and part.disable_hooks),
        wait_for_jobs=not (part and getattr(part, "disable_wait_for_jobs", False)),
        force_replace=bool(part and getattr(part, "force", False)),
    )


def _ignores_test_failures(model: HelmRelease) -> bool:
    """A failed test leaves the release Ready when ``spec.test.ignoreFailures``."""
    return bool(model.spec.test and model.spec.test.ignore_failures)


def _with_test(
    found: list[dict[str, Any]], tested: tuple[bool, str] | None, generation: int | None
) -> list[dict[str, Any]]:
    """The conditions with TestSuccess set from the tests just run (kept as they were when
    no test ran)."""
    if tested is None:
        return found
    passed, message = tested
    reason = TEST_SUCCEEDED if passed else TEST_FAILED
    return conditions.set_condition(found, TEST_SUCCESS, passed, reason, message,
                                    generation=generation)  # fmt: skip


def _snapshots(
    history: list[Release],
    previous: list[dict[str, Any]],
    model: HelmRelease,
    digests: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Snapshots of Helm's own history, newest first, each with the config digest gitmoor
    knew for that revision (a rollback revision runs the values of the one it restored)."""
    known = {int(s.get("version", 0)): s for s in previous}
    result = []
    for release in history[:SNAPSHOTS]:
        before = known.get(release.revision, {})
        digest = digests.get(release.revision) or before.get("configDigest", "")
        snapshot = {
            "version": release.revision,
            "name": release.name,
            "namespace": release.namespace,
            "chartName": release.chart_name,
            "chartVersion": release.chart_version,
            "appVersion": release.app_version,
            "configDigest": digest,
            "firstDeployed": before.get("firstDeployed", release.deployed_at),
            "lastDeployed": release.deployed_at,
            "status": release.status,
        }
        result.append(snapshot)
    # A rollback's new revision carries the values of the revision it went back to.
    for snapshot in result:
        if not snapshot["configDigest"]:
            same = next(
                (
                    s
                    for s in result
                    if s["configDigest"] and s["chartVersion"] == snapshot["chartVersion"]
                ),
                None,
            )
            snapshot["configDigest"] = same["configDigest"] if same else ""
    return result


def _revision(status: Mapping[str, Any]) -> str:
    history = status.get("history") or []
    return str(history[0].get("chartVersion", "")) if history else ""
