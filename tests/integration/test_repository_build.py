"""build_repository on small repositories written by the tests, with the real kustomize."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository
from gitmoor.manifests import key_of
from gitmoor.render.repository import ChartSource, SourceTree, build_repository


class NoFetching:
    """These repositories need nothing fetched; a fetch would be a bug."""

    def git(self, repository: GitRepository) -> SourceTree:
        raise AssertionError(f"unexpected fetch of {repository.display}")

    def helm_chart(
        self, repository: HelmRepository, chart: str, version: str | None
    ) -> ChartSource:
        raise AssertionError(f"unexpected fetch of {repository.display}")

    def oci_chart(self, repository: OCIRepository) -> ChartSource:
        raise AssertionError(f"unexpected fetch of {repository.display}")


ROOT = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: flux-system, namespace: flux-system}}
spec:
  interval: 10m
  path: ./clusters/dev
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
{extra}"""

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: ${MODE:=plain}
"""


def write_repo(root: Path, extra: str = "") -> None:
    (root / "clusters/dev").mkdir(parents=True)
    (root / "clusters/dev/flux-system.yaml").write_text(ROOT.format(extra=extra))
    (root / "clusters/dev/settings.yaml").write_text(CONFIG)


def configmap(result_objects: list[tuple[object, dict[str, object]]]) -> dict[str, object]:
    [found] = [obj for _, obj in result_objects if key_of(obj).kind == "ConfigMap"]
    return found


def test_root_kustomization_without_render_fields_is_built_once(tmp_path: Path) -> None:
    write_repo(tmp_path)
    result = build_repository(tmp_path, "clusters/dev", sources=NoFetching(), revision="r1")
    assert result.errors == []
    assert [str(u) for u in result.units] == ["Kustomization flux-system/flux-system"]
    assert result.root_objects == []  # claimed by the root Kustomization
    unit = next(iter(result.units.values()))
    assert unit.revision == "r1"
    # Flux substitutes only with postBuild set: the default stays literal text.
    assert configmap(result.objects())["data"] == {"mode": "${MODE:=plain}"}


@pytest.mark.parametrize(
    ("extra", "labels", "mode"),
    [
        ("  commonMetadata:\n    labels: {tier: dev}\n", {"tier": "dev"}, "${MODE:=plain}"),
        ("  postBuild:\n    substitute: {MODE: fancy}\n", None, "fancy"),
    ],
)
def test_root_kustomization_spec_applies_to_its_own_path(
    tmp_path: Path, extra: str, labels: dict[str, str] | None, mode: str
) -> None:
    write_repo(tmp_path, extra)
    result = build_repository(tmp_path, "clusters/dev", sources=NoFetching())
    assert result.errors == []
    found = configmap(result.objects())
    assert found["metadata"].get("labels") == labels  # type: ignore[attr-defined]
    assert found["data"] == {"mode": mode}
