"""``gitmoor reconcile``: ask the controllers for a reconcile now, wait for it, report it.

As flux does: the ``reconcile.fluxcd.io/requestedAt`` annotation is set to the current time
(Go's RFC3339Nano); a controller that reconciles the object copies it into
``status.lastHandledReconcileAt``. Once the two match and Ready says True or False, the
reconcile this command asked for is over, and Ready tells how it went.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, tzinfo
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
from gitmoor.cli.resources import GIT_REPOSITORY, KUSTOMIZATION, FluxKind, source_ref
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.context import ready_status, suspended
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.errors import InputError, Location
from gitmoor.manifests import KubeObject

POLL_SECONDS = 0.5

# The kinds a gitmoor controller reconciles, and what its success reads as.
RECONCILED = {KUSTOMIZATION.kind: "applied", GIT_REPOSITORY.kind: "fetched"}


def requested_at(nanos: int, zone: tzinfo | None = None) -> str:
    """Go's ``time.RFC3339Nano`` (trailing zeros of the fraction dropped, ``Z`` for UTC), in
    local time unless ``zone`` says otherwise: the annotation's value as flux writes it."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, zone).astimezone(zone)
    offset = moment.strftime("%z")
    suffix = "Z" if offset in ("", "+0000") else f"{offset[:3]}:{offset[3:]}"
    digits = f"{fraction:09d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + suffix


def handled(obj: Mapping[str, Any], stamp: str) -> bool:
    """Whether the reconcile requested at ``stamp`` has finished, one way or the other."""
    status = obj.get("status") or {}
    return status.get("lastHandledReconcileAt") == stamp and ready_status(obj) != "Unknown"


def outcome(kind: FluxKind, obj: Mapping[str, Any]) -> tuple[bool, str]:
    """(Ready, what to say): the revision on success, Ready's message on failure."""
    if ready_status(obj) == "True":
        return True, f"{RECONCILED.get(kind.kind, 'reconciled')} revision {kind.revision(obj)}"
    found = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
    return False, str((found or {}).get("message") or "not ready")


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


async def fetch(cluster: Cluster, kind: FluxKind, namespace: str, name: str) -> KubeObject:
    obj = await cluster.get(kind.api_version, kind.kind, name, namespace)
    if obj is None:
        raise kind.not_found(namespace, name)
    return obj


def refuse_suspended(kind: FluxKind, obj: Mapping[str, Any]) -> None:
    if suspended(obj):
        namespace, name = _name(obj)
        raise InputError(
            f"suspended; resume it first: gitmoor resume {kind.path} {name} -n {namespace}",
            Location(object=kind.display(namespace, name)),
        )


async def wait_and_report(
    cluster: Cluster,
    output: Output,
    kind: FluxKind,
    obj: Mapping[str, Any],
    stamp: str,
    deadline: float,
    *,
    label: str = "",
) -> bool:
    """Wait until the object has handled the request ``stamp``; print and return how it
    ended (False on timeout). ``label`` prefixes the result lines when several wait."""
    namespace, name = _name(obj)
    output.info(f"◎ {label}waiting for {kind.kind} reconciliation")
    while True:
        current = await fetch(cluster, kind, namespace, name)
        if handled(current, stamp):
            break
        if time.monotonic() >= deadline:
            output.info(
                f"✗ {label}{kind.display(namespace, name)} has not finished the reconcile "
                f"requested at {stamp} before the timeout (are the controllers running?)"
            )
            return False
        await asyncio.sleep(POLL_SECONDS)
    ok, message = outcome(kind, current)
    output.info(f"{'✔' if ok else '✗'} {label}{message}")
    return ok


async def request_and_wait(
    cluster: Cluster, output: Output, kind: FluxKind, obj: Mapping[str, Any], deadline: float
) -> bool:
    namespace, name = _name(obj)
    stamp = requested_at(time.time_ns())
    output.info(f"► annotating {kind.kind} {name} in {namespace} namespace")
    await cluster.patch(obj, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})
    output.info(f"✔ {kind.kind} annotated")
    return await wait_and_report(cluster, output, kind, obj, stamp, deadline)


def _reconcile(
    kind: FluxKind,
    name: str,
    namespace: str,
    timeout: float,
    with_source: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    output = Output()

    async def work(cluster: Cluster) -> bool:
        deadline = time.monotonic() + timeout
        obj = await fetch(cluster, kind, namespace, name)
        refuse_suspended(kind, obj)
        if with_source:
            source_kind, source_namespace, source_name = source_ref(obj) or ("", "", "")
            if source_kind != GIT_REPOSITORY.kind:
                raise InputError(
                    f"--with-source: {source_kind or 'a source'} is not reconciled by gitmoor "
                    "yet (GitRepository is)",
                    Location(object=kind.display(namespace, name), field="spec.sourceRef"),
                )
            source = await fetch(cluster, GIT_REPOSITORY, source_namespace, source_name)
            refuse_suspended(GIT_REPOSITORY, source)
            if not await request_and_wait(cluster, output, GIT_REPOSITORY, source, deadline):
                return False
        return await request_and_wait(cluster, output, kind, obj, deadline)

    ready = run(kubeconfig, kube_context, work)
    raise SystemExit(EXIT_OK if ready else EXIT_NOT_READY)


@click.group(cls=AliasedGroup)
def reconcile() -> None:
    """Reconcile an object now instead of at its next interval, and wait for the result.

    \b
    Examples:
      gitmoor reconcile kustomization apps --with-source
      gitmoor reconcile source git flux-system
    """


@reconcile.command("kustomization", cls=AliasedCommand, aliases=("ks",))
@click.argument("name")
@namespace_option
@click.option(
    "--with-source", is_flag=True, help="Reconcile its GitRepository first, and wait for it."
)
@timeout_option
@cluster_options
def reconcile_kustomization(
    name: str,
    namespace: str,
    with_source: bool,
    timeout: float,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Apply a Kustomization now, and wait for the outcome (alias: ks).

    Prints the revision applied, or Ready's message if the reconcile failed. Exit code:
    0 Ready, 1 not Ready or not done within --timeout, 2 the object does not exist, is
    suspended, or the cluster cannot be reached.

    \b
    Examples:
      gitmoor reconcile kustomization apps
      gitmoor reconcile ks infrastructure --with-source --timeout 10m
    """
    _reconcile(KUSTOMIZATION, name, namespace, timeout, with_source, kubeconfig, kube_context)


@reconcile.group("source", cls=AliasedGroup, aliases=("sources",))
def reconcile_source() -> None:
    """Fetch a source now.

    \b
    Example:
      gitmoor reconcile source git flux-system
    """


@reconcile_source.command("git")
@click.argument("name")
@namespace_option
@timeout_option
@cluster_options
def reconcile_source_git(
    name: str, namespace: str, timeout: float, kubeconfig: Path | None, kube_context: str | None
) -> None:
    """Fetch a GitRepository now, and wait for the outcome.

    Prints the revision fetched, or Ready's message if the fetch failed. Exit code: 0
    Ready, 1 not Ready or not done within --timeout, 2 the object does not exist, is
    suspended, or the cluster cannot be reached.

    \b
    Example:
      gitmoor reconcile source git flux-system -n flux-system
    """
    _reconcile(GIT_REPOSITORY, name, namespace, timeout, False, kubeconfig, kube_context)
