"""How long gitmoor's HelmRelease controller takes to install the example's 18 releases and
to reconcile them with nothing to do, next to the Helm SDK doing the same installs directly.

Run from the repository root::

    python bench/helm.py [--releases N] [--rounds R]

Starts the example's chart servers on 127.0.0.1 (a docker-registry and an HTTP chart
repository, as ``python -m gitmoor.demo`` does) and renders ``examples/homelab`` once
(``build_repository``, not timed) for the HelmReleases as its Kustomizations would apply
them (patches and postBuild substitution done), their chart sources, Namespaces and
valuesFrom ConfigMaps. ``--releases N`` keeps the first N releases in dependsOn order.

gitmoor: the sandbox runs as a process of its own (``gitmoor.sandbox.process``), so its
CPU is not this process's; the controllers (``build_manager``, its default 4 workers) run
in this process against it, with their requests counted by a hook on the client. The
Namespaces, sources and ConfigMaps are applied first and the sources left to become Ready;
then it measures:

- install: from applying the N HelmReleases (as a Kustomization would, through a second,
  uncounted client) until every one is Ready in the manager's cache;
- a no-op reconcile: the N HelmReleases requested through the
  ``reconcile.fluxcd.io/requestedAt`` annotation, until each has handled it
  (``status.lastHandledReconcileAt``) and is Ready; afterwards Helm's own history of each
  release says how many upgrades the no-ops caused.

The HelmRelease reconciles are counted, and the Helm SDK actions the controller takes
(each public function of ``gitmoor.releases``, wrapped while it runs) counted and timed.
The Helm SDK's own API requests are not counted, on either side: it has no request hook.

Helm SDK: on a fresh sandbox process each, ``helm_python.Config(...).install(chart, name,
values, namespace=, wait="watcher", create_namespace=True)`` of the same chart archives
with the values Helm stored for gitmoor's releases (``get_values``), in dependsOn order:
one after another, and again on a fresh sandbox with each release started as soon as its
dependencies are installed, on as many threads as gitmoor has workers. Its no-op is what a
careful script would do: ``status()`` of each release, one after another and on the
threads. No-ops run R times (default 3); the medians are compared.

Before each measurement the sandbox must have been idle for a second (the workload
simulator done with the last phase's pods). Client CPU is this process's, which holds the
Helm SDK on both sides; server CPU is the sandbox process's. Prints figures only: nothing
here passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import helm_python
from reconcile import Measure, Reading, RequestCounter, breakdown, median, settle
from render import replaced

import gitmoor.releases
from gitmoor.api.helm import HelmRelease
from gitmoor.api.registry import parse_resource
from gitmoor.cluster import Cluster, Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.context import dependencies, ready_at_latest
from gitmoor.controllers.helmrelease import DEFAULT_TIMEOUT
from gitmoor.controllers.helmrelease import KIND as HELM_RELEASE
from gitmoor.controllers.manager import REQUESTED_AT, Key, Manager, Reconciler, Result
from gitmoor.controllers.run import build_manager, install_crds
from gitmoor.demo.homelab import HOMELAB_DIR, ROOT_PATH, ExampleCharts, serve_example_charts
from gitmoor.manifests import KubeObject
from gitmoor.releases import WAIT
from gitmoor.render.repository import build_repository
from gitmoor.render.values import values_digest
from gitmoor.sandbox import process
from gitmoor.source.fetcher import Fetcher

P = ParamSpec("P")
T = TypeVar("T")

SOURCE_KINDS = ("HelmRepository", "OCIRepository")
INSTALL = "install (every release Ready)"
NOOP = "no-op reconcile / status() of each"
GITMOOR = "gitmoor"
ONE_BY_ONE = "Helm SDK, one by one"
INSTALL_TIMEOUT = 900.0
PHASE_TIMEOUT = 300.0
POLL = 0.02
WORKERS = 4  # what `gitmoor controllers` runs with unless told (--concurrency)
THREADS = f"Helm SDK, {WORKERS} threads"

Log = Callable[[str], None]
ReleaseKey = tuple[str, str]  # the HelmRelease's namespace and name


# --- the example --------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """What the rendered example gives the controllers: the HelmReleases in dependsOn
    order, and what they need in the cluster before them."""

    releases: list[KubeObject]
    setup: list[KubeObject]
    depends: dict[ReleaseKey, list[ReleaseKey]]

    def chain(self, key: ReleaseKey) -> int:
        """How many releases deep ``key``'s dependsOn chain goes (itself included)."""
        return 1 + max((self.chain(d) for d in self.depends[key]), default=0)


def release_key(obj: Mapping[str, Any]) -> ReleaseKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def dependency_order(releases: Sequence[KubeObject]) -> list[KubeObject]:
    by_key = {release_key(obj): obj for obj in releases}
    order = TopologicalSorter({key: dependencies(obj) for key, obj in by_key.items()})
    return [by_key[key] for key in order.static_order() if key in by_key]


def render_example(charts: ExampleCharts, cache: Path, count: int, say: Log) -> Example:
    build = build_repository(
        HOMELAB_DIR, ROOT_PATH, sources=Fetcher(cache), cluster_objects=[charts.cluster_settings]
    )
    objects = [obj for _, obj in build.objects()]
    releases = dependency_order([o for o in objects if o.get("kind") == HELM_RELEASE.kind])
    # A part of the example that fails to build (one needing a key, say) matters only if
    # releases went missing with it.
    problems = "".join(f"\n  {error}" for error in build.errors)
    if count > len(releases):
        raise SystemExit(
            f"bench: the example renders {len(releases)} HelmReleases, not {count}{problems}"
        )
    if problems:
        say(f"parts of the example did not build; no HelmRelease is missing:{problems}")
    releases = releases[:count]  # a prefix of a dependsOn order holds its dependencies
    models = [parse_resource(obj) for obj in releases]
    namespaces = {"flux-system"} | {m.namespace for m in models if isinstance(m, HelmRelease)}
    values_from = {
        (ref.kind, m.namespace, ref.name)
        for m in models
        if isinstance(m, HelmRelease)
        for ref in m.spec.values_from or []
    }

    def needed(obj: KubeObject) -> bool:
        kind, (namespace, name) = obj.get("kind"), release_key(obj)
        return (
            (kind == "Namespace" and name in namespaces)
            or kind in SOURCE_KINDS
            or (str(kind), namespace, name) in values_from
        )

    setup = sorted(filter(needed, objects), key=lambda obj: obj.get("kind") != "Namespace")
    depends = {release_key(obj): dependencies(obj) for obj in releases}
    return Example(releases, setup, depends)


# --- gitmoor -----------------------------------------------------------------------------


@dataclass
class CountedReconciler:
    """The HelmRelease reconciler as registered, counting its reconciles."""

    inner: Reconciler
    kind: Kind = field(init=False)
    calls: int = 0

    def __post_init__(self) -> None:
        self.kind = self.inner.kind

    async def reconcile(self, obj: KubeObject) -> Result:
        self.calls += 1
        return await self.inner.reconcile(obj)

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        return self.inner.triggers(kind, old, new)


@dataclass
class SdkCalls:
    """The Helm SDK actions the controller takes (the gitmoor.releases functions it
    calls), each with the seconds it took."""

    calls: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def recording(self) -> Iterator[None]:
        def timed(name: str, function: Callable[P, T]) -> Callable[P, T]:
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                start = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    # list.append holds the GIL: safe from the reconcilers' threads
                    self.calls.append((name, time.perf_counter() - start))

            return wrapper

        # Each public function of gitmoor.releases is one Helm SDK action.
        actions = [
            (name, function)
            for name, function in vars(gitmoor.releases).items()
            if inspect.isfunction(function)
            and function.__module__ == gitmoor.releases.__name__
            and not name.startswith("_")
        ]
        with ExitStack() as stack:
            for name, function in actions:
                stack.enter_context(replaced(gitmoor.releases, name, timed(name, function)))
            yield

    def summary(self, since: int) -> str:
        """The calls after the first ``since``: how many of each, and their summed time
        (summed over threads, so it can exceed the wall clock)."""
        counts: Counter[str] = Counter()
        seconds: dict[str, float] = defaultdict(float)
        for name, took in self.calls[since:]:
            counts[name] += 1
            seconds[name] += took
        return ", ".join(f"{counts[n]} {n} ({seconds[n]:.2f} s)" for n in sorted(counts)) or "none"


@dataclass(frozen=True)
class Run:
    """One side's measures, with what it did that the table shows."""

    measures: dict[str, list[Measure]]
    reconciles: dict[str, int] = field(default_factory=dict)
    sdk_calls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseInput:
    """One release as gitmoor installed it: the Helm SDK side installs the same."""

    key: ReleaseKey
    name: str
    namespace: str
    chart: Path
    values: dict[str, Any]
    depends: list[ReleaseKey]


async def until(check: Callable[[], bool], timeout: float, what: str, manager: Manager) -> None:
    """Poll the manager's cache (no requests): the reconciler puts each status it writes
    there."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            states = "\n".join(
                f"  {obj['kind']} {'/'.join(release_key(obj))}: "
                f"{conditions.find((obj.get('status') or {}).get('conditions'), conditions.READY)}"
                for kind in (HELM_RELEASE.kind, *SOURCE_KINDS)
                for obj in manager.objects(kind)
            )
            raise SystemExit(f"bench: {what}: not done after {timeout:g}s\n{states}")
        await asyncio.sleep(POLL)


def helm_config(kubeconfig: Path, namespace: str) -> helm_python.Config:
    return helm_python.Config(kubeconfig_path=str(kubeconfig), namespace=namespace)


def installed_inputs(
    kubeconfig: Path,
    live: Sequence[KubeObject],
    depends: Mapping[ReleaseKey, list[ReleaseKey]],
    archives: Mapping[str, Path],
) -> list[ReleaseInput]:
    """What Helm stored for each of gitmoor's releases (``live``: the HelmReleases with
    their status): the chart, by name and version among the packages the chart servers
    publish, and the user-supplied values, checked against the status's config digest."""
    inputs = []
    for obj in live:
        model = parse_resource(obj)
        assert isinstance(model, HelmRelease)
        with helm_config(kubeconfig, model.storage_namespace) as helm:
            status = helm.status(model.release_name)
            values: dict[str, Any] = helm.get_values(model.release_name)
        digest = ((obj.get("status") or {}).get("history") or [{}])[0].get("configDigest")
        if values_digest(values) != digest:
            raise SystemExit(f"bench: Helm holds other values for {model.display} than gitmoor")
        chart = f"{status['chart_name']}-{status['chart_version']}"
        if chart not in archives:
            raise SystemExit(f"bench: {model.display} runs chart {chart}, not a served one")
        inputs.append(
            ReleaseInput(
                release_key(obj),
                model.release_name,
                model.release_namespace,
                archives[chart],
                values,
                depends[release_key(obj)],
            )
        )
    return inputs


def revisions(kubeconfig: Path, releases: Sequence[ReleaseInput]) -> int:
    """Revisions in Helm's history of every release, summed."""
    total = 0
    for release in releases:
        with helm_config(kubeconfig, release.namespace) as helm:
            total += len(helm.history(release.name))
    return total


async def gitmoor_side(
    info: process.SandboxInfo,
    example: Example,
    archives: Mapping[str, Path],
    rounds: int,
    work: Path,
    say: Log,
) -> tuple[Run, list[ReleaseInput], int]:
    counter = RequestCounter()
    controllers = Cluster.connect(info.kubeconfig, on_request=counter)
    bench = Cluster.connect(info.kubeconfig)
    pid = info.pid
    run = Run({INSTALL: [], NOOP: []})
    sdk = SdkCalls()
    keys = [release_key(obj) for obj in example.releases]
    try:
        await install_crds(bench)
        for obj in example.setup:
            await bench.apply(obj, force=True)
        manager, _ = build_manager(
            controllers,
            cache_dir=work / "gitmoor-cache",
            concurrency=WORKERS,
            kubeconfig=info.kubeconfig,
        )
        counted = CountedReconciler(manager.reconcilers[HELM_RELEASE.kind])
        manager.register(counted)

        def all_ready(stamp: str | None = None) -> Callable[[], bool]:
            def check() -> bool:
                for namespace, name in keys:
                    obj = manager.get(HELM_RELEASE.kind, namespace, name)
                    if obj is None or not ready_at_latest(obj):
                        return False
                    handled = (obj.get("status") or {}).get("lastHandledReconcileAt")
                    if stamp is not None and handled != stamp:
                        return False
                return True

            return check

        def sources_ready() -> bool:
            found = [obj for kind in SOURCE_KINDS for obj in manager.objects(kind)]
            expected = sum(obj.get("kind") in SOURCE_KINDS for obj in example.setup)
            return len(found) == expected and all(map(conditions.is_true, found))

        with sdk.recording():
            task = asyncio.create_task(manager.run())
            try:
                await until(sources_ready, PHASE_TIMEOUT, "chart sources", manager)
                await asyncio.to_thread(settle, pid)
                say(f"gitmoor: installing {len(keys)} HelmReleases")
                start, before = Reading.now(pid), counter.counts.copy()
                calls, sdk_before = counted.calls, len(sdk.calls)
                await asyncio.gather(*(bench.apply(obj, force=True) for obj in example.releases))
                await until(all_ready(), INSTALL_TIMEOUT, "install", manager)
                run.measures[INSTALL].append(start.until(Reading.now(pid), counter.since(before)))
                run.reconciles[INSTALL] = counted.calls - calls
                run.sdk_calls[INSTALL] = sdk.summary(sdk_before)

                say(f"gitmoor: {rounds} no-op reconciles")
                for round_ in range(rounds):
                    await asyncio.to_thread(settle, pid)
                    stamp = str(time.time_ns())
                    annotation = {"metadata": {"annotations": {REQUESTED_AT: stamp}}}
                    start, before = Reading.now(pid), counter.counts.copy()
                    calls, sdk_before = counted.calls, len(sdk.calls)
                    await asyncio.gather(
                        *(bench.patch(obj, annotation) for obj in example.releases)
                    )
                    await until(all_ready(stamp), PHASE_TIMEOUT, "no-op reconcile", manager)
                    run.measures[NOOP].append(start.until(Reading.now(pid), counter.since(before)))
                    if round_ == rounds // 2:  # the median round's, as the requests shown
                        run.reconciles[NOOP] = counted.calls - calls
                        run.sdk_calls[NOOP] = sdk.summary(sdk_before)
                live = [manager.get(HELM_RELEASE.kind, ns, name) for ns, name in keys]
                inputs = await asyncio.to_thread(
                    installed_inputs,
                    info.kubeconfig,
                    [obj for obj in live if obj is not None],
                    example.depends,
                    archives,
                )
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        upgrades = await asyncio.to_thread(revisions, info.kubeconfig, inputs) - len(inputs)
    finally:
        await controllers.close()
        await bench.close()
    return run, inputs, upgrades


# --- the Helm SDK ------------------------------------------------------------------------


def helm_install(kubeconfig: Path, release: ReleaseInput) -> None:
    with (
        helm_config(kubeconfig, release.namespace) as helm,
        helm_python.Chart.load(release.chart) as chart,
    ):
        done = helm.install(
            chart,
            release.name,
            release.values,
            namespace=release.namespace,
            timeout=int(DEFAULT_TIMEOUT),
            wait=WAIT,
            create_namespace=True,
        )
    if done.get("status") != "deployed":
        raise SystemExit(f"bench: Helm SDK install of {release.name}: {done.get('status')}")


def helm_status(kubeconfig: Path, release: ReleaseInput) -> None:
    with helm_config(kubeconfig, release.namespace) as helm:
        found = helm.status(release.name)
    if found.get("status") != "deployed":
        raise SystemExit(f"bench: release {release.name} is {found.get('status')}")


def in_dependency_order(
    action: Callable[[ReleaseInput], None], releases: Sequence[ReleaseInput], workers: int
) -> None:
    """``action`` on every release, each once its dependencies are done, at most
    ``workers`` at a time (one: one after another in dependsOn order)."""
    by_key = {release.key: release for release in releases}
    order = TopologicalSorter({release.key: release.depends for release in releases})
    order.prepare()
    running: dict[Future[None], ReleaseKey] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while order.is_active():
            for key in order.get_ready():
                running[pool.submit(action, by_key[key])] = key
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()
                order.done(running.pop(future))


def helm_side(
    info: process.SandboxInfo, releases: Sequence[ReleaseInput], workers: int, rounds: int
) -> Run:
    kubeconfig, pid = info.kubeconfig, info.pid
    run = Run({INSTALL: [], NOOP: []})
    settle(pid)
    start = Reading.now(pid)
    in_dependency_order(lambda r: helm_install(kubeconfig, r), releases, workers)
    run.measures[INSTALL].append(start.until(Reading.now(pid), Counter()))
    for _ in range(rounds):
        settle(pid)
        start = Reading.now(pid)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda r: helm_status(kubeconfig, r), releases))
        run.measures[NOOP].append(start.until(Reading.now(pid), Counter()))
    if revisions(kubeconfig, releases) != len(releases):
        raise SystemExit("bench: the Helm SDK's releases are not at revision 1")
    return run


# --- report ------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:8.2f}x" if theirs else f"{'-':>9}"


def report(
    example: Example,
    runs: Mapping[str, Run],
    upgrades: int,
    wall: float,
) -> None:
    print(
        f"gitmoor bench/helm.py — {date.today().isoformat()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Helm SDK {helm_python.helm_sdk_version()}"
    )
    keys = list(example.depends)
    print(
        f"example: examples/homelab, path {ROOT_PATH}: {len(keys)} HelmReleases "
        f"({sum(bool(d) for d in example.depends.values())} with dependsOn, chains up to "
        f"{max(map(example.chain, keys), default=0)} deep), "
        f"{sum(o.get('kind') in SOURCE_KINDS for o in example.setup)} chart sources"
    )
    print(
        "sandbox: a fresh process for each column; gitmoor: controllers in this process "
        f"({WORKERS} workers); Helm SDK: install(wait={WAIT!r}, create_namespace=True) in "
        f"dependsOn order, one by one and on {WORKERS} threads"
    )
    print()
    ours = runs[GITMOOR]
    others = [name for name in runs if name != GITMOOR]
    print(f"{'':32}{GITMOOR:>9}" + "".join(f"{name:>22}{'ratio':>9}" for name in others))
    rows: tuple[tuple[str, Callable[[Measure], float]], ...] = (
        ("wall clock (s)", lambda m: m.seconds),
        ("client CPU (s)", lambda m: m.client_cpu),
        ("server CPU (s)", lambda m: m.server_cpu),
    )
    for phase, mine in ours.measures.items():
        print(phase if len(mine) == 1 else f"{phase} (median of {len(mine)})")
        for name, pick in rows:
            a = median([pick(m) for m in mine])
            row = f"  {name:<30}{a:9.2f}"
            for other in others:
                b = median([pick(m) for m in runs[other].measures[phase]])
                row += f"{b:22.2f}{ratio(a, b)}"
            print(row)
        requests = mine[len(mine) // 2].requests
        print(
            f"  gitmoor's client: {sum(requests.values())} API requests ({breakdown(requests)}); "
            "the Helm SDK's own requests are not counted, on either side"
        )
        print(
            f"  gitmoor: {ours.reconciles[phase]} HelmRelease reconciles; Helm SDK calls: "
            f"{ours.sdk_calls[phase]}"
        )
        if len(mine) > 1:
            print(
                "  wall clock of each round (s): "
                + "; ".join(
                    f"{name} " + " ".join(f"{m.seconds:.2f}" for m in run.measures[phase])
                    for name, run in runs.items()
                )
            )
    print()
    print(f"Helm upgrades caused by gitmoor's no-op reconciles (Helm's history): {upgrades}")
    print(f"wall clock: {wall:.0f} s")


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--releases", type=int, default=18, help="HelmReleases, in dependsOn order (default 18)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="no-op rounds (default 3)")
    args = parser.parse_args(argv)
    count: int = args.releases
    rounds: int = args.rounds
    if count < 1 or rounds < 1:
        parser.error("--releases and --rounds must be at least 1")
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gitmoor-bench-") as temporary:
        work = Path(temporary)
        say("starting the example's chart servers")
        with serve_example_charts(work / "charts") as charts:
            say("rendering the example")
            example = render_example(charts, work / "render-cache", count, say)
            archives = {archive.name.removesuffix(".tgz"): archive for archive in charts.archives}

            runs: dict[str, Run] = {}
            say("starting a sandbox for gitmoor")
            directory = work / "sandbox-gitmoor"
            info = process.start(directory)
            try:
                runs[GITMOOR], inputs, upgrades = asyncio.run(
                    gitmoor_side(info, example, archives, rounds, work, say)
                )
            finally:
                process.stop(directory)

        for name, workers in ((ONE_BY_ONE, 1), (THREADS, WORKERS)):
            say(f"starting a sandbox for the {name}")
            directory = work / f"sandbox-helm-{workers}"
            info = process.start(directory)
            try:
                say(f"{name}: installing {len(inputs)} releases, then {rounds} status rounds")
                runs[name] = helm_side(info, inputs, workers, rounds)
            finally:
                process.stop(directory)
    report(example, runs, upgrades, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
