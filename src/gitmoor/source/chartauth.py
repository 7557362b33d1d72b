"""Credentials for chart repositories and registries, read from Flux's Secrets.

A HelmRepository or OCIRepository names up to two Secrets: ``spec.secretRef`` with the
login (``username``, ``password``) and ``spec.certSecretRef`` with TLS material as a
``kubernetes.io/tls`` Secret holds it (``ca.crt``, ``tls.crt``, ``tls.key``). Older
repositories keep TLS in the ``secretRef`` Secret under ``caFile``, ``certFile`` and
``keyFile``; Flux still reads those when there is no ``certSecretRef``, and so does gitmoor.

Helm's library reads TLS material from files only, so :func:`tls_files` writes it to a
private temporary directory for the length of one call.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gitmoor.errors import InputError, Location
from gitmoor.source.credentials import secret_text

__all__ = ["NamedSecret", "RepoAuth", "read_repo_auth", "tls_files"]

# (the kubernetes.io/tls key, the older key Flux still reads)
_CA_KEYS = ("ca.crt", "caFile")
_CERT_KEYS = ("tls.crt", "certFile")
_KEY_KEYS = ("tls.key", "keyFile")


@dataclass(frozen=True, repr=False)
class RepoAuth:
    """A login and TLS material for one chart repository or registry.

    ``ca_pem``, when given, is the only CA trusted (as with Helm's ``--ca-file``);
    ``cert_pem`` and ``key_pem`` are a client certificate, always given together.
    """

    username: str | None = None
    password: str | None = None
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False

    @classmethod
    def from_secret_data(cls, data: Mapping[str, bytes]) -> RepoAuth:
        """Read the ``spec.secretRef`` Secret's ``data`` (already decoded): the login, and
        the TLS keys it may hold the older way."""
        login = cls(username=secret_text(data, "username"), password=secret_text(data, "password"))
        return login.with_tls(data)

    def with_tls(self, data: Mapping[str, bytes]) -> RepoAuth:
        """This login with the TLS material of ``data`` (the ``spec.certSecretRef`` Secret's,
        already decoded) in place of any it had. InputError names the key at fault."""
        ca, ca_key = _first(data, _CA_KEYS)
        cert, cert_key = _first(data, _CERT_KEYS)
        key, key_key = _first(data, _KEY_KEYS)
        if (cert is None) != (key is None):
            have, want = (cert_key, _KEY_KEYS) if cert is not None else (key_key, _CERT_KEYS)
            raise InputError(
                f"the Secret has {have} but no {want[0]} (nor {want[1]}): a client "
                "certificate needs both",
                Location(field=f"data.{want[0]}"),
            )
        if ca is not None:
            _check_certificates(ca, ca_key)
        if cert is not None and key is not None:
            _check_certificates(cert, cert_key)
            _check_private_key(key, key_key)
        return replace(self, ca_pem=ca, cert_pem=cert, key_pem=key)

    @property
    def has_login(self) -> bool:
        return self.username is not None or self.password is not None

    @property
    def has_tls(self) -> bool:
        return self.ca_pem is not None or self.cert_pem is not None

    def redact(self, text: str) -> str:
        """``text`` with the password and any ``user:password@`` in URLs masked."""
        text = re.sub(r"//[^/@\s]*:[^/@\s]*@", "//***@", text)
        return text.replace(self.password, "***") if self.password else text

    def __repr__(self) -> str:
        password = None if self.password is None else "<hidden>"
        return (
            f"RepoAuth(username={self.username!r}, password={password}, "
            f"ca={self.ca_pem is not None}, client_certificate={self.cert_pem is not None}, "
            f"insecure_skip_tls_verify={self.insecure_skip_tls_verify})"
        )


@contextmanager
def tls_files(auth: RepoAuth) -> Iterator[dict[str, str]]:
    """The ``ca_file``, ``cert_file`` and ``key_file`` options Helm's library takes, as
    files in a directory only this user can read, removed when the block ends; no
    options (and no files) without TLS material."""
    if not auth.has_tls:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="gitmoor-tls-") as scratch:
        options: dict[str, str] = {}
        for option, pem in (
            ("ca_file", auth.ca_pem),
            ("cert_file", auth.cert_pem),
            ("key_file", auth.key_pem),
        ):
            if pem is not None:
                path = Path(scratch) / f"{option}.pem"
                path.touch(mode=0o600)
                path.write_bytes(pem)
                options[option] = str(path)
        yield options


def _first(data: Mapping[str, bytes], keys: tuple[str, str]) -> tuple[bytes | None, str]:
    for key in keys:
        if data.get(key):
            return data[key], key
    return None, keys[0]


def _check_certificates(pem: bytes, key: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InputError(
            f"the Secret's {key} holds no PEM certificate", Location(field=f"data.{key}")
        ) from None


def _check_private_key(pem: bytes, key: str) -> None:
    try:
        serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        # Not chained, and the message quotes nothing: this is a private key.
        raise InputError(
            f"the Secret's {key} holds no unencrypted PEM private key",
            Location(field=f"data.{key}"),
        ) from None


NamedSecret = tuple[str, Mapping[str, bytes]]
"""A Secret's name and its decoded ``data``."""


def read_repo_auth(
    namespace: str, login: NamedSecret | None, tls: NamedSecret | None
) -> RepoAuth | None:
    """A repository's credentials from its Secrets, each given as (name, decoded data):
    ``login`` the ``spec.secretRef`` one, ``tls`` the ``spec.certSecretRef`` one, whose TLS
    material wins. None with neither. An InputError names the Secret and the key."""
    if login is None and tls is None:
        return None
    auth = RepoAuth()
    if login is not None:
        with _blaming(namespace, login[0]):
            auth = RepoAuth.from_secret_data(login[1])
    if tls is not None:
        with _blaming(namespace, tls[0]):
            auth = auth.with_tls(tls[1])
    return auth


@contextmanager
def _blaming(namespace: str, secret: str) -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        raise exc.at(object=f"Secret {namespace}/{secret}") from None
