"""Real Git remotes for the Git source's tests: bare repositories, sshd, HTTPS.

Test modules load them with ``pytest_plugins = ["git_fixtures"]``.
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tls_fixtures import make_pki

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    """Run the git command line in ``cwd``; its output, stripped."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Origin:
    """A bare repository with a work tree to change it from."""

    bare: Path
    work: Path

    def sha(self, rev: str) -> str:
        return git(self.bare, "rev-parse", f"{rev}^{{commit}}")

    def show(self, rev: str, path: str) -> str:
        """The text of ``path`` at ``rev``."""
        return git(self.bare, "show", f"{rev}:{path}") + "\n"

    def commit(self, files: dict[str, str], message: str) -> str:
        """Commit ``files`` on the work tree's current branch and push it; the new sha."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD")
        return git(self.work, "rev-parse", "HEAD")


def make_origin(root: Path) -> Origin:
    """Branches main, production and master; tags v1.0.0 (annotated), v1.1.0, v2.0.0
    (annotated), v2.1.0-rc.1, not-a-version; and refs/pull/1/head."""
    bare, work = root / "origin.git", root / "work"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(root, "init", "-q", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    origin = Origin(bare, work)
    files = {
        "apps/app.yaml": "version: 1.0.0\n",
        "README.md": "# fixture\n",
        "logo.png": "not really a png\n",
        ".gitignore": "*.tmp\n",
        ".github/workflows/ci.yaml": "on: push\n",
        "clusters/.sops.yaml": "creation_rules: []\n",
        "scripts/run.sh": "#!/bin/sh\necho run\n",
    }
    origin.commit(files, "v1.0.0")
    (work / "scripts/run.sh").chmod(0o755)
    (work / "link.yaml").symlink_to("apps/app.yaml")
    origin.commit({}, "executable script and a symlink")
    git(work, "tag", "-a", "v1.0.0", "-m", "release 1.0.0")
    git(work, "branch", "master")
    git(work, "branch", "production")
    origin.commit({"apps/app.yaml": "version: 1.1.0\n"}, "v1.1.0")
    git(work, "tag", "v1.1.0")
    origin.commit({"apps/app.yaml": "version: 2.0.0\n"}, "v2.0.0")
    git(work, "tag", "-a", "v2.0.0", "-m", "release 2.0.0")
    git(work, "tag", "not-a-version")
    origin.commit({"apps/app.yaml": "version: 2.1.0-rc.1\n"}, "v2.1.0-rc.1")
    git(work, "tag", "v2.1.0-rc.1")
    git(work, "push", "-q", "origin", "--tags", "master")
    git(work, "checkout", "-q", "production")
    origin.commit({"apps/production.yaml": "env: production\n"}, "production")
    git(work, "checkout", "-q", "-b", "pull-1", "main")
    origin.commit({"apps/feature.yaml": "feature: 1\n"}, "a pull request")
    git(work, "push", "-q", "origin", "HEAD:refs/pull/1/head")
    git(work, "push", "-q", "origin", "--delete", "pull-1")
    git(work, "checkout", "-q", "main")
    return origin


@pytest.fixture(scope="session")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """A remote the tests only read from."""
    return make_origin(tmp_path_factory.mktemp("origin"))


@pytest.fixture
def fresh_origin(tmp_path: Path) -> Origin:
    """A remote a test may change."""
    root = tmp_path / "remote"
    root.mkdir()
    return make_origin(root)


# --- sshd ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    host_key_pub: str
    """The server's public host key, as ``<type> <base64>``."""
    deploy_key: Path
    """A private key the server accepts."""
    stranger_key: Path
    """A private key the server does not accept."""

    def url(self, repository: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repository}"

    def known_hosts(self) -> bytes:
        return f"[127.0.0.1]:{self.port} {self.host_key_pub}\n".encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"the server did not listen on 127.0.0.1:{port}: {log.read_text()}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Debian's sshd on 127.0.0.1, letting the current user in with the deploy key."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} is missing (Debian package openssh-server)")
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing (Debian package openssh-client)")
    if not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        except PermissionError:
            pytest.fail(f"sshd needs {PRIVSEP_DIR}, which this user cannot create")
    root = tmp_path_factory.mktemp("sshd")
    host_key = keygen(root / "host_key")
    deploy_key = keygen(root / "deploy")
    stranger_key = keygen(root / "stranger")
    authorized = root / "authorized_keys"
    authorized.write_text((root / "deploy.pub").read_text())
    config = root / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\n"
        "UseDNS no\n"
    )
    port = free_port()
    log = root / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        host_key_pub = " ".join((root / "host_key.pub").read_text().split()[:2])
        yield SshServer(port, getpass.getuser(), host_key_pub, deploy_key, stranger_key)
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- git http-backend over HTTPS ------------------------------------------------------------


@dataclass(frozen=True)
class HttpsServer:
    port: int
    ca_file: bytes
    """The PEM of the CA that signed the server's certificate."""
    username: str
    password: str
    bearer_token: str

    def url(self, repository: Path) -> str:
        """``repository`` must sit in the directory the fixture was given."""
        return f"https://127.0.0.1:{self.port}/{repository.name}"


class _GitHandler(BaseHTTPRequestHandler):
    """Runs ``git http-backend`` as a CGI program for requests that bring credentials."""

    protocol_version = "HTTP/1.1"
    server: _GitServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on results, not on the server's log."""

    def _serve(self) -> None:
        body = self._body()
        if self.headers.get("Authorization") not in self.server.accepted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_USER": "git",
            "REMOTE_ADDR": "127.0.0.1",
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)


class _GitServer(ThreadingHTTPServer):
    def __init__(self, root: Path, accepted: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _GitHandler)
        self.root = root
        self.accepted = accepted


@pytest.fixture(scope="session")
def https_git(origin: Origin) -> Iterator[HttpsServer]:
    """``git http-backend`` over TLS, serving the directory of ``origin``'s bare repository."""
    pki = make_pki(origin.bare.parent / "pki")
    username, password, token = "flux", "s3cret-password", "s3cret-token"
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    server = _GitServer(origin.bare.parent, {f"Basic {basic}", f"Bearer {token}"})
    server.socket = pki.server_tls().context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpsServer(
            port=server.server_address[1],
            ca_file=pki.ca_crt.read_bytes(),
            username=username,
            password=password,
            bearer_token=token,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
