"""``gitmoor up --once`` from the command line: a sandbox and an OpenBao dev server started
in the background, the example repository bootstrapped into it, its ExternalSecret synced
from OpenBao, a summary, and the same again on a second run."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitmoor.secrets import devserver

GITMOOR = [str(Path(sys.executable).with_name("gitmoor"))]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sandbox"
    yield directory
    subprocess.run([*GITMOOR, "sandbox", "down", "--dir", str(directory)], capture_output=True)
    devserver.stop(directory / devserver.DIRECTORY)


def up(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITMOOR_SANDBOX_DIR": str(state_dir)}
    return subprocess.run(
        [*GITMOOR, "up", "--once", "--timeout", "240"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def kubectl(state_dir: Path, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(state_dir / "kubeconfig")}
    command = [str(Path(sys.executable).with_name("kubectl")), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.timeout(600)
def test_up_once_brings_the_example_up_and_a_second_run_reuses_it(state_dir: Path) -> None:
    first = up(state_dir)
    assert "8/8 Kustomizations Ready, 18/18 HelmReleases Ready" in first.stderr, first.stderr
    # Every release at revision 1, listed with its chart.
    assert "keda/keda" in first.stderr
    assert first.returncode == 0
    assert (state_dir / "repo" / ".git").is_dir()
    assert (state_dir / "kubeconfig").is_file()
    assert "1/1 ExternalSecrets Ready" in first.stderr
    # The example's Secret holds what OpenBao holds, and its ExternalSecret is Ready.
    openbao = devserver.status(state_dir / devserver.DIRECTORY)
    assert openbao is not None
    assert (state_dir / devserver.DIRECTORY / "root-token").stat().st_mode & 0o777 == 0o600
    stored = openbao.client().secrets.kv.v2.read_secret_version(
        path=devserver.EXAMPLE_PATH, raise_on_deleted_version=True
    )["data"]["data"][devserver.EXAMPLE_PROPERTY]
    assert kubectl(state_dir, "get", "secret", "app-credentials", "-n", "my-app",
                   "-o", "jsonpath={.data.DATABASE_URL}") == b64(stored)  # fmt: skip
    ready = 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
    assert kubectl(state_dir, "get", "externalsecret", "app-credentials", "-n", "my-app",
                   "-o", ready) == "True"  # fmt: skip
    log = subprocess.run(["git", "-C", str(state_dir / "repo"), "log", "--oneline"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    second = up(state_dir)
    assert "8/8 Kustomizations Ready, 18/18 HelmReleases Ready" in second.stderr, second.stderr
    # The same OpenBao, with the same secret, serves the second run.
    again_openbao = devserver.status(state_dir / devserver.DIRECTORY)
    assert again_openbao is not None
    assert again_openbao.pid == openbao.pid
    assert kubectl(state_dir, "get", "secret", "app-credentials", "-n", "my-app",
                   "-o", "jsonpath={.data.DATABASE_URL}") == b64(stored)  # fmt: skip
    # The repository, with the commits made there, is kept.
    again = subprocess.run(["git", "-C", str(state_dir / "repo"), "log", "--oneline"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert again == log
