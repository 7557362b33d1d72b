"""``gitmoor get``: Flux objects and how their last reconcile went, as ``flux get`` shows them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gitmoor.cli.common import Output
from gitmoor.cli.live import (
    AliasedCommand,
    AliasedGroup,
    all_namespaces_option,
    cluster_options,
    namespace_option,
    output_option,
    print_structured,
    run,
)
from gitmoor.cli.resources import (
    ALL,
    HELM_RELEASE,
    KUSTOMIZATION,
    SOURCES,
    FluxKind,
    Summary,
    matches_status,
    parse_status_selector,
    summarize,
)
from gitmoor.cli.tables import print_table, truncate_hex
from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError, InputError, Location
from gitmoor.humantime import since
from gitmoor.manifests import KubeObject

HEADERS = ("NAME", "REVISION", "SUSPENDED", "READY", "AGE", "MESSAGE")


def headers(all_namespaces: bool) -> list[str]:
    return ["NAMESPACE", *HEADERS] if all_namespaces else list(HEADERS)


def rows(
    summaries: Sequence[Summary], *, all_namespaces: bool, with_kind: bool, now: datetime
) -> list[list[str]]:
    """Table rows; with ``with_kind`` names read ``kustomization/apps``, as in ``get all``."""
    table = []
    for s in summaries:
        name = f"{s.kind.lower()}/{s.name}" if with_kind else s.name
        row = [name, truncate_hex(s.revision), str(s.suspended), s.ready,
               since(s.created, now), truncate_hex(s.message)]  # fmt: skip
        table.append([s.namespace, *row] if all_namespaces else row)
    return table


async def _list(
    cluster: Cluster, kind: FluxKind, namespace: str | None, *, served_only: bool
) -> list[KubeObject] | None:
    """Every object of ``kind``; None when the cluster does not serve the kind and
    ``served_only`` says to pass over it (``get all`` on a cluster without every CRD)."""
    try:
        return await cluster.list(kind.api_version, kind.kind, namespace=namespace)
    except ClusterError as exc:
        if exc.code != 404:
            raise
        if served_only:
            return None
        raise InputError(
            f"the cluster does not serve {kind.api_version} (install gitmoor's CRDs: "
            "gitmoor install --export | kubectl apply -f -)",
            Location(object=kind.kind),
        ) from None


def select(
    kind: FluxKind,
    objects: Sequence[KubeObject],
    *,
    name: str | None,
    selector: tuple[str, str] | None,
) -> list[Summary]:
    """The objects named (all without a name) whose condition matches the selector."""
    picked = [
        summarize(kind, obj)
        for obj in objects
        if (name is None or (obj.get("metadata") or {}).get("name") == name)
        and (selector is None or matches_status(obj, selector))
    ]
    return sorted(picked, key=lambda s: (s.namespace, s.name))


def _get(
    kinds: Sequence[FluxKind],
    *,
    name: str | None,
    namespace: str,
    all_namespaces: bool,
    status_selector: str | None,
    no_header: bool,
    output_format: str,
    kubeconfig: Path | None,
    kube_context: str | None,
) -> None:
    output = Output()
    selector = parse_status_selector(status_selector) if status_selector else None
    many = len(kinds) > 1
    where = None if all_namespaces else namespace

    async def work(cluster: Cluster) -> list[tuple[FluxKind, list[KubeObject]]]:
        found = []
        for kind in kinds:
            listed = await _list(cluster, kind, where, served_only=many)
            if listed is not None:
                found.append((kind, listed))
        return found

    shown: list[list[Summary]] = []
    for kind, objects in run(kubeconfig, kube_context, work):
        if name is not None and not select(kind, objects, name=name, selector=None):
            raise kind.not_found(namespace, name)
        shown.append(select(kind, objects, name=name, selector=selector))
    if output_format != "table":
        print_structured(output, output_format, [s.record() for ss in shown for s in ss])
        return
    now = datetime.now(UTC)
    printed = 0
    for summaries in shown:
        if not summaries:
            continue
        if printed:
            output.data("\n")
        table = rows(summaries, all_namespaces=all_namespaces, with_kind=many, now=now)
        print_table(output, headers(all_namespaces), table, show_header=not no_header,
                    condition_column="READY")  # fmt: skip
        printed += 1
    if not printed:
        what = kinds[0].kind if not many else "Flux"
        place = "any namespace" if all_namespaces else f"the {namespace} namespace"
        output.info(f"✗ no {what} objects found in {place}")


def _command(
    kinds: Sequence[FluxKind], name: str, aliases: Sequence[str], help_text: str
) -> click.Command:
    many = len(kinds) > 1

    def callback(name_arg: str | None = None, **options: Any) -> None:
        _get(kinds, name=name_arg, **options)

    command: Callable[..., None] = callback
    for option in (
        cluster_options,
        output_option("table"),
        click.option("--no-header", is_flag=True, help="Leave the header row out."),
        click.option(
            "--status-selector",
            metavar="TYPE=STATUS",
            help="Only objects whose condition TYPE has STATUS (True, False, Unknown), "
            "e.g. ready=false.",
        ),
        all_namespaces_option,
        namespace_option,
        *(() if many else (click.argument("name_arg", metavar="[NAME]", required=False),)),
    ):
        command = option(command)
    return click.command(name, cls=AliasedCommand, aliases=aliases, help=help_text)(command)


_COLUMNS = (
    "Columns: NAME, REVISION (the revision last fetched or applied, digests shortened), "
    "SUSPENDED, READY (the Ready condition: True, False, or Unknown before the first "
    "reconcile), AGE and MESSAGE (Ready's message); NAMESPACE first with -A."
)


def _kind_command(kind: FluxKind) -> click.Command:
    path = kind.listed_by.removeprefix("gitmoor get ")
    aliases = f" (aliases: {', '.join(kind.aliases)})" if kind.aliases else ""
    return _command(
        [kind],
        kind.command,
        kind.aliases,
        f"""List {kind.kind} objects and how their last reconcile went{aliases}.

        {_COLUMNS} With NAME, only that object (exit code 2 if it does not exist).

        \b
        Examples:
          gitmoor get {path}
          gitmoor get {path} -A --status-selector ready=false
          gitmoor get {path} -n apps -o json
        """,
    )


def _all_command(kinds: Sequence[FluxKind], path: str) -> click.Command:
    listed = ", ".join(k.kind for k in kinds)
    return _command(
        kinds,
        "all",
        (),
        f"""List every {listed}, one table per kind.

        Kinds the cluster does not serve are left out. {_COLUMNS} NAME reads kind/name.

        \b
        Examples:
          gitmoor get {path}
          gitmoor get {path} -A --status-selector ready=false
        """,
    )


@click.group(cls=AliasedGroup)
def get() -> None:
    """Show Flux objects and the state of their last reconcile, as flux get does.

    \b
    Examples:
      gitmoor get all -A
      gitmoor get kustomizations --status-selector ready=false
    """


@click.group(cls=AliasedGroup, aliases=("source",))
def sources() -> None:
    """Show sources: GitRepository, OCIRepository, HelmRepository, HelmChart, Bucket.

    \b
    Example:
      gitmoor get sources git -A
    """


for _kind in SOURCES:
    sources.add_command(_kind_command(_kind))
sources.add_command(_all_command(SOURCES, "sources all"))
get.add_command(sources)
get.add_command(_kind_command(KUSTOMIZATION))
get.add_command(_kind_command(HELM_RELEASE))
get.add_command(_all_command(ALL, "all"))
