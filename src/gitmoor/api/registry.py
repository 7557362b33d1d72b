"""Which kinds gitmoor reads, and turning a manifest into its typed model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gitmoor.api.helm import HelmRelease
from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import Resource
from gitmoor.api.notification import Alert, Provider, Receiver
from gitmoor.api.secrets import (
    ClusterExternalSecret,
    ClusterSecretStore,
    ExternalSecret,
    PushSecret,
    SecretStore,
)
from gitmoor.api.source import Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository
from gitmoor.errors import Location, ManifestError

KINDS: tuple[type[Resource], ...] = (
    GitRepository,
    HelmRepository,
    OCIRepository,
    HelmChart,
    Bucket,
    Kustomization,
    HelmRelease,
    Receiver,
    Alert,
    Provider,
    ExternalSecret,
    ClusterExternalSecret,
    SecretStore,
    ClusterSecretStore,
    PushSecret,
)

_BY_GROUP_KIND: dict[tuple[str, str], type[Resource]] = {(k.GROUP, k.KIND): k for k in KINDS}
GROUPS: frozenset[str] = frozenset(k.GROUP for k in KINDS)


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def is_known_group(api_version: str) -> bool:
    """True for the groups whose kinds gitmoor models (Flux's and External Secrets')."""
    return split_api_version(api_version)[0] in GROUPS


def parse_resource(
    document: Mapping[str, Any], *, file: str | None = None, index: int | None = None
) -> Resource | None:
    """The typed model of a Flux or External Secrets object; None for any other object.

    An unknown kind or version inside one of those groups, or a field that does not fit
    the schema, raises ManifestError naming the file, the document, the object and the
    field.
    """
    api_version = str(document.get("apiVersion", ""))
    group, version = split_api_version(api_version)
    if group not in GROUPS:
        return None
    kind = str(document.get("kind", ""))
    metadata = document.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    label = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    where = Location(file=file, document=index, object=label)
    model = _BY_GROUP_KIND.get((group, kind))
    if model is None:
        known = sorted(k.KIND for k in KINDS if k.GROUP == group)
        raise ManifestError(
            f"unknown kind {kind!r} in group {group} (known: {', '.join(known)})",
            Location(file=file, document=index, object=label, field="kind"),
        )
    if version != model.VERSION and version not in model.OLD_VERSIONS:
        supported = ", ".join((model.VERSION, *model.OLD_VERSIONS))
        raise ManifestError(
            f"unsupported apiVersion {api_version!r} (supported versions: {supported})",
            Location(file=file, document=index, object=label, field="apiVersion"),
        )
    data = dict(document)
    if version != model.VERSION:
        data = model.upgrade(data, version)
        data["apiVersion"] = f"{group}/{model.VERSION}"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_describe(exc), _first_field(exc, where)) from None


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _first_field(exc: ValidationError, where: Location) -> Location:
    errors = exc.errors()
    field = _path(errors[0]["loc"]) if errors else None
    return Location(file=where.file, document=where.document, object=where.object, field=field)


def _describe(exc: ValidationError) -> str:
    """Each problem as 'field: message', without echoing input values (they may be secret)."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append((_path(error["loc"]), message))
    if len(problems) == 1:
        return problems[0][1]  # the location already names the field
    return "; ".join(f"{path}: {message}" for path, message in problems)
