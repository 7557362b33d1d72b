"""notification.toolkit.fluxcd.io: Receiver (v1), Alert and Provider (v1beta3).

v1beta2 documents have the same fields (v1beta3 only stopped using Alert and Provider
status), so they are read unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from gitmoor.api.meta import Duration, LocalObjectReference, Model, Resource, Status

GROUP = "notification.toolkit.fluxcd.io"

ReferenceName = Annotated[str, StringConstraints(min_length=1, max_length=253)]

EventSourceKind = Literal[
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
]


class CrossNamespaceObjectReference(Model):
    """An object events come from, or a Receiver triggers; ``*`` names all of them."""

    api_version: str | None = None
    kind: EventSourceKind
    name: ReferenceName
    namespace: ReferenceName | None = None
    match_labels: dict[str, str] | None = None


class OIDCVariable(Model):
    name: str
    expression: str


class OIDCValidation(Model):
    expression: str
    message: str


class OIDCProvider(Model):
    issuer_url: Annotated[str, StringConstraints(pattern=r"^https?://"), Field(alias="issuerURL")]
    audience: str | None = None
    variables: list[OIDCVariable] | None = None
    validations: Annotated[list[OIDCValidation], Field(min_length=1)]


ReceiverType = Literal[
    "generic",
    "generic-hmac",
    "generic-oidc",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
]


class ReceiverSpec(Model):
    type: ReceiverType
    interval: Duration | None = None
    events: list[str] | None = None
    resources: list[CrossNamespaceObjectReference]
    resource_filter: str | None = None
    secret_ref: LocalObjectReference | None = None
    oidc_providers: list[OIDCProvider] | None = None
    suspend: bool | None = None


class ReceiverStatus(Status):
    webhook_path: str | None = None


class Receiver(Resource):
    GROUP = GROUP
    KIND = "Receiver"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta2",)

    spec: ReceiverSpec
    status: ReceiverStatus | None = None


class AlertSpec(Model):
    provider_ref: LocalObjectReference
    event_severity: Literal["info", "error"] | None = None
    event_sources: list[CrossNamespaceObjectReference]
    inclusion_list: list[str] | None = None
    exclusion_list: list[str] | None = None
    event_metadata: dict[str, str] | None = None
    summary: Annotated[str, StringConstraints(max_length=255)] | None = None
    suspend: bool | None = None


class Alert(Resource):
    GROUP = GROUP
    KIND = "Alert"
    VERSION = "v1beta3"
    OLD_VERSIONS = ("v1beta2",)

    spec: AlertSpec


ProviderType = Literal[
    "slack",
    "discord",
    "msteams",
    "rocket",
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "gitea",
    "bitbucketserver",
    "bitbucket",
    "azuredevops",
    "googlechat",
    "googlepubsub",
    "webex",
    "sentry",
    "azureeventhub",
    "telegram",
    "lark",
    "matrix",
    "opsgenie",
    "alertmanager",
    "grafana",
    "githubdispatch",
    "pagerduty",
    "datadog",
    "nats",
]

ProviderText = Annotated[str, StringConstraints(max_length=2048)]
ProxyAddress = Annotated[str, StringConstraints(max_length=2048, pattern=r"^(http|https)://.*$")]


class ProviderSpec(Model):
    type: ProviderType
    interval: Duration | None = None
    channel: ProviderText | None = None
    username: ProviderText | None = None
    address: ProviderText | None = None
    timeout: Duration | None = None
    proxy: ProxyAddress | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None
    cert_secret_ref: LocalObjectReference | None = None
    commit_status_expr: str | None = None
    suspend: bool | None = None


class Provider(Resource):
    GROUP = GROUP
    KIND = "Provider"
    VERSION = "v1beta3"
    OLD_VERSIONS = ("v1beta2",)

    spec: ProviderSpec
