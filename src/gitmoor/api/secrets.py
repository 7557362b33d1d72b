"""external-secrets.io: ExternalSecret, SecretStore, ClusterSecretStore and their kin.

ClusterExternalSecret and PushSecret are modelled too, so that a repository using them
is not refused now that the group is known. v1beta1 has the same shape as v1 (External
Secrets converts between them without a webhook), so v1beta1 documents are read as v1
unchanged. Of the store providers only ``vault`` is modelled field by field; the others
are kept as given.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, StringConstraints, model_validator

from gitmoor.api.meta import (
    DURATION_PATTERN,
    Duration,
    Model,
    OpenModel,
    Resource,
    Status,
)

GROUP = "external-secrets.io"

# External Secrets takes "0" to mean "fetch once, never refresh"; Go's duration
# parser accepts it, the plain duration pattern does not.
REFRESH_INTERVAL_PATTERN = rf"^0$|{DURATION_PATTERN}"
RefreshInterval = Annotated[str, StringConstraints(pattern=REFRESH_INTERVAL_PATTERN)]

StoreKind = Literal["SecretStore", "ClusterSecretStore"]
ConversionStrategy = Literal["Default", "Unicode"]
DecodingStrategy = Literal["Auto", "Base64", "Base64URL", "None"]

# Every provider key a SecretStore may carry (SecretStoreProvider in the v1 API).
PROVIDERS: frozenset[str] = frozenset(
    {
        "akeyless",
        "aws",
        "azurekv",
        "barbican",
        "beyondtrust",
        "beyondtrustworkloadcredentials",
        "bitwardensecretsmanager",
        "chef",
        "cloudrusm",
        "conjur",
        "delinea",
        "doppler",
        "dvls",
        "fake",
        "fortanix",
        "gcpsm",
        "github",
        "gitlab",
        "ibm",
        "infisical",
        "keepersecurity",
        "kubernetes",
        "nebiusmysterybox",
        "ngrok",
        "onboardbase",
        "onepassword",
        "onepasswordSDK",
        "oracle",
        "ovh",
        "passbolt",
        "passworddepot",
        "previder",
        "pulumi",
        "scaleway",
        "secretserver",
        "senhasegura",
        "vault",
        "volcengine",
        "webhook",
        "yandexcertificatemanager",
        "yandexlockbox",
    }
)


class LabelSelectorRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class SecretKeySelector(Model):
    """A key of a Secret; ``namespace`` only counts for cluster-scoped stores."""

    name: str | None = None
    namespace: str | None = None
    key: str | None = None


class ServiceAccountSelector(Model):
    name: str
    namespace: str | None = None
    audiences: list[str] | None = None


class SecretStoreRef(Model):
    name: str | None = None
    kind: StoreKind | None = None


# --- ExternalSecret -----------------------------------------------------------


class TemplateMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class TemplateRefItem(Model):
    key: str
    template_as: Literal["Values", "KeysAndValues"] | None = None


class TemplateRef(Model):
    name: str
    items: list[TemplateRefItem]


class TemplateFrom(Model):
    config_map: TemplateRef | None = None
    secret: TemplateRef | None = None
    target: Literal["Data", "Annotations", "Labels"] | None = None
    literal: str | None = None


class ExternalSecretTemplate(Model):
    type: str | None = None
    engine_version: Literal["v2"] | None = None
    metadata: TemplateMetadata | None = None
    merge_policy: Literal["Replace", "Merge"] | None = None
    data: dict[str, str] | None = None
    template_from: list[TemplateFrom] | None = None


class ManifestReference(Model):
    """A kind other than Secret for the target (a ConfigMap, a custom resource)."""

    api_version: str
    kind: str


class ExternalSecretTarget(Model):
    name: str | None = None
    creation_policy: Literal["Owner", "Orphan", "Merge", "None"] | None = None
    deletion_policy: Literal["Retain", "Delete", "Merge"] | None = None
    template: ExternalSecretTemplate | None = None
    manifest: ManifestReference | None = None
    immutable: bool | None = None


class RemoteRef(Model):
    key: str
    property: str | None = None
    version: str | None = None
    conversion_strategy: ConversionStrategy | None = None
    decoding_strategy: DecodingStrategy | None = None
    metadata_policy: Literal["None", "Fetch"] | None = None


class GeneratorRef(Model):
    api_version: str | None = None
    kind: str
    name: str


class StoreSourceRef(Model):
    store_ref: SecretStoreRef | None = None
    generator_ref: GeneratorRef | None = None


class ExternalSecretData(Model):
    secret_key: str
    remote_ref: RemoteRef
    source_ref: StoreSourceRef | None = None


class FindName(Model):
    regexp: str | None = None


class ExternalSecretFind(Model):
    path: str | None = None
    name: FindName | None = None
    tags: dict[str, str] | None = None
    conversion_strategy: ConversionStrategy | None = None
    decoding_strategy: DecodingStrategy | None = None


class RewriteMerge(Model):
    into: str | None = None
    priority: list[str] | None = None
    conflict_policy: Literal["Ignore", "Error"] | None = None
    strategy: Literal["Extract", "JSON"] | None = None


class RewriteRegexp(Model):
    source: str
    target: str


class RewriteTransform(Model):
    template: str


class ExternalSecretRewrite(Model):
    merge: RewriteMerge | None = None
    regexp: RewriteRegexp | None = None
    transform: RewriteTransform | None = None


class ExternalSecretDataFrom(Model):
    extract: RemoteRef | None = None
    find: ExternalSecretFind | None = None
    rewrite: list[ExternalSecretRewrite] | None = None
    source_ref: StoreSourceRef | None = None


class SyncWindow(Model):
    schedule: str | None = None
    duration: Duration | None = None


class SyncWindows(Model):
    kind: Literal["allow", "deny"] | None = None
    windows: list[SyncWindow] | None = None


class ExternalSecretSpec(Model):
    secret_store_ref: SecretStoreRef | None = None
    target: ExternalSecretTarget | None = None
    refresh_interval: RefreshInterval | None = None
    refresh_policy: Literal["CreatedOnce", "Periodic", "OnChange"] | None = None
    sync_windows: SyncWindows | None = None
    data: list[ExternalSecretData] | None = None
    data_from: list[ExternalSecretDataFrom] | None = None


class ExternalSecretStatus(Status):
    refresh_time: str | None = None
    synced_resource_version: str | None = None
    binding: dict[str, Any] | None = None


class ExternalSecret(Resource):
    GROUP = GROUP
    KIND = "ExternalSecret"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta1",)

    spec: ExternalSecretSpec
    status: ExternalSecretStatus | None = None

    @property
    def target_name(self) -> str:
        """The Secret this writes: ``spec.target.name``, else the ExternalSecret's name."""
        target = self.spec.target
        return target.name if target is not None and target.name else self.name


class ExternalSecretMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class ClusterExternalSecretSpec(Model):
    external_secret_spec: ExternalSecretSpec
    external_secret_name: str | None = None
    external_secret_metadata: ExternalSecretMetadata | None = None
    namespace_selector: LabelSelector | None = None
    namespace_selectors: list[LabelSelector] | None = None
    namespaces: list[str] | None = None
    refresh_time: Duration | None = None


class ClusterExternalSecret(Resource):
    GROUP = GROUP
    KIND = "ClusterExternalSecret"
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta1",)
    NAMESPACED = False

    spec: ClusterExternalSecretSpec


# --- SecretStore / ClusterSecretStore ------------------------------------------


class CAProvider(Model):
    type: Literal["Secret", "ConfigMap"]
    name: str
    key: str | None = None
    namespace: str | None = None


class VaultClientTLS(Model):
    cert_secret_ref: SecretKeySelector | None = None
    key_secret_ref: SecretKeySelector | None = None


class VaultAppRole(Model):
    # Optional here because the CRD defaults it to "approle".
    path: str | None = None
    role_id: str | None = None
    role_ref: SecretKeySelector | None = None
    secret_ref: SecretKeySelector


class VaultKubernetesAuth(Model):
    # Optional here because the CRD defaults it to "kubernetes".
    mount_path: str | None = None
    role: str
    service_account_ref: ServiceAccountSelector | None = None
    secret_ref: SecretKeySelector | None = None


class VaultUsernamePasswordAuth(Model):
    """The ``ldap`` and ``userPass`` methods: a user name and a password from a Secret."""

    path: str | None = None
    username: str
    secret_ref: SecretKeySelector | None = None


class VaultKubernetesServiceAccountToken(Model):
    service_account_ref: ServiceAccountSelector
    audiences: list[str] | None = None
    expiration_seconds: int | None = None


class VaultJwtAuth(Model):
    path: str | None = None
    role: str | None = None
    secret_ref: SecretKeySelector | None = None
    kubernetes_service_account_token: VaultKubernetesServiceAccountToken | None = None


class VaultCertAuth(Model):
    path: str | None = None
    client_cert: SecretKeySelector | None = None
    secret_ref: SecretKeySelector | None = None


class VaultAuth(Model):
    namespace: str | None = None
    token_secret_ref: SecretKeySelector | None = None
    app_role: VaultAppRole | None = None
    kubernetes: VaultKubernetesAuth | None = None
    ldap: VaultUsernamePasswordAuth | None = None
    user_pass: VaultUsernamePasswordAuth | None = None
    jwt: VaultJwtAuth | None = None
    cert: VaultCertAuth | None = None
    iam: dict[str, Any] | None = None
    gcp: dict[str, Any] | None = None


class VaultCheckAndSet(Model):
    required: bool | None = None


class VaultProvider(Model):
    """HashiCorp Vault or OpenBao, KV engine v1 or v2."""

    server: str
    path: str | None = None
    version: Literal["v1", "v2"] | None = None
    namespace: str | None = None
    auth: VaultAuth | None = None
    ca_bundle: str | None = None
    ca_provider: CAProvider | None = None
    tls: VaultClientTLS | None = None
    read_your_writes: bool | None = None
    forward_inconsistent: bool | None = None
    headers: dict[str, str] | None = None
    check_and_set: VaultCheckAndSet | None = None


class SecretStoreProvider(OpenModel):
    """Exactly one provider; providers other than ``vault`` are kept as given."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    vault: VaultProvider | None = None

    @model_validator(mode="after")
    def _one_known_provider(self) -> SecretStoreProvider:
        others = sorted(self.model_extra or {})
        unknown = [name for name in others if name not in PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider {unknown[0]!r}")
        count = len(others) + (self.vault is not None)
        if count != 1:
            raise ValueError(f"exactly one provider must be set, found {count}")
        return self

    @property
    def name(self) -> str:
        """The provider's key, e.g. ``vault``."""
        return "vault" if self.vault is not None else next(iter(self.model_extra or {}))


class SecretStoreRetrySettings(Model):
    max_retries: int | None = None
    retry_interval: str | None = None


class ClusterSecretStoreCondition(Model):
    namespace_selector: LabelSelector | None = None
    namespaces: list[str] | None = None
    namespace_regexes: list[str] | None = None


class SecretStoreSpec(Model):
    controller: str | None = None
    provider: SecretStoreProvider
    retry_settings: SecretStoreRetrySettings | None = None
    # Seconds between store validations, unlike ExternalSecret's duration string.
    refresh_interval: int | None = None
    conditions: list[ClusterSecretStoreCondition] | None = None


class SecretStoreStatus(Status):
    capabilities: Literal["ReadOnly", "WriteOnly", "ReadWrite"] | None = None


class _Store(Resource):
    GROUP = GROUP
    VERSION = "v1"
    OLD_VERSIONS = ("v1beta1",)

    spec: SecretStoreSpec
    status: SecretStoreStatus | None = None


class SecretStore(_Store):
    KIND = "SecretStore"


class ClusterSecretStore(_Store):
    KIND = "ClusterSecretStore"
    NAMESPACED = False


# --- PushSecret ------------------------------------------------------------------


class PushSecretStoreRef(Model):
    name: str | None = None
    label_selector: LabelSelector | None = None
    kind: StoreKind | None = None


class PushSecretSecret(Model):
    name: str | None = None
    selector: LabelSelector | None = None


class PushSecretSelector(Model):
    secret: PushSecretSecret | None = None
    generator_ref: GeneratorRef | None = None


class PushSecretRemoteRef(Model):
    remote_key: str
    property: str | None = None


class PushSecretMatch(Model):
    secret_key: str | None = None
    remote_ref: PushSecretRemoteRef


PushConversionStrategy = Literal["None", "ReverseUnicode"]


class PushSecretData(Model):
    match: PushSecretMatch
    metadata: dict[str, Any] | None = None
    conversion_strategy: PushConversionStrategy | None = None


class PushSecretDataToMatch(Model):
    regexp: str | None = None


class PushSecretRewrite(Model):
    regexp: RewriteRegexp | None = None
    transform: RewriteTransform | None = None


class PushSecretDataTo(Model):
    store_ref: PushSecretStoreRef | None = None
    match: PushSecretDataToMatch | None = None
    rewrite: list[PushSecretRewrite] | None = None
    metadata: dict[str, Any] | None = None
    conversion_strategy: PushConversionStrategy | None = None


class PushSecretSpec(Model):
    refresh_interval: RefreshInterval | None = None
    secret_store_refs: list[PushSecretStoreRef]
    update_policy: Literal["Replace", "IfNotExists"] | None = None
    deletion_policy: Literal["Delete", "None"] | None = None
    selector: PushSecretSelector
    data: list[PushSecretData] | None = None
    data_to: list[PushSecretDataTo] | None = None
    template: ExternalSecretTemplate | None = None


class PushSecret(Resource):
    GROUP = GROUP
    KIND = "PushSecret"
    VERSION = "v1alpha1"

    spec: PushSecretSpec
