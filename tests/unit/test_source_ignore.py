"""Flux's exclusion rules: defaults, .sourceignore files at any level, spec.ignore."""

from __future__ import annotations

import pytest

from gitmoor.source.ignore import IgnoreRules

NO_FILES: dict[str, str] = {}


def kept(rules: IgnoreRules, *paths: str) -> list[str]:
    return [path for path in paths if not rules.excludes(path)]


@pytest.mark.parametrize(
    "path",
    [
        ".gitignore",
        "apps/.gitignore",
        ".gitmodules",
        ".gitattributes",
        ".git/config",
        "logo.png",
        "docs/img/shot.JPG.jpg",
        "a/b.jpeg",
        "anim.gif",
        "video.wmv",
        "video.flv",
        "release.tar.gz",
        "bundle.zip",
        ".github/workflows/ci.yaml",
        "nested/.github/dependabot.yml",
        ".circleci/config.yml",
        ".travis.yml",
        ".gitlab-ci.yml",
        "appveyor.yml",
        ".drone.yml",
        "cloudbuild.yaml",
        "codeship-services.yml",
        "codeship-steps.yml",
        ".goreleaser.yml",
        ".sops.yaml",
        "clusters/prod/.sops.yaml",
        ".flux.yaml",
    ],
)
def test_default_exclusions(path: str) -> None:
    assert IgnoreRules.for_tree(NO_FILES, None).excludes(path)


@pytest.mark.parametrize(
    "path",
    ["apps/app.yaml", "README.md", "png", "logo.png.txt", "github/x.yaml", ".sourceignore"],
)
def test_what_the_defaults_keep(path: str) -> None:
    assert not IgnoreRules.for_tree(NO_FILES, None).excludes(path)


@pytest.mark.parametrize("spec_ignore", ["", "\n\n", "# only a comment\n   \n"])
def test_an_empty_spec_ignore_keeps_the_defaults(spec_ignore: str) -> None:
    assert IgnoreRules.for_tree(NO_FILES, spec_ignore).excludes("logo.png")


def test_a_sourceignore_with_patterns_replaces_the_defaults_but_not_the_vcs_ones() -> None:
    rules = IgnoreRules.for_tree({".sourceignore": "*.md\n"}, None)

    assert kept(rules, "logo.png", ".github/ci.yaml", "README.md", ".gitignore") == [
        "logo.png",
        ".github/ci.yaml",
    ]


def test_spec_ignore_replaces_the_defaults() -> None:
    rules = IgnoreRules.for_tree(NO_FILES, "*.yaml\n")

    assert kept(rules, "logo.png", "app.yaml", ".gitmodules") == ["logo.png"]


def test_a_negation_brings_a_file_back() -> None:
    rules = IgnoreRules.for_tree({".sourceignore": "*.md\n!keep.md\n"}, None)

    assert kept(rules, "a.md", "keep.md", "docs/keep.md", "docs/b.md") == [
        "keep.md",
        "docs/keep.md",
    ]


def test_patterns_are_scoped_to_the_directory_of_their_file() -> None:
    rules = IgnoreRules.for_tree(
        {"sub/.sourceignore": "/local.txt\n*.tmp\n", ".sourceignore": "# nothing but this\n"},
        None,
    )

    assert kept(
        rules,
        "local.txt",
        "sub/local.txt",
        "sub/deeper/local.txt",
        "x.tmp",
        "sub/x.tmp",
        "sub/deeper/x.tmp",
        "subway/x.tmp",
    ) == ["local.txt", "sub/deeper/local.txt", "x.tmp", "subway/x.tmp"]


def test_deeper_files_come_after_shallower_ones() -> None:
    rules = IgnoreRules.for_tree(
        {
            "apps/.sourceignore": "!keep.yaml\n",
            ".sourceignore": "*.yaml\n",
            "apps/x/.sourceignore": "keep.yaml\n",
        },
        None,
    )

    assert kept(rules, "keep.yaml", "apps/keep.yaml", "apps/x/keep.yaml", "apps/y/keep.yaml") == [
        "apps/keep.yaml",
        "apps/y/keep.yaml",
    ]


def test_spec_ignore_comes_after_the_sourceignore_files() -> None:
    rules = IgnoreRules.for_tree({".sourceignore": "!important.md\n"}, "*.md\n")

    assert rules.excludes("important.md")


def test_a_directory_pattern_covers_everything_below() -> None:
    rules = IgnoreRules.for_tree(NO_FILES, "docs/\n")

    assert kept(rules, "docs/a.md", "docs/a/b/c.yaml", "docs", "apps/docs/x") == ["docs"]


def test_flux_documentation_example() -> None:
    rules = IgnoreRules.for_tree(
        NO_FILES,
        "# exclude all\n/*\n# include deploy dir\n!/deploy\n"
        "# exclude file extensions from deploy dir\n/deploy/**/*.md\n/deploy/**/*.txt\n",
    )

    assert kept(
        rules,
        "README.md",
        "src/main.go",
        "deploy/app.yaml",
        "deploy/base/kustomization.yaml",
        "deploy/base/notes.md",
        "deploy/base/notes.txt",
    ) == ["deploy/app.yaml", "deploy/base/kustomization.yaml"]


def test_lines_that_are_no_pattern_match_nothing() -> None:
    rules = IgnoreRules.for_tree(NO_FILES, "!\n\\\n*.txt\r\n")

    assert kept(rules, "a.txt", "a.yaml", "!", "\\") == ["a.yaml", "!", "\\"]
