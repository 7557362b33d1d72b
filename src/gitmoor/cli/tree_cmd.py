"""``gitmoor tree kustomization|helmrelease``: what an object manages, nested as flux tree
shows it.

A Kustomization's objects are read from its ``status.inventory``: every object the last
successful apply left in the cluster. A HelmRelease's are the manifest of its latest Helm
revision, read from Helm's own records through the Helm SDK (hooks are not part of it).
Kustomizations and HelmReleases among the objects are opened in turn, to any depth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from gitmoor import releases
from gitmoor.apply.inventory import ObjectRef, read_inventory, ref_of
from gitmoor.cli.common import Output
from gitmoor.cli.live import (
    AliasedCommand,
    AliasedGroup,
    cluster_options,
    helm_kubeconfig,
    namespace_option,
    output_option,
    print_structured,
    run,
)
from gitmoor.cli.reconcile_cmd import fetch
from gitmoor.cli.resources import HELM_RELEASE, KUSTOMIZATION, FluxKind, release_target
from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError
from gitmoor.manifests import load_all

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


@dataclass(frozen=True)
class Walk:
    """What opening objects takes: the cluster, where Helm reads releases, and whether
    only Flux objects are kept."""

    cluster: Cluster
    compact: bool
    kubeconfig: Path | None = None
    context: str | None = None


def _opened_kind(ref: ObjectRef) -> FluxKind | None:
    """The kind of a ref whose own objects the tree shows: Kustomization, HelmRelease."""
    for kind in (KUSTOMIZATION, HELM_RELEASE):
        if (ref.group, ref.kind) == (kind.model.GROUP, kind.kind):
            return kind
    return None


def root_ref(kind: FluxKind, namespace: str, name: str) -> ObjectRef:
    return ObjectRef(kind.model.GROUP, kind.kind, namespace, name, kind.model.VERSION)


async def _namespaced(cluster: Cluster, ref: ObjectRef) -> bool:
    """Whether the cluster serves the kind per namespace; a kind it does not serve is
    taken as namespaced, as most are."""
    try:
        return (await cluster.kind(ref.api_version, ref.kind)).namespaced
    except ClusterError as exc:
        if exc.code != 404:
            raise
        return True


async def release_refs(walk: Walk, obj: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects of a HelmRelease's latest Helm revision, sorted as an inventory is; a
    namespaced object without a namespace lives in the release's, as Helm installs it."""
    target = release_target(obj, walk.kubeconfig, walk.context)
    manifest = await asyncio.to_thread(releases.manifest, target)
    refs = []
    origin = f"the manifest of Helm release {target.namespace}/{target.name}"
    for item in load_all(manifest, file=origin):
        ref = ref_of(item)
        if not ref.namespace and await _namespaced(walk.cluster, ref):
            ref = replace(ref, namespace=target.namespace)
        refs.append(ref)
    return sorted(refs, key=lambda r: r.id)


async def build_tree(
    walk: Walk,
    ref: ObjectRef,
    obj: Mapping[str, Any],
    *,
    opened: frozenset[tuple[str, str, str, str]] = frozenset(),
) -> Node:
    """What ``obj`` manages under ``ref``: a Kustomization's inventory, a HelmRelease's
    release manifest; nested ones opened, each once per path (one listing an ancestor of
    its own is not followed round)."""
    node = Node(ref)
    opened = opened | {ref.identity}
    # An object applying to another cluster (spec.kubeConfig) manages objects there: a
    # Kustomization's are listed but not opened, a HelmRelease's release is not read.
    remote = bool((obj.get("spec") or {}).get("kubeConfig"))
    if _opened_kind(ref) is HELM_RELEASE:
        managed = [] if remote else await release_refs(walk, obj)
    else:
        managed = read_inventory(obj.get("status"))
    for entry in managed:
        if walk.compact and not entry.group.endswith(FLUX_GROUP_SUFFIX):
            continue
        if entry.identity == ref.identity:
            continue
        child = Node(entry)
        kind = _opened_kind(entry)
        if kind is not None and not remote and entry.identity not in opened:
            nested = await walk.cluster.get(kind.api_version, entry.kind, entry.name,
                                            entry.namespace)  # fmt: skip
            if nested is not None:
                child = await build_tree(walk, entry, nested, opened=opened)
        node.children.append(child)
    return node


def _show(
    kind: FluxKind,
    name: str,
    namespace: str,
    compact: bool,
    output_format: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    output = Output()

    async def work(cluster: Cluster) -> Node:
        obj = await fetch(cluster, kind, namespace, name)
        walk = Walk(cluster, compact, helm_kubeconfig(kubeconfig), kube_context)
        return await build_tree(walk, root_ref(kind, namespace, name), obj)

    root = run(kubeconfig, kube_context, work)
    if output_format == "tree":
        output.data(render(root))
    else:
        print_structured(output, output_format, as_data(root))


@click.group(cls=AliasedGroup)
def tree() -> None:
    """Show what an object manages, nested.

    \b
    Examples:
      gitmoor tree kustomization flux-system
      gitmoor tree helmrelease grafana -n monitoring
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
    """Show the objects a Kustomization applied, and theirs for Kustomizations and
    HelmReleases among them.

    Read from each Kustomization's status.inventory (alias: ks), and from Helm's record
    of each HelmRelease's release. Exit code 2 if the Kustomization does not exist or the
    cluster cannot be reached.

    \b
    Examples:
      gitmoor tree kustomization flux-system
      gitmoor tree ks flux-system --compact
      gitmoor tree ks apps -n flux-system -o json
    """
    _show(KUSTOMIZATION, name, namespace, compact, output_format, kubeconfig, kube_context)


@tree.command("helmrelease", cls=AliasedCommand, aliases=("hr",))
@click.argument("name")
@namespace_option
@click.option("--compact", is_flag=True, help="Only Flux objects (Kustomizations, sources …).")
@output_option("tree")
@cluster_options
def tree_helmrelease(
    name: str,
    namespace: str,
    compact: bool,
    output_format: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Show the objects a HelmRelease's Helm release installed, and theirs for
    Kustomizations and HelmReleases among them (alias: hr).

    Read from the manifest Helm stored for the release's latest revision (hooks and the
    chart's crds/ are not in it); a HelmRelease not installed yet shows no objects. Exit
    code 2 if the HelmRelease does not exist or the cluster cannot be reached.

    \b
    Examples:
      gitmoor tree helmrelease grafana -n monitoring
      gitmoor tree hr grafana -n monitoring -o json
    """
    _show(HELM_RELEASE, name, namespace, compact, output_format, kubeconfig, kube_context)
