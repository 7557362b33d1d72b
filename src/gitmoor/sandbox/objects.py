"""What the API server does to an object on every write, whatever the resource.

Pure functions: metadata defaults on create, what an update may and may not change,
generation, name validation. The HTTP layer (server.py) calls them; storage is elsewhere.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from gitmoor.sandbox.errors import ApiError, invalid
from gitmoor.sandbox.schema import ResourceInfo

KubeObject = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kinds whose names must be DNS labels (RFC 1123), not just subdomains.
_LABEL_NAMED = frozenset({("", "Namespace"), ("", "Service")})
# Metadata only the server sets; a client's values are ignored on create and update.
_SERVER_OWNED = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp")


def now() -> str:
    """The current time as the API server writes it (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_name(info: ResourceInfo, name: str) -> None:
    label = (info.group, info.kind) in _LABEL_NAMED
    pattern, limit, what = (
        (_DNS_LABEL, 63, "RFC 1123 label") if label else (_DNS_SUBDOMAIN, 253, "RFC 1123 subdomain")
    )
    if not name:
        raise invalid(
            info.kind,
            info.group,
            name,
            [_cause("metadata.name", "Required value: name or generateName is required")],
        )
    if len(name) > limit or not pattern.match(name):
        message = (
            f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character"
        )
        raise invalid(info.kind, info.group, name, [_cause("metadata.name", message)])


def _cause(field: str, message: str) -> dict[str, str]:
    reason = "FieldValueRequired" if message.startswith("Required") else "FieldValueInvalid"
    return {"reason": reason, "message": message, "field": field}


def check_kind(info: ResourceInfo, obj: KubeObject) -> None:
    """The body's apiVersion and kind must be the resource's (empty ones are filled in)."""
    kind = obj.get("kind") or info.kind
    api_version = obj.get("apiVersion") or info.api_version
    if kind != info.kind or api_version != info.api_version:
        raise ApiError(
            400,
            "BadRequest",
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({info.api_version})"
            if api_version != info.api_version
            else f"the kind in the data ({kind}) does not match the expected kind ({info.kind})",
        )
    obj["kind"], obj["apiVersion"] = kind, api_version


def prepare_create(info: ResourceInfo, obj: KubeObject, namespace: str | None) -> KubeObject:
    """A copy of ``obj`` with the metadata a create gives it."""
    created = copy.deepcopy(obj)
    check_kind(info, created)
    metadata = created.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    for key in _SERVER_OWNED:
        metadata.pop(key, None)
    if not metadata.get("name") and metadata.get("generateName"):
        metadata["name"] = f"{metadata['generateName']}{_suffix()}"
    validate_name(info, str(metadata.get("name") or ""))
    if info.namespaced:
        given = metadata.get("namespace")
        if given and namespace and given != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        metadata["namespace"] = namespace or given
    else:
        metadata.pop("namespace", None)
    if "status" in info.subresources:
        # As the built-in registries do: a create sets the spec; status is the controllers'.
        created.pop("status", None)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now()
    metadata["generation"] = 1
    return created


def _suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's: no vowels, no look-alikes
    return "".join(secrets.choice(alphabet) for _ in range(5))


def prepare_update(
    info: ResourceInfo,
    live: KubeObject,
    new: KubeObject,
    *,
    subresource: str | None,
) -> KubeObject:
    """``new`` as it may be stored over ``live``: server-owned metadata kept, status or
    the rest ignored as the subresource rules say, generation bumped on spec changes."""
    updated = copy.deepcopy(new)
    check_kind(info, updated)
    metadata = updated.setdefault("metadata", {})
    live_meta = live.get("metadata") or {}
    for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"):
        if key in live_meta:
            metadata[key] = live_meta[key]
        else:
            metadata.pop(key, None)
    if "status" in info.subresources:
        if subresource == "status":
            # A status write changes status alone (and metadata the server keeps).
            restored = copy.deepcopy(live)
            restored["status"] = updated.get("status")
            if restored["status"] is None:
                restored.pop("status")
            restored["metadata"] = {**live_meta, "resourceVersion": metadata.get("resourceVersion")}
            return restored
        if "status" in live:
            updated["status"] = copy.deepcopy(live["status"])
        else:
            updated.pop("status", None)
    if _spec_changed(live, updated):
        metadata["generation"] = int(live_meta.get("generation") or 1) + 1
    return updated


def _spec_changed(live: KubeObject, new: KubeObject) -> bool:
    """Generation follows everything but metadata and status, as for built-in types."""
    ignored = {"metadata", "status", "apiVersion", "kind"}
    before = {k: v for k, v in live.items() if k not in ignored}
    after = {k: v for k, v in new.items() if k not in ignored}
    return before != after


def unknown_fields(value: Any, schema: Any, path: str = "", *, prune: bool = False) -> list[str]:
    """Fields in ``value`` its schema does not declare, as strict field validation finds them;
    with ``prune``, also removed from ``value``, as the API server drops them when storing.

    ``schema`` is a SchemaNode (or None where nothing is known, which accepts anything).
    """
    if schema is None or schema.preserves_unknown:
        return []
    found: list[str] = []
    if isinstance(value, dict) and schema.is_object:
        declared = set(schema.properties)
        for key in list(value):
            child = f"{path}.{key}" if path else str(key)
            if not schema.is_map and declared and key not in declared:
                found.append(child)
                if prune:
                    del value[key]
                continue
            found.extend(unknown_fields(value[key], schema.field(key), child, prune=prune))
    elif isinstance(value, list) and schema.is_array:
        for index, item in enumerate(value):
            found.extend(unknown_fields(item, schema.items(), f"{path}[{index}]", prune=prune))
    return found


# Defaults the API server writes into workloads, where clients read them back (kubectl
# rollout status needs the update strategy; kstatus reads progressDeadlineSeconds).
_WORKLOAD_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("apps", "Deployment"): {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    },
    ("apps", "StatefulSet"): {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    },
    ("apps", "DaemonSet"): {
        "revisionHistoryLimit": 10,
        "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
    },
    ("batch", "Job"): {"completionMode": "NonIndexed", "suspend": False, "manualSelector": False},
}  # fmt: skip
_MAX_INT32 = 2**31 - 1


def apply_defaults(info: ResourceInfo, obj: KubeObject) -> None:
    """Fill in, in place, the workload defaults the API server sets when a field is absent."""
    defaults = _WORKLOAD_DEFAULTS.get((info.group, info.kind))
    spec = obj.get("spec")
    if defaults is None or not isinstance(spec, dict):
        return
    if (info.group, info.kind) == ("batch", "Job"):
        _job_defaults(obj, spec)
    for key, value in defaults.items():
        if key not in spec:
            spec[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(spec[key], dict):
            for inner, default in value.items():
                if spec[key].get("type", value.get("type")) == value.get("type"):
                    spec[key].setdefault(inner, copy.deepcopy(default))


def _job_defaults(job: KubeObject, spec: dict[str, Any]) -> None:
    """batch/v1 SetDefaults_Job's defaults that depend on other fields."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1  # a non-parallel Job: one pod, one completion
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 6 if spec.get("backoffLimitPerIndex") is None else _MAX_INT32
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = (
            "TerminatingOrFailed" if spec.get("podFailurePolicy") is None else "Failed"
        )
    template_labels = _dict_at(spec, "template", "metadata", "labels")
    metadata = job.setdefault("metadata", {})
    if template_labels and not metadata.get("labels"):
        metadata["labels"] = dict(template_labels)


# The labels the Job registry puts on a Job's pod template, legacy names included; the
# selector matches the controller uid alone, which is unique to the Job.
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def generate_job_selector(job: KubeObject) -> None:
    """What the Job registry adds to a Job on create unless ``spec.manualSelector`` is
    true, in place: the Job's name and uid as labels of its pod template (a label the
    template sets already is kept) and ``spec.selector`` matching
    ``batch.kubernetes.io/controller-uid``, so that only this Job's pods match it."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    name, uid = str(job["metadata"].get("name") or ""), str(job["metadata"].get("uid") or "")
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in JOB_UID_LABELS:
        labels.setdefault(key, uid)
    selector = spec.get("selector") or {}
    spec["selector"] = selector
    selector.setdefault("matchLabels", {}).setdefault(JOB_UID_LABELS[1], uid)


def _dict_at(obj: Any, *path: str) -> dict[str, Any] | None:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, dict) else None
