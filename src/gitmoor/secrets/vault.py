"""The Vault / OpenBao provider over hvac: log in, then read, extract and find KV secrets.

What External Secrets' Vault provider does, the same way:

- **paths**: a remote key is turned into the KV API path as External Secrets builds it
  (:func:`data_path`): with the store's ``path`` (the mount) a key may or may not repeat the
  mount, and on KV v2 ``data/`` is inserted; without it the key's first segment is the mount.
- **values**: a ``property`` picks one field of the secret; a key holding dots is looked up
  as it is first, then as a path into nested objects (``a.b.0.c``, ``\\.`` escapes a dot), as
  gjson does. No property gives the whole secret as JSON. Strings come out as they are,
  numbers and booleans as Go prints them, objects and lists as compact JSON.
- **extract** gives every field of a secret (or of the object a property names) as a key;
  **find** lists a mount's secrets recursively under a path and keeps those whose path
  matches a regular expression, or whose custom metadata carries the tags asked for.
- **auth**: a token, an AppRole login or a Kubernetes login (:class:`TokenLogin`,
  :class:`AppRoleLogin`, :class:`KubernetesLogin`); the caller resolves them from Secrets
  and the TokenRequest API (:mod:`gitmoor.secrets.stores`).

hvac is synchronous: every method here blocks, so callers on an event loop run them in a
thread. Errors are :mod:`gitmoor.secrets.errors`; their messages carry Vault's own error
text with every credential in use scrubbed out, and never a secret's value.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import functools
import hashlib
import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import hvac
import hvac.exceptions
import requests

from gitmoor.api.secrets import ExternalSecretFind, RemoteRef
from gitmoor.errors import Location
from gitmoor.secrets.errors import (
    InvalidSpecError,
    InvalidStoreError,
    MissingPropertyError,
    ProviderError,
    SecretNotFoundError,
    UnauthorizedError,
    UnavailableError,
)

KVVersion = Literal["v1", "v2"]
DEFAULT_TIMEOUT = 30.0
RENEW_AT = 0.8
"""A token from a login is used for this share of its TTL, then the next call logs in again."""

_T = TypeVar("_T")


# --- configuration and logins ----------------------------------------------------------


@dataclass(frozen=True)
class VaultConfig:
    """Where the server is and how its KV engine is laid out (``spec.provider.vault``)."""

    server: str
    store: str
    """The store's display name (``ClusterSecretStore vault-backend``), for messages."""
    mount: str | None = None
    version: KVVersion = "v2"
    namespace: str | None = None
    auth_namespace: str | None = None
    """The Vault namespace to log in to, when it differs from ``namespace``."""
    ca_pem: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, repr=False)
class TokenLogin:
    token: str


@dataclass(frozen=True, repr=False)
class AppRoleLogin:
    mount: str
    role_id: str
    secret_id: str


@dataclass(frozen=True, repr=False)
class KubernetesLogin:
    mount: str
    role: str
    jwt: str


Login = TokenLogin | AppRoleLogin | KubernetesLogin


@dataclass(frozen=True, repr=False)
class Session:
    """A Vault token and the monotonic time after which a new login is due."""

    token: str
    renew_after: float

    @property
    def due(self) -> bool:
        return time.monotonic() >= self.renew_after


def login(config: VaultConfig, method: Login) -> Session:
    """A token for ``method``: the token itself, or what an AppRole/Kubernetes login gives."""
    if isinstance(method, TokenLogin):
        return Session(method.token, math.inf)
    client = _hvac(config, token=None, namespace=config.auth_namespace or config.namespace)
    secrets = _credentials(method)
    what = f"logging in to {config.server} with {_method_name(method)}"
    try:
        if isinstance(method, AppRoleLogin):
            answer = _call(config, what, secrets, lambda: client.auth.approle.login(
                role_id=method.role_id, secret_id=method.secret_id, mount_point=method.mount,
                use_token=False,
            ))  # fmt: skip
        else:
            answer = _call(config, what, secrets, lambda: client.auth.kubernetes.login(
                role=method.role, jwt=method.jwt, mount_point=method.mount, use_token=False,
            ))  # fmt: skip
    except ProviderError as exc:
        if type(exc) is not ProviderError:
            raise
        # Vault answers a wrong role or secret ID with a 400: refused credentials all the same.
        raise UnauthorizedError(exc.message, exc.location) from None
    auth = (answer or {}).get("auth") or {}
    token = auth.get("client_token")
    if not token:
        raise UnauthorizedError(f"{what}: the answer holds no token", Location(object=config.store))
    lease = float(auth.get("lease_duration") or 0)
    return Session(str(token), time.monotonic() + lease * RENEW_AT if lease else math.inf)


def _method_name(method: Login) -> str:
    if isinstance(method, AppRoleLogin):
        return f"AppRole (auth/{method.mount})"
    if isinstance(method, KubernetesLogin):
        return f"Kubernetes auth (auth/{method.mount}, role '{method.role}')"
    return "a token"


def _credentials(method: Login) -> tuple[str, ...]:
    if isinstance(method, AppRoleLogin):
        return (method.role_id, method.secret_id)
    if isinstance(method, KubernetesLogin):
        return (method.jwt,)
    return (method.token,)


# --- the client ------------------------------------------------------------------------


class VaultClient:
    """Reads from one store with one token. Safe to share between threads: nothing in it
    changes after construction."""

    def __init__(self, config: VaultConfig, session: Session) -> None:
        self.config = config
        self.session = session
        self._client = _hvac(config, token=session.token, namespace=config.namespace)

    # --- validation ----------------------------------------------------------------------

    def check(self) -> None:
        """That the token is valid, and that the mount exists, is a KV engine of the store's
        version, and the token may use it (what ``vault kv`` asks before reading)."""
        config = self.config
        self._call("looking up the token", lambda: self._client.auth.token.lookup_self())
        if not config.mount:
            return
        try:
            answer = self._call(
                f"reading mount '{config.mount}'",
                lambda: self._client.adapter.get(f"/v1/sys/internal/ui/mounts/{config.mount}"),
            )
        except UnauthorizedError as exc:
            # The mount probe answers 403 both for a missing mount and for a token that may
            # not use it; either way the credentials themselves were accepted just above.
            raise ProviderError(
                f"mount '{config.mount}' does not exist or the token may not use it "
                f"({exc.message})",
                Location(object=config.store, field="spec.provider.vault.path"),
            ) from None
        data = (answer or {}).get("data") or {}
        engine = str(data.get("type") or "")
        if engine not in ("kv", "generic"):
            raise InvalidStoreError(
                f"mount '{config.mount}' is a '{engine}' engine, not a KV engine",
                Location(object=config.store, field="spec.provider.vault.path"),
            )
        found = "v2" if str((data.get("options") or {}).get("version") or "1") == "2" else "v1"
        if found != config.version:
            raise InvalidStoreError(
                f"mount '{config.mount}' is KV {found}, the store says {config.version}",
                Location(object=config.store, field="spec.provider.vault.version"),
            )

    # --- reads ---------------------------------------------------------------------------

    def read(self, key: str, version: str | None = None) -> dict[str, Any]:
        """The fields of the secret at ``key`` (KV v2: of that version, else the latest)."""
        config = self.config
        if version and config.version == "v1":
            raise InvalidSpecError(f"key '{key}': a version can only be read from KV v2",
                                   Location(object=config.store))  # fmt: skip
        path = data_path(key, config.mount, config.version)
        params = {"version": version} if version else None
        answer = self._get(path, params)
        data = (answer or {}).get("data")
        if config.version == "v2":
            data = (data or {}).get("data") if answer is not None else None
        if answer is None or data is None:
            raise SecretNotFoundError(f"secret '{key}' not found{_at_version(version)} "
                                      f"(read {path})", Location(object=config.store))  # fmt: skip
        if not isinstance(data, dict):
            raise ProviderError(f"secret '{key}' is not a key/value object (read {path})",
                                Location(object=config.store))  # fmt: skip
        return data

    def read_metadata(self, key: str) -> dict[str, Any]:
        """The custom metadata of the KV v2 secret at ``key``."""
        config = self.config
        if config.version == "v1":
            raise InvalidSpecError(f"key '{key}': metadata can only be read from KV v2",
                                   Location(object=config.store))  # fmt: skip
        path = metadata_path(key, config.mount, config.version)
        answer = self._get(path, None)
        if answer is None:
            raise SecretNotFoundError(f"secret '{key}' not found (read {path})",
                                      Location(object=config.store))  # fmt: skip
        return dict(((answer.get("data") or {}).get("custom_metadata")) or {})

    def get_value(self, ref: RemoteRef) -> bytes:
        """One value: ``ref.property`` of the secret at ``ref.key``, or all of it as JSON."""
        if ref.metadata_policy == "Fetch":
            data = self.read_metadata(ref.key)
        else:
            data = self.read(ref.key, ref.version)
        return select(data, ref.property, key=ref.key)

    def get_map(self, ref: RemoteRef) -> dict[str, bytes]:
        """Every field of the secret (or of the object ``ref.property`` names) as a key."""
        raw = self.get_value(ref)
        try:
            fields = json.loads(raw)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            what = f"property '{ref.property}' of secret '{ref.key}'" if ref.property else (
                f"secret '{ref.key}'"
            )  # fmt: skip
            raise InvalidSpecError(f"{what} is not a key/value object, so it cannot be "
                                   "extracted")  # fmt: skip
        return {name: value_bytes(value) for name, value in fields.items()}

    def find(self, spec: ExternalSecretFind) -> dict[str, bytes]:
        """The secrets under ``spec.path`` whose path matches ``spec.name.regexp`` or whose
        custom metadata holds ``spec.tags``, each as JSON, keyed by its path in the mount."""
        config = self.config
        if not config.mount:
            raise InvalidSpecError("find needs the store's spec.provider.vault.path (the mount)")
        if spec.tags and config.version == "v1":
            raise InvalidSpecError("find by tags needs KV v2 (tags are custom metadata)")
        pattern = spec.name.regexp if spec.name is not None else None
        try:
            matcher = re.compile(pattern) if pattern is not None else None
        except re.error as exc:
            raise InvalidSpecError(f"name.regexp is not a valid regular expression: {exc}",
                                   Location(field="name.regexp")) from None  # fmt: skip
        found: dict[str, bytes] = {}
        for name in self._list(f"{spec.path}/" if spec.path else ""):
            if matcher is not None and not matcher.search(name):
                continue
            if matcher is None and spec.tags:
                metadata = self.read_metadata(name)
                if any(str(metadata.get(k)) != v for k, v in spec.tags.items()):
                    continue
            try:
                found[name] = select(self.read(name), None, key=name)
            except SecretNotFoundError:
                continue  # deleted between the listing and the read
        return found

    def _list(self, prefix: str) -> Iterator[str]:
        path = metadata_path(prefix, self.config.mount, self.config.version)
        try:
            answer = self._call(f"listing {path}", lambda: self._client.adapter.list(f"/v1/{path}"))
        except SecretNotFoundError:
            raise SecretNotFoundError(f"nothing stored under '{prefix or '/'}' (list {path})",
                                      Location(object=self.config.store)) from None  # fmt: skip
        for entry in ((answer or {}).get("data") or {}).get("keys") or []:
            name = f"{prefix}{entry}"
            if str(entry).endswith("/"):
                yield from self._list(name)
            else:
                yield name

    def _get(self, path: str, params: Mapping[str, str] | None) -> dict[str, Any] | None:
        try:
            answer = self._call(
                f"reading {path}", lambda: self._client.adapter.get(f"/v1/{path}", params=params)
            )
        except SecretNotFoundError:
            return None
        return answer if isinstance(answer, dict) else None

    def _call(self, what: str, request: Callable[[], _T]) -> _T:
        return _call(self.config, what, (self.session.token,), request)


# --- paths and values (pure) -----------------------------------------------------------


def data_path(key: str, mount: str | None, version: KVVersion) -> str:
    """The API path of the secret at ``key``, as External Secrets builds it."""
    if mount:
        rest = key
        if rest.startswith(f"{mount}/"):
            rest = rest[len(mount) + 1 :]
            if version == "v2" and rest.startswith("data/"):
                rest = rest[len("data/") :]
        return "/".join([mount, *(["data"] if version == "v2" else []), rest])
    if version == "v2" and "/data/" not in key:
        first, *rest_parts = key.split("/")
        return "/".join([first, "data", *rest_parts])
    return key


def metadata_path(key: str, mount: str | None, version: KVVersion) -> str:
    """The API path of the KV v2 metadata (or, on KV v1, the listing) of ``key``."""
    if version == "v1":
        if not mount:
            raise InvalidSpecError("listing KV v1 needs the store's spec.provider.vault.path")
        return f"{mount}/{key}"
    if not mount:
        if "data" not in key:
            raise InvalidSpecError(f"key '{key}' is not a KV v2 path (no data/ segment)")
        return key.replace("/data/", "/metadata/", 1)
    rest = key
    if rest.startswith(f"{mount}/"):
        rest = rest[len(mount) + 1 :]
        if rest.startswith("data/"):
            rest = rest[len("data/") :]
    return f"{mount}/metadata/{rest}"


def select(data: Mapping[str, Any], prop: str | None, *, key: str) -> bytes:
    """``prop`` of ``data`` (a key holding dots first, then a gjson-style path), or all of
    ``data`` as JSON when ``prop`` is empty."""
    if not prop:
        return go_json(data).encode()
    if prop in data:
        return value_bytes(data[prop])
    found, value = _walk(data, _path_parts(prop))
    if not found:
        raise MissingPropertyError(f"property '{prop}' not found in secret '{key}'")
    return value_bytes(value)


def _path_parts(path: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _walk(value: Any, parts: list[str]) -> tuple[bool, Any]:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def value_bytes(value: Any) -> bytes:
    """A JSON value as External Secrets stores it in a Secret."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        # strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent
        text = format(Decimal(repr(value)), "f")
        return (text.rstrip("0").rstrip(".") if "." in text else text).encode()
    return go_json(value).encode()


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: keys sorted, no spaces, HTML characters and the
    line and paragraph separators escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escape)
    return text


def _at_version(version: str | None) -> str:
    return f" at version {version}" if version else ""


# --- hvac plumbing ---------------------------------------------------------------------


def _hvac(config: VaultConfig, *, token: str | None, namespace: str | None) -> Any:
    session = requests.Session()
    session.headers.update(dict(config.headers))
    # hvac takes ``verify`` from a session it is given, over its own argument.
    session.verify = _ca_file(config.ca_pem) if config.ca_pem else True
    return hvac.Client(
        url=config.server,
        token=token,
        namespace=namespace or None,
        timeout=config.timeout,
        session=session,
    )


def _call(
    config: VaultConfig, what: str, secrets: tuple[str, ...], request: Callable[[], _T]
) -> _T:
    """Run one hvac request, turning its exceptions into ours (chains dropped, so neither
    a request body nor a credential travels along in ``__cause__``)."""
    where = Location(object=config.store)
    try:
        return request()
    except hvac.exceptions.InvalidPath:
        raise SecretNotFoundError(f"{what}: not found", where) from None
    except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden) as exc:
        raise UnauthorizedError(
            f"{what}: {config.server} refused: {_reason(exc, secrets)}", where
        ) from None
    except hvac.exceptions.InvalidRequest as exc:
        raise ProviderError(f"{what}: {_reason(exc, secrets)}", where) from None
    except hvac.exceptions.VaultError as exc:
        raise UnavailableError(f"{what}: {config.server} failed: {_reason(exc, secrets)}",
                               where) from None  # fmt: skip
    except requests.RequestException as exc:
        raise UnavailableError(
            f"{what}: {config.server} cannot be reached ({type(exc).__name__})", where
        ) from None


def _reason(exc: Any, secrets: tuple[str, ...]) -> str:
    """Vault's error text (its ``errors`` list, multi-error framing removed), scrubbed."""
    errors = [str(e) for e in (getattr(exc, "errors", None) or [])]
    lines = [
        line.strip().removeprefix("* ")
        for text in errors
        for line in text.splitlines()
        if line.strip() and not re.fullmatch(r"\d+ errors? occurred:", line.strip())
    ]
    text = "; ".join(lines) or type(exc).__name__
    return scrub(text, secrets)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` (and its base64 form) replaced by ``***``."""
    for secret in secrets:
        if len(secret) < 4:
            continue  # too short to tell from ordinary words
        for form in (secret, base64.b64encode(secret.encode()).decode()):
            text = text.replace(form, "***")
    return text


@functools.cache
def _ca_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="gitmoor-vault-ca-"))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def _ca_file(pem: str) -> str:
    """A file holding ``pem`` for requests' ``verify`` (it takes paths only). CA
    certificates are public; the files live in a private directory removed at exit."""
    path = _ca_dir() / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        partial.write_text(pem)
        partial.replace(path)
    return str(path)


def decode_ca_bundle(value: str, *, store: str) -> str:
    """``spec.provider.vault.caBundle`` (base64 of PEM) as PEM text."""
    try:
        pem = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidStoreError("caBundle is not base64-encoded PEM",
                                Location(object=store, field="spec.provider.vault.caBundle")
                                ) from None  # fmt: skip
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidStoreError(
            "caBundle holds no PEM certificate",
            Location(object=store, field="spec.provider.vault.caBundle"),
        )
    return pem
