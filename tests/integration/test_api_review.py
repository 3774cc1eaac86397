"""The review queue over a real SQLite store: flagged stenosis and calcium results wait for
a verdict, a verdict takes them out, and ``cardiogate review export`` writes the verdicts as
JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from cardiogate.api import create_api
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue
from cardiogate.store.outbox import Outbox, StagedObject, stage

STUDY = "1.2.826.0.1.3680043.10.2"
PACS = "PACS@127.0.0.1:104"
TOKEN = "a-test-token-0123456789"
PATIENT = "DOE^JANE"


class FakeHealth:
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return {"store_reachable": True}, {}


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 1

    def delay(self, attempts: int) -> float:
        return 0.0


def stenosis(needs_review: bool, *percents: float) -> dict[str, Any]:
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
    }


def calcium(*peaks: float) -> dict[str, Any]:
    return {
        "task": "calcium",
        "agatston": {"total": 42.5, "LAD": 42.5},
        "lesions": [
            {"artery": "LAD", "peak_hu": hu, "agatston": 10.0, "area_mm2": 3.0, "slice_index": 7}
            for hu in peaks
        ],
        "model": {"name": "calcium-model", "version": "2.0.0", "provider": "CPU"},
    }


class Jobs:
    """Reported and delivered jobs made through the real queue and outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue = JobQueue(store)
        self._n = 0

    def queued(self, task: str) -> str:
        self._n += 1
        series = f"{STUDY}.{self._n}"
        fields = dict.fromkeys(InstanceRecord.__dataclass_fields__)
        self.store.record_instance(
            InstanceRecord(  # type: ignore[arg-type]
                **{
                    **fields,
                    "StudyInstanceUID": STUDY,
                    "SeriesInstanceUID": series,
                    "SOPInstanceUID": f"{series}.1",
                    "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                    "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                    "NumberOfFrames": 1,
                    "path": f"{STUDY}/{series}/1.dcm",
                    "size_bytes": 1,
                }
            )
        )
        self.queue.enqueue(series, STUDY, task)
        return series

    def reported(self, task: str, result: dict[str, Any], *, deliver: bool = False) -> int:
        series = self.queued(task)
        job = self.queue.claim()
        assert job is not None

        def also(conn: Connection) -> None:
            sr = StagedObject("1.2.840.10008.5.1.4.1.1.88.11", f"{series}.99", f"{job.id}/sr.dcm")
            stage(conn, job.id, [sr], [PACS])

        assert self.queue.finish(
            job.id, json.dumps(result), f"{task}-model", "2.0.0", "CPU", also=also
        )
        if deliver:
            outbox = Outbox(self.store)
            outbox.record(outbox.rows_of_job(job.id), [], Policy())
        return job.id


@dataclass
class Env:
    store: Store
    jobs: Jobs
    api: TestClient


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = Store(f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    try:
        yield Env(store, Jobs(store), TestClient(create_api(store, FakeHealth())))
    finally:
        store.dispose()


def test_the_queue_lists_only_flagged_unreviewed_jobs_newest_first(env: Env) -> None:
    unsure = env.jobs.reported("stenosis", stenosis(True, 55.0, 72.5), deliver=True)
    env.jobs.reported("stenosis", stenosis(False, 80.0))
    borderline = env.jobs.reported("calcium", calcium(400.0, 140.0))
    env.jobs.reported("calcium", calcium(400.0, 150.0))  # 150 HU is not below 150
    env.jobs.queued("stenosis")  # no result yet
    assert env.jobs.queue.get(unsure) == env.jobs.queue.for_series(f"{STUDY}.1")
    assert env.jobs.queue.counts() == {"delivered": 1, "reported": 3, "queued": 1}

    page = env.api.get("/api/v1/review").json()
    assert page["total"] == 2
    assert [item["job_id"] for item in page["items"]] == [borderline, unsure]
    calcium_item, stenosis_item = page["items"]
    assert stenosis_item == {
        "job_id": unsure,
        "SeriesInstanceUID": f"{STUDY}.1",
        "StudyInstanceUID": STUDY,
        "task": "stenosis",
        "model_name": "stenosis-model",
        "model_version": "2.0.0",
        "reason": "model probability 0.55 is within the review band 0.4-0.7",
        "summary": {
            "probability": 0.55,
            "lesions": [
                {"percent_stenosis": 55.0, "grade": "moderate"},
                {"percent_stenosis": 72.5, "grade": "moderate"},
            ],
        },
    }
    assert calcium_item["reason"] == "1 lesion(s) with a peak below 150 HU (threshold 130 HU)"
    assert calcium_item["summary"] == {
        "agatston_total": 42.5,
        "low_hu_lesions": [{"artery": "LAD", "peak_hu": 140.0, "agatston": 10.0, "area_mm2": 3.0}],
    }

    second = env.api.get("/api/v1/review", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 2
    assert [item["job_id"] for item in second["items"]] == [unsure]


def test_a_verdict_takes_the_job_out_of_the_queue(env: Env) -> None:
    job_id = env.jobs.reported("calcium", calcium(135.0))
    r = env.api.post(f"/api/v1/review/{job_id}", json={"verdict": "disagree", "note": "noise"})
    assert r.status_code == 200
    shown = r.json()
    assert shown["verdict"] == "disagree"
    assert shown["note"] == "noise"
    assert (shown["model_name"], shown["model_version"]) == ("calcium-model", "2.0.0")
    assert shown["reviewed_at"].endswith("+00:00")
    assert env.api.get("/api/v1/review").json() == {
        "total": 0,
        "limit": 100,
        "offset": 0,
        "items": [],
    }


def test_review_errors_keep_the_one_json_shape(env: Env) -> None:
    flagged = env.jobs.reported("stenosis", stenosis(True))
    clear = env.jobs.reported("stenosis", stenosis(False))
    assert env.api.post(f"/api/v1/review/{flagged}", json={"verdict": "agree"}).status_code == 200
    guarded = TestClient(create_api(env.store, FakeHealth(), TOKEN))
    cases = [
        (env.api.post("/api/v1/review/999", json={"verdict": "agree"}), 404, "no such job"),
        (
            env.api.post(f"/api/v1/review/{clear}", json={"verdict": "agree"}),
            409,
            f"job {clear} does not need review",
        ),
        (
            env.api.post(f"/api/v1/review/{flagged}", json={"verdict": "disagree"}),
            409,
            f"job {flagged} already has a verdict",
        ),
        (env.api.post(f"/api/v1/review/{clear}", json={"verdict": "maybe"}), 422, "body.verdict"),
        (
            env.api.post(f"/api/v1/review/{clear}", json={"verdict": "agree", "note": "x" * 2001}),
            422,
            "body.note",
        ),
        (env.api.post(f"/api/v1/review/{clear}", json={}), 422, "body.verdict"),
        (env.api.get("/api/v1/review", params={"limit": 0}), 422, "query.limit"),
        (guarded.get("/api/v1/review"), 401, "missing or wrong bearer token"),
        (guarded.post(f"/api/v1/review/{clear}", json={"verdict": "agree"}), 401, "bearer"),
    ]
    for r, code, message in cases:
        assert r.status_code == code
        assert r.json() == {"error": {"status": code, "message": r.json()["error"]["message"]}}
        assert message in r.json()["error"]["message"]
    assert "maybe" not in cases[3][0].text


def test_no_patient_identifiers_in_review_responses(env: Env) -> None:
    job_id = env.jobs.reported("stenosis", stenosis(True, 60.0))
    listed = env.api.get("/api/v1/review").text
    posted = env.api.post(f"/api/v1/review/{job_id}", json={"verdict": "agree"}).text
    for body in (listed, posted):
        assert "Patient" not in body
        assert PATIENT not in body


def _export(out: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cardiogate", "review", "export", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CARDIOGATE_DATA_DIR": str(data_dir)},
        check=False,
    )


def test_export_writes_one_line_per_reviewed_job(env: Env, tmp_path: Path) -> None:
    agreed = env.jobs.reported("stenosis", stenosis(True, 55.0), deliver=True)
    disagreed = env.jobs.reported("calcium", calcium(131.0))
    env.jobs.reported("calcium", calcium(139.0))  # flagged, not reviewed: not exported
    env.api.post(f"/api/v1/review/{agreed}", json={"verdict": "agree", "note": "fine"})
    env.api.post(f"/api/v1/review/{disagreed}", json={"verdict": "disagree"})
    env.jobs.queue.requeue([disagreed])  # a re-run replaces the job's result...
    rerun = env.jobs.queue.claim()
    assert rerun is not None
    assert env.jobs.queue.finish(
        disagreed, json.dumps(calcium(500.0)), "calcium-model", "3.0.0", "CPU"
    )

    out = tmp_path / "exports" / "reviews.jsonl"
    run = _export(out, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"exported 2 reviewed job(s) to {out}\n"
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["job_id"] == agreed
    assert first["SeriesInstanceUID"] == f"{STUDY}.1"
    assert first["StudyInstanceUID"] == STUDY
    assert first["task"] == "stenosis"
    assert (first["model_name"], first["model_version"]) == ("stenosis-model", "2.0.0")
    assert first["result"] == stenosis(True, 55.0)
    assert (first["verdict"], first["note"]) == ("agree", "fine")
    assert first["reviewed_at"].endswith("+00:00")
    assert (second["job_id"], second["verdict"], second["note"]) == (disagreed, "disagree", "")
    assert second["result"] == calcium(131.0)  # ...not the output the reviewer judged
    assert second["model_version"] == "2.0.0"


def test_export_refuses_a_data_dir_without_a_database(tmp_path: Path) -> None:
    run = _export(tmp_path / "reviews.jsonl", tmp_path / "empty")
    assert run.returncode == 2
    assert "no database in" in run.stderr
    assert not (tmp_path / "reviews.jsonl").exists()
