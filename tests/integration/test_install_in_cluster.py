"""``gitmoor install --in-cluster`` from the command line into the sandbox: CRDs, RBAC and
the controllers' Deployment applied, and the command returns once the simulator has
rolled the Deployment out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.deploy import DEFAULT_IMAGE, in_cluster_manifests
from gitmoor.manifests import dump_all

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

GITMOOR = str(Path(sys.executable).with_name("gitmoor"))


def install(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GITMOOR, "install", "--in-cluster", "--kubeconfig", str(sandbox.kubeconfig),
         "--timeout", "120", *args],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def get(sandbox: Sandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def condition(obj: dict[str, Any], kind: str) -> str | None:
    found = [c for c in obj["status"].get("conditions", []) if c["type"] == kind]
    return found[0]["status"] if found else None


@pytest.mark.timeout(300)
def test_install_in_cluster_runs_the_controllers_deployment(sandbox: Sandbox) -> None:
    done = install(sandbox)
    assert done.returncode == 0, done.stderr
    deployment = get(sandbox, "deployment", "gitmoor-controllers", "-n", "flux-system")
    assert condition(deployment, "Available") == "True"
    assert deployment["status"]["readyReplicas"] == 2
    pods = get(sandbox, "pods", "-n", "flux-system", "-l", "app.kubernetes.io/name=gitmoor")
    assert len(pods["items"]) == 2
    crd = get(sandbox, "crd", "kustomizations.kustomize.toolkit.fluxcd.io")
    assert condition(crd, "Established") == "True"


@pytest.mark.timeout(300)
def test_install_in_cluster_creates_the_service_account_and_its_rbac(sandbox: Sandbox) -> None:
    done = install(sandbox)
    assert done.returncode == 0, done.stderr
    account = get(sandbox, "serviceaccount", "gitmoor", "-n", "flux-system")
    assert account["metadata"]["name"] == "gitmoor"
    role = get(sandbox, "clusterrole", "gitmoor-controller-flux-system")
    granted = {r for rule in role["rules"] for r in rule.get("resources", [])}
    assert {"gitrepositories", "kustomizations/status", "events"} <= granted
    admin = get(sandbox, "clusterrolebinding", "gitmoor-cluster-reconciler-flux-system")
    assert admin["roleRef"]["name"] == "cluster-admin"
    assert admin["subjects"] == [
        {"kind": "ServiceAccount", "name": "gitmoor", "namespace": "flux-system"}
    ]
    leases = get(sandbox, "rolebinding", "gitmoor-leader-election", "-n", "flux-system")
    assert leases["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gitmoor-leader-election"
    }  # fmt: skip
    service = get(sandbox, "service", "gitmoor-controllers", "-n", "flux-system")
    assert service["spec"]["ports"][0]["port"] == 8080


@pytest.mark.timeout(300)
def test_install_in_cluster_takes_an_image_and_a_namespace(sandbox: Sandbox) -> None:
    done = install(sandbox, "--namespace", "gitops", "--image", "registry.test/gitmoor:dev")
    assert done.returncode == 0, done.stderr
    deployment = get(sandbox, "deployment", "gitmoor-controllers", "-n", "gitops")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.test/gitmoor:dev"
    assert condition(deployment, "Available") == "True"


@pytest.mark.timeout(300)
def test_install_in_cluster_again_changes_nothing_and_succeeds(sandbox: Sandbox) -> None:
    first = install(sandbox)
    assert first.returncode == 0, first.stderr
    before = get(sandbox, "deployment", "gitmoor-controllers", "-n", "flux-system")
    second = install(sandbox)
    assert second.returncode == 0, second.stderr
    after = get(sandbox, "deployment", "gitmoor-controllers", "-n", "flux-system")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


@pytest.mark.timeout(300)
def test_install_in_cluster_fails_when_the_deployment_never_becomes_available(
    sandbox: Sandbox,
) -> None:
    # Someone else's annotation, which gitmoor's apply leaves alone: the sandbox's pods of
    # this Deployment never become Ready.
    objects = in_cluster_manifests(image=DEFAULT_IMAGE)
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["metadata"]["annotations"] = {"sandbox.gitmoor.dev/fail": "never-ready"}
    sandbox.kubectl("apply", "--server-side", "--field-manager=tester", "-f", "-",
                    stdin=dump_all([namespace, deployment]))  # fmt: skip
    done = install(sandbox, "--timeout", "5")
    assert done.returncode == 2
    assert "Deployment flux-system/gitmoor-controllers" in done.stderr
    live = get(sandbox, "deployment", "gitmoor-controllers", "-n", "flux-system")
    assert condition(live, "Available") != "True"
