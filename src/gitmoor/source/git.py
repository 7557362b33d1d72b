"""Fetching Git repositories the way Flux's source-controller does.

``fetch_git(url, ref, store=..., auth=..., ignore=...)`` resolves ``ref`` on the remote,
fetches what is missing into a bare mirror kept in the artifact store, and stores the
commit's tree, filtered by Flux's exclusion rules (see ``gitmoor.source.ignore``), as a
content-addressed artifact (see ``gitmoor.source.artifacts``).

References follow ``GitRepository.spec.ref``: ``commit`` wins over ``name``, which wins
over ``semver``, then ``tag``, then ``branch``; with none set the branch is ``master``.
A commit may come with a branch, which must then contain it. Revisions are written as
Flux writes them: ``<branch>@sha1:<hex>``, ``<tag>@sha1:<hex>`` (also for a semver
range, naming the tag chosen), ``<ref name>@sha1:<hex>``, or ``sha1:<hex>`` for a bare
commit.

A poll whose reference has not moved since the last call with the same URL, reference
and ignore rules lists the remote's references and returns the recorded artifact
without fetching or writing anything (``Artifact.fetched`` is False). A commit already
recorded needs no remote call at all.

Transports are libgit2's, through pygit2: local paths, ``file://``, ``http(s)://``
(``username``/``password`` or ``bearerToken``; a ``ca.crt`` is trusted besides the
system's CAs) and ``ssh://`` (``identity`` and ``known_hosts``; the server's host key
must be listed in ``known_hosts``, in plain, ``[host]:port`` or hashed form).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import hashlib
import hmac
import ipaddress
import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import pygit2
import semver
from pygit2.enums import CredentialType, FetchPrune, FileMode, RepositoryOpenFlag

from gitmoor.errors import Location, SourceError
from gitmoor.source.artifacts import Artifact, ArtifactFile, ArtifactStore
from gitmoor.source.credentials import secret_text
from gitmoor.source.ignore import IGNORE_FILE, IgnoreRules
from gitmoor.source.versions import SemverRange, parse_version

__all__ = [
    "DEFAULT_BRANCH",
    "Artifact",
    "ArtifactStore",
    "GitAuth",
    "GitRef",
    "fetch_git",
]

DEFAULT_BRANCH = "master"

_HEADS = "refs/heads/"
_TAGS = "refs/tags/"


@dataclass(frozen=True, repr=False)
class GitAuth:
    """Credentials for a Git remote, as a Flux Git Secret holds them.

    For SSH, ``password`` is the passphrase of ``identity``. ``ca_file`` is the PEM of a
    CA to trust for HTTPS besides the system's.
    """

    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    identity: bytes | None = None
    known_hosts: bytes | None = None
    identity_pub: bytes | None = None
    ca_file: bytes | None = None

    @classmethod
    def from_secret_data(cls, data: Mapping[str, bytes]) -> GitAuth:
        """Read the keys of a Flux Git Secret's ``data`` (values already base64-decoded)."""
        return cls(
            username=secret_text(data, "username"),
            password=secret_text(data, "password"),
            bearer_token=secret_text(data, "bearerToken"),
            identity=data.get("identity"),
            known_hosts=data.get("known_hosts"),
            identity_pub=data.get("identity.pub"),
            ca_file=data.get("ca.crt", data.get("caFile")),
        )

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'<set>' if value is not None else None}" for name, value in vars(self).items()
        )
        return f"GitAuth({shown})"

    def _secrets(self) -> list[str]:
        return [s for s in (self.password, self.bearer_token) if s]


@dataclass(frozen=True)
class GitRef:
    """``GitRepository.spec.ref``."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None
    name: str | None = None

    def effective(self) -> GitRef:
        """Only the fields Flux reads, given their precedence."""
        if self.commit:
            return GitRef(commit=self.commit.lower(), branch=self.branch or None)
        if self.name:
            return GitRef(name=self.name)
        if self.semver:
            return GitRef(semver=self.semver)
        if self.tag:
            return GitRef(tag=self.tag)
        return GitRef(branch=self.branch or DEFAULT_BRANCH)

    def __str__(self) -> str:
        ref = self.effective()
        if ref.commit:
            on = f" on branch '{ref.branch}'" if ref.branch else ""
            return f"commit '{ref.commit}'{on}"
        if ref.name:
            return f"reference '{ref.name}'"
        if ref.semver:
            return f"semver range '{ref.semver}'"
        if ref.tag:
            return f"tag '{ref.tag}'"
        return f"branch '{ref.branch}'"

    @property
    def field(self) -> str:
        """The ``spec.ref`` field that decides this reference."""
        ref = self.effective()
        for name in ("commit", "name", "semver", "tag"):
            if getattr(ref, name):
                return f"spec.ref.{name}"
        return "spec.ref.branch"


def fetch_git(
    url: str,
    ref: GitRef,
    *,
    store: ArtifactStore,
    auth: GitAuth | None = None,
    ignore: str | None = None,
) -> Artifact:
    """The artifact of ``ref`` at ``url``, fetched or found unchanged (see the module doc)."""
    remote = _RemoteURL.parse(url)
    auth = auth or GitAuth()
    ref = ref.effective()
    if remote.scheme == "ssh" and not auth.known_hosts:
        raise SourceError(
            f"{remote.safe}: SSH needs the server's host key; the Secret has no known_hosts",
            Location(field="spec.secretRef"),
        )
    if remote.scheme == "file" and not Path(remote.url.removeprefix("file://")).is_dir():
        raise SourceError(f"{remote.safe}: no such repository", Location(field="spec.url"))
    key = _index_key(remote.url, ref, ignore)
    recorded = store.recorded(key)
    if ref.commit and recorded is not None:
        return Artifact(
            recorded.revision, recorded.digest, store.artifact_path(recorded.digest), False
        )
    with store.mirror_lock(remote.url) as mirror_path:
        session = _Session(_open_mirror(mirror_path), remote, auth, ref)
        if ref.commit:
            commit = session.commit(ref.commit, ref.branch)
            tip = str(commit.id)
            label = ref.branch
        else:
            refname, oid = session.resolve()
            tip = f"{refname} {oid}"
            if recorded is not None and recorded.tip == tip:
                path = store.artifact_path(recorded.digest)
                return Artifact(recorded.revision, recorded.digest, path, False)
            commit = session.commit_at(refname, oid)
            label = refname if ref.name else refname.removeprefix(_HEADS).removeprefix(_TAGS)
        files = _tree_files(session.repo, commit, ignore)
    return store.save(key, tip, _revision(label, commit.id), files)


def _revision(label: str | None, oid: pygit2.Oid) -> str:
    digest = f"sha1:{oid}"
    return f"{label}@{digest}" if label else digest


def _index_key(url: str, ref: GitRef, ignore: str | None) -> str:
    identity = json.dumps({"url": url, "ref": asdict(ref), "ignore": ignore}, sort_keys=True)
    return "git:" + hashlib.sha256(identity.encode()).hexdigest()


def _open_mirror(path: Path) -> pygit2.Repository:
    try:
        # NO_SEARCH: a missing mirror must not open a repository around the store.
        return pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        # Nothing there yet, or what a crash left behind half-initialised.
        shutil.rmtree(path, ignore_errors=True)
        return pygit2.init_repository(str(path), bare=True)


# --- the files of a commit ----------------------------------------------------------


def _tree_files(
    repo: pygit2.Repository, commit: pygit2.Commit, ignore: str | None
) -> list[ArtifactFile]:
    blobs = dict(_blobs(repo, commit.tree, ""))
    ignore_files = {
        path: _blob(repo, oid).data.decode(errors="replace")
        for path, (_, oid) in blobs.items()
        if path.rsplit("/", 1)[-1] == IGNORE_FILE
    }
    rules = IgnoreRules.for_tree(ignore_files, ignore)
    return [
        ArtifactFile(path, mode, _blob(repo, oid).data)
        for path, (mode, oid) in blobs.items()
        if not rules.excludes(path)
    ]


def _blobs(
    repo: pygit2.Repository, tree: pygit2.Tree, prefix: str
) -> Iterator[tuple[str, tuple[int, pygit2.Oid]]]:
    for entry in tree:
        name = entry.name
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise SourceError(f"the tree has an entry with an unsafe name: {name!r}")
        path = prefix + name
        if entry.filemode == FileMode.TREE:
            subtree = repo[entry.id]
            assert isinstance(subtree, pygit2.Tree)
            yield from _blobs(repo, subtree, path + "/")
        elif entry.filemode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE):
            yield path, (int(entry.filemode), entry.id)
        # Symbolic links and submodules stay out, as Flux's archiver leaves them out.


def _blob(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Blob:
    blob = repo[oid]
    assert isinstance(blob, pygit2.Blob)
    return blob


# --- talking to the remote ------------------------------------------------------------


@dataclass(frozen=True)
class _RemoteURL:
    url: str
    """What libgit2 is given."""
    safe: str
    """The URL without credentials, for messages."""
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> _RemoteURL:
        def bad(why: str) -> SourceError:
            return SourceError(f"URL {_without_userinfo(url)!r} {why}", Location(field="spec.url"))

        if not url.strip():
            raise bad("is empty")
        if "://" not in url:
            if re.match(r"^[\w.-]+@[\w.-]+:", url):
                raise bad("uses the scp-like syntax; write it as ssh://user@host/path")
            path = str(Path(url).absolute())
            return cls(url=path, safe=path, scheme="file", host="", port=0)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("file", "http", "https", "ssh"):
            raise bad(f"has the scheme {scheme!r}; use https://, http://, ssh:// or file://")
        if scheme == "file":
            return cls(url=url, safe=url, scheme=scheme, host="", port=0)
        try:
            port = parts.port
        except ValueError:
            raise bad("has an invalid port") from None
        if not parts.hostname:
            raise bad("has no host")
        if scheme == "ssh":
            default_port = 22
            safe = url.replace(f":{parts.password}@", "@") if parts.password else url
        else:
            default_port = 443 if scheme == "https" else 80
            safe = _without_userinfo(url)
        return cls(
            url=url, safe=safe, scheme=scheme, host=parts.hostname, port=port or default_port
        )


def _without_userinfo(url: str) -> str:
    return re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@]*@", r"\1", url)


class _Session:
    """One fetch_git call's work on one mirror."""

    def __init__(
        self, repo: pygit2.Repository, url: _RemoteURL, auth: GitAuth, ref: GitRef
    ) -> None:
        self.repo = repo
        self._url = url
        self._auth = auth
        self._ref = ref
        self._remote: pygit2.Remote | None = None

    def resolve(self) -> tuple[str, pygit2.Oid]:
        """The reference ``ref`` names on the remote, and the object it points to."""
        heads = self._heads()
        ref = self._ref
        if ref.semver:
            return self._newest_tag(heads, ref.semver)
        if ref.name:
            refname = ref.name
        elif ref.tag:
            refname = _TAGS + ref.tag
        else:
            refname = _HEADS + (ref.branch or DEFAULT_BRANCH)
        if refname not in heads:
            raise self._error(f"{ref} does not exist")
        return refname, heads[refname]

    def commit_at(self, refname: str, oid: pygit2.Oid) -> pygit2.Commit:
        """The commit ``refname`` points to (through annotated tags), fetched if missing."""
        if oid not in self.repo:
            self._fetch([f"+{refname}:{refname}"])
        return self._peel(oid, refname)

    def commit(self, sha: str, branch: str | None) -> pygit2.Commit:
        """Commit ``sha``, which must be on ``branch`` when one is given."""
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise self._error(f"commit '{sha}' is not a full commit hash")
        if branch:
            refname = _HEADS + branch
            if not self._on_branch(sha, refname):
                heads = self._heads()
                if refname not in heads:
                    raise self._error(f"branch '{branch}' does not exist")
                self.commit_at(refname, heads[refname])
                if not self._on_branch(sha, refname):
                    raise self._error(f"commit '{sha}' is not on branch '{branch}'")
        elif sha not in self.repo:
            self._fetch([f"+{_HEADS}*:{_HEADS}*", f"+{_TAGS}*:{_TAGS}*"])
            if sha not in self.repo:
                self._fetch_unadvertised(sha)
        if sha not in self.repo:
            raise self._error(f"commit '{sha}' does not exist")
        return self._peel(pygit2.Oid(hex=sha), sha)

    def _on_branch(self, sha: str, refname: str) -> bool:
        tip = self.repo.references.get(refname)
        if tip is None or sha not in self.repo:
            return False
        oid = pygit2.Oid(hex=sha)
        return bool(tip.target == oid or self.repo.descendant_of(tip.target, oid))

    def _newest_tag(self, heads: Mapping[str, pygit2.Oid], text: str) -> tuple[str, pygit2.Oid]:
        try:
            wanted = SemverRange.parse(text)
        except ValueError as err:
            raise self._error(f"semver range '{text}' is invalid: {err}") from None
        matching: list[tuple[semver.Version, str]] = []
        for refname in heads:
            if refname.startswith(_TAGS):
                version = parse_version(refname.removeprefix(_TAGS))
                if version is not None and wanted.allows(version):
                    matching.append((version, refname))
        if not matching:
            raise self._error(f"no tag matches semver range '{text}'")
        newest = max(version for version, _ in matching)
        ties = [refname for version, refname in matching if version.compare(newest) == 0]
        if len(ties) > 1:
            # Versions differing only in build metadata: the latest commit wins, as in Flux.
            for refname in ties:
                self.commit_at(refname, heads[refname])
            ties.sort(key=lambda r: self._peel(heads[r], r).commit_time)
        return ties[-1], heads[ties[-1]]

    def _peel(self, oid: pygit2.Oid, what: str) -> pygit2.Commit:
        target = self.repo.get(oid)
        if target is None:
            raise self._error(f"the remote did not send {what} ({oid})")
        try:
            commit = target.peel(pygit2.Commit)
        except (pygit2.GitError, ValueError):
            raise self._error(f"{what} does not point to a commit") from None
        assert isinstance(commit, pygit2.Commit)
        return commit

    def _connected(self) -> pygit2.Remote:
        if self._remote is None:
            self._remote = self.repo.remotes.create_anonymous(self._url.url)
        return self._remote

    def _heads(self) -> dict[str, pygit2.Oid]:
        with self._transport_errors("cannot list the references of"):
            advertised = self._connected().list_heads(callbacks=self._callbacks())
        return {
            head.name: head.oid
            for head in advertised
            if head.name is not None and not head.name.endswith("^{}")
        }

    def _fetch(self, refspecs: list[str]) -> None:
        with self._transport_errors("cannot fetch from"):
            self._connected().fetch(
                refspecs, callbacks=self._callbacks(), prune=FetchPrune.NO_PRUNE
            )

    def _fetch_unadvertised(self, sha: str) -> None:
        """Ask for a commit no reference points to; servers may refuse, which is no error."""
        with suppress(SourceError):
            self._fetch([sha])

    def _callbacks(self) -> _Callbacks:
        return _Callbacks(self._url, self._auth)

    def _error(self, what: str) -> SourceError:
        return SourceError(f"{self._url.safe}: {what}", Location(field=self._ref.field))

    @contextmanager
    def _transport_errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except (pygit2.GitError, OSError) as err:
            message = str(err).strip().replace(self._url.url, self._url.safe)
            for secret in self._auth._secrets():
                message = message.replace(secret, "***")
            # Not chained: libgit2's own text may carry what was just redacted.
            raise SourceError(
                f"{doing} {self._url.safe} for {self._ref}: {message}",
                Location(field="spec.url"),
            ) from None


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials, host key and certificate checks for one connection."""

    def __init__(self, url: _RemoteURL, auth: GitAuth) -> None:
        super().__init__()
        self._url = url
        self._auth = auth
        self._offered = False

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.Username | pygit2.UserPass | pygit2.Keypair:
        auth = self._auth
        user = username_from_url or auth.username
        if allowed_types & CredentialType.USERNAME:
            return pygit2.Username(user or "git")
        if self._offered:
            raise self._auth_error("the server refused the credentials")
        self._offered = True
        if allowed_types & (CredentialType.SSH_MEMORY | CredentialType.SSH_KEY) and auth.identity:
            public = auth.identity_pub.decode() if auth.identity_pub else None
            return pygit2.KeypairFromMemory(
                user or "git", public, auth.identity.decode(), auth.password or ""
            )
        if allowed_types & CredentialType.USERPASS_PLAINTEXT and auth.username is not None:
            return pygit2.UserPass(auth.username, auth.password or "")
        if auth.bearer_token:
            raise self._auth_error("the server refused the bearer token")
        raise self._auth_error("the server asks for credentials the Secret does not have")

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        presented = _presented_certificate()
        if isinstance(presented, _HostKey):
            _check_host_key(self._auth.known_hosts or b"", self._url, presented.blob)
            return True
        if isinstance(presented, _TLSCertificate):
            if valid:
                return True
            if self._auth.ca_file and _signed_by(presented.der, self._auth.ca_file, self._url.host):
                return True
            raise SourceError(
                f"{self._url.safe}: the server's TLS certificate is not trusted"
                + ("" if self._auth.ca_file else " (a private CA goes in the Secret's ca.crt)"),
                Location(field="spec.secretRef"),
            )
        raise SourceError(f"{self._url.safe}: cannot read the certificate the server presented")

    def custom_headers(self) -> list[str] | None:
        if self._auth.bearer_token and self._url.scheme in ("http", "https"):
            return [f"Authorization: Bearer {self._auth.bearer_token}"]
        return None

    def _auth_error(self, why: str) -> SourceError:
        return SourceError(
            f"{self._url.safe}: authentication failed: {why}", Location(field="spec.secretRef")
        )


# --- what the server presented ----------------------------------------------------------
#
# pygit2 hands certificate_check None instead of the certificate, so the libgit2 struct
# is read from the frame of pygit2's C callback, which holds it as ``cert_i``. The
# struct layouts are libgit2's (include/git2/cert.h); pygit2's own declaration stops
# before the raw host key.


class _GitCert(ctypes.Structure):
    _fields_ = [("cert_type", ctypes.c_int)]


class _GitCertHostkey(ctypes.Structure):
    _fields_ = [
        ("parent", _GitCert),
        ("type", ctypes.c_int),
        ("hash_md5", ctypes.c_ubyte * 16),
        ("hash_sha1", ctypes.c_ubyte * 20),
        ("hash_sha256", ctypes.c_ubyte * 32),
        ("raw_type", ctypes.c_int),
        ("hostkey", ctypes.c_void_p),
        ("hostkey_len", ctypes.c_size_t),
    ]


class _GitCertX509(ctypes.Structure):
    _fields_ = [("parent", _GitCert), ("data", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_GIT_CERT_X509 = 1
_GIT_CERT_HOSTKEY_LIBSSH2 = 2
_GIT_CERT_SSH_RAW = 1 << 3


@dataclass(frozen=True)
class _HostKey:
    blob: bytes


@dataclass(frozen=True)
class _TLSCertificate:
    der: bytes


def _presented_certificate() -> _HostKey | _TLSCertificate | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != "_certificate_check_cb":
        frame = frame.f_back
    if frame is None or "cert_i" not in frame.f_locals:
        return None
    cert: Any = frame.f_locals["cert_i"]
    address = int(pygit2.ffi.cast("uintptr_t", cert))
    kind = _GitCert.from_address(address).cert_type
    if kind == _GIT_CERT_HOSTKEY_LIBSSH2:
        hostkey = _GitCertHostkey.from_address(address)
        if not hostkey.type & _GIT_CERT_SSH_RAW or not hostkey.hostkey:
            return None
        return _HostKey(ctypes.string_at(hostkey.hostkey, hostkey.hostkey_len))
    if kind == _GIT_CERT_X509:
        x509 = _GitCertX509.from_address(address)
        return _TLSCertificate(ctypes.string_at(x509.data, x509.len)) if x509.data else None
    return None


def _signed_by(der: bytes, ca_pem: bytes, host: str) -> bool:
    """Whether the leaf certificate ``der`` chains to ``ca_pem`` and names ``host``."""
    try:
        ipaddress.ip_address(host)
        name_check = "-verify_ip"
    except ValueError:
        name_check = "-verify_hostname"
    with tempfile.TemporaryDirectory() as tmp:
        ca, leaf = Path(tmp, "ca.crt"), Path(tmp, "leaf.crt")
        ca.write_bytes(ca_pem)
        leaf.write_text(ssl.DER_cert_to_PEM_cert(der))
        command = ["openssl", "verify", "-CAfile", str(ca), "-purpose", "sslserver"]
        try:
            done = subprocess.run(
                [*command, name_check, host, str(leaf)], capture_output=True, check=False
            )
        except FileNotFoundError:
            raise SourceError(
                "checking a TLS certificate against ca.crt needs the openssl command"
            ) from None
    return done.returncode == 0


# --- known_hosts ------------------------------------------------------------------------


def _check_host_key(known_hosts: bytes, url: _RemoteURL, presented: bytes) -> None:
    """Return if ``known_hosts`` lists ``presented`` for the URL's host; raise otherwise."""
    name = url.host if url.port == 22 else f"[{url.host}]:{url.port}"
    listed: list[bytes] = []
    for line in known_hosts.decode(errors="replace").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3 or marker == "@cert-authority" or not _host_listed(fields[0], name):
            continue
        try:
            key = base64.b64decode(fields[2], validate=True)
        except binascii.Error:
            continue
        if marker == "@revoked":
            if key == presented:
                raise _host_key_error(
                    url, f"{name} presented a revoked host key {_fingerprint(presented)}"
                )
        elif marker is None:
            listed.append(key)
    if presented in listed:
        return
    if listed:
        raise _host_key_error(
            url,
            f"{name} presented the host key {_fingerprint(presented)}, which known_hosts "
            f"does not list for it (it lists {', '.join(_fingerprint(k) for k in listed)})",
        )
    raise _host_key_error(url, f"known_hosts has no key for {name}")


def _host_key_error(url: _RemoteURL, why: str) -> SourceError:
    return SourceError(
        f"{url.safe}: host key check failed: {why}", Location(field="spec.secretRef")
    )


def _host_listed(patterns: str, name: str) -> bool:
    listed = False
    for pattern in patterns.split(","):
        if pattern.startswith("|1|"):
            listed = listed or _hashed_name_is(pattern, name)
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").lower()
        if pattern.startswith("[") and pattern.endswith("]:22"):
            pattern = pattern[1:-4]
        glob = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        if re.fullmatch(glob, name.lower()):
            if negated:
                return False
            listed = True
    return listed


def _hashed_name_is(pattern: str, name: str) -> bool:
    try:
        _, _, salt, digest = pattern.split("|")
        expected = base64.b64decode(digest, validate=True)
        mac = hmac.new(base64.b64decode(salt, validate=True), name.encode(), hashlib.sha1)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(mac.digest(), expected)


def _fingerprint(key: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")
    kind = key[4 : 4 + int.from_bytes(key[:4], "big")].decode(errors="replace")
    return f"{kind} SHA256:{digest}"
