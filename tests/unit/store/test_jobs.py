"""The job queue shared by replicas, on SQLite and PostgreSQL: a claim is a lease on a job
whose input this replica can read; an expired lease is taken over; only the latest claim
may report the job; concurrent claimers never get the same job."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cardiogate.store import Replica, Store
from cardiogate.store.jobs import QUEUED, REPORTED, RUNNING, JobQueue
from cardiogate.store.outbox import Outbox, StagedObject, stage
from store_records import Clock, ct_instance


@pytest.fixture
def stores(database_url: str) -> Iterator[dict[str, Store]]:
    """Replicas a and b with their own data directories, c and d sharing one."""
    replicas = {"a": False, "b": False, "c": True, "d": True}
    made = {name: Store(database_url, Replica(name, shared)) for name, shared in replicas.items()}
    made["a"].create_schema()
    yield made
    for store in made.values():
        store.dispose()


def _series(store: Store, n: int) -> str:
    """A series of ``n`` received by ``store``'s replica, queued for analysis."""
    uid = f"1.2.{n}"
    store.record_instance(ct_instance("1.2", uid))
    JobQueue(store).enqueue(uid, "1.2", "calcium")
    return uid


def _state(queue: JobQueue, job_id: int) -> str:
    job = queue.get(job_id)
    assert job is not None
    return job.state


def test_a_job_belongs_to_the_replica_that_received_its_series(stores: dict[str, Store]) -> None:
    uid = _series(stores["a"], 1)
    assert JobQueue(stores["b"]).claim() is None  # b cannot read a's spool
    job = JobQueue(stores["a"]).claim()
    assert job is not None
    assert (job.SeriesInstanceUID, job.replica_id, job.claimed_by) == (uid, "a", "a")
    assert JobQueue(stores["a"]).claim() is None


def test_an_expired_claim_is_taken_over_and_the_first_claimant_cannot_report(
    stores: dict[str, Store],
) -> None:
    _series(stores["c"], 1)
    clock = Clock()
    c, d = JobQueue(stores["c"], 30, clock), JobQueue(stores["d"], 30, clock)
    first = c.claim()
    assert first is not None
    clock.advance(29)
    assert d.claim() is None  # still leased to c
    clock.advance(2)
    second = d.claim()
    assert second is not None
    assert (second.id, second.claimed_by, second.attempts) == (first.id, "d", 2)
    assert not c.finish(first, "{}", "m", "1", "CPU")  # c came back from a pause: fenced
    assert not c.fail(first, "late")
    assert c.renew([first]) == set()
    assert d.finish(second, '{"x": 1}', "m", "1", "CPU")
    done = d.get(first.id)
    assert done is not None
    assert (done.state, done.result, done.claimed_by) == (REPORTED, '{"x": 1}', "d")


def test_a_renewed_claim_is_not_taken_over(stores: dict[str, Store]) -> None:
    _series(stores["c"], 1)
    clock = Clock()
    c, d = JobQueue(stores["c"], 30, clock), JobQueue(stores["d"], 30, clock)
    job = c.claim()
    assert job is not None
    for _ in range(3):
        clock.advance(20)
        assert c.renew([job]) == {job.id}
        assert d.claim() is None
    clock.advance(31)
    assert d.claim() is not None


def test_only_a_replica_s_own_claims_are_requeued_at_its_restart(
    stores: dict[str, Store],
) -> None:
    _series(stores["c"], 1)
    _series(stores["c"], 2)
    c, d = JobQueue(stores["c"]), JobQueue(stores["d"])
    mine, theirs = c.claim(), d.claim()
    assert mine is not None
    assert theirs is not None
    assert c.requeue_interrupted() == 1  # c restarts: its job is queued again at once
    assert [_state(c, mine.id), _state(c, theirs.id)] == [QUEUED, RUNNING]


def test_concurrent_claimers_never_get_the_same_job(stores: dict[str, Store]) -> None:
    for n in range(24):
        _series(stores["c"], n)
    claimed: list[int] = []
    reported: list[bool] = []
    barrier = threading.Barrier(4)

    def work(store: Store) -> None:
        queue = JobQueue(store)
        barrier.wait()
        while (job := queue.claim()) is not None:
            claimed.append(job.id)
            reported.append(queue.finish(job, "{}", "m", "1", "CPU"))

    claimers = [Store(stores["c"].url, Replica(f"r{i}", shared=True)) for i in range(4)]
    threads = [threading.Thread(target=work, args=(s,)) for s in claimers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == len(set(claimed)) == 24
    assert reported == [True] * 24
    assert JobQueue(stores["c"]).counts() == {REPORTED: 24}
    for store in claimers:
        store.dispose()


def test_outbox_rows_are_sent_by_the_replica_holding_their_files(
    stores: dict[str, Store],
) -> None:
    _series(stores["a"], 1)
    queue = JobQueue(stores["a"])
    job = queue.claim()
    assert job is not None
    sr = StagedObject("1.2.840.10008.5.1.4.1.1.88.34", "1.2.9.1", f"{job.id}/1.2.9.1.dcm")
    assert queue.finish(
        job, "{}", "m", "1", "CPU", also=lambda conn: stage(conn, job.id, [sr], ["P"], None, "a")
    )
    assert Outbox(stores["b"]).claim_due("P", 10, 60) == []
    assert Outbox(stores["b"]).pending_paths() == []
    assert Outbox(stores["c"]).pending_paths() == [(job.id, sr.path)]  # shared: anyone's
    assert [r.SOPInstanceUID for r in Outbox(stores["a"]).claim_due("P", 10, 60)] == ["1.2.9.1"]
