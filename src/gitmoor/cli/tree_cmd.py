"""``gitmoor tree kustomization``: what a Kustomization manages, nested as flux tree shows it.

The tree is read from ``status.inventory``: every object the last successful apply left in
the cluster. A Kustomization in the inventory is opened in turn, to any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from gitmoor.apply.inventory import ObjectRef, read_inventory
from gitmoor.cli.common import Output
from gitmoor.cli.live import (
    AliasedCommand,
    AliasedGroup,
    cluster_options,
    namespace_option,
    output_option,
    print_structured,
    run,
)
from gitmoor.cli.reconcile_cmd import fetch
from gitmoor.cli.resources import KUSTOMIZATION
from gitmoor.cluster import Cluster

# --compact keeps the objects of these groups: Flux's own kinds.
FLUX_GROUP_SUFFIX = "toolkit.fluxcd.io"


@dataclass
class Node:
    ref: ObjectRef
    children: list[Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        """``Kind/namespace/name``, or ``Kind/name`` for a cluster-scoped object."""
        ref = self.ref
        return (
            f"{ref.kind}/{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"
        )


def render(root: Node) -> str:
    """The tree drawn with ├── and └──, the root on the first line."""
    lines = [root.text]

    def draw(nodes: list[Node], indent: str) -> None:
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{node.text}")
            draw(node.children, indent + ("    " if last else "│   "))

    draw(root.children, "")
    return "\n".join(lines) + "\n"


def as_data(node: Node) -> dict[str, Any]:
    """The tree as flux's ``-o json`` writes it: cli-utils' ObjMetadata, then the nested
    ``resources`` (left out where there are none)."""
    ref = node.ref
    data: dict[str, Any] = {
        "resource": {
            "Namespace": ref.namespace,
            "Name": ref.name,
            "GroupKind": {"Group": ref.group, "Kind": ref.kind},
        }
    }
    if node.children:
        data["resources"] = [as_data(child) for child in node.children]
    return data


def _is_kustomization(ref: ObjectRef) -> bool:
    return (ref.group, ref.kind) == (KUSTOMIZATION.model.GROUP, KUSTOMIZATION.kind)


async def build_tree(
    cluster: Cluster,
    ref: ObjectRef,
    obj: Mapping[str, Any],
    *,
    compact: bool,
    opened: frozenset[tuple[str, str, str, str]] = frozenset(),
) -> Node:
    """``obj``'s inventory under ``ref``; nested Kustomizations opened, each once per path (a
    Kustomization listing an ancestor of its own is not followed round)."""
    node = Node(ref)
    opened = opened | {ref.identity}
    # A Kustomization applying to another cluster (spec.kubeConfig) lists objects there.
    remote = bool((obj.get("spec") or {}).get("kubeConfig"))
    for entry in read_inventory(obj.get("status")):
        if compact and not entry.group.endswith(FLUX_GROUP_SUFFIX):
            continue
        if entry.identity == ref.identity:
            continue
        child = Node(entry)
        if _is_kustomization(entry) and not remote and entry.identity not in opened:
            nested = await cluster.get(
                KUSTOMIZATION.api_version, entry.kind, entry.name, entry.namespace
            )
            if nested is not None:
                child = await build_tree(cluster, entry, nested, compact=compact, opened=opened)
        node.children.append(child)
    return node


@click.group(cls=AliasedGroup)
def tree() -> None:
    """Show what an object manages, nested.

    \b
    Example:
      gitmoor tree kustomization flux-system
    """


@tree.command("kustomization", cls=AliasedCommand, aliases=("ks",))
@click.argument("name")
@namespace_option
@click.option("--compact", is_flag=True, help="Only Flux objects (Kustomizations, sources …).")
@output_option("tree")
@cluster_options
def tree_kustomization(
    name: str,
    namespace: str,
    compact: bool,
    output_format: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Show the objects a Kustomization applied, and theirs for Kustomizations among them.

    Read from each Kustomization's status.inventory (alias: ks). Exit code 2 if the
    Kustomization does not exist or the cluster cannot be reached.

    \b
    Examples:
      gitmoor tree kustomization flux-system
      gitmoor tree ks flux-system --compact
      gitmoor tree ks apps -n flux-system -o json
    """
    output = Output()

    async def work(cluster: Cluster) -> Node:
        obj = await fetch(cluster, KUSTOMIZATION, namespace, name)
        root = ObjectRef(KUSTOMIZATION.model.GROUP, KUSTOMIZATION.kind, namespace, name,
                         KUSTOMIZATION.model.VERSION)  # fmt: skip
        return await build_tree(cluster, root, obj, compact=compact)

    root = run(kubeconfig, kube_context, work)
    if output_format == "tree":
        output.data(render(root))
    else:
        print_structured(output, output_format, as_data(root))
