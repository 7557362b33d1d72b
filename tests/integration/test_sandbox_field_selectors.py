"""Field selectors against the sandbox, through the real kubectl: the labels each kind has
(events by the object they are about, pods by phase...), refused labels worded as
kube-apiserver words them, and watches that follow an object in and out of a selector."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

T = TypeVar("T")


def eventually(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """``probe()`` once it is truthy; fails naming ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what} (last: {value!r})")
        time.sleep(0.1)


def names(sandbox: Sandbox, *args: str) -> list[str]:
    listed = json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)
    return sorted(item["metadata"]["name"] for item in listed["items"])


def event(name: str, kind: str, about: str, *, type_: str = "Normal", reason: str = "Seen") -> str:
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "apps"},
        "involvedObject": {"apiVersion": "apps/v1" if kind == "Deployment" else "v1",
                           "kind": kind, "name": about, "namespace": "apps"},
        "reason": reason,
        "message": f"{reason} {about}",
        "type": type_,
        "source": {"component": "tester"},
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:00:00Z",
        "count": 1,
    })  # fmt: skip


def create_events(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    for name, kind, about in [
        ("web.1", "Deployment", "web"),
        ("web.2", "Deployment", "web"),
        ("api.1", "Deployment", "api"),
        ("web-pod.1", "Pod", "web"),
    ]:
        sandbox.kubectl("create", "-f", "-", stdin=event(name, kind, about))


def test_events_select_by_the_object_they_are_about(sandbox: Sandbox) -> None:
    create_events(sandbox)
    selector = "involvedObject.kind=Deployment,involvedObject.name=web"
    assert names(sandbox, "events", "-n", "apps", "--field-selector", selector) == [
        "web.1",
        "web.2",
    ]
    pod_events = names(sandbox, "events", "-A", "--field-selector", "involvedObject.kind=Pod")
    assert pod_events == ["web-pod.1"]
    by_source = "source=tester,involvedObject.name!=web,type=Normal"
    assert names(sandbox, "events", "-n", "apps", "--field-selector", by_source) == ["api.1"]


def test_kubectl_events_for_one_object(sandbox: Sandbox) -> None:
    create_events(sandbox)
    printed = sandbox.kubectl("events", "-n", "apps", "--for", "deployment/web").stdout
    lines = printed.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert sorted(line.split()[-1] for line in lines[1:]) == ["web", "web"]
    assert [line.split()[-3] for line in lines[1:]] == ["Deployment/web", "Deployment/web"]
    for_pod = sandbox.kubectl("events", "-n", "apps", "--for", "pod/web").stdout
    assert [line.split()[-3] for line in for_pod.splitlines()[1:]] == ["Pod/web"]


def test_events_k8s_io_events_select_by_what_they_regard(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    for name, about in [("web.1", "web"), ("api.1", "api")]:
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": "apps"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": about},
            "reason": "Seen",
            "action": "Looked",
            "reportingController": "example.com/tester",
            "reportingInstance": "tester-1",
            "type": "Normal",
        }
        sandbox.kubectl("create", "-f", "-", stdin=json.dumps(body))
    selector = "regarding.kind=Deployment,regarding.name=web"
    resource = "events.v1.events.k8s.io"
    assert names(sandbox, resource, "-n", "apps", "--field-selector", selector) == ["web.1"]
    by_controller = "reportingController=example.com/tester"
    assert names(sandbox, resource, "-n", "apps", "--field-selector", by_controller) == [
        "api.1",
        "web.1",
    ]


def test_pods_select_by_phase_and_node(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "deployment", "web", "-n", "apps", "--image=nginx:1", "--replicas=2")
    sandbox.kubectl("create", "job", "once", "-n", "apps", "--image=busybox:1")
    sandbox.kubectl("wait", "--for=condition=complete", "job/once", "-n", "apps", "--timeout=30s")
    sandbox.kubectl(
        "wait", "--for=condition=Available", "deployment/web", "-n", "apps", "--timeout=30s"
    )
    running = names(sandbox, "pods", "-n", "apps", "--field-selector", "status.phase=Running")
    assert len(running) == 2
    assert all(name.startswith("web-") for name in running)
    succeeded = names(sandbox, "pods", "-n", "apps", "--field-selector", "status.phase=Succeeded")
    assert len(succeeded) == 1
    assert succeeded[0].startswith("once-")
    not_running = names(sandbox, "pods", "-A", "--field-selector", "status.phase!=Running")
    assert not_running == succeeded
    on_node = "spec.nodeName=sandbox-node-1,status.phase=Running"
    assert names(sandbox, "pods", "-n", "apps", "--field-selector", on_node) == running
    assert names(sandbox, "pods", "-n", "apps", "--field-selector", "spec.nodeName=other") == []
    assert names(sandbox, "jobs", "-n", "apps", "--field-selector", "status.successful=1") == [
        "once"
    ]


def test_other_kinds_select_by_their_own_fields(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    sandbox.kubectl("create", "secret", "generic", "plain", "-n", "apps", "--from-literal=a=1")
    sandbox.kubectl(
        "create", "secret", "docker-registry", "pull", "-n", "apps",
        "--docker-server=registry.example.com", "--docker-username=u", "--docker-password=p",
    )  # fmt: skip
    selector = "type=kubernetes.io/dockerconfigjson"
    assert names(sandbox, "secrets", "-n", "apps", "--field-selector", selector) == ["pull"]
    active = names(sandbox, "namespaces", "--field-selector", "status.phase=Active")
    assert "apps" in active
    assert "default" in active
    assert names(sandbox, "nodes", "--field-selector", "spec.unschedulable=false") == [
        "sandbox-node-1"
    ]
    sandbox.kubectl("cordon", "sandbox-node-1")
    assert names(sandbox, "nodes", "--field-selector", "spec.unschedulable=true") == [
        "sandbox-node-1"
    ]


def test_labels_a_kind_lacks_are_refused_as_kube_apiserver_refuses_them(
    sandbox: Sandbox,
) -> None:
    refused = [
        (("pods", "-A", "--field-selector", "spec.containers=x"),
         "field label not supported: spec.containers"),
        (("configmaps", "-A", "--field-selector", "data.a=1"),
         '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        (("jobs", "-A", "--field-selector", "status.active=1"),
         'field label "status.active" not supported for Job'),
        (("namespaces", "--field-selector", "metadata.namespace=x"),
         "field label not supported: metadata.namespace"),
    ]  # fmt: skip
    for args, message in refused:
        done = sandbox.kubectl("get", *args, check=False)
        assert done.returncode == 1
        assert "(BadRequest)" in done.stderr
        assert message in done.stderr
    code, status = sandbox.request("GET", "/api/v1/events?fieldSelector=message%3Dx")
    assert (code, status["reason"], status["message"]) == (
        400,
        "BadRequest",
        "field label not supported: message",
    )


@contextmanager
def watching(sandbox: Sandbox, *args: str) -> Iterator[subprocess.Popen[str]]:
    from sandbox_fixtures import KUBECTL  # loaded by pytest_plugins, after this module

    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "HOME": str(sandbox.directory)}
    watcher = subprocess.Popen(
        [KUBECTL, "get", *args, "--watch", "--request-timeout=60s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        yield watcher
    finally:
        watcher.kill()
        watcher.wait()


def test_a_watch_with_a_field_selector_sees_only_what_matches(sandbox: Sandbox) -> None:
    sandbox.kubectl("create", "namespace", "apps")
    selector = "involvedObject.name=web,type=Warning"
    with watching(
        sandbox, "events", "-n", "apps", "--field-selector", selector,
        "--output-watch-events", "-o", 'jsonpath={.type} {.object.metadata.name}{"\\n"}',
    ) as watcher:  # fmt: skip
        assert watcher.stdout is not None
        # Listed or watched, the first event prints as ADDED; once it has, kubectl watches
        # from the resourceVersion of its list, so nothing later is missed.
        sandbox.kubectl("create", "-f", "-", stdin=event("web.0", "Deployment", "web",
                                                          type_="Warning"))  # fmt: skip
        assert watcher.stdout.readline().split() == ["ADDED", "web.0"]
        sandbox.kubectl("create", "-f", "-", stdin=event("api.1", "Deployment", "api",
                                                          type_="Warning"))  # fmt: skip
        sandbox.kubectl("create", "-f", "-", stdin=event("web.1", "Deployment", "web"))
        # A Normal event turning Warning comes into the selector, and leaves it again.
        retype = ["patch", "event", "web.1", "-n", "apps", "--type=merge", "-p"]
        sandbox.kubectl(*retype, '{"type": "Warning"}')
        assert watcher.stdout.readline().split() == ["ADDED", "web.1"]
        sandbox.kubectl(*retype, '{"type": "Normal"}')
        assert watcher.stdout.readline().split() == ["DELETED", "web.1"]


def test_a_raw_watch_replays_only_matching_objects(sandbox: Sandbox) -> None:
    create_events(sandbox)
    code, body = sandbox.request(
        "GET",
        "/api/v1/namespaces/apps/events?watch=1&timeoutSeconds=1&resourceVersion=0"
        "&fieldSelector=involvedObject.kind%3DDeployment,involvedObject.name%3Dapi",
    )
    assert code == 200
    # One event decodes as a JSON document of its own, more are lines of text.
    events = [body] if isinstance(body, dict) else [json.loads(line) for line in body.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "api.1")]
