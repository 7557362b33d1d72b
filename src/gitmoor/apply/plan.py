"""What to apply, in which order, and whether applying an object would change anything.

Pure functions over plain objects; the I/O lives in :mod:`gitmoor.apply.engine`.

Order follows Flux's staged apply: cluster definitions (CustomResourceDefinitions and
Namespaces) first, then class definitions (StorageClass, IngressClass, PriorityClass …),
then everything else, each stage sorted by kind the way Helm installs (ServiceAccounts and
ConfigMaps before the workloads that mount them). Pruning runs in the reverse order.

:func:`in_sync` answers "would a server-side apply of this object change the live one?"
without asking the API server: every field applied must already be there with the same
value, and no field gitmoor applied last time may be missing from what it applies now
(server-side apply would remove it). That lets a no-op reconcile cost one list per kind
instead of one request per object. When unsure it answers False, which only costs an
apply that changes nothing.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from gitmoor.apply.inventory import ref_of

NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
SSA_ANNOTATION = "kustomize.toolkit.fluxcd.io/ssa"
RECONCILE_ANNOTATION = "kustomize.toolkit.fluxcd.io/reconcile"
PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
DISABLED = "disabled"

CLUSTER_DEFINITIONS = frozenset({"CustomResourceDefinition", "Namespace"})

# Helm's install order (pkg/release/util/kind_sorter.go), which Flux's sort follows too.
_KIND_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]  # fmt: skip
_RANK = {kind: i for i, kind in enumerate(_KIND_ORDER)}


def stage_of(obj: Mapping[str, Any]) -> int:
    kind = str(obj.get("kind", ""))
    if kind in CLUSTER_DEFINITIONS:
        return 0
    if kind.endswith("Class"):
        return 1
    return 2


def sort_key(obj: Mapping[str, Any]) -> tuple[int, int, str, str, str]:
    ref = ref_of(obj)
    return (stage_of(obj), _RANK.get(ref.kind, len(_RANK)), ref.kind, ref.namespace, ref.name)


def stages(objects: Iterable[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """The objects in apply order, grouped in the stages that are applied one after another."""
    grouped: list[list[dict[str, Any]]] = [[], [], []]
    for obj in sorted(objects, key=sort_key):
        grouped[stage_of(obj)].append(dict(obj))
    return [g for g in grouped if g]


def owned(obj: Mapping[str, Any], name: str, namespace: str) -> dict[str, Any]:
    """A copy of ``obj`` labelled as applied by Kustomization ``namespace/name`` (Flux's
    labels, which :func:`is_owned_by` checks before pruning) and in the shape the API
    server stores (a Secret's stringData folded into data), so it compares with live."""
    result = stored_form(obj)
    meta = result.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), NAME_LABEL: name, NAMESPACE_LABEL: namespace}
    return result


def stored_form(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` in the shape the API server stores it: a Secret's stringData
    folded into data."""
    result = copy.deepcopy(dict(obj))
    if result.get("kind") == "Secret" and result.get("apiVersion") == "v1":
        string_data = result.pop("stringData", None) or {}
        if string_data:
            data = dict(result.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            result["data"] = data
    return result


def is_owned_by(live: Mapping[str, Any], name: str, namespace: str) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return labels.get(NAME_LABEL) == name and labels.get(NAMESPACE_LABEL) == namespace


def annotation(obj: Mapping[str, Any], key: str) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(key, ""))


def reconcile_disabled(obj: Mapping[str, Any]) -> bool:
    return annotation(obj, RECONCILE_ANNOTATION).lower() == DISABLED


def prune_disabled(obj: Mapping[str, Any]) -> bool:
    return annotation(obj, PRUNE_ANNOTATION).lower() == DISABLED


def apply_policy(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> str:
    """``apply``, ``create`` (missing, IfNotPresent) or ``skip``: what the annotations on the
    object in Git and on the live one allow. The live object's annotations count because a
    user may disable reconciliation on the cluster side in an emergency."""
    if reconcile_disabled(desired) or (live is not None and reconcile_disabled(live)):
        return "skip"
    policy = annotation(desired, SSA_ANNOTATION)
    if policy == "Ignore":
        return "skip"
    if policy == "IfNotPresent":
        return "create" if live is None else "skip"
    return "apply"


# --- would an apply change anything? ----------------------------------------------------


def in_sync(desired: Mapping[str, Any], live: Mapping[str, Any] | None, manager: str) -> bool:
    """True when applying ``desired`` as ``manager`` would leave ``live`` as it is."""
    if live is None:
        return False
    body = {k: v for k, v in desired.items() if k not in ("status", "apiVersion", "kind")}
    meta = dict(body.pop("metadata", {}) or {})
    wanted_meta = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    if not _contains(live.get("metadata") or {}, wanted_meta):
        return False
    if not _contains(live, body):
        return False
    managed = _managed_paths(live, manager)
    if managed is None:
        return False
    applied = _paths({**body, "metadata": wanted_meta})
    return managed <= applied


def _contains(live: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(k in live and _contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(live, list):
            return False
        if not any(isinstance(item, Mapping) for item in wanted):
            return bool(same_value(live, wanted))
        # Items of a list of objects keep their order; others' items may sit in between.
        position = 0
        for item in wanted:
            while position < len(live) and not _contains(live[position], item):
                position += 1
            if position == len(live):
                return False
            position += 1
        return True
    return same_value(live, wanted)


def same_value(live: Any, wanted: Any) -> bool:
    if isinstance(live, bool) or isinstance(wanted, bool):
        return live is wanted
    if isinstance(live, int | float) and isinstance(wanted, int | float):
        return float(live) == float(wanted)
    return bool(json.dumps(live, sort_keys=True) == json.dumps(wanted, sort_keys=True))


def _paths(obj: Any, prefix: str = "") -> set[str]:
    """Field paths of an object, list items collapsed to ``[]``."""
    found: set[str] = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            path = f"{prefix}.{key}"
            found.add(path)
            found |= _paths(value, path)
    elif isinstance(obj, list):
        for item in obj:
            found |= _paths(item, f"{prefix}[]")
    return found


def _managed_paths(live: Mapping[str, Any], manager: str) -> set[str] | None:
    """The fields ``manager`` applied, from the live managedFields; None when unknown."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            if entry.get("subresource"):
                continue
            return _fields_v1_paths(entry.get("fieldsV1") or {})
    return None


def _fields_v1_paths(fields: Mapping[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            path = f"{prefix}.{key[2:]}"
            found.add(path)
        else:  # k:{...}, v:..., i:N — an item of a list
            path = f"{prefix}[]"
        if isinstance(value, Mapping):
            found |= _fields_v1_paths(value, path)
    return found
