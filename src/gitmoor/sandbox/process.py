"""The sandbox as a background process: start it, find it again, stop it, wipe it.

One state directory holds one sandbox::

    state.db*      the objects (SQLite); ``reset`` deletes these and nothing else
    pki/           CA, server certificate and token (see ``pki.py``), kept by ``reset`` so
                   kubeconfigs handed out before stay valid
    kubeconfig     written by the server process at every start
    sandbox.pid    the running server's process id; removed when it is stopped
    sandbox.port   the port it listens on; kept, so the next start takes it again if free
    sandbox.log    the server's stdout and stderr, started afresh at every start

A pid file alone does not prove a sandbox runs: the process must be alive and be a
server started for this very directory (its command line says ``--dir DIR``), so a
recycled process id is never taken for the sandbox, nor killed.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitmoor.errors import GitmoorError, Location
from gitmoor.locks import locked_directory
from gitmoor.sandbox.pki import Pki, ensure_pki, write_file

HOST = "127.0.0.1"
SERVER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "gitmoor.sandbox.serve")
START_TIMEOUT = 20.0
STOP_GRACE = 10.0
LOG_TAIL_LINES = 20

_POLL = 0.05


@dataclass(frozen=True)
class SandboxInfo:
    """A running sandbox, as ``start`` and ``status`` find it."""

    state_dir: Path
    pid: int
    port: int
    started_at: datetime
    ready: bool
    reused: bool = False  # start found it running instead of starting it

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def log(self) -> Path:
        return self.state_dir / "sandbox.log"

    @property
    def uptime(self) -> timedelta:
        return datetime.now(UTC) - self.started_at


def start(
    state_dir: Path,
    *,
    port: int | None = None,
    nodes: int = 1,
    command: Sequence[str] = SERVER_COMMAND,
    timeout: float = START_TIMEOUT,
) -> SandboxInfo:
    """Start the sandbox of ``state_dir`` in the background, or find it already running.

    ``command`` is run with ``--dir DIR --port N --nodes N`` appended. Without ``port``
    the port of the previous start is taken again if it is free, else any free one.
    Returns once ``/readyz`` answers 200 over TLS with the sandbox's CA and token.
    """
    state_dir = state_dir.resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with locked_directory(state_dir):
        running = status(state_dir)
        if running is not None:
            if port is not None and port != running.port:
                raise GitmoorError(
                    f"the sandbox in {state_dir} already runs on port {running.port} "
                    f"(pid {running.pid}); stop it first to move it to port {port}",
                    Location(field="--port"),
                )
            return replace(running, reused=True)
        chosen = _choose_port(state_dir, port)
        pki = ensure_pki(state_dir / "pki")
        argv = [
            *command,
            *("--dir", str(state_dir), "--port", str(chosen), "--nodes", str(nodes)),
        ]
        log = state_dir / "sandbox.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=state_dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # outlives the shell and ignores its Ctrl-C
            )
        write_file(_pid_file(state_dir), f"{process.pid}\n".encode(), 0o644)
        write_file(_port_file(state_dir), f"{chosen}\n".encode(), 0o644)
        try:
            _wait_ready(process, chosen, pki, log, timeout)
        except BaseException:
            terminate(process.pid, STOP_GRACE)
            _pid_file(state_dir).unlink(missing_ok=True)
            raise
        return SandboxInfo(state_dir, process.pid, chosen, _started_at(state_dir), ready=True)


def stop(state_dir: Path, *, grace: float = STOP_GRACE) -> SandboxInfo | None:
    """Stop the sandbox: SIGTERM, then SIGKILL after ``grace`` seconds. None if none ran."""
    state_dir = state_dir.resolve()
    with locked_directory(state_dir):
        return _stop(state_dir, grace)


def status(state_dir: Path) -> SandboxInfo | None:
    """The sandbox running for ``state_dir``, or None; ``ready`` asks its ``/readyz``."""
    state_dir = state_dir.resolve()
    pid = read_int(_pid_file(state_dir))
    port = read_int(_port_file(state_dir))
    if pid is None or port is None or not _is_server(pid, state_dir):
        return None
    try:
        started_at = _started_at(state_dir)
    except OSError:  # stopped meanwhile
        return None
    pki_dir = state_dir / "pki"
    try:
        pki = Pki(
            pki_dir / "ca.crt",
            pki_dir / "server.crt",
            pki_dir / "server.key",
            (pki_dir / "token").read_text().strip(),
        )
        ready = _probe(port, pki, timeout=2.0) == http.client.OK
    except OSError:
        ready = False
    return SandboxInfo(state_dir, pid, port, started_at, ready)


def reset(state_dir: Path) -> SandboxInfo | None:
    """Stop the sandbox and delete every object it stored; returns what was stopped.

    The CA, token and kubeconfig stay: a client configured before a reset keeps working
    after the next start.
    """
    state_dir = state_dir.resolve()
    with locked_directory(state_dir):
        stopped = _stop(state_dir, STOP_GRACE)
        for path in state_dir.glob("state.db*"):
            path.unlink()
    return stopped


def _stop(state_dir: Path, grace: float) -> SandboxInfo | None:
    running = status(state_dir)
    if running is not None:
        terminate(running.pid, grace)
    _pid_file(state_dir).unlink(missing_ok=True)
    return running


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "sandbox.pid"


def _port_file(state_dir: Path) -> Path:
    return state_dir / "sandbox.port"


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _started_at(state_dir: Path) -> datetime:
    return datetime.fromtimestamp(_pid_file(state_dir).stat().st_mtime, UTC)


def _choose_port(state_dir: Path, requested: int | None) -> int:
    if requested is not None:
        if not port_free(requested):
            raise GitmoorError(
                f"port {requested} on {HOST} is already in use", Location(field="--port")
            )
        return requested
    previous = read_int(_port_file(state_dir))
    if previous is not None and port_free(previous):
        return previous
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    # SO_REUSEADDR as aiohttp binds: a port whose old connections linger in TIME_WAIT
    # is free for the server, so it counts as free here too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def _probe(port: int, pki: Pki, *, timeout: float) -> int:
    """The HTTP status of ``GET /readyz``, sent as a client with the kubeconfig would."""
    connection = http.client.HTTPSConnection(
        HOST, port, timeout=timeout, context=pki.client_ssl_context()
    )
    try:
        connection.request("GET", "/readyz", headers={"Authorization": f"Bearer {pki.token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, pki: Pki, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    answer = "no answer"
    while True:
        code = process.poll()
        if code is not None:
            raise GitmoorError(
                f"the sandbox server exited with code {code} before it was ready; "
                f"its log ends:\n{_tail(log)}",
                Location(file=str(log)),
            )
        try:
            status_code = _probe(port, pki, timeout=1.0)
        except OSError as exc:  # not listening yet, or TLS failing
            answer = str(exc)
        else:
            if status_code == http.client.OK:
                return
            answer = f"HTTP {status_code}"
        if time.monotonic() > deadline:
            raise GitmoorError(
                f"the sandbox server was not ready on https://{HOST}:{port}/readyz after "
                f"{timeout:.0f}s (last answer: {answer}); its log ends:\n{_tail(log)}",
                Location(file=str(log)),
            )
        time.sleep(_POLL * 4)


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in lines[-LOG_TAIL_LINES:]) or "  (empty)"


def _is_server(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is alive and is a sandbox server started for ``state_dir``."""
    found = _inspect(pid)
    if found is None:
        return False
    state, argv = found
    return state != "Z" and any(
        flag == "--dir" and Path(value) == state_dir for flag, value in itertools.pairwise(argv)
    )


def _alive(pid: int) -> bool:
    found = _inspect(pid)
    return found is not None and found[0] != "Z"


def _inspect(pid: int) -> tuple[str, list[str]] | None:
    """A process's state letter (R, S, Z, ...) and command line; None if there is none.

    A server that exited stays a zombie until its parent reaps it, which may be never
    (this process, busy waiting for a child; an init that does not reap): a zombie
    counts as gone. Our own children are reaped here.
    """
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        # the state follows the command name in parentheses, which may hold anything
        return stat.rpartition(")")[2].split()[0], argv.split("\0")
    # Without /proc (macOS): ps, which joins the arguments with spaces.
    done = subprocess.run(
        ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    fields = done.stdout.split()
    return (fields[0][0], fields[1:]) if fields else None


def terminate(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(_POLL)
