"""Reading the credentials a source's Secret holds."""

from __future__ import annotations

from collections.abc import Mapping

from gitmoor.errors import InputError, Location

__all__ = ["secret_text"]


def secret_text(data: Mapping[str, bytes], key: str) -> str | None:
    """``data[key]`` as text, None if absent; InputError naming ``data.<key>`` if not UTF-8.

    ``data`` is a Secret's ``data`` with the values already base64-decoded. The message
    never quotes the value.
    """
    value = data.get(key)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise InputError(
            f"the Secret's {key} is not UTF-8 text", Location(field=f"data.{key}")
        ) from None
