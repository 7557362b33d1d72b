"""The benchmarks still run against the code as it is (figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    ("script", "argv", "expected"),
    [
        (
            "render.py",
            ["--builds", "1"],
            ["ratio gitmoor warm / raw tools one by one", "18 HelmReleases"],
        ),
        ("sandbox.py", ["--objects", "50"], ["watch fan-out", "server memory (MiB)"]),
        (
            "reconcile.py",
            ["--objects", "40", "--kustomizations", "4", "--rounds", "1"],
            ["40 objects in 4 Kustomizations", "no-op reconcile / no-op apply"],
        ),
        (
            "helm.py",
            ["--releases", "3", "--rounds", "1"],
            ["3 HelmReleases", "Helm upgrades caused by gitmoor's no-op reconciles"],
        ),
        (
            "externalsecrets.py",
            ["--secrets", "20", "--namespaces", "2", "--rounds", "1"],
            ["20 ExternalSecrets in 2 namespaces", "no-change refresh, all at once"],
        ),
    ],
)
def test_bench_runs(script: str, argv: list[str], expected: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for text in expected:
        assert text in done.stdout
