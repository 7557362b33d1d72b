"""``gitmoor tree kustomization`` on inventories written as the Kustomization controller
writes them, two levels deep."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gitmoor.apply.inventory import ObjectRef, entries

if TYPE_CHECKING:
    from cli_fixtures import Flux

pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]

KS = "kustomize.toolkit.fluxcd.io"


def inventory(*refs: ObjectRef) -> dict[str, object]:
    return {"entries": entries(refs)}


async def homelab(flux: Flux) -> None:
    """flux-system applies a Namespace, the apps Kustomization and a source (and lists
    itself, as a root Kustomization does); apps applies a Deployment and a Service. The
    inventory keeps entries sorted by id, and the tree shows them in that order."""
    await flux.kustomization("flux-system", inventory=inventory(
        ObjectRef("", "Namespace", "", "apps", "v1"),
        ObjectRef(KS, "Kustomization", "flux-system", "flux-system", "v1"),
        ObjectRef(KS, "Kustomization", "flux-system", "apps", "v1"),
        ObjectRef("source.toolkit.fluxcd.io", "GitRepository", "flux-system", "flux-system", "v1"),
    ))  # fmt: skip
    await flux.kustomization("apps", inventory=inventory(
        ObjectRef("apps", "Deployment", "apps", "web", "v1"),
        ObjectRef("", "Service", "apps", "web", "v1"),
    ))  # fmt: skip


async def test_the_tree_nests_the_inventory_of_kustomizations(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("tree", "kustomization", "flux-system")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Kustomization/flux-system/flux-system\n"
        "├── Namespace/apps\n"
        "├── Kustomization/flux-system/apps\n"
        "│   ├── Service/apps/web\n"
        "│   └── Deployment/apps/web\n"
        "└── GitRepository/flux-system/flux-system\n"
    )


async def test_compact_keeps_flux_objects_only(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("tree", "ks", "flux-system", "--compact")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Kustomization/flux-system/flux-system",
        "├── Kustomization/flux-system/apps",
        "└── GitRepository/flux-system/flux-system",
    ]


async def test_json_output_nests_resources(flux: Flux) -> None:
    await homelab(flux)
    result = await flux.invoke("tree", "ks", "flux-system", "-o", "json")
    assert result.exit_code == 0, result.output
    tree = json.loads(result.stdout)
    assert tree["resource"]["GroupKind"] == {"Group": KS, "Kind": "Kustomization"}
    apps = tree["resources"][1]
    assert apps["resource"]["Name"] == "apps"
    assert [r["resource"]["GroupKind"]["Kind"] for r in apps["resources"]] == [
        "Service", "Deployment",
    ]  # fmt: skip


async def test_a_missing_kustomization_exits_2(flux: Flux) -> None:
    result = await flux.invoke("tree", "ks", "nope")
    assert result.exit_code == 2
    assert "Kustomization flux-system/nope: not found" in result.stderr
