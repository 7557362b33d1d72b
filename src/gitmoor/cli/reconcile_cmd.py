"""``gitmoor reconcile``: ask the controllers for a reconcile now, wait for it, report it.

As flux does: the ``reconcile.fluxcd.io/requestedAt`` annotation is set to the current time
(Go's RFC3339Nano); a controller that reconciles the object copies it into
``status.lastHandledReconcileAt``. Once the two match and Ready says True or False, the
reconcile this command asked for is over, and Ready tells how it went. A HelmRelease can
also be asked for a one-off upgrade (``forceAt``) or to forget its failures (``resetAt``),
both stamped with the same time as the request.
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
from gitmoor.cli.resources import (
    GIT_REPOSITORY,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FluxKind,
    by_kind,
    source_ref,
)
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.context import ready_status, suspended
from gitmoor.controllers.helmrelease import FORCE_AT, RESET_AT
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.errors import InputError, Location
from gitmoor.manifests import KubeObject

POLL_SECONDS = 0.5

# The sources gitmoor's controllers fetch; with the Kustomization and the HelmRelease, the
# kinds a reconcile can be asked of, and what a success of each reads as.
FETCHED_SOURCES = (GIT_REPOSITORY, HELM_REPOSITORY, OCI_REPOSITORY)
RECONCILED = {
    KUSTOMIZATION.kind: "applied",
    HELM_RELEASE.kind: "applied",
    **{source.kind: "fetched" for source in FETCHED_SOURCES},
}
NOT_SUPPORTED = "reconciliation not supported by the object"


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


def static(kind: FluxKind, obj: Mapping[str, Any]) -> bool:
    """A HelmRepository of ``type: oci``: only an address charts are pulled from, with
    nothing fetched for it, so nothing a reconcile could do."""
    return kind.kind == HELM_REPOSITORY.kind and (obj.get("spec") or {}).get("type") == "oci"


def outcome(kind: FluxKind, obj: Mapping[str, Any]) -> tuple[bool, str]:
    """(Ready, what to say): the revision on success, Ready's message on failure."""
    found = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
    if ready_status(obj) == "True":
        revision = kind.revision(obj)
        if not revision:
            return True, str((found or {}).get("message") or "reconciled")
        return True, f"{RECONCILED.get(kind.kind, 'reconciled')} revision {revision}"
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
    if suspended(obj) and not static(kind, obj):
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
    cluster: Cluster,
    output: Output,
    kind: FluxKind,
    obj: Mapping[str, Any],
    deadline: float,
    *,
    also: tuple[str, ...] = (),
) -> bool:
    """Request a reconcile, the annotations named in ``also`` stamped alongside, and wait."""
    namespace, name = _name(obj)
    if static(kind, obj):
        output.info(f"✔ {NOT_SUPPORTED}")
        return True
    stamp = requested_at(time.time_ns())
    output.info(f"► annotating {kind.kind} {name} in {namespace} namespace")
    annotations = {key: stamp for key in (REQUESTED_AT, *also)}
    await cluster.patch(obj, {"metadata": {"annotations": annotations}})
    output.info(f"✔ {kind.kind} annotated")
    return await wait_and_report(cluster, output, kind, obj, stamp, deadline)


async def source_of(
    cluster: Cluster, kind: FluxKind, obj: Mapping[str, Any]
) -> tuple[FluxKind, KubeObject]:
    """The source ``obj`` reads from, when a gitmoor controller reconciles that kind."""
    namespace, name = _name(obj)
    source_kind, source_namespace, source_name = source_ref(obj) or ("", "", "")
    found = by_kind(source_kind)
    if found is None or found.kind not in RECONCILED:
        field = "spec.chartRef" if (obj.get("spec") or {}).get("chartRef") else "spec.sourceRef"
        raise InputError(
            f"--with-source: {source_kind or 'a source'} is not reconciled by gitmoor "
            f"({', '.join(k.kind for k in FETCHED_SOURCES)} are)",
            Location(object=kind.display(namespace, name), field=field),
        )
    return found, await fetch(cluster, found, source_namespace, source_name)


def _reconcile(
    kind: FluxKind,
    name: str,
    namespace: str,
    timeout: float,
    with_source: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
    *,
    also: tuple[str, ...] = (),
) -> None:
    output = Output()

    async def work(cluster: Cluster) -> bool:
        deadline = time.monotonic() + timeout
        obj = await fetch(cluster, kind, namespace, name)
        refuse_suspended(kind, obj)
        if with_source:
            source_kind, source = await source_of(cluster, kind, obj)
            refuse_suspended(source_kind, source)
            if not await request_and_wait(cluster, output, source_kind, source, deadline):
                return False
        return await request_and_wait(cluster, output, kind, obj, deadline, also=also)

    ready = run(kubeconfig, kube_context, work)
    raise SystemExit(EXIT_OK if ready else EXIT_NOT_READY)


@click.group(cls=AliasedGroup)
def reconcile() -> None:
    """Reconcile an object now instead of at its next interval, and wait for the result.

    \b
    Examples:
      gitmoor reconcile kustomization apps --with-source
      gitmoor reconcile helmrelease grafana -n monitoring --with-source
      gitmoor reconcile source git flux-system
    """


_EXIT_CODES = (
    "Exit code: 0 Ready, 1 not Ready or not done within --timeout, 2 the object does not "
    "exist, is suspended, or the cluster cannot be reached."
)


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


@reconcile.command("helmrelease", cls=AliasedCommand, aliases=("hr",))
@click.argument("name")
@namespace_option
@click.option(
    "--with-source",
    is_flag=True,
    help="Fetch the HelmRepository, OCIRepository or GitRepository its chart comes from "
    "first, and wait for it.",
)
@click.option("--force", is_flag=True, help="Upgrade the release once even if it is in sync.")
@click.option("--reset", is_flag=True, help="Forget the failed attempts, so retries start over.")
@timeout_option
@cluster_options
def reconcile_helmrelease(
    name: str,
    namespace: str,
    with_source: bool,
    force: bool,
    reset: bool,
    timeout: float,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Install or upgrade a HelmRelease now if it is out of sync, and wait (alias: hr).

    Prints the chart version applied, or Ready's message if the reconcile failed. --force
    sets reconcile.fluxcd.io/forceAt and --reset reconcile.fluxcd.io/resetAt to the time of
    the request, as flux does; a release that stalled after its retries needs --reset (or
    a change to its spec) to be tried again. Exit code: 0 Ready, 1 not Ready or not done
    within --timeout, 2 the object does not exist, is suspended, or the cluster cannot be
    reached.

    \b
    Examples:
      gitmoor reconcile helmrelease grafana -n monitoring
      gitmoor reconcile hr grafana -n monitoring --with-source --force
      gitmoor reconcile hr grafana -n monitoring --reset
    """
    also = tuple(key for key, on in ((FORCE_AT, force), (RESET_AT, reset)) if on)
    _reconcile(HELM_RELEASE, name, namespace, timeout, with_source, kubeconfig, kube_context,
               also=also)  # fmt: skip


@reconcile.group("source", cls=AliasedGroup, aliases=("sources",))
def reconcile_source() -> None:
    """Fetch a source now.

    \b
    Examples:
      gitmoor reconcile source git flux-system
      gitmoor reconcile source helm bitnami
    """


def _source_command(kind: FluxKind, what: str, example: str) -> click.Command:
    def callback(
        name: str, namespace: str, timeout: float, kubeconfig: Path | None,
        kube_context: str | None,
    ) -> None:  # fmt: skip
        _reconcile(kind, name, namespace, timeout, False, kubeconfig, kube_context)

    command: Any = callback
    for option in (cluster_options, timeout_option, namespace_option, click.argument("name")):
        command = option(command)
    return click.command(
        kind.command,
        help=f"""Fetch {kind.kind} NAME now, and wait for the outcome.

        Prints the revision fetched ({what}), or Ready's message if the fetch failed.
        {_EXIT_CODES}

        \b
        Example:
          gitmoor reconcile source {kind.command} {example}
        """,
    )(command)


reconcile_source.add_command(_source_command(GIT_REPOSITORY, "branch@sha1:commit",
                                             "flux-system -n flux-system"))  # fmt: skip
reconcile_source.add_command(_source_command(
    HELM_REPOSITORY, "the index's digest; a HelmRepository of type oci has nothing to fetch",
    "bitnami -n flux-system",
))  # fmt: skip
reconcile_source.add_command(_source_command(OCI_REPOSITORY, "tag@sha256:manifest",
                                             "podinfo -n flux-system"))  # fmt: skip
