"""Reading and writing Kubernetes manifests the way Go's YAML libraries do.

Flux, kustomize and the API server read YAML with Go libraries, which accept things a
strict Python loader refuses: an anchor defined twice (the later one wins), the scalar
``=``, timestamps that must stay strings. Objects are plain dicts here because their
schemas are open; typed models live in :mod:`gitmoor.api`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.resolver import VersionedResolver

from gitmoor.errors import Location, ManifestError

KubeObject = dict[str, Any]


class _GoConstructor(SafeConstructor):
    """Timestamps and ``=`` stay strings, as they do when Go turns YAML into JSON."""

    def construct_yaml_str_plain(self, node: Any) -> str:
        return str(self.construct_scalar(node))


_GoConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", _GoConstructor.construct_yaml_str_plain
)
_GoConstructor.add_constructor("tag:yaml.org,2002:value", _GoConstructor.construct_yaml_str_plain)


def _loader() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _GoConstructor
    yaml.Resolver = VersionedResolver
    yaml.allow_duplicate_keys = False
    return yaml


def _dumper() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    # keep kustomize's field order
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    yaml.allow_unicode = True
    return yaml


def load_all(text: str, *, file: str) -> list[KubeObject]:
    """Every non-empty document of a YAML stream, each a mapping.

    Raises ManifestError naming the file, the document and the line.
    """
    documents: list[KubeObject] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        try:
            loaded = list(_loader().load_all(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ManifestError(
                f"invalid YAML{line}: {exc.problem or exc.context}", Location(file=file)
            ) from None
        except YAMLError as exc:
            raise ManifestError(f"invalid YAML: {exc}", Location(file=file)) from None
    for index, document in enumerate(loaded):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ManifestError(
                f"a manifest must be a mapping, found {type(document).__name__}",
                Location(file=file, document=index),
            )
        documents.append(document)
    return documents


def load(text: str, *, file: str) -> Any:
    """A single YAML document of any shape (values files, kustomization.yaml)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        try:
            return _loader().load(text)
        except YAMLError as exc:
            raise ManifestError(f"invalid YAML: {exc}", Location(file=file)) from None


def dump_all(objects: Iterable[Mapping[str, Any]]) -> str:
    """A YAML stream, documents separated by ``---``, fields in their given order."""
    stream = io.StringIO()
    _dumper().dump_all([_plain(obj) for obj in objects], stream)
    return stream.getvalue()


def dump(obj: Any) -> str:
    stream = io.StringIO()
    _dumper().dump(_plain(obj), stream)
    return stream.getvalue()


def _plain(value: Any) -> Any:
    """Copy into builtin types so the safe dumper accepts subclasses (pydantic dumps, etc.)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, order=True)
class ObjectKey:
    """The identity of an object in a cluster: group, kind, namespace, name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    metadata = obj.get("metadata") or {}
    return ObjectKey(
        group=group,
        kind=str(obj.get("kind", "")),
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
    )
