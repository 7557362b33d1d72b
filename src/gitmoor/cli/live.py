"""What the commands that read or change a live cluster share: options, connecting, output.

``get``, ``reconcile``, ``suspend``, ``resume``, ``events`` and ``tree`` talk to the cluster
named by ``--kubeconfig``/``--context`` (default: ``$KUBECONFIG``, else ``~/.kube/config``,
else the in-cluster service account), in the namespace ``-n`` names (``flux-system`` unless
told, as flux has it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from lightkube.core.exceptions import ConfigError

from gitmoor.api.meta import DURATION_PATTERN, duration_seconds
from gitmoor.cli.common import EXIT_CHANGES, Output
from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError, InputError
from gitmoor.manifests import dump

T = TypeVar("T")
Command = Callable[..., None]

DEFAULT_NAMESPACE = "flux-system"

# 1 is what diff exits with for "there are changes": for these commands, "it is not Ready".
EXIT_NOT_READY = EXIT_CHANGES


class AliasedGroup(click.Group):
    """A group whose subcommands answer to short names too (``ks`` for kustomization)."""

    def __init__(self, *args: Any, aliases: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)
        self._alias_of: dict[str, str] = {}

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        for alias in getattr(cmd, "aliases", ()):
            self._alias_of[alias] = name or str(cmd.name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self._alias_of.get(cmd_name, cmd_name))


class AliasedCommand(click.Command):
    def __init__(self, *args: Any, aliases: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """A Go duration (``90s``, ``5m``, ``1h30m``), as flux's ``--timeout`` takes, in seconds."""
    if not re.fullmatch(DURATION_PATTERN, value):
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 5m or 1h30m")
    return duration_seconds(value)


def cluster_options(command: Command) -> Command:
    """--kubeconfig and --context."""
    options = (
        click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False, path_type=Path),
            help="The kubeconfig file. Default: $KUBECONFIG, else ~/.kube/config, else the "
            "in-cluster service account.",
        ),
        click.option("--context", "kube_context", help="The kubeconfig context to use."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def namespace_option(command: Command) -> Command:
    return click.option(
        "-n",
        "--namespace",
        default=DEFAULT_NAMESPACE,
        show_default=True,
        help="The namespace of the objects.",
    )(command)


def all_namespaces_option(command: Command) -> Command:
    return click.option(
        "-A",
        "--all-namespaces",
        "all_namespaces",
        is_flag=True,
        help="Every namespace (-n is ignored).",
    )(command)


def timeout_option(command: Command) -> Command:
    return click.option(
        "--timeout",
        default="5m",
        metavar="DURATION",
        callback=_duration,
        show_default=True,
        help="How long to wait for the reconciliation, in all.",
    )(command)


def run(kubeconfig: Path | None, context: str | None, work: Callable[[Cluster], Awaitable[T]]) -> T:
    """Connect, run ``work`` against the cluster on a fresh event loop, disconnect."""

    async def main() -> T:
        try:
            cluster = Cluster.connect(kubeconfig, context=context)
        except ConfigError as exc:
            raise InputError(f"kubeconfig: {exc}") from None
        try:
            return await work(cluster)
        except ClusterError as exc:
            if not exc.unavailable:
                raise
            # Whichever request failed first, the news is the same: no API server there.
            server = cluster.client.config.cluster.server
            raise ClusterError(
                f"the API server at {server} cannot be reached", code=0, reason="Unavailable"
            ) from None
        finally:
            await cluster.close()

    return asyncio.run(main())


def helm_kubeconfig(kubeconfig: Path | None) -> Path | None:
    """The kubeconfig file the Helm SDK is to read: ``--kubeconfig``, else $KUBECONFIG's
    first file, else None (Helm's own default, ~/.kube/config or in-cluster). Named here
    because the SDK reads the environment only as it was when the library was loaded."""
    if kubeconfig is not None:
        return kubeconfig
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]) if listed else None


def output_option(default: str) -> Callable[[Command], Command]:
    """-o/--output: ``default`` (the human form), json or yaml."""
    return click.option(
        "-o",
        "--output",
        "output_format",
        type=click.Choice([default, "json", "yaml"]),
        default=default,
        show_default=True,
        help="json and yaml suit scripts.",
    )


def print_structured(output: Output, output_format: str, data: Any) -> None:
    """``data`` as JSON or YAML on stdout."""
    if output_format == "json":
        output.data(json.dumps(data, indent=2) + "\n")
    else:
        output.data(dump(data))
