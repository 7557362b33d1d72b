"""``gitmoor sandbox up|down|status|reset``: the embedded Kubernetes API server."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click

from gitmoor.cli.common import EXIT_OK, Output
from gitmoor.sandbox import process
from gitmoor.sandbox.process import SandboxInfo
from gitmoor.secrets import devserver

# As `systemctl status` and LSB init scripts: 3 means "not running", 0 running.
EXIT_NOT_RUNNING = 3

_DIR_HELP = (
    "State directory of the sandbox (objects, CA, token, kubeconfig, log). "
    "Default: $GITMOOR_SANDBOX_DIR, else $XDG_DATA_HOME/gitmoor/sandbox, "
    "else ~/.local/share/gitmoor/sandbox."
)


def default_sandbox_dir() -> Path:
    """``$GITMOOR_SANDBOX_DIR``, else ``$XDG_DATA_HOME/gitmoor/sandbox``, else under ~/.local."""
    configured = os.environ.get("GITMOOR_SANDBOX_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gitmoor" / "sandbox"


def _dir_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--dir",
        "state_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=_DIR_HELP,
    )(command)


def _nodes_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--nodes",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Number of simulated Nodes that Pods are scheduled on.",
    )(command)


def _uptime(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) or "0s"


def _describe(info: SandboxInfo) -> str:
    ready = "yes" if info.ready else "no (see the log)"
    return (
        f"sandbox running, state in {info.state_dir}\n"
        f"server:     {info.server}\n"
        f"pid:        {info.pid}\n"
        f"uptime:     {_uptime(info.uptime)}\n"
        f"ready:      {ready}\n"
        f"kubeconfig: {info.kubeconfig}\n"
        f"log:        {info.log}\n"
    )


def _export(output: Output, info: SandboxInfo) -> None:
    output.data(f"export KUBECONFIG={shlex.quote(str(info.kubeconfig))}\n")


@click.group()
def sandbox() -> None:
    """A local Kubernetes API server to run gitmoor, kubectl and Helm against.

    The sandbox serves the Kubernetes API over HTTPS on 127.0.0.1, with a CA created at
    its first start and a bearer token, and stores every object in SQLite under its
    state directory, so it survives restarts.

    \b
    Examples:
      eval "$(gitmoor sandbox up)"     # start it and point kubectl at it
      kubectl get nodes
      gitmoor sandbox status
      gitmoor sandbox down
    """


@sandbox.command()
@_dir_option
@click.option(
    "--port",
    type=click.IntRange(min=1, max=65535),
    help="Port to listen on. Default: the port of its previous start if free, else any.",
)
@_nodes_option
def up(state_dir: Path | None, port: int | None, nodes: int) -> None:
    """Start the sandbox in the background, or find it running already.

    Waits until it answers, writes DIR/kubeconfig (mode 0600) and prints the line
    that points kubectl at it; messages go to stderr, so `eval` takes the line alone.
    A sandbox already running in DIR is left as it is (--nodes does not change it).
    Exit code 2 if it could not start: the port is taken, or the server failed (the
    end of its log is shown).

    \b
    Examples:
      eval "$(gitmoor sandbox up)"
      gitmoor sandbox up --dir /tmp/preview --port 6443 --nodes 3
    """
    output = Output()
    directory = state_dir or default_sandbox_dir()
    with output.err.status(f"starting the sandbox in {directory}"):
        info = process.start(directory, port=port, nodes=nodes)
    verb = "found running" if info.reused else "started"
    output.info(f"sandbox {verb} on {info.server} (pid {info.pid}), state in {info.state_dir}")
    _export(output, info)


@sandbox.command()
@_dir_option
def down(state_dir: Path | None) -> None:
    """Stop the sandbox; its objects stay for the next `up`.

    Sends SIGTERM and, if it has not exited after 10 seconds, SIGKILL; the OpenBao dev
    server `gitmoor up` started beside it stops too. Exit code 0 also when nothing was
    running.

    \b
    Example:
      gitmoor sandbox down
    """
    output = Output()
    directory = state_dir or default_sandbox_dir()
    stopped = process.stop(directory)
    if stopped is None:
        output.info(f"no sandbox running in {directory}")
    else:
        output.info(f"sandbox stopped (pid {stopped.pid}, port {stopped.port})")
    # `gitmoor up` runs an OpenBao dev server beside the sandbox; it goes down with it.
    vault = devserver.stop(directory / devserver.DIRECTORY)
    if vault is not None:
        output.info(f"OpenBao dev server stopped (pid {vault.pid})")


@sandbox.command()
@_dir_option
def status(state_dir: Path | None) -> None:
    """Show whether the sandbox runs, where, and since when.

    Exit code 0 if it runs, 3 if it does not (as `systemctl status`), so scripts can
    test it: `gitmoor sandbox status >/dev/null 2>&1 || gitmoor sandbox up`.

    \b
    Example:
      gitmoor sandbox status --dir /tmp/preview
    """
    output = Output()
    directory = state_dir or default_sandbox_dir()
    info = process.status(directory)
    if info is None:
        output.data(f"no sandbox running in {directory}\n")
        raise SystemExit(EXIT_NOT_RUNNING)
    output.data(_describe(info))
    raise SystemExit(EXIT_OK)


@sandbox.command()
@_dir_option
@_nodes_option
def reset(state_dir: Path | None, nodes: int) -> None:
    """Delete every object in the sandbox and start afresh.

    Keeps the CA and the token, so kubeconfigs written before stay valid. A running
    sandbox is stopped, wiped and started again on the same port with --nodes Nodes;
    a stopped one is only wiped.

    \b
    Example:
      gitmoor sandbox reset --nodes 3
    """
    output = Output()
    directory = state_dir or default_sandbox_dir()
    stopped = process.reset(directory)
    if stopped is None:
        output.info(f"sandbox in {directory} wiped; `gitmoor sandbox up` starts it")
        return
    with output.err.status(f"starting the sandbox in {directory} again"):
        info = process.start(directory, port=stopped.port, nodes=nodes)
    output.info(f"sandbox wiped and started again on {info.server} (pid {info.pid})")
