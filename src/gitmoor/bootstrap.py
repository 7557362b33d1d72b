"""A local Git repository for the example cluster, shaped as ``flux bootstrap`` leaves one.

``gitmoor up`` without ``--repo`` copies a Flux repository (the bundled
``examples/homelab``) into a Git repository of its own on the branch it reconciles, and
rewrites ``<path>/flux-system/gotk-sync.yaml`` so the GitRepository points at that local
repository: the cluster then follows commits made there, exactly as it would follow a
remote after bootstrap.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gitmoor.controllers.run import bootstrap_objects
from gitmoor.errors import Location, SourceError
from gitmoor.manifests import dump_all

SYNC_FILE = "flux-system/gotk-sync.yaml"
_IDENTITY = ("-c", "user.name=gitmoor", "-c", "user.email=gitmoor@localhost")


def git(repository: Path, *argv: str) -> str:
    """Run ``git`` in ``repository`` with a fixed identity; its stdout."""
    done = subprocess.run(
        ["git", "-C", str(repository), *_IDENTITY, *argv],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SourceError(
            f"git {' '.join(argv)} failed: {done.stderr.strip()}", Location(file=str(repository))
        )
    return done.stdout


def local_repository(source: Path, target: Path, *, branch: str, path: str) -> str:
    """The ``file://`` URL of a Git repository at ``target`` holding ``source`` on
    ``branch``, made on first use; an existing repository is kept as it is (it holds the
    user's commits)."""
    url = target.resolve().as_uri()
    if (target / ".git").is_dir():
        return url
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".git"))
    sync = target / path.removeprefix("./").strip("/") / SYNC_FILE
    if sync.parent.is_dir():
        header = "# Written by gitmoor up, as flux bootstrap writes it: this repository, here.\n"
        objects = bootstrap_objects(url, branch=branch, path=path)[1:]
        sync.write_text(header + dump_all(objects))
    git(target, "init", "-q", "-b", branch)
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", f"bootstrap from {source.name}")
    return url
