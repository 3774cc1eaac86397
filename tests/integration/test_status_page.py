"""The status page over a real SQLite store: the login form, the session cookie and its
limits, logout, and what the page says about jobs, models, health and the review queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cardiogate.analyses.review import review_reason
from cardiogate.api import create_api
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue

STUDY = "1.2.826.0.1.3680043.10.7"
TOKEN = "a-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CALCIUM = {
    "task": "calcium",
    "agatston": {"total": 42.46, "LAD": 42.46},
    "category": {"classic": "11-100", "cac_drs": "A1/N1"},
    "lesions": [{"artery": "LAD", "peak_hu": 140.0, "agatston": 42.46, "area_mm2": 9.0}],
}
STENOSIS = {
    "task": "stenosis",
    "probability": 0.93,
    "needs_review": False,
    "lesions": [{"percent_stenosis": 74.6, "grade": "severe", "cad_rads": "4A"}],
    "most_severe": {"percent_stenosis": 74.6, "grade": "severe", "cad_rads": "4A"},
}


class FakeHealth:
    def __init__(self, **checks: bool) -> None:
        self.checks = {"dicom_listening": True, "store_reachable": True, **checks}

    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return dict(self.checks), {"ae_title": "CARDIOGATE"}


@dataclass
class Env:
    store: Store
    jobs: dict[str, int]
    api: TestClient


def _job(store: Store, n: int, modality: str, task: str) -> int:
    series = f"{STUDY}.{n}"
    fields: dict[str, Any] = dict.fromkeys(InstanceRecord.__dataclass_fields__)
    fields.update(
        StudyInstanceUID=STUDY,
        SeriesInstanceUID=series,
        SOPInstanceUID=f"{series}.1",
        SOPClassUID="1.2.840.10008.5.1.4.1.1.2",
        TransferSyntaxUID="1.2.840.10008.1.2.1",
        Modality=modality,
        NumberOfFrames=1,
        path=f"{STUDY}/{series}/1.dcm",
        size_bytes=1,
    )
    store.record_instance(InstanceRecord(**fields))
    queue = JobQueue(store)
    queue.enqueue(series, STUDY, task)
    job = queue.claim()
    assert job is not None
    return job.id


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    store = Store(f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    queue = JobQueue(store)
    calcium = _job(store, 1, "CT", "calcium")
    # flagged as the worker flags it: the review reason derived from the result
    reason = review_reason("calcium", CALCIUM)
    assert queue.finish(
        calcium, json.dumps(CALCIUM), "calcium-model", "1.0.0", "CPU", review_reason=reason
    )
    stenosis = _job(store, 2, "XA", "stenosis")
    assert queue.finish(stenosis, json.dumps(STENOSIS), "stenosis-model", "1.0.0", "CPU")
    failed = _job(store, 3, "CT", "calcium")
    queue.fail(failed, "no CT slices could be read")
    jobs = {"calcium": calcium, "stenosis": stenosis, "failed": failed}
    try:
        yield Env(store, jobs, TestClient(create_api(store, FakeHealth(), TOKEN)))
    finally:
        store.dispose()


def _login(api: TestClient, token: str = TOKEN) -> Any:
    return api.post("/login", data={"token": token}, follow_redirects=False)


def test_without_a_session_the_page_asks_for_the_token(env: Env) -> None:
    r = env.api.get("/")
    assert r.status_code == 401
    assert '<form method="post" action="/login">' in r.text
    assert 'type="password"' in r.text
    assert f"job-{env.jobs['calcium']}" not in r.text
    assert "Research software, not for clinical use." in r.text


def test_login_sets_a_strict_httponly_session_cookie_that_is_not_the_token(env: Env) -> None:
    r = _login(env.api)
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("cardiogate_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert TOKEN not in cookie

    page = env.api.get("/")  # the client keeps the cookie, as a browser does
    assert page.status_code == 200
    assert f'id="job-{env.jobs["calcium"]}"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_a_wrong_token_shows_the_form_again_with_an_error(env: Env) -> None:
    for wrong in ("x" * len(TOKEN), "", TOKEN[:-1], "tökén-0123456789abcdef"):
        r = _login(env.api, wrong)
        assert r.status_code == 401
        assert "Wrong token." in r.text
        assert "set-cookie" not in r.headers
    assert env.api.get("/").status_code == 401


def test_the_session_reads_the_api_but_changes_need_the_bearer_token(env: Env) -> None:
    _login(env.api)
    assert env.api.get("/api/v1/review").status_code == 200
    failed = env.jobs["failed"]
    assert env.api.post(f"/api/v1/jobs/{failed}/retry").status_code == 401
    assert env.api.post(f"/api/v1/jobs/{failed}/retry", headers=BEARER).status_code == 200


def test_logout_ends_the_session_even_for_a_copied_cookie(env: Env) -> None:
    session = _login(env.api).cookies["cardiogate_session"]
    r = env.api.post("/logout", follow_redirects=False)
    assert r.status_code == 303
    assert 'cardiogate_session=""' in r.headers["set-cookie"]
    other = TestClient(env.api.app, cookies={"cardiogate_session": session})
    assert other.get("/").status_code == 401
    assert other.get("/api/v1/jobs").status_code == 401


def test_the_bearer_token_opens_the_page_for_curl(env: Env) -> None:
    assert env.api.get("/", headers=BEARER).status_code == 200
    assert env.api.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_page_shows_results_states_models_health_and_the_review_count(env: Env) -> None:
    page = env.api.get("/", headers=BEARER).text
    calcium, stenosis, failed = env.jobs["calcium"], env.jobs["stenosis"], env.jobs["failed"]

    def row(job_id: int) -> str:
        start = page.index(f'<tr id="job-{job_id}"')
        return page[start : page.index("</tr>", start)]

    assert "Agatston 42.5 (classic 11-100, CAC-DRS A1/N1)" in row(calcium)
    assert "needs review: 1 lesion(s) with a peak below 150 HU" in row(calcium)
    assert ">CT<" in row(calcium)
    assert "max 75% DS, grade severe, CAD-RADS 4A" in row(stenosis)
    assert ">XA<" in row(stenosis)
    assert 'data-state="failed"' in row(failed)
    assert "no CT slices could be read" in row(failed)
    assert '<span id="review-count">1</span>' in page  # the low-HU calcium result
    assert '<a href="/api/v1/review">' in page
    assert '<span class="ok">Ready</span>' in page
    assert "<p>No model loaded.</p>" in page  # built without an engine
    assert "thumbnail.png" not in page  # no key image staged for these jobs

    failing = TestClient(create_api(env.store, FakeHealth(store_reachable=False), TOKEN))
    sick = failing.get("/", headers=BEARER).text
    assert '<span class="bad">Not ready</span>' in sick
    assert '<tr data-check="store_reachable"><td>store reachable</td><td><span class="bad">' in sick


def test_the_thumbnail_needs_auth_and_a_key_image(env: Env) -> None:
    path = f"/jobs/{env.jobs['calcium']}/thumbnail.png"
    assert env.api.get(path).status_code == 401
    missing = env.api.get(path, headers=BEARER)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "this job has no key image"


def test_with_auth_off_the_page_opens_and_offers_no_logout(env: Env) -> None:
    open_api = TestClient(create_api(env.store, FakeHealth()))
    page = open_api.get("/")
    assert page.status_code == 200
    assert "Log out" not in page.text
    assert _login(open_api, "anything").status_code == 303
