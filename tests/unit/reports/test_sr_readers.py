"""Both SRs (and the calcium SEG) read by consumers other than highdicom: OHIF 3.x's SR
loader, as a Python transcription of what it reads; dicom3tools' ``dciodvfy``; dcmtk's
``dsrdump`` and ``dsr2xml`` with dcmtk's XML Schema (``xmllint``); and dcmqi (3D Slicer's
reader, from PyPI): ``tid1500reader`` and ``segimage2itkimage``."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.inference.engine import load_model
from cardiogate.reports.codes import ARTERY_SITES
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.stenosis.analysis import analyze_xa
from cardiogate.tasks.stenosis.objects import build_stenosis_objects
from peers import dciodvfy, dcmtk
from reporting_jobs import CalciumInputs, StenosisInputs, calcium_inputs, write_objects
from tiny_model import write_dark_spot_model
from xa_datasets import single_frame_xa

XML_NAMESPACE = {"dsr": "http://dicom.offis.de/dcmsr"}
SRS = ["calcium", "no calcium", "stenosis", "no stenosis", "single frames"]
DRAWN = {"POINT", "MULTIPOINT", "POLYLINE", "CIRCLE", "ELLIPSE"}  # OHIF's DICOMSRDisplayTool


def _tool(name: str, package: str) -> str:
    """An executable on PATH or in the virtual environment; skips without it, fails in CI
    (.ci/run installs it)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.prefix) / "bin"))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} ({package}) is not installed")
        pytest.skip(f"{name} ({package}) is not installed")
    return found


@pytest.fixture(scope="module")
def reports(
    calcium_arteries: CalciumInputs,
    stenosis: StenosisInputs,
    stenosis_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """The SRs of five jobs, and the calcium SEG: calcium in three arteries, no calcium, a
    multi-frame stenosis cine, single-frame cines without and with a lesion."""
    folder = tmp_path_factory.mktemp("readers")
    job = calcium_arteries
    calcium = write_objects(
        build_calcium_objects(job.sources, job.result, job.volume, job.labels), folder / "ca"
    )
    none = calcium_inputs(folder / "none-in", above_hu=5000.0)
    no_calcium = write_objects(
        build_calcium_objects(none.sources, none.result, none.volume, none.labels),
        folder / "none",
    )
    model = load_model(write_dark_spot_model(folder / "dark"), ["CPUExecutionProvider"])
    frames = np.full((6, 128, 128), 200, dtype=np.uint8)
    frames[:, 20:110, 64] = 120  # a vessel
    for name, spot in (("no stenosis", False), ("single frames", True)):
        if spot:
            frames[3:, 50:56, 70:76] = 30  # a dark spot from frame 4 on
        sources = single_frame_xa(frames)
        result = analyze_xa(sources, model)
        assert bool(result.lesions) == spot
        [sr] = build_stenosis_objects(sources, result, load_xa_cine(sources))[:1]
        sr.save_as(folder / f"{name}.dcm", enforce_file_format=True)
    return {
        "calcium": calcium["SR"],
        "seg": calcium["SEG"],
        "no calcium": no_calcium["SR"],
        "stenosis": stenosis_files["SR"],
        "no stenosis": folder / "no stenosis.dcm",
        "single frames": folder / "single frames.dcm",
    }


# --- OHIF -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """What OHIF draws for one measurement: where, and its labels."""

    tracking_identifier: str
    graphic_type: str
    sop_instance_uid: str
    frame: int
    labels: list[tuple[str, str]]


def _code(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> tuple[str, str, str]:
    code = item[keyword][0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue), str(code.CodeMeaning)


def ohif_measurements(ds: Dataset) -> list[Shown]:
    """What OHIF 3.13.2's SR loader takes from a report (``getSopClassHandlerModule`` of
    extensions/cornerstone-dicom-sr, as built in the ``@ohif/app`` 3.13.2 bundle:
    ``_getMeasurements``, ``_getMergedContentSequencesByTrackingUniqueIdentifiers``,
    ``_processTID1410Measurement``, ``_checkIfCanAddMeasurementsToDisplaySet``), asserting
    where it reads without a guard: the Tracking Unique Identifier of every group, and
    ``coords[0].ReferencedSOPSequence`` of every measurement."""
    assert _code(ds)[1] == "126000"  # otherwise not a measurement report
    parts = {_code(item)[1]: item for item in ds.ContentSequence}
    merged: dict[str, list[Dataset]] = {}
    for group in parts["126010"].ContentSequence if "126010" in parts else []:
        if _code(group)[1] != "125007":
            continue
        [uid] = [item.UID for item in group.ContentSequence if item.ValueType == "UIDREF"]
        merged.setdefault(str(uid), []).extend(group.ContentSequence)
    shown = []
    for items in merged.values():
        graphics = [item for item in items if item.ValueType in ("SCOORD", "SCOORD3D")]
        assert graphics, "a group without a SCOORD: OHIF reads coords[0] of nothing"
        graphic = graphics[0]  # the first gives the geometry
        assert graphic.ValueType == "SCOORD"
        assert graphic.GraphicType in DRAWN
        [reference] = graphic.ContentSequence[0].ReferencedSOPSequence
        [tracking] = [str(i.TextValue) for i in items if _code(i)[1] == "112039"]
        labels = []
        for item in items:
            if item.ValueType == "NUM" and "MeasuredValueSequence" in item:
                value = item.MeasuredValueSequence[0]
                unit = value.MeasurementUnitsCodeSequence[0].CodeValue
                labels.append((_code(item)[2], f"{float(value.NumericValue):.2f} {unit}"))
            if _code(item)[:2] == ("SCT", "363698007"):
                labels.append(("363698007", _code(item, "ConceptCodeSequence")[2]))
        shown.append(
            Shown(
                tracking,
                str(graphic.GraphicType),
                str(reference.ReferencedSOPInstanceUID),
                int(reference.get("ReferencedFrameNumber", 1)),
                labels,
            )
        )
    return shown


def test_ohif_draws_every_calcium_group_on_a_slice_with_its_values(
    reports: dict[str, Path], calcium_arteries: CalciumInputs
) -> None:
    job = calcium_arteries
    shown = ohif_measurements(pydicom.dcmread(reports["calcium"]))
    slices = set(job.volume.sop_instance_uids)
    assert all(m.sop_instance_uid in slices and m.frame == 1 for m in shown)
    by_name = {m.tracking_identifier: m for m in shown}
    for key in ("LAD", "LCX", "RCA", "total"):
        labels = by_name[f"Coronary calcium {key}"].labels
        assert ("Coronary artery calcium score", f"{job.result.agatston[key]:.2f} 1") in labels
        assert ("Calcium Volume", f"{job.result.volume_mm3[key]:.2f} mm3") in labels
        assert job.result.mass_mg is not None
        assert ("Calcium Mass", f"{job.result.mass_mg[key]:.2f} mg") in labels
    assert ("363698007", "Left Anterior Descending Coronary Artery") in by_name[
        "Coronary calcium LAD"
    ].labels
    lesions = [m for m in shown if m.tracking_identifier.startswith("Calcium lesion")]
    assert lesions
    assert {m.graphic_type for m in lesions} == {"POLYLINE"}


def test_ohif_draws_every_stenosis_on_its_frame(
    reports: dict[str, Path], stenosis: StenosisInputs
) -> None:
    shown = ohif_measurements(pydicom.dcmread(reports["stenosis"]))
    assert len(shown) == len(stenosis.result.lesions) + 1
    for m, lesion in zip(shown[1:], stenosis.result.lesions, strict=True):
        assert (m.sop_instance_uid, m.frame) == (lesion.SOPInstanceUID, lesion.referenced_frame)
        assert ("Lumen Diameter Stenosis", f"{lesion.percent_stenosis:.2f} %") in m.labels
    worst = stenosis.result.most_severe
    assert worst is not None
    assert shown[0].tracking_identifier == "Stenosis series summary"
    assert (shown[0].sop_instance_uid, shown[0].frame) == (
        worst.SOPInstanceUID,
        worst.referenced_frame,
    )


def test_ohif_draws_single_frame_instances_as_their_first_frame(reports: dict[str, Path]) -> None:
    shown = ohif_measurements(pydicom.dcmread(reports["single frames"]))
    assert len(shown) == 2  # the summary and the lesion, on the same instance
    assert {(m.sop_instance_uid, m.frame) for m in shown} == {(shown[0].sop_instance_uid, 1)}


@pytest.mark.parametrize("name", ["no calcium", "no stenosis"])
def test_ohif_loads_a_report_with_nothing_to_draw(reports: dict[str, Path], name: str) -> None:
    assert ohif_measurements(pydicom.dcmread(reports[name])) == []


# --- dicom3tools and dcmtk ---------------------------------------------------------------


@pytest.mark.parametrize("name", [*SRS, "seg"])
def test_dciodvfy_finds_no_error(reports: dict[str, Path], name: str) -> None:
    lines = dciodvfy(reports[name])
    assert not [line for line in lines if line.startswith("Error")], lines


@pytest.mark.parametrize("name", SRS)
def test_dsrdump_reads_the_tree_without_a_warning(reports: dict[str, Path], name: str) -> None:
    proc = subprocess.run(
        [dcmtk("dsrdump"), "-v", str(reports[name])],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith(("W:", "E:"))]


def _schema() -> Path:
    found = sorted(Path("/usr/share").glob("dcmtk*/dsr2xml.xsd"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("dcmtk's dsr2xml.xsd is not installed")
        pytest.skip("dcmtk's dsr2xml.xsd is not installed")
    return found[-1]


def _nums(root: ET.Element) -> Iterator[tuple[str, float]]:
    for num in root.iter(f"{{{XML_NAMESPACE['dsr']}}}num"):
        meaning = num.findtext("dsr:concept/dsr:meaning", namespaces=XML_NAMESPACE)
        value = num.findtext("dsr:value", namespaces=XML_NAMESPACE)
        if meaning and value:
            yield meaning, float(value)


@pytest.mark.parametrize("name", SRS)
def test_dsr2xml_output_is_valid_against_dcmtks_schema(
    reports: dict[str, Path], tmp_path: Path, name: str
) -> None:
    xml = tmp_path / "sr.xml"
    subprocess.run(
        [dcmtk("dsr2xml"), "+Xn", str(reports[name]), str(xml)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.run(
        [_tool("xmllint", "libxml2-utils"), "--noout", "--schema", str(_schema()), str(xml)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "validates" in proc.stderr


def test_dsr2xml_carries_the_values(
    reports: dict[str, Path], calcium_arteries: CalciumInputs, tmp_path: Path
) -> None:
    xml = tmp_path / "sr.xml"
    subprocess.run(
        [dcmtk("dsr2xml"), "+Xn", str(reports["calcium"]), str(xml)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    nums = list(_nums(ET.parse(xml).getroot()))
    total = calcium_arteries.result.agatston["total"]
    assert ("Coronary artery calcium score", pytest.approx(total)) in nums


# --- dcmqi --------------------------------------------------------------------------------


def _tid1500(path: Path, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "sr.json"
    proc = subprocess.run(
        [
            _tool("tid1500reader", "dcmqi"),
            "--inputDICOM",
            str(path),
            "--outputMetadata",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    read: dict[str, Any] = json.loads(out.read_text())
    return read


def _items(measurement: dict[str, Any]) -> dict[str, float]:
    return {i["quantity"]["CodeValue"]: float(i["value"]) for i in measurement["measurementItems"]}


def test_tid1500reader_reads_every_calcium_group(
    reports: dict[str, Path], calcium_arteries: CalciumInputs, tmp_path: Path
) -> None:
    job = calcium_arteries
    read = _tid1500(reports["calcium"], tmp_path)
    assert read["procedureReported"]["CodeValue"] == "25045-6"
    assert read["observerContext"]["ObserverType"] == "DEVICE"
    by_name = {m["TrackingIdentifier"]: m for m in read["Measurements"]}
    for key in ("LAD", "LCX", "RCA", "total"):
        measurement = by_name[f"Coronary calcium {key}"]
        assert measurement["Finding"]["CodeValue"] == "29483008"
        items = _items(measurement)
        assert items["450360000"] == pytest.approx(job.result.agatston[key])
        assert items["122660"] == pytest.approx(job.result.volume_mm3[key])
    parameters = by_name["Coronary calcium total"]["measurementAlgorithmIdentification"]
    assert "connectivity=8" in parameters["AlgorithmParameters"][0].split("; ")
    lesions = [m for name, m in by_name.items() if name.startswith("Calcium lesion")]
    sums = dict.fromkeys(ARTERIES, 0.0)
    for lesion in lesions:
        artery = lesion["TrackingIdentifier"].split()[3]
        assert lesion["FindingSite"]["CodeValue"] == ARTERY_SITES[artery].value
        sums[artery] += _items(lesion)["450360000"]
    for artery in ARTERIES:
        assert sums[artery] == pytest.approx(job.result.agatston[artery], abs=0.01)


def test_tid1500reader_reads_every_stenosis_group(
    reports: dict[str, Path], stenosis: StenosisInputs, tmp_path: Path
) -> None:
    read = _tid1500(reports["stenosis"], tmp_path)
    [summary, *lesions] = read["Measurements"]
    assert summary["TrackingIdentifier"] == "Stenosis series summary"
    flags = {
        e["conceptCode"]["CodeValue"]: e["conceptValue"]["CodeValue"]
        for e in summary["qualitativeEvaluations"]
    }
    assert flags["SIGSTEN"] == "373066001"  # Yes
    for read_lesion, lesion in zip(lesions, stenosis.result.lesions, strict=True):
        assert _items(read_lesion)["408715008"] == pytest.approx(lesion.percent_stenosis)
        assert read_lesion["Finding"]["CodeValue"] == "415582006"


@pytest.mark.parametrize("name", ["no calcium", "no stenosis"])
def test_tid1500reader_reads_a_report_without_groups(
    reports: dict[str, Path], tmp_path: Path, name: str
) -> None:
    assert _tid1500(reports[name], tmp_path)["Measurements"] == []


def _nrrd(path: Path) -> tuple[dict[str, str], np.ndarray[Any, Any]]:
    """A NRRD file's header fields and its voxels (x fastest), as ITK writes them."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    fields = dict(line.split(": ", 1) for line in head.decode().splitlines()[1:] if ": " in line)
    assert fields["type"] == "short"
    assert fields["endian"] == "little"
    data = gzip.decompress(body) if fields["encoding"] == "gzip" else body
    sizes = [int(n) for n in fields["sizes"].split()]
    return fields, np.frombuffer(data, dtype="<i2").reshape(sizes[::-1])


def test_segimage2itkimage_reads_each_artery_segment_into_a_volume(
    reports: dict[str, Path], calcium_arteries: CalciumInputs, tmp_path: Path
) -> None:
    job = calcium_arteries
    proc = subprocess.run(
        [
            _tool("segimage2itkimage", "dcmqi"),
            "--inputDICOM",
            str(reports["seg"]),
            "--outputDirectory",
            str(tmp_path),
            "--outputType",
            "nrrd",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((tmp_path / "meta.json").read_text())
    segments = {s["labelID"]: s for group in meta["segmentAttributes"] for s in group}
    seg = pydicom.dcmread(reports["seg"])
    assert len(segments) == len(seg.SegmentSequence) == 3  # LAD, LCX, RCA
    for number, segment in segments.items():
        artery = segment["SegmentLabel"].split()[0]
        fields, voxels = _nrrd(tmp_path / f"{number}.nrrd")
        slices, rows, columns = job.labels.shape
        assert voxels.shape[1:] == (rows, columns)
        assert voxels.shape[0] <= slices  # ITK's extent covers the SEG's frames
        spacing = job.volume.pixel_spacing_mm
        assert fields["space directions"].startswith(f"({spacing[1]:g},0,0) (0,{spacing[0]:g},0)")
        # every scored voxel of the artery, and no other, is in its segment's volume
        assert int((voxels > 0).sum()) == int((job.labels == ARTERIES.index(artery) + 1).sum())
