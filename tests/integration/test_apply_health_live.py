"""Health of Deployments as the sandbox's simulated controllers move them, read with kubectl."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.apply.health import Health, Status, health

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]
pytestmark = pytest.mark.integration


NEVER_READY = """\
  annotations: {sandbox.gitmoor.dev/fail: never-ready}
"""


def deployment(name: str, *, image: str = "nginx:1.27", extra: str = "", spec: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
{extra}spec:
  replicas: 2
{spec}  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
"""


def apply(sandbox: Sandbox, manifest: str) -> Any:
    """The object as the API server stored it, before any controller saw it."""
    return json.loads(sandbox.kubectl("apply", "-f", "-", "-o", "json", stdin=manifest).stdout)


def healths_until(sandbox: Sandbox, name: str, last: Status, timeout: float = 30.0) -> list[Health]:
    """Every health of deployment ``name`` seen until it is ``last``."""
    seen: list[Health] = []
    deadline = time.monotonic() + timeout
    while True:
        live = json.loads(sandbox.kubectl("get", "deployment", name, "-o", "json").stdout)
        seen.append(health(live))
        if seen[-1].status is last:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"deployment {name} never became {last}; seen: {seen}")
        time.sleep(0.1)


def test_deployment_goes_from_in_progress_to_current_and_again_on_a_new_template(
    sandbox: Sandbox,
) -> None:
    created = apply(sandbox, deployment("web"))
    assert health(created) == Health(Status.IN_PROGRESS, "Replicas: 0/2")
    seen = healths_until(sandbox, "web", Status.CURRENT)
    assert seen[-1] == Health(Status.CURRENT, "Deployment is available. Replicas: 2")
    assert all(h.status is Status.IN_PROGRESS for h in seen[:-1])

    updated = apply(sandbox, deployment("web", image="nginx:1.28"))
    assert updated["metadata"]["generation"] == 2
    assert health(updated) == Health(
        Status.IN_PROGRESS, "Deployment generation is 2, but latest observed generation is 1"
    )
    seen = healths_until(sandbox, "web", Status.CURRENT)
    assert all(h.status is not Status.FAILED for h in seen)


def test_never_ready_deployment_is_never_current_and_fails_at_its_deadline(
    sandbox: Sandbox,
) -> None:
    created = apply(
        sandbox, deployment("stuck", extra=NEVER_READY, spec="  progressDeadlineSeconds: 2\n")
    )
    assert health(created).status is Status.IN_PROGRESS
    seen = healths_until(sandbox, "stuck", Status.FAILED)
    assert seen[-1] == Health(Status.FAILED, "Progress deadline exceeded")
    assert Status.CURRENT not in {h.status for h in seen}
