"""The Git source without a remote: credentials, references, ranges, URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmoor.errors import InputError, SourceError
from gitmoor.source.git import ArtifactStore, GitAuth, GitRef, fetch_git
from gitmoor.source.versions import SemverRange, parse_version


def test_auth_from_a_flux_secret() -> None:
    auth = GitAuth.from_secret_data(
        {
            "username": b"flux",
            "password": b"pw",
            "bearerToken": b"token",
            "identity": b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
            "identity.pub": b"ssh-ed25519 AAAA",
            "known_hosts": b"github.com ssh-ed25519 AAAA",
            "ca.crt": b"the CA",
            "caFile": b"the older key",
        }
    )

    assert auth == GitAuth(
        username="flux",
        password="pw",
        bearer_token="token",
        identity=b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
        known_hosts=b"github.com ssh-ed25519 AAAA",
        identity_pub=b"ssh-ed25519 AAAA",
        ca_file=b"the CA",
    )


def test_auth_reads_cafile_when_there_is_no_ca_crt() -> None:
    assert GitAuth.from_secret_data({"caFile": b"the CA"}).ca_file == b"the CA"


def test_auth_with_text_that_is_not_utf8() -> None:
    with pytest.raises(InputError) as raised:
        GitAuth.from_secret_data({"password": b"\xff\xfe"})

    assert raised.value.location.field == "data.password"
    assert "\xff" not in str(raised.value)


def test_auth_repr_shows_no_secret() -> None:
    auth = GitAuth(
        username="flux-user",
        password="pw-value",
        bearer_token="token-value",
        identity=b"key-value",
        known_hosts=b"hosts-value",
    )

    shown = repr(auth)

    for secret in ("flux-user", "pw-value", "token-value", "key-value", "hosts-value"):
        assert secret not in shown
    assert "password=<set>" in shown
    assert "ca_file=None" in shown


@pytest.mark.parametrize(
    ("ref", "effective", "field"),
    [
        (GitRef(), GitRef(branch="master"), "spec.ref.branch"),
        (GitRef(branch=""), GitRef(branch="master"), "spec.ref.branch"),
        (GitRef(branch="main", tag="v1"), GitRef(tag="v1"), "spec.ref.tag"),
        (GitRef(tag="v1", semver="^1"), GitRef(semver="^1"), "spec.ref.semver"),
        (GitRef(semver="^1", name="refs/x"), GitRef(name="refs/x"), "spec.ref.name"),
        (
            GitRef(branch="main", semver="^1", name="refs/x", commit="ABC"),
            GitRef(commit="abc", branch="main"),
            "spec.ref.commit",
        ),
    ],
    ids=str,
)
def test_reference_precedence(ref: GitRef, effective: GitRef, field: str) -> None:
    assert ref.effective() == effective
    assert ref.field == field


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.2.3", "1.2.3"),
        ("v1.2", "1.2.0"),
        ("v1", "1.0.0"),
        ("v1.0.0-rc.1", "1.0.0-rc.1"),
        ("1.0.0+build.5", "1.0.0+build.5"),
    ],
)
def test_tags_that_name_versions(tag: str, version: str) -> None:
    parsed = parse_version(tag)

    assert parsed is not None
    assert str(parsed) == version


@pytest.mark.parametrize("tag", ["latest", "release-1.0", "1.2.3.4", "V1.0.0", "1.0.0-01", ""])
def test_tags_that_do_not(tag: str) -> None:
    assert parse_version(tag) is None


@pytest.mark.parametrize(
    ("text", "version", "allowed"),
    [
        (">=1.0.0 <2.0.0", "1.5.0", True),
        (">=1.0.0 <2.0.0", "2.0.0", False),
        (">=1.0.0, <2.0.0", "1.0.0", True),
        (">= 1.0.0", "1.0.0", True),
        ("1.2.3", "1.2.3", True),
        ("=1.2.3", "1.2.4", False),
        ("!=1.2.3", "1.2.4", True),
        ("!=1.2.x", "1.2.9", False),
        ("!=1.2.x", "1.3.0", True),
        (">1.2", "1.2.9", False),
        (">1.2", "1.3.0", True),
        (">1", "1.9.0", False),
        ("<=1.2", "1.2.9", True),
        ("<=1.2", "1.3.0", False),
        ("<1.2.x", "1.1.9", True),
        ("<1.2.x", "1.2.0", False),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("~1.2", "1.2.0", True),
        ("~1", "1.9.0", True),
        ("~1", "2.0.0", False),
        ("~>1.2", "1.2.5", True),
        ("^1.2", "1.9.9", True),
        ("^1.2", "2.0.0", False),
        ("^1.2", "1.1.0", False),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.0.3", "0.0.3", True),
        ("^0.0.3", "0.0.4", False),
        ("1.2.x", "1.2.7", True),
        ("1.2.x", "1.3.0", False),
        ("1.*", "1.9.0", True),
        ("*", "9.9.9", True),
        ("*", "1.0.0-rc.1", False),
        ("x", "0.0.1", True),
        ("v1.x", "1.4.0", True),
        ("1.2 - 1.4.5", "1.4.5", True),
        ("1.2 - 1.4.5", "1.4.6", False),
        ("1.2 - 1.4.5", "1.1.9", False),
        ("^1 || ^3", "3.1.0", True),
        ("^1 || ^3", "2.1.0", False),
        (">=1.0.0-0 <1.1.0-0", "1.0.0-alpha", True),
        (">=1.0.0", "1.1.0-rc.1", False),
        (">=2.1.0-0", "2.1.0-rc.1", True),
        (">=1.0.0", "1.0.0+build.1", True),
    ],
)
def test_semver_ranges(text: str, version: str, allowed: bool) -> None:
    parsed = parse_version(version)
    assert parsed is not None

    assert SemverRange.parse(text).allows(parsed) is allowed


@pytest.mark.parametrize("text", ["", "not a range", ">=1.0.0 <", "1.2.3.4", "||", ">>1"])
def test_invalid_semver_ranges(text: str) -> None:
    with pytest.raises(ValueError, match="is not a version constraint"):
        SemverRange.parse(text)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "is empty"),
        ("git@github.com:org/repo.git", "scp-like syntax"),
        ("ftp://example.com/repo.git", "has the scheme 'ftp'"),
        ("https:///repo.git", "has no host"),
        ("ssh://git@example.com:notaport/repo.git", "has an invalid port"),
    ],
)
def test_urls_fetch_git_refuses_before_any_network(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(SourceError, match=says) as raised:
        fetch_git(url, GitRef(), store=ArtifactStore(tmp_path))

    assert raised.value.location.field == "spec.url"


def test_ssh_without_known_hosts_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no known_hosts") as raised:
        fetch_git(
            "ssh://git@example.com/repo.git",
            GitRef(),
            store=ArtifactStore(tmp_path),
            auth=GitAuth(identity=b"a key"),
        )

    assert raised.value.location.field == "spec.secretRef"
