"""Jobs as the API server completes them on create: the selector and pod template labels
it generates unless the Job brings its own, the defaults it fills in, and the simulated
Job controller's pods matching the selector; seen through the real kubectl."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

MANUAL = """\
apiVersion: batch/v1
kind: Job
metadata: {name: manual, namespace: apps}
spec:
  manualSelector: true
  selector: {matchLabels: {run: manual}}
  template:
    metadata: {labels: {run: manual}}
    spec:
      restartPolicy: Never
      containers: [{name: task, image: "busybox:1"}]
"""
PARALLEL = """\
apiVersion: batch/v1
kind: Job
metadata: {name: queue, namespace: apps}
spec:
  parallelism: 2
  template:
    metadata: {labels: {app: queue}}
    spec:
      restartPolicy: OnFailure
      containers: [{name: task, image: "busybox:1"}]
"""


def get(sandbox: Sandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def pod_names(sandbox: Sandbox, selector: str) -> list[str]:
    pods = get(sandbox, "pods", "-n", "apps", "-l", selector)["items"]
    return sorted(p["metadata"]["name"] for p in pods)


def test_a_job_gets_a_selector_of_its_own_uid(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "job", "once", "-n", "apps", "--image=busybox:1")
    job = get(sandbox, "job", "once", "-n", "apps", "--show-managed-fields")
    uid = job["metadata"]["uid"]
    spec = job["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "once",
        "controller-uid": uid,
        "job-name": "once",
    }
    defaults = {key: spec[key] for key in ("completions", "parallelism", "backoffLimit",
                                           "completionMode", "suspend", "manualSelector",
                                           "podReplacementPolicy")}  # fmt: skip
    assert defaults == {
        "completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
        "suspend": False, "manualSelector": False, "podReplacementPolicy": "TerminatingOrFailed",
    }  # fmt: skip
    # The registry adds the selector after the field manager has recorded the create.
    [created] = [e for e in job["metadata"]["managedFields"] if e["manager"] == "kubectl-create"]
    assert "f:manualSelector" in created["fieldsV1"]["f:spec"]
    assert "f:selector" not in created["fieldsV1"]["f:spec"]

    sandbox.kubectl("wait", "--for=condition=complete", "job/once", "-n", "apps", "--timeout=30s")
    selected = pod_names(sandbox, f"batch.kubernetes.io/controller-uid={uid}")
    assert len(selected) == 1
    assert pod_names(sandbox, "job-name=once") == selected


def test_a_parallel_job_keeps_its_labels_and_has_no_completion_count(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("apply", "-f", "-", stdin=PARALLEL)
    job = get(sandbox, "job", "queue", "-n", "apps")
    assert "completions" not in job["spec"]
    assert job["spec"]["parallelism"] == 2
    # The Job takes its template's labels when it has none, before the generated ones.
    assert job["metadata"]["labels"] == {"app": "queue"}
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "queue"
    # Applying the same manifest again changes nothing the API server would refuse.
    again = sandbox.kubectl("apply", "-f", "-", stdin=PARALLEL)
    assert "unchanged" in again.stdout
    assert get(sandbox, "job", "queue", "-n", "apps")["spec"]["selector"] == job["spec"]["selector"]


def test_a_manual_selector_is_left_as_it_is(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("apply", "--server-side", "-f", "-", stdin=MANUAL)
    job = get(sandbox, "job", "manual", "-n", "apps")
    assert job["spec"]["selector"] == {"matchLabels": {"run": "manual"}}
    assert job["spec"]["template"]["metadata"]["labels"] == {"run": "manual"}
    sandbox.kubectl("wait", "--for=condition=complete", "job/manual", "-n", "apps", "--timeout=30s")
    [pod] = get(sandbox, "pods", "-n", "apps")["items"]
    assert pod["metadata"]["labels"] == {"run": "manual"}
    assert pod_names(sandbox, "run=manual") == [pod["metadata"]["name"]]
