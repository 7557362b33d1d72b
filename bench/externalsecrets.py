"""How long gitmoor's ExternalSecret controller takes to sync 500 ExternalSecrets from a
real OpenBao, and what a refresh that changes nothing costs in cluster and Vault requests,
next to a script doing the same work directly.

Run from the repository root::

    python bench/externalsecrets.py [--secrets N] [--namespaces K] [--rounds R]

(Not ``secrets.py``: a script of that name, with ``bench/`` first on the module path,
would stand in for the standard library's ``secrets`` module that gitmoor imports, at run
time and for mypy alike.)

Starts an OpenBao dev server (``gitmoor.secrets.devserver``) with a file audit device, so
every request it serves is a line of its audit log, and writes N secrets into its KV v2
engine at ``secret/bench/app-NNNN`` (one property, ``password``), a read-only policy and a
token holding it. Each side then gets a fresh sandbox in a process of its own
(``gitmoor.sandbox.process``) and N Secrets to make in K namespaces with that token.

gitmoor: a ClusterSecretStore with token auth (the token in a Secret) and N ExternalSecrets
(refreshInterval 1h, one ``data`` entry each) are applied before the controllers start
(``build_manager``, its default 4 workers, in this process). It measures:

- the sync: from starting the manager until every ExternalSecret is Ready from a sync of its
  current generation and annotations, and every Secret holds its value, in the manager's
  cache (then checked against the API server);
- a no-change refresh of all at once: ``kubectl apply --server-side`` of the
  ExternalSecrets with ``refreshInterval`` respelled (``1h`` and ``60m`` in turn), a new
  generation and nothing else, so each is fetched again and its Secret found as it should
  be; until each has synced the new generation;
- a forced refresh: ``kubectl annotate externalsecrets --all force-sync=<time>
  --overwrite``, as External Secrets documents it; the annotation is copied onto each
  Secret, as External Secrets copies an ExternalSecret's annotations, so the Secrets are
  written;
- one periodic refresh: ``refreshInterval`` set short, then one round of the refreshes it
  brings, each when its own interval ends (the counts; its time is the due times' spread).

The kubectl runs are one per namespace, all at once, inside the window; their CPU is
theirs, their requests are not counted.

baseline: a plain script, 4 at a time: an hvac read of each secret and a server-side apply
of its Secret (field manager ``bench``); its no-change pass lists the Secrets of each
namespace, reads every secret from OpenBao again and compares, writing nothing.

Cluster requests are counted by a hook on the client that sends them
(``Cluster.connect(on_request=...)``): the controllers' on gitmoor's side, the script's on
the baseline's. Vault requests are the audit log's request entries written during the
measurement. Before each measurement the sandbox must have been idle for a second. Client
CPU is this process's, server CPU the sandbox's and OpenBao's processes'. Refresh rounds run
R times (default 3); the medians are compared. Prints figures only: nothing here passes or
fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import hvac
from reconcile import Measure, Reading, RequestCounter, breakdown, median, ratio, server_cpu, settle

from gitmoor.cluster import Cluster, Kind
from gitmoor.controllers import conditions
from gitmoor.controllers.externalsecret import (
    EXTERNAL_SECRET,
    SECRET,
    SECRET_SYNCED,
    resource_version,
)
from gitmoor.controllers.manager import Key, Manager, Reconciler, Result
from gitmoor.controllers.run import build_manager, install_crds
from gitmoor.manifests import KubeObject, dump_all
from gitmoor.render.kustomize_cli import kubectl_path
from gitmoor.sandbox import process
from gitmoor.secrets import devserver
from gitmoor.secrets.devserver import DevServer

MOUNT = "secret"  # the dev server's KV v2 engine
PREFIX = "bench"
PROPERTY = "password"
POLICY = "bench-read"
POLICY_RULES = f"""
path "{MOUNT}/data/{PREFIX}/*" {{ capabilities = ["read"] }}
path "{MOUNT}/metadata/{PREFIX}/*" {{ capabilities = ["read", "list"] }}
"""
STORE = "bench-vault"
TOKEN_NAMESPACE, TOKEN_SECRET = devserver.TOKEN_SECRET
FORCE_SYNC = "force-sync"
CONFIG_ENV = "BAO_CONFIG_PATH"  # extra configuration files `bao server` reads, -dev too
SYNC = "sync (every Secret holds its value, every ExternalSecret Ready)"
REFRESH = "no-change refresh, all at once (refreshInterval respelled) / no-change pass"
FORCED = "forced refresh (force-sync annotation) / no-change pass"
PASS = "no-change pass"
PERIODIC = "periodic no-change refresh"
BASELINE_OF = {SYNC: SYNC, REFRESH: PASS, FORCED: PASS}
FIRST_INTERVAL = "1h"
# The same hour spelled two ways: each respelling is a new generation, nothing else changes.
INTERVALS = ("60m", FIRST_INTERVAL)
PERIOD_MIN = 5
GITMOOR = "gitmoor"
BASELINE = "baseline"
WORKERS = 4  # what `gitmoor controllers` runs with unless told (--concurrency)
APPLY_IN_FLIGHT = 16  # setting up, not timed
SYNC_TIMEOUT = 900.0
PHASE_TIMEOUT = 300.0
POLL = 0.02

Log = Callable[[str], None]


# --- the secrets -------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Entry:
    """One secret: its path in OpenBao, its value, and the Secret it becomes."""

    namespace: str
    name: str
    value: str

    @property
    def path(self) -> str:
        """The remote key, under the store's mount."""
        return f"{PREFIX}/{self.name}"

    @property
    def encoded(self) -> str:
        """The value as a Secret's ``data`` holds it."""
        return base64.b64encode(self.value.encode()).decode()


def entries(count: int, namespaces: int) -> list[Entry]:
    return [
        Entry(f"bench-{i % namespaces:02}", f"app-{i:04}", secrets.token_urlsafe(24))
        for i in range(count)
    ]


def namespaces_of(items: Sequence[Entry]) -> list[str]:
    return sorted({e.namespace for e in items})


def namespace(name: str) -> KubeObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def secret(entry: Entry) -> KubeObject:
    """The baseline's Secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": entry.name, "namespace": entry.namespace},
        "type": "Opaque",
        "data": {PROPERTY: entry.encoded},
    }


def external_secret(entry: Entry, interval: str) -> KubeObject:
    return {
        "apiVersion": EXTERNAL_SECRET.api_version,
        "kind": EXTERNAL_SECRET.kind,
        "metadata": {"name": entry.name, "namespace": entry.namespace},
        "spec": {
            "refreshInterval": interval,
            "secretStoreRef": {"name": STORE, "kind": "ClusterSecretStore"},
            "target": {"name": entry.name},
            "data": [{"secretKey": PROPERTY,
                      "remoteRef": {"key": entry.path, "property": PROPERTY}}],
        },
    }  # fmt: skip


def store_objects(server: DevServer, token: str) -> list[KubeObject]:
    """The token's Namespace and Secret, and the ClusterSecretStore logging in with it."""
    return [
        namespace(TOKEN_NAMESPACE),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": TOKEN_SECRET, "namespace": TOKEN_NAMESPACE},
            "type": "Opaque",
            "data": {"token": base64.b64encode(token.encode()).decode()},
        },
        {
            "apiVersion": EXTERNAL_SECRET.api_version,
            "kind": "ClusterSecretStore",
            "metadata": {"name": STORE},
            "spec": {
                # Revalidating (every 5 minutes by default) is not what is measured.
                "refreshInterval": 3600,
                "provider": {
                    "vault": {
                        "server": server.address,
                        "path": MOUNT,
                        "version": "v2",
                        "auth": {
                            "tokenSecretRef": {
                                "name": TOKEN_SECRET,
                                "namespace": TOKEN_NAMESPACE,
                                "key": "token",
                            }
                        },
                    }
                },
            },
        },
    ]


# --- OpenBao -----------------------------------------------------------------------------


@contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def start_openbao(directory: Path) -> tuple[DevServer, AuditLog]:
    """A dev server logging every request to a file: OpenBao enables audit devices only
    from its configuration, which a dev server reads too (``BAO_CONFIG_PATH``)."""
    directory.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(directory / "audit.log")
    config = directory / "audit.hcl"
    config.write_text(
        f'audit "file" "bench" {{\n  options {{\n    file_path = "{audit.path}"\n  }}\n}}\n'
    )
    with environment(CONFIG_ENV, str(config)):
        server = devserver.start(directory / "openbao")
    return server, audit


def prepare(server: DevServer, items: Sequence[Entry]) -> str:
    """Write the secrets; a read-only token for the store and the baseline."""
    root = server.client()
    root.sys.create_or_update_policy(POLICY, POLICY_RULES)
    for entry in items:
        root.secrets.kv.v2.create_or_update_secret(
            path=entry.path, mount_point=MOUNT, secret={PROPERTY: entry.value}
        )
    created = root.auth.token.create(policies=[POLICY], ttl="24h")
    return str(created["auth"]["client_token"])


@dataclass(frozen=True)
class AuditLog:
    """OpenBao's file audit log: one JSON line per request and one per response, written
    before the response is sent, so a finished phase's requests are all in it."""

    path: Path

    def counts(self) -> Counter[str]:
        """Requests so far, by operation and path (the bench's secrets folded into one)."""
        found: Counter[str] = Counter()
        if not self.path.exists():
            return found
        for line in self.path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("type") != "request":
                continue
            request = entry.get("request") or {}
            path = str(request.get("path", ""))
            if path.startswith(f"{MOUNT}/data/{PREFIX}/"):
                path = f"{MOUNT}/data/{PREFIX}/*"
            found[f"{request.get('operation', '?')} {path}"] += 1
        return found


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    measure: Measure
    vault: Counter[str]
    openbao_cpu: float


@dataclass(frozen=True)
class Clocks:
    """What a phase is measured with: the sandbox's and OpenBao's CPU, this process's, the
    client's request counter and OpenBao's audit log."""

    sandbox_pid: int
    openbao: DevServer
    audit: AuditLog
    counter: RequestCounter

    def start(self) -> Callable[[], Phase]:
        """Start measuring; the function returned stops and gives the phase."""
        vault, cluster = self.audit.counts(), self.counter.counts.copy()
        openbao = server_cpu(self.openbao.pid)
        began = Reading.now(self.sandbox_pid)

        def stop() -> Phase:
            measure = began.until(Reading.now(self.sandbox_pid), self.counter.since(cluster))
            return Phase(
                measure, self.audit.counts() - vault, server_cpu(self.openbao.pid) - openbao
            )

        return stop


async def live_secrets(cluster: Cluster, items: Sequence[Entry]) -> dict[tuple[str, str], Any]:
    """The Secrets of the entries' namespaces, one list request per namespace."""
    lists = await asyncio.gather(
        *(cluster.list("v1", "Secret", namespace=ns) for ns in namespaces_of(items))
    )
    return {
        (obj["metadata"]["namespace"], obj["metadata"]["name"]): obj
        for found in lists
        for obj in found
    }


async def verify(cluster: Cluster, items: Sequence[Entry], who: str) -> None:
    """Every Secret exists and holds its value, as the API server has it."""
    live = await live_secrets(cluster, items)
    wrong = [
        e
        for e in items
        if ((live.get((e.namespace, e.name)) or {}).get("data") or {}).get(PROPERTY) != e.encoded
    ]
    if wrong:
        first = wrong[0]
        raise SystemExit(f"bench: {who}: {len(wrong)} Secrets missing or wrong, the first "
                         f"{first.namespace}/{first.name}")  # fmt: skip


# --- baseline ----------------------------------------------------------------------------


def read_value(client: Any, entry: Entry) -> str:
    answer = client.secrets.kv.v2.read_secret_version(
        path=entry.path, mount_point=MOUNT, raise_on_deleted_version=True
    )
    return str(answer["data"]["data"][PROPERTY])


async def in_workers(
    items: Sequence[Entry], clients: Sequence[Any], job: Callable[[Any, Entry], Awaitable[None]]
) -> None:
    """``job`` for each entry, as many at a time as there are clients (hvac's blocking
    calls go to threads, one client each)."""
    remaining = iter(items)

    async def worker(client: Any) -> None:
        for entry in remaining:  # shared: each entry is taken once
            await job(client, entry)

    await asyncio.gather(*(worker(client) for client in clients))


async def compare(
    live: Mapping[tuple[str, str], Any], differ: list[Entry], client: Any, entry: Entry
) -> None:
    """Read the secret again; note the entry if its Secret holds something else."""
    value = await asyncio.to_thread(read_value, client, entry)
    held = (live.get((entry.namespace, entry.name)) or {}).get("data") or {}
    if held.get(PROPERTY) != Entry(entry.namespace, entry.name, value).encoded:
        differ.append(entry)


async def baseline_side(
    info: process.SandboxInfo,
    server: DevServer,
    audit: AuditLog,
    token: str,
    items: Sequence[Entry],
    rounds: int,
    say: Log,
) -> dict[str, list[Phase]]:
    counter = RequestCounter()
    cluster = Cluster.connect(info.kubeconfig, on_request=counter)
    clocks = Clocks(info.pid, server, audit, counter)
    clients = [hvac.Client(url=server.address, token=token, timeout=30) for _ in range(WORKERS)]
    results: dict[str, list[Phase]] = {SYNC: [], PASS: []}
    try:
        for name in namespaces_of(items):
            await cluster.apply(namespace(name), force=True)

        async def write(client: Any, entry: Entry) -> None:
            value = await asyncio.to_thread(read_value, client, entry)
            await cluster.apply(
                secret(Entry(entry.namespace, entry.name, value)), force=True, field_manager="bench"
            )

        await asyncio.to_thread(settle, info.pid)
        say(f"baseline: sync of {len(items)} Secrets")
        stop = clocks.start()
        await in_workers(items, clients, write)
        results[SYNC].append(stop())
        await verify(cluster, items, "baseline sync")

        say(f"baseline: {rounds} no-change passes")
        for _ in range(rounds):
            await asyncio.to_thread(settle, info.pid)
            differ: list[Entry] = []
            stop = clocks.start()
            live = await live_secrets(cluster, items)
            await in_workers(items, clients, partial(compare, live, differ))
            results[PASS].append(stop())
            if differ:
                raise SystemExit(f"bench: the baseline's no-change pass found {len(differ)} "
                                 "Secrets that differ from OpenBao")  # fmt: skip
    finally:
        await cluster.close()
        for client in clients:
            client.adapter.close()
    return results


# --- gitmoor -----------------------------------------------------------------------------


def synced(es: Mapping[str, Any]) -> bool:
    """Ready from a sync of the ExternalSecret as it is now (spec, labels, annotations)."""
    status = es.get("status") or {}
    ready = conditions.find(status.get("conditions"), conditions.READY) or {}
    return (
        ready.get("status") == "True"
        and ready.get("reason") == SECRET_SYNCED
        and status.get("syncedResourceVersion") == resource_version(es)
    )


def state(manager: Manager, entry: Entry) -> str:
    """Where an ExternalSecret stands, for a message (names and conditions, no values)."""
    es = manager.get(EXTERNAL_SECRET.kind, entry.namespace, entry.name)
    if es is None:
        return f"ExternalSecret {entry.namespace}/{entry.name} not seen"
    ready = conditions.find((es.get("status") or {}).get("conditions"), conditions.READY) or {}
    return (
        f"ExternalSecret {entry.namespace}/{entry.name}: Ready {ready.get('status')} "
        f"{ready.get('reason')} {ready.get('message')!r}"
    )


async def kubectl(kubeconfig: Path, cache: Path, *args: str) -> None:
    child = await asyncio.create_subprocess_exec(
        kubectl_path(), "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"bench: kubectl {' '.join(args)} failed:\n{stderr.decode()[-2000:]}")


@dataclass
class Kubectl:
    """What changes the ExternalSecrets, as a user would: one kubectl per namespace, all at
    once, in processes of their own (their CPU is not this process's)."""

    kubeconfig: Path
    cache: Path
    work: Path
    items: Sequence[Entry]

    async def each(self, argv: Callable[[str], Sequence[str]]) -> float:
        """``argv(namespace)`` run for every namespace at once; seconds until all are done."""
        began = time.perf_counter()
        await asyncio.gather(
            *(kubectl(self.kubeconfig, self.cache, *argv(ns)) for ns in namespaces_of(self.items))
        )
        return time.perf_counter() - began

    async def force_sync(self, stamp: str) -> float:
        return await self.each(
            lambda ns: (
                "annotate",
                "externalsecrets",
                "--all",
                "-n",
                ns,
                f"{FORCE_SYNC}={stamp}",
                "--overwrite",
            )
        )

    async def apply_interval(self, interval: str) -> float:
        """The ExternalSecrets applied again with ``refreshInterval`` set to ``interval``
        (kubectl takes the field over, server-side)."""
        for ns in namespaces_of(self.items):
            objects = [external_secret(e, interval) for e in self.items if e.namespace == ns]
            (self.work / f"externalsecrets-{ns}.yaml").write_text(dump_all(objects))
        return await self.each(
            lambda ns: (
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(self.work / f"externalsecrets-{ns}.yaml"),
            )
        )


@dataclass
class Watched:
    """The ExternalSecret reconciler as registered, noting each ExternalSecret and Secret
    whose copy in the manager's cache changed (the manager shows every change to the
    triggers of every reconciler), so that waiting looks only at those: the waiting shares
    this process with the controllers, and looking at all 500 every time made the sync
    take 1.6 times as long."""

    inner: Reconciler
    kind: Kind = field(init=False)
    changed: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.kind = self.inner.kind

    async def reconcile(self, obj: KubeObject) -> Result:
        return await self.inner.reconcile(obj)

    def triggers(
        self, kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> Iterable[Key]:
        obj = new if new is not None else old
        if obj is not None and kind in (EXTERNAL_SECRET.kind, SECRET.kind):
            meta = obj.get("metadata") or {}
            self.changed.add((meta.get("namespace", ""), meta.get("name", "")))
        return self.inner.triggers(kind, old, new)

    async def until_all(
        self,
        items: Sequence[Entry],
        done: Callable[[Entry], bool],
        timeout: float,
        what: str,
        describe: Callable[[Entry], str],
    ) -> None:
        """Poll until ``done`` holds for every entry, asking again only about those that
        changed since they were last asked about."""
        deadline = time.monotonic() + timeout
        by_key = {(e.namespace, e.name): e for e in items}
        pending = set(by_key)
        ask = set(pending)
        while True:
            self.changed.clear()
            pending -= {key for key in ask if done(by_key[key])}
            if not pending:
                return
            if time.monotonic() > deadline:
                first = by_key[min(pending)]
                raise SystemExit(f"bench: {what}: {len(pending)} of {len(items)} not done "
                                 f"after {timeout:g}s; the first: {describe(first)}")  # fmt: skip
            await asyncio.sleep(POLL)
            ask = pending & self.changed


@dataclass
class GitmoorRun:
    phases: dict[str, list[Phase]] = field(default_factory=dict)
    triggers: dict[str, list[float]] = field(default_factory=dict)
    """Seconds the kubectl runs of each round took, inside its window."""
    changed: Counter[str] = field(default_factory=Counter)
    """Secrets whose resourceVersion moved, by phase."""
    period: float = 0.0
    periodic: Phase | None = None
    periodic_span: float = 0.0
    """From the first ExternalSecret seen refreshed by its interval to the last."""


def moved(before: Mapping[tuple[str, str], Any], after: Mapping[tuple[str, str], Any]) -> int:
    return sum(
        1
        for key, obj in after.items()
        if key not in before
        or before[key]["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    )


async def gitmoor_side(
    info: process.SandboxInfo,
    server: DevServer,
    audit: AuditLog,
    token: str,
    items: Sequence[Entry],
    rounds: int,
    work: Path,
    say: Log,
) -> GitmoorRun:
    counter = RequestCounter()
    controllers = Cluster.connect(info.kubeconfig, on_request=counter)
    bench = Cluster.connect(info.kubeconfig)
    clocks = Clocks(info.pid, server, audit, counter)
    users = Kubectl(info.kubeconfig, work / "kubectl-cache", work, items)
    run = GitmoorRun()
    try:
        await install_crds(bench, external_secrets=True)
        for obj in [*map(namespace, namespaces_of(items)), *store_objects(server, token)]:
            await bench.apply(obj, force=True)
        for start in range(0, len(items), APPLY_IN_FLIGHT):
            chunk = items[start : start + APPLY_IN_FLIGHT]
            await asyncio.gather(
                *(bench.apply(external_secret(e, FIRST_INTERVAL), force=True) for e in chunk)
            )
        manager, _ = build_manager(
            controllers, cache_dir=work / "gitmoor-cache", concurrency=WORKERS
        )
        watched = Watched(manager.reconcilers[EXTERNAL_SECRET.kind])
        manager.register(watched)

        def es_of(entry: Entry) -> KubeObject | None:
            return manager.get(EXTERNAL_SECRET.kind, entry.namespace, entry.name)

        def describe(entry: Entry) -> str:
            return state(manager, entry)

        async def until_all(done: Callable[[Entry], bool], timeout: float, what: str) -> None:
            await watched.until_all(items, done, timeout, what, describe)

        def in_sync(entry: Entry) -> bool:
            es = es_of(entry)
            held = manager.get(SECRET.kind, entry.namespace, entry.name)
            return (
                es is not None
                and synced(es)
                and held is not None
                and (held.get("data") or {}).get(PROPERTY) == entry.encoded
            )

        def annotated(stamp: str) -> Callable[[Entry], bool]:
            def done(entry: Entry) -> bool:
                es = es_of(entry) or {}
                annotations = (es.get("metadata") or {}).get("annotations") or {}
                return annotations.get(FORCE_SYNC) == stamp and synced(es)

            return done

        def with_interval(interval: str) -> Callable[[Entry], bool]:
            def done(entry: Entry) -> bool:
                es = es_of(entry) or {}
                return (es.get("spec") or {}).get("refreshInterval") == interval and synced(es)

            return done

        async def measured(
            phase: str,
            trigger: Callable[[], Coroutine[Any, Any, float]],
            done: Callable[[Entry], bool],
        ) -> None:
            """One round: the kubectl runs and the reconciles they cause, until ``done``."""
            await asyncio.to_thread(settle, info.pid)
            before = await live_secrets(bench, items)
            stop = clocks.start()
            triggering = asyncio.create_task(trigger())
            await until_all(done, PHASE_TIMEOUT, phase)
            run.triggers.setdefault(phase, []).append(await triggering)
            run.phases.setdefault(phase, []).append(stop())
            run.changed[phase] += moved(before, await live_secrets(bench, items))

        await asyncio.to_thread(settle, info.pid)
        say(f"gitmoor: sync of {len(items)} ExternalSecrets")
        stop = clocks.start()
        task = asyncio.create_task(manager.run())
        try:
            await until_all(in_sync, SYNC_TIMEOUT, "sync")
            run.phases[SYNC] = [stop()]
            await verify(bench, items, "gitmoor sync")
            # kubectl's discovery cache, filled before its first timed run
            await kubectl(info.kubeconfig, users.cache, "get", "externalsecrets", "-A")

            say(f"gitmoor: {rounds} rounds of no-change and forced refreshes")
            for round_ in range(rounds):
                interval = INTERVALS[round_ % 2]
                await measured(
                    REFRESH, partial(users.apply_interval, interval), with_interval(interval)
                )
                stamp = str(time.time_ns())
                await measured(FORCED, partial(users.force_sync, stamp), annotated(stamp))
            await verify(bench, items, "gitmoor after the refreshes")

            # Long enough that one round is over well before the next is due.
            run.period = float(max(PERIOD_MIN, math.ceil(3 * max(
                p.measure.seconds for p in run.phases[REFRESH]))))  # fmt: skip
            interval = f"{run.period:.0f}s"
            say(f"gitmoor: one periodic refresh, refreshInterval {interval}")
            await users.apply_interval(interval)
            await until_all(with_interval(interval), PHASE_TIMEOUT, "interval")
            before = await live_secrets(bench, items)
            last = {e: refresh_time(es_of(e)) for e in items}
            seen: dict[Entry, float] = {}

            def refreshed(entry: Entry) -> bool:
                es = es_of(entry) or {}
                if refresh_time(es) == last[entry] or not synced(es):
                    return False
                seen.setdefault(entry, time.perf_counter())
                return True

            stop = clocks.start()
            await until_all(refreshed, run.period + PHASE_TIMEOUT, "periodic refresh")
            run.periodic = stop()
            run.periodic_span = max(seen.values()) - min(seen.values())
            run.changed[PERIODIC] += moved(before, await live_secrets(bench, items))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await controllers.close()
        await bench.close()
    return run


def refresh_time(es: Mapping[str, Any] | None) -> str:
    return str(((es or {}).get("status") or {}).get("refreshTime") or "")


# --- report ------------------------------------------------------------------------------


ROWS: tuple[tuple[str, Callable[[Phase], float]], ...] = (
    ("wall clock (s)", lambda p: p.measure.seconds),
    ("cluster API requests", lambda p: float(sum(p.measure.requests.values()))),
    ("Vault requests", lambda p: float(sum(p.vault.values()))),
    ("client CPU, this process (s)", lambda p: p.measure.own_cpu),
    ("sandbox CPU (s)", lambda p: p.measure.server_cpu),
    ("OpenBao CPU (s)", lambda p: p.openbao_cpu),
)


def per_item(phase: Phase, count: int) -> str:
    return (
        f"{sum(phase.measure.requests.values()) / count:.2f} cluster + "
        f"{sum(phase.vault.values()) / count:.2f} Vault requests"
    )


def report(
    items: Sequence[Entry],
    ours: GitmoorRun,
    theirs: Mapping[str, list[Phase]],
    versions: str,
    wall: float,
) -> None:
    count, spaces = len(items), len(namespaces_of(items))
    print(
        f"gitmoor bench/externalsecrets.py — {date.today().isoformat()}, {os.cpu_count()} "
        f"CPUs, Python {platform.python_version()}, {versions}"
    )
    print(
        f"{count} ExternalSecrets in {spaces} namespaces, one key each (property '{PROPERTY}' "
        f"of its own KV v2 secret, {MOUNT}/{PREFIX}/app-NNNN), one ClusterSecretStore with "
        "token auth (a read-only token)"
    )
    print(
        "sandbox: a fresh process for each side; OpenBao: one dev server, Vault requests "
        f"counted in its audit log; gitmoor: controllers in this process ({WORKERS} workers); "
        f"baseline: hvac reads and server-side applies, {WORKERS} at a time"
    )
    print()
    print(f"{'':44}{GITMOOR:>12}{BASELINE:>12}{'ratio':>10}")
    for phase, mine in ours.phases.items():
        other = theirs[BASELINE_OF[phase]]
        label = phase if len(mine) == 1 else f"{phase} (median of {len(mine)})"
        print(label)
        for name, pick in ROWS:
            a, b = median([pick(p) for p in mine]), median([pick(p) for p in other])
            number = "{:12.0f}" if "requests" in name else "{:12.2f}"
            print(f"  {name:<42}{number.format(a)}{number.format(b)}{ratio(a, b)}")
        middle, theirs_middle = mine[len(mine) // 2], other[len(other) // 2]
        print(f"  gitmoor cluster requests: {breakdown(middle.measure.requests)}")
        print(f"  baseline cluster requests: {breakdown(theirs_middle.measure.requests)}")
        print(f"  gitmoor Vault requests: {breakdown(middle.vault)}")
        print(f"  baseline Vault requests: {breakdown(theirs_middle.vault)}")
        print(
            f"  per ExternalSecret: gitmoor {per_item(middle, count)}, "
            f"baseline {per_item(theirs_middle, count)}"
        )
        if phase in ours.triggers:
            print(
                f"  kubectl, one per namespace at once, in gitmoor's window: "
                f"{median(ours.triggers[phase]):.2f} s, "
                f"{median([p.measure.children_cpu for p in mine]):.2f} s CPU (not in the "
                "client CPU; its requests not counted)"
            )
        if len(mine) > 1:
            print(
                "  wall clock of each round (s): gitmoor "
                + " ".join(f"{p.measure.seconds:.2f}" for p in mine)
                + ", baseline "
                + " ".join(f"{p.measure.seconds:.2f}" for p in other)
            )
        print(f"  Secrets changed (resourceVersion): gitmoor {ours.changed[phase]}")
    periodic = ours.periodic
    if periodic is not None:
        print(
            f"{PERIODIC}, one round at refreshInterval {ours.period:.0f}s (gitmoor only: due "
            "as the last sync of each was done, not all at once)"
        )
        print(f"  first to last ExternalSecret refreshed: {ours.periodic_span:.2f} s")
        print(
            f"  cluster API requests {sum(periodic.measure.requests.values())} "
            f"({breakdown(periodic.measure.requests)}), Vault requests "
            f"{sum(periodic.vault.values())} ({breakdown(periodic.vault)})"
        )
        print(f"  per ExternalSecret: {per_item(periodic, count)}")
        print(
            f"  client CPU {periodic.measure.own_cpu:.2f} s, sandbox CPU "
            f"{periodic.measure.server_cpu:.2f} s, OpenBao CPU {periodic.openbao_cpu:.2f} s"
        )
        print(f"  Secrets changed (resourceVersion): gitmoor {ours.changed[PERIODIC]}")
    print()
    print(f"wall clock: {wall:.0f} s")


# --- main --------------------------------------------------------------------------------


def versions(server: DevServer) -> str:
    health = server.client().sys.read_health_status(method="GET")
    done = subprocess.run(
        [kubectl_path(), "version", "--client"], capture_output=True, text=True, check=True
    )
    kubectl_version = done.stdout.splitlines()[0].rpartition(" ")[2]
    return f"OpenBao v{health['version']}, kubectl {kubectl_version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--secrets", type=int, default=500, help="ExternalSecrets (default 500)")
    parser.add_argument("--namespaces", type=int, default=5, help="namespaces (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="refresh rounds (default 3)")
    args = parser.parse_args(argv)
    count: int = args.secrets
    spaces: int = args.namespaces
    rounds: int = args.rounds
    if count < 1 or spaces < 1 or rounds < 1:
        parser.error("--secrets, --namespaces and --rounds must be at least 1")
    if spaces > count:
        parser.error("--namespaces must not exceed --secrets")
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    items = entries(count, spaces)
    with tempfile.TemporaryDirectory(prefix="gitmoor-bench-") as temporary:
        work = Path(temporary)
        say("starting OpenBao")
        server, audit = start_openbao(work / "vault")
        try:
            say(f"writing {count} secrets into OpenBao")
            token = prepare(server, items)
            described = versions(server)
            baseline_dir = work / "sandbox-baseline"
            say("starting a sandbox for the baseline")
            info = process.start(baseline_dir)
            try:
                theirs = asyncio.run(baseline_side(info, server, audit, token, items, rounds, say))
            finally:
                process.stop(baseline_dir)
            gitmoor_dir = work / "sandbox-gitmoor"
            say("starting a sandbox for gitmoor")
            info = process.start(gitmoor_dir)
            try:
                ours = asyncio.run(
                    gitmoor_side(info, server, audit, token, items, rounds, work, say)
                )
            finally:
                process.stop(gitmoor_dir)
        finally:
            devserver.stop(server.directory)
    report(items, ours, theirs, described, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
