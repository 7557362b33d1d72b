"""``gitmoor up`` (the whole pipeline on the sandbox) and ``gitmoor controllers``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.live import Live
from rich.table import Table

from gitmoor.bootstrap import local_repository
from gitmoor.cli.common import EXIT_CHANGES, EXIT_OK, Output, default_cache_dir
from gitmoor.cli.sandbox_cmd import default_sandbox_dir
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.externalsecret import attempted, list_external_secrets
from gitmoor.controllers.leader import LeaderElector
from gitmoor.controllers.run import (
    apply_bootstrap,
    bootstrap_objects,
    build_manager,
    install_crds,
    run_leading,
    run_until,
)
from gitmoor.demo.homelab import (
    HOMELAB_DIR,
    ROOT_PATH,
    demo_decryption_secret,
    serve_example_charts,
)
from gitmoor.manifests import KubeObject
from gitmoor.observe.logs import configure_logging
from gitmoor.sandbox import process
from gitmoor.secrets import devserver

LEASE_NAME = "gitmoor-controllers"
HELM_RELEASES = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
# Reasons that mean "still on its way" rather than "this is how it ended".
_PENDING_REASONS = {conditions.DEPENDENCY_NOT_READY, conditions.ARTIFACT_FAILED}


def settled(items: Sequence[Mapping[str, Any]]) -> bool:
    """Every Kustomization has finished its latest attempt: Ready, or failed for a reason
    of its own, or waiting on a dependency that has itself failed."""
    by_name = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in items}

    def done(obj: Mapping[str, Any], seen: frozenset[str]) -> bool:
        status = obj.get("status") or {}
        ready = conditions.find(status.get("conditions"), conditions.READY)
        if ready is None or status.get("observedGeneration") != obj["metadata"].get("generation"):
            return False
        if ready.get("status") == "True" or ready.get("reason") not in _PENDING_REASONS:
            return True
        if ready.get("reason") != conditions.DEPENDENCY_NOT_READY:
            return False
        # Waiting is final only behind a dependency that has itself ended not Ready.
        namespace = obj["metadata"].get("namespace")
        for dep in (obj.get("spec") or {}).get("dependsOn") or []:
            other = by_name.get((dep.get("namespace") or namespace, dep.get("name")))
            name = str(dep.get("name"))
            if other is None or name in seen:
                return True  # a missing dependency, or a cycle: nothing will change
            if not conditions.is_true(other) and done(other, seen | {name}):
                return True
        return False

    return bool(items) and all(done(o, frozenset()) for o in items)


def _table(items: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("KUSTOMIZATION", no_wrap=True, min_width=14)
    table.add_column("READY", no_wrap=True, min_width=5)
    table.add_column("REVISION", no_wrap=True, min_width=24)
    table.add_column("MESSAGE", no_wrap=True, overflow="ellipsis", max_width=30)
    for obj in sorted(items, key=lambda o: str(o["metadata"]["name"])):
        status = obj.get("status") or {}
        ready = conditions.find(status.get("conditions"), conditions.READY) or {}
        message = str(ready.get("message", "")).splitlines()
        table.add_row(
            obj["metadata"]["name"],
            str(ready.get("status", "Unknown")),
            _short(str(status.get("lastAppliedRevision", ""))),
            message[0] if message else "",
        )
    return table


def _short(revision: str) -> str:
    """``production@sha1:ec33058a0517…`` → ``production@sha1:ec33058a``, as flux prints."""
    name, _, digest = revision.rpartition(":")
    return f"{name}:{digest[:8]}" if name else revision


async def _up(
    cluster: Cluster,
    *,
    url: str,
    branch: str,
    path: str,
    cache_dir: Path,
    once: bool,
    timeout: float,
    output: Output,
    kubeconfig: Path | None,
    settings: list[KubeObject],
) -> int:
    output.info("► installing CustomResourceDefinitions")
    await install_crds(cluster)
    output.info(f"► bootstrapping GitRepository flux-system: {url} branch {branch}, path {path}")
    bootstrap = bootstrap_objects(url, branch=branch, path=path)
    # What the example reads from the cluster: the cluster-settings ConfigMap it
    # substitutes from and the sops-age Secret it decrypts with.
    await apply_bootstrap(cluster, [bootstrap[0], *settings, *bootstrap[1:]])
    manager, _ = build_manager(
        cluster, cache_dir=cache_dir, dependency_requeue=2.0, kubeconfig=kubeconfig
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(run_until(manager, stop))
    deadline = time.monotonic() + timeout
    items: list[Any] = []
    with Live(_table(items), console=output.err, refresh_per_second=2, transient=False) as live:
        while not runner.done():
            items = await cluster.list(*KUSTOMIZATIONS)
            live.update(_table(items))
            # ExternalSecrets look healthy before their first sync: wait for that too.
            synced = attempted(await list_external_secrets(cluster))
            if once and ((settled(items) and synced) or time.monotonic() > deadline):
                stop.set()
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(stop.wait()), 1.0)
    await runner
    helm_releases = await cluster.list(*HELM_RELEASES)
    if helm_releases:
        output.err.print()
        output.err.print(_releases_table(helm_releases))
    external_secrets = await list_external_secrets(cluster)
    everything = [*items, *helm_releases, *external_secrets]
    ready = sum(conditions.is_true(o) for o in everything)
    output.info(
        f"\n{sum(conditions.is_true(o) for o in items)}/{len(items)} Kustomizations Ready, "
        f"{sum(conditions.is_true(o) for o in helm_releases)}/{len(helm_releases)} "
        "HelmReleases Ready"
        + (f", {sum(conditions.is_true(o) for o in external_secrets)}/{len(external_secrets)} "
           "ExternalSecrets Ready" if external_secrets else "")
    )  # fmt: skip
    for obj in everything:
        if not conditions.is_true(obj):
            found = conditions.find((obj.get("status") or {}).get("conditions"), conditions.READY)
            why = (found or {}).get("message", "not reconciled yet")
            output.info(f"✗ {obj['kind']} {obj['metadata']['name']}: {why}")
    return EXIT_OK if ready == len(everything) else EXIT_CHANGES


def _releases_table(items: Sequence[Mapping[str, Any]]) -> Table:
    """Each HelmRelease in dependsOn tiers' namespaces: Ready, Helm revision, chart."""
    table = Table(box=None, pad_edge=False)
    table.add_column("HELMRELEASE", no_wrap=True, min_width=24)
    table.add_column("READY", no_wrap=True, min_width=5)
    table.add_column("REVISION", no_wrap=True)
    table.add_column("CHART", no_wrap=True)
    for obj in sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        status = obj.get("status") or {}
        history = status.get("history") or [{}]
        ready = conditions.find(status.get("conditions"), conditions.READY) or {}
        table.add_row(
            f"{obj['metadata']['namespace']}/{obj['metadata']['name']}",
            str(ready.get("status", "Unknown")),
            str(history[0].get("version", "")),
            f"{history[0].get('chartName', '')}@{history[0].get('chartVersion', '')}",
        )
    return table


@click.command()
@click.option("--dir", "state_dir", type=click.Path(path_type=Path),
              help="Sandbox state directory (default: $GITMOOR_SANDBOX_DIR or "
              "~/.local/share/gitmoor/sandbox).")  # fmt: skip
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Use this cluster instead of starting the sandbox.")  # fmt: skip
@click.option("--repo", help="Git URL or local repository to follow (default: a Git copy of "
              "the bundled examples/homelab under the sandbox directory).")  # fmt: skip
@click.option("--branch", default="production", show_default=True)
@click.option("--path", "path", default=ROOT_PATH, show_default=True,
              help="Directory of the cluster's root Kustomization in the repository.")  # fmt: skip
@click.option("--once", is_flag=True, help="Exit once every Kustomization has settled, with "
              "a summary (exit 0 when all are Ready, 1 otherwise).")  # fmt: skip
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --once waits.")
def up(
    state_dir: Path | None,
    kubeconfig: Path | None,
    repo: str | None,
    branch: str,
    path: str,
    once: bool,
    timeout: float,
) -> None:
    """Bring a cluster to what a Git repository declares, and keep it there.

    With no --kubeconfig, starts the sandbox (or finds it running), installs the CRDs,
    bootstraps a GitRepository and root Kustomization as `flux bootstrap` would, and runs
    the controllers, showing every Kustomization's state until Ctrl-C (or, with --once,
    until they have settled). Commit to the repository and the cluster follows.

    \b
    Examples:
      gitmoor up --once                 # the example homelab into the sandbox
      gitmoor up                        # ... and keep reconciling
      gitmoor up --repo ~/src/fleet --branch main --path clusters/home
    """
    output = Output()
    directory = (state_dir or default_sandbox_dir()).resolve()
    cache_dir = default_cache_dir() if kubeconfig else directory / "cache"
    if kubeconfig is None:
        with output.err.status(f"starting the sandbox in {directory}"):
            info = process.start(directory)
        output.info(f"► sandbox on {info.server}; export KUBECONFIG={info.kubeconfig}")
        kubeconfig = info.kubeconfig
    with contextlib.ExitStack() as stack:
        settings: list[KubeObject] = []
        if repo is None:
            url = local_repository(HOMELAB_DIR, directory / "repo", branch=branch, path=path)
            output.info(f"► repository {directory / 'repo'} (commit there; the cluster follows)")
            with output.err.status("publishing the example's charts"):
                charts = stack.enter_context(serve_example_charts(directory / "charts"))
            settings = [charts.cluster_settings, demo_decryption_secret()]
            with output.err.status("starting OpenBao"):
                vault = devserver.start_example(directory)
            settings = devserver.example_objects(vault, settings)
            output.info(f"► OpenBao dev server on {vault.address} "
                        f"(root token in {vault.token_file})")  # fmt: skip
            output.info(f"► charts served at {charts.repository.url} and "
                        f"oci://{charts.registry.host} while this runs")  # fmt: skip
        else:
            local = Path(repo).expanduser()
            url = local.resolve().as_uri() if local.exists() else repo
        configure_logging(json=False, level="warning")

        async def main() -> int:
            cluster = Cluster.connect(kubeconfig)
            try:
                return await _up(cluster, url=url, branch=branch, path=path,
                                 cache_dir=cache_dir, once=once, timeout=timeout, output=output,
                                 kubeconfig=kubeconfig, settings=settings)  # fmt: skip
            finally:
                await cluster.close()

        code = asyncio.run(main())
    raise SystemExit(code)


@click.command()
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Cluster to reconcile (default: $KUBECONFIG, ~/.kube/config, "
              "in-cluster).")  # fmt: skip
@click.option("--context", "context_name", help="kubeconfig context to use.")
@click.option("--concurrency", default=4, show_default=True, help="Reconciles at once.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True,
              help="Address for /metrics, /healthz, /readyz (0.0.0.0 in a Pod).")  # fmt: skip
@click.option("--metrics-port", default=8080, show_default=True,
              help="Port for /metrics, /healthz, /readyz (0: none).")  # fmt: skip
@click.option("--log-level", default="info", show_default=True)
@click.option("--leader-election-namespace", envvar="RUNTIME_NAMESPACE", default="flux-system",
              show_default=True, help="Namespace of the Lease (env RUNTIME_NAMESPACE: the "
              "Pod's own namespace in a cluster).")  # fmt: skip
@click.option("--external-secrets/--no-external-secrets", default=True, show_default=True,
              help="Run the SecretStore and ExternalSecret controllers (turn off where the "
              "External Secrets Operator runs).")  # fmt: skip
@click.option("--leader-elect/--no-leader-elect", default=True, show_default=True,
              help="Run only while holding the Lease gitmoor-controllers, so "
              "several instances can run for failover.")  # fmt: skip
def controllers(
    kubeconfig: Path | None,
    context_name: str | None,
    concurrency: int,
    metrics_address: str,
    metrics_port: int,
    log_level: str,
    leader_election_namespace: str,
    external_secrets: bool,
    leader_elect: bool,
) -> None:
    """Run the controllers against a cluster until stopped (JSON logs on stderr).

    Exit code 1 when leadership was lost (the lease could not be renewed): restart it.

    \b
    Example:
      gitmoor install && gitmoor controllers --kubeconfig ~/.kube/config
    """
    configure_logging(json=True, level=log_level)

    async def main() -> int:
        cluster = Cluster.connect(kubeconfig, context=context_name)
        manager, context = build_manager(
            cluster, cache_dir=default_cache_dir(), concurrency=concurrency,
            kubeconfig=kubeconfig, external_secrets=external_secrets,
        )  # fmt: skip
        runner = (
            await context.metrics.serve(metrics_address, metrics_port) if metrics_port else None
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            if not leader_elect:
                await run_until(manager, stop)
                return EXIT_OK
            identity = f"{socket.gethostname()}_{uuid.uuid4()}"
            elector = LeaderElector(
                cluster, name=LEASE_NAME, namespace=leader_election_namespace, identity=identity
            )
            return EXIT_OK if await run_leading(manager, elector, stop) else EXIT_CHANGES
        finally:
            if runner is not None:
                await runner.cleanup()
            await cluster.close()

    raise SystemExit(asyncio.run(main()))
