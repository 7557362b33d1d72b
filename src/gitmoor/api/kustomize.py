"""kustomize.toolkit.fluxcd.io/v1 Kustomization."""

from __future__ import annotations

from typing import Literal

from gitmoor.api.meta import (
    CrossNamespaceSourceReference,
    DependencyReference,
    Duration,
    Image,
    KubeConfigReference,
    LocalObjectReference,
    Metadata,
    Model,
    NamespacedObjectKindReference,
    OpenModel,
    Patch,
    Resource,
    Status,
)

GROUP = "kustomize.toolkit.fluxcd.io"

# Annotations and labels Flux users put on objects inside a Kustomization's output.
SUBSTITUTE_ANNOTATION = f"{GROUP}/substitute"
SSA_ANNOTATION = f"{GROUP}/ssa"
PRUNE_ANNOTATION = f"{GROUP}/prune"
RECONCILE_ANNOTATION = f"{GROUP}/reconcile"
DISABLED = "disabled"


class Decryption(Model):
    provider: Literal["sops"]
    secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None


class SubstituteReference(Model):
    kind: Literal["ConfigMap", "Secret"]
    name: str
    optional: bool | None = None


class PostBuild(Model):
    substitute: dict[str, str] | None = None
    substitute_from: list[SubstituteReference] | None = None


class CustomHealthCheck(Model):
    api_version: str
    kind: str
    current: str
    in_progress: str | None = None
    failed: str | None = None


class KustomizationSpec(Model):
    common_metadata: Metadata | None = None
    components: list[str] | None = None
    ignore_missing_components: bool | None = None
    decryption: Decryption | None = None
    deletion_policy: Literal["MirrorPrune", "Delete", "WaitForTermination", "Orphan"] | None = None
    depends_on: list[DependencyReference] | None = None
    force: bool | None = None
    health_checks: list[NamespacedObjectKindReference] | None = None
    health_check_exprs: list[CustomHealthCheck] | None = None
    images: list[Image] | None = None
    interval: Duration
    kube_config: KubeConfigReference | None = None
    name_prefix: str | None = None
    name_suffix: str | None = None
    patches: list[Patch] | None = None
    path: str | None = None
    post_build: PostBuild | None = None
    prune: bool
    retry_interval: Duration | None = None
    service_account_name: str | None = None
    source_ref: CrossNamespaceSourceReference
    suspend: bool | None = None
    target_namespace: str | None = None
    timeout: Duration | None = None
    wait: bool | None = None


class InventoryEntry(Model):
    id: str
    v: str


class Inventory(Model):
    entries: list[InventoryEntry]


class KustomizationStatus(Status, OpenModel):
    last_applied_revision: str | None = None
    last_applied_origin_revision: str | None = None
    last_attempted_revision: str | None = None
    inventory: Inventory | None = None


class Kustomization(Resource):
    GROUP = GROUP
    KIND = "Kustomization"
    VERSION = "v1"

    spec: KustomizationSpec
    status: KustomizationStatus | None = None
