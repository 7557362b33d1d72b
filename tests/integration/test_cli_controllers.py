"""The live commands against gitmoor's real controllers: a small repository in a real Git
repository, reconciled into the sandbox; reconcile --with-source follows a commit, a broken
commit exits 1, and tree, get and events read what the controllers wrote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from gitmoor.bootstrap import git, local_repository
from gitmoor.cli.main import cli
from gitmoor.cluster import Cluster
from gitmoor.controllers.run import apply_bootstrap, bootstrap_objects, build_manager, install_crds

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

BRANCH = "main"
ROOT = "clusters/test"

FILES = {
    f"{ROOT}/kustomization.yaml": "resources: [settings.yaml, apps.yaml]\n",
    f"{ROOT}/settings.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: flux-system}\n"
        "data: {color: blue}\n"
    ),
    f"{ROOT}/apps.yaml": (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: apps, namespace: flux-system}\n"
        "spec:\n  interval: 10m\n  path: ./apps\n  prune: true\n"
        "  sourceRef: {kind: GitRepository, name: flux-system}\n"
    ),
    "apps/kustomization.yaml": "resources: [web.yaml]\n",
    "apps/web.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: default}\n"
        "data: {replicas: '1'}\n"
    ),
}


@dataclass
class Running:
    sandbox: Sandbox
    repo: Path

    async def invoke(self, *argv: str) -> Result:
        runner = CliRunner(env={"KUBECONFIG": str(self.sandbox.kubeconfig), "COLUMNS": "250"})
        return await asyncio.to_thread(runner.invoke, cli, list(argv), catch_exceptions=False)

    def commit(self, path: str, text: str) -> str:
        (self.repo / path).write_text(text)
        git(self.repo, "commit", "-q", "-am", f"change {path}")
        return git(self.repo, "rev-parse", "HEAD").strip()


@pytest.fixture
async def running(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Running]:
    source = tmp_path / "source"
    for path, text in FILES.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    repo = tmp_path / "repo"
    url = local_repository(source, repo, branch=BRANCH, path=ROOT)
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster)
    await apply_bootstrap(cluster, bootstrap_objects(url, branch=BRANCH, path=ROOT))
    manager, _ = build_manager(cluster, cache_dir=tmp_path / "cache", dependency_requeue=1.0)
    task = asyncio.create_task(manager.run())
    try:
        yield Running(sandbox, repo)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cluster.close()


@pytest.mark.timeout(240)
async def test_the_commands_follow_the_controllers(running: Running) -> None:
    head = running.commit(f"{ROOT}/settings.yaml", FILES[f"{ROOT}/settings.yaml"].replace(
        "blue", "green"))  # fmt: skip
    reconciled = await running.invoke("reconcile", "ks", "flux-system", "--with-source",
                                      "--timeout", "2m")  # fmt: skip
    assert reconciled.exit_code == 0, reconciled.output
    assert f"fetched revision {BRANCH}@sha1:{head}" in reconciled.stderr
    assert f"applied revision {BRANCH}@sha1:{head}" in reconciled.stderr

    tree = await running.invoke("tree", "ks", "flux-system")
    assert tree.exit_code == 0, tree.output
    lines = tree.stdout.splitlines()
    assert lines[0] == "Kustomization/flux-system/flux-system"
    assert "ConfigMap/flux-system/settings" in tree.stdout
    apps = next(
        i for i, line in enumerate(lines) if line.endswith("Kustomization/flux-system/apps")
    )
    # apps' own inventory hangs under it, once apps has been applied.
    applied_apps = await running.invoke("reconcile", "ks", "apps", "--timeout", "2m")
    assert applied_apps.exit_code == 0, applied_apps.output
    tree = await running.invoke("tree", "ks", "flux-system")
    lines = tree.stdout.splitlines()
    assert lines[apps + 1].endswith("└── ConfigMap/default/web")

    listed = await running.invoke("get", "ks")
    assert listed.exit_code == 0, listed.output
    assert [line.split()[3] for line in listed.stdout.splitlines()[1:]] == ["True", "True"]

    running.commit("apps/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [broken\n")
    source = await running.invoke("reconcile", "source", "git", "flux-system")
    assert source.exit_code == 0, source.output
    broken = await running.invoke("reconcile", "ks", "apps", "--timeout", "2m")
    assert broken.exit_code == 1, broken.output
    assert "web.yaml" in broken.stderr

    events = await running.invoke("events", "--for", "Kustomization/apps")
    assert events.exit_code == 0, events.output
    assert "Warning" in events.stdout
    assert "GitRepository/flux-system" in events.stdout
