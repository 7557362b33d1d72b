"""The inventory of a Kustomization: every object it applied, as Flux records it.

Flux writes ``status.inventory.entries`` as ``{id, v}`` pairs, where ``id`` is
``<namespace>_<name>_<group>_<kind>`` (empty parts stay empty, so a Namespace reads
``_flux-system__Namespace``) and ``v`` the version it was applied at. gitmoor reads and
writes the same format, so a cluster moved from Flux keeps its prune bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitmoor.api.registry import split_api_version


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object the way an inventory names it."""

    group: str
    kind: str
    namespace: str
    name: str
    version: str = ""

    @property
    def id(self) -> str:
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two refs the same object, whatever version they were seen at."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind}/{where}" if not self.group else f"{self.kind}.{self.group}/{where}"

    def stub(self) -> dict[str, Any]:
        """A minimal object for get/delete calls."""
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    group, version = split_api_version(str(obj.get("apiVersion", "")))
    meta = obj.get("metadata") or {}
    return ObjectRef(
        group, str(obj.get("kind", "")), meta.get("namespace") or "", meta.get("name", ""), version
    )


def parse_entry(entry: Mapping[str, Any]) -> ObjectRef:
    """An inventory entry back into a ref. Names never hold ``_``; namespaces and groups
    neither, so splitting on it is exact."""
    namespace, name, group, kind = str(entry["id"]).split("_", 3)
    return ObjectRef(group, kind, namespace, name, str(entry.get("v", "")))


def entries(refs: Iterable[ObjectRef]) -> list[dict[str, str]]:
    """Inventory entries, sorted by id as Flux keeps them."""
    return [{"id": r.id, "v": r.version} for r in sorted(refs, key=lambda r: r.id)]


def read_inventory(status: Mapping[str, Any] | None) -> list[ObjectRef]:
    inventory = (status or {}).get("inventory") or {}
    return [parse_entry(e) for e in inventory.get("entries") or []]


def stale(old: Iterable[ObjectRef], new: Iterable[ObjectRef]) -> list[ObjectRef]:
    """What ``old`` holds and ``new`` no longer does (versions aside), in ``old``'s order."""
    keep = {r.identity for r in new}
    return [r for r in old if r.identity not in keep]
