"""Reported and delivered jobs for the review and results API tests, made through the real
job queue and outbox on a real SQLite store, flagged as the worker flags them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from cardiogate.api import create_api
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, StagedObject, stage
from cardiogate.tasks.calcium.review import calcium_lesion_flags, calcium_reason
from store_jobs import review_reason

STUDY = "1.2.826.0.1.3680043.10.2"
PACS = "PACS@127.0.0.1:104"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


class FakeHealth:
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return {"store_reachable": True}, {}


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 1

    def delay(self, attempts: int) -> float:
        return 0.0


def stenosis(needs_review: bool, *percents: float) -> dict[str, Any]:
    """A stenosis result in the shape the analysis writes (the parts the queue reads)."""
    return {
        "task": "stenosis",
        "probability": 0.55 if needs_review else 0.95,
        "needs_review": needs_review,
        "review_reason": "model probability 0.55 is within the review band 0.4-0.7"
        if needs_review
        else None,
        "lesions": [
            {"percent_stenosis": p, "grade": "moderate", "SOPInstanceUID": "1.2.3", "frame": 4}
            for p in percents
        ],
        "timings_s": {"model": 0.1},
    }


def calcium(*lesions: float | tuple[float, float], timing: float = 0.1) -> dict[str, Any]:
    """A calcium result with LAD lesions given by peak HU, or (peak HU, artery probability);
    flagged by the analysis's own rule."""
    pairs = [(x, 0.99) if isinstance(x, float | int) else x for x in lesions]
    flags = [calcium_lesion_flags(hu, p) for hu, p in pairs]
    reason = calcium_reason(flags, 150.0, 0.6)
    return {
        "task": "calcium",
        "agatston": {"total": 42.5, "LAD": 42.5},
        "lesions": [
            {
                "artery": "LAD",
                "artery_probability": p,
                "peak_hu": hu,
                "agatston": 10.0,
                "area_mm2": 3.0,
                "slice_index": 7,
                "review_flags": f,
            }
            for (hu, p), f in zip(pairs, flags, strict=True)
        ],
        "needs_review": reason is not None,
        "review_reason": reason,
        "model": {"name": "calcium-model", "version": "2.0.0", "provider": "CPU"},
        "timings_s": {"model": timing},
    }


class Jobs:
    """Reported and delivered jobs made through the real queue and outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue = JobQueue(store)
        self._n = 0

    def queued(self, task: str, study: str = STUDY, *, enqueue: bool = True) -> str:
        """A series of one instance, its job queued for ``task`` (or no job yet)."""
        self._n += 1
        series = f"{study}.{self._n}"
        fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
        self.store.record_instance(
            InstanceRecord(  # type: ignore[arg-type]
                **{
                    **fields,
                    "StudyInstanceUID": study,
                    "SeriesInstanceUID": series,
                    "SOPInstanceUID": f"{series}.1",
                    "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                    "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                    "NumberOfFrames": 1,
                    "path": f"{study}/{series}/1.dcm",
                    "size_bytes": 1,
                }
            )
        )
        if enqueue:
            self.queue.enqueue(series, study, task)
        return series

    def reported(
        self, task: str, result: dict[str, Any], *, deliver: bool = False, study: str = STUDY
    ) -> int:
        series = self.queued(task, study)
        job = self.queue.claim()
        assert job is not None
        self.finish(job.id, task, result, stage_for=series)
        if deliver:
            outbox = Outbox(self.store)
            outbox.record(outbox.rows_of_job(job.id), [], Policy())
        return job.id

    def finish(
        self,
        job_id: int,
        task: str,
        result: dict[str, Any],
        *,
        version: str = "2.0.0",
        stage_for: str | None = None,
    ) -> None:
        """Record a running job's result as the worker does (flagged by the analysis)."""

        def also(conn: Connection) -> None:
            sr = StagedObject(BASIC_TEXT_SR, f"{stage_for}.99", f"{job_id}/sr.dcm")
            stage(conn, job_id, [sr], [PACS])

        assert self.queue.finish(
            job_id,
            json.dumps(result),
            f"{task}-model",
            version,
            "CPU",
            review_reason=review_reason(task, result),
            also=None if stage_for is None else also,
        )

    def rerun(self, job_id: int, task: str, result: dict[str, Any], version: str = "2.0.0") -> None:
        """Run a reported job again (as the outbox recovery or a re-sent series does)."""
        assert self.queue.requeue([job_id]) == 1
        job = self.queue.claim()
        assert job is not None
        assert job.id == job_id
        self.finish(job_id, task, result, version=version)


@dataclass
class Env:
    store: Store
    jobs: Jobs
    api: TestClient


@contextmanager
def review_env(tmp_path: Path, database_url: str | None = None) -> Iterator[Env]:
    """A store in ``tmp_path`` (or at ``database_url``; schema created), its jobs, and the
    API over it."""
    store = Store(database_url or f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    try:
        yield Env(store, Jobs(store), TestClient(create_api(store, FakeHealth())))
    finally:
        store.dispose()
