"""The worker's heartbeat keeps a long job's claim alive: with a 1 s lease, a job that runs
for several seconds is not taken over by another replica, and it is reported once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store import InstanceRecord, Replica, Store
from cardiogate.store.jobs import REPORTED, RUNNING, JobQueue
from cardiogate.tasks import Analysed
from task_doubles import tasks_of

SERIES, STUDY = "1.2.3.1", "1.2.3"


class Result(BaseModel):
    total: float


def test_a_long_job_keeps_its_claim_and_is_reported_once(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, job_lease_seconds=1, replica_id="worker")
    store = Store(settings.effective_database_url, Replica("worker"))
    store.create_schema()
    fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
    store.record_instance(
        InstanceRecord(  # type: ignore[arg-type]
            **{
                **fields,
                "StudyInstanceUID": STUDY,
                "SeriesInstanceUID": SERIES,
                "SOPInstanceUID": "1.2.3.1.1",
                "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                "NumberOfFrames": 1,
                "path": "1.2.3/1.2.3.1/1.2.3.1.1.dcm",
                "size_bytes": 1,
            }
        )
    )
    model = SimpleNamespace(card=SimpleNamespace(name="m", version="1"), provider="CPU")
    engine = SimpleNamespace(
        models={"calcium": model}, get=lambda task: model, candidate=lambda task: None
    )
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def long_analysis(paths: Any, model: Any, needed: Any) -> Analysed:
        runs.append(1)
        started.set()
        assert release.wait(30)
        return Analysed(Result(total=1.0), lambda **_: [])

    worker = JobWorker(
        settings,
        store,
        Spool(settings.spool_dir),
        engine,
        tasks=tasks_of(calcium=long_analysis),
    )
    other = Store(settings.effective_database_url, Replica("other", shared=True))
    JobQueue(store).enqueue(SERIES, STUDY, "calcium")
    worker.start()
    try:
        assert started.wait(30)
        time.sleep(3)  # three leases
        job = JobQueue(store).for_series(SERIES)
        assert job is not None
        assert (job.state, job.claimed_by, job.attempts) == (RUNNING, "worker", 1)
        assert JobQueue(other).claim() is None  # renewed: not up for takeover
        release.set()
        deadline = time.monotonic() + 30
        while (job := JobQueue(store).for_series(SERIES)) and job.state == RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (job.state if job else None, len(runs)) == (REPORTED, 1)
    finally:
        release.set()
        worker.stop()
        other.dispose()
        store.dispose()
