"""``gitmoor events`` against Events recorded in a sandbox as the controllers record them."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmoor.observe.events import EventRecorder, EventType

if TYPE_CHECKING:
    from cli_fixtures import Flux

pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]

GITMOOR = str(Path(sys.executable).with_name("gitmoor"))


def objects_column(text: str) -> list[str]:
    """The OBJECT cell of each row (the one holding Kind/name)."""
    return [next(c for c in line.split() if "/" in c) for line in text.splitlines()[1:]]


async def record(flux: Flux, obj: dict[str, Any], reason: str, kind: EventType = "Normal") -> None:
    controller = "source-controller" if obj["kind"] == "GitRepository" else "kustomize-controller"
    recorder = EventRecorder(flux.cluster, controller=controller)
    await recorder.record(obj, type=kind, reason=reason, message=f"{reason} happened")


async def backdate(flux: Flux, reason: str, hours: int) -> None:
    """Move an Event's lastTimestamp into the past, as if it had been recorded then."""
    for event in await flux.cluster.list("v1", "Event"):
        if event["reason"] == reason:
            then = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
            await flux.cluster.patch(event, {"firstTimestamp": then, "lastTimestamp": then})


async def scene(flux: Flux) -> None:
    source = await flux.git_repository()
    apps = await flux.kustomization("apps")
    infrastructure = await flux.kustomization("infrastructure")
    await flux.namespace("other")
    web = await flux.kustomization("web", namespace="other")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "flux-system", "uid": "pod-uid"}}  # fmt: skip
    await record(flux, apps, "ReconciliationSucceeded")
    await record(flux, source, "NewArtifact")
    await record(flux, infrastructure, "HealthCheckFailed", "Warning")
    await record(flux, web, "Progressing")
    await record(flux, pod, "Scheduled")
    await backdate(flux, "NewArtifact", 5)


async def test_events_list_flux_objects_oldest_first(flux: Flux) -> None:
    await scene(flux)
    result = await flux.invoke("events")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT",
                                                     "MESSAGE"]  # fmt: skip
    listed = objects_column(result.stdout)
    # The Pod's Event is not about a Flux object; the backdated one comes first.
    assert listed[0] == "GitRepository/flux-system"
    assert sorted(listed) == ["GitRepository/flux-system", "Kustomization/apps",
                              "Kustomization/infrastructure"]  # fmt: skip
    assert result.stdout.splitlines()[1].startswith("5h ")


async def test_for_an_object_shows_it_and_its_source(flux: Flux) -> None:
    await scene(flux)
    result = await flux.invoke("events", "--for", "Kustomization/apps")
    assert result.exit_code == 0, result.output
    assert objects_column(result.stdout) == ["GitRepository/flux-system", "Kustomization/apps"]
    # The source lives in another namespace than web: both, with the namespace shown.
    web = await flux.invoke("events", "--for", "kustomization/web", "-n", "other")
    assert web.exit_code == 0, web.output
    assert web.stdout.splitlines()[0].startswith("NAMESPACE")
    assert objects_column(web.stdout) == ["GitRepository/flux-system", "Kustomization/web"]
    kinds = await flux.invoke("events", "--for", "Kustomization")
    assert objects_column(kinds.stdout) == ["Kustomization/apps", "Kustomization/infrastructure"]


async def test_all_namespaces_and_types(flux: Flux) -> None:
    await scene(flux)
    everywhere = await flux.invoke("events", "-A")
    assert everywhere.exit_code == 0, everywhere.output
    assert everywhere.stdout.splitlines()[0].startswith("NAMESPACE")
    assert "Kustomization/web" in objects_column(everywhere.stdout)
    warnings = await flux.invoke("events", "-A", "--types", "warning")
    assert objects_column(warnings.stdout) == ["Kustomization/infrastructure"]


async def test_bad_selections_exit_2(flux: Flux) -> None:
    await scene(flux)
    unknown_kind = await flux.invoke("events", "--for", "Deployment/web")
    assert unknown_kind.exit_code == 2
    assert "'Deployment' is not a kind gitmoor reads" in unknown_kind.stderr
    missing = await flux.invoke("events", "--for", "Kustomization/nope")
    assert missing.exit_code == 2
    assert "Kustomization flux-system/nope: not found" in missing.stderr


async def test_watch_prints_events_as_they_come(flux: Flux) -> None:
    await scene(flux)
    env = {**os.environ, "KUBECONFIG": str(flux.sandbox.kubeconfig)}
    watcher = await asyncio.create_subprocess_exec(
        GITMOOR, "events", "--watch", "--for", "Kustomization/apps",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert watcher.stdout is not None
    try:
        lines = [await asyncio.wait_for(watcher.stdout.readline(), 60) for _ in range(3)]
        assert objects_column(b"".join(lines).decode()) == ["GitRepository/flux-system",
                                                            "Kustomization/apps"]  # fmt: skip
        apps = await flux.kustomization("apps")
        await record(flux, await flux.kustomization("infrastructure"), "Unrelated")
        await record(flux, apps, "DependencyNotReady", "Warning")
        arrived = await asyncio.wait_for(watcher.stdout.readline(), 60)
        assert b"DependencyNotReady" in arrived
        assert b"Kustomization/apps" in arrived
    finally:
        watcher.terminate()
        await watcher.wait()
