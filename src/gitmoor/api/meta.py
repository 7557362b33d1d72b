"""Pieces every custom resource shares: the model base, metadata, references, durations."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# Go's time.ParseDuration syntax, as Flux's CRDs validate it.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def duration_seconds(value: str) -> float:
    """Seconds in a Go duration such as ``1m0s`` or ``1h30m``."""
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


class Model(BaseModel):
    """Spec models: camelCase on the wire, snake_case in Python, unknown fields refused.

    Refusing unknown fields is what ``kubectl apply`` does by default (strict field
    validation); a typo such as ``dependOn`` should fail loudly rather than be dropped.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OpenModel(Model):
    """Parts whose schema is open or only partly known here (metadata, status, providers)."""

    model_config = ConfigDict(extra="allow")


class ObjectMeta(OpenModel):
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class LocalObjectReference(Model):
    name: str


class NamespacedObjectReference(Model):
    name: str
    namespace: str | None = None


class DependencyReference(Model):
    name: str
    namespace: str | None = None
    ready_expr: str | None = None


class CrossNamespaceSourceReference(Model):
    api_version: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class NamespacedObjectKindReference(Model):
    api_version: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class SecretKeyReference(Model):
    name: str
    key: str | None = None


class KubeConfigReference(Model):
    secret_ref: SecretKeyReference | None = None
    config_map_ref: SecretKeyReference | None = None


class Metadata(Model):
    """Labels and annotations added to everything a resource produces (commonMetadata)."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Selector(Model):
    """A kustomize patch target."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    annotation_selector: str | None = None


class Patch(Model):
    patch: str
    target: Selector | None = None


class Image(Model):
    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None


class Condition(OpenModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Artifact(OpenModel):
    path: str | None = None
    url: str | None = None
    revision: str
    digest: str | None = None
    last_update_time: str | None = None
    size: int | None = None
    metadata: dict[str, str] | None = None


class Status(OpenModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    last_handled_reconcile_at: str | None = None


class Resource(Model):
    """A custom resource: what every kind gitmoor reads has in common."""

    GROUP: ClassVar[str]
    KIND: ClassVar[str]
    VERSION: ClassVar[str]
    """The version gitmoor works in; older ones are upgraded on read."""
    OLD_VERSIONS: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True

    api_version: str
    kind: str
    metadata: ObjectMeta
    status: Status | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def display(self) -> str:
        """``Kind namespace/name``, the way messages and tables name an object."""
        if self.namespace:
            return f"{self.KIND} {self.namespace}/{self.name}"
        return f"{self.KIND} {self.name}"

    @classmethod
    def upgrade(cls, document: dict[str, Any], version: str) -> dict[str, Any]:
        """Rewrite a document of an older version into ``VERSION``'s shape."""
        return document


__all__ = [
    "DURATION_PATTERN",
    "Artifact",
    "Condition",
    "CrossNamespaceSourceReference",
    "DependencyReference",
    "Duration",
    "Field",
    "Image",
    "KubeConfigReference",
    "LocalObjectReference",
    "Metadata",
    "Model",
    "NamespacedObjectKindReference",
    "NamespacedObjectReference",
    "ObjectMeta",
    "OpenModel",
    "Patch",
    "Resource",
    "SecretKeyReference",
    "Selector",
    "Status",
    "duration_seconds",
]
