"""Helm charts from HTTP chart repositories and OCI registries, fetched as Flux fetches them.

``resolve_http_chart`` reads a repository's ``index.yaml``, picks the newest version that
matches a constraint (see ``gitmoor.source.versions``), downloads that archive and checks it
against the digest the index lists.
``resolve_oci_chart`` follows ``OCIRepository.spec.ref``: ``digest`` wins over ``semver``,
which wins over ``tag``; with none set the tag is ``latest``. Revisions are written as Flux
writes them: the chart version for a HelmRepository chart; ``<tag>@sha256:<manifest>`` for
an OCI tag or semver range (naming the tag chosen), ``sha256:<manifest>`` for a digest.

Archives are kept in a ``ChartCache``, addressed by their SHA-256, so a version already
downloaded is never downloaded again; ``cache_index`` keeps a repository's index there the
same way, as a HelmRepository's artifact. Every call works in a private directory under the
cache root, including the registry login file, so nothing is read from or written to
Helm's configuration under ``$HOME``.

The Helm SDK calls block; callers run these functions in threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import helm_python

from gitmoor import helmnative
from gitmoor.errors import (
    AuthenticationError,
    ChartNotFoundError,
    InputError,
    Location,
    SourceError,
)
from gitmoor.source.chartauth import RepoAuth, tls_files
from gitmoor.source.versions import newest_versions, select_version

__all__ = [
    "DEFAULT_OCI_TAG",
    "HELM_CHART_LAYER",
    "ChartArtifact",
    "ChartCache",
    "IndexArtifact",
    "cache_index",
    "fetch_index",
    "registry_client",
    "resolve_http_chart",
    "resolve_oci_chart",
]

DEFAULT_OCI_TAG = "latest"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

_SHOWN = 5
"""How many versions (or charts) a not-found message lists."""

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGISTRY_NOT_FOUND = re.compile(
    r": not found\b|status code 404|name unknown|manifest unknown", re.I
)
"""How the Helm SDK words a missing repository, tag or manifest (not a missing login)."""
_REFUSED = re.compile(
    r"unauthorized|forbidden|authentication required|basic credential not found",
    re.I,
)
"""How the Helm SDK words credentials refused, or wanted and not given."""


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _refusal(detail: str, message: str) -> SourceError:
    """``message`` as an AuthenticationError when Helm's ``detail`` says the server refused
    or wanted credentials (the binding gives no status code to tell by)."""
    return AuthenticationError(message) if _REFUSED.search(detail) else SourceError(message)


# --- the cache -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartArtifact:
    """A packaged chart in the cache; ``digest`` is the ``sha256:<hex>`` of the archive."""

    name: str
    version: str
    revision: str
    digest: str
    path: Path


@dataclass(frozen=True)
class IndexArtifact:
    """A repository index in the cache; ``digest`` (``sha256:<hex>`` of the stored file)
    also serves as its revision, so an unchanged index keeps its revision."""

    digest: str
    path: Path
    size: int


@dataclass(frozen=True)
class _OciEntry:
    name: str
    version: str
    digest: str


class ChartCache:
    """Chart archives on disk, addressed by their content.

    Layout under ``root``::

        charts/sha256-<hex>.tgz        one archive, never modified once written
        charts/oci/sha256-<hex>.json   the archive an OCI manifest holds (name, version)
        charts/index/sha256-<hex>.json a repository index (see ``cache_index``)
        charts/tmp/                    downloads in progress and per-call registry logins

    Files land by rename, so concurrent calls never see half an archive.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._charts = self.root / "charts"

    def path_for(self, digest: str) -> Path:
        """Where the archive with ``digest`` (``sha256:<hex>``) is kept."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        return self._charts / f"{digest.replace(':', '-')}.tgz"

    def find(self, digest: str) -> Path | None:
        """The archive with ``digest`` if the cache holds it."""
        path = self.path_for(digest)
        return path if path.is_file() else None

    def index_path(self, digest: str) -> Path:
        """Where the repository index with ``digest`` (``sha256:<hex>``) is kept."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        return self._charts / "index" / f"{digest.replace(':', '-')}.json"

    def store_index(self, index: Mapping[str, Any]) -> IndexArtifact:
        """Keep ``index`` under the digest of its canonical JSON (keys sorted, compact)."""
        data = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        path = self.index_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as out:
                out.write(data)
            os.replace(out.name, path)
        return IndexArtifact(digest=digest, path=path, size=len(data))

    def load_index(self, digest: str) -> dict[str, Any] | None:
        """The index stored under ``digest``, None if the cache does not hold it."""
        path = self.index_path(digest)
        try:
            loaded = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise SourceError(f"stored index {path} is unreadable: {err}") from None
        if not isinstance(loaded, dict):
            raise SourceError(f"stored index {path} is not a map")
        return loaded

    def store(self, archive: Path, digest: str) -> Path:
        """Move ``archive``, whose digest the caller has checked, into the cache."""
        path = self.path_for(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(archive, path)
        return path

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private directory for one call, removed afterwards."""
        parent = self._charts / "tmp"
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent) as name:
            yield Path(name)

    def _oci_record(self, manifest: str) -> Path:
        return self._charts / "oci" / f"{manifest.replace(':', '-')}.json"

    def _find_oci(self, manifest: str, *, revision: str) -> ChartArtifact | None:
        # A record that cannot be read, or whose archive is gone, is as good as none.
        try:
            entry = _OciEntry(**json.loads(self._oci_record(manifest).read_text()))
            path = self.find(entry.digest)
        except (OSError, ValueError, TypeError):
            return None
        if path is None:
            return None
        return ChartArtifact(entry.name, entry.version, revision, entry.digest, path)

    def _remember_oci(self, manifest: str, entry: _OciEntry) -> None:
        record = self._oci_record(manifest)
        record.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=record.parent, delete=False) as out:
            json.dump({"name": entry.name, "version": entry.version, "digest": entry.digest}, out)
        os.replace(out.name, record)


def _only_archive(directory: Path, source: str) -> Path:
    archives = sorted(directory.glob("*.tgz"))
    if len(archives) != 1:
        raise SourceError(f"pulling {source} gave {len(archives)} chart archives, expected one")
    return archives[0]


# --- HTTP chart repositories ---------------------------------------------------------------


def fetch_index(url: str, *, auth: RepoAuth | None = None) -> dict[str, Any]:
    """The parsed ``index.yaml`` of the chart repository at ``url``."""
    auth = auth or RepoAuth()
    try:
        with tls_files(auth) as tls:
            raw = helmnative.call_string(
                "helm_repo_index_download", url,
                helmnative.options_json({
                    "username": auth.username, "password": auth.password,
                    "insecure_skip_tls_verify": auth.insecure_skip_tls_verify, **tls,
                }),
            )  # fmt: skip
    except helm_python.HelmError as err:
        detail = auth.redact(str(err))
        # Not chained: Helm's own text may carry what was just redacted.
        raise _refusal(
            detail, f"cannot read the chart repository index of {_safe_url(url)}: {detail}"
        ) from None
    index = json.loads(raw)
    if not isinstance(index, dict):
        raise SourceError(f"the index of {_safe_url(url)} is not a map")
    entries = index.get("entries") or {}
    if not isinstance(entries, dict):
        raise SourceError(f"the index of {_safe_url(url)} has no map of entries")
    index["entries"] = entries
    return index


def cache_index(url: str, *, cache: ChartCache, auth: RepoAuth | None = None) -> IndexArtifact:
    """Fetch the index of the chart repository at ``url`` and keep it in ``cache``.

    Helm sorts each chart's versions as it loads an index, and the stored form sorts the
    keys, so the digest only moves when the repository's content (or its ``generated``
    stamp) does. ``resolve_http_chart(..., index=cache.load_index(digest))`` reads it back.
    """
    return cache.store_index(fetch_index(url, auth=auth))


def resolve_http_chart(
    repo_url: str,
    chart: str,
    constraint: str | None,
    *,
    cache: ChartCache,
    auth: RepoAuth | None = None,
    pass_credentials: bool = False,
    index: Mapping[str, Any] | None = None,
) -> ChartArtifact:
    """The newest version of ``chart`` in ``repo_url`` matching ``constraint``, in the cache.

    Credentials go to the host of ``repo_url`` only, unless ``pass_credentials`` (Flux's
    ``spec.passCredentials``) allows sending them to where the index points. ``index`` is
    the repository's index when the caller already has it (a HelmRepository's artifact);
    without it the index is fetched from ``repo_url``.
    """
    auth = auth or RepoAuth()
    where = _safe_url(repo_url)
    if index is None:
        index = fetch_index(repo_url, auth=auth)
    entries: Mapping[str, Any] = index.get("entries") or {}
    listed = entries.get(chart) or []
    if not listed:
        names = sorted(entries)
        held = ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
        raise ChartNotFoundError(
            f"chart {chart!r} (version {_shown(constraint)}) not found in {where}; "
            f"charts there: {held or 'none'}"
        )
    by_version: dict[str, dict[str, Any]] = {}
    for entry in listed:
        by_version.setdefault(str(entry.get("version")), entry)
    chosen = select_version(by_version, constraint)
    if chosen is None:
        raise ChartNotFoundError(
            f"no version of chart {chart!r} in {where} matches {_shown(constraint)}; "
            f"newest available: {', '.join(newest_versions(by_version, _SHOWN)) or 'none'}"
        )
    entry = by_version[chosen]
    expected = _index_digest(entry, chart, chosen, where)
    if expected and (cached := cache.find(expected)):
        return ChartArtifact(chart, chosen, chosen, expected, cached)

    chart_url = _chart_url(repo_url, entry, chart, chosen)
    trusted = pass_credentials or _origin(chart_url) == _origin(repo_url)
    with cache.scratch() as scratch:
        try:
            # TLS goes wherever the index points (as Flux's getter does); the login only
            # where it is trusted.
            with tls_files(auth) as tls:
                helmnative.call_string(
                    "helm_pull", helmnative.raw_handle(helmnative.NO_CLIENT), chart_url,
                    helmnative.options_json({
                        "dest_dir": str(scratch),
                        "username": auth.username if trusted else None,
                        "password": auth.password if trusted else None,
                        "insecure_skip_tls_verify": auth.insecure_skip_tls_verify, **tls,
                    }),
                )  # fmt: skip
        except helm_python.HelmError as err:
            detail = auth.redact(str(err))
            raise _refusal(
                detail,
                f"cannot download chart {chart} {chosen} from {_safe_url(chart_url)}: {detail}",
            ) from None
        archive = _only_archive(scratch, _safe_url(chart_url))
        digest = helm_python.digest(archive)
        if expected and digest != expected:
            raise SourceError(
                f"chart {chart} {chosen} from {_safe_url(chart_url)} has digest {digest}, "
                f"but the index of {where} lists {expected}"
            )
        path = cache.store(archive, digest)
    return ChartArtifact(chart, chosen, chosen, digest, path)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _shown(constraint: str | None) -> str:
    return repr(constraint) if constraint and constraint.strip() else "latest stable"


def _index_digest(entry: Mapping[str, Any], chart: str, version: str, where: str) -> str | None:
    listed = str(entry.get("digest") or "")
    if not listed:
        return None
    digest = listed if listed.startswith("sha256:") else f"sha256:{listed}"
    if not _DIGEST.fullmatch(digest):
        raise SourceError(f"the index of {where} lists a malformed digest for {chart} {version}")
    return digest


def _chart_url(repo_url: str, entry: Mapping[str, Any], chart: str, version: str) -> str:
    urls = entry.get("urls") or []
    if not urls:
        raise SourceError(f"the index of {_safe_url(repo_url)} lists no URL for {chart} {version}")
    # Relative URLs are relative to the repository, which Helm treats as a directory.
    return urljoin(repo_url.rstrip("/") + "/", str(urls[0]))


# --- OCI registries ------------------------------------------------------------------------


@dataclass(frozen=True)
class _OciRef:
    url: str
    host: str

    @classmethod
    def parse(cls, url: str) -> _OciRef:
        parts = urlsplit(url)
        path = parts.path.strip("/")
        if parts.scheme != "oci" or not parts.netloc or not path:
            raise InputError(f"{url!r} is not an OCI chart URL (oci://<host>/<path>/<chart>)")
        if "@" in parts.netloc or "@" in path or ":" in path.rsplit("/", 1)[-1]:
            raise InputError(
                f"{url!r} must name the repository only; give the tag, semver or digest apart"
            )
        return cls(url=f"oci://{parts.netloc}/{path}", host=parts.netloc)


def resolve_oci_chart(
    url: str,
    *,
    tag: str | None = None,
    semver: str | None = None,
    digest: str | None = None,
    cache: ChartCache,
    auth: RepoAuth | None = None,
    plain_http: bool = False,
    layer_selector_media_type: str | None = None,
) -> ChartArtifact:
    """The chart at ``url`` (``oci://host[:port]/path/name``) that the reference picks."""
    ref = _OciRef.parse(url)
    auth = auth or RepoAuth()
    if layer_selector_media_type not in (None, HELM_CHART_LAYER):
        raise SourceError(
            f"layer media type {layer_selector_media_type!r} of {ref.url} cannot be used as a "
            f"chart; only {HELM_CHART_LAYER} can",
            Location(field="spec.layerSelector.mediaType"),
        )
    if digest:
        if not _DIGEST.fullmatch(digest):
            raise InputError(
                f"{digest!r} is not a sha256 digest", Location(field="spec.ref.digest")
            )
        # A pinned digest already in the cache needs no registry at all.
        if (cached := cache._find_oci(digest, revision=digest)) is not None:
            return cached
    with (
        cache.scratch() as scratch,
        registry_client(ref.host, auth, plain_http=plain_http, scratch=scratch) as client,
    ):
        if digest:
            manifest, revision = digest, digest
        else:
            if semver:
                tags = _tags(client, ref, auth, f"semver {semver!r}")
                chosen = select_version(tags, semver)
                if chosen is None:
                    raise ChartNotFoundError(
                        f"no tag of {ref.url} matches semver {semver!r}; newest available: "
                        f"{', '.join(newest_versions(tags, _SHOWN)) or 'none'}"
                    )
            else:
                chosen = tag or DEFAULT_OCI_TAG
            manifest = _resolve(client, ref, chosen, auth)
            revision = f"{chosen}@{manifest}"

        if (cached := cache._find_oci(manifest, revision=revision)) is not None:
            return cached

        pulled = scratch / "pull"
        pulled.mkdir()
        try:
            client.pull(
                f"{ref.url}@{manifest}",
                destination=pulled,
                plain_http=plain_http,
                insecure_skip_tls_verify=auth.insecure_skip_tls_verify,
            )
        except helm_python.HelmError as err:
            raise _registry_failure(err, client, ref, f"digest {manifest}", auth) from None
        archive = _only_archive(pulled, f"{ref.url}@{manifest}")
        entry = _identify(archive, ref.url)
        path = cache.store(archive, entry.digest)
        cache._remember_oci(manifest, entry)
    return ChartArtifact(entry.name, entry.version, revision, entry.digest, path)


@contextmanager
def registry_client(
    host: str, auth: RepoAuth, *, plain_http: bool, scratch: Path
) -> Iterator[helm_python.RegistryClient]:
    """A Helm registry client for ``host`` (``name[:port]``) logged in with ``auth``'s
    credentials and TLS material; its login file lives in ``scratch``, so Helm's under
    ``$HOME`` is never consulted and credentials never outlive the block."""
    with helm_python.RegistryClient(
        plain_http=plain_http, credentials_file=scratch / "registry.json"
    ) as client:
        # Helm's registry client takes TLS material only at login; a login with no
        # credentials sets it up for a registry that wants none.
        if auth.has_login or auth.has_tls:
            try:
                with tls_files(auth) as tls:
                    helmnative.call_status(
                        "helm_registry_login", helmnative.raw_handle(client), host,
                        auth.username or "", auth.password or "",
                        helmnative.options_json({
                            "insecure": auth.insecure_skip_tls_verify,
                            "plain_http": plain_http, **tls,
                        }),
                    )  # fmt: skip
            except helm_python.HelmError as err:
                detail = auth.redact(str(err))
                raise _refusal(detail, f"cannot log in to {host}: {detail}") from None
        yield client


def _tags(
    client: helm_python.RegistryClient, ref: _OciRef, auth: RepoAuth, wanted: str
) -> list[str]:
    try:
        return client.tags(ref.url)
    except helm_python.HelmError as err:
        raise _registry_failure(err, client, ref, wanted, auth, list_tags=False) from None


def _resolve(client: helm_python.RegistryClient, ref: _OciRef, tag: str, auth: RepoAuth) -> str:
    # OCI tags cannot hold "+"; Helm pushes build metadata as "_".
    try:
        described = client.resolve(f"{ref.url}:{tag.replace('+', '_')}")
    except helm_python.HelmError as err:
        raise _registry_failure(err, client, ref, f"tag {tag!r}", auth) from None
    manifest = str(described.get("digest", ""))
    if not _DIGEST.fullmatch(manifest):
        raise SourceError(f"{ref.url}:{tag} resolved to an unusable digest {manifest!r}")
    return manifest


def _registry_failure(
    err: helm_python.HelmError,
    client: helm_python.RegistryClient,
    ref: _OciRef,
    wanted: str,
    auth: RepoAuth,
    *,
    list_tags: bool = True,
) -> SourceError:
    # The binding reports every registry failure with one error class, so a missing
    # reference is told from an unreachable registry by the registry's own words.
    detail = auth.redact(str(err))
    if not _REGISTRY_NOT_FOUND.search(detail):
        return _refusal(detail, f"cannot fetch {wanted} from {ref.url}: {detail}")
    if not list_tags:
        return ChartNotFoundError(f"no chart at {ref.url} (looked for {wanted})")
    try:
        available = ", ".join(newest_versions(client.tags(ref.url), _SHOWN)) or "none"
    except helm_python.HelmError:
        available = "unknown (the tags cannot be listed)"
    return ChartNotFoundError(f"{wanted} not found at {ref.url}; newest available: {available}")


def _identify(archive: Path, source: str) -> _OciEntry:
    try:
        with helm_python.Chart.load(archive) as chart:
            metadata = chart.metadata
    except helm_python.HelmError as err:
        raise SourceError(f"{source} does not hold a Helm chart: {err}") from None
    return _OciEntry(
        name=str(metadata.get("name", "")),
        version=str(metadata.get("version", "")),
        digest=helm_python.digest(archive),
    )
