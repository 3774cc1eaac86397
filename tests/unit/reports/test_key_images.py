"""Key images: RGB Secondary Captures with the findings burned in, naming slices and frames
as the viewer numbers them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset
from scipy import ndimage

from cardiogate.reports import NOT_FOR_DIAGNOSTIC_USE
from cardiogate.reports.capture import Colour, font, frame_label, image_label, text_box, windowed
from cardiogate.reports.key_images import (
    MIN_SIDE_PX,
    enlarge,
    header_top,
    label_size,
    orientation_letters,
)
from cardiogate.tasks.calcium.key_images import key_slices
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.seg import ARTERY_COLOURS
from cardiogate.tasks.stenosis.key_images import SIGNIFICANT_COLOUR
from reporting_jobs import CalciumInputs, StenosisInputs


def _is_secondary_capture_with_burned_in_findings(ds: pydicom.Dataset) -> None:
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.SamplesPerPixel == 3
    assert ds.BurnedInAnnotation == "YES"
    assert min(ds.Rows, ds.Columns) >= MIN_SIDE_PX
    assert "not for diagnostic use" in ds.ImageComments
    assert ds.ImageType[:2] == ["DERIVED", "SECONDARY"]


def _shows(pixels: np.ndarray, texts: Sequence[tuple[str, Colour]], xy: tuple[int, int]) -> bool:
    """The pixels hold ``texts`` in label boxes side by side from ``xy``, exactly as drawn
    on a blank picture of their size."""
    blank = Image.new("RGB", (pixels.shape[1], pixels.shape[0]))
    draw = ImageDraw.Draw(blank)
    face = font(label_size(pixels.shape[0]))
    x, y = xy
    for text, colour in texts:
        left, top, right, bottom = text_box(draw, (x, y), text, face, colour)
        expected = np.asarray(blank)[top : bottom + 1, left : right + 1]
        if not np.array_equal(pixels[top : bottom + 1, left : right + 1], expected):
            return False
        x = right + 8
    return True


def _by_uid(sources: Sequence[Dataset]) -> dict[str, Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in sources}


def test_stenosis_key_image_is_the_most_severe_lesion_frame(
    stenosis: StenosisInputs, stenosis_files: dict[str, Path]
) -> None:
    ds = pydicom.dcmread(stenosis_files["KEY"])
    _is_secondary_capture_with_burned_in_findings(ds)
    worst = stenosis.result.most_severe
    assert worst is not None
    [source] = ds.SourceImageSequence
    assert source.ReferencedSOPInstanceUID == worst.SOPInstanceUID
    assert source.ReferencedFrameNumber == worst.referenced_frame
    # the viewer's frame number (1-based within the multi-frame instance) in the corner
    header = f"Frame {worst.referenced_frame} - {NOT_FOR_DIAGNOSTIC_USE}"
    assert _shows(ds.pixel_array, [(header, (255, 255, 255))], (8, header_top(ds.Rows)))
    assert not _shows(
        ds.pixel_array,
        [(f"Frame {worst.referenced_frame + 1} -", (255,) * 3)],
        (8, header_top(ds.Rows)),
    )
    # the lesion is drawn: its colour surrounds the lesion's (enlarged) position
    factor = ds.Rows // stenosis.cine.frames.shape[1]
    x, y = round((worst.x_px + 0.5) * factor), round((worst.y_px + 0.5) * factor)
    around = ds.pixel_array[y - 8 * factor : y + 8 * factor, x - 8 * factor : x + 8 * factor]
    assert np.all(around == SIGNIFICANT_COLOUR, axis=-1).any()


@pytest.fixture(scope="module")
def artery_images(
    calcium_arteries: CalciumInputs, tmp_path_factory: pytest.TempPathFactory
) -> list[Dataset]:
    """The key images of a job with calcium in the LAD, LCX and RCA, read back."""
    job = calcium_arteries
    objects = build_calcium_objects(job.sources, job.result, job.volume, job.labels)
    folder = tmp_path_factory.mktemp("artery-keys")
    images = []
    for n, ds in enumerate(objects):
        if ds.SeriesNumber == 9503:
            ds.save_as(folder / f"{n}.dcm", enforce_file_format=True)
            images.append(pydicom.dcmread(folder / f"{n}.dcm"))
    return images


def _largest_score_slice(job: CalciumInputs) -> dict[str, str]:
    """Per artery, the SOP Instance UID of the slice with its largest Agatston score."""
    scores: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for lesion in job.result.lesions:
        scores[lesion.artery][lesion.SOPInstanceUID] += lesion.agatston
    return {artery: max(by_slice, key=by_slice.__getitem__) for artery, by_slice in scores.items()}


def test_one_key_image_per_artery_with_calcium_on_its_highest_scoring_slice(
    calcium_arteries: CalciumInputs, artery_images: list[Dataset]
) -> None:
    job = calcium_arteries
    expected = _largest_score_slice(job)
    assert sorted(expected) == ["LAD", "LCX", "RCA"]  # three arteries, LM without calcium
    assert len(artery_images) == len(expected)
    assert len({ds.SeriesInstanceUID for ds in artery_images}) == 1
    assert len({ds.SOPInstanceUID for ds in artery_images}) == len(expected)
    # in the order of the arteries, numbered by their place among LM, LAD, LCX, RCA
    arteries = [a for a in ARTERIES if a in expected]
    assert [ds.InstanceNumber for ds in artery_images] == [ARTERIES.index(a) + 1 for a in arteries]
    for artery, ds in zip(arteries, artery_images, strict=True):
        _is_secondary_capture_with_burned_in_findings(ds)
        [source] = ds.SourceImageSequence
        assert source.ReferencedSOPInstanceUID == expected[artery], artery
        assert "ReferencedFrameNumber" not in source
        assert list(ds.PatientOrientation) == ["L", "P"]  # axial, as the synthetic CT


def test_key_images_name_the_slice_by_its_instance_number(
    calcium_arteries: CalciumInputs, artery_images: list[Dataset]
) -> None:
    job = calcium_arteries
    by_uid = _by_uid(job.sources)
    arteries = [a for a in ARTERIES if job.result.agatston[a] > 0]
    for artery, ds in zip(arteries, artery_images, strict=True):
        uid = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(by_uid[uid].InstanceNumber)
        index = job.volume.sop_instance_uids.index(uid)
        assert number != index + 1  # the synthetic CT numbers its slices top down
        header = f"{artery}: image {number} - {NOT_FOR_DIAGNOSTIC_USE}"
        assert _shows(ds.pixel_array, [(header, (255, 255, 255))], (8, 8)), artery
        assert not _shows(
            ds.pixel_array,
            [(f"{artery}: image {index + 1} -", (255,) * 3)],
            (8, 8),
        )
        assert f"{artery} on image {number}," in ds.ImageComments


def test_key_images_show_each_arterys_score_on_the_slice_and_every_arterys_total(
    calcium_arteries: CalciumInputs, artery_images: list[Dataset]
) -> None:
    job = calcium_arteries
    agatston = job.result.agatston
    arteries = [a for a in ARTERIES if agatston[a] > 0]
    line = artery_images[0].Rows // 20
    legend = [(f"{a} {agatston[a]:.0f}", ARTERY_COLOURS[a]) for a in ARTERIES]
    legend.append((f"Total {agatston['total']:.0f}", (255, 255, 255)))
    for artery, ds in zip(arteries, artery_images, strict=True):
        uid = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        here = sum(
            les.agatston
            for les in job.result.lesions
            if les.artery == artery and les.SOPInstanceUID == uid
        )
        assert here > 0
        figures = f"Agatston {artery} {here:.0f} on this image, {agatston[artery]:.0f} in all"
        assert _shows(ds.pixel_array, [(figures, (255, 255, 255))], (8, 8 + line)), artery
        assert _shows(ds.pixel_array, legend, (8, ds.Rows - line - 8)), artery


def test_lesions_are_outlined_in_their_artery_colour_and_stay_visible(
    calcium_arteries: CalciumInputs, artery_images: list[Dataset]
) -> None:
    job = calcium_arteries
    arteries = [a for a in ARTERIES if job.result.agatston[a] > 0]
    for artery, ds in zip(arteries, artery_images, strict=True):
        index = job.volume.sop_instance_uids.index(
            ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        )
        mask = job.labels[index] == ARTERIES.index(artery) + 1
        factor = ds.Rows // mask.shape[0]
        big = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
        pixels = ds.pixel_array.astype(int)
        # the calcium itself is shown in grey, not painted over
        calcium = pixels[big]
        assert np.all(calcium == calcium[:, :1])
        # and enclosed by a line of its artery's colour close by (where no label covers it,
        # and no other artery's outline crosses it)
        near = ndimage.binary_dilation(big, iterations=factor + 2)
        ring = near & np.all(pixels == ARTERY_COLOURS[artery], axis=-1)
        assert not (ring & big).any()
        enclosed = ndimage.binary_fill_holes(ring) & big
        assert enclosed.sum() > 0.9 * big.sum(), artery


def test_the_key_slice_of_an_artery_is_its_highest_scoring_one_lowest_on_a_tie(
    calcium: CalciumInputs,
) -> None:
    first = calcium.result.lesions[0]
    lesions = [
        first.model_copy(update={"slice_index": 4, "agatston": 10.0, "artery": "RCA"}),
        first.model_copy(update={"slice_index": 2, "agatston": 6.0, "artery": "RCA"}),
        first.model_copy(update={"slice_index": 2, "agatston": 6.0, "artery": "RCA"}),
        first.model_copy(update={"slice_index": 5, "agatston": 3.0, "artery": "LM"}),
        first.model_copy(update={"slice_index": 1, "agatston": 3.0, "artery": "LM"}),
    ]
    result = calcium.result.model_copy(update={"lesions": lesions})
    assert key_slices(result) == {"LM": 1, "RCA": 2}
    assert list(key_slices(result)) == ["LM", "RCA"]


def _slice(number: object = 12, z: float = -26.0) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0.0, 0.0, z]
    return ds


def test_image_labels_follow_instance_number_else_position() -> None:
    assert image_label(_slice(12)) == "image 12"
    assert image_label(_slice("")) == "slice at z -26.0 mm"
    bare = Dataset()
    assert image_label(bare) == "image without number"


def test_frame_labels_follow_the_viewer() -> None:
    cine = _slice(1)
    cine.NumberOfFrames = 30
    assert frame_label([cine], ("1.2.3.4", 7)) == "frame 7"
    second = _slice(2)
    second.SOPInstanceUID, second.NumberOfFrames = "1.2.3.5", 30
    assert frame_label([cine, second], ("1.2.3.5", 7)) == "frame 7 of image 2"
    single = [_slice(n) for n in (5, 6)]
    single[1].SOPInstanceUID = "1.2.3.5"
    assert frame_label(single, ("1.2.3.5", 1)) == "image 6"


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
