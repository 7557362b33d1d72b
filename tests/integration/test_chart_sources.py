"""Charts fetched from a real HTTP chart repository and a real docker-registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
from tls_fixtures import CLIENT_CERTIFICATE_REFUSED, TlsPki, make_pki

from gitmoor.demo.servers import (
    ChartRepoServer,
    RegistryServer,
    bcrypt_hasher,
    free_port,
    make_chart,
)
from gitmoor.errors import ChartNotFoundError, InputError, SourceError
from gitmoor.source.chartauth import RepoAuth
from gitmoor.source.charts import (
    HELM_CHART_LAYER,
    ChartArtifact,
    ChartCache,
    resolve_http_chart,
    resolve_oci_chart,
)

pytestmark = pytest.mark.integration

VERSIONS = ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "2.1.0-rc.1"]
USER, PASSWORD = "robot", "s3cret-Passw0rd"


def app_version(version: str) -> str:
    return f"app-{version}"


@pytest.fixture(scope="module")
def demo_charts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    built = tmp_path_factory.mktemp("built")
    charts = [make_chart(built, "demo", v, app_version(v)) for v in VERSIONS]
    return [*charts, make_chart(built, "other", "0.1.0", "0.1")]


@pytest.fixture(scope="module")
def chart_repo(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path]
) -> Iterator[ChartRepoServer]:
    with ChartRepoServer(tmp_path_factory.mktemp("repo")) as server:
        server.publish(*demo_charts)
        yield server


@pytest.fixture(scope="module")
def private_repo(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path]
) -> Iterator[ChartRepoServer]:
    directory = tmp_path_factory.mktemp("private")
    with ChartRepoServer(directory, username=USER, password=PASSWORD) as server:
        server.publish(*demo_charts)
        yield server


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path]
) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        for chart in demo_charts:
            server.push(chart)
        yield server


@pytest.fixture
def cache(tmp_path: Path) -> ChartCache:
    return ChartCache(tmp_path / "cache")


def rendered_image(artifact: ChartArtifact) -> str:
    with helm_python.Chart.load(artifact.path) as chart:
        manifests = chart.render(name="demo", namespace="apps")
    deployment = manifests["demo/templates/deployment.yaml"]
    return next(
        line.split(":", 1)[1].strip() for line in deployment.splitlines() if "image:" in line
    )


def assert_cached(artifact: ChartArtifact, cache: ChartCache) -> None:
    assert artifact.path == cache.root / "charts" / f"{artifact.digest.replace(':', '-')}.tgz"
    assert helm_python.digest(artifact.path) == artifact.digest


# --- HTTP chart repository -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (">=1.0.0 <2.0.0", "1.10.0"),
        ("~1.2", "1.2.0"),
        ("^1.2", "1.10.0"),
        ("1.2.x", "1.2.0"),
        ("*", "2.0.0"),
        (None, "2.0.0"),
        ("1.0.0", "1.0.0"),
        ("v1.0.0", "1.0.0"),
        (">=2.1.0-rc.0", "2.1.0-rc.1"),
    ],
)
def test_http_chart_newest_match(
    chart_repo: ChartRepoServer, cache: ChartCache, constraint: str | None, expected: str
) -> None:
    artifact = resolve_http_chart(chart_repo.url, "demo", constraint, cache=cache)

    assert (artifact.name, artifact.version, artifact.revision) == ("demo", expected, expected)
    assert_cached(artifact, cache)
    index = helm_python.repo_index(chart_repo.url)
    listed = next(e for e in index["entries"]["demo"] if e["version"] == expected)
    assert artifact.digest == f"sha256:{listed['digest']}"


def test_http_chart_renders(chart_repo: ChartRepoServer, cache: ChartCache) -> None:
    artifact = resolve_http_chart(chart_repo.url, "demo", "1.2.0", cache=cache)

    assert rendered_image(artifact) == f'"nginx:{app_version("1.2.0")}"'


def test_http_missing_chart_names_what_exists(
    chart_repo: ChartRepoServer, cache: ChartCache
) -> None:
    with pytest.raises(ChartNotFoundError) as caught:
        resolve_http_chart(chart_repo.url, "nope", "^1.0", cache=cache)

    message = str(caught.value)
    assert chart_repo.url in message
    assert "'nope'" in message
    assert "'^1.0'" in message
    assert "demo, other" in message


def test_http_missing_version_lists_newest(chart_repo: ChartRepoServer, cache: ChartCache) -> None:
    with pytest.raises(ChartNotFoundError) as caught:
        resolve_http_chart(chart_repo.url, "demo", ">=5.0.0", cache=cache)

    message = str(caught.value)
    assert chart_repo.url in message
    assert "'demo'" in message
    assert "'>=5.0.0'" in message
    assert "2.1.0-rc.1, 2.0.0, 1.10.0, 1.2.0, 1.0.0" in message


def test_http_second_resolve_downloads_nothing(
    chart_repo: ChartRepoServer, cache: ChartCache
) -> None:
    def downloads() -> int:
        return chart_repo.requests.count("/demo-1.0.0.tgz")

    before = downloads()
    first = resolve_http_chart(chart_repo.url, "demo", "~1.0", cache=cache)
    assert downloads() == before + 1

    second = resolve_http_chart(chart_repo.url, "demo", "1.0.0", cache=ChartCache(cache.root))

    assert downloads() == before + 1
    assert second == first


def test_http_digest_mismatch_is_refused(tmp_path: Path, cache: ChartCache) -> None:
    with ChartRepoServer(tmp_path / "repo") as server:
        server.publish(make_chart(tmp_path / "a", "demo", "1.0.0", "1.0"))
        # Same name and version, other content: what the index lists no longer matches.
        make_chart(tmp_path / "b", "demo", "1.0.0", "tampered").replace(
            server.directory / "demo-1.0.0.tgz"
        )

        with pytest.raises(SourceError) as caught:
            resolve_http_chart(server.url, "demo", "1.0.0", cache=cache)

    assert "digest" in str(caught.value)
    assert not list((cache.root / "charts").glob("*.tgz"))


def test_http_basic_auth(private_repo: ChartRepoServer, cache: ChartCache) -> None:
    auth = RepoAuth(username=USER, password=PASSWORD)

    artifact = resolve_http_chart(private_repo.url, "demo", "^2", cache=cache, auth=auth)

    assert artifact.version == "2.0.0"
    assert_cached(artifact, cache)


@pytest.mark.parametrize("auth", [RepoAuth(username=USER, password="wrong-pw"), None])
def test_http_basic_auth_refused(
    private_repo: ChartRepoServer, cache: ChartCache, auth: RepoAuth | None
) -> None:
    with pytest.raises(SourceError) as caught:
        resolve_http_chart(private_repo.url, "demo", "^2", cache=cache, auth=auth)

    assert not isinstance(caught.value, ChartNotFoundError)
    assert private_repo.url in str(caught.value)
    assert "wrong-pw" not in str(caught.value)


def test_http_credentials_stay_with_the_repository_host(tmp_path: Path, cache: ChartCache) -> None:
    chart = make_chart(tmp_path / "built", "demo", "1.0.0", "1.0")
    with (
        ChartRepoServer(tmp_path / "files", username=USER, password=PASSWORD) as files,
        ChartRepoServer(tmp_path / "index", username=USER, password=PASSWORD) as index,
    ):
        files.publish(chart)
        (index.directory / "index.yaml").write_bytes((files.directory / "index.yaml").read_bytes())
        auth = RepoAuth(username=USER, password=PASSWORD)

        with pytest.raises(SourceError):
            resolve_http_chart(index.url, "demo", "1.0.0", cache=cache, auth=auth)
        artifact = resolve_http_chart(
            index.url, "demo", "1.0.0", cache=cache, auth=auth, pass_credentials=True
        )

    assert artifact.digest == helm_python.digest(chart)


def test_http_unreachable_repository(cache: ChartCache) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError) as caught:
        resolve_http_chart(
            url.replace("//", f"//{USER}:{PASSWORD}@"),
            "demo",
            None,
            cache=cache,
            auth=RepoAuth(username=USER, password=PASSWORD),
        )

    assert not isinstance(caught.value, ChartNotFoundError)
    assert url in str(caught.value)
    assert PASSWORD not in str(caught.value)


# --- OCI registry --------------------------------------------------------------------------


def manifest_digest(registry: RegistryServer, chart: str, tag: str) -> str:
    with helm_python.RegistryClient(plain_http=True) as client:
        return str(client.resolve(f"{registry.url}/charts/{chart}:{tag}")["digest"])


def test_oci_tag(registry: RegistryServer, cache: ChartCache) -> None:
    artifact = resolve_oci_chart(
        f"{registry.url}/charts/demo",
        tag="1.2.0",
        cache=cache,
        plain_http=True,
        layer_selector_media_type=HELM_CHART_LAYER,
    )

    assert (artifact.name, artifact.version) == ("demo", "1.2.0")
    assert artifact.revision == f"1.2.0@{manifest_digest(registry, 'demo', '1.2.0')}"
    assert_cached(artifact, cache)
    assert rendered_image(artifact) == f'"nginx:{app_version("1.2.0")}"'


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [(">=1.0.0 <2.0.0", "1.10.0"), ("~1.2", "1.2.0"), ("*", "2.0.0"), ("2.1.0-rc.1", "2.1.0-rc.1")],
)
def test_oci_semver(
    registry: RegistryServer, cache: ChartCache, constraint: str, expected: str
) -> None:
    artifact = resolve_oci_chart(
        f"{registry.url}/charts/demo", semver=constraint, cache=cache, plain_http=True
    )

    assert artifact.version == expected
    assert artifact.revision == f"{expected}@{manifest_digest(registry, 'demo', expected)}"
    assert_cached(artifact, cache)


def test_oci_digest(registry: RegistryServer, cache: ChartCache) -> None:
    pinned = manifest_digest(registry, "demo", "1.0.0")

    artifact = resolve_oci_chart(
        f"{registry.url}/charts/demo", digest=pinned, cache=cache, plain_http=True
    )

    assert (artifact.version, artifact.revision) == ("1.0.0", pinned)
    assert_cached(artifact, cache)


def test_oci_ref_precedence(registry: RegistryServer, cache: ChartCache) -> None:
    url = f"{registry.url}/charts/demo"
    pinned = manifest_digest(registry, "demo", "1.0.0")

    by_digest = resolve_oci_chart(
        url, tag="2.0.0", semver="~1.2", digest=pinned, cache=cache, plain_http=True
    )
    by_semver = resolve_oci_chart(url, tag="2.0.0", semver="~1.2", cache=cache, plain_http=True)

    assert by_digest.version == "1.0.0"
    assert by_semver.version == "1.2.0"


def test_oci_default_tag_is_latest(registry: RegistryServer, cache: ChartCache) -> None:
    with pytest.raises(ChartNotFoundError) as caught:
        resolve_oci_chart(f"{registry.url}/charts/demo", cache=cache, plain_http=True)

    assert "'latest'" in str(caught.value)


def test_oci_missing_tag_lists_newest(registry: RegistryServer, cache: ChartCache) -> None:
    url = f"{registry.url}/charts/demo"
    with pytest.raises(ChartNotFoundError) as caught:
        resolve_oci_chart(url, tag="9.9.9", cache=cache, plain_http=True)

    message = str(caught.value)
    assert url in message
    assert "'9.9.9'" in message
    assert "2.1.0-rc.1, 2.0.0, 1.10.0, 1.2.0, 1.0.0" in message


def test_oci_missing_semver_and_chart(registry: RegistryServer, cache: ChartCache) -> None:
    with pytest.raises(ChartNotFoundError) as no_version:
        resolve_oci_chart(f"{registry.url}/charts/demo", semver=">=3", cache=cache, plain_http=True)
    with pytest.raises(ChartNotFoundError) as no_chart:
        resolve_oci_chart(f"{registry.url}/charts/nope", semver="*", cache=cache, plain_http=True)

    assert "'>=3'" in str(no_version.value)
    assert f"{registry.url}/charts/nope" in str(no_chart.value)


def test_oci_second_resolve_downloads_nothing(
    registry: RegistryServer, cache: ChartCache, tmp_path: Path
) -> None:
    url = registry.push(make_chart(tmp_path / "built", "cached", "0.1.0", "0.1"), "cachetest")
    first = resolve_oci_chart(url, tag="0.1.0", cache=cache, plain_http=True)
    # Without the chart's layer in the registry, only the cache can answer.
    registry.delete_blob("cachetest/cached", first.digest)

    second = resolve_oci_chart(url, tag="0.1.0", cache=ChartCache(cache.root), plain_http=True)

    assert second == first
    with pytest.raises(SourceError):
        resolve_oci_chart(url, tag="0.1.0", cache=ChartCache(tmp_path / "empty"), plain_http=True)
    # A pinned digest already cached is answered without asking any registry.
    pinned = first.revision.split("@", 1)[1]
    offline = f"oci://127.0.0.1:{free_port()}/cachetest/cached"
    third = resolve_oci_chart(offline, digest=pinned, cache=cache, plain_http=True)
    assert (third.path, third.revision) == (first.path, pinned)


def test_oci_unreachable_registry(cache: ChartCache) -> None:
    url = f"oci://127.0.0.1:{free_port()}/charts/demo"
    with pytest.raises(SourceError) as caught:
        resolve_oci_chart(url, tag="1.0.0", cache=cache, plain_http=True)

    assert not isinstance(caught.value, ChartNotFoundError)
    assert url in str(caught.value)


def test_oci_only_helm_layers(registry: RegistryServer, cache: ChartCache) -> None:
    with pytest.raises(SourceError) as caught:
        resolve_oci_chart(
            f"{registry.url}/charts/demo",
            tag="1.0.0",
            cache=cache,
            plain_http=True,
            layer_selector_media_type="application/vnd.cncf.flux.content.v1.tar+gzip",
        )

    assert caught.value.location.field == "spec.layerSelector.mediaType"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/charts/demo", "oci://127.0.0.1", "oci://127.0.0.1/charts/demo:1.0"]
)
def test_oci_url_must_name_a_repository(url: str, cache: ChartCache) -> None:
    with pytest.raises(InputError):
        resolve_oci_chart(url, cache=cache)


@pytest.fixture(scope="module")
def private_registry(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path]
) -> Iterator[RegistryServer]:
    if bcrypt_hasher() is None:
        pytest.skip("no bcrypt implementation (python bcrypt or crypt) to write an htpasswd file")
    directory = tmp_path_factory.mktemp("private-registry")
    with RegistryServer(directory, username=USER, password=PASSWORD) as server:
        server.push(demo_charts[0])
        yield server


def test_oci_login(private_registry: RegistryServer, cache: ChartCache) -> None:
    artifact = resolve_oci_chart(
        f"{private_registry.url}/charts/demo",
        semver="1.x",
        cache=cache,
        auth=RepoAuth(username=USER, password=PASSWORD),
        plain_http=True,
    )

    assert artifact.version == "1.0.0"
    assert_cached(artifact, cache)
    assert not list((cache.root / "charts" / "tmp").iterdir())


@pytest.mark.parametrize("auth", [RepoAuth(username=USER, password="wrong-pw"), None])
def test_oci_login_refused(
    private_registry: RegistryServer, cache: ChartCache, auth: RepoAuth | None
) -> None:
    url = f"{private_registry.url}/charts/demo"
    with pytest.raises(SourceError) as caught:
        resolve_oci_chart(url, tag="1.0.0", cache=cache, auth=auth, plain_http=True)

    assert not isinstance(caught.value, ChartNotFoundError)
    assert private_registry.host in str(caught.value)
    assert "wrong-pw" not in str(caught.value)


# --- TLS: a private CA and a client certificate --------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_repo(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path], pki: TlsPki
) -> Iterator[ChartRepoServer]:
    """An HTTPS chart repository that wants a client certificate its CA signed."""
    tls = pki.server_tls(require_client_certificate=True)
    with ChartRepoServer(tmp_path_factory.mktemp("tls-repo"), tls=tls) as server:
        server.publish(*demo_charts)
        yield server


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, demo_charts: list[Path], pki: TlsPki
) -> Iterator[RegistryServer]:
    """A docker-registry over TLS that wants a client certificate its CA signed."""
    tls = pki.server_tls(require_client_certificate=True)
    with RegistryServer(tmp_path_factory.mktemp("tls-registry"), tls=tls) as server:
        for chart in demo_charts:
            server.push(chart, auth=RepoAuth().with_tls(pki.secret_data()))
        yield server


def test_https_repository_with_a_private_ca_and_a_client_certificate(
    tls_repo: ChartRepoServer, pki: TlsPki, cache: ChartCache
) -> None:
    auth = RepoAuth().with_tls(pki.secret_data())

    artifact = resolve_http_chart(tls_repo.url, "demo", "1.x", cache=cache, auth=auth)

    assert (artifact.name, artifact.version) == ("demo", "1.10.0")
    assert rendered_image(artifact) == f'"nginx:{app_version("1.10.0")}"'
    assert tls_repo.requests == ["/index.yaml", "/demo-1.10.0.tgz"]
    assert not list((cache.root / "charts" / "tmp").iterdir())


@pytest.mark.parametrize(
    ("client_certificate", "trusted", "says"),
    [
        (False, True, CLIENT_CERTIFICATE_REFUSED),
        (True, False, "certificate signed by unknown authority"),
    ],
)
def test_https_repository_refuses_what_tls_does_not_allow(
    tls_repo: ChartRepoServer,
    pki: TlsPki,
    cache: ChartCache,
    client_certificate: bool,
    trusted: bool,
    says: str,
) -> None:
    data = pki.secret_data(client_certificate=client_certificate)
    if not trusted:
        del data["ca.crt"]
    before = len(tls_repo.requests)

    with pytest.raises(SourceError) as caught:
        resolve_http_chart(tls_repo.url, "demo", "1.x", cache=cache,
                           auth=RepoAuth().with_tls(data))  # fmt: skip

    assert re.search(says, str(caught.value)), caught.value
    assert tls_repo.url in str(caught.value)
    assert len(tls_repo.requests) == before


def test_oci_registry_with_a_private_ca_and_a_client_certificate(
    tls_registry: RegistryServer, pki: TlsPki, cache: ChartCache
) -> None:
    auth = RepoAuth().with_tls(pki.secret_data())

    artifact = resolve_oci_chart(
        f"{tls_registry.url}/charts/demo", semver="~1.2", cache=cache, auth=auth
    )

    assert artifact.version == "1.2.0"
    assert rendered_image(artifact) == f'"nginx:{app_version("1.2.0")}"'


@pytest.mark.parametrize("client_certificate", [False, True])
def test_oci_registry_refuses_what_tls_does_not_allow(
    tls_registry: RegistryServer, pki: TlsPki, cache: ChartCache, client_certificate: bool
) -> None:
    data = pki.secret_data(client_certificate=client_certificate)
    if client_certificate:
        del data["ca.crt"]  # the client certificate alone: the server is not trusted

    with pytest.raises(SourceError) as caught:
        resolve_oci_chart(f"{tls_registry.url}/charts/demo", tag="1.0.0", cache=cache,
                          auth=RepoAuth().with_tls(data))  # fmt: skip

    assert not isinstance(caught.value, ChartNotFoundError)
    assert tls_registry.host in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)
