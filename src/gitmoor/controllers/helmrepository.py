"""The HelmRepository controller: the repository's index on each interval, as an artifact.

A HelmRepository of the default type has its ``index.yaml`` fetched (basic auth from
``spec.secretRef``) and kept in the chart cache under its digest, which is also the
artifact's revision (``sha256:<hex>``): an unchanged index keeps its revision, a chart
published moves it and records a ``NewArtifact`` Event. A failed fetch keeps the last
artifact, so HelmReleases go on from it, and says why in Ready (``AuthenticationFailed``
when the server refused the credentials, ``IndexationFailed`` otherwise).

A HelmRepository of ``type: oci`` is only a place charts are pulled from; nothing is
fetched for it. Today's source-controller leaves its status empty and ``flux get sources
helm`` prints it Ready with "Helm repository is Ready"; gitmoor writes that Ready condition
(and observedGeneration) into the status, so health checks and ``kubectl get`` see it as
Ready too, and keeps no finalizer and no artifact for it.
"""

from __future__ import annotations

import asyncio
import time

from gitmoor.api.meta import duration_seconds
from gitmoor.api.source import HelmRepository
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.chartsources import (
    AUTHENTICATION_FAILED,
    DEFAULT_TIMEOUT,
    INDEXATION_FAILED,
    URL_INVALID,
    chart_cache,
    failure,
    human_size,
    new_record,
    record_artifact,
    record_failure,
    repo_auth,
)
from gitmoor.controllers.context import (
    Reconciling,
    base_status,
    with_stalled,
)
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.controllers.manager import Result
from gitmoor.errors import GitmoorError
from gitmoor.manifests import KubeObject
from gitmoor.source.charts import cache_index

KIND = Kind("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories", True)
DEFAULT_INTERVAL = 60.0
"""Flux's requeue when ``spec.interval`` is not set."""
OCI_READY = "Helm repository is Ready"


class HelmRepositoryReconciler(Reconciling):
    kind = KIND

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        model = await context.opening(obj, HelmRepository, revision=artifact_revision(obj))
        if model is None:
            return Result(None)
        if model.spec.is_oci:
            return await self._static(obj, model, started)
        obj = await context.ensure_finalizer(obj)
        interval = (
            duration_seconds(model.spec.interval) if model.spec.interval else DEFAULT_INTERVAL
        )
        timeout = duration_seconds(model.spec.timeout) if model.spec.timeout else DEFAULT_TIMEOUT
        try:
            auth = await repo_auth(context, model)
        except GitmoorError as exc:
            return await record_failure(context, obj, reason=AUTHENTICATION_FAILED,
                                        message=str(exc), started=started, interval=interval,
                                        error=exc)  # fmt: skip
        cache = chart_cache(context)
        try:
            index = await asyncio.wait_for(
                asyncio.to_thread(cache_index, model.spec.url, cache=cache, auth=auth), timeout
            )
        except (GitmoorError, TimeoutError) as exc:
            reason, message = failure(
                exc, otherwise=INDEXATION_FAILED,
                timed_out=f"timed out after {timeout:g}s fetching the index of {model.spec.url}",
            )  # fmt: skip
            return await record_failure(context, obj, reason=reason, message=message,
                                        started=started, interval=interval, error=exc)  # fmt: skip
        hexdigest = index.digest.removeprefix("sha256:")
        record = new_record(
            f"helmrepository/{model.namespace}/{model.name}/index-{hexdigest}.yaml",
            index.path, index.digest, index.digest,
        )  # fmt: skip
        return await record_artifact(
            context, obj, record,
            message=f"stored artifact: revision '{index.digest}'",
            event=f"stored fetched index of size {human_size(index.size)} from "
            f"'{model.spec.url}'",
            started=started, interval=interval,
        )  # fmt: skip

    async def _static(self, obj: KubeObject, model: HelmRepository, started: float) -> Result:
        """A ``type: oci`` repository: Ready at once, nothing stored, nothing to requeue."""
        context = self.context
        if not model.spec.url.startswith("oci://"):
            message = f"URL scheme of '{model.spec.url}' is not supported for type 'oci'"
            await context.write_status(obj, with_stalled(obj, URL_INVALID, message))
            return Result(None)
        # A repository switched from the default type loses what that type kept.
        await context.drop_finalizer(obj)
        generation = obj["metadata"].get("generation")
        kept = [
            c for c in (obj.get("status") or {}).get("conditions") or []
            if c.get("type") == conditions.READY
        ]  # fmt: skip
        status = {
            **base_status(obj), "artifact": None, "url": None,
            "conditions": conditions.set_condition(
                kept, conditions.READY, True, conditions.SUCCEEDED, OCI_READY,
                generation=generation,
            ),
        }  # fmt: skip
        written = await context.write_status(obj, status)
        context.finished(written, started=started, revision="", ready="True")
        return Result(None)
