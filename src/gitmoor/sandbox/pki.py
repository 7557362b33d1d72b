"""The sandbox's TLS and credentials: a CA, a server certificate, a bearer token, a kubeconfig.

Layout of the directory ``ensure_pki`` manages (mode 0700)::

    ca.crt ca.key          the CA, created once and kept (10 years): kubeconfigs
                           written earlier stay valid across restarts and resets
    server.crt server.key  signed by the CA for 127.0.0.1, ::1 and localhost; issued
                           again when missing, expiring within 30 days, issued by
                           another CA or for other hosts
    token                  the bearer token every request must carry

Private keys and the token are mode 0600. Keys are ECDSA P-256: quick to generate and
accepted by every client the sandbox serves (Go's kubectl and Helm, Python's ssl).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gitmoor.errors import GitmoorError, Location
from gitmoor.locks import locked_directory
from gitmoor.manifests import dump

CA_NAME = "gitmoor-sandbox-ca"
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)

_PRIVATE = 0o600
_PUBLIC = 0o644


@dataclass(frozen=True)
class Pki:
    """Where the sandbox's certificates are, and the token clients must send."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    token: str

    def server_ssl_context(self) -> ssl.SSLContext:
        """What the API server listens with: its certificate, HTTP/1.1 offered by ALPN."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """Trusts the sandbox's CA alone, with host name checking, as kubectl does."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def ensure_pki(directory: Path, *, hosts: Sequence[str] = DEFAULT_HOSTS) -> Pki:
    """Create what is missing or stale under ``directory`` and return the set.

    Safe to call from several processes at once: they take turns on a lock on the
    directory, and every file is replaced atomically.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    with locked_directory(directory):
        ca_key, ca_cert = _ensure_ca(directory)
        _ensure_server_cert(directory, ca_key, ca_cert, hosts)
        token = _ensure_token(directory / "token")
    return Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        token=token,
    )


def write_kubeconfig(
    path: Path, *, server: str, ca_cert: Path, token: str, name: str = "gitmoor-sandbox"
) -> None:
    """A kubeconfig with one cluster, user and context, all called ``name``, as current context.

    The CA is embedded (certificate-authority-data), so the file works wherever it is copied.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    write_file(path, dump(config).encode(), _PRIVATE)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically; the content is never readable with a wider mode."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    temporary.chmod(mode)  # the umask may have narrowed a public file's mode
    temporary.replace(path)


def _ensure_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, cert_path = directory / "ca.key", directory / "ca.crt"
    if key_path.exists() and cert_path.exists():
        key = _load_key(key_path)
        cert = _load_cert(cert_path)
        if cert.public_key() != key.public_key():
            raise GitmoorError(
                "the CA certificate does not belong to ca.key; delete both to create a new CA",
                Location(file=str(cert_path)),
            )
        if not _expiring(cert):
            return key, cert
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    start = datetime.now(UTC) - timedelta(minutes=5)  # tolerate clocks a little behind
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC)
    return key, cert


def _ensure_server_cert(
    directory: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: Sequence[str],
) -> None:
    key_path, cert_path = directory / "server.key", directory / "server.crt"
    wanted = _subject_alternative_names(hosts)
    if key_path.exists() and cert_path.exists():
        try:
            key = _load_key(key_path)
            cert = _load_cert(cert_path)
        except GitmoorError:
            pass  # issued by us, so simply issued again
        else:
            if _current(cert, key, ca_cert, wanted):
                return
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(minutes=5)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitmoor-sandbox")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC)


def _current(
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    wanted: list[x509.GeneralName],
) -> bool:
    """Whether a server certificate can be served again as it is."""
    if _expiring(cert) or cert.public_key() != key.public_key():
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    return set(names) == set(wanted)


def _subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _ensure_token(path: Path) -> str:
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_file(path, token.encode(), _PRIVATE)
    return token


def _expiring(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - datetime.now(UTC) < RENEW_BEFORE


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_file(path, data, _PRIVATE)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise GitmoorError(f"not a PEM private key: {exc}", Location(file=str(path))) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise GitmoorError("expected an ECDSA private key", Location(file=str(path)))
    return key


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise GitmoorError(f"not a PEM certificate: {exc}", Location(file=str(path))) from None
