"""The artifact store: source trees kept on disk, addressed by their content.

Layout under the store's root::

    artifacts/sha256:<hex>/   the files of one artifact (never modified once written)
    git/<sha256 of url>/      a bare mirror of one Git remote, fetched into incrementally
    git/<sha256 of url>.lock  held while that mirror is fetched into or read from
    index.json                the last artifact recorded for each source key
    index.lock                held while the index or the artifacts directory changes

The digest of an artifact is ``sha256:<hex>``, the SHA-256 of its files taken in order
of their paths (compared as UTF-8 bytes), each file contributing::

    <path> NUL <mode> NUL <size> NUL <content>

where ``path`` is relative with ``/`` separators, ``mode`` is the Git file mode in octal
(``100644``, or ``100755`` for an executable) and ``size`` is the content's length in
decimal. The same files always give the same digest, whatever commit they came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from gitmoor.errors import SourceError
from gitmoor.locks import locked_file

EXECUTABLE = 0o100755
REGULAR = 0o100644

_INDEX_VERSION = 1


@dataclass(frozen=True)
class Artifact:
    """A source tree stored on disk.

    ``fetched`` is False when the call returned what an earlier call had recorded
    without touching the remote's mirror or the stored files.
    """

    revision: str
    digest: str
    path: Path
    fetched: bool


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    mode: int
    data: bytes


@dataclass(frozen=True)
class Recorded:
    """What the index holds for one source: the remote state seen and what it gave."""

    tip: str
    revision: str
    digest: str


def digest_files(files: Sequence[ArtifactFile]) -> str:
    """The digest of an artifact made of ``files`` (see the module's docstring)."""
    sha = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.path.encode()):
        sha.update(f"{file.path}\0{file.mode:o}\0{len(file.data)}\0".encode())
        sha.update(file.data)
    return f"sha256:{sha.hexdigest()}"


class ArtifactStore:
    """Artifacts, Git mirrors and the index of what each source last produced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._artifacts = root / "artifacts"
        self._mirrors = root / "git"
        self._index = root / "index.json"

    def artifact_path(self, digest: str) -> Path:
        return self._artifacts / digest

    def mirror_path(self, url: str) -> Path:
        return self._mirrors / hashlib.sha256(url.encode()).hexdigest()

    @contextmanager
    def mirror_lock(self, url: str) -> Iterator[Path]:
        """Hold the mirror of ``url`` for this process; yields the mirror's path."""
        path = self.mirror_path(url)
        with locked_file(path.with_name(path.name + ".lock")):
            yield path

    def recorded(self, key: str) -> Recorded | None:
        """The last artifact recorded for ``key``, if it is still on disk."""
        entry = self._read_index().get(key)
        if entry is None or not self.artifact_path(entry.digest).is_dir():
            return None
        return entry

    def save(self, key: str, tip: str, revision: str, files: Sequence[ArtifactFile]) -> Artifact:
        """Store ``files`` (unless an artifact with the same content exists) and record them."""
        digest = digest_files(files)
        target = self.artifact_path(digest)
        with locked_file(self.root / "index.lock"):
            if not target.is_dir():
                self._write_tree(target, files)
            index = self._read_index()
            index[key] = Recorded(tip=tip, revision=revision, digest=digest)
            self._write_index(index)
        return Artifact(revision=revision, digest=digest, path=target, fetched=True)

    def prune(self) -> list[Path]:
        """Remove the artifacts no source records any more; returns what was removed."""
        removed: list[Path] = []
        with locked_file(self.root / "index.lock"):
            kept = {entry.digest for entry in self._read_index().values()}
            if not self._artifacts.is_dir():
                return removed
            for path in sorted(self._artifacts.iterdir()):
                if path.name not in kept:
                    shutil.rmtree(path)
                    removed.append(path)
        return removed

    def _write_tree(self, target: Path, files: Sequence[ArtifactFile]) -> None:
        self._artifacts.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed into place so a reader never sees half an artifact.
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self._artifacts))
        try:
            for file in files:
                path = staging / file.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(file.data)
                path.chmod(0o755 if file.mode == EXECUTABLE else 0o644)
            staging.chmod(0o755)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _read_index(self) -> dict[str, Recorded]:
        try:
            document = json.loads(self._index.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise SourceError(f"artifact index {self._index} is unreadable: {err}") from err
        try:
            if document["version"] != _INDEX_VERSION:
                raise ValueError(f"version {document['version']!r}")
            return {key: Recorded(**entry) for key, entry in document["sources"].items()}
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise SourceError(f"artifact index {self._index} has an unknown format: {err}") from err

    def _write_index(self, index: dict[str, Recorded]) -> None:
        document = {
            "version": _INDEX_VERSION,
            "sources": {key: asdict(entry) for key, entry in sorted(index.items())},
        }
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self._index.with_name(self._index.name + ".tmp")
        staging.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(staging, self._index)
