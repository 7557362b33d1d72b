"""The in-cluster manifests: RBAC for every kind the controllers touch, a Deployment that
runs `gitmoor controllers` hardened as Flux's controllers are, and deploy/gitmoor.yaml
kept equal to what `gitmoor install --export --in-cluster` prints."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from click.testing import CliRunner

from gitmoor import __version__
from gitmoor.api.crds import crd_manifests
from gitmoor.cli.main import cli
from gitmoor.cli.up_cmd import controllers
from gitmoor.controllers.gitrepository import KIND as GITREPOSITORY
from gitmoor.controllers.kustomization import KIND as KUSTOMIZATION
from gitmoor.deploy import DEFAULT_IMAGE, in_cluster_manifests
from gitmoor.manifests import KubeObject, load_all

COMMITTED = Path(__file__).resolve().parents[2] / "deploy" / "gitmoor.yaml"
IMAGE = "registry.test/gitmoor:dev"


def manifests(namespace: str = "flux-system") -> list[KubeObject]:
    return in_cluster_manifests(namespace=namespace, image=IMAGE)


def one(objects: Iterable[KubeObject], kind: str, name: str | None = None) -> KubeObject:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in rules
    )


def cluster_rules(objects: list[KubeObject]) -> list[dict[str, Any]]:
    """The rules of the ClusterRole the ServiceAccount is bound to by name (not the
    cluster-admin binding)."""
    bindings = [
        o for o in objects
        if o["kind"] == "ClusterRoleBinding" and o["roleRef"]["name"] != "cluster-admin"
    ]  # fmt: skip
    assert len(bindings) == 1
    return list(one(objects, "ClusterRole", bindings[0]["roleRef"]["name"])["rules"])


def container(objects: list[KubeObject]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize(
    "crd", crd_manifests(), ids=lambda c: str(c["metadata"]["name"])
)  # fmt: skip
def test_cluster_role_grants_each_custom_kind_its_status_and_finalizers(
    crd: dict[str, Any],
) -> None:
    rules = cluster_rules(manifests())
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    for verb in ("get", "list", "watch", "patch", "update"):
        assert allows(rules, group, plural, verb), verb
    for verb in ("get", "patch", "update"):
        assert allows(rules, group, f"{plural}/status", verb), verb
    assert allows(rules, group, f"{plural}/finalizers", "update")


def test_cluster_role_grants_the_kinds_the_reconcilers_watch() -> None:
    rules = cluster_rules(manifests())
    for kind in (GITREPOSITORY, KUSTOMIZATION):
        assert allows(rules, kind.group, kind.plural, "watch")
        assert allows(rules, kind.group, f"{kind.plural}/status", "patch")


def test_cluster_role_grants_events_secrets_and_crd_discovery_but_not_deletes() -> None:
    rules = cluster_rules(manifests())
    assert allows(rules, "", "events", "create")
    assert allows(rules, "", "events", "patch")
    assert allows(rules, "", "secrets", "get")
    assert allows(rules, "", "configmaps", "get")
    assert allows(rules, "apiextensions.k8s.io", "customresourcedefinitions", "list")
    assert not any("delete" in rule["verbs"] or "*" in rule["verbs"] for rule in rules)
    # Leases are granted in the controllers' namespace only.
    assert not allows(rules, "coordination.k8s.io", "leases", "get")


def test_leases_are_granted_in_the_namespace_through_a_role() -> None:
    objects = manifests("gitops")
    role = one(objects, "Role")
    binding = one(objects, "RoleBinding")
    assert role["metadata"]["namespace"] == "gitops"
    for verb in ("get", "create", "update"):
        assert allows(role["rules"], "coordination.k8s.io", "leases", verb), verb
    assert binding["metadata"]["namespace"] == "gitops"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
        "name": role["metadata"]["name"],
    }  # fmt: skip


def test_kustomizations_apply_anything_through_a_cluster_admin_binding() -> None:
    binding = one(manifests(), "ClusterRoleBinding", "gitmoor-cluster-reconciler-flux-system")
    assert binding["roleRef"]["name"] == "cluster-admin"
    assert binding["metadata"]["annotations"]["kubernetes.io/description"]


def test_every_binding_names_the_service_account_of_its_namespace() -> None:
    objects = manifests("gitops")
    account = one(objects, "ServiceAccount")
    bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert len(bindings) == 3
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"],
             "namespace": "gitops"}
        ]  # fmt: skip
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_cluster_scoped_names_differ_between_namespaces() -> None:
    def cluster_scoped(namespace: str) -> set[str]:
        return {
            o["metadata"]["name"]
            for o in manifests(namespace)
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding")
        }

    assert not cluster_scoped("flux-system") & cluster_scoped("gitops")


def test_container_is_hardened_as_flux_controllers_are() -> None:
    objects = manifests()
    security = container(objects)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert isinstance(security["runAsUser"], int)
    assert security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_writable_paths_are_on_an_empty_dir() -> None:
    objects = manifests()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    spec = container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    assert volumes[mounts["/tmp"]] == {"name": mounts["/tmp"], "emptyDir": {}}
    env = {e["name"]: e.get("value") for e in spec["env"]}
    assert env["GITMOOR_CACHE_DIR"] == "/tmp/cache"
    assert Path(str(env["HOME"])).is_relative_to("/tmp")


def test_the_lease_is_in_the_pods_own_namespace() -> None:
    spec = container(manifests())
    [runtime] = [e for e in spec["env"] if e["name"] == "RUNTIME_NAMESPACE"]
    assert runtime["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_resources_are_requested_and_limited() -> None:
    resources = container(manifests())["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_command_is_one_the_controllers_command_accepts() -> None:
    command = container(manifests())["command"]
    assert command[:2] == ["gitmoor", "controllers"]
    context = controllers.make_context("controllers", list(command[2:]))
    assert context.params["metrics_address"] == "0.0.0.0"
    assert context.params["metrics_port"] == 8080
    assert context.params["leader_elect"] is True


def test_probes_and_scraping_reach_the_metrics_port() -> None:
    objects = manifests()
    spec = container(objects)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http-prom": 8080}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-prom"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-prom"}
    template = one(objects, "Deployment")["spec"]["template"]["metadata"]
    assert template["annotations"]["prometheus.io/scrape"] == "true"
    assert template["annotations"]["prometheus.io/port"] == "8080"


def test_service_selects_the_pods_on_the_metrics_port() -> None:
    objects = manifests()
    deployment = one(objects, "Deployment")
    service = one(objects, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {
        p["name"] for p in container(objects)["ports"]
    }


def test_two_replicas_by_default_for_failover() -> None:
    assert one(manifests(), "Deployment")["spec"]["replicas"] == 2
    objects = in_cluster_manifests(image=IMAGE, replicas=3)
    assert one(objects, "Deployment")["spec"]["replicas"] == 3


def test_every_object_carries_the_labels_and_the_namespace() -> None:
    objects = manifests("gitops")
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "gitmoor"
        assert labels["app.kubernetes.io/part-of"] == "gitmoor"
        assert labels["app.kubernetes.io/version"] == __version__
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "gitops"
    assert objects[0]["kind"] == "Namespace"
    assert objects[0]["metadata"]["name"] == "gitops"


@pytest.mark.parametrize("obj", manifests(), ids=lambda o: str(o["kind"]))
def test_objects_fit_the_kubernetes_schema(obj: KubeObject) -> None:
    kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_image_defaults_to_this_version_and_is_taken_from_the_flag() -> None:
    runner = CliRunner()
    default = runner.invoke(cli, ["install", "--export", "--in-cluster"])
    assert default.exit_code == 0, default.output
    assert container(load_all(default.stdout, file="<stdout>"))["image"] == DEFAULT_IMAGE
    assert DEFAULT_IMAGE == f"ghcr.io/gitmoor/gitmoor:{__version__}"
    chosen = runner.invoke(cli, ["install", "--export", "--in-cluster", "--image", IMAGE])
    assert chosen.exit_code == 0, chosen.output
    assert container(load_all(chosen.stdout, file="<stdout>"))["image"] == IMAGE


def test_export_without_in_cluster_is_only_the_crds() -> None:
    result = CliRunner().invoke(cli, ["install", "--export"])
    assert result.exit_code == 0, result.output
    assert {o["kind"] for o in load_all(result.stdout, file="<stdout>")} == {
        "CustomResourceDefinition"
    }


def test_committed_manifest_is_what_install_exports() -> None:
    result = CliRunner().invoke(cli, ["install", "--export", "--in-cluster"])
    assert result.exit_code == 0, result.output
    assert COMMITTED.read_text() == result.stdout, (
        "deploy/gitmoor.yaml is stale: regenerate it with "
        "`gitmoor install --export --in-cluster > deploy/gitmoor.yaml`"
    )
