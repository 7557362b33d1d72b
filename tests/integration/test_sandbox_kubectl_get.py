"""``kubectl get`` against the sandbox: the columns kube-apiserver's server-side printing
gives, read from the real kubectl's output."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

T = TypeVar("T")
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
AGE = re.compile(r"^\d+(s|m\d*s?)$")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
{annotations}    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"""
WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: apps}
spec: {size: 3, color: blue}
"""


def eventually(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """``probe()`` once it is truthy; fails naming ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what} (last: {value!r})")
        time.sleep(0.2)


def columns(header: str) -> list[tuple[str, int]]:
    """The names in kubectl's header line and where each column starts."""
    found = []
    for match in re.finditer(r"\S+(?: \S+)*", header):
        found.append((match.group(), match.start()))
    return found


def parse(output: str) -> tuple[list[str], list[dict[str, str]]]:
    """kubectl's table output as its header and, per row, the cells by column name (cells
    sit under their header: kubectl aligns columns with a tabwriter)."""
    header, *lines = output.splitlines()
    spans = columns(header)
    rows = []
    for line in lines:
        cells = {}
        for index, (name, start) in enumerate(spans):
            end = spans[index + 1][1] if index + 1 < len(spans) else None
            cells[name] = line[start:end].strip()
        rows.append(cells)
    return [name for name, _ in spans], rows


def get(sandbox: Sandbox, *args: str) -> tuple[list[str], list[dict[str, str]]]:
    return parse(sandbox.kubectl("get", *args).stdout)


def by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["NAME"]: row for row in rows}


def raw(sandbox: Sandbox, path: str, accept: str) -> tuple[int, Any]:
    """A GET with the given Accept header; the status code and the decoded body (a list
    of events for a watch)."""
    context = ssl.create_default_context(cafile=str(sandbox.ca_cert))
    request = urllib.request.Request(sandbox.url + path)
    request.add_header("Authorization", f"Bearer {sandbox.token}")
    request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    if "watch=true" in path:
        return code, [json.loads(line) for line in body.splitlines() if line.strip()]
    return code, json.loads(body)


def start_apps(sandbox: Sandbox, annotations: str = "") -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("{annotations}", annotations))
    sandbox.kubectl("apply", "-f", "-", stdin=SERVICE)


def test_pods_deployments_and_services(sandbox: Sandbox) -> None:
    start_apps(sandbox)
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", "apps", "--timeout=30s")

    header, rows = get(sandbox, "pods", "-n", "apps")
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    header, rows = get(sandbox, "pods", "-n", "apps", "-o", "wide")
    assert header == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
        "READINESS GATES",
    ]  # fmt: skip
    assert len(rows) == 2
    for pod in rows:
        assert pod["NAME"].startswith("web-")
        assert (pod["READY"], pod["STATUS"], pod["RESTARTS"]) == ("1/1", "Running", "0")
        assert AGE.match(pod["AGE"]), pod
        assert pod["IP"].startswith("10.244.")
        assert (pod["NODE"], pod["NOMINATED NODE"], pod["READINESS GATES"]) == (
            "sandbox-node-1",
            "<none>",
            "<none>",
        )

    header, rows = get(sandbox, "deploy", "-n", "apps", "-o", "wide")
    assert header == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR",
    ]  # fmt: skip
    [web] = rows
    assert [web[c] for c in header if c != "AGE"] == [
        "web", "2/2", "2", "2", "web", "nginx:1.27", "app=web",
    ]  # fmt: skip

    header, rows = get(sandbox, "svc", "web", "-n", "apps", "-o", "wide")
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    [service] = rows
    assert service["CLUSTER-IP"].startswith("10.96.")
    assert [service[c] for c in ("TYPE", "EXTERNAL-IP", "PORT(S)", "SELECTOR")] == [
        "ClusterIP", "<none>", "80/TCP", "app=web",
    ]  # fmt: skip

    header, rows = get(sandbox, "rs", "-n", "apps")
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert [(r["DESIRED"], r["CURRENT"], r["READY"]) for r in rows] == [("2", "2", "2")]


def test_namespaces_configmaps_secrets_and_nodes(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl(
        "create", "configmap", "settings", "-n", "apps", "--from-literal=a=1", "--from-literal=b=2"
    )
    sandbox.kubectl("create", "secret", "generic", "creds", "-n", "apps", "--from-literal=pw=x")
    sandbox.kubectl(
        "create", "secret", "docker-registry", "pull", "-n", "apps", "--docker-server=r.example",
        "--docker-username=u", "--docker-password=p",
    )  # fmt: skip

    header, rows = get(sandbox, "namespaces")
    assert header == ["NAME", "STATUS", "AGE"]
    assert {r["NAME"]: r["STATUS"] for r in rows} == {
        name: "Active"
        for name in ("apps", "default", "kube-node-lease", "kube-public", "kube-system")
    }
    header, rows = get(sandbox, "namespace", "apps")
    assert [r["NAME"] for r in rows] == ["apps"]

    header, rows = get(sandbox, "cm", "settings", "-n", "apps")
    assert header == ["NAME", "DATA", "AGE"]
    assert rows[0]["DATA"] == "2"

    header, rows = get(sandbox, "secrets", "-n", "apps")
    assert header == ["NAME", "TYPE", "DATA", "AGE"]
    assert {n: (r["TYPE"], r["DATA"]) for n, r in by_name(rows).items()} == {
        "creds": ("Opaque", "1"),
        "pull": ("kubernetes.io/dockerconfigjson", "1"),
    }

    header, rows = get(sandbox, "nodes", "-o", "wide")
    assert header == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
        "KERNEL-VERSION", "CONTAINER-RUNTIME",
    ]  # fmt: skip
    [node] = rows
    assert [node[c] for c in header if c != "AGE"] == [
        "sandbox-node-1", "Ready", "<none>", "v1.37.0", "172.18.0.2", "<none>", "gitmoor sandbox",
        "<unknown>", "sandbox://simulated",
    ]  # fmt: skip

    # Across namespaces kubectl adds the namespace from each row's object metadata.
    header, rows = get(sandbox, "serviceaccounts", "-A", "--show-labels")
    assert header == ["NAMESPACE", "NAME", "SECRETS", "AGE", "LABELS"]
    assert ("apps", "default", "0") in {(r["NAMESPACE"], r["NAME"], r["SECRETS"]) for r in rows}


def test_jobs(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "job", "once", "-n", "apps", "--image=busybox:1")
    sandbox.kubectl("wait", "--for=condition=complete", "job/once", "-n", "apps", "--timeout=30s")
    header, rows = get(sandbox, "jobs", "-n", "apps", "-o", "wide")
    assert header == [
        "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR",
    ]  # fmt: skip
    [job] = rows
    assert [job[c] for c in ("NAME", "STATUS", "COMPLETIONS", "CONTAINERS", "IMAGES")] == [
        "once", "Complete", "1/1", "once", "busybox:1",
    ]  # fmt: skip
    assert re.fullmatch(r"\d+s", job["DURATION"]), job
    uid = sandbox.kubectl("get", "job", "once", "-n", "apps", "-o", "jsonpath={.metadata.uid}")
    assert job["SELECTOR"] == f"batch.kubernetes.io/controller-uid={uid.stdout}"
    header, rows = get(sandbox, "pods", "-n", "apps")
    assert [(r["READY"], r["STATUS"]) for r in rows] == [("0/1", "Completed")]


def test_a_crash_looping_pod_shows_why_and_how_often(sandbox: Sandbox) -> None:
    failing = "      annotations: {sandbox.gitmoor.dev/fail: crashloop}\n"
    start_apps(sandbox, failing)

    def crashing() -> list[dict[str, str]]:
        _, rows = get(sandbox, "pods", "-n", "apps")
        return [r for r in rows if r["STATUS"] == "CrashLoopBackOff" and r["RESTARTS"] != "0"]

    pod = eventually(crashing, "a pod in CrashLoopBackOff that restarted")[0]
    assert pod["READY"] == "0/1"
    assert re.fullmatch(r"\d+ \(\d+s ago\)", pod["RESTARTS"]), pod
    _, rows = get(sandbox, "deploy", "web", "-n", "apps")
    assert rows[0]["READY"] == "0/2"


def test_custom_resources_show_their_printer_columns(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", "-", stdin=CRD)
    sandbox.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("apply", "-f", "-", stdin=WIDGET)

    header, rows = get(sandbox, "widgets", "-n", "apps")
    assert header == ["NAME", "SIZE", "READY", "AGE"]
    assert [(r["NAME"], r["SIZE"], r["READY"]) for r in rows] == [("w1", "3", "")]
    assert AGE.match(rows[0]["AGE"])

    status = {"status": {"conditions": [{"type": "Stalled", "status": "False"},
                                        {"type": "Ready", "status": "True"}]}}  # fmt: skip
    sandbox.kubectl(
        "patch", "widget", "w1", "-n", "apps", "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip
    header, rows = get(sandbox, "widgets", "w1", "-n", "apps", "-o", "wide")
    assert header == ["NAME", "SIZE", "READY", "COLOR", "AGE"]
    assert [rows[0][c] for c in ("NAME", "SIZE", "READY", "COLOR")] == ["w1", "3", "True", "blue"]

    # CRDs themselves print as the apiserver's generic convertor does.
    header, rows = get(sandbox, "crd")
    assert header == ["NAME", "CREATED AT"]
    assert rows[0]["NAME"] == "widgets.example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0]["CREATED AT"]), rows


def test_watch_prints_the_changed_row(sandbox: Sandbox) -> None:
    from sandbox_fixtures import KUBECTL  # loaded by pytest_plugins, after this module

    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "configmap", "watched", "-n", "apps", "--from-literal=a=1")
    argv = [KUBECTL, "get", "cm", "watched", "-n", "apps", "-w", "--request-timeout=30s"]
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "HOME": str(sandbox.directory)}
    watcher = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert watcher.stdout is not None
        header = watcher.stdout.readline()
        assert [name for name, _ in columns(header)] == ["NAME", "DATA", "AGE"]
        first = parse(header + watcher.stdout.readline())[1][0]
        assert (first["NAME"], first["DATA"]) == ("watched", "1")
        sandbox.kubectl(
            "patch", "cm", "watched", "-n", "apps", "--type=merge", "-p", '{"data":{"b":"2"}}'
        )
        changed = parse(header + watcher.stdout.readline())[1][0]
        assert (changed["NAME"], changed["DATA"]) == ("watched", "2")
        assert AGE.match(changed["AGE"])
    finally:
        watcher.kill()
        watcher.wait()


def test_yaml_json_name_and_sorted_output(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    for name, rank in (("b", "2"), ("c", "1"), ("a", "3")):
        sandbox.kubectl("create", "configmap", name, "-n", "apps", f"--from-literal=rank={rank}")

    one = json.loads(sandbox.kubectl("get", "cm", "a", "-n", "apps", "-o", "json").stdout)
    assert (one["kind"], one["apiVersion"], one["data"]) == ("ConfigMap", "v1", {"rank": "3"})
    listed = json.loads(sandbox.kubectl("get", "cm", "-n", "apps", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert {item["kind"] for item in listed["items"]} == {"ConfigMap"}
    assert sorted(item["metadata"]["name"] for item in listed["items"]) == ["a", "b", "c"]
    shown = sandbox.kubectl("get", "cm", "b", "-n", "apps", "-o", "yaml").stdout
    assert "kind: ConfigMap" in shown
    assert 'rank: "2"' in shown
    names = sandbox.kubectl("get", "cm", "-n", "apps", "-o", "name").stdout.split()
    assert names == ["configmap/a", "configmap/b", "configmap/c"]
    # Sorting needs each row's whole object: kubectl asks for it with includeObject=Object.
    _, rows = get(sandbox, "cm", "-n", "apps", "--sort-by=.data.rank")
    assert [r["NAME"] for r in rows] == ["c", "b", "a"]


def test_table_requests_as_the_api_answers_them(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    for name in ("one", "two"):
        sandbox.kubectl("create", "configmap", name, "-n", "apps")
    base = "/api/v1/namespaces/apps/configmaps"

    code, plain = raw(sandbox, base, "application/json")
    assert (code, plain["kind"]) == (200, "ConfigMapList")

    code, table = raw(sandbox, base + "?includeObject=None", KUBECTL_ACCEPT)
    assert (code, table["kind"], table["apiVersion"]) == (200, "Table", "meta.k8s.io/v1")
    assert table["metadata"]["resourceVersion"] == plain["metadata"]["resourceVersion"]
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert [(r["cells"][:2], r["object"]) for r in table["rows"]] == [
        (["one", 0], None),
        (["two", 0], None),
    ]

    code, status = raw(sandbox, base + "?includeObject=All", KUBECTL_ACCEPT)
    assert (code, status["kind"], status["reason"]) == (400, "Status", "BadRequest")
    assert 'includeObject: Unsupported value: "All"' in status["message"]

    code, events = raw(
        sandbox, base + "?watch=true&timeoutSeconds=1&includeObject=Object", KUBECTL_ACCEPT
    )
    assert code == 200
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    first, second = (e["object"] for e in events)
    assert (first["kind"], len(first["rows"]), len(second["rows"])) == ("Table", 1, 1)
    assert [c["name"] for c in first["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert second["columnDefinitions"] is None
    assert second["rows"][0]["object"]["kind"] == "ConfigMap"
