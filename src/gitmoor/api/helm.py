"""helm.toolkit.fluxcd.io/v2 HelmRelease (v2beta1 and v2beta2 upgraded on read)."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field

from gitmoor.api.meta import (
    CrossNamespaceSourceReference,
    DependencyReference,
    Duration,
    Image,
    KubeConfigReference,
    Metadata,
    Model,
    OpenModel,
    Patch,
    Resource,
    Status,
)
from gitmoor.manifests import dump

GROUP = "helm.toolkit.fluxcd.io"

CRDsPolicy = Literal["Skip", "Create", "CreateReplace"]


class HelmChartTemplateSpec(Model):
    chart: str
    version: str | None = None
    source_ref: CrossNamespaceSourceReference
    interval: Duration | None = None
    reconcile_strategy: Literal["ChartVersion", "Revision"] | None = None
    values_files: list[str] | None = None
    ignore_missing_values_files: bool | None = None
    verify: dict[str, Any] | None = None


class HelmChartTemplate(Model):
    metadata: Metadata | None = None
    spec: HelmChartTemplateSpec


class InstallRemediation(Model):
    retries: int | None = None
    ignore_test_failures: bool | None = None
    remediate_last_failure: bool | None = None


class UpgradeRemediation(InstallRemediation):
    strategy: Literal["rollback", "uninstall"] | None = None


class Install(Model):
    timeout: Duration | None = None
    remediation: InstallRemediation | None = None
    disable_wait: bool | None = None
    disable_wait_for_jobs: bool | None = None
    disable_hooks: bool | None = None
    disable_open_api_validation: bool | None = Field(None, alias="disableOpenAPIValidation")
    disable_schema_validation: bool | None = None
    replace: bool | None = None
    skip_crds: bool | None = Field(None, alias="skipCRDs")
    crds: CRDsPolicy | None = None
    create_namespace: bool | None = None
    strategy: dict[str, Any] | None = None


class Upgrade(Model):
    timeout: Duration | None = None
    remediation: UpgradeRemediation | None = None
    disable_wait: bool | None = None
    disable_wait_for_jobs: bool | None = None
    disable_hooks: bool | None = None
    disable_open_api_validation: bool | None = Field(None, alias="disableOpenAPIValidation")
    disable_schema_validation: bool | None = None
    force: bool | None = None
    preserve_values: bool | None = None
    cleanup_on_fail: bool | None = None
    crds: CRDsPolicy | None = None
    strategy: dict[str, Any] | None = None


class TestFilter(Model):
    name: str
    exclude: bool | None = None


class Test(Model):
    enable: bool | None = None
    timeout: Duration | None = None
    ignore_failures: bool | None = None
    filters: list[TestFilter] | None = None


class Rollback(Model):
    timeout: Duration | None = None
    disable_wait: bool | None = None
    disable_wait_for_jobs: bool | None = None
    disable_hooks: bool | None = None
    recreate: bool | None = None
    force: bool | None = None
    cleanup_on_fail: bool | None = None


class Uninstall(Model):
    timeout: Duration | None = None
    disable_hooks: bool | None = None
    keep_history: bool | None = None
    disable_wait: bool | None = None
    deletion_propagation: Literal["background", "foreground", "orphan"] | None = None


class IgnoreRule(Model):
    paths: list[str]
    target: dict[str, Any] | None = None


class DriftDetection(Model):
    mode: Literal["enabled", "warn", "disabled"] | None = None
    ignore: list[IgnoreRule] | None = None


class ValuesReference(Model):
    kind: Literal["ConfigMap", "Secret"]
    name: str
    values_key: str | None = None
    target_path: str | None = None
    optional: bool | None = None


class KustomizePostRenderer(Model):
    patches: list[Patch] | None = None
    images: list[Image] | None = None


class PostRenderer(Model):
    kustomize: KustomizePostRenderer | None = None


class HelmReleaseSpec(Model):
    chart: HelmChartTemplate | None = None
    chart_ref: CrossNamespaceSourceReference | None = None
    interval: Duration
    kube_config: KubeConfigReference | None = None
    suspend: bool | None = None
    release_name: str | None = None
    target_namespace: str | None = None
    storage_namespace: str | None = None
    depends_on: list[DependencyReference] | None = None
    timeout: Duration | None = None
    max_history: int | None = None
    service_account_name: str | None = None
    persistent_client: bool | None = None
    drift_detection: DriftDetection | None = None
    install: Install | None = None
    upgrade: Upgrade | None = None
    test: Test | None = None
    rollback: Rollback | None = None
    uninstall: Uninstall | None = None
    values_from: list[ValuesReference] | None = None
    values: dict[str, Any] | None = None
    post_renderers: list[PostRenderer] | None = None
    common_metadata: Metadata | None = None
    wait_strategy: dict[str, Any] | None = None


class Snapshot(OpenModel):
    version: int
    name: str
    namespace: str
    chart_name: str
    chart_version: str
    config_digest: str
    status: str


class HelmReleaseStatus(Status, OpenModel):
    last_attempted_revision: str | None = None
    last_attempted_values_checksum: str | None = None
    last_attempted_config_digest: str | None = None
    history: list[Snapshot] | None = None
    install_failures: int | None = None
    upgrade_failures: int | None = None
    failures: int | None = None
    storage_namespace: str | None = None
    helm_chart: str | None = None


class HelmRelease(Resource):
    GROUP = GROUP
    KIND = "HelmRelease"
    VERSION = "v2"
    OLD_VERSIONS = ("v2beta1", "v2beta2")

    spec: HelmReleaseSpec
    status: HelmReleaseStatus | None = None

    @property
    def release_name(self) -> str:
        """Helm's release name, defaulted as helm-controller does."""
        if self.spec.release_name:
            return self.spec.release_name
        if self.spec.target_namespace:
            name = f"{self.spec.target_namespace}-{self.name}"
            # helm-controller shortens long names with a hash suffix; release names max 53.
            if len(name) > 53:
                digest = hashlib.sha256(name.encode()).hexdigest()[:12]
                name = f"{name[:40]}-{digest}"
            return name
        return self.name

    @property
    def release_namespace(self) -> str:
        return self.spec.target_namespace or self.namespace

    @property
    def storage_namespace(self) -> str:
        return self.spec.storage_namespace or self.namespace

    @classmethod
    def upgrade(cls, document: dict[str, Any], version: str) -> dict[str, Any]:
        spec = dict(document.get("spec") or {})
        chart = spec.get("chart")
        if isinstance(chart, dict) and isinstance(chart.get("spec"), dict):
            chart_spec = dict(chart["spec"])
            values_file = chart_spec.pop("valuesFile", None)
            if values_file:
                chart_spec["valuesFiles"] = [values_file, *chart_spec.get("valuesFiles", [])]
            spec["chart"] = {**chart, "spec": chart_spec}
        if isinstance(spec.get("postRenderers"), list):
            spec["postRenderers"] = [_upgrade_post_renderer(p) for p in spec["postRenderers"]]
        spec.pop("validation", None)
        return {**document, "spec": spec}


def _upgrade_post_renderer(renderer: Any) -> Any:
    """v2beta1 spelled patches as patchesStrategicMerge and patchesJson6902."""
    if not isinstance(renderer, dict) or not isinstance(renderer.get("kustomize"), dict):
        return renderer
    kustomize = dict(renderer["kustomize"])
    patches = list(kustomize.get("patches") or [])
    for strategic in kustomize.pop("patchesStrategicMerge", None) or []:
        patches.append({"patch": dump(strategic)})
    for json6902 in kustomize.pop("patchesJson6902", None) or []:
        entry: dict[str, Any] = {"patch": dump(json6902.get("patch", []))}
        if json6902.get("target"):
            entry["target"] = json6902["target"]
        patches.append(entry)
    if patches:
        kustomize["patches"] = patches
    return {**renderer, "kustomize": kustomize}
