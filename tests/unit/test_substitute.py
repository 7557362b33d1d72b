"""postBuild substitution: Flux's variable precedence, envsubst's rules, per-object behaviour."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest

from gitmoor.api.kustomize import PostBuild
from gitmoor.errors import SubstitutionError
from gitmoor.manifests import KubeObject
from gitmoor.render.substitute import envsubst, resolve_variables, substitute_objects

ORIGIN = "Kustomization flux-system/apps"
SECRET_VALUE = "s3cr3t-do-not-print"


def post_build(**fields: object) -> PostBuild:
    return PostBuild.model_validate(fields)


def configmap(data: Mapping[str, object], **metadata: object) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "apps", **metadata},
        "data": dict(data),
    }


def substitute(obj: KubeObject, variables: Mapping[str, str], *, strict: bool = True) -> KubeObject:
    [result] = substitute_objects([obj], variables, strict=strict, origin=ORIGIN)
    return result


# --- resolve_variables -----------------------------------------------------------------------


class Store:
    """ConfigMaps and Secrets by (kind, name), recording what was asked for."""

    def __init__(self, objects: Mapping[tuple[str, str], Mapping[str, str]]) -> None:
        self.objects = objects
        self.asked: list[tuple[str, str]] = []

    def __call__(self, kind: str, name: str) -> Mapping[str, str] | None:
        self.asked.append((kind, name))
        return self.objects.get((kind, name))


def test_no_post_build_means_no_variables() -> None:
    store = Store({})
    assert resolve_variables(None, store) == {}
    assert store.asked == []


def test_later_sources_override_earlier_and_inline_substitute_overrides_all() -> None:
    store = Store(
        {
            ("ConfigMap", "cluster"): {"DOMAIN": "cluster.example", "REGION": "eu", "TIER": "a"},
            ("Secret", "creds"): {"REGION": "us", "TOKEN": "t0k3n"},
        }
    )
    spec = post_build(
        substitute={"TIER": "gold"},
        substituteFrom=[
            {"kind": "ConfigMap", "name": "cluster"},
            {"kind": "Secret", "name": "creds"},
        ],
    )
    assert resolve_variables(spec, store) == {
        "DOMAIN": "cluster.example",
        "REGION": "us",
        "TIER": "gold",
        "TOKEN": "t0k3n",
    }
    assert store.asked == [("ConfigMap", "cluster"), ("Secret", "creds")]


def test_optional_source_that_does_not_exist_is_skipped() -> None:
    spec = post_build(substituteFrom=[{"kind": "ConfigMap", "name": "maybe", "optional": True}])
    assert resolve_variables(spec, Store({})) == {}


def test_required_source_that_does_not_exist_names_it_and_the_field() -> None:
    store = Store({("ConfigMap", "present"): {"A": SECRET_VALUE}})
    spec = post_build(
        substituteFrom=[
            {"kind": "ConfigMap", "name": "present"},
            {"kind": "Secret", "name": "gone"},
        ]
    )
    with pytest.raises(SubstitutionError) as caught:
        resolve_variables(spec, store)
    assert caught.value.location.field == "spec.postBuild.substituteFrom[1]"
    assert "Secret 'gone' not found" in caught.value.message
    assert SECRET_VALUE not in str(caught.value)


def test_values_lose_their_newlines() -> None:
    spec = post_build(
        substitute={"INLINE": "a\nb\n"},
        substituteFrom=[{"kind": "Secret", "name": "s"}],
    )
    store = Store({("Secret", "s"): {"FROM_SECRET": "line1\nline2\n"}})
    assert resolve_variables(spec, store) == {"INLINE": "ab", "FROM_SECRET": "line1line2"}


# --- envsubst ---------------------------------------------------------------------------------

VARIABLES = {
    "NAME": "podinfo",
    "EMPTY": "",
    "MIXED": "abcdEFGH",
    "FILE": "bash.string.txt",
    "PATH_": "/home/user/ideas/notes.txt",
    "REPO": "ghcr.io/org/app",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: ${NAME}", "name: podinfo"),
        ("${NAME}-${NAME}", "podinfo-podinfo"),
        # Defaults: := and :- also replace an empty value, and so does = in envsubst.
        ("${UNSET:=fallback}", "fallback"),
        ("${UNSET:-fallback}", "fallback"),
        ("${UNSET=fallback}", "fallback"),
        ("${EMPTY:=fallback}", "fallback"),
        ("${EMPTY=fallback}", "fallback"),
        ("${NAME:=fallback}", "podinfo"),
        ("${UNSET:=http://127.0.0.1:8879}", "http://127.0.0.1:8879"),
        ("${UNSET:=${NAME}-suffix}", "podinfo-suffix"),
        ("${UNSET:=prefix-${ALSO_UNSET:=x}}", "prefix-x"),
        # Without braces nothing is substituted.
        ("$NAME and $NAME-x", "$NAME and $NAME-x"),
        # $$ is an escape for $, so $${VAR} is the literal text ${VAR}.
        ("$${NAME}", "${NAME}"),
        ("cost: $$5", "cost: $5"),
        ("$$$${NAME}", "$${NAME}"),
        ("$$${NAME}", "$podinfo"),
        ("AS $$ LANGUAGE plpgsql", "AS $ LANGUAGE plpgsql"),
        ("lone $ and trailing $", "lone $ and trailing $"),
        # The bash string functions envsubst supports.
        ("${#NAME}", "7"),
        ("${MIXED^}", "AbcdEFGH"),
        ("${MIXED^^}", "ABCDEFGH"),
        ("${MIXED,}", "abcdEFGH"),
        ("${MIXED,,}", "abcdefgh"),
        ("${PATH_:6}", "user/ideas/notes.txt"),
        ("${PATH_:6:4}", "user"),
        ("${PATH_:-9}", "/home/user/ideas/notes.txt"),  # :- is the default operator
        ("${PATH_:1:-4}", "home/user/ideas/notes"),
        ("${FILE#*.}", "string.txt"),
        ("${FILE##*.}", "txt"),
        ("${FILE%.*}", "bash.string"),
        ("${FILE%%.*}", "bash"),
        ("${PATH_##*/}", "notes.txt"),
        ("${REPO/org/team}", "ghcr.io/team/app"),
        ("${REPO//o/0}", "ghcr.i0/0rg/app"),
        ("${REPO/#ghcr.io/registry.local}", "registry.local/org/app"),
        ("${REPO/%app/api}", "ghcr.io/org/api"),
        (r"${REPO//\//-}", "ghcr.io-org-app"),
        ("${REPO/#/docker.io/}", "docker.io/ghcr.io/org/app"),
    ],
)
def test_envsubst_expands_like_flux(text: str, expected: str) -> None:
    assert envsubst(text, VARIABLES) == expected


@pytest.mark.parametrize(
    "text", ["${UNSET}", "${#UNSET}", "${UNSET^^}", "${UNSET:1}", "${UNSET/a/b}", "${UNSET%.*}"]
)
def test_strict_refuses_an_unset_variable_without_default(text: str) -> None:
    with pytest.raises(SubstitutionError, match="'UNSET' is not set and has no default"):
        envsubst(text, VARIABLES, strict=True)


def test_not_strict_expands_an_unset_variable_to_nothing() -> None:
    assert envsubst("a-${UNSET}-b", VARIABLES, strict=False) == "a--b"


def test_a_set_but_empty_variable_is_not_an_error_in_strict_mode() -> None:
    assert envsubst("[${EMPTY}]", VARIABLES, strict=True) == "[]"


def test_defaults_are_evaluated_even_when_the_variable_is_set() -> None:
    # envsubst evaluates a default before looking at the variable, as Flux does.
    with pytest.raises(SubstitutionError, match="'UNSET'"):
        envsubst("${NAME:=${UNSET}}", VARIABLES, strict=True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("${}", "unable to parse variable name"),
        ("${ NAME}", "unable to parse variable name"),
        ("${NAME", "missing closing brace"),
        ("${app.name}", "missing closing brace"),
        ("${NAME:=unclosed", "unable to parse substitution within function"),
        ("${NAME:}", "unable to parse substitution within function"),
        ("${#}", "bad substitution"),
        ("${NAME/only-a-pattern}", "bad substitution"),
    ],
)
def test_malformed_references_are_refused(text: str, reason: str) -> None:
    with pytest.raises(SubstitutionError, match=reason):
        envsubst(text, VARIABLES, strict=False)


# --- substitute_objects --------------------------------------------------------------------


def test_without_variables_nothing_is_substituted_even_in_strict_mode() -> None:
    obj = configmap({"url": "${UNSET}", "price": "$$5"})
    assert substitute_objects([obj], {}, strict=True, origin=ORIGIN) == [obj]


def test_references_are_replaced_in_keys_and_values() -> None:
    obj = configmap({"url": "https://${DOMAIN}/", "${KEY}": "v"}, labels={"env": "${ENV}"})
    result = substitute(obj, {"DOMAIN": "example.org", "KEY": "k", "ENV": "prod"})
    assert result["data"] == {"url": "https://example.org/", "k": "v"}
    assert result["metadata"]["labels"] == {"env": "prod"}


def test_a_value_that_is_only_a_reference_takes_the_type_of_its_text() -> None:
    # Flux substitutes on the YAML text, where kustomize writes such a value unquoted.
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": "${REPLICAS}", "paused": "${PAUSED}", "label": "v${REPLICAS}"},
    }
    result = substitute(deployment, {"REPLICAS": "3", "PAUSED": "false"})
    assert result["spec"] == {"replicas": 3, "paused": False, "label": "v3"}


def test_multi_line_text_is_substituted_as_a_literal_block() -> None:
    script = 'echo "${GREETING}"\npsql -c "$$1" \\\n  --quiet\n'
    result = substitute(configmap({"run.sh": script}), {"GREETING": 'say "hi" \\o/'})
    assert result["data"]["run.sh"] == 'echo "say "hi" \\o/"\npsql -c "$1" \\\n  --quiet\n'


def test_input_objects_are_not_modified() -> None:
    obj = configmap({"url": "${DOMAIN}"})
    before = copy.deepcopy(obj)
    substitute(obj, {"DOMAIN": "example.org"})
    assert obj == before


@pytest.mark.parametrize("part", ["labels", "annotations"])
def test_objects_marked_disabled_are_left_alone(part: str) -> None:
    marked = configmap(
        {"url": "${UNSET}", "sql": "AS $$ LANGUAGE"},
        **{part: {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}},
    )
    other = configmap({"url": "${DOMAIN}"})
    result = substitute_objects(
        [marked, other], {"DOMAIN": "example.org"}, strict=True, origin=ORIGIN
    )
    assert result[0] == marked
    assert result[1]["data"]["url"] == "example.org"


def test_strict_error_names_variable_object_field_and_origin() -> None:
    obj = configmap({"token": "${TOKEN}", "url": "https://${UNSET}/"})
    with pytest.raises(SubstitutionError) as caught:
        substitute(obj, {"TOKEN": SECRET_VALUE}, strict=True)
    error = caught.value
    assert "'UNSET' is not set and has no default" in error.message
    assert ORIGIN in error.message
    assert error.location.object == "ConfigMap apps/settings"
    assert error.location.field == "data.url"
    assert SECRET_VALUE not in str(error)


def test_malformed_reference_error_points_at_the_field() -> None:
    obj = configmap({"script": "echo ok", "bad": "${app.name}"})
    with pytest.raises(SubstitutionError) as caught:
        substitute(obj, {"A": "1"})
    assert caught.value.location.field == "data.bad"
    assert "missing closing brace" in caught.value.message


def test_not_strict_leaves_unset_variables_empty() -> None:
    result = substitute(configmap({"url": "https://${UNSET}/x"}), {"A": "1"}, strict=False)
    assert result["data"]["url"] == "https:///x"


def test_invalid_variable_names_are_refused_as_flux_does() -> None:
    with pytest.raises(SubstitutionError) as caught:
        substitute(configmap({"a": "b"}), {"GOOD": "1", "app.name": "x"})
    assert "'app.name' is not valid" in caught.value.message
    assert caught.value.location.object == ORIGIN


def test_invalid_names_do_not_matter_when_every_object_is_disabled() -> None:
    marked = configmap({"a": "${X}"}, labels={"kustomize.toolkit.fluxcd.io/substitute": "disabled"})
    assert substitute_objects([marked], {"app.name": "x"}, origin=ORIGIN) == [marked]


def test_a_value_that_breaks_the_yaml_is_a_clear_error_without_the_value() -> None:
    obj = configmap({"url": "${URL}"})
    with pytest.raises(SubstitutionError) as caught:
        substitute(obj, {"URL": f"a: {SECRET_VALUE}"})
    error = caught.value
    assert "not valid YAML" in error.message
    assert ORIGIN in error.message
    assert error.location.object == "ConfigMap apps/settings"
    assert SECRET_VALUE not in str(error)


def test_strings_that_yaml_would_read_as_other_types_stay_strings() -> None:
    obj: KubeObject = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags", "namespace": "apps"},
        "data": {"enabled": "yes", "mode": "0755", "switch": "on", "owner": "${OWNER}"},
    }
    [result] = substitute_objects([obj], {"OWNER": "ops"}, origin="Kustomization x/y")
    assert result["data"] == {"enabled": "yes", "mode": "0755", "switch": "on", "owner": "ops"}


def test_objects_without_references_are_returned_untouched() -> None:
    obj: KubeObject = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    [result] = substitute_objects([obj], {"OWNER": "ops"}, origin="Kustomization x/y")
    assert result is obj
