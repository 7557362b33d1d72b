"""Kubernetes' protobuf request bodies, for the built-in kinds typed clients send that way.

client-go's typed clients (``kubectl create``, ``kubectl run``, Helm's release storage) send
built-in objects as ``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\x00`` then a
``runtime.Unknown`` message wrapping the object's own message. Answers stay JSON, which
those clients accept too.

The messages are described in ``protobuf_messages``. A kind without a description, or a
field number its message does not have, is refused with 415 naming what is missing: the
client's error then says so, instead of an object missing that field being stored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.protobuf_messages import KINDS, MESSAGES, Field

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_VARINT_KINDS = ("int", "bool")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class _UnknownFieldError(Exception):
    def __init__(self, message: str, number: int, path: str) -> None:
        super().__init__(message, number, path)
        self.message, self.number, self.path = message, number, path


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object in a protobuf request body."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s magic prefix")
    try:
        unknown = _message(body[len(MAGIC) :], "Unknown", "")
    except _UnknownFieldError as exc:
        raise _unsupported(f"field {exc.number} of the runtime.Unknown envelope") from None
    type_meta = unknown.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise _unsupported(f"{api_version}/{kind}")
    try:
        obj = _message(unknown.get("raw", b""), message, "")
    except _UnknownFieldError as exc:
        where = f" (at {exc.path})" if exc.path else ""
        raise _unsupported(
            f"field {exc.number} of message {exc.message}{where} in {api_version}/{kind}"
        ) from None
    return {"apiVersion": api_version, "kind": kind, **obj}


def encode_object(obj: dict[str, Any]) -> bytes:
    """The protobuf body a typed client would send for ``obj`` (used by tests). ValueError
    if ``obj`` holds a field its message does not have."""
    values = dict(obj)
    type_meta = {"apiVersion": values.pop("apiVersion"), "kind": values.pop("kind")}
    inner = _encode_message(values, KINDS[(type_meta["apiVersion"], type_meta["kind"])])
    return MAGIC + _encode_message({"typeMeta": type_meta, "raw": inner}, "Unknown")


def _unsupported(what: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the sandbox does not decode protobuf for {what} yet; send application/json",
    )


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", f"malformed protobuf body: {message}")


# --- decoding ----------------------------------------------------------------------------


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise _bad("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, varint or bytes) of each field of a message, in order."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _bad("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, at = _varint(data, at)
        else:
            if wire == _LENGTH:
                size, at = _varint(data, at)
            elif wire in (_FIXED64, _FIXED32):
                size = 8 if wire == _FIXED64 else 4
            else:
                raise _bad(f"unsupported wire type {wire}")
            if at + size > len(data):
                raise _bad("truncated field")
            value, at = data[at : at + size], at + size
        yield number, wire, value


def _message(data: bytes, name: str, path: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    result: dict[str, Any] = {}
    for number, wire, raw in _fields(data):
        field = schema.get(number)
        if field is None:
            raise _UnknownFieldError(name, number, path)
        at = _json_path(path, field)
        if field.map:
            key, value = _map_entry(field, wire, raw, at)
            result.setdefault(field.name, {})[key] = value
        elif field.repeated:
            items = result.setdefault(field.name, [])
            if wire == _LENGTH and field.kind in _VARINT_KINDS:  # a packed list
                items.extend(_scalar(field.kind, item) for item in _packed(_wire_bytes(raw)))
            else:
                items.append(_value(field, wire, raw, f"{at}[{len(items)}]"))
        else:
            value = _value(field, wire, raw, at)
            if field.inline:
                result.update(value)
            elif value is not None and not (field.omitempty and value in ("", 0, b"")):
                # Go's JSON leaves zero values out (omitempty; a zero Time is null).
                result[field.name] = value
    return result


def _json_path(path: str, field: Field) -> str:
    if field.inline:  # an embedded struct's fields sit in the parent's JSON object
        return path
    return f"{path}.{field.name}" if path else field.name


def _value(field: Field, wire: int, raw: int | bytes, path: str) -> Any:
    expected = _VARINT if field.kind in _VARINT_KINDS else _LENGTH
    if wire != expected:
        raise _bad(f"{path} has wire type {wire}, expected {expected}")
    if isinstance(raw, int):
        return _scalar(field.kind, raw)
    return _decode(field.kind, raw, path)


def _scalar(kind: str, raw: int) -> int | bool:
    if kind == "bool":
        return raw != 0
    return raw - (1 << 64) if raw >= 1 << 63 else raw  # negatives are 10-byte varints


def _decode(kind: str, raw: bytes, path: str) -> Any:
    if kind == "string":
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise _bad(f"{path} is not UTF-8") from None
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "raw":
        return raw
    decoded = _message(raw, kind, path)
    form = _JSON_FORMS.get(kind)
    return form.decode(decoded, path) if form else decoded


def _wire_bytes(raw: int | bytes) -> bytes:
    assert isinstance(raw, bytes)  # the caller checked the wire type
    return raw


def _packed(data: bytes) -> Iterator[int]:
    at = 0
    while at < len(data):
        value, at = _varint(data, at)
        yield value


def _map_entry(field: Field, wire: int, raw: int | bytes, path: str) -> tuple[str, Any]:
    if wire != _LENGTH:
        raise _bad(f"{path} has wire type {wire}, expected {_LENGTH}")
    key_field, value_field = Field("key", "string"), Field(field.name, field.kind)
    key: str = ""
    value: Any = None
    for number, entry_wire, entry_raw in _fields(_wire_bytes(raw)):
        if number == 1:
            key = _value(key_field, entry_wire, entry_raw, path)
        elif number == 2:
            value = _value(value_field, entry_wire, entry_raw, f"{path}[{key!r}]")
        else:
            raise _bad(f"{path} has a map entry with field {number}")
    if value is None:  # Go writes every value; an absent one is the zero value
        value = (
            _scalar(field.kind, 0)
            if field.kind in _VARINT_KINDS
            else _decode(field.kind, b"", path)
        )
    return key, value


# --- messages whose JSON is not an object -------------------------------------------------


@dataclass(frozen=True)
class _JsonForm:
    decode: Callable[[dict[str, Any], str], Any]
    encode: Callable[[Any], dict[str, Any]]


def _time_from_wire(message: dict[str, Any], path: str) -> str | None:
    if not message:
        return None  # Go's zero time, JSON null
    try:
        stamp = datetime.fromtimestamp(message["seconds"], UTC)
    except (OverflowError, OSError, ValueError):
        raise _bad(f"{path} is out of range") from None
    return stamp.strftime(_TIME_FORMAT)


def _time_to_wire(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    stamp = datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    return {"seconds": int(stamp.timestamp())}


def _int_or_string_from_wire(message: dict[str, Any], _path: str) -> int | str:
    if message.get("type") == 1:
        return str(message.get("strVal", ""))
    return int(message.get("intVal", 0))


def _int_or_string_to_wire(value: int | str) -> dict[str, Any]:
    return {"type": 1, "strVal": value} if isinstance(value, str) else {"intVal": value}


def _json_from_wire(message: dict[str, Any], path: str) -> Any:
    try:
        return json.loads(message.get("Raw", b"{}"))
    except ValueError:
        raise _bad(f"{path} is not JSON") from None


_STRING_LIST = _JsonForm(
    decode=lambda message, _path: message.get("items", []),
    encode=lambda value: {"items": list(value)},
)

_JSON_FORMS: dict[str, _JsonForm] = {
    "Time": _JsonForm(_time_from_wire, _time_to_wire),
    "IntOrString": _JsonForm(_int_or_string_from_wire, _int_or_string_to_wire),
    "Quantity": _JsonForm(
        decode=lambda message, _path: message.get("string", "0"),  # Go's zero Quantity
        encode=lambda value: {"string": str(value)},
    ),
    "FieldsV1": _JsonForm(
        _json_from_wire,
        lambda value: {"Raw": json.dumps(value, separators=(",", ":")).encode()},
    ),
    # Named []string types: go-to-protobuf wraps them in a message of their items.
    "ExtraValue": _STRING_LIST,
    "AttestationValue": _STRING_LIST,
}


# --- encoding (as Go's generated marshalers do) --------------------------------------------


def _encode_message(values: dict[str, Any], name: str) -> bytes:
    out = bytearray()
    used: set[str] = set()
    for number, field in sorted(MESSAGES[name].items()):
        if field.inline:
            inner = _json_names(field.kind)
            used |= inner
            part = {key: value for key, value in values.items() if key in inner}
            out += _tag(number, _LENGTH) + _len(_encode_message(part, field.kind))
            continue
        if field.name not in values:
            continue
        used.add(field.name)
        value = values[field.name]
        if field.map:
            for key, item in sorted(value.items()):
                entry = _tag(1, _LENGTH) + _len(key.encode()) + _encode_one(2, field.kind, item)
                out += _tag(number, _LENGTH) + _len(entry)
        elif field.repeated:
            for item in value:
                out += _encode_one(number, field.kind, item)
        else:
            out += _encode_one(number, field.kind, value)
    if unknown := values.keys() - used:
        raise ValueError(f"protobuf message {name} has no field {sorted(unknown)}")
    return bytes(out)


def _json_names(name: str) -> set[str]:
    names: set[str] = set()
    for field in MESSAGES[name].values():
        names |= _json_names(field.kind) if field.inline else {field.name}
    return names


def _encode_one(number: int, kind: str, value: Any) -> bytes:
    if kind in _VARINT_KINDS:
        return _tag(number, _VARINT) + _uvarint(int(value) & ((1 << 64) - 1))
    if kind == "string":
        data = str(value).encode()
    elif kind == "bytes":
        data = base64.b64decode(value)
    elif kind == "raw":
        data = bytes(value)
    else:
        form = _JSON_FORMS.get(kind)
        data = _encode_message(form.encode(value) if form else value, kind)
    return _tag(number, _LENGTH) + _len(data)


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
