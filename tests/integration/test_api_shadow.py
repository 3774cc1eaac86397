"""Shadow mode in the API over a real SQLite store: per task the serving model beside its
candidate (runs, agreement, mean differences, disagreements, those reviewers changed,
promotions), one job's candidate runs, and no patient data in either."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.inference import LoadedModel
from cardiogate.inference.engine import load_model
from cardiogate.learning.promotion import ModelFolders, promote
from cardiogate.learning.shadow import record_shadow
from cardiogate.store.jobs import JobQueue
from cardiogate.store.reviews import record_review
from cardiogate.tasks import configure_tasks
from review_jobs import Env, FakeHealth, calcium, review_env

CALCIUM = Path(__file__).resolve().parents[2] / "models" / "calcium"


class Models:
    """The engine's probe: the serving model and the candidate in shadow."""

    def __init__(self, serving: LoadedModel, candidate: LoadedModel | None) -> None:
        self.serving, self.candidate = serving, candidate

    def loaded_models(self) -> Mapping[str, LoadedModel]:
        return {"calcium": self.serving}

    def candidate_models(self) -> Mapping[str, LoadedModel]:
        return {} if self.candidate is None else {"calcium": self.candidate}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def _scored(total: float) -> dict[str, Any]:
    return {**calcium(300.0), "agatston": {"total": total, "LAD": total}}


def _shadow_run(env: Env, serving: float, candidate: float) -> int:
    """A reported calcium job and a candidate run on it, compared as the worker does."""
    job_id = env.jobs.reported("calcium", _scored(serving))
    comparison = configure_tasks()["calcium"].compare(_scored(serving), _scored(candidate))
    result = json.dumps(_scored(candidate))
    record_shadow(env.store, job_id, "calcium", ("calcium-candidate", "2.1.0"), result, comparison)
    return job_id


def test_the_overview_compares_the_candidate_with_serving(env: Env, tmp_path: Path) -> None:
    agree = _shadow_run(env, 50.0, 60.0)  # A1 both
    missed = _shadow_run(env, 50.0, 150.0)  # A1 -> A2
    later = _shadow_run(env, 0.0, 4.0)  # A0 -> A1
    job = JobQueue(env.store).get(missed)
    assert job is not None
    assert record_review(env.store, job, "disagree", "LAD lesion missed")
    models = tmp_path / "models"
    shutil.copytree(CALCIUM, models / "calcium")
    shutil.copytree(CALCIUM, models / "candidates" / "calcium")
    card = json.loads((models / "candidates" / "calcium" / "card.json").read_text())
    card["version"] = "0.2.0-ft.1"
    (models / "candidates" / "calcium" / "card.json").write_text(json.dumps(card))
    candidate = load_model(models / "candidates" / "calcium")
    folders = ModelFolders(models, models / "candidates", models / "archive")
    promote(env.store, folders, "calcium", "r-1")
    api = TestClient(
        create_api(env.store, FakeHealth(), models=Models(load_model(CALCIUM), candidate))
    )
    overview = api.get("/api/v1/shadow")
    assert overview.status_code == 200
    [task] = overview.json()["tasks"]
    shipped = json.loads((CALCIUM / "card.json").read_text())["version"]
    assert task["serving"] == {"name": "cardiogate-calcium-unet", "version": shipped}
    assert task["candidate"] == {"name": "cardiogate-calcium-unet", "version": "0.2.0-ft.1"}
    assert task["candidate_loaded"] is True
    assert task["runs"] == 0  # the loaded candidate has not run yet
    assert [p["action"] for p in task["promotions"]] == ["promote"]
    assert task["promotions"][0]["by"] == "r-1"

    last_run = TestClient(create_api(env.store, FakeHealth())).get("/api/v1/shadow").json()
    [task] = last_run["tasks"]
    assert task["serving"] is None  # no engine: the candidate that ran last is shown
    assert task["candidate"] == {"name": "calcium-candidate", "version": "2.1.0"}
    assert task["candidate_loaded"] is False
    assert task["runs"] == 3
    assert task["agreement_ratio"] == pytest.approx(1 / 3)
    assert task["mean_abs_difference"]["agatston_total"] == pytest.approx((10 + 100 + 4) / 3)
    assert task["disagreements"] == [later, missed]
    assert task["changed_by_reviewers"] == [missed]
    assert agree not in task["disagreements"]


def test_a_jobs_candidate_runs(env: Env) -> None:
    job_id = _shadow_run(env, 50.0, 150.0)
    answer = env.api.get(f"/api/v1/jobs/{job_id}/shadow")
    assert answer.status_code == 200
    body = answer.json()
    assert body["job_id"] == job_id
    assert body["serving"] == {"name": "calcium-model", "version": "2.0.0"}
    [run] = body["runs"]
    assert (run["model_name"], run["model_version"], run["agree"]) == (
        "calcium-candidate",
        "2.1.0",
        False,
    )
    assert run["difference"]["agatston_total"] == pytest.approx(100.0)
    assert run["summary"] == "category A1 -> A2; Agatston 50.0 -> 150.0"
    assert run["result"]["agatston"]["total"] == 150.0
    assert run["created_at"].endswith("+00:00")
    assert env.api.get("/api/v1/jobs/999/shadow").status_code == 404
    none = env.api.get(f"/api/v1/jobs/{env.jobs.reported('calcium', _scored(1.0))}/shadow")
    assert none.json()["runs"] == []


def test_the_shadow_routes_need_the_token(tmp_path: Path, env: Env) -> None:
    api = TestClient(create_api(env.store, FakeHealth(), "a-test-token-0123456789"))
    assert api.get("/api/v1/shadow").status_code == 401
    assert api.get("/api/v1/jobs/1/shadow").status_code == 401
    ok = api.get("/api/v1/shadow", headers={"Authorization": "Bearer a-test-token-0123456789"})
    assert ok.status_code == 200
