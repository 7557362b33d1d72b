"""Chart sources: what the HelmRepository and OCIRepository controllers share, and how
the controllers that use their charts find what they stored.

For consumers (the HelmRelease controller), given a source object as the manager's cache
holds it::

    cache = chart_cache(context)
    index = stored_index(helm_repository, cache)   # HelmRepository, default type
    chart = artifact_path(oci_repository, cache)   # OCIRepository: the chart archive
    resolve_http_chart(url, name, version, cache=cache, auth=auth, index=index)

Both read ``status.artifact.digest`` and look in this process's chart cache, not at
``status.artifact.url``, so a replica that took over finds nothing rather than another
replica's path; the source's next reconcile stores it again (the cache is content-
addressed, so an unchanged index or chart gets the same digest back). A HelmRepository of
``type: oci`` stores nothing: its charts are pulled by ``resolve_oci_chart`` from
``<spec.url>/<chart>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitmoor.api.meta import LocalObjectReference
from gitmoor.api.registry import split_api_version
from gitmoor.api.source import HelmRepository, OCIRepository
from gitmoor.controllers import conditions
from gitmoor.controllers.context import Context, with_ready
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.controllers.manager import Result
from gitmoor.errors import AuthenticationError, GitmoorError
from gitmoor.manifests import KubeObject
from gitmoor.source.chartauth import NamedSecret, RepoAuth, read_repo_auth
from gitmoor.source.charts import ChartCache

CONTROLLER = "source-controller"
DEFAULT_TIMEOUT = 60.0

# Reasons, as Flux's source-controller uses them (InvalidSpec as gitmoor's GitRepository).
AUTHENTICATION_FAILED = "AuthenticationFailed"
INDEXATION_FAILED = "IndexationFailed"
OCI_ARTIFACT_PULL_FAILED = "OCIArtifactPullFailed"
URL_INVALID = "URLInvalid"
NEW_ARTIFACT = "NewArtifact"


# --- for consumers -------------------------------------------------------------------------


def chart_cache(context: Context) -> ChartCache:
    """The controllers' chart cache: beside the artifact store, where the Fetcher keeps it."""
    return ChartCache(context.store.root)


def artifact_path(source: Mapping[str, Any] | None, cache: ChartCache) -> Path | None:
    """The local file of a source's stored artifact: a HelmRepository's index (JSON), an
    OCIRepository's chart archive. None before the first artifact, for a HelmRepository of
    ``type: oci`` (which stores none), or when this process's cache does not hold it."""
    digest, kind = _digest(source), (source or {}).get("kind")
    try:
        if kind == "HelmRepository":
            path = cache.index_path(digest)
        elif kind == "OCIRepository":
            path = cache.path_for(digest)
        else:
            return None
    except ValueError:  # no digest yet, or not one this cache could have written
        return None
    return path if path.is_file() else None


def stored_index(source: Mapping[str, Any] | None, cache: ChartCache) -> dict[str, Any] | None:
    """The parsed index of a HelmRepository's artifact (for ``resolve_http_chart``'s
    ``index``), None when there is none here (see :func:`artifact_path`)."""
    if (source or {}).get("kind") != "HelmRepository" or artifact_path(source, cache) is None:
        return None
    return cache.load_index(_digest(source))


def _digest(source: Mapping[str, Any] | None) -> str:
    artifact = ((source or {}).get("status") or {}).get("artifact") or {}
    return str(artifact.get("digest") or "")


# --- for the reconcilers -------------------------------------------------------------------


async def repo_auth(context: Context, model: HelmRepository | OCIRepository) -> RepoAuth | None:
    """The credentials of ``spec.secretRef`` and ``spec.certSecretRef`` (see
    :func:`gitmoor.source.chartauth.read_repo_auth`); a named Secret that is missing is an
    InputError naming the field."""

    async def named(ref: LocalObjectReference | None, field: str) -> NamedSecret | None:
        data = await context.referenced_secret(model, ref, field)
        return None if ref is None or data is None else (ref.name, data)

    return read_repo_auth(
        model.namespace,
        await named(model.spec.secret_ref, "spec.secretRef"),
        await named(model.spec.cert_secret_ref, "spec.certSecretRef"),
    )


def failure(exc: GitmoorError | TimeoutError, *, otherwise: str, timed_out: str) -> tuple[str, str]:
    """(reason, message) for a failed fetch: ``AuthenticationFailed`` when the server
    refused the credentials (or wanted some), else ``otherwise``; ``timed_out`` is the
    message for a fetch that ran out of time."""
    if isinstance(exc, TimeoutError):
        return otherwise, timed_out
    return (AUTHENTICATION_FAILED if isinstance(exc, AuthenticationError) else otherwise), str(exc)


def human_size(size: int) -> str:
    """A size as Flux's events print it (go-units HumanSize: decimal units, 4 digits)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.4g}{unit}"


async def record_failure(
    context: Context,
    obj: KubeObject,
    *,
    reason: str,
    message: str,
    started: float,
    interval: float,
    error: BaseException,
) -> Result:
    """Ready False (FetchFailed True) with the last artifact kept, a Warning Event, and a
    retry at the interval (after the manager's back-off)."""
    status = with_ready(obj, False, reason, message)
    status["conditions"] = conditions.set_condition(
        status["conditions"], conditions.FETCH_FAILED, True, reason, message,
        generation=obj["metadata"].get("generation"),
    )  # fmt: skip
    written = await context.write_status(obj, status)
    await context.recorder(CONTROLLER).record(
        written, type="Warning", reason=reason, message=message
    )
    context.finished(written, started=started, revision=artifact_revision(obj), ready="False",
                     error=error)  # fmt: skip
    return Result(interval, failed=True)


async def record_artifact(
    context: Context,
    obj: KubeObject,
    record: dict[str, Any],
    *,
    message: str,
    event: str,
    started: float,
    interval: float | None,
    **others: Any,
) -> Result:
    """Ready True and ArtifactInStorage with ``record`` as ``status.artifact``; a Normal
    ``NewArtifact`` Event (``event``) when the digest moved, a ``Succeeded`` one when a
    failure is over. ``others`` go into the status as they are."""
    old = (obj.get("status") or {}).get("artifact") or {}
    if old.get("digest") == record["digest"]:
        record["lastUpdateTime"] = old.get("lastUpdateTime", record["lastUpdateTime"])
    was_failing = conditions.find(
        (obj.get("status") or {}).get("conditions"), conditions.FETCH_FAILED
    )
    status = with_ready(obj, True, conditions.SUCCEEDED, message, artifact=record,
                        url=record["url"], **others)  # fmt: skip
    status["conditions"] = conditions.set_condition(
        conditions.remove(status["conditions"], conditions.FETCH_FAILED),
        conditions.ARTIFACT_IN_STORAGE, True, conditions.SUCCEEDED, message,
        generation=obj["metadata"].get("generation"),
    )  # fmt: skip
    written = await context.write_status(obj, status)
    group, _ = split_api_version(str(written.get("apiVersion", "")))
    annotations = {f"{group}/revision": record["revision"], f"{group}/digest": record["digest"]}
    if old.get("digest") != record["digest"]:
        await context.recorder(CONTROLLER).record(
            written, type="Normal", reason=NEW_ARTIFACT, message=event, annotations=annotations
        )
    elif was_failing:
        await context.recorder(CONTROLLER).record(
            written, type="Normal", reason=conditions.SUCCEEDED, message=event,
            annotations=annotations,
        )  # fmt: skip
    context.finished(written, started=started, revision=record["revision"], ready="True")
    return Result(interval)


def new_record(path: str, file: Path, revision: str, digest: str) -> dict[str, Any]:
    """``status.artifact`` for a file in the chart cache; ``path`` is Flux's storage path."""
    return {
        "path": path,
        "url": file.as_uri(),
        "revision": revision,
        "digest": digest,
        "lastUpdateTime": conditions.now(),
        "size": file.stat().st_size,
    }
