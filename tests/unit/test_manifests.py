import pytest

from gitmoor.errors import ManifestError
from gitmoor.manifests import ObjectKey, dump_all, key_of, load_all


def test_reads_what_go_yaml_reads() -> None:
    text = """
base: &defaults {replicas: 1}
again: &defaults {replicas: 2}
use: *defaults
op: =
created: 2024-01-01T00:00:00Z
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"""
    documents = load_all(text, file="repo/x.yaml")
    assert documents[0]["use"] == {"replicas": 2}  # the later anchor wins, as in Go
    assert documents[0]["op"] == "="
    assert documents[0]["created"] == "2024-01-01T00:00:00Z"
    assert len(documents) == 2  # empty documents are skipped


def test_broken_yaml_names_file_and_line() -> None:
    with pytest.raises(ManifestError) as caught:
        load_all("a: 1\nb: [1, 2\n", file="repo/bad.yaml")
    assert caught.value.location.file == "repo/bad.yaml"
    assert "line 3" in caught.value.message


def test_a_document_must_be_a_mapping() -> None:
    with pytest.raises(ManifestError) as caught:
        load_all("a: 1\n---\n- 1\n", file="repo/list.yaml")
    assert caught.value.location.document == 1


def test_dump_keeps_field_order_and_round_trips() -> None:
    obj = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c"},
        "data": {"b": "1", "a": "2"},
    }
    text = dump_all([obj, obj])
    assert text.index("kind") < text.index("apiVersion")
    assert load_all(text, file="x") == [obj, obj]


def test_key_of() -> None:
    key = key_of(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "n"}}
    )
    assert key == ObjectKey("apps", "Deployment", "n", "w")
    assert str(key) == "Deployment.apps/n/w"
    assert (
        str(key_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}))
        == "Namespace/n"
    )
