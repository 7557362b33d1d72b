"""``gitmoor get`` against a sandbox holding Flux objects whose status a controller wrote."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli_fixtures import Flux

pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]


def table(text: str) -> list[dict[str, str]]:
    """A plain table's rows as {header: cell}, cut where the header's columns start (so
    empty cells and messages with spaces read right)."""
    header, *lines = [line for line in text.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {name: line[a:b].strip() for name, a, b in zip(names, starts, [*starts[1:], None],
                                                        strict=True)}
        for line in lines
    ]  # fmt: skip


async def homelab(flux: Flux) -> None:
    await flux.git_repository(
        artifact={"revision": flux.revision, "digest": "sha256:" + "ab" * 32,
                  "lastUpdateTime": "2024-05-01T12:00:00Z", "path": "", "url": ""},
        conditions=flux.ready(True, f"stored artifact for revision '{flux.revision}'",
                              "Succeeded"),
    )  # fmt: skip
    fine = flux.ready(True, f"Applied revision: {flux.revision}")
    await flux.kustomization("infrastructure", lastAppliedRevision=flux.revision, conditions=fine)
    failed = flux.ready(False, "kustomize build failed: bad YAML")
    await flux.kustomization("apps", lastAppliedRevision=flux.revision, conditions=failed)
    await flux.namespace("apps")
    await flux.kustomization("web", namespace="apps")
    await flux.cluster.apply({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "grafana", "namespace": "flux-system"},
        "spec": {"interval": "1h", "chart": {"spec": {"chart": "grafana", "sourceRef": {
            "kind": "HelmRepository", "name": "grafana"}}}},
    })  # fmt: skip


async def test_kustomizations_show_revision_suspension_readiness_and_message(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("get", "kustomizations")
    assert result.exit_code == 0, result.output
    rows = {row["NAME"]: row for row in table(result.stdout)}
    assert list(rows["apps"]) == ["NAME", "REVISION", "SUSPENDED", "READY", "AGE", "MESSAGE"]
    assert set(rows) == {"apps", "infrastructure"}
    assert rows["apps"]["REVISION"] == flux.short_revision
    assert rows["apps"]["SUSPENDED"] == "False"
    assert rows["apps"]["READY"] == "False"
    assert rows["apps"]["MESSAGE"] == "kustomize build failed: bad YAML"
    assert rows["infrastructure"]["READY"] == "True"
    assert rows["infrastructure"]["MESSAGE"] == f"Applied revision: {flux.short_revision}"


async def test_all_namespaces_adds_the_namespace_column_and_unreconciled_reads_unknown(
    flux: Flux,
) -> None:
    await homelab(flux)
    kubeconfig = str(flux.sandbox.kubeconfig)
    result = await flux.invoke("get", "ks", "-A", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0, result.output
    web = next(row for row in table(result.stdout) if row["NAME"] == "web")
    assert web["NAMESPACE"] == "apps"
    assert web["REVISION"] == ""
    assert web["READY"] == "Unknown"


async def test_the_status_selector_keeps_only_what_matches(flux: Flux) -> None:
    await homelab(flux)
    failing = await flux.invoke("get", "ks", "-A", "--status-selector", "ready=false")
    assert failing.exit_code == 0, failing.output
    assert [row["NAME"] for row in table(failing.stdout)] == ["apps"]
    unknown = await flux.invoke("get", "ks", "-A", "--status-selector", "Ready=Unknown")
    assert [row["NAME"] for row in table(unknown.stdout)] == ["web"]
    bad = await flux.invoke("get", "ks", "--status-selector", "ready")
    assert bad.exit_code == 2


async def test_get_all_lists_sources_kustomizations_and_releases(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("get", "all")
    assert result.exit_code == 0, result.output
    tables = [table(part) for part in result.stdout.split("\n\n")]
    rows = {row["NAME"]: row for rows in tables for row in rows}
    assert set(rows) == {"gitrepository/flux-system", "kustomization/apps",
                         "kustomization/infrastructure", "helmrelease/grafana"}  # fmt: skip
    source = rows["gitrepository/flux-system"]
    assert (source["REVISION"], source["READY"]) == (flux.short_revision, "True")
    assert rows["helmrelease/grafana"]["READY"] == "Unknown"


async def test_sources_git_as_json(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("get", "sources", "git", "-o", "json")
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["kind"] == "GitRepository"
    assert record["revision"] == flux.revision
    assert record["ready"] == "True"
    assert record["suspended"] is False


async def test_a_named_object_that_does_not_exist_exits_2(flux: Flux) -> None:
    await homelab(flux)
    found = await flux.invoke("get", "kustomization", "apps")
    assert found.exit_code == 0
    assert [row["NAME"] for row in table(found.stdout)] == ["apps"]
    missing = await flux.invoke("get", "kustomization", "nope")
    assert missing.exit_code == 2
    assert "Kustomization flux-system/nope: not found" in missing.stderr


async def test_an_empty_namespace_is_not_an_error(flux: Flux) -> None:
    result = await flux.invoke("get", "ks", "-n", "default")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no Kustomization objects found" in result.stderr


async def test_a_cluster_that_cannot_be_reached_exits_2(flux: Flux) -> None:
    flux.sandbox.stop()
    result = await flux.invoke("get", "kustomizations")
    assert result.exit_code == 2
    assert "cannot be reached" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_missing_kubeconfig_exits_2(flux: Flux) -> None:
    missing = flux.sandbox.directory / "absent"
    result = await flux.invoke("get", "all", "--kubeconfig", str(missing))
    assert result.exit_code == 2
    assert str(missing) in result.stderr
