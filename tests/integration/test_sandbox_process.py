"""The sandbox as a background process: real processes, real TLS on 127.0.0.1.

Process management is tested against a stand-in server (a small aiohttp TLS server that
answers /readyz with the sandbox's own PKI) so each misbehaviour can be staged: crashing at
start, never getting ready, ignoring SIGTERM. The real server is tested through the CLI
with the real kubectl.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitmoor.errors import GitmoorError
from gitmoor.render.kustomize_cli import kubectl_path
from gitmoor.sandbox import process
from gitmoor.sandbox.pki import Pki, ensure_pki

STANDIN = """\
import argparse, signal, sys
from pathlib import Path
from aiohttp import web
from gitmoor.sandbox.pki import ensure_pki, write_kubeconfig

parser = argparse.ArgumentParser()
parser.add_argument("--behaviour", default="serve")
parser.add_argument("--dir", type=Path, required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--nodes", type=int, required=True)
args = parser.parse_args()
if args.behaviour == "crash":
    print("stand-in refuses to start", file=sys.stderr)
    sys.exit(3)
if args.behaviour == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
pki = ensure_pki(args.dir / "pki")
write_kubeconfig(
    args.dir / "kubeconfig", server=f"https://127.0.0.1:{args.port}",
    ca_cert=pki.ca_cert, token=pki.token,
)

async def readyz(request):
    if request.headers.get("Authorization") != f"Bearer {pki.token}":
        return web.Response(status=401)
    return web.Response(status=503 if args.behaviour == "never-ready" else 200, text="ok")

app = web.Application()
app.router.add_get("/readyz", readyz)
web.run_app(
    app, host="127.0.0.1", port=args.port, ssl_context=pki.server_ssl_context(),
    print=None, handle_signals=args.behaviour != "ignore-term",
)
"""


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = tmp_path_factory.mktemp("standin") / "standin_server.py"
    script.write_text(STANDIN)
    return script


def command(script: Path, behaviour: str = "serve") -> tuple[str, ...]:
    return (sys.executable, str(script), "--behaviour", behaviour)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sandbox state"  # a space, as in many home directories
    yield directory
    process.stop(directory, grace=2.0)


def server_pids(state_dir: Path) -> list[int]:
    """Every process whose command line names ``state_dir`` after --dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if any(a == "--dir" and b == str(state_dir.resolve()) for a, b in itertools.pairwise(argv)):
            found.append(int(entry.name))
    return found


def readyz(port: int, pki: Pki, token: str | None) -> int:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=pki.client_ssl_context()
    )
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        connection.request("GET", "/readyz", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def plain_http_readyz(port: int, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz", headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def listening(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_start_status_stop(standin: Path, state_dir: Path) -> None:
    info = process.start(state_dir, command=command(standin))
    assert not info.reused
    assert info.ready
    assert server_pids(state_dir) == [info.pid]
    assert (state_dir / "sandbox.pid").read_text().strip() == str(info.pid)
    assert (state_dir / "sandbox.port").read_text().strip() == str(info.port)
    assert info.kubeconfig == state_dir.resolve() / "kubeconfig"
    assert (state_dir / "sandbox.log").exists()
    assert oct(state_dir.stat().st_mode & 0o777) == oct(0o700)
    pki = ensure_pki(state_dir / "pki")
    assert readyz(info.port, pki, pki.token) == http.client.OK

    found = process.status(state_dir)
    assert found is not None
    assert (found.pid, found.port, found.ready) == (info.pid, info.port, True)

    stopped = process.stop(state_dir)
    assert stopped is not None
    assert stopped.pid == info.pid
    assert server_pids(state_dir) == []
    assert process.status(state_dir) is None
    assert not (state_dir / "sandbox.pid").exists()
    assert process.stop(state_dir) is None


def test_a_running_sandbox_is_reused(standin: Path, state_dir: Path) -> None:
    first = process.start(state_dir, command=command(standin))
    again = process.start(state_dir, command=command(standin))
    assert again.reused
    assert (again.pid, again.port) == (first.pid, first.port)
    assert server_pids(state_dir) == [first.pid]
    same_port = process.start(state_dir, port=first.port, command=command(standin))
    assert same_port.pid == first.pid


def test_a_running_sandbox_is_not_moved_to_another_port(standin: Path, state_dir: Path) -> None:
    first = process.start(state_dir, command=command(standin))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        other = sock.getsockname()[1]
    with pytest.raises(GitmoorError) as caught:
        process.start(state_dir, port=other, command=command(standin))
    assert caught.value.location.field == "--port"
    assert server_pids(state_dir) == [first.pid]


def test_a_port_in_use_is_refused(standin: Path, state_dir: Path) -> None:
    with listening(0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(GitmoorError) as caught:
            process.start(state_dir, port=port, command=command(standin))
    assert caught.value.location.field == "--port"
    assert server_pids(state_dir) == []
    assert not (state_dir / "sandbox.pid").exists()


def test_a_restart_takes_the_same_port_or_another_if_taken(standin: Path, state_dir: Path) -> None:
    first = process.start(state_dir, command=command(standin))
    process.stop(state_dir)
    second = process.start(state_dir, command=command(standin))
    assert second.port == first.port
    assert second.pid != first.pid
    process.stop(state_dir)
    with listening(first.port):
        third = process.start(state_dir, command=command(standin))
    assert third.port != first.port
    assert third.ready


def test_a_server_that_exits_is_reported_with_its_log(standin: Path, state_dir: Path) -> None:
    with pytest.raises(GitmoorError) as caught:
        process.start(state_dir, command=command(standin, "crash"))
    log = state_dir.resolve() / "sandbox.log"
    assert caught.value.location.file == str(log)
    assert "stand-in refuses to start" in str(caught.value)
    assert process.status(state_dir) is None
    assert not (state_dir / "sandbox.pid").exists()


def test_a_server_never_ready_is_stopped(standin: Path, state_dir: Path) -> None:
    with pytest.raises(GitmoorError) as caught:
        process.start(state_dir, command=command(standin, "never-ready"), timeout=1.0)
    assert caught.value.location.file == str(state_dir.resolve() / "sandbox.log")
    assert server_pids(state_dir) == []
    assert process.status(state_dir) is None


def test_stop_kills_a_server_that_ignores_sigterm(standin: Path, state_dir: Path) -> None:
    info = process.start(state_dir, command=command(standin, "ignore-term"))
    stopped = process.stop(state_dir, grace=0.5)
    assert stopped is not None
    assert stopped.pid == info.pid
    assert server_pids(state_dir) == []


def test_a_stale_pid_file_never_names_another_process(state_dir: Path) -> None:
    state_dir.mkdir()
    # The pid of a live process that is not a sandbox server: this test's own.
    (state_dir / "sandbox.pid").write_text(f"{os.getpid()}\n")
    (state_dir / "sandbox.port").write_text("6443\n")
    assert process.status(state_dir) is None
    assert process.stop(state_dir) is None  # and this process is still here to check


def test_reset_wipes_objects_and_keeps_credentials(standin: Path, state_dir: Path) -> None:
    info = process.start(state_dir, command=command(standin))
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (state_dir / name).write_bytes(b"objects")
    kept = {
        path.relative_to(state_dir): path.read_bytes()
        for path in (state_dir / "kubeconfig", *sorted((state_dir / "pki").iterdir()))
    }
    stopped = process.reset(state_dir)
    assert stopped is not None
    assert stopped.pid == info.pid
    assert server_pids(state_dir) == []
    assert not list(state_dir.glob("state.db*"))
    assert {path: (state_dir / path).read_bytes() for path in kept} == kept
    assert process.reset(state_dir) is None


# --- the real server, through the CLI ---------------------------------------------------


def gitmoor(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("gitmoor")
    return subprocess.run(
        [str(executable), *argv], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def cli_env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "GITMOOR_SANDBOX_DIR": str(state_dir)}


def test_cli_status_and_down_without_a_sandbox(cli_env: dict[str, str]) -> None:
    assert gitmoor("sandbox", "status", env=cli_env).returncode == 3
    assert gitmoor("sandbox", "down", env=cli_env).returncode == 0


def test_cli_status_and_down_of_a_running_sandbox(
    standin: Path, state_dir: Path, cli_env: dict[str, str]
) -> None:
    info = process.start(state_dir, command=command(standin))
    status = gitmoor("sandbox", "status", env=cli_env)
    assert status.returncode == 0, status.stderr
    assert str(info.pid) in status.stdout
    down = gitmoor("sandbox", "down", env=cli_env)
    assert down.returncode == 0, down.stderr
    assert server_pids(state_dir) == []
    assert gitmoor("sandbox", "status", env=cli_env).returncode == 3


def test_cli_up_then_kubectl(state_dir: Path, cli_env: dict[str, str]) -> None:
    up = gitmoor("sandbox", "up", "--nodes", "2", env=cli_env)
    assert up.returncode == 0, up.stderr
    kubeconfig = state_dir.resolve() / "kubeconfig"
    # stdout is exactly what `eval "$(gitmoor sandbox up)"` needs
    exported = subprocess.run(
        ["sh", "-c", 'eval "$1"; printf %s "$KUBECONFIG"', "sh", up.stdout],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert exported.stdout == str(kubeconfig)
    assert oct(kubeconfig.stat().st_mode & 0o777) == oct(0o600)

    kubectl_env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def kubectl(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_path(), *argv], capture_output=True, text=True, env=kubectl_env, timeout=60
        )

    version = kubectl("version", "-o", "json")
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["serverVersion"]["major"] == "1"
    ready = kubectl("get", "--raw", "/readyz")
    assert ready.returncode == 0, ready.stderr
    refused = kubectl("--token", "not-the-token", "get", "--raw", "/readyz")
    assert refused.returncode != 0

    info = process.status(state_dir)
    assert info is not None
    pki = ensure_pki(state_dir / "pki")
    assert readyz(info.port, pki, "not-the-token") == http.client.UNAUTHORIZED
    assert readyz(info.port, pki, None) == http.client.UNAUTHORIZED
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain_http_readyz(info.port, pki.token)

    again = gitmoor("sandbox", "up", env=cli_env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == up.stdout
    assert process.status(state_dir) == info

    assert gitmoor("sandbox", "status", env=cli_env).returncode == 0
    down = gitmoor("sandbox", "down", env=cli_env)
    assert down.returncode == 0, down.stderr
    assert gitmoor("sandbox", "status", env=cli_env).returncode == 3
    assert server_pids(state_dir) == []
