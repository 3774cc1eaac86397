"""The DICOM Segmentation of a calcium job: the pixels the Agatston score counted, one
BINARY segment per artery that has calcium, and one for the aortic valve calcium when the
model labels it and found some (PS3.3 A.51, C.8.20).

Each artery's segment is a calcified atheromatous plaque (SCT 29483008, category SCT
49755003 morphologically abnormal structure) with the artery as its anatomic region (CID
3016), so a viewer colours and names it by vessel; the aortic valve's is a pathologic
calcification (SCT 18115005) of the aortic valve (SCT 34202007), a segment apart from the
arteries' as its score is apart from theirs. Frames are stored only where a segment has pixels;
:class:`CalciumSegmentation` says which frame holds which segment (an artery or AV) on
which source slice, for the SR to reference per lesion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from cardiogate.dicom.uids import DEVICE_OBSERVER_UID
from cardiogate.reports.codes import ABNORMAL_STRUCTURE, ARTERY_SITES, CALCIFIED_PLAQUE
from cardiogate.reports.common import (
    NOT_FOR_DIAGNOSTIC_USE,
    ModelIdentity,
    ObjectIdentity,
    ReportError,
    equipment,
    tracking_uid,
)
from cardiogate.tasks.calcium.result import CalciumResult
from cardiogate.tasks.calcium.scoring import AORTIC_VALVE, LABEL_NAMES

# display colours by artery (RGB), shared with the key image
ARTERY_COLOURS: dict[str, tuple[int, int, int]] = {
    "LM": (255, 64, 64),
    "LAD": (255, 200, 0),
    "LCX": (64, 160, 255),
    "RCA": (64, 220, 64),
}
AORTIC_VALVE_COLOUR = (200, 120, 255)  # not an artery's: valve calcium is not coronary
AORTIC_VALVE_SITE = codes.SCT.AorticValve  # SCT 34202007
VALVE_CALCIFICATION = codes.SCT.PathologicCalcification  # SCT 18115005


@dataclass(frozen=True)
class CalciumSegmentation:
    """A built SEG and where its frames are.

    ``segment_numbers`` maps an artery (or AV) to its segment; ``frames`` maps (artery or
    AV, source SOPInstanceUID) to the 1-based SEG frame of that segment on that slice.
    """

    dataset: hd.seg.Segmentation
    segment_numbers: dict[str, int]
    frames: dict[tuple[str, str], int]
    source_sop_class_uid: str


def segments_present(labels: np.ndarray[Any, Any]) -> list[str]:
    """The arteries (in :data:`ARTERIES` order), then AV, with at least one labelled pixel:
    the segments of the SEG.

    One comparison per label rather than ``np.unique``, which hashes every pixel of the
    volume (a tenth of a second at 64 x 512 x 512, and this is asked twice per job).
    """
    return [name for index, name in enumerate(LABEL_NAMES, start=1) if (labels == index).any()]


def _description(
    number: int, name: str, algorithm: hd.AlgorithmIdentificationSequence, tracking: str
) -> hd.seg.SegmentDescription:
    """Segment ``number``: an artery's calcified plaque, or the aortic valve calcium."""
    valve = name == AORTIC_VALVE
    label = "Aortic valve calcium" if valve else f"{name} calcium"
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=ABNORMAL_STRUCTURE,
        segmented_property_type=VALVE_CALCIFICATION if valve else CALCIFIED_PLAQUE,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=tracking,
        tracking_id=label,
        anatomic_regions=[AORTIC_VALVE_SITE if valve else ARTERY_SITES[name]],
        display_color=hd.color.CIELabColor.from_rgb(
            *(AORTIC_VALVE_COLOUR if valve else ARTERY_COLOURS[name])
        ),
    )


def build_calcium_seg(
    slices: Sequence[Dataset],
    labels: np.ndarray[Any, Any],
    result: CalciumResult,
    identity: ObjectIdentity,
) -> CalciumSegmentation:
    """The SEG of ``labels`` over ``slices``.

    Parameters
    ----------
    slices : sequence of Dataset
        The source CT slices in the volume's order (``CTVolume.sop_instance_uids``); pixel
        data is not needed.
    labels : (slices, rows, columns) uint8 array
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA, 5 AV, as ``analyze_ct_with_labels`` returns it.
    result : CalciumResult
        Names the model and the scoring parameters.
    identity : ObjectIdentity
        The SEG's series and instance.

    Raises
    ------
    ReportError
        When ``labels`` does not match the slices or holds no calcium.
    """
    rows, columns = int(slices[0].Rows), int(slices[0].Columns)
    if labels.shape != (len(slices), rows, columns):
        raise ReportError(
            f"label volume {labels.shape} does not match {len(slices)} slices of {rows} x {columns}"
        )
    arteries = segments_present(labels)
    if not arteries:
        raise ReportError("no scored calcium: a segmentation needs at least one segment")
    model = ModelIdentity(result.model.name, result.model.version)
    series_uid = str(slices[0].SeriesInstanceUID)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.name,
        family=codes.cid7162.ArtificialIntelligence,
        version=model.version,
        parameters={key: f"{value:g}" for key, value in result.parameters.items()},
    )
    descriptions = [
        _description(
            number,
            artery,
            algorithm,
            tracking_uid(series_uid, "calcium", model, f"segment {artery}"),
        )
        for number, artery in enumerate(arteries, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=list(slices),
        pixel_array=_segment_label_map(labels, arteries),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=identity.SeriesInstanceUID,
        series_number=identity.SeriesNumber,
        sop_instance_uid=identity.SOPInstanceUID,
        instance_number=identity.InstanceNumber,
        device_serial_number=DEVICE_OBSERVER_UID,
        content_label="CALCIUM",
        content_description=(
            f"Scored coronary {'and valve ' if AORTIC_VALVE in arteries else ''}calcium, "
            f"{NOT_FOR_DIAGNOSTIC_USE}"
        ),
        series_description=identity.SeriesDescription,
        **equipment(model),
    )
    numbers = {artery: number for number, artery in enumerate(arteries, start=1)}
    return CalciumSegmentation(
        seg, numbers, _frames_by_slice(seg, arteries), str(slices[0].SOPClassUID)
    )


def _segment_label_map(labels: np.ndarray[Any, Any], arteries: list[str]) -> np.ndarray[Any, Any]:
    """``labels`` with each present artery renumbered to its segment number (1, 2... in
    ``arteries``' order), as a label map for highdicom.

    The same frames as a stack of one boolean mask per segment, since each pixel belongs to
    one artery at most; but highdicom checks a stack for overlapping segments by summing it
    over the segments (half a second at 64 x 512 x 512 x 4) and only takes the maximum of a
    label map whose segments are numbered from 1.
    """
    renumber = np.zeros(256, dtype=np.uint8)
    for number, artery in enumerate(arteries, start=1):
        renumber[LABEL_NAMES.index(artery) + 1] = number
    label_map: np.ndarray[Any, Any] = renumber[labels.astype(np.uint8, copy=False)]
    return label_map


def _frames_by_slice(seg: Dataset, arteries: list[str]) -> dict[tuple[str, str], int]:
    """(artery, source SOPInstanceUID) -> 1-based frame, from the Segment Identification
    (per frame, or shared when there is one segment) and Derivation Image sequences (PS3.3
    C.8.20.3)."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    frames: dict[tuple[str, str], int] = {}
    for number, item in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1):
        identification = item.get("SegmentIdentificationSequence")
        if identification is None:
            identification = shared.SegmentIdentificationSequence
        segment = int(identification[0].ReferencedSegmentNumber)
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        frames[(arteries[segment - 1], str(source.ReferencedSOPInstanceUID))] = number
    return frames
