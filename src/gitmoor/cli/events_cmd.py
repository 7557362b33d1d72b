"""``gitmoor events``: the Kubernetes Events about Flux objects, oldest first, as
``flux events`` lists them.

Only Events whose involved object is of a kind gitmoor reads are shown. With
``--for Kustomization/apps`` or ``--for HelmRelease/grafana`` the Events of its source (the
GitRepository, HelmRepository or OCIRepository it reads from) are shown too, since a failed
fetch is usually why a Kustomization or a HelmRelease is stuck. Events are filtered here
rather than with a field selector, so this works against API servers that do not index
``involvedObject``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gitmoor.api.registry import KINDS
from gitmoor.cli.common import EXIT_OK, Output
from gitmoor.cli.live import all_namespaces_option, cluster_options, namespace_option, run
from gitmoor.cli.reconcile_cmd import fetch
from gitmoor.cli.resources import by_kind, source_ref
from gitmoor.cli.tables import print_table
from gitmoor.cluster import Cluster
from gitmoor.errors import InputError, Location
from gitmoor.humantime import parse_time, since
from gitmoor.manifests import KubeObject

HEADERS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
EVENT_TYPES = ("Normal", "Warning")
_KINDS = {k.KIND.lower(): k.KIND for k in KINDS}
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    """Events about objects of ``kind``; of that name and namespace when they are set."""

    kind: str
    namespace: str | None = None
    name: str | None = None

    def matches(self, involved: Mapping[str, Any], namespace: str) -> bool:
        return (
            involved.get("kind") == self.kind
            and (self.name is None or involved.get("name") == self.name)
            and (self.namespace is None or namespace == self.namespace)
        )


@dataclass(frozen=True)
class Selection:
    """Which Events to show: about the targets (any gitmoor kind when there are none), in
    ``namespace`` (every one when None), of the listed types (every type when empty)."""

    namespace: str | None
    targets: tuple[Target, ...] = ()
    types: tuple[str, ...] = ()

    def matches(self, event: Mapping[str, Any]) -> bool:
        involved = event.get("involvedObject") or {}
        namespace = str((event.get("metadata") or {}).get("namespace") or "")
        if involved.get("kind") not in _KINDS.values():
            return False
        if self.types and str(event.get("type", "")).lower() not in self.types:
            return False
        if self.targets:
            return any(t.matches(involved, namespace) for t in self.targets)
        return self.namespace is None or namespace == self.namespace

    @property
    def namespaces(self) -> set[str | None]:
        """The namespaces the Events live in; None stands for all of them."""
        if not self.targets:
            return {self.namespace}
        return {t.namespace for t in self.targets}


def parse_for(value: str) -> tuple[str, str | None]:
    """``Kind/name`` or ``Kind`` (any letter case) as (the kind's proper name, name)."""
    kind, _, name = value.partition("/")
    proper = _KINDS.get(kind.lower())
    if proper is None:
        raise InputError(
            f"{kind!r} is not a kind gitmoor reads ({', '.join(sorted(_KINDS.values()))})",
            Location(field="--for"),
        )
    return proper, name or None


def event_time(event: Mapping[str, Any]) -> datetime:
    """When it was last seen: the series' last observation, else lastTimestamp, else
    eventTime, as kubectl sorts them."""
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), event.get("lastTimestamp"),
                  event.get("eventTime")):  # fmt: skip
        moment = parse_time(value)
        if moment is not None:
            return moment
    return _NEVER


def last_seen(event: Mapping[str, Any], now: datetime) -> str:
    """``4m``, or ``10s (x3 over 4m)`` for a repeated Event, as kubectl and flux print it."""
    first = since(event.get("eventTime") or event.get("firstTimestamp"), now)
    series = event.get("series") or {}
    if series:
        return f"{since(series.get('lastObservedTime'), now)} (x{series.get('count')} over {first})"
    count = int(event.get("count") or 0)
    if count > 1:
        return f"{since(event.get('lastTimestamp'), now)} (x{count} over {first})"
    return first


def event_row(event: Mapping[str, Any], now: datetime, *, with_namespace: bool) -> list[str]:
    involved = event.get("involvedObject") or {}
    row = [
        last_seen(event, now),
        str(event.get("type") or ""),
        str(event.get("reason") or ""),
        f"{involved.get('kind', '')}/{involved.get('name', '')}",
        str(event.get("message") or "").strip(),
    ]
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    return [namespace, *row] if with_namespace else row


async def _selection(
    cluster: Cluster,
    namespace: str,
    all_namespaces: bool,
    for_object: str | None,
    types: Sequence[str],
) -> Selection:
    where = None if all_namespaces else namespace
    lowered = tuple(t.lower() for t in types)
    if for_object is None:
        return Selection(where, types=lowered)
    kind, name = parse_for(for_object)
    targets = [Target(kind, where, name)]
    flux_kind = by_kind(kind)
    if name is not None and flux_kind is not None:
        obj = await fetch(cluster, flux_kind, namespace, name)
        ref = source_ref(obj)
        if ref is not None:
            targets.append(Target(*ref))
    return Selection(where, tuple(targets), lowered)


async def _list(cluster: Cluster, selection: Selection) -> list[KubeObject]:
    namespaces = selection.namespaces
    # One list of every namespace when the Events sought live in more than one.
    scope = next(iter(namespaces)) if len(namespaces) == 1 else None
    events = await cluster.list("v1", "Event", namespace=scope)
    return sorted((e for e in events if selection.matches(e)), key=event_time)


def _events(
    namespace: str,
    all_namespaces: bool,
    for_object: str | None,
    types: tuple[str, ...],
    watch: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    output = Output()

    async def work(cluster: Cluster) -> None:
        selection = await _selection(cluster, namespace, all_namespaces, for_object, types)
        with_namespace = all_namespaces or selection.namespaces != {namespace}
        headers = ["NAMESPACE", *HEADERS] if with_namespace else list(HEADERS)
        events = await _list(cluster, selection)
        now = datetime.now(UTC)
        rows = [event_row(e, now, with_namespace=with_namespace) for e in events]
        if rows:
            print_table(output, headers, rows)
        elif not watch:
            place = "any namespace" if all_namespaces else f"the {namespace} namespace"
            output.info(f"✗ no events found in {place}")
        if watch:
            await _follow(cluster, output, selection, events, headers, with_namespace)

    # Ctrl-C is how --watch ends.
    with contextlib.suppress(KeyboardInterrupt):
        run(kubeconfig, kube_context, work)
    raise SystemExit(EXIT_OK)


async def _follow(
    cluster: Cluster,
    output: Output,
    selection: Selection,
    shown: Sequence[KubeObject],
    headers: Sequence[str],
    with_namespace: bool,
) -> None:
    """Print each new or updated Event that matches, as it arrives, until interrupted."""
    seen = {_version(e) for e in shown}
    header = not shown
    namespaces = selection.namespaces
    scope = next(iter(namespaces)) if len(namespaces) == 1 else None
    kind = await cluster.kind("v1", "Event")
    async for change, event in cluster.watch(kind, namespace=scope):
        if change == "DELETED" or _version(event) in seen or not selection.matches(event):
            continue
        seen.add(_version(event))
        row = event_row(event, datetime.now(UTC), with_namespace=with_namespace)
        print_table(output, headers, [row], show_header=header)
        header = False


def _version(event: Mapping[str, Any]) -> tuple[str, str]:
    meta = event.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name")), str(meta.get("resourceVersion") or "")


@click.command()
@click.option(
    "--for",
    "for_object",
    metavar="KIND[/NAME]",
    help="Only Events about this object (and its source), or about objects of this kind.",
)
@namespace_option
@all_namespaces_option
@click.option(
    "--types",
    multiple=True,
    type=click.Choice(EVENT_TYPES, case_sensitive=False),
    help="Only Events of this type (repeatable).",
)
@click.option("-w", "--watch", is_flag=True, help="Keep printing Events as they come.")
@cluster_options
def events(
    for_object: str | None,
    namespace: str,
    all_namespaces: bool,
    types: tuple[str, ...],
    watch: bool,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    """Show the Kubernetes Events about Flux objects, oldest first.

    Columns: LAST SEEN, TYPE, REASON, OBJECT (Kind/name), MESSAGE; NAMESPACE first with -A
    or when the source of the --for object lives in another namespace.

    \b
    Examples:
      gitmoor events
      gitmoor events --for Kustomization/apps
      gitmoor events --for HelmRelease/grafana -n monitoring
      gitmoor events -A --types warning --watch
    """
    _events(namespace, all_namespaces, for_object, types, watch, kubeconfig, kube_context)
