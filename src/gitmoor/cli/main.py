"""The ``gitmoor`` command: a group of subcommands."""

from __future__ import annotations

from collections.abc import Sequence

import click

from gitmoor import __version__
from gitmoor.cli.build_cmd import build, diff
from gitmoor.cli.common import EXIT_ERROR, Output
from gitmoor.cli.events_cmd import events
from gitmoor.cli.get_cmd import get
from gitmoor.cli.history_cmd import history
from gitmoor.cli.install_cmd import install
from gitmoor.cli.reconcile_cmd import reconcile
from gitmoor.cli.sandbox_cmd import sandbox
from gitmoor.cli.suspend_cmd import resume, suspend
from gitmoor.cli.tree_cmd import tree
from gitmoor.cli.up_cmd import controllers, up
from gitmoor.errors import GitmoorError


class _Group(click.Group):
    """Turns a GitmoorError that escapes a command into its message and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except GitmoorError as exc:
            Output().error(exc)
            raise SystemExit(EXIT_ERROR) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitmoor")
def cli() -> None:
    """gitmoor keeps Kubernetes clusters moored to Git.

    It reads Flux v2's custom resources (GitRepository, HelmRepository, OCIRepository,
    Kustomization, HelmRelease) and External Secrets' (ExternalSecret,
    ClusterSecretStore), so an existing Flux repository works unchanged.
    """


cli.add_command(build)
cli.add_command(diff)
cli.add_command(install)
cli.add_command(sandbox)
cli.add_command(up)
cli.add_command(controllers)
cli.add_command(get)
cli.add_command(reconcile)
cli.add_command(suspend)
cli.add_command(resume)
cli.add_command(events)
cli.add_command(tree)
cli.add_command(history)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="gitmoor")
