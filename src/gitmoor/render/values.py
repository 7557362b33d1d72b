"""The values a HelmRelease gives Helm: valuesFrom in order, then the inline values.

This follows helm-controller's ``ChartValuesFromReferences``: each referenced ConfigMap or
Secret key is either a YAML document merged in deeply, or (with ``targetPath``) a single
value set at a path with Helm's own ``--set`` parser. Parsing goes through the Helm SDK
so values read exactly as Helm reads them (YAML 1.1 booleans, first document only).

Values may hold secrets: no message here ever quotes them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import helm_python

from gitmoor.api.helm import HelmRelease, ValuesReference
from gitmoor.errors import Location, RenderError

ValuesLookup = Callable[[str, str, str], Mapping[str, str] | None]
"""``(kind, namespace, name)`` → the data of that ConfigMap or Secret (decoded), or None."""

DEFAULT_VALUES_KEY = "values.yaml"
_QUOTES = "'\""


def compose_values(hr: HelmRelease, lookup: ValuesLookup) -> dict[str, Any]:
    """The values helm-controller would hand to Helm for this release.

    Raises RenderError naming the HelmRelease and ``spec.valuesFrom[i]`` when a
    non-optional reference cannot be resolved or its content is not valid.
    """
    result: dict[str, Any] = {}
    for index, ref in enumerate(hr.spec.values_from or []):
        where = Location(object=hr.display, field=f"spec.valuesFrom[{index}]")
        data = _referenced_data(hr, ref, lookup, where)
        if data is None:
            continue
        if ref.target_path:
            set_path_value(result, ref.target_path, data, where=where)
        else:
            result = merge_maps(result, parse_values(data, what=_describe(hr, ref), where=where))
    return merge_maps(result, copy.deepcopy(hr.spec.values or {}))


def values_digest(values: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the values as canonical JSON: equal values, equal digest."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: maps merge key by key, anything else in ``override`` replaces.

    A null in ``override`` is kept (not dropped) so Helm's own coalescing can use it to
    delete a chart default, as it does for helm-controller.
    """
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_maps(current, value)
        else:
            merged[key] = value
    return merged


def parse_values(text: str, *, what: str, where: Location) -> dict[str, Any]:
    """A values document read by Helm's own parser (``chartutil.ReadValues``)."""
    try:
        return helm_python.values_from_yaml(text)
    except helm_python.HelmError as exc:
        raise RenderError(f"{what} is not a valid values document: {exc.detail}", where) from None


def set_path_value(values: dict[str, Any], path: str, raw: str, *, where: Location) -> None:
    """Set ``path`` to ``raw`` the way helm-controller's ``ReplacePathValue`` does.

    The text goes through Helm's ``--set`` parser, so ``true`` and ``3`` become typed
    values; a value wrapped in single or double quotes is trimmed and kept a string
    (``--set-string``). The parser's error is not repeated: it can quote the value.
    """
    quoted = any(raw.startswith(quote) and raw.endswith(quote) for quote in _QUOTES)
    try:
        if quoted:
            parsed = helm_python.parse_set_string_values(f"{path}={raw.strip(_QUOTES)}")
        else:
            parsed = helm_python.parse_set_string(f"{path}={raw}")
    except helm_python.HelmError:
        raise RenderError(
            f"cannot set the value at targetPath {path!r}: Helm's --set parser rejects the "
            "path or the value (a value with commas must be quoted)",
            where,
        ) from None
    _merge_into(values, parsed)


def _merge_into(target: dict[str, Any], parsed: Mapping[str, Any]) -> None:
    """Apply a freshly parsed ``--set`` result onto existing values, as strvals.ParseInto.

    Maps are descended into; list indexes replace only the element they name (the
    parser fills the positions before it with nulls, which mean "untouched").
    """
    for key, value in parsed.items():
        current = target.get(key)
        if isinstance(value, dict):
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge_into(current, value)
        elif isinstance(value, list):
            if not isinstance(current, list):
                current = target[key] = []
            _merge_list(current, value)
        else:
            target[key] = value


def _merge_list(target: list[Any], parsed: list[Any]) -> None:
    for index, value in enumerate(parsed):
        if value is None:
            continue
        while len(target) <= index:
            target.append(None)
        current = target[index]
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_into(current, value)
        elif isinstance(value, list) and isinstance(current, list):
            _merge_list(current, value)
        else:
            target[index] = value


def _referenced_data(
    hr: HelmRelease, ref: ValuesReference, lookup: ValuesLookup, where: Location
) -> str | None:
    """The referenced key's content; None when an optional reference is missing."""
    data = lookup(ref.kind, hr.namespace, ref.name)
    key = ref.values_key or DEFAULT_VALUES_KEY
    if data is None:
        if ref.optional:
            return None
        raise RenderError(f"{ref.kind} {hr.namespace}/{ref.name} not found", where)
    if key not in data:
        if ref.optional:
            return None
        raise RenderError(f"key {key!r} not found in {ref.kind} {hr.namespace}/{ref.name}", where)
    return data[key]


def _describe(hr: HelmRelease, ref: ValuesReference) -> str:
    key = ref.values_key or DEFAULT_VALUES_KEY
    return f"key {key!r} of {ref.kind} {hr.namespace}/{ref.name}"
