"""The results summary page: an RGB Secondary Capture whose pixels show each figure, and the
images and frames as the viewer numbers them."""

from __future__ import annotations

from math import ceil, floor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from cardiogate.reports import NOT_FOR_DIAGNOSTIC_USE
from cardiogate.reports.capture import font
from cardiogate.reports.summary_page import (
    AI_NOTICE,
    HEIGHT,
    LEFT_OUT,
    WIDTH,
    Line,
    Summary,
    number_ranges,
)
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.summary_page import calcium_page
from cardiogate.tasks.stenosis.segments import TERRITORY, VESSEL_NOT_NAMED, segment_of
from cardiogate.tasks.stenosis.summary_page import (
    MAX_LESION_ROWS,
    segment_cell,
    stenosis_page,
)
from peers import dciodvfy
from reporting_jobs import CalciumInputs, StenosisInputs


def _shown(picture: np.ndarray, line: Line) -> bool:
    """``picture`` shows ``line``: its box is pixel for pixel the text drawn on its ground."""
    blank = Image.new("RGB", (WIDTH, HEIGHT), line.ground)
    draw = ImageDraw.Draw(blank)
    face = font(line.size)
    draw.text(line.xy, line.text, fill=line.colour, font=face)
    left, top, right, bottom = draw.textbbox(line.xy, line.text, font=face)
    rows = slice(floor(top), ceil(bottom))
    columns = slice(floor(left), min(ceil(right), WIDTH))
    return np.array_equal(np.asarray(blank)[rows, columns], picture[rows, columns])


def _rows(summary: Summary) -> list[list[str]]:
    """The texts of the page, cells of one line together, top to bottom."""
    by_y: dict[float, list[str]] = {}
    for line in summary.lines:
        by_y.setdefault(line.xy[1], []).append(line.text)
    return [by_y[y] for y in sorted(by_y)]


def _in_volume_order(job: CalciumInputs) -> list[Dataset]:
    by_uid = {str(ds.SOPInstanceUID): ds for ds in job.sources}
    return [by_uid[uid] for uid in job.volume.sop_instance_uids]


@pytest.fixture(scope="module")
def calcium_summary(
    calcium_arteries: CalciumInputs, tmp_path_factory: pytest.TempPathFactory
) -> Dataset:
    """The summary page of a job with calcium in three arteries, written and read back."""
    job = calcium_arteries
    objects = build_calcium_objects(job.sources, job.result, job.volume, job.labels)
    [page] = [ds for ds in objects if ds.SeriesNumber == 9504]
    path = tmp_path_factory.mktemp("summary") / "summary.dcm"
    page.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


def test_the_summary_is_an_rgb_secondary_capture_in_its_own_series(
    calcium_summary: Dataset, calcium_arteries: CalciumInputs, tmp_path: Path
) -> None:
    ds = calcium_summary
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (HEIGHT, WIDTH, 3)
    assert (ds.PhotometricInterpretation, ds.BitsAllocated) == ("RGB", 8)
    assert ds.BurnedInAnnotation == "YES"
    assert "summary" in ds.SeriesDescription
    assert ds.SeriesDescription.endswith(NOT_FOR_DIAGNOSTIC_USE)
    assert NOT_FOR_DIAGNOSTIC_USE in ds.ImageComments
    source = calcium_arteries.sources[0]
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "AccessionNumber"):
        assert ds.get(keyword) == source.get(keyword), keyword
    # it names the slices with calcium
    with_calcium = {lesion.SOPInstanceUID for lesion in calcium_arteries.result.lesions}
    assert {ref.ReferencedSOPInstanceUID for ref in ds.SourceImageSequence} == with_calcium
    path = tmp_path / "summary.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert not [line for line in dciodvfy(path) if line.startswith(("Error", "Warning"))]


def test_the_calcium_page_shows_every_artery_total_volume_mass_and_category(
    calcium_summary: Dataset, calcium_arteries: CalciumInputs
) -> None:
    result = calcium_arteries.result
    assert result.mass_mg is not None
    summary = calcium_page(_in_volume_order(calcium_arteries), result)
    pixels = calcium_summary.pixel_array
    assert all(_shown(pixels, line) for line in summary.lines)
    assert np.array_equal(summary.picture, pixels)
    rows = _rows(summary)
    assert ["Artery", "Agatston", "Volume (mm3)", "Mass (mg)"] in rows
    for artery in (*ARTERIES, "total"):
        figures = [result.agatston[artery], result.volume_mm3[artery], result.mass_mg[artery]]
        label = "Total" if artery == "total" else artery
        assert [label, *(f"{value:.1f}" for value in figures)] in rows, artery
    category = result.category
    assert [
        f"Category (Agatston): {category['classic']}      CAC-DRS: {category['cac_drs']}"
    ] in rows
    assert category["cac_drs"].endswith("/N3")
    texts = [" ".join(row) for row in rows]
    assert texts[0] == AI_NOTICE
    assert texts[-1].startswith(AI_NOTICE)
    assert LEFT_OUT not in texts
    assert any(f"{result.model.name} {result.model.version}" in text for text in texts)
    assert any("trained on synthetic phantoms" in text for text in texts)
    assert any("Needs review" in text for text in texts) == result.needs_review


def test_the_calcium_page_names_slices_by_instance_number(calcium_arteries: CalciumInputs) -> None:
    job = calcium_arteries
    slices = _in_volume_order(job)
    # LAD on the lowest, second and fourth slices only; the CT numbers its slices top down
    lesions = [
        les for les in job.result.lesions if les.artery != "LAD" or les.slice_index in (0, 1, 3)
    ]
    summary = calcium_page(slices, job.result.model_copy(update={"lesions": lesions}))
    numbers = sorted(int(slices[i].InstanceNumber) for i in (0, 1, 3))
    assert numbers == [3, 5, 6]
    rows = _rows(summary)
    assert ["LAD", "images 3, 5-6"] in rows
    assert ["RCA", "images 1-6"] in rows
    assert not any(row[0] == "LM" and row[1].startswith("images") for row in rows)
    assert all(_shown(summary.picture, line) for line in summary.lines)


def test_the_page_of_no_calcium_says_agatston_0_and_that_mass_was_not_computed(
    calcium: CalciumInputs,
) -> None:
    result = calcium.result
    zero = {key: 0.0 for key in result.agatston}
    empty = result.model_copy(
        update={
            "lesions": [],
            "agatston": zero,
            "volume_mm3": zero,
            "category": {"classic": "0", "cac_drs": "A0"},
        }
    )
    summary = calcium_page(_in_volume_order(calcium), empty)
    rows = _rows(summary)
    assert ["No coronary calcium found: Agatston 0."] in rows
    assert ["Total", "0.0", "0.0"] in rows
    assert ["Mass: no calibration factor, not computed"] in rows
    assert summary.references == []
    assert "segmentation" not in " ".join(" ".join(row) for row in rows)


def test_the_stenosis_page_lists_each_lesion_with_its_viewer_frame(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["SUMMARY"])
    assert (ds.Rows, ds.Columns, ds.PhotometricInterpretation) == (HEIGHT, WIDTH, "RGB")
    assert ds.SeriesNumber == 9604
    assert "summary" in ds.SeriesDescription
    result = stenosis.result
    summary = stenosis_page(stenosis.sources, result, stenosis.cine)
    assert np.array_equal(summary.picture, ds.pixel_array)
    assert all(_shown(ds.pixel_array, line) for line in summary.lines)
    rows = _rows(summary)
    assert ["#", "% DS", "Grade", "CAD-RADS", "Frame", "Segment (SCCT)"] in rows
    [source] = stenosis.sources
    assert int(source.NumberOfFrames) > 1
    for number, lesion in enumerate(result.lesions, start=1):
        frame = f"frame {lesion.referenced_frame}"
        measured = "" if lesion.percent_method == "qca" else " *"  # * the network's estimate
        cells = [f"{lesion.percent_stenosis:.0f}%{measured}", lesion.grade, lesion.cad_rads, frame]
        assert [str(number), *cells, segment_cell(lesion)] in rows, number
    if any(lesion.percent_method != "qca" for lesion in result.lesions):
        assert any("* the model's estimate" in " ".join(row) for row in rows)
    assert any(row[0].startswith("Significant stenosis (50% or more): yes") for row in rows)
    frames = {
        (ref.ReferencedSOPInstanceUID, ref.ReferencedFrameNumber) for ref in ds.SourceImageSequence
    }
    assert frames == {(lesion.SOPInstanceUID, lesion.referenced_frame) for lesion in result.lesions}
    texts = " ".join(" ".join(row) for row in rows)
    assert "trained on synthetic angiograms" in texts
    assert f"{result.model['name']} {result.model['version']}" in texts


def test_a_page_with_more_lesions_than_fit_sends_the_reader_to_the_sr(
    stenosis: StenosisInputs,
) -> None:
    result = stenosis.result
    many = result.lesions * 4
    assert len(many) > MAX_LESION_ROWS
    crowded = result.model_copy(
        update={"lesions": many, "model": {**result.model, "name": "rule \u00e9"}}
    )
    summary = stenosis_page(stenosis.sources, crowded, stenosis.cine)
    rows = _rows(summary)
    hidden = len(many) - MAX_LESION_ROWS
    assert [f"and {hidden} more lesion(s): see the structured report"] in rows
    shown = [segment_cell(lesion) for lesion in many[:MAX_LESION_ROWS]]
    assert [row[-1] for row in rows if len(row) == 6][1:] == shown  # after the heading row
    assert any("rule ?" in " ".join(row) for row in rows)  # what the font cannot draw
    assert all(line.xy[1] < HEIGHT for line in summary.lines)


def test_image_numbers_are_written_as_runs() -> None:
    assert number_ranges([9, 3, 4, 5, 5]) == "3-5, 9"
    assert number_ranges([]) == ""


def test_the_stenosis_page_without_a_lesion(stenosis: StenosisInputs) -> None:
    none = stenosis.result.model_copy(
        update={"lesions": [], "most_severe": None, "significant": False, "probability": 0.04}
    )
    summary = stenosis_page(stenosis.sources, none, stenosis.cine)
    rows = _rows(summary)
    assert ["No stenosis found."] in rows
    assert any(row[0].startswith("Significant stenosis (50% or more): no") for row in rows)
    assert summary.references == []
    assert "key image" not in " ".join(" ".join(row) for row in rows)


def test_the_segment_column_names_the_segment_or_says_none_was_named(
    stenosis: StenosisInputs,
) -> None:
    lesion = stenosis.result.lesions[0]
    plain = lesion.model_copy(update={name: None for name in SEGMENT_FIELDS})
    mid_lad = plain.model_copy(update=segment_fields("LAD", 0.4))
    third_diagonal = plain.model_copy(update=segment_fields("D3", 0.5))
    result = stenosis.result.model_copy(update={"lesions": [mid_lad, third_diagonal, plain]})
    rows = _rows(stenosis_page(stenosis.sources, result, stenosis.cine))
    column = [row[-1] for row in rows if len(row) == 6]
    assert column == ["Segment (SCCT)", "mid LAD (7)", "third diagonal", VESSEL_NOT_NAMED]
    texts = " ".join(" ".join(row) for row in rows)
    assert "confirm on the image" in texts  # the segments' caveat, once some are named


SEGMENT_FIELDS = (
    "vessel",
    "artery",
    "vessel_probability",
    "position_along_vessel",
    "segment",
    "segment_short",
    "scct_segment",
    "segment_code",
    "segment_meaning",
)


def segment_fields(vessel: str, position: float) -> dict[str, object]:
    """A lesion's vessel fields as the analysis writes them, for ``vessel`` at ``position``."""
    segment = segment_of(vessel, position)
    return {
        "vessel": vessel,
        "artery": TERRITORY[vessel],
        "vessel_probability": 0.9,
        "position_along_vessel": position,
        "segment": segment.name,
        "segment_short": segment.short,
        "scct_segment": segment.scct,
        "segment_code": segment.code,
        "segment_meaning": segment.meaning,
    }
