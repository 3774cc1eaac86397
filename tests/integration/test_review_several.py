"""Several reviewers per result over a real SQLite store and the real API: a result is
settled by ``review_required`` agreeing reviews or by an adjudicator, the queue shows who
has judged it, a result's reviews are fused, and ``cardiogate review export --dataset``
writes the settled results with their fused labels and series."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.config import load_settings
from review_jobs import STUDY, Env, FakeHealth, calcium, review_env, stenosis

HEADER = "X-Cardiogate-Reviewer"
NOT_CALCIUM = {"lesions": [{"index": 0, "artery": "none"}]}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        settings = load_settings(
            data_dir=tmp_path, destinations=[], review_required=2, review_adjudicators=["adj-1"]
        )
        made.api = TestClient(create_api(made.store, FakeHealth(), settings=settings))
        yield made


def _post(env: Env, job: int, reviewer: str | None, **body: Any) -> Any:
    headers = {} if reviewer is None else {HEADER: reviewer}
    return env.api.post(f"/api/v1/review/{job}", json=body, headers=headers)


def _queue(env: Env, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = env.api.get("/api/v1/review", params=params).json()["items"]
    return items


def test_two_agreeing_reviews_settle_a_result(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    first = _post(env, job, "r-1", verdict="agree")
    assert first.status_code == 200
    assert first.json()["reviewer"] == "r-1"
    assert first.json()["settled"] is False
    item = _queue(env)[0]
    assert (item["job_id"], item["reviews"], item["reviewers"]) == (job, 1, ["r-1"])
    assert _queue(env, reviewer="r-1") == []  # r-1 has judged it
    assert _post(env, job, "r-1", verdict="agree").status_code == 409  # once per reviewer

    second = _post(env, job, "r-2", verdict="agree")
    assert second.json()["settled"] is True
    assert _queue(env) == []
    late = _post(env, job, "r-3", verdict="disagree")
    assert late.status_code == 409
    assert "settled" in late.json()["error"]["message"]

    case = env.api.get(f"/api/v1/review/{job}").json()
    assert case["settled"] is True
    assert [r["reviewer"] for r in case["reviews"]] == ["r-1", "r-2"]
    assert case["fused"] == [
        {"key": "lesion/0", "kind": "category", "value": "LAD", "weight": 3.0},
        {"key": "verdict", "kind": "category", "value": "agree"},
    ]
    assert case["unresolved"] == []
    assert case["changed"] is False
    assert case["agreement"]["per_reviewer"][0]["agreement"] == 1.0


def test_a_tie_waits_for_an_adjudicator(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    _post(env, job, "r-1", verdict="agree")
    tie = _post(env, job, "r-2", verdict="disagree", corrections=NOT_CALCIUM)
    assert tie.json()["settled"] is False
    assert tie.json()["corrections"] == NOT_CALCIUM
    case = env.api.get(f"/api/v1/review/{job}").json()
    assert sorted(case["unresolved"]) == ["lesion/0", "verdict"]
    assert [i["job_id"] for i in _queue(env)] == [job]  # still waiting

    refused = _post(env, job, "r-3", verdict="agree", role="adjudicator")
    assert refused.status_code == 403
    assert "CARDIOGATE_REVIEW_ADJUDICATORS" in refused.json()["error"]["message"]

    decided = _post(
        env, job, "adj-1", verdict="disagree", role="adjudicator", corrections=NOT_CALCIUM
    )
    assert decided.status_code == 200
    assert (decided.json()["role"], decided.json()["settled"]) == ("adjudicator", True)
    case = env.api.get(f"/api/v1/review/{job}").json()
    assert case["settled"] is True
    assert case["unresolved"] == []
    assert case["changed"] is True
    assert {x["key"]: x["value"] for x in case["fused"]} == {
        "lesion/0": "none",
        "verdict": "disagree",
    }
    assert _queue(env) == []

    agreement = env.api.get("/api/v1/review/agreement").json()
    assert (agreement["cases"], agreement["changed"]) == (1, 1)
    per = {r["reviewer"]: r for r in agreement["per_reviewer"]}
    assert per["r-2"]["agreement"] == 1.0  # said what the adjudicator decided
    assert per["r-1"]["agreement"] == 0.0
    assert agreement["per_task"]["calcium"]["cases"] == 1


def test_stenosis_corrections_fuse_to_the_median_and_the_majority(env: Env) -> None:
    """Two readers agree a lesion is real but read 60% and 80%; they name the same vessel:
    the fused %DS is their median, the vessel theirs, and a false lesion both call false
    is gone (with its sub-labels)."""
    job = env.jobs.reported("stenosis", stenosis(True, 55.0, 40.0))

    def fix(percent: float) -> dict[str, Any]:
        return {
            "lesions": [
                {
                    "index": 0,
                    "real": True,
                    "vessel": "LAD",
                    "segment": "mid LAD",
                    "percent": percent,
                },
                {"index": 1, "real": False},
            ]
        }

    bad = _post(env, job, "r-1", verdict="disagree", corrections={"lesions": [{"index": 5}]})
    assert bad.status_code == 422
    assert "index 5" in bad.json()["error"]["message"]  # the result has two lesions
    assert _post(env, job, "r-1", verdict="disagree", corrections=fix(60.0)).status_code == 200
    second = _post(env, job, "r-2", verdict="disagree", corrections=fix(80.0))
    assert second.json()["settled"] is True
    case = env.api.get(f"/api/v1/review/{job}").json()
    fused = {x["key"]: x["value"] for x in case["fused"]}
    assert fused["lesion/0/percent"] == pytest.approx(70.0)
    assert (fused["lesion/0/vessel"], fused["lesion/0/segment"]) == ("LAD", "mid LAD")
    assert fused["lesion/1"] == "none"
    assert not any(k.startswith("lesion/1/") for k in fused)
    assert case["changed"] is True


def test_bad_reviewer_ids_and_corrections_are_refused_by_name(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    cases = [
        (_post(env, job, "a b", verdict="agree"), "X-Cardiogate-Reviewer"),
        (_post(env, job, "x" * 65, verdict="agree"), "X-Cardiogate-Reviewer"),
        (
            _post(
                env,
                job,
                "r-1",
                verdict="agree",
                corrections={"lesions": [{"index": 0, "artery": "XYZ"}]},
            ),
            "corrections.lesions.0.artery",
        ),
        (
            _post(
                env,
                job,
                "r-1",
                verdict="agree",
                corrections={"lesions": [{"index": 4, "artery": "LM"}]},
            ),
            "corrections.lesions[0].index 4: the result has 1 lesion(s)",
        ),
        (_post(env, job, "r-1", verdict="agree", corrections={"oops": []}), "corrections.oops"),
    ]
    for response, message in cases:
        assert response.status_code == 422
        assert message in response.json()["error"]["message"]
    assert env.api.get(f"/api/v1/review/{job}").json()["reviews"] == []


def test_one_review_settles_by_default_and_old_clients_are_anonymous(tmp_path: Path) -> None:
    with review_env(tmp_path) as env:
        job = env.jobs.reported("calcium", calcium(140.0))
        response = env.api.post(f"/api/v1/review/{job}", json={"verdict": "agree"})
        assert response.json()["reviewer"] == "anonymous"
        assert response.json()["settled"] is True
        assert env.api.get("/api/v1/review").json()["total"] == 0


def test_export_writes_reviewers_and_a_dataset_of_settled_results(env: Env, tmp_path: Path) -> None:
    settled = env.jobs.reported("calcium", calcium(140.0))
    waiting = env.jobs.reported("calcium", calcium(141.0))
    _post(env, settled, "r-1", verdict="disagree", corrections=NOT_CALCIUM)
    _post(env, settled, "r-2", verdict="disagree", corrections=NOT_CALCIUM)
    _post(env, waiting, "r-1", verdict="agree")
    series = f"{STUDY}.1"
    instance = tmp_path / "spool" / STUDY / series / "1.dcm"
    instance.parent.mkdir(parents=True)
    instance.write_bytes(b"DICM instance bytes")

    out = tmp_path / "exports" / "reviews.jsonl"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cardiogate",
            "review",
            "export",
            str(out),
            "--dataset",
            str(tmp_path / "ds"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CARDIOGATE_DATA_DIR": str(tmp_path)},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == (
        f"exported 1 settled result(s) and 1 series file(s) to {tmp_path / 'ds'}"
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["job_id"], x["reviewer"], x["role"]) for x in lines] == [
        (settled, "r-1", "reviewer"),
        (settled, "r-2", "reviewer"),
        (waiting, "r-1", "reviewer"),
    ]
    assert lines[0]["corrections"] == NOT_CALCIUM
    (case,) = [
        json.loads(line) for line in (tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()
    ]
    assert (case["job_id"], case["SeriesInstanceUID"], case["series_dir"]) == (
        settled,
        series,
        f"series/{series}",
    )
    assert case["result"] == calcium(140.0)
    assert [r["reviewer"] for r in case["reviews"]] == ["r-1", "r-2"]
    assert {x["key"]: x["value"] for x in case["fused"]["labels"]}["lesion/0"] == "none"
    assert case["fused"]["changed"] is True
    assert (tmp_path / "ds" / "series" / series / "1.dcm").read_bytes() == b"DICM instance bytes"
    agreement = json.loads((tmp_path / "ds" / "agreement.json").read_text())
    assert agreement["cases"] == 1
    assert {r["reviewer"] for r in agreement["per_reviewer"]} == {"r-1", "r-2"}
    assert agreement["per_task"]["calcium"]["cases"] == 1
