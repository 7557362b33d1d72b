"""fetch_git against real repositories: on disk, over file://, SSH and HTTPS."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gitmoor.errors import SourceError
from gitmoor.source.git import Artifact, ArtifactStore, GitAuth, GitRef, fetch_git

if TYPE_CHECKING:
    from git_fixtures import HttpsServer, Origin, SshServer

pytest_plugins = ["git_fixtures"]
pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def files_in(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its inode, modification time and size."""
    return {
        str(path): (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        for path in [root, *root.rglob("*")]
        for stat in [path.stat()]
    }


def test_fetch_a_branch_from_a_path_and_a_file_url(origin: Origin, store: ArtifactStore) -> None:
    for url in (str(origin.bare), f"file://{origin.bare}"):
        artifact = fetch_git(url, GitRef(branch="main"), store=store)

        assert artifact.revision == f"main@sha1:{origin.sha('main')}"
        assert artifact.digest.startswith("sha256:")
        assert artifact.path == store.root / "artifacts" / artifact.digest
        assert artifact.fetched
        assert files_in(artifact.path)["apps/app.yaml"] == "version: 2.1.0-rc.1\n"


@pytest.mark.parametrize(
    ("ref", "label", "rev"),
    [
        (GitRef(), "master", "master"),
        (GitRef(branch="production"), "production", "production"),
        (GitRef(tag="v1.0.0"), "v1.0.0", "v1.0.0"),
        (GitRef(tag="v1.1.0"), "v1.1.0", "v1.1.0"),
        (GitRef(semver=">=1.0.0 <2.0.0"), "v1.1.0", "v1.1.0"),
        (GitRef(semver="~1.0"), "v1.0.0", "v1.0.0"),
        (GitRef(semver="^1.0"), "v1.1.0", "v1.1.0"),
        (GitRef(semver="1.0.x"), "v1.0.0", "v1.0.0"),
        (GitRef(semver="*"), "v2.0.0", "v2.0.0"),
        (GitRef(semver=">=2.1.0-0"), "v2.1.0-rc.1", "v2.1.0-rc.1"),
        (GitRef(name="refs/pull/1/head"), "refs/pull/1/head", "refs/pull/1/head"),
        (GitRef(name="refs/tags/v1.0.0"), "refs/tags/v1.0.0", "v1.0.0"),
    ],
    ids=str,
)
def test_each_kind_of_reference(
    origin: Origin, store: ArtifactStore, ref: GitRef, label: str, rev: str
) -> None:
    artifact = fetch_git(str(origin.bare), ref, store=store)

    assert artifact.revision == f"{label}@sha1:{origin.sha(rev)}"
    files = files_in(artifact.path)
    assert files["apps/app.yaml"] == origin.show(rev, "apps/app.yaml")


def test_a_commit_alone_and_on_its_branch(origin: Origin, store: ArtifactStore) -> None:
    sha = origin.sha("production~1")

    alone = fetch_git(str(origin.bare), GitRef(commit=sha), store=store)
    on_branch = fetch_git(str(origin.bare), GitRef(commit=sha, branch="production"), store=store)

    assert alone.revision == f"sha1:{sha}"
    assert on_branch.revision == f"production@sha1:{sha}"
    assert alone.digest == on_branch.digest
    assert "apps/production.yaml" not in files_in(alone.path)


def test_a_commit_only_a_pull_request_ref_holds(origin: Origin, store: ArtifactStore) -> None:
    sha = origin.sha("refs/pull/1/head")

    artifact = fetch_git(str(origin.bare), GitRef(commit=sha.upper()), store=store)

    assert artifact.revision == f"sha1:{sha}"
    assert files_in(artifact.path)["apps/feature.yaml"] == "feature: 1\n"


@pytest.mark.parametrize(
    ("ref", "label"),
    [
        (GitRef(branch="production", tag="v1.0.0"), "v1.0.0"),
        (GitRef(tag="v1.0.0", semver="^2"), "v2.0.0"),
        (GitRef(semver="^2", name="refs/heads/production"), "refs/heads/production"),
    ],
    ids=str,
)
def test_reference_precedence(
    origin: Origin, store: ArtifactStore, ref: GitRef, label: str
) -> None:
    artifact = fetch_git(str(origin.bare), ref, store=store)

    assert artifact.revision.split("@")[0] == label


def test_commit_wins_over_everything(origin: Origin, store: ArtifactStore) -> None:
    sha = origin.sha("v1.0.0")
    ref = GitRef(branch="main", tag="v2.0.0", semver="*", name="refs/heads/main", commit=sha)

    artifact = fetch_git(str(origin.bare), ref, store=store)

    assert artifact.revision == f"main@sha1:{sha}"


@pytest.mark.parametrize(
    ("ref", "field", "says"),
    [
        (GitRef(branch="nope"), "spec.ref.branch", "branch 'nope' does not exist"),
        (GitRef(tag="v9.9.9"), "spec.ref.tag", "tag 'v9.9.9' does not exist"),
        (GitRef(semver=">=9"), "spec.ref.semver", "no tag matches semver range '>=9'"),
        (GitRef(semver="not a range"), "spec.ref.semver", "semver range 'not a range' is invalid"),
        (GitRef(name="refs/pull/9/head"), "spec.ref.name", "'refs/pull/9/head' does not exist"),
        (GitRef(commit="0" * 40), "spec.ref.commit", f"commit '{'0' * 40}' does not exist"),
        (GitRef(commit="abc123"), "spec.ref.commit", "is not a full commit hash"),
    ],
    ids=str,
)
def test_a_reference_that_does_not_exist(
    origin: Origin, store: ArtifactStore, ref: GitRef, field: str, says: str
) -> None:
    with pytest.raises(SourceError) as raised:
        fetch_git(str(origin.bare), ref, store=store)

    assert raised.value.location.field == field
    assert says in raised.value.message
    assert str(origin.bare) in raised.value.message


def test_a_commit_not_on_the_given_branch(origin: Origin, store: ArtifactStore) -> None:
    sha = origin.sha("production")

    with pytest.raises(SourceError, match="is not on branch 'main'") as raised:
        fetch_git(str(origin.bare), GitRef(commit=sha, branch="main"), store=store)

    assert raised.value.location.field == "spec.ref.commit"


def test_a_repository_that_does_not_exist(tmp_path: Path, store: ArtifactStore) -> None:
    with pytest.raises(SourceError, match="no such repository") as raised:
        fetch_git(str(tmp_path / "missing.git"), GitRef(), store=store)

    assert raised.value.location.field == "spec.url"


def test_default_exclusions_modes_and_symlinks(origin: Origin, store: ArtifactStore) -> None:
    artifact = fetch_git(str(origin.bare), GitRef(tag="v1.0.0"), store=store)

    assert sorted(files_in(artifact.path)) == ["README.md", "apps/app.yaml", "scripts/run.sh"]
    assert os.access(artifact.path / "scripts/run.sh", os.X_OK)
    assert not os.access(artifact.path / "README.md", os.X_OK)


def test_sourceignore_files_and_spec_ignore(fresh_origin: Origin, store: ArtifactStore) -> None:
    fresh_origin.commit(
        {
            ".sourceignore": "*.md\n!keep.md\n",
            "keep.md": "kept\n",
            "local.txt": "kept: the rule below is scoped to sub/\n",
            "sub/.sourceignore": "# only here\n/local.txt\n",
            "sub/local.txt": "excluded\n",
            "sub/deeper/local.txt": "kept: anchored rules do not reach down\n",
        },
        "ignore rules",
    )
    url = str(fresh_origin.bare)

    with_files = fetch_git(url, GitRef(branch="main"), store=store)
    with_spec = fetch_git(url, GitRef(branch="main"), store=store, ignore="/*\n!/sub\n")

    # A .sourceignore with patterns replaces the default exclusions, as in Flux.
    assert sorted(files_in(with_files.path)) == [
        ".github/workflows/ci.yaml",
        ".sourceignore",
        "apps/app.yaml",
        "clusters/.sops.yaml",
        "keep.md",
        "local.txt",
        "logo.png",
        "scripts/run.sh",
        "sub/.sourceignore",
        "sub/deeper/local.txt",
    ]
    # spec.ignore comes last: its "!/sub" overrules sub/.sourceignore's "/local.txt".
    assert sorted(files_in(with_spec.path)) == [
        "sub/.sourceignore",
        "sub/deeper/local.txt",
        "sub/local.txt",
    ]
    assert with_spec.digest != with_files.digest


def test_same_files_same_digest(origin: Origin, store: ArtifactStore) -> None:
    by_tag = fetch_git(str(origin.bare), GitRef(tag="v1.0.0"), store=store)
    by_branch = fetch_git(str(origin.bare), GitRef(branch="master"), store=store)
    elsewhere = fetch_git(
        str(origin.bare), GitRef(tag="v1.0.0"), store=ArtifactStore(store.root.parent / "other")
    )

    assert by_tag.digest == by_branch.digest == elsewhere.digest
    assert by_tag.path == by_branch.path


def test_a_poll_with_nothing_new_touches_nothing(origin: Origin, store: ArtifactStore) -> None:
    url = f"file://{origin.bare}"
    first = fetch_git(url, GitRef(branch="production"), store=store)
    mirror = store.mirror_path(url)
    before = snapshot(store.root)

    again = fetch_git(url, GitRef(branch="production"), store=store)

    assert first.fetched
    assert not again.fetched
    assert again == Artifact(first.revision, first.digest, first.path, fetched=False)
    assert mirror.is_dir()
    assert snapshot(store.root) == before


def test_a_recorded_commit_needs_no_remote(fresh_origin: Origin, store: ArtifactStore) -> None:
    url = str(fresh_origin.bare)
    ref = GitRef(commit=fresh_origin.sha("v1.1.0"))
    first = fetch_git(url, ref, store=store)
    fresh_origin.bare.rename(fresh_origin.bare.with_name("moved.git"))
    fresh_origin.bare.mkdir()  # an empty directory: nothing a fetch could use

    again = fetch_git(url, ref, store=store)

    assert not again.fetched
    assert again.path == first.path


def test_a_new_commit_is_fetched_into_the_same_mirror(
    fresh_origin: Origin, store: ArtifactStore
) -> None:
    url = f"file://{fresh_origin.bare}"
    first = fetch_git(url, GitRef(branch="main"), store=store)
    mirror = store.mirror_path(url)
    packs = mirror / "objects" / "pack"
    packs_before = snapshot(packs)
    mirror_inode = mirror.stat().st_ino

    sha = fresh_origin.commit({"apps/new.yaml": "new: true\n"}, "a new commit")
    second = fetch_git(url, GitRef(branch="main"), store=store)

    assert second.fetched
    assert second.revision == f"main@sha1:{sha}"
    assert files_in(second.path)["apps/new.yaml"] == "new: true\n"
    # Fetched into the same mirror: its first packs untouched, the new commit in a new one.
    assert mirror.stat().st_ino == mirror_inode
    packs_after = snapshot(packs)
    del packs_before[str(packs)], packs_after[str(packs)]
    assert packs_before.items() < packs_after.items()
    assert first.path.is_dir()
    assert store.prune() == [first.path]
    assert second.path.is_dir()


# --- SSH ------------------------------------------------------------------------------------


def ssh_auth(sshd: SshServer, known_hosts: bytes | None, key: Path | None = None) -> GitAuth:
    identity = (key or sshd.deploy_key).read_bytes()
    return GitAuth(identity=identity, known_hosts=known_hosts)


def test_fetch_over_ssh(origin: Origin, sshd: SshServer, store: ArtifactStore) -> None:
    auth = ssh_auth(sshd, sshd.known_hosts())

    artifact = fetch_git(sshd.url(origin.bare), GitRef(semver="^1"), store=store, auth=auth)
    again = fetch_git(sshd.url(origin.bare), GitRef(semver="^1"), store=store, auth=auth)

    assert artifact.revision == f"v1.1.0@sha1:{origin.sha('v1.1.0')}"
    assert files_in(artifact.path)["apps/app.yaml"] == "version: 1.1.0\n"
    assert not again.fetched


def test_fetch_over_ssh_with_hashed_known_hosts(
    origin: Origin, sshd: SshServer, store: ArtifactStore, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(sshd.known_hosts())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known_hosts)], check=True)
    hashed = known_hosts.read_bytes()
    assert hashed.startswith(b"|1|")

    artifact = fetch_git(
        sshd.url(origin.bare), GitRef(branch="main"), store=store, auth=ssh_auth(sshd, hashed)
    )

    assert artifact.revision == f"main@sha1:{origin.sha('main')}"


@pytest.mark.parametrize(
    ("known_hosts", "says"),
    [
        ("[127.0.0.1]:{port} {other_key}\n", "which known_hosts does not list"),
        ("[127.0.0.1]:{other_port} {key}\n", "known_hosts has no key for [127.0.0.1]:{port}"),
        ("127.0.0.1 {key}\n", "known_hosts has no key for [127.0.0.1]:{port}"),
        ("@revoked [127.0.0.1]:{port} {key}\n[127.0.0.1]:{port} {key}\n", "revoked host key"),
    ],
    ids=["other key", "other port", "default port", "revoked"],
)
def test_ssh_refuses_a_host_key_known_hosts_does_not_vouch_for(
    origin: Origin,
    sshd: SshServer,
    store: ArtifactStore,
    tmp_path: Path,
    known_hosts: str,
    says: str,
) -> None:
    other_key = " ".join(_other_host_key(tmp_path).read_text().split()[:2])
    values = {
        "port": sshd.port,
        "other_port": sshd.port + 1,
        "key": sshd.host_key_pub,
        "other_key": other_key,
    }

    with pytest.raises(SourceError) as raised:
        fetch_git(
            sshd.url(origin.bare),
            GitRef(branch="main"),
            store=store,
            auth=ssh_auth(sshd, known_hosts.format(**values).encode()),
        )

    assert "host key check failed" in raised.value.message
    assert says.format(**values) in raised.value.message
    assert raised.value.location.field == "spec.secretRef"
    assert not list((store.root / "artifacts").glob("*"))


def _other_host_key(tmp_path: Path) -> Path:
    """The public half of a fresh key no server uses."""
    path = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_name(path.name + ".pub")


def test_ssh_without_known_hosts_is_refused(
    origin: Origin, sshd: SshServer, store: ArtifactStore
) -> None:
    with pytest.raises(SourceError, match="no known_hosts") as raised:
        fetch_git(
            sshd.url(origin.bare), GitRef(), store=store, auth=ssh_auth(sshd, known_hosts=None)
        )

    assert raised.value.location.field == "spec.secretRef"


def test_ssh_with_a_key_the_server_does_not_accept(
    origin: Origin, sshd: SshServer, store: ArtifactStore
) -> None:
    auth = ssh_auth(sshd, sshd.known_hosts(), key=sshd.stranger_key)

    with pytest.raises(SourceError) as raised:
        fetch_git(sshd.url(origin.bare), GitRef(), store=store, auth=auth)

    assert "authentication failed" in raised.value.message
    assert sshd.url(origin.bare) in raised.value.message
    assert auth.identity is not None
    assert auth.identity.decode() not in str(raised.value)


# --- HTTPS ----------------------------------------------------------------------------------


def test_fetch_over_https_with_basic_auth_and_a_private_ca(
    origin: Origin, https_git: HttpsServer, store: ArtifactStore
) -> None:
    auth = GitAuth.from_secret_data(
        {
            "username": https_git.username.encode(),
            "password": https_git.password.encode(),
            "ca.crt": https_git.ca_file,
        }
    )

    artifact = fetch_git(https_git.url(origin.bare), GitRef(tag="v2.0.0"), store=store, auth=auth)

    assert artifact.revision == f"v2.0.0@sha1:{origin.sha('v2.0.0')}"
    assert files_in(artifact.path)["apps/app.yaml"] == "version: 2.0.0\n"


def test_fetch_over_https_with_a_bearer_token(
    origin: Origin, https_git: HttpsServer, store: ArtifactStore
) -> None:
    auth = GitAuth(bearer_token=https_git.bearer_token, ca_file=https_git.ca_file)

    artifact = fetch_git(https_git.url(origin.bare), GitRef(), store=store, auth=auth)

    assert artifact.revision == f"master@sha1:{origin.sha('master')}"


def test_https_with_a_wrong_password(
    origin: Origin, https_git: HttpsServer, store: ArtifactStore
) -> None:
    auth = GitAuth(username=https_git.username, password="wrong", ca_file=https_git.ca_file)

    with pytest.raises(SourceError, match="authentication failed") as raised:
        fetch_git(https_git.url(origin.bare), GitRef(), store=store, auth=auth)

    assert raised.value.location.field == "spec.secretRef"
    assert "wrong" not in str(raised.value)


def test_https_without_the_ca_is_refused(
    origin: Origin, https_git: HttpsServer, store: ArtifactStore
) -> None:
    auth = GitAuth(username=https_git.username, password=https_git.password)

    with pytest.raises(SourceError, match="TLS certificate is not trusted") as raised:
        fetch_git(https_git.url(origin.bare), GitRef(), store=store, auth=auth)

    assert https_git.password not in str(raised.value)


def test_credentials_in_the_url_stay_out_of_errors(store: ArtifactStore) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound and never listening: connections are refused
        port = unused.getsockname()[1]
        url = f"https://flux:url-secret@127.0.0.1:{port}/repo.git"

        with pytest.raises(SourceError) as raised:
            fetch_git(url, GitRef(), store=store, auth=GitAuth(bearer_token="token-secret"))

    assert f"https://127.0.0.1:{port}/repo.git" in str(raised.value)
    assert "url-secret" not in str(raised.value)
    assert "token-secret" not in str(raised.value)
    assert raised.value.__cause__ is None
