"""``gitmoor suspend`` and ``gitmoor resume``: stop reconciling an object, and start again.

Suspending sets ``spec.suspend``; the controllers then leave the object (and what it applied)
alone, hand edits included, until it is resumed. Resuming clears it and requests a reconcile
at once, then waits for it as ``gitmoor reconcile`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gitmoor.cli.common import EXIT_OK, Output
from gitmoor.cli.live import (
    EXIT_NOT_READY,
    AliasedCommand,
    AliasedGroup,
    cluster_options,
    namespace_option,
    run,
    timeout_option,
)
from gitmoor.cli.reconcile_cmd import fetch, requested_at, wait_and_report
from gitmoor.cli.resources import (
    GIT_REPOSITORY,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FluxKind,
)
from gitmoor.cluster import Cluster
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.errors import InputError, Location
from gitmoor.manifests import KubeObject


async def _targets(
    cluster: Cluster, kind: FluxKind, namespace: str, name: str | None, every: bool
) -> list[KubeObject]:
    if every:
        found = await cluster.list(kind.api_version, kind.kind, namespace=namespace)
        return sorted(found, key=lambda o: str(o["metadata"]["name"]))
    assert name is not None
    return [await fetch(cluster, kind, namespace, name)]


def _check_arguments(name: str | None, every: bool) -> None:
    if (name is not None) != every:
        return
    raise InputError("give either a NAME or --all", Location(field="NAME"))


def _suspend(
    kind: FluxKind,
    name: str | None,
    every: bool,
    namespace: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    _check_arguments(name, every)
    output = Output()

    async def work(cluster: Cluster) -> int:
        targets = await _targets(cluster, kind, namespace, name, every)
        for obj in targets:
            output.info(f"► suspending {kind.kind} {obj['metadata']['name']} in {namespace} "
                        "namespace")  # fmt: skip
            await cluster.patch(obj, {"spec": {"suspend": True}})
            output.info(f"✔ {kind.kind} suspended")
        return len(targets)

    if not run(kubeconfig, kube_context, work):
        output.info(f"✗ no {kind.kind} objects found in the {namespace} namespace")
    raise SystemExit(EXIT_OK)


def _resume(
    kind: FluxKind,
    name: str | None,
    every: bool,
    namespace: str,
    wait: bool,
    timeout: float,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    _check_arguments(name, every)
    output = Output()

    async def work(cluster: Cluster) -> bool:
        deadline = time.monotonic() + timeout
        targets = await _targets(cluster, kind, namespace, name, every)
        if not targets:
            output.info(f"✗ no {kind.kind} objects found in the {namespace} namespace")
            return True
        requests = []
        for obj in targets:
            stamp = requested_at(time.time_ns())
            output.info(f"► resuming {kind.kind} {obj['metadata']['name']} in {namespace} "
                        "namespace")  # fmt: skip
            patch = {"spec": {"suspend": False}, "metadata": {"annotations": {REQUESTED_AT: stamp}}}
            await cluster.patch(obj, patch)
            output.info(f"✔ {kind.kind} resumed")
            requests.append((obj, stamp))
        if not wait:
            return True
        several = len(requests) > 1

        def label(obj: KubeObject) -> str:
            return f"{kind.display(namespace, obj['metadata']['name'])}: " if several else ""

        results = await asyncio.gather(
            *(wait_and_report(cluster, output, kind, obj, stamp, deadline, label=label(obj))
              for obj, stamp in requests)
        )  # fmt: skip
        return all(results)

    ready = run(kubeconfig, kube_context, work)
    raise SystemExit(EXIT_OK if ready else EXIT_NOT_READY)


def _target_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in (
        cluster_options,
        click.option("--all", "every", is_flag=True, help="Every one in the namespace."),
        namespace_option,
        click.argument("name", required=False),
    ):
        command = option(command)
    return command


def _suspend_command(kind: FluxKind, name: str, aliases: tuple[str, ...]) -> click.Command:
    def callback(**options: Any) -> None:
        _suspend(kind, **options)

    return click.command(
        name,
        cls=AliasedCommand,
        aliases=aliases,
        help=f"""Stop reconciling {kind.kind} NAME (or all in the namespace): its spec, source
        and the objects it applied are left as they are until it is resumed.

        \b
        Examples:
          gitmoor suspend {kind.path} NAME
          gitmoor suspend {kind.path} --all -n apps
        """,
    )(_target_options(callback))


def _resume_command(kind: FluxKind, name: str, aliases: tuple[str, ...]) -> click.Command:
    def callback(**options: Any) -> None:
        _resume(kind, **options)

    command = timeout_option(callback)
    command = click.option(
        "--wait/--no-wait", default=True, show_default=True,
        help="Wait for the reconcile the resume requests.",
    )(command)  # fmt: skip
    return click.command(
        name,
        cls=AliasedCommand,
        aliases=aliases,
        help=f"""Reconcile {kind.kind} NAME (or all in the namespace) again, starting now,
        and wait for the outcome as gitmoor reconcile does.

        Exit code: 0 Ready, 1 not Ready or not done within --timeout, 2 the object does not
        exist or the cluster cannot be reached.

        \b
        Examples:
          gitmoor resume {kind.path} NAME
          gitmoor resume {kind.path} --all -n apps --timeout 10m
        """,
    )(_target_options(command))


@click.group(cls=AliasedGroup)
def suspend() -> None:
    """Suspend the reconciling of Kustomizations, HelmReleases and sources.

    \b
    Examples:
      gitmoor suspend kustomization apps
      gitmoor suspend helmrelease grafana -n monitoring
    """


@click.group(cls=AliasedGroup)
def resume() -> None:
    """Resume suspended Kustomizations, HelmReleases and sources, and wait for their
    reconcile.

    \b
    Examples:
      gitmoor resume kustomization apps
      gitmoor resume helmrelease grafana -n monitoring
    """


def _sources(verb: str) -> AliasedGroup:
    return AliasedGroup(
        "source",
        aliases=("sources",),
        help=f"{verb} sources (git, helm, oci).\n\n\b\nExample:\n"
        f"  gitmoor {verb.lower()} source git flux-system",
    )


_SOURCES = (GIT_REPOSITORY, HELM_REPOSITORY, OCI_REPOSITORY)
_OBJECTS = ((KUSTOMIZATION, "kustomization", ("ks",)), (HELM_RELEASE, "helmrelease", ("hr",)))

_suspend_sources = _sources("Suspend")
_resume_sources = _sources("Resume")
for _source in _SOURCES:
    _suspend_sources.add_command(_suspend_command(_source, _source.command, ()))
    _resume_sources.add_command(_resume_command(_source, _source.command, ()))
for _kind, _name, _aliases in _OBJECTS:
    suspend.add_command(_suspend_command(_kind, _name, _aliases))
    resume.add_command(_resume_command(_kind, _name, _aliases))
suspend.add_command(_suspend_sources)
resume.add_command(_resume_sources)
