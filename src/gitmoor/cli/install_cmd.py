"""``gitmoor install``: the CustomResourceDefinitions gitmoor serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from gitmoor.api.crds import crd_manifests
from gitmoor.cli.common import Output
from gitmoor.cluster import Cluster
from gitmoor.controllers.run import install_crds
from gitmoor.manifests import dump_all


@click.command()
@click.option("--export", "export", is_flag=True,
              help="Print the manifests instead of applying them.")  # fmt: skip
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Cluster to install into (default: $KUBECONFIG, ~/.kube/config).")  # fmt: skip
@click.option("--context", "context_name", help="kubeconfig context to use.")
def install(export: bool, kubeconfig: Path | None, context_name: str | None) -> None:
    """Install gitmoor's CustomResourceDefinitions into a cluster.

    Applies them server-side and waits until the API serves them. With --export, prints
    them as a YAML stream instead (for kubectl apply -f -, or to commit into a repository).

    \b
    Examples:
      gitmoor install --kubeconfig ~/.kube/config
      gitmoor install --export > crds.yaml
    """
    output = Output()
    if export:
        output.data(dump_all(crd_manifests()))
        return

    async def apply() -> int:
        cluster = Cluster.connect(kubeconfig, context=context_name)
        try:
            return len(await install_crds(cluster))
        finally:
            await cluster.close()

    output.info(f"✔ {asyncio.run(apply())} CustomResourceDefinitions installed")
