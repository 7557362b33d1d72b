"""Applying a set of rendered objects to a cluster, and pruning what left it.

:func:`apply_objects` is the one path every Kustomization takes:

1. every object's kind is looked up first (CRDs in the same set count), so an object of
   an unknown kind fails the set before anything is written;
2. per stage (see :mod:`gitmoor.apply.plan`): the live objects are read with one list per
   kind, objects already in sync are left alone, the others go through a server-side
   dry-run together and only then are applied for real (force-owning their fields, as
   Flux does: Git wins over hand edits), so an invalid object stops the stage before any
   of it is written; after the first stage, the CRDs must be Established before custom
   resources of them are applied;
3. ``force`` recreates an object whose immutable fields changed.

:func:`prune` deletes inventory entries that left Git, newest stage first, and only
objects still labelled as this Kustomization's and not annotated ``prune: disabled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitmoor.apply import plan
from gitmoor.apply.inventory import ObjectRef, ref_of
from gitmoor.cluster import Cluster, Kind, describe
from gitmoor.errors import ClusterError, Location
from gitmoor.manifests import KubeObject

CREATED = "created"
CONFIGURED = "configured"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    ref: ObjectRef
    action: str

    def __str__(self) -> str:
        return f"{self.ref} {self.action}"


@dataclass
class ApplyResult:
    changes: list[Change] = field(default_factory=list)

    @property
    def refs(self) -> list[ObjectRef]:
        """What the inventory holds after this apply: every object in Git, applied or not."""
        return [c.ref for c in self.changes]

    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action in (CREATED, CONFIGURED)]


@dataclass(frozen=True)
class Owner:
    """The Kustomization objects are applied for."""

    name: str
    namespace: str
    force: bool = False


async def apply_objects(
    cluster: Cluster,
    objects: Sequence[Mapping[str, Any]],
    owner: Owner,
    *,
    crd_timeout: float = 30.0,
) -> ApplyResult:
    """Apply ``objects`` in stages; raises ClusterError naming the object on the first
    failure (objects of earlier stages stay applied, as they would with Flux)."""
    desired = [plan.owned(obj, owner.name, owner.namespace) for obj in objects]
    crds = [o for o in desired if o.get("kind") == "CustomResourceDefinition"]
    kinds: dict[ObjectRef, Kind] = {}
    for obj in desired:
        kind = await _kind_of(cluster, obj, crds)
        if kind.namespaced and not (obj.get("metadata") or {}).get("namespace"):
            raise ClusterError(
                "a namespaced object needs metadata.namespace (or the Kustomization's "
                "spec.targetNamespace)",
                Location(object=describe(obj), field="metadata.namespace"),
                code=422,
                reason="Invalid",
            )
        kinds[ref_of(obj)] = kind
    result = ApplyResult()
    for stage in plan.stages(desired):
        live = await _live(cluster, stage, kinds, owner)
        todo: list[tuple[KubeObject, str]] = []
        for obj in stage:
            ref = ref_of(obj)
            current = live.get(ref.identity)
            policy = plan.apply_policy(obj, current)
            if policy == "skip":
                result.changes.append(Change(ref, SKIPPED))
            elif plan.in_sync(obj, current, cluster.field_manager):
                result.changes.append(Change(ref, UNCHANGED))
            else:
                todo.append((obj, CREATED if current is None else CONFIGURED))
        for obj, _ in todo:
            await _dry_run(cluster, obj, crds, owner)
        for obj, action in todo:
            await _apply(cluster, obj, crds, owner)
            result.changes.append(Change(ref_of(obj), action))
        stage_crds = [o for o in stage if o.get("kind") == "CustomResourceDefinition"]
        if stage_crds:
            await wait_established(cluster, stage_crds, timeout=crd_timeout)
    return result


async def _kind_of(cluster: Cluster, obj: Mapping[str, Any], crds: list[KubeObject]) -> Kind:
    try:
        return await cluster.kind(str(obj.get("apiVersion")), str(obj.get("kind")), declared=crds)
    except ClusterError as exc:
        if exc.code == 404:
            raise ClusterError(
                f"the cluster serves no {obj.get('kind')} at {obj.get('apiVersion')} "
                "and no CustomResourceDefinition in this Kustomization declares it",
                Location(object=describe(obj), field="apiVersion"),
                code=404,
                reason="NotFound",
            ) from None
        raise


async def _live(
    cluster: Cluster,
    stage: list[KubeObject],
    kinds: Mapping[ObjectRef, Kind],
    owner: Owner,
) -> dict[tuple[str, str, str, str], KubeObject]:
    """The live objects of a stage this owner applied, one list per kind. An object made by
    hand under the same name is missed and applied over (reported created)."""
    labels = {plan.NAME_LABEL: owner.name, plan.NAMESPACE_LABEL: owner.namespace}
    found: dict[tuple[str, str, str, str], KubeObject] = {}
    listed: set[tuple[str, str]] = set()
    for obj in stage:
        kind = kinds[ref_of(obj)]
        if (kind.api_version, kind.kind) in listed:
            continue
        listed.add((kind.api_version, kind.kind))
        try:
            items = await cluster.list(kind.api_version, kind.kind, labels=labels)
        except ClusterError as exc:
            if exc.code != 404:  # 404: a kind whose CRD is applied in this very run
                raise
            items = []
        for item in items:
            found[ref_of(item).identity] = item
    return found


async def _dry_run(
    cluster: Cluster, obj: Mapping[str, Any], crds: list[KubeObject], owner: Owner
) -> None:
    try:
        await cluster.apply(obj, force=True, dry_run=True, declared=crds)
    except ClusterError as exc:
        if not (owner.force and _immutable(exc)):
            raise


async def _apply(
    cluster: Cluster, obj: Mapping[str, Any], crds: list[KubeObject], owner: Owner
) -> None:
    try:
        await cluster.apply(obj, force=True, declared=crds)
    except ClusterError as exc:
        if not (owner.force and _immutable(exc)):
            raise
        # spec.force: an immutable field changed, so the object is made anew.
        await cluster.delete(obj, background=False)
        await _gone(cluster, ref_of(obj))
        await cluster.apply(obj, force=True, declared=crds)


def _immutable(exc: ClusterError) -> bool:
    return exc.code == 422 and "immutable" in exc.message


async def _gone(cluster: Cluster, ref: ObjectRef, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cluster.get(ref.api_version, ref.kind, ref.name, ref.namespace or None) is None:
            return
        await asyncio.sleep(0.2)
    raise ClusterError(
        "was not deleted in time to be recreated", Location(object=str(ref)), reason="Timeout"
    )


async def wait_established(
    cluster: Cluster, crds: Sequence[Mapping[str, Any]], *, timeout: float
) -> None:
    """Until every CRD has condition Established True (its kinds can be applied then)."""
    deadline = time.monotonic() + timeout
    pending = [ref_of(c) for c in crds]
    while pending:
        still = []
        for ref in pending:
            live = await cluster.get(ref.api_version, ref.kind, ref.name)
            conditions = ((live or {}).get("status") or {}).get("conditions") or []
            if not any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            ):
                still.append(ref)
        pending = still
        if pending and time.monotonic() > deadline:
            raise ClusterError(
                f"not Established after {timeout:g}s",
                Location(object=str(pending[0])),
                reason="Timeout",
            )
        if pending:
            await asyncio.sleep(0.1)


async def prune(cluster: Cluster, stale: Sequence[ObjectRef], owner: Owner) -> list[Change]:
    """Delete what left the inventory, in reverse apply order; never what this owner did
    not apply (its labels are checked on the live object) or what says prune: disabled."""
    ordered = sorted(
        stale,
        key=lambda r: plan.sort_key({"apiVersion": r.api_version, **r.stub()}),
        reverse=True,
    )
    changes: list[Change] = []
    for ref in ordered:
        try:
            live = await cluster.get(ref.api_version, ref.kind, ref.name, ref.namespace or None)
        except ClusterError as exc:
            if exc.code == 404:  # its kind is gone (a pruned CRD took its objects along)
                continue
            raise
        if live is None or (live.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if not plan.is_owned_by(live, owner.name, owner.namespace) or plan.prune_disabled(live):
            changes.append(Change(ref, SKIPPED))
            continue
        if await cluster.delete(live):
            changes.append(Change(ref, DELETED))
    return changes
