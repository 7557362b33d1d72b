"""Fields an update may not change, as kube-apiserver's validation refuses them.

GitOps tools meet these when a selector or a Job template changes in Git: Flux's
``spec.force`` (delete and recreate) exists for them, so the sandbox must refuse such
updates exactly as a cluster does — 422 Invalid, the field named, "field is immutable".
Only spec/data changes are judged; metadata and status are not concerned.

Pure: :func:`immutable_causes` compares the stored object with the one about to be stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from gitmoor.sandbox.schema import ResourceInfo

Cause = dict[str, str]
_IMMUTABLE = "field is immutable"


def _get(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _show(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _invalid(field: str, value: Any, message: str = _IMMUTABLE) -> Cause:
    return {"reason": "FieldValueInvalid", "field": field,
            "message": f"Invalid value: {_show(value)}: {message}"}  # fmt: skip


def _forbidden(field: str, message: str) -> Cause:
    return {"reason": "FieldValueForbidden", "field": field, "message": f"Forbidden: {message}"}


def _fixed(*paths: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]:
    """Each path keeps the value it was created with."""

    def check(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
        return [
            _invalid(path, _get(new, path))
            for path in paths
            if _get(old, path) is not None and _get(old, path) != _get(new, path)
        ]

    return check


def _data_of_immutable(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    """ConfigMaps and Secrets marked ``immutable: true`` (apiserver ValidateConfigMapUpdate)."""
    if old.get("immutable") is not True:
        return []
    causes = []
    if new.get("immutable") is not True:
        causes.append(_forbidden("immutable", "field is immutable when `immutable` is set"))
    for field in ("data", "binaryData"):
        if (old.get(field) or {}) != (new.get(field) or {}):
            causes.append(_forbidden(field, "field is immutable when `immutable` is set"))
    return causes


def _secret(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    causes = _data_of_immutable(old, new)
    if (old.get("type") or "Opaque") != (new.get("type") or "Opaque"):
        causes.append(_invalid("type", new.get("type"), _IMMUTABLE))
    return causes


_STATEFULSET_MUTABLE = (
    "replicas", "ordinals", "template", "updateStrategy",
    "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
)  # fmt: skip


def _statefulset(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    old_spec = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STATEFULSET_MUTABLE}
    new_spec = {k: v for k, v in (new.get("spec") or {}).items() if k not in _STATEFULSET_MUTABLE}
    if old_spec == new_spec:
        return []
    return [_forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                       "'ordinals', 'template', 'updateStrategy', "
                       "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                       "forbidden")]  # fmt: skip


def _job(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    causes = _fixed("spec.selector", "spec.completionMode")(old, new)
    old_template = _without_generated_labels(_get(old, "spec.template"))
    new_template = _without_generated_labels(_get(new, "spec.template"))
    if old_template is not None and old_template != new_template:
        causes.append(_invalid("spec.template", new_template))
    return causes


def _without_generated_labels(template: Any) -> Any:
    """A Job template minus the labels the API server added to it on create (a client
    applying its manifest again does not send them)."""
    if not isinstance(template, Mapping):
        return template
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    for key in ("controller-uid", "job-name", "batch.kubernetes.io/controller-uid",
                "batch.kubernetes.io/job-name"):  # fmt: skip
        labels.pop(key, None)
    metadata = {**(template.get("metadata") or {}), "labels": labels}
    if not labels:
        metadata.pop("labels")
    return {**template, "metadata": metadata}


def _service(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    old_ip, new_ip = _get(old, "spec.clusterIP"), _get(new, "spec.clusterIP")
    # An update without a clusterIP keeps the stored one (the server fills it in).
    if old_ip and new_ip and old_ip != new_ip:
        return [_invalid("spec.clusterIPs[0]", [new_ip], "may not change once set")]
    return []


def _binding(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    if old.get("roleRef") != new.get("roleRef"):
        return [_invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def _claim(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    old_spec = old.get("spec") or {}

    def fixed_part(obj: Mapping[str, Any]) -> Any:
        spec = dict(obj.get("spec") or {})
        spec.pop("volumeAttributesClassName", None)
        resources = dict(spec.pop("resources", None) or {})
        resources.pop("requests", None)
        # Binding sets the volume once, and a default class may be set on a claim that had
        # none (retroactive default StorageClass).
        for once in ("volumeName", "storageClassName"):
            if not old_spec.get(once):
                spec.pop(once, None)
        return spec, resources

    if fixed_part(old) != fixed_part(new):
        return [_forbidden("spec", "spec is immutable after creation except resources.requests "
                           "and volumeAttributesClassName for bound claims")]  # fmt: skip
    return []


def _storage_class(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    causes = []
    for field in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if old.get(field) != new.get(field):
            causes.append(_forbidden(field, f"updates to {field} are forbidden."))
    return causes


_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any], Mapping[str, Any]], list[Cause]]] = {
    ("", "configmaps"): _data_of_immutable,
    ("", "secrets"): _secret,
    ("", "services"): _service,
    ("", "persistentvolumeclaims"): _claim,
    ("apps", "deployments"): _fixed("spec.selector"),
    ("apps", "replicasets"): _fixed("spec.selector"),
    ("apps", "daemonsets"): _fixed("spec.selector"),
    ("apps", "statefulsets"): _statefulset,
    ("batch", "jobs"): _job,
    ("rbac.authorization.k8s.io", "rolebindings"): _binding,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding,
    ("storage.k8s.io", "storageclasses"): _storage_class,
}


def immutable_causes(
    info: ResourceInfo, old: Mapping[str, Any], new: Mapping[str, Any], subresource: str | None
) -> list[Cause]:
    """Why storing ``new`` over ``old`` is refused; empty when it may be stored."""
    if subresource is not None:
        return []
    rule = _RULES.get((info.group, info.plural))
    return rule(old, new) if rule is not None else []
