"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several gitmoor processes may run against one cluster; only the one holding the Lease runs
the controllers. The protocol is client-go's with a LeaseLock, so gitmoor and Go controllers
read each other's Leases the same way:

- The Lease's spec is the election record: ``holderIdentity``, ``leaseDurationSeconds``,
  ``acquireTime``, ``renewTime`` (MicroTime) and ``leaseTransitions``.
- Whether the holder's lease has run out is judged by this process's own monotonic clock:
  the record is valid until ``leaseDurationSeconds`` after the moment this process last
  *saw the record change*. The times written in the record are never compared with the
  local clock, so clock skew between machines cannot hand the lease to two holders.
- Every write is a PUT carrying the ``resourceVersion`` last read; a 409 means another
  process wrote first, and this attempt lost.
- The leader renews every ``retry_period``; when it has not managed to for
  ``renew_deadline`` it gives up leading, which is before any other process can see the
  lease expire (``lease_duration`` > ``renew_deadline``).

A run looks like::

    elector = LeaderElector(cluster, name="gitmoor", namespace="flux-system", identity=pod)
    await elector.acquire()
    controllers = asyncio.create_task(manager.run())
    try:
        await elector.hold()          # returns when leadership is lost
    finally:
        controllers.cancel()
        await elector.release()       # lets the next process take over at once
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitmoor.cluster import Cluster
from gitmoor.errors import ClusterError
from gitmoor.manifests import KubeObject

LEASE_API_VERSION = "coordination.k8s.io/v1"

JITTER_FACTOR = 1.2
"""client-go's: waits between acquire attempts are ``retry_period`` plus up to this much
more of it, so waiting candidates do not all call at once."""

log = logging.getLogger(__name__)


def micro_time(moment: datetime) -> str:
    """``moment`` in metav1.MicroTime's wire format (``2006-01-02T15:04:05.000000Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """client-go's LeaderElectionRecord as a Lease's spec holds it.

    Times are kept as the strings the API returned: the protocol never reads them, it only
    notices when the record changes and carries ``acquireTime`` over on renewal.
    """

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    lease_transitions: int = 0

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime") or "",
            renew_time=spec.get("renewTime") or "",
            lease_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        """The Lease spec client-go writes for this record (every field, even when empty)."""
        return {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.lease_transitions,
        }


def claim(
    current: LeaseRecord | None, *, identity: str, lease_duration_seconds: int, now: str
) -> LeaseRecord:
    """The record ``identity`` writes to create, renew or take over the lease at ``now``.

    A renewal keeps the acquire time and the transition count; a takeover (the lease held
    by someone else, or by nobody after a release) starts a new term and counts it.
    """
    fresh = LeaseRecord(identity, lease_duration_seconds, now, now, 0)
    if current is None:
        return fresh
    if current.holder_identity == identity:
        return LeaseRecord(
            identity, lease_duration_seconds, current.acquire_time, now, current.lease_transitions
        )
    return LeaseRecord(identity, lease_duration_seconds, now, now, current.lease_transitions + 1)


class LeaderElector:
    """One candidate for the leadership named by a Lease ``namespace/name``."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
    ) -> None:
        # client-go's checks: a leader must give up before anyone else may consider the
        # lease expired, and must get more than one jittered try before it gives up.
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        if lease_duration < 1:
            raise ValueError("lease_duration must be at least 1 second (it is written in seconds)")
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if retry_period <= 0:
            raise ValueError("retry_period must be greater than zero")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(f"renew_deadline must be greater than {JITTER_FACTOR} * retry_period")
        self.cluster = cluster
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._lease: KubeObject | None = None  # the last copy read or written
        self._observed = LeaseRecord()
        self._observed_at = 0.0  # monotonic time at which _observed was first seen
        self._leading = False

    @property
    def description(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_leader(self) -> bool:
        """True from :meth:`acquire` returning until leadership is lost or released, as long
        as the lease last seen names this identity."""
        return self._leading and self._holds()

    async def acquire(self) -> None:
        """Return once this instance holds the lease, trying every ``retry_period`` (plus
        jitter) and taking the lease over once its holder has let it expire."""
        log.info("attempting to acquire leader lease %s...", self.description)
        while not await self._try_acquire_or_renew():
            log.debug("failed to acquire lease %s", self.description)
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR))
        self._leading = True
        log.info("successfully acquired lease %s", self.description)

    async def hold(self) -> None:
        """Renew the lease every ``retry_period``; return when a renewal could not be made
        within ``renew_deadline`` — leadership is lost and the caller must stop leading."""
        while await self._renew_within_deadline():
            await asyncio.sleep(self.retry_period)
        self._leading = False
        log.warning(
            "lost leadership: lease %s not renewed within %ss",
            self.description,
            self.renew_deadline,
        )

    async def release(self) -> None:
        """Give the lease up so another instance takes over at once (client-go's
        ReleaseOnCancel): no holder, a one-second duration. Best effort, bounded by
        ``renew_deadline``; a lease someone else holds by now is left alone."""
        was_leading, self._leading = self._leading, False
        if not (was_leading and self._holds()):
            return
        try:
            async with asyncio.timeout(self.renew_deadline):
                lease = await self._get()
                if lease is None:
                    log.info("lease %s not found, nothing to release", self.description)
                    return
                current = LeaseRecord.of(lease)
                if current.holder_identity != self.identity:
                    self._observe(current)
                    return
                now = micro_time(datetime.now(UTC))
                await self._update(lease, LeaseRecord("", 1, now, now, current.lease_transitions))
        except ClusterError as exc:
            log.error("failed to release lease %s: %s", self.description, exc.message)
            return
        except TimeoutError:
            log.error("failed to release lease %s: timed out", self.description)
            return
        log.info("released lease %s", self.description)

    # --- the protocol ------------------------------------------------------------------

    def _holds(self) -> bool:
        return self._observed.holder_identity == self.identity

    def _valid(self) -> bool:
        """Whether the record last seen is unexpired, counted from when it was seen."""
        expires = self._observed_at + self._observed.lease_duration_seconds
        return expires > time.monotonic()

    def _observe(self, record: LeaseRecord) -> None:
        self._observed = record
        self._observed_at = time.monotonic()

    async def _renew_within_deadline(self) -> bool:
        try:
            async with asyncio.timeout(self.renew_deadline):
                while not await self._try_acquire_or_renew():
                    await asyncio.sleep(self.retry_period)
        except TimeoutError:
            return False
        return True

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt: True when this instance holds the lease afterwards."""
        now = micro_time(datetime.now(UTC))
        duration = int(self.lease_duration)
        if self._lease is not None and self._holds() and self._valid():
            # The leader's fast path: assume nobody wrote since our last write.
            renewal = claim(
                self._observed, identity=self.identity, lease_duration_seconds=duration, now=now
            )
            try:
                await self._update(self._lease, renewal)
                return True
            except ClusterError as exc:
                log.error(
                    "failed to update lease %s optimistically: %s", self.description, exc.message
                )
        try:
            lease = await self._get()
            if lease is None:
                record = claim(
                    None, identity=self.identity, lease_duration_seconds=duration, now=now
                )
                self._lease = await self.cluster.create(self._lease_object(record))
                self._observe(record)
                return True
            current = LeaseRecord.of(lease)
            if current != self._observed:
                self._observe(current)
            if current.holder_identity and self._valid() and not self._holds():
                log.debug(
                    "lease %s is held by %s and has not yet expired",
                    self.description,
                    current.holder_identity,
                )
                return False
            await self._update(
                lease,
                claim(current, identity=self.identity, lease_duration_seconds=duration, now=now),
            )
        except ClusterError as exc:
            log.log(
                logging.DEBUG if exc.code == 409 else logging.ERROR,
                "failed to acquire or renew lease %s: %s",
                self.description,
                exc.message,
            )
            return False
        return True

    async def _get(self) -> KubeObject | None:
        return await self.cluster.get(LEASE_API_VERSION, "Lease", self.name, self.namespace)

    async def _update(self, lease: KubeObject, record: LeaseRecord) -> None:
        """PUT ``record`` as the spec of ``lease``, guarded by that copy's resourceVersion."""
        self._lease = await self.cluster.replace({**lease, "spec": record.spec()})
        self._observe(record)

    def _lease_object(self, record: LeaseRecord) -> KubeObject:
        return {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec(),
        }
