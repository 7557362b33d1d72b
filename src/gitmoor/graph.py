"""The dependsOn graph: which Kustomization or HelmRelease waits for which.

Kustomizations depend on Kustomizations and HelmReleases on HelmReleases, each by name
with an optional namespace (defaulting to the dependent's own), as in Flux.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitmoor.errors import GraphError, Location


@dataclass(frozen=True, order=True)
class NodeId:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Node:
    id: NodeId
    depends_on: tuple[NodeId, ...]
    file: str | None = None


def order(nodes: Sequence[Node]) -> list[list[NodeId]]:
    """Nodes in waves: each wave depends only on earlier waves; names sorted in a wave.

    A dependency that names nothing in ``nodes`` or a cycle raises GraphError naming
    both ends (or the whole cycle).
    """
    by_id = {node.id: node for node in nodes}
    for node in nodes:
        for index, dependency in enumerate(node.depends_on):
            if dependency not in by_id:
                raise GraphError(
                    f"depends on {dependency}, which does not exist",
                    Location(file=node.file, object=str(node.id), field=f"spec.dependsOn[{index}]"),
                )
    remaining = {node.id: set(node.depends_on) for node in nodes}
    waves: list[list[NodeId]] = []
    while remaining:
        ready = sorted(node_id for node_id, deps in remaining.items() if not deps)
        if not ready:
            cycle = _find_cycle(remaining)
            first = by_id[cycle[0]]
            raise GraphError(
                "dependsOn cycle: " + " -> ".join(str(n) for n in [*cycle, cycle[0]]),
                Location(file=first.file, object=str(first.id), field="spec.dependsOn"),
            )
        waves.append(ready)
        for node_id in ready:
            del remaining[node_id]
        for deps in remaining.values():
            deps.difference_update(ready)
    return waves


def _find_cycle(edges: dict[NodeId, set[NodeId]]) -> list[NodeId]:
    """One cycle among nodes that all still have unmet dependencies."""
    start = min(edges)
    path: list[NodeId] = []
    seen: dict[NodeId, int] = {}
    current = start
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = min(edges[current])
    return path[seen[current] :]
