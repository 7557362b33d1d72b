"""Type and schema validation of the sandbox (gitmoor.sandbox.validation): pure functions."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from sandbox_samples import widget_crd

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import ResourceInfo, ResourceTable, SchemaNode, Schemas
from gitmoor.sandbox.validation import (
    base64_error,
    check_applied,
    check_body,
    check_patched,
    conversion_error,
    decode_error,
    prune_nulls,
    quantity_error,
    schema_causes,
    typed_errors,
    validate_custom_resource,
)

T = TypeVar("T")

SCHEMAS = Schemas.load()


def known(value: T | None) -> T:
    assert value is not None
    return value


DEPLOYMENT = known(SCHEMAS.for_kind("apps", "v1", "Deployment"))
SECRET = known(SCHEMAS.for_kind("", "v1", "Secret"))
DEPLOYMENTS = known(ResourceTable.builtin().by_kind("apps", "v1", "Deployment"))


def node(**schema: Any) -> SchemaNode:
    """A CRD schema with one property ``spec.f`` described by ``schema``."""
    root = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"f": schema}}},
    }
    return SchemaNode(root, {})


def causes(schema: dict[str, Any], value: Any) -> list[tuple[str, str, str]]:
    found = schema_causes(node(**schema), {"spec": {"f": value}})
    return [(c["reason"], c["field"], c["message"]) for c in found]


def invalid(message: str) -> list[tuple[str, str, str]]:
    return [("FieldValueInvalid", "spec.f", message)]


def type_invalid(got: str, expected: str) -> list[tuple[str, str, str]]:
    message = f'Invalid value: "{got}": spec.f in body must be of type {expected}: "{got}"'
    return [("FieldValueTypeInvalid", "spec.f", message)]


# --- CRD structural schemas: kube-openapi's messages ----------------------------------


@pytest.mark.parametrize(
    ("declared", "value", "got"),
    [
        ("integer", "string", "string"),
        ("integer", 1.5, "number"),
        ("integer", True, "boolean"),
        ("number", "1", "string"),
        ("string", 1, "integer"),
        ("string", {}, "object"),
        ("boolean", "true", "string"),
        ("object", [], "array"),
        ("array", {}, "object"),
    ],
)
def test_a_value_of_another_type_is_type_invalid(declared: str, value: Any, got: str) -> None:
    assert causes({"type": declared}, value) == type_invalid(got, declared)


@pytest.mark.parametrize(
    ("declared", "value"),
    [("integer", 3), ("integer", 2.0), ("number", 3), ("number", 0.5), ("boolean", False),
     ("string", ""), ("object", {}), ("array", [])],
)  # fmt: skip
def test_values_of_the_type_pass(declared: str, value: Any) -> None:
    assert causes({"type": declared}, value) == []


def test_int_or_string_takes_either() -> None:
    schema = {"x-kubernetes-int-or-string": True}
    assert causes(schema, 8080) == []
    assert causes(schema, "http") == []
    assert causes(schema, [1]) == type_invalid("array", "integer,string")


def test_null_needs_nullable() -> None:
    assert causes({"type": "string"}, None) == type_invalid("null", "string")
    assert causes({"type": "string", "nullable": True}, None) == []


def test_enum() -> None:
    assert causes({"type": "string", "enum": ["a", "b"]}, "a") == []
    assert causes({"type": "string", "enum": ["a", "b"]}, "c") == [
        ("FieldValueNotSupported", "spec.f", 'Unsupported value: "c": supported values: "a", "b"')
    ]
    assert causes({"type": "integer", "enum": [1, 2]}, 2.0) == []
    assert causes({"type": "integer", "enum": [1, 2]}, 3) == [
        ("FieldValueNotSupported", "spec.f", 'Unsupported value: 3: supported values: "1", "2"')
    ]
    assert causes({"type": "boolean", "enum": [True]}, 1) != []


def test_required() -> None:
    root = {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["size", "name"], "properties": {"size": {"type": "integer"}},
    }}}  # fmt: skip
    assert schema_causes(SchemaNode(root, {}), {"spec": {"size": 1}}) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.name"}
    ]
    assert schema_causes(SchemaNode(root, {}), {}) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec"}
    ]


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ({"minimum": 1}, 0,
         "Invalid value: 0: spec.f in body should be greater than or equal to 1"),
        ({"minimum": 1, "exclusiveMinimum": True}, 1,
         "Invalid value: 1: spec.f in body should be greater than 1"),
        ({"maximum": 10}, 11,
         "Invalid value: 11: spec.f in body should be less than or equal to 10"),
        ({"maximum": 10, "exclusiveMaximum": True}, 10,
         "Invalid value: 10: spec.f in body should be less than 10"),
        ({"maximum": 1.5}, 2.5,
         "Invalid value: 2.5: spec.f in body should be less than or equal to 1.5"),
        ({"maximum": 1000000}, 2e6,
         "Invalid value: 2e+06: spec.f in body should be less than or equal to 1e+06"),
        ({"multipleOf": 5}, 7, "Invalid value: 7: spec.f in body should be a multiple of 5"),
    ],
)  # fmt: skip
def test_numeric_bounds(schema: dict[str, Any], value: Any, message: str) -> None:
    assert causes({"type": "number", **schema}, value) == invalid(message)


def test_an_integer_meets_bounds_truncated_to_integers() -> None:
    assert causes({"type": "integer", "minimum": 1.5}, 1) == []
    assert causes({"type": "number", "minimum": 1.5}, 1.0) == invalid(
        "Invalid value: 1: spec.f in body should be greater than or equal to 1.5"
    )
    assert causes({"type": "number", "multipleOf": 0.5}, 1.5) == []


def test_string_length_and_pattern() -> None:
    assert causes({"type": "string", "maxLength": 3}, "long") == [
        ("FieldValueTooLong", "spec.f", "Too long: may not be longer than 3")
    ]
    assert causes({"type": "string", "maxLength": 3}, "äöü") == []  # runes, not bytes
    assert causes({"type": "string", "minLength": 2}, "a") == invalid(
        'Invalid value: "a": spec.f in body should be at least 2 chars long'
    )
    assert causes({"type": "string", "pattern": "^[a-z]+$"}, "Abc") == invalid(
        "Invalid value: \"Abc\": spec.f in body should match '^[a-z]+$'"
    )
    # Only the first failing string check is reported.
    assert len(causes({"type": "string", "maxLength": 1, "pattern": "^x$"}, "ab")) == 1


def test_items_and_properties_counts() -> None:
    items = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}
    assert causes(items, [1]) == invalid(
        "Invalid value: 1: spec.f in body should have at least 2 items"
    )
    assert causes(items, [1, 2, 3, 4]) == [
        ("FieldValueTooMany", "spec.f", "Too many: 4: must have at most 3 items")
    ]
    assert causes(items, [1, "x"]) == [
        ("FieldValueTypeInvalid", "spec.f[1]",
         'Invalid value: "string": spec.f[1] in body must be of type integer: "string"')
    ]  # fmt: skip
    counted = {"type": "object", "minProperties": 1, "maxProperties": 2}
    assert causes(counted, {}) == invalid(
        "Invalid value: 0: spec.f in body should have at least 1 properties"
    )
    assert causes(counted, {"a": 1, "b": 2, "c": 3}) == [
        ("FieldValueTooMany", "spec.f", "Too many: 3: must have at most 2 items")
    ]


def test_map_values_are_validated_under_their_key() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    assert causes(schema, {"cpu": -1, "memory": 2}) == [
        ("FieldValueInvalid", "spec.f.cpu",
         "Invalid value: -1: spec.f.cpu in body should be greater than or equal to 0")
    ]  # fmt: skip


def test_formats() -> None:
    # Integer formats bound nothing; a fraction is refused in the format's name.
    assert causes({"type": "integer", "format": "int32"}, 2**40) == []
    assert causes({"type": "integer", "format": "int32"}, 1.5) == type_invalid("float64", "int32")
    assert causes({"type": "string", "format": "date-time"}, "2024-02-29T23:59:59Z") == []
    assert causes({"type": "string", "format": "date-time"}, "2024-02-30T10:00:00Z") == [
        ("FieldValueTypeInvalid", "spec.f",
         'Invalid value: "2024-02-30T10:00:00Z": spec.f in body must be of type date-time: '
         '"2024-02-30T10:00:00Z"')
    ]  # fmt: skip
    assert causes({"type": "string", "format": "date"}, "2024-1-5") != []
    assert causes({"type": "string", "format": "uuid"}, "not-a-uuid") != []
    assert causes({"type": "string", "format": "ipv4"}, "10.0.0.1") == []
    assert causes({"type": "string", "format": "byte"}, "aGk=") == []
    assert causes({"type": "string", "format": "email"}, "unchecked") == []
    assert causes({"type": "string", "format": "made-up"}, "anything") == []


def test_preserved_unknown_fields_pass_and_declared_ones_are_typed() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "properties": {"n": {"type": "integer"}}}  # fmt: skip
    assert causes(schema, {"free": ["form"], "n": 1}) == []
    assert [c[1] for c in causes(schema, {"n": "one"})] == ["spec.f.n"]


def test_prune_nulls_drops_non_nullable_nulls() -> None:
    root = node(type="object", properties={
        "plain": {"type": "string"}, "nullable": {"type": "string", "nullable": True},
        "defaulted": {"type": "string", "default": "x"},
        "list": {"type": "array", "items": {"type": "string"}},
    })  # fmt: skip
    value = {"spec": {"f": {"plain": None, "nullable": None, "defaulted": None,
                            "list": [None], "unknown": None}}}  # fmt: skip
    assert prune_nulls(root, value) == {
        "spec": {"f": {"nullable": None, "defaulted": "x", "list": [None], "unknown": None}}
    }
    assert value["spec"]["f"]["plain"] is None  # the argument is left as it was


# --- custom resources end to end -------------------------------------------------------


@pytest.fixture
def widgets() -> tuple[ResourceInfo, Schemas]:
    schemas = Schemas.load()
    schemas.add_crd(widget_crd())
    table = ResourceTable()
    [info, *_] = table.add_crd(widget_crd())
    return info, schemas


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "apps"}, "spec": spec}  # fmt: skip


def test_an_invalid_custom_resource_is_refused_as_the_apiserver_words_it(
    widgets: tuple[ResourceInfo, Schemas],
) -> None:
    info, schemas = widgets
    with pytest.raises(ApiError) as caught:
        validate_custom_resource(info, schemas, widget(size="big"))
    error = caught.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == (
        'Widget.example.com "w" is invalid: spec.size: Invalid value: "string": spec.size in '
        'body must be of type integer: "string"'
    )
    assert error.details == {
        "name": "w",
        "group": "example.com",
        "kind": "Widget",
        "causes": [
            {
                "reason": "FieldValueTypeInvalid",
                "message": (
                    'Invalid value: "string": spec.size in body must be of type integer: "string"'
                ),
                "field": "spec.size",
            }
        ],
    }


def test_a_valid_custom_resource_comes_back_pruned_in_order(
    widgets: tuple[ResourceInfo, Schemas],
) -> None:
    info, schemas = widgets
    obj = widget(size=None, extra={"kept": None})
    obj["status"] = {"ready": True}
    result = validate_custom_resource(info, schemas, obj)
    assert list(result) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert result["spec"] == {"extra": {"kept": None}}


def test_unchanged_values_are_ratcheted_on_update(widgets: tuple[ResourceInfo, Schemas]) -> None:
    info, schemas = widgets
    old = widget(size="legacy")
    assert validate_custom_resource(info, schemas, widget(size="legacy"), old)["spec"] == {
        "size": "legacy"
    }
    with pytest.raises(ApiError):
        validate_custom_resource(info, schemas, widget(size="other"), old)


def test_built_in_kinds_are_not_checked_against_a_crd_schema() -> None:
    assert validate_custom_resource(DEPLOYMENTS, SCHEMAS, {"spec": {"replicas": "x"}}) == {
        "spec": {"replicas": "x"}
    }


# --- built-in kinds: decoding into the Go types ----------------------------------------


def spec(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "spec": fields}


def container(**fields: Any) -> dict[str, Any]:
    return spec(template={"spec": {"containers": [{"name": "web", **fields}]}})


QUANTITY_FORMAT = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def unmarshal(found: str, field: str, go_type: str) -> str:
    return f"json: cannot unmarshal {found} into Go struct field {field} of type {go_type}"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (spec(replicas="many"), unmarshal("string", "DeploymentSpec.spec.replicas", "int32")),
        (spec(replicas=2.0), unmarshal("number 2.0", "DeploymentSpec.spec.replicas", "int32")),
        (spec(replicas=2**31),
         unmarshal("number 2147483648", "DeploymentSpec.spec.replicas", "int32")),
        (spec(paused=1), unmarshal("number", "DeploymentSpec.spec.paused", "bool")),
        (spec(template="x"),
         unmarshal("string", "DeploymentSpec.spec.template", "v1.PodTemplateSpec")),
        (spec(template={"spec": {"containers": {}}}),
         unmarshal("object", "PodSpec.spec.template.spec.containers", "[]v1.Container")),
        (container(image=["a"]),
         unmarshal("array", "Container.spec.template.spec.containers.image", "string")),
        ({"metadata": {"labels": {"app": 1}}},
         unmarshal("number", "ObjectMeta.metadata.labels", "string")),
        (spec(strategy={"rollingUpdate": {"maxSurge": True}}),
         unmarshal("bool", "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge",
                   "int32")),
        (container(resources={"limits": {"cpu": "lots"}}), QUANTITY_FORMAT),
        (container(resources={"limits": {"cpu": "1Q"}}), QUANTITY_FORMAT),
        (container(resources={"limits": {"memory": "1Mb"}}), QUANTITY_FORMAT),
        (container(resources={"limits": {"memory": "1mm"}}), "unable to parse quantity's suffix"),
        ({"metadata": {"creationTimestamp": 5}},
         unmarshal("number", "ObjectMeta.metadata.creationTimestamp", "string")),
    ],
)  # fmt: skip
def test_decode_errors(obj: dict[str, Any], message: str) -> None:
    assert decode_error(DEPLOYMENT, obj, "Deployment") == message


def test_the_first_mismatch_counts_unless_a_type_decodes_itself() -> None:
    first = spec(replicas="x", paused="y")
    assert "spec.replicas" in (decode_error(DEPLOYMENT, first, "Deployment") or "")
    # A failing UnmarshalJSON stops the decoder: its error wins over one seen before.
    fatal = spec(replicas="x", strategy={"rollingUpdate": {"maxSurge": {}}})
    assert "maxSurge of type int32" in (decode_error(DEPLOYMENT, fatal, "Deployment") or "")


@pytest.mark.parametrize(
    "obj",
    [
        spec(replicas=3, paused=None, template=None),
        spec(strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}),
        container(resources={"limits": {"cpu": 1, "memory": 1.5}, "requests": {"cpu": "500m"}}),
        container(
            resources={"limits": {"cpu": "1e3", "memory": "1Gi", "ephemeral-storage": "+.5"}}
        ),
        spec(unknownField={"anything": True}),
        {"metadata": {"creationTimestamp": None, "managedFields": [{"fieldsV1": {"f:a": {}}}]}},
    ],
)
def test_what_decodes(obj: dict[str, Any]) -> None:
    assert decode_error(DEPLOYMENT, obj, "Deployment") is None


def test_secret_data_is_base64() -> None:
    assert decode_error(SECRET, {"data": {"k": "aGk="}}, "Secret") is None
    assert decode_error(SECRET, {"data": {"k": "a!"}}, "Secret") == (
        "illegal base64 data at input byte 1"
    )
    assert decode_error(SECRET, {"data": {"k": 1}}, "Secret") == (
        "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [("", 0), ("aGk=", None), ("aGk", 0), ("a", 0), ("aGk=\n", None), ("aG\nk=", None),
     ("a===", 1), ("aG=k", 2), ("aGk=aGk=", 4), ("aGk!", 3), ("aG==", None), ("aG=", 3)],
)  # fmt: skip
def test_base64_errors_name_the_byte(text: str, error: int | None) -> None:
    if error is None or not text:
        assert base64_error(text) is None
    else:
        assert base64_error(text) == f"illegal base64 data at input byte {error}"


@pytest.mark.parametrize(
    ("text", "valid"),
    [("1", True), ("0", True), ("-1.5", True), ("500m", True), ("1Gi", True), ("1e3", True),
     ("1E-3", True), (".5", True), ("+1Ki", True), ("1.", True), ("abc", False), ("1 Gi", False),
     ("1Gb", False), ("1e", False), ("", False), ("1.5.5", False)],
)  # fmt: skip
def test_quantities(text: str, valid: bool) -> None:
    assert (quantity_error(text) is None) is valid


# --- unstructured to typed, and structured-merge-diff ----------------------------------


@pytest.mark.parametrize(
    ("obj", "floats", "message"),
    [
        (spec(replicas="x"), False, "unrecognized type: int32"),
        (spec(replicas=1.5), True, "cannot convert float64 to int32"),
        (spec(replicas=2.0), True, None),
        (spec(paused=1), False, "unrecognized type: bool"),
        (spec(template="x"), False, "cannot restore struct from: string"),
        (spec(template={"spec": {"containers": "x"}}), False, "cannot restore slice from string"),
        ({"metadata": {"labels": []}}, False, "cannot restore map from slice"),
        ({"metadata": {"name": 5}}, False, "cannot convert int64 to string"),
        ({"metadata": {"name": 5}}, True, "unrecognized type: string"),
        (spec(strategy={"rollingUpdate": {"maxSurge": 1.5}}), True,
         "json: cannot unmarshal number 1.5 into Go value of type int32"),
        (spec(strategy={"rollingUpdate": {"maxSurge": 2.0}}), True, None),
    ],
)  # fmt: skip
def test_conversion_errors(obj: dict[str, Any], floats: bool, message: str | None) -> None:
    assert conversion_error(DEPLOYMENT, obj, floats=floats) == message


def test_typed_errors_name_each_field_by_its_path() -> None:
    obj = container(
        image=3, ports=[{"containerPort": "80", "protocol": "TCP"}], args="x", tty="yes"
    )
    obj["metadata"] = {"labels": {"app": {"nested": True}}}
    assert typed_errors(DEPLOYMENT, obj) == [
        '.spec.template.spec.containers[name="web"].image: '
        "expected string, got &value.valueUnstructured{Value:3}",
        '.spec.template.spec.containers[name="web"].ports[containerPort="80",protocol="TCP"]'
        ".containerPort: expected numeric (int or float), got string",
        '.spec.template.spec.containers[name="web"].args: expected list, got &{x}',
        '.spec.template.spec.containers[name="web"].tty: expected boolean, got &{yes}',
        ".metadata.labels.app: expected string, got "
        '&value.valueUnstructured{Value:map[string]interface {}{"nested":true}}',
    ]
    assert typed_errors(DEPLOYMENT, spec(template=[1])) == [
        ".spec.template: expected map, got &{[1]}"
    ]
    assert typed_errors(DEPLOYMENT, spec(strategy={"rollingUpdate": {"maxSurge": {}}})) == [
        ".spec.strategy.rollingUpdate.maxSurge: expected any scalar, got &{map[]}"
    ]
    assert typed_errors(DEPLOYMENT, spec(replicas=None, paused=True, unknown="x")) == []


# --- the answers -------------------------------------------------------------------------


def test_check_body_is_a_bad_request_naming_the_kind_and_version() -> None:
    with pytest.raises(ApiError) as caught:
        check_body(DEPLOYMENTS, SCHEMAS, spec(replicas="x"))
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    check_body(DEPLOYMENTS, SCHEMAS, spec(replicas=1))


def test_check_patched_shows_the_patch_or_the_patched_document() -> None:
    with pytest.raises(ApiError) as caught:
        check_patched(
            DEPLOYMENTS, SCHEMAS, "strategic", spec(replicas="x"), {"spec": {"replicas": "x"}}
        )
    message = 'Invalid value: "map[spec:map[replicas:x]]": unrecognized type: int32'
    assert (caught.value.code, caught.value.message) == (422, f' "" is invalid: patch: {message}')
    assert caught.value.details == {
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]
    }
    with pytest.raises(ApiError) as caught:
        check_patched(DEPLOYMENTS, SCHEMAS, "merge", {"spec": {"replicas": "<x>"}}, {})
    assert caught.value.message.startswith(
        ' "" is invalid: patch: Invalid value: '
        + r'"{\"spec\":{\"replicas\":\"\\u003cx\\u003e\"}}": json: cannot unmarshal'
    )


def test_check_applied_is_a_plain_server_error() -> None:
    applied = {**spec(replicas="x", paused="y"), "metadata": {"name": "web", "namespace": "apps"}}
    with pytest.raises(ApiError) as caught:
        check_applied(DEPLOYMENTS, SCHEMAS, applied)
    assert (caught.value.code, caught.value.reason) == (500, "")
    assert caught.value.message == (
        "failed to create typed patch object (apps/web; apps/v1, Kind=Deployment): errors:\n"
        "  .spec.replicas: expected numeric (int or float), got string\n"
        "  .spec.paused: expected boolean, got &{y}"
    )
    with pytest.raises(ApiError) as caught:
        check_applied(DEPLOYMENTS, SCHEMAS, {**applied, "spec": {"replicas": 1.5}})
    assert caught.value.message == (
        "failed to convert new object (apps/web; apps/v1, Kind=Deployment) to proper version: "
        "unable to convert unstructured object to apps/v1, Kind=Deployment: "
        "cannot convert float64 to int32"
    )
    check_applied(DEPLOYMENTS, SCHEMAS, {**applied, "spec": {"replicas": 2}})
