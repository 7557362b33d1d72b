"""source.toolkit.fluxcd.io: HelmChart and Bucket.

Read so that repositories declaring them are accepted; gitmoor builds its own chart
artifacts from a HelmRelease's chart template.
"""

from __future__ import annotations

from typing import Any, Literal

from gitmoor.api.meta import Duration, LocalObjectReference, Model, Resource
from gitmoor.api.source import GROUP, OCIRepositoryVerification, SourceStatus


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
