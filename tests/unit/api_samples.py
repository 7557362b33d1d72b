"""One valid manifest of every kind gitmoor reads, in its current version, using most fields.

Shared by the model tests and the CRD tests: whatever the models accept, the CRDs
generated from them must accept too.
"""

from __future__ import annotations

from typing import Any

from gitmoor.manifests import load

# The ExternalSecret of the seed repository, as written there (v1beta1).
SEED_EXTERNAL_SECRET = """
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: app-credentials
  namespace: my-app
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: vault-backend
    kind: ClusterSecretStore
  target:
    name: app-credentials
  data:
    - secretKey: DATABASE_URL
      remoteRef:
        key: secret/data/my-app
        property: database_url
"""

_SAMPLES = {
    "GitRepository": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  url: ssh://git@github.com/example/fleet
  interval: 1m0s
  ref: {branch: production}
  secretRef: {name: flux-system}
""",
    "HelmRepository": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: bitnami, namespace: flux-system}
spec: {url: https://charts.bitnami.com/bitnami, interval: 1h, type: default}
""",
    "OCIRepository": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: podinfo, namespace: flux-system}
spec:
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  interval: 10m
  ref: {semver: ">=6.0.0"}
  layerSelector: {mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}
""",
    "HelmChart": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {name: podinfo, namespace: flux-system}
spec:
  chart: podinfo
  version: 6.x
  sourceRef: {kind: HelmRepository, name: podinfo}
  interval: 5m
  reconcileStrategy: ChartVersion
  valuesFiles: [values.yaml, values-prod.yaml]
  verify: {provider: cosign, secretRef: {name: cosign-pub}}
""",
    "Bucket": """
apiVersion: source.toolkit.fluxcd.io/v1
kind: Bucket
metadata: {name: manifests, namespace: flux-system}
spec:
  provider: generic
  bucketName: manifests
  endpoint: minio.minio.svc:9000
  insecure: true
  interval: 5m
  timeout: 60s
  secretRef: {name: minio-credentials}
  sts: {provider: ldap, endpoint: "https://sts.example.com", secretRef: {name: ldap}}
""",
    "Kustomization": """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  dependsOn: [{name: infrastructure}]
  postBuild: {substitute: {cluster: homelab}}
""",
    "HelmRelease": """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: grafana, namespace: monitoring}
spec:
  interval: 30m
  chart:
    spec:
      chart: grafana
      version: 10.4.0
      sourceRef: {kind: HelmRepository, name: grafana, namespace: flux-system}
  install: {remediation: {retries: 3}}
  upgrade: {remediation: {retries: 3, strategy: rollback}}
  values: {replicas: 1, persistence: {enabled: true, size: 10Gi}}
  valuesFrom: [{kind: Secret, name: grafana-admin, valuesKey: values.yaml}]
""",
    "Receiver": """
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {name: github, namespace: flux-system}
spec:
  type: github
  interval: 10m
  events: [ping, push]
  secretRef: {name: webhook-token}
  resourceFilter: has(resource.metadata.annotations)
  resources:
    - {kind: GitRepository, name: flux-system}
    - {apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, name: "*",
       matchLabels: {tier: apps}}
""",
    "Alert": """
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {name: slack, namespace: flux-system}
spec:
  providerRef: {name: slack-bot}
  eventSeverity: error
  eventSources:
    - {kind: GitRepository, name: "*"}
    - {kind: Kustomization, name: "*", namespace: flux-system}
  inclusionList: [".*succeeded.*"]
  exclusionList: ["^Dependencies.*"]
  eventMetadata: {cluster: homelab}
  summary: Cluster addons impacted
""",
    "Provider": """
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {name: slack-bot, namespace: flux-system}
spec:
  type: slack
  channel: general
  address: https://slack.com/api/chat.postMessage
  timeout: 15s
  proxy: http://proxy.internal:3128
  secretRef: {name: slack-bot-token}
""",
    "ExternalSecret": """
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app-config, namespace: my-app}
spec:
  refreshInterval: 15m
  refreshPolicy: Periodic
  secretStoreRef: {name: vault-backend, kind: ClusterSecretStore}
  target:
    name: app-config
    creationPolicy: Owner
    deletionPolicy: Retain
    immutable: false
    template:
      type: Opaque
      engineVersion: v2
      mergePolicy: Merge
      metadata: {labels: {app: my-app}, annotations: {team: platform}}
      data: {dsn: "postgres://{{ .user }}@db"}
      templateFrom:
        - configMap: {name: templates, items: [{key: config.tmpl, templateAs: Values}]}
          target: Data
  data:
    - secretKey: user
      remoteRef:
        key: secret/data/my-app
        property: user
        version: "2"
        conversionStrategy: Default
        decodingStrategy: None
        metadataPolicy: None
      sourceRef: {storeRef: {name: other-store, kind: SecretStore}}
  dataFrom:
    - extract: {key: secret/data/shared}
    - find:
        path: secret/data/apps
        name: {regexp: "^my-app-.*"}
        tags: {env: prod}
        conversionStrategy: Unicode
        decodingStrategy: Auto
      rewrite:
        - regexp: {source: "^my-app-", target: ""}
        - transform: {template: "{{ .value | upper }}"}
""",
    "ClusterExternalSecret": """
apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata: {name: registry-credentials}
spec:
  externalSecretName: registry
  refreshTime: 1m
  namespaceSelectors: [{matchLabels: {registry: "true"}}]
  externalSecretSpec:
    secretStoreRef: {name: vault-backend, kind: ClusterSecretStore}
    data: [{secretKey: token, remoteRef: {key: secret/data/registry, property: token}}]
""",
    "SecretStore": """
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws, namespace: my-app}
spec:
  refreshInterval: 300
  retrySettings: {maxRetries: 3, retryInterval: 10s}
  provider:
    aws:
      service: SecretsManager
      region: eu-west-1
      auth: {jwt: {serviceAccountRef: {name: my-app}}}
""",
    "ClusterSecretStore": """
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: vault-backend}
spec:
  conditions: [{namespaces: [my-app]}]
  provider:
    vault:
      server: https://vault.vault.svc:8200
      path: secret
      version: v2
      namespace: homelab
      caProvider: {type: ConfigMap, name: vault-ca, key: ca.crt, namespace: vault}
      readYourWrites: true
      forwardInconsistent: false
      headers: {X-Team: platform}
      auth:
        kubernetes:
          mountPath: kubernetes
          role: external-secrets
          serviceAccountRef: {name: external-secrets, namespace: external-secrets-system}
""",
    "PushSecret": """
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: push-tls, namespace: my-app}
spec:
  refreshInterval: 1h
  updatePolicy: Replace
  deletionPolicy: Delete
  secretStoreRefs: [{name: vault-backend, kind: ClusterSecretStore}]
  selector: {secret: {name: tls}}
  data:
    - match: {secretKey: tls.crt, remoteRef: {remoteKey: certs/my-app, property: crt}}
""",
}


def sample(kind: str) -> dict[str, Any]:
    """A fresh copy of the sample of ``kind``, safe to change."""
    document: dict[str, Any] = load(_SAMPLES[kind], file=f"sample/{kind}.yaml")
    return document


def seed_external_secret() -> dict[str, Any]:
    document: dict[str, Any] = load(SEED_EXTERNAL_SECRET, file="seed/external-secret.yaml")
    return document


KIND_NAMES: tuple[str, ...] = tuple(_SAMPLES)
