"""Putting the controllers together: CRDs into a cluster, bootstrap objects, the manager."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitmoor.api.crds import crd_manifests
from gitmoor.apply.engine import wait_established
from gitmoor.cluster import Cluster
from gitmoor.controllers.context import Context
from gitmoor.controllers.externalsecret import register as register_external_secrets
from gitmoor.controllers.gitrepository import GitRepositoryReconciler
from gitmoor.controllers.helmrelease import HelmReleaseReconciler
from gitmoor.controllers.helmrepository import HelmRepositoryReconciler
from gitmoor.controllers.kustomization import KustomizationReconciler
from gitmoor.controllers.leader import LeaderElector
from gitmoor.controllers.manager import Manager
from gitmoor.controllers.ocirepository import OCIRepositoryReconciler
from gitmoor.manifests import KubeObject
from gitmoor.observe.metrics import Metrics
from gitmoor.source.artifacts import ArtifactStore


async def install_crds(
    cluster: Cluster, *, timeout: float = 60.0, external_secrets: bool = False
) -> list[KubeObject]:
    """Apply gitmoor's CRDs (Flux's and External Secrets' kinds) and wait until served."""
    crds = crd_manifests(external_secrets=external_secrets)
    for crd in crds:
        await cluster.apply(crd, force=True)
    await wait_established(cluster, crds, timeout=timeout)
    return crds


def build_manager(
    cluster: Cluster,
    *,
    cache_dir: Path,
    concurrency: int = 4,
    namespace: str | None = None,
    metrics: Metrics | None = None,
    dependency_requeue: float = 10.0,
    kubeconfig: Path | None = None,
    external_secrets: bool = True,
) -> tuple[Manager, Context]:
    """The manager with every controller registered. ``kubeconfig`` is for the Helm SDK,
    which connects on its own (None: $KUBECONFIG, ~/.kube/config or in-cluster).
    ``external_secrets`` False leaves SecretStores and ExternalSecrets to another operator
    (the External Secrets Operator itself) running in the same cluster."""
    manager = Manager(cluster, concurrency=concurrency, namespace=namespace)
    context = Context(
        cluster,
        manager,
        ArtifactStore(cache_dir),
        metrics=metrics or Metrics(),
        dependency_requeue=dependency_requeue,
    )
    manager.register(GitRepositoryReconciler(context))
    manager.register(HelmRepositoryReconciler(context))
    manager.register(OCIRepositoryReconciler(context))
    manager.register(KustomizationReconciler(context))
    manager.register(HelmReleaseReconciler(context, kubeconfig=kubeconfig))
    if external_secrets:
        register_external_secrets(manager, context)
    return manager, context


def bootstrap_objects(
    url: str, *, branch: str, path: str, name: str = "flux-system", namespace: str = "flux-system"
) -> list[dict[str, Any]]:
    """The Namespace, GitRepository and root Kustomization ``flux bootstrap`` writes."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "1m0s", "ref": {"branch": branch}, "url": url},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "interval": "10m0s",
                "path": path if path.startswith("./") else f"./{path.strip('/')}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": name},
            },
        },
    ]


async def apply_bootstrap(cluster: Cluster, objects: Sequence[dict[str, Any]]) -> None:
    """Apply the bootstrap objects; the root Kustomization adopts them once it applies the
    same objects from the repository (as after ``flux bootstrap``)."""
    for obj in objects:
        await cluster.apply(obj, force=True)


async def run_leading(manager: Manager, elector: LeaderElector, stop: asyncio.Event) -> bool:
    """Wait for the lease, then run the manager while holding it, until ``stop`` is set
    (True: the lease is released for the next instance) or the lease is lost (False: the
    caller exits, as a controller-runtime process does, and is restarted)."""
    acquiring = asyncio.create_task(elector.acquire())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not acquiring.done():
        acquiring.cancel()
        await asyncio.gather(acquiring, return_exceptions=True)
        return True
    lost = asyncio.Event()
    ending = asyncio.Event()

    async def hold() -> None:
        await elector.hold()
        lost.set()
        ending.set()

    async def until_stopped() -> None:
        await stop.wait()
        ending.set()

    stopping.cancel()
    watchers = [asyncio.create_task(hold()), asyncio.create_task(until_stopped())]
    try:
        await run_until(manager, ending)
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, stopping, return_exceptions=True)
        if not lost.is_set():
            await elector.release()
    return not lost.is_set()


async def run_until(manager: Manager, stop: asyncio.Event) -> None:
    """Run the manager until ``stop`` is set."""
    task = asyncio.create_task(manager.run())
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the manager stopped on its own: raise what stopped it
    finally:
        for pending in (task, waiter):
            pending.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
