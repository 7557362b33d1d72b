"""Helm releases in a cluster, through the Helm SDK: what is installed, and the actions.

The records are Helm's own (Secrets ``sh.helm.release.v1.<name>.v<N>`` in the storage
namespace), so ``helm list``/``helm history`` and gitmoor see the same releases. Every call
blocks (the SDK is a C library); controllers run them in a thread. Failures come out as
:class:`gitmoor.errors.ReleaseError` with Helm's message; a wait that ran out of time is
``timed_out``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
from helm_python import config as hp_config

from gitmoor import helmnative
from gitmoor.errors import Location, ReleaseError

WAIT = "watcher"
"""Helm's kstatus-based wait: every object of the release Current (Deployments rolled out,
Jobs complete …), as helm-controller waits."""


@dataclass(frozen=True)
class Release:
    """One revision of a release, as Helm stored it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart_name: str
    chart_version: str
    app_version: str
    deployed_at: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Release:
        return cls(
            name=str(raw.get("name", "")),
            namespace=str(raw.get("namespace", "")),
            revision=int(raw.get("revision") or raw.get("version") or 0),
            status=str(raw.get("status", "")),
            chart_name=str(raw.get("chart_name", "")),
            chart_version=str(raw.get("chart_version", "")),
            app_version=str(raw.get("app_version") or ""),
            deployed_at=str(raw.get("deployed_at") or ""),
        )

    @property
    def deployed(self) -> bool:
        return self.status == "deployed"


@dataclass(frozen=True)
class Target:
    """Where a release lives: the kubeconfig, the release name and its namespaces."""

    kubeconfig: Path | None
    name: str
    namespace: str
    storage_namespace: str
    what: str
    """How errors name the object behind the release (``HelmRelease ns/name``)."""
    context: str | None = None
    """The kubeconfig context; None for the file's current one."""


@contextlib.contextmanager
def _helm(target: Target) -> Iterator[helm_python.Config]:
    config = helm_python.Config(
        kubeconfig_path=str(target.kubeconfig) if target.kubeconfig else None,
        kube_context=target.context,
        namespace=target.storage_namespace,
    )
    try:
        yield config
    finally:
        config.close()


def _error(target: Target, action: str, exc: helm_python.HelmError) -> ReleaseError:
    detail = str(getattr(exc, "detail", exc))
    timed_out = isinstance(exc, helm_python.HelmCancelledError) or "deadline exceeded" in detail
    return ReleaseError(
        f"Helm {action} failed for release {target.namespace}/{target.name}: {detail}",
        Location(object=target.what),
        timed_out=timed_out,
    )


def current(target: Target) -> Release | None:
    """The release's latest revision, or None when there is none."""
    with _helm(target) as helm:
        try:
            return Release.of(helm.status(target.name))
        except helm_python.HelmNotFoundError:
            return None
        except helm_python.HelmError as exc:
            raise _error(target, "status", exc) from None


def history(target: Target) -> list[Release]:
    """Every stored revision, newest first."""
    with _helm(target) as helm:
        try:
            found = [Release.of(r) for r in helm.history(target.name)]
        except helm_python.HelmNotFoundError:
            return []
        except helm_python.HelmError as exc:
            raise _error(target, "history", exc) from None
    return sorted(found, key=lambda r: r.revision, reverse=True)


def manifest(target: Target) -> str:
    """The rendered objects of the latest revision, as Helm stored them (hooks and chart
    CRDs aside); "" when there is no release."""
    with _helm(target) as helm:
        try:
            return str(helm.status(target.name).get("manifest") or "")
        except helm_python.HelmNotFoundError:
            return ""
        except helm_python.HelmError as exc:
            raise _error(target, "status", exc) from None


@dataclass(frozen=True)
class Options:
    """What helm-controller passes to Helm beyond the Helm SDK wrapper's parameters."""

    disable_hooks: bool = False
    wait_for_jobs: bool = False
    force_replace: bool = False
    """Upgrades and rollbacks replace objects instead of patching them (``upgrade.force``)."""


def _native(
    helm: helm_python.Config,
    function: str,
    chart: helm_python.Chart | None,
    *args: Any,
    options: Mapping[str, Any],
) -> Any:
    """Call Helm's C library as helm_python's methods do, with the options JSON extended:
    the library takes disable_hooks, wait_for_jobs, force_replace and force_conflicts, but
    the wrapper's methods have no parameters for them."""
    present = helmnative.options_json(options)
    if chart is None:
        return helmnative.call_string(function, helm._raw(), *args, present)
    handle, ref = helm._chart_args(chart)
    payload = helmnative.call_string(
        function, helm._raw(), helm._context_arg(None), handle, ref, *args, present
    )
    return hp_config._loads_obj(payload)


def install(
    target: Target,
    chart: helm_python.Chart,
    values: Mapping[str, Any],
    *,
    timeout: float,
    wait: bool,
    create_namespace: bool,
    options: Options = Options(),
) -> Release:
    with _helm(target) as helm:
        try:
            raw = _native(
                helm, "helm_install", chart, target.name, json.dumps(dict(values)),
                options={"namespace": target.namespace, "timeout_seconds": int(timeout),
                         "wait": WAIT if wait else None, "create_namespace": create_namespace,
                         "disable_hooks": options.disable_hooks,
                         "wait_for_jobs": options.wait_for_jobs and wait},
            )  # fmt: skip
        except helm_python.HelmError as exc:
            raise _error(target, "install", exc) from None
    return Release.of(raw)


def upgrade(
    target: Target,
    chart: helm_python.Chart,
    values: Mapping[str, Any],
    *,
    timeout: float,
    wait: bool,
    max_history: int,
    cleanup_on_fail: bool,
    options: Options = Options(),
) -> Release:
    """An upgrade that takes over fields other managers changed (``force_conflicts``, as
    helm-controller's server-side apply does), or replaces objects with ``force_replace``."""
    with _helm(target) as helm:
        try:
            raw = _native(
                helm, "helm_upgrade", chart, target.name, json.dumps(dict(values)),
                options={"namespace": target.namespace, "timeout_seconds": int(timeout),
                         "wait": WAIT if wait else None, "max_history": max_history,
                         "cleanup_on_fail": cleanup_on_fail, "reset_values": True,
                         "disable_hooks": options.disable_hooks,
                         "wait_for_jobs": options.wait_for_jobs and wait,
                         "force_replace": options.force_replace,
                         "force_conflicts": not options.force_replace},
            )  # fmt: skip
        except helm_python.HelmError as exc:
            raise _error(target, "upgrade", exc) from None
    return Release.of(raw)


def rollback(
    target: Target, revision: int, *, timeout: float, wait: bool, options: Options = Options()
) -> None:
    with _helm(target) as helm:
        try:
            helmnative.call_status(
                "helm_rollback", helm._raw(), target.name,
                helmnative.options_json({
                    "version": revision, "timeout_seconds": int(timeout),
                    "wait": WAIT if wait else None, "disable_hooks": options.disable_hooks,
                    "wait_for_jobs": options.wait_for_jobs and wait,
                    "force_replace": options.force_replace,
                }),
            )  # fmt: skip
        except helm_python.HelmError as exc:
            raise _error(target, "rollback", exc) from None


def uninstall(
    target: Target,
    *,
    timeout: float,
    keep_history: bool,
    wait: bool,
    options: Options = Options(),
) -> None:
    with _helm(target) as helm:
        try:
            _native(
                helm, "helm_uninstall", None, target.name,
                options={"keep_history": keep_history, "timeout_seconds": int(timeout),
                         "ignore_not_found": True, "wait": WAIT if wait else None,
                         "disable_hooks": options.disable_hooks},
            )  # fmt: skip
        except helm_python.HelmError as exc:
            raise _error(target, "uninstall", exc) from None


def test(target: Target, *, timeout: float) -> None:
    with _helm(target) as helm:
        try:
            helm.test(target.name, timeout=int(timeout))
        except helm_python.HelmError as exc:
            raise _error(target, "test", exc) from None
