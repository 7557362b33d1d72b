"""What a change to the repository would change in the cluster, object by object.

Pure functions over two sets of rendered objects. Secret values are never shown: each
value becomes a marker, and a marker that differs between the two sides says only that
the value changed.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitmoor.manifests import KubeObject, ObjectKey, dump

REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"


class Change(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class ObjectDiff:
    key: ObjectKey
    change: Change
    origin: str | None
    """The Kustomization or HelmRelease that produces the object (head side if any)."""
    text: str
    """A unified diff of the YAML (whole object for added and removed)."""


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion")) == "v1"


def redact(obj: KubeObject, compare_to: KubeObject | None = None) -> KubeObject:
    """A copy of ``obj`` with Secret values replaced by markers.

    With ``compare_to`` (the other side of a diff), a value that differs from the
    same key there is marked as changed, so the diff still shows a line for it.
    """
    if not _is_secret(obj):
        return obj
    redacted = dict(obj)
    for section in ("data", "stringData"):
        values = obj.get(section)
        if not isinstance(values, Mapping):
            continue
        other = (compare_to or {}).get(section)
        other_values = other if isinstance(other, Mapping) else {}
        redacted[section] = {
            key: REDACTED
            if compare_to is None or other_values.get(key) in (None, value)
            else REDACTED_CHANGED
            for key, value in values.items()
        }
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        metadata = dict(obj["metadata"])
        metadata["annotations"] = {
            **annotations,
            "kubectl.kubernetes.io/last-applied-configuration": REDACTED,
        }
        redacted["metadata"] = metadata
    return redacted


def _yaml_lines(obj: KubeObject | None) -> list[str]:
    return [] if obj is None else dump(obj).splitlines(keepends=True)


def diff_objects(
    base: Mapping[ObjectKey, tuple[str | None, KubeObject]],
    head: Mapping[ObjectKey, tuple[str | None, KubeObject]],
    *,
    redact_secrets: bool = True,
) -> list[ObjectDiff]:
    """Objects added, removed or changed from ``base`` to ``head``, sorted by key.

    Each side maps an object's key to (the unit that produced it, the object). Secret
    values are shown only with ``redact_secrets=False``.
    """

    def shown(obj: KubeObject, compare_to: KubeObject | None = None) -> KubeObject:
        return redact(obj, compare_to) if redact_secrets else obj

    changes: list[ObjectDiff] = []
    for key in sorted(base.keys() | head.keys()):
        before = base.get(key)
        after = head.get(key)
        old = shown(before[1]) if before else None
        new: KubeObject | None
        if before is not None and after is not None:
            new = shown(after[1], compare_to=before[1])
            if before[1] == after[1]:
                continue
            change = Change.CHANGED
        else:
            new = shown(after[1]) if after else None
            change = Change.ADDED if before is None else Change.REMOVED
        text = "".join(
            difflib.unified_diff(
                _yaml_lines(old),
                _yaml_lines(new),
                fromfile=f"base/{key}",
                tofile=f"head/{key}",
            )
        )
        origin = (after or before or (None, {}))[0]
        changes.append(ObjectDiff(key, change, origin, text))
    return changes


def render_markdown(changes: list[ObjectDiff]) -> str:
    """A pull-request comment: a summary table, then each diff folded."""
    counts = {change: sum(1 for c in changes if c.change is change) for change in Change}
    lines = [
        "### gitmoor diff: "
        + ", ".join(
            f"{counts[c]} {c.value}" for c in (Change.CHANGED, Change.ADDED, Change.REMOVED)
        ),
        "",
    ]
    if not changes:
        lines.append("No object would change.")
        return "\n".join(lines) + "\n"
    lines += ["| change | object | from |", "|---|---|---|"]
    lines += [f"| {c.change.value} | `{c.key}` | {c.origin or ''} |" for c in changes]
    for c in changes:
        lines += [
            "",
            f"<details><summary>{c.change.value}: <code>{c.key}</code></summary>",
            "",
            "```diff",
            c.text.rstrip("\n"),
            "```",
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
