"""The link from a finished job to its study in the reader's viewer: the setting that
makes it, and where the API and the status page show it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.config import Settings, load_settings
from cardiogate.errors import ConfigurationError
from cardiogate.store import Store
from store_jobs import STUDY, FakeHealth, Jobs

OHIF = "https://pacs.example/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}"
STUDY_IN_OHIF = f"https://pacs.example/ohif/viewer?StudyInstanceUIDs={STUDY}"
TOKEN = "a-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    try:
        yield store
    finally:
        store.dispose()


def _api(store: Store, tmp_path: Path, template: str | None) -> TestClient:
    settings = Settings(data_dir=tmp_path, viewer_url_template=template)
    return TestClient(create_api(store, FakeHealth(), TOKEN, settings=settings))


def test_the_template_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDIOGATE_VIEWER_URL_TEMPLATE", OHIF)
    assert load_settings().viewer_url_template == OHIF
    monkeypatch.setenv("CARDIOGATE_VIEWER_URL_TEMPLATE", "")
    assert load_settings().viewer_url_template is None
    monkeypatch.delenv("CARDIOGATE_VIEWER_URL_TEMPLATE")
    assert load_settings().viewer_url_template is None


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("https://pacs.example/ohif/viewer", "must contain {StudyInstanceUID}"),
        ("https://pacs.example/{StudyInstanceUID}/{SeriesInstanceUID}", "no braces but"),
        ("https://pacs.example/{StudyInstanceUID}/{0}", "no braces but"),
        ("https://pacs.example/{{StudyInstanceUID}}", "no braces but"),
        ("javascript:alert(1)//{StudyInstanceUID}", "http:// or https:// URL"),
        ("pacs.example/viewer?s={StudyInstanceUID}", "http:// or https:// URL"),
        ("https://pacs.example/a b?s={StudyInstanceUID}", "no spaces"),
    ],
)
def test_a_template_that_cannot_make_a_link_is_refused(
    monkeypatch: pytest.MonkeyPatch, template: str, why: str
) -> None:
    monkeypatch.setenv("CARDIOGATE_VIEWER_URL_TEMPLATE", template)
    with pytest.raises(ConfigurationError, match="CARDIOGATE_VIEWER_URL_TEMPLATE") as refused:
        load_settings()
    assert why in str(refused.value)


def test_the_api_links_jobs_with_results_to_their_study(store: Store, tmp_path: Path) -> None:
    jobs = Jobs(store)
    reported, delivered = jobs.reported(), jobs.reported("calcium")
    jobs.deliver(delivered)
    failed, queued, ignored = jobs.failed(), jobs.queued(), jobs.ignored()
    api = _api(store, tmp_path, OHIF)

    items = {j["id"]: j for j in api.get("/api/v1/jobs", headers=BEARER).json()["items"]}
    assert {i: j["viewer_url"] for i, j in items.items()} == {
        reported: STUDY_IN_OHIF,
        delivered: STUDY_IN_OHIF,
        failed: None,
        queued: None,
        ignored: None,
    }
    assert all(j["StudyInstanceUID"] == STUDY for j in items.values())
    detail = api.get(f"/api/v1/jobs/{delivered}", headers=BEARER).json()
    assert detail["viewer_url"] == STUDY_IN_OHIF
    assert api.get(f"/api/v1/jobs/{failed}", headers=BEARER).json()["viewer_url"] is None


def test_without_a_template_the_api_says_null(store: Store, tmp_path: Path) -> None:
    job_id = Jobs(store).reported()
    for api in (_api(store, tmp_path, None), TestClient(create_api(store, FakeHealth(), TOKEN))):
        assert api.get(f"/api/v1/jobs/{job_id}", headers=BEARER).json()["viewer_url"] is None
        [item] = api.get("/api/v1/jobs", headers=BEARER).json()["items"]
        assert item["viewer_url"] is None
    schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert "viewer_url" in schema["JobSummaryOut"]["properties"]


def _row(page: str, job_id: int) -> str:
    start = page.index(f'<tr id="job-{job_id}"')
    return page[start : page.index("</tr>", start)]


def test_the_status_page_links_each_finished_job_to_the_viewer(
    store: Store, tmp_path: Path
) -> None:
    jobs = Jobs(store)
    reported, failed = jobs.reported(), jobs.failed()
    page = _api(store, tmp_path, OHIF + "&mode=viewer").get("/", headers=BEARER).text
    assert "<th>Viewer</th>" in page
    link = (
        f'<a class="viewer" href="{STUDY_IN_OHIF}&amp;mode=viewer" target="_blank" '
        'rel="noopener noreferrer">open study</a>'
    )
    assert link in _row(page, reported)
    assert 'class="viewer"' not in _row(page, failed)


def test_without_a_template_the_status_page_has_no_viewer_column(
    store: Store, tmp_path: Path
) -> None:
    job_id = Jobs(store).reported()
    page = _api(store, tmp_path, None).get("/", headers=BEARER).text
    assert "<th>Viewer</th>" not in page
    assert 'class="viewer"' not in _row(page, job_id)
