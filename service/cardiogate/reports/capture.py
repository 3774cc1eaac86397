"""What the key images and the summary page share: RGB Secondary Captures with text burned
in (PS3.3 A.8.1), and the numbers a viewer shows for the images they point at.

Viewers number CT slices by Instance Number and the frames of a multi-frame XA from 1
(PS3.3 C.7.6.1, C.7.6.6); counting slices from the bottom of the volume lands the reader on
the wrong slice, so every image or frame we name is named as the viewer names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import highdicom as hd
import numpy as np
from PIL import ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cardiogate.reports.common import (
    NOT_FOR_DIAGNOSTIC_USE,
    ModelIdentity,
    ObjectIdentity,
    equipment,
)

RGB = np.ndarray[Any, np.dtype[np.uint8]]
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
Colour = tuple[int, int, int]
TEXT_COLOUR: Colour = (255, 255, 255)


def font(size: int) -> Font:
    """Pillow's own font (Aileron, Pillow >= 10.1): no system font needed. ASCII only."""
    return ImageFont.load_default(size=size)


def ascii_text(text: str) -> str:
    """``text`` with what Pillow's own font cannot draw replaced by ``?``."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def text_box(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    face: Font,
    colour: Colour = TEXT_COLOUR,
) -> tuple[int, int, int, int]:
    """``text`` on a black box, legible over any image, moved inside the picture if need be;
    returns the box drawn (left, top, right, bottom, inclusive)."""
    width, height = draw.im.size
    text = ascii_text(text)
    left, _, right, bottom = draw.textbbox((0, 0), text, font=face)
    x = round(min(max(xy[0], 4.0), width - (right - left) - 6.0))
    y = round(min(max(xy[1], 4.0), height - bottom - 6.0))
    box = draw.textbbox((x, y), text, font=face)
    padded = (int(box[0]) - 3, int(box[1]) - 3, int(box[2]) + 3, int(box[3]) + 3)
    draw.rectangle(padded, fill=(0, 0, 0))
    draw.text((x, y), text, fill=colour, font=face)
    return padded


def windowed(pixels: np.ndarray[Any, Any], level: float, width: float) -> RGB:
    """Greyscale ``pixels`` through a linear window, as an RGB uint8 image."""
    low = level - width / 2.0
    grey = np.clip((pixels.astype(np.float32) - low) / max(width, 1e-6), 0.0, 1.0) * 255.0
    out: RGB = np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
    return out


def image_label(ds: Dataset) -> str:
    """A CT slice as the viewer names it: ``image 12`` (Instance Number), else its position
    along the patient's axis (Instance Number is Type 2: it may be empty)."""
    number = ds.get("InstanceNumber")
    if number not in (None, ""):
        return f"image {int(number)}"
    position = ds.get("ImagePositionPatient")
    if position is not None and len(position) == 3:
        return f"slice at z {float(position[2]):.1f} mm"
    return "image without number"


def frame_label(sources: Sequence[Dataset], frame_source: tuple[str, int]) -> str:
    """An XA frame as the viewer names it: ``frame 3`` of a multi-frame instance (1-based;
    ``of image 2`` when the run has several instances), or ``image 7`` for a run of
    single-frame instances."""
    sop, frame_number = frame_source
    source = next((ds for ds in sources if str(ds.get("SOPInstanceUID", "")) == sop), None)
    if source is None:
        return f"frame {frame_number}"
    if int(source.get("NumberOfFrames", 1) or 1) > 1:
        label = f"frame {frame_number}"
        if len(sources) > 1 and source.get("InstanceNumber") not in (None, ""):
            label += f" of image {int(source.InstanceNumber)}"
        return label
    return image_label(source)


def source_reference(source: Dataset, frame_number: int | None = None) -> Dataset:
    """An item of the Source Image Sequence (PS3.3 C.7.6.1.1.4)."""
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if frame_number is not None:
        reference.ReferencedFrameNumber = frame_number
    return reference


def secondary_capture(
    picture: RGB,
    source: Dataset,
    identity: ObjectIdentity,
    model: ModelIdentity,
    description: str,
    *,
    orientation: tuple[str, str] | None,
    references: Sequence[Dataset] = (),
) -> hd.sc.SCImage:
    """An RGB SC in the source's study, its patient and study modules copied from
    ``source`` (a cleaned copy), marked as AI output with its findings burned in."""
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
        # highdicom requires an orientation for PATIENT; XA and pages have none (type 2)
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
    if references:
        sc.SourceImageSequence = list(references)
    return sc
