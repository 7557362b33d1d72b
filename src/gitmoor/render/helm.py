"""A HelmRelease rendered as helm-controller installs it, with Helm's own SDK.

The steps, in helm-controller's order:

1. values: the chart's ``valuesFiles`` replace its defaults (source-controller packages
   the chart that way), then ``valuesFrom`` and the inline ``values`` (``values.py``);
2. Helm renders the chart for an install (revision 1); test hooks are dropped, other
   hooks kept; CRDs from ``crds/`` are returned apart, per ``install.crds``;
3. post-rendering: each ``postRenderers[].kustomize`` through the real kustomize, then
   ``commonMetadata``, then the origin labels (last, so they win on a clash);
4. objects that name no namespace get the release namespace if their kind is
   namespaced, as Helm's client does when it applies them.

Blocking: callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python

from gitmoor.api.helm import GROUP, HelmRelease, KustomizePostRenderer
from gitmoor.errors import Location, ManifestError, RenderError
from gitmoor.manifests import KubeObject, dump, dump_all, load, load_all
from gitmoor.render.kustomize_cli import kustomize_build
from gitmoor.render.scope import is_namespaced
from gitmoor.render.values import (
    ValuesLookup,
    compose_values,
    merge_maps,
    parse_values,
    values_digest,
)

ORIGIN_NAME_LABEL = f"{GROUP}/name"
ORIGIN_NAMESPACE_LABEL = f"{GROUP}/namespace"
HOOK_ANNOTATION = "helm.sh/hook"
VALUES_FILE = "values.yaml"
SCHEMA_FILE = "values.schema.json"


@dataclass(frozen=True)
class RenderedRelease:
    """What installing a HelmRelease would put in the cluster."""

    name: str
    """The Helm release name."""
    namespace: str
    chart_name: str
    chart_version: str
    app_version: str | None
    values_digest: str
    """Digest of the values the HelmRelease gives Helm (not the chart's defaults)."""
    objects: list[KubeObject]
    crds: list[KubeObject]
    """From the chart's ``crds/`` directory, per the ``install.crds`` policy."""


def render_release(
    hr: HelmRelease,
    chart_path: Path,
    *,
    lookup: ValuesLookup,
    crds: Iterable[Mapping[str, Any]] = (),
) -> RenderedRelease:
    """Render ``hr`` from the chart at ``chart_path`` (a ``.tgz`` or a chart directory).

    ``lookup`` reads the ConfigMaps and Secrets of ``valuesFrom``; ``crds`` are CRDs known
    from elsewhere, used to tell namespaced custom kinds from cluster-scoped ones.
    Raises RenderError naming the HelmRelease (and the chart, for Helm's own errors).
    """
    values = compose_values(hr, lookup)
    with contextlib.ExitStack() as stack:
        chart = stack.enter_context(_load(hr, chart_path))
        metadata = chart.metadata
        chart_name = str(metadata.get("name", ""))
        chart_version = str(metadata.get("version", ""))
        label = f"chart {chart_name}-{chart_version}"
        ready = _prepared(hr, chart, label, stack)
        try:
            manifests = ready.render(
                values,
                name=hr.release_name,
                namespace=hr.release_namespace,
                revision=1,
                is_install=True,
            )
        except helm_python.HelmError as exc:
            raise RenderError(f"{label}: {exc.detail}", Location(object=hr.display)) from None
        chart_crds = _chart_crds(hr, chart, label)

    objects = _post_render(hr, _template_objects(hr, manifests, label))
    release_crds = _crds_by_policy(hr, chart_crds)
    for crd in release_crds:
        _set_labels(crd, _origin_labels(hr))
    known_crds = [*chart_crds, *crds, *(o for o in objects if _is_crd(o))]
    for obj in objects:
        _default_namespace(obj, hr.release_namespace, known_crds)

    app_version = metadata.get("appVersion")
    return RenderedRelease(
        name=hr.release_name,
        namespace=hr.release_namespace,
        chart_name=chart_name,
        chart_version=chart_version,
        app_version=None if app_version is None else str(app_version),
        values_digest=values_digest(values),
        objects=objects,
        crds=release_crds,
    )


@contextlib.contextmanager
def prepared_chart(
    hr: HelmRelease, chart_path: Path, *, without_crds: bool = False, version: str | None = None
) -> Iterator[helm_python.Chart]:
    """The chart at ``chart_path`` as helm-controller hands it to Helm for ``hr``: its
    valuesFiles as the defaults, its schemas dropped when the HelmRelease says so, its
    ``crds/`` left out with ``without_crds`` (the caller applies them by the CRD policy),
    and its version replaced by ``version`` (reconcileStrategy Revision)."""
    with contextlib.ExitStack() as stack:
        chart = stack.enter_context(_load(hr, chart_path))
        metadata = chart.metadata
        label = f"chart {metadata.get('name', '')}-{metadata.get('version', '')}"
        yield _prepared(hr, chart, label, stack, without_crds=without_crds, version=version)


def release_crds(hr: HelmRelease, chart_path: Path, action: str) -> tuple[str, list[KubeObject]]:
    """The CRD policy for ``action`` (install or upgrade) and the chart's CRDs (from its
    ``crds/`` directories), as helm-controller reads them: install defaults to Create,
    upgrade to Skip; v2beta1's skipCRDs stands for install when no policy is given."""
    with contextlib.ExitStack() as stack:
        chart = stack.enter_context(_load(hr, chart_path))
        metadata = chart.metadata
        label = f"chart {metadata.get('name', '')}-{metadata.get('version', '')}"
        crds = _chart_crds(hr, chart, label)
    return crd_policy(hr, action), crds


def crd_policy(hr: HelmRelease, action: str) -> str:
    """Skip, Create or CreateReplace: what ``spec.install.crds`` / ``spec.upgrade.crds``
    say, with helm-controller's defaults (install Create, upgrade Skip)."""
    if action == "install":
        install = hr.spec.install
        if install and install.crds:
            return str(install.crds)
        # v2beta1's skipCRDs stands when no policy is given
        return "Skip" if install and install.skip_crds else "Create"
    upgrade = hr.spec.upgrade
    return str(upgrade.crds) if upgrade and upgrade.crds else "Skip"


@contextlib.contextmanager
def _load(hr: HelmRelease, chart_path: Path) -> Iterator[helm_python.Chart]:
    try:
        chart = helm_python.Chart.load(chart_path)
    except helm_python.HelmError as exc:
        raise RenderError(
            f"cannot load chart: {exc.detail}", Location(file=str(chart_path), object=hr.display)
        ) from None
    with chart:
        yield chart


def _prepared(
    hr: HelmRelease,
    chart: helm_python.Chart,
    label: str,
    stack: contextlib.ExitStack,
    *,
    without_crds: bool = False,
    version: str | None = None,
) -> helm_python.Chart:
    """The chart as helm-controller renders it: valuesFiles as its defaults, and without
    its values schemas when the HelmRelease disables schema validation.

    Helm validates the schema inside render, so switching it off means a copy of the
    chart without the schema files.
    """
    defaults = _values_files(hr, chart, label)
    install = hr.spec.install
    drop_schemas = bool(install and install.disable_schema_validation)
    renamed = version is not None and version != chart.metadata.get("version")
    if defaults is None and not drop_schemas and not (without_crds and chart.crds) and not renamed:
        return chart
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gitmoor-chart-"))
    root = Path(chart.save_dir(workdir))
    if defaults is not None:
        # JSON is YAML, and keeps every value's type as it is
        (root / VALUES_FILE).write_text(json.dumps(defaults), encoding="utf-8")
    if drop_schemas:
        for directory in _chart_dirs(root):
            (directory / SCHEMA_FILE).unlink(missing_ok=True)
    if without_crds:
        for directory in _chart_dirs(root):
            shutil.rmtree(directory / "crds", ignore_errors=True)
    if renamed:
        chart_file = root / "Chart.yaml"
        manifest = load(chart_file.read_text(encoding="utf-8"), file=str(chart_file))
        manifest["version"] = version
        chart_file.write_text(json.dumps(manifest), encoding="utf-8")
    return stack.enter_context(helm_python.Chart.load(root))


def _chart_dirs(root: Path) -> Iterator[Path]:
    """A saved chart's directory and those of its subcharts, at any depth."""
    yield root
    charts = root / "charts"
    if charts.is_dir():
        for sub in sorted(charts.iterdir()):
            if sub.is_dir():
                yield from _chart_dirs(sub)


def _values_files(hr: HelmRelease, chart: helm_python.Chart, label: str) -> dict[str, Any] | None:
    """The merge of ``chart.spec.valuesFiles``, or None when the list is not given.

    As in source-controller, the result replaces the chart's defaults: ``values.yaml``
    only counts when it is listed.
    """
    template = hr.spec.chart
    if template is None or not template.spec.values_files:
        return None
    ignore_missing = bool(template.spec.ignore_missing_values_files)
    files = {f["name"]: f["data"] for f in chart.files}
    merged: dict[str, Any] = {}
    for index, name in enumerate(template.spec.values_files):
        where = Location(object=hr.display, field=f"spec.chart.spec.valuesFiles[{index}]")
        clean = posixpath.normpath(name)
        if clean == VALUES_FILE:
            merged = merge_maps(merged, chart.values)
            continue
        if clean not in files:
            if ignore_missing:
                continue
            raise RenderError(f"{label} has no values file {name!r}", where)
        merged = merge_maps(
            merged, parse_values(files[clean], what=f"{label} file {name}", where=where)
        )
    return merged


def _template_objects(
    hr: HelmRelease, manifests: Mapping[str, str], label: str
) -> list[KubeObject]:
    """Every object Helm rendered, in template order, without NOTES.txt and test hooks."""
    objects: list[KubeObject] = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        try:
            documents = load_all(manifests[path], file=path)
        except ManifestError as exc:
            raise RenderError(
                f"{label} rendered invalid YAML: {exc.message}",
                Location(file=path, document=exc.location.document, object=hr.display),
            ) from None
        objects.extend(doc for doc in documents if not _is_test_hook(doc))
    return objects


def _is_test_hook(obj: KubeObject) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    hooks = str(annotations.get(HOOK_ANNOTATION, ""))
    return any(hook.strip().startswith("test") for hook in hooks.split(","))


def _chart_crds(hr: HelmRelease, chart: helm_python.Chart, label: str) -> list[KubeObject]:
    crds: list[KubeObject] = []
    for entry in chart.crds:
        try:
            crds.extend(load_all(entry["data"], file=entry["filename"]))
        except ManifestError as exc:
            raise RenderError(
                f"{label} has an invalid CRD file: {exc.message}",
                Location(file=entry["filename"], document=exc.location.document, object=hr.display),
            ) from None
    return crds


def _crds_by_policy(hr: HelmRelease, crds: list[KubeObject]) -> list[KubeObject]:
    return [] if crd_policy(hr, "install") == "Skip" else crds


def _post_render(hr: HelmRelease, objects: list[KubeObject]) -> list[KubeObject]:
    """helm-controller's post-renderers, in its order: the user's, then its own."""
    for index, renderer in enumerate(hr.spec.post_renderers or []):
        if renderer.kustomize and objects:
            objects = _kustomize(hr, index, renderer.kustomize, objects)
    common = hr.spec.common_metadata
    for obj in objects:
        if common and common.labels:
            _set_labels(obj, common.labels)
        if common and common.annotations:
            _set_annotations(obj, common.annotations)
        _set_labels(obj, _origin_labels(hr))
    return objects


def _kustomize(
    hr: HelmRelease, index: int, renderer: KustomizePostRenderer, objects: list[KubeObject]
) -> list[KubeObject]:
    if not renderer.patches and not renderer.images:
        return objects
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["helm-output.yaml"],
    }
    if renderer.patches:
        kustomization["patches"] = [patch.to_dict() for patch in renderer.patches]
    if renderer.images:
        kustomization["images"] = [image.to_dict() for image in renderer.images]
    with tempfile.TemporaryDirectory(prefix="gitmoor-postrender-") as workdir:
        root = Path(workdir)
        (root / "helm-output.yaml").write_text(dump_all(objects), encoding="utf-8")
        (root / "kustomization.yaml").write_text(dump(kustomization), encoding="utf-8")
        try:
            return kustomize_build(root)
        except RenderError as exc:
            raise RenderError(
                f"post-renderer failed: {exc.message}",
                Location(object=hr.display, field=f"spec.postRenderers[{index}].kustomize"),
            ) from None


def _origin_labels(hr: HelmRelease) -> dict[str, str]:
    return {ORIGIN_NAME_LABEL: hr.name, ORIGIN_NAMESPACE_LABEL: hr.namespace}


def _metadata(obj: KubeObject) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = obj["metadata"] = {}
    return metadata


def _set_labels(obj: KubeObject, labels: Mapping[str, str]) -> None:
    metadata = _metadata(obj)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}


def _set_annotations(obj: KubeObject, annotations: Mapping[str, str]) -> None:
    metadata = _metadata(obj)
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}


def _is_crd(obj: KubeObject) -> bool:
    return bool(
        obj.get("kind") == "CustomResourceDefinition"
        and str(obj.get("apiVersion", "")).startswith("apiextensions.k8s.io/")
    )


def _default_namespace(obj: KubeObject, namespace: str, crds: list[Mapping[str, Any]]) -> None:
    metadata = _metadata(obj)
    if metadata.get("namespace"):
        return
    if is_namespaced(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), crds):
        metadata["namespace"] = namespace
