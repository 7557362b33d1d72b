"""Reading and writing Kubernetes manifests the way Go's YAML libraries do.

Flux, kustomize and the API server read YAML with Go libraries, which accept things a
strict Python loader refuses: an anchor defined twice (the later one wins), the scalar
``=``, timestamps that must stay strings. Objects are plain dicts here because their
schemas are open; typed models live in :mod:`gitmoor.api`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor as RuamelSafeConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning
from ruamel.yaml.error import YAMLError as RuamelYAMLError

from gitmoor.errors import Location, ManifestError

KubeObject = dict[str, Any]

_STRING_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")


# Reading is done by libyaml (PyYAML's C parser): rendering a repository parses every
# object kustomize and Helm print, and a pure-Python parser made that most of the build
# time. It reads YAML 1.1 as Go's yaml.v2 does when the API server turns YAML into JSON
# (``yes`` is true, ``0755`` is octal). libyaml refuses an anchor defined twice, which Go
# accepts; only for such a document is the slower ruamel parser used, in YAML 1.1 too.


class _GoLoader(yaml.CSafeLoader):
    """Timestamps and ``=`` stay strings; a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _RuamelGoConstructor(RuamelSafeConstructor):
    pass


def _string(loader: _GoLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


for _tag in _STRING_TAGS:
    _GoLoader.add_constructor(_tag, _string)
    _RuamelGoConstructor.add_constructor(_tag, RuamelSafeConstructor.construct_scalar)


class _Dumper(yaml.CSafeDumper):
    """Multi-line strings as literal blocks, so diffs of scripts and configs read well."""


# Writing follows the same rules, so text that postBuild substitution works on is quoted
# where YAML 1.1 would read it as something else (``'yes'``, ``'0755'``), plain elsewhere.
# Go's yaml.v3 (kustomize's emitter) refuses a block scalar for text with a space before a
# line break, a trailing space or a non-printable character (tab included).
_NOT_BLOCK = re.compile(r" \n| $|[^\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    if "\n" in data and not _NOT_BLOCK.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def _ruamel_load_all(text: str) -> list[Any]:
    loader = YAML(typ="safe", pure=True)
    loader.Constructor = _RuamelGoConstructor
    loader.version = (1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        return list(loader.load_all(text))


def _problem(exc: yaml.MarkedYAMLError | MarkedYAMLError) -> str:
    mark = exc.problem_mark
    line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"invalid YAML{line}: {exc.problem or exc.context}"


def _parse(text: str, *, file: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_GoLoader))
    except yaml.composer.ComposerError as exc:
        if "duplicate anchor" not in str(exc):
            raise ManifestError(_problem(exc), Location(file=file)) from None
    except yaml.MarkedYAMLError as exc:
        raise ManifestError(_problem(exc), Location(file=file)) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", Location(file=file)) from None
    try:
        return _ruamel_load_all(text)
    except MarkedYAMLError as exc:
        raise ManifestError(_problem(exc), Location(file=file)) from None
    except RuamelYAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", Location(file=file)) from None


def load_all(text: str, *, file: str) -> list[KubeObject]:
    """Every non-empty document of a YAML stream, each a mapping.

    Raises ManifestError naming the file, the document and the line.
    """
    documents: list[KubeObject] = []
    for index, document in enumerate(_parse(text, file=file)):
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
    documents = _parse(text, file=file)
    if len(documents) > 1:
        raise ManifestError("expected one YAML document, found several", Location(file=file))
    return documents[0] if documents else None


def dump_all(objects: Iterable[Mapping[str, Any]]) -> str:
    """A YAML stream, documents separated by ``---``, fields in their given order."""
    return yaml.dump_all(
        [_plain(obj) for obj in objects],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        explicit_start=False,
    )


def dump(obj: Any) -> str:
    return dump_all([obj])


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
