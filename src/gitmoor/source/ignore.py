"""Which files of a source go into its artifact: Flux's exclusion rules.

Flux's source-controller decides file by file with gitignore patterns, and gitmoor
does the same:

* the VCS patterns (``.git/``, ``.gitignore``, ``.gitmodules``, ``.gitattributes``)
  always apply;
* then the patterns of every ``.sourceignore`` file in the tree, each scoped to its
  own directory, the root's first and then the subdirectories' depth-first in name
  order, followed by the lines of ``spec.ignore``, scoped to the root;
* only when ``.sourceignore`` files and ``spec.ignore`` give no pattern at all do the
  default exclusions apply (images, archives, CI configuration, tool configuration).

The last pattern that matches a path decides, so a ``!pattern`` can bring back a path
an earlier pattern excluded, and a pattern that matches a directory matches
everything below it. Lines that are blank or start with ``#`` are skipped; a line
that is not a valid gitignore pattern matches nothing, as in Flux.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from posixpath import dirname

from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

IGNORE_FILE = ".sourceignore"

VCS_PATTERNS: tuple[str, ...] = (".git/", ".gitignore", ".gitmodules", ".gitattributes")

DEFAULT_PATTERNS: tuple[str, ...] = (
    # file extensions
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    # CI configuration
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    # tool configuration
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
)


@dataclass(frozen=True)
class _Rule:
    directory: str
    """The directory the pattern is relative to, "" for the root."""
    pattern: GitIgnoreSpecPattern

    def decides(self, path: str) -> bool | None:
        """True to exclude ``path``, False to include it, None when the rule says nothing."""
        if self.directory:
            prefix = self.directory + "/"
            if not path.startswith(prefix):
                return None
            path = path[len(prefix) :]
        if self.pattern.match_file(path) is None:
            return None
        return bool(self.pattern.include)


def _rules(lines: Iterable[str], directory: str) -> list[_Rule]:
    rules: list[_Rule] = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        try:
            pattern = GitIgnoreSpecPattern(line)
        except GitIgnorePatternError:
            continue
        if pattern.include is not None:
            rules.append(_Rule(directory, pattern))
    return rules


class IgnoreRules:
    """The exclusion rules of one artifact; ``excludes(path)`` answers per file."""

    def __init__(self, rules: list[_Rule]) -> None:
        self._rules = rules

    @classmethod
    def for_tree(cls, ignore_files: Mapping[str, str], spec_ignore: str | None) -> IgnoreRules:
        """The rules for a tree.

        ``ignore_files`` maps the path of each ``.sourceignore`` file in the tree (relative,
        with ``/``) to its text; ``spec_ignore`` is the source's ``spec.ignore``.
        """
        by_directory = sorted(
            ((dirname(path), text) for path, text in ignore_files.items()),
            key=lambda item: item[0].split("/") if item[0] else [],
        )
        found: list[_Rule] = []
        for directory, text in by_directory:
            found.extend(_rules(text.splitlines(), directory))
        if spec_ignore is not None:
            found.extend(_rules(spec_ignore.splitlines(), ""))
        base = _rules(VCS_PATTERNS, "")
        if not found:
            base.extend(_rules(DEFAULT_PATTERNS, ""))
        return cls(base + found)

    def excludes(self, path: str) -> bool:
        """Whether the file at ``path`` (relative, with ``/``) stays out of the artifact."""
        for rule in reversed(self._rules):
            decision = rule.decides(path)
            if decision is not None:
                return decision
        return False
