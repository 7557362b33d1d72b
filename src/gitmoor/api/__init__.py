"""Typed models of the custom resources gitmoor reads: Flux v2's and External Secrets'."""

from gitmoor.api.helm import HelmRelease
from gitmoor.api.kustomize import Kustomization
from gitmoor.api.meta import Resource
from gitmoor.api.registry import KINDS, is_known_group, parse_resource
from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository

__all__ = [
    "KINDS",
    "GitRepository",
    "HelmRelease",
    "HelmRepository",
    "Kustomization",
    "OCIRepository",
    "Resource",
    "is_known_group",
    "parse_resource",
]
