"""Drift of a Helm release: which of its objects in the cluster no longer match its manifest.

Pure functions over plain objects; the HelmRelease controller reads the live objects, runs
the dry-runs and re-applies.

Every object of the release manifest is compared with the live one over the fields the
manifest sets (labels and annotations of the metadata, everything but metadata and status
otherwise): a field that is missing or holds another value is drift, and so is an object
that is gone. Defaults the API server adds and fields other managers own are not, as with
helm-controller, whose server-side dry-run apply keeps them. Where a first comparison finds
drift, the controller confirms it the way helm-controller finds it: with the dry-run
apply's result as the wanted state (``applied``), so a value the API server only stores in
another form (a quantity ``0.5`` as ``500m``) is not taken for drift.

Ignore rules are helm-controller's: JSON pointers (RFC 6901) removed from both sides before
comparing, for the objects an optional target selects (group, version, kind, name and
namespace as anchored regular expressions, label and annotation selectors); the pointer
``""`` ignores whole objects, as does the label or annotation
``helm.toolkit.fluxcd.io/driftDetection: disabled`` on an object.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from gitmoor.api.helm import IgnoreRule
from gitmoor.api.meta import Selector
from gitmoor.api.registry import split_api_version
from gitmoor.apply.plan import same_value, stored_form
from gitmoor.errors import InputError, Location
from gitmoor.manifests import KubeObject, ObjectKey, key_of
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.selectors import LabelSelector

DISABLE_KEY = "helm.toolkit.fluxcd.io/driftDetection"
DISABLED = "disabled"

# What Helm writes on every object it creates (helm-controller sets them on the manifest's
# objects too, so removing them by hand is drift).
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"


@dataclass(frozen=True)
class Change:
    """One field out of place, as the JSON patch from the live object to the wanted one
    would name it: ``add`` (missing in the cluster) or ``replace`` (another value)."""

    path: str
    op: Literal["add", "replace"]


@dataclass(frozen=True)
class Drift:
    """An object of the release that drifted: gone from the cluster, or changed."""

    desired: KubeObject
    """The manifest's object, as it is to be applied again."""
    changes: tuple[Change, ...] = ()
    missing: bool = False

    @property
    def subject(self) -> str:
        """``Kind/namespace/name``, as helm-controller names objects in its events."""
        key = key_of(self.desired)
        return f"{key.kind}/{key.namespace}/{key.name}"

    def __str__(self) -> str:
        if self.missing:
            return f"{self.subject} removed"
        added = sum(1 for c in self.changes if c.op == "add")
        changed = len(self.changes) - added
        paths = ", ".join(c.path for c in self.changes)
        return f"{self.subject} changed ({added} additions, {changed} changes, 0 removals): {paths}"


@dataclass(frozen=True)
class Rule:
    """An ignore rule, compiled: the pointers, and whom they apply to (None: everyone)."""

    paths: tuple[tuple[str, ...], ...]
    selects: Callable[[Mapping[str, Any]], bool] | None = None

    def applies_to(self, obj: Mapping[str, Any]) -> bool:
        return self.selects is None or self.selects(obj)


# --- ignore rules -------------------------------------------------------------------------


def compile_rules(rules: Sequence[IgnoreRule], *, what: str) -> list[Rule]:
    """``spec.driftDetection.ignore`` of the HelmRelease ``what``, checked and compiled.

    A pointer that is not one, an unknown target field, a bad regular expression or
    selector is an InputError naming the field.
    """
    compiled = []
    for index, rule in enumerate(rules):
        field = f"spec.driftDetection.ignore[{index}]"
        paths = tuple(
            _pointer(path, what=what, field=f"{field}.paths[{n}]")
            for n, path in enumerate(rule.paths)
        )
        selects = _selector(rule.target, what=what, field=f"{field}.target")
        compiled.append(Rule(paths, selects))
    return compiled


def _pointer(text: str, *, what: str, field: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer (RFC 6901), unescaped."""
    if text == "":
        return ()
    if not text.startswith("/"):
        raise InputError(
            f"{text!r} is not a JSON pointer (it must be empty or start with '/')",
            Location(object=what, field=field),
        )
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/"))


def _selector(
    target: Mapping[str, Any] | None, *, what: str, field: str
) -> Callable[[Mapping[str, Any]], bool] | None:
    if target is None:
        return None
    try:
        selector = Selector.model_validate(target)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise InputError(problem["msg"], Location(object=what, field=f"{field}.{where}")) from None
    patterns: dict[str, re.Pattern[str]] = {}
    for part in ("group", "version", "kind", "name", "namespace"):
        value = getattr(selector, part)
        if value:
            try:
                patterns[part] = re.compile(value)
            except re.error as exc:
                raise InputError(
                    f"invalid regular expression {value!r}: {exc}",
                    Location(object=what, field=f"{field}.{part}"),
                ) from None
    labels = _label_selector(selector.label_selector, what=what, field=f"{field}.labelSelector")
    annotations = _label_selector(
        selector.annotation_selector, what=what, field=f"{field}.annotationSelector"
    )

    def selects(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        group, version = split_api_version(str(obj.get("apiVersion", "")))
        found = {
            "group": group,
            "version": version,
            "kind": str(obj.get("kind", "")),
            "name": str(meta.get("name") or ""),
            "namespace": str(meta.get("namespace") or ""),
        }
        if not all(p.fullmatch(found[part]) for part, p in patterns.items()):
            return False
        if labels is not None and not labels.matches(meta.get("labels") or {}):
            return False
        return annotations is None or annotations.matches(meta.get("annotations") or {})

    return selects


def _label_selector(text: str | None, *, what: str, field: str) -> LabelSelector | None:
    if not text:
        return None
    try:
        return LabelSelector.parse(text)
    except ApiError as exc:
        raise InputError(
            f"invalid selector {text!r}: {exc.message}", Location(object=what, field=field)
        ) from None


# --- the release's objects ----------------------------------------------------------------


def release_objects(
    objects: Iterable[Mapping[str, Any]],
    *,
    release: str,
    namespace: str,
    cluster_scoped: Collection[tuple[str, str]],
) -> list[KubeObject]:
    """The manifest's objects as Helm created them: in the release namespace unless they
    name one or their (apiVersion, kind) is in ``cluster_scoped``, with Helm's ownership
    label and annotations, in the shape the API server stores them."""
    result = []
    for obj in objects:
        desired = stored_form(obj)
        meta = desired.setdefault("metadata", {})
        scoped = (str(desired.get("apiVersion", "")), str(desired.get("kind", "")))
        if not meta.get("namespace") and scoped not in cluster_scoped:
            meta["namespace"] = namespace
        meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: "Helm"}
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            RELEASE_NAME_ANNOTATION: release,
            RELEASE_NAMESPACE_ANNOTATION: namespace,
        }
        result.append(desired)
    return result


# --- drift --------------------------------------------------------------------------------


def detect(
    desired: Iterable[KubeObject],
    live: Mapping[ObjectKey, KubeObject | None],
    rules: Sequence[Rule] = (),
    *,
    applied: Mapping[ObjectKey, KubeObject] | None = None,
) -> list[Drift]:
    """The objects of ``desired`` that drifted from what ``live`` holds (a key missing from
    ``live``, or None, is an object gone from the cluster).

    ``applied`` holds server-side dry-run results of applying desired objects; where one is
    given it is the wanted state of that object instead of the manifest's object.
    """
    found = []
    for obj in desired:
        if _excluded(obj):
            continue
        ignored = [path for rule in rules if rule.applies_to(obj) for path in rule.paths]
        if () in ignored:
            continue
        key = key_of(obj)
        current = live.get(key)
        if current is None:
            found.append(Drift(obj, missing=True))
            continue
        wanted = _comparable((applied or {}).get(key, obj), ignored)
        changes = _compare(wanted, _comparable(current, ignored), "")
        if changes:
            found.append(Drift(obj, tuple(changes)))
    return found


def _excluded(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return any(
        (meta.get(part) or {}).get(DISABLE_KEY) == DISABLED for part in ("labels", "annotations")
    )


def _comparable(obj: Mapping[str, Any], ignored: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """What drift is measured on: labels and annotations of the metadata, the rest but
    status and the type fields; the ignored pointers taken out."""
    body = {
        k: copy.deepcopy(v)
        for k, v in obj.items()
        if k not in ("apiVersion", "kind", "metadata", "status")
    }
    meta = obj.get("metadata") or {}
    kept = {k: copy.deepcopy(meta[k]) for k in ("labels", "annotations") if meta.get(k)}
    if kept:
        body["metadata"] = kept
    for tokens in ignored:
        _remove(body, tokens)
    return body


def _remove(obj: Any, tokens: Sequence[str]) -> None:
    """Take the value at ``tokens`` out of ``obj``, if it is there."""
    *parents, last = tokens
    for token in parents:
        obj = _step(obj, token)
        if obj is None:
            return
    if isinstance(obj, dict):
        obj.pop(last, None)
    elif isinstance(obj, list) and last.isdigit() and int(last) < len(obj):
        del obj[int(last)]


def _step(obj: Any, token: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(token)
    if isinstance(obj, list) and token.isdigit() and int(token) < len(obj):
        return obj[int(token)]
    return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unset(value: Any) -> bool:
    """Values that set nothing: the API server drops empty maps and lists, and null in
    an applied object means "no opinion"."""
    return value is None or value == {} or value == []


def _compare(wanted: Any, live: Any, path: str) -> list[Change]:
    """The fields ``wanted`` sets that ``live`` lacks or holds differently."""
    if _unset(wanted):
        return []
    if isinstance(wanted, Mapping):
        # Down to the fields: a map missing from the cluster is named by what it holds.
        live = {} if live is None else live
        if not isinstance(live, Mapping):
            return [Change(path, "replace")]
        changes: list[Change] = []
        for key, value in wanted.items():
            changes += _compare(value, live.get(key), f"{path}/{_escape(str(key))}")
        return changes
    if live is None:
        return [Change(path, "add")]
    if isinstance(wanted, list) and any(isinstance(item, Mapping) for item in wanted):
        # Lists of objects are merged item by item; items past the manifest's (another
        # manager's) are not drift.
        if not isinstance(live, list):
            return [Change(path, "replace")]
        changes = []
        for index, item in enumerate(wanted):
            where = f"{path}/{index}"
            changes += (
                _compare(item, live[index], where) if index < len(live) else [Change(where, "add")]
            )
        return changes
    return [] if same_value(live, wanted) else [Change(path, "replace")]
