"""The three PATCH content types, applied as the Kubernetes API server applies them.

- ``application/json-patch+json``: RFC 6902 operations (the ``jsonpatch`` package).
- ``application/merge-patch+json``: RFC 7386, with evanphx/json-patch's details (nulls are
  also pruned from objects inside new lists; a patch that is not an object is refused).
- ``application/strategic-merge-patch+json``: k8s.io/apimachinery's strategicpatch, driven
  by the OpenAPI patch metadata (``x-kubernetes-patch-strategy`` and
  ``x-kubernetes-patch-merge-key``) instead of Go struct tags.

Pure functions of plain dicts; failures are :class:`ApiError` with the code, reason and
message the API server answers with. Where the API server answers a strategic merge patch
error with a bare Go error (500, no reason), the message is Go's, values printed as Go's
``%v`` prints them.

Known differences from the API server's JSON patch library (evanphx/json-patch v4): negative
array indices and indices with leading zeros are refused, and a ``test`` of ``null`` against
a missing path fails.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Protocol

import jsonpatch

from gitmoor.manifests import KubeObject
from gitmoor.sandbox.errors import ApiError, invalid

MAX_JSON_PATCH_OPERATIONS = 10_000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

_GO_MAP = "map[string]interface {}"
_GO_SLICE = "[]interface {}"


class PatchSchema(Protocol):
    """What a strategic merge patch needs from a schema node (``schema.SchemaNode`` is one)."""

    @property
    def patch_strategy(self) -> str | None: ...

    @property
    def patch_merge_key(self) -> str | None: ...

    def field(self, name: str) -> PatchSchema | None: ...

    def items(self) -> PatchSchema | None: ...


# --- JSON patch ---------------------------------------------------------------------------


def json_patch(obj: KubeObject, patch: Any) -> KubeObject:
    """Apply an RFC 6902 patch (the decoded request body) to a copy of ``obj``.

    A body that is not a list of objects is a 400; more than 10,000 operations a 413; an
    operation that cannot be applied (a failed ``test``, a missing path) a 422 with the API
    server's fixed message, which does not say which operation failed.
    """
    operations = _json_patch_operations(patch)
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
        )
    try:
        result = jsonpatch.apply_patch(obj, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
        raise ApiError(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            details={},
        ) from err
    return _as_object(result)


def _json_patch_operations(patch: Any) -> list[dict[str, Any]]:
    if patch is None:
        return []
    if not isinstance(patch, list):
        raise _bad_request(_unmarshal_error(patch, "jsonpatch.Patch"))
    operations: list[dict[str, Any]] = []
    for operation in patch:
        if operation is None:
            operation = {}
        if not isinstance(operation, dict):
            raise _bad_request(_unmarshal_error(operation, "jsonpatch.Operation"))
        # The API server's library reads a missing value as null; jsonpatch would refuse it.
        if operation.get("op") in ("add", "replace", "test") and "value" not in operation:
            operation = {**operation, "value": None}
        operations.append(operation)
    return operations


# --- JSON merge patch ---------------------------------------------------------------------


def merge_patch(obj: KubeObject, patch: Any) -> KubeObject:
    """Apply an RFC 7386 merge patch to a copy of ``obj``: null deletes, lists are replaced."""
    if isinstance(patch, list):
        raise _not_an_object(_prune_nulls(copy.deepcopy(patch)))
    if not isinstance(patch, dict):
        raise _bad_request("Invalid JSON Patch")
    result = copy.deepcopy(obj)
    _merge_objects(result, copy.deepcopy(patch))
    return result


def _merge_objects(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        current = doc.get(key)
        if value is None:
            doc.pop(key, None)
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge_objects(current, value)
        elif isinstance(current, dict):
            # evanphx/json-patch leaves nulls in a non-object that replaces an object.
            doc[key] = value
        else:
            doc[key] = _prune_nulls(value)


def _prune_nulls(value: Any) -> Any:
    """Drop null members of objects, however deep; null list items stay."""
    if isinstance(value, dict):
        return {key: _prune_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_prune_nulls(item) for item in value]
    return value


# --- strategic merge patch ----------------------------------------------------------------


def strategic_merge_patch(obj: KubeObject, patch: Any, schema: PatchSchema | None) -> KubeObject:
    """Apply a strategic merge patch to a copy of ``obj``, with ``schema`` the type's root.

    Lists whose field has patch strategy ``merge`` are merged by their patch merge key
    (lists of scalars as sets); other lists are replaced; maps are merged; null deletes.
    Directives: ``$patch: replace|delete`` in a map or a list item, ``$retainKeys``,
    ``$setElementOrder/<field>``, ``$deleteFromPrimitiveList/<field>``. No directive ends
    up in the result. Without ``$setElementOrder``, a merged list lists the patch's items
    first, in the patch's order, with the live items it does not mention placed by their
    live order (the API server's order).

    Without a schema (custom resources, which the API server refuses strategic merge
    patches for) the patch is applied as a JSON merge patch.
    """
    if schema is None:
        return merge_patch(obj, patch)
    if patch is None:
        return copy.deepcopy(obj)
    if not isinstance(patch, dict):
        raise _bad_request(_unmarshal_error(patch, _GO_MAP))
    return _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), schema)


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema | None
) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` in place (both are private copies) and return it."""
    if _DIRECTIVE in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for key, value in patch.items():
        name, delete_list = key, key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            name = _directive_field(key, _DELETE_FROM_PRIMITIVE_LIST)
        if value is None:
            original.pop(name, None)
        elif name not in original or type(original[name]) is not type(value):
            if delete_list:
                continue
            if _is_directive_map(value):
                original.pop(name, None)
            else:
                original[name] = _clean(value)
        elif isinstance(value, dict):
            field = _field(schema, name)
            if _strategy(field) == "replace":
                original[name] = _clean(value)
            else:
                original[name] = _merge_map(original[name], value, field)
        elif isinstance(value, list):
            original[name] = _merge_list_field(
                original[name], value, _field(schema, name), name, delete_list=delete_list
            )
        else:
            original[name] = value
    return original


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch[_DIRECTIVE]
    if directive == "replace":
        return _clean_map(patch)
    if directive == "delete":
        return {}
    raise _internal(f"unknown patch type: {_go_s(directive)} in map: {go_format(patch)}")


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: clear every field of ``original`` the list does not name."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _bad_request("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
            continue
        if not _contains(retain, key):
            raise _bad_request("invalid patch format of retainKeys")
    for key in list(original):
        if not _contains(retain, key):
            del original[key]


def _merge_ordered_lists(
    original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema | None
) -> None:
    """Merge each list that has a ``$setElementOrder/<field>`` and put it in that order.

    The order list, then the patch list, then the live list decide the order. Both the
    directive and its list leave ``patch``.
    """
    for key in [key for key in patch if key.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_type(_GO_SLICE, order)
        name = _directive_field(key, _SET_ELEMENT_ORDER)
        live, patched = original.get(name), patch.get(name)
        if name in original and not isinstance(live, list):
            raise _bad_type(_GO_SLICE, live)
        if name in patch and not isinstance(patched, list):
            raise _bad_type(_GO_SLICE, patched)
        field = _field(schema, name)
        merge_key = _merge_key(field)
        _check_against_order(patched or [], order, merge_key)
        if live is not None and patched is not None:
            server_order = _server_order_after_merge(live, patched, field)
            merged = _merge_list_field(live, patched, field, name, delete_list=False)
        elif live is not None:
            server_order, merged = live, live
        elif patched is not None:
            server_order, merged = [], _clean_list(patched)
        else:
            continue
        if merge_key:
            in_order, server_only = _partition_maps(merged, order, merge_key)
        else:
            in_order, server_only = _partition_scalars(merged, order)
        kind = _element_type(name, live or [], patched or [])
        original[name] = _normalize_order(
            in_order, server_only, order, server_order, merge_key, kind=kind
        )
        patch.pop(name, None)


def _check_against_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch's items must appear in ``$setElementOrder``, in the same relative order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise _bad_type(_GO_MAP, item)
        items = [item for item in patch_list if item.get(_DIRECTIVE) != "delete"]
    at, position = 0, 0
    while at < len(items) and position < len(order):
        if _is_directive_map(items[at]):
            at += 1
            continue
        if _merge_key_equal(items[at], order[position], merge_key):
            at += 1
        position += 1
    if at < len(items):
        raise _internal(
            f"the order in patch list:\n{go_format(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{go_format(order)}"
        )


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _bad_type(_GO_MAP, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])


def _server_order_after_merge(
    live: list[Any], patch: list[Any], field: PatchSchema | None
) -> list[Any]:
    """The live list as the API server reads it after merging ``patch`` into it.

    The API server merges a list of maps into the live list's own Go backing array:
    deleting an item shifts the items after it left and leaves the last slot as it was;
    an added item then overwrites the first slot past the shortened list. Its
    ``$setElementOrder`` step orders the server-only items by what that array then holds,
    so the same is done here to arrive at the same order.
    """
    merge_key = _merge_key(field)
    if _strategy(field) != "merge" or not merge_key:
        return live
    if not all(isinstance(item, dict) for item in (*live, *patch)):
        return live
    view = list(live)
    length = len(view)
    for item in patch:
        if item.get(_DIRECTIVE) != "delete" or merge_key not in item:
            continue
        while (at := _find(view[:length], merge_key, item[merge_key])) is not None:
            view[at : length - 1] = view[at + 1 : length]
            length -= 1
    if any(item.get(_DIRECTIVE) == "replace" for item in patch):
        return view
    current = view[:length]
    for item in patch:
        if _DIRECTIVE in item:
            continue
        if merge_key not in item:
            break
        if _find(current, merge_key, item[merge_key]) is None:
            current.append(item)
            if len(current) <= len(view):
                view[len(current) - 1] = item
    return view


def _merge_list_field(
    live: list[Any],
    patch: list[Any],
    field: PatchSchema | None,
    name: str,
    *,
    delete_list: bool,
) -> list[Any]:
    if _strategy(field) != "merge" and not delete_list:
        return _clean_list(patch)
    items = field.items() if field is not None else None
    return _merge_list(live, patch, items, _merge_key(field), name, delete_list=delete_list)


def _merge_list(
    live: list[Any],
    patch: list[Any],
    item_schema: PatchSchema | None,
    merge_key: str,
    name: str,
    *,
    delete_list: bool,
) -> list[Any]:
    if not live and not patch:
        return live
    kind = _element_type(name, live, patch)
    if kind is not dict:
        if delete_list:
            return [item for item in live if not _contains(patch, item)]
        merged = _deduplicate([*live, *patch])
    else:
        if not merge_key:
            raise _internal(f"cannot merge lists without merge key for {name}")
        live, patch = _list_directives(live, patch, merge_key)
        merged = _merge_items(live, patch, merge_key, item_schema)
    if merge_key:
        in_patch, server_only = _partition_maps(merged, patch, merge_key)
    else:
        in_patch, server_only = _partition_scalars(merged, patch)
    return _normalize_order(in_patch, server_only, patch, live, merge_key, kind=kind)


def _list_directives(
    live: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Apply the ``$patch`` items of a merged list: the live list and the remaining patch."""
    rest: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            live = [
                kept
                for kept in live
                if merge_key not in kept or not _same(kept[merge_key], item[merge_key])
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {_go_s(directive)} in map: {go_format(item)}")
    if replace:
        return [_clean_map(item) for item in rest], []
    return live, rest


def _merge_items(
    live: list[Any], patch: list[Any], merge_key: str, item_schema: PatchSchema | None
) -> list[Any]:
    merged = list(live)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        at = _find(merged, merge_key, item[merge_key])
        if at is None:
            merged.append(_clean_map(item))
        else:
            merged[at] = _merge_map(merged[at], item, item_schema)
    return merged


def _normalize_order(
    in_patch: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    *,
    kind: type[Any],
) -> list[Any]:
    """The patch's items in the patch's order, the others in the live order, interleaved.

    A server-only item goes before a patch item only if both are in the live list and it
    came first there; so items new to the list come before the server-only items after them.
    """
    in_patch = _sorted_by(in_patch, patch_order, merge_key, kind)
    server_only = _sorted_by(server_only, server_order, merge_key, kind)
    result: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(in_patch):
        if right >= len(in_patch):
            take_left = True
        elif left >= len(server_only):
            take_left = False
        else:
            at_left = _index(server_order, server_only[left], merge_key, kind)
            at_right = _index(server_order, in_patch[right], merge_key, kind)
            take_left = at_left >= 0 and at_right >= 0 and at_left < at_right
        if take_left:
            result.append(server_only[left])
            left += 1
        else:
            result.append(in_patch[right])
            right += 1
    return result


def _sorted_by(items: list[Any], order: list[Any], merge_key: str, kind: type[Any]) -> list[Any]:
    if kind is dict:
        for listed in (items, order):
            for item in listed:
                if not isinstance(item, dict):
                    raise _bad_type(_GO_MAP, item)
                if merge_key not in item:
                    raise _no_merge_key(item, merge_key)

    def position(item: Any) -> int:
        # Every item is in ``order`` when called from this module; a missing one goes last.
        at = _index(order, item, merge_key, kind)
        return at if at >= 0 else len(order)

    return sorted(items, key=position)


def _index(items: list[Any], item: Any, merge_key: str, kind: type[Any]) -> int:
    def key(value: Any) -> Any:
        if kind is not dict:
            return value
        return value.get(merge_key) if isinstance(value, dict) else None

    wanted = key(item)
    return next((at for at, value in enumerate(items) if _same(key(value), wanted)), -1)


def _partition_maps(
    merged: list[Any], by: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Items of ``merged`` whose merge key ``by`` has, and the others."""
    found: list[Any] = []
    others: list[Any] = []
    for item in merged:
        if not isinstance(item, dict):
            raise _bad_type(_GO_MAP, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        (found if _find(by, merge_key, item[merge_key]) is not None else others).append(item)
    return found, others


def _partition_scalars(merged: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    found = [item for item in merged if _contains(by, item)]
    others = [item for item in merged if not _contains(by, item)]
    return found, others


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    """Index of the first map in ``items`` whose merge key is ``value``."""
    for at, item in enumerate(items):
        if not isinstance(item, dict):
            raise _internal(f"value for key {at} is not a map")
        if merge_key in item and _same(item[merge_key], value):
            return at
    return None


def _element_type(name: str, *lists: list[Any]) -> type[Any]:
    """The one type of all items; lists of lists and mixed lists are refused."""
    found: type[Any] | None = None
    for listed in lists:
        for item in listed:
            if found is None:
                found = type(item)
                if found is list:
                    raise ApiError(
                        422,
                        "Invalid",
                        "the server rejected our request due to an error in our request",
                        details={},
                    )
            elif type(item) is not found:
                raise _internal(f"list element types are not identical: {go_format(list(lists))}")
    if found is None:
        raise _internal("no elements in any of the given slices")
    return found


def _deduplicate(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if not _contains(unique, item):
            unique.append(item)
    return unique


def _contains(items: list[Any], value: Any) -> bool:
    return any(_same(item, value) for item in items)


def _same(left: Any, right: Any) -> bool:
    """Go's ``==`` on decoded JSON: 1 and 1.0, or 1 and true, are different values."""
    return type(left) is type(right) and bool(left == right)


def _field(schema: PatchSchema | None, name: str) -> PatchSchema | None:
    return schema.field(name) if schema is not None else None


def _merge_key(field: PatchSchema | None) -> str:
    return (field.patch_merge_key or "") if field is not None else ""


def _strategy(field: PatchSchema | None) -> str:
    """The field's strategy besides ``retainKeys`` (which only clients act on)."""
    declared = (field.patch_strategy or "") if field is not None else ""
    strategies = declared.split(",")
    if len(strategies) == 1:
        return "" if strategies[0] == "retainKeys" else strategies[0]
    if len(strategies) == 2 and "retainKeys" in strategies:
        return strategies[1] if strategies[0] == "retainKeys" else strategies[0]
    raise _internal(f"unexpected patch strategy: {go_format(strategies)}")


def _directive_field(key: str, prefix: str) -> str:
    """The field a ``$deleteFromPrimitiveList/<field>`` or ``$setElementOrder/<field>`` names."""
    head, slash, field = key.partition("/")
    if not slash or head != prefix:
        which = (
            "primitive list" if prefix == _DELETE_FROM_PRIMITIVE_LIST else "setElementOrder list"
        )
        raise _bad_request(f"invalid patch format of {which}")
    return field


def _is_directive_map(value: Any) -> bool:
    return isinstance(value, dict) and _DIRECTIVE in value


def _clean(value: Any) -> Any:
    """A patch value taken as it is: without directives and without null members.

    The API server drops both when it decodes the result into the typed object; maps that
    carry a ``$patch`` directive are dropped whole, as apimachinery does.
    """
    if isinstance(value, dict):
        return _clean_map(value)
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_map(value: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _clean(item)
        for key, item in value.items()
        if item is not None
        and not _is_directive_map(item)
        and key not in (_DIRECTIVE, _RETAIN_KEYS)
        and not key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER))
    }


def _clean_list(value: list[Any]) -> list[Any]:
    return [_clean(item) for item in value if not _is_directive_map(item)]


# --- errors as the API server reports them -----------------------------------------------


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _internal(message: str) -> ApiError:
    """A bare Go error from the patch code: the API server answers 500 without a reason."""
    return ApiError(500, "", message)


def _no_merge_key(item: dict[str, Any], merge_key: str) -> ApiError:
    return _internal(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")


def _bad_type(expected: str, value: Any) -> ApiError:
    return _internal(f"expected a {expected}, but received a {_go_type(value)}")


def _as_object(result: Any) -> KubeObject:
    """The patched document, which has to decode into an object again."""
    if result is None:
        # Go decodes a null document into the empty object of the resource's type.
        return {}
    if not isinstance(result, dict):
        raise _not_an_object(result)
    return result


def _not_an_object(result: Any) -> ApiError:
    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    detail = (
        "couldn't get version/kind; json parse error: json: cannot unmarshal "
        f"{json_kind(result)} into Go value of type struct {{ APIVersion string "
        '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
    )
    return invalid_patch(f"Invalid value: {json.dumps(text, ensure_ascii=False)}: {detail}")


def invalid_patch(message: str) -> ApiError:
    """422 Invalid on the field ``patch``, without a kind or name: how the apiserver refuses
    a patch whose result it cannot decode."""
    return invalid(
        "", "", "", [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]
    )


def _unmarshal_error(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}"


def json_kind(value: Any) -> str:
    """The JSON type of a decoded value as encoding/json names it in an UnmarshalTypeError
    (``object``, ``array``, ``bool``, ``number``, ``string``)."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _go_type(value: Any) -> str:
    """The Go type encoding/json decodes ``value`` into, as ``%s`` of its reflect.Type prints it."""
    if value is None:
        return "%!s(<nil>)"
    names = {dict: _GO_MAP, list: _GO_SLICE, str: "string", bool: "bool", int: "int64"}
    return names.get(type(value), "float64")


def _go_s(value: Any) -> str:
    """Go's ``%s`` of a decoded JSON value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    return f"%!s({_go_type(value)}={go_format(value)})"


def go_format(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (maps with sorted keys)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, dict):
        inner = " ".join(f"{key}:{go_format(value[key])}" for key in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    return str(value)
