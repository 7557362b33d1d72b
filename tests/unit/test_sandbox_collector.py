"""What a DELETE leaves of an object, by propagation policy and finalizers."""

from __future__ import annotations

from typing import Any

import pytest

from gitmoor.sandbox.collector import mark_for_deletion
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import ResourceInfo, ResourceTable

NOW = "2025-03-04T10:00:00Z"
TABLE = ResourceTable.builtin()


def resource(group: str, plural: str) -> ResourceInfo:
    info = TABLE.lookup(group, "v1", plural)
    assert info is not None
    return info


def obj(*finalizers: str, deleting: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "default", "uid": "u-1"}
    if finalizers:
        metadata["finalizers"] = list(finalizers)
    if deleting:
        metadata["deletionTimestamp"] = deleting
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata}


DEPLOYMENTS = resource("apps", "deployments")


def test_background_or_nothing_asked_removes_at_once() -> None:
    assert mark_for_deletion(DEPLOYMENTS, obj(), {}, now=NOW) is None
    options = {"propagationPolicy": "Background"}
    assert mark_for_deletion(DEPLOYMENTS, obj(), options, now=NOW) is None


@pytest.mark.parametrize(
    ("options", "finalizer"),
    [
        ({"propagationPolicy": "Foreground"}, "foregroundDeletion"),
        ({"propagationPolicy": "Orphan"}, "orphan"),
        ({"orphanDependents": True}, "orphan"),
    ],
)
def test_foreground_and_orphan_hold_the_object_with_a_finalizer(
    options: dict[str, Any], finalizer: str
) -> None:
    marked = mark_for_deletion(DEPLOYMENTS, obj("example.com/keep"), options, now=NOW)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["example.com/keep", finalizer]
    assert marked["metadata"]["deletionTimestamp"] == NOW
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0


def test_other_finalizers_hold_a_background_deletion() -> None:
    marked = mark_for_deletion(DEPLOYMENTS, obj("example.com/keep"), {}, now=NOW)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["example.com/keep"]


def test_a_second_delete_may_change_the_policy_but_not_the_timestamp() -> None:
    live = obj("orphan", deleting="2025-01-01T00:00:00Z")
    options = {"propagationPolicy": "Foreground"}
    marked = mark_for_deletion(DEPLOYMENTS, live, options, now=NOW)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert marked["metadata"]["deletionTimestamp"] == "2025-01-01T00:00:00Z"


def test_a_finalizer_the_object_has_chooses_the_policy_when_none_is_asked() -> None:
    marked = mark_for_deletion(DEPLOYMENTS, obj("orphan"), {}, now=NOW)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["orphan"]
    assert (
        mark_for_deletion(DEPLOYMENTS, obj("orphan"), {"orphanDependents": False}, now=NOW) is None
    )


def test_replication_controllers_orphan_by_default() -> None:
    controllers = resource("", "replicationcontrollers")
    marked = mark_for_deletion(controllers, obj(), {}, now=NOW)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["orphan"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"propagationPolicy": "Sideways"}, "propagationPolicy"),
        ({"propagationPolicy": "Orphan", "orphanDependents": True}, "orphanDependents"),
    ],
)
def test_invalid_options_are_422(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        mark_for_deletion(DEPLOYMENTS, obj(), options, now=NOW)
    assert caught.value.code == 422
    assert caught.value.reason == "Invalid"
    assert caught.value.details is not None
    assert caught.value.details["causes"][0]["field"] == field
