"""API errors as the Kubernetes API server reports them: a metav1.Status and its HTTP code."""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """An error answered to the client as a ``Status`` object with ``code``."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:  # the apiserver leaves an unknown reason out
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        return body


def _about_object(
    code: int, reason: str, group: str, resource: str, name: str, message: str
) -> ApiError:
    """An error about one named object, with the details the apiserver attaches."""
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        code,
        reason,
        message.format(resource=qualified, name=name),
        details={"name": name, "group": group, "kind": resource},
    )


def not_found(group: str, resource: str, name: str) -> ApiError:
    return _about_object(404, "NotFound", group, resource, name, '{resource} "{name}" not found')


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return _about_object(
        409, "AlreadyExists", group, resource, name, '{resource} "{name}" already exists'
    )


def conflict(group: str, resource: str, name: str, why: str) -> ApiError:
    return _about_object(
        409,
        "Conflict",
        group,
        resource,
        name,
        'Operation cannot be fulfilled on {resource} "{name}": '
        + why.replace("{", "{{").replace("}", "}}"),
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid as apimachinery's ``NewInvalid`` words it: ``Kind.group "name" is
    invalid: ...`` (``Kind`` alone for the core group), the causes as ``field: message``,
    duplicates once, bracketed when more than one remains. Empty details are left out, as
    the Status JSON omits them."""
    qualified = f"{kind}.{group}" if group else kind
    messages = list(dict.fromkeys(f"{c.get('field', '')}: {c.get('message', '')}" for c in causes))
    message = f"{qualified} {json.dumps(name, ensure_ascii=False)} is invalid"
    if messages:
        summary = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        message = f"{message}: {summary}"
    fields = (("name", name), ("group", group), ("kind", kind), ("causes", causes))
    return ApiError(422, "Invalid", message, details={key: value for key, value in fields if value})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
