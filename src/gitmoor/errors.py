"""The one exception tree of gitmoor.

    GitmoorError
    ├── InputError            the repository says something gitmoor cannot accept
    │   ├── ManifestError     unreadable YAML, an unknown kind in a Flux group, a bad field
    │   └── GraphError        a dependsOn cycle or a dependency that does not exist
    ├── SourceError           a Git repository, chart repository or registry failed us
    │   ├── ChartNotFoundError
    │   └── AuthenticationError
    ├── RenderError           kustomize, postBuild substitution, SOPS or Helm failed
    │   └── SubstitutionError
    ├── ClusterError          the Kubernetes API refused a request or could not be reached
    └── ReleaseError          a Helm install, upgrade, rollback, test or uninstall failed

Every error carries where it happened (file, object, field) as data, so the CLI can
print it and a controller can turn it into a condition without parsing messages.
Messages never contain secret values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a repository something went wrong; every part is optional."""

    file: str | None = None
    document: int | None = None
    object: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file if self.document is None else f"{self.file}[{self.document}]")
        if self.object:
            parts.append(self.object)
        if self.field:
            parts.append(f"field {self.field}")
        return ": ".join(parts)


class GitmoorError(Exception):
    """Base of every error gitmoor raises on purpose."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        where = str(self.location)
        super().__init__(f"{where}: {message}" if where else message)

    def at(self, **where: str | int | None) -> GitmoorError:
        """The same error with more of its location filled in (parts already set stay).

        Subclasses keep the ``(message, location)`` constructor so this can rebuild them.
        """
        current = self.location
        document = where.get("document")
        merged = Location(
            file=current.file or _text(where.get("file")),
            document=current.document
            if current.document is not None
            else (document if isinstance(document, int) else None),
            object=current.object or _text(where.get("object")),
            field=current.field or _text(where.get("field")),
        )
        return type(self)(self.message, merged)


def _text(value: str | int | None) -> str | None:
    return None if value is None else str(value)


class InputError(GitmoorError):
    """The repository's content is wrong; fixing it is the user's move."""


class ManifestError(InputError):
    """A manifest cannot be read or does not match its kind's schema."""


class GraphError(InputError):
    """The dependsOn graph has a cycle or names something that does not exist."""


class SourceError(GitmoorError):
    """Fetching from a Git repository, chart repository or OCI registry failed."""


class ChartNotFoundError(SourceError):
    """A chart, or a version of it matching the requested range, does not exist."""


class AuthenticationError(SourceError):
    """A repository or registry refused the credentials given (or wanted some)."""


class RenderError(GitmoorError):
    """kustomize, substitution, decryption or Helm rendering failed."""


class SubstitutionError(RenderError):
    """postBuild substitution met a variable with no value and no default."""


class ClusterError(GitmoorError):
    """The Kubernetes API answered with an error Status, or could not be reached.

    ``code`` and ``reason`` are the Status's (``code`` 0 and reason ``Unavailable`` when no
    answer came), so callers can tell a conflict from an outage without reading messages.
    """

    def __init__(
        self, message: str, location: Location | None = None, *, code: int = 0, reason: str = ""
    ) -> None:
        super().__init__(message, location)
        self.code = code
        self.reason = reason

    def at(self, **where: str | int | None) -> GitmoorError:
        located = super().at(**where)
        return ClusterError(located.message, located.location, code=self.code, reason=self.reason)

    @property
    def unavailable(self) -> bool:
        return self.reason == "Unavailable"


class ReleaseError(GitmoorError):
    """A Helm action failed; ``timed_out`` when it ran out of time waiting for the release's
    objects to become ready."""

    def __init__(
        self, message: str, location: Location | None = None, *, timed_out: bool = False
    ) -> None:
        super().__init__(message, location)
        self.timed_out = timed_out

    def at(self, **where: str | int | None) -> GitmoorError:
        located = super().at(**where)
        return ReleaseError(located.message, located.location, timed_out=self.timed_out)
