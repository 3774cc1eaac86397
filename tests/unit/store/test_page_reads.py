"""The status page's batched reads, on SQLite and PostgreSQL: jobs apart from ignored ones,
each series' first instance, and many jobs' timelines in one query."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardiogate.store import Store
from cardiogate.store.events import timelines
from cardiogate.store.instances import first_instance_paths
from cardiogate.store.job_reads import jobs_page
from cardiogate.store.jobs import JobQueue
from store_records import ct_instance

STUDY = "1.2.826.0.1.3680043.10.23"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.create_schema()
    yield store
    store.dispose()


def _series(store: Store, n: int, numbers: tuple[int | None, ...] = (1,)) -> str:
    series = f"{STUDY}.{n}"
    for i, number in enumerate(numbers):
        sop = f"{series}.{i + 1}"
        store.record_instance(
            ct_instance(STUDY, series, sop, InstanceNumber=number, path=f"{STUDY}/{series}/{sop}")
        )
    return series


def test_jobs_and_ignored_series_come_apart_newest_first(store: Store) -> None:
    queue = JobQueue(store)
    for n in range(1, 6):
        series = _series(store, n)
        if n % 2:
            queue.enqueue(series, STUDY, "calcium")
        else:
            queue.ignore(series, STUDY, f"reason {n}")
    analysed, total = jobs_page(store, 2, ignored=False)
    assert total == 3
    assert [j.SeriesInstanceUID for j in analysed] == [f"{STUDY}.5", f"{STUDY}.3"]
    ignored, ignored_total = jobs_page(store, 10, ignored=True)
    assert ignored_total == 2
    assert [(j.state, j.reason) for j in ignored] == [
        ("ignored", "reason 4"),
        ("ignored", "reason 2"),
    ]


def test_the_first_instance_is_the_lowest_instance_number(store: Store) -> None:
    shuffled = _series(store, 1, (7, 2, None, 5))
    single = _series(store, 2)
    paths = first_instance_paths(store, [shuffled, single, f"{STUDY}.99"])
    assert paths == {
        shuffled: f"{STUDY}/{shuffled}/{shuffled}.2",
        single: f"{STUDY}/{single}/{single}.1",
    }
    assert first_instance_paths(store, []) == {}


def test_timelines_of_many_jobs_in_their_order(store: Store) -> None:
    queue = JobQueue(store)
    first, second, quiet = _series(store, 1), _series(store, 2), _series(store, 3)
    queue.enqueue(first, STUDY, "calcium")
    queue.ignore(second, STUDY, "modality MR is not analysed")
    claimed = queue.claim()
    assert claimed is not None
    queue.fail(claimed.id, "no CT slices could be read")
    ids = {uid: job.id for uid in (first, second) if (job := queue.for_series(uid))}
    found = timelines(store, [*ids.values(), 999])
    assert [e.event for e in found[ids[first]]] == ["queued", "started", "failed"]
    assert found[ids[first]][-1].detail == "no CT slices could be read"
    assert [(e.event, e.detail) for e in found[ids[second]]] == [
        ("ignored", "modality MR is not analysed")
    ]
    assert set(found) == set(ids.values())  # a job with no event is absent
    assert quiet not in ids
    assert timelines(store, []) == {}
