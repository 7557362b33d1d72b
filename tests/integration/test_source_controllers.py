"""The HelmRepository and OCIRepository controllers on the sandbox, against a real HTTP chart
repository (basic auth, TLS with a client certificate) and a real docker-registry:
artifacts, new revisions and their
Events, refused credentials and a vanished server keeping the last artifact, semver and
digest references, and the ``type: oci`` HelmRepository that stores nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import helm_python
import pytest
from tls_fixtures import make_pki

from gitmoor.apply.health import Status, health
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.chartsources import artifact_path, stored_index
from gitmoor.controllers.context import FINALIZER
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.controllers.run import build_manager, install_crds
from gitmoor.demo.servers import ChartRepoServer, RegistryServer, bcrypt_hasher, make_chart
from gitmoor.source.chartauth import RepoAuth
from gitmoor.source.charts import ChartCache, resolve_http_chart

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]
pytestmark = pytest.mark.integration

SOURCE = "source.toolkit.fluxcd.io/v1"
NS = "flux-system"
USER, PASSWORD = "robot", "s3cret-Passw0rd"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.2)


def secret(name: str, username: str, password: str) -> dict[str, Any]:
    return secret_of(name, {"username": username.encode(), "password": password.encode()})


def secret_of(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }  # fmt: skip


def source(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": SOURCE, "kind": kind, "metadata": {"name": name, "namespace": NS},
            "spec": {"interval": "1h", **spec}}  # fmt: skip


@dataclass
class Running:
    cluster: Cluster
    cache: ChartCache
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        obj = await self.cluster.get(SOURCE, kind, name, NS)
        assert obj is not None
        return obj

    async def request(self, kind: str, name: str) -> str:
        """Ask for a reconcile now (the sources' interval is an hour)."""
        stamp = str(time.time_ns())
        await self.cluster.patch(await self.get(kind, name),
                                 {"metadata": {"annotations": {REQUESTED_AT: stamp}}})  # fmt: skip
        return stamp

    async def settled(self, kind: str, name: str, stamp: str | None = None) -> dict[str, Any]:
        """The object once a reconcile (the one ``stamp`` asked for) has written Ready."""
        found: dict[str, Any] = {}

        async def done() -> bool:
            """the reconcile wrote its status"""
            obj = await self.cluster.get(SOURCE, kind, name, NS)
            status = (obj or {}).get("status") or {}
            if stamp is not None and status.get("lastHandledReconcileAt") != stamp:
                return False
            if conditions.find(status.get("conditions"), conditions.READY) is None:
                return False
            found.update(obj or {})
            return True

        await eventually(done)
        return found

    async def events(self, name: str, reason: str) -> list[dict[str, Any]]:
        return [
            e for e in await self.cluster.list("v1", "Event", namespace=NS)
            if e["involvedObject"]["name"] == name and e["reason"] == reason
        ]  # fmt: skip


@pytest.fixture
async def running(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Running]:
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster)
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    manager, context = build_manager(cluster, cache_dir=tmp_path / "cache")
    state = Running(cluster, ChartCache(context.store.root))
    state.tasks.append(asyncio.create_task(manager.run()))
    try:
        yield state
    finally:
        for task in state.tasks:
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await cluster.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("charts")
    return {v: make_chart(directory, "demo", v, f"app-{v}") for v in
            ("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1")}  # fmt: skip


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    found = conditions.find(obj["status"]["conditions"], conditions.READY)
    assert found is not None
    return dict(found)


def chart_version(path: Path) -> str:
    with helm_python.Chart.load(path) as chart:
        return str(chart.metadata["version"])


@pytest.mark.timeout(180)
async def test_helm_repository_follows_the_index_and_keeps_it_through_failures(
    running: Running, built: dict[str, Path], tmp_path: Path
) -> None:
    repo = ChartRepoServer(tmp_path / "repo", username=USER, password=PASSWORD)
    repo.publish(built["1.0.0"])
    repo.start()
    try:
        cluster = running.cluster
        await cluster.apply(secret("repo-auth", USER, PASSWORD))
        await cluster.apply(source("HelmRepository", "charts", url=repo.url,
                                   secretRef={"name": "repo-auth"}))  # fmt: skip

        first = await running.settled("HelmRepository", "charts")
        artifact = first["status"]["artifact"]
        assert ready(first)["status"] == "True", ready(first)
        assert ready(first)["reason"] == "Succeeded"
        assert ready(first)["message"] == f"stored artifact: revision '{artifact['revision']}'"
        assert conditions.is_true(first, conditions.ARTIFACT_IN_STORAGE)
        assert artifact["revision"].startswith("sha256:")
        assert artifact["digest"] == artifact["revision"]
        hexdigest = artifact["revision"].removeprefix("sha256:")
        assert artifact["path"] == f"helmrepository/{NS}/charts/index-{hexdigest}.yaml"
        stored = artifact_path(first, running.cache)
        assert stored is not None
        assert artifact["size"] == stored.stat().st_size
        assert artifact["url"] == stored.as_uri()
        assert FINALIZER in first["metadata"]["finalizers"]
        index = stored_index(first, running.cache)
        assert index is not None
        assert [e["version"] for e in index["entries"]["demo"]] == ["1.0.0"]
        assert len(await running.events("charts", "NewArtifact")) == 1

        # A chart published: a new index revision, a NewArtifact Event naming it, and the
        # stored index is what a HelmRelease resolves charts from.
        repo.publish(built["1.1.0"])
        stamp = await running.request("HelmRepository", "charts")
        second = await running.settled("HelmRepository", "charts", stamp)
        revision = second["status"]["artifact"]["revision"]
        assert revision != artifact["revision"]
        new = await running.events("charts", "NewArtifact")
        assert [e["metadata"]["annotations"]["source.toolkit.fluxcd.io/revision"]
                for e in new] == [artifact["revision"], revision]  # fmt: skip
        assert all(e["type"] == "Normal" for e in new)
        index = stored_index(second, running.cache)
        assert index is not None
        fetched = repo.requests.count("/index.yaml")
        chart = await asyncio.to_thread(
            resolve_http_chart, repo.url, "demo", "^1", cache=running.cache, index=index,
            auth=RepoAuth(username=USER, password=PASSWORD),
        )  # fmt: skip
        assert chart.version == "1.1.0"
        assert repo.requests.count("/index.yaml") == fetched  # the stored index served

        # Credentials refused: Ready False, the last artifact kept, a Warning Event.
        await cluster.apply(secret("repo-auth", USER, "wrong-pw"))
        stamp = await running.request("HelmRepository", "charts")
        refused = await running.settled("HelmRepository", "charts", stamp)
        assert ready(refused)["status"] == "False"
        assert ready(refused)["reason"] == "AuthenticationFailed"
        assert "401" in ready(refused)["message"]
        assert conditions.is_true(refused, conditions.FETCH_FAILED)
        assert refused["status"]["artifact"]["revision"] == revision
        assert artifact_path(refused, running.cache) is not None
        warnings = await running.events("charts", "AuthenticationFailed")
        assert [e["type"] for e in warnings] == ["Warning"]
        assert "wrong-pw" not in json.dumps([refused["status"], *warnings])

        # The server gone: Ready False for another reason, still the same artifact.
        await cluster.apply(secret("repo-auth", USER, PASSWORD))
        repo.stop()
        stamp = await running.request("HelmRepository", "charts")
        gone = await running.settled("HelmRepository", "charts", stamp)
        assert ready(gone)["status"] == "False"
        assert ready(gone)["reason"] == "IndexationFailed"
        assert repo.url in ready(gone)["message"]
        assert gone["status"]["artifact"] == refused["status"]["artifact"]
    finally:
        repo.stop()


@pytest.mark.timeout(180)
async def test_oci_repository_semver_digest_and_login(
    running: Running, built: dict[str, Path], tmp_path: Path
) -> None:
    if bcrypt_hasher() is None:
        pytest.skip("no bcrypt implementation (python bcrypt or crypt) to write an htpasswd file")
    cluster = running.cluster
    with RegistryServer(tmp_path / "registry", username=USER, password=PASSWORD) as registry:
        for version in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
            url = registry.push(built[version])
        with (
            tempfile.TemporaryDirectory() as private,
            helm_python.RegistryClient(
                plain_http=True, credentials_file=Path(private) / "registry.json"
            ) as client,
        ):
            client.login(registry.host, USER, PASSWORD, plain_http=True)
            pinned = str(client.resolve(f"{url}:1.0.0")["digest"])
        await cluster.apply(secret("registry-auth", USER, PASSWORD))
        auth = {"secretRef": {"name": "registry-auth"}, "insecure": True}
        await cluster.apply(source("OCIRepository", "ranged", url=url,
                                   ref={"semver": ">=1.0.0 <2.0.0"}, **auth))  # fmt: skip
        await cluster.apply(source("OCIRepository", "pinned", url=url,
                                   ref={"digest": pinned}, **auth))  # fmt: skip

        ranged = await running.settled("OCIRepository", "ranged")
        artifact = ranged["status"]["artifact"]
        assert ready(ranged)["status"] == "True", ready(ranged)
        assert artifact["revision"].startswith("1.1.0@sha256:")
        assert ready(ranged)["message"] == f"stored artifact for digest '{artifact['revision']}'"
        manifest = artifact["revision"].removeprefix("1.1.0@sha256:")
        assert artifact["path"] == f"ocirepository/{NS}/ranged/{manifest}.tar.gz"
        chart = artifact_path(ranged, running.cache)
        assert chart is not None
        assert chart_version(chart) == "1.1.0"
        assert artifact["digest"] == helm_python.digest(chart)

        pinned_obj = await running.settled("OCIRepository", "pinned")
        assert ready(pinned_obj)["status"] == "True", ready(pinned_obj)
        assert pinned_obj["status"]["artifact"]["revision"] == pinned
        pinned_chart = artifact_path(pinned_obj, running.cache)
        assert pinned_chart is not None
        assert chart_version(pinned_chart) == "1.0.0"

        # A newer tag in range: the next reconcile moves to it, with an Event; the pinned
        # digest stays where it is.
        registry.push(built["1.2.0"])
        stamp = await running.request("OCIRepository", "ranged")
        moved = await running.settled("OCIRepository", "ranged", stamp)
        assert moved["status"]["artifact"]["revision"].startswith("1.2.0@sha256:")
        revisions = [
            e["metadata"]["annotations"]["source.toolkit.fluxcd.io/revision"]
            for e in await running.events("ranged", "NewArtifact")
        ]
        assert revisions == [artifact["revision"], moved["status"]["artifact"]["revision"]]
        stamp = await running.request("OCIRepository", "pinned")
        again = await running.settled("OCIRepository", "pinned", stamp)
        assert again["status"]["artifact"] == pinned_obj["status"]["artifact"]
        assert len(await running.events("pinned", "NewArtifact")) == 1

        # Credentials refused: AuthenticationFailed, the last artifact kept.
        await cluster.apply(secret("registry-auth", USER, "wrong-pw"))
        stamp = await running.request("OCIRepository", "ranged")
        refused = await running.settled("OCIRepository", "ranged", stamp)
        assert ready(refused)["status"] == "False"
        assert ready(refused)["reason"] == "AuthenticationFailed"
        assert refused["status"]["artifact"] == moved["status"]["artifact"]
        assert "wrong-pw" not in json.dumps(refused["status"])

        # The registry gone: OCIArtifactPullFailed, the artifact still kept.
        await cluster.apply(secret("registry-auth", USER, PASSWORD))
    stamp = await running.request("OCIRepository", "ranged")
    gone = await running.settled("OCIRepository", "ranged", stamp)
    assert ready(gone)["reason"] == "OCIArtifactPullFailed"
    assert gone["status"]["artifact"] == moved["status"]["artifact"]


@pytest.mark.timeout(120)
async def test_oci_helm_repository_is_ready_without_an_artifact(running: Running) -> None:
    await running.cluster.apply(source("HelmRepository", "oci-charts", type="oci",
                                       url="oci://127.0.0.1:1/charts"))  # fmt: skip

    obj = await running.settled("HelmRepository", "oci-charts")

    assert ready(obj) | {"lastTransitionTime": None} == {
        "type": "Ready", "status": "True", "reason": "Succeeded",
        "message": "Helm repository is Ready", "observedGeneration": 1,
        "lastTransitionTime": None,
    }  # fmt: skip
    assert "artifact" not in obj["status"]
    assert FINALIZER not in (obj["metadata"].get("finalizers") or [])
    assert artifact_path(obj, running.cache) is None
    # What a Kustomization's health check sees.
    assert health(obj).status == Status.CURRENT


@pytest.mark.timeout(120)
async def test_what_cannot_be_honoured_is_refused_clearly(running: Running) -> None:
    await running.cluster.apply(source("OCIRepository", "signed", url="oci://127.0.0.1:1/c/d",
                                       verify={"provider": "cosign"}))  # fmt: skip

    signed = await running.settled("OCIRepository", "signed")

    assert ready(signed)["status"] == "False"
    assert conditions.is_true(signed, conditions.STALLED)
    assert "spec.verify" in ready(signed)["message"]


@pytest.mark.timeout(180)
async def test_tls_from_a_cert_secret(
    running: Running, built: dict[str, Path], tmp_path: Path
) -> None:
    """Both sources against servers that want a client certificate from a private CA."""
    cluster = running.cluster
    pki = make_pki(tmp_path / "pki")
    tls = pki.server_tls(require_client_certificate=True)
    client = RepoAuth().with_tls(pki.secret_data())
    with (
        ChartRepoServer(tmp_path / "repo", tls=tls) as repo,
        RegistryServer(tmp_path / "registry", tls=tls) as registry,
    ):
        repo.publish(built["1.0.0"], built["1.1.0"])
        url = registry.push(built["1.1.0"], auth=client)
        await cluster.apply(secret_of("client-tls", pki.secret_data()))
        await cluster.apply(secret_of("ca-only", pki.secret_data(client_certificate=False)))
        await cluster.apply(secret_of("half", {"tls.crt": pki.client_crt.read_bytes()}))
        cert = {"certSecretRef": {"name": "client-tls"}}
        await cluster.apply(source("HelmRepository", "secure", url=repo.url, **cert))
        await cluster.apply(source("OCIRepository", "secure", url=url, ref={"tag": "1.1.0"},
                                   **cert))  # fmt: skip
        await cluster.apply(source("HelmRepository", "ca-only", url=repo.url,
                                   certSecretRef={"name": "ca-only"}))  # fmt: skip
        await cluster.apply(source("HelmRepository", "half", url=repo.url,
                                   certSecretRef={"name": "half"}))  # fmt: skip
        await cluster.apply(source("OCIRepository", "missing", url=url, ref={"tag": "1.1.0"},
                                   certSecretRef={"name": "nowhere"}))  # fmt: skip

        helm = await running.settled("HelmRepository", "secure")
        oci = await running.settled("OCIRepository", "secure")
        ca_only = await running.settled("HelmRepository", "ca-only")
        half = await running.settled("HelmRepository", "half")
        missing = await running.settled("OCIRepository", "missing")

    assert ready(helm)["status"] == "True", ready(helm)
    index = stored_index(helm, running.cache)
    assert index is not None
    assert sorted(e["version"] for e in index["entries"]["demo"]) == ["1.0.0", "1.1.0"]
    assert ready(oci)["status"] == "True", ready(oci)
    chart = artifact_path(oci, running.cache)
    assert chart is not None
    assert chart_version(chart) == "1.1.0"

    assert ready(ca_only)["status"] == "False"
    assert ready(ca_only)["reason"] == "IndexationFailed"
    assert re.search(
        r"certificate required|connection reset by peer|broken pipe", ready(ca_only)["message"]
    ), ready(ca_only)  # as in test_chart_sources
    assert ready(half)["status"] == "False"
    assert f"Secret {NS}/half" in ready(half)["message"]
    assert "data.tls.key" in ready(half)["message"]
    assert ready(missing)["status"] == "False"
    assert ready(missing)["reason"] == "AuthenticationFailed"
    assert "spec.certSecretRef" in ready(missing)["message"]
    assert f"secret '{NS}/nowhere' not found" in ready(missing)["message"]
    written = json.dumps([o["status"] for o in (helm, oci, ca_only, half, missing)])
    assert "PRIVATE KEY" not in written
    assert "BEGIN CERTIFICATE" not in written
