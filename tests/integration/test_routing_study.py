"""A whole study as a CT scanner's PACS forwards it, in over C-STORE: the calcium scan is
scored; its localizer, its dose report and a CTA are skipped with notes; a second
reconstruction of the calcium scan is ignored naming the scored one; and a CTA whose header
says nothing of contrast is recognised by its blood pool and not scored."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from peers import ServeProcess, send, start_serve, stop_serve
from tiny_model import write_threshold_model

pytestmark = pytest.mark.slow  # a serve process and six series: about 15 s

SMALL = {"n_slices": 12, "rows": 64, "columns": 64, "pixel_spacing_mm": 6.0}
HEART = {"n_slices": 16, "rows": 128, "columns": 128, "pixel_spacing_mm": 1.5}
XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"


def _new_series(datasets: list[Dataset], name: str, number: int) -> list[Dataset]:
    """Copies of ``datasets`` as another series of their study (UIDs derived from
    ``name``, so a re-run sends the same objects)."""
    series_uid = generate_uid(entropy_srcs=[datasets[0].SeriesInstanceUID, name])
    out = []
    for ds in copy.deepcopy(datasets):
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, number
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(ds.InstanceNumber)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out.append(ds)
    return out


def _localizer(calcium: list[Dataset]) -> list[Dataset]:
    scout = _new_series(calcium[:2], "localizer", 1)
    for ds in scout:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.SeriesDescription = "Topogram 0.6 T20s"
    return scout


def _dose_report(calcium: list[Dataset]) -> list[Dataset]:
    """A CT Radiation Dose SR (TID 10011) header in the calcium scan's study."""
    source = calcium[0]
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime"):
        setattr(ds, keyword, copy.deepcopy(source[keyword].value))
    ds.SOPClassUID, ds.Modality = XRAY_RADIATION_DOSE_SR, "SR"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[source.StudyInstanceUID, "dose"])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SeriesInstanceUID, "1"])
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 999, 1, "Dose Report"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "113701", "DCM"
    title.CodeMeaning = "X-Ray Radiation Dose Report"
    ds.ConceptNameCodeSequence = Sequence([title])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = XRAY_RADIATION_DOSE_SR
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return [ds]


def _unlabelled_cta() -> list[Dataset]:
    """A CTA of another study whose header does not say contrast."""
    datasets = make_ct_series(62, contrast=True, keep_phantom=False, **HEART).datasets
    for ds in datasets:
        del ds.ContrastBolusAgent, ds.ContrastBolusRoute, ds.ContrastBolusVolume
        ds.SeriesDescription, ds.ProtocolName = "Heart 3.0mm", "Cardiac"
    return datasets


def _job(server: ServeProcess, series_uid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{server.base_url}/api/v1/series/{series_uid}", headers=server.auth, timeout=5
        )
        job = r.json().get("job") if r.status_code == 200 else None
        if job and job["state"] in ("reported", "failed", "ignored"):
            return dict(job)
        time.sleep(0.2)
    pytest.fail(f"no finished job for series {series_uid}:\n{server.log()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    write_threshold_model(tmp_path / "models" / "calcium")
    running = start_serve(
        tmp_path / "data",
        env={"CARDIOGATE_MODELS_DIR": str(tmp_path / "models"), "CARDIOGATE_QUIET_SECONDS": "1"},
    )
    yield running
    assert stop_serve(running) == 0


def test_a_study_gets_one_calcium_result_and_a_note_for_everything_else(
    server: ServeProcess,
) -> None:
    calcium = make_ct_series(61, keep_phantom=False, **SMALL).datasets
    study = calcium[0].StudyInstanceUID
    thin = make_ct_series(61, keep_phantom=False, slice_thickness_mm=2.5, **SMALL).datasets
    thin = _new_series(thin, "2.5 mm", 4)
    cta = make_ct_series(
        61, contrast=True, keep_phantom=False, study_instance_uid=study, **SMALL
    ).datasets
    others = [_localizer(calcium), _dose_report(calcium), cta, _unlabelled_cta()]
    for series in [calcium, *others]:
        assert send(server.dicom_port, series) == [0] * len(series)

    scored = _job(server, calcium[0].SeriesInstanceUID)
    assert (scored["state"], scored["task"]) == ("reported", "calcium")
    notes = [_job(server, series[0].SeriesInstanceUID) for series in others]
    assert [(job["state"], job["reason"]) for job in notes[:3]] == [
        ("ignored", "localizer (ImageType LOCALIZER): not analysed"),
        ("ignored", "dose report (X-Ray Radiation Dose SR): not analysed"),
        ("ignored", "not scored: contrast-enhanced (ContrastBolusAgent is set)"),
    ]
    unlabelled = notes[3]
    assert (unlabelled["state"], unlabelled["task"]) == ("ignored", "calcium")  # by its pixels
    assert unlabelled["reason"].startswith("not scored: contrast-enhanced (blood pool median ")
    assert unlabelled["result"] is None

    # the 2.5 mm reconstruction completes after the 3 mm one was scored
    assert send(server.dicom_port, thin) == [0] * len(thin)
    late = _job(server, thin[0].SeriesInstanceUID)
    assert (late["state"], late["reason"]) == (
        "ignored",
        "another reconstruction of this study is scored: series 2, 3 mm",
    )
    assert _job(server, calcium[0].SeriesInstanceUID)["state"] == "reported"

    r = httpx.get(f"{server.base_url}/api/v1/studies/{study}", headers=server.auth, timeout=5)
    assert r.status_code == 200
    assert r.json()["series_count"] == 5  # calcium, 2.5 mm, localizer, dose report, CTA
