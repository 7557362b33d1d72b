"""Building a whole Flux repository the way the cluster would see it.

Start at a path (``clusters/production``), render it, and follow every Kustomization and
HelmRelease that appears in the output, recursively. Sources (GitRepository,
HelmRepository, OCIRepository) defined in the repository are used as found; fetching
goes through a :class:`Sources` passed in, so this module does no I/O of its own
beyond the renderers it calls.

A failure renders nothing for that Kustomization or HelmRelease and is recorded; the
rest of the repository still builds (one bad release must not hide every other diff).
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from gitmoor.api.helm import HelmRelease
from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import Resource
from gitmoor.api.registry import parse_resource
from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository
from gitmoor.errors import GitmoorError, GraphError, InputError, Location, RenderError
from gitmoor.graph import Node, NodeId, order
from gitmoor.manifests import KubeObject, ObjectKey, key_of
from gitmoor.render.helm import render_release
from gitmoor.render.kustomization import RenderedKustomization, render_kustomization
from gitmoor.render.sops import secret_keys

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class SourceTree:
    """A checked-out source: what a Kustomization's path is resolved in."""

    revision: str
    path: Path


@dataclass(frozen=True)
class ChartSource:
    """A chart ready to render: a packaged .tgz or a chart directory."""

    revision: str
    path: Path


class Sources(Protocol):
    """Fetching, kept outside the build so the build itself stays a function of its inputs."""

    def git(self, repository: GitRepository) -> SourceTree: ...

    def helm_chart(
        self, repository: HelmRepository, chart: str, version: str | None
    ) -> ChartSource: ...

    def oci_chart(self, repository: OCIRepository) -> ChartSource: ...


@dataclass
class Unit:
    """One Kustomization or HelmRelease and what it rendered to."""

    resource: Kustomization | HelmRelease
    file: str | None
    parent: NodeId | None
    revision: str | None = None
    objects: list[KubeObject] = field(default_factory=list)
    files: list[str | None] = field(default_factory=list)
    """Where each object came from in its source, when known."""
    error: GitmoorError | None = None

    @property
    def id(self) -> NodeId:
        return node_id(self.resource)


@dataclass
class RepositoryBuild:
    root: Path
    path: str
    units: dict[NodeId, Unit]
    root_objects: list[KubeObject]
    """What the start path itself renders to, when no Kustomization claims it."""
    errors: list[GitmoorError]
    waves: list[list[NodeId]]
    """dependsOn order; empty when the graph itself is broken (see errors)."""

    def objects(self) -> list[tuple[NodeId | None, KubeObject]]:
        """Every object the cluster would receive, with the unit that produced it."""
        found: list[tuple[NodeId | None, KubeObject]] = [(None, o) for o in self.root_objects]
        for unit in self.units.values():
            found.extend((unit.id, obj) for obj in unit.objects)
        return found

    def by_key(self) -> dict[ObjectKey, tuple[NodeId | None, KubeObject]]:
        return {key_of(obj): (origin, obj) for origin, obj in self.objects()}


def node_id(resource: Resource) -> NodeId:
    return NodeId(resource.KIND, resource.namespace, resource.name)


def _normal_path(path: str | None) -> str:
    return posixpath.normpath((path or ".").lstrip("/")).removeprefix("./") or "."


def _implicit_kustomization(path: str) -> Kustomization:
    """What the start path is built as before a Kustomization in it claims it."""
    return Kustomization.model_validate(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "(start path)", "namespace": ""},
            "spec": {
                "interval": "1m",
                "prune": True,
                "path": path,
                "sourceRef": {"kind": "GitRepository", "name": "(local)"},
            },
        }
    )


_RENDERING_FIELDS = (
    "target_namespace",
    "name_prefix",
    "name_suffix",
    "patches",
    "images",
    "components",
    "common_metadata",
    "post_build",
    "decryption",
)
"""Kustomization spec fields that change what a path renders to."""


class _Index:
    """Objects rendered so far, by kind, namespace and name. Written between rounds only."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], KubeObject] = {}

    def add(self, objects: Iterable[KubeObject]) -> None:
        for obj in objects:
            key = key_of(obj)
            self.objects[(key.kind, key.namespace, key.name)] = obj


@dataclass
class _Reads:
    """One unit's reads of the index; what it looked for and did not find makes it wait."""

    index: _Index
    misses: list[tuple[str, str, str]] = field(default_factory=list)

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        found = self.peek(kind, namespace, name)
        if found is None:
            self.misses.append((kind, namespace, name))
        return found

    def peek(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        """An object if it is known now, without waiting for a later round to render it."""
        return self.index.objects.get((kind, namespace, name))

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        """A ConfigMap's or Secret's data as text, the way substituteFrom and valuesFrom read it."""
        obj = self.get(kind, namespace, name)
        if obj is None:
            return None
        values: dict[str, str] = {}
        if kind == "Secret":
            for key, encoded in (obj.get("data") or {}).items():
                try:
                    values[key] = base64.b64decode(str(encoded), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise InputError(
                        "value is not valid base64 text",
                        Location(object=f"Secret {namespace}/{name}", field=f"data.{key}"),
                    ) from None
            values.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
        else:
            values.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
        return values


class _Builder:
    def __init__(
        self,
        root: Path,
        path: str,
        sources: Sources,
        local_sources: Mapping[tuple[str, str], Path],
        strict: bool,
        cluster_objects: Iterable[KubeObject],
        revision: str,
        decryption_keys: Mapping[str, bytes],
    ) -> None:
        self.root = root
        self.decryption_keys = dict(decryption_keys)
        self.revision = revision
        # kustomize runs as a process and Helm renders outside the GIL, so threads overlap.
        self.workers = min(8, 2 * (os.cpu_count() or 1))
        self.path = _normal_path(path)
        self.sources = sources
        self.local_sources = dict(local_sources)
        self.strict = strict
        self.index = _Index()
        self.index.add(cluster_objects)
        self.units: dict[NodeId, Unit] = {}
        self.errors: list[GitmoorError] = []

    # --- the walk -------------------------------------------------------------------

    def run(self) -> RepositoryBuild:
        start = _implicit_kustomization(self.path)
        built = RenderedKustomization([], [])
        try:
            built = self._kustomize(start, self.root, _Reads(self.index))
        except GitmoorError as exc:
            self.errors.append(exc)
        root_objects = built.objects
        root = self._claim_root(built)
        pending: dict[NodeId, Unit] = {}
        if root is not None and self._renders_like_start(root.resource):
            # The start path's build is already the root Kustomization's: keep it.
            root.objects, root.files, root.revision = built.objects, built.files, self.revision
            self.units[root.id] = root
            self.index.add(root_objects)
            self._discover(built, root.id, pending)
            root_objects = []
        elif root is not None:
            pending[root.id] = root
            root_objects = []
        else:
            self.index.add(root_objects)
            self._discover(built, None, pending)
        self._drain(pending)
        waves = self._order()
        return RepositoryBuild(self.root, self.path, self.units, root_objects, self.errors, waves)

    def _renders_like_start(self, ks: Kustomization | HelmRelease) -> bool:
        """True when building the root Kustomization would repeat the start path's build:
        same tree, and no spec field that changes what kustomize or substitution produce."""
        if not isinstance(ks, Kustomization):
            return False
        ref = ks.spec.source_ref
        tree = self.local_sources.get((ref.namespace or ks.namespace, ref.name))
        return tree == self.root and all(
            getattr(ks.spec, name) is None for name in _RENDERING_FIELDS
        )

    def _claim_root(self, built: RenderedKustomization) -> Unit | None:
        """The Kustomization in the start path's output that builds the start path itself.

        Its GitRepository is the repository being built, unless told otherwise.
        """
        for obj, file in zip(built.objects, built.files, strict=True):
            if obj.get("kind") != "Kustomization":
                continue
            try:
                resource = parse_resource(obj)
            except GitmoorError:
                continue  # reported when the unit itself is discovered
            if (
                isinstance(resource, Kustomization)
                and _normal_path(resource.spec.path) == self.path
                and resource.spec.source_ref.kind == "GitRepository"
            ):
                ref = resource.spec.source_ref
                key = (ref.namespace or resource.namespace, ref.name)
                self.local_sources.setdefault(key, self.root)
                return Unit(resource, file=file or self.path, parent=None)
        return None

    def _discover(
        self, built: RenderedKustomization, parent: NodeId | None, pending: dict[NodeId, Unit]
    ) -> None:
        for index, (obj, file) in enumerate(zip(built.objects, built.files, strict=True)):
            # Without the source file, name the output it is in and its place there.
            document = None if file else index
            file = file or (str(parent) if parent else self.path)
            try:
                resource = parse_resource(obj, file=file, index=document)
            except GitmoorError as exc:
                self.errors.append(exc)
                continue
            if not isinstance(resource, Kustomization | HelmRelease):
                continue
            unit = Unit(resource, file=file, parent=parent)
            if unit.id == parent:
                continue  # a Kustomization that manages itself, as flux-system does
            if unit.id in self.units or unit.id in pending:
                self.errors.append(
                    InputError(
                        "defined twice in the repository",
                        Location(file=file, document=document, object=str(unit.id)),
                    )
                )
                continue
            pending[unit.id] = unit

    def _drain(self, pending: dict[NodeId, Unit]) -> None:
        """Render until nothing new appears, a round at a time, the units of a round in
        parallel (kustomize runs as a process, Helm renders outside the GIL).

        A unit that needs something not yet seen (a source, a ConfigMap) waits for a
        later round; once a round makes no progress, the next one reports what is missing.
        """
        final = False
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while pending:
                batch = [pending[unit_id] for unit_id in sorted(pending)]
                attempts = list(pool.map(self._attempt, batch))
                progressed = False
                for unit, (rendered, error, reads) in zip(batch, attempts, strict=True):
                    if reads.misses and not final:
                        continue
                    if error is not None:
                        unit.error = error.at(file=unit.file, object=str(unit.id))
                        self.errors.append(unit.error)
                    else:
                        unit.objects, unit.files = rendered.objects, rendered.files
                        self.index.add(rendered.objects)
                    del pending[unit.id]
                    self.units[unit.id] = unit
                    progressed = True
                    self._discover(rendered, unit.id, pending)
                final = not progressed

    def _attempt(self, unit: Unit) -> tuple[RenderedKustomization, GitmoorError | None, _Reads]:
        reads = _Reads(self.index)
        try:
            return self._render(unit, reads), None, reads
        except GitmoorError as exc:
            return RenderedKustomization([], []), exc, reads

    def _order(self) -> list[list[NodeId]]:
        nodes = [
            Node(unit.id, tuple(_dependencies(unit.resource)), unit.file)
            for unit in self.units.values()
        ]
        try:
            return order(nodes)
        except GraphError as exc:
            self.errors.append(exc)
            return []

    # --- one unit ---------------------------------------------------------------------

    def _render(self, unit: Unit, reads: _Reads) -> RenderedKustomization:
        if isinstance(unit.resource, Kustomization):
            tree = self._source_tree(unit.resource, reads)
            unit.revision = tree.revision
            return self._kustomize(unit.resource, tree.path, reads)
        chart = self._chart(unit.resource, reads)
        unit.revision = chart.revision
        rendered = render_release(unit.resource, chart.path, lookup=reads.data, crds=self._crds())
        objects = [*rendered.crds, *rendered.objects]
        return RenderedKustomization(objects, [None] * len(objects))

    def _kustomize(self, ks: Kustomization, tree: Path, reads: _Reads) -> RenderedKustomization:
        namespace = ks.namespace

        def lookup(kind: str, name: str) -> Mapping[str, str] | None:
            return reads.data(kind, namespace, name)

        keys = self._decryption_keys(ks, reads)
        return render_kustomization(
            tree, ks, lookup=lookup, strict=self.strict, decryption_keys=keys
        )

    def _decryption_keys(self, ks: Kustomization, reads: _Reads) -> dict[str, bytes] | None:
        """The keys given for the whole build, and the data of the Secret that
        ``spec.decryption.secretRef`` names when it is among the cluster objects (a
        decryption key is never rendered from Git, so there is nothing to wait for)."""
        if ks.spec.decryption is None:
            return None
        keys = dict(self.decryption_keys)
        ref = ks.spec.decryption.secret_ref
        secret = reads.peek("Secret", ks.namespace, ref.name) if ref else None
        if secret is not None:
            keys.update(secret_keys(secret))
        return keys

    def _source_tree(self, ks: Kustomization, reads: _Reads) -> SourceTree:
        ref = ks.spec.source_ref
        where = Location(object=f"Kustomization {ks.namespace}/{ks.name}", field="spec.sourceRef")
        if ref.kind != "GitRepository":
            raise RenderError(
                f"sourceRef kind {ref.kind} is not supported by gitmoor build yet", where
            )
        return self._git(reads, ref.namespace or ks.namespace, ref.name, where)

    def _git(self, reads: _Reads, namespace: str, name: str, where: Location) -> SourceTree:
        """A GitRepository's tree: the local directory standing in for it, or a fetch."""
        key = (namespace, name)
        if key in self.local_sources:
            path = self.local_sources[key]
            return SourceTree(self.revision if path == self.root else "local", path)
        return self.sources.git(self._find(reads, GitRepository, namespace, name, where))

    def _chart(self, hr: HelmRelease, reads: _Reads) -> ChartSource:
        where = Location(object=f"HelmRelease {hr.namespace}/{hr.name}")
        if hr.spec.chart_ref is not None:
            ref = hr.spec.chart_ref
            at = Location(object=where.object, field="spec.chartRef")
            if ref.kind != "OCIRepository":
                raise RenderError(f"chartRef kind {ref.kind} is not supported yet", at)
            oci = self._find(reads, OCIRepository, ref.namespace or hr.namespace, ref.name, at)
            return self.sources.oci_chart(oci)
        if hr.spec.chart is None:
            raise RenderError(
                "needs spec.chart or spec.chartRef", Location(object=where.object, field="spec")
            )
        spec = hr.spec.chart.spec
        ref = spec.source_ref
        namespace = ref.namespace or hr.namespace
        at = Location(object=where.object, field="spec.chart.spec.sourceRef")
        if ref.kind == "HelmRepository":
            repository = self._find(reads, HelmRepository, namespace, ref.name, at)
            return self.sources.helm_chart(repository, spec.chart, spec.version)
        if ref.kind == "GitRepository":
            tree = self._git(reads, namespace, ref.name, at)
            chart_dir = (tree.path / spec.chart).resolve()
            if not chart_dir.is_relative_to(tree.path.resolve()) or not chart_dir.is_dir():
                raise RenderError(
                    f"chart path {spec.chart!r} does not exist in "
                    f"{ref.kind} {namespace}/{ref.name}",
                    Location(object=where.object, field="spec.chart.spec.chart"),
                )
            return ChartSource(revision=tree.revision, path=chart_dir)
        raise RenderError(f"sourceRef kind {ref.kind} is not supported", at)

    def _find(self, reads: _Reads, model: type[R], namespace: str, name: str, where: Location) -> R:
        obj = reads.get(model.KIND, namespace, name)
        if obj is None:
            raise InputError(
                f"refers to {model.KIND} {namespace}/{name}, which does not exist", where
            )
        resource = parse_resource(obj)
        assert isinstance(resource, model)
        return resource

    def _crds(self) -> list[KubeObject]:
        return [
            obj
            for (kind, _, _), obj in self.index.objects.items()
            if kind == "CustomResourceDefinition"
        ]


def _dependencies(resource: Kustomization | HelmRelease) -> list[NodeId]:
    return [
        NodeId(resource.KIND, dep.namespace or resource.namespace, dep.name)
        for dep in resource.spec.depends_on or []
    ]


def build_repository(
    root: Path,
    path: str,
    *,
    sources: Sources,
    local_sources: Mapping[tuple[str, str], Path] | None = None,
    strict: bool = True,
    cluster_objects: Iterable[KubeObject] = (),
    revision: str = "local",
    decryption_keys: Mapping[str, bytes] | None = None,
) -> RepositoryBuild:
    """Render the repository checked out at ``root``, starting at ``path``.

    ``local_sources`` maps GitRepository (namespace, name) to a directory used instead of
    fetching it; the GitRepository of the Kustomization that builds ``path`` itself maps
    to ``root`` unless given here. ``cluster_objects`` are objects that exist in the
    cluster outside Git, such as the ConfigMaps and Secrets that substituteFrom and
    valuesFrom read; they are looked up but not part of the output. ``revision`` is
    what Kustomizations built from ``root`` report as their source revision.
    ``decryption_keys`` (a decryption Secret's data: ``*.agekey``, ``*.asc``, ...) serve
    every Kustomization with ``spec.decryption``, besides the Secret it names.
    """
    local = local_sources or {}
    keys = decryption_keys or {}
    builder = _Builder(root, path, sources, local, strict, cluster_objects, revision, keys)
    return builder.run()


__all__ = [
    "ChartSource",
    "RepositoryBuild",
    "SourceTree",
    "Sources",
    "Unit",
    "build_repository",
    "node_id",
]
