"""The benchmarks still run against the code as it is (figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_render_bench_runs_one_build() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "render.py"), "--builds", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio gitmoor warm / raw tools one by one" in done.stdout
    assert "18 HelmReleases" in done.stdout


def test_sandbox_bench_runs_small() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "sandbox.py"), "--objects", "50"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "watch fan-out" in done.stdout
    assert "server memory (MiB)" in done.stdout
