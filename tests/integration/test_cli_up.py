"""``gitmoor up --once`` from the command line: a sandbox started in the background, the
example repository bootstrapped into it, a summary, and the same again on a second run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

GITMOOR = [str(Path(sys.executable).with_name("gitmoor"))]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sandbox"
    yield directory
    subprocess.run([*GITMOOR, "sandbox", "down", "--dir", str(directory)], capture_output=True)


def up(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITMOOR_SANDBOX_DIR": str(state_dir)}
    return subprocess.run(
        [*GITMOOR, "up", "--once", "--timeout", "240"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


@pytest.mark.timeout(600)
def test_up_once_brings_the_example_up_and_a_second_run_reuses_it(state_dir: Path) -> None:
    first = up(state_dir)
    assert "8/8 Kustomizations Ready, 18/18 HelmReleases Ready" in first.stderr, first.stderr
    # Every release at revision 1, listed with its chart.
    assert "keda/keda" in first.stderr
    assert first.returncode == 0
    assert (state_dir / "repo" / ".git").is_dir()
    assert (state_dir / "kubeconfig").is_file()
    log = subprocess.run(["git", "-C", str(state_dir / "repo"), "log", "--oneline"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    second = up(state_dir)
    assert "8/8 Kustomizations Ready, 18/18 HelmReleases Ready" in second.stderr, second.stderr
    # The repository, with the commits made there, is kept.
    again = subprocess.run(["git", "-C", str(state_dir / "repo"), "log", "--oneline"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert again == log
