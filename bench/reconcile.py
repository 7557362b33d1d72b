"""How gitmoor's controllers reconcile a repository of 1,000 objects, next to
``kubectl apply --server-side`` doing the same work.

Run from the repository root::

    python bench/reconcile.py [--objects N] [--kustomizations K] [--rounds R]

Generates a Git repository on disk: N objects (Namespaces, ConfigMaps, Deployments,
Services, ServiceAccounts, a few Secrets) in K Kustomizations, one Namespace each, listed
by a root Kustomization; past the first quarter, every other Kustomization depends on one
of the tier before it (as infrastructure, platform and apps), chains up to three deep.

gitmoor: the sandbox runs as a process of its own (``gitmoor.sandbox.process``), so its
CPU is not this process's; the controllers (``build_manager``, its default 4 workers) run
in this process against it, with their requests counted by a hook on the client. The
bench's own requests (requesting reconciles, reading results) go through a second client
that is not counted. It measures:

- first convergence: from starting the manager (the GitRepository and the root
  Kustomization applied, as bootstrap leaves them) until all K + 1 Kustomizations are
  Ready at the commit;
- a no-op reconcile: the K Kustomizations requested through the
  ``reconcile.fluxcd.io/requestedAt`` annotation, until each has handled it
  (``status.lastHandledReconcileAt``) and is Ready;
- a one-object change: one ConfigMap's value changed and committed, then the
  GitRepository requested (as a webhook would), until every Kustomization is Ready at the
  new commit.

kubectl: the same objects, rendered once before (gitmoor's ``build_repository``, not
timed), applied with ``kubectl apply --server-side --force-conflicts -f`` from one file
to a fresh sandbox process: a first apply, a no-op apply of the same file and the
one-object change (the re-rendered file); requests are the ``"Response"`` lines of its
``-v=6`` log. No-op and change run R times (default 3); the medians are compared.

Before each measurement the sandbox must have been idle for a second (the workload
simulator done with the last phase's pods). Client CPU is this process's and its child
processes' (gitmoor's ``kubectl kustomize`` and ``git`` runs; ``kubectl apply``), also
shown apart; server CPU is the sandbox process's. Prints figures only: nothing here
passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from gitmoor.bootstrap import git
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.manager import REQUESTED_AT, Manager
from gitmoor.controllers.run import apply_bootstrap, bootstrap_objects, build_manager, install_crds
from gitmoor.manifests import KubeObject, dump, dump_all
from gitmoor.render.kustomize_cli import kubectl_path
from gitmoor.render.repository import build_repository
from gitmoor.sandbox import process
from gitmoor.source.fetcher import Fetcher

BRANCH = "main"
ROOT_PATH = "clusters/bench"
FLUX_NAMESPACE = "flux-system"
ROOT = "flux-system"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
# One cycle of what each Kustomization holds after its Namespace; a Service follows the
# Deployment it selects and takes its name.
PATTERN = (
    "ConfigMap", "Deployment", "Service", "ConfigMap", "Deployment", "Service", "ConfigMap",
    "ServiceAccount", "ConfigMap", "Deployment", "Service", "ConfigMap", "Deployment",
    "Service", "ConfigMap", "Secret",
)  # fmt: skip
PREFIX = {"ConfigMap": "config", "Deployment": "app", "ServiceAccount": "runner", "Secret": "token"}
FIRST = "first convergence / first apply"
NOOP = "no-op reconcile / no-op apply"
CHANGE = "one-object change"
FIRST_TIMEOUT = 900.0
PHASE_TIMEOUT = 300.0
POLL = 0.02
WORKERS = 4  # what `gitmoor controllers` runs with unless told (--concurrency)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KUBECTL_RESPONSE = re.compile(r'"Response" verb="(\w+)" url="([^"]+)" status="(\d+)')

Log = Callable[[str], None]


# --- the repository ----------------------------------------------------------------------


@dataclass
class Layout:
    """What was generated, and the one object the change phase edits."""

    objects: int
    names: list[str]
    depends: dict[int, int]
    kinds: Counter[str]
    changed_file: Path
    changed_object: KubeObject

    def chain(self, index: int) -> int:
        """How many Kustomizations deep ``index``'s dependsOn chain goes (itself included)."""
        return 1 + (self.chain(self.depends[index]) if index in self.depends else 0)


def dependencies(count: int) -> dict[int, int]:
    """Three tiers, as infrastructure, platform and apps: past the first tier, every other
    Kustomization depends on one of the tier before its own."""
    first = max(1, count // 4)
    second = max(first, count // 2)
    found = {}
    for index in range(first, count):
        if index % 2:
            continue
        low, high = (0, first) if index < second or second == first else (first, second)
        found[index] = low + index % (high - low)
    return found


def manifest(kind: str, name: str, namespace: str, index: int) -> KubeObject:
    """An object of a typical size for its kind."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": "bench", "shard": str(index % 10)},
    }
    labels = {"app.kubernetes.io/name": name}
    if kind == "ConfigMap":
        settings = "".join(f"key{k}: value-{index}-{k}\n" for k in range(12))
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "data": {"revision": "1", "settings.yaml": settings},
        }
    if kind == "Secret":
        token = base64.b64encode(f"bench-token-{namespace}-{index}".encode()).decode()
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "type": "Opaque",
            "data": {"token": token},
        }
    if kind == "ServiceAccount":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Service":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    container = {
        "name": "app",
        "image": f"registry.example/bench/app:1.{index % 7}.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "SHARD", "value": str(index % 10)}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def kustomize_file(resources: list[str]) -> str:
    return dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        }
    )


def generate(repo: Path, objects: int, kustomizations: int) -> Layout:
    """Write the repository's files (not yet committed)."""
    names = [f"ks-{i:02}" for i in range(kustomizations)]
    depends = dependencies(kustomizations)
    kinds: Counter[str] = Counter()
    root = repo / ROOT_PATH
    root.mkdir(parents=True)
    changed: tuple[Path, KubeObject] | None = None
    for index, name in enumerate(names):
        namespace = f"bench-{index:02}"
        directory = repo / "apps" / name
        directory.mkdir(parents=True)
        count = objects // kustomizations + (index < objects % kustomizations)
        files: dict[str, KubeObject] = {
            "namespace.yaml": {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace},
            }
        }
        numbers: Counter[str] = Counter()
        for position in range(count - 1):
            kind = PATTERN[position % len(PATTERN)]
            if kind != "Service":
                numbers[kind] += 1
                object_name = f"{PREFIX[kind]}-{numbers[kind]:03}"
            obj = manifest(kind, object_name, namespace, position)
            files[f"{kind.lower()}-{object_name}.yaml"] = obj
            if kind == "ConfigMap" and index == kustomizations - 1 and changed is None:
                changed = (directory / f"{kind.lower()}-{object_name}.yaml", obj)
        for file_name, obj in files.items():
            (directory / file_name).write_text(dump(obj))
            kinds[obj["kind"]] += 1
        (directory / "kustomization.yaml").write_text(kustomize_file(list(files)))
        spec: dict[str, Any] = {
            "interval": "10m",
            "path": f"./apps/{name}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": ROOT},
        }
        if index in depends:
            spec["dependsOn"] = [{"name": names[depends[index]]}]
        ks = {
            "apiVersion": KUSTOMIZE_API,
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
            "spec": spec,
        }
        (root / f"{name}.yaml").write_text(dump(ks))
    (root / "kustomization.yaml").write_text(kustomize_file([f"{name}.yaml" for name in names]))
    if changed is None:
        raise SystemExit("bench: the last Kustomization holds no ConfigMap; give more --objects")
    return Layout(sum(kinds.values()), names, depends, kinds, *changed)


def set_value(layout: Layout, value: str) -> None:
    """The one-object change: the ConfigMap's ``revision`` value."""
    obj = layout.changed_object
    obj["data"]["revision"] = value
    layout.changed_file.write_text(dump(obj))


def render(repo: Path, cache: Path) -> list[KubeObject]:
    """The objects the K Kustomizations render to (not the Kustomizations themselves),
    Namespaces first, as one would hand them to kubectl."""
    build = build_repository(
        repo,
        ROOT_PATH,
        sources=Fetcher(cache),
        local_sources={(FLUX_NAMESPACE, ROOT): repo},
    )
    if build.errors:
        problems = "\n".join(f"  {error}" for error in build.errors)
        raise SystemExit(f"bench: the generated repository does not build:\n{problems}")
    objects = [obj for unit in build.units.values() for obj in unit.objects]
    return sorted(objects, key=lambda obj: obj.get("kind") != "Namespace")


# --- measuring ---------------------------------------------------------------------------


def server_cpu(pid: int) -> float:
    """User + system seconds of a process, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


def settle(pid: int, *, window: float = 1.0, busy: float = 0.05, limit: float = 120.0) -> None:
    """Wait until the sandbox used under ``busy`` of a CPU for ``window`` seconds: the
    simulator is done with the pods of the last phase, so none of it counts in the next."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server_cpu(pid)
        time.sleep(window)
        if server_cpu(pid) - before <= busy * window:
            return


@dataclass(frozen=True)
class Measure:
    seconds: float
    requests: Counter[str]
    own_cpu: float
    children_cpu: float
    server_cpu: float

    @property
    def client_cpu(self) -> float:
        return self.own_cpu + self.children_cpu


@dataclass(frozen=True)
class Reading:
    """Clocks at one moment: wall, this process and its children, the sandbox."""

    wall: float
    own_cpu: float
    children_cpu: float
    server_cpu: float

    @classmethod
    def now(cls, server_pid: int) -> Reading:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            time.perf_counter(),
            own.ru_utime + own.ru_stime,
            children.ru_utime + children.ru_stime,
            server_cpu(server_pid),
        )

    def until(self, later: Reading, requests: Counter[str]) -> Measure:
        return Measure(
            later.wall - self.wall,
            requests,
            later.own_cpu - self.own_cpu,
            later.children_cpu - self.children_cpu,
            later.server_cpu - self.server_cpu,
        )


def verb(method: str, url: str) -> str:
    """A request's kind as the tables show it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if method == "GET" and query.get("watch", [""])[0] in ("true", "1"):
        return "WATCH"
    if method == "PATCH" and "dryRun" in query:
        return "PATCH dry-run"
    if method == "PATCH" and parts.path.endswith("/status"):
        return "PATCH status"
    if "events" in parts.path.split("/"):
        return f"{method} Event"
    return method


@dataclass
class RequestCounter:
    """An httpx2 request hook counting what a client sends, by :func:`verb`."""

    counts: Counter[str] = field(default_factory=Counter)

    async def __call__(self, request: httpx2.Request) -> None:
        self.counts[verb(request.method, str(request.url))] += 1

    def since(self, before: Counter[str]) -> Counter[str]:
        return self.counts - before


# --- kubectl -----------------------------------------------------------------------------


def kubectl_requests(log: str) -> Counter[str]:
    return Counter(verb(m[1], m[2]) for m in KUBECTL_RESPONSE.finditer(log))


def kubectl_side(
    info: process.SandboxInfo, before: Path, after: Path, count: int, rounds: int, say: Log
) -> dict[str, list[Measure]]:
    cache = before.parent / "kubectl-cache"  # discovery and OpenAPI, cold at the first apply

    def apply(file: Path) -> Measure:
        settle(info.pid)
        start = Reading.now(info.pid)
        done = subprocess.run(
            [
                kubectl_path(),
                "--kubeconfig",
                str(info.kubeconfig),
                "--cache-dir",
                str(cache),
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(file),
                "-v=6",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        measure = start.until(Reading.now(info.pid), kubectl_requests(done.stderr))
        applied = sum(1 for line in done.stdout.splitlines() if line.endswith("serverside-applied"))
        if done.returncode != 0 or applied != count:
            raise SystemExit(
                f"bench: kubectl apply failed ({applied} of {count} applied):\n"
                f"{done.stderr[-2000:]}"
            )
        return measure

    say("kubectl: first apply")
    results = {FIRST: [apply(before)]}
    say(f"kubectl: {rounds} no-op applies")
    results[NOOP] = [apply(before) for _ in range(rounds)]
    say(f"kubectl: {rounds} one-object changes")
    results[CHANGE] = [apply(after if r % 2 == 0 else before) for r in range(rounds)]
    return results


# --- gitmoor -----------------------------------------------------------------------------


def ready_at(ks: Mapping[str, Any], commit: str) -> bool:
    status = ks.get("status") or {}
    return (
        conditions.is_true(ks)
        and status.get("observedGeneration") == (ks.get("metadata") or {}).get("generation")
        and str(status.get("lastAppliedRevision") or "").endswith(commit)
    )


def stub(api_version: str, kind: str, name: str) -> KubeObject:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
    }


async def until(check: Callable[[], bool], timeout: float, what: str, manager: Manager) -> None:
    """Poll the manager's cache (no requests): reconcilers put each status they write there."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            states = "\n".join(
                f"  {ks['metadata']['name']}: "
                f"{conditions.find((ks.get('status') or {}).get('conditions'), conditions.READY)}"
                for ks in manager.objects("Kustomization")
            )
            raise SystemExit(f"bench: {what}: not done after {timeout:g}s\n{states}")
        await asyncio.sleep(POLL)


async def gitmoor_side(
    info: process.SandboxInfo, repo: Path, layout: Layout, rounds: int, work: Path, say: Log
) -> dict[str, list[Measure]]:
    counter = RequestCounter()
    controllers = Cluster.connect(info.kubeconfig, on_request=counter)
    bench = Cluster.connect(info.kubeconfig)
    pid = info.pid
    results: dict[str, list[Measure]] = {FIRST: [], NOOP: [], CHANGE: []}
    try:
        await install_crds(bench)
        bootstrap = bootstrap_objects(repo.resolve().as_uri(), branch=BRANCH, path=ROOT_PATH)
        # Fetches come only when the bench asks for one, not from a 1-minute poll.
        bootstrap[1]["spec"]["interval"] = "60m"
        await apply_bootstrap(bench, bootstrap)
        manager, _ = build_manager(
            controllers, cache_dir=work / "gitmoor-cache", concurrency=WORKERS
        )

        def all_ready(commit: str) -> Callable[[], bool]:
            def check() -> bool:
                items = manager.objects("Kustomization")
                return len(items) == len(layout.names) + 1 and all(
                    ready_at(ks, commit) for ks in items
                )

            return check

        head = (await asyncio.to_thread(git, repo, "rev-parse", "HEAD")).strip()
        await asyncio.to_thread(settle, pid)
        say("gitmoor: first convergence")
        start, before = Reading.now(pid), counter.counts.copy()
        task = asyncio.create_task(manager.run())
        try:
            await until(all_ready(head), FIRST_TIMEOUT, "first convergence", manager)
            results[FIRST].append(start.until(Reading.now(pid), counter.since(before)))
            inventory = sum(
                len(ks["status"]["inventory"]["entries"])
                for ks in manager.objects("Kustomization")
                if ks["metadata"]["name"] != ROOT
            )
            if inventory != layout.objects:
                raise SystemExit(f"bench: {inventory} objects applied, not {layout.objects}")

            say(f"gitmoor: {rounds} no-op reconciles")
            for _ in range(rounds):
                await asyncio.to_thread(settle, pid)
                stamp = str(time.time_ns())
                annotation = {"metadata": {"annotations": {REQUESTED_AT: stamp}}}

                def handled(stamp: str = stamp) -> bool:
                    return all(
                        (ks := manager.get("Kustomization", FLUX_NAMESPACE, name)) is not None
                        and (ks.get("status") or {}).get("lastHandledReconcileAt") == stamp
                        and ready_at(ks, head)
                        for name in layout.names
                    )

                start, before = Reading.now(pid), counter.counts.copy()
                await asyncio.gather(
                    *(
                        bench.patch(stub(KUSTOMIZE_API, "Kustomization", name), annotation)
                        for name in layout.names
                    )
                )
                await until(handled, PHASE_TIMEOUT, "no-op reconcile", manager)
                results[NOOP].append(start.until(Reading.now(pid), counter.since(before)))

            say(f"gitmoor: {rounds} one-object changes")
            source = stub("source.toolkit.fluxcd.io/v1", "GitRepository", ROOT)
            target = layout.changed_object["metadata"]
            for round_ in range(rounds):
                await asyncio.to_thread(settle, pid)
                value = "2" if round_ % 2 == 0 else "1"
                set_value(layout, value)
                await asyncio.to_thread(git, repo, "commit", "-q", "-am", f"revision {value}")
                head = (await asyncio.to_thread(git, repo, "rev-parse", "HEAD")).strip()
                start, before = Reading.now(pid), counter.counts.copy()
                annotation = {"metadata": {"annotations": {REQUESTED_AT: str(time.time_ns())}}}
                await bench.patch(source, annotation)
                await until(all_ready(head), PHASE_TIMEOUT, "one-object change", manager)
                results[CHANGE].append(start.until(Reading.now(pid), counter.since(before)))
                live = await bench.get("v1", "ConfigMap", target["name"], target["namespace"])
                if (live or {}).get("data", {}).get("revision") != value:
                    raise SystemExit(f"bench: ConfigMap {target['name']} was not changed")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await controllers.close()
        await bench.close()
    return results


# --- report ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:8.2f}x" if theirs else f"{'-':>9}"


def breakdown(counts: Counter[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "none"


def report(
    layout: Layout,
    render_seconds: float,
    ours: Mapping[str, list[Measure]],
    theirs: Mapping[str, list[Measure]],
    kubectl_version: str,
    wall: float,
) -> None:
    print(
        f"gitmoor bench/reconcile.py — {date.today().isoformat()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {kubectl_version}"
    )
    chains = max((layout.chain(i) for i in range(len(layout.names))), default=1)
    print(
        f"repository: {layout.objects} objects in {len(layout.names)} Kustomizations "
        f"({len(layout.depends)} with dependsOn, chains up to {chains} deep) under a root "
        f"Kustomization: " + ", ".join(f"{n} {k}s" for k, n in layout.kinds.most_common())
    )
    print(
        "sandbox: a fresh process for each side; gitmoor: controllers in this process "
        f"({WORKERS} workers); kubectl: apply --server-side --force-conflicts -f, one file"
    )
    print(
        f"kubectl's input rendered beforehand, not timed in its rows: build_repository took "
        f"{render_seconds:.2f} s (gitmoor's rows include its rendering)"
    )
    print()
    print(f"{'':44}{'gitmoor':>12}{'kubectl':>12}{'ratio':>10}")
    for phase, rows in ours.items():
        mine, other = rows, theirs[phase]
        label = phase if len(mine) == 1 else f"{phase} (median of {len(mine)})"
        print(label)
        for name, pick in (
            ("wall clock (s)", lambda m: m.seconds),
            ("API requests", lambda m: float(sum(m.requests.values()))),
            ("client CPU (s)", lambda m: m.client_cpu),
            ("  in child processes (s)", lambda m: m.children_cpu),
            ("server CPU (s)", lambda m: m.server_cpu),
        ):
            a, b = median([pick(m) for m in mine]), median([pick(m) for m in other])
            number = "{:12.0f}" if name == "API requests" else "{:12.2f}"
            print(f"  {name:<42}{number.format(a)}{number.format(b)}{ratio(a, b)}")
        print(f"  gitmoor requests: {breakdown(mine[len(mine) // 2].requests)}")
        print(f"  kubectl requests: {breakdown(other[len(other) // 2].requests)}")
        if len(mine) > 1:
            print(
                "  wall clock of each round (s): gitmoor "
                + " ".join(f"{m.seconds:.2f}" for m in mine)
                + ", kubectl "
                + " ".join(f"{m.seconds:.2f}" for m in other)
            )
    print()
    print(f"wall clock: {wall:.0f} s")


# --- main --------------------------------------------------------------------------------


def kubectl_client_version() -> str:
    done = subprocess.run(
        [kubectl_path(), "version", "--client"], capture_output=True, text=True, check=True
    )
    return "kubectl " + done.stdout.splitlines()[0].rpartition(" ")[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=1000, help="objects (default 1000)")
    parser.add_argument(
        "--kustomizations", type=int, default=20, help="Kustomizations (default 20)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="no-op and change rounds (default 3)")
    args = parser.parse_args(argv)
    objects: int = args.objects
    kustomizations: int = args.kustomizations
    rounds: int = args.rounds
    if kustomizations < 1 or rounds < 1:
        parser.error("--kustomizations and --rounds must be at least 1")
    if objects < 2 * kustomizations:
        parser.error("--objects must be at least 2 per Kustomization")
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gitmoor-bench-") as temporary:
        work = Path(temporary)
        repo = work / "repo"
        say(f"generating {objects} objects in {kustomizations} Kustomizations")
        layout = generate(repo, objects, kustomizations)
        git(repo, "init", "-q", "-b", BRANCH)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench repository")

        say("rendering it for kubectl")
        began = time.perf_counter()
        before = render(repo, work / "render-cache")
        render_seconds = time.perf_counter() - began
        set_value(layout, "2")
        after = render(repo, work / "render-cache")
        set_value(layout, "1")
        (work / "before.yaml").write_text(dump_all(before))
        (work / "after.yaml").write_text(dump_all(after))

        kubectl_dir = work / "sandbox-kubectl"
        say("starting a sandbox for kubectl")
        info = process.start(kubectl_dir)
        try:
            theirs = kubectl_side(
                info, work / "before.yaml", work / "after.yaml", len(before), rounds, say
            )
        finally:
            process.stop(kubectl_dir)

        gitmoor_dir = work / "sandbox-gitmoor"
        say("starting a sandbox for gitmoor")
        info = process.start(gitmoor_dir)
        try:
            ours = asyncio.run(gitmoor_side(info, repo, layout, rounds, work, say))
        finally:
            process.stop(gitmoor_dir)
    report(
        layout,
        render_seconds,
        ours,
        theirs,
        kubectl_client_version(),
        time.perf_counter() - started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
