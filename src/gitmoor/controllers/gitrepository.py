"""The GitRepository controller: fetch on each interval, record the artifact.

The fetch is :func:`gitmoor.source.git.fetch_git` (a poll that finds the tip unchanged
costs one ref listing and no copy). A new revision writes ``status.artifact`` and an Event;
a failed fetch keeps the last artifact, so Kustomizations go on from it, and says why in
Ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from gitmoor.api.meta import duration_seconds
from gitmoor.api.source import GitRepository
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import (
    Reconciling,
    with_ready,
)
from gitmoor.controllers.manager import Result
from gitmoor.errors import GitmoorError
from gitmoor.manifests import KubeObject
from gitmoor.source.fetcher import git_ref
from gitmoor.source.git import GitAuth, fetch_git

KIND = Kind("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories", True)
CONTROLLER = "source-controller"
DEFAULT_TIMEOUT = 60.0


def artifact_revision(obj: Mapping[str, Any] | None) -> str:
    """The revision of a source's stored artifact ("" when it has none yet)."""
    artifact = ((obj or {}).get("status") or {}).get("artifact") or {}
    return str(artifact.get("revision") or "")


class GitRepositoryReconciler(Reconciling):
    kind = KIND

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        model = await context.opening(obj, GitRepository, revision=artifact_revision(obj))
        if model is None:
            return Result(None)
        obj = await context.ensure_finalizer(obj)
        interval = duration_seconds(model.spec.interval)
        timeout = duration_seconds(model.spec.timeout) if model.spec.timeout else DEFAULT_TIMEOUT
        previous = artifact_revision(obj)
        try:
            auth = await self._auth(model)
            artifact = await asyncio.wait_for(
                asyncio.to_thread(
                    fetch_git, model.spec.url, git_ref(model), store=context.store, auth=auth,
                    ignore=model.spec.ignore,
                ),
                timeout,
            )  # fmt: skip
        except (GitmoorError, TimeoutError) as exc:
            message = str(exc) if isinstance(exc, GitmoorError) else f"timed out after {timeout:g}s"
            status = with_ready(obj, False, conditions.GIT_OPERATION_FAILED, message)
            status["conditions"] = conditions.set_condition(
                status["conditions"], conditions.FETCH_FAILED, True,
                conditions.GIT_OPERATION_FAILED, message,
                generation=obj["metadata"].get("generation"),
            )  # fmt: skip
            written = await context.write_status(obj, status)
            await context.recorder(CONTROLLER).record(
                written, type="Warning", reason=conditions.GIT_OPERATION_FAILED, message=message
            )
            context.finished(written, started=started, revision=previous, ready="False",
                             error=exc)  # fmt: skip
            return Result(interval, failed=True)
        record = {
            "path": f"gitrepository/{model.namespace}/{model.name}/{artifact.digest}.tar.gz",
            "url": artifact.path.as_uri(),
            "revision": artifact.revision,
            "digest": f"sha256:{artifact.digest}",
            "lastUpdateTime": conditions.now(),
        }
        old_artifact = (obj.get("status") or {}).get("artifact") or {}
        if old_artifact.get("digest") == record["digest"]:
            record["lastUpdateTime"] = old_artifact.get("lastUpdateTime", record["lastUpdateTime"])
        message = f"stored artifact for revision '{artifact.revision}'"
        status = with_ready(obj, True, conditions.SUCCEEDED, message, artifact=record,
                            url=model.spec.url)  # fmt: skip
        status["conditions"] = conditions.set_condition(
            conditions.remove(status["conditions"], conditions.FETCH_FAILED),
            conditions.ARTIFACT_IN_STORAGE, True, conditions.SUCCEEDED, message,
            generation=obj["metadata"].get("generation"),
        )  # fmt: skip
        written = await context.write_status(obj, status)
        if artifact.revision != previous:
            await context.recorder(CONTROLLER).record(
                written, type="Normal", reason="NewArtifact",
                message=f"stored artifact with revision '{artifact.revision}' from "
                f"'{model.spec.url}'",
            )  # fmt: skip
        context.finished(written, started=started, revision=artifact.revision, ready="True")
        return Result(interval)

    async def _auth(self, model: GitRepository) -> GitAuth | None:
        data = await self.context.referenced_secret(model, model.spec.secret_ref,
                                                    "spec.secretRef")  # fmt: skip
        return GitAuth.from_secret_data(data) if data is not None else None
