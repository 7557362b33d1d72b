"""What an ExternalSecret fetches: ``spec.data`` and ``spec.dataFrom`` read from their
stores and shaped into the values of the Secret (before its template).

- ``data[i]``: one value per entry, from ``sourceRef.storeRef`` or the ExternalSecret's store,
  decoded by ``remoteRef.decodingStrategy``;
- ``dataFrom[i].extract`` / ``.find``: many values, their keys rewritten by ``rewrite``
  (``regexp``: Go's replacement syntax; ``transform``: a template over ``.value``) or, with
  no rewrite, made valid Secret keys by ``conversionStrategy`` (``Default``: ``_`` for every
  other character; ``Unicode``: ``_U<hex>_``), then decoded.

A remote secret that does not exist is an error, unless ``target.deletionPolicy`` is Delete
or Merge: then it is skipped, and the Secret loses what came from it. Errors carry the
field of the entry that failed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial

from gitmoor.api.secrets import (
    ExternalSecret,
    ExternalSecretRewrite,
    SecretStoreRef,
    StoreSourceRef,
)
from gitmoor.errors import GitmoorError, Location
from gitmoor.secrets.errors import InvalidSpecError, SecretNotFoundError
from gitmoor.secrets.stores import Store, StoreClients
from gitmoor.secrets.template import render
from gitmoor.secrets.vault import VaultClient

StoreLookup = Callable[[SecretStoreRef | None, str], Awaitable[Store]]
"""``(storeRef, field)`` → the store to read from, or an error saying why it cannot be."""

_INVALID_KEY_CHAR = re.compile(r"[^-._a-zA-Z0-9]")
_VALID_KEY = re.compile(r"[-._a-zA-Z0-9]+")


async def fetch(es: ExternalSecret, clients: StoreClients, lookup: StoreLookup) -> dict[str, bytes]:
    """The values ``es`` asks for, keyed as they will be in the Secret."""
    target = es.spec.target
    skip_missing = (target.deletion_policy if target else None) in ("Delete", "Merge")
    values: dict[str, bytes] = {}
    for index, entry in enumerate(es.spec.data or []):
        field = f"spec.data[{index}]"
        ref = entry.remote_ref
        store = await lookup(_store_ref(es, entry.source_ref, field), field)
        try:
            raw = await clients.run(store, es.namespace, partial(VaultClient.get_value, ref=ref))
            values[entry.secret_key] = decode(raw, ref.decoding_strategy, f"{field}.remoteRef")
        except SecretNotFoundError as exc:
            if skip_missing:
                continue
            raise exc.at(field=f"{field}.remoteRef.key") from None
        except GitmoorError as exc:
            raise exc.at(field=field) from None
    for index, source in enumerate(es.spec.data_from or []):
        field = f"spec.dataFrom[{index}]"
        store = await lookup(_store_ref(es, source.source_ref, field), field)
        try:
            if source.extract is not None:
                extract = source.extract
                found = await clients.run(store, es.namespace,
                                          partial(VaultClient.get_map, ref=extract))  # fmt: skip
                conversion, decoding = extract.conversion_strategy, extract.decoding_strategy
            elif source.find is not None:
                find = source.find
                found = await clients.run(store, es.namespace,
                                          partial(VaultClient.find, spec=find))  # fmt: skip
                conversion, decoding = find.conversion_strategy, find.decoding_strategy
            else:
                raise InvalidSpecError("one of extract or find is required (generators are "
                                       "not supported by gitmoor)")  # fmt: skip
        except SecretNotFoundError as exc:
            if skip_missing:
                continue
            raise exc.at(field=field) from None
        except GitmoorError as exc:
            raise exc.at(field=field) from None
        if source.rewrite:
            found = rewrite(found, source.rewrite, f"{field}.rewrite")
        else:
            found = convert_keys(found, conversion, field)
        for key in found:
            if not _VALID_KEY.fullmatch(key):
                raise InvalidSpecError(
                    f"key '{key}' is not a valid Secret key (only letters, digits, '-', '_' "
                    "and '.'); rewrite it", Location(field=field),
                )  # fmt: skip
        values.update({key: decode(value, decoding, field) for key, value in found.items()})
    return values


def _store_ref(
    es: ExternalSecret, source: StoreSourceRef | None, field: str
) -> SecretStoreRef | None:
    if source is not None and source.generator_ref is not None:
        raise InvalidSpecError("generators are not supported by gitmoor",
                               Location(field=f"{field}.sourceRef.generatorRef"))  # fmt: skip
    if source is not None and source.store_ref is not None:
        return source.store_ref
    return es.spec.secret_store_ref


def decode(value: bytes, strategy: str | None, field: str) -> bytes:
    """``value`` decoded by External Secrets' ``decodingStrategy``."""
    if strategy in (None, "None"):
        return value
    attempts: Sequence[Callable[[bytes], bytes]] = {
        "Base64": (_std,),
        "Base64URL": (_url,),
        "Auto": (_std, _url, _std_unpadded, _url_unpadded),
    }[strategy]
    for attempt in attempts:
        try:
            return attempt(value)
        except (binascii.Error, ValueError):
            continue
    if strategy == "Auto":
        return value
    raise InvalidSpecError(f"a value is not valid {strategy} (decodingStrategy {strategy})",
                           Location(field=field))  # fmt: skip


def _std(value: bytes) -> bytes:
    return base64.b64decode(value, validate=True)


def _url(value: bytes) -> bytes:
    if not re.fullmatch(rb"[A-Za-z0-9_-]*={0,2}", value):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(value)


def _std_unpadded(value: bytes) -> bytes:
    return _std(value + b"=" * (-len(value) % 4))


def _url_unpadded(value: bytes) -> bytes:
    return _url(value + b"=" * (-len(value) % 4))


def convert_keys(values: Mapping[str, bytes], strategy: str | None, field: str) -> dict[str, bytes]:
    """Keys made valid for a Secret by ``conversionStrategy``; a collision is an error."""
    converted: dict[str, bytes] = {}
    for key, value in values.items():
        if strategy == "Unicode":
            new = _INVALID_KEY_CHAR.sub(lambda m: f"_U{ord(m.group()):04x}_", key)
        else:
            new = _INVALID_KEY_CHAR.sub("_", key)
        if new in converted:
            raise InvalidSpecError(f"keys collide after conversion: '{new}'", Location(field=field))
        converted[new] = value
    return converted


def rewrite(
    values: Mapping[str, bytes], rewrites: Sequence[ExternalSecretRewrite], field: str
) -> dict[str, bytes]:
    """Keys renamed by each rewrite in turn."""
    current = dict(values)
    for index, step in enumerate(rewrites):
        where = f"{field}[{index}]"
        if step.regexp is not None:
            try:
                pattern = re.compile(step.regexp.source)
                replacement = _go_replacement(step.regexp.target)
                current = {pattern.sub(replacement, key): value for key, value in current.items()}
            except (re.error, IndexError) as exc:
                raise InvalidSpecError(f"regexp rewrite: {exc}",
                                       Location(field=f"{where}.regexp")) from None  # fmt: skip
        elif step.transform is not None:
            template = step.transform.template
            current = {
                render(template, {"value": key}, where=f"{where}.transform.template"): value
                for key, value in current.items()
            }
        else:
            raise InvalidSpecError("only regexp and transform rewrites are supported by gitmoor",
                                   Location(field=where))  # fmt: skip
    return current


def _go_replacement(target: str) -> str:
    """Go's ``Regexp.ReplaceAllString`` template (``$1``, ``${name}``, ``$$``) for re.sub."""
    out: list[str] = []
    index = 0
    while index < len(target):
        char = target[index]
        if char == "$":
            if target.startswith("$$", index):
                out.append("$")
                index += 2
                continue
            match = re.match(r"\$\{(\w+)\}|\$(\w+)", target[index:])
            if match is not None:
                out.append(f"\\g<{match.group(1) or match.group(2)}>")
                index += match.end()
                continue
        out.append("\\\\" if char == "\\" else char)
        index += 1
    return "".join(out)
