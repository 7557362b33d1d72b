"""Server-side apply and ``metadata.managedFields``, as the Kubernetes API server does them.

Merging, comparing and ownership follow sigs.k8s.io/structured-merge-diff, the library
behind the API server's field manager: objects are walked along their schema; structs
and maps merge field by field (unless ``x-kubernetes-map-type: atomic``), lists by
``x-kubernetes-list-type`` (``map`` by their ``x-kubernetes-list-map-keys``, ``set`` as a
union, ``atomic`` replaced whole; lists of an unknown schema are atomic). The
bookkeeping around it follows k8s.io/apiserver's field manager: the metadata it never
tracks, one entry per manager and operation, ``[{}]`` to reset, the "before-first-apply"
owner of an object's fields when it is first applied, at most ten Update entries (older
ones merged into "ancient-changes"), and kubectl's last-applied annotation, which keeps
``kubectl apply --server-side`` free of conflicts over what client-side apply set.

Both public functions are pure: they take plain objects and return a new one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.fieldpath import FIELD, FieldSet, Path, PathElement, canonical, path_string

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10
_KUBECTL = "kubectl"
_BEFORE_FIRST_APPLY = "before-first-apply"
_ANCIENT_CHANGES = "ancient-changes"


class SchemaNode(Protocol):
    """What apply needs to know of a type (implemented by ``sandbox.schema``)."""

    @property
    def properties(self) -> Collection[str]:
        """Names of the struct's fields; a map's keys are not among them."""
        ...

    def field(self, name: str) -> SchemaNode | None:
        """The schema of a named field, or of a map's values; None if unknown."""
        ...

    def items(self) -> SchemaNode | None: ...

    @property
    def list_type(self) -> str | None: ...

    @property
    def list_map_keys(self) -> Sequence[str]: ...

    @property
    def map_type(self) -> str | None: ...

    @property
    def patch_strategy(self) -> str | None: ...

    @property
    def patch_merge_key(self) -> str | None: ...


class _Missing:
    """An absent field or item, as opposed to an explicit ``null``."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final = _Missing()

# Kubernetes' OpenAPI declares defaults for these list-map keys, which the 1.37
# definitions this sandbox loads do not carry; structured-merge-diff keys an item that
# omits one by its default (``k:{"containerPort":80,"protocol":"TCP"}``).
_KEY_DEFAULTS: Final[Mapping[str, Any]] = {"protocol": "TCP"}

# Fields the API server never records in managedFields (its "strip meta" set).
_UNTRACKED: Final = FieldSet.of(
    (PathElement.field("apiVersion"),),
    (PathElement.field("kind"),),
    (PathElement.field("metadata"),),
    *(
        (PathElement.field("metadata"), PathElement.field(name))
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    ),
)


class _TypedError(Exception):
    """An object that its schema cannot key (a list-map item without its key, duplicates)."""


# --- the schema -----------------------------------------------------------------------


def _named(node: SchemaNode | None, name: str) -> bool:
    return node is not None and name in node.properties


def _child(node: SchemaNode | None, name: str) -> SchemaNode | None:
    return node.field(name) if node is not None else None


def _items(node: SchemaNode | None) -> SchemaNode | None:
    return node.items() if node is not None else None


def _list_kind(node: SchemaNode | None) -> tuple[str, Sequence[str]]:
    """("atomic" | "set" | "map", the map's keys). Without a list type, the API server
    reads ``patchStrategy: merge`` as a map keyed by the patch merge key."""
    if node is None:
        return "atomic", ()
    list_type = node.list_type
    if list_type is None and "merge" in (node.patch_strategy or "").split(","):
        list_type = "map" if node.patch_merge_key else "set"
    if list_type == "map":
        keys = list(node.list_map_keys or ())
        if not keys and node.patch_merge_key:
            keys = [node.patch_merge_key]
        return ("map", keys) if keys else ("set", ())
    if list_type == "set":
        return "set", ()
    return "atomic", ()


def _shape(node: SchemaNode | None, value: Any) -> str:
    if isinstance(value, dict):
        return "atomic" if node is not None and node.map_type == "atomic" else "map"
    if isinstance(value, list):
        return "list" if _list_kind(node)[0] != "atomic" else "atomic"
    return "scalar"


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == {} or value == []


def _pair_shape(node: SchemaNode | None, lhs: Any, rhs: Any) -> str:
    """How to walk two values at one path: "map", "list", or "leaf". An explicit null
    takes the other side's shape; two empty containers are a leaf, which keeps
    ``{}`` apart from absent."""
    shapes = {_shape(node, v) for v in (lhs, rhs) if v is not _MISSING and v is not None}
    if len(shapes) != 1:
        return "leaf"
    shape = shapes.pop()
    if shape in ("scalar", "atomic") or (_empty(lhs) and _empty(rhs)):
        return "leaf"
    return shape


def _key_default(item_node: SchemaNode | None, key: str) -> Any:
    default = getattr(_child(item_node, key), "default", None)
    if default is not None:
        return default
    return _KEY_DEFAULTS.get(key, _MISSING)


def _item_element(node: SchemaNode | None, item: Any, position: int, where: Path) -> PathElement:
    kind, keys = _list_kind(node)
    if kind == "set" or not isinstance(item, dict):
        return PathElement.value(item)
    fields = {}
    for key in keys:
        value = item.get(key, _MISSING)
        if value is _MISSING:
            value = _key_default(_items(node), key)
        if value is _MISSING:
            raise _TypedError(
                f"{path_string(where)}: element {position}: associative list with keys has an "
                f"element that omits key field {json.dumps(key)} (and doesn't have default value)"
            )
        fields[key] = value
    return PathElement.key(fields)


def _index(
    node: SchemaNode | None, items: Any, where: Path, *, strict: bool
) -> dict[PathElement, Any]:
    """A granular list's items by their path element, in order. Duplicates are an error
    in an applied configuration; in a stored object the first one counts."""
    indexed: dict[PathElement, Any] = {}
    for position, item in enumerate(items if isinstance(items, list) else ()):
        element = _item_element(node, item, position, where)
        if element in indexed:
            if strict:
                raise _TypedError(f"{path_string(where)}: duplicate entries for key {element}")
            continue
        indexed[element] = item
    return indexed


# --- walks over typed values ----------------------------------------------------------


def field_set(obj: Any, schema: SchemaNode | None, *, strict: bool = False) -> FieldSet:
    """The fields an object sets: its leaves, list items and map entries (named struct
    fields are implied by what is below them)."""
    out = FieldSet()
    if _shape(schema, obj) in ("map", "list"):
        _collect(schema, obj, (), out, strict)
    return out


def _collect(node: SchemaNode | None, value: Any, path: Path, out: FieldSet, strict: bool) -> None:
    """Add the fields below ``path`` (a map or a list) to ``out``, the set at ``path``."""
    if isinstance(value, dict):
        below = [(PathElement.field(key), _child(node, key), child) for key, child in value.items()]
        members = [element for element, _, _ in below if not _named(node, element.text)]
    else:
        item_node = _items(node)
        below = [
            (element, item_node, item)
            for element, item in _index(node, value, path, strict=strict).items()
        ]
        members = [element for element, _, _ in below]
    out.members.update(members)
    for element, child_node, child in below:
        if _shape(child_node, child) in ("map", "list"):
            _collect(child_node, child, (*path, element), out.descend(element), strict)
            if not out.children[element].members and not out.children[element].children:
                del out.children[element]
        else:
            out.members.add(element)


@dataclass
class _Comparison:
    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)

    def without(self, ignored: FieldSet) -> _Comparison:
        return _Comparison(
            self.added.recursive_difference(ignored),
            self.modified.recursive_difference(ignored),
            self.removed.recursive_difference(ignored),
        )


def _compare(node: SchemaNode | None, lhs: Any, rhs: Any, path: Path, out: _Comparison) -> None:
    shape = _pair_shape(node, lhs, rhs)
    if shape == "map":
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        for key in [*left, *(k for k in right if k not in left)]:
            below = (*path, PathElement.field(key))
            _compare(
                _child(node, key), left.get(key, _MISSING), right.get(key, _MISSING), below, out
            )
    elif shape == "list":
        left = _index(node, lhs, path, strict=False)
        right = _index(node, rhs, path, strict=False)
        for element in [*left, *(e for e in right if e not in left)]:
            below = (*path, element)
            _compare(
                _items(node), left.get(element, _MISSING), right.get(element, _MISSING), below, out
            )
    elif lhs is not _MISSING and rhs is not _MISSING:
        if not _same(lhs, rhs):
            out.modified.insert(path)
        return
    if not path:
        return
    if lhs is _MISSING:
        out.added.insert(path)
    elif rhs is _MISSING:
        out.removed.insert(path)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 and 1.0 are equal, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _merge(node: SchemaNode | None, lhs: Any, rhs: Any, path: Path) -> Any:
    if rhs is _MISSING:
        return lhs
    if lhs is _MISSING:
        return rhs
    shape = _pair_shape(node, lhs, rhs)
    if shape == "map":
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        merged = {
            key: _merge(
                _child(node, key), value, right.get(key, _MISSING), (*path, PathElement.field(key))
            )
            for key, value in left.items()
        }
        merged.update((key, value) for key, value in right.items() if key not in left)
        return merged
    if shape == "list":
        return _merge_list(node, lhs, rhs, path)
    return rhs


def _merge_list(node: SchemaNode | None, lhs: Any, rhs: Any, path: Path) -> list[Any]:
    """Items of both, merged by key. Items both lists have come in the applied order;
    items only the live list has keep their place relative to them."""
    left = list(_index(node, lhs, path, strict=False).items())
    right = list(_index(node, rhs, path, strict=True).items())
    left_items, right_items = dict(left), dict(right)
    shared = [element for element, _ in right if element in left_items]
    item_node = _items(node)
    out: list[Any] = []
    li = ri = si = 0
    while li < len(left) or ri < len(right):
        upcoming = shared[si] if si < len(shared) else None
        if li < len(left) and ri < len(right):
            element = left[li][0]
            if element == right[ri][0]:
                out.append(_merge(item_node, left[li][1], right[ri][1], (*path, element)))
                li, ri = li + 1, ri + 1
                si += element == upcoming
                continue
            if element in right_items and upcoming is not None and upcoming != element:
                li += 1  # a shared item the applied order puts later: emitted from there
                continue
        if li < len(left) and left[li][0] not in right_items:
            out.append(left[li][1])
            li += 1
        elif ri < len(right):
            element, item = right[ri]
            out.append(_merge(item_node, left_items.get(element, _MISSING), item, (*path, element)))
            ri += 1
            si += element == upcoming
        else:
            li += 1  # a shared item already emitted in the applied order
    return out


def _remove(node: SchemaNode | None, value: Any, remove: FieldSet) -> Any:
    """``value`` without the members of ``remove`` (whole subtrees). A map or list that
    loses everything it had is _MISSING, so that its parent drops it."""
    shape = _shape(node, value)
    if shape == "map":
        kept = {}
        for key, child in value.items():
            element = PathElement.field(key)
            if element in remove.members:
                continue
            if element in remove.children:
                child = _remove(_child(node, key), child, remove.children[element])
                if child is _MISSING:
                    continue
            kept[key] = child
        return kept if kept or not value else _MISSING
    if shape == "list":
        items = []
        for position, item in enumerate(value):
            element = _item_element(node, item, position, ())
            if element in remove.members:
                continue
            if element in remove.children:
                item = _remove(_items(node), item, remove.children[element])
                if item is _MISSING:
                    continue
            items.append(item)
        return items if items or not value else _MISSING
    return value


def _with_named_fields(node: SchemaNode | None, fields: FieldSet) -> FieldSet:
    """``fields`` with every struct field that has members below it made a member too,
    so that pruning can remove the struct itself."""
    out = FieldSet(set(fields.members))
    for element, below in fields.children.items():
        if element.kind == FIELD:
            if _named(node, element.text):
                out.members.add(element)
            child_node = _child(node, element.text)
        else:
            child_node = _items(node)
        out.children[element] = _with_named_fields(child_node, below)
    return out


def _prune(node: SchemaNode | None, merged: Any, last: FieldSet, owned: FieldSet) -> Any:
    """Remove what the applier applied last time, no longer applies, and nobody owns."""
    if last.empty():
        return merged
    last = _with_named_fields(node, last)
    merged_set = _with_named_fields(node, field_set(merged, node))
    pruned = _remove(node, merged, last)
    pruned_set = _with_named_fields(node, field_set(pruned, node))
    owned = _with_named_fields(node, owned)
    pruned = _remove(node, merged, merged_set.difference(pruned_set.union(owned)))
    pruned_set = _with_named_fields(node, field_set(pruned, node))
    result = _remove(node, merged, merged_set.difference(pruned_set).intersection(last))
    return {} if result is _MISSING else result


# --- managers -------------------------------------------------------------------------


def _go_json(value: Any, *, sort_keys: bool = True) -> str:
    """JSON as Go's encoding/json writes it: compact, HTML-safe escapes, map keys sorted
    (a struct's fields in declaration order: ``sort_keys=False``)."""
    text = json.dumps(
        canonical(value), ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@dataclass(frozen=True)
class _Manager:
    """Who a managedFields entry belongs to. Apply entries are one per manager whatever
    the apiVersion they applied; Update entries one per apiVersion."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""

    def identifier(self) -> str:
        entry = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "subresource": self.subresource,
        }
        return _go_json({k: v for k, v in entry.items() if v}, sort_keys=False)

    def describe(self) -> str:
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


@dataclass
class _Entry:
    fields: FieldSet
    api_version: str
    time: str | None = None


_Managers = dict[_Manager, _Entry]


def _decode(entries: Any) -> _Managers:
    """managedFields entries by manager; ValueError if they are not valid ones."""
    managers: _Managers = {}
    if entries is None:
        return managers
    if not isinstance(entries, list):
        raise ValueError("managedFields is not a list")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"managed fields entry {number} is not an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion") or ""
        if not api_version:
            raise ValueError("apiVersion must not be empty")
        if entry.get("fieldsType") != "FieldsV1":
            raise ValueError(f"invalid fieldsType in managed fields entry {number}")
        fields_v1 = entry.get("fieldsV1") or {}
        if not isinstance(fields_v1, dict):
            raise ValueError(f"fieldsV1 of managed fields entry {number} is not an object")
        key = _Manager(
            str(entry.get("manager") or ""),
            operation,
            "" if operation == "Apply" else api_version,
            str(entry.get("subresource") or ""),
        )
        fields = FieldSet.from_fields_v1(fields_v1)
        if key in managers:
            fields = fields.union(managers[key].fields)
        managers[key] = _Entry(fields, api_version, entry.get("time"))
    return managers


def _seconds(time: str | None) -> float:
    if not time:
        return 0
    try:
        return datetime.fromisoformat(time).timestamp()
    except ValueError:
        return 0


def _encode(managers: _Managers) -> list[dict[str, Any]]:
    """The managedFields list: Apply entries first, then by time, manager, apiVersion."""
    ordered = sorted(
        ((m, e) for m, e in managers.items() if not e.fields.empty()),
        key=lambda me: (
            me[0].operation,
            int(_seconds(me[1].time)),
            me[0].manager,
            me[1].api_version,
            me[0].subresource,
        ),
    )
    encoded = []
    for manager, entry in ordered:
        item: dict[str, Any] = {}
        if manager.manager:
            item["manager"] = manager.manager
        item["operation"] = manager.operation
        item["apiVersion"] = entry.api_version
        if entry.time:
            item["time"] = entry.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = entry.fields.to_fields_v1()
        if manager.subresource:
            item["subresource"] = manager.subresource
        encoded.append(item)
    return encoded


def _is_reset(entries: Any) -> bool:
    return isinstance(entries, list) and bool(entries) and all(e == {} for e in entries)


def _tidy(managers: _Managers) -> None:
    """Drop what is never tracked, and entries left with nothing."""
    for manager in list(managers):
        entry = managers[manager]
        entry.fields = entry.fields.difference(_UNTRACKED)
        if entry.fields.empty():
            del managers[manager]


def _cap_update_managers(managers: _Managers) -> None:
    """Keep at most MAX_UPDATE_MANAGERS Update entries: the oldest are merged, per
    apiVersion, into an "ancient-changes" entry."""
    updaters = sorted(
        (m for m in managers if m.operation == "Update"),
        key=lambda m: (int(_seconds(managers[m].time)), m.identifier()),
    )
    count = len(updaters)
    first_by_version: dict[str, _Manager] = {}
    for manager in updaters:
        if count <= MAX_UPDATE_MANAGERS:
            break
        entry = managers[manager]
        bucket = _Manager(_ANCIENT_CHANGES, "Update", entry.api_version)
        first = first_by_version.get(entry.api_version)
        if first is None:
            first_by_version[entry.api_version] = manager
            continue
        if manager == bucket:  # an older entry came first; the bucket stays as it is
            continue
        if bucket not in managers:
            managers[bucket] = managers.pop(first)
        managers[bucket] = _Entry(
            entry.fields.union(managers[bucket].fields), entry.api_version, entry.time
        )
        del managers[manager]
        count -= 1


def _conflicts(
    managers: _Managers, changes: _Comparison, current: _Manager | None
) -> dict[_Manager, FieldSet]:
    """Fields other managers own that this write changes."""
    changed = changes.modified.union(changes.added)
    found = {}
    for manager, entry in managers.items():
        if manager == current:
            continue
        taken = entry.fields.intersection(changed)
        if not taken.empty():
            found[manager] = taken
    return found


def _take(
    managers: _Managers,
    conflicts: Mapping[_Manager, FieldSet],
    removed: FieldSet,
    current: _Manager | None,
) -> None:
    """Other managers lose the fields this write took over and the fields it removed."""
    for manager, entry in managers.items():
        if manager == current:
            continue
        if manager in conflicts:
            entry.fields = entry.fields.difference(conflicts[manager])
        entry.fields = entry.fields.difference(removed)


def _conflict_error(conflicts: Mapping[_Manager, FieldSet]) -> ApiError:
    found = [
        (manager, path)
        for manager in sorted(conflicts, key=_Manager.identifier)
        for path in conflicts[manager].paths()
    ]
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {manager.describe()}",
            "field": path_string(path),
        }
        for manager, path in found
    ]
    if len(found) == 1:
        manager, path = found[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {manager.describe()}: {path_string(path)}"
        )
    else:
        lines = []
        for manager in sorted(conflicts, key=_Manager.identifier):
            lines.append(f"conflicts with {manager.describe()}:")
            lines.extend(f"- {path_string(path)}" for path in conflicts[manager].paths())
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details={"causes": causes})


def _last_applied(obj: Mapping[str, Any]) -> str:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def _allowed_by_last_applied(live: Mapping[str, Any], node: SchemaNode | None) -> FieldSet:
    """Fields kubectl's client-side apply set and nobody changed since: kubectl's
    server-side apply may take them over without a conflict."""
    try:
        last = json.loads(_last_applied(live))
    except ValueError:
        return FieldSet()
    if not isinstance(last, dict):
        return FieldSet()
    changes = _Comparison()
    try:
        _compare(node, last, live, (), changes)
        return field_set(last, node).difference(changes.modified)
    except _TypedError:
        return FieldSet()


def _updated_last_applied(applied: Mapping[str, Any]) -> str:
    config = copy.deepcopy(dict(applied))
    annotations = (config.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return _go_json(config) + "\n"


# --- helpers on objects ---------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _paths_set(paths: Iterable[Sequence[str]]) -> FieldSet:
    return FieldSet.of(*(tuple(PathElement.field(name) for name in path) for path in paths))


def _drop_paths(obj: dict[str, Any], paths: Iterable[Sequence[str]]) -> None:
    for path in paths:
        parent: Any = obj
        for name in path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path:
            parent.pop(path[-1], None)


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return out


def _with_managed_fields(obj: dict[str, Any], managers: _Managers) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    entries = _encode(managers)
    if entries:
        metadata["managedFields"] = entries
    else:
        metadata.pop("managedFields", None)
    return obj


def describe_object(obj: Mapping[str, Any]) -> str:
    """An object as the apiserver's field manager names it in its errors:
    ``namespace/name; group/version, Kind=Kind`` (``/v1`` for the core group)."""
    metadata = obj.get("metadata") or {}
    api_version = str(obj.get("apiVersion") or "")
    group_version = api_version if "/" in api_version else f"/{api_version}"
    name = f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"
    return f"{name}; {group_version}, Kind={obj.get('kind') or ''}"


def _server_error(message: str) -> ApiError:
    # The API server answers these with a 500 Status that has no reason.
    return ApiError(500, "", message)


# --- the operations -------------------------------------------------------------------


def _record(
    managers: _Managers,
    old: Any,
    new: Any,
    *,
    key: _Manager,
    api_version: str,
    now: str,
    schema: SchemaNode | None,
    ignored: FieldSet,
) -> None:
    """An Update: its manager takes every field it changed, from everybody else (its own
    entry included: what it removed, it no longer owns)."""
    changes = _Comparison()
    _compare(schema, old, new, (), changes)
    changes = changes.without(ignored)
    _take(managers, _conflicts(managers, changes, None), changes.removed, None)
    taken = changes.modified.union(changes.added).difference(changes.removed)
    taken = taken.difference(_UNTRACKED).recursive_difference(ignored)
    if not taken.empty():
        previous = managers.get(key)
        if previous is not None:
            taken = taken.union(previous.fields)
        managers[key] = _Entry(taken, api_version, now)
    _tidy(managers)


def record_update(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    manager: str,
    operation: str,
    now: str,
    schema: SchemaNode | None,
    subresource: str | None = None,
    reset_fields: Collection[Sequence[str]] = (),
) -> dict[str, Any]:
    """``new`` with managedFields updated for a create, update or non-apply patch.

    ``manager`` takes the fields that changed between ``old`` (None for a create) and
    ``new``; other managers lose them, and every manager loses the fields that went away.
    managedFields that the request itself sets are honoured, ``[{}]`` resets them, and
    an empty list keeps the stored ones (a subresource write always keeps them).
    ``reset_fields`` are field paths this endpoint ignores (``("status",)`` on a
    resource with a status subresource), ``now`` the RFC 3339 time to stamp.
    """
    ignored = _paths_set(reset_fields)
    requested = (new.get("metadata") or {}).get("managedFields")
    stored = ((old or {}).get("metadata") or {}).get("managedFields")
    result = _without_managed_fields(new)
    try:
        stored_managers = _decode(stored)
    except ValueError:
        stored_managers = {}
    managers: _Managers
    if subresource:
        managers = stored_managers
    elif _is_reset(requested):
        managers = {}
    else:
        try:
            managers = _decode(requested)
        except ValueError:
            managers = {}
        if not managers:
            managers = stored_managers
    api_version = str(new.get("apiVersion") or "")
    key = _Manager(
        manager, operation, "" if operation == "Apply" else api_version, subresource or ""
    )
    old_obj = _without_managed_fields(old) if old is not None else {}
    try:
        _record(
            managers,
            old_obj,
            result,
            key=key,
            api_version=api_version,
            now=now,
            schema=schema,
            ignored=ignored,
        )
    except _TypedError:
        # As the API server does when it cannot track an update: no managedFields
        # rather than wrong ones.
        return result
    _cap_update_managers(managers)
    return _with_managed_fields(result, managers)


def server_side_apply(
    live: Mapping[str, Any] | None,
    applied: Mapping[str, Any],
    *,
    manager: str,
    force: bool,
    schema: SchemaNode | None,
    now: str,
    subresource: str | None = None,
    reset_fields: Collection[Sequence[str]] = (),
) -> dict[str, Any]:
    """``applied`` (a partial object, the applier's whole intent) merged into ``live``
    (None to create), with managedFields updated.

    Raises ApiError 409 Conflict, naming each field and its manager, when the apply
    changes fields other managers own, unless ``force`` (then they lose them). Fields
    the manager applied last time and no longer applies are removed unless another
    manager owns them. ``reset_fields`` are field paths this endpoint ignores, as for
    :func:`record_update`.
    """
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
    ignored = _paths_set(reset_fields)
    config = _without_nulls(copy.deepcopy(dict(applied)))
    _drop_paths(config, reset_fields)
    api_version = str(config.get("apiVersion") or (live or {}).get("apiVersion") or "")
    try:
        applied_set = field_set(config, schema, strict=True)
    except _TypedError as err:
        raise _server_error(
            f"failed to create typed patch object ({describe_object(config)}): {err}"
        ) from None
    try:
        managers = _decode(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError as err:
        raise _server_error(f"failed to decode managed fields: {err}") from None
    live_obj = _without_managed_fields(live) if live is not None else {}
    key = _Manager(manager, "Apply", "", subresource or "")
    try:
        if live is not None and not managers:
            # An object nobody has applied or tracked yet: what it holds belongs to
            # someone, so that applying over it is a conflict.
            before = _Manager(_BEFORE_FIRST_APPLY, "Update", api_version)
            _record(
                managers,
                {},
                live_obj,
                key=before,
                api_version=api_version,
                now=now,
                schema=schema,
                ignored=ignored,
            )
        merged = _merge(schema, live_obj, config, ())
        previous = managers.get(key)
        last = previous.fields.recursive_difference(ignored) if previous else FieldSet()
        # Untracked metadata is dropped only afterwards (in _tidy): while pruning, the
        # applied metadata.name is what keeps metadata itself owned.
        managers[key] = _Entry(
            applied_set.recursive_difference(ignored),
            api_version,
            previous.time if previous else None,
        )
        owned = FieldSet()
        for entry in managers.values():
            owned = owned.union(entry.fields)
        merged = _prune(schema, merged, last, owned)
        changes = _Comparison()
        _compare(schema, live_obj, merged, (), changes)
        changes = changes.without(ignored)
    except _TypedError as err:
        raise _server_error(f"failed to merge ({describe_object(config)}): {err}") from None
    conflicts = _conflicts(managers, changes, key)
    if conflicts and not force:
        if manager == _KUBECTL and _last_applied(live_obj):
            allowed = _allowed_by_last_applied(live_obj, schema)
            remaining = {
                m: FieldSet.of(*(p for p in found.paths() if not allowed.has(p)))
                for m, found in conflicts.items()
            }
            remaining = {m: found for m, found in remaining.items() if not found.empty()}
            if remaining:
                raise _conflict_error(remaining)
        else:
            raise _conflict_error(conflicts)
    _take(managers, conflicts, changes.removed, key)
    _tidy(managers)
    if key in managers and (managers[key].time is None or not _same(merged, live_obj)):
        managers[key].time = now
    if manager == _KUBECTL and _last_applied(live_obj):
        merged.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = (
            _updated_last_applied(applied)
        )
    _cap_update_managers(managers)
    return _with_managed_fields(merged, managers)
