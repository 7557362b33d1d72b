"""The sandbox's CA, server certificate, token and kubeconfig, checked with ssl and kubectl."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import ssl
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gitmoor.errors import GitmoorError
from gitmoor.render.kustomize_cli import kubectl_path
from gitmoor.sandbox.pki import Pki, ensure_pki, write_kubeconfig


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def handshake(pki: Pki, server_hostname: str) -> None:
    """A TLS handshake in memory between the server's context and a client trusting the CA."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    server = pki.server_ssl_context().wrap_bio(server_in, server_out, server_side=True)
    client = pki.client_ssl_context().wrap_bio(
        client_in, client_out, server_hostname=server_hostname
    )
    pending = [client, server]
    for _ in range(10):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if not pending:
            return
    raise AssertionError("the TLS handshake did not finish")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Files must get their modes whatever the umask lets through."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "pki"


@pytest.mark.usefixtures("open_umask")
def test_files_and_modes(pki_dir: Path) -> None:
    pki = ensure_pki(pki_dir)
    assert mode(pki_dir) == 0o700
    for private in ("ca.key", "server.key", "token"):
        assert mode(pki_dir / private) == 0o600, private
    assert mode(pki.ca_cert) == 0o644
    assert mode(pki.server_cert) == 0o644
    assert pki.token == (pki_dir / "token").read_text()
    assert not [p.name for p in pki_dir.iterdir() if p.name.startswith(".")]


def test_ca(pki_dir: Path) -> None:
    ca = certificate(ensure_pki(pki_dir).ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gitmoor-sandbox-ca"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert timedelta(days=3649) < lifetime < timedelta(days=3651)


def test_server_cert_chains_to_ca(pki_dir: Path) -> None:
    pki = ensure_pki(pki_dir)
    server = certificate(pki.server_cert)
    server.verify_directly_issued_by(certificate(pki.ca_cert))
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_tls_handshake_verifies(pki_dir: Path, host: str) -> None:
    handshake(ensure_pki(pki_dir), host)


def test_tls_handshake_refuses_other_hosts(pki_dir: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ensure_pki(pki_dir), "example.com")


def test_another_ca_is_not_trusted(tmp_path: Path) -> None:
    ours = ensure_pki(tmp_path / "ours")
    theirs = ensure_pki(tmp_path / "theirs")
    mixed = Pki(theirs.ca_cert, ours.server_cert, ours.server_key, ours.token)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(mixed, "127.0.0.1")


def contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_second_call_reuses_everything(pki_dir: Path) -> None:
    first = ensure_pki(pki_dir)
    before = contents(pki_dir)
    assert ensure_pki(pki_dir) == first
    assert contents(pki_dir) == before


def test_missing_server_cert_is_issued_again_by_the_same_ca(pki_dir: Path) -> None:
    first = ensure_pki(pki_dir)
    before = contents(pki_dir)
    first.server_cert.unlink()
    second = ensure_pki(pki_dir)
    after = contents(pki_dir)
    assert after["ca.crt"] == before["ca.crt"]
    assert after["ca.key"] == before["ca.key"]
    assert second.token == first.token
    assert after["server.key"] != before["server.key"]
    handshake(second, "127.0.0.1")


def test_expiring_server_cert_is_issued_again(pki_dir: Path) -> None:
    pki = ensure_pki(pki_dir)
    ca = certificate(pki.ca_cert)
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    current = certificate(pki.server_cert)
    names = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    now = datetime.now(UTC)
    expiring = (
        x509.CertificateBuilder()
        .subject_name(current.subject)
        .issuer_name(ca.subject)
        .public_key(current.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=300))
        .not_valid_after(now + timedelta(days=10))
        .add_extension(names, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.server_cert.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))
    ensure_pki(pki_dir)
    renewed = certificate(pki.server_cert)
    assert renewed.not_valid_after_utc > now + timedelta(days=300)
    renewed.verify_directly_issued_by(ca)


def test_other_hosts_get_a_new_server_cert(pki_dir: Path) -> None:
    ensure_pki(pki_dir)
    pki = ensure_pki(pki_dir, hosts=("127.0.0.1", "sandbox.test"))
    handshake(pki, "sandbox.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(pki, "localhost")


def test_missing_ca_makes_a_new_ca_and_server_cert(pki_dir: Path) -> None:
    first = ensure_pki(pki_dir)
    before = contents(pki_dir)
    (pki_dir / "ca.key").unlink()
    second = ensure_pki(pki_dir)
    after = contents(pki_dir)
    assert after["ca.crt"] != before["ca.crt"]
    assert after["server.crt"] != before["server.crt"]
    assert second.token == first.token
    handshake(second, "127.0.0.1")


def test_unreadable_ca_key_is_an_error_naming_the_file(pki_dir: Path) -> None:
    ensure_pki(pki_dir)
    (pki_dir / "ca.key").write_text("not a key")
    with pytest.raises(GitmoorError) as caught:
        ensure_pki(pki_dir)
    assert caught.value.location.file == str(pki_dir / "ca.key")


@pytest.mark.usefixtures("open_umask")
def test_kubeconfig(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server="https://127.0.0.1:6443", ca_cert=pki.ca_cert, token=pki.token)
    assert mode(path) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "gitmoor-sandbox"
    (cluster,) = config["clusters"]
    assert cluster["name"] == "gitmoor-sandbox"
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    ca_data = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    assert ca_data == pki.ca_cert.read_bytes()
    (user,) = config["users"]
    assert user == {"name": "gitmoor-sandbox", "user": {"token": pki.token}}
    (context,) = config["contexts"]
    assert context == {
        "name": "gitmoor-sandbox",
        "context": {"cluster": "gitmoor-sandbox", "user": "gitmoor-sandbox"},
    }


def test_kubectl_reads_the_kubeconfig(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server="https://127.0.0.1:6443", ca_cert=pki.ca_cert, token=pki.token)
    env = {**os.environ, "KUBECONFIG": str(path)}
    done = subprocess.run(
        [kubectl_path(), "config", "view", "--raw", "--minify", "-o", "json"],
        capture_output=True, text=True, check=True, env=env, timeout=60,
    )  # fmt: skip
    view = json.loads(done.stdout)
    assert view["current-context"] == "gitmoor-sandbox"
    assert view["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert view["users"][0]["user"]["token"] == pki.token
