"""The status page over a real SQLite store: the login form, the session cookie and its
limits, logout, and what the page says about jobs, models, health and the review queue."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset

from cardiogate.api import create_api
from cardiogate.config import Settings, load_settings
from cardiogate.store import InstanceRecord, Store
from cardiogate.store.jobs import JobQueue
from store_jobs import review_reason

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
    "lesions": [
        {"percent_stenosis": 74.6, "grade": "severe", "cad_rads": "4A", "frame": 12},
        {
            "percent_stenosis": 55.0,
            "grade": "moderate",
            "cad_rads": "3",
            "frame": 14,
            "segment": "mid LAD",
            "scct_segment": 7,
        },
    ],
    "most_severe": {
        "percent_stenosis": 74.6,
        "grade": "severe",
        "cad_rads": "4A",
        "segment": "first obtuse marginal",
        "scct_segment": 12,
    },
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
    assert "max 75% DS in the first obtuse marginal, grade severe, CAD-RADS 4A" in row(stenosis)
    assert "mid LAD (segment 7), frame 14: 55% DS, grade moderate" in row(stenosis)
    assert "vessel not named, frame 12: 75% DS, grade severe" in row(stenosis)
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


# -- what a job line says: study date, series, lesions, timeline, and the patient on demand

PATIENT_NAME, PATIENT_ID = "Müller^Jürgen", "PID-4711"
OHIF = "https://pacs.example/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}"


@dataclass
class Spooled:
    store: Store
    settings: Settings
    reported: int
    ignored: int
    ct: Dataset


def _spool(store: Store, settings: Settings, ds: Dataset) -> None:
    """Record ``ds`` as received and write it where the spool keeps it."""
    path = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    (settings.spool_dir / path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(settings.spool_dir / path, enforce_file_format=True)
    fields: dict[str, Any] = dict.fromkeys(InstanceRecord.__dataclass_fields__)
    fields.update(
        {k: ds.get(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")},
        SOPClassUID=ds.SOPClassUID,
        TransferSyntaxUID=ds.file_meta.TransferSyntaxUID,
        Modality=ds.Modality,
        SeriesNumber=int(ds.SeriesNumber),
        SeriesDescription=ds.SeriesDescription,
        InstanceNumber=int(ds.InstanceNumber),
        NumberOfFrames=1,
        path=path,
        size_bytes=1,
    )
    store.record_instance(InstanceRecord(**fields))


def _spooled(tmp_path: Path, show_patient: bool) -> Spooled:
    settings = Settings(
        data_dir=tmp_path, viewer_url_template=OHIF, status_page_show_patient=show_patient
    )
    store = Store(settings.effective_database_url)
    store.create_schema()
    ct = make_ct_series(8, n_slices=2, rows=16, columns=16, keep_phantom=False).datasets
    for ds in ct:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
        _spool(store, settings, ds)
    scout = make_ct_series(
        9, n_slices=1, rows=16, columns=16, keep_phantom=False, study_instance_uid=STUDY
    ).datasets[0]
    scout.SeriesNumber, scout.SeriesDescription = 1, "Topogram"
    _spool(store, settings, scout)
    queue = JobQueue(store)
    queue.enqueue(ct[0].SeriesInstanceUID, ct[0].StudyInstanceUID, "calcium")
    job = queue.claim()
    assert job is not None
    result = {
        **CALCIUM,
        "lesions": [
            {"artery": "RCA", "peak_hu": 180.0, "agatston": 3.2},
            {"artery": "LAD", "peak_hu": 420.0, "agatston": 39.26},
        ],
    }
    assert queue.finish(job.id, json.dumps(result), "calcium-model", "1.0.0", "CPU")
    queue.ignore(scout.SeriesInstanceUID, STUDY, "localizer (ImageType LOCALIZER): not analysed")
    ignored = queue.for_series(scout.SeriesInstanceUID)
    assert ignored is not None
    return Spooled(store, settings, job.id, ignored.id, ct[0])


def _page(spooled: Spooled) -> str:
    api = TestClient(create_api(spooled.store, FakeHealth(), TOKEN, settings=spooled.settings))
    return str(api.get("/", headers=BEARER).text)


def _row_of(page: str, job_id: int) -> str:
    start = page.index(f'<tr id="job-{job_id}"')
    return page[start : page.index("</tr>", start)]


def test_a_job_line_says_when_what_and_what_was_found(tmp_path: Path) -> None:
    spooled = _spooled(tmp_path, show_patient=False)
    try:
        page = _page(spooled)
    finally:
        spooled.store.dispose()
    row = _row_of(page, spooled.reported)
    date = spooled.ct.StudyDate
    assert f'<td class="study-date">{date[:4]}-{date[4:6]}-{date[6:]}</td>' in row
    series = f'<span class="muted">{spooled.ct.SeriesNumber}</span> {spooled.ct.SeriesDescription}'
    assert f'<td class="series">{series}</td>' in row
    assert ">CT<" in row
    assert "Agatston 42.5 (classic 11-100, CAC-DRS A1/N1)" in row
    lesions = row[row.index('<ul class="lesions">') : row.index("</ul>")]
    assert lesions.index("LAD: Agatston 39.3, peak 420 HU") < lesions.index(
        "RCA: Agatston 3.2, peak 180 HU"
    )  # the highest score first
    assert "timeline, 3 events" in row
    for event in ("queued", "started (attempt 1)", "reported: calcium-model 1.0.0 on CPU"):
        assert f" {event}</li>" in row
    assert 'class="viewer"' in row
    assert "<th>Patient</th>" not in page
    assert "Jürgen" not in page  # off unless the setting says so
    assert PATIENT_ID not in page


def test_series_not_analysed_have_a_section_with_the_reason(tmp_path: Path) -> None:
    spooled = _spooled(tmp_path, show_patient=False)
    try:
        page = _page(spooled)
    finally:
        spooled.store.dispose()
    ignored = page[page.index('<section id="ignored">') :]
    row = _row_of(ignored, spooled.ignored)
    assert '<td class="reason">localizer (ImageType LOCALIZER): not analysed</td>' in row
    assert '<td class="series"><span class="muted">1</span> Topogram</td>' in row
    assert "the latest 1 of 1" in ignored
    jobs = page[page.index('<section id="jobs">') : page.index('<section id="ignored">')]
    assert f'id="job-{spooled.ignored}"' not in jobs  # not among the analysed jobs


def test_the_patient_shows_on_the_page_only_when_the_setting_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spooled = _spooled(tmp_path, show_patient=True)
    api = TestClient(create_api(spooled.store, FakeHealth(), TOKEN, settings=spooled.settings))
    try:
        page = api.get("/", headers=BEARER).text
        answers = [
            api.get(path, headers=BEARER).text
            for path in (
                "/api/v1/jobs",
                f"/api/v1/jobs/{spooled.reported}",
                f"/api/v1/studies/{spooled.ct.StudyInstanceUID}",
                f"/api/v1/series/{spooled.ct.SeriesInstanceUID}",
                "/metrics",
            )
        ]
    finally:
        spooled.store.dispose()
    assert "<th>Patient</th>" in page
    cell = '<td class="patient">Müller^Jürgen<br><span class="muted">PID-4711</span></td>'
    assert cell in _row_of(page, spooled.reported)
    for text in [*answers, caplog.text]:
        assert "rgen" not in text  # Jürgen, however encoded
        assert PATIENT_ID not in text


def test_a_study_in_the_api_gives_each_series_its_job_and_reason(tmp_path: Path) -> None:
    spooled = _spooled(tmp_path, show_patient=False)
    api = TestClient(create_api(spooled.store, FakeHealth(), TOKEN, settings=spooled.settings))
    try:
        study = api.get(f"/api/v1/studies/{STUDY}", headers=BEARER).json()
        series = api.get(
            f"/api/v1/series/{study['series'][0]['SeriesInstanceUID']}", headers=BEARER
        )
    finally:
        spooled.store.dispose()
    [scout] = study["series"]  # the reported CT is of the phantom's own study
    assert scout["job"] == {
        "id": spooled.ignored,
        "task": None,
        "state": "ignored",
        "reason": "localizer (ImageType LOCALIZER): not analysed",
    }
    job = series.json()["job"]  # the series route had it already, in full
    assert (job["state"], job["reason"]) == ("ignored", scout["job"]["reason"])


def test_the_patient_setting_comes_from_the_environment_and_is_off_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().status_page_show_patient is False
    monkeypatch.setenv("CARDIOGATE_STATUS_PAGE_SHOW_PATIENT", "true")
    assert load_settings().status_page_show_patient is True
    assert "PatientName" in (Settings.model_fields["status_page_show_patient"].description or "")
