"""A repository named on the command line (a path or a URL, at a ref) as a directory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitmoor.errors import Location, SourceError
from gitmoor.source.artifacts import ArtifactStore
from gitmoor.source.git import GitRef, fetch_git

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/:]+@[^/:]+:")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_KINDS = ("branch", "tag", "semver", "commit", "name")


@dataclass(frozen=True)
class Checkout:
    path: Path
    """The directory to build; for a path inside a repository, that subdirectory."""
    revision: str
    """``working tree`` when the files on disk are used as they are."""


def parse_ref(text: str) -> GitRef:
    """``main``, ``branch:main``, ``tag:v1.0.0``, ``semver:>=1.0``, ``commit:<sha>``, a bare sha."""
    kind, sep, value = text.partition(":")
    if sep and kind in _KINDS and value:
        return GitRef(**{kind: value})
    if _SHA.match(text):
        return GitRef(commit=text)
    return GitRef(branch=text)


def checkout(target: str, ref: str | None, store: ArtifactStore) -> Checkout:
    """The files of ``target`` at ``ref``.

    A URL is fetched (default branch ``main`` when no ref is given). A local path
    without a ref is used as it is on disk, uncommitted changes included; with a ref,
    the ref is resolved in the enclosing Git repository (anything ``git rev-parse``
    understands, such as ``HEAD~1``) and that commit's tree is used.
    """
    if _URL.match(target):
        artifact = fetch_git(target, parse_ref(ref or "main"), store=store)
        return Checkout(artifact.path, artifact.revision)
    path = Path(target).resolve()
    if not path.exists():
        raise SourceError("no such file or directory", Location(file=target))
    if ref is None:
        return Checkout(path, "working tree")
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise SourceError(
            f"--ref {ref} given, but this is not inside a Git repository", Location(file=target)
        )
    repository = pygit2.Repository(found)
    workdir = Path(repository.workdir).resolve()
    try:
        commit = repository.revparse_single(ref).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        raise SourceError(f"ref {ref!r} not found in {workdir}", Location(file=target)) from None
    artifact = fetch_git(str(workdir), GitRef(commit=str(commit.id)), store=store)
    return Checkout(artifact.path / path.relative_to(workdir), f"{ref}@sha1:{commit.id}")
