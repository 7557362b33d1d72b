import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.selectors import FieldSelector, LabelSelector

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


def test_more_fields_when_the_resource_has_them() -> None:
    supported = ("metadata.name", "metadata.namespace", "spec.nodeName")
    assert FieldSelector.parse("spec.nodeName=node-1", supported).matches(POD)
    assert not FieldSelector.parse("spec.nodeName=node-2", supported).matches(POD)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("spec.nodeName=node-1", "field label not supported: spec.nodeName"),
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
