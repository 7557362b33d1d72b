"""The controllers end to end: the example repository from a real Git repository into the
sandbox, then commits, hand edits, prunes and a broken commit."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.bootstrap import git, local_repository
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.manager import REQUESTED_AT, Manager
from gitmoor.controllers.run import apply_bootstrap, bootstrap_objects, build_manager, install_crds
from gitmoor.demo.homelab import (
    HOMELAB_DIR,
    ROOT_PATH,
    ExampleCharts,
    demo_decryption_secret,
    serve_example_charts,
)
from gitmoor.secrets import devserver

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures", "openbao_fixtures"]

BRANCH = "production"
OLLAMA = "apps/llm-ollama/deployment.yaml"


@dataclass
class Running:
    cluster: Cluster
    manager: Manager
    repo: Path

    async def kustomization(self, name: str) -> dict[str, Any]:
        obj = await self.cluster.get(
            "kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, "flux-system"
        )
        assert obj is not None, f"Kustomization {name} not found"
        return obj

    async def request(self, kind: str, api_version: str, name: str) -> None:
        obj = await self.cluster.get(api_version, kind, name, "flux-system")
        assert obj is not None
        stamp = str(time.time_ns())
        await self.cluster.patch(obj, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})

    async def fetch(self) -> None:
        """What a webhook or ``gitmoor reconcile source git`` does: fetch now."""
        await self.request("GitRepository", "source.toolkit.fluxcd.io/v1", "flux-system")

    def commit(self, message: str) -> str:
        git(self.repo, "commit", "-q", "-am", message)
        return git(self.repo, "rev-parse", "HEAD").strip()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__ or check}")
        await asyncio.sleep(0.3)


async def all_ready(running: Running, revision: str | None = None) -> bool:
    """Every Kustomization Ready (at ``revision`` when given)."""
    items = await running.cluster.list("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    if len(items) < 8:
        return False
    for ks in items:
        if not conditions.is_true(ks):
            return False
        if revision and not str(ks["status"].get("lastAppliedRevision", "")).endswith(revision):
            return False
    return True


@pytest.fixture(scope="module")
def example_charts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleCharts]:
    with serve_example_charts(tmp_path_factory.mktemp("charts")) as charts:
        yield charts


@pytest.fixture
async def running(
    sandbox: Sandbox,
    tmp_path: Path,
    example_charts: ExampleCharts,
    openbao: devserver.DevServer,
) -> AsyncIterator[Running]:
    cluster = Cluster.connect(sandbox.kubeconfig)
    repo = tmp_path / "homelab"
    url = local_repository(HOMELAB_DIR, repo, branch=BRANCH, path=ROOT_PATH)
    await install_crds(cluster)
    bootstrap = bootstrap_objects(url, branch=BRANCH, path=ROOT_PATH)
    settings = [example_charts.cluster_settings, demo_decryption_secret()]
    # The example's ClusterSecretStore reads from OpenBao, as gitmoor up sets it up.
    devserver.configure_example(openbao, kubernetes=None)
    settings = devserver.example_objects(openbao, settings)
    await apply_bootstrap(cluster, [bootstrap[0], *settings, *bootstrap[1:]])
    manager, _ = build_manager(cluster, cache_dir=tmp_path / "cache", dependency_requeue=1.0,
                               kubeconfig=sandbox.kubeconfig)  # fmt: skip
    task = asyncio.create_task(manager.run())
    try:
        yield Running(cluster, manager, repo)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cluster.close()


@pytest.mark.timeout(300)
async def test_the_example_converges_and_follows_git(running: Running) -> None:
    head = git(running.repo, "rev-parse", "HEAD").strip()

    async def converged() -> bool:
        return await all_ready(running, head)

    await eventually(converged, timeout=180)
    cluster = running.cluster
    ollama = await cluster.get("apps/v1", "Deployment", "ollama", "ollama")
    assert ollama is not None
    apps = await running.kustomization("apps")
    # dependsOn: apps was applied after platform, which came after infrastructure.
    assert {e["id"] for e in apps["status"]["inventory"]["entries"]}
    helm_releases = await cluster.list("helm.toolkit.fluxcd.io/v2", "HelmRelease")
    assert len(helm_releases) == 18
    # Every release installed, at revision 1; llm-keda's ScaledObject came from keda's CRD.
    for release in helm_releases:
        assert conditions.is_true(release), release["metadata"]["name"]
        assert release["status"]["history"][0]["version"] == 1
    assert await cluster.get("keda.sh/v1alpha1", "ScaledObject", "ollama", "ollama") is not None
    # The SOPS-encrypted Secret in Git was applied decrypted.
    app_settings = await cluster.get("v1", "Secret", "app-settings", "my-app")
    assert app_settings is not None
    assert "sops" not in app_settings
    value = str(app_settings["data"]["SESSION_SECRET"])
    assert not value.startswith("ENC[")
    assert base64.b64decode(value, validate=True).decode()

    # A commit changing a value reaches the cluster.
    deployment = running.repo / OLLAMA
    deployment.write_text(deployment.read_text().replace("0.15.2", "0.15.4", 1))
    bumped = running.commit("ollama 0.15.4")
    await running.fetch()

    async def bumped_image() -> bool:
        live = await cluster.get("apps/v1", "Deployment", "ollama", "ollama")
        image = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else ""
        return bool(image.endswith("0.15.4")) and await all_ready(running, bumped)

    await eventually(bumped_image)

    # git revert puts it back.
    git(running.repo, "revert", "--no-edit", "HEAD")
    reverted = git(running.repo, "rev-parse", "HEAD").strip()
    await running.fetch()

    async def reverted_image() -> bool:
        live = await cluster.get("apps/v1", "Deployment", "ollama", "ollama")
        image = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else ""
        return bool(image.endswith("0.15.2")) and await all_ready(running, reverted)

    await eventually(reverted_image)


@pytest.mark.timeout(300)
async def test_drift_prune_and_a_broken_commit(running: Running) -> None:
    head = git(running.repo, "rev-parse", "HEAD").strip()

    async def converged() -> bool:
        return await all_ready(running, head)

    await eventually(converged, timeout=180)
    cluster = running.cluster
    service = await cluster.get("v1", "Service", "ollama", "ollama")
    assert service is not None

    # A hand edit and a hand deletion are put back at the next reconcile.
    live = await cluster.get("apps/v1", "Deployment", "ollama", "ollama")
    assert live is not None
    await cluster.patch(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "ollama", "image": "ollama/ollama:hand-edited"}]}}}})  # fmt: skip
    await cluster.delete(service)
    await running.request("Kustomization", "kustomize.toolkit.fluxcd.io/v1", "llm-ollama")

    async def restored() -> bool:
        live = await cluster.get("apps/v1", "Deployment", "ollama", "ollama")
        back = await cluster.get("v1", "Service", "ollama", "ollama")
        image = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else ""
        return bool(image.endswith("0.15.2")) and back is not None

    await eventually(restored)

    # A broken commit: nothing is applied or pruned, and Ready says why.
    broken = running.repo / OLLAMA
    broken.write_text(broken.read_text() + "\n  : : not yaml [\n")
    bad = running.commit("broken")
    await running.fetch()

    async def failed() -> bool:
        ks = await running.kustomization("llm-ollama")
        ready = conditions.find(ks.get("status", {}).get("conditions"), conditions.READY)
        return bool(
            ready
            and ready["status"] == "False"
            and ready["reason"] == conditions.BUILD_FAILED
            and ks["status"].get("lastAttemptedRevision", "").endswith(bad)
        )

    await eventually(failed)
    ks = await running.kustomization("llm-ollama")
    ready = conditions.find(ks["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert "deployment.yaml" in ready["message"]
    assert str(ks["status"]["lastAppliedRevision"]).endswith(head)
    assert await cluster.get("v1", "Service", "ollama", "ollama") is not None

    # Fixing it by removing the Service's manifest prunes the Service.
    git(running.repo, "checkout", "HEAD~1", "--", OLLAMA)
    kustomization = running.repo / "apps/llm-ollama/kustomization.yaml"
    text = kustomization.read_text()
    assert "service.yaml" in text
    kustomization.write_text(text.replace("  - service.yaml\n", ""))
    fixed = running.commit("drop the ollama Service")
    await running.fetch()

    async def pruned() -> bool:
        gone = await cluster.get("v1", "Service", "ollama", "ollama") is None
        return gone and await all_ready(running, fixed)

    await eventually(pruned)
