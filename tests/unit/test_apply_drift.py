"""Drift of a release's objects: changed fields, objects gone, ignore rules, defaults."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from gitmoor.api.helm import IgnoreRule
from gitmoor.apply.drift import Change, compile_rules, detect, release_objects
from gitmoor.errors import InputError
from gitmoor.manifests import KubeObject, key_of

WHAT = "HelmRelease apps/web"


def deployment(replicas: int = 1, **container: Any) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.27", **container}],
                    "securityContext": {},
                },
            },
        },
    }


def config_map(**data: str) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "apps"},
        "data": data,
    }


def as_stored(obj: KubeObject) -> KubeObject:
    """``obj`` as the API server returns it: server fields, defaults, status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(
        uid="0b7c", resourceVersion="42", generation=1, creationTimestamp="2025-01-01T00:00:00Z",
        managedFields=[{"manager": "helm", "operation": "Apply"}],
    )  # fmt: skip
    if live["kind"] == "Deployment":
        spec = live["spec"]
        spec.update(revisionHistoryLimit=10, progressDeadlineSeconds=600)
        pod = spec["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
        pod.pop("securityContext")  # an empty map the API server drops
        for container in pod["containers"]:
            container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/x")
        live["status"] = {"replicas": spec["replicas"], "readyReplicas": spec["replicas"]}
    return live


def live_of(*objects: KubeObject) -> dict[Any, KubeObject | None]:
    return {key_of(o): o for o in objects}


def rules(*raw: dict[str, Any]) -> list[Any]:
    return compile_rules([IgnoreRule.model_validate(r) for r in raw], what=WHAT)


def test_an_unchanged_release_has_no_drift_whatever_the_server_added() -> None:
    desired = [deployment(), config_map(port="80")]
    assert detect(desired, live_of(*(as_stored(o) for o in desired))) == []


def test_a_changed_field_is_drift_named_by_its_json_pointer() -> None:
    live = as_stored(deployment(replicas=3))
    found = detect([deployment(replicas=1)], live_of(live))
    assert len(found) == 1
    assert found[0].changes == (Change("/spec/replicas", "replace"),)
    assert not found[0].missing
    assert str(found[0]) == (
        "Deployment/apps/web changed (0 additions, 1 changes, 0 removals): /spec/replicas"
    )


def test_fields_removed_or_changed_inside_lists_and_labels() -> None:
    live = as_stored(deployment(args=["--port=80"]))
    del live["metadata"]["labels"]["app"]
    live["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop"  # added by hand: kept
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "nginx:latest"
    container["args"] = ["--port=81"]
    container["env"] = [{"name": "DEBUG", "value": "1"}]  # another manager's field
    found = detect([deployment(args=["--port=80"])], live_of(live))
    assert [(c.path, c.op) for c in found[0].changes] == [
        ("/spec/template/spec/containers/0/image", "replace"),
        ("/spec/template/spec/containers/0/args", "replace"),
        ("/metadata/labels/app", "add"),
    ]
    assert "1 additions, 2 changes" in str(found[0])


def test_json_pointer_tokens_are_escaped() -> None:
    desired = config_map()
    desired["metadata"]["annotations"] = {"example.com/owner~team": "shop"}
    live = as_stored(config_map())
    (found,) = detect([desired], live_of(live))
    assert found.changes == (Change("/metadata/annotations/example.com~1owner~0team", "add"),)


def test_a_deleted_object_is_drift() -> None:
    present = config_map(port="80")
    found = detect([deployment(), present], {key_of(present): as_stored(present)})
    assert [(d.subject, d.missing) for d in found] == [("Deployment/apps/web", True)]
    assert str(found[0]) == "Deployment/apps/web removed"
    assert detect([deployment()], {key_of(deployment()): None})[0].missing


def test_secret_drift_names_the_key_never_the_value() -> None:
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "apps"},
        "stringData": {"password": "hunter2"},
    }  # fmt: skip
    (desired,) = release_objects([secret], release="web", namespace="apps", cluster_scoped=())
    live = as_stored(desired)
    assert detect([desired], live_of(live)) == []
    live["data"]["password"] = base64.b64encode(b"changed-by-hand").decode()
    (found,) = detect([desired], live_of(live))
    assert found.changes == (Change("/data/password", "replace"),)
    assert "hunter2" not in str(found)
    assert "changed-by-hand" not in str(found)


def test_the_dry_run_result_decides_what_a_value_stored_in_another_form_is() -> None:
    desired = deployment(resources={"requests": {"cpu": "0.5"}})
    live = as_stored(desired)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "500m"
    (suspect,) = detect([desired], live_of(live))
    assert suspect.changes[0].path.endswith("/resources/requests/cpu")
    # Applying the manifest would store what is there already: no drift.
    assert detect([desired], live_of(live), applied={key_of(desired): copy.deepcopy(live)}) == []
    # A dry-run that would change the live object confirms it.
    dry_run = copy.deepcopy(live)
    live["spec"]["replicas"] = 4
    (confirmed,) = detect([desired], live_of(live), applied={key_of(desired): dry_run})
    assert confirmed.changes == (Change("/spec/replicas", "replace"),)


def test_ignore_rule_paths_apply_to_every_object_without_a_target() -> None:
    live = as_stored(deployment(replicas=5))
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:latest"
    ignored = rules({"paths": ["/spec/replicas"]})
    (found,) = detect([deployment()], live_of(live), ignored)
    assert [c.path for c in found.changes] == ["/spec/template/spec/containers/0/image"]
    ignored = rules({"paths": ["/spec/replicas", "/spec/template/spec/containers/0/image"]})
    assert detect([deployment()], live_of(live), ignored) == []


def test_ignore_rules_with_a_target_only_apply_to_the_objects_it_selects() -> None:
    live_deployment = as_stored(deployment(replicas=5))
    live_config = as_stored(config_map(port="81"))
    desired = [deployment(), config_map(port="80")]
    live = live_of(live_deployment, live_config)

    def drifted(*raw: dict[str, Any]) -> list[str]:
        return [d.subject for d in detect(desired, live, rules(*raw))]

    everything = ["Deployment/apps/web", "ConfigMap/apps/web-config"]
    replicas_of = {"paths": ["/spec/replicas"]}
    assert drifted({**replicas_of, "target": {"kind": "Deployment"}}) == everything[1:]
    assert drifted({**replicas_of, "target": {"kind": "StatefulSet"}}) == everything
    assert drifted({**replicas_of, "target": {"group": "apps", "version": "v1"}}) == everything[1:]
    assert (
        drifted({**replicas_of, "target": {"name": "w.*", "namespace": "apps"}}) == (everything[1:])
    )
    # Regular expressions are anchored, as helm-controller anchors them.
    assert drifted({**replicas_of, "target": {"name": "we"}}) == everything
    assert (
        drifted({**replicas_of, "target": {"labelSelector": "app in (web, api)"}})
        == (everything[1:])
    )
    assert drifted({**replicas_of, "target": {"labelSelector": "app!=web"}}) == everything
    assert (
        drifted({"paths": ["/data"], "target": {"annotationSelector": "!owner"}})
        == (everything[:1])
    )
    # The empty pointer ignores whole objects, even deleted ones.
    assert drifted({"paths": [""], "target": {"kind": "ConfigMap"}}) == everything[:1]
    assert detect([config_map()], {}, rules({"paths": [""]})) == []


def test_objects_marked_drift_detection_disabled_are_left_out() -> None:
    desired = deployment()
    desired["metadata"]["annotations"] = {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}
    assert detect([desired], live_of(as_stored(deployment(replicas=3)))) == []
    labelled = config_map(port="80")
    labelled["metadata"]["labels"] = {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}
    assert detect([labelled], {}) == []


@pytest.mark.parametrize(
    ("rule", "field", "says"),
    [
        ({"paths": ["spec/replicas"]}, "spec.driftDetection.ignore[0].paths[0]", "JSON pointer"),
        (
            {"paths": ["/spec"], "target": {"kinds": "Deployment"}},
            "spec.driftDetection.ignore[0].target.kinds",
            "Extra inputs",
        ),
        (
            {"paths": ["/spec"], "target": {"name": "web("}},
            "spec.driftDetection.ignore[0].target.name",
            "regular expression",
        ),
        (
            {"paths": ["/spec"], "target": {"labelSelector": "app in web"}},
            "spec.driftDetection.ignore[0].target.labelSelector",
            "invalid selector",
        ),
    ],
)
def test_bad_ignore_rules_are_input_errors_naming_the_field(
    rule: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InputError) as caught:
        rules(rule)
    assert caught.value.location.object == WHAT
    assert caught.value.location.field == field
    assert says in caught.value.message


def test_release_objects_are_namespaced_and_carry_helm_ownership() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "web-reader"}}  # fmt: skip
    elsewhere = config_map()
    elsewhere["metadata"]["namespace"] = "shared"
    unnamespaced = config_map()
    del unnamespaced["metadata"]["namespace"]
    found = release_objects(
        [role, elsewhere, unnamespaced],
        release="web",
        namespace="apps",
        cluster_scoped={("rbac.authorization.k8s.io/v1", "ClusterRole")},
    )
    assert [o["metadata"].get("namespace") for o in found] == [None, "shared", "apps"]
    for obj in found:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert obj["metadata"]["annotations"] == {
            "meta.helm.sh/release-name": "web",
            "meta.helm.sh/release-namespace": "apps",
        }
    assert "namespace" not in unnamespaced["metadata"]  # the input is left alone
