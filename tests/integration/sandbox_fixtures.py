"""A sandbox API server for tests: real HTTPS on 127.0.0.1, real kubectl against it.

Test modules load it with ``pytest_plugins = ["sandbox_fixtures"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitmoor.sandbox.pki import ensure_pki, write_kubeconfig
from gitmoor.sandbox.server import serve

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sandbox:
    """One sandbox server running on a thread of its own, restartable on the same state."""

    directory: Path
    port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        pki = ensure_pki(self.directory / "pki")
        write_kubeconfig(self.kubeconfig, server=self.url, ca_cert=pki.ca_cert, token=pki.token)
        self.token = pki.token
        self.ca_cert = pki.ca_cert
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._task = loop.create_task(
                serve(self.directory, host="127.0.0.1", port=self.port, pki=pki)
            )
            loop.call_soon(started.set)
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)

        self._loop = loop
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        for _ in range(200):
            try:
                self.request("GET", "/readyz")
                return
            except OSError:
                threading.Event().wait(0.05)
        raise RuntimeError("the sandbox did not answer /readyz")

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._thread = self._task = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        token: str | None = None,
    ) -> tuple[int, Any]:
        """A raw API call; returns (status code, decoded JSON body or text)."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                code, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            code, raw = exc.code, exc.read()
        try:
            return code, json.loads(raw)
        except ValueError:
            return code, raw.decode()

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.directory)}
        done = subprocess.run(
            [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60,
            check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    server = Sandbox(tmp_path / "sandbox")
    server.start()
    yield server
    server.stop()
