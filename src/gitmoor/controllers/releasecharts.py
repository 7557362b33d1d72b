"""The chart and values a HelmRelease releases: fetched from its source with the source's
credentials, its values read from the cluster, and its version as helm-controller reports it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

from gitmoor.api.helm import HelmRelease
from gitmoor.api.registry import parse_resource
from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository
from gitmoor.controllers.context import Context, secret_bytes
from gitmoor.errors import GitmoorError, InputError, Location
from gitmoor.render.helm import prepared_chart
from gitmoor.render.repository import ChartSource
from gitmoor.render.values import ValuesLookup
from gitmoor.source.fetcher import Fetcher


class MissingSourceError(GitmoorError):
    """The source a HelmRelease names does not exist (yet): something to wait for, as
    helm-controller waits, rather than a failure."""


async def resolve_chart(context: Context, model: HelmRelease) -> ChartSource:
    """Fetch the chart the HelmRelease names (through its source's spec and credentials);
    source problems come out as GitmoorError naming the HelmRelease, a source that does
    not exist as MissingSourceError."""
    cluster = context.cluster
    secrets: dict[tuple[str, str], dict[str, bytes]] = {}
    source: GitRepository | HelmRepository | OCIRepository
    if model.spec.chart_ref is not None:
        ref = model.spec.chart_ref
        source = await _source(
            context,
            OCIRepository,
            ref.namespace or model.namespace,
            ref.name,
            "spec.chartRef",
            model,
        )
    elif model.spec.chart is not None:
        ref = model.spec.chart.spec.source_ref
        model_type: type[GitRepository | HelmRepository] = (
            HelmRepository if ref.kind == "HelmRepository" else GitRepository
        )
        source = await _source(
            context,
            model_type,
            ref.namespace or model.namespace,
            ref.name,
            "spec.chart.spec.sourceRef",
            model,
        )
    else:
        raise InputError(
            "needs spec.chart or spec.chartRef", Location(object=model.display, field="spec")
        )
    for field in ("secret_ref", "cert_secret_ref"):
        if (secret_ref := getattr(source.spec, field, None)) is None:
            continue
        secret = await cluster.get("v1", "Secret", secret_ref.name, source.namespace)
        if secret is not None:
            secrets[(source.namespace, secret_ref.name)] = secret_bytes(secret)
    fetcher = Fetcher(context.store.root, secrets=lambda ns, n: secrets.get((ns, n)))
    return await asyncio.to_thread(_fetch_chart, fetcher, model, source)


async def _source(
    context: Context, model_type: type[Any], namespace: str, name: str, field: str, hr: HelmRelease
) -> Any:
    kind = model_type.KIND
    api_version = f"{model_type.GROUP}/{model_type.VERSION}"
    obj = context.manager.get(kind, namespace, name) or await context.cluster.get(
        api_version, kind, name, namespace
    )
    if obj is None:
        raise MissingSourceError(
            f"{kind} '{namespace}/{name}' not found", Location(object=hr.display, field=field)
        )
    return parse_resource(obj)


async def values_lookup(context: Context, model: HelmRelease) -> ValuesLookup:
    """The ConfigMaps and Secrets of ``spec.valuesFrom``, read from the cluster now, as the
    lookup :func:`gitmoor.render.values.compose_values` takes (missing ones absent)."""
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    for ref in model.spec.values_from or []:
        obj = await context.cluster.get("v1", ref.kind, ref.name, model.namespace)
        if obj is None:
            continue
        data = dict(obj.get("data") or {})
        if ref.kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        found[(ref.kind, model.namespace, ref.name)] = data
    return lambda kind, namespace, name: found.get((kind, namespace, name))


def _fetch_chart(
    fetcher: Fetcher, model: HelmRelease, source: GitRepository | HelmRepository | OCIRepository
) -> ChartSource:
    try:
        if isinstance(source, OCIRepository):
            return fetcher.oci_chart(source)
        assert model.spec.chart is not None
        spec = model.spec.chart.spec
        if isinstance(source, HelmRepository):
            return fetcher.helm_chart(source, spec.chart, spec.version)
        tree = fetcher.git(source)
        path = (tree.path / spec.chart).resolve()
        if not path.is_relative_to(tree.path.resolve()) or not path.is_dir():
            raise GitmoorError(
                f"chart path {spec.chart!r} does not exist in {source.display}",
                Location(object=model.display, field="spec.chart.spec.chart"),
            )
        return ChartSource(revision=tree.revision, path=path)
    except GitmoorError as exc:
        raise GitmoorError(exc.message, Location(object=model.display)) from None


def chart_source(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of the source a HelmRelease's chart comes from."""
    spec = obj.get("spec") or {}
    ref = (
        spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
    )
    namespace = ref.get("namespace") or (obj.get("metadata") or {}).get("namespace", "")
    return (str(ref.get("kind", "")), namespace, str(ref.get("name", "")))


def chart_version(model: HelmRelease, chart: ChartSource) -> str:
    """The chart's version, as helm-controller reports a release's revision; with
    ``reconcileStrategy: Revision`` for a chart from Git, the version plus the commit
    (``1.0.0+a1b2c3d4e5f6``), so that every new commit upgrades the release."""
    with prepared_chart(model, chart.path) as loaded:
        version = str(loaded.metadata.get("version", ""))
    spec = model.spec.chart.spec if model.spec.chart else None
    if (
        spec is not None
        and spec.reconcile_strategy == "Revision"
        and spec.source_ref.kind == "GitRepository"
    ):
        digest = chart.revision.rpartition(":")[2]
        return f"{version}+{digest[:12]}"
    return version
