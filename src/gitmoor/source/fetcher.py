"""Fetching what Flux source objects point at, for builds outside a cluster.

The one place that turns GitRepository, HelmRepository and OCIRepository specs into
calls to the Git and chart fetchers, with a cache directory shared between runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from gitmoor.api.meta import LocalObjectReference
from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository
from gitmoor.render.repository import ChartSource, SourceTree
from gitmoor.source.artifacts import ArtifactStore
from gitmoor.source.chartauth import NamedSecret, RepoAuth, read_repo_auth
from gitmoor.source.charts import ChartCache, resolve_http_chart, resolve_oci_chart
from gitmoor.source.git import GitAuth, GitRef, fetch_git

SecretLookup = Callable[[str, str], Mapping[str, bytes] | None]
"""(namespace, name) of a Secret → its decoded data, or None when it is not known."""


def git_ref(repository: GitRepository) -> GitRef:
    ref = repository.spec.ref
    if ref is None:
        return GitRef(branch="master")  # Flux's default when spec.ref is absent
    return GitRef(
        branch=ref.branch, tag=ref.tag, semver=ref.semver, commit=ref.commit, name=ref.name
    )


class Fetcher:
    """Implements :class:`gitmoor.render.repository.Sources` against real servers.

    Each source is fetched once per Fetcher, however many units ask for it and from
    however many threads; a second asker waits for the first fetch and shares it.
    """

    def __init__(self, cache_dir: Path, secrets: SecretLookup | None = None) -> None:
        self.store = ArtifactStore(cache_dir)
        self.charts = ChartCache(cache_dir)
        self._secrets = secrets or (lambda namespace, name: None)
        self._fetched: dict[tuple[str, ...], SourceTree | ChartSource] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def _once(
        self, key: tuple[str, ...], fetch: Callable[[], SourceTree | ChartSource]
    ) -> SourceTree | ChartSource:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._fetched:
                self._fetched[key] = fetch()
            return self._fetched[key]

    def git(self, repository: GitRepository) -> SourceTree:
        ref = git_ref(repository)

        def fetch() -> SourceTree:
            auth = None
            if repository.spec.secret_ref is not None:
                data = self._secrets(repository.namespace, repository.spec.secret_ref.name)
                auth = GitAuth.from_secret_data(data) if data is not None else None
            artifact = fetch_git(
                repository.spec.url,
                ref,
                store=self.store,
                auth=auth,
                ignore=repository.spec.ignore,
            )
            return SourceTree(revision=artifact.revision, path=artifact.path)

        key = ("git", repository.spec.url, repr(ref), repository.spec.ignore or "")
        tree = self._once(key, fetch)
        assert isinstance(tree, SourceTree)
        return tree

    def _repo_auth(self, repository: HelmRepository | OCIRepository) -> RepoAuth | None:
        """Credentials from the Secrets the lookup finds; one it does not is left out."""

        def named(ref: LocalObjectReference | None) -> NamedSecret | None:
            data = self._secrets(repository.namespace, ref.name) if ref else None
            return None if ref is None or data is None else (ref.name, data)

        spec = repository.spec
        return read_repo_auth(
            repository.namespace, named(spec.secret_ref), named(spec.cert_secret_ref)
        )

    def helm_chart(
        self, repository: HelmRepository, chart: str, version: str | None
    ) -> ChartSource:
        spec = repository.spec

        def fetch() -> ChartSource:
            auth = self._repo_auth(repository)
            if spec.is_oci:
                artifact = resolve_oci_chart(
                    f"{spec.url.rstrip('/')}/{chart}",
                    semver=version or "*",  # Flux takes the newest stable tag
                    cache=self.charts,
                    auth=auth,
                    plain_http=bool(spec.insecure),
                )
            else:
                artifact = resolve_http_chart(
                    spec.url, chart, version, cache=self.charts, auth=auth
                )
            # A HelmRelease's chart revision is the chart version, as helm-controller reports.
            return ChartSource(revision=artifact.version, path=artifact.path)

        source = self._once(("helm", spec.url, chart, version or ""), fetch)
        assert isinstance(source, ChartSource)
        return source

    def oci_chart(self, repository: OCIRepository) -> ChartSource:
        spec = repository.spec
        ref = spec.ref

        def fetch() -> ChartSource:
            artifact = resolve_oci_chart(
                spec.url,
                tag=ref.tag if ref else None,
                semver=ref.semver if ref else None,
                digest=ref.digest if ref else None,
                cache=self.charts,
                auth=self._repo_auth(repository),
                plain_http=bool(spec.insecure),
                layer_selector_media_type=spec.layer_selector.media_type
                if spec.layer_selector
                else None,
            )
            return ChartSource(revision=artifact.revision, path=artifact.path)

        source = self._once(("oci", spec.url, repr(ref)), fetch)
        assert isinstance(source, ChartSource)
        return source
