"""Jobs in every state for the API tests, made through the store's real queue and outbox
(no rows written by hand), and a health probe that always answers ready."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, StagedObject, stage
from cardiogate.store.versions import record_version
from cardiogate.tasks import default_tasks
from store_records import ct_instance

STUDY = "1.2.826.0.1.3680043.10.1"
PACS = "PACS@127.0.0.1:104"
ARCHIVE = "ARCHIVE@127.0.0.1:11112"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

TASKS = default_tasks(None)


def review_reason(task: str, result: dict[str, Any]) -> str | None:
    """The review reason the worker records for ``result``: its task's own (none for a task
    that is not installed)."""
    return TASKS[task].review_reason(result) if task in TASKS else None


class FakeHealth:
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return {"store_reachable": True}, {}


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 2

    def delay(self, attempts: int) -> float:
        return 0.0


class Jobs:
    """Makes jobs in each state through the real queue and outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue = JobQueue(store)
        self.outbox = Outbox(store)
        self._n = 0

    def queued(self, task: str = "calcium") -> int:
        self._n += 1
        series = f"{STUDY}.{self._n}"
        self.store.record_instance(ct_instance(STUDY, series, path=f"{STUDY}/{series}/1.dcm"))
        self.queue.enqueue(series, STUDY, task)
        job = self.queue.for_series(series)
        assert job is not None
        return job.id

    def ignored(self, reason: str = "not a cardiac series: Modality MR") -> int:
        self._n += 1
        series = f"{STUDY}.{self._n}"
        self.store.record_instance(ct_instance(STUDY, series, path=f"{STUDY}/{series}/1.dcm"))
        self.queue.ignore(series, STUDY, reason)
        job = self.queue.for_series(series)
        assert job is not None
        return job.id

    def _running(self, task: str) -> int:
        job_id = self.queued(task)
        claimed = self.queue.claim()
        assert claimed is not None
        assert claimed.id == job_id
        return job_id

    def failed(self, reason: str = "the volume has 3 slices; 8 needed") -> int:
        job_id = self._running("calcium")
        self.queue.fail(job_id, reason)
        return job_id

    def reported(self, task: str = "stenosis", result: dict[str, Any] | None = None) -> int:
        job_id = self._running(task)
        sop = f"{STUDY}.9{job_id}"

        def also(conn: Connection) -> None:
            objects = [StagedObject(BASIC_TEXT_SR, f"{sop}.1", f"{job_id}/sr.dcm")]
            stage(conn, job_id, objects, [PACS, ARCHIVE])
            record_version(
                conn, job_id, 1, "d" * 64, "1.0.0", (STUDY, sop, f"{sop}.1", BASIC_TEXT_SR)
            )

        output = result if result is not None else {"needs_review": True, "lesions": []}
        assert self.queue.finish(
            job_id,
            json.dumps(output),
            "fake-model",
            "1.0.0",
            "CPUExecutionProvider",
            also=also,
            review_reason=review_reason(task, output),  # flagged as the worker flags it
        )
        return job_id

    def deliver(self, job_id: int, *, dead_to: str | None = None) -> None:
        """Send every row, except those to ``dead_to``, which fail until dead."""
        rows = self.outbox.rows_of_job(job_id)
        sent = [r for r in rows if r.destination != dead_to]
        failed = [(r, "association rejected (permanent)") for r in rows if r.destination == dead_to]
        self.outbox.record(sent, failed, Policy(max_attempts=1))
