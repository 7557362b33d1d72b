"""Chart repository credentials read from Flux Secrets, and kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmoor.errors import InputError, SourceError
from gitmoor.source.charts import ChartCache, RepoAuth


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


@pytest.mark.parametrize("key", ["ca.crt", "caFile"])
def test_a_ca_certificate_is_refused_not_ignored(key: str) -> None:
    with pytest.raises(SourceError) as caught:
        RepoAuth.from_secret_data({key: b"-----BEGIN CERTIFICATE-----"})

    assert caught.value.location.field == f"data.{key}"


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
