"""How fast the sandbox's API server is, next to bare SQLite doing the same storage work.

Run from the repository root::

    python bench/sandbox.py [--objects N]

Starts the sandbox as ``gitmoor sandbox up`` does (``python -m gitmoor.sandbox.serve`` in
a process of its own, through ``gitmoor.sandbox.process.start``) on a temporary state
directory, and talks to it over HTTPS with its CA and bearer token through one pooled
aiohttp session, as a client would. It measures:

- creates: N ConfigMaps (``POST``), 16 requests in flight;
- server-side applies: N more ConfigMaps created by apply patches
  (``PATCH application/apply-patch+yaml``, fieldManager ``bench``), then the same N
  applied again with one value changed (an update of every object), 16 in flight;
- at 2N objects (10,000 by default): p50/p99 latency of ``GET`` of one ConfigMap, of a
  ``LIST`` of all of them, and of the first page of a list with ``limit=500`` (the chunk
  size kubectl and client-go ask for), one request at a time;
- watch fan-out: 50 watches on the namespace, each on a connection of its own; then one
  ConfigMap is patched, 20 times, and the time from sending the patch to the event
  reaching the first and the last of the 50 watchers is taken;
- the server's resident memory (``VmRSS``/``VmHWM`` of /proc/PID/status) when it has
  started, at 2N objects, after the reads and after the watches (the session's 16
  keep-alive connections stay open throughout, as a client's pool keeps them), and its
  CPU time per write phase (/proc/PID/stat).

The baseline does the same number of writes and reads in this process on a bare SQLite
table (WAL, ``synchronous=NORMAL``, one transaction per write, as the sandbox's store)
holding the objects as JSON text: what storing and reading them costs at the least, so
the ratio is what the API adds (HTTP, TLS, routing, metadata, managedFields, the event
log, watch dispatch). The client and the server share this machine's CPUs. Prints
figures only: nothing here passes or fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import sqlite3
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from gitmoor.sandbox import process

NAMESPACE = "bench"
CONCURRENCY = 16
WATCHERS = 50
WATCH_ROUNDS = 20
GET_SAMPLES = 1000
LIST_SAMPLES = 20
PAGE_SAMPLES = 100
PAGE_LIMIT = 500
BASE = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
APPLY = "application/apply-patch+yaml"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Log = Callable[[str], None]


def configmap(name: str, index: int, revision: int = 1) -> dict[str, Any]:
    """A ConfigMap of a typical size (about 0.5 kB of JSON)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "bench", "shard": str(index % 10)},
        },
        "data": {
            "revision": str(revision),
            "settings.yaml": "".join(f"key{k}: value-{index}-{k}\n" for k in range(12)),
        },
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Server:
    """The sandbox process and how to reach it."""

    pid: int
    url: str
    token: str
    ssl_context: ssl.SSLContext

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM): resident now and at its peak."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.split()[0] if value.split() else "0"
        return int(fields["VmRSS"]), int(fields["VmHWM"])

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        # utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
        return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


@dataclass
class Phase:
    name: str
    count: int
    seconds: float
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass
class Results:
    objects: int = 0
    api: dict[str, Phase] = field(default_factory=dict)
    base: dict[str, Phase] = field(default_factory=dict)
    api_latency: dict[str, list[float]] = field(default_factory=dict)
    base_latency: dict[str, list[float]] = field(default_factory=dict)
    fanout_first: list[float] = field(default_factory=list)
    fanout_last: list[float] = field(default_factory=list)
    fanout_write: list[float] = field(default_factory=list)
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)
    list_bytes: int = 0


# --- the API -----------------------------------------------------------------------------


class Client:
    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json"}

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        expect: tuple[int, ...] = (200, 201),
    ) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers if data is None else {**self.headers, "Content-Type": content_type}
        async with self.session.request(
            method, self.server.url + path, data=data, headers=headers
        ) as response:
            raw = await response.read()
            if response.status not in expect:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {raw[:300]!r}")
            return raw


async def in_parallel(count: int, work: Callable[[int], Awaitable[object]]) -> float:
    """Run ``work(0..count-1)`` with CONCURRENCY in flight; the wall-clock seconds taken."""
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await work(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def timed(work: Callable[[], Awaitable[object]], samples: int) -> list[float]:
    """Seconds per call, one call at a time."""
    seconds = []
    for _ in range(samples):
        started = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
    return seconds


async def measure_api(server: Server, objects: int, results: Results, say: Log) -> None:
    connector = aiohttp.TCPConnector(ssl=server.ssl_context, limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(server, session)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        await client.call("POST", "/api/v1/namespaces", namespace)
        results.memory["started, empty"] = server.memory_kib()

        async def phase(name: str, work: Callable[[int], Awaitable[object]]) -> None:
            say(f"{name}: {objects} ConfigMaps")
            cpu = server.cpu_seconds()
            seconds = await in_parallel(objects, work)
            results.api[name] = Phase(name, objects, seconds, server.cpu_seconds() - cpu)

        await phase("create", lambda i: client.call("POST", BASE, configmap(f"created-{i:05}", i)))

        def apply(revision: int) -> Callable[[int], Awaitable[bytes]]:
            def one(i: int) -> Awaitable[bytes]:
                path = f"{BASE}/applied-{i:05}?fieldManager=bench"
                body = configmap(f"applied-{i:05}", i, revision)
                return client.call("PATCH", path, body, content_type=APPLY)

            return one

        await phase("apply (creates)", apply(1))
        await phase("apply (updates)", apply(2))
        results.objects = 2 * objects
        results.memory[f"at {results.objects} objects"] = server.memory_kib()

        say(f"get, list at {results.objects} objects")
        names = [f"{kind}-{i:05}" for kind in ("created", "applied") for i in range(objects)]
        chooser = random.Random(7)
        results.api_latency["get"] = await timed(
            lambda: client.call("GET", f"{BASE}/{chooser.choice(names)}"), GET_SAMPLES
        )
        results.list_bytes = len(await client.call("GET", BASE))
        results.api_latency["list (all)"] = await timed(
            lambda: client.call("GET", BASE), LIST_SAMPLES
        )
        results.api_latency[f"list (limit={PAGE_LIMIT})"] = await timed(
            lambda: client.call("GET", f"{BASE}?limit={PAGE_LIMIT}"), PAGE_SAMPLES
        )
        results.memory["after the gets and lists"] = server.memory_kib()
        say(f"watch fan-out to {WATCHERS} watchers, {WATCH_ROUNDS} events")
        await fan_out(client, results)
        results.memory["after the watches"] = server.memory_kib()


async def fan_out(client: Client, results: Results) -> None:
    target = configmap("watched", 0)
    await client.call("POST", BASE, target)
    rv = json.loads(await client.call("GET", BASE + "?limit=1"))["metadata"]["resourceVersion"]
    # Round 0 is a warm-up, not counted: a watch registers with the store after its
    # response headers are sent (it would still get the event, replayed from the log).
    rounds = WATCH_ROUNDS + 1
    arrivals: dict[int, list[float]] = {r: [] for r in range(rounds)}
    complete = {r: asyncio.Event() for r in range(rounds)}
    ready = 0
    all_ready = asyncio.Event()

    async def watch(session: aiohttp.ClientSession) -> None:
        nonlocal ready
        path = f"{BASE}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched"
        async with session.get(client.server.url + path, headers=client.headers) as response:
            if response.status != 200:
                raise RuntimeError(f"watch: HTTP {response.status}")
            ready += 1
            if ready == WATCHERS:
                all_ready.set()
            async for line in response.content:
                event = json.loads(line)
                if event["type"] != "MODIFIED":
                    raise RuntimeError(f"watch: unexpected event {line[:300]!r}")
                round_ = int(event["object"]["data"]["revision"]) - 2
                arrivals[round_].append(time.perf_counter())
                if len(arrivals[round_]) == WATCHERS:
                    complete[round_].set()
                if round_ == rounds - 1:
                    return

    connector = aiohttp.TCPConnector(ssl=client.server.ssl_context, limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        watchers = [asyncio.create_task(watch(session)) for _ in range(WATCHERS)]
        await asyncio.wait_for(all_ready.wait(), 60)
        for round_ in range(rounds):
            patch = {"data": {"revision": str(round_ + 2)}}
            started = time.perf_counter()
            await client.call(
                "PATCH", f"{BASE}/watched", patch, content_type="application/merge-patch+json"
            )
            written = time.perf_counter()
            await asyncio.wait_for(complete[round_].wait(), 60)
            if round_ == 0:
                continue
            results.fanout_write.append(written - started)
            results.fanout_first.append(min(arrivals[round_]) - started)
            results.fanout_last.append(max(arrivals[round_]) - started)
        await asyncio.wait_for(asyncio.gather(*watchers), 60)


# --- the baseline ------------------------------------------------------------------------


def measure_sqlite(directory: Path, objects: int, results: Results) -> None:
    """The same writes and reads on a bare table of JSON text, one transaction per write."""
    db = sqlite3.connect(directory / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE objects (namespace TEXT, name TEXT, object TEXT, "
        "PRIMARY KEY (namespace, name)) WITHOUT ROWID"
    )

    def write(statement: str, prefix: str, revision: int) -> Phase:
        started = time.perf_counter()
        for i in range(objects):
            name = f"{prefix}-{i:05}"
            with db:  # BEGIN ... COMMIT
                db.execute(statement, (NAMESPACE, name, json.dumps(configmap(name, i, revision))))
        return Phase(prefix, objects, time.perf_counter() - started)

    insert = "INSERT INTO objects VALUES (?, ?, ?)"
    upsert = "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)"
    results.base["create"] = write(insert, "created", 1)
    results.base["apply (creates)"] = write(upsert, "applied", 1)
    results.base["apply (updates)"] = write(upsert, "applied", 2)

    names = [f"{kind}-{i:05}" for kind in ("created", "applied") for i in range(objects)]
    chooser = random.Random(7)

    def get() -> None:
        row = db.execute(
            "SELECT object FROM objects WHERE namespace = ? AND name = ?",
            (NAMESPACE, chooser.choice(names)),
        ).fetchone()
        json.dumps(json.loads(row[0])).encode()

    def listing(limit: int | None) -> None:
        query = "SELECT object FROM objects WHERE namespace = ? ORDER BY name"
        rows = db.execute(query + (f" LIMIT {limit}" if limit else ""), (NAMESPACE,))
        json.dumps({"items": [json.loads(text) for (text,) in rows]}).encode()

    def timed_sync(work: Callable[[], None], samples: int) -> list[float]:
        seconds = []
        for _ in range(samples):
            started = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - started)
        return seconds

    results.base_latency["get"] = timed_sync(get, GET_SAMPLES)
    results.base_latency["list (all)"] = timed_sync(lambda: listing(None), LIST_SAMPLES)
    results.base_latency[f"list (limit={PAGE_LIMIT})"] = timed_sync(
        lambda: listing(PAGE_LIMIT), PAGE_SAMPLES
    )
    db.close()


# --- report ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f}"


def report(results: Results, objects: int, wall: float) -> None:
    print(
        f"gitmoor bench/sandbox.py — {date.today().isoformat()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"sandbox server in its own process over HTTPS, client: aiohttp, {CONCURRENCY} "
        f"requests in flight for writes; baseline: bare SQLite (WAL) in this process"
    )
    print()
    print(
        f"{'writes (' + str(objects) + ' ConfigMaps each)':<34}{'API/s':>9}{'SQLite/s':>10}"
        f"{'ratio':>8}{'server CPU ms/op':>18}"
    )
    for name, phase in results.api.items():
        base = results.base[name]
        cpu_ms = phase.server_cpu * 1000 / phase.count
        print(
            f"{name:<34}{phase.rate:9.0f}{base.rate:10.0f}"
            f"{base.rate / phase.rate:7.1f}x{cpu_ms:18.2f}"
        )
    print()
    print(
        f"{'reads at ' + str(results.objects) + ' objects (ms)':<34}{'samples':>8}"
        f"{'API p50':>10}{'API p99':>10}{'SQL p50':>10}{'SQL p99':>10}{'ratio p50':>11}"
    )
    for name, seconds in results.api_latency.items():
        bare = results.base_latency[name]
        api50, base50 = percentile(seconds, 0.5), percentile(bare, 0.5)
        print(
            f"{name:<34}{len(seconds):8}{ms(api50)} {ms(percentile(seconds, 0.99))}"
            f" {ms(base50)} {ms(percentile(bare, 0.99))}{api50 / base50:10.1f}x"
        )
    print(f"  (a full list is {results.list_bytes / 1024 / 1024:.1f} MiB of JSON)")
    print()
    print(f"watch fan-out: {WATCH_ROUNDS} patches, each watched by {WATCHERS} watches (ms)")
    for label, values in (
        ("the patch's own response", results.fanout_write),
        ("patch sent -> first watcher has the event", results.fanout_first),
        (f"patch sent -> all {WATCHERS} watchers have it", results.fanout_last),
    ):
        print(
            f"  {label:<48} p50 {ms(percentile(values, 0.5))}   p99 {ms(percentile(values, 0.99))}"
        )
    print()
    print("server memory (MiB)          resident    peak")
    for label, (rss, hwm) in results.memory.items():
        print(f"  {label:<26}{rss / 1024:9.0f}{hwm / 1024:8.0f}")
    print()
    print(f"wall clock: {wall:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--objects", type=int, default=5000, help="ConfigMaps per write phase (default 5000)"
    )
    args = parser.parse_args(argv)
    objects: int = args.objects
    if objects < 1:
        parser.error("--objects must be at least 1")
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    results = Results()
    with tempfile.TemporaryDirectory(prefix="gitmoor-bench-") as temporary:
        state_dir = Path(temporary) / "sandbox"
        say("starting the sandbox")
        info = process.start(state_dir)
        try:
            pki = state_dir / "pki"
            server = Server(
                pid=info.pid,
                url=info.server,
                token=(pki / "token").read_text().strip(),
                ssl_context=ssl.create_default_context(cafile=str(pki / "ca.crt")),
            )
            asyncio.run(measure_api(server, objects, results, say))
        finally:
            process.stop(state_dir)
        say("baseline: bare SQLite")
        measure_sqlite(Path(temporary), objects, results)
    report(results, objects, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
