"""``gitmoor reconcile``, ``suspend`` and ``resume`` against a sandbox, with the test playing
the controller: it waits for the requestedAt annotation and writes the status a reconcile
would, so the commands' waiting and exit codes are what is tested."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gitmoor.controllers.manager import REQUESTED_AT

if TYPE_CHECKING:
    from cli_fixtures import Flux

pytest_plugins = ["sandbox_fixtures", "cli_fixtures"]

NEXT = "main@sha1:0123456789abcdef0123456789abcdef01234567"


def nanos(stamp: str) -> int:
    """An RFC3339Nano time as nanoseconds since the epoch (Python parses microseconds)."""
    found = re.fullmatch(r"(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    assert found is not None, stamp
    whole, fraction, zone = found.groups()
    seconds = int(datetime.fromisoformat(whole + zone.replace("Z", "+00:00")).timestamp())
    return seconds * 10**9 + int((fraction or "").ljust(9, "0"))


def applied(flux: Flux, revision: str) -> dict[str, Any]:
    return {"lastAppliedRevision": revision,
            "conditions": flux.ready(True, f"Applied revision: {revision}")}  # fmt: skip


async def test_reconcile_waits_for_its_request_and_exits_0_when_ready(flux: Flux) -> None:
    # An earlier reconcile's status (handled, failed) must not end the wait.
    apps = await flux.kustomization(
        "apps", lastHandledReconcileAt="2024-01-01T00:00:00Z",
        conditions=flux.ready(False, "an earlier failure"),
    )  # fmt: skip
    controller = asyncio.create_task(flux.play_controller(apps, applied(flux, NEXT)))
    result = await flux.invoke("reconcile", "kustomization", "apps")
    handled = await controller
    assert result.exit_code == 0, result.output
    assert f"applied revision {NEXT}" in result.stderr
    live = await flux.live(apps)
    assert live["metadata"]["annotations"][REQUESTED_AT] == handled


async def test_reconcile_exits_1_when_the_reconcile_ends_not_ready(flux: Flux) -> None:
    apps = await flux.kustomization("apps", **applied(flux, flux.revision))
    failed = {"conditions": flux.ready(False, "kustomize build failed: bad YAML in apps/a.yaml")}
    controller = asyncio.create_task(flux.play_controller(apps, failed))
    result = await flux.invoke("reconcile", "ks", "apps")
    await controller
    assert result.exit_code == 1, result.output
    assert "✗ kustomize build failed: bad YAML in apps/a.yaml" in result.stderr


async def test_with_source_fetches_first_and_then_applies(flux: Flux) -> None:
    source = await flux.git_repository()
    apps = await flux.kustomization("apps")
    fetched = {"artifact": {"revision": NEXT, "digest": "sha256:" + "cd" * 32,
                            "lastUpdateTime": "2024-05-01T12:00:00Z", "path": "", "url": ""},
               "conditions": flux.ready(True, "stored artifact", "Succeeded")}  # fmt: skip
    fetching = asyncio.create_task(flux.play_controller(source, fetched))
    applying = asyncio.create_task(flux.play_controller(apps, applied(flux, NEXT)))
    result = await flux.invoke("reconcile", "kustomization", "apps", "--with-source")
    source_handled, apps_handled = await fetching, await applying
    assert result.exit_code == 0, result.output
    # The Kustomization was asked only after the source had answered.
    assert nanos(source_handled) < nanos(apps_handled)
    assert f"fetched revision {NEXT}" in result.stderr
    assert f"applied revision {NEXT}" in result.stderr


async def test_a_source_that_fails_stops_before_the_kustomization(flux: Flux) -> None:
    source = await flux.git_repository()
    apps = await flux.kustomization("apps")
    broken = {"conditions": flux.ready(False, "failed to checkout: host unreachable",
                                       "GitOperationFailed")}  # fmt: skip
    fetching = asyncio.create_task(flux.play_controller(source, broken))
    result = await flux.invoke("reconcile", "ks", "apps", "--with-source")
    await fetching
    assert result.exit_code == 1, result.output
    assert "host unreachable" in result.stderr
    live = await flux.live(apps)
    assert REQUESTED_AT not in (live["metadata"].get("annotations") or {})


async def test_no_answer_within_the_timeout_exits_1(flux: Flux) -> None:
    await flux.kustomization("apps")
    result = await flux.invoke("reconcile", "ks", "apps", "--timeout", "1s")
    assert result.exit_code == 1
    assert "before the timeout" in result.stderr


async def test_a_suspended_or_missing_object_is_refused_with_exit_2(flux: Flux) -> None:
    apps = await flux.kustomization("apps")
    await flux.cluster.patch(apps, {"spec": {"suspend": True}})
    suspended = await flux.invoke("reconcile", "ks", "apps")
    assert suspended.exit_code == 2
    assert "Kustomization flux-system/apps: suspended" in suspended.stderr
    live = await flux.live(apps)
    assert REQUESTED_AT not in (live["metadata"].get("annotations") or {})
    missing = await flux.invoke("reconcile", "source", "git", "nope")
    assert missing.exit_code == 2
    assert "GitRepository flux-system/nope: not found" in missing.stderr
    bad = await flux.invoke("reconcile", "ks", "apps", "--timeout", "soon")
    assert bad.exit_code == 2


async def test_reconcile_source_git_reports_the_fetched_revision(flux: Flux) -> None:
    source = await flux.git_repository()
    fetched = {"artifact": {"revision": NEXT, "digest": "sha256:" + "cd" * 32,
                            "lastUpdateTime": "2024-05-01T12:00:00Z", "path": "", "url": ""},
               "conditions": flux.ready(True, "stored artifact", "Succeeded")}  # fmt: skip
    controller = asyncio.create_task(flux.play_controller(source, fetched))
    result = await flux.invoke("reconcile", "source", "git", "flux-system")
    await controller
    assert result.exit_code == 0, result.output
    assert f"fetched revision {NEXT}" in result.stderr


async def test_suspend_then_resume_flips_spec_suspend_and_resume_waits(flux: Flux) -> None:
    apps = await flux.kustomization("apps", **applied(flux, flux.revision))
    suspended = await flux.invoke("suspend", "kustomization", "apps")
    assert suspended.exit_code == 0, suspended.output
    assert (await flux.live(apps))["spec"]["suspend"] is True
    controller = asyncio.create_task(flux.play_controller(apps, applied(flux, NEXT)))
    resumed = await flux.invoke("resume", "kustomization", "apps")
    await controller
    assert resumed.exit_code == 0, resumed.output
    assert (await flux.live(apps))["spec"]["suspend"] is False
    assert f"applied revision {NEXT}" in resumed.stderr


async def test_suspend_all_and_resume_all_cover_the_namespace(flux: Flux) -> None:
    names = ("apps", "infrastructure")
    objects = [await flux.kustomization(name) for name in names]
    await flux.namespace("other")
    elsewhere = await flux.kustomization("web", namespace="other")
    result = await flux.invoke("suspend", "ks", "--all")
    assert result.exit_code == 0, result.output
    assert [(await flux.live(o))["spec"].get("suspend") for o in objects] == [True, True]
    assert (await flux.live(elsewhere))["spec"].get("suspend") is None
    waiting = flux.ready(False, "dependency 'flux-system/apps' is not ready", "DependencyNotReady")
    one_fails = [
        asyncio.create_task(flux.play_controller(objects[0], applied(flux, NEXT))),
        asyncio.create_task(flux.play_controller(objects[1], {"conditions": waiting})),
    ]
    resumed = await flux.invoke("resume", "ks", "--all")
    await asyncio.gather(*one_fails)
    assert resumed.exit_code == 1, resumed.output
    assert [(await flux.live(o))["spec"].get("suspend") for o in objects] == [False, False]
    assert "Kustomization flux-system/infrastructure: dependency" in resumed.stderr
    neither = await flux.invoke("suspend", "ks")
    assert neither.exit_code == 2
