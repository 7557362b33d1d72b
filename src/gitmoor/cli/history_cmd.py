"""``gitmoor history helmrelease``: the revisions of a release, from the HelmRelease's status.

The controller keeps a snapshot of each of the latest Helm revisions in
``status.history`` (newest first): the chart, the digest of the values it ran with, the
status Helm gave it. ``--helm`` reads Helm's own records of the release beside them and
says, row by row, whether the two agree: a release rolled back or upgraded by hand with
``helm`` shows up there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from gitmoor import releases
from gitmoor.cli.common import EXIT_CHANGES, EXIT_OK, Output
from gitmoor.cli.live import (
    AliasedCommand,
    AliasedGroup,
    cluster_options,
    helm_kubeconfig,
    namespace_option,
    output_option,
    print_structured,
    run,
)
from gitmoor.cli.reconcile_cmd import fetch
from gitmoor.cli.resources import HELM_RELEASE, release_target
from gitmoor.cli.tables import print_table, truncate_hex
from gitmoor.cluster import Cluster
from gitmoor.errors import InputError, Location
from gitmoor.humantime import parse_time
from gitmoor.releases import Release

HEADERS = ("VERSION", "CHART", "APP VERSION", "CONFIG DIGEST", "STATUS", "FIRST DEPLOYED",
           "LAST DEPLOYED")  # fmt: skip
MATCHES = "matches"
NOT_IN_HELM = "not in Helm"
ONLY_IN_HELM = "only in Helm"


@dataclass(frozen=True)
class Revision:
    """One revision of a release, as a snapshot in the status records it."""

    version: int
    chart_name: str
    chart_version: str
    app_version: str
    config_digest: str
    status: str
    first_deployed: str
    last_deployed: str

    @classmethod
    def of(cls, snapshot: Mapping[str, Any]) -> Revision:
        return cls(
            version=int(snapshot.get("version") or 0),
            chart_name=str(snapshot.get("chartName") or ""),
            chart_version=str(snapshot.get("chartVersion") or ""),
            app_version=str(snapshot.get("appVersion") or ""),
            config_digest=str(snapshot.get("configDigest") or ""),
            status=str(snapshot.get("status") or ""),
            first_deployed=str(snapshot.get("firstDeployed") or ""),
            last_deployed=str(snapshot.get("lastDeployed") or ""),
        )

    @classmethod
    def from_helm(cls, release: Release) -> Revision:
        """A revision only Helm knows: no config digest, its first deployment unknown."""
        return cls(release.revision, release.chart_name, release.chart_version,
                   release.app_version, "", release.status, "", release.deployed_at)  # fmt: skip

    @property
    def chart(self) -> str:
        return f"{self.chart_name}@{self.chart_version}"

    def record(self) -> dict[str, Any]:
        """The snapshot's fields, named as the status names them."""
        return {
            "version": self.version,
            "chartName": self.chart_name,
            "chartVersion": self.chart_version,
            "appVersion": self.app_version,
            "configDigest": self.config_digest,
            "status": self.status,
            "firstDeployed": self.first_deployed,
            "lastDeployed": self.last_deployed,
        }


@dataclass(frozen=True)
class Row:
    revision: Revision
    differences: tuple[str, ...] | None = None
    """What Helm's record says otherwise; None when Helm was not asked."""

    @property
    def helm(self) -> str:
        if self.differences is None:
            return ""
        return "; ".join(self.differences) or MATCHES


def snapshots(obj: Mapping[str, Any]) -> list[Revision]:
    """The status' snapshots, newest first."""
    found = [Revision.of(s) for s in (obj.get("status") or {}).get("history") or []]
    return sorted(found, key=lambda r: r.version, reverse=True)


def _differences(kept: Revision, helm: Release) -> tuple[str, ...]:
    """Where the snapshot and Helm's record of the same revision disagree, each as
    ``field: Helm's value``."""
    pairs = (
        ("status", kept.status, helm.status),
        ("chart", kept.chart, f"{helm.chart_name}@{helm.chart_version}"),
        ("app version", kept.app_version, helm.app_version),
    )
    found = [f"{name}: {theirs} in Helm" for name, ours, theirs in pairs if ours != theirs]
    if parse_time(kept.last_deployed) != parse_time(helm.deployed_at):
        found.append(f"last deployed: {helm.deployed_at} in Helm")
    return tuple(found)


def compare(kept: Sequence[Revision], helm: Sequence[Release]) -> list[Row]:
    """Every revision either side has, newest first, each marked with how Helm's record
    differs. Helm revisions older than the oldest snapshot are left out: the status keeps
    only the latest few, so their absence there is no disagreement."""
    by_version = {r.version: r for r in kept}
    helm_by_revision = {r.revision: r for r in helm}
    oldest = min(by_version, default=0)
    versions = set(by_version) | {v for v in helm_by_revision if v >= oldest}
    rows = []
    for version in sorted(versions, reverse=True):
        ours, theirs = by_version.get(version), helm_by_revision.get(version)
        if ours is None:
            assert theirs is not None
            rows.append(Row(Revision.from_helm(theirs), (ONLY_IN_HELM,)))
        elif theirs is None:
            rows.append(Row(ours, (NOT_IN_HELM,)))
        else:
            rows.append(Row(ours, _differences(ours, theirs)))
    return rows


def table_rows(rows: Sequence[Row]) -> list[list[str]]:
    """Table cells, digests shortened, the HELM column last when Helm was asked."""
    cells = []
    for row in rows:
        r = row.revision
        line = [str(r.version), r.chart, r.app_version, truncate_hex(r.config_digest),
                r.status, r.first_deployed, r.last_deployed]  # fmt: skip
        cells.append([*line, row.helm] if row.differences is not None else line)
    return cells


def records(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """``-o json``/``yaml``: each snapshot, with Helm's verdict under ``helm`` when asked."""
    result = []
    for row in rows:
        record = row.revision.record()
        if row.differences is not None:
            record["helm"] = {"matches": not row.differences,
                              "differences": list(row.differences)}  # fmt: skip
        result.append(record)
    return result


@click.group(cls=AliasedGroup)
def history() -> None:
    """Show the revisions of an object.

    \b
    Example:
      gitmoor history helmrelease grafana -n monitoring
    """


@history.command("helmrelease", cls=AliasedCommand, aliases=("hr",))
@click.argument("name")
@namespace_option
@click.option(
    "--helm",
    "with_helm",
    is_flag=True,
    help="Read Helm's own history of the release too, and say where it differs.",
)
@output_option("table")
@cluster_options
def history_helmrelease(
    name: str,
    namespace: str,
    with_helm: bool,
    output_format: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Show a HelmRelease's release revisions, newest first (alias: hr).

    Read from the snapshots in its status. Columns: VERSION (Helm's revision), CHART
    (name@version), APP VERSION, CONFIG DIGEST (of the values the revision ran with,
    shortened), STATUS (deployed, superseded, failed …), FIRST DEPLOYED and LAST DEPLOYED;
    with --helm, HELM: "matches", or what Helm's record says otherwise ("not in Helm",
    "only in Helm", "status: failed in Helm" …).

    Exit code: 0; 1 with --helm when Helm's history differs; 2 if the HelmRelease does
    not exist or the cluster cannot be reached.

    \b
    Examples:
      gitmoor history helmrelease grafana -n monitoring
      gitmoor history hr grafana -n monitoring --helm
      gitmoor history hr grafana -n monitoring -o json
    """
    output = Output()

    async def work(cluster: Cluster) -> list[Row]:
        obj = await fetch(cluster, HELM_RELEASE, namespace, name)
        kept = snapshots(obj)
        if not with_helm:
            return [Row(r) for r in kept]
        if (obj.get("spec") or {}).get("kubeConfig"):
            raise InputError(
                "--helm: the release lives in the cluster spec.kubeConfig names, and Helm is "
                "read only in this one",
                Location(object=HELM_RELEASE.display(namespace, name), field="spec.kubeConfig"),
            )
        target = release_target(obj, helm_kubeconfig(kubeconfig), kube_context)
        return compare(kept, await asyncio.to_thread(releases.history, target))

    rows = run(kubeconfig, kube_context, work)
    if output_format != "table":
        print_structured(output, output_format, records(rows))
    elif rows:
        headers = [*HEADERS, "HELM"] if with_helm else list(HEADERS)
        print_table(output, headers, table_rows(rows))
    else:
        output.info(f"✗ no revisions of {HELM_RELEASE.display(namespace, name)} recorded yet")
    differ = any(row.differences for row in rows)
    raise SystemExit(EXIT_CHANGES if differ else EXIT_OK)
