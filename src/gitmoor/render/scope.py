"""Whether a kind lives in a namespace, without asking a cluster.

Helm puts objects that name no namespace into the release namespace at apply time,
but only namespaced ones; offline, the built-in kinds are known here and custom kinds
are known from the CRDs that come with the release or the repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# (group, kind) of every cluster-scoped kind the Kubernetes API server serves itself.
CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("authentication.k8s.io", "TokenReview"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
    }
)


def is_namespaced(api_version: str, kind: str, crds: Iterable[Mapping[str, Any]]) -> bool:
    """True unless the kind is a cluster-scoped built-in or a CRD says ``scope: Cluster``.

    Kinds known nowhere count as namespaced, the common case for custom resources.
    """
    group = api_version.rpartition("/")[0]
    if (group, kind) in CLUSTER_SCOPED:
        return False
    for crd in crds:
        spec = crd.get("spec")
        if not isinstance(spec, Mapping):
            continue
        names = spec.get("names")
        if spec.get("group") == group and isinstance(names, Mapping) and names.get("kind") == kind:
            return spec.get("scope") != "Cluster"
    return True
