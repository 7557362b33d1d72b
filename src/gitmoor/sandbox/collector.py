"""Owner-reference garbage collection, as the kube-controller-manager's collector does it.

Deleting an object deletes its dependents (the objects whose ``ownerReferences`` name its
uid), by the DeleteOptions' ``propagationPolicy``:

- ``Background`` (the default): the owner goes at once; the collector, seeing it gone,
  deletes every dependent that has no other owner left, and drops the reference to it
  from those that do.
- ``Foreground``: the owner stays, with a ``deletionTimestamp`` and the
  ``foregroundDeletion`` finalizer; the collector deletes its dependents (in foreground
  again where they have dependents of their own), and when none with
  ``blockOwnerDeletion`` is left, removes the finalizer: the owner goes.
- ``Orphan``: the owner gets the ``orphan`` finalizer; the collector removes the
  reference to it from every dependent, then the finalizer.

:func:`mark_for_deletion` is what the API server's delete does with the options (pure);
:func:`run_collector` is the collector, a background task fed by watches of every
resource, so it also collects objects whose owners vanished while it was not running or
that name an owner that does not exist.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitmoor.sandbox.errors import ApiError, invalid
from gitmoor.sandbox.informer import (
    Informer,
    ObjectKey,
    OwnerRef,
    owner_refs,
    process,
    synced,
)
from gitmoor.sandbox.schema import ResourceInfo
from gitmoor.sandbox.store import DELETED, Key
from gitmoor.workqueue import WorkQueue

if TYPE_CHECKING:
    from gitmoor.sandbox.server import Sandbox

KubeObject = dict[str, Any]

FIELD_MANAGER = "gitmoor-sandbox-controller"
FOREGROUND = "Foreground"
BACKGROUND = "Background"
ORPHAN = "Orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
_POLICIES = (FOREGROUND, BACKGROUND, ORPHAN)
# Resources whose dependents are orphaned unless the client asks otherwise, as their
# registries' DefaultGarbageCollectionPolicy says (apps/v1 and the rest delete them).
_ORPHAN_BY_DEFAULT = frozenset({("", "v1", "replicationcontrollers")})
_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


# --- the API server's side: what a delete does -------------------------------------------


def mark_for_deletion(
    info: ResourceInfo, live: KubeObject, options: KubeObject, *, now: str
) -> KubeObject | None:
    """``live`` as a DELETE with ``options`` (a DeleteOptions body) leaves it: with a
    ``deletionTimestamp`` and the finalizer the propagation policy needs, when some
    finalizer holds it back; None when the object is to be removed at once.

    ApiError 422 for a policy that does not exist or one given twice (``orphanDependents``
    and ``propagationPolicy``), as the apiserver validates DeleteOptions.
    """
    orphan, foreground = _gc_finalizers(info, live, options)
    finalizers = [
        f
        for f in (live.get("metadata") or {}).get("finalizers") or []
        if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)
    ]
    if orphan:
        finalizers.append(ORPHAN_FINALIZER)
    if foreground:
        finalizers.append(FOREGROUND_FINALIZER)
    if not finalizers:
        return None
    marked = copy.deepcopy(live)
    meta = marked["metadata"]
    meta["finalizers"] = finalizers
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = now
        meta["deletionGracePeriodSeconds"] = 0
    return marked


def _gc_finalizers(info: ResourceInfo, live: KubeObject, options: KubeObject) -> tuple[bool, bool]:
    """(orphan, foreground): the apiserver's shouldOrphanDependents and
    shouldDeleteDependents. An explicit option wins, then a finalizer the object already
    has, then the resource's default."""
    policy = options.get("propagationPolicy")
    legacy = options.get("orphanDependents")
    if policy is not None and legacy is not None:
        raise _invalid_options(
            "orphanDependents",
            f"Invalid value: {str(legacy).lower()}: orphanDependents and "
            "deletionPropagation cannot be both set",
        )
    if policy is not None and policy not in _POLICIES:
        raise _invalid_options(
            "propagationPolicy",
            f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
            '"Orphan"',
        )
    if legacy is not None:
        return bool(legacy), False
    if policy is not None:
        return policy == ORPHAN, policy == FOREGROUND
    existing = (live.get("metadata") or {}).get("finalizers") or []
    if FOREGROUND_FINALIZER in existing:
        return False, True
    if ORPHAN_FINALIZER in existing:
        return True, False
    return (info.group, info.version, info.plural) in _ORPHAN_BY_DEFAULT, False


def _invalid_options(field: str, message: str) -> ApiError:
    return invalid(
        "DeleteOptions",
        "meta.k8s.io",
        "",
        [{"reason": "FieldValueInvalid", "message": message, "field": field}],
    )


# --- the collector -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    """What the collector keeps of each object."""

    uid: str
    owners: tuple[OwnerRef, ...]
    deleting: bool
    finalizers: tuple[str, ...]


def _node(obj: KubeObject) -> _Node:
    meta = obj.get("metadata") or {}
    return _Node(
        uid=str(meta.get("uid") or ""),
        owners=owner_refs(obj),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
    )


Resource = tuple[str, str]  # (group, plural)
# (action, group, plural, namespace, name); actions: "dependent" (collect it if its owners
# are gone), "foreground" and "orphan" (an owner being deleted that way).
_Item = tuple[str, str, str, str, str]


async def run_collector(sandbox: Sandbox) -> None:
    """Collect garbage until cancelled."""
    await _Collector(sandbox).run()


class _Collector:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.queue: WorkQueue[_Item] = WorkQueue()
        self.informers: dict[Resource, Informer[_Node]] = {}
        self.uids: set[str] = set()
        # Owners in foreground deletion, by uid: their dependents' deletions move them on.
        self.waiting: dict[str, tuple[Resource, ObjectKey]] = {}
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            seen: set[Resource] = set()
            for info in self.sandbox.table.all_resources():
                resource = (info.group, info.plural)
                if "watch" in info.verbs and resource not in seen:
                    seen.add(resource)
                    self._follow(resource)
            # Custom resources get informers as their CRDs appear (during this sync too).
            await self.informers[_CRDS].synced.wait()
            await synced(list(self.informers.values()))
            group.create_task(process(self.queue, self._handle))

    def _follow(self, resource: Resource) -> None:
        if resource in self.informers or self._group is None:
            return

        def on_event(event_type: str, key: ObjectKey, node: _Node) -> None:
            self._on_event(resource, event_type, key, node)

        informer = Informer(
            self.sandbox.store, resource[0], resource[1], keep=_node, on_event=on_event
        )
        self.informers[resource] = informer
        self._group.create_task(informer.run())

    def _on_event(self, resource: Resource, event_type: str, key: ObjectKey, node: _Node) -> None:
        if resource == _CRDS and event_type != DELETED:
            crd = self.sandbox.store.get(Key(*_CRDS, "", key[1]))
            if crd is not None:
                spec = crd.get("spec") or {}
                self._follow((spec.get("group", ""), (spec.get("names") or {}).get("plural", "")))
        namespace, name = key
        if event_type == DELETED:
            self.uids.discard(node.uid)
            self.waiting.pop(node.uid, None)
            for dependent_resource, informer in self.informers.items():
                for dependent in informer.dependents(node.uid):
                    self.queue.add(("dependent", *dependent_resource, *dependent))
            for ref in node.owners:
                if ref.uid in self.waiting:
                    owner_resource, owner = self.waiting[ref.uid]
                    self.queue.add(("foreground", *owner_resource, *owner))
            return
        self.uids.add(node.uid)
        if node.owners:
            self.queue.add(("dependent", *resource, namespace, name))
        if node.deleting and FOREGROUND_FINALIZER in node.finalizers:
            self.waiting[node.uid] = (resource, key)
            self.queue.add(("foreground", *resource, namespace, name))
        if node.deleting and ORPHAN_FINALIZER in node.finalizers:
            self.queue.add(("orphan", *resource, namespace, name))

    # --- work ------------------------------------------------------------------------

    def _handle(self, item: _Item) -> float | None:
        action, group, plural, namespace, name = item
        resource = (group, plural)
        if action == "dependent":
            self._collect_dependent(resource, (namespace, name))
        elif action == "foreground":
            self._finish_foreground(resource, (namespace, name))
        else:
            self._finish_orphan(resource, (namespace, name))
        return None

    def _info(self, resource: Resource) -> ResourceInfo | None:
        for group, _, preferred in self.sandbox.table.groups():
            if group == resource[0]:
                for info in self.sandbox.table.resources(group, preferred):
                    if info.plural == resource[1]:
                        return info
        return None

    def _owner_info(self, ref: OwnerRef) -> ResourceInfo | None:
        group, _, version = ref.api_version.rpartition("/")
        found = self.sandbox.table.by_kind(group, version, ref.kind)
        if found is not None:
            return found
        # An owner named at a version no longer served: the kind, at any served version.
        for name, versions, _ in self.sandbox.table.groups():
            if name == group:
                for other in versions:
                    found = self.sandbox.table.by_kind(group, other, ref.kind)
                    if found is not None:
                        return found
        return None

    def _target(self, info: ResourceInfo, key: ObjectKey) -> Any:
        from gitmoor.sandbox.server import Target

        return Target(info, key[0] or None, key[1], None)

    def _read(self, info: ResourceInfo, key: ObjectKey) -> KubeObject | None:
        return self.sandbox.store.get(Key(info.group, info.plural, key[0], key[1]))

    def _collect_dependent(self, resource: Resource, key: ObjectKey) -> None:
        """attemptToDeleteItem: classify the owners of one dependent, then delete it,
        or drop its references to owners that are gone, or leave it."""
        informer = self.informers.get(resource)
        cached = informer.get(key) if informer is not None else None
        if cached is None or not cached.owners:
            return
        if all(r.uid in self.uids and r.uid not in self.waiting for r in cached.owners):
            return  # every owner exists and none waits for its dependents
        info = self._info(resource)
        if info is None:
            return
        obj = self._read(info, key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return
        refs = owner_refs(obj)
        solid, dangling, waiting = [], [], []
        for ref in refs:
            owner_info = self._owner_info(ref)
            if owner_info is None:
                solid.append(ref)  # an owner of an unknown kind cannot be judged
                continue
            owner_key = (key[0] if owner_info.namespaced else "", ref.name)
            owner = self._read(owner_info, owner_key)
            owner_meta = (owner or {}).get("metadata") or {}
            if owner is None or owner_meta.get("uid") != ref.uid:
                dangling.append(ref)
            elif owner_meta.get("deletionTimestamp") and FOREGROUND_FINALIZER in (
                owner_meta.get("finalizers") or ()
            ):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            gone = {r.uid for r in dangling + waiting}
            if gone:
                self._drop_references(info, key, obj, gone)
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or ()
        if waiting and self._has_dependents(meta.get("uid", "")):
            policy = FOREGROUND
        elif ORPHAN_FINALIZER in finalizers:
            policy = ORPHAN
        elif FOREGROUND_FINALIZER in finalizers:
            policy = FOREGROUND
        else:
            policy = BACKGROUND
        options = {"propagationPolicy": policy, "preconditions": {"uid": meta.get("uid")}}
        self.sandbox.delete(self._target(info, key), dry_run=False, options=options)

    def _has_dependents(self, uid: str) -> bool:
        return any(informer.dependents(uid) for informer in self.informers.values())

    def _drop_references(
        self, info: ResourceInfo, key: ObjectKey, obj: KubeObject, uids: set[str]
    ) -> None:
        changed = copy.deepcopy(obj)
        meta = changed["metadata"]
        kept = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in uids]
        if kept:
            meta["ownerReferences"] = kept
        else:
            meta.pop("ownerReferences", None)
        self.sandbox.update(self._target(info, key), changed, manager=FIELD_MANAGER, dry_run=False)

    def _deleting_owner(
        self, resource: Resource, key: ObjectKey, finalizer: str
    ) -> tuple[ResourceInfo, KubeObject, str] | None:
        """The owner, if it is being deleted and still holds ``finalizer``; with its uid."""
        info = self._info(resource)
        if info is None:
            return None
        owner = self._read(info, key)
        meta = (owner or {}).get("metadata") or {}
        if owner is None or not meta.get("deletionTimestamp"):
            return None
        if finalizer not in (meta.get("finalizers") or ()):
            return None
        return info, owner, str(meta.get("uid", ""))

    def _finish_foreground(self, resource: Resource, key: ObjectKey) -> None:
        """processDeletingDependentsItem: delete the dependents; once none blocks, let
        the owner go."""
        found = self._deleting_owner(resource, key, FOREGROUND_FINALIZER)
        if found is None:
            return
        info, owner, uid = found
        blocking = False
        for dependent_resource, informer in self.informers.items():
            for dependent in informer.dependents(uid):
                node = informer.get(dependent)
                if node is None:
                    continue
                if not node.deleting:
                    self.queue.add(("dependent", *dependent_resource, *dependent))
                blocking = blocking or any(
                    r.uid == uid and r.block_owner_deletion for r in node.owners
                )
        if not blocking:
            self._remove_finalizer(info, key, owner, FOREGROUND_FINALIZER)

    def _finish_orphan(self, resource: Resource, key: ObjectKey) -> None:
        """orphanDependents: every dependent loses its reference to the owner, then the
        owner its ``orphan`` finalizer."""
        found = self._deleting_owner(resource, key, ORPHAN_FINALIZER)
        if found is None:
            return
        info, owner, uid = found
        for dependent_resource, informer in self.informers.items():
            dependent_info = self._info(dependent_resource)
            if dependent_info is None:
                continue
            for dependent in sorted(informer.dependents(uid)):
                obj = self._read(dependent_info, dependent)
                if obj is not None and any(r.uid == uid for r in owner_refs(obj)):
                    self._drop_references(dependent_info, dependent, obj, {uid})
        self._remove_finalizer(info, key, owner, ORPHAN_FINALIZER)

    def _remove_finalizer(
        self, info: ResourceInfo, key: ObjectKey, obj: KubeObject, finalizer: str
    ) -> None:
        changed = copy.deepcopy(obj)
        meta = changed["metadata"]
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
        if not meta["finalizers"]:
            del meta["finalizers"]
        # The API server deletes an object whose last finalizer goes.
        self.sandbox.update(self._target(info, key), changed, manager=FIELD_MANAGER, dry_run=False)
