"""What counts as SOPS-encrypted, and how a decryption Secret's keys reach sops (pure logic)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gitmoor.errors import InputError, Location, RenderError
from gitmoor.render.sops import (
    decryption_disabled,
    format_for_path,
    is_encrypted,
    is_encrypted_text,
    key_environment,
    keys_from_files,
    recipients,
    secret_keys,
)

AGE_IDENTITY = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
WHERE = Location(object="Kustomization flux-system/apps")


def encrypted_secret(**sops: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi=,type:str]"},
        "sops": sops,
    }


def test_a_document_with_sops_metadata_and_a_mac_is_encrypted() -> None:
    assert is_encrypted(encrypted_secret(mac="ENC[AES256_GCM,data:x]", lastmodified="2024"))


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}},
        encrypted_secret(lastmodified="2024"),
        encrypted_secret(mac=""),
        {"apiVersion": "v1", "kind": "ConfigMap", "sops": "not a mapping"},
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"sops": {"mac": "x"}}},
    ],
    ids=["plain", "no-mac", "empty-mac", "scalar", "nested"],
)
def test_other_documents_are_not(obj: dict[str, Any]) -> None:
    assert not is_encrypted(obj)


def test_the_decrypt_annotation_turns_decryption_off() -> None:
    obj = encrypted_secret(mac="x")
    assert not decryption_disabled(obj)
    obj["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/decrypt": "Disabled"}
    assert decryption_disabled(obj)


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("secret.yaml", "yaml"),
        ("dir/secret.enc.yml", "yaml"),
        ("config.json", "json"),
        (".dockerconfigjson", "json"),
        ("app.env", "dotenv"),
        ("settings.ini", "ini"),
        ("id_rsa", "binary"),
    ],
)
def test_formats_follow_the_file_name(path: str, fmt: str) -> None:
    assert format_for_path(path) == fmt


def test_encrypted_files_are_recognised_by_their_sops_mac() -> None:
    assert is_encrypted_text(b"a: ENC[x]\nsops:\n    mac: ENC[AES256_GCM,data:x]\n", "yaml")
    assert is_encrypted_text(b'{"sops": {"mac": "ENC[AES256_GCM,data:x]"}}', "json")
    assert is_encrypted_text(b"TOKEN=ENC[x]\nsops_mac=ENC[AES256_GCM,data:x]\n", "dotenv")
    assert not is_encrypted_text(b"TOKEN=plain\n", "dotenv")
    assert not is_encrypted_text(b"mac: ENC[x]\n", "json")


def test_recipients_name_every_key_type() -> None:
    obj = encrypted_secret(
        mac="x",
        age=[{"recipient": "age1abc", "enc": "..."}],
        pgp=[{"fp": "6D22FCEF", "enc": "..."}],
        hc_vault=[{"vault_address": "http://127.0.0.1:8200", "key_name": "sops"}],
    )
    assert recipients(obj) == ["age age1abc", "pgp 6D22FCEF", "hc_vault http://127.0.0.1:8200"]


def test_age_identities_are_joined_and_the_other_files_become_variables() -> None:
    env = key_environment(
        {
            "first.agekey": f"# a comment\n{AGE_IDENTITY}\n".encode(),
            "second.agekey": AGE_IDENTITY.replace("Q", "P").encode(),
            "sops.vault-token": b"  s.token\n",
            "sops.aws-kms": b"aws_access_key_id: AKIA\naws_secret_access_key: secret\n",
            "sops.azure-kv": json.dumps(
                {"tenantId": "t", "clientId": "c", "clientSecret": "s"}
            ).encode(),
            "sops.gcp-kms": b'{"type": "service_account"}\n',
            "identity.asc": b"-----BEGIN PGP PRIVATE KEY BLOCK-----",
            "unrelated": b"ignored",
        },
        where=WHERE,
    )
    assert env == {
        "SOPS_AGE_KEY": f"# a comment\n{AGE_IDENTITY}\n{AGE_IDENTITY.replace('Q', 'P')}",
        "VAULT_TOKEN": "s.token",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s",
        "GOOGLE_CREDENTIALS": '{"type": "service_account"}',
    }


def test_a_malformed_credentials_file_is_named_without_its_content() -> None:
    with pytest.raises(RenderError) as caught:
        key_environment({"sops.aws-kms": b"- just-a-list-item-s3cr3t"}, where=WHERE)
    assert "sops.aws-kms" in str(caught.value)
    assert "Kustomization flux-system/apps" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_key_files_are_named_by_what_they_hold(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text(f"# created: now\n{AGE_IDENTITY}\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keys.txt").write_text(AGE_IDENTITY)
    (tmp_path / "signing.key").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n...\n")
    (tmp_path / "demo.agekey").write_text(AGE_IDENTITY)
    (tmp_path / "sops.vault-token").write_text("s.token")
    files = [
        tmp_path / "keys.txt",
        tmp_path / "a" / "keys.txt",
        tmp_path / "signing.key",
        tmp_path / "demo.agekey",
        tmp_path / "sops.vault-token",
    ]
    keys = keys_from_files(files)
    assert sorted(keys) == [
        "demo.agekey",
        "keys-2.agekey",
        "keys.agekey",
        "signing.asc",
        "sops.vault-token",
    ]
    assert keys["keys.agekey"] == files[0].read_bytes()


def test_a_file_that_is_no_key_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(InputError) as caught:
        keys_from_files([other])
    assert caught.value.location.file == str(other)


def test_a_secrets_data_and_string_data_become_bytes() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sops-age", "namespace": "flux-system"},
        "data": {"age.agekey": base64.b64encode(AGE_IDENTITY.encode()).decode()},
        "stringData": {"sops.vault-token": "s.token"},
    }
    assert secret_keys(secret) == {
        "age.agekey": AGE_IDENTITY.encode(),
        "sops.vault-token": b"s.token",
    }


def test_a_value_that_is_not_base64_names_the_secret_and_key() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "sops-age", "namespace": "flux-system"},
        "data": {"age.agekey": "not base64!"},
    }
    with pytest.raises(InputError) as caught:
        secret_keys(secret)
    assert caught.value.location == Location(
        object="Secret flux-system/sops-age", field="data.age.agekey"
    )
