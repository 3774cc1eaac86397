"""The outbox state machine on a real store (SQLite and PostgreSQL), with an injected
clock: staging with the job's report, claims and their lease, retries with backoff, dead
letters, and a job that is delivered only when every row of every destination is sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from cardiogate.dicom.backoff import Backoff
from cardiogate.store import Replica, Store
from cardiogate.store.jobs import DELIVERED, REPORTED, JobQueue
from cardiogate.store.outbox import DEAD, PENDING, SENT, Outbox, StagedObject, stage
from cardiogate.store.store import utcnow
from store_records import Clock, ct_instance

PACS, ARCHIVE = "PACS@127.0.0.1:104", "ARCHIVE@127.0.0.1:105"
SERIES, STUDY = "1.2.3.1", "1.2.3"
OBJECTS = [
    StagedObject("1.2.840.10008.5.1.4.1.1.88.34", f"1.2.9.{i}", f"1/1.2.9.{i}.dcm") for i in (1, 2)
]


def _clock() -> Clock:
    """Just after the rows are staged (staging uses the store's own clock)."""
    return Clock(offset_seconds=1)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.create_schema()
    store.record_instance(ct_instance(STUDY, SERIES))
    yield store
    store.dispose()


def _reported_job(store: Store, destinations: list[str], replica_id: str | None = None) -> int:
    jobs = JobQueue(store)
    jobs.enqueue(SERIES, STUDY, "calcium")
    job = jobs.claim()
    assert job is not None
    assert jobs.finish(
        job.id,
        "{}",
        "m",
        "1",
        "CPU",
        also=lambda conn: stage(conn, job.id, OBJECTS, destinations, replica_id=replica_id),
    )
    return job.id


def _state(store: Store, job_id: int) -> str:
    job = JobQueue(store).for_series(SERIES)
    assert job is not None
    assert job.id == job_id
    return job.state


def test_rows_are_staged_with_the_report_and_the_job_is_delivered_when_all_are_sent(
    store: Store,
) -> None:
    job_id = _reported_job(store, [PACS, ARCHIVE])
    outbox = Outbox(store, _clock())
    policy = Backoff(1.0, 10.0, 3)
    assert {(r.destination, r.state) for r in outbox.rows_of_job(job_id)} == {
        (PACS, PENDING),
        (ARCHIVE, PENDING),
    }
    to_pacs = outbox.claim_due(PACS, 10, lease_seconds=60)
    assert [r.SOPInstanceUID for r in to_pacs] == ["1.2.9.1", "1.2.9.2"]
    recorded = outbox.record(to_pacs, [], policy)
    assert (recorded.sent, recorded.delivered_jobs) == (2, [])
    assert _state(store, job_id) == REPORTED  # the archive has not got them yet

    to_archive = outbox.claim_due(ARCHIVE, 10, lease_seconds=60)
    recorded = outbox.record(to_archive, [], policy)
    assert recorded.delivered_jobs == [job_id]
    assert _state(store, job_id) == DELIVERED
    assert {r.state for r in outbox.rows_of_job(job_id)} == {SENT}


def test_a_claim_leases_rows_so_they_are_not_claimed_twice(store: Store) -> None:
    _reported_job(store, [PACS])
    clock = _clock()
    outbox = Outbox(store, clock)
    assert len(outbox.claim_due(PACS, 1, lease_seconds=60)) == 1
    assert [r.SOPInstanceUID for r in outbox.claim_due(PACS, 10, lease_seconds=60)] == ["1.2.9.2"]
    assert outbox.claim_due(PACS, 10, lease_seconds=60) == []
    clock.advance(61)  # a sender that died mid-batch: its rows are due again
    assert len(outbox.claim_due(PACS, 10, lease_seconds=60)) == 2


def test_released_claims_are_due_at_once(store: Store) -> None:
    _reported_job(store, [PACS])
    outbox = Outbox(store, _clock())
    assert len(outbox.claim_due(PACS, 10, lease_seconds=6000)) == 2  # then kill -9
    assert outbox.claim_due(PACS, 10, lease_seconds=6000) == []
    assert outbox.release_claims() == 2  # the restarted sender's first act
    assert len(outbox.claim_due(PACS, 10, lease_seconds=6000)) == 2
    assert outbox.release_claims() == 2
    outbox.record(outbox.claim_due(PACS, 10, 60), [], Backoff(1.0, 1.0, 1))
    assert outbox.release_claims() == 0  # sent rows stay sent


def test_a_replica_releases_only_its_own_claims(store: Store) -> None:
    _reported_job(store, [PACS], replica_id="elsewhere")
    other = Store(
        store.engine.url.render_as_string(hide_password=False), Replica.named("elsewhere")
    )
    try:
        theirs = Outbox(other, _clock())
        assert len(theirs.claim_due(PACS, 10, lease_seconds=6000)) == 2
        assert Outbox(store, _clock()).release_claims() == 0  # not this replica's rows
        assert theirs.release_claims() == 2
    finally:
        other.dispose()


def test_failures_back_off_then_become_dead_letters_and_the_job_stays_reported(
    store: Store,
) -> None:
    job_id = _reported_job(store, [PACS])
    clock = _clock()
    outbox = Outbox(store, clock)
    policy = Backoff(initial=10.0, maximum=15.0, max_attempts=3, uniform=lambda: 1.0)

    rows = outbox.claim_due(PACS, 10, lease_seconds=60)
    first = outbox.record(rows[:1], [(rows[1], "C-STORE status 0xA700")], policy)
    assert (first.sent, first.retried, first.dead) == (1, 1, 0)
    failed = [r for r in outbox.rows_of_job(job_id) if r.state == PENDING]
    assert failed[0].attempts == 1
    assert failed[0].last_error == "C-STORE status 0xA700"
    assert failed[0].next_attempt_at == clock.now + timedelta(seconds=10)

    clock.advance(9)
    assert outbox.claim_due(PACS, 10, lease_seconds=60) == []
    clock.advance(1)
    (again,) = outbox.claim_due(PACS, 10, lease_seconds=60)
    outbox.record([], [(again, "association failed")], policy)
    (row,) = [r for r in outbox.rows_of_job(job_id) if r.state == PENDING]
    assert row.next_attempt_at == clock.now + timedelta(seconds=15)  # capped

    clock.advance(15)
    (last,) = outbox.claim_due(PACS, 10, lease_seconds=60)
    final = outbox.record([], [(last, "association failed")], policy)
    assert (final.retried, final.dead) == (0, 1)
    assert [r.state for r in outbox.rows_of_job(job_id)] == [SENT, DEAD]
    assert _state(store, job_id) == REPORTED
    stats = outbox.stats()
    assert (stats.pending, stats.dead, stats.oldest_pending) == (0, 1, None)


def test_a_rerun_restages_and_a_new_destination_gets_rows(store: Store) -> None:
    job_id = _reported_job(store, [PACS])
    outbox = Outbox(store, _clock())
    outbox.record(outbox.claim_due(PACS, 10, 60), [], Backoff(1.0, 1.0, 1))
    assert _state(store, job_id) == DELIVERED

    again = _reported_job(store, [PACS])  # the series completed again: same job, re-run
    assert again == job_id
    assert [r.state for r in outbox.rows_of_job(job_id)] == [PENDING, PENDING]
    assert outbox.add_destination(ARCHIVE) == 2
    assert outbox.add_destination(ARCHIVE) == 0
    assert outbox.unstaged_reported_jobs() == []
    assert sorted(outbox.pending_paths()) == [(job_id, o.path) for o in OBJECTS]


def test_a_delivery_reports_the_turnaround_from_the_series_first_instance(store: Store) -> None:
    series, received = "1.2.3.2", utcnow() - timedelta(minutes=20)
    for n, minutes in ((1, 0), (2, 5)):  # a second instance five minutes later
        store.record_instance(
            ct_instance(STUDY, series, f"{series}.{n}"),
            now=received + timedelta(minutes=minutes),
        )
    jobs = JobQueue(store)
    jobs.enqueue(series, STUDY, "stenosis")
    job = jobs.claim()
    assert job is not None
    assert jobs.finish(
        job.id, "{}", "m", "1", "CPU", also=lambda conn: stage(conn, job.id, OBJECTS, [PACS])
    )
    clock = _clock()
    clock.now = received + timedelta(minutes=25)  # after staging (the real time)
    outbox = Outbox(store, clock)
    policy = Backoff(1.0, 1.0, 3)

    rows = outbox.claim_due(PACS, 10, lease_seconds=60)
    assert len(rows) == 2
    assert outbox.record(rows[:1], [], policy).delivered == []  # one object still unsent
    clock.advance(30)
    (delivered,) = outbox.record(rows[1:], [], policy).delivered
    assert (delivered.id, delivered.task) == (job.id, "stenosis")
    assert delivered.turnaround_seconds == 25 * 60 + 30
    assert outbox.record(rows, [], policy).delivered == []  # delivered once, observed once
