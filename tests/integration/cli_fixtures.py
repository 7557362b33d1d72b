"""Flux objects in a sandbox for the live CLI commands, with status written as the
controllers write it, and the CLI run beside the test's event loop.

Test modules load it with ``pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]`` and take
the ``flux`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from gitmoor.api.crds import crd_manifests
from gitmoor.cli.main import cli
from gitmoor.cluster import Cluster
from gitmoor.controllers.manager import REQUESTED_AT

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

SHA = "3f2a1c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def ready(status: bool, message: str, reason: str = "") -> list[dict[str, Any]]:
    """A Ready condition as the controllers write it."""
    return [{
        "type": "Ready",
        "status": "True" if status else "False",
        "reason": reason or ("ReconciliationSucceeded" if status else "BuildFailed"),
        "message": message,
        "lastTransitionTime": "2024-05-01T12:00:00Z",
    }]  # fmt: skip


@dataclass
class Flux:
    """The sandbox with gitmoor's CRDs and a flux-system namespace, and ways to fill it."""

    sandbox: Sandbox
    cluster: Cluster
    revision: str = f"main@sha1:{SHA}"
    short_revision: str = f"main@sha1:{SHA[:8]}"
    ready = staticmethod(ready)

    async def invoke(self, *argv: str) -> Result:
        """``gitmoor ARGV`` with $KUBECONFIG naming the sandbox, on a thread of its own so
        the test's loop can play a controller meanwhile."""
        runner = CliRunner(env={"KUBECONFIG": str(self.sandbox.kubeconfig), "COLUMNS": "250"})
        return await asyncio.to_thread(runner.invoke, cli, list(argv), catch_exceptions=False)

    async def namespace(self, name: str) -> None:
        await self.cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}})  # fmt: skip

    async def git_repository(
        self, name: str = "flux-system", namespace: str = "flux-system", **status: Any
    ) -> dict[str, Any]:
        obj = await self.cluster.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "1m", "url": "https://git.example.invalid/homelab.git",
                     "ref": {"branch": "main"}},
        })  # fmt: skip
        return await self.cluster.patch_status(obj, status) if status else obj

    async def kustomization(
        self, name: str, namespace: str = "flux-system", **status: Any
    ) -> dict[str, Any]:
        obj = await self.cluster.apply({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "10m", "path": f"./{name}", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system",
                                   "namespace": "flux-system"}},
        })  # fmt: skip
        return await self.cluster.patch_status(obj, status) if status else obj

    async def helm_repository(
        self,
        name: str = "charts",
        namespace: str = "flux-system",
        *,
        oci: bool = False,
        **status: Any,
    ) -> dict[str, Any]:
        url = "oci://registry.example.invalid/charts" if oci else "https://charts.example.invalid"
        obj = await self.cluster.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "10m", "url": url, **({"type": "oci"} if oci else {})},
        })  # fmt: skip
        return await self.cluster.patch_status(obj, status) if status else obj

    async def oci_repository(
        self, name: str = "web", namespace: str = "flux-system", **status: Any
    ) -> dict[str, Any]:
        obj = await self.cluster.apply({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "10m", "url": "oci://registry.example.invalid/charts/web",
                     "ref": {"tag": "1.0.0"}},
        })  # fmt: skip
        return await self.cluster.patch_status(obj, status) if status else obj

    async def helm_release(
        self,
        name: str,
        namespace: str = "flux-system",
        *,
        source: str = "HelmRepository/charts",
        **status: Any,
    ) -> dict[str, Any]:
        """A HelmRelease whose chart comes from ``source`` (Kind/name, in flux-system):
        through ``chart.spec`` from a HelmRepository, through ``chartRef`` from an
        OCIRepository."""
        kind, _, source_name = source.partition("/")
        ref = {"kind": kind, "name": source_name, "namespace": "flux-system"}
        chart = (
            {"chartRef": ref}
            if kind == "OCIRepository"
            else {"chart": {"spec": {"chart": name, "version": "*", "sourceRef": ref}}}
        )
        obj = await self.cluster.apply({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "10m", **chart},
        })  # fmt: skip
        return await self.cluster.patch_status(obj, status) if status else obj

    async def live(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        found = await self.cluster.get(obj["apiVersion"], obj["kind"], meta["name"],
                                       meta.get("namespace"))  # fmt: skip
        assert found is not None, f"{obj['kind']} {meta['name']} is gone"
        return found

    async def play_controller(self, obj: Mapping[str, Any], status: Mapping[str, Any]) -> str:
        """What a controller does with a reconcile request: wait for a new ``requestedAt``,
        then write ``status`` with ``lastHandledReconcileAt`` set to it. Returns the value."""
        before = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        while True:
            live = await self.live(obj)
            requested = (live["metadata"].get("annotations") or {}).get(REQUESTED_AT)
            if requested and requested != before:
                await self.cluster.patch_status(
                    live, {**status, "lastHandledReconcileAt": requested}
                )
                return str(requested)
            await asyncio.sleep(0.05)


@pytest.fixture
async def flux(sandbox: Sandbox) -> AsyncIterator[Flux]:
    cluster = Cluster.connect(sandbox.kubeconfig)
    for crd in crd_manifests():
        await cluster.apply(crd)
    flux = Flux(sandbox, cluster)
    await flux.namespace("flux-system")
    yield flux
    await cluster.close()
