"""Flux's metric names and labels, one info series per object, and the /metrics endpoint."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gitmoor.observe.metrics import Metrics


def samples(text: str, name: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def scrape(metrics: Metrics, name: str) -> list[Sample]:
    return samples(metrics.exposition().decode(), name)


def test_reconcile_durations_fall_in_fluxs_buckets() -> None:
    metrics = Metrics()
    metrics.observe_reconcile("Kustomization", "flux-system", "apps", 0.004)
    metrics.observe_reconcile("Kustomization", "flux-system", "apps", 2.5)
    buckets = scrape(metrics, "gotk_reconcile_duration_seconds_bucket")
    assert {s.labels["kind"] for s in buckets} == {"Kustomization"}
    assert {(s.labels["namespace"], s.labels["name"]) for s in buckets} == {("flux-system", "apps")}
    counts = {s.labels["le"]: s.value for s in buckets}
    # fluxcd/pkg: prometheus.ExponentialBuckets(10e-9, 10, 10), as Go prints the bounds.
    assert list(counts) == [
        "1e-08", "1e-07", "1e-06", "9.999999999999999e-06", "9.999999999999999e-05",
        "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf",
    ]  # fmt: skip
    assert (counts["0.001"], counts["0.01"], counts["1.0"], counts["10.0"]) == (0, 1, 1, 2)
    [count] = scrape(metrics, "gotk_reconcile_duration_seconds_count")
    assert count.value == 2
    [total] = scrape(metrics, "gotk_reconcile_duration_seconds_sum")
    assert total.value == pytest.approx(2.504)


def test_resource_info_has_the_kube_state_metrics_labels() -> None:
    metrics = Metrics()
    metrics.set_resource_info(
        "GitRepository", "flux-system", "flux-system",
        ready="True", suspended=False, revision="main@sha1:0123abcd",
    )  # fmt: skip
    metrics.set_resource_info(
        "Kustomization", "flux-system", "apps",
        ready="Unknown", suspended=True, revision="main@sha1:0123abcd", source_name="flux-system",
    )  # fmt: skip
    info = {s.labels["customresource_kind"]: s for s in scrape(metrics, "gotk_resource_info")}
    assert info["Kustomization"].value == 1
    assert info["Kustomization"].labels == {
        "customresource_group": "kustomize.toolkit.fluxcd.io",
        "customresource_kind": "Kustomization",
        "customresource_version": "v1",
        "exported_namespace": "flux-system",
        "name": "apps",
        "ready": "Unknown",
        "suspended": "true",
        "revision": "main@sha1:0123abcd",
        "source_name": "flux-system",
    }
    git = info["GitRepository"].labels
    assert (git["customresource_group"], git["ready"], git["suspended"], git["source_name"]) == (
        "source.toolkit.fluxcd.io", "True", "false", "",
    )  # fmt: skip


def test_a_ready_flip_replaces_the_series() -> None:
    metrics = Metrics()
    for name in ("apps", "infra"):
        metrics.set_resource_info("Kustomization", "ns", name, ready="True", suspended=False)
    metrics.set_resource_info(
        "Kustomization", "ns", "apps", ready="False", suspended=False, revision="r2"
    )
    info = {s.labels["name"]: s.labels for s in scrape(metrics, "gotk_resource_info")}
    assert sorted(info) == ["apps", "infra"]
    assert (info["apps"]["ready"], info["apps"]["revision"]) == ("False", "r2")
    conditions = {
        s.labels["status"]: s.value
        for s in scrape(metrics, "gotk_reconcile_condition")
        if s.labels["name"] == "apps"
    }
    assert conditions == {"True": 0, "False": 1, "Unknown": 0, "Deleted": 0}


def test_forget_removes_every_series_of_the_object() -> None:
    metrics = Metrics()
    for name in ("apps", "infra"):
        metrics.observe_reconcile("Kustomization", "default", name, 0.2)
        metrics.set_resource_info("Kustomization", "default", name, ready="True", suspended=True)
    metrics.forget("Kustomization", "default", "apps")
    metrics.forget("Kustomization", "default", "never-seen")
    text = metrics.exposition().decode()
    for name in (
        "gotk_resource_info",
        "gotk_reconcile_condition",
        "gotk_suspend_status",
        "gotk_reconcile_duration_seconds_count",
    ):
        assert {s.labels["name"] for s in samples(text, name)} == {"infra"}, name


def test_two_managers_keep_their_own_series() -> None:
    one, two = Metrics(), Metrics()
    one.set_resource_info("Kustomization", "a", "apps", ready="True", suspended=False)
    assert scrape(two, "gotk_resource_info") == []


async def test_metrics_and_health_are_served_over_http() -> None:
    metrics = Metrics()
    metrics.set_resource_info("HelmRelease", "apps", "podinfo", ready="True", suspended=False)
    runner = await metrics.serve("127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            async with http.get("/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
            for path in ("/healthz", "/readyz"):
                async with http.get(path) as response:
                    assert response.status == 200, path
    finally:
        await runner.cleanup()
    [info] = samples(text, "gotk_resource_info")
    assert (info.labels["customresource_kind"], info.labels["name"]) == ("HelmRelease", "podinfo")
