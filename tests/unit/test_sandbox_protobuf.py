import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.protobuf import MAGIC, decode_object, encode_object


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "apps", "labels": {"a": "b"}},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "apps", "annotations": {"x": "y"}},
            "data": {"k": "v", "other": "w"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "sh.helm.release.v1.demo.v1",
                "namespace": "default",
                "labels": {"owner": "helm"},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "c",
                        "uid": "u1",
                        "controller": True,
                    },
                ],
                "finalizers": ["a", "b"],
                "creationTimestamp": "2026-11-25T10:00:00Z",
            },
            "type": "helm.sh/release.v1",
            "data": {"release": "aGVsbG8="},
            "immutable": True,
        },
    ],
)
def test_round_trip(obj: dict[str, object]) -> None:
    assert decode_object(encode_object(obj)) == obj


def test_empty_scalars_are_left_out_as_json_would() -> None:
    encoded = encode_object(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "uid": ""}, "type": ""}
    )
    assert decode_object(encoded) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
    }


def test_a_kind_without_a_description_is_refused_with_415() -> None:
    body = encode_object({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    body = body.replace(b"Secret", b"Podxyz")
    with pytest.raises(ApiError) as caught:
        decode_object(body)
    assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")


def test_malformed_bodies_are_bad_requests() -> None:
    for body in (b"not protobuf", MAGIC + b"\x0a\xff"):
        with pytest.raises(ApiError) as caught:
            decode_object(body)
        assert caught.value.code == 400
