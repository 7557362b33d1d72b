"""``gitmoor controllers`` as a process: it takes the lease, reconciles, serves Flux-named
metrics on /metrics, writes JSON logs, and a second process takes over when it is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.bootstrap import git

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

GITMOOR = str(Path(sys.executable).with_name("gitmoor"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        time.sleep(0.3)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "cluster").mkdir(parents=True)
    (repo / "cluster" / "settings.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\n"
        "data:\n  mode: fast\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def start(sandbox: Sandbox, tmp_path: Path, port: int, name: str) -> subprocess.Popen[str]:
    """A controllers process logging into ``tmp_path/<name>.log`` (a file, not a pipe
    nobody reads while it runs)."""
    env = {**os.environ, "GITMOOR_CACHE_DIR": str(tmp_path / f"cache-{name}")}
    with (tmp_path / f"{name}.log").open("w") as log:
        return subprocess.Popen(
            [GITMOOR, "controllers", "--kubeconfig", str(sandbox.kubeconfig),
             "--metrics-port", str(port), "--log-level", "debug"],
            env=env, stderr=log, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip


def lease_of(sandbox: Sandbox) -> dict[str, Any]:
    listed = sandbox.kubectl("get", "lease", "gitmoor-controllers", "-n", "flux-system", "-o",
                             "json")  # fmt: skip
    lease: dict[str, Any] = json.loads(listed.stdout)
    return lease


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.timeout(240)
def test_controllers_process_reconciles_serves_metrics_and_fails_over(
    sandbox: Sandbox, repository: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    subprocess.run([GITMOOR, "install", "--kubeconfig", str(sandbox.kubeconfig)], check=True,
                   capture_output=True)  # fmt: skip
    sandbox.kubectl("create", "namespace", "flux-system")
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        stdin=f"""
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: repo, namespace: flux-system}}
spec: {{interval: 1m, url: "{repository.as_uri()}", ref: {{branch: main}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: settings, namespace: flux-system}}
spec: {{interval: 1m, path: ./cluster, prune: true, sourceRef: {{kind: GitRepository, name: repo}}}}
""",
    )
    first_port, second_port = free_port(), free_port()
    processes.append(start(sandbox, tmp_path, first_port, "first"))

    def applied() -> bool:
        """the ConfigMap from Git is in the cluster"""
        done = sandbox.kubectl("get", "configmap", "settings", "-o", "json", check=False)
        return done.returncode == 0 and json.loads(done.stdout)["data"] == {"mode": "fast"}

    eventually(applied)

    def scraped() -> bool:
        """both kinds have reconcile metrics"""
        text = scrape(first_port)
        return 'kind="Kustomization"' in text and 'kind="GitRepository"' in text

    eventually(scraped)
    text = scrape(first_port)
    assert "gotk_reconcile_duration_seconds_bucket" in text
    assert "gotk_resource_info{" in text
    info = [line for line in text.splitlines()
            if line.startswith("gotk_resource_info{") and 'name="settings"' in line]  # fmt: skip
    assert len(info) == 1
    assert 'ready="True"' in info[0]
    assert 'suspended="false"' in info[0]

    # A second instance waits for the lease; killing the first hands it over.
    processes.append(start(sandbox, tmp_path, second_port, "second"))
    time.sleep(2)
    lease = lease_of(sandbox)
    assert lease["spec"]["holderIdentity"].startswith(socket.gethostname())
    first_holder = lease["spec"]["holderIdentity"]
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    first_log = (tmp_path / "first.log").read_text()
    lines = [json.loads(line) for line in first_log.splitlines() if line.startswith("{")]
    reconciles = [line for line in lines if line.get("controllerKind") == "Kustomization"]
    assert reconciles
    assert {"ts", "level", "msg", "name", "namespace", "revision", "duration"} <= set(reconciles[0])

    (repository / "cluster" / "settings.yaml").write_text(
        (repository / "cluster" / "settings.yaml").read_text().replace("fast", "slow")
    )
    git(repository, "commit", "-q", "-am", "slow")
    sandbox.kubectl("annotate", "--overwrite", "-n", "flux-system", "gitrepository/repo",
                    f"reconcile.fluxcd.io/requestedAt={time.time_ns()}")  # fmt: skip

    def taken_over() -> bool:
        """the second instance applied the new commit"""
        done = sandbox.kubectl("get", "configmap", "settings", "-o", "json", check=False)
        return done.returncode == 0 and json.loads(done.stdout)["data"] == {"mode": "slow"}

    eventually(taken_over, timeout=90)
    lease = lease_of(sandbox)
    assert lease["spec"]["holderIdentity"] != first_holder
    assert lease["spec"]["leaseTransitions"] >= 1
    processes[1].send_signal(signal.SIGTERM)
    assert processes[1].wait(30) == 0  # a clean stop, the lease released
    lease = lease_of(sandbox)
    assert lease["spec"]["holderIdentity"] == ""
