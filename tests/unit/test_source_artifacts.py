"""The artifact store: content-addressed trees and the index of recorded artifacts."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from gitmoor.errors import SourceError
from gitmoor.source.artifacts import (
    EXECUTABLE,
    REGULAR,
    ArtifactFile,
    ArtifactStore,
    Recorded,
    digest_files,
)

FILES = [
    ArtifactFile("b/run.sh", EXECUTABLE, b"#!/bin/sh\n"),
    ArtifactFile("a.yaml", REGULAR, b"a: 1\n"),
]


def test_the_digest_follows_the_documented_layout() -> None:
    sha = hashlib.sha256()
    sha.update(b"a.yaml\x00100644\x005\x00a: 1\n")
    sha.update(b"b/run.sh\x00100755\x0010\x00#!/bin/sh\n")

    assert digest_files(FILES) == f"sha256:{sha.hexdigest()}"


def test_the_digest_ignores_the_order_files_come_in() -> None:
    assert digest_files(FILES) == digest_files(list(reversed(FILES)))


@pytest.mark.parametrize(
    "changed",
    [
        ArtifactFile("b/run.sh", REGULAR, b"#!/bin/sh\n"),
        ArtifactFile("b/run.sh", EXECUTABLE, b"#!/bin/bash\n"),
        ArtifactFile("c/run.sh", EXECUTABLE, b"#!/bin/sh\n"),
    ],
    ids=["mode", "content", "path"],
)
def test_the_digest_sees_every_change(changed: ArtifactFile) -> None:
    assert digest_files([FILES[1], changed]) != digest_files(FILES)


def test_save_writes_the_files_and_records_them(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    artifact = store.save("key", "refs/heads/main abc", "main@sha1:abc", FILES)

    assert artifact.path == tmp_path / "artifacts" / artifact.digest
    assert (artifact.path / "a.yaml").read_bytes() == b"a: 1\n"
    assert (artifact.path / "b/run.sh").stat().st_mode & 0o777 == 0o755
    assert (artifact.path / "a.yaml").stat().st_mode & 0o777 == 0o644
    assert store.recorded("key") == Recorded(
        "refs/heads/main abc", "main@sha1:abc", artifact.digest
    )
    assert ArtifactStore(tmp_path).recorded("key") == store.recorded("key")


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.save("one", "tip-1", "main@sha1:1", FILES)
    inode = first.path.stat().st_ino

    second = store.save("two", "tip-2", "v1@sha1:2", list(reversed(FILES)))

    assert second.path == first.path
    assert second.path.stat().st_ino == inode
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == [first.digest]


def test_an_artifact_removed_from_disk_is_no_longer_recorded(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    artifact = store.save("key", "tip", "main@sha1:1", FILES)
    shutil.rmtree(artifact.path)

    assert store.recorded("key") is None


def test_prune_removes_what_no_source_records(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    old = store.save("key", "tip-1", "main@sha1:1", FILES)
    new = store.save("key", "tip-2", "main@sha1:2", FILES[:1])
    kept = store.save("other", "tip-3", "v1@sha1:3", FILES[1:])

    assert store.prune() == [old.path]
    assert new.path.is_dir()
    assert kept.path.is_dir()
    assert store.prune() == []


def test_prune_on_an_empty_store(tmp_path: Path) -> None:
    assert ArtifactStore(tmp_path / "nothing").prune() == []


def test_mirrors_are_kept_per_url(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    with store.mirror_lock("https://example.com/a.git") as mirror:
        assert mirror.parent == tmp_path / "git"
    assert mirror == store.mirror_path("https://example.com/a.git")
    assert mirror != store.mirror_path("https://example.com/b.git")


@pytest.mark.parametrize("text", ["not json", '{"version": 99, "sources": {}}', '{"sources": 1}'])
def test_an_index_gitmoor_cannot_read(tmp_path: Path, text: str) -> None:
    (tmp_path / "index.json").write_text(text)

    with pytest.raises(SourceError, match="artifact index"):
        ArtifactStore(tmp_path).recorded("key")
