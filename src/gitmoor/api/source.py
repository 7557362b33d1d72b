"""source.toolkit.fluxcd.io: GitRepository, HelmRepository, OCIRepository, HelmChart, Bucket.

HelmChart and Bucket are read so that repositories declaring them are accepted; gitmoor
builds its own chart artifacts from a HelmRelease's chart template.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gitmoor.api.meta import (
    Artifact,
    Duration,
    LocalObjectReference,
    Model,
    Resource,
    Status,
)

GROUP = "source.toolkit.fluxcd.io"


class GitRepositoryRef(Model):
    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None


class GitRepositoryVerification(Model):
    mode: Literal["head", "HEAD", "Tag", "TagAndHEAD"] | None = None
    secret_ref: LocalObjectReference


class GitRepositoryInclude(Model):
    repository: LocalObjectReference
    from_path: str | None = None
    to_path: str | None = None


class GitRepositorySpec(Model):
    url: str
    secret_ref: LocalObjectReference | None = None
    provider: Literal["generic", "azure", "github"] | None = None
    service_account_name: str | None = None
    interval: Duration
    timeout: Duration | None = None
    ref: GitRepositoryRef | None = None
    verify: GitRepositoryVerification | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    ignore: str | None = None
    suspend: bool | None = None
    recurse_submodules: bool | None = None
    include: list[GitRepositoryInclude] | None = None
    sparse_checkout: list[str] | None = None


class SourceStatus(Status):
    artifact: Artifact | None = None
    url: str | None = None


class GitRepository(Resource):
    GROUP = GROUP
    KIND = "GitRepository"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: GitRepositorySpec
    status: SourceStatus | None = None

    @classmethod
    def upgrade(cls, document: dict[str, Any], version: str) -> dict[str, Any]:
        spec = dict(document.get("spec") or {})
        # v1beta2 fields that v1 dropped without replacement.
        spec.pop("gitImplementation", None)
        spec.pop("accessFrom", None)
        return {**document, "spec": spec}


class HelmRepositorySpec(Model):
    url: str
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None
    pass_credentials: bool | None = None
    interval: Duration | None = None
    insecure: bool | None = None
    timeout: Duration | None = None
    suspend: bool | None = None
    access_from: dict[str, Any] | None = None
    type: Literal["default", "oci"] | None = None
    provider: Literal["generic", "aws", "azure", "gcp"] | None = None

    @property
    def is_oci(self) -> bool:
        return self.type == "oci" or self.url.startswith("oci://")


class HelmRepository(Resource):
    GROUP = GROUP
    KIND = "HelmRepository"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: HelmRepositorySpec
    status: SourceStatus | None = None


class OCIRepositoryRef(Model):
    digest: str | None = None
    semver: str | None = None
    semver_filter: str | None = None
    tag: str | None = None


class OCILayerSelector(Model):
    media_type: str | None = None
    operation: Literal["extract", "copy"] | None = None


class OCIRepositoryVerification(Model):
    provider: Literal["cosign", "notation"]
    secret_ref: LocalObjectReference | None = None
    match_oidc_identity: list[dict[str, str]] | None = Field(None, alias="matchOIDCIdentity")


class OCIRepositorySpec(Model):
    url: str
    ref: OCIRepositoryRef | None = None
    layer_selector: OCILayerSelector | None = None
    provider: Literal["generic", "aws", "azure", "gcp"] | None = None
    secret_ref: LocalObjectReference | None = None
    verify: OCIRepositoryVerification | None = None
    service_account_name: str | None = None
    cert_secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    interval: Duration
    timeout: Duration | None = None
    ignore: str | None = None
    insecure: bool | None = None
    suspend: bool | None = None


class OCIRepository(Resource):
    GROUP = GROUP
    KIND = "OCIRepository"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: OCIRepositorySpec
    status: SourceStatus | None = None


class LocalHelmChartSourceReference(Model):
    api_version: str | None = None
    kind: Literal["HelmRepository", "GitRepository", "Bucket"]
    name: str


class HelmChartSpec(Model):
    chart: str
    version: str | None = None
    source_ref: LocalHelmChartSourceReference
    interval: Duration
    reconcile_strategy: Literal["ChartVersion", "Revision"] | None = None
    values_files: list[str] | None = None
    values_file: str | None = None
    ignore_missing_values_files: bool | None = None
    suspend: bool | None = None
    access_from: dict[str, Any] | None = None
    verify: OCIRepositoryVerification | None = None


class HelmChart(Resource):
    GROUP = GROUP
    KIND = "HelmChart"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: HelmChartSpec
    status: SourceStatus | None = None


class BucketSTSSpec(Model):
    provider: Literal["aws", "ldap"]
    endpoint: str
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None


class BucketSpec(Model):
    provider: Literal["generic", "aws", "gcp", "azure"] | None = None
    bucket_name: str
    endpoint: str
    sts: BucketSTSSpec | None = None
    insecure: bool | None = None
    region: str | None = None
    prefix: str | None = None
    secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None
    cert_secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    interval: Duration
    timeout: Duration | None = None
    ignore: str | None = None
    suspend: bool | None = None


class Bucket(Resource):
    GROUP = GROUP
    KIND = "Bucket"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: BucketSpec
    status: SourceStatus | None = None

    @classmethod
    def upgrade(cls, document: dict[str, Any], version: str) -> dict[str, Any]:
        spec = dict(document.get("spec") or {})
        # v1beta2's accessFrom was never implemented and v1 dropped it.
        spec.pop("accessFrom", None)
        return {**document, "spec": spec}
