"""Rendering: Kustomizations with kustomize, HelmReleases with the Helm SDK."""
