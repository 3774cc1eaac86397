"""The status page in a real headless Chromium (Debian's ``chromium``), against a running
``cardiogate serve`` whose jobs came over C-STORE and were delivered to a Storage SCP: log in
with the token, then the page shows the jobs with their results and key images, the models,
health and the review count."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser
from pydicom.dataset import Dataset

from browser import chromium
from delivery_peers import calcium_ct, serve_delivering, stenosis_cine, wait_for_job
from peers import ServeProcess, send, start_scp, stop_serve

pytestmark = pytest.mark.slow


@dataclass
class Served:
    server: ServeProcess
    ct: list[Dataset]
    xa: list[Dataset]
    jobs: dict[str, dict[str, Any]]  # by task: the job's summary from /api/v1/jobs and result

    def api(self, path: str) -> Any:
        r = httpx.get(self.server.base_url + path, headers=self.server.auth, timeout=10)
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("page")
    pacs = start_scp(tmp_path / "pacs", ae_title="PACS")
    server = serve_delivering(tmp_path, "PACS", pacs.port)
    try:
        ct, xa = calcium_ct(), stenosis_cine()
        assert send(server.dicom_port, ct) == [0] * len(ct)
        assert send(server.dicom_port, xa) == [0] * len(xa)
        results = {}
        for source in (ct, xa):
            job = wait_for_job(server, source[0].SeriesInstanceUID, ("delivered", "failed"))
            assert job["state"] == "delivered", job["reason"]
            results[source[0].SeriesInstanceUID] = job["result"]
        served = Served(server, ct, xa, {})
        for item in served.api("/api/v1/jobs")["items"]:
            served.jobs[item["task"]] = {**item, "result": results[item["SeriesInstanceUID"]]}
        yield served
    finally:
        stop_serve(server)
        pacs.listener.stop(5)
        pacs.store.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium("--disable-gpu") as launched:
        yield launched


def test_chromium_logs_in_and_sees_jobs_models_health_review_and_key_images(
    served: Served, browser: Browser
) -> None:
    calcium, stenosis = served.jobs["calcium"], served.jobs["stenosis"]
    page = browser.new_page()
    try:
        page.goto(served.server.base_url + "/")
        assert page.locator("form[action='/login'] input#token").is_visible()
        assert page.locator("#jobs").count() == 0

        page.fill("#token", "not-the-token-0123456789")
        page.click("button[type=submit]")
        assert page.locator("[role=alert]").inner_text() == "Wrong token."
        assert page.locator("#jobs").count() == 0

        assert served.server.api_token is not None
        page.fill("#token", served.server.api_token)
        page.click("button[type=submit]")
        page.wait_for_selector("#jobs")
        assert "Research software, not for clinical use." in page.inner_text("body")

        agatston = calcium["result"]["agatston"]["total"]
        category = calcium["result"]["category"]
        row = page.locator(f"#job-{calcium['id']}")
        assert row.locator(".state").inner_text() == "delivered"
        assert (
            row.locator(".summary")
            .inner_text()
            .startswith(
                f"Agatston {agatston:.1f} (classic {category['classic']}, "
                f"CAC-DRS {category['cac_drs']})"
            )
        )
        # what a person matches in the PACS: study date, modality, series
        ct = served.ct[0]
        date = ct.StudyDate
        assert row.locator(".study-date").inner_text() == f"{date[:4]}-{date[4:6]}-{date[6:]}"
        assert row.locator(".series").inner_text() == f"{ct.SeriesNumber} {ct.SeriesDescription}"
        lesions = row.locator("ul.lesions li").all_inner_texts()
        found = len(calcium["result"]["lesions"])
        if found > 10:  # ten shown, the others counted
            assert lesions.pop() == f"and {found - 10} more"
        assert len(lesions) == min(found, 10)
        assert all(line.split(":")[0] in {"LM", "LAD", "LCX", "RCA"} for line in lesions)
        timeline = row.locator("details.timeline")
        assert not timeline.locator("ol").is_visible()  # folded until asked for
        timeline.locator("summary").click()
        events = timeline.locator("li").all_inner_texts()
        assert [e.split(" UTC ")[1].split(":")[0].split(" (")[0] for e in events][-3:] == [
            "started",
            "reported",
            "delivered",
        ]

        worst = stenosis["result"]["most_severe"]
        summary = page.locator(f"#job-{stenosis['id']} .summary").inner_text()
        where = f" in the {worst['segment']}" if worst.get("segment") else ""
        assert summary.startswith(
            f"max {worst['percent_stenosis']:.0f}% DS{where}, grade {worst['grade']}"
        )

        for job in (calcium, stenosis):
            image = page.locator(f"#job-{job['id']} img.thumb")
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
            assert 0 < image.evaluate("img => img.naturalWidth") <= 256

        for model in served.api("/api/v1/models"):
            cells = page.locator(f"#models tr[data-task='{model['task']}'] td").all_inner_texts()
            assert cells == [model["task"], model["name"], model["version"], model["provider"]]
        assert page.inner_text("#health .state") == "Ready"
        waiting = served.api("/api/v1/review")["total"]
        assert page.inner_text("#review-count") == str(waiting)

        text = page.content()
        for ds in (served.ct[0], served.xa[0]):
            for value in (str(ds.PatientName), str(ds.PatientID), str(ds.PatientBirthDate)):
                assert value not in text

        page.click("#review a")  # the session cookie reads the API
        assert f'"total":{waiting}' in page.inner_text("body")
    finally:
        page.close()


def test_thumbnail_is_a_small_png_of_the_delivered_key_image(served: Served) -> None:
    job = served.jobs["calcium"]
    url = f"{served.server.base_url}/jobs/{job['id']}/thumbnail.png"
    assert httpx.get(url, timeout=10).status_code == 401
    r = httpx.get(url, headers=served.server.auth, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.mode == "RGB"
    assert max(image.size) == 256  # the 512 px key image, scaled down
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 16  # a picture, not a blank
    assert (
        httpx.get(url.replace(f"/{job['id']}/", "/999/"), headers=served.server.auth).status_code
        == 404
    )
