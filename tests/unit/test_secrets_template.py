"""The template subset of External Secrets' engine v2: actions, pipelines, functions,
trimming, and errors that name keys and functions but never a value."""

from __future__ import annotations

import base64

import pytest

from gitmoor.secrets.errors import InvalidSpecError
from gitmoor.secrets.template import render

SECRET = "pa55-w0rd-never-shown"
VALUES = {"user": "admin", "password": SECRET, "api-key": "k-123", "encoded": "aGVsbG8="}


def test_text_and_values_are_joined() -> None:
    text = "postgres://{{ .user }}:{{ .password }}@db:5432/app"
    assert render(text, VALUES, where="data.url") == f"postgres://admin:{SECRET}@db:5432/app"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .password | b64enc }}", base64.b64encode(SECRET.encode()).decode()),
        ("{{ .encoded | b64dec }}", "hello"),
        ("{{ .user | upper }}", "ADMIN"),
        ('{{ "MiXed" | lower }}', "mixed"),
        ('{{ index . "api-key" }}', "k-123"),
        ('{{ index . "api-key" | upper | b64enc | b64dec }}', "K-123"),
        ("{{ .user | quote }}", '"admin"'),
        ("{{ .user | squote }}", "'admin'"),
        ("{{ .user | toJson }}", '"admin"'),
        ('{{ replace "a" "4" .user }}', "4dmin"),
        ('{{ .user | trimPrefix "ad" }}', "min"),
        ('{{ .user | trimSuffix "in" }}', "adm"),
        ('{{ "  x  " | trim }}', "x"),
        ('{{ "" | default "fallback" }}', "fallback"),
        ('{{ .user | default "fallback" }}', "admin"),
        ("{{ `raw {{ not an action }}` }}", "raw {{ not an action }}"),
        ('{{ "a\\tb" }}', "a\tb"),
        ("{{ 42 }}", "42"),
        (
            "{{ .user | sha256sum }}",
            "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918",
        ),
        ("{{ .user | indent 2 }}", "  admin"),
        ('{{ "a\\nb" | nindent 2 }}', "\n  a\n  b"),
    ],
)
def test_functions_follow_sprig(template: str, expected: str) -> None:
    assert render(template, VALUES, where="data.x") == expected


def test_to_json_of_all_values_is_sorted_compact_json() -> None:
    assert render("{{ . | toJson }}", {"b": "2", "a": "1"}, where="x") == '{"a":"1","b":"2"}'


def test_trim_markers_and_comments() -> None:
    template = "a  \n {{- .user -}} \n  b{{/* a comment */}}c {{- /* trimmed */ -}} d"
    assert render(template, VALUES, where="x") == "aadminbcd"


def test_a_negative_number_is_not_a_trim_marker() -> None:
    assert render("x {{-3}}", {}, where="x") == "x -3"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ .missing }}", "key 'missing' is not among the fetched values"),
        ("{{ .user.name }}", "'.user' is a string, it has no field 'name'"),
        ("{{ .user | nosuch }}", "function 'nosuch' is not supported"),
        ("{{ if .user }}x{{ end }}", "'if' is not supported"),
        ("{{ $x := .user }}", "variables are not supported"),
        ("{{ (.user) }}", "parentheses are not supported"),
        ("{{ .user", "never closed"),
        ("{{ }}", "empty action"),
        ("{{ .user | }}", "a command is missing"),
        ('{{ replace "a" .user }}', "function 'replace' takes 3 arguments, got 2"),
        ("{{ .user .password }}", "'.user' is not a function"),
        ("{{ .password | b64dec }}", "b64dec: the value is not valid base64"),
        ('{{ index . "nope" }}', "key 'nope' is not among the fetched values"),
        ('{{ "a\nb" }}', "invalid string literal"),
    ],
)
def test_errors_say_what_and_where_without_values(template: str, message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        render(template, VALUES, where="spec.target.template.data.url")
    assert message in str(caught.value)
    assert caught.value.location.field == "spec.target.template.data.url"
    assert SECRET not in str(caught.value)


def test_bytes_that_are_not_utf8_pass_through() -> None:
    raw = b"\xff\xfe-binary".decode("utf-8", "surrogateescape")
    out = render("{{ .blob }}", {"blob": raw}, where="x")
    assert out.encode("utf-8", "surrogateescape") == b"\xff\xfe-binary"
