"""What the sandbox's API server does to Jobs on every write (gitmoor.sandbox.objects)."""

from __future__ import annotations

from typing import Any

from gitmoor.sandbox.objects import apply_defaults, generate_job_selector
from gitmoor.sandbox.schema import ResourceTable

JOBS = ResourceTable.builtin().by_kind("batch", "v1", "Job")


def job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": "apps", "uid": "u-1"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}, **spec},
    }


def defaulted(**spec: Any) -> dict[str, Any]:
    assert JOBS is not None
    obj = job(**spec)
    apply_defaults(JOBS, obj)
    return obj


def test_a_job_of_one_pod_is_defaulted_to_one_completion() -> None:
    spec = defaulted()["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert (spec["suspend"], spec["manualSelector"]) == (False, False)
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"


def test_a_parallel_job_without_completions_is_a_work_queue() -> None:
    spec = defaulted(parallelism=3)["spec"]
    assert "completions" not in spec
    assert spec["parallelism"] == 3
    assert defaulted(completions=4)["spec"]["parallelism"] == 1


def test_defaults_that_follow_other_fields() -> None:
    assert defaulted(backoffLimitPerIndex=1)["spec"]["backoffLimit"] == 2**31 - 1
    with_policy = defaulted(podFailurePolicy={"rules": []})["spec"]
    assert with_policy["podReplacementPolicy"] == "Failed"


def test_a_job_without_labels_takes_its_templates() -> None:
    labelled = defaulted(template={"metadata": {"labels": {"app": "x"}}, "spec": {}})
    assert labelled["metadata"]["labels"] == {"app": "x"}
    own = job(template={"metadata": {"labels": {"app": "x"}}, "spec": {}})
    own["metadata"]["labels"] = {"team": "y"}
    assert JOBS is not None
    apply_defaults(JOBS, own)
    assert own["metadata"]["labels"] == {"team": "y"}


def test_the_selector_matches_the_uid_and_the_template_carries_it() -> None:
    obj = job(template={"metadata": {"labels": {"job-name": "mine"}}, "spec": {}})
    generate_job_selector(obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert obj["spec"]["template"]["metadata"]["labels"] == {
        "job-name": "mine",  # set by the template: kept
        "batch.kubernetes.io/job-name": "once",
        "controller-uid": "u-1",
        "batch.kubernetes.io/controller-uid": "u-1",
    }


def test_a_manual_selector_is_not_touched() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"run": "x"}})
    generate_job_selector(obj)
    assert obj == job(manualSelector=True, selector={"matchLabels": {"run": "x"}})
