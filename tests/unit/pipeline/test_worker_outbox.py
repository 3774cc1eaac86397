"""The worker stages a reported job's objects (files and rows, with the report), stages
nothing without destinations, and fails a job whose objects cannot be built."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pydicom
import pytest
from pydantic import BaseModel
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.pipeline.worker import JobWorker
from cardiogate.reports import Predecessor, ReportError
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox
from cardiogate.tasks import Analysed
from task_doubles import tasks_of

SERIES, STUDY = "1.2.3.1", "1.2.3"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


class Result(BaseModel):
    total: float


def _sr(uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = BASIC_TEXT_SR, uid, "SR"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, "1.2.9"
    return ds


def _instance(sop: str) -> InstanceRecord:
    fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
    return InstanceRecord(  # type: ignore[arg-type]
        **{
            **fields,
            "StudyInstanceUID": STUDY,
            "SeriesInstanceUID": SERIES,
            "SOPInstanceUID": sop,
            "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "TransferSyntaxUID": ExplicitVRLittleEndian,
            "NumberOfFrames": 1,
            "path": f"1.2.3/1.2.3.1/{sop}.dcm",
            "size_bytes": 1,
        }
    )


def _worker(tmp_path: Path, objects: Any, destinations: list[dict[str, Any]]) -> JobWorker:
    settings = load_settings(data_dir=tmp_path, destinations=destinations)
    store = Store(settings.effective_database_url)
    store.create_schema()
    store.record_instance(_instance("1.2.3.1.1"))
    card = SimpleNamespace(name="fake", version="1.0.0")
    model = SimpleNamespace(card=card, provider="CPUExecutionProvider")
    engine = SimpleNamespace(
        models={"calcium": model}, get=lambda task: model, candidate=lambda task: None
    )

    def analysis(paths: Any, model: Any, needed: Any) -> Analysed:
        return Analysed(Result(total=12.5), objects)

    worker = JobWorker(
        settings,
        store,
        Spool(settings.spool_dir),
        engine,
        tasks=tasks_of(calcium=analysis),
    )
    worker.outbox_files.prepare()
    JobQueue(store).enqueue(SERIES, STUDY, "calcium")
    return worker


PACS = {"ae_title": "PACS", "host": "127.0.0.1", "port": 104}


def test_a_reported_job_has_its_objects_staged_for_every_destination(tmp_path: Path) -> None:
    archive = {**PACS, "ae_title": "ARCHIVE"}
    worker = _worker(tmp_path, lambda **version: [_sr("1.2.9.1"), _sr("1.2.9.2")], [PACS, archive])
    assert worker.run_once()
    job = worker.jobs.for_series(SERIES)
    assert job is not None
    assert job.state == "reported"
    rows = Outbox(worker.store).rows_of_job(job.id)
    assert sorted((r.destination, r.SOPInstanceUID) for r in rows) == [
        ("ARCHIVE@127.0.0.1:104", "1.2.9.1"),
        ("ARCHIVE@127.0.0.1:104", "1.2.9.2"),
        ("PACS@127.0.0.1:104", "1.2.9.1"),
        ("PACS@127.0.0.1:104", "1.2.9.2"),
    ]
    for row in rows:
        assert pydicom.dcmread(worker.outbox_files.absolute(row.path)).SOPInstanceUID == (
            row.SOPInstanceUID
        )


def test_without_destinations_nothing_is_built_or_staged(tmp_path: Path) -> None:
    def never(**version: Any) -> list[Dataset]:
        raise AssertionError("objects built with nowhere to send them")

    worker = _worker(tmp_path, never, [])
    assert worker.run_once()
    job = worker.jobs.for_series(SERIES)
    assert job is not None
    assert job.state == "reported"
    assert Outbox(worker.store).rows_of_job(job.id) == []


def test_objects_that_cannot_be_built_fail_the_job_with_the_reason(tmp_path: Path) -> None:
    def refused(**version: Any) -> list[Dataset]:
        raise ReportError("12 slices of the volume are not among the sources")

    worker = _worker(tmp_path, refused, [PACS])
    assert worker.run_once()
    job = worker.jobs.for_series(SERIES)
    assert job is not None
    assert job.state == "failed"
    assert job.reason == (
        "result objects not built: 12 slices of the volume are not among the sources"
    )
    assert Outbox(worker.store).rows_of_job(job.id) == []


@pytest.mark.parametrize("missing", ["rows", "file"])
def test_a_restart_rebuilds_what_is_missing(tmp_path: Path, missing: str) -> None:
    worker = _worker(tmp_path, lambda **version: [_sr("1.2.9.1")], [PACS])
    worker.run_once()
    job = worker.jobs.for_series(SERIES)
    assert job is not None
    if missing == "file":
        (row,) = Outbox(worker.store).rows_of_job(job.id)
        worker.outbox_files.absolute(row.path).unlink()
    else:
        with worker.store.transaction() as conn:
            conn.exec_driver_sql("DELETE FROM outbox")
    worker._recover_outbox()
    again = worker.jobs.for_series(SERIES)
    assert again is not None
    assert again.state == "queued"
    assert worker.run_once()
    assert len(Outbox(worker.store).rows_of_job(job.id)) == 1


def test_late_instances_make_a_new_version_naming_the_earlier_sr(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def objects(**version: Any) -> list[Dataset]:
        calls.append(version)
        return [_sr(f"1.2.9.{version['version_index']}")]

    worker = _worker(tmp_path, objects, [PACS])
    assert worker.run_once()
    job = worker.jobs.for_series(SERIES)
    assert job is not None
    # a rebuild of the same input (a restart found a file missing) is the same version
    worker.jobs.requeue([job.id])
    assert worker.run_once()
    # a late instance re-opens the series: the next version, naming the first SR
    worker.store.record_instance(_instance("1.2.3.1.2"))
    worker.jobs.enqueue(SERIES, STUDY, "calcium")
    assert worker.run_once()
    assert [(c["version_index"], c["predecessor"]) for c in calls[:2]] == [(0, None), (0, None)]
    assert calls[2]["version_index"] == 1
    assert calls[2]["predecessor"] == Predecessor(STUDY, "1.2.9", "1.2.9.0", BASIC_TEXT_SR)
    (row,) = Outbox(worker.store).rows_of_job(job.id)
    assert row.SOPInstanceUID == "1.2.9.1"
