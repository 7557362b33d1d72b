"""Chart repository credentials read from Flux Secrets, and kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmoor.errors import InputError
from gitmoor.sandbox.pki import ensure_pki
from gitmoor.source.chartauth import RepoAuth, read_repo_auth, tls_files
from gitmoor.source.charts import ChartCache


def test_from_secret_data() -> None:
    auth = RepoAuth.from_secret_data({"username": b"robot", "password": b"hunter2"})

    assert auth == RepoAuth(username="robot", password="hunter2")
    assert auth.has_login


def test_empty_secret_means_no_login() -> None:
    assert not RepoAuth.from_secret_data({}).has_login


def test_secret_text_must_be_utf8() -> None:
    with pytest.raises(InputError) as caught:
        RepoAuth.from_secret_data({"username": b"robot", "password": b"\xff\xfe"})

    assert caught.value.location.field == "data.password"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real certificate and its key (the sandbox's PKI makes them)."""
    pki = ensure_pki(tmp_path_factory.mktemp("pki"))
    return {
        "ca": pki.ca_cert.read_bytes(),
        "cert": pki.server_cert.read_bytes(),
        "key": pki.server_key.read_bytes(),
    }


def test_tls_from_a_kubernetes_tls_secret(pem: dict[str, bytes]) -> None:
    login = RepoAuth(username="robot", password="hunter2")

    auth = login.with_tls({"ca.crt": pem["ca"], "tls.crt": pem["cert"], "tls.key": pem["key"]})

    assert (auth.username, auth.password) == ("robot", "hunter2")
    assert (auth.ca_pem, auth.cert_pem, auth.key_pem) == (pem["ca"], pem["cert"], pem["key"])
    assert auth.has_tls


def test_the_older_tls_keys_of_the_login_secret(pem: dict[str, bytes]) -> None:
    auth = RepoAuth.from_secret_data(
        {"username": b"robot", "password": b"pw", "caFile": pem["ca"],
         "certFile": pem["cert"], "keyFile": pem["key"]}
    )  # fmt: skip

    assert (auth.ca_pem, auth.cert_pem, auth.key_pem) == (pem["ca"], pem["cert"], pem["key"])


def test_the_cert_secret_wins_over_the_login_secret(pem: dict[str, bytes]) -> None:
    auth = read_repo_auth(
        "apps",
        ("login", {"username": b"robot", "caFile": pem["cert"]}),
        ("tls", {"ca.crt": pem["ca"]}),
    )

    assert auth is not None
    assert auth.username == "robot"
    assert auth.ca_pem == pem["ca"]
    assert auth.cert_pem is None


def test_no_secrets_no_auth() -> None:
    assert read_repo_auth("apps", None, None) is None


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (("tls.crt", "cert"), "data.tls.key"),
        (("tls.key", "key"), "data.tls.crt"),
        (("certFile", "cert"), "data.tls.key"),
        (("keyFile", "key"), "data.tls.crt"),
    ],
)
def test_a_client_certificate_needs_its_key(
    pem: dict[str, bytes], given: tuple[str, str], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        read_repo_auth("apps", None, ("client-tls", {given[0]: pem[given[1]]}))

    assert caught.value.location.field == field
    assert caught.value.location.object == "Secret apps/client-tls"
    assert f"has {given[0]} but no" in str(caught.value)


@pytest.mark.parametrize("key", ["ca.crt", "tls.crt", "tls.key"])
def test_material_that_is_not_pem_is_named_not_quoted(pem: dict[str, bytes], key: str) -> None:
    data = {"ca.crt": pem["ca"], "tls.crt": pem["cert"], "tls.key": pem["key"]}
    data[key] = b"not-pem-s3cret-material"

    with pytest.raises(InputError) as caught:
        read_repo_auth("apps", ("login", {}), ("tls", data))

    assert caught.value.location.field == f"data.{key}"
    assert caught.value.location.object == "Secret apps/tls"
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_tls_files_live_for_the_call_only(pem: dict[str, bytes]) -> None:
    auth = RepoAuth(ca_pem=pem["ca"], cert_pem=pem["cert"], key_pem=pem["key"])

    with tls_files(auth) as options:
        paths = {name: Path(path) for name, path in options.items()}
        assert set(paths) == {"ca_file", "cert_file", "key_file"}
        assert paths["key_file"].read_bytes() == pem["key"]
        assert {p.stat().st_mode & 0o777 for p in paths.values()} == {0o600}
        assert paths["key_file"].parent.stat().st_mode & 0o777 == 0o700

    assert not any(p.exists() for p in paths.values())
    with tls_files(RepoAuth(username="robot")) as none:
        assert none == {}


def test_repr_hides_the_key(pem: dict[str, bytes]) -> None:
    shown = repr(RepoAuth(ca_pem=pem["ca"], cert_pem=pem["cert"], key_pem=pem["key"]))

    assert "PRIVATE" not in shown
    assert "client_certificate=True" in shown


def test_repr_hides_the_password() -> None:
    shown = repr(RepoAuth(username="robot", password="hunter2"))

    assert "hunter2" not in shown
    assert "robot" in shown


def test_redact_masks_password_and_url_credentials() -> None:
    auth = RepoAuth(username="robot", password="hunter2")

    text = auth.redact("GET https://robot:hunter2@charts.example/index.yaml: hunter2 refused")

    assert "hunter2" not in text
    assert "https://***@charts.example/index.yaml" in text


def test_cache_paths_are_named_by_digest(tmp_path: Path) -> None:
    cache = ChartCache(tmp_path)
    digest = "sha256:" + "ab" * 32

    assert cache.path_for(digest).name == f"sha256-{'ab' * 32}.tgz"
    assert cache.find(digest) is None
    with pytest.raises(ValueError, match="not a sha256 digest"):
        cache.path_for("sha256:../../etc/passwd")
