from typing import Any

import pytest
from sandbox_samples import widget_crd

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.schema import ResourceInfo, ResourceTable
from gitmoor.sandbox.selectors import FieldSelector, LabelSelector, field_labels

LABELS = {"app": "web", "tier": "frontend", "app.kubernetes.io/name": "shop", "replicas": "3"}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),  # != also holds when the label is absent
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db, cache)", True),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app.kubernetes.io/name=shop", True),
        (" app = web ,  tier in ( frontend ) , !missing ", True),
        ("app=web,tier=backend", False),
        ("replicas>2", True),
        ("replicas<3", False),
        ("app>2", False),  # not a number: gt never holds
        ("in in (in)", False),  # "in" is a plain word where a key or value may stand
    ],
)
def test_label_selector_matches_as_the_apiserver(selector: str, selected: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is selected


def test_set_values_may_be_empty_strings() -> None:
    selector = LabelSelector.parse("x in (foo,,baz),y,z notin ()")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [
        ("x", "in", ("", "baz", "foo")),
        ("y", "exists", ()),
        ("z", "notin", ("",)),
    ]
    assert selector.matches({"x": "", "y": "1", "z": "a"})
    assert not selector.matches({"x": "", "y": "1", "z": ""})


def test_an_empty_value_selects_empty_labels() -> None:
    assert LabelSelector.parse("a=").matches({"a": ""})
    assert not LabelSelector.parse("a=").matches({})


def test_empty_selector_is_empty() -> None:
    assert LabelSelector.parse("  ").empty
    assert not LabelSelector.parse("a").empty


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "found '', expected: identifier after ','"),
        ("a=x y", "found 'y', expected: ',' or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        (
            "a+b=c",
            'unable to parse requirement: <nil>: Invalid value: "a+b": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "a=b/c",
            'unable to parse requirement: values[0][a]: Invalid value: "b/c": a valid label '
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "a>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
    ],
)
def test_bad_label_selector_is_a_bad_request(selector: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        LabelSelector.parse(selector)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message == message


@pytest.mark.parametrize(
    "selector",
    ["UPPER.example.com/x=1", "a/b/c", "/a", f"{'x' * 64}=1", f"a={'v' * 64}", "a in (-x)"],
)
def test_label_keys_and_values_are_validated(selector: str) -> None:
    with pytest.raises(ApiError) as caught:
        LabelSelector.parse(selector)
    assert caught.value.code == 400
    assert caught.value.message.startswith("unable to parse requirement: ")


POD = {
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-1"},
}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("metadata.name=web-1,metadata.namespace=shop", True),
        ("metadata.name=web-1,metadata.namespace!=shop", False),
        ("metadata.namespace=other", False),
    ],
)
def test_field_selector_matches(selector: str, selected: bool) -> None:
    assert FieldSelector.parse(selector).matches(POD) is selected


def test_field_selector_values_unescape() -> None:
    selector = FieldSelector.parse(r"metadata.name=a\,b\=c\\d")
    assert selector.matches({"metadata": {"name": r"a,b=c\d"}})


def test_cluster_scoped_objects_have_an_empty_namespace() -> None:
    assert FieldSelector.parse("metadata.namespace=").matches({"metadata": {"name": "n"}})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            "spec.nodeName=node-1",
            '"spec.nodeName" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
    ],
)
def test_bad_field_selector_is_a_bad_request(selector: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        FieldSelector.parse(selector)
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        400,
        "BadRequest",
        message,
    )


# --- the field labels of each resource ------------------------------------------------

TABLE = ResourceTable.builtin()


def info(group: str, plural: str, version: str = "v1") -> ResourceInfo:
    found = TABLE.lookup(group, version, plural)
    assert found is not None
    return found


def select(group: str, plural: str, selector: str, obj: dict[str, Any]) -> bool:
    return FieldSelector.parse(selector, field_labels(info(group, plural))).matches(obj)


def refusal(group: str, plural: str, selector: str) -> str:
    with pytest.raises(ApiError) as caught:
        FieldSelector.parse(selector, field_labels(info(group, plural)))
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value.message


EVENT = {
    "metadata": {"name": "web.17d", "namespace": "shop"},
    "involvedObject": {"kind": "Deployment", "namespace": "shop", "name": "web", "uid": "u-1",
                       "apiVersion": "apps/v1", "resourceVersion": "42"},
    "reason": "ScalingReplicaSet",
    "type": "Normal",
    "source": {"component": "deployment-controller"},
}  # fmt: skip


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("involvedObject.kind=Deployment,involvedObject.name=web", True),
        ("involvedObject.kind=Deployment,involvedObject.name=api", False),
        ("involvedObject.namespace=shop,involvedObject.uid=u-1", True),
        ("involvedObject.apiVersion=apps/v1,involvedObject.resourceVersion=42", True),
        ("involvedObject.fieldPath=", True),  # unset: the empty string
        ("reason=ScalingReplicaSet,type=Normal", True),
        ("type!=Warning", True),
        ("source=deployment-controller", True),
        ("reportingComponent=", True),
        ("metadata.name=web.17d,metadata.namespace=shop", True),
    ],
)
def test_core_events_select_by_the_object_they_are_about(selector: str, selected: bool) -> None:
    assert select("", "events", selector, EVENT) is selected


def test_an_event_source_falls_back_to_its_reporting_component() -> None:
    event = {**EVENT, "source": {}, "reportingComponent": "gitmoor"}
    assert select("", "events", "source=gitmoor", event)
    assert select("", "events", "reportingComponent=gitmoor", event)


def test_events_k8s_io_events_select_by_their_own_field_names() -> None:
    event = {
        "metadata": {"name": "web.17d", "namespace": "shop"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "reportingController": "deployment-controller",
        "type": "Normal",
    }
    selector = "regarding.kind=Deployment,regarding.name=web,type=Normal"
    assert select("events.k8s.io", "events", selector, event)
    assert select("events.k8s.io", "events", "reportingController=deployment-controller", event)
    assert select("events.k8s.io", "events", "source=deployment-controller", event)
    assert not select("events.k8s.io", "events", "regarding.name=api", event)
    message = refusal("events.k8s.io", "events", "involvedObject.kind=Deployment")
    assert message == "field label not supported: involvedObject.kind"


PODS = {
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}]},
}  # fmt: skip


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=node-1,spec.restartPolicy=Always", True),
        ("spec.host=node-1", True),  # the old name of spec.nodeName
        ("spec.schedulerName=default-scheduler,spec.serviceAccountName=default", True),
        ("spec.hostNetwork=false", True),  # unset: false
        ("spec.hostNetwork=true", False),
        ("status.podIP=10.0.0.7", True),
        ("status.podIPs=10.0.0.7", False),  # accepted, never filled in
        ("status.nominatedNodeName=", True),
    ],
)
def test_pods_select_by_node_phase_and_more(selector: str, selected: bool) -> None:
    assert select("", "pods", selector, PODS) is selected


@pytest.mark.parametrize(
    ("group", "plural", "selector", "obj"),
    [
        ("", "secrets", "type=kubernetes.io/tls", {"type": "kubernetes.io/tls"}),
        ("", "namespaces", "status.phase=Active", {"status": {"phase": "Active"}}),
        ("", "nodes", "spec.unschedulable=true", {"spec": {"unschedulable": True}}),
        ("", "nodes", "spec.unschedulable=false", {"spec": {}}),
        ("", "services", "spec.type=ClusterIP,spec.clusterIP=10.96.0.10",
         {"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10"}}),
        ("", "replicationcontrollers", "status.replicas=3", {"status": {"replicas": 3}}),
        ("", "replicationcontrollers", "status.replicas=0", {"status": {}}),
        ("batch", "jobs", "status.successful=2", {"status": {"succeeded": 2}}),
        ("batch", "jobs", "status.successful=0", {"status": {}}),
        ("certificates.k8s.io", "certificatesigningrequests", "spec.signerName=example.com/x",
         {"spec": {"signerName": "example.com/x"}}),
        ("resource.k8s.io", "resourceslices", "spec.driver=gpu.example.com",
         {"spec": {"driver": "gpu.example.com"}}),
    ],
)  # fmt: skip
def test_kinds_select_by_the_fields_the_apiserver_indexes(
    group: str, plural: str, selector: str, obj: dict[str, Any]
) -> None:
    assert select(group, plural, selector, obj)
    assert not select(group, plural, selector.replace("=", "!=", 1), obj)


@pytest.mark.parametrize(
    ("group", "plural", "selector", "message"),
    [
        ("", "pods", "spec.containers=x", "field label not supported: spec.containers"),
        ("", "events", "message=x", "field label not supported: message"),
        ("", "nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        ("", "namespaces", "name=x", "field label not supported: name"),
        ("batch", "jobs", "status.active=1", 'field label "status.active" not supported for Job'),
        # apps/v1 has no field labels of its own: the metadata fallback refuses the rest
        ("apps", "replicasets", "status.replicas=1",
         '"status.replicas" is not a known field selector: only "metadata.name", '
         '"metadata.namespace"'),
        ("", "configmaps", "data.x=1",
         '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        ("resource.k8s.io", "resourceslices", "spec.pool.name=x",
         "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: spec.pool.name"),
    ],
)  # fmt: skip
def test_labels_a_kind_lacks_are_refused_in_its_words(
    group: str, plural: str, selector: str, message: str
) -> None:
    assert refusal(group, plural, selector) == message


def test_cluster_scoped_kinds_without_labels_of_their_own_take_any_namespace() -> None:
    # The metadata fallback accepts metadata.namespace; such objects have none.
    assert select("rbac.authorization.k8s.io", "clusterroles", "metadata.namespace=", {})
    assert not select("rbac.authorization.k8s.io", "clusterroles", "metadata.namespace=x", {})


def served(crd: dict[str, Any]) -> ResourceInfo:
    table = ResourceTable.builtin()
    return next(r for r in table.add_crd(crd) if r.version == "v1")


def test_custom_resources_select_by_their_crds_selectable_fields() -> None:
    crd = widget_crd()
    for version in crd["spec"]["versions"]:
        version["selectableFields"] = [{"jsonPath": ".spec.size"}, {"jsonPath": ".status.ready"}]
    labels = field_labels(served(crd), crd)
    widget = {"metadata": {"name": "w", "namespace": "n"},
              "spec": {"size": 3}, "status": {"ready": True}}  # fmt: skip
    assert FieldSelector.parse("spec.size=3,status.ready=true", labels).matches(widget)
    assert FieldSelector.parse("metadata.namespace=n", labels).matches(widget)
    assert not FieldSelector.parse("spec.size=4", labels).matches(widget)
    assert FieldSelector.parse("status.ready=false", labels).matches({"spec": {}})
    with pytest.raises(ApiError) as caught:
        FieldSelector.parse("spec.ports=1", labels)
    assert caught.value.message == "field label not supported: spec.ports"


def test_cluster_scoped_custom_resources_have_no_namespace_label() -> None:
    crd = widget_crd(scope="Cluster")
    with pytest.raises(ApiError) as caught:
        FieldSelector.parse("metadata.namespace=n", field_labels(served(crd), crd))
    assert caught.value.message == "field label not supported: metadata.namespace"
