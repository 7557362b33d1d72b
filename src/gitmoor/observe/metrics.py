"""Prometheus metrics under Flux's names, so Flux's dashboards and alerts work on gitmoor.

- ``gotk_reconcile_duration_seconds{kind, name, namespace}``: a histogram with the buckets
  of fluxcd/pkg's runtime/metrics recorder.
- ``gotk_resource_info{customresource_group, customresource_kind, customresource_version,
  exported_namespace, name, ready, suspended, revision, source_name}``: one series per object,
  value 1, shaped like the series Flux 2.1+ gets from kube-state-metrics' custom resource
  state configuration (flux2-monitoring-example), which the Flux dashboards query.
- ``gotk_reconcile_condition{kind, name, namespace, type, status}`` and
  ``gotk_suspend_status{kind, name, namespace}``: what Flux controllers exported before 2.1,
  still used by older dashboards and alert rules.

Every :class:`Metrics` has a registry of its own, so two managers in one process (and tests)
never share series.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from gitmoor.api import KINDS


def _exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    # Multiplied step by step as Go's prometheus.ExponentialBuckets does, so the ``le``
    # labels come out digit for digit as Flux's (9.999999999999999e-06 ...).
    buckets = []
    for _ in range(count):
        buckets.append(start)
        start *= factor
    return tuple(buckets)


# fluxcd/pkg runtime/metrics: prometheus.ExponentialBuckets(10e-9, 10, 10).
RECONCILE_BUCKETS = _exponential_buckets(10e-9, 10, 10)

CONDITION_STATUSES = ("True", "False", "Unknown", "Deleted")

_API_OF_KIND = {kind.KIND: (kind.GROUP, kind.VERSION) for kind in KINDS}

_INFO_LABELS = (
    "customresource_group",
    "customresource_kind",
    "customresource_version",
    "exported_namespace",
    "name",
    "ready",
    "suspended",
    "revision",
    "source_name",
)


class Metrics:
    """The metrics of one gitmoor manager, and the HTTP endpoint that serves them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._duration = Histogram(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            ("kind", "name", "namespace"),
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self._info = Gauge(
            "gotk_resource_info",
            "The current state of a GitOps Toolkit resource.",
            _INFO_LABELS,
            registry=self.registry,
        )
        self._condition = Gauge(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation.",
            ("kind", "name", "namespace", "type", "status"),
            registry=self.registry,
        )
        self._suspend = Gauge(
            "gotk_suspend_status",
            "The current suspend status of a GitOps Toolkit resource.",
            ("kind", "name", "namespace"),
            registry=self.registry,
        )
        # The labels of each object's gotk_resource_info series, to take it away when its
        # state changes: one object, one series.
        self._info_series: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def observe_reconcile(self, kind: str, namespace: str, name: str, seconds: float) -> None:
        self._duration.labels(kind, name, namespace).observe(seconds)

    def set_resource_info(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        ready: str,
        suspended: bool,
        revision: str = "",
        source_name: str = "",
    ) -> None:
        """The object's state now: ``ready`` is its Ready condition's status (True, False,
        Unknown); the series of its previous state goes away."""
        group, version = _API_OF_KIND.get(kind, ("", ""))
        labels = (
            group,
            kind,
            version,
            namespace,
            name,
            ready,
            "true" if suspended else "false",
            revision,
            source_name,
        )
        key = (kind, namespace, name)
        previous = self._info_series.get(key)
        if previous is not None and previous != labels:
            self._info.remove(*previous)
        self._info.labels(*labels).set(1)
        self._info_series[key] = labels
        for status in CONDITION_STATUSES:
            self._condition.labels(kind, name, namespace, "Ready", status).set(
                1 if status == ready else 0
            )
        self._suspend.labels(kind, name, namespace).set(1 if suspended else 0)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop every series of an object that is gone."""
        previous = self._info_series.pop((kind, namespace, name), None)
        if previous is not None:
            self._info.remove(*previous)
        for status in CONDITION_STATUSES:
            self._condition.remove(kind, name, namespace, "Ready", status)
        self._suspend.remove(kind, name, namespace)
        self._duration.remove(kind, name, namespace)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format, as a scrape receives it."""
        return generate_latest(self.registry)

    async def serve(self, host: str = "127.0.0.1", port: int = 8080) -> web.AppRunner:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` until the runner is cleaned up.

        Port 0 takes a free port; ``runner.addresses`` tells which.
        """
        app = web.Application()
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/healthz", _ok)
        app.router.add_get("/readyz", _ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _scrape(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")
