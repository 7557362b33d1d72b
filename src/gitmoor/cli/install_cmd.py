"""``gitmoor install``: the CustomResourceDefinitions gitmoor serves, and with --in-cluster
what runs the controllers inside the cluster."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from gitmoor.api.crds import crd_manifests
from gitmoor.apply.health import Status, health
from gitmoor.cli.common import Output
from gitmoor.cluster import Cluster, describe
from gitmoor.controllers.run import install_crds
from gitmoor.deploy import DEFAULT_IMAGE, DEPLOYMENT, in_cluster_manifests
from gitmoor.errors import ClusterError, Location
from gitmoor.manifests import KubeObject, dump_all


async def wait_available(
    cluster: Cluster, namespace: str, *, timeout: float, interval: float = 1.0
) -> None:
    """Until the controllers' Deployment has rolled out (kstatus Current); a ClusterError
    when it has failed, or when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    what = f"Deployment {namespace}/{DEPLOYMENT}"
    while True:
        found = health(await cluster.get("apps/v1", "Deployment", DEPLOYMENT, namespace))
        if found.status is Status.CURRENT:
            return
        if found.status is Status.FAILED:
            raise ClusterError(found.message, Location(object=what), reason="Failed")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"not Available after {timeout:g}s: {found.message}",
                Location(object=what),
                reason="Timeout",
            )
        await asyncio.sleep(interval)


async def _install_in_cluster(
    cluster: Cluster,
    manifests: list[KubeObject],
    namespace: str,
    timeout: float,
    output: Output,
    *,
    external_secrets: bool,
) -> None:
    output.info("► installing CustomResourceDefinitions")
    crds = await install_crds(cluster, timeout=timeout, external_secrets=external_secrets)
    output.info(f"✔ {len(crds)} CustomResourceDefinitions installed")
    output.info(f"► installing the controllers in namespace {namespace}")
    for obj in manifests:
        # Forced, as `flux install` does: these objects are gitmoor's to define.
        await cluster.apply(obj, force=True)
        output.info(f"  {describe(obj)} applied")
    output.info(f"◎ waiting for Deployment {namespace}/{DEPLOYMENT} to become Available")
    await wait_available(cluster, namespace, timeout=timeout)
    output.info(f"✔ Deployment {namespace}/{DEPLOYMENT} is Available")


@click.command()
@click.option("--export", "export", is_flag=True,
              help="Print the manifests instead of applying them.")  # fmt: skip
@click.option("--in-cluster", is_flag=True, help="Also install the ServiceAccount, RBAC and "
              "Deployment that run the controllers inside the cluster.")  # fmt: skip
@click.option("--image", default=DEFAULT_IMAGE, show_default=True,
              help="Container image of the controllers (with --in-cluster).")  # fmt: skip
@click.option("--namespace", "-n", default="flux-system", show_default=True,
              help="Namespace of the controllers (with --in-cluster).")  # fmt: skip
@click.option("--timeout", default=300.0, show_default=True,
              help="Seconds to wait for the CRDs to be served and the Deployment "
              "Available.")  # fmt: skip
@click.option("--external-secrets", is_flag=True,
              help="Also External Secrets' CRDs (ExternalSecret, ClusterSecretStore ...), for "
              "clusters that do not get them from the external-secrets chart.")  # fmt: skip
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Cluster to install into (default: $KUBECONFIG, ~/.kube/config).")  # fmt: skip
@click.option("--context", "context_name", help="kubeconfig context to use.")
def install(
    export: bool,
    in_cluster: bool,
    image: str,
    namespace: str,
    timeout: float,
    external_secrets: bool,
    kubeconfig: Path | None,
    context_name: str | None,
) -> None:
    """Install gitmoor's CustomResourceDefinitions into a cluster.

    Applies them server-side and waits until the API serves them. With --in-cluster, then
    applies a Namespace, ServiceAccount, RBAC, a metrics Service and the Deployment
    gitmoor-controllers (two replicas, one leading), and waits until it is Available.
    With --export, prints all of it as a YAML stream instead (for kubectl apply -f -, or
    to commit into a repository).

    \b
    Examples:
      gitmoor install --kubeconfig ~/.kube/config
      gitmoor install --in-cluster --image registry.example.com/gitmoor:dev
      gitmoor install --export --in-cluster > gitmoor.yaml
    """
    output = Output()
    manifests = in_cluster_manifests(namespace=namespace, image=image) if in_cluster else []
    if export:
        output.data(dump_all([*crd_manifests(external_secrets=external_secrets), *manifests]))
        return

    async def apply() -> None:
        cluster = Cluster.connect(kubeconfig, context=context_name)
        try:
            if in_cluster:
                await _install_in_cluster(
                    cluster, manifests, namespace, timeout, output,
                    external_secrets=external_secrets,
                )  # fmt: skip
            else:
                crds = await install_crds(
                    cluster, timeout=timeout, external_secrets=external_secrets
                )
                output.info(f"✔ {len(crds)} CustomResourceDefinitions installed")
        finally:
            await cluster.close()

    asyncio.run(apply())
