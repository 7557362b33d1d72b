"""Certificates for the tests' TLS servers, made with the openssl command: a CA, a server
certificate for 127.0.0.1 and a client certificate, all signed by that CA.

    pki = make_pki(tmp_path / "pki")
    ServerTls(pki.server_crt, pki.server_key, pki.ca_crt, client_ca=pki.ca_crt)
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitmoor.demo.servers import ServerTls

CLIENT_CERTIFICATE_REFUSED = r"certificate required|connection reset by peer|broken pipe"
"""How a client without a certificate learns that the server wants one: TLS 1.3 checks it
after the client's side of the handshake is done, so the client may already be writing its
request when the server's alert and close arrive."""


@dataclass(frozen=True)
class TlsPki:
    directory: Path

    @property
    def ca_crt(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_crt(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_crt(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def server_tls(self, *, require_client_certificate: bool = False) -> ServerTls:
        client_ca = self.ca_crt if require_client_certificate else None
        return ServerTls(self.server_crt, self.server_key, self.ca_crt, client_ca=client_ca)

    def secret_data(self, *, client_certificate: bool = True) -> dict[str, bytes]:
        """A ``kubernetes.io/tls`` Secret's data (decoded) trusting this CA."""
        data = {"ca.crt": self.ca_crt.read_bytes()}
        if client_certificate:
            data |= {
                "tls.crt": self.client_crt.read_bytes(),
                "tls.key": self.client_key.read_bytes(),
            }
        return data


def make_pki(directory: Path) -> TlsPki:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing (Debian package openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=gitmoor-test-CA"
                        " -keyout ca.key -out ca.crt")  # fmt: skip
    for name, extensions in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        _openssl(directory, f"req -newkey rsa:2048 -nodes -subj /CN=gitmoor-test-{name}"
                            f" -keyout {name}.key -out {name}.csr")  # fmt: skip
        (directory / f"{name}.ext").write_text(extensions)
        _openssl(directory, f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
                            f" -days 1 -extfile {name}.ext -out {name}.crt")  # fmt: skip
    return TlsPki(directory)


def _openssl(cwd: Path, command: str) -> None:
    subprocess.run(["openssl", *command.split()], cwd=cwd, check=True, capture_output=True)
