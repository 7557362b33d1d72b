"""HelmReleases rendered from real charts with the Helm SDK and the real kustomize."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helm_python
import pytest

from gitmoor.api import HelmRelease, parse_resource
from gitmoor.errors import RenderError
from gitmoor.manifests import KubeObject, dump
from gitmoor.render.helm import RenderedRelease, render_release
from gitmoor.render.values import ValuesLookup

pytestmark = pytest.mark.integration

PROBE_KEYS = ("a", "b", "c", "d", "e", "f")

PROBE_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-probe
data:
  probe: {{ .Values.probe | toJson | quote }}
"""

SCOPES_TEMPLATE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-reader
rules: []
---
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: {{ .Release.Name }}-gadget
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
---
apiVersion: other.io/v1
kind: Sprocket
metadata:
  name: {{ .Release.Name }}-sprocket
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-pinned
  namespace: elsewhere
"""

HOOK_TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
"""

FAIL_TEMPLATE = '{{ if .Values.failMe }}{{ fail "failMe is set" }}{{ end }}\n'


def crd(plural: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


SPROCKETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "sprockets.other.io"},
    "spec": {"group": "other.io", "scope": "Cluster", "names": {"kind": "Sprocket"}},
}


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `helm create` scaffold, with a few templates and files added."""
    root = tmp_path_factory.mktemp("chart")
    helm_python.Chart.create("demo", root).close()
    chart = root / "demo"
    scaffold_values = (chart / "values.yaml").read_text(encoding="utf-8")
    (chart / "values-alt.yaml").write_text(
        scaffold_values + dump({"probe": dict.fromkeys(PROBE_KEYS[1:], "alt")})
    )
    with (chart / "values.yaml").open("a", encoding="utf-8") as values:
        values.write(dump({"probe": dict.fromkeys(PROBE_KEYS, "default"), "failMe": False}))
    (chart / "values-prod.yaml").write_text(
        dump({"replicaCount": 3, "probe": dict.fromkeys(PROBE_KEYS[1:], "file")})
    )
    (chart / "values.schema.json").write_text(
        json.dumps({"type": "object", "properties": {"replicaCount": {"type": "integer"}}})
    )
    templates = chart / "templates"
    (templates / "probe.yaml").write_text(PROBE_TEMPLATE)
    (templates / "scopes.yaml").write_text(SCOPES_TEMPLATE)
    (templates / "hook.yaml").write_text(HOOK_TEMPLATE)
    (templates / "fail.yaml").write_text(FAIL_TEMPLATE)
    (chart / "crds").mkdir()
    (chart / "crds" / "gadgets.yaml").write_text(dump(crd("gadgets", "Gadget", "Cluster")))
    (chart / "crds" / "widgets.yaml").write_text(dump(crd("widgets", "Widget", "Namespaced")))
    return chart


@pytest.fixture(scope="module")
def chart_tgz(chart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(helm_python.package(chart_dir, destination=tmp_path_factory.mktemp("packaged")))


def release(spec: Mapping[str, Any], api_version: str = "v2") -> HelmRelease:
    document = {
        "apiVersion": f"helm.toolkit.fluxcd.io/{api_version}",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "flux-system"},
        "spec": {
            "interval": "5m",
            "targetNamespace": "apps",
            "chart": {
                "spec": {"chart": "demo", "sourceRef": {"kind": "HelmRepository", "name": "r"}}
            },
            **spec,
        },
    }
    hr = parse_resource(document)
    assert isinstance(hr, HelmRelease)
    return hr


def with_values_files(files: list[str], **options: Any) -> dict[str, Any]:
    return {
        "chart": {
            "spec": {
                "chart": "demo",
                "sourceRef": {"kind": "HelmRepository", "name": "r"},
                "valuesFiles": files,
                **options,
            }
        }
    }


def store(objects: Mapping[tuple[str, str, str], Mapping[str, str]]) -> ValuesLookup:
    def lookup(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        return objects.get((kind, namespace, name))

    return lookup


NOTHING = store({})


def find(rendered: RenderedRelease, kind: str, name: str) -> KubeObject:
    matches = [o for o in rendered.objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def probe(rendered: RenderedRelease) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        find(rendered, "ConfigMap", f"{rendered.name}-probe")["data"]["probe"]
    )
    return loaded


def test_values_sources_in_helm_controller_order(chart_tgz: Path) -> None:
    hr = release(
        {
            **with_values_files(["values.yaml", "values-prod.yaml"]),
            "valuesFrom": [
                {"kind": "ConfigMap", "name": "base"},
                {"kind": "ConfigMap", "name": "absent", "optional": True},
                {"kind": "Secret", "name": "creds"},
                {"kind": "Secret", "name": "creds", "valuesKey": "e", "targetPath": "probe.e"},
                {"kind": "Secret", "name": "creds", "valuesKey": "e", "targetPath": "probe.f"},
            ],
            "values": {"probe": {"f": "inline"}},
        }
    )
    lookup = store(
        {
            ("ConfigMap", "flux-system", "base"): {
                "values.yaml": dump({"probe": dict.fromkeys(PROBE_KEYS[2:], "configmap")})
            },
            ("Secret", "flux-system", "creds"): {
                "values.yaml": dump({"probe": dict.fromkeys(PROBE_KEYS[3:], "secret")}),
                "e": "target",
            },
        }
    )
    rendered = render_release(hr, chart_tgz, lookup=lookup)
    assert probe(rendered) == {
        "a": "default",
        "b": "file",
        "c": "configmap",
        "d": "secret",
        "e": "target",
        "f": "inline",
    }
    assert find(rendered, "Deployment", "apps-web-demo")["spec"]["replicas"] == 3


def test_values_files_replace_the_chart_defaults(chart_tgz: Path) -> None:
    # source-controller packages the chart with the listed files as its values.yaml
    rendered = render_release(
        release(with_values_files(["values-alt.yaml"])), chart_tgz, lookup=NOTHING
    )
    assert probe(rendered) == dict.fromkeys(PROBE_KEYS[1:], "alt")


def test_missing_values_file(chart_tgz: Path) -> None:
    hr = release(with_values_files(["values.yaml", "values-none.yaml"]))
    with pytest.raises(RenderError) as caught:
        render_release(hr, chart_tgz, lookup=NOTHING)
    assert caught.value.location.object == "HelmRelease flux-system/web"
    assert caught.value.location.field == "spec.chart.spec.valuesFiles[1]"
    assert "values-none.yaml" in caught.value.message

    hr = release(
        with_values_files(["values.yaml", "values-none.yaml"], ignoreMissingValuesFiles=True)
    )
    assert probe(render_release(hr, chart_tgz, lookup=NOTHING))["a"] == "default"


def test_digest_changes_only_when_values_change(chart_tgz: Path) -> None:
    def digest(values: dict[str, Any], configmap: str) -> str:
        hr = release({"valuesFrom": [{"kind": "ConfigMap", "name": "v"}], "values": values})
        lookup = store({("ConfigMap", "flux-system", "v"): {"values.yaml": configmap}})
        return render_release(hr, chart_tgz, lookup=lookup).values_digest

    first = digest({"x": 1, "y": {"z": 2}}, "k: v")
    assert digest({"y": {"z": 2}, "x": 1}, "k: v") == first
    assert digest({"x": 1, "y": {"z": 3}}, "k: v") != first
    assert digest({"x": 1, "y": {"z": 2}}, "k: w") != first


def test_namespaces_and_release_identity(chart_tgz: Path) -> None:
    rendered = render_release(release({}), chart_tgz, lookup=NOTHING, crds=[SPROCKETS])
    assert (rendered.name, rendered.namespace) == ("apps-web", "apps")
    assert (rendered.chart_name, rendered.chart_version, rendered.app_version) == (
        "demo",
        "0.1.0",
        "1.16.0",
    )
    namespaces = {
        (o["kind"], o["metadata"]["name"]): o["metadata"].get("namespace") for o in rendered.objects
    }
    assert namespaces[("Deployment", "apps-web-demo")] == "apps"
    assert namespaces[("Service", "apps-web-demo")] == "apps"
    assert namespaces[("Widget", "apps-web-widget")] == "apps"  # namespaced, chart CRD
    assert namespaces[("ConfigMap", "apps-web-pinned")] == "elsewhere"
    assert namespaces[("ClusterRole", "apps-web-reader")] is None
    assert namespaces[("Gadget", "apps-web-gadget")] is None  # cluster-scoped chart CRD
    assert namespaces[("Sprocket", "apps-web-sprocket")] is None  # CRD passed in


def test_hooks_tests_and_notes(chart_tgz: Path) -> None:
    rendered = render_release(release({}), chart_tgz, lookup=NOTHING)
    kinds = {o["kind"] for o in rendered.objects}
    assert find(rendered, "Job", "apps-web-migrate")  # non-test hooks stay
    assert "Pod" not in kinds  # the scaffold's test-connection hook is dropped
    assert all(
        "test" not in o["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        for o in rendered.objects
    )
    assert "CustomResourceDefinition" not in kinds


def test_origin_labels_and_common_metadata(chart_tgz: Path) -> None:
    hr = release(
        {
            "commonMetadata": {
                "labels": {"team": "blue", "helm.toolkit.fluxcd.io/name": "other"},
                "annotations": {"owner": "ops"},
            }
        }
    )
    rendered = render_release(hr, chart_tgz, lookup=NOTHING)
    assert rendered.objects
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        assert labels["helm.toolkit.fluxcd.io/name"] == "web"  # origin labels win
        assert labels["helm.toolkit.fluxcd.io/namespace"] == "flux-system"
        assert labels["team"] == "blue"
        assert obj["metadata"]["annotations"]["owner"] == "ops"
    deployment = find(rendered, "Deployment", "apps-web-demo")
    assert "team" not in deployment["spec"]["template"]["metadata"]["labels"]
    for definition in rendered.crds:
        assert definition["metadata"]["labels"] == {
            "helm.toolkit.fluxcd.io/name": "web",
            "helm.toolkit.fluxcd.io/namespace": "flux-system",
        }


@pytest.mark.parametrize(
    ("install", "expected"),
    [
        ({}, {"gadgets.example.com", "widgets.example.com"}),
        ({"crds": "Create"}, {"gadgets.example.com", "widgets.example.com"}),
        ({"crds": "CreateReplace"}, {"gadgets.example.com", "widgets.example.com"}),
        ({"crds": "Skip"}, set()),
    ],
)
def test_crd_policy(chart_tgz: Path, install: dict[str, Any], expected: set[str]) -> None:
    rendered = render_release(release({"install": install}), chart_tgz, lookup=NOTHING)
    assert {c["metadata"]["name"] for c in rendered.crds} == expected


def test_legacy_skip_crds_stands_without_a_policy(chart_tgz: Path) -> None:
    hr = release({"install": {"skip_crds": True}})  # the deprecated skipCRDs, by Python name
    assert render_release(hr, chart_tgz, lookup=NOTHING).crds == []


def test_post_renderers_patch_and_image(chart_tgz: Path) -> None:
    patch = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ignored
  labels:
    patched: by-kustomize
    helm.toolkit.fluxcd.io/name: from-patch
"""
    hr = release(
        {
            "postRenderers": [
                {
                    "kustomize": {
                        "patches": [{"target": {"kind": "Deployment"}, "patch": patch}],
                        "images": [{"name": "nginx", "newName": "mirror/nginx", "newTag": "1.27"}],
                    }
                }
            ]
        }
    )
    rendered = render_release(hr, chart_tgz, lookup=NOTHING)
    deployment = find(rendered, "Deployment", "apps-web-demo")
    assert deployment["metadata"]["labels"]["patched"] == "by-kustomize"
    # the user's post-renderers run before helm-controller's origin labels
    assert deployment["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] == "web"
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "mirror/nginx:1.27"
    assert "patched" not in find(rendered, "Service", "apps-web-demo")["metadata"]["labels"]


def test_v2beta1_patches_strategic_merge(chart_tgz: Path) -> None:
    hr = release(
        {
            "postRenderers": [
                {
                    "kustomize": {
                        "patchesStrategicMerge": [
                            {
                                "apiVersion": "apps/v1",
                                "kind": "Deployment",
                                "metadata": {"name": "apps-web-demo"},
                                "spec": {"replicas": 7},
                            }
                        ]
                    }
                }
            ]
        },
        api_version="v2beta1",
    )
    rendered = render_release(hr, chart_tgz, lookup=NOTHING)
    assert find(rendered, "Deployment", "apps-web-demo")["spec"]["replicas"] == 7


def test_bad_post_renderer_names_the_field(chart_tgz: Path) -> None:
    hr = release(
        {"postRenderers": [{}, {"kustomize": {"patches": [{"patch": "- op: remove\n  path: /x"}]}}]}
    )
    with pytest.raises(RenderError) as caught:
        render_release(hr, chart_tgz, lookup=NOTHING)
    assert caught.value.location.object == "HelmRelease flux-system/web"
    assert caught.value.location.field == "spec.postRenderers[1].kustomize"


def test_template_error_names_release_and_chart(chart_tgz: Path) -> None:
    with pytest.raises(RenderError) as caught:
        render_release(release({"values": {"failMe": True}}), chart_tgz, lookup=NOTHING)
    message = str(caught.value)
    assert "HelmRelease flux-system/web" in message
    assert "chart demo-0.1.0" in message
    assert "failMe is set" in message


def test_values_schema(chart_tgz: Path) -> None:
    bad = {"replicaCount": "many"}
    with pytest.raises(RenderError) as caught:
        render_release(release({"values": bad}), chart_tgz, lookup=NOTHING)
    assert caught.value.location.object == "HelmRelease flux-system/web"
    assert "chart demo-0.1.0" in caught.value.message
    assert "replicaCount" in caught.value.message

    hr = release({"values": bad, "install": {"disableSchemaValidation": True}})
    rendered = render_release(hr, chart_tgz, lookup=NOTHING)
    assert find(rendered, "Deployment", "apps-web-demo")["spec"]["replicas"] == "many"


def test_chart_directory_renders_like_its_package(chart_dir: Path, chart_tgz: Path) -> None:
    from_dir = render_release(release({}), chart_dir, lookup=NOTHING)
    from_tgz = render_release(release({}), chart_tgz, lookup=NOTHING)
    assert from_dir == from_tgz


def test_unloadable_chart(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        render_release(release({}), tmp_path, lookup=NOTHING)
    assert caught.value.location.file == str(tmp_path)
    assert caught.value.location.object == "HelmRelease flux-system/web"
