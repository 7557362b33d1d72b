"""The real kubectl against the sandbox, with no special flags."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]


def namespace(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def configmap(name: str, namespace: str, data: str = "") -> str:
    body = f"data:\n  {data}\n" if data else ""
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\n{body}"
    )


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
  labels: {tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:{tag}
        ports:
        - containerPort: 80
"""


def test_version_and_discovery(sandbox: Sandbox) -> None:
    version = json.loads(sandbox.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    resources = sandbox.kubectl("api-resources").stdout
    for line in ("deployments", "configmaps", "customresourcedefinitions", "leases"):
        assert line in resources
    assert any(row.split()[:2] == ["deployments", "deploy"] for row in resources.splitlines())


def test_a_new_sandbox_has_the_system_namespaces(sandbox: Sandbox) -> None:
    names = sandbox.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert names == [
        "namespace/default",
        "namespace/kube-node-lease",
        "namespace/kube-public",
        "namespace/kube-system",
    ]
    phase = sandbox.kubectl("get", "ns", "default", "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Active"


def test_create_get_label_select_delete(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    sandbox.kubectl("apply", "-f", "-", stdin=configmap("settings", "apps", "mode: fast"))
    sandbox.kubectl("label", "configmap", "settings", "-n", "apps", "tier=back")
    got = json.loads(sandbox.kubectl("get", "cm", "settings", "-n", "apps", "-o", "json").stdout)
    assert got["data"] == {"mode": "fast"}
    assert got["metadata"]["uid"]
    assert got["metadata"]["labels"] == {"tier": "back"}
    selected = sandbox.kubectl("get", "cm", "-n", "apps", "-l", "tier in (back)", "-o", "name")
    assert selected.stdout.split() == ["configmap/settings"]
    assert sandbox.kubectl("get", "cm", "-n", "apps", "-l", "tier!=back", "-o", "name").stdout == ""
    sandbox.kubectl("delete", "configmap", "settings", "-n", "apps")
    missing = sandbox.kubectl("get", "cm", "settings", "-n", "apps", check=False)
    assert missing.returncode == 1
    assert 'configmaps "settings" not found' in missing.stderr


def test_typed_creates_sent_as_protobuf(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "configmap", "settings", "-n", "apps", "--from-literal=mode=fast")
    sandbox.kubectl("create", "secret", "generic", "creds", "-n", "apps", "--from-literal=pw=x1")
    config = json.loads(sandbox.kubectl("get", "cm", "settings", "-n", "apps", "-o", "json").stdout)
    assert config["data"] == {"mode": "fast"}
    secret = json.loads(
        sandbox.kubectl("get", "secret", "creds", "-n", "apps", "-o", "json").stdout
    )
    assert secret["data"] == {"pw": "eDE="}
    assert secret["type"] == "Opaque"
    assert "generateName" not in secret["metadata"]


def test_namespaced_object_needs_its_namespace(sandbox: Sandbox) -> None:
    done = sandbox.kubectl("apply", "-f", "-", stdin=configmap("x", "nowhere"), check=False)
    assert done.returncode == 1
    assert 'namespaces "nowhere" not found' in done.stderr


def test_client_side_apply_twice_updates_and_bumps_generation(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    sandbox.kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("{tag}", "1.25"))
    sandbox.kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("{tag}", "1.27"))
    got = json.loads(sandbox.kubectl("get", "deploy", "web", "-n", "apps", "-o", "json").stdout)
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert got["metadata"]["generation"] == 2
    annotations = got["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    diff = sandbox.kubectl(
        "diff", "-f", "-", stdin=DEPLOYMENT.replace("{tag}", "1.29"), check=False
    )
    assert diff.returncode == 1, diff.stderr  # kubectl diff: 1 means differences found
    assert "nginx:1.29" in diff.stdout


def test_server_side_apply_conflict_and_force(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    manifest = DEPLOYMENT.replace("{tag}", "1.25")
    sandbox.kubectl("apply", "--server-side", "--field-manager=team-a", "-f", "-", stdin=manifest)
    changed = manifest.replace("replicas: 2", "replicas: 5")
    refused = sandbox.kubectl(
        "apply", "--server-side", "--field-manager=team-b", "-f", "-", stdin=changed, check=False
    )
    assert refused.returncode != 0
    assert "conflict" in refused.stderr.lower()
    assert ".spec.replicas" in refused.stderr
    sandbox.kubectl(
        "apply", "--server-side", "--field-manager=team-b", "--force-conflicts", "-f", "-",
        stdin=changed,
    )  # fmt: skip
    shown = sandbox.kubectl(
        "get", "deploy", "web", "-n", "apps", "-o", "json", "--show-managed-fields"
    )
    got = json.loads(shown.stdout)
    assert got["spec"]["replicas"] == 5
    managers = {entry["manager"] for entry in got["metadata"]["managedFields"]}
    assert {"team-a", "team-b"} <= managers


def test_scale(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    sandbox.kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("{tag}", "1.25"))
    sandbox.kubectl("scale", "deployment", "web", "-n", "apps", "--replicas=4")
    got = json.loads(sandbox.kubectl("get", "deploy", "web", "-n", "apps", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 4


def test_watch_sees_a_create(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    env_args = ["get", "configmaps", "-n", "apps", "-w", "-o", "name", "--request-timeout=20s"]
    watcher = subprocess.Popen(
        [*_kubectl_argv(sandbox), *env_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(sandbox),
    )  # fmt: skip
    try:
        sandbox.kubectl("apply", "-f", "-", stdin=configmap("watched", "apps"))
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "configmap/watched"
    finally:
        watcher.kill()
        watcher.wait()


def test_objects_survive_a_restart(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("kept"))
    before = json.loads(sandbox.kubectl("get", "ns", "kept", "-o", "json").stdout)["metadata"]
    sandbox.stop()
    sandbox.start()
    after = json.loads(sandbox.kubectl("get", "ns", "kept", "-o", "json").stdout)["metadata"]
    assert (after["uid"], after["resourceVersion"]) == (before["uid"], before["resourceVersion"])
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("later"))
    later = json.loads(sandbox.kubectl("get", "ns", "later", "-o", "json").stdout)
    assert int(later["metadata"]["resourceVersion"]) > int(before["resourceVersion"])


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
"""


def test_custom_resource_definition_and_an_object_of_it(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=CRD)
    sandbox.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    widget = (
        "apiVersion: example.com/v1\nkind: Widget\n"
        "metadata: {name: w1, namespace: apps}\nspec: {size: 3}\n"
    )
    sandbox.kubectl("apply", "-f", "-", stdin=widget)
    got = json.loads(sandbox.kubectl("get", "wd", "w1", "-n", "apps", "-o", "json").stdout)
    assert got["spec"] == {"size": 3}
    sandbox.kubectl("delete", "crd", "widgets.example.com")
    gone = sandbox.kubectl("get", "widgets.example.com", "-n", "apps", check=False)
    assert gone.returncode != 0


def test_server_dry_run_stores_nothing(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    sandbox.kubectl("apply", "--dry-run=server", "-f", "-", stdin=configmap("dry", "apps"))
    assert sandbox.kubectl("get", "cm", "dry", "-n", "apps", check=False).returncode == 1


def _env(sandbox: Sandbox) -> dict[str, str]:
    import os

    return {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "HOME": str(sandbox.directory)}


def _kubectl_argv(sandbox: Sandbox) -> list[str]:
    from sandbox_fixtures import KUBECTL

    return [KUBECTL]


def test_deleting_a_namespace_deletes_its_contents(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "doomed")
    sandbox.kubectl("create", "configmap", "c", "-n", "doomed")
    web = DEPLOYMENT.replace("{tag}", "1").replace("namespace: apps", "namespace: doomed")
    sandbox.kubectl("apply", "-f", "-", stdin=web)
    sandbox.kubectl("delete", "namespace", "doomed", "--timeout=20s")
    assert sandbox.kubectl("get", "namespace", "doomed", check=False).returncode == 1
    leftovers = sandbox.kubectl("get", "cm,deploy", "-n", "doomed", "-o", "name").stdout
    assert leftovers == ""


def test_finalizers_hold_a_delete_until_removed(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=namespace("apps"))
    held = configmap("held", "apps").replace(
        "metadata:\n", "metadata:\n  finalizers: [example.com/hold]\n"
    )
    sandbox.kubectl("apply", "-f", "-", stdin=held)
    sandbox.kubectl("delete", "configmap", "held", "-n", "apps", "--wait=false")
    marked = json.loads(sandbox.kubectl("get", "cm", "held", "-n", "apps", "-o", "json").stdout)
    assert marked["metadata"]["deletionTimestamp"]
    sandbox.kubectl(
        "patch", "configmap", "held", "-n", "apps", "--type=merge",
        "-p", '{"metadata":{"finalizers":null}}',
    )  # fmt: skip
    assert sandbox.kubectl("get", "cm", "held", "-n", "apps", check=False).returncode == 1


def test_service_account_tokens_authenticate_and_are_reviewed(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    accounts = sandbox.kubectl("get", "serviceaccounts", "-n", "apps", "-o", "name").stdout
    assert accounts.split() == ["serviceaccount/default"]
    token = sandbox.kubectl("create", "token", "default", "-n", "apps").stdout.strip()
    assert token.count(".") == 2  # a signed JWT
    as_account = sandbox.kubectl("--token", token, "get", "--raw", "/version")
    assert json.loads(as_account.stdout)["major"] == "1"
    # Reviewed as Vault's Kubernetes auth method asks: a TokenReview POSTed as JSON.
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": token}}  # fmt: skip
    code, reviewed = sandbox.request(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews", json.dumps(review).encode()
    )
    assert code == 201
    status = reviewed["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:apps:default"
    assert "system:serviceaccounts:apps" in status["user"]["groups"]
    sandbox.kubectl("delete", "serviceaccount", "default", "-n", "apps")
    refused = sandbox.kubectl("--token", token, "get", "--raw", "/version", check=False)
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr


STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: apps}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:17"}]
"""


def test_workload_defaults_are_filled_in(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("{tag}", "1.25"))
    spec = json.loads(sandbox.kubectl("get", "deploy", "web", "-n", "apps", "-o", "json").stdout)[
        "spec"
    ]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["progressDeadlineSeconds"] == 600
    sandbox.kubectl("apply", "-f", "-", stdin=STATEFULSET)
    # kubectl refuses rollout status without the update strategy the server defaults.
    done = sandbox.kubectl("rollout", "status", "statefulset/db", "-n", "apps", "--timeout=30s")
    assert "roll out complete" in done.stdout or "rolling update complete" in done.stdout
