"""Key images: one RGB Secondary Capture per job with the findings burned in (PS3.3 A.8.1),
for viewers that show no SR or SEG.

- Stenosis: the frame of the most severe lesion, each lesion's vessel course drawn and
  labelled with its % and grade (``"75% 4A"``; a lesion found on another frame says which).
- Calcium: the slice with the most scored calcium, at W 800 / L 200, the scored pixels
  coloured by artery (the SEG's colours) with a legend.

Both carry the AI notice in the image and in Image Comments, BurnedInAnnotation YES, and
reference the source image (Source Image Sequence). Small images are enlarged by pixel
repetition so that the text stays legible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cardiogate.analyses.calcium import ARTERIES
from cardiogate.analyses.calcium_ct import CalciumResult
from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.analyses.stenosis import StenosisResult
from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.calcium_seg import ARTERY_COLOURS
from cardiogate.reports.common import (
    NOT_FOR_DIAGNOSTIC_USE,
    ModelIdentity,
    ObjectIdentity,
    ReportError,
    equipment,
)

CT_WINDOW = (200.0, 800.0)  # (level, width) in HU
MIN_SIDE_PX = 512
SIGNIFICANT_PERCENT = 50.0
SIGNIFICANT_COLOUR = (255, 64, 64)
OTHER_COLOUR = (255, 220, 0)
TEXT_COLOUR = (255, 255, 255)

RGB = np.ndarray[Any, np.dtype[np.uint8]]


def windowed(pixels: np.ndarray[Any, Any], level: float, width: float) -> RGB:
    """Greyscale ``pixels`` through a linear window, as an RGB uint8 image."""
    low = level - width / 2.0
    grey = np.clip((pixels.astype(np.float32) - low) / max(width, 1e-6), 0.0, 1.0) * 255.0
    out: RGB = np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
    return out


def enlarge(image: RGB) -> tuple[RGB, int]:
    """``image`` enlarged by the smallest whole factor that gives :data:`MIN_SIDE_PX`."""
    factor = max(1, -(-MIN_SIDE_PX // min(image.shape[:2])))
    big: RGB = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return big, factor


def _font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(12, height // 32))


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: tuple[int, int]
) -> None:
    """White text on a black box, legible over any image, moved inside the picture of
    ``size`` (width, height) if need be."""
    width, height = size
    font = _font(height)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = min(max(xy[0], 2.0), width - (right - left) - 4.0)
    y = min(max(xy[1], 2.0), height - (bottom - top) - 4.0)
    box = draw.textbbox((x, y), text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((x, y), text, fill=TEXT_COLOUR, font=font)


def stenosis_picture(result: StenosisResult, cine: XACine) -> tuple[RGB, int]:
    """The most severe lesion's frame with every lesion drawn; returns (image, index)."""
    if result.most_severe is None:
        raise ReportError("no lesion: a stenosis key image needs one")
    index = result.most_severe.frame - 1
    frame = cine.frames[index]
    top = float(2**cine.bits_stored - 1)
    level, width = cine.window if cine.window else (top / 2.0, top + 1.0)
    image, factor = enlarge(windowed(frame, level, width))
    picture = Image.fromarray(image, mode="RGB")
    draw = ImageDraw.Draw(picture)
    for lesion in result.lesions:
        colour = (
            SIGNIFICANT_COLOUR if lesion.percent_stenosis >= SIGNIFICANT_PERCENT else OTHER_COLOUR
        )
        points = [
            ((x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5) for x, y in lesion.polyline_px
        ]
        if len(points) >= 2:
            draw.line(points, fill=colour, width=max(2, factor))
        x, y = (lesion.x_px + 0.5) * factor, (lesion.y_px + 0.5) * factor
        radius = 6 * factor
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=2)
        label = f"{lesion.percent_stenosis:.0f}% {lesion.cad_rads}"
        if lesion.frame != result.most_severe.frame:
            label += f" (frame {lesion.frame})"
        _text(draw, (x + radius + 4, y - radius), label, picture.size)
    _text(draw, (8, 8), f"Frame {index + 1} - {NOT_FOR_DIAGNOSTIC_USE}", picture.size)
    return np.asarray(picture, dtype=np.uint8), index


def calcium_picture(
    volume: CTVolume, labels: np.ndarray[Any, Any], result: CalciumResult
) -> tuple[RGB, int]:
    """The slice with the most scored calcium, coloured by artery; returns (image, index)."""
    counts = (labels > 0).reshape(len(labels), -1).sum(axis=1)
    if not counts.any():
        raise ReportError("no scored calcium: a calcium key image needs some")
    index = int(np.argmax(counts))
    image = windowed(volume.hu[index], *CT_WINDOW)
    for number, artery in enumerate(ARTERIES, start=1):
        image[labels[index] == number] = ARTERY_COLOURS[artery]
    image, _ = enlarge(image)
    picture = Image.fromarray(image, mode="RGB")
    draw = ImageDraw.Draw(picture)
    total = result.agatston["total"]
    _text(draw, (8, 8), f"Slice {index + 1} - {NOT_FOR_DIAGNOSTIC_USE}", picture.size)
    _text(draw, (8, picture.height // 16 + 8), f"Agatston total {total:.0f}", picture.size)
    x = 8.0
    font = _font(picture.height)
    for artery in ARTERIES:
        y = picture.height - picture.height // 16 - 8
        draw.text((x, y), artery, fill=ARTERY_COLOURS[artery], font=font)
        x = draw.textbbox((x, y), artery + "  ", font=font)[2]
    return np.asarray(picture, dtype=np.uint8), index


def _secondary_capture(
    picture: RGB,
    source: Dataset,
    identity: ObjectIdentity,
    model: ModelIdentity,
    orientation: tuple[str, str] | None,
    description: str,
    frame_number: int | None,
) -> hd.sc.SCImage:
    """An RGB SC in the source's study, patient and study modules copied from it."""
    sc = hd.sc.SCImage(
        pixel_array=picture,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        study_instance_uid=str(source.StudyInstanceUID),
        series_instance_uid=identity.SeriesInstanceUID,
        series_number=identity.SeriesNumber,
        sop_instance_uid=identity.SOPInstanceUID,
        instance_number=identity.InstanceNumber,
        # highdicom requires an orientation for PATIENT; XA has none to give (type 2)
        patient_orientation=orientation or ("L", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=identity.SeriesDescription,
        # the copied names are encoded in it (PS3.3 C.12.1.1.2); the SR and SEG copy it too
        specific_character_set=source.get("SpecificCharacterSet"),
        **equipment(model),
    )
    if orientation is None:
        sc.PatientOrientation = source.get("PatientOrientation", "")
    # patient names are checked (and may be refused) by SCImage: copy them instead
    sc.copy_patient_and_study_information(source)
    if "BodyPartExamined" in source:  # without it, Laterality (type 2C) would be due
        sc.BodyPartExamined = source.BodyPartExamined
    sc.BurnedInAnnotation = "YES"
    sc.ImageComments = f"{description}. {NOT_FOR_DIAGNOSTIC_USE}."
    sc.DerivationDescription = description
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if frame_number is not None:
        reference.ReferencedFrameNumber = frame_number
    sc.SourceImageSequence = [reference]
    return sc


def stenosis_key_image(
    sources: Sequence[Dataset], result: StenosisResult, cine: XACine, identity: ObjectIdentity
) -> hd.sc.SCImage:
    """The stenosis key image (see the module's docstring)."""
    picture, index = stenosis_picture(result, cine)
    sop, frame_number = cine.frame_sources[index]
    source = next((ds for ds in sources if str(ds.SOPInstanceUID) == sop), None)
    if source is None:
        raise ReportError("the key frame's instance is not among the sources")
    multi_frame = int(source.get("NumberOfFrames", 1) or 1) > 1
    return _secondary_capture(
        picture,
        source,
        identity,
        ModelIdentity(result.model["name"], result.model["version"]),
        None,
        "Coronary stenoses found by AI, drawn on the most severe lesion's frame",
        frame_number if multi_frame else None,
    )


def calcium_key_image(
    slices: Sequence[Dataset],
    volume: CTVolume,
    labels: np.ndarray[Any, Any],
    result: CalciumResult,
    identity: ObjectIdentity,
) -> hd.sc.SCImage:
    """The calcium key image (see the module's docstring); ``slices`` in volume order."""
    picture, index = calcium_picture(volume, labels, result)
    return _secondary_capture(
        picture,
        slices[index],
        identity,
        ModelIdentity(result.model.name, result.model.version),
        orientation_letters(volume.orientation),
        "Coronary calcium scored by AI, coloured by artery, W 800 L 200",
        None,
    )


def orientation_letters(orientation: np.ndarray[Any, Any]) -> tuple[str, str]:
    """Patient Orientation (PS3.3 C.7.6.1.1.1) of the row and column directions of an
    Image Orientation (Patient), by each direction's dominant axis."""
    letters = (("R", "L"), ("A", "P"), ("F", "H"))  # negative, positive along x, y, z

    def letter(direction: np.ndarray[Any, Any]) -> str:
        axis = int(np.argmax(np.abs(direction)))
        return letters[axis][int(direction[axis] > 0)]

    return letter(orientation[:3]), letter(orientation[3:])
