"""A task shipped as its own wheel: ``cardiogate-ctqc`` (``tests/plugins/ctqc``, installed by
``make venv``), an image-quality check of CT angiography, found through the
``cardiogate.tasks`` entry point and run by an unchanged cardiogate: routing, its settings,
its ONNX model, its SR, and end to end through ``cardiogate serve`` to a real Storage SCP
with the API, the status page, the review queue and the metrics."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from cardiogate_ctqc import MODEL_FOLDER, CTQualityTask
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset

from cardiogate.analyses.ct_volume import load_ct_series
from cardiogate.errors import ConfigurationError
from cardiogate.inference.engine import load_model
from cardiogate.pipeline.router import route
from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import ENTRY_POINT_GROUP, configure_tasks, task_classes
from delivery_peers import calcium_ct, outbox_rows, serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, dciodvfy, send, stop_serve
from tiny_model import write_threshold_model

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
LOADED = {"calcium", "stenosis", "ctqc"}
CTA = SeriesAttributes(
    SeriesInstanceUID="1.2.3",
    StudyInstanceUID="1.2",
    Modality="CT",
    SOPClassUID=CT_IMAGE_STORAGE,
    SeriesDescription="Thorax 1.0",
    ProtocolName="Chest",
    BodyPartExamined="HEART",
    ImageType="ORIGINAL\\PRIMARY\\AXIAL",
    ContrastBolusAgent="Iomeprol 400",
    SliceThickness="0.75",
    instance_count=200,
)
CALCIUM_CT = replace(
    CTA,
    SeriesDescription="Calcium Score 3.0",
    ProtocolName="CaScore",
    ContrastBolusAgent=None,
    SliceThickness="3",
    instance_count=64,
)


def _cta(seed: int, noise_hu: float, size: int = 64) -> list[Dataset]:
    """A synthetic contrast-enhanced CT (ContrastBolusAgent set) of known noise."""
    return make_ct_series(
        seed,
        n_slices=8,
        rows=size,
        columns=size,
        pixel_spacing_mm=384.0 / size,
        contrast=True,
        noise_sigma_hu=noise_hu,
        keep_phantom=False,
    ).datasets


def _items(ds: Dataset) -> Iterator[Dataset]:
    """Every content item of an SR, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def _named(ds: Dataset, value_type: str, code: str) -> list[Dataset]:
    return [
        item
        for item in _items(ds)
        if item.ValueType == value_type and item.ConceptNameCodeSequence[0].CodeValue == code
    ]


def _samples(exposition: str) -> Iterator[tuple[str, dict[str, str], str]]:
    """(name, labels, value) of each sample of a Prometheus text exposition."""
    for match in re.finditer(r"^(\w+)\{(.*)\} (\S+)$", exposition, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        yield match.group(1), labels, match.group(3)


def _errors(path: Path) -> list[str]:
    return [line for line in dciodvfy(path) if line.startswith("Error")]


def test_the_wheel_declares_its_task_and_cardiogate_finds_it() -> None:
    points = [p for p in distribution("cardiogate-ctqc").entry_points]
    assert [(p.group, p.name, p.value) for p in points] == [
        (ENTRY_POINT_GROUP, "ctqc", "cardiogate_ctqc:CTQualityTask")
    ]
    assert CTQualityTask in task_classes()
    assert {"calcium", "stenosis", "ctqc"} <= {cls.name for cls in task_classes()}


def test_a_cta_goes_to_the_plug_in_and_a_calcium_scan_still_to_calcium() -> None:
    tasks = configure_tasks()
    by_agent = route(CTA, tasks, LOADED)
    assert by_agent.task == "ctqc"
    assert "ContrastBolusAgent is set" in by_agent.reason
    by_name = route(
        replace(CTA, ContrastBolusAgent=None, SeriesDescription="CTA Coronary 0.6"), tasks, LOADED
    )
    assert (by_name.task, by_name.reason) == (
        "ctqc",
        "contrast-enhanced axial CT (SeriesDescription matches '\\bcta\\b')",
    )
    assert route(CALCIUM_CT, tasks, LOADED).task == "calcium"
    # a non-contrast CT is not the plug-in's kind: it leaves the reasons to calcium
    assert tasks["ctqc"].route(replace(CALCIUM_CT, SliceThickness="0.5")) is None


def test_its_settings_and_rules_come_from_cardiogates_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARDIOGATE_CTQC_MAX_NOISE_HU", "12.5")
    tasks = configure_tasks(routing={"ctqc_min_instances": 20})
    assert tasks["ctqc"].settings.model_dump() == {"max_noise_hu": 12.5}
    refused = tasks["ctqc"].route(replace(CTA, instance_count=10))
    assert refused is not None
    assert refused.task is None
    assert "needs at least 20" in refused.reason
    monkeypatch.setenv("CARDIOGATE_CTQC_MAX_NOISE_HU", "-1")
    with pytest.raises(ConfigurationError, match="task ctqc: CARDIOGATE_CTQC_MAX_NOISE_HU"):
        configure_tasks()


@pytest.mark.parametrize("noise_hu", [10.0, 30.0])
def test_the_model_measures_the_noise_the_phantom_was_made_with(noise_hu: float) -> None:
    model = load_model(MODEL_FOLDER)  # checks the card and the model's sha256
    volume = load_ct_series(_cta(5, noise_hu, size=256))
    (measured,) = model.run({"image": volume.hu[:, None].astype(np.float32)})
    assert measured.shape == (len(volume.hu),)
    # an independent computation of what the graph computes
    region = volume.hu[:, 64:192, 64:192].astype(np.float64)
    differences = (region[:, :, 1:] - region[:, :, :-1]).reshape(len(region), -1)
    k = differences.shape[1] // 2  # the graph's lower median: the (n // 2 + 1)-th largest
    centre = -np.sort(-differences, axis=1)[:, k : k + 1]
    mad = -np.sort(-np.abs(differences - centre), axis=1)[:, k]
    np.testing.assert_allclose(measured, mad * 1.4826 / np.sqrt(2), rtol=1e-4)
    # the phantom's noise, within what its anatomy and integer HU add
    assert float(np.median(measured)) == pytest.approx(noise_hu, rel=0.1)


def test_its_sr_is_a_valid_tid_1500_report_of_the_noise(tmp_path: Path) -> None:
    paths = []
    for i, ds in enumerate(_cta(6, 20.0)):
        paths.append(tmp_path / f"{i}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    task = configure_tasks({"ctqc": {"max_noise_hu": 100}})["ctqc"]
    analysed = task.analyse(paths, load_model(MODEL_FOLDER), {})
    result = analysed.result.model_dump(mode="json")
    assert (result["task"], result["verdict"], result["needs_review"]) == (
        "ctqc",
        "acceptable",
        False,
    )
    assert result["noise_hu"] == pytest.approx(np.median(result["slice_noise_hu"]), abs=0.01)
    assert (
        task.summary(result)
        == f"image noise {result['noise_hu']:.1f} HU: acceptable (limit 100 HU)"
    )

    warnings: list[str] = []
    (sr,) = analysed.objects(version_index=0, predecessor=None, warnings=warnings)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    assert _errors(tmp_path / "sr.dcm") == []
    back = pydicom.dcmread(tmp_path / "sr.dcm")
    assert (back.SeriesNumber, back.Modality) == (9701, "SR")
    assert back.SeriesDescription.startswith("CT image quality SR")
    (noise,) = _named(back, "NUM", "112031")  # Attenuation Coefficient
    value = noise.MeasuredValueSequence[0]
    assert float(value.NumericValue) == pytest.approx(result["noise_hu"], abs=0.01)
    assert value.MeasurementUnitsCodeSequence[0].CodeValue == "[hnsf'U]"
    (derivation,) = _named(noise, "CODE", "121401")  # Derivation
    assert derivation.ConceptCodeSequence[0].CodeValue == "386136009"  # Standard Deviation
    (quality,) = _named(back, "CODE", "111101")
    assert quality.ConceptCodeSequence[0].CodeValue == "122741"  # Good image quality
    (region,) = [i for i in _items(back) if i.ValueType == "SCOORD"]
    assert region.GraphicType == "POLYLINE"
    corners = np.asarray(region.GraphicData, dtype=float).reshape(-1, 2)
    np.testing.assert_allclose(corners, [[16, 16], [48, 16], [48, 48], [16, 48], [16, 16]])
    middle = load_ct_series(paths).sop_instance_uids[4]
    (drawn_on,) = region.ContentSequence[0].ReferencedSOPSequence
    assert drawn_on.ReferencedSOPInstanceUID == middle


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    """``cardiogate serve`` with the plug-in's model folder, as shipped in its wheel, and a
    fixed-rule calcium model; a CTA noisier than 10 HU needs review."""
    shutil.copytree(MODEL_FOLDER, tmp_path / "models" / "ctqc")
    write_threshold_model(tmp_path / "models" / "calcium")
    running = serve_delivering(tmp_path, "PACS", pacs.port, CARDIOGATE_CTQC_MAX_NOISE_HU="10")
    yield running
    assert stop_serve(running) == 0


def _get(server: ServeProcess, path: str, **params: Any) -> httpx.Response:
    r = httpx.get(server.base_url + path, headers=server.auth, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.slow
def test_a_cta_sent_to_the_service_is_checked_and_its_sr_delivered(
    server: ServeProcess, pacs: RunningSCP
) -> None:
    cta, calcium = _cta(7, 30.0), calcium_ct(seed=51)
    assert send(server.dicom_port, cta + calcium) == [0] * (len(cta) + len(calcium))
    job = wait_for_job(server, cta[0].SeriesInstanceUID, ("delivered", "failed"))
    assert (job["state"], job["task"]) == ("delivered", "ctqc"), job["reason"]
    other = wait_for_job(server, calcium[0].SeriesInstanceUID, ("delivered", "failed"))
    assert (other["state"], other["task"]) == ("delivered", "calcium"), other["reason"]

    (listed,) = _get(server, "/api/v1/jobs", task="ctqc").json()["items"]
    assert (listed["id"], listed["state"]) == (job["id"], "delivered")
    detail = _get(server, f"/api/v1/jobs/{job['id']}").json()
    result = detail["result"]
    assert (result["verdict"], result["needs_review"]) == ("noisy", True)
    assert result["noise_hu"] > 10
    assert result["model"] == {"name": "cardiogate-ctqc-noise", "version": "1.0.0"}

    (row,) = [r for r in outbox_rows(server) if r["job_id"] == job["id"]]
    assert row["state"] == "sent"
    stored = pacs.store.get_instance(row["sop_instance_uid"])
    assert stored is not None
    path = pacs.spool.absolute(stored.path)
    assert _errors(path) == []
    sr = pydicom.dcmread(path)
    assert (sr.StudyInstanceUID, sr.SeriesNumber) == (cta[0].StudyInstanceUID, 9701)
    (noise,) = _named(sr, "NUM", "112031")
    assert float(noise.MeasuredValueSequence[0].NumericValue) == pytest.approx(
        result["noise_hu"], abs=0.01
    )

    page = _get(server, "/").text
    assert f"image noise {result['noise_hu']:.1f} HU: noisy (limit 10 HU)" in page

    review = _get(server, "/api/v1/review").json()["items"]
    (item,) = [i for i in review if i["job_id"] == job["id"]]
    assert item["task"] == "ctqc"
    assert item["reason"].startswith("image noise")
    assert item["summary"] == {
        "noise_hu": result["noise_hu"],
        "max_noise_hu": 10.0,
        "verdict": "noisy",
    }

    metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
    counted = {
        (labels["task"], labels["outcome"]): float(value)
        for name, labels, value in _samples(metrics)
        if name == "cardiogate_jobs_total"
    }
    assert counted[("ctqc", "queued")] == 1.0
    assert counted[("ctqc", "reported")] == 1.0
