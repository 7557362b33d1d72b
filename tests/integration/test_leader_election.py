"""Leader election against the sandbox: one leader of two, takeover after the leader dies,
an immediate hand-over on release, and an API server outage while leading."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import pytest

from gitmoor.cluster import Cluster
from gitmoor.controllers.leader import LEASE_API_VERSION, LeaderElector
from gitmoor.errors import ClusterError
from gitmoor.manifests import KubeObject, load_all

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

NAME, NAMESPACE = "gitmoor-leader", "default"
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
BOUND = 30.0  # "eventually": far beyond any lease duration used here

# Short enough for tests, in the proportions client-go requires.
FAST = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}

Connect = Callable[[], Cluster]


@pytest.fixture
async def connect(sandbox: Sandbox) -> AsyncIterator[Connect]:
    """A new client per call, as each candidate is a process of its own."""
    clusters: list[Cluster] = []

    def new() -> Cluster:
        clusters.append(Cluster.connect(sandbox.kubeconfig))
        return clusters[-1]

    yield new
    for cluster in clusters:
        await cluster.close()


def elector(connect: Connect, identity: str, **durations: float) -> LeaderElector:
    return LeaderElector(
        connect(), name=NAME, namespace=NAMESPACE, identity=identity, **(durations or FAST)
    )


def start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coroutine)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def lease(sandbox: Sandbox) -> KubeObject:
    done = await asyncio.to_thread(
        sandbox.kubectl, "get", "lease", NAME, "-n", NAMESPACE, "-o", "yaml"
    )
    [found] = load_all(done.stdout, file="kubectl get lease")
    return found


async def test_replace_is_refused_on_a_stale_resource_version(connect: Connect) -> None:
    cluster = connect()
    created = await cluster.create(
        {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"holderIdentity": "a"},
        }
    )
    replaced = await cluster.replace({**created, "spec": {"holderIdentity": "b"}})
    assert replaced["spec"]["holderIdentity"] == "b"
    with pytest.raises(ClusterError) as refused:
        await cluster.replace({**created, "spec": {"holderIdentity": "c"}})
    assert refused.value.code == 409
    current = await cluster.get(LEASE_API_VERSION, "Lease", NAME, NAMESPACE)
    assert current is not None
    assert current["spec"]["holderIdentity"] == "b"


async def test_one_leads_the_other_waits_and_takes_over_when_the_leader_dies(
    sandbox: Sandbox, connect: Connect
) -> None:
    a, b = elector(connect, "a"), elector(connect, "b")
    # Both find no lease and race to create it; the API lets one of them win.
    acquiring = {start(a.acquire()): a, start(b.acquire()): b}
    done, _ = await asyncio.wait(acquiring, timeout=BOUND, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1
    leader = acquiring[done.pop()]
    follower = b if leader is a else a
    waiting = next(task for task, who in acquiring.items() if who is follower)
    holding = start(leader.hold())

    # Twice the lease duration: long enough for the follower to take an unrenewed lease.
    await asyncio.sleep(2 * FAST["lease_duration"])
    assert leader.is_leader
    assert not waiting.done()
    assert not follower.is_leader
    held = await lease(sandbox)
    assert held["spec"]["holderIdentity"] == leader.identity
    assert held["spec"]["leaseTransitions"] == 0

    # Killed: no more renewals and no release.
    await stop(holding)
    await asyncio.wait_for(waiting, BOUND)
    assert follower.is_leader

    spec = (await lease(sandbox))["spec"]
    assert spec["holderIdentity"] == follower.identity
    assert spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 1
    assert MICRO_TIME.fullmatch(spec["acquireTime"])
    assert MICRO_TIME.fullmatch(spec["renewTime"])
    assert spec["acquireTime"] <= spec["renewTime"]
    assert spec["acquireTime"] > held["spec"]["acquireTime"]


async def test_a_release_hands_over_without_waiting_for_the_lease_to_expire(
    sandbox: Sandbox, connect: Connect
) -> None:
    # A lease far longer than the bound: only a release lets the other in within it.
    durations = {"lease_duration": 3600.0, "renew_deadline": 1.5, "retry_period": 0.2}
    a, b = elector(connect, "a", **durations), elector(connect, "b", **durations)
    await asyncio.wait_for(a.acquire(), BOUND)
    holding = start(a.hold())
    waiting = start(b.acquire())
    await asyncio.sleep(1.0)
    assert not waiting.done()

    await stop(holding)
    await a.release()
    assert not a.is_leader
    await asyncio.wait_for(waiting, BOUND)
    assert b.is_leader
    spec = (await lease(sandbox))["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1

    # With nobody waiting, the released record stays as client-go writes it.
    await b.release()
    released = (await lease(sandbox))["spec"]
    assert released["holderIdentity"] == ""
    assert released["leaseDurationSeconds"] == 1
    assert released["leaseTransitions"] == 1
    assert MICRO_TIME.fullmatch(released["renewTime"])


async def test_leadership_survives_an_outage_shorter_than_the_renew_deadline(
    sandbox: Sandbox, connect: Connect
) -> None:
    a = elector(connect, "a", lease_duration=30.0, renew_deadline=20.0, retry_period=0.2)
    await asyncio.wait_for(a.acquire(), BOUND)
    holding = start(a.hold())
    before = (await lease(sandbox))["spec"]["renewTime"]

    await asyncio.to_thread(sandbox.stop)
    await asyncio.sleep(1.0)  # several renewals fail meanwhile
    await asyncio.to_thread(sandbox.start)

    async def renewed() -> None:
        while (await lease(sandbox))["spec"]["renewTime"] == before:
            await asyncio.sleep(0.2)

    await asyncio.wait_for(renewed(), BOUND)
    assert not holding.done()
    assert a.is_leader
    assert (await lease(sandbox))["spec"]["holderIdentity"] == "a"
    await stop(holding)


async def test_leadership_is_lost_when_the_outage_outlasts_the_renew_deadline(
    sandbox: Sandbox, connect: Connect
) -> None:
    a = elector(connect, "a")
    await asyncio.wait_for(a.acquire(), BOUND)
    holding = start(a.hold())

    await asyncio.to_thread(sandbox.stop)
    await asyncio.wait_for(holding, BOUND)  # hold() returns: leadership lost
    assert not a.is_leader
    await asyncio.to_thread(sandbox.start)

    # Back again, it competes like anyone else and, alone, wins the lease back.
    await asyncio.wait_for(a.acquire(), BOUND)
    assert a.is_leader


async def test_durations_that_break_the_protocol_are_refused(connect: Connect) -> None:
    cluster = connect()
    for lease_duration, renew_deadline, retry_period in [
        (10, 10, 2),  # the leader could still think it leads when others see it expired
        (15, 2, 2),  # no second try before the deadline
        (15, 10, 0),
        (0.5, 0.4, 0.1),  # written in whole seconds: zero
    ]:
        with pytest.raises(ValueError, match="must be"):
            LeaderElector(
                cluster,
                name=NAME,
                namespace=NAMESPACE,
                identity="a",
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
