"""A job's timeline keeps its history, on SQLite and PostgreSQL: a failure, the late
instance that re-queued the series and the re-run that followed all stay on it, oldest
first; warnings belong to the run that made them; an expired claim and an operator's retry
are on it too. Before ``job_events``, the timeline was rebuilt from the job's columns, so
a re-run erased the first failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import text

from cardiogate.store import Store
from cardiogate.store.events import timeline, warnings_of_latest_run
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, StagedObject, stage
from cardiogate.store.schema import _config
from store_jobs import Policy
from store_records import Clock, ct_instance


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    made = Store(database_url)
    made.create_schema()
    yield made
    made.dispose()


def _events(store: Store, job_id: int) -> list[tuple[str, int | None, str | None]]:
    return [(e.event, e.attempt, e.detail) for e in timeline(store, job_id)]


def test_a_failure_a_late_instance_and_the_rerun_all_stay_on_the_timeline(store: Store) -> None:
    clock = Clock()
    queue = JobQueue(store, 60, clock)
    store.record_instance(ct_instance("1.2", "1.2.3"))
    queue.enqueue("1.2.3", "1.2", "calcium", detail="non-contrast axial CT, 3 mm slices")
    clock.advance(1)
    first = queue.claim()
    assert first is not None
    clock.advance(1)
    assert queue.fail(first, "slice gap: 6.0 mm between slices 31 and 32, 3.0 mm elsewhere")

    clock.advance(5)  # the missing slice arrives, the series completes again
    queue.enqueue("1.2.3", "1.2", "calcium", detail="non-contrast axial CT, 3 mm slices")
    clock.advance(1)
    second = queue.claim()
    assert second is not None
    clock.advance(1)
    assert queue.finish(
        second,
        '{"total": 12.0}',
        "calcium",
        "0.2.0",
        "CPUExecutionProvider",
        warnings=["PatientSex normalised to a DICOM code"],
    )

    assert _events(store, first.id) == [
        ("queued", None, "non-contrast axial CT, 3 mm slices"),
        ("started", 1, None),
        ("failed", None, "slice gap: 6.0 mm between slices 31 and 32, 3.0 mm elsewhere"),
        ("re-queued", None, "series completed again; non-contrast axial CT, 3 mm slices"),
        ("started", 2, None),
        ("warning", None, "PatientSex normalised to a DICOM code"),
        ("reported", None, "calcium 0.2.0 on CPUExecutionProvider"),
    ]
    times = [e.at for e in timeline(store, first.id)]
    assert times == sorted(times)


def test_warnings_are_those_of_the_latest_run(store: Store) -> None:
    queue = JobQueue(store, 60, Clock())
    store.record_instance(ct_instance("1.2", "1.2.3"))
    queue.enqueue("1.2.3", "1.2", "calcium")
    job = queue.claim()
    assert job is not None
    assert queue.finish(job, "{}", "m", "1", "CPU", warnings=["StudyDate absent: written empty"])
    assert warnings_of_latest_run(timeline(store, job.id)) == ["StudyDate absent: written empty"]
    assert queue.requeue([job.id]) == 1
    again = queue.claim()
    assert again is not None
    assert queue.finish(again, "{}", "m", "1", "CPU")
    assert warnings_of_latest_run(timeline(store, job.id)) == []
    assert [e for e, _, _ in _events(store, job.id)].count("warning") == 1


def test_restart_retry_ignore_and_delivery_are_on_the_timeline(store: Store) -> None:
    queue = JobQueue(store, 60, Clock())
    store.record_instance(ct_instance("1.2", "1.2.3"))
    store.record_instance(ct_instance("1.2", "1.2.4"))
    queue.enqueue("1.2.3", "1.2", "calcium")
    job = queue.claim()
    assert job is not None
    assert queue.requeue_interrupted() == 1
    job = queue.claim()
    assert job is not None
    assert queue.fail(job, "PixelSpacing absent in 3 of 64 slices")
    assert queue.retry_failed(job.id)
    job = queue.claim()
    assert job is not None
    assert queue.finish(
        job,
        "{}",
        "m",
        "1",
        "CPU",
        also=lambda conn: stage(
            conn, job.id, [StagedObject("1.2.840.10008.5.1.4.1.1.88.33", "1.9", "a.dcm")], ["P"]
        ),
    )
    outbox = Outbox(store)
    (row,) = outbox.rows_of_job(job.id)
    outbox.record([row], [], Policy())
    assert [e for e, _, _ in _events(store, job.id)] == [
        "queued",
        "started",
        "re-queued",
        "started",
        "failed",
        "re-queued",
        "started",
        "reported",
        "delivered",
    ]
    details = [d for _, _, d in _events(store, job.id)]
    assert details[2] == "interrupted by a restart"
    assert details[5] == "retried by an operator"

    queue.enqueue("1.2.4", "1.2", "calcium")
    other = queue.claim()
    assert other is not None
    assert queue.not_analysable(other, "not scored: contrast-enhanced (blood pool 310 HU)")
    assert _events(store, other.id)[-1] == (
        "ignored",
        None,
        "not scored: contrast-enhanced (blood pool 310 HU)",
    )


def test_jobs_from_before_the_events_table_get_their_timeline_once(database_url: str) -> None:
    store = Store(database_url)
    t = [datetime(2026, 5, 1, 10, 0, s) for s in range(4)]
    with store.engine.begin() as conn:
        command.upgrade(_config(conn), "0003_replicas")
        conn.execute(text("INSERT INTO studies VALUES ('1.2', :t, :t)"), {"t": t[0]})
        conn.execute(
            text(
                "INSERT INTO series (series_instance_uid, study_instance_uid, state,"
                " first_received_at, last_received_at, reopened_count)"
                " VALUES ('1.2.3', '1.2', 'complete', :t, :t, 0)"
            ),
            {"t": t[0]},
        )
        conn.execute(
            text(
                "INSERT INTO jobs (series_instance_uid, study_instance_uid, task, state, reason,"
                " attempts, needs_review, created_at, updated_at, started_at, finished_at)"
                " VALUES ('1.2.3', '1.2', 'calcium', 'failed', 'SliceThickness is missing',"
                " 1, false, :a, :d, :b, :c)"
            ),
            {"a": t[0], "b": t[1], "c": t[2], "d": t[3]},
        )
    store.create_schema()
    store.create_schema()  # at head: the back-fill does not run again
    job = JobQueue(store).for_series("1.2.3")
    assert job is not None
    assert [(e.event, e.at, e.detail) for e in timeline(store, job.id)] == [
        ("queued", t[0], None),
        ("started", t[1], None),
        ("failed", t[2], "SliceThickness is missing"),
    ]
    store.dispose()
