"""``cardiogate_jobs_by_state`` counted from a real SQLite store at scrape time: every state
reported, a store that goes away leaves the scrape working, and the count is cached briefly."""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from cardiogate.metrics import JobStateCollector
from cardiogate.store import Store
from cardiogate.store.jobs import STATES, JobQueue
from store_records import ct_instance

STUDY = "1.2.826.0.1.3680043.10.7"


class Clock:
    """Monotonic seconds, as the collector's cache reads them."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_store(folder: Path) -> Store:
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{folder / 'cardiogate.db'}")
    store.create_schema()
    return store


def add_series(store: Store, n: int) -> str:
    series = f"{STUDY}.{n}"
    store.record_instance(ct_instance(STUDY, series))
    return series


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    return {
        s.labels["state"]: s.value
        for family in registry.collect()
        if family.name == "cardiogate_jobs_by_state"
        for s in family.samples
    }


def watched(source: Store, max_age_seconds: float = 0.0) -> tuple[CollectorRegistry, Clock]:
    clock = Clock()
    collector = JobStateCollector(STATES, max_age_seconds=max_age_seconds, clock=clock)
    collector.watch(JobQueue(source).counts)
    registry = CollectorRegistry()
    registry.register(collector)
    return registry, clock


def test_every_state_is_counted_and_empty_states_read_zero(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    queue = JobQueue(store)
    for n in (1, 2, 3):
        queue.enqueue(add_series(store, n), STUDY, "calcium")
    queue.ignore(add_series(store, 4), STUDY, "not a cardiac series")
    registry, _ = watched(store)

    running = queue.claim()
    assert running is not None
    assert scrape(registry) == {
        "queued": 2,
        "running": 1,
        "reported": 0,
        "delivered": 0,
        "failed": 0,
        "ignored": 1,
    }

    queue.fail(running.id, "the volume has 3 slices; 8 needed")
    counts = scrape(registry)
    assert (counts["running"], counts["failed"], counts["queued"]) == (0, 1, 2)
    text = generate_latest(registry).decode()
    assert 'cardiogate_jobs_by_state{state="failed"} 1.0' in text
    assert STUDY not in text
    store.dispose()


def test_a_store_that_goes_away_leaves_the_scrape_working_without_samples(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "db"
    store = make_store(folder)
    JobQueue(store).enqueue(add_series(store, 1), STUDY, "stenosis")
    registry, _ = watched(store)
    assert scrape(registry)["queued"] == 1

    store.dispose()
    shutil.rmtree(folder)  # the database file and its directory are gone
    assert scrape(registry) == {}
    text = generate_latest(registry).decode()
    assert "# TYPE cardiogate_jobs_by_state gauge" in text

    make_store(folder).dispose()  # back, empty: counted again
    assert scrape(registry) == dict.fromkeys(STATES, 0.0)


def test_counts_are_cached_for_max_age_then_refreshed(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    queue = JobQueue(store)
    registry, clock = watched(store, max_age_seconds=5.0)
    assert scrape(registry)["queued"] == 0

    queue.enqueue(add_series(store, 1), STUDY, "calcium")
    clock.now += 4.9
    assert scrape(registry)["queued"] == 0  # within max_age: the last count
    clock.now += 0.2
    assert scrape(registry)["queued"] == 1
    store.dispose()


def test_no_source_means_no_samples_and_watch_none_detaches(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    collector = JobStateCollector(STATES, max_age_seconds=0.0)
    registry = CollectorRegistry()
    registry.register(collector)
    assert scrape(registry) == {}

    collector.watch(JobQueue(store).counts)
    assert scrape(registry)["delivered"] == 0
    collector.watch(None)  # the service stopped
    assert scrape(registry) == {}
    store.dispose()
