from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from cardiogate.store import Store
from cardiogate.store.store import utcnow
from store_records import ct_instance

BASE = ct_instance(
    "1.1",
    "1.1.1",
    SeriesNumber=2,
    SeriesDescription="Calcium Score",
    BodyPartExamined="HEART",
    ImageType="ORIGINAL\\PRIMARY\\AXIAL",
    SliceThickness="3",
    path="1.1/1.1.1/1.1.1.1.dcm",
    size_bytes=1000,
    calling_ae_title="PACS",
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.create_schema()
    yield s
    s.dispose()


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_record_and_summaries(store: Store) -> None:
    store.record_instance(BASE)
    store.record_instance(replace(BASE, SOPInstanceUID="1.1.1.2", path="p2", size_bytes=500))
    series = store.get_series("1.1.1")
    assert series is not None
    assert (series.instance_count, series.size_bytes, series.state) == (2, 1500, "receiving")
    studies, total = store.list_studies()
    assert total == 1
    assert (studies[0].modalities, studies[0].instance_count) == (["CT"], 2)
    assert store.get_instance("1.1.1.2") is not None
    assert store.get_study("9.9") is None


def test_study_pages_group_each_study_s_series(store: Store) -> None:
    store.record_instance(BASE)
    xa = replace(
        BASE,
        SeriesInstanceUID="1.1.2",
        SOPInstanceUID="1.1.2.1",
        Modality="XA",
        NumberOfFrames=30,
        path="p3",
    )
    store.record_instance(xa)
    later = replace(
        BASE,
        StudyInstanceUID="2.2",
        SeriesInstanceUID="2.2.1",
        SOPInstanceUID="2.2.1.1",
        path="p4",
        size_bytes=7,
    )
    store.record_instance(later)
    page, total = store.list_studies(limit=1)
    assert total == 2
    assert [(s.StudyInstanceUID, s.series_count, s.size_bytes) for s in page] == [("2.2", 1, 7)]
    page, _ = store.list_studies(limit=5, offset=1)
    assert [(s.StudyInstanceUID, s.modalities, s.series_count) for s in page] == [
        ("1.1", ["CT", "XA"], 2)
    ]
    assert page[0] == store.get_study("1.1")


def test_replacement_counts_and_keeps_one_row(store: Store) -> None:
    store.record_instance(BASE)
    store.record_instance(replace(BASE, size_bytes=2000))
    row = store.get_instance(BASE.SOPInstanceUID)
    assert row is not None
    assert row.size_bytes == 2000
    assert store.get_series("1.1.1").instance_count == 1  # type: ignore[union-attr]


def test_quiet_series_complete_and_late_instance_reopens(store: Store) -> None:
    t0 = utcnow()
    store.record_instance(BASE, now=t0)
    assert store.complete_quiet_series(cutoff=t0 - timedelta(seconds=1)) == []
    assert store.complete_quiet_series(cutoff=t0 + timedelta(seconds=1)) == ["1.1.1"]
    assert store.complete_quiet_series(cutoff=t0 + timedelta(seconds=1)) == []
    reopened = store.record_instance(replace(BASE, SOPInstanceUID="1.1.1.3", path="p3"))
    assert reopened
    series = store.get_series("1.1.1")
    assert series is not None
    assert (series.state, series.reopened_count) == ("receiving", 1)


def test_ping(store: Store, tmp_path: Path) -> None:
    assert store.ping()
    assert not Store(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}").ping()


def test_replicas_assembling_at_once_complete_each_series_once(
    store: Store, database_url: str
) -> None:
    t0 = utcnow()
    for n in range(30):
        uid = f"1.1.{n}"
        store.record_instance(replace(BASE, SeriesInstanceUID=uid, SOPInstanceUID=f"{uid}.1"), t0)
    replicas = [Store(database_url) for _ in range(3)]
    completed: list[str] = []
    barrier = threading.Barrier(len(replicas))

    def assemble(replica: Store) -> None:
        barrier.wait()
        for _ in range(5):
            completed.extend(replica.complete_quiet_series(cutoff=t0 + timedelta(seconds=1)))

    threads = [threading.Thread(target=assemble, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(completed) == sorted(f"1.1.{n}" for n in range(30))
    for replica in replicas:
        replica.dispose()
