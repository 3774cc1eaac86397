"""``GET /api/v1/studies/{StudyInstanceUID}/results`` over a real SQLite store: every job of
the study with its result as stored, review flag, and objects per destination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from cardiogate.store.outbox import Outbox, StagedObject, stage
from review_jobs import BASIC_TEXT_SR, PACS, STUDY, Env, Policy, calcium, review_env, stenosis
from store_jobs import review_reason

ARCHIVE = "ARCHIVE@127.0.0.1:11112"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
OTHER_STUDY = "1.2.826.0.1.3680043.10.3"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def _calcium_sent_to_pacs_only(env: Env) -> tuple[int, str]:
    """A calcium job whose SR and SEG went to the PACS but not yet to the archive."""
    series = env.jobs.queued("calcium")
    job = env.jobs.queue.claim()
    assert job is not None
    objects = [
        StagedObject(BASIC_TEXT_SR, f"{series}.98", f"{job.id}/sr.dcm"),
        StagedObject(SEG, f"{series}.99", f"{job.id}/seg.dcm"),
    ]

    def also(conn: Connection) -> None:
        stage(conn, job.id, objects, [PACS, ARCHIVE])

    result = calcium(400.0)
    assert env.jobs.queue.finish(
        job.id, json.dumps(result), "calcium-model", "2.0.0", "CPU", also=also
    )
    outbox = Outbox(env.store)
    outbox.record([r for r in outbox.rows_of_job(job.id) if r.destination == PACS], [], Policy())
    return job.id, series


def test_every_job_of_the_study_with_its_result_and_objects(env: Env) -> None:
    calcium_job, calcium_series = _calcium_sent_to_pacs_only(env)
    flagged = env.jobs.reported("stenosis", stenosis(True, 60.0))
    ignored = env.jobs.queued("stenosis")
    env.jobs.queue.ignore(ignored, STUDY, "modality MR is not analysed")
    env.jobs.reported("calcium", calcium(400.0), study=OTHER_STUDY)

    r = env.api.get(f"/api/v1/studies/{STUDY}/results")
    assert r.status_code == 200
    body = r.json()
    assert body["StudyInstanceUID"] == STUDY
    first, second, third = body["jobs"]
    assert first["job_id"] == calcium_job
    assert first["SeriesInstanceUID"] == calcium_series
    assert (first["task"], first["state"], first["reason"]) == ("calcium", "reported", None)
    assert (first["model_name"], first["model_version"], first["provider"]) == (
        "calcium-model",
        "2.0.0",
        "CPU",
    )
    assert first["finished_at"].endswith("+00:00")
    assert first["result"] == calcium(400.0)
    assert (first["needs_review"], first["review_reason"]) == (False, None)
    by_uid = {o["SOPInstanceUID"]: o for o in first["objects"]}
    assert {uid: o["SOPClassUID"] for uid, o in by_uid.items()} == {
        f"{calcium_series}.98": BASIC_TEXT_SR,
        f"{calcium_series}.99": SEG,
    }
    for obj in first["objects"]:
        states = {d["destination"]: d["state"] for d in obj["deliveries"]}
        assert states == {PACS: "sent", ARCHIVE: "pending"}
        [sent] = [d for d in obj["deliveries"] if d["state"] == "sent"]
        assert sent["sent_at"].endswith("+00:00")

    assert (second["job_id"], second["task"], second["needs_review"]) == (flagged, "stenosis", True)
    assert second["review_reason"] == review_reason("stenosis", stenosis(True, 60.0))
    assert second["result"] == stenosis(True, 60.0)
    assert [o["deliveries"][0]["destination"] for o in second["objects"]] == [PACS]

    assert third["SeriesInstanceUID"] == ignored
    assert (third["task"], third["state"]) == (None, "ignored")
    assert third["reason"] == "modality MR is not analysed"
    assert (third["result"], third["objects"]) == (None, [])


def test_a_study_still_arriving_has_no_jobs_and_an_unknown_study_is_404(env: Env) -> None:
    env.jobs.queued("calcium", enqueue=False)
    arriving = env.api.get(f"/api/v1/studies/{STUDY}/results")
    assert arriving.json() == {"StudyInstanceUID": STUDY, "jobs": []}
    unknown = env.api.get("/api/v1/studies/1.2.3.4/results")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"status": 404, "message": "no such study"}}
    assert env.api.get("/api/v1/studies/not-a-uid/results").status_code == 422
