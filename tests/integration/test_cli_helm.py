"""The live commands for HelmReleases, HelmRepositories and OCIRepositories against a
sandbox: get, reconcile (the test playing the controller, as in test_cli_reconcile),
suspend and resume, history (with Helm's own records of a release installed through the
Helm SDK), tree, events; then reconcile and history against the real HelmRelease
controller and a real chart repository."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import helm_python
import pytest
from ruamel.yaml import YAML
from test_cli_get import table
from test_cli_reconcile import nanos

from gitmoor import releases
from gitmoor.apply.inventory import ObjectRef, entries
from gitmoor.cli.reconcile_cmd import NOT_SUPPORTED
from gitmoor.controllers import conditions
from gitmoor.controllers.helmrelease import FORCE_AT, RESET_AT
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.controllers.run import build_manager
from gitmoor.demo.servers import ChartRepoServer, make_chart
from gitmoor.observe.events import EventRecorder

if TYPE_CHECKING:
    from cli_fixtures import Flux

pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]

INDEX = "sha256:" + "ab" * 32
OCI = "1.0.0@sha256:" + "cd" * 32
DIGEST = "sha256:" + "ef" * 32
HELM = "helm.toolkit.fluxcd.io"


def snapshot(version: int, status: str, chart_version: str = "1.0.0") -> dict[str, Any]:
    return {
        "version": version, "name": "web", "namespace": "apps", "chartName": "web",
        "chartVersion": chart_version, "appVersion": "1.0", "configDigest": DIGEST,
        "firstDeployed": "2024-05-01T12:00:00Z", "lastDeployed": f"2024-05-0{version}T12:00:00Z",
        "status": status,
    }  # fmt: skip


def released(flux: Flux, version: str, *history: dict[str, Any]) -> dict[str, Any]:
    """A HelmRelease's status after a successful install or upgrade."""
    message = f"Helm upgrade succeeded for release apps/web with chart web@{version}"
    return {"lastAttemptedRevision": version, "history": list(history),
            "conditions": flux.ready(True, message, "UpgradeSucceeded")}  # fmt: skip


def fetched(flux: Flux, revision: str) -> dict[str, Any]:
    """A source's status after a successful fetch."""
    return {"artifact": {"revision": revision, "digest": "sha256:" + "12" * 32,
                         "lastUpdateTime": "2024-05-01T12:00:00Z", "path": "", "url": ""},
            "conditions": flux.ready(True, f"stored artifact: revision '{revision}'",
                                     "Succeeded")}  # fmt: skip


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


async def test_get_shows_chart_versions_and_artifact_revisions(flux: Flux) -> None:
    await flux.helm_repository(**fetched(flux, INDEX))
    await flux.helm_repository("bitnami", oci=True)
    await flux.oci_repository(**fetched(flux, OCI))
    # The newest snapshot is what runs, whatever was last attempted.
    await flux.helm_release("web", **released(flux, "1.2.0", snapshot(2, "deployed", "1.1.0"),
                                              snapshot(1, "superseded")))  # fmt: skip
    await flux.helm_release("fresh", lastAttemptedRevision="2.0.0")
    result = await flux.invoke("get", "helmreleases")
    assert result.exit_code == 0, result.output
    rows = {row["NAME"]: row for row in table(result.stdout)}
    assert (rows["web"]["REVISION"], rows["web"]["READY"]) == ("1.1.0", "True")
    assert (rows["fresh"]["REVISION"], rows["fresh"]["READY"]) == ("2.0.0", "Unknown")
    helm = await flux.invoke("get", "sources", "helm")
    assert helm.exit_code == 0, helm.output
    revisions = {row["NAME"]: row["REVISION"] for row in table(helm.stdout)}
    assert revisions == {"charts": INDEX[:15], "bitnami": ""}
    oci = await flux.invoke("get", "sources", "oci", "-o", "json")
    assert oci.exit_code == 0, oci.output
    [record] = json.loads(oci.stdout)
    assert (record["kind"], record["revision"]) == ("OCIRepository", OCI)


async def test_reconcile_helmrelease_stamps_force_and_reset_with_the_request(flux: Flux) -> None:
    web = await flux.helm_release("web", **released(flux, "1.0.0", snapshot(1, "deployed")))
    after = released(flux, "1.0.0", snapshot(2, "deployed"), snapshot(1, "superseded"))
    controller = asyncio.create_task(flux.play_controller(web, after))
    result = await flux.invoke("reconcile", "hr", "web", "--force", "--reset")
    handled = await controller
    assert result.exit_code == 0, result.output
    assert "applied revision 1.0.0" in result.stderr
    stamps = annotations_of(await flux.live(web))
    assert stamps[REQUESTED_AT] == handled
    assert stamps[FORCE_AT] == stamps[RESET_AT] == handled
    # Without the flags only a reconcile is requested.
    plain = asyncio.create_task(flux.play_controller(await flux.live(web), after))
    again = await flux.invoke("reconcile", "helmrelease", "web")
    assert again.exit_code == 0, again.output
    stamps = annotations_of(await flux.live(web))
    assert stamps[REQUESTED_AT] == await plain
    assert stamps[FORCE_AT] == handled


async def test_with_source_fetches_the_chart_source_first(flux: Flux) -> None:
    charts = await flux.helm_repository()
    oci = await flux.oci_repository()
    web = await flux.helm_release("web")
    podinfo = await flux.helm_release("podinfo", source="OCIRepository/web")
    for release, source, revision in ((web, charts, INDEX), (podinfo, oci, OCI)):
        fetching = asyncio.create_task(flux.play_controller(source, fetched(flux, revision)))
        applying = asyncio.create_task(
            flux.play_controller(release, released(flux, "1.0.0", snapshot(1, "deployed")))
        )
        result = await flux.invoke("reconcile", "hr", release["metadata"]["name"],
                                   "--with-source")  # fmt: skip
        source_handled, release_handled = await fetching, await applying
        assert result.exit_code == 0, result.output
        assert nanos(source_handled) < nanos(release_handled)
        assert f"fetched revision {revision}" in result.stderr
        assert "applied revision 1.0.0" in result.stderr


async def test_a_failed_fetch_stops_before_the_release(flux: Flux) -> None:
    charts = await flux.helm_repository()
    web = await flux.helm_release("web")
    broken = {"conditions": flux.ready(False, "failed to fetch index: 404", "IndexationFailed")}
    fetching = asyncio.create_task(flux.play_controller(charts, broken))
    result = await flux.invoke("reconcile", "hr", "web", "--with-source")
    await fetching
    assert result.exit_code == 1, result.output
    assert "failed to fetch index: 404" in result.stderr
    assert REQUESTED_AT not in annotations_of(await flux.live(web))


async def test_an_oci_helm_repository_has_nothing_to_reconcile(flux: Flux) -> None:
    bitnami = await flux.helm_repository("bitnami", oci=True)
    direct = await flux.invoke("reconcile", "source", "helm", "bitnami")
    assert direct.exit_code == 0, direct.output
    assert NOT_SUPPORTED in direct.stderr
    # --with-source says so too, and goes on with the release.
    web = await flux.helm_release("web", source="HelmRepository/bitnami")
    applying = asyncio.create_task(
        flux.play_controller(web, released(flux, "1.0.0", snapshot(1, "deployed")))
    )
    result = await flux.invoke("reconcile", "hr", "web", "--with-source")
    await applying
    assert result.exit_code == 0, result.output
    assert NOT_SUPPORTED in result.stderr
    assert "applied revision 1.0.0" in result.stderr
    assert REQUESTED_AT not in annotations_of(await flux.live(bitnami))


async def test_reconcile_sources_helm_and_oci_report_the_revision_fetched(flux: Flux) -> None:
    charts = await flux.helm_repository()
    oci = await flux.oci_repository()
    for command, source, revision in (("helm", charts, INDEX), ("oci", oci, OCI)):
        controller = asyncio.create_task(flux.play_controller(source, fetched(flux, revision)))
        result = await flux.invoke("reconcile", "source", command, source["metadata"]["name"])
        await controller
        assert result.exit_code == 0, result.output
        assert f"fetched revision {revision}" in result.stderr
    missing = await flux.invoke("reconcile", "source", "oci", "nope")
    assert missing.exit_code == 2
    assert "OCIRepository flux-system/nope: not found" in missing.stderr


async def test_suspend_and_resume_releases_and_helm_sources(flux: Flux) -> None:
    web = await flux.helm_release("web", **released(flux, "1.0.0", snapshot(1, "deployed")))
    charts = await flux.helm_repository()
    oci = await flux.oci_repository()
    suspended = await flux.invoke("suspend", "hr", "web")
    assert suspended.exit_code == 0, suspended.output
    assert (await flux.live(web))["spec"]["suspend"] is True
    refused = await flux.invoke("reconcile", "hr", "web")
    assert refused.exit_code == 2
    assert "gitmoor resume helmrelease web" in refused.stderr
    after = released(flux, "1.1.0", snapshot(2, "deployed", "1.1.0"), snapshot(1, "superseded"))
    controller = asyncio.create_task(flux.play_controller(web, after))
    resumed = await flux.invoke("resume", "helmrelease", "web")
    await controller
    assert resumed.exit_code == 0, resumed.output
    assert (await flux.live(web))["spec"]["suspend"] is False
    assert "applied revision 1.1.0" in resumed.stderr
    for command, source in (("helm", charts), ("oci", oci)):
        name = source["metadata"]["name"]
        result = await flux.invoke("suspend", "source", command, name)
        assert result.exit_code == 0, result.output
        assert (await flux.live(source))["spec"]["suspend"] is True
        result = await flux.invoke("resume", "source", command, name, "--no-wait")
        assert result.exit_code == 0, result.output
        assert (await flux.live(source))["spec"]["suspend"] is False


async def test_history_lists_the_snapshots_newest_first(flux: Flux) -> None:
    await flux.namespace("apps")
    history = [snapshot(3, "deployed", "1.1.0"), snapshot(2, "failed", "1.1.0"),
               snapshot(1, "superseded")]  # fmt: skip
    await flux.helm_release("web", "apps", **released(flux, "1.1.0", *history))
    result = await flux.invoke("history", "helmrelease", "web", "-n", "apps")
    assert result.exit_code == 0, result.output
    rows = table(result.stdout)
    assert list(rows[0]) == ["VERSION", "CHART", "APP VERSION", "CONFIG DIGEST", "STATUS",
                             "FIRST DEPLOYED", "LAST DEPLOYED"]  # fmt: skip
    assert [(r["VERSION"], r["CHART"], r["STATUS"]) for r in rows] == [
        ("3", "web@1.1.0", "deployed"), ("2", "web@1.1.0", "failed"),
        ("1", "web@1.0.0", "superseded"),
    ]  # fmt: skip
    assert rows[0]["CONFIG DIGEST"] == DIGEST[:15]
    assert rows[0]["LAST DEPLOYED"] == "2024-05-03T12:00:00Z"
    as_json = await flux.invoke("history", "hr", "web", "-n", "apps", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.stdout)
    assert [r["version"] for r in records] == [3, 2, 1]
    assert records[0]["configDigest"] == DIGEST
    assert "helm" not in records[0]
    as_yaml = await flux.invoke("history", "hr", "web", "-n", "apps", "-o", "yaml")
    assert YAML(typ="safe").load(as_yaml.stdout) == records


async def test_history_of_a_release_not_installed_missing_or_remote(flux: Flux) -> None:
    await flux.helm_release("fresh")
    empty = await flux.invoke("history", "hr", "fresh")
    assert empty.exit_code == 0, empty.output
    assert empty.stdout == ""
    assert "no revisions of HelmRelease flux-system/fresh" in empty.stderr
    missing = await flux.invoke("history", "hr", "nope")
    assert missing.exit_code == 2
    assert "HelmRelease flux-system/nope: not found" in missing.stderr
    # A release in another cluster: Helm is not read here for it.
    remote = await flux.helm_release("remote")
    await flux.cluster.patch(remote, {"spec": {"kubeConfig": {"secretRef": {"name": "prod"}}}})
    refused = await flux.invoke("history", "hr", "remote", "--helm")
    assert refused.exit_code == 2
    assert "HelmRelease flux-system/remote" in refused.stderr
    assert "spec.kubeConfig" in refused.stderr


async def install_web(flux: Flux, tmp_path: Path) -> releases.Target:
    """A HelmRelease apps/web and, through the Helm SDK, its release (revision 1)."""
    await flux.namespace("apps")
    await flux.helm_release("web", "apps")
    target = releases.Target(flux.sandbox.kubeconfig, "web", "apps", "apps", "HelmRelease web")
    archive = make_chart(tmp_path / "charts", "web", "1.0.0", "1.0")
    with helm_python.Chart.load(archive) as chart:
        await asyncio.to_thread(releases.install, target, chart, {}, timeout=60, wait=False,
                                create_namespace=False)  # fmt: skip
    return target


async def upgrade_by_hand(target: releases.Target, tmp_path: Path) -> None:
    archive = make_chart(tmp_path / "charts", "web", "1.1.0", "1.1")
    with helm_python.Chart.load(archive) as chart:
        await asyncio.to_thread(releases.upgrade, target, chart, {}, timeout=60, wait=False,
                                max_history=5, cleanup_on_fail=False)  # fmt: skip


def snapshots_of(helm: list[releases.Release]) -> list[dict[str, Any]]:
    """Snapshots as the controller writes them from Helm's history."""
    return [{"version": r.revision, "name": r.name, "namespace": r.namespace,
             "chartName": r.chart_name, "chartVersion": r.chart_version,
             "appVersion": r.app_version, "configDigest": DIGEST,
             "firstDeployed": r.deployed_at, "lastDeployed": r.deployed_at,
             "status": r.status} for r in helm]  # fmt: skip


async def test_history_with_helm_marks_where_helms_records_differ(
    flux: Flux, tmp_path: Path
) -> None:
    target = await install_web(flux, tmp_path)
    web = await flux.live({"apiVersion": f"{HELM}/v2", "kind": "HelmRelease",
                           "metadata": {"name": "web", "namespace": "apps"}})  # fmt: skip
    helm = await asyncio.to_thread(releases.history, target)
    await flux.cluster.patch_status(web, released(flux, "1.0.0", *snapshots_of(helm)))
    same = await flux.invoke("history", "hr", "web", "-n", "apps", "--helm")
    assert same.exit_code == 0, same.output
    assert [(r["VERSION"], r["HELM"]) for r in table(same.stdout)] == [("1", "matches")]

    # An upgrade with helm itself, which the status has not seen.
    await upgrade_by_hand(target, tmp_path)
    differs = await flux.invoke("history", "hr", "web", "-n", "apps", "--helm")
    assert differs.exit_code == 1, differs.output
    rows = table(differs.stdout)
    assert [(r["VERSION"], r["CHART"], r["CONFIG DIGEST"], r["HELM"]) for r in rows] == [
        ("2", "web@1.1.0", "", "only in Helm"),
        ("1", "web@1.0.0", DIGEST[:15], "status: superseded in Helm"),
    ]  # fmt: skip
    as_json = await flux.invoke("history", "hr", "web", "-n", "apps", "--helm", "-o", "json")
    assert as_json.exit_code == 1
    assert [r["helm"] for r in json.loads(as_json.stdout)] == [
        {"matches": False, "differences": ["only in Helm"]},
        {"matches": False, "differences": ["status: superseded in Helm"]},
    ]


async def test_tree_shows_the_objects_of_the_release(flux: Flux, tmp_path: Path) -> None:
    await install_web(flux, tmp_path)
    result = await flux.invoke("tree", "helmrelease", "web", "-n", "apps")
    assert result.exit_code == 0, result.output
    # Sorted as an inventory is, by namespace_name_group_kind.
    assert result.stdout == (
        "HelmRelease/apps/web\n"
        "├── Service/apps/web\n"
        "├── ServiceAccount/apps/web\n"
        "└── Deployment/apps/web\n"
    )
    as_json = json.loads((await flux.invoke("tree", "hr", "web", "-n", "apps", "-o",
                                            "json")).stdout)  # fmt: skip
    assert as_json["resource"]["GroupKind"] == {"Group": HELM, "Kind": "HelmRelease"}
    assert as_json["resources"][2]["resource"]["GroupKind"] == {"Group": "apps",
                                                                "Kind": "Deployment"}  # fmt: skip

    # A Kustomization that applied the HelmRelease opens it too.
    await flux.kustomization("apps", inventory={"entries": entries([
        ObjectRef("", "Namespace", "", "apps", "v1"),
        ObjectRef(HELM, "HelmRelease", "apps", "web", "v2"),
    ])})  # fmt: skip
    nested = await flux.invoke("tree", "ks", "apps")
    assert nested.exit_code == 0, nested.output
    assert nested.stdout.splitlines() == [
        "Kustomization/flux-system/apps",
        "├── Namespace/apps",
        "└── HelmRelease/apps/web",
        "    ├── Service/apps/web",
        "    ├── ServiceAccount/apps/web",
        "    └── Deployment/apps/web",
    ]
    compact = await flux.invoke("tree", "ks", "apps", "--compact")
    assert compact.stdout.splitlines() == ["Kustomization/flux-system/apps",
                                           "└── HelmRelease/apps/web"]  # fmt: skip


async def test_a_release_not_installed_yet_has_an_empty_tree(flux: Flux) -> None:
    await flux.helm_release("fresh")
    result = await flux.invoke("tree", "hr", "fresh")
    assert result.exit_code == 0, result.output
    assert result.stdout == "HelmRelease/flux-system/fresh\n"


def objects_column(text: str) -> list[str]:
    return [next(c for c in line.split() if "/" in c) for line in text.splitlines()[1:]]


async def test_events_for_a_release_include_its_sources(flux: Flux) -> None:
    charts = await flux.helm_repository()
    oci = await flux.oci_repository()
    web = await flux.helm_release("web")
    podinfo = await flux.helm_release("podinfo", source="OCIRepository/web")
    other = await flux.kustomization("apps")
    source_events = EventRecorder(flux.cluster, controller="source-controller")
    helm_events = EventRecorder(flux.cluster, controller="helm-controller")
    await source_events.record(charts, type="Normal", reason="NewArtifact", message="index")
    await source_events.record(oci, type="Normal", reason="NewArtifact", message="chart")
    await helm_events.record(web, type="Normal", reason="InstallSucceeded", message="web")
    await helm_events.record(podinfo, type="Warning", reason="InstallFailed", message="no")
    await EventRecorder(flux.cluster, controller="kustomize-controller").record(
        other, type="Normal", reason="ReconciliationSucceeded", message="apps"
    )
    result = await flux.invoke("events", "--for", "HelmRelease/web")
    assert result.exit_code == 0, result.output
    assert sorted(objects_column(result.stdout)) == ["HelmRelease/web", "HelmRepository/charts"]
    by_ref = await flux.invoke("events", "--for", "helmrelease/podinfo")
    assert by_ref.exit_code == 0, by_ref.output
    assert sorted(objects_column(by_ref.stdout)) == ["HelmRelease/podinfo", "OCIRepository/web"]


# --- against the real HelmRelease controller -----------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.3)


@pytest.fixture
async def controllers(flux: Flux, tmp_path: Path) -> AsyncIterator[ChartRepoServer]:
    """The controllers running beside the sandbox, a chart repository serving web 1.0.0,
    and a HelmRelease apps/web installed from it."""
    with ChartRepoServer(tmp_path / "repo") as charts:
        charts.publish(make_chart(tmp_path / "build", "web", "1.0.0", "1.0"))
        manager, _ = build_manager(flux.cluster, cache_dir=tmp_path / "cache",
                                   kubeconfig=flux.sandbox.kubeconfig)  # fmt: skip
        task = asyncio.create_task(manager.run())
        try:
            await flux.namespace("apps")
            await flux.cluster.apply({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "charts", "namespace": "apps"},
                "spec": {"interval": "1h", "url": charts.url},
            })  # fmt: skip
            await flux.cluster.apply({
                "apiVersion": f"{HELM}/v2", "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": "apps"},
                "spec": {"interval": "1h", "chart": {"spec": {
                    "chart": "web", "version": ">=1.0.0",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}},
            })  # fmt: skip

            async def installed() -> bool:
                """web installed and Ready"""
                obj = await flux.cluster.get(f"{HELM}/v2", "HelmRelease", "web", "apps")
                return bool(obj and conditions.is_true(obj) and obj["status"].get("history"))

            await eventually(installed)
            yield charts
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.timeout(300)
async def test_reconcile_and_history_against_the_controller(
    flux: Flux, controllers: ChartRepoServer, tmp_path: Path
) -> None:
    # A new chart version: the index is fetched first, then the release upgrades to it.
    controllers.publish(make_chart(tmp_path / "build", "web", "1.1.0", "1.1"))
    result = await flux.invoke("reconcile", "hr", "web", "-n", "apps", "--with-source")
    assert result.exit_code == 0, result.output
    assert "fetched revision sha256:" in result.stderr
    assert "applied revision 1.1.0" in result.stderr

    # In sync, --force upgrades all the same.
    forced = await flux.invoke("reconcile", "hr", "web", "-n", "apps", "--force")
    assert forced.exit_code == 0, forced.output
    assert "applied revision 1.1.0" in forced.stderr

    history = await flux.invoke("history", "hr", "web", "-n", "apps", "--helm", "-o", "json")
    assert history.exit_code == 0, history.output
    records = json.loads(history.stdout)
    assert [(r["version"], r["chartVersion"], r["status"]) for r in records] == [
        (3, "1.1.0", "deployed"), (2, "1.1.0", "superseded"), (1, "1.0.0", "superseded"),
    ]  # fmt: skip
    assert all(r["helm"] == {"matches": True, "differences": []} for r in records)
    assert all(r["configDigest"].startswith("sha256:") for r in records)

    tree = await flux.invoke("tree", "hr", "web", "-n", "apps")
    assert tree.exit_code == 0, tree.output
    assert "Deployment/apps/web" in tree.stdout
