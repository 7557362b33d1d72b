from typing import Any

import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.protobuf import MAGIC, decode_object, encode_object
from gitmoor.sandbox.protobuf_messages import KINDS, MESSAGES

# --- a minimal protobuf writer, independent of the module's encoder -------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def number(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def message(field: int, *parts: bytes | str) -> bytes:
    payload = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def body(api_version: str, kind: str, *fields: bytes) -> bytes:
    type_meta = message(1, message(1, api_version), message(2, kind))
    return MAGIC + type_meta + message(2, *fields)


def deployment_spec(*fields: bytes) -> bytes:
    return body("apps/v1", "Deployment", message(1, message(1, "web")), message(2, *fields))


def pod_spec(*fields: bytes) -> bytes:
    return deployment_spec(message(3, message(2, *fields)))  # spec.template.spec


def container(*fields: bytes) -> dict[str, Any]:
    decoded = decode_object(pod_spec(message(2, message(1, "web"), *fields)))
    found: dict[str, Any] = decoded["spec"]["template"]["spec"]["containers"][0]
    return found


def refused(data: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_object(data)
    return caught.value


# --- the table ---------------------------------------------------------------------------


def test_every_field_names_a_scalar_or_a_described_message() -> None:
    scalars = {"string", "bytes", "raw", "bool", "int"}
    for name, fields in MESSAGES.items():
        for field in fields.values():
            assert field.kind in scalars or field.kind in MESSAGES, (name, field)
            assert not (field.inline and field.kind in scalars), (name, field)
    assert set(KINDS.values()) <= MESSAGES.keys()


# --- decoding hand-built bodies ----------------------------------------------------------


def test_nested_messages_and_repeated_fields() -> None:
    app_web = message(1, "app") + message(2, "web")  # a map entry
    web = message(
        2,
        message(1, "web"),
        message(2, "nginx:1.27"),
        message(6, number(3, 8080)),
        message(6, number(3, 8443)),
    )
    sidecar = message(
        2, message(1, "sidecar"), message(2, "busybox"), message(3, "sleep"), message(3, "1d")
    )
    template = message(3, message(1, message(11, app_web)), message(2, web, sidecar))
    decoded = decode_object(deployment_spec(message(2, message(1, app_web)), template))
    assert decoded == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27",
                         "ports": [{"containerPort": 8080}, {"containerPort": 8443}]},
                        {"name": "sidecar", "image": "busybox", "command": ["sleep", "1d"]},
                    ]
                },
            },
        },
    }  # fmt: skip


def test_a_field_number_not_described_is_refused_with_415_naming_it() -> None:
    error = refused(pod_spec(message(2, message(1, "web"), number(99, 1))))
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert "field 99 of message Container" in error.message
    assert "spec.template.spec.containers[0]" in error.message
    assert "apps/v1/Deployment" in error.message


def test_a_kind_without_a_description_is_refused_with_415() -> None:
    error = refused(body("example.com/v1", "Widget", message(1, message(1, "w"))))
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert "example.com/v1/Widget" in error.message


def test_go_pointers_keep_their_zero_values_and_omitempty_fields_drop_them() -> None:
    decoded = decode_object(
        deployment_spec(number(1, 0), number(5, 0), number(7, 0), message(4, message(1, "")))
    )
    # replicas is *int32; minReadySeconds and paused are values with omitempty;
    # strategy is a struct, which Go's JSON always writes.
    assert decoded["spec"] == {"replicas": 0, "strategy": {}}


def test_negative_integers() -> None:
    decoded = decode_object(body("scheduling.k8s.io/v1", "PriorityClass", number(2, -5)))
    assert decoded["value"] == -5


def test_packed_and_unpacked_repeated_integers_decode_alike() -> None:
    def job(values: bytes) -> dict[str, Any]:
        on_exit_codes = message(2, message(2, "In"), values)
        rules = message(11, message(1, message(1, "FailJob"), on_exit_codes))
        return decode_object(body("batch/v1", "Job", message(2, rules)))

    unpacked = job(number(3, 1) + number(3, 2) + number(3, 300))
    packed = job(message(3, varint(1) + varint(2) + varint(300)))
    assert unpacked == packed
    rule = packed["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["onExitCodes"] == {"operator": "In", "values": [1, 2, 300]}


def test_map_entries_with_message_values() -> None:
    hard = [message(1, message(1, key), message(2, message(1, value)))
            for key, value in (("cpu", "1500m"), ("memory", "1Gi"))]  # fmt: skip
    no_value = message(1, message(1, "pods"))  # Go's zero Quantity
    decoded = decode_object(body("v1", "ResourceQuota", message(2, *hard, no_value)))
    assert decoded["spec"] == {"hard": {"cpu": "1500m", "memory": "1Gi", "pods": "0"}}


def test_int_or_string_both_forms() -> None:
    def budget(spec: bytes) -> dict[str, Any]:
        spec_field: dict[str, Any] = decode_object(
            body("policy/v1", "PodDisruptionBudget", message(2, spec))
        )["spec"]
        return spec_field

    assert budget(message(1, number(1, 1), message(3, "50%"))) == {"minAvailable": "50%"}
    assert budget(message(3, number(2, 0))) == {"maxUnavailable": 0}  # a pointer: 0 is set


def test_times_and_the_zero_time() -> None:
    decoded = decode_object(
        body(
            "v1", "ConfigMap",
            message(1, message(1, "c"), message(8), message(9, number(1, 1_795_564_800))),
        )
    )  # fmt: skip
    assert decoded["metadata"] == {"name": "c", "deletionTimestamp": "2026-11-25T00:00:00Z"}


def test_embedded_structs_are_inlined() -> None:
    http_get = message(2, message(1, "/healthz"), message(2, number(2, 8080)))
    probe = message(10, message(1, http_get), number(2, 5))
    assert container(probe)["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 8080},
        "initialDelaySeconds": 5,
    }
    volume = message(1, message(1, "conf"), message(2, message(19, message(1, message(1, "c")))))
    spec = decode_object(pod_spec(volume))["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "conf", "configMap": {"name": "c"}}]


def test_bytes_maps_are_base64_and_managed_fields_json() -> None:
    entry = message(17, message(1, "kubectl"), message(6, "FieldsV1"),
                    message(7, message(1, b'{"f:data":{}}')))  # fmt: skip
    data = message(2, message(1, "key"), message(2, b"\x00\xff"))
    decoded = decode_object(body("v1", "Secret", message(1, entry), data))
    assert decoded["data"] == {"key": "AP8="}
    assert decoded["metadata"]["managedFields"] == [
        {"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"not protobuf",
        MAGIC + b"\x0a\xff",  # a length running past the end
        MAGIC + b"\x0a\x02\x0a",  # a truncated nested field
        body("v1", "ConfigMap", number(1, 7)),  # metadata as a varint
        body("v1", "ConfigMap", message(1, message(1, b"\xff\xfe"))),  # a name not UTF-8
        body("v1", "ConfigMap", b"\x0d\x00\x00\x00\x00"),  # a fixed32 where none is
    ],
)
def test_malformed_bodies_are_bad_requests(data: bytes) -> None:
    error = refused(data)
    assert (error.code, error.reason) == (400, "BadRequest")


# --- the encoder tests use, against the decoder ------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "sh.helm.release.v1.demo.v1",
                "namespace": "default",
                "labels": {"owner": "helm"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u1",
                     "controller": True},
                ],
                "finalizers": ["a", "b"],
                "creationTimestamp": "2026-11-25T10:00:00Z",
            },
            "type": "helm.sh/release.v1",
            "data": {"release": "aGVsbG8="},
            "immutable": True,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "replicas": 2,
                "selector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["web"]},
                ]},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "securityContext": {"runAsUser": 0, "supplementalGroups": [1, 2]},
                        "containers": [{
                            "name": "web",
                            "image": "nginx",
                            "env": [{"name": "POD", "valueFrom": {
                                "fieldRef": {"fieldPath": "metadata.name"}}}],
                            "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
                            "readinessProbe": {"tcpSocket": {"port": "http"}},
                        }],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {},
            "spec": {"token": "t", "audiences": ["vault"]},
            "status": {"authenticated": True,
                       "user": {"username": "u", "extra": {"scopes": ["a", "b"]}}},
        },
    ],
)  # fmt: skip
def test_round_trip(obj: dict[str, Any]) -> None:
    assert decode_object(encode_object(obj)) == obj


def test_the_encoder_refuses_a_field_its_message_does_not_have() -> None:
    with pytest.raises(ValueError, match="ConfigMap has no field"):
        encode_object({"apiVersion": "v1", "kind": "ConfigMap", "dta": {}})
