"""The real kubectl's imperative commands against the sandbox: typed clients send these
objects as protobuf, and what is stored must be what kubectl built."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from gitmoor.sandbox.protobuf import CONTENT_TYPE, MAGIC

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]


def get(sandbox: Sandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def test_create_deployment(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "deployment", "web", "-n", "apps", "--image=nginx:1.27", "--image=busybox:1",
        "--replicas=3", "--port=8080",
    )  # fmt: skip
    web = get(sandbox, "deployment", "web", "-n", "apps")
    assert web["metadata"]["labels"] == {"app": "web"}
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    template = web["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "web"}
    nginx, busybox = template["spec"]["containers"]
    assert (nginx["name"], nginx["image"]) == ("nginx", "nginx:1.27")
    assert nginx["ports"] == [{"containerPort": 8080}]
    assert (busybox["name"], busybox["image"]) == ("busybox", "busybox:1")
    assert "ports" not in busybox

    # replicas is a pointer in Go: an explicit 0 is kept, not defaulted to 1.
    sandbox.kubectl("create", "deployment", "idle", "-n", "apps", "--image=nginx", "--replicas=0")
    assert get(sandbox, "deployment", "idle", "-n", "apps")["spec"]["replicas"] == 0


def test_create_services(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "service", "clusterip", "web", "-n", "apps", "--tcp=80:8080", "--tcp=443"
    )
    web = get(sandbox, "service", "web", "-n", "apps")
    assert web["spec"]["type"] == "ClusterIP"
    assert web["spec"]["selector"] == {"app": "web"}
    assert web["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "443", "port": 443, "protocol": "TCP", "targetPort": 443},
    ]

    sandbox.kubectl(
        "create", "service", "nodeport", "np", "-n", "apps", "--tcp=80:http", "--node-port=30080"
    )  # fmt: skip
    node_port = get(sandbox, "service", "np", "-n", "apps")
    assert node_port["spec"]["type"] == "NodePort"
    (port,) = node_port["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, "http", 30080)

    sandbox.kubectl("create", "service", "loadbalancer", "lb", "-n", "apps", "--tcp=5432:5432")
    balancer = get(sandbox, "service", "lb", "-n", "apps")
    assert balancer["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in balancer["spec"]["ports"]] == [(5432, 5432)]

    sandbox.kubectl(
        "create", "service", "externalname", "ext", "-n", "apps",
        "--external-name=db.example.com", "--tcp=5432",
    )  # fmt: skip
    external = get(sandbox, "service", "ext", "-n", "apps")
    assert external["spec"]["type"] == "ExternalName"
    assert external["spec"]["externalName"] == "db.example.com"
    assert [p["port"] for p in external["spec"]["ports"]] == [5432]


def test_expose_a_deployment(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "deployment", "web", "-n", "apps", "--image=nginx", "--port=8080")
    sandbox.kubectl("expose", "deployment", "web", "-n", "apps", "--port=80", "--target-port=8080")
    service = get(sandbox, "service", "web", "-n", "apps")
    assert service["spec"]["selector"] == {"app": "web"}
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")


def test_run_a_pod(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "run", "tool", "-n", "apps", "--image=busybox:1", "--port=80", "--labels=team=ops",
        "--env=MODE=fast", "--restart=Never", "--", "sleep", "3600",
    )  # fmt: skip
    pod = get(sandbox, "pod", "tool", "-n", "apps")
    assert pod["metadata"]["labels"] == {"team": "ops"}
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert (container["name"], container["image"]) == ("tool", "busybox:1")
    assert container["args"] == ["sleep", "3600"]
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert container["ports"] == [{"containerPort": 80}]


def test_create_cronjob_and_jobs(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "cronjob", "nightly", "-n", "apps", "--image=busybox:1",
        "--schedule=0 3 * * *", "--restart=OnFailure", "--", "sh", "-c", "echo hi",
    )  # fmt: skip
    cronjob = get(sandbox, "cronjob", "nightly", "-n", "apps")
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    pod_spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure"
    (container,) = pod_spec["containers"]
    assert (container["image"], container["command"]) == ("busybox:1", ["sh", "-c", "echo hi"])

    sandbox.kubectl("create", "job", "once", "-n", "apps", "--image=busybox:1", "--", "echo", "hi")
    once = get(sandbox, "job", "once", "-n", "apps")
    assert once["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = once["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["command"]) == ("busybox:1", ["echo", "hi"])

    sandbox.kubectl("create", "job", "manual", "-n", "apps", "--from=cronjob/nightly")
    manual = get(sandbox, "job", "manual", "-n", "apps")
    assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    (owner,) = manual["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob", "nightly", cronjob["metadata"]["uid"], True,
    )  # fmt: skip
    assert manual["spec"]["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "echo hi"]


def test_create_roles_and_bindings(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "role", "reader", "-n", "apps", "--verb=get,list",
        "--resource=pods,deployments.apps", "--resource-name=web",
    )  # fmt: skip
    assert get(sandbox, "role", "reader", "-n", "apps")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"],
         "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
         "verbs": ["get", "list"]},
    ]  # fmt: skip

    sandbox.kubectl(
        "create", "clusterrole", "node-reader", "--verb=get", "--resource=nodes",
        "--non-resource-url=/logs/*",
    )  # fmt: skip
    assert get(sandbox, "clusterrole", "node-reader")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        {"nonResourceURLs": ["/logs/*"], "verbs": ["get"]},
    ]
    sandbox.kubectl(
        "create", "clusterrole", "monitoring", "--aggregation-rule=example.com/monitoring=true"
    )  # fmt: skip
    assert get(sandbox, "clusterrole", "monitoring")["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"example.com/monitoring": "true"}}]
    }

    sandbox.kubectl(
        "create", "rolebinding", "readers", "-n", "apps", "--role=reader", "--user=alice",
        "--group=devs", "--serviceaccount=apps:default",
    )  # fmt: skip
    binding = get(sandbox, "rolebinding", "readers", "-n", "apps")
    rbac = "rbac.authorization.k8s.io"
    assert binding["roleRef"] == {"apiGroup": rbac, "kind": "Role", "name": "reader"}
    assert binding["subjects"] == [
        {"apiGroup": rbac, "kind": "User", "name": "alice"},
        {"apiGroup": rbac, "kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "apps"},
    ]

    sandbox.kubectl(
        "create", "clusterrolebinding", "ops", "--clusterrole=node-reader", "--user=bob"
    )
    cluster_binding = get(sandbox, "clusterrolebinding", "ops")
    assert cluster_binding["roleRef"] == {
        "apiGroup": rbac, "kind": "ClusterRole", "name": "node-reader",
    }  # fmt: skip
    assert cluster_binding["subjects"] == [{"apiGroup": rbac, "kind": "User", "name": "bob"}]


def test_create_quota_pdb_and_priority_class(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "quota", "limits", "-n", "apps", "--hard=cpu=1500m,memory=1Gi,pods=10",
        "--scopes=BestEffort",
    )  # fmt: skip
    quota = get(sandbox, "resourcequota", "limits", "-n", "apps")
    assert quota["spec"]["hard"] == {"cpu": "1500m", "memory": "1Gi", "pods": "10"}
    assert quota["spec"]["scopes"] == ["BestEffort"]

    sandbox.kubectl(
        "create", "poddisruptionbudget", "half", "-n", "apps", "--selector=app=web",
        "--min-available=50%",
    )  # fmt: skip
    half = get(sandbox, "pdb", "half", "-n", "apps")
    assert half["spec"]["minAvailable"] == "50%"
    assert half["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    sandbox.kubectl(
        "create", "pdb", "one", "-n", "apps", "--selector=app=web", "--max-unavailable=1"
    )  # fmt: skip
    one = get(sandbox, "pdb", "one", "-n", "apps")
    assert one["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in one["spec"]

    sandbox.kubectl(
        "create", "priorityclass", "high", "--value=1000", "--description=batch first",
        "--preemption-policy=Never",
    )  # fmt: skip
    high = get(sandbox, "priorityclass", "high")
    assert (high["value"], high["description"], high["preemptionPolicy"]) == (
        1000, "batch first", "Never",
    )  # fmt: skip
    sandbox.kubectl("create", "priorityclass", "lowest", "--value=0")
    assert get(sandbox, "priorityclass", "lowest")["value"] == 0


def test_create_ingress(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "ingress", "site", "-n", "apps", "--class=nginx",
        "--rule=example.com/shop*=shop:80,tls=shop-cert", "--rule=/api=api:http",
        "--default-backend=web:8080", "--annotation=team=web",
    )  # fmt: skip
    ingress = get(sandbox, "ingress", "site", "-n", "apps")
    assert ingress["metadata"]["annotations"] == {"team": "web"}
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["defaultBackend"] == {"service": {"name": "web", "port": {"number": 8080}}}
    assert spec["tls"] == [{"hosts": ["example.com"], "secretName": "shop-cert"}]
    assert spec["rules"] == [
        {"host": "example.com", "http": {"paths": [
            {"path": "/shop", "pathType": "Prefix",
             "backend": {"service": {"name": "shop", "port": {"number": 80}}}},
        ]}},
        {"http": {"paths": [
            {"path": "/api", "pathType": "Exact",
             "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
        ]}},
    ]  # fmt: skip


def test_create_token(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    token = sandbox.kubectl(
        "create", "token", "default", "-n", "apps", "--audience=vault", "--duration=1h"
    ).stdout.strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == "system:serviceaccount:apps:default"


def test_a_field_the_sandbox_does_not_know_is_refused_with_415(sandbox: Sandbox) -> None:
    def field(number: int, payload: bytes) -> bytes:  # a short length-delimited field
        return bytes([number << 3 | 2, len(payload)]) + payload

    metadata = field(1, b"c") + field(3, b"default")
    config_map = field(1, metadata) + b"\x98\x06\x01"  # then field 99, varint 1
    type_meta = field(1, b"v1") + field(2, b"ConfigMap")
    body = MAGIC + field(1, type_meta) + field(2, config_map)
    code, status = sandbox.request(
        "POST", "/api/v1/namespaces/default/configmaps", body, content_type=CONTENT_TYPE
    )
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert "field 99 of message ConfigMap" in status["message"]
    assert sandbox.kubectl("get", "configmap", "c", check=False).returncode == 1
