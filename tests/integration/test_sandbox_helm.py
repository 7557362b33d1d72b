"""The real Helm SDK against the sandbox, with its defaults: release records in Secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import helm_python

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]


def release_secrets(sandbox: Sandbox) -> list[str]:
    listed = sandbox.kubectl(
        "get", "secrets", "-n", "default", "-l", "owner=helm,name=demo", "-o", "json"
    )
    return sorted(item["metadata"]["name"] for item in json.loads(listed.stdout)["items"])


def test_install_upgrade_history_rollback_uninstall(sandbox: Sandbox, tmp_path: Path) -> None:
    chart = helm_python.Chart.create("demo", tmp_path)
    helm = helm_python.Config(kubeconfig_path=str(sandbox.kubeconfig), namespace="default")
    installed = helm.install(chart, "demo", namespace="default")
    assert (installed["revision"], installed["status"]) == (1, "deployed")
    deployment = json.loads(
        sandbox.kubectl("get", "deployment", "demo", "-n", "default", "-o", "json").stdout
    )
    assert deployment["spec"]["replicas"] == 1

    upgraded = helm.upgrade(chart, "demo", {"replicaCount": 3}, namespace="default")
    assert upgraded["revision"] == 2
    replicas = sandbox.kubectl(
        "get", "deployment", "demo", "-n", "default", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "3"

    helm.rollback("demo", version=1)
    history = helm.history("demo")
    assert [(r["revision"], r["status"]) for r in history] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    replicas = sandbox.kubectl(
        "get", "deployment", "demo", "-n", "default", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "1"
    assert release_secrets(sandbox) == [f"sh.helm.release.v1.demo.v{n}" for n in (1, 2, 3)]

    helm.uninstall("demo")
    assert release_secrets(sandbox) == []
    gone = sandbox.kubectl("get", "deployment", "demo", "-n", "default", check=False)
    assert gone.returncode == 1
