"""Status errors of the sandbox (gitmoor.sandbox.errors) as kube-apiserver words them."""

from __future__ import annotations

from gitmoor.sandbox.errors import invalid

REQUIRED = {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.a"}
OTHER = {**REQUIRED, "field": "spec.b"}


def test_one_cause_is_written_without_brackets() -> None:
    error = invalid("Deployment", "apps", "web", [REQUIRED])
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == 'Deployment.apps "web" is invalid: spec.a: Required value'
    assert error.details == {"name": "web", "group": "apps", "kind": "Deployment",
                             "causes": [REQUIRED]}  # fmt: skip


def test_several_causes_are_bracketed_and_repeated_ones_written_once() -> None:
    error = invalid("Deployment", "apps", "web", [REQUIRED, OTHER, REQUIRED])
    assert error.message == (
        'Deployment.apps "web" is invalid: [spec.a: Required value, spec.b: Required value]'
    )
    assert error.details is not None
    assert error.details["causes"] == [REQUIRED, OTHER, REQUIRED]


def test_the_same_cause_twice_is_one_cause() -> None:
    error = invalid("Deployment", "apps", "web", [REQUIRED, REQUIRED])
    assert error.message == 'Deployment.apps "web" is invalid: spec.a: Required value'


def test_the_core_group_names_the_kind_alone_and_leaves_the_group_out() -> None:
    error = invalid("ConfigMap", "", "settings", [REQUIRED])
    assert error.message == 'ConfigMap "settings" is invalid: spec.a: Required value'
    assert error.status()["details"] == {"name": "settings", "kind": "ConfigMap",
                                         "causes": [REQUIRED]}  # fmt: skip


def test_without_a_kind_or_name_only_the_causes_are_detailed() -> None:
    cause = {"reason": "FieldValueInvalid", "message": "Invalid value: 1: bad", "field": "patch"}
    error = invalid("", "", "", [cause])
    assert error.message == ' "" is invalid: patch: Invalid value: 1: bad'
    assert error.details == {"causes": [cause]}


def test_no_causes_no_colon() -> None:
    assert invalid("Pod", "", "p", []).message == 'Pod "p" is invalid'
