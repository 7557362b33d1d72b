"""Choosing a chart version the way Flux and Helm read constraints (Masterminds/semver)."""

from __future__ import annotations

import pytest

from gitmoor.errors import InputError
from gitmoor.source.versions import parse_chart_version, select_version

RELEASES = ["0.0.3", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.7", "1.9.0", "1.10.0"]
ALL = [*RELEASES, "2.0.0", "2.1.0-rc.1", "3.0.0-alpha.1"]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        # exact versions, with or without a "v"
        ("1.2.0", "1.2.0"),
        ("v1.2.0", "1.2.0"),
        ("=1.2.0", "1.2.0"),
        # ranges: newest match wins, compared as numbers
        (">=1.0.0 <2.0.0", "1.10.0"),
        (">=1.0.0, <2.0.0", "1.10.0"),
        (">1.2.0 <1.10.0", "1.9.0"),
        ("<=1.2.0", "1.2.0"),
        ("!=2.0.0", "1.10.0"),
        ("<0.2.0 || >=1.2.0 <1.9.0", "1.2.7"),
        ("1.1 - 1.2", "1.2.7"),
        # tilde: patch updates
        ("~1.2", "1.2.7"),
        ("~1.2.3", "1.2.7"),
        ("~>1.2.0", "1.2.7"),
        ("~1", "1.10.0"),
        ("~0.2.4", "0.2.9"),
        # caret: no change in the leftmost non-zero part
        ("^1.2", "1.10.0"),
        ("^1.2.3", "1.10.0"),
        ("^0.2.3", "0.2.9"),
        ("^0.0.3", "0.0.3"),
        ("^0", "0.3.0"),
        # wildcards
        ("1.2.x", "1.2.7"),
        ("1.x", "1.10.0"),
        ("1.2.*", "1.2.7"),
        ("*", "2.0.0"),
        ("x", "2.0.0"),
        # a bound left open by a wildcard
        (">1", "2.0.0"),
        (">1.2", "2.0.0"),
        ("<=1.2", "1.2.7"),
        # empty means the newest stable version
        (None, "2.0.0"),
        ("", "2.0.0"),
        ("  ", "2.0.0"),
        # prereleases only when the constraint names one
        (">=2.0.0", "2.0.0"),
        (">=2.1.0-rc.0", "3.0.0-alpha.1"),
        (">=2.1.0-rc.0 <3.0.0-0", "2.1.0-rc.1"),
        (">=2.1.0-rc.0 <3.0.0", None),  # every bound must name one, as in Masterminds
        ("2.1.0-rc.1", "2.1.0-rc.1"),
        ("~2.1.0-0", "2.1.0-rc.1"),
        # nothing matches
        (">=4.0.0", None),
        ("~1.3", None),
        ("^0.1.0", None),
    ],
)
def test_select_version(constraint: str | None, expected: str | None) -> None:
    assert select_version(ALL, constraint) == expected


def test_the_newest_is_found_wherever_it_is_listed() -> None:
    assert select_version(list(reversed(ALL)), "^1") == "1.10.0"
    assert select_version(iter(RELEASES), None) == "1.10.0"


def test_versions_come_back_as_written() -> None:
    tags = ["v1.13.2", "v1.13.3", "v1.14.0"]

    assert select_version(tags, "v1.13.3") == "v1.13.3"
    assert select_version(tags, "1.13.3") == "v1.13.3"
    assert select_version(tags, "~1.13") == "v1.13.3"


def test_strings_that_are_not_versions_are_passed_over() -> None:
    available = ["latest", "1.3", "01.2.3", "1.2.3.4", "1.2.0", "main"]

    assert select_version(available, None) == "1.2.0"
    assert select_version(available, ">=1.0.0") == "1.2.0"


def test_an_exact_listed_string_wins_outright() -> None:
    # As in Helm's index lookup, even for what is not a version.
    assert select_version(["latest", "1.0.0"], "latest") == "latest"
    assert select_version(["1.0.0+build.2", "1.0.0+build.1"], "1.0.0+build.1") == "1.0.0+build.1"


def test_build_metadata_ties_go_to_the_first_listed() -> None:
    assert select_version(["1.0.0+build.2", "1.0.0+build.1", "0.9.0"], None) == "1.0.0+build.2"


def test_no_versions_match_nothing() -> None:
    assert select_version([], None) is None
    assert select_version(["2.0.0-rc.1"], None) is None


@pytest.mark.parametrize("constraint", ["not a range", ">=", "1.2.3 ||| 2", ">= 1.0.0 <"])
def test_unreadable_constraint(constraint: str) -> None:
    with pytest.raises(InputError) as caught:
        select_version(ALL, constraint)

    assert repr(constraint.strip()) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3", (1, 2, 3, None)), ("v1.2.3-rc.1", (1, 2, 3, "rc.1")), ("1.2", None), ("x", None)],
)
def test_parse_chart_version(text: str, expected: tuple[int, int, int, str | None] | None) -> None:
    parsed = parse_chart_version(text)

    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.major, parsed.minor, parsed.patch, parsed.prerelease) == expected
