"""The scale subresource refusing what kube-apiserver refuses, in its words."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

SCALE = "/apis/apps/v1/namespaces/default/deployments/web/scale"


def test_scale_refuses_negative_and_non_integer_replicas(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "deployment", "web", "--image=nginx:1")
    merge = "application/merge-patch+json"

    code, status = sandbox.request("PATCH", SCALE, b'{"spec":{"replicas":-1}}', content_type=merge)
    assert (code, status["reason"]) == (422, "Invalid")
    message = "Invalid value: -1: must be greater than or equal to 0"
    assert status["message"] == f'Scale.autoscaling "web" is invalid: spec.replicas: {message}'
    assert status["details"] == {
        "name": "web", "group": "autoscaling", "kind": "Scale",
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.replicas"}],
    }  # fmt: skip

    code, status = sandbox.request("PATCH", SCALE, b'{"spec":{"replicas":"2"}}', content_type=merge)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert (
        "cannot unmarshal string into Go struct field ScaleSpec.spec.replicas" in status["message"]
    )

    code, scale = sandbox.request("PATCH", SCALE, json.dumps({"spec": {"replicas": 3}}).encode(),
                                  content_type=merge)  # fmt: skip
    assert (code, scale["spec"]["replicas"]) == (200, 3)
