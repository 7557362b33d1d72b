"""The Kustomization controller's lifecycle on the sandbox, with a small repository of its own:
dependsOn order, substituteFrom read from the cluster, suspend/resume, an API server restart
in the middle of the work, and leader failover between two controller instances."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.bootstrap import git
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.leader import LeaderElector
from gitmoor.controllers.manager import REQUESTED_AT, Manager
from gitmoor.controllers.run import (
    apply_bootstrap,
    bootstrap_objects,
    build_manager,
    install_crds,
    run_leading,
)
from gitmoor.manifests import dump_all

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
ROOT = "clusters/test"


def flux_kustomization(name: str, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": KS[0], "kind": KS[1],
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "10m", "retryInterval": "2s", "timeout": "60s", "path": path,
                 "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                 **spec},
    }  # fmt: skip


def write_repository(root: Path) -> None:
    (root / ROOT).mkdir(parents=True)
    (root / ROOT / "kustomizations.yaml").write_text(dump_all([
        flux_kustomization("base", "./base", postBuild={"substituteFrom": [
            {"kind": "ConfigMap", "name": "vars"}]}),
        flux_kustomization("app", "./app", wait=True, dependsOn=[{"name": "base"}]),
    ]))  # fmt: skip
    (root / "base").mkdir()
    (root / "base" / "objects.yaml").write_text(dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": "shop"},
         "data": {"greeting": "${GREETING}"}},
    ]))  # fmt: skip
    (root / "app").mkdir()
    (root / "app" / "deployment.yaml").write_text(dump_all([
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web",
                                                        "image": "nginx:1.27"}]}}}},
    ]))  # fmt: skip
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.2)


@dataclass
class Setup:
    sandbox: Sandbox
    cluster: Cluster
    repo: Path
    cache: Path
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def manager(self) -> Manager:
        manager, _ = build_manager(self.cluster, cache_dir=self.cache, dependency_requeue=0.5)
        return manager

    def start(self, manager: Manager) -> asyncio.Task[Any]:
        task = asyncio.create_task(manager.run())
        self.tasks.append(task)
        return task

    async def ks(self, name: str) -> dict[str, Any]:
        obj = await self.cluster.get(*KS, name, "flux-system")
        assert obj is not None
        return obj

    async def ready(self, name: str, revision: str | None = None) -> bool:
        obj = await self.cluster.get(*KS, name, "flux-system")
        if obj is None or not conditions.is_true(obj):
            return False
        if obj["status"].get("observedGeneration") != obj["metadata"].get("generation"):
            return False
        return revision is None or str(obj["status"].get("lastAppliedRevision")).endswith(revision)

    async def request(self, kind: str, api_version: str, name: str) -> str:
        obj = await self.cluster.get(api_version, kind, name, "flux-system")
        assert obj is not None
        stamp = str(time.time_ns())
        await self.cluster.patch(obj, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})
        return stamp

    async def fetch(self) -> None:
        await self.request("GitRepository", "source.toolkit.fluxcd.io/v1", "flux-system")

    def head(self) -> str:
        return git(self.repo, "rev-parse", "HEAD").strip()


@pytest.fixture
async def setup(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Setup]:
    repo = tmp_path / "repo"
    write_repository(repo)
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster)
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "flux-system"}})  # fmt: skip
    await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "vars", "namespace": "flux-system"},
                         "data": {"GREETING": "hello"}})  # fmt: skip
    await apply_bootstrap(cluster, bootstrap_objects(repo.as_uri(), branch="main", path=ROOT))
    state = Setup(sandbox, cluster, repo, tmp_path / "cache")
    try:
        yield state
    finally:
        for task in state.tasks:
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await cluster.close()


def _transition(obj: dict[str, Any]) -> datetime:
    ready = conditions.find(obj["status"]["conditions"], conditions.READY)
    assert ready is not None
    return datetime.fromisoformat(ready["lastTransitionTime"])


@pytest.mark.timeout(180)
async def test_depends_on_order_and_substitute_from_the_cluster(setup: Setup) -> None:
    setup.start(setup.manager())

    async def both_ready() -> bool:
        """base and app Ready"""
        return await setup.ready("base") and await setup.ready("app")

    await eventually(both_ready)
    cluster = setup.cluster
    base, app = await setup.ks("base"), await setup.ks("app")
    deployment = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert deployment is not None
    # app's objects were only created once base was Ready.
    created = datetime.fromisoformat(deployment["metadata"]["creationTimestamp"])
    assert created >= _transition(base)
    assert _transition(app) >= _transition(base)
    settings = await cluster.get("v1", "ConfigMap", "settings", "shop")
    assert settings is not None
    assert settings["data"] == {"greeting": "hello"}

    # A change to the ConfigMap in the cluster reaches the objects at the next reconcile.
    variables = await cluster.get("v1", "ConfigMap", "vars", "flux-system")
    assert variables is not None
    await cluster.patch(variables, {"data": {"GREETING": "bonjour"}})
    await setup.request(*KS[::-1], "base")

    async def substituted() -> bool:
        """settings says bonjour"""
        live = await cluster.get("v1", "ConfigMap", "settings", "shop")
        return live is not None and live["data"]["greeting"] == "bonjour"

    await eventually(substituted)

    # A missing substituteFrom ConfigMap (not optional) fails base and applies nothing.
    await cluster.delete(variables)
    stamp = await setup.request(*KS[::-1], "base")

    async def failed() -> bool:
        """base failed on the missing ConfigMap"""
        ks = await setup.ks("base")
        ready = conditions.find(ks["status"]["conditions"], conditions.READY)
        return ks["status"].get("lastHandledReconcileAt") == stamp and bool(
            ready and ready["status"] == "False"
        )

    await eventually(failed)
    ready = conditions.find((await setup.ks("base"))["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert "ConfigMap 'flux-system/vars' not found" in ready["message"]
    live = await cluster.get("v1", "ConfigMap", "settings", "shop")
    assert live is not None
    assert live["data"]["greeting"] == "bonjour"


@pytest.mark.timeout(180)
async def test_suspend_keeps_a_hand_edit_until_resume(setup: Setup) -> None:
    setup.start(setup.manager())
    await eventually(lambda: setup.ready("app"))
    cluster = setup.cluster
    app = await setup.ks("app")
    await cluster.patch(app, {"spec": {"suspend": True}})
    # A reconcile already under way (base turning Ready queues app again) may still finish;
    # suspension stops the ones after it.
    await asyncio.sleep(2)
    deployment = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert deployment is not None
    await cluster.patch(deployment, {"spec": {"replicas": 4}})
    stamp = await setup.request(*KS[::-1], "app")
    await asyncio.sleep(3)  # long enough for a reconcile that should not happen
    live = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    assert live["spec"]["replicas"] == 4
    assert (await setup.ks("app"))["status"].get("lastHandledReconcileAt") != stamp

    await cluster.patch(await setup.ks("app"), {"spec": {"suspend": False}})

    async def put_back() -> bool:
        """the hand edit is undone after resume"""
        live = await cluster.get("apps/v1", "Deployment", "web", "shop")
        return live is not None and live["spec"]["replicas"] == 1

    await eventually(put_back)


@pytest.mark.timeout(240)
async def test_an_api_server_restart_mid_work_loses_nothing(setup: Setup) -> None:
    setup.start(setup.manager())
    await eventually(lambda: setup.ready("app", setup.head()))
    cluster = setup.cluster
    deployment = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert deployment is not None
    uid = deployment["metadata"]["uid"]

    # A commit lands while the API server is down; the controllers retry and catch up.
    await asyncio.to_thread(setup.sandbox.stop)
    manifest = setup.repo / "app" / "deployment.yaml"
    manifest.write_text(manifest.read_text().replace("nginx:1.27", "nginx:1.28"))
    git(setup.repo, "commit", "-q", "-am", "nginx 1.28")
    await asyncio.sleep(1)
    await asyncio.to_thread(setup.sandbox.start)
    await setup.fetch()

    async def caught_up() -> bool:
        """app Ready at the new commit with the new image"""
        live = await cluster.get("apps/v1", "Deployment", "web", "shop")
        image = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else ""
        return image == "nginx:1.28" and await setup.ready("app", setup.head())

    await eventually(caught_up, timeout=120)
    live = await cluster.get("apps/v1", "Deployment", "web", "shop")
    assert live is not None
    assert live["metadata"]["uid"] == uid  # the same object, updated, not recreated
    inventory = (await setup.ks("app"))["status"]["inventory"]["entries"]
    assert [e["id"] for e in inventory] == ["shop_web_apps_Deployment"]


@pytest.mark.timeout(240)
async def test_leader_failover(setup: Setup) -> None:
    stops: list[asyncio.Event] = []
    runs: list[asyncio.Task[bool]] = []
    for identity in ("first", "second"):
        elector = LeaderElector(
            setup.cluster, name="gitmoor-controllers", namespace="flux-system",
            identity=identity, lease_duration=2, renew_deadline=1.5, retry_period=0.2,
        )  # fmt: skip
        stop = asyncio.Event()
        stops.append(stop)
        runs.append(asyncio.create_task(run_leading(setup.manager(), elector, stop)))
        if identity == "first":
            await eventually(lambda: setup.ready("app"))
    lease = await setup.cluster.get("coordination.k8s.io/v1", "Lease", "gitmoor-controllers",
                                    "flux-system")  # fmt: skip
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "first"

    # The leader dies without releasing the lease; the second takes over within its term.
    runs[0].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runs[0]
    manifest = setup.repo / "app" / "deployment.yaml"
    manifest.write_text(manifest.read_text().replace("nginx:1.27", "nginx:1.29"))
    git(setup.repo, "commit", "-q", "-am", "nginx 1.29")

    async def second_leads() -> bool:
        """the second instance holds the lease"""
        lease = await setup.cluster.get("coordination.k8s.io/v1", "Lease",
                                        "gitmoor-controllers", "flux-system")  # fmt: skip
        return lease is not None and lease["spec"]["holderIdentity"] == "second"

    await eventually(second_leads, timeout=30)
    await setup.fetch()
    await eventually(lambda: setup.ready("app", setup.head()))
    stops[1].set()
    assert await runs[1] is True  # a clean stop releases the lease
    lease = await setup.cluster.get("coordination.k8s.io/v1", "Lease", "gitmoor-controllers",
                                    "flux-system")  # fmt: skip
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == ""


@pytest.mark.timeout(180)
async def test_an_unreachable_repository_keeps_the_last_artifact(setup: Setup) -> None:
    setup.start(setup.manager())
    head = setup.head()
    await eventually(lambda: setup.ready("app", head))
    source = ("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system")
    before = await setup.cluster.get(*source)
    assert before is not None
    moved = setup.repo.with_name("moved")
    setup.repo.rename(moved)
    try:
        stamp = await setup.request("GitRepository", source[0], "flux-system")

        async def failing() -> bool:
            """the GitRepository says the fetch failed"""
            obj = await setup.cluster.get(*source)
            assert obj is not None
            ready = conditions.find(obj["status"]["conditions"], conditions.READY)
            return obj["status"].get("lastHandledReconcileAt") == stamp and bool(
                ready and ready["status"] == "False"
            )

        await eventually(failing)
        obj = await setup.cluster.get(*source)
        assert obj is not None
        ready = conditions.find(obj["status"]["conditions"], conditions.READY)
        assert ready is not None
        assert ready["reason"] == conditions.GIT_OPERATION_FAILED
        assert "no such repository" in ready["message"]
        assert obj["status"]["artifact"] == before["status"]["artifact"]
        # What was applied stays, and a Kustomization reconcile still works from the artifact.
        await setup.request(*KS[::-1], "app")
        await eventually(lambda: setup.ready("app", head))
    finally:
        moved.rename(setup.repo)
    await setup.fetch()

    async def recovered() -> bool:
        """the GitRepository is Ready again"""
        obj = await setup.cluster.get(*source)
        return obj is not None and conditions.is_true(obj)

    await eventually(recovered)


@pytest.mark.timeout(180)
async def test_a_workload_that_never_becomes_ready_fails_the_health_check(setup: Setup) -> None:
    setup.start(setup.manager())
    await eventually(lambda: setup.ready("app", setup.head()))
    # First a short health timeout, applied on its own: a reconcile already running with
    # the old spec would wait out the old timeout.
    kustomizations = setup.repo / ROOT / "kustomizations.yaml"
    kustomizations.write_text(kustomizations.read_text().replace("timeout: 60s", "timeout: 3s"))
    git(setup.repo, "commit", "-q", "-am", "short health timeout")
    short = setup.head()
    await setup.fetch()

    async def shortened() -> bool:
        """app has the short timeout and is Ready at that commit"""
        ks = await setup.ks("app")
        return ks["spec"]["timeout"] == "3s" and await setup.ready("app", short)

    await eventually(shortened)
    manifest = setup.repo / "app" / "deployment.yaml"
    manifest.write_text(manifest.read_text().replace(
        "      labels:\n        app: web\n",
        "      annotations:\n        sandbox.gitmoor.dev/fail: never-ready\n"
        "      labels:\n        app: web\n"))  # fmt: skip
    git(setup.repo, "commit", "-q", "-am", "a release that never becomes ready")
    bad = setup.head()
    await setup.fetch()

    async def unhealthy() -> bool:
        """app reports HealthCheckFailed at the new revision"""
        ks = await setup.ks("app")
        healthy = conditions.find(ks["status"].get("conditions"), conditions.HEALTHY)
        return bool(
            healthy
            and healthy["status"] == "False"
            and str(ks["status"].get("lastAttemptedRevision")).endswith(bad)
        )

    await eventually(unhealthy)
    ks = await setup.ks("app")
    ready = conditions.find(ks["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert ready["reason"] == conditions.HEALTH_CHECK_FAILED
    assert "Deployment.apps/shop/web" in ready["message"]
    assert not str(ks["status"]["lastAppliedRevision"]).endswith(bad)
    events = await setup.cluster.list("v1", "Event", namespace="flux-system")
    assert any(e["reason"] == conditions.HEALTH_CHECK_FAILED for e in events)


@pytest.mark.timeout(180)
async def test_secret_values_never_reach_status_events_or_logs(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    value = "s3cr3t-value-7f1c"
    (setup.repo / "base" / "secret.yaml").write_text(dump_all([
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "db", "namespace": "shop"},
         "stringData": {"password": value}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "broken", "namespace": "shop"},
         "data": {"password": value}},  # not base64: the API server refuses it
    ]))  # fmt: skip
    git(setup.repo, "add", "-A")
    git(setup.repo, "commit", "-q", "-m", "secrets")
    caplog.set_level("DEBUG", logger="gitmoor")
    setup.start(setup.manager())

    async def refused() -> bool:
        """base failed on the broken Secret"""
        ks = await setup.cluster.get(*KS, "base", "flux-system")
        ready = conditions.find(((ks or {}).get("status") or {}).get("conditions"), "Ready")
        return bool(ready and ready["status"] == "False" and "broken" in ready["message"])

    await eventually(refused)
    written = [
        *await setup.cluster.list(*KS, namespace="flux-system"),
        *await setup.cluster.list("source.toolkit.fluxcd.io/v1", "GitRepository"),
        *await setup.cluster.list("v1", "Event", namespace="flux-system"),
    ]
    seen = [json.dumps(obj.get("status", obj)) for obj in written]
    assert all(value not in text for text in seen)
    assert value not in caplog.text
