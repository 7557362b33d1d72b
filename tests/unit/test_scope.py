from __future__ import annotations

from typing import Any

import pytest

from gitmoor.render.scope import is_namespaced


def crd(group: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.{group}"},
        "spec": {"group": group, "scope": scope, "names": {"kind": kind}},
    }


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Namespace"),
        ("v1", "PersistentVolume"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
    ],
)
def test_cluster_scoped_builtins(api_version: str, kind: str) -> None:
    assert not is_namespaced(api_version, kind, [])


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("example.com/v1", "Namespace"),  # same kind, another group
        ("unknown.io/v1", "Thing"),  # unknown kinds are namespaced
    ],
)
def test_namespaced_kinds(api_version: str, kind: str) -> None:
    assert is_namespaced(api_version, kind, [])


def test_crds_decide_for_their_kinds() -> None:
    crds = [crd("example.com", "Gadget", "Cluster"), crd("example.com", "Widget", "Namespaced")]
    assert not is_namespaced("example.com/v1", "Gadget", crds)
    assert is_namespaced("example.com/v1alpha1", "Widget", crds)
    assert is_namespaced("other.com/v1", "Gadget", crds)
