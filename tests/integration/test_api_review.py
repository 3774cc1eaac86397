"""The review queue over a real SQLite store: flagged stenosis and calcium results wait for
a verdict, a verdict takes them out, and ``cardiogate review export`` writes the verdicts as
JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from review_jobs import STUDY, Env, FakeHealth, calcium, review_env, stenosis

TOKEN = "a-test-token-0123456789"
PATIENT = "DOE^JANE"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def test_the_queue_lists_only_flagged_unreviewed_jobs_newest_first(env: Env) -> None:
    unsure = env.jobs.reported("stenosis", stenosis(True, 55.0, 72.5), deliver=True)
    env.jobs.reported("stenosis", stenosis(False, 80.0))
    borderline = env.jobs.reported("calcium", calcium(400.0, 140.0))
    env.jobs.reported("calcium", calcium(400.0, 150.0))  # 150 HU is not below 150
    doubt = env.jobs.reported("calcium", calcium(400.0, (300.0, 0.55)))
    env.jobs.queued("stenosis")  # no result yet
    assert env.jobs.queue.get(unsure) == env.jobs.queue.for_series(f"{STUDY}.1")
    assert env.jobs.queue.counts() == {"delivered": 1, "reported": 4, "queued": 1}

    page = env.api.get("/api/v1/review").json()
    assert page["total"] == 3
    assert [item["job_id"] for item in page["items"]] == [doubt, borderline, unsure]
    doubt_item, calcium_item, stenosis_item = page["items"]
    assert stenosis_item == {
        "job_id": unsure,
        "SeriesInstanceUID": f"{STUDY}.1",
        "StudyInstanceUID": STUDY,
        "task": "stenosis",
        "model_name": "stenosis-model",
        "model_version": "2.0.0",
        "result_digest": env.jobs.queue.get(unsure).result_digest,  # type: ignore[union-attr]
        "reason": "model probability 0.55 is within the review band 0.4-0.7",
        "summary": {
            "probability": 0.55,
            "lesions": [
                {"percent_stenosis": 55.0, "grade": "moderate"},
                {"percent_stenosis": 72.5, "grade": "moderate"},
            ],
        },
        "reviews": 0,
        "reviewers": [],
        "settled": False,
    }
    assert len(stenosis_item["result_digest"]) == 64
    assert calcium_item["reason"] == "1 lesion(s) with a peak below 150 HU (threshold 130 HU)"
    assert calcium_item["summary"] == {
        "agatston_total": 42.5,
        "flagged_lesions": [
            {
                "artery": "LAD",
                "artery_probability": 0.99,
                "peak_hu": 140.0,
                "agatston": 10.0,
                "area_mm2": 3.0,
                "review_flags": ["low_peak_hu"],
            }
        ],
    }
    assert doubt_item["reason"] == (
        "1 lesion(s) whose artery is in doubt (model probability below 0.60)"
    )
    assert [lesion["peak_hu"] for lesion in doubt_item["summary"]["flagged_lesions"]] == [300.0]

    second = env.api.get("/api/v1/review", params={"limit": 1, "offset": 2}).json()
    assert second["total"] == 3
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
    unsure = env.jobs.reported("calcium", calcium(135.0))
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
            f"job {flagged} already has a verdict on this result",
        ),
        (
            env.api.post(
                f"/api/v1/review/{unsure}", json={"verdict": "agree", "result_digest": "0" * 64}
            ),
            409,
            f"job {unsure} has a new result since it was listed",
        ),
        (
            env.api.post(
                f"/api/v1/review/{unsure}", json={"verdict": "agree", "result_digest": "abc"}
            ),
            422,
            "body.result_digest",
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
    assert "maybe" not in cases[5][0].text
    assert [item["job_id"] for item in env.api.get("/api/v1/review").json()["items"]] == [unsure]


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


def test_export_writes_one_line_per_verdict(env: Env, tmp_path: Path) -> None:
    agreed = env.jobs.reported("stenosis", stenosis(True, 55.0), deliver=True)
    disagreed = env.jobs.reported("calcium", calcium(131.0))
    env.jobs.reported("calcium", calcium(139.0))  # flagged, not reviewed: not exported
    env.api.post(f"/api/v1/review/{agreed}", json={"verdict": "agree", "note": "fine"})
    env.api.post(f"/api/v1/review/{disagreed}", json={"verdict": "disagree"})
    # a re-run replaces the job's result...
    env.jobs.rerun(disagreed, "calcium", calcium(500.0), "3.0.0")

    out = tmp_path / "exports" / "reviews.jsonl"
    run = _export(out, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"exported 2 verdict(s) to {out}\n"
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["job_id"] == agreed
    assert first["SeriesInstanceUID"] == f"{STUDY}.1"
    assert first["StudyInstanceUID"] == STUDY
    assert first["task"] == "stenosis"
    assert (first["model_name"], first["model_version"]) == ("stenosis-model", "2.0.0")
    assert first["result"] == stenosis(True, 55.0)
    assert (first["verdict"], first["note"]) == ("agree", "fine")
    assert first["reviewed_at"].endswith("+00:00")
    assert first["current"] is True
    assert (second["job_id"], second["verdict"], second["note"]) == (disagreed, "disagree", "")
    assert second["result"] == calcium(131.0)  # ...not the output the reviewer judged
    assert second["model_version"] == "2.0.0"
    assert second["current"] is False


def test_export_refuses_a_data_dir_without_a_database(tmp_path: Path) -> None:
    run = _export(tmp_path / "reviews.jsonl", tmp_path / "empty")
    assert run.returncode == 2
    assert "no database in" in run.stderr
    assert not (tmp_path / "reviews.jsonl").exists()
