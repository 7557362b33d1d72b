"""Typed models of the custom resources gitmoor reads: Flux v2's and External Secrets'."""

from gitmoor.api.crds import crd_manifest, crd_manifests
from gitmoor.api.helm import HelmRelease
from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import Resource
from gitmoor.api.notification import Alert, Provider, Receiver
from gitmoor.api.registry import KINDS, is_known_group, parse_resource
from gitmoor.api.secrets import (
    ClusterExternalSecret,
    ClusterSecretStore,
    ExternalSecret,
    PushSecret,
    SecretStore,
)
from gitmoor.api.source import Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository

__all__ = [
    "KINDS",
    "Alert",
    "Bucket",
    "ClusterExternalSecret",
    "ClusterSecretStore",
    "ExternalSecret",
    "GitRepository",
    "HelmChart",
    "HelmRelease",
    "HelmRepository",
    "Kustomization",
    "OCIRepository",
    "Provider",
    "PushSecret",
    "Receiver",
    "Resource",
    "SecretStore",
    "crd_manifest",
    "crd_manifests",
    "is_known_group",
    "parse_resource",
]
