"""The jobs, retry, models, destinations and review API over a real SQLite store whose jobs
and outbox rows were made through the store's own queue and outbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.config import load_settings
from cardiogate.errors import StoreError
from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.store import Store
from peers import free_port, start_scp
from store_jobs import ARCHIVE, BASIC_TEXT_SR, PACS, FakeHealth, Jobs
from tiny_model import write_model

TOKEN = "a-test-token-0123456789"


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


def test_jobs_page_newest_first_with_total_and_filters(env: Env) -> None:
    failed = env.jobs.failed()
    reported = env.jobs.reported()
    queued = env.jobs.queued("stenosis")

    page = env.api.get("/api/v1/jobs").json()
    assert page["total"] == 3
    assert [j["id"] for j in page["items"]] == [queued, reported, failed]

    second = env.api.get("/api/v1/jobs", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 3
    assert [j["id"] for j in second["items"]] == [reported]

    by_state = env.api.get("/api/v1/jobs", params={"state": "failed"}).json()
    assert [j["id"] for j in by_state["items"]] == [failed]
    assert by_state["items"][0]["reason"] == "the volume has 3 slices; 8 needed"

    by_task = env.api.get("/api/v1/jobs", params={"task": "stenosis"}).json()
    assert {j["id"] for j in by_task["items"]} == {queued, reported}

    future = env.api.get("/api/v1/jobs", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
    past = env.api.get("/api/v1/jobs", params={"since": "2000-01-01T00:00:00+02:00"}).json()
    assert past["total"] == 3


def test_jobs_page_refuses_unknown_filters(env: Env) -> None:
    assert env.api.get("/api/v1/jobs", params={"state": "lost"}).status_code == 422
    assert env.api.get("/api/v1/jobs", params={"limit": 0}).status_code == 422
    assert env.api.get("/api/v1/jobs", params={"since": "yesterday"}).status_code == 422


def test_a_delivered_job_in_full(env: Env) -> None:
    job_id = env.jobs.reported()
    env.jobs.deliver(job_id)

    r = env.api.get(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 200
    job = r.json()
    assert job["state"] == "delivered"
    assert job["model_name"] == "fake-model"
    assert job["provider"] == "CPUExecutionProvider"
    assert [e["event"] for e in job["timeline"]] == ["queued", "started", "reported", "delivered"]
    assert all(e["at"].endswith("+00:00") for e in job["timeline"])
    assert job["result"] == {"needs_review": True, "lesions": []}
    assert sorted(o["destination"] for o in job["objects"]) == [ARCHIVE, PACS]
    for obj in job["objects"]:
        assert obj["state"] == "sent"
        assert obj["SOPClassUID"] == BASIC_TEXT_SR
        assert obj["attempts"] == 0
        assert obj["last_error"] is None
    (version,) = job["report_versions"]
    assert version["version_index"] == 1
    assert version["SOPClassUID"] == BASIC_TEXT_SR
    assert job["errors"] == []


def test_a_job_with_a_dead_destination_shows_the_error(env: Env) -> None:
    job_id = env.jobs.reported()
    env.jobs.deliver(job_id, dead_to=ARCHIVE)

    job = env.api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["state"] == "reported"
    states = {o["destination"]: (o["state"], o["attempts"]) for o in job["objects"]}
    assert states == {PACS: ("sent", 0), ARCHIVE: ("dead", 1)}
    assert [e["event"] for e in job["timeline"]] == ["queued", "started", "reported"]
    (error,) = job["errors"]
    assert error.startswith(ARCHIVE)
    assert error.endswith("association rejected (permanent)")


def test_a_failed_job_in_full(env: Env) -> None:
    job_id = env.jobs.failed()
    job = env.api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["state"] == "failed"
    assert [e["event"] for e in job["timeline"]] == ["queued", "started", "failed"]
    assert job["errors"] == ["the volume has 3 slices; 8 needed"]
    assert job["result"] is None
    assert job["objects"] == []
    assert job["report_versions"] == []


def test_an_unknown_job_is_404(env: Env) -> None:
    assert env.api.get("/api/v1/jobs/999").status_code == 404
    assert env.api.get("/api/v1/jobs/abc").status_code == 422


def test_retry_requeues_a_failed_job(env: Env) -> None:
    job_id = env.jobs.failed()
    r = env.api.post(f"/api/v1/jobs/{job_id}/retry")
    assert r.status_code == 200
    assert r.json() == {"job_id": job_id, "action": "requeued", "outbox_rows_reset": 0}
    job = env.api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["state"] == "queued"
    assert job["reason"] is None
    assert job["errors"] == []
    claimed = env.jobs.queue.claim()  # the worker would take it on its next poll
    assert claimed is not None
    assert claimed.id == job_id
    assert claimed.attempts == 2


def test_retry_puts_dead_rows_back_to_pending(env: Env) -> None:
    job_id = env.jobs.reported()
    env.jobs.deliver(job_id, dead_to=ARCHIVE)
    r = env.api.post(f"/api/v1/jobs/{job_id}/retry")
    assert r.status_code == 200
    assert r.json() == {"job_id": job_id, "action": "redelivering", "outbox_rows_reset": 1}
    (due,) = env.jobs.outbox.claim_due(ARCHIVE, 10, 60)  # due now for the sender
    assert due.state == "pending"
    assert due.attempts == 0
    env.jobs.deliver(job_id)
    assert env.api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "delivered"


@pytest.mark.parametrize("state", ["queued", "reported", "delivered"])
def test_retry_refuses_other_states_with_409(env: Env, state: str) -> None:
    if state == "queued":
        job_id = env.jobs.queued()
    else:
        job_id = env.jobs.reported()
        if state == "delivered":
            env.jobs.deliver(job_id)
    r = env.api.post(f"/api/v1/jobs/{job_id}/retry")
    assert r.status_code == 409
    assert f"is {state} with no dead outbox rows" in r.text
    assert env.api.post("/api/v1/jobs/999/retry").status_code == 404


class Models:
    def __init__(self, models: dict[str, LoadedModel]) -> None:
        self.models = models

    def loaded_models(self) -> Mapping[str, LoadedModel]:
        return self.models


def test_models_show_version_provider_warmup_and_card(env: Env, tmp_path: Path) -> None:
    model = load_model(write_model(tmp_path / "m", metrics={"auc": 0.9, "per_seed": {"1": 1}}))
    api = TestClient(create_api(env.store, FakeHealth(), models=Models({"calcium": model})))
    (shown,) = api.get("/api/v1/models").json()
    assert shown["task"] == "calcium"
    assert shown["name"] == model.card.name
    assert shown["version"] == model.card.version
    assert shown["provider"] == "CPUExecutionProvider"
    assert shown["warmup_seconds"] >= 0
    assert shown["training_data"] == model.card.training_data
    assert shown["intended_use"] == model.card.intended_use
    assert shown["clinical_use"] == "not for clinical use"
    assert shown["metrics"] == {"auc": 0.9}  # figures only, nested tables left to the card
    assert env.api.get("/api/v1/models").json() == []  # built without an engine


def test_destinations_count_their_outbox_rows(env: Env, tmp_path: Path) -> None:
    sent, dead = env.jobs.reported(), env.jobs.reported()
    env.jobs.reported()
    env.jobs.deliver(sent)
    env.jobs.deliver(dead, dead_to=ARCHIVE)
    settings = load_settings(
        data_dir=tmp_path,
        destinations=[
            {"ae_title": "PACS", "host": "127.0.0.1", "port": 104},
            {"ae_title": "ARCHIVE", "host": "127.0.0.1", "port": 11112},
        ],
    )
    api = TestClient(create_api(env.store, FakeHealth(), settings=settings))
    shown = {d["ae_title"]: d for d in api.get("/api/v1/destinations").json()}
    assert shown["PACS"] == {
        "ae_title": "PACS",
        "host": "127.0.0.1",
        "port": 104,
        "tls": False,
        "pending": 1,
        "sent": 2,
        "dead": 0,
    }
    assert (shown["ARCHIVE"]["pending"], shown["ARCHIVE"]["sent"], shown["ARCHIVE"]["dead"]) == (
        1,
        1,
        1,
    )


def test_echo_reaches_a_listening_scp_and_explains_one_that_is_not(tmp_path: Path) -> None:
    scp = start_scp(tmp_path / "peer", ae_title="PEER")
    closed = free_port()
    settings = load_settings(
        data_dir=tmp_path / "us",
        acse_timeout_seconds=5,
        destinations=[
            {"ae_title": "PEER", "host": "127.0.0.1", "port": scp.port},
            {"ae_title": "GONE", "host": "127.0.0.1", "port": closed},
        ],
    )
    try:
        api = TestClient(create_api(scp.store, FakeHealth(), TOKEN, settings=settings))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert api.post("/api/v1/destinations/PEER/echo").status_code == 401
        ok = api.post("/api/v1/destinations/PEER/echo", headers=auth).json()
        assert ok["success"] is True
        assert ok["round_trip_ms"] > 0
        assert ok["reason"] is None
        gone = api.post("/api/v1/destinations/GONE/echo", headers=auth).json()
        assert gone["success"] is False
        assert gone["round_trip_ms"] is None
        assert gone["reason"] == "association aborted or not reachable"
        assert api.post("/api/v1/destinations/NOPE/echo", headers=auth).status_code == 404
    finally:
        scp.listener.stop(5)
        scp.store.dispose()


def test_every_error_has_one_json_shape(env: Env) -> None:
    job_id = env.jobs.queued()
    guarded = TestClient(create_api(env.store, FakeHealth(), TOKEN))
    cases = [
        (env.api.get("/api/v1/jobs/999"), 404, "no such job"),
        (env.api.get("/api/v1/jobs", params={"limit": 0}), 422, "query.limit: "),
        (env.api.post(f"/api/v1/jobs/{job_id}/retry"), 409, f"job {job_id} is queued"),
        (env.api.get("/api/v1/nowhere"), 404, "Not Found"),
        (guarded.get("/api/v1/jobs"), 401, "missing or wrong bearer token"),
    ]
    for r, code, message in cases:
        assert r.status_code == code
        assert r.json()["error"]["status"] == code
        assert message in r.json()["error"]["message"]
        assert set(r.json()) == {"error"}
    assert cases[-1][0].headers["www-authenticate"] == "Bearer"
    assert "lost-state" not in env.api.get("/api/v1/jobs", params={"state": "lost-state"}).text


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (StoreError("database error: OperationalError"), 503, "database is not reachable"),
        (RuntimeError("a bug"), 500, "internal error"),
    ],
)
def test_store_and_unexpected_errors_keep_the_shape(
    env: Env, monkeypatch: pytest.MonkeyPatch, error: Exception, code: int, message: str
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(env.store, "list_studies", broken)
    r = TestClient(create_api(env.store, FakeHealth()), raise_server_exceptions=False).get(
        "/api/v1/studies"
    )
    assert r.status_code == code
    assert r.json() == {"error": {"status": code, "message": r.json()["error"]["message"]}}
    assert message in r.json()["error"]["message"]
    assert "a bug" not in r.text
