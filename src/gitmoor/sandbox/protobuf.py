"""Kubernetes' protobuf request bodies, for the kinds typed clients send that way.

client-go's typed clients (``kubectl create namespace|configmap|secret``, Helm's release
storage) send built-in objects as ``application/vnd.kubernetes.protobuf``: the bytes
``k8s\\x00`` then a ``runtime.Unknown`` message wrapping the object's own message. Answers
stay JSON, which those clients accept too.

Only the messages of the kinds below are described; another kind is refused with 415, so
the client's error says what is missing instead of a wrong object being stored.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitmoor.sandbox.errors import ApiError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    """string, bytes, bool, int, time, map (string→string), bytesmap (string→bytes),
    or the name of a message in MESSAGES."""
    repeated: bool = False


# Field numbers of the k8s.io/api and apimachinery messages, as their wire format has them.
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: Field("typeMeta", "TypeMeta"), 2: Field("raw", "bytes"),
                3: Field("contentEncoding", "string"), 4: Field("contentType", "string")},
    "TypeMeta": {1: Field("apiVersion", "string"), 2: Field("kind", "string")},
    "ObjectMeta": {
        1: Field("name", "string"), 2: Field("generateName", "string"),
        3: Field("namespace", "string"), 4: Field("selfLink", "string"),
        5: Field("uid", "string"), 6: Field("resourceVersion", "string"),
        7: Field("generation", "int"), 8: Field("creationTimestamp", "time"),
        9: Field("deletionTimestamp", "time"), 10: Field("deletionGracePeriodSeconds", "int"),
        11: Field("labels", "map"), 12: Field("annotations", "map"),
        13: Field("ownerReferences", "OwnerReference", repeated=True),
        14: Field("finalizers", "string", repeated=True),
    },
    "OwnerReference": {
        1: Field("kind", "string"), 3: Field("name", "string"), 4: Field("uid", "string"),
        5: Field("apiVersion", "string"), 6: Field("controller", "bool"),
        7: Field("blockOwnerDeletion", "bool"),
    },
    "Secret": {1: Field("metadata", "ObjectMeta"), 2: Field("data", "bytesmap"),
               3: Field("type", "string"), 4: Field("stringData", "map"),
               5: Field("immutable", "bool")},
    "ConfigMap": {1: Field("metadata", "ObjectMeta"), 2: Field("data", "map"),
                  3: Field("binaryData", "bytesmap"), 4: Field("immutable", "bool")},
    "Namespace": {1: Field("metadata", "ObjectMeta"), 2: Field("spec", "NamespaceSpec"),
                  3: Field("status", "NamespaceStatus")},
    "NamespaceSpec": {1: Field("finalizers", "string", repeated=True)},
    "NamespaceStatus": {1: Field("phase", "string")},
    "ServiceAccount": {1: Field("metadata", "ObjectMeta"),
                       4: Field("automountServiceAccountToken", "bool")},
    "TokenRequest": {1: Field("metadata", "ObjectMeta"), 2: Field("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {1: Field("audiences", "string", repeated=True),
                         3: Field("boundObjectRef", "BoundObjectReference"),
                         4: Field("expirationSeconds", "int")},
    "BoundObjectReference": {1: Field("kind", "string"), 2: Field("apiVersion", "string"),
                             3: Field("name", "string"), 4: Field("uid", "string")},
    "DeleteOptions": {1: Field("gracePeriodSeconds", "int"),
                      2: Field("preconditions", "Preconditions"),
                      3: Field("orphanDependents", "bool"),
                      4: Field("propagationPolicy", "string"),
                      5: Field("dryRun", "string", repeated=True)},
    "Preconditions": {1: Field("uid", "string"), 2: Field("resourceVersion", "string")},
    "Time": {1: Field("seconds", "int"), 2: Field("nanos", "int")},
    "MapEntry": {1: Field("key", "string"), 2: Field("value", "bytes")},
}  # fmt: skip

# (apiVersion, kind) → message, for the objects a request may carry.
KINDS = {
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "DeleteOptions"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("meta.k8s.io/v1", "DeleteOptions"),
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object in a protobuf request body."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s magic prefix")
    unknown = _message(body[len(MAGIC) :], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if (api_version, kind) not in KINDS:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the sandbox does not decode protobuf for {api_version}/{kind} yet; "
            "send application/json",
        )
    raw = unknown.get("raw", b"")
    assert isinstance(raw, bytes)
    return {"apiVersion": api_version, "kind": kind, **_message(raw, kind)}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise ApiError(400, "BadRequest", "truncated protobuf body")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of each field in a message."""
    found: list[tuple[int, int, Any]] = []
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ApiError(400, "BadRequest", f"unsupported protobuf wire type {wire}")
        found.append((number, wire, value))
    return found


def _message(data: bytes, name: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    result: dict[str, Any] = {}
    for number, _, raw in _fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field gitmoor does not know: as a newer server would drop it
        value = _value(field, raw)
        if value in ("", 0, False) and not field.repeated:
            # Go sends every scalar; its JSON leaves the empty ones out (omitempty).
            continue
        if field.kind in ("map", "bytesmap"):
            result.setdefault(field.name, {}).update(value)
        elif field.repeated:
            result.setdefault(field.name, []).append(value)
        else:
            result[field.name] = value
    return result


def _value(field: Field, raw: Any) -> Any:
    if field.kind == "string":
        return bytes(raw).decode()
    if field.kind == "bytes":
        return bytes(raw)
    if field.kind == "bool":
        return bool(raw)
    if field.kind == "int":
        return raw - (1 << 64) if raw >= 1 << 63 else raw
    if field.kind == "time":
        seconds = _message(bytes(raw), "Time").get("seconds", 0)
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if field.kind in ("map", "bytesmap"):
        entry = _message(bytes(raw), "MapEntry")
        key = entry.get("key", "")
        value = entry.get("value", b"")
        if field.kind == "bytesmap":
            return {key: base64.b64encode(value).decode()}
        return {key: value.decode()}
    return _message(bytes(raw), field.kind)


def encode_object(obj: dict[str, Any]) -> bytes:
    """The protobuf body a typed client would send for ``obj`` (used by tests)."""
    kind = obj["kind"]
    inner = _encode(obj, kind)
    unknown = _encode(
        {"typeMeta": {"apiVersion": obj["apiVersion"], "kind": kind}, "raw": inner}, "Unknown"
    )
    return MAGIC + unknown


def _encode(values: dict[str, Any], name: str) -> bytes:
    out = bytearray()
    for number, field in sorted(MESSAGES[name].items()):
        if field.name not in values:
            continue
        value = values[field.name]
        if field.kind in ("map", "bytesmap"):
            for key, item in sorted(value.items()):
                data = base64.b64decode(item) if field.kind == "bytesmap" else item.encode()
                entry = _encode({"key": key, "value": data}, "MapEntry")
                out += _tag(number, 2) + _len(entry)
            continue
        for item in value if field.repeated else [value]:
            out += _encode_one(number, field, item)
    return bytes(out)


def _encode_one(number: int, field: Field, value: Any) -> bytes:
    if field.kind in ("bool", "int"):
        return _tag(number, 0) + _uvarint(int(value) & ((1 << 64) - 1))
    if field.kind == "string":
        return _tag(number, 2) + _len(str(value).encode())
    if field.kind == "bytes":
        return _tag(number, 2) + _len(bytes(value))
    if field.kind == "time":
        stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return _tag(number, 2) + _len(_encode({"seconds": int(stamp.timestamp())}, "Time"))
    return _tag(number, 2) + _len(_encode(value, field.kind))


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _uvarint(number << 3 | wire)


def _len(data: bytes) -> bytes:
    return _uvarint(len(data)) + data
