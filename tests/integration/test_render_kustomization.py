"""Flux Kustomizations built with the real kustomize (kubectl kustomize) on repositories on disk."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gitmoor.api.kustomize import Kustomization
from gitmoor.errors import ManifestError, RenderError, SubstitutionError
from gitmoor.manifests import KubeObject
from gitmoor.render.kustomization import render_kustomization

pytestmark = pytest.mark.integration

KS = "Kustomization flux-system/apps"


def write(root: Path, files: Mapping[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def kustomization(**spec: Any) -> Kustomization:
    return Kustomization.model_validate(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {
                "interval": "10m",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                **spec,
            },
        }
    )


def nothing(kind: str, name: str) -> Mapping[str, str] | None:
    return None


def build(root: Path, ks: Kustomization, **options: Any) -> list[KubeObject]:
    options.setdefault("lookup", nothing)
    return render_kustomization(root, ks, **options).objects


def by_name(objects: list[KubeObject]) -> dict[str, KubeObject]:
    return {obj["metadata"]["name"]: obj for obj in objects}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def configmap(name: str, data: str = "  key: value\n", extra: str = "") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}data:\n{data}"


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0.0
        - name: sidecar
          image: ghcr.io/example/sidecar:1.0.0
"""

HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
spec:
  interval: 5m
  chart:
    spec:
      chart: {name}
      sourceRef:
        kind: HelmRepository
        name: charts
  install:
    createNamespace: true
"""


# --- generated kustomization.yaml --------------------------------------------------------


def test_generated_kustomization_takes_every_manifest_and_subdirectory_kustomizations(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "apps/top.yaml": configmap("top"),
            "apps/nested/deeper/leaf.yml": configmap("leaf"),
            "apps/nested/two.yaml": configmap("two-a") + "---\n" + configmap("two-b"),
            # A subdirectory with its own kustomization is built by it, not file by file.
            "apps/kustomized/kustomization.yaml": "namePrefix: own-\nresources: [listed.yaml]\n",
            "apps/kustomized/listed.yaml": configmap("listed"),
            "apps/kustomized/not-listed.yaml": configmap("not-listed"),
            "apps/README.md": "not yaml, not read\n",
        },
    )
    before = snapshot(tmp_path)
    objects = build(tmp_path, kustomization(path="./apps"))
    assert sorted(by_name(objects)) == ["leaf", "own-listed", "top", "two-a", "two-b"]
    assert snapshot(tmp_path) == before


def test_a_directory_without_manifests_builds_to_nothing(tmp_path: Path) -> None:
    write(tmp_path, {"empty/notes.txt": "nothing to apply\n"})
    assert build(tmp_path, kustomization(path="empty")) == []


def test_a_yaml_file_that_is_not_a_kubernetes_object_fails_naming_it(tmp_path: Path) -> None:
    # Flux does not skip such files in a generated kustomization: kustomize refuses them.
    write(tmp_path, {"apps/cm.yaml": configmap("ok"), "apps/values.yaml": "replicaCount: 2\n"})
    with pytest.raises(RenderError) as caught:
        build(tmp_path, kustomization(path="apps"))
    assert "values.yaml" in caught.value.message
    assert caught.value.location.object == KS


def test_a_working_tree_is_built_like_its_artifact_without_git_metadata(tmp_path: Path) -> None:
    write(tmp_path, {"cm.yaml": configmap("tracked"), ".git/stray.yaml": configmap("stray")})
    assert [o["metadata"]["name"] for o in build(tmp_path, kustomization())] == ["tracked"]


def test_the_default_path_is_the_source_root(tmp_path: Path) -> None:
    write(tmp_path, {"cm.yaml": configmap("at-root")})
    assert [o["metadata"]["name"] for o in build(tmp_path, kustomization())] == ["at-root"]


# --- the Kustomization's settings -----------------------------------------------------------


def test_target_namespace_prefix_and_suffix_override_the_kustomization_file(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "apps/kustomization.yaml": "namespace: from-file\nnamePrefix: file-\n"
            "resources: [cm.yaml]\n",
            "apps/cm.yaml": configmap("settings"),
        },
    )
    ks = kustomization(path="apps", targetNamespace="team-a", namePrefix="pre-", nameSuffix="-suf")
    [obj] = build(tmp_path, ks)
    assert obj["metadata"]["name"] == "pre-settings-suf"
    assert obj["metadata"]["namespace"] == "team-a"


def test_patches_with_targets_reach_the_selected_objects(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/kustomization.yaml": "resources: [web.yaml, loki.yaml, grafana.yaml]\n",
            "apps/web.yaml": DEPLOYMENT,
            "apps/loki.yaml": HELMRELEASE.format(name="loki"),
            "apps/grafana.yaml": HELMRELEASE.format(name="grafana"),
        },
    )
    remediation = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: all
spec:
  install:
    crds: CreateReplace
    remediation:
      retries: 3
"""
    replicas = '[{"op": "replace", "path": "/spec/replicas", "value": 4}]'
    ks = kustomization(
        path="apps",
        patches=[
            {
                "patch": remediation,
                "target": {"group": "helm.toolkit.fluxcd.io", "kind": "HelmRelease"},
            },
            {"patch": replicas, "target": {"kind": "Deployment", "name": "web"}},
        ],
    )
    objects = by_name(build(tmp_path, ks))
    for name in ("loki", "grafana"):
        install = objects[name]["spec"]["install"]
        assert install == {
            "createNamespace": True,
            "crds": "CreateReplace",
            "remediation": {"retries": 3},
        }
    assert objects["web"]["spec"]["replicas"] == 4


def test_images_merge_into_the_kustomization_files_own_images(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/kustomization.yaml": "resources: [web.yaml]\n"
            "images:\n  - name: ghcr.io/example/web\n    newName: registry.local/web\n",
            "apps/web.yaml": DEPLOYMENT,
        },
    )
    ks = kustomization(
        path="apps",
        images=[
            {"name": "ghcr.io/example/web", "newTag": "2.0.0"},
            {"name": "ghcr.io/example/sidecar", "digest": "sha256:" + "a" * 64},
        ],
    )
    [deployment] = build(tmp_path, ks)
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["registry.local/web:2.0.0", "ghcr.io/example/sidecar@sha256:" + "a" * 64]


COMPONENT = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
  - pairs:
      app.kubernetes.io/part-of: ${APP}
    includeSelectors: false
commonAnnotations:
  homelab/owner: ${OWNER:=homelab}
"""


def test_components_are_added_relative_to_the_path_and_substituted(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "components/common/kustomization.yaml": COMPONENT,
            "apps/web/kustomization.yaml": "resources: [cm.yaml]\n",
            "apps/web/cm.yaml": configmap("web"),
        },
    )
    ks = kustomization(
        path="apps/web",
        components=["../../components/common", "../../components/not-there"],
        ignoreMissingComponents=True,
        postBuild={"substitute": {"APP": "web"}},
    )
    [obj] = build(tmp_path, ks)
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/part-of": "web"}
    assert obj["metadata"]["annotations"] == {"homelab/owner": "homelab"}


def test_a_missing_component_fails_unless_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"apps/cm.yaml": configmap("web")})
    with pytest.raises(RenderError) as caught:
        build(tmp_path, kustomization(path="apps", components=["../components/not-there"]))
    assert "not-there" in caught.value.message
    assert caught.value.location.object == KS


def test_a_remote_component_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"apps/cm.yaml": configmap("web")})
    ks = kustomization(path="apps", components=["./local", "https://github.com/org/repo//c"])
    with pytest.raises(RenderError) as caught:
        build(tmp_path, ks)
    assert caught.value.location.field == "spec.components[1]"
    assert "must be local and relative" in caught.value.message


def test_common_metadata_lands_on_object_metadata_only(tmp_path: Path) -> None:
    write(tmp_path, {"apps/web.yaml": DEPLOYMENT})
    ks = kustomization(
        path="apps",
        commonMetadata={
            "labels": {"app": "overridden", "team": "a"},
            "annotations": {"owner": "ops"},
        },
    )
    [deployment] = build(tmp_path, ks)
    assert deployment["metadata"]["labels"] == {"app": "overridden", "team": "a"}
    assert deployment["metadata"]["annotations"] == {"owner": "ops"}
    # Unlike kustomize's commonLabels, selectors and pod templates are untouched.
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}


def test_a_kustomization_file_without_resources_gets_origin_annotations_as_in_flux(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "apps/kustomization.yml": "configMapGenerator:\n"
            "  - name: generated\n    literals: [a=b]\n"
            "    options:\n      disableNameSuffixHash: true\n",
        },
    )
    [obj] = build(tmp_path, kustomization(path="apps"))
    assert obj["metadata"]["name"] == "generated"
    assert "config.kubernetes.io/origin" in obj["metadata"]["annotations"]


def test_overlays_reach_files_outside_the_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "resources: [cm.yaml]\n",
            "base/cm.yaml": configmap("shared"),
            "clusters/prod/kustomization.yaml": "resources: [../../base, ../../extra/cm.yaml]\n",
            "extra/cm.yaml": configmap("extra"),
        },
    )
    objects = build(tmp_path, kustomization(path="./clusters/prod"))
    assert sorted(by_name(objects)) == ["extra", "shared"]


# --- postBuild ----------------------------------------------------------------------------


def test_substitute_from_a_configmap_and_a_secret(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/cm.yaml": configmap(
                "settings",
                data="  domain: ${DOMAIN}\n  region: ${REGION}\n  token: ${TOKEN}\n"
                "  tier: ${TIER}\n  replicas: ${REPLICAS}\n",
            )
        },
    )
    asked: list[tuple[str, str]] = []
    store = {
        ("ConfigMap", "cluster-settings"): {"DOMAIN": "home.arpa", "REGION": "eu", "TIER": "x"},
        ("Secret", "cluster-secrets"): {"REGION": "us", "TOKEN": "t0k3n", "REPLICAS": "3"},
    }

    def lookup(kind: str, name: str) -> Mapping[str, str] | None:
        asked.append((kind, name))
        return store.get((kind, name))

    ks = kustomization(
        path="apps",
        postBuild={
            "substitute": {"TIER": "gold"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "cluster-settings"},
                {"kind": "Secret", "name": "cluster-secrets"},
                {"kind": "ConfigMap", "name": "optional-settings", "optional": True},
            ],
        },
    )
    [obj] = build(tmp_path, ks, lookup=lookup)
    assert obj["data"] == {
        "domain": "home.arpa",
        "region": "us",
        "token": "t0k3n",
        "tier": "gold",
        # kustomize writes "${REPLICAS}" unquoted, so Flux's substitution makes it a number.
        "replicas": 3,
    }
    assert asked == [
        ("ConfigMap", "cluster-settings"),
        ("Secret", "cluster-secrets"),
        ("ConfigMap", "optional-settings"),
    ]


def test_a_required_substitute_source_that_is_missing_names_the_kustomization(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"apps/cm.yaml": configmap("settings")})
    ks = kustomization(
        path="apps", postBuild={"substituteFrom": [{"kind": "Secret", "name": "absent"}]}
    )
    with pytest.raises(SubstitutionError) as caught:
        build(tmp_path, ks)
    assert caught.value.location.object == KS
    assert caught.value.location.field == "spec.postBuild.substituteFrom[0]"


def test_strict_substitution_refuses_an_unset_variable(tmp_path: Path) -> None:
    write(tmp_path, {"apps/cm.yaml": configmap("settings", data="  url: https://${DOMAIN}/\n")})
    ks = kustomization(path="apps", postBuild={"substitute": {"OTHER": "x"}})
    with pytest.raises(SubstitutionError) as caught:
        build(tmp_path, ks)
    error = caught.value
    assert "'DOMAIN' is not set" in error.message
    assert KS in error.message
    assert error.location.object == "ConfigMap settings"
    assert error.location.field == "data.url"
    [obj] = build(tmp_path, ks, strict=False)
    assert obj["data"]["url"] == "https:///"


def test_objects_marked_substitute_disabled_keep_their_references(tmp_path: Path) -> None:
    disabled = "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"
    write(
        tmp_path,
        {
            "apps/script.yaml": configmap(
                "script",
                data='  run.sh: |\n    echo "${HOME}" $$1\n',
                extra=disabled.removeprefix("metadata:\n"),
            ),
            "apps/cm.yaml": configmap("settings", data="  env: ${ENV}\n"),
        },
    )
    ks = kustomization(path="apps", postBuild={"substitute": {"ENV": "prod"}})
    objects = by_name(build(tmp_path, ks))
    assert objects["script"]["data"]["run.sh"] == 'echo "${HOME}" $$1\n'
    assert objects["settings"]["data"]["env"] == "prod"


def test_without_post_build_references_stay_as_written(tmp_path: Path) -> None:
    # Flux substitutes only when spec.postBuild is set.
    write(tmp_path, {"apps/cm.yaml": configmap("settings", data="  url: ${UNSET:=x}\n")})
    [obj] = build(tmp_path, kustomization(path="apps"))
    assert obj["data"]["url"] == "${UNSET:=x}"


# --- errors and the source ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("./apps/missing", "does not exist"),
        ("../elsewhere", "outside the source"),
        ("./apps/cm.yaml", "is not a directory"),
    ],
)
def test_a_bad_path_names_the_kustomization_and_field(
    tmp_path: Path, path: str, complaint: str
) -> None:
    write(tmp_path / "source", {"apps/cm.yaml": configmap("settings")})
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(RenderError) as caught:
        build(tmp_path / "source", kustomization(path=path))
    assert complaint in caught.value.message
    assert caught.value.location.object == KS
    assert caught.value.location.field == "spec.path"


def test_a_symbolic_link_out_of_the_source_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"outside/cm.yaml": configmap("outside")})
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "apps").symlink_to(tmp_path / "outside")
    with pytest.raises(RenderError) as caught:
        build(tmp_path / "source", kustomization(path="apps"))
    assert caught.value.location.field == "spec.path"


def test_broken_yaml_in_a_resource_names_the_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/good.yaml": configmap("good"),
            "apps/sub/broken.yaml": "kind: ConfigMap\nmetadata:\n  name: [unclosed\n",
        },
    )
    with pytest.raises(ManifestError) as caught:
        build(tmp_path, kustomization(path="apps"))
    error = caught.value
    assert "gitmoor-kustomize-" not in str(error)  # the temporary copy is not mentioned
    assert "line 4" in error.message
    assert error.location.object == KS
    assert error.location.file == "apps/sub/broken.yaml"


def test_the_source_is_unchanged_by_builds_that_edit_or_generate_kustomization_files(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "components/common/kustomization.yaml": COMPONENT,
            "shared/kustomization.yaml": "resources: [web.yaml]\n",
            "apps/web.yaml": DEPLOYMENT,
            "plain/cm.yaml": configmap("plain"),
        },
    )
    # The edited file is reached through a link; the file it points at must stay as it is.
    (tmp_path / "apps" / "kustomization.yaml").symlink_to(tmp_path / "shared/kustomization.yaml")
    before = snapshot(tmp_path)
    edited = kustomization(
        path="apps",
        targetNamespace="web",
        components=["../components/common"],
        images=[{"name": "ghcr.io/example/web", "newTag": "9.9.9"}],
        patches=[
            {
                "patch": '[{"op": "add", "path": "/metadata/labels/x", "value": "y"}]',
                "target": {"kind": "Deployment"},
            }
        ],
        postBuild={"substitute": {"APP": "web"}},
    )
    [deployment] = build(tmp_path, edited)
    assert deployment["metadata"]["namespace"] == "web"
    assert deployment["metadata"]["labels"]["x"] == "y"
    [plain] = build(tmp_path, kustomization(path="plain", namePrefix="p-"))
    assert plain["metadata"]["name"] == "p-plain"
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "plain" / "kustomization.yaml").exists()
