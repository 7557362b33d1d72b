"""The example homelab repository and the chart servers it needs, on 127.0.0.1.

The example's HelmRepositories and OCIRepositories read their addresses from
``${CHART_REPO_URL}`` and ``${OCI_REGISTRY}``; :func:`serve_example_charts` publishes every
stand-in chart to a real HTTP chart repository and a real OCI registry on free ports and
hands back the ``flux-system/cluster-settings`` ConfigMap that points the example at them
(the example's Kustomizations read it through an optional substituteFrom).
:func:`demo_decryption_secret` is the ``flux-system/sops-age`` Secret that decrypts the
example's SOPS-encrypted files, made from the published demo-only key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import helm_python

from gitmoor.demo.servers import ChartRepoServer, RegistryServer
from gitmoor.errors import SourceError
from gitmoor.manifests import KubeObject

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
HOMELAB_DIR = EXAMPLES_DIR / "homelab"
CHARTS_DIR = EXAMPLES_DIR / "charts"
ROOT_PATH = "clusters/production"
DEMO_AGE_KEY = EXAMPLES_DIR / "keys" / "demo.agekey"


@dataclass(frozen=True)
class ExampleCharts:
    registry: RegistryServer
    repository: ChartRepoServer
    archives: tuple[Path, ...]

    @property
    def cluster_settings(self) -> KubeObject:
        """The ConfigMap the example's Kustomizations substitute from."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-settings", "namespace": "flux-system"},
            "data": {"OCI_REGISTRY": self.registry.host, "CHART_REPO_URL": self.repository.url},
        }


def demo_decryption_secret() -> KubeObject:
    """The Secret the example's ``spec.decryption.secretRef`` names, holding the demo age key
    (published on purpose: it decrypts the example and nothing real)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sops-age", "namespace": "flux-system"},
        "type": "Opaque",
        "data": {"age.agekey": base64.b64encode(DEMO_AGE_KEY.read_bytes()).decode()},
    }


def package_example_charts(destination: Path, charts_dir: Path = CHARTS_DIR) -> list[Path]:
    """Every chart under ``charts_dir`` packaged into ``destination``, by the Helm SDK."""
    if not charts_dir.is_dir():
        raise SourceError(f"example charts not found at {charts_dir}")
    destination.mkdir(parents=True, exist_ok=True)
    return [
        Path(helm_python.package(chart, destination=destination))
        for chart in sorted(charts_dir.iterdir())
        if (chart / "Chart.yaml").is_file()
    ]


@contextmanager
def serve_example_charts(workdir: Path) -> Iterator[ExampleCharts]:
    """Start both chart servers, publish every example chart to both, stop them after."""
    archives = package_example_charts(workdir / "packages")
    with ExitStack() as stack:
        registry = stack.enter_context(RegistryServer(workdir / "registry"))
        repository = stack.enter_context(ChartRepoServer(workdir / "repository"))
        for archive in archives:
            registry.push(archive)
        repository.publish(*archives)
        yield ExampleCharts(registry, repository, tuple(archives))
