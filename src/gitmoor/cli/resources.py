"""The Flux kinds the live commands know, and what ``gitmoor get`` says about one object.

Readings here are pure functions of an object as the API returns it: the revision a kind
reports, Ready's status and message, suspension, the ``--status-selector`` test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitmoor.api.helm import HelmRelease
from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import Resource
from gitmoor.api.registry import parse_resource
from gitmoor.api.source import Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository
from gitmoor.controllers import conditions
from gitmoor.controllers.context import ready_status, suspended
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.errors import InputError, Location
from gitmoor.releases import Target

WAITING = "waiting to be reconciled"


def _last_applied(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("lastAppliedRevision") or "")


def _chart_version(obj: Mapping[str, Any]) -> str:
    """The chart version of the latest release, else the last one attempted."""
    status = obj.get("status") or {}
    history = status.get("history") or []
    if history:
        return str(history[0].get("chartVersion") or "")
    return str(status.get("lastAttemptedRevision") or "")


@dataclass(frozen=True)
class FluxKind:
    model: type[Resource]
    command: str
    """The subcommand naming it: ``git`` under ``sources``, ``kustomizations`` …"""
    aliases: tuple[str, ...]
    revision: Callable[[Mapping[str, Any]], str]
    listed_by: str
    """The get command that lists objects of this kind."""
    path: str
    """How reconcile, suspend and resume name the kind: ``source git``, ``kustomization``."""

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def api_version(self) -> str:
        return f"{self.model.GROUP}/{self.model.VERSION}"

    def display(self, namespace: str, name: str) -> str:
        return f"{self.kind} {namespace}/{name}"

    def not_found(self, namespace: str, name: str) -> InputError:
        return InputError(
            f"not found ({self.listed_by} -n {namespace} lists what there is)",
            Location(object=self.display(namespace, name)),
        )


def _source(model: type[Resource], command: str) -> FluxKind:
    return FluxKind(model, command, (), artifact_revision, f"gitmoor get sources {command}",
                    f"source {command}")  # fmt: skip


GIT_REPOSITORY = _source(GitRepository, "git")
HELM_REPOSITORY = _source(HelmRepository, "helm")
OCI_REPOSITORY = _source(OCIRepository, "oci")
HELM_CHART = _source(HelmChart, "chart")
BUCKET = _source(Bucket, "bucket")
KUSTOMIZATION = FluxKind(
    Kustomization, "kustomizations", ("kustomization", "ks"), _last_applied,
    "gitmoor get kustomizations", "kustomization",
)  # fmt: skip
HELM_RELEASE = FluxKind(
    HelmRelease, "helmreleases", ("helmrelease", "hr"), _chart_version,
    "gitmoor get helmreleases", "helmrelease",
)  # fmt: skip

SOURCES = (GIT_REPOSITORY, OCI_REPOSITORY, HELM_REPOSITORY, HELM_CHART, BUCKET)
ALL = (*SOURCES, KUSTOMIZATION, HELM_RELEASE)


def by_kind(kind: str) -> FluxKind | None:
    """The Flux kind of that name, in any letter case (``kustomization``, ``GitRepository``)."""
    return next((k for k in ALL if k.kind.lower() == kind.lower()), None)


@dataclass(frozen=True)
class Summary:
    """One object as ``gitmoor get`` shows it; ``-o json`` prints these fields."""

    kind: str
    namespace: str
    name: str
    revision: str
    suspended: bool
    ready: str
    message: str
    created: str

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "revision": self.revision,
            "suspended": self.suspended,
            "ready": self.ready,
            "message": self.message,
            "created": self.created,
        }


def summarize(kind: FluxKind, obj: Mapping[str, Any]) -> Summary:
    meta = obj.get("metadata") or {}
    ready = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
    return Summary(
        kind=kind.kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        revision=kind.revision(obj),
        suspended=suspended(obj),
        ready=ready_status(obj),
        message=str(ready.get("message") or "") if ready else WAITING,
        created=str(meta.get("creationTimestamp") or ""),
    )


def parse_status_selector(text: str) -> tuple[str, str]:
    """``ready=false`` as (condition type, status)."""
    kind, sep, status = text.partition("=")
    if not sep or not kind or not status:
        raise InputError(
            f"expected TYPE=STATUS such as ready=false, got {text!r}",
            Location(field="--status-selector"),
        )
    return kind, status


def matches_status(obj: Mapping[str, Any], selector: tuple[str, str]) -> bool:
    """Whether the condition has that status, both compared in any letter case; Ready
    missing counts as Unknown, as ``get`` shows it."""
    kind, status = selector
    found = next(
        (c for c in (obj.get("status") or {}).get("conditions") or []
         if str(c.get("type", "")).lower() == kind.lower()),
        None,
    )  # fmt: skip
    if found is None:
        return kind.lower() == conditions.READY.lower() and status.lower() == "unknown"
    return str(found.get("status", "")).lower() == status.lower()


def source_ref(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of the source a Kustomization or HelmRelease reads from (a
    HelmRelease's ``chartRef`` or its chart's ``sourceRef``); a reference without a
    namespace is to the object's own."""
    spec = obj.get("spec") or {}
    ref = (
        spec.get("sourceRef")
        or spec.get("chartRef")
        or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
    )
    if not ref:
        return None
    namespace = ref.get("namespace") or (obj.get("metadata") or {}).get("namespace") or ""
    return str(ref.get("kind", "")), str(namespace), str(ref.get("name", ""))


def release_target(obj: Mapping[str, Any], kubeconfig: Path | None, context: str | None) -> Target:
    """Where a HelmRelease's Helm release lives: its release name and namespace, and the
    storage namespace the controller last used (the spec's, before the first reconcile)."""
    model = parse_resource(obj)
    assert isinstance(model, HelmRelease)
    storage = str((obj.get("status") or {}).get("storageNamespace") or model.storage_namespace)
    return Target(kubeconfig, model.release_name, model.release_namespace, storage,
                  model.display, context)  # fmt: skip
