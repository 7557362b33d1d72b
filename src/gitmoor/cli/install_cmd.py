"""``gitmoor install``: the CustomResourceDefinitions gitmoor serves."""

from __future__ import annotations

import click

from gitmoor.api.crds import crd_manifests
from gitmoor.cli.common import Output
from gitmoor.manifests import dump_all


@click.command()
@click.option(
    "--export",
    "export",
    is_flag=True,
    required=True,
    help="Print the manifests instead of applying them (the only mode for now).",
)
def install(export: bool) -> None:
    """Install gitmoor's CustomResourceDefinitions into a cluster.

    With --export, print them as a YAML stream (for kubectl apply -f -, or to commit
    into a repository).
    """
    Output().data(dump_all(crd_manifests()))
