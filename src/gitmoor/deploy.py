"""The objects that run gitmoor's controllers inside a cluster.

``gitmoor install --in-cluster`` applies them after the CRDs, ``--export`` prints them, and
``deploy/gitmoor.yaml`` is that print, committed. They follow Flux's own install: one
ServiceAccount, a ClusterRole naming what the controllers themselves call, cluster-admin
for what a Kustomization applies, a Deployment hardened as Flux's controllers are.
"""

from __future__ import annotations

from typing import Any

from gitmoor import __version__
from gitmoor.api.crds import crd_manifests
from gitmoor.manifests import KubeObject

NAME = "gitmoor"
DEPLOYMENT = "gitmoor-controllers"
DEFAULT_IMAGE = f"ghcr.io/gitmoor/gitmoor:{__version__}"
METRICS_PORT = 8080
METRICS_PORT_NAME = "http-prom"
# The numeric user of the image (see the Dockerfile): runAsNonRoot can only be checked by
# the kubelet against a numeric user.
USER_ID = 65532
CACHE_DIR = "/tmp/cache"

_RBAC = "rbac.authorization.k8s.io/v1"
_SELECTOR = {"app.kubernetes.io/name": NAME}


def labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/part-of": NAME,
        "app.kubernetes.io/version": __version__,
    }


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {**meta, "labels": labels(), **extra}


def controller_rules() -> list[dict[str, Any]]:
    """The ClusterRole rules for what the controllers call themselves.

    The custom resources come from the CRDs gitmoor installs, so a kind added there is
    covered here. Finalizers are written by patching the object itself; ``update`` on the
    ``finalizers`` subresource is granted as controller-runtime's generated roles grant it,
    for the OwnerReferencesPermissionEnforcement admission plugin, which checks it when an
    owner reference blocks its owner's deletion.
    """
    plurals: dict[str, list[str]] = {}
    for crd in crd_manifests():
        spec = crd["spec"]
        plurals.setdefault(spec["group"], []).append(spec["names"]["plural"])
    rules: list[dict[str, Any]] = []
    for group, unsorted in sorted(plurals.items()):
        names = sorted(unsorted)
        rules += [
            {"apiGroups": [group], "resources": names,
             "verbs": ["get", "list", "watch", "patch", "update"]},
            {"apiGroups": [group], "resources": [f"{n}/status" for n in names],
             "verbs": ["get", "patch", "update"]},
            {"apiGroups": [group], "resources": [f"{n}/finalizers" for n in names],
             "verbs": ["update"]},
        ]  # fmt: skip
    return [
        *rules,
        # Source credentials, postBuild substituteFrom, Helm valuesFrom.
        {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        # Custom kinds are found through the CRDs the cluster serves.
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["list"]},
    ]  # fmt: skip


def _subject(namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": NAME, "namespace": namespace}


def _rbac(namespace: str) -> list[KubeObject]:
    # Cluster-scoped names carry the namespace, as Flux's do, so that two installs in two
    # namespaces do not take each other's bindings.
    controller = f"{NAME}-controller-{namespace}"
    reconciler = f"{NAME}-cluster-reconciler-{namespace}"
    why = (
        "A Kustomization applies, prunes and health-checks whatever objects its source "
        "holds, of any kind and in any namespace, so the controllers need cluster-admin, "
        "as Flux's kustomize-controller has through its cluster-reconciler binding."
    )
    return [
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRole",
            "metadata": _meta(controller),
            "rules": controller_rules(),
        },
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(controller),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": controller,
            },
            "subjects": [_subject(namespace)],
        },
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRoleBinding",
            # The reason travels with the object, for whoever audits the cluster's bindings.
            "metadata": _meta(reconciler, annotations={"kubernetes.io/description": why}),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [_subject(namespace)],
        },
        {
            "apiVersion": _RBAC,
            "kind": "Role",
            "metadata": _meta(f"{NAME}-leader-election", namespace),
            # Leader election: read the Lease, create it once, renew and hand it over.
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "create", "update"],
                },
            ],
        },
        {
            "apiVersion": _RBAC,
            "kind": "RoleBinding",
            "metadata": _meta(f"{NAME}-leader-election", namespace),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{NAME}-leader-election",
            },
            "subjects": [_subject(namespace)],
        },
    ]


def _container(image: str) -> dict[str, Any]:
    return {
        "name": "controllers",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "gitmoor",
            "controllers",
            "--metrics-address",
            "0.0.0.0",
            "--metrics-port",
            str(METRICS_PORT),
            "--leader-elect",
        ],
        "env": [
            {"name": "GITMOOR_CACHE_DIR", "value": CACHE_DIR},
            # The Lease lives in the Pod's own namespace, which its Role covers.
            {
                "name": "RUNTIME_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            # The root filesystem is read-only; git and Helm keep their config and caches
            # under $HOME.
            {"name": "HOME", "value": "/tmp"},
        ],
        "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": METRICS_PORT_NAME}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": METRICS_PORT_NAME}},
        "resources": {
            "limits": {"cpu": "1000m", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "temp", "mountPath": "/tmp"}],
    }


def _deployment(namespace: str, image: str, replicas: int) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(DEPLOYMENT, namespace),
        "spec": {
            # More than one for failover: the others wait on the Lease while one leads.
            "replicas": replicas,
            "selector": {"matchLabels": dict(_SELECTOR)},
            "template": {
                "metadata": {
                    "labels": labels(),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                    },
                },
                "spec": {
                    "serviceAccountName": NAME,
                    # Time for a reconcile under way to finish and the Lease to be released.
                    "terminationGracePeriodSeconds": 60,
                    "containers": [_container(image)],
                    "volumes": [{"name": "temp", "emptyDir": {}}],
                },
            },
        },
    }


def in_cluster_manifests(
    *, namespace: str = "flux-system", image: str, replicas: int = 2
) -> list[KubeObject]:
    """Namespace, ServiceAccount, RBAC, the metrics Service and the controllers'
    Deployment, in the order they can be applied."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(
                namespace,
                # The pods meet the restricted Pod Security Standard; say so where it is
                # checked, as Flux's namespace does.
                labels={
                    **labels(),
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                },
            ),
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, namespace)},
        *_rbac(namespace),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(DEPLOYMENT, namespace),
            "spec": {
                "type": "ClusterIP",
                "selector": dict(_SELECTOR),
                "ports": [
                    {
                        "name": METRICS_PORT_NAME,
                        "port": METRICS_PORT,
                        "targetPort": METRICS_PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        },
        _deployment(namespace, image, replicas),
    ]
