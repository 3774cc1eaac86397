"""The results in the viewer a cardiologist already uses: OHIF Viewer 3.13 (npm's
``@ohif/app``, unpacked by ``make viewer``) in Debian's Chromium, against a real Orthanc with
its DICOMweb plugin. Orthanc sends the demo's calcium CT and angiogram to ``cardiogate serve``
(the shipped models) and gets the results back; then each study opens, each SR's values are
on screen, the SEG overlays the CT with our segment labels, the summary page and the key
images display, and the browser console has no errors from our objects.

A screenshot of each step goes to ``$CARDIOGATE_SCREENSHOTS`` (a temporary folder if unset),
for CI to keep; the Viewing results page and the README show some of them (docs/images)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from playwright.sync_api import Browser
from pydicom.dataset import Dataset

from browser import chromium
from cardiogate.tasks import Task, configure_tasks
from delivery_peers import wait_for_job
from ohif import (
    OhifServer,
    ShownNum,
    ViewerPage,
    coloured_pixels,
    is_picture,
    shown_nums,
    start_ohif,
)
from orthanc import OrthancPeer, dicomweb_config, orthanc_peer
from peers import REPO, ServeProcess, start_serve, stop_serve

pytestmark = pytest.mark.slow

IMAGING_MEASUREMENT_REPORT = "126000"  # DCM, TID 1500 root: OHIF draws it over the images
IMAGING_MEASUREMENTS, MEASUREMENT_GROUP, IMAGE_LIBRARY = "126010", "125007", "111028"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame kin, .7.1 to .7.4
# OHIF shows a NUM with 2 decimals; our objects may round to one
VALUE_TOLERANCE = 0.051


@dataclass
class Series:
    SeriesNumber: int
    Modality: str
    SeriesDescription: str
    SOPClassUID: str
    instance: Dataset  # the newest instance, as Orthanc holds it (what OHIF shows)


@dataclass
class Study:
    StudyInstanceUID: str
    series: list[Series]
    result: dict[str, Any]  # the job's result, from the API

    def of(self, modality: str) -> list[Series]:
        return [s for s in self.series if s.Modality == modality]

    def captures(self) -> list[Series]:
        return [s for s in self.series if s.SOPClassUID.startswith(SECONDARY_CAPTURE)]


@dataclass
class Stack:
    ohif: OhifServer
    ct: Study
    xa: Study
    shots: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("viewer")
    shots = Path(os.environ.get("CARDIOGATE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    orthanc = orthanc_peer(tmp_path / "orthanc", {})
    orthanc.extra_config = dicomweb_config()
    server = _serve(tmp_path, orthanc.dicom_port)
    ohif = None
    try:
        orthanc.modalities = {"cardiogate": ["CARDIOGATE", "127.0.0.1", server.dicom_port]}
        orthanc.start()
        tasks = configure_tasks()  # the demo's two studies
        ct = _demo_datasets(tasks["calcium"])
        xa = _demo_datasets(tasks["stenosis"])
        ct_ids, xa_ids = orthanc.upload(ct), orthanc.upload(xa)
        orthanc.store_to("cardiogate", [ct_ids["series"], xa_ids["series"]])
        jobs = [
            wait_for_job(server, s[0].SeriesInstanceUID, ("delivered", "failed"), timeout=120)
            for s in (ct, xa)
        ]
        assert [j["state"] for j in jobs] == ["delivered", "delivered"], jobs
        ohif = start_ohif(orthanc.url)
        yield Stack(
            ohif,
            _study(orthanc, ct_ids["study"], jobs[0]["result"]),
            _study(orthanc, xa_ids["study"], jobs[1]["result"]),
            shots,
        )
    finally:
        if ohif is not None:
            ohif.stop()
        stop_serve(server)
        orthanc.stop()


def _demo_datasets(task: Task) -> list[Dataset]:
    case = task.demo_case()
    assert case is not None, f"task {task.name} has no demo data"
    return case.datasets


def _serve(tmp_path: Path, orthanc_port: int) -> ServeProcess:
    """``cardiogate serve`` on the shipped models, delivering to Orthanc."""
    env = {
        "CARDIOGATE_MODELS_DIR": str(REPO / "models"),
        # long enough that a loaded machine cannot pause a C-STORE burst into two series
        # completions (a second report version would then be in the PACS too)
        "CARDIOGATE_QUIET_SECONDS": "5",
        "CARDIOGATE_LISTENER_PROCESSES": "1",
        "CARDIOGATE_DESTINATIONS": json.dumps(
            [{"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc_port}]
        ),
        "CARDIOGATE_DELIVERY_INITIAL_DELAY_SECONDS": "0.2",
        "CARDIOGATE_DELIVERY_POLL_SECONDS": "0.2",
    }
    return start_serve(tmp_path / "data", env=env)


def _study(orthanc: OrthancPeer, study_id: str, result: dict[str, Any]) -> Study:
    series = []
    for found in orthanc.get(f"/studies/{study_id}/series"):
        tags = found["MainDicomTags"]
        newest = found["Instances"][-1]
        instance = pydicom.dcmread(BytesIO(orthanc.get(f"/instances/{newest}/file")))
        series.append(
            Series(
                int(tags["SeriesNumber"]),
                tags["Modality"],
                tags.get("SeriesDescription", ""),
                str(instance.SOPClassUID),
                instance,
            )
        )
    numbers = [s.SeriesNumber for s in series]
    assert len(set(numbers)) == len(numbers), f"SeriesNumber repeats in the study: {numbers}"
    StudyInstanceUID = str(series[0].instance.StudyInstanceUID)
    return Study(StudyInstanceUID, sorted(series, key=lambda s: s.SeriesNumber), result)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:  # no --disable-gpu: OHIF's Cornerstone renders with WebGL
        yield launched


@pytest.fixture
def viewer(stack: Stack, browser: Browser) -> Iterator[ViewerPage]:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        yield ViewerPage(page, stack.ohif, stack.shots)
    finally:
        page.close()


def assert_clean(viewer: ViewerPage) -> None:
    """No console or page errors and no crash while our objects were shown, no DICOMweb
    request that Orthanc failed, nothing fetched from outside loopback."""
    assert not viewer.problems, "\n".join(viewer.problems)
    assert not viewer.outside, f"the viewer reached outside loopback: {viewer.outside}"
    failed = viewer.server.failed_requests(since=viewer.first_request)
    assert not failed, f"DICOMweb requests that failed: {failed}"


# -- SR ---------------------------------------------------------------------------------------


def sr_nums(sr: Dataset) -> list[ShownNum]:
    """Every NUM of the SR outside its image library: what the reader should see."""
    found: list[ShownNum] = []

    def walk(items: Any) -> None:
        for item in items:
            if _concept(item) == IMAGE_LIBRARY:
                continue
            if item.ValueType == "NUM" and item.get("MeasuredValueSequence"):
                meaning = item.ConceptNameCodeSequence[0].CodeMeaning
                value = item.MeasuredValueSequence[0]
                unit = value.MeasurementUnitsCodeSequence[0].CodeValue
                found.append(ShownNum(meaning, float(value.NumericValue), unit))
            walk(item.get("ContentSequence", []))

    walk(sr.ContentSequence)
    return found


def _concept(item: Dataset) -> str | None:
    """The concept name's code value; an IMAGE item SELECTED FROM may have none."""
    names = item.get("ConceptNameCodeSequence")
    return str(names[0].CodeValue) if names else None


def measurement_groups(sr: Dataset) -> int:
    return sum(
        1
        for item in sr.ContentSequence
        if _concept(item) == IMAGING_MEASUREMENTS
        for group in item.get("ContentSequence", [])
        if _concept(group) == MEASUREMENT_GROUP
    )


def shows(shown: list[ShownNum], label: str, value: float, unit: str | None = None) -> bool:
    return any(
        s.label == label
        and (unit is None or s.unit == unit)
        and abs(s.value - value) <= VALUE_TOLERANCE
        for s in shown
    )


def srs_on_screen(viewer: ViewerPage, study: Study, name: str) -> list[ShownNum]:
    """Open each SR of the study in the viewer; assert its NUMs are on screen; return all
    the labelled numbers shown."""
    srs = study.of("SR")
    assert srs, f"no SR series in study {study.StudyInstanceUID}"
    everything: list[ShownNum] = []
    for series in srs:
        sr = series.instance
        title = sr.ConceptNameCodeSequence[0]
        viewer.open_study(study.StudyInstanceUID, len(study.series))
        viewer.show(series.SeriesNumber)
        # the SR's labels drawn over its image, its text view, or OHIF's crash page
        viewer.page.wait_for_function(
            """title => document.querySelector("[data-cy=viewport-pane] svg text tspan")
                || document.querySelector("[data-cy=viewport-pane]")?.innerText.includes(title)
                || document.body.innerText.includes("Something went wrong")""",
            arg=f"1.\u00a0{title.CodeMeaning}",
        )
        viewer.shot(f"{name}-sr-{series.SeriesNumber}")
        where = f"SR series {series.SeriesNumber} ({series.SeriesDescription})"
        assert not viewer.crashed(), f"{where} crashed the viewer:\n" + "\n".join(viewer.problems)
        if title.CodeValue == IMAGING_MEASUREMENT_REPORT:
            wanted = sr_nums(sr)

            def enough(lines: set[str], wanted: list[ShownNum] = wanted) -> bool:
                shown = shown_nums(lines)
                return all(shows(shown, n.label, n.value, n.unit) for n in wanted)

            lines = viewer.step_measurements(measurement_groups(sr), enough)
        else:
            lines = viewer.viewport_text()
        shown = shown_nums(lines)
        missing = [n for n in sr_nums(sr) if not shows(shown, n.label, n.value, n.unit)]
        zero = " (OHIF draws a NUM of 0 over an image with no value)" * any(
            n.value == 0 for n in missing
        )
        assert not missing, f"{where}: not on screen{zero}: {missing}; shown: {sorted(lines)}"
        everything += shown
    return everything


def test_calcium_sr_values_appear_on_screen(stack: Stack, viewer: ViewerPage) -> None:
    shown = srs_on_screen(viewer, stack.ct, "calcium")
    agatston = [
        s for s in shown if any(w in s.label.lower() for w in ("calcium score", "agatston"))
    ]
    for artery, score in stack.ct.result["agatston"].items():
        if score > 0:  # an artery without calcium has no image to draw on
            assert any(abs(s.value - score) <= VALUE_TOLERANCE for s in agatston), (
                f"Agatston {artery} {score:.2f} not on screen; shown: {agatston}"
            )
    assert_clean(viewer)


def test_stenosis_sr_values_appear_on_screen(stack: Stack, viewer: ViewerPage) -> None:
    shown = srs_on_screen(viewer, stack.xa, "stenosis")
    lesions = stack.xa.result["lesions"]
    assert lesions, "the demo angiogram's stenosis was not found"
    for lesion in lesions:
        percent = lesion["percent_stenosis"]
        assert any(
            "stenosis" in s.label.lower() and abs(s.value - percent) <= VALUE_TOLERANCE
            for s in shown
        ), f"stenosis {percent:.1f}% (frame {lesion['frame']}) not on screen; shown: {shown}"
    assert_clean(viewer)


# -- SEG, summary page, key images ------------------------------------------------------------


def test_seg_overlays_the_ct_with_our_segment_labels(stack: Stack, viewer: ViewerPage) -> None:
    [seg] = stack.ct.of("SEG")
    labels = {str(s.SegmentLabel) for s in seg.instance.SegmentSequence}
    viewer.open_study(stack.ct.StudyInstanceUID, len(stack.ct.series))
    viewer.show(seg.SeriesNumber)
    viewer.page.get_by_role("button", name="Yes").click()  # "open this Segmentation?"
    viewer.page.locator("[data-cy=panelSegmentation-btn]").click()
    titles = viewer.page.locator("[data-cy=data-row-title]")
    titles.first.wait_for()
    overlay = viewer.wait_canvas(lambda image: coloured_pixels(image) > 20)
    viewer.shot("calcium-seg")
    assert set(titles.all_inner_texts()) == labels
    assert coloured_pixels(overlay) > 20, "no segment drawn over the CT"
    assert_clean(viewer)


def captures_display(viewer: ViewerPage, study: Study, name: str) -> None:
    """The summary page (a Secondary Capture whose description names it) and each key
    image render in the viewport."""
    captures = study.captures()
    viewer.open_study(study.StudyInstanceUID, len(study.series))
    viewer.shot(f"{name}-study")
    for series in captures:
        viewer.show(series.SeriesNumber)
        viewer.page.locator("[data-cy=viewport-overlay-top-left]").filter(
            has_text=series.SeriesDescription
        ).wait_for()
        image = viewer.wait_canvas(is_picture)
        viewer.shot(f"{name}-capture-{series.SeriesNumber}")
        assert is_picture(image), f"series {series.SeriesNumber} shows a blank viewport"
        assert not viewer.crashed(), "\n".join(viewer.problems)
    summaries = [s for s in captures if "summary" in s.SeriesDescription.lower()]
    names = [f"{s.SeriesNumber} {s.SeriesDescription}" for s in captures]
    assert len(summaries) == 1, f"one summary page expected among the captures: {names}"
    assert len(captures) > 1, f"no key image besides the summary page: {names}"
    assert_clean(viewer)


def test_calcium_summary_page_and_key_images_display(stack: Stack, viewer: ViewerPage) -> None:
    captures_display(viewer, stack.ct, "calcium")


def test_stenosis_summary_page_and_key_image_display(stack: Stack, viewer: ViewerPage) -> None:
    captures_display(viewer, stack.xa, "stenosis")
