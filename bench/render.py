"""How long gitmoor takes to build the example homelab, next to the raw tools doing the same work.

Run from the repository root::

    python bench/render.py [--builds N]

Starts the example's chart servers on 127.0.0.1 (a docker-registry and an HTTP chart
repository), then measures, in this one process:

- one cold build of ``examples/homelab`` (empty cache directory: every chart is pulled);
- N warm builds with the same cache directory, each with a new ``Fetcher`` as
  ``gitmoor build`` makes, so chart versions are resolved again (index and tag look-ups on
  127.0.0.1) while the archives come from the cache;
- N runs of the raw tools on the same inputs: ``kubectl kustomize`` on the very
  directories gitmoor handed to kustomize (the source copy with the kustomization file
  kustomize-controller would write, captured from one build), and the Helm SDK's
  ``Chart.load(archive).render(values, ...)`` for every HelmRelease, with the values
  gitmoor composed for it.

gitmoor renders the units of each round in a thread pool, so the raw tools are timed
twice: one call after another, and all at once in a pool of the same size. Warm builds and
raw runs alternate, so load from other processes on the machine falls on all alike.

Last, a few more warm builds run on one thread with timers around gitmoor's building
blocks, to say where a build's time goes (threads waiting on each other and on the GIL
would blur that). Prints figures only: nothing here passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

import helm_python

import gitmoor.render.helm
import gitmoor.render.kustomization
import gitmoor.render.kustomize_cli
import gitmoor.render.repository
import gitmoor.render.substitute
from gitmoor.api.helm import HelmRelease
from gitmoor.api.source import GitRepository, HelmRepository, OCIRepository
from gitmoor.demo.homelab import (
    HOMELAB_DIR,
    ROOT_PATH,
    demo_decryption_secret,
    serve_example_charts,
)
from gitmoor.manifests import KubeObject, load_all
from gitmoor.render.helm import RenderedRelease
from gitmoor.render.kustomization import KUSTOMIZATION_FILES
from gitmoor.render.kustomize_cli import kubectl_path
from gitmoor.render.repository import ChartSource, RepositoryBuild, SourceTree, build_repository
from gitmoor.render.values import ValuesLookup, compose_values
from gitmoor.source.fetcher import Fetcher

P = ParamSpec("P")
T = TypeVar("T")

KUSTOMIZE = "kubectl kustomize"
YAML_KUSTOMIZE = "YAML: reading kustomize output"
YAML_SUBSTITUTION = "YAML: postBuild substitution round trip"
YAML_HELM = "YAML: reading Helm output"
HELM = "Helm SDK (render_release)"
SUBSTITUTION = "postBuild substitution"
PREPARE = "source copy + kustomization file"
CHARTS = "chart resolution (127.0.0.1)"
REST = "the rest (walk, models, index)"

BREAKDOWN_BUILDS = 10

# Where gitmoor's building blocks are looked up when called, and what each one counts as.
# Each wrapper counts its own time minus the wrapped calls made inside it (on its thread).
TIMED: tuple[tuple[ModuleType, str, str], ...] = (
    (gitmoor.render.repository, "render_kustomization", PREPARE),
    (gitmoor.render.repository, "render_release", HELM),
    (gitmoor.render.kustomization, "kustomize_build", KUSTOMIZE),
    (gitmoor.render.kustomization, "substitute_objects", SUBSTITUTION),
    (gitmoor.render.helm, "kustomize_build", KUSTOMIZE),
    (gitmoor.render.helm, "load_all", YAML_HELM),
    (gitmoor.render.helm, "dump", YAML_HELM),
    (gitmoor.render.helm, "dump_all", YAML_HELM),
    (gitmoor.render.kustomize_cli, "load_all", YAML_KUSTOMIZE),
    (gitmoor.render.substitute, "load_all", YAML_SUBSTITUTION),
    (gitmoor.render.substitute, "dump", YAML_SUBSTITUTION),
)

# The modules that call kustomize_build; the capture replaces it in each.
KUSTOMIZE_CALLERS = (gitmoor.render.kustomization, gitmoor.render.helm)

# The size of the pool render/repository.py builds with, given to the raw tools too.
WORKERS = min(8, 2 * (os.cpu_count() or 1))


@contextmanager
def replaced(module: ModuleType, name: str, value: object) -> Iterator[None]:
    if not hasattr(module, name):
        raise SystemExit(
            f"bench: {module.__name__}.{name} no longer exists; update bench/render.py"
        )
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


# --- gitmoor's time, split by what it is spent on ---------------------------------------------


class Breakdown:
    """Exclusive time per phase, summed over every build run while instrumented."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._thread = threading.local()

    def _nested(self) -> list[float]:
        """Per open wrapper on this thread, the time spent in wrappers called inside it."""
        if not hasattr(self._thread, "nested"):
            self._thread.nested = []
        nested: list[float] = self._thread.nested
        return nested

    def timed(self, phase: str, function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            nested = self._nested()
            nested.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                own = elapsed - nested.pop()
                if nested:
                    nested[-1] += elapsed
                with self._lock:
                    self.seconds[phase] += own

        return wrapper

    @contextmanager
    def instrumented(self) -> Iterator[None]:
        """gitmoor's building blocks timed, and its builds rendered on one thread."""
        with ExitStack() as stack:
            stack.enter_context(
                replaced(gitmoor.render.repository, "ThreadPoolExecutor", _one_thread_pool)
            )
            for module, name, phase in TIMED:
                stack.enter_context(
                    replaced(module, name, self.timed(phase, getattr(module, name)))
                )
            yield


def _one_thread_pool(max_workers: int | None = None) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1)


class TimedFetcher(Fetcher):
    """A Fetcher whose look-ups count as chart (or Git) resolution in a Breakdown."""

    def __init__(self, cache_dir: Path, breakdown: Breakdown) -> None:
        super().__init__(cache_dir)
        self._breakdown = breakdown

    def git(self, repository: GitRepository) -> SourceTree:
        return self._breakdown.timed(CHARTS, super().git)(repository)

    def helm_chart(
        self, repository: HelmRepository, chart: str, version: str | None
    ) -> ChartSource:
        return self._breakdown.timed(CHARTS, super().helm_chart)(repository, chart, version)

    def oci_chart(self, repository: OCIRepository) -> ChartSource:
        return self._breakdown.timed(CHARTS, super().oci_chart)(repository)


# --- the raw tools' inputs, taken from one gitmoor build ------------------------------------


@dataclass(frozen=True)
class ReleaseInput:
    chart: Path
    values: dict[str, Any]
    name: str
    namespace: str


@dataclass
class RawInputs:
    kustomize_dirs: list[Path] = field(default_factory=list)
    releases: list[ReleaseInput] = field(default_factory=list)
    gitmoor_kustomize_runs: int = 0


def _temporary_root(path: Path) -> Path:
    """The directory directly under the temporary directory that holds ``path``."""
    temp = Path(tempfile.gettempdir()).resolve()
    for parent in path.resolve().parents:
        if parent.parent == temp:
            return parent
    raise SystemExit(f"bench: kustomize ran outside {temp} ({path}); update bench/render.py")


def _kustomization_text(directory: Path) -> str:
    return "".join(
        (directory / name).read_text()
        for name in KUSTOMIZATION_FILES
        if (directory / name).is_file()
    )


@contextmanager
def capturing(destination: Path) -> Iterator[RawInputs]:
    """Keeps what gitmoor gives kustomize and Helm during the builds run inside."""
    inputs = RawInputs()
    original_build = gitmoor.render.kustomize_cli.kustomize_build
    original_render = gitmoor.render.helm.render_release

    seen: set[tuple[Path, str]] = set()
    lock = threading.Lock()  # gitmoor renders in threads

    def keep_tree(path: Path, *, timeout: float = 120.0) -> list[KubeObject]:
        root = _temporary_root(path)
        relative = path.resolve().relative_to(root)
        work = (relative, _kustomization_text(path))
        with lock:
            inputs.gitmoor_kustomize_runs += 1
            # The raw tools build each distinct input once (gitmoor builds the start path
            # twice); gitmoor deletes its copy after the build, so one is kept, as it is.
            if work not in seen:
                seen.add(work)
                kept = destination / f"kustomize-{len(inputs.kustomize_dirs)}"
                shutil.copytree(root, kept, symlinks=True)
                inputs.kustomize_dirs.append(kept / relative)
        return original_build(path, timeout=timeout)

    def keep_release(
        hr: HelmRelease,
        chart_path: Path,
        *,
        lookup: ValuesLookup,
        crds: Iterable[Mapping[str, Any]] = (),
    ) -> RenderedRelease:
        values = compose_values(hr, lookup)
        with lock:
            inputs.releases.append(
                ReleaseInput(chart_path, values, hr.release_name, hr.release_namespace)
            )
        return original_render(hr, chart_path, lookup=lookup, crds=crds)

    with ExitStack() as stack:
        for module in KUSTOMIZE_CALLERS:
            stack.enter_context(replaced(module, "kustomize_build", keep_tree))
        stack.enter_context(replaced(gitmoor.render.repository, "render_release", keep_release))
        yield inputs


# --- one run of each --------------------------------------------------------------------------


def gitmoor_build(fetcher: Fetcher, cluster: list[KubeObject]) -> RepositoryBuild:
    result = build_repository(HOMELAB_DIR, ROOT_PATH, sources=fetcher, cluster_objects=cluster)
    if result.errors:
        problems = "\n".join(f"  {error}" for error in result.errors)
        raise SystemExit(f"bench: the example does not build:\n{problems}")
    return result


def kustomize_raw(directory: Path) -> str:
    """``kubectl kustomize`` as gitmoor runs it: same binary, flags and environment."""
    done = subprocess.run(
        [kubectl_path(), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    return done.stdout


def helm_raw(release: ReleaseInput) -> dict[str, str]:
    with helm_python.Chart.load(release.chart) as chart:
        manifests: dict[str, str] = chart.render(
            release.values,
            name=release.name,
            namespace=release.namespace,
            revision=1,
            is_install=True,
        )
    return manifests


@dataclass
class RawTimes:
    kustomize: list[float] = field(default_factory=list)
    helm: list[float] = field(default_factory=list)
    pooled: list[float] = field(default_factory=list)

    @property
    def serial(self) -> list[float]:
        return [k + h for k, h in zip(self.kustomize, self.helm, strict=True)]


def raw_serial(inputs: RawInputs, times: RawTimes) -> None:
    start = time.perf_counter()
    for directory in inputs.kustomize_dirs:
        kustomize_raw(directory)
    middle = time.perf_counter()
    for release in inputs.releases:
        helm_raw(release)
    times.kustomize.append(middle - start)
    times.helm.append(time.perf_counter() - middle)


def raw_pooled(inputs: RawInputs, pool: ThreadPoolExecutor, times: RawTimes) -> None:
    """Every call at once: no rounds, unlike gitmoor, which must render a unit before it
    sees the units that unit defines."""
    start = time.perf_counter()
    jobs: list[Future[object]] = [pool.submit(kustomize_raw, d) for d in inputs.kustomize_dirs]
    jobs.extend(pool.submit(helm_raw, release) for release in inputs.releases)
    for job in jobs:
        job.result()
    times.pooled.append(time.perf_counter() - start)


def raw_object_count(inputs: RawInputs) -> int:
    count = sum(len(load_all(kustomize_raw(d), file=str(d))) for d in inputs.kustomize_dirs)
    for release in inputs.releases:
        for path, text in helm_raw(release).items():
            if not path.endswith("NOTES.txt"):
                count += len(load_all(text, file=path))
    return count


# --- figures ----------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak so far; the Helm SDK runs inside it, kubectl does not."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def timing_row(label: str, samples: list[float]) -> str:
    return (
        f"{label:<44}{len(samples):>7}{ms(statistics.mean(samples))}"
        f"{ms(statistics.median(samples))}{ms(min(samples))}{ms(max(samples))}"
    )


def ratio(gitmoor: list[float], raw: list[float]) -> str:
    return (
        f"{statistics.mean(gitmoor) / statistics.mean(raw):5.2f}x (mean)   "
        f"{statistics.median(gitmoor) / statistics.median(raw):5.2f}x (median)"
    )


def report(
    *,
    cold: float,
    warm: list[float],
    raw: RawTimes,
    breakdown: Breakdown,
    serial: list[float],
    result: RepositoryBuild,
    inputs: RawInputs,
    raw_objects: int,
    rss: Mapping[str, float],
) -> None:
    kustomizations = sum(1 for u in result.units.values() if u.resource.KIND == "Kustomization")
    releases = len(result.units) - kustomizations
    print(
        f"gitmoor bench/render.py — {date.today().isoformat()}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"example: examples/homelab, path {ROOT_PATH}: {kustomizations} Kustomizations, "
        f"{releases} HelmReleases, {len(result.objects())} objects"
    )
    print(
        f"raw tools, same inputs: {len(inputs.kustomize_dirs)} x kubectl kustomize "
        f"(gitmoor runs it {inputs.gitmoor_kustomize_runs} times), "
        f"{len(inputs.releases)} x helm_python Chart.load().render(): {raw_objects} objects"
    )
    print()
    print(f"{'per build (ms)':<44}{'builds':>7}{'mean':>9}{'median':>9}{'min':>9}{'max':>9}")
    print(timing_row("gitmoor, cold (empty cache: pulls charts)", [cold]))
    print(timing_row("gitmoor, warm (same cache)", warm))
    print(timing_row("raw tools, one call after another", raw.serial))
    print(timing_row("  kubectl kustomize", raw.kustomize))
    print(timing_row("  Helm SDK load + render", raw.helm))
    print(timing_row(f"raw tools, all at once in {WORKERS} threads", raw.pooled))
    print()
    print(f"ratio gitmoor warm / raw tools one by one:  {ratio(warm, raw.serial)}")
    print(f"ratio gitmoor warm / raw tools in threads:  {ratio(warm, raw.pooled)}")
    print(
        "ratio gitmoor cold / raw tools one by one:  "
        f"{cold / statistics.mean(raw.serial):5.2f}x (mean)"
    )
    print()
    total = sum(serial)
    phases = {**breakdown.seconds, REST: total - sum(breakdown.seconds.values())}
    raw_of = {KUSTOMIZE: raw.kustomize, HELM: raw.helm}
    print(
        f"{'gitmoor warm build on one thread, by phase':<44}{'ms/build':>9}{'share':>8}{'raw':>9}"
    )
    for phase, seconds in sorted(phases.items(), key=lambda item: -item[1]):
        raw_ms = ms(statistics.mean(raw_of[phase])) if phase in raw_of else ""
        print(f"{phase:<44}{ms(seconds / len(serial))}{seconds / total:8.0%}{raw_ms}")
    print(f"{f'total ({len(serial)} builds)':<44}{ms(statistics.mean(serial))}")
    print()
    print("peak RSS (MiB): " + ", ".join(f"{label} {mib:.0f}" for label, mib in rss.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--builds", type=int, default=100, help="warm builds (default 100)")
    args = parser.parse_args(argv)
    builds: int = args.builds
    if builds < 1:
        parser.error("--builds must be at least 1")

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gitmoor-bench-") as scratch:
        work = Path(scratch)
        progress("publishing the example charts on 127.0.0.1")
        with serve_example_charts(work / "charts") as charts:
            cluster = [charts.cluster_settings, demo_decryption_secret()]
            cache = work / "cache"
            rss = {"servers up": peak_rss_mib()}

            start = time.perf_counter()
            gitmoor_build(Fetcher(cache), cluster)
            cold = time.perf_counter() - start
            rss["after cold build"] = peak_rss_mib()

            with capturing(work / "inputs") as inputs:
                result = gitmoor_build(Fetcher(cache), cluster)
            raw_objects = raw_object_count(inputs)

            warm: list[float] = []
            raw = RawTimes()
            progress(f"{builds} warm builds, each followed by the raw tools")
            with ThreadPoolExecutor(WORKERS) as pool:
                for number in range(1, builds + 1):
                    start = time.perf_counter()
                    gitmoor_build(Fetcher(cache), cluster)
                    warm.append(time.perf_counter() - start)
                    raw_serial(inputs, raw)
                    raw_pooled(inputs, pool, raw)
                    if number == 1:
                        rss["after 1 warm build"] = peak_rss_mib()
                    if number % 10 == 0:
                        progress(f"{number}/{builds}")
            rss[f"after {builds} warm builds"] = peak_rss_mib()

            breakdown = Breakdown()
            serial: list[float] = []
            progress(f"{min(builds, BREAKDOWN_BUILDS)} warm builds on one thread, timed by phase")
            with breakdown.instrumented():
                for _ in range(min(builds, BREAKDOWN_BUILDS)):
                    start = time.perf_counter()
                    gitmoor_build(TimedFetcher(cache, breakdown), cluster)
                    serial.append(time.perf_counter() - start)

    report(
        cold=cold,
        warm=warm,
        raw=raw,
        breakdown=breakdown,
        serial=serial,
        result=result,
        inputs=inputs,
        raw_objects=raw_objects,
        rss=rss,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
