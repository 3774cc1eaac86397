"""Key images: RGB Secondary Captures with the findings burned in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from cardiogate.reports.calcium_seg import ARTERY_COLOURS
from cardiogate.reports.key_images import (
    MIN_SIDE_PX,
    SIGNIFICANT_COLOUR,
    enlarge,
    orientation_letters,
    windowed,
)
from reporting_jobs import CalciumInputs, StenosisInputs


def _is_secondary_capture_with_burned_in_findings(ds: pydicom.Dataset) -> None:
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.SamplesPerPixel == 3
    assert ds.BurnedInAnnotation == "YES"
    assert min(ds.Rows, ds.Columns) >= MIN_SIDE_PX
    assert "not for diagnostic use" in ds.ImageComments
    assert ds.ImageType[:2] == ["DERIVED", "SECONDARY"]


def test_stenosis_key_image_is_the_most_severe_lesion_frame(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["OT"])
    _is_secondary_capture_with_burned_in_findings(ds)
    worst = stenosis.result.most_severe
    assert worst is not None
    [source] = ds.SourceImageSequence
    assert source.ReferencedSOPInstanceUID == worst.SOPInstanceUID
    assert source.ReferencedFrameNumber == worst.referenced_frame
    # the lesion is drawn: its colour surrounds the lesion's (enlarged) position
    factor = ds.Rows // stenosis.cine.frames.shape[1]
    x, y = round((worst.x_px + 0.5) * factor), round((worst.y_px + 0.5) * factor)
    around = ds.pixel_array[y - 8 * factor : y + 8 * factor, x - 8 * factor : x + 8 * factor]
    assert np.all(around == SIGNIFICANT_COLOUR, axis=-1).any()


def test_calcium_key_image_is_the_slice_with_most_calcium_by_artery_colour(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(calcium_files["OT"])
    _is_secondary_capture_with_burned_in_findings(ds)
    counts = (calcium.labels > 0).sum(axis=(1, 2))
    slice_uid = calcium.volume.sop_instance_uids[int(np.argmax(counts))]
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == slice_uid
    assert "ReferencedFrameNumber" not in ds.SourceImageSequence[0]
    pixels = ds.pixel_array
    lad = np.all(pixels == ARTERY_COLOURS["LAD"], axis=-1)
    factor = ds.Rows // calcium.labels.shape[1]
    assert lad.sum() >= counts.max() * factor**2  # every scored pixel, plus the legend
    assert list(ds.PatientOrientation) == ["L", "P"]  # axial, as the synthetic CT


def test_window_maps_level_and_width_to_grey() -> None:
    hu = np.array([[-1000.0, -200.0, 200.0, 600.0, 3000.0]])
    grey = windowed(hu, 200.0, 800.0)
    assert grey.shape == (1, 5, 3)
    assert grey[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_small_images_are_enlarged_by_whole_factors() -> None:
    image = np.zeros((64, 100, 3), dtype=np.uint8)
    big, factor = enlarge(image)
    assert factor == 8
    assert big.shape == (512, 800, 3)
    assert enlarge(np.zeros((600, 600, 3), dtype=np.uint8))[1] == 1


@pytest.mark.parametrize(
    ("orientation", "letters"),
    [
        ([1, 0, 0, 0, 1, 0], ("L", "P")),  # axial
        ([0, 1, 0, 0, 0, -1], ("P", "F")),  # sagittal
        ([-0.9, 0.1, 0.0, 0.0, 0.2, -0.95], ("R", "F")),  # oblique: the dominant axis
    ],
)
def test_patient_orientation_letters(orientation: list[float], letters: tuple[str, str]) -> None:
    assert orientation_letters(np.array(orientation, dtype=float)) == letters
