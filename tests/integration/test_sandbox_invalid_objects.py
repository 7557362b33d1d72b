"""Field types and CRD schemas checked before anything is stored, as the API server does:
the real kubectl and raw requests against the sandbox."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

DEPLOYMENTS = "/apis/apps/v1/namespaces/apps/deployments"
WIDGETS = "/apis/example.com/v1/namespaces/apps/widgets"
APPLY = "application/apply-patch+yaml"
REPLICAS_DECODE_ERROR = (
    'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
    "string into Go struct field DeploymentSpec.spec.replicas of type int32"
)
REPLICAS_TYPED_ERROR = (
    "failed to create typed patch object (apps/web; apps/v1, Kind=Deployment): "
    ".spec.replicas: expected numeric (int or float), got string"
)


def deployment(replicas: Any = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
            **spec,
        },
    }


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "label": {"type": "string", "pattern": "^[a-z]+$"},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "since": {"type": "string", "format": "date-time"},
                                    "note": {"type": "string"},
                                    "hint": {"type": "string", "nullable": True},
                                    "tags": {
                                        "type": "array",
                                        "maxItems": 2,
                                        "items": {"type": "string", "maxLength": 5},
                                    },
                                    "limits": {
                                        "type": "object",
                                        "additionalProperties": {"type": "integer"},
                                    },
                                    "extra": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": spec,
    }


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.fixture
def apps(sandbox: Sandbox) -> Sandbox:
    sandbox.kubectl("create", "namespace", "apps")
    return sandbox


@pytest.fixture
def widgets(apps: Sandbox) -> Sandbox:
    apps.kubectl("apply", "-f", "-", stdin=json.dumps(WIDGET_CRD))
    apps.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com")
    return apps


def stored(sandbox: Sandbox, path: str) -> Any:
    code, found = sandbox.request("GET", path)
    return found if code == 200 else None


# --- built-in kinds: the real kubectl ---------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("create", "-f", "-"), f'error when creating "STDIN": {REPLICAS_DECODE_ERROR}'),
        (("create", "--dry-run=server", "-f", "-"), REPLICAS_DECODE_ERROR),
        (("apply", "-f", "-"), f'error when creating "STDIN": {REPLICAS_DECODE_ERROR}'),
        (("apply", "--server-side", "-f", "-"), f"Error from server: {REPLICAS_TYPED_ERROR}"),
        (("apply", "--server-side", "--dry-run=server", "-f", "-"), REPLICAS_TYPED_ERROR),
    ],
)
def test_kubectl_writes_of_a_wrong_type_are_refused(
    apps: Sandbox, command: tuple[str, ...], expected: str
) -> None:
    done = apps.kubectl(*command, stdin=json.dumps(deployment("many")), check=False)
    assert done.returncode == 1
    assert expected in done.stderr
    assert stored(apps, f"{DEPLOYMENTS}/web") is None


def test_kubectl_client_side_apply_over_a_stored_object_refuses_the_patch(apps: Sandbox) -> None:
    apps.kubectl("apply", "-f", "-", stdin=json.dumps(deployment(2)))
    done = apps.kubectl("apply", "-f", "-", stdin=json.dumps(deployment("many")), check=False)
    assert done.returncode == 1
    assert "The request is invalid: patch: Invalid value: " in done.stderr
    assert "spec:map[replicas:many]" in done.stderr
    assert done.stderr.strip().endswith("unrecognized type: int32")
    assert stored(apps, f"{DEPLOYMENTS}/web")["spec"]["replicas"] == 2


def test_kubectl_accepts_what_decodes(apps: Sandbox) -> None:
    """YAML floats that are integers, int-or-string and quantities in either form."""
    manifest = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  replicas: 3.0
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: "50%"}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        resources: {limits: {cpu: 1, memory: 1.5}, requests: {cpu: 500m, memory: 64Mi}}
        readinessProbe: {httpGet: {port: http}}
        livenessProbe: {httpGet: {port: 8080}}
"""
    apps.kubectl("create", "-f", "-", stdin=manifest)
    apps.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest.replace("3.0", "4")
    )
    got = stored(apps, f"{DEPLOYMENTS}/web")
    assert got["spec"]["replicas"] == 4
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": "50%"}


# --- built-in kinds: raw requests -------------------------------------------------------


@pytest.mark.parametrize("dry_run", ["", "?dryRun=All"])
def test_create_of_a_wrong_type_is_a_bad_request(apps: Sandbox, dry_run: str) -> None:
    code, status = apps.request("POST", DEPLOYMENTS + dry_run, body(deployment("many")))
    assert (code, status["reason"], status["message"]) == (400, "BadRequest", REPLICAS_DECODE_ERROR)
    assert "details" not in status
    assert stored(apps, f"{DEPLOYMENTS}/web") is None


def test_update_of_a_wrong_type_is_a_bad_request(apps: Sandbox) -> None:
    code, created = apps.request("POST", DEPLOYMENTS, body(deployment(2)))
    assert code == 201
    created["spec"]["template"]["spec"]["containers"][0]["image"] = 7
    code, status = apps.request("PUT", f"{DEPLOYMENTS}/web", body(created))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "number into Go struct field Container.spec.template.spec.containers.image of type string"
    )
    image = stored(apps, f"{DEPLOYMENTS}/web")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "nginx"


def test_secret_data_must_be_base64(apps: Sandbox) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    path = "/api/v1/namespaces/apps/secrets"
    code, status = apps.request("POST", path, body({**secret, "data": {"k": "not base64"}}))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )
    code, _ = apps.request("POST", path, body({**secret, "data": {"k": "aGVsbG8="}}))
    assert code == 201


@pytest.mark.parametrize(
    ("content_type", "patch", "shown"),
    [
        (
            "application/merge-patch+json",
            {"spec": {"replicas": "many"}},
            '"replicas":"many"',
        ),
        (
            "application/json-patch+json",
            [{"op": "replace", "path": "/spec/replicas", "value": "many"}],
            '"replicas":"many"',
        ),
    ],
)
@pytest.mark.parametrize("dry_run", ["", "?dryRun=All"])
def test_json_and_merge_patches_to_a_wrong_type_are_invalid(
    apps: Sandbox, content_type: str, patch: Any, shown: str, dry_run: str
) -> None:
    assert apps.request("POST", DEPLOYMENTS, body(deployment(2)))[0] == 201
    code, status = apps.request(
        "PATCH", f"{DEPLOYMENTS}/web{dry_run}", body(patch), content_type=content_type
    )
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert shown in status["message"].replace('\\"', '"')
    detail = (
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
        "of type int32"
    )
    assert status["message"].endswith(detail)
    [cause] = status["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "patch")
    assert cause["message"].endswith(detail)
    assert stored(apps, f"{DEPLOYMENTS}/web")["spec"]["replicas"] == 2


def test_strategic_merge_patch_to_a_wrong_type_is_invalid(apps: Sandbox) -> None:
    assert apps.request("POST", DEPLOYMENTS, body(deployment(2)))[0] == 201
    code, status = apps.request(
        "PATCH",
        f"{DEPLOYMENTS}/web",
        body({"spec": {"paused": "yes"}}),
        content_type="application/strategic-merge-patch+json",
    )
    assert (code, status["reason"]) == (422, "Invalid")
    message = 'Invalid value: "map[spec:map[paused:yes]]": unrecognized type: bool'
    assert status["message"] == f' "" is invalid: patch: {message}'
    assert status["details"] == {
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]
    }
    assert "paused" not in stored(apps, f"{DEPLOYMENTS}/web")["spec"]


@pytest.mark.parametrize("dry_run", ["&dryRun=All", ""])
def test_server_side_apply_of_wrong_types_fails_listing_every_field(
    apps: Sandbox, dry_run: str
) -> None:
    applied = deployment("many", paused="yes")
    code, status = apps.request(
        "PATCH",
        f"{DEPLOYMENTS}/web?fieldManager=test{dry_run}",
        body(applied),
        content_type=APPLY,
    )
    assert code == 500
    assert "reason" not in status  # a plain error: the API server gives no reason
    assert status["message"] == (
        "failed to create typed patch object (apps/web; apps/v1, Kind=Deployment): errors:\n"
        "  .spec.replicas: expected numeric (int or float), got string\n"
        "  .spec.paused: expected boolean, got &{yes}"
    )
    assert stored(apps, f"{DEPLOYMENTS}/web") is None


# --- custom resources -------------------------------------------------------------------


def test_kubectl_create_of_a_custom_resource_of_a_wrong_type(widgets: Sandbox) -> None:
    commands = (
        ("create", "-f", "-"),
        ("apply", "-f", "-"),
        ("create", "--dry-run=server", "-f", "-"),
    )
    for command in commands:
        done = widgets.kubectl(*command, stdin=json.dumps(widget(size="string")), check=False)
        assert done.returncode == 1
        assert (
            'The Widget "w" is invalid: spec.size: Invalid value: "string": spec.size in body '
            'must be of type integer: "string"'
        ) in done.stderr
    assert stored(widgets, f"{WIDGETS}/w") is None


@pytest.mark.parametrize("dry_run", ["", "?dryRun=All"])
def test_create_of_an_invalid_custom_resource_names_every_field(
    widgets: Sandbox, dry_run: str
) -> None:
    invalid = widget(size=0, color="green", label="Web", port=True, tags=["a", "b", "toolong"])
    code, status = widgets.request("POST", WIDGETS + dry_run, body(invalid))
    assert (code, status["reason"]) == (422, "Invalid")
    causes = [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: spec.size in body should be greater than or equal to 1",
            "field": "spec.size",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "green": supported values: "red", "blue"',
            "field": "spec.color",
        },
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: \"Web\": spec.label in body should match '^[a-z]+$'",
            "field": "spec.label",
        },
        {
            "reason": "FieldValueTypeInvalid",
            "message": (
                'Invalid value: "boolean": spec.port in body must be of type integer,string: '
                '"boolean"'
            ),
            "field": "spec.port",
        },
        {
            "reason": "FieldValueTooLong",
            "message": "Too long: may not be longer than 5",
            "field": "spec.tags[2]",
        },
        {
            "reason": "FieldValueTooMany",
            "message": "Too many: 3: must have at most 2 items",
            "field": "spec.tags",
        },
    ]
    assert status["details"] == {
        "name": "w",
        "group": "example.com",
        "kind": "Widget",
        "causes": causes,
    }
    listed = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    assert status["message"] == f'Widget.example.com "w" is invalid: [{listed}]'
    assert stored(widgets, f"{WIDGETS}/w") is None


def test_required_fields_formats_and_maps(widgets: Sandbox) -> None:
    invalid = widget(since="yesterday", limits={"cpu": "lots"})
    code, status = widgets.request("POST", WIDGETS, body(invalid))
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": (
                'Invalid value: "yesterday": spec.since in body must be of type date-time: '
                '"yesterday"'
            ),
            "field": "spec.since",
        },
        {
            "reason": "FieldValueTypeInvalid",
            "message": (
                'Invalid value: "string": spec.limits.cpu in body must be of type integer: "string"'
            ),
            "field": "spec.limits.cpu",
        },
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"},
    ]


def test_valid_custom_resources_are_stored_with_non_nullable_nulls_dropped(
    widgets: Sandbox,
) -> None:
    valid = widget(
        size=2.0,
        port="http",
        since="2024-05-01T10:00:00Z",
        note=None,
        hint=None,
        extra={"anything": [1, {"goes": True}]},
    )
    code, created = widgets.request("POST", WIDGETS, body(valid))
    assert code == 201
    assert created["spec"] == {
        "size": 2.0,
        "port": "http",
        "since": "2024-05-01T10:00:00Z",
        "hint": None,
        "extra": {"anything": [1, {"goes": True}]},
    }


def test_patches_and_status_writes_of_custom_resources_are_validated(widgets: Sandbox) -> None:
    assert widgets.request("POST", WIDGETS, body(widget(size=3)))[0] == 201
    code, status = widgets.request(
        "PATCH",
        f"{WIDGETS}/w",
        body({"spec": {"size": 11}}),
        content_type="application/merge-patch+json",
    )
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'Widget.example.com "w" is invalid: spec.size: Invalid value: 11: spec.size in body '
        "should be less than or equal to 10"
    )
    code, status = widgets.request(
        "PATCH",
        f"{WIDGETS}/w/status",
        body({"status": {"ready": "yes"}}),
        content_type="application/merge-patch+json",
    )
    assert (code, status["details"]["causes"][0]["field"]) == (422, "status.ready")
    assert stored(widgets, f"{WIDGETS}/w")["spec"] == {"size": 3}


@pytest.mark.parametrize("dry_run", ["&dryRun=All", ""])
def test_server_side_apply_of_custom_resources(widgets: Sandbox, dry_run: str) -> None:
    path = f"{WIDGETS}/w?fieldManager=test{dry_run}"
    code, status = widgets.request("PATCH", path, body(widget(size="big")), content_type=APPLY)
    assert (code, "reason" in status) == (500, False)
    assert status["message"] == (
        "failed to create typed patch object (apps/w; example.com/v1, Kind=Widget): "
        ".spec.size: expected numeric (int or float), got string"
    )
    # Of the right type but out of bounds: the schema's validation answers.
    code, status = widgets.request("PATCH", path, body(widget(size=20)), content_type=APPLY)
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.size"
    assert stored(widgets, f"{WIDGETS}/w") is None
    done = widgets.kubectl(
        "apply", "--server-side", "-f", "-", stdin=json.dumps(widget(size=20)), check=False
    )
    assert done.returncode == 1
    assert "spec.size in body should be less than or equal to 10" in done.stderr


def test_values_a_tightened_schema_refuses_may_stay_while_unchanged(widgets: Sandbox) -> None:
    """CRD validation ratcheting: an update keeps a value that was valid when stored."""
    assert widgets.request("POST", WIDGETS, body(widget(size=8)))[0] == 201
    crd = json.loads(json.dumps(WIDGET_CRD))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["size"]["maximum"] = 5
    widgets.kubectl("apply", "-f", "-", stdin=json.dumps(crd))
    merge = "application/merge-patch+json"
    code, updated = widgets.request(
        "PATCH", f"{WIDGETS}/w", body({"spec": {"color": "red"}}), content_type=merge
    )
    assert (code, updated["spec"]) == (200, {"size": 8, "color": "red"})
    code, status = widgets.request(
        "PATCH", f"{WIDGETS}/w", body({"spec": {"size": 7}}), content_type=merge
    )
    assert (code, status["details"]["causes"][0]["field"]) == (422, "spec.size")
