"""What can go wrong fetching secrets, as a tree callers catch at the level they need::

    SecretsError
    ├── InvalidStoreError      the store's spec, or a Secret or ServiceAccount it names, is
    │                          wrong (External Secrets' InvalidProviderConfig)
    ├── InvalidSpecError       an ExternalSecret asks for something impossible (a bad
    │                          template, a remote key's version on KV v1 ...)
    └── ProviderError          the provider answered with an error or not at all
        ├── SecretNotFoundError    no secret at that path (or no version of it)
        ├── MissingPropertyError   the secret exists, the property does not
        ├── UnauthorizedError      login refused, or the token may not read the path
        └── UnavailableError       the provider could not be reached or failed

Messages name the store, the path, the property and the field, never a secret value or a
credential: they end up in conditions, Events and logs.
"""

from __future__ import annotations

from gitmoor.errors import GitmoorError


class SecretsError(GitmoorError):
    """Base of the errors of the secrets package."""


class InvalidStoreError(SecretsError):
    """The store cannot be used as configured; fixing the store (or the Secrets and
    ServiceAccounts it names) is the user's move."""


class InvalidSpecError(SecretsError):
    """The ExternalSecret's own spec cannot be honoured."""


class ProviderError(SecretsError):
    """The secret store answered with an error, or did not answer."""


class SecretNotFoundError(ProviderError):
    """Nothing is stored at the path (or the version asked for was deleted)."""


class MissingPropertyError(ProviderError):
    """The secret exists but has no such property."""


class UnauthorizedError(ProviderError):
    """The provider refused the credentials, or the token may not do what was asked."""


class UnavailableError(ProviderError):
    """The provider could not be reached, timed out, or failed on its side."""
