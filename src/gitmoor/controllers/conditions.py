"""Status conditions the way Flux writes them (metav1.Condition, kstatus-compatible).

``Ready`` says how the last reconcile ended; ``Reconciling`` is True while work is under
way (or being retried); ``Stalled`` is True when retrying cannot help until the object or
its input changes; ``Healthy`` reports the health checks of a Kustomization. A condition's
``lastTransitionTime`` only moves when its status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTHY = "Healthy"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
FETCH_FAILED = "FetchFailed"

# Reasons, as Flux's controllers use them.
SUCCEEDED = "Succeeded"
RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
RECONCILIATION_FAILED = "ReconciliationFailed"
PROGRESSING = "Progressing"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
ARTIFACT_FAILED = "ArtifactFailed"
BUILD_FAILED = "BuildFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
GIT_OPERATION_FAILED = "GitOperationFailed"
SUSPENDED = "Suspended"
INVALID_SPEC = "InvalidSpec"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def is_true(obj: Mapping[str, Any], kind: str = READY) -> bool:
    found = find((obj.get("status") or {}).get("conditions"), kind)
    return found is not None and found.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    kind: str,
    status: bool,
    reason: str,
    message: str,
    *,
    generation: int | None,
) -> list[dict[str, Any]]:
    """``conditions`` with ``kind`` set; the others kept, Ready first as Flux orders them."""
    text = "True" if status else "False"
    previous = find(conditions, kind)
    moved = previous is None or previous.get("status") != text
    since = now() if previous is None or moved else previous.get("lastTransitionTime", now())
    condition: dict[str, Any] = {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    rest = [dict(c) for c in conditions or [] if c.get("type") != kind]
    merged = [condition, *rest]
    return sorted(merged, key=lambda c: (c["type"] != READY, c["type"]))


def remove(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> list[dict[str, Any]]:
    return [dict(c) for c in conditions or [] if c.get("type") != kind]
