"""Calls into Helm's C library with options the helm_python wrappers have no parameter for.

The library's functions take their options as one JSON object and accept more than the
wrappers pass: ``disable_hooks``, ``wait_for_jobs``, ``force_replace`` and
``force_conflicts`` for releases; ``ca_file``, ``cert_file`` and ``key_file`` for chart
repositories and registry logins. This is the one place gitmoor reaches past the
wrappers, so a change of the binding shows up here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import helm_python
from helm_python import _native

__all__ = ["NO_CLIENT", "call_status", "call_string", "options_json", "raw_handle"]

NO_CLIENT = 0
"""The registry-client handle that tells the library to use a default client."""


def options_json(options: Mapping[str, Any]) -> str:
    """``options`` as the library reads them: unset (None) and false flags left out."""
    return json.dumps({k: v for k, v in options.items() if v is not None and v is not False})


def raw_handle(value: helm_python.NativeHandle | int) -> Any:
    """The argument the library takes for a handle: an open wrapper object's, or a bare
    number such as :data:`NO_CLIENT`."""
    if isinstance(value, int):
        return _native.HANDLE(value)
    return value._raw()


def call_string(function: str, *args: Any) -> str:
    """Call ``function``; its string result. Errors raise helm_python.HelmError."""
    return _native.call_string(function, *args)


def call_status(function: str, *args: Any) -> None:
    """Call ``function``, which returns nothing but a status."""
    _native.call_status(function, *args)
