"""The OCIRepository controller: the chart a reference picks, pulled on each interval.

``spec.ref`` resolves as in :func:`gitmoor.source.charts.resolve_oci_chart`: ``digest``
pins, ``semver`` takes the newest tag in range, else ``tag`` (``latest`` by default);
``spec.insecure`` allows plain HTTP, ``spec.secretRef`` logs in. The artifact is the chart
archive, kept in the chart cache by its digest; its revision is written as Flux writes it,
``<tag>@sha256:<manifest>`` (``sha256:<manifest>`` for a pinned digest). A new revision
records a ``NewArtifact`` Event; a failed pull keeps the last artifact and says why in
Ready (``AuthenticationFailed`` when the registry refused the credentials,
``OCIArtifactPullFailed`` otherwise). A reference that cannot be read stalls the object
until its spec changes, as does a setting not supported yet (``spec.ref.semverFilter``,
``spec.verify``).
"""

from __future__ import annotations

import asyncio
import time

from gitmoor.api.meta import duration_seconds
from gitmoor.api.source import OCIRepository
from gitmoor.cluster import Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.chartsources import (
    AUTHENTICATION_FAILED,
    DEFAULT_TIMEOUT,
    OCI_ARTIFACT_PULL_FAILED,
    chart_cache,
    failure,
    new_record,
    record_artifact,
    record_failure,
    repo_auth,
)
from gitmoor.controllers.context import (
    Reconciling,
    with_stalled,
)
from gitmoor.controllers.gitrepository import artifact_revision
from gitmoor.controllers.manager import Result
from gitmoor.errors import GitmoorError, InputError
from gitmoor.manifests import KubeObject
from gitmoor.source.charts import resolve_oci_chart

KIND = Kind("source.toolkit.fluxcd.io", "v1", "OCIRepository", "ocirepositories", True)


class OCIRepositoryReconciler(Reconciling):
    kind = KIND

    async def reconcile(self, obj: KubeObject) -> Result:
        context = self.context
        started = time.monotonic()
        model = await context.opening(obj, OCIRepository, revision=artifact_revision(obj))
        if model is None:
            return Result(None)
        unsupported = _unsupported(model)
        if unsupported:
            # Ignoring these would pick other tags, or skip a signature check, silently.
            message = (f"{model.display}: {', '.join(unsupported)} not supported yet; "
                       "remove it to pull without it")  # fmt: skip
            await context.write_status(obj, with_stalled(obj, conditions.INVALID_SPEC, message))
            return Result(None)
        obj = await context.ensure_finalizer(obj)
        interval = duration_seconds(model.spec.interval)
        timeout = duration_seconds(model.spec.timeout) if model.spec.timeout else DEFAULT_TIMEOUT
        try:
            auth = await repo_auth(context, model)
        except GitmoorError as exc:
            return await record_failure(context, obj, reason=AUTHENTICATION_FAILED,
                                        message=str(exc), started=started, interval=interval,
                                        error=exc)  # fmt: skip
        ref, layers = model.spec.ref, model.spec.layer_selector
        try:
            chart = await asyncio.wait_for(
                asyncio.to_thread(
                    resolve_oci_chart, model.spec.url,
                    tag=ref.tag if ref else None,
                    semver=ref.semver if ref else None,
                    digest=ref.digest if ref else None,
                    cache=chart_cache(context), auth=auth, plain_http=bool(model.spec.insecure),
                    layer_selector_media_type=layers.media_type if layers else None,
                ),
                timeout,
            )  # fmt: skip
        except InputError as exc:
            # The reference itself is wrong: only a change to the spec can mend it.
            message = str(exc.at(object=model.display))
            await context.write_status(obj, with_stalled(obj, conditions.INVALID_SPEC, message))
            context.finished(obj, started=started, revision=artifact_revision(obj),
                             ready="False", error=exc)  # fmt: skip
            return Result(None)
        except (GitmoorError, TimeoutError) as exc:
            reason, message = failure(
                exc, otherwise=OCI_ARTIFACT_PULL_FAILED,
                timed_out=f"timed out after {timeout:g}s pulling from {model.spec.url}",
            )  # fmt: skip
            return await record_failure(context, obj, reason=reason, message=message,
                                        started=started, interval=interval, error=exc)  # fmt: skip
        manifest = chart.revision.rpartition("sha256:")[2]
        record = new_record(
            f"ocirepository/{model.namespace}/{model.name}/{manifest}.tar.gz",
            chart.path, chart.revision, chart.digest,
        )  # fmt: skip
        observed = {"observedLayerSelector": obj["spec"]["layerSelector"]} if layers else {}
        return await record_artifact(
            context, obj, record,
            message=f"stored artifact for digest '{chart.revision}'",
            event=f"stored artifact with revision '{chart.revision}' from '{model.spec.url}'",
            started=started, interval=interval, **observed,
        )  # fmt: skip


def _unsupported(model: OCIRepository) -> list[str]:
    fields = {
        "spec.ref.semverFilter": model.spec.ref is not None and model.spec.ref.semver_filter,
        "spec.verify": model.spec.verify is not None,
    }
    return [name for name, given in fields.items() if given]
