"""`gitmoor build`, `gitmoor diff` and `gitmoor install --export` on the example homelab.

Charts come from a real docker-registry and a real HTTP chart repository on 127.0.0.1;
kustomize and Helm are the real ones. Repositories are real Git repositories on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitmoor.cli.main import cli
from gitmoor.demo.homelab import (
    DEMO_AGE_KEY,
    HOMELAB_DIR,
    ROOT_PATH,
    ExampleCharts,
    serve_example_charts,
)
from gitmoor.manifests import dump_all, key_of, load_all

RELEASES = {
    "cilium", "longhorn", "cert-manager", "ingress-nginx", "metallb", "vault",
    "external-secrets", "keda", "kube-prometheus", "grafana", "loki", "promtail", "jaeger",
    "home-assistant", "openclaw", "nats", "graphiti", "llm-gateway",
}  # fmt: skip
KUSTOMIZATIONS = {
    "flux-system", "infrastructure", "platform", "observability", "apps", "my-app",
    "llm-ollama", "llm-keda",
}  # fmt: skip


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleCharts]:
    with serve_example_charts(tmp_path_factory.mktemp("charts")) as served:
        yield served


@pytest.fixture(scope="module")
def settings(charts: ExampleCharts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "cluster-settings.yaml"
    path.write_text(dump_all([charts.cluster_settings]))
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITMOOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def git(repository: Path, *argv: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@t.invalid",
         *argv],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@dataclass
class Repo:
    path: Path

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def edit(self, relative: str, old: str, new: str) -> None:
        file = self.path / relative
        text = file.read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        file.write_text(text.replace(old, new, 1))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = tmp_path / "homelab"
    shutil.copytree(HOMELAB_DIR, path)
    git(path, "init", "-q", "-b", "production")
    repository = Repo(path)
    repository.commit("homelab")
    return repository


def gitmoor(*argv: str) -> Result:
    # Wide enough that tables never wrap a name across lines.
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(argv), catch_exceptions=False)


# The example's SOPS-encrypted Secret is decrypted with the published demo key.
DECRYPTION = ("--decryption-key", str(DEMO_AGE_KEY))


def build(target: Path | str, settings: Path, *extra: str) -> Result:
    return gitmoor(
        "build", str(target), "--path", ROOT_PATH, "--objects", str(settings), *DECRYPTION, *extra
    )


def diff(repo: Repo, settings: Path, *extra: str) -> Result:
    return gitmoor(
        "diff", str(repo.path), "--base", "HEAD~1", "--head", "HEAD",
        "--path", ROOT_PATH, "--objects", str(settings), *DECRYPTION, *extra,
    )  # fmt: skip


def test_build_renders_every_release_and_kustomization(settings: Path) -> None:
    result = build(HOMELAB_DIR, settings)
    assert result.exit_code == 0, result.stderr
    objects = load_all(result.stdout, file="stdout")
    keys = {key_of(o) for o in objects}
    releases = {k.name for k in keys if k.kind == "HelmRelease"}
    kustomizations = {k.name for k in keys if k.kind == "Kustomization"}
    assert releases == RELEASES
    assert kustomizations == KUSTOMIZATIONS
    # Every release rendered its chart: each one labels what it produced with its name.
    rendered_by = {
        (o["metadata"].get("labels") or {}).get("helm.toolkit.fluxcd.io/name") for o in objects
    }
    assert RELEASES <= rendered_by
    # The seed's ExternalSecret and the Deployment of the plain Kustomization are there too.
    names = {(k.kind, k.namespace, k.name) for k in keys}
    assert ("ExternalSecret", "my-app", "app-credentials") in names
    # The SOPS-encrypted Secret was decrypted, and its value is redacted in the output.
    settings_secret = next(o for o in objects if key_of(o).name == "app-settings")
    assert settings_secret["data"] == {"SESSION_SECRET": "<redacted>"}
    assert ("Deployment", "ollama", "ollama") in names
    assert len(keys) == len(objects), "an object was emitted twice"


def test_summary_lists_everything_in_dependency_order(settings: Path) -> None:
    result = build(HOMELAB_DIR, settings, "--summary")
    assert result.exit_code == 0, result.stderr
    for name in RELEASES | KUSTOMIZATIONS:
        assert name in result.stdout
    order = result.stdout[result.stdout.index("dependsOn order") :]
    # openclaw depends (transitively) on everything in the apps tier and comes last.
    assert order.index("HelmRelease cilium-system/cilium") < order.index("openclaw/openclaw")
    assert order.index("llm-gateway/llm-gateway") < order.index("graphiti/graphiti")
    assert "failed" not in result.stdout


def test_output_dir_writes_a_file_per_object(settings: Path, tmp_path: Path) -> None:
    result = build(HOMELAB_DIR, settings, "--output-dir", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    files = list((tmp_path / "out").rglob("*.yaml"))
    streamed = load_all(build(HOMELAB_DIR, settings).stdout, file="stdout")
    assert len(files) == len(streamed)
    assert (tmp_path / "out" / "HelmRelease-home-assistant-home-assistant").is_dir()


def test_image_tag_change_is_exactly_one_changed_object(repo: Repo, settings: Path) -> None:
    repo.edit("apps/llm-ollama/deployment.yaml", "ollama:0.15.2", "ollama:0.15.3")
    repo.commit("bump ollama")
    result = diff(repo, settings)
    assert result.exit_code == 1, result.stderr
    changed = [line for line in result.stdout.splitlines() if line.startswith("changed ")]
    assert changed == [
        "changed Deployment.apps/ollama/ollama  (Kustomization flux-system/llm-ollama)"
    ]
    assert "-        image: docker.io/ollama/ollama:0.15.2" in result.stdout
    assert "+        image: docker.io/ollama/ollama:0.15.3" in result.stdout
    assert "1 changed, 0 added, 0 removed" in result.stderr


def test_release_values_change_shows_the_objects_it_changes(repo: Repo, settings: Path) -> None:
    repo.edit("apps/nats/helmrelease.yaml", 'tag: "2.11.8"', 'tag: "2.11.9"')
    repo.commit("nats 2.11.9")
    result = diff(repo, settings)
    assert result.exit_code == 1, result.stderr
    changed = [line.split()[1] for line in result.stdout.splitlines()
               if line.startswith("changed ")]  # fmt: skip
    # The HelmRelease itself, and what the chart renders from the new value.
    assert sorted(changed) == [
        "HelmRelease.helm.toolkit.fluxcd.io/nats/nats",
        "StatefulSet.apps/nats/nats",
    ]
    added = [line for line in result.stdout.splitlines() if line.startswith("+")]
    assert any(line.strip().endswith("image: docker.io/library/nats:2.11.9") for line in added)


def test_removed_release_shows_its_objects_removed(repo: Repo, settings: Path) -> None:
    repo.edit("apps/kustomization.yaml", "  - home-assistant\n", "")
    repo.commit("drop home-assistant")
    result = diff(repo, settings)
    assert result.exit_code == 1, result.stderr
    removed = [
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("removed ")
    ]
    assert "HelmRelease.helm.toolkit.fluxcd.io/home-assistant/home-assistant" in removed
    assert "Deployment.apps/home-assistant/home-assistant" in removed
    assert "PersistentVolumeClaim/home-assistant/home-assistant-config" in removed
    assert "Namespace/home-assistant" in removed
    assert not [
        line for line in result.stdout.splitlines() if line.startswith(("added", "changed"))
    ]


def test_no_change_exits_zero_and_markdown_says_so(repo: Repo, settings: Path) -> None:
    repo.edit("README.md", "#", "# (edited)")
    repo.commit("docs only")
    result = diff(repo, settings, "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    assert "0 changed, 0 added, 0 removed" in result.stdout
    assert "No object would change." in result.stdout


def test_diff_against_working_tree_and_markdown(repo: Repo, settings: Path) -> None:
    repo.edit("apps/home-assistant/helmrelease.yaml", 'tag: "2026.2.1"', 'tag: "2026.3.0"')
    result = gitmoor(
        "diff", str(repo.path), "--base", "HEAD", "--path", ROOT_PATH,
        "--objects", str(settings), *DECRYPTION, "--format", "markdown",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("### gitmoor diff: 2 changed, 0 added, 0 removed")
    assert "| changed | `Deployment.apps/home-assistant/home-assistant` |" in result.stdout
    assert "+        image: ghcr.io/home-assistant/home-assistant:2026.3.0" in result.stdout


def test_secret_values_are_redacted_in_diff(repo: Repo, settings: Path) -> None:
    secret = repo.path / "apps/my-app/extra-secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: extra, namespace: my-app}\n"
        "stringData: {token: first-value-1234}\n"
    )
    repo.edit(
        "apps/my-app/kustomization.yaml", "resources:\n", "resources:\n  - extra-secret.yaml\n"
    )
    repo.commit("add a secret")
    secret.write_text(secret.read_text().replace("first-value-1234", "second-value-5678"))
    repo.commit("rotate it")
    result = diff(repo, settings)
    assert result.exit_code == 1, result.stderr
    assert "changed Secret/my-app/extra" in result.stdout
    assert "first-value-1234" not in result.stdout + result.stderr
    assert "second-value-5678" not in result.stdout + result.stderr
    assert "<redacted: changed>" in result.stdout


def test_build_from_a_git_url_at_a_ref(repo: Repo, settings: Path) -> None:
    first = git(repo.path, "rev-parse", "HEAD")
    repo.edit("apps/llm-ollama/deployment.yaml", "ollama:0.15.2", "ollama:0.16.0")
    repo.commit("bump")
    old = build(f"file://{repo.path}", settings, "--ref", f"commit:{first}")
    new = build(f"file://{repo.path}", settings, "--ref", "production")
    assert old.exit_code == new.exit_code == 0, old.stderr + new.stderr
    assert "ollama/ollama:0.15.2" in old.stdout
    assert "ollama:0.16.0" not in old.stdout
    assert "ollama/ollama:0.16.0" in new.stdout


# --- bad input: exit 2, the file and the object named, everything else still rendered ----


def assert_failed_alone(result: Result, *expected: str) -> None:
    assert result.exit_code == 2
    for text in expected:
        assert text in result.stderr, f"{text!r} not in: {result.stderr}"
    # Exactly one unit failed; the rest of the repository still rendered.
    assert result.stdout.count("failed") == 1, result.stdout


def test_without_a_decryption_key_only_the_decrypting_kustomization_fails(
    settings: Path,
) -> None:
    result = gitmoor("build", str(HOMELAB_DIR), "--path", ROOT_PATH,
                     "--objects", str(settings), "--summary")  # fmt: skip
    assert_failed_alone(
        result,
        "apps/my-app/app-settings.sops.yaml",
        "Kustomization flux-system/my-app",
        "no decryption key was given",
    )


def test_broken_yaml_names_the_file(repo: Repo, settings: Path) -> None:
    (repo.path / "apps/home-assistant/helmrelease.yaml").write_text("apiVersion: [unclosed\n")
    result = build(repo.path, settings, "--summary")
    assert_failed_alone(
        result, "apps/home-assistant/helmrelease.yaml", "Kustomization flux-system/apps"
    )


def test_unknown_kind_in_a_flux_group(repo: Repo, settings: Path) -> None:
    repo.edit("apps/nats/helmrelease.yaml", "kind: HelmRelease", "kind: HelmReleese")
    result = build(repo.path, settings, "--summary")
    assert result.exit_code == 2
    assert "unknown kind 'HelmReleese' in group helm.toolkit.fluxcd.io" in result.stderr
    assert "apps/nats/helmrelease.yaml: HelmReleese nats/nats" in result.stderr
    assert "openclaw/openclaw" in result.stdout  # the rest still rendered


def test_missing_path(repo: Repo, settings: Path) -> None:
    repo.edit("clusters/production/llm-keda.yaml", "./apps/llm-keda", "./apps/llm-kedaa")
    result = build(repo.path, settings, "--summary")
    assert_failed_alone(
        result, "clusters/production/llm-keda.yaml: Kustomization flux-system/llm-keda", "spec.path"
    )


def test_dependency_cycle_names_both_ends(repo: Repo, settings: Path) -> None:
    repo.edit(
        "clusters/production/infrastructure.yaml",
        "  prune: true\n",
        "  prune: true\n  dependsOn:\n    - name: apps\n",
    )
    result = build(repo.path, settings, "--summary")
    assert result.exit_code == 2
    assert "dependsOn cycle" in result.stderr
    assert "clusters/production/" in result.stderr
    assert "Kustomization flux-system/infrastructure" in result.stderr
    assert "Kustomization flux-system/apps" in result.stderr


def test_missing_dependency(repo: Repo, settings: Path) -> None:
    repo.edit("apps/home-assistant/helmrelease.yaml", "name: longhorn", "name: longhorne")
    result = build(repo.path, settings, "--summary")
    assert result.exit_code == 2
    assert "apps/home-assistant/helmrelease.yaml: HelmRelease home-assistant/home-assistant" in (
        result.stderr
    )
    assert "longhorn-system/longhorne, which does not exist" in result.stderr


def test_chart_version_that_does_not_exist(repo: Repo, settings: Path) -> None:
    repo.edit("apps/home-assistant/helmrelease.yaml", 'version: "0.3.43"', 'version: "9.9.9"')
    result = build(repo.path, settings, "--summary")
    assert_failed_alone(
        result,
        "apps/home-assistant/helmrelease.yaml: HelmRelease home-assistant/home-assistant",
        "9.9.9",
    )


def test_unset_variable_without_default(repo: Repo, settings: Path) -> None:
    repo.edit("apps/llm-ollama/deployment.yaml", "ollama:0.15.2", "ollama:${OLLAMA_VERSION}")
    result = build(repo.path, settings, "--summary")
    assert_failed_alone(result, "OLLAMA_VERSION", "Kustomization flux-system/llm-ollama")


def test_install_export_prints_a_crd_per_kind() -> None:
    result = gitmoor("install", "--export")
    assert result.exit_code == 0
    crds = load_all(result.stdout, file="stdout")
    names = {c["metadata"]["name"] for c in crds}
    assert {
        "gitrepositories.source.toolkit.fluxcd.io",
        "helmrepositories.source.toolkit.fluxcd.io",
        "ocirepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "helmreleases.helm.toolkit.fluxcd.io",
    } <= names
    assert all(c["kind"] == "CustomResourceDefinition" for c in crds)
    # External Secrets' CRDs usually come with its chart: only on request.
    assert not any(name.endswith(".external-secrets.io") for name in names)
    with_eso = load_all(gitmoor("install", "--export", "--external-secrets").stdout, file="out")
    assert {
        "externalsecrets.external-secrets.io",
        "clustersecretstores.external-secrets.io",
    } <= {c["metadata"]["name"] for c in with_eso}


def test_console_script_runs(settings: Path) -> None:
    """The installed ``gitmoor`` entry point, as a user runs it."""
    script = Path(sys.executable).with_name("gitmoor")
    done = subprocess.run(
        [str(script), "build", str(HOMELAB_DIR), "--path", ROOT_PATH,
         "--objects", str(settings), *DECRYPTION, "--summary"],
        capture_output=True, text=True, env={**os.environ}, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "home-assistant/home-assistant" in done.stdout


def test_git_repository_defined_in_the_repository_is_fetched(
    repo: Repo, settings: Path, tmp_path: Path
) -> None:
    """A second GitRepository, declared in Git, feeds a Kustomization and a chart from a path."""
    other = tmp_path / "platform-extras"
    (other / "deploy").mkdir(parents=True)
    (other / "deploy" / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extras, namespace: flux-system}\n"
        "data: {greeting: hello}\n"
    )
    shutil.copytree(Path(HOMELAB_DIR).parent / "charts" / "jaeger", other / "charts" / "jaeger")
    git(other, "init", "-q", "-b", "main")
    Repo(other).commit("extras")
    (repo.path / "clusters/production/extras.yaml").write_text(f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: extras, namespace: flux-system}}
spec: {{interval: 5m, url: "file://{other}", ref: {{branch: main}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: extras, namespace: flux-system}}
spec:
  interval: 10m
  prune: true
  path: ./deploy
  sourceRef: {{kind: GitRepository, name: extras}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: tracing, namespace: flux-system}}
spec:
  interval: 10m
  targetNamespace: monitoring
  chart:
    spec:
      chart: ./charts/jaeger
      sourceRef: {{kind: GitRepository, name: extras}}
""")
    result = build(repo.path, settings)
    assert result.exit_code == 0, result.stderr
    keys = {(k.kind, k.namespace, k.name) for k in map(key_of, load_all(result.stdout, file="-"))}
    assert ("ConfigMap", "flux-system", "extras") in keys
    # helm-controller names a release with a targetNamespace "<targetNamespace>-<name>".
    assert any(
        kind == "Deployment" and namespace == "monitoring" and "monitoring-tracing" in name
        for kind, namespace, name in keys
    ), sorted(keys)
    summary = build(repo.path, settings, "--summary")
    assert "main@sha1:" in summary.stdout
