"""Real chart servers: Debian's docker-registry and an HTTP chart repository.

Both bind 127.0.0.1 on a free port, keep everything in a directory the caller owns, and
are context managers::

    with RegistryServer(tmp / "registry") as registry:
        registry.push(make_chart(tmp, "demo", "1.0.0", "1.0"))

    with ChartRepoServer(tmp / "repo") as repo:
        repo.publish(make_chart(tmp, "demo", "1.0.0", "1.0"))

Given a ``ServerTls`` they serve HTTPS instead, and with its ``client_ca`` they require a
client certificate signed by that CA.
"""

from __future__ import annotations

import base64
import functools
import hmac
import http.server
import importlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import helm_python

from gitmoor.source.chartauth import RepoAuth
from gitmoor.source.charts import registry_client

REGISTRY_BINARY = Path("/usr/bin/docker-registry")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_chart(directory: Path, name: str, version: str, app_version: str) -> Path:
    """Package Helm's scaffold chart as ``directory/<name>-<version>.tgz``."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scaffold:
        helm_python.Chart.create(name, scaffold).close()
        archive = helm_python.package(
            Path(scaffold) / name,
            destination=directory,
            version=version,
            app_version=app_version,
        )
    return Path(archive)


def bcrypt_hasher() -> Callable[[str], str] | None:
    """A bcrypt hasher for htpasswd files (all docker-registry accepts), or None.

    The ``bcrypt`` package if installed, else the C library's through ``crypt``
    (Python < 3.13).
    """
    try:
        bcrypt: Any = importlib.import_module("bcrypt")
    except ImportError:
        pass
    else:
        return lambda password: str(bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            crypt: Any = importlib.import_module("crypt")
    except ImportError:
        return None
    if crypt.METHOD_BLOWFISH not in crypt.methods:
        return None
    return lambda password: str(crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key (valid for 127.0.0.1), the CA that signed them, and
    optionally the CA whose client certificates the server requires."""

    certificate: Path
    key: Path
    ca: Path
    client_ca: Path | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca)
        return context

    def registry_config(self) -> str:
        """The ``http.tls`` section of a docker-registry configuration."""
        clients = f"    clientcas:\n      - {self.client_ca}\n" if self.client_ca else ""
        return f"  tls:\n    certificate: {self.certificate}\n    key: {self.key}\n{clients}"


class _Server(ABC):
    """A server that runs between ``start()`` and ``stop()``, or for a ``with`` block."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class RegistryServer(_Server):
    """``docker-registry serve`` on 127.0.0.1, plain HTTP (HTTPS with ``tls``), storage
    under ``directory``.

    With ``username`` and ``password`` it requires basic auth (htpasswd, bcrypt); check
    ``bcrypt_hasher()`` first, the constructor raises RuntimeError without one.
    """

    def __init__(
        self,
        directory: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.username = username
        self.password = password
        self.tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        auth = ""
        if username is not None and password is not None:
            hasher = bcrypt_hasher()
            if hasher is None:
                raise RuntimeError("no bcrypt implementation to write an htpasswd file")
            htpasswd = directory / "htpasswd"
            htpasswd.write_text(f"{username}:{hasher(password)}\n")
            auth = f"auth:\n  htpasswd:\n    realm: gitmoor-tests\n    path: {htpasswd}\n"
        self.config = directory / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
            f"{tls.registry_config() if tls else ''}"
            f"{auth}"
        )

    @property
    def url(self) -> str:
        return f"oci://{self.host}"

    def start(self) -> None:
        if not REGISTRY_BINARY.exists():
            raise RuntimeError(f"{REGISTRY_BINARY} is missing (Debian package docker-registry)")
        log = (self.directory / "registry.log").open("ab")
        self._process = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited; see {self.directory / 'registry.log'}")
            try:
                if self.tls is not None:  # a handshake may need a client certificate
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # 401 from a registry that wants a login: it answers
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"docker-registry did not answer on {self.host}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def auth(self) -> RepoAuth:
        """This registry's login, trusting its CA when it serves TLS."""
        return RepoAuth(
            username=self.username,
            password=self.password,
            ca_pem=self.tls.ca.read_bytes() if self.tls else None,
        )

    def push(self, chart_tgz: Path, path: str = "charts", *, auth: RepoAuth | None = None) -> str:
        """Push an archive under ``oci://<host>/<path>``; returns the chart's OCI URL.
        ``auth`` defaults to :meth:`auth`; a registry that wants a client certificate
        needs one given."""
        plain_http = self.tls is None
        with (
            tempfile.TemporaryDirectory() as private,
            registry_client(
                self.host, auth or self.auth(), plain_http=plain_http, scratch=Path(private)
            ) as client,
        ):
            client.push(chart_tgz, f"{self.url}/{path}", plain_http=plain_http)
            with helm_python.Chart.load(chart_tgz) as chart:
                return f"{self.url}/{path}/{chart.name}"

    def delete_blob(self, repository: str, digest: str) -> None:
        """Remove a blob (e.g. a chart layer) from ``repository`` through the registry's API."""
        request = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/blobs/{digest}", method="DELETE"
        )
        if self.username is not None and self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10):
            pass


class _ChartRepoHandler(http.server.SimpleHTTPRequestHandler):
    server: _ChartRepoHTTPServer

    def do_GET(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with self.server.lock:
            self.server.requests.append(self.path)
        super().do_GET()

    def _authorized(self) -> bool:
        expected = self.server.authorization
        if expected is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ChartRepoHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    authorization: str | None
    requests: list[str]
    lock: threading.Lock


class ChartRepoServer(_Server):
    """A Helm chart repository: ``directory`` served over HTTP (HTTPS with ``tls``) on
    127.0.0.1.

    ``requests`` lists the paths of the requests answered (after authentication), in order.
    """

    def __init__(
        self,
        directory: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_ChartRepoHandler, directory=str(directory))
        self._server = _ChartRepoHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self._server.socket = tls.context().wrap_socket(self._server.socket, server_side=True)
        self._server.authorization = None
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._server.authorization = f"Basic {token}"
        self._server.requests = []
        self._server.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)

    def publish(self, *charts: Path) -> dict[str, Any]:
        """Copy archives into the repository and regenerate ``index.yaml``; returns it."""
        for chart in charts:
            if chart.parent != self.directory:
                shutil.copy2(chart, self.directory / chart.name)
        return helm_python.repo_index_generate(self.directory, base_url=self.url)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
