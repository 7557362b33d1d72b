"""The HelmRelease controller on the sandbox with a real chart repository: install, a values
change and a chart bump upgrade, an unchanged spec does not, a never-ready upgrade is rolled
back, a failing install is retried then uninstalled, Helm's history matches the status,
suspend stops upgrades, deleting the HelmRelease uninstalls it; drift is corrected or only
reported as driftDetection says."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import helm_python
import pytest
from tls_fixtures import make_pki

from gitmoor import releases
from gitmoor.bootstrap import git
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.helmrelease import RETRIES_EXCEEDED, ROLLBACK_SUCCEEDED
from gitmoor.controllers.run import bootstrap_objects, build_manager, install_crds
from gitmoor.demo.servers import ChartRepoServer, RegistryServer, make_chart
from gitmoor.manifests import dump_all
from gitmoor.source.chartauth import RepoAuth

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

HR = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
NEVER_READY = {"podAnnotations": {"sandbox.gitmoor.dev/fail": "never-ready"}}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.3)


@dataclass
class Env:
    sandbox: Sandbox
    cluster: Cluster
    charts: ChartRepoServer
    workdir: Path

    async def release(self, name: str) -> dict[str, Any]:
        obj = await self.cluster.get(*HR, name, "apps")
        assert obj is not None
        return obj

    async def apply_release(self, name: str, **spec: Any) -> None:
        await self.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1],
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "10m",
                     "chart": {"spec": {"chart": "web", "version": spec.pop("version", "1.0.0"),
                                        "sourceRef": {"kind": "HelmRepository",
                                                      "name": "charts"}}},
                     **spec},
        })  # fmt: skip

    def helm_history(self, name: str) -> list[tuple[int, str]]:
        target = releases.Target(self.sandbox.kubeconfig, name, "apps", "apps", name)
        return [(r.revision, r.status) for r in releases.history(target)]


@contextlib.asynccontextmanager
async def controllers(
    sandbox: Sandbox, workdir: Path, namespace: str, *, dependency_requeue: float
) -> AsyncIterator[Cluster]:
    """The CRDs and ``namespace`` in the sandbox, and the controllers running on it."""
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster)
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": namespace}})  # fmt: skip
    manager, _ = build_manager(
        cluster, cache_dir=workdir / "cache", dependency_requeue=dependency_requeue,
        kubeconfig=sandbox.kubeconfig,
    )  # fmt: skip
    task = asyncio.create_task(manager.run())
    try:
        yield cluster
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cluster.close()


@pytest.fixture
async def env(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Env]:
    with ChartRepoServer(tmp_path / "repo") as charts:
        charts.publish(make_chart(tmp_path / "build", "web", "1.0.0", "1.0"))
        async with controllers(sandbox, tmp_path, "apps", dependency_requeue=0.5) as cluster:
            await cluster.apply({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "charts", "namespace": "apps"},
                "spec": {"interval": "10m", "url": charts.url},
            })  # fmt: skip
            yield Env(sandbox, cluster, charts, tmp_path)


def snapshot_versions(obj: dict[str, Any]) -> list[tuple[int, str]]:
    return [(s["version"], s["status"]) for s in obj["status"].get("history") or []]


async def ready_at(env: Env, name: str, revision: int) -> bool:
    obj = await env.cluster.get(*HR, name, "apps")
    if obj is None or not conditions.is_true(obj):
        return False
    history = obj["status"].get("history") or []
    return bool(history) and history[0]["version"] == revision


@pytest.mark.timeout(300)
async def test_install_upgrade_no_op_and_rollback(env: Env) -> None:
    await env.apply_release("web", values={"replicaCount": 1})

    async def installed() -> bool:
        """revision 1 Ready"""
        return await ready_at(env, "web", 1)

    await eventually(installed)
    obj = await env.release("web")
    released = conditions.find(obj["status"]["conditions"], "Released")
    assert released is not None
    assert released["reason"] == "InstallSucceeded"
    assert obj["status"]["lastAttemptedRevision"] == "1.0.0"
    deployment = await env.cluster.get("apps/v1", "Deployment", "web", "apps")
    assert deployment is not None

    # A values change upgrades; the same spec again does not.
    await env.apply_release("web", values={"replicaCount": 2})

    async def upgraded() -> bool:
        """revision 2 Ready"""
        return await ready_at(env, "web", 2)

    await eventually(upgraded)
    live = await env.cluster.get("apps/v1", "Deployment", "web", "apps")
    assert live is not None
    assert live["spec"]["replicas"] == 2
    await env.cluster.patch(await env.release("web"), {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": "now"}}})  # fmt: skip

    async def handled() -> bool:
        """the reconcile request was handled"""
        obj = await env.release("web")
        return bool(obj["status"].get("lastHandledReconcileAt") == "now")

    await eventually(handled)
    assert env.helm_history("web") == [(2, "deployed"), (1, "superseded")]

    # A chart bump upgrades to revision 3.
    env.charts.publish(make_chart(env.workdir / "build", "web", "1.1.0", "1.1"))
    await env.apply_release("web", version="1.1.0", values={"replicaCount": 2})
    await eventually(lambda: ready_at(env, "web", 3))
    assert (await env.release("web"))["status"]["history"][0]["chartVersion"] == "1.1.0"

    # An upgrade that never becomes ready is rolled back to revision 3 (as revision 5):
    # no retries, but remediateLastFailure (Flux rolls back nothing by default).
    await env.apply_release("web", version="1.1.0", timeout="3s",
                            values={"replicaCount": 2, **NEVER_READY},
                            upgrade={"remediation": {"remediateLastFailure": True}})  # fmt: skip

    async def rolled_back() -> bool:
        """the failed upgrade is remediated"""
        obj = await env.release("web")
        remediated = conditions.find(obj["status"].get("conditions"), "Remediated")
        return bool(remediated and remediated["reason"] == ROLLBACK_SUCCEEDED)

    await eventually(rolled_back)
    obj = await env.release("web")
    ready = conditions.find(obj["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert ready["status"] == "False"
    assert ready["reason"] == "UpgradeFailed"
    assert obj["status"]["upgradeFailures"] == 1
    helm = env.helm_history("web")
    assert helm[:3] == [(5, "deployed"), (4, "failed"), (3, "superseded")]
    # gitmoor's snapshots are Helm's history.
    assert snapshot_versions(obj) == helm[:5]
    live = await env.cluster.get("apps/v1", "Deployment", "web", "apps")
    assert live is not None
    annotations = live["spec"]["template"]["metadata"].get("annotations") or {}
    assert "sandbox.gitmoor.dev/fail" not in annotations

    # Retries spent: it stays failed, not upgraded again, until the spec changes.
    async def stalled() -> bool:
        """Stalled with RetriesExceeded"""
        obj = await env.release("web")
        found = conditions.find(obj["status"].get("conditions"), conditions.STALLED)
        return bool(found and found["reason"] == RETRIES_EXCEEDED)

    await env.cluster.patch(obj, {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": "again"}}})  # fmt: skip
    await eventually(stalled)
    assert env.helm_history("web")[0] == (5, "deployed")


@pytest.mark.timeout(300)
async def test_failed_install_is_retried_then_uninstalled_and_delete_uninstalls(env: Env) -> None:
    await env.apply_release("broken", timeout="2s", values=NEVER_READY,
                            install={"remediation": {"retries": 1}})  # fmt: skip

    async def given_up() -> bool:
        """install retried once, then Stalled"""
        obj = await env.cluster.get(*HR, "broken", "apps")
        found = conditions.find(((obj or {}).get("status") or {}).get("conditions"), "Stalled")
        return bool(found and found["reason"] == RETRIES_EXCEEDED)

    await eventually(given_up, timeout=120)
    obj = await env.release("broken")
    assert obj["status"]["installFailures"] == 2
    remediated = conditions.find(obj["status"]["conditions"], "Remediated")
    assert remediated is not None
    assert remediated["reason"] == "UninstallSucceeded"
    assert env.helm_history("broken") == []

    # A working release, then the HelmRelease deleted: its release is uninstalled.
    await env.apply_release("kept", values={"replicaCount": 1})
    await eventually(lambda: ready_at(env, "kept", 1))
    await env.cluster.delete(await env.release("kept"))

    async def uninstalled() -> bool:
        """the release and the HelmRelease are gone"""
        gone = await env.cluster.get(*HR, "kept", "apps") is None
        return gone and env.helm_history("kept") == []

    await eventually(uninstalled)
    assert await env.cluster.get("apps/v1", "Deployment", "kept", "apps") is None


@pytest.mark.timeout(300)
async def test_a_release_applied_before_its_source_waits_quietly(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """No Warning, no error: ArtifactFailed until the source appears, whose arrival (not
    the hour-long requeue set here) brings the release along; the source is a HelmRepository
    of ``type: oci``, which never gets an artifact whose revision could do that."""
    namespace = "late-source"
    with RegistryServer(tmp_path / "registry") as registry:
        registry.push(make_chart(tmp_path / "build", "web", "1.0.0", "1.0"))
        async with controllers(sandbox, tmp_path, namespace, dependency_requeue=3600) as cluster:
            await cluster.apply({
                "apiVersion": HR[0], "kind": HR[1],
                "metadata": {"name": "early", "namespace": namespace},
                "spec": {"interval": "1h", "values": {"replicaCount": 1},
                         "chart": {"spec": {"chart": "web", "version": "1.0.0",
                                            "sourceRef": {"kind": "HelmRepository",
                                                          "name": "late"}}}},
            })  # fmt: skip

            async def waiting() -> bool:
                """the release says it waits for its source"""
                obj = await cluster.get(*HR, "early", namespace)
                found = conditions.find(((obj or {}).get("status") or {}).get("conditions"),
                                        conditions.READY)  # fmt: skip
                return found is not None and found["reason"] == conditions.ARTIFACT_FAILED

            await eventually(waiting)
            obj = await cluster.get(*HR, "early", namespace)
            assert obj is not None
            ready = conditions.find(obj["status"]["conditions"], conditions.READY)
            assert ready is not None
            assert ready["status"] == "False"
            assert f"HelmRepository '{namespace}/late' not found" in ready["message"]
            events = await cluster.list("v1", "Event", namespace=namespace)
            assert [e for e in events if e.get("type") == "Warning"] == []

            await cluster.apply({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "late", "namespace": namespace},
                "spec": {"interval": "1h", "type": "oci", "insecure": True,
                         "url": f"{registry.url}/charts"},
            })  # fmt: skip

            async def installed() -> bool:
                """the release is Ready at revision 1"""
                obj = await cluster.get(*HR, "early", namespace)
                history = ((obj or {}).get("status") or {}).get("history") or []
                return obj is not None and conditions.is_true(obj) and history[0]["version"] == 1

            await eventually(installed, timeout=120)


@pytest.mark.timeout(300)
async def test_suspend_stops_upgrades(env: Env) -> None:
    await env.apply_release("web", values={"replicaCount": 1})
    await eventually(lambda: ready_at(env, "web", 1))
    await env.apply_release("web", suspend=True, values={"replicaCount": 3})
    await asyncio.sleep(3)
    assert env.helm_history("web") == [(1, "deployed")]
    await env.apply_release("web", values={"replicaCount": 3})
    await eventually(lambda: ready_at(env, "web", 2))


async def reconciled(env: Env, name: str, token: str) -> None:
    """Ask for a reconcile of ``name`` and wait until it was handled."""
    await env.cluster.patch(await env.release(name), {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": token}}})  # fmt: skip

    async def handled() -> bool:
        """the reconcile request was handled"""
        return bool((await env.release(name))["status"].get("lastHandledReconcileAt") == token)

    await eventually(handled)


def installed(env: Env, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        """revision 1 Ready"""
        return await ready_at(env, name, 1)

    return check


async def events_about(env: Env, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in await env.cluster.list("v1", "Event", namespace="apps")
        if e["involvedObject"].get("kind") == "HelmRelease"
        and e["involvedObject"].get("name") == name
        and e.get("reason") == reason
    ]


async def replicas_of(env: Env, name: str) -> int:
    live = await env.cluster.get("apps/v1", "Deployment", name, "apps")
    assert live is not None
    return int(live["spec"]["replicas"])


@pytest.mark.timeout(300)
async def test_drift_is_corrected_when_enabled_and_only_reported_with_warn(env: Env) -> None:
    ignore_replicas = {"mode": "enabled", "ignore": [
        {"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]}  # fmt: skip
    modes = {"web-fixed": {"mode": "enabled"}, "web-warned": {"mode": "warn"},
             "web-scaled": ignore_replicas}  # fmt: skip
    for name, detection in modes.items():
        await env.apply_release(name, values={"replicaCount": 1}, driftDetection=detection)
    for name in modes:
        await eventually(installed(env, name))
        # Just installed: nothing drifted.
        await reconciled(env, name, "fresh")
        assert await events_about(env, name, "DriftDetected") == []

    # Hand edits: every Deployment scaled, the Service of web-fixed deleted.
    for name in modes:
        deployment = await env.cluster.get("apps/v1", "Deployment", name, "apps")
        assert deployment is not None
        await env.cluster.patch(deployment, {"spec": {"replicas": 3}})
    service = await env.cluster.get("v1", "Service", "web-fixed", "apps")
    assert service is not None
    await env.cluster.delete(service)
    for name in modes:
        await reconciled(env, name, "after-edit")

    # enabled: put back, and said so.
    assert await replicas_of(env, "web-fixed") == 1
    assert await env.cluster.get("v1", "Service", "web-fixed", "apps") is not None
    (detected,) = await events_about(env, "web-fixed", "DriftDetected")
    assert detected["type"] == "Warning"
    assert "Deployment/apps/web-fixed changed" in detected["message"]
    assert "/spec/replicas" in detected["message"]
    assert "Service/apps/web-fixed removed" in detected["message"]
    (corrected,) = await events_about(env, "web-fixed", "DriftCorrected")
    assert corrected["type"] == "Normal"
    assert "Deployment/apps/web-fixed configured" in corrected["message"]
    assert "Service/apps/web-fixed created" in corrected["message"]
    assert conditions.is_true(await env.release("web-fixed"))

    # warn: reported, left as it is.
    assert await replicas_of(env, "web-warned") == 3
    (warned,) = await events_about(env, "web-warned", "DriftDetected")
    assert warned["type"] == "Warning"
    assert "Deployment/apps/web-warned changed" in warned["message"]
    assert "/spec/replicas" in warned["message"]
    assert await events_about(env, "web-warned", "DriftCorrected") == []

    # an ignored field: not drift at all.
    assert await replicas_of(env, "web-scaled") == 3
    assert await events_about(env, "web-scaled", "DriftDetected") == []

    # Corrected fields stay Helm's to change: the next upgrade applies cleanly.
    await env.apply_release("web-fixed", values={"replicaCount": 2},
                            driftDetection={"mode": "enabled"})  # fmt: skip
    await eventually(lambda: ready_at(env, "web-fixed", 2))
    assert await replicas_of(env, "web-fixed") == 2
    await reconciled(env, "web-fixed", "after-upgrade")
    # Drift was reported once: not again after the correction, nor after the upgrade.
    (detected,) = await events_about(env, "web-fixed", "DriftDetected")
    assert detected["count"] == 1


@pytest.mark.timeout(300)
async def test_a_new_chart_in_the_repository_upgrades_a_release_on_a_range(env: Env) -> None:
    await env.apply_release("web", version=">=1.0.0 <2.0.0", values={"replicaCount": 1})
    await eventually(lambda: ready_at(env, "web", 1))
    env.charts.publish(make_chart(env.workdir / "build", "web", "1.2.0", "1.2"))
    # Only the HelmRepository is asked to look again; its new index brings the release along.
    repository = await env.cluster.get("source.toolkit.fluxcd.io/v1", "HelmRepository",
                                       "charts", "apps")  # fmt: skip
    assert repository is not None
    await env.cluster.patch(repository, {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": "new-chart"}}})  # fmt: skip

    async def on_new_chart() -> bool:
        """revision 2 runs chart 1.2.0"""
        if not await ready_at(env, "web", 2):
            return False
        history = (await env.release("web"))["status"]["history"]
        return bool(history[0]["chartVersion"] == "1.2.0")

    await eventually(on_new_chart)


@pytest.mark.timeout(300)
async def test_a_release_removed_from_git_is_uninstalled(env: Env, tmp_path: Path) -> None:
    repo = tmp_path / "fleet"
    (repo / "releases").mkdir(parents=True)
    (repo / "releases" / "web.yaml").write_text(dump_all([{
        "apiVersion": HR[0], "kind": HR[1],
        "metadata": {"name": "from-git", "namespace": "apps"},
        "spec": {"interval": "10m", "values": {"replicaCount": 1},
                 "chart": {"spec": {"chart": "web", "version": "1.0.0",
                                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}},
    }]))  # fmt: skip
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a release")
    await env.cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "flux-system"}})  # fmt: skip
    for obj in bootstrap_objects(repo.as_uri(), branch="main", path="releases")[1:]:
        await env.cluster.apply(obj)
    await eventually(lambda: ready_at(env, "from-git", 1))
    assert env.helm_history("from-git") == [(1, "deployed")]

    (repo / "releases" / "web.yaml").unlink()
    (repo / "releases" / "empty.yaml").write_text(dump_all([{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "placeholder", "namespace": "apps"}}]))  # fmt: skip
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "no more release")
    source = await env.cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository",
                                   "flux-system", "flux-system")  # fmt: skip
    assert source is not None
    await env.cluster.patch(source, {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": "removed"}}})  # fmt: skip

    async def uninstalled() -> bool:
        """the HelmRelease is pruned and its release uninstalled"""
        gone = await env.cluster.get(*HR, "from-git", "apps") is None
        return gone and env.helm_history("from-git") == []

    await eventually(uninstalled)
    assert await env.cluster.get("apps/v1", "Deployment", "from-git", "apps") is None


@pytest.mark.timeout(300)
async def test_a_chart_from_a_git_repository_path(env: Env, tmp_path: Path) -> None:
    repo = tmp_path / "charts-repo"
    (repo / "charts").mkdir(parents=True)
    helm_python.Chart.create("gitchart", repo / "charts").close()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a chart")
    await env.cluster.apply({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "charts-repo", "namespace": "apps"},
        "spec": {"interval": "10m", "url": repo.as_uri(), "ref": {"branch": "main"}},
    })  # fmt: skip
    await env.cluster.apply({
        "apiVersion": HR[0], "kind": HR[1],
        "metadata": {"name": "from-path", "namespace": "apps"},
        "spec": {"interval": "10m", "values": {"replicaCount": 1},
                 "chart": {"spec": {"chart": "./charts/gitchart",
                                    "sourceRef": {"kind": "GitRepository",
                                                  "name": "charts-repo"}}}},
    })  # fmt: skip
    await eventually(lambda: ready_at(env, "from-path", 1))
    snapshot = (await env.release("from-path"))["status"]["history"][0]
    assert (snapshot["chartName"], snapshot["chartVersion"]) == ("gitchart", "0.1.0")
    assert await env.cluster.get("apps/v1", "Deployment", "from-path-gitchart", "apps")


@pytest.mark.timeout(300)
async def test_charts_from_tls_sources_with_a_client_certificate(env: Env, tmp_path: Path) -> None:
    """A HelmRepository and an OCIRepository that want a client certificate from a private
    CA, each named by a HelmRelease: both install."""
    pki = make_pki(tmp_path / "pki")
    tls = pki.server_tls(require_client_certificate=True)
    chart = make_chart(tmp_path / "tls-build", "web", "1.0.0", "1.0")
    with (
        ChartRepoServer(tmp_path / "tls-repo", tls=tls) as repo,
        RegistryServer(tmp_path / "tls-registry", tls=tls) as registry,
    ):
        repo.publish(chart)
        url = registry.push(chart, auth=RepoAuth().with_tls(pki.secret_data()))
        await env.cluster.apply({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "client-tls", "namespace": "apps"},
            "data": {k: base64.b64encode(v).decode() for k, v in pki.secret_data().items()},
        })  # fmt: skip
        source = {"interval": "10m", "certSecretRef": {"name": "client-tls"}}
        await env.cluster.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
            "metadata": {"name": "secure", "namespace": "apps"},
            "spec": {"url": repo.url, **source},
        })  # fmt: skip
        await env.cluster.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository",
            "metadata": {"name": "secure", "namespace": "apps"},
            "spec": {"url": url, "ref": {"tag": "1.0.0"}, **source},
        })  # fmt: skip
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1],
            "metadata": {"name": "from-https", "namespace": "apps"},
            "spec": {"interval": "10m", "values": {"replicaCount": 1},
                     "chart": {"spec": {"chart": "web", "version": "1.0.0",
                                        "sourceRef": {"kind": "HelmRepository",
                                                      "name": "secure"}}}},
        })  # fmt: skip
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1],
            "metadata": {"name": "from-oci", "namespace": "apps"},
            "spec": {"interval": "10m", "values": {"replicaCount": 1},
                     "chartRef": {"kind": "OCIRepository", "name": "secure"}},
        })  # fmt: skip
        await eventually(lambda: ready_at(env, "from-https", 1))
        await eventually(lambda: ready_at(env, "from-oci", 1))
    for name in ("from-https", "from-oci"):
        snapshot = (await env.release(name))["status"]["history"][0]
        assert (snapshot["chartName"], snapshot["chartVersion"]) == ("web", "1.0.0")
        assert env.helm_history(name) == [(1, "deployed")]


def chart_with_crd(build: Path, version: str, description: str) -> Path:
    """Helm's scaffold chart ``crdchart`` with a CRD in its crds/ directory."""
    scaffold = build / f"crdchart-src-{version}"
    scaffold.mkdir(parents=True)
    helm_python.Chart.create("crdchart", scaffold).close()
    (scaffold / "crdchart" / "crds").mkdir()
    (scaffold / "crdchart" / "crds" / "widgets.yaml").write_text(dump_all([{
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "description": description,
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }]))  # fmt: skip
    return Path(helm_python.package(scaffold / "crdchart", destination=build, version=version))


@pytest.mark.timeout(300)
async def test_crd_policies(env: Env) -> None:
    crd = ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    env.charts.publish(chart_with_crd(env.workdir / "build", "1.0.0", "first"))

    async def release(name: str, version: str, **spec: Any) -> None:
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1], "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "10m", "chart": {"spec": {
                "chart": "crdchart", "version": version,
                "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}, **spec},
        })  # fmt: skip

    # Skip: the release installs, its CRD does not.
    await release("skipping", "1.0.0", install={"crds": "Skip"})
    await eventually(lambda: ready_at(env, "skipping", 1))
    assert await env.cluster.get(*crd) is None

    # Create (the default): made on install; an upgrade (default Skip) leaves it alone.
    await release("creating", "1.0.0")
    await eventually(lambda: ready_at(env, "creating", 1))
    created = await env.cluster.get(*crd)
    assert created is not None
    assert created["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == "first"
    env.charts.publish(chart_with_crd(env.workdir / "build", "1.1.0", "second"))
    await release("creating", "1.1.0")
    await eventually(lambda: ready_at(env, "creating", 2))
    kept = await env.cluster.get(*crd)
    assert kept is not None
    assert kept["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == "first"

    # CreateReplace on upgrade: the chart's new CRD replaces the old one.
    await release("creating", "1.1.0", upgrade={"crds": "CreateReplace"},
                  values={"replicaCount": 2})  # fmt: skip
    await eventually(lambda: ready_at(env, "creating", 3))
    replaced = await env.cluster.get(*crd)
    assert replaced is not None
    assert replaced["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == "second"


def chart_with_failing_test(build: Path) -> Path:
    """The scaffold chart ``failtest`` whose Helm test pod crash-loops in the sandbox."""
    scaffold = build / "failtest-src"
    scaffold.mkdir(parents=True)
    helm_python.Chart.create("failtest", scaffold).close()
    test = scaffold / "failtest" / "templates" / "tests" / "test-connection.yaml"
    hook = '"helm.sh/hook": test'
    failing = hook + "\n    sandbox.gitmoor.dev/fail: crashloop"
    test.write_text(test.read_text().replace(hook, failing))
    return Path(helm_python.package(scaffold / "failtest", destination=build, version="1.0.0"))


@pytest.mark.timeout(300)
async def test_helm_tests_after_the_release(env: Env) -> None:
    env.charts.publish(chart_with_failing_test(env.workdir / "build"))

    async def release(name: str, chart: str, **test: Any) -> None:
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1], "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "10m", "timeout": "20s", "test": {"enable": True, **test},
                     "chart": {"spec": {"chart": chart, "version": "1.0.0",
                                        "sourceRef": {"kind": "HelmRepository",
                                                      "name": "charts"}}}},
        })  # fmt: skip

    def test_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
        found = conditions.find((obj.get("status") or {}).get("conditions"), "TestSuccess")
        return dict(found) if found else None

    await release("tested", "web")
    await eventually(lambda: ready_at(env, "tested", 1))
    passed = test_condition(await env.release("tested"))
    assert passed is not None
    assert (passed["status"], passed["reason"]) == ("True", "TestSucceeded")

    await release("failing", "failtest")

    async def failed_test() -> bool:
        """the failing test is reported"""
        obj = await env.cluster.get(*HR, "failing", "apps")
        found = test_condition(obj or {})
        return bool(found and found["status"] == "False")

    await eventually(failed_test)
    obj = await env.release("failing")
    ready = conditions.find(obj["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "TestFailed")

    await release("ignored", "failtest", ignoreFailures=True)

    async def ready_despite_test() -> bool:
        """Ready with a failed test ignored"""
        obj = await env.cluster.get(*HR, "ignored", "apps")
        found = test_condition(obj or {})
        return bool(found and found["status"] == "False" and conditions.is_true(obj or {}))

    await eventually(ready_despite_test)


@pytest.mark.timeout(300)
async def test_reconcile_strategy_revision_upgrades_on_each_commit(
    env: Env, tmp_path: Path
) -> None:
    repo = tmp_path / "charts-repo"
    (repo / "charts").mkdir(parents=True)
    helm_python.Chart.create("gitchart", repo / "charts").close()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a chart")
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "charts-repo", "namespace": "apps"},
        "spec": {"interval": "10m", "url": repo.as_uri(), "ref": {"branch": "main"}},
    }  # fmt: skip
    await env.cluster.apply(source)
    for name, strategy in (("by-revision", "Revision"), ("by-version", "ChartVersion")):
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1],
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "10m", "chart": {"spec": {
                "chart": "./charts/gitchart", "reconcileStrategy": strategy,
                "sourceRef": {"kind": "GitRepository", "name": "charts-repo"}}}},
        })  # fmt: skip
    for name in ("by-revision", "by-version"):
        await eventually(lambda name=name: ready_at(env, name, 1))
    first = (await env.release("by-revision"))["status"]["history"][0]["chartVersion"]
    assert first.startswith("0.1.0+")

    # A commit that changes the chart's defaults but not its version.
    values = repo / "charts" / "gitchart" / "values.yaml"
    values.write_text(values.read_text().replace("replicaCount: 1", "replicaCount: 2"))
    git(repo, "commit", "-q", "-am", "two replicas")
    live_source = await env.cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository",
                                        "charts-repo", "apps")  # fmt: skip
    assert live_source is not None
    await env.cluster.patch(live_source, {"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": "commit"}}})  # fmt: skip
    await eventually(lambda: ready_at(env, "by-revision", 2))
    second = (await env.release("by-revision"))["status"]["history"][0]["chartVersion"]
    assert second.startswith("0.1.0+")
    assert second != first
    # ChartVersion (the default) upgrades only when the version changes.
    assert env.helm_history("by-version") == [(1, "deployed")]


def chart_with_hook(build: Path) -> Path:
    """The scaffold chart ``hooked`` with a post-install hook ConfigMap."""
    scaffold = build / "hooked-src"
    scaffold.mkdir(parents=True)
    helm_python.Chart.create("hooked", scaffold).close()
    (scaffold / "hooked" / "templates" / "hook.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hook\n"
        '  annotations:\n    helm.sh/hook: post-install\ndata:\n  ran: "yes"\n'
    )
    return Path(helm_python.package(scaffold / "hooked", destination=build, version="1.0.0"))


@pytest.mark.timeout(300)
async def test_disable_hooks(env: Env) -> None:
    env.charts.publish(chart_with_hook(env.workdir / "build"))
    for name, disabled in (("with-hooks", False), ("without-hooks", True)):
        await env.cluster.apply({
            "apiVersion": HR[0], "kind": HR[1], "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "10m", "install": {"disableHooks": disabled},
                     "chart": {"spec": {"chart": "hooked", "version": "1.0.0",
                                        "sourceRef": {"kind": "HelmRepository",
                                                      "name": "charts"}}}},
        })  # fmt: skip
    for name in ("with-hooks", "without-hooks"):
        await eventually(lambda name=name: ready_at(env, name, 1))
    assert await env.cluster.get("v1", "ConfigMap", "with-hooks-hook", "apps") is not None
    assert await env.cluster.get("v1", "ConfigMap", "without-hooks-hook", "apps") is None
