"""The calcium SEG, read back with highdicom: the scored pixels, one segment per artery."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from cardiogate.reports.codes import ABNORMAL_STRUCTURE, ARTERY_SITES, CALCIFIED_PLAQUE
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    ReportError,
    object_identity,
)
from cardiogate.tasks.calcium import seg as calcium_seg
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.seg import build_calcium_seg
from cardiogate.tasks.calcium.series import OUTPUT_SERIES
from reporting_jobs import CalciumInputs

SEG = (OUTPUT_SERIES["seg"].number, OUTPUT_SERIES["seg"].description)


def _segments_as_labels(seg: hd.seg.Segmentation, uids: list[str]) -> np.ndarray:
    """The SEG as a label volume (0 none, 1 LM .. 4 RCA) over the slices ``uids``."""
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, assert_missing_frames_are_empty=True
    )
    labels = np.zeros(pixels.shape[:3], dtype=np.uint8)
    for index, number in enumerate(seg.segment_numbers):
        site = seg.get_segment_description(number).anatomic_regions[0]
        artery = next(a for a in ARTERIES if ARTERY_SITES[a] == site)
        labels[pixels[..., index] > 0] = ARTERIES.index(artery) + 1
    return labels


def test_segments_match_the_scored_labels_voxel_for_voxel(
    calcium: CalciumInputs, calcium_files: dict[str, Path]
) -> None:
    seg = hd.seg.segread(calcium_files["SEG"])
    uids = calcium.volume.sop_instance_uids
    assert np.array_equal(_segments_as_labels(seg, uids), calcium.labels)
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    [number] = seg.segment_numbers  # the rule labels LAD only
    description = seg.get_segment_description(number)
    assert description.segmented_property_category == ABNORMAL_STRUCTURE
    assert description.segmented_property_type == CALCIFIED_PLAQUE
    assert description.anatomic_regions == [ARTERY_SITES["LAD"]]
    assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    assert description.algorithm_identification[0].AlgorithmName == calcium.result.model.name
    assert seg.StudyInstanceUID == calcium.sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == calcium.sources[0].FrameOfReferenceUID


def _three_arteries(
    calcium: CalciumInputs,
) -> tuple[np.ndarray[Any, Any], list[Dataset], ObjectIdentity]:
    """Labels with LM and LCX on one slice and RCA on another (no LAD), the source slices in
    volume order, and the SEG's identity."""
    labels = np.zeros_like(calcium.labels)
    labels[1, 10:14, 20:24] = 1  # LM
    labels[1, 30:32, 30:33] = 3  # LCX, on the same slice
    labels[4, 40:45, 8:9] = 4  # RCA, elsewhere; no LAD at all
    slices = [
        next(ds for ds in calcium.sources if ds.SOPInstanceUID == uid)
        for uid in calcium.volume.sop_instance_uids
    ]
    model = ModelIdentity(calcium.result.model.name, calcium.result.model.version)
    identity = object_identity(
        str(slices[0].SeriesInstanceUID), "calcium", "seg", model, 0, series=SEG
    )
    return labels, slices, identity


def test_one_segment_per_artery_with_calcium(calcium: CalciumInputs) -> None:
    labels, slices, identity = _three_arteries(calcium)
    built = build_calcium_seg(slices, labels, calcium.result, identity)
    assert built.segment_numbers == {"LM": 1, "LCX": 2, "RCA": 3}
    assert sorted(built.frames.values()) == [1, 2, 3]  # empty frames are left out
    assert built.frames[("RCA", calcium.volume.sop_instance_uids[4])] in (1, 2, 3)

    buffer = BytesIO()
    built.dataset.save_as(buffer, enforce_file_format=True)
    seg = hd.seg.segread(BytesIO(buffer.getvalue()))
    assert np.array_equal(_segments_as_labels(seg, calcium.volume.sop_instance_uids), labels)
    labels_read = [seg.get_segment_description(n).segment_label for n in seg.segment_numbers]
    assert labels_read == ["LM calcium", "LCX calcium", "RCA calcium"]


def test_no_calcium_is_refused_rather_than_an_empty_segmentation(calcium: CalciumInputs) -> None:
    model = ModelIdentity("m", "1")
    identity = object_identity("1.2.3", "calcium", "seg", model, 0, series=SEG)
    empty = np.zeros_like(calcium.labels)
    with pytest.raises(ReportError, match="no scored calcium"):
        build_calcium_seg(calcium.sources, empty, calcium.result, identity)


def test_labels_of_another_shape_are_refused(calcium: CalciumInputs) -> None:
    identity = object_identity("1.2.3", "calcium", "seg", ModelIdentity("m", "1"), 0, series=SEG)
    with pytest.raises(ReportError, match="does not match"):
        build_calcium_seg(calcium.sources, calcium.labels[:, :10], calcium.result, identity)


def test_the_artery_codes_are_the_major_coronary_arteries() -> None:
    assert ARTERY_SITES["LAD"] == codes.SCT.LeftAnteriorDescendingCoronaryArtery
    assert [ARTERY_SITES[a].value for a in ARTERIES] == [
        "3227004",
        "59438005",
        "57396003",
        "13647002",
    ]


# what differs between two builds of the same SEG: when it was made, and the Dimension
# Organization UID that highdicom makes up each time
_BUILD_TAGS = {"00080012", "00080013", "00080023", "00080033", "0018A002", "00209164"}


def _as_built(ds: Dataset) -> Any:
    """The dataset as written, as JSON with the pixel data inline and the build's time and
    random UID masked."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    read = pydicom.dcmread(BytesIO(buffer.getvalue()))

    def masked(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "*" if k in _BUILD_TAGS else masked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [masked(v) for v in value]
        return value

    return masked(read.to_json_dict(bulk_data_threshold=2**30))


def test_label_map_gives_the_seg_of_a_stack_of_masks(
    calcium: CalciumInputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """highdicom is given a label map for speed; the SEG is the one a stack of one mask
    per artery gives."""
    labels, slices, identity = _three_arteries(calcium)
    fast = build_calcium_seg(slices, labels, calcium.result, identity)

    def stacked(labels: np.ndarray[Any, Any], arteries: list[str]) -> np.ndarray[Any, Any]:
        return np.stack([labels == ARTERIES.index(a) + 1 for a in arteries], axis=-1)

    monkeypatch.setattr(calcium_seg, "_segment_label_map", stacked)
    reference = build_calcium_seg(slices, labels, calcium.result, identity)
    assert fast.frames == reference.frames
    assert _as_built(fast.dataset) == _as_built(reference.dataset)
