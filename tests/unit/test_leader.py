"""The pure parts of leader election: the Lease record as client-go writes it, and what a
candidate writes to create, renew or take over a lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from gitmoor.controllers.leader import LeaseRecord, claim, micro_time


def test_micro_time_is_utc_with_six_fraction_digits() -> None:
    moment = datetime(2024, 3, 9, 7, 5, 4, 1200, tzinfo=timezone(timedelta(hours=2)))
    assert micro_time(moment) == "2024-03-09T05:05:04.001200Z"
    assert micro_time(datetime(2024, 3, 9, tzinfo=UTC)) == "2024-03-09T00:00:00.000000Z"


def test_a_record_reads_back_from_the_spec_it_writes() -> None:
    record = LeaseRecord("a", 15, "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:02.000000Z", 3)
    assert LeaseRecord.of({"spec": record.spec()}) == record


def test_a_released_record_keeps_its_empty_holder_on_the_wire() -> None:
    released = LeaseRecord("", 1, "t", "t", 2)
    assert released.spec()["holderIdentity"] == ""
    assert LeaseRecord.of({"spec": released.spec()}).holder_identity == ""


def test_missing_fields_read_as_client_go_reads_nil_pointers() -> None:
    assert LeaseRecord.of({"spec": {}}) == LeaseRecord()
    assert LeaseRecord.of({}) == LeaseRecord("", 0, "", "", 0)


def test_a_new_lease_starts_the_first_term() -> None:
    assert claim(None, identity="a", lease_duration_seconds=15, now="t1") == LeaseRecord(
        "a", 15, "t1", "t1", 0
    )


def test_a_renewal_keeps_acquire_time_and_transitions() -> None:
    held = LeaseRecord("a", 15, "t0", "t1", 4)
    assert claim(held, identity="a", lease_duration_seconds=15, now="t2") == LeaseRecord(
        "a", 15, "t0", "t2", 4
    )


def test_a_takeover_starts_a_new_term_and_counts_it() -> None:
    held = LeaseRecord("a", 15, "t0", "t1", 4)
    assert claim(held, identity="b", lease_duration_seconds=10, now="t9") == LeaseRecord(
        "b", 10, "t9", "t9", 5
    )
    released = LeaseRecord("", 1, "t1", "t1", 4)
    assert claim(released, identity="a", lease_duration_seconds=15, now="t9") == LeaseRecord(
        "a", 15, "t9", "t9", 5
    )
