"""The calcium SR of a job with a hundred slice regions (the rule calls bone calcium too):
the lesion groups are added to the document after highdicom's constructor
(cardiogate.tasks.calcium.sr_assembly.add_lesion_groups), so check that the document, its in-memory
content tree and the file read back all hold every group, in order, with its references in
the evidence and the Image Library."""

from __future__ import annotations

from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.dataset import Dataset

from cardiogate.inference.engine import load_model
from cardiogate.reports.codes import ARTERY_SITES, CALCIUM_SCORE
from cardiogate.reports.common import ReportError
from cardiogate.reports.sr_content import image_library
from cardiogate.tasks.calcium.analysis import analyze_ct_with_labels
from cardiogate.tasks.calcium.objects import build_calcium_objects
from cardiogate.tasks.calcium.scoring import ARTERIES
from cardiogate.tasks.calcium.sr_assembly import add_lesion_groups
from delivery_peers import calcium_ct
from reporting_jobs import content_items
from tiny_model import write_threshold_model


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("many_lesions")
    slices = calcium_ct()
    model = load_model(write_threshold_model(folder / "model"), ["CPUExecutionProvider"])
    result, volume, labels = analyze_ct_with_labels(slices, model)
    objects = build_calcium_objects(slices, result, volume, labels)
    [sr] = [o for o in objects if o.Modality == "SR"]
    path = folder / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    return {"result": result, "slices": slices, "objects": objects, "sr": sr, "path": path}


def _container(root: Dataset) -> Dataset:
    [container] = [
        item
        for item in root.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == "126010"  # Imaging Measurements
    ]
    return container


def _tracking_ids(container: Dataset) -> list[str]:
    ids = []
    for group in container.ContentSequence:
        for item in group.ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeValue == "112039":  # Tracking Identifier
                ids.append(str(item.TextValue))
    return ids


def _referenced(ds: Dataset) -> set[str]:
    return {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in content_items(ds)
        if item.ValueType == "IMAGE"
    }


def test_the_lesion_groups_follow_the_artery_groups_and_add_up(many: dict[str, Any]) -> None:
    result = many["result"]
    assert len(result.lesions) > 100  # the case that was slow
    read = hd.sr.srread(many["path"])
    ids = _tracking_ids(_container(read))
    scored = [a for a in ARTERIES if result.agatston[a] > 0]
    summaries = [f"Coronary calcium {key}" for key in (*scored, "total")]
    assert ids[: len(summaries)] == summaries
    lesions = ids[len(summaries) :]
    assert 0 < len(lesions) < len(result.lesions)  # slice regions joined across slices
    assert [name.split()[2] for name in lesions] == [str(n) for n in range(1, len(lesions) + 1)]
    groups = read.content.get_planar_roi_measurement_groups()[len(summaries) :]
    total = 0.0
    for group in groups:
        artery = group.tracking_identifier.split()[3]
        assert group.finding_sites[0].value == ARTERY_SITES[artery]
        [score] = group.get_measurements(name=CALCIUM_SCORE)
        total += float(score.value)
        assert len(group.get_measurements()) == 2  # score, volume
        assert group.roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    assert total == pytest.approx(result.agatston["total"], abs=0.01 * len(groups))


def test_the_content_tree_is_the_document(many: dict[str, Any]) -> None:
    """``sr.content`` (highdicom's tree) and the dataset hold the same items."""
    sr = many["sr"]
    in_memory = sr.content[0]
    written = pydicom.dcmread(many["path"])
    for keyword in ("ConceptNameCodeSequence", "ContentSequence"):
        expected = written[keyword].to_json_dict(None, 1024)
        assert in_memory[keyword].to_json_dict(None, 1024) == expected
        assert sr[keyword].to_json_dict(None, 1024) == expected


def test_the_evidence_is_what_the_content_references(many: dict[str, Any]) -> None:
    sr = pydicom.dcmread(many["path"])
    evidence = {
        str(instance.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for instance in series.ReferencedSOPSequence
    }
    referenced = _referenced(sr)
    assert evidence == referenced
    assert referenced < {str(ds.SOPInstanceUID) for ds in many["slices"]}


def test_a_slice_that_is_not_evidence_is_refused(many: dict[str, Any]) -> None:
    sr = hd.sr.ComprehensiveSR.from_dataset(many["sr"])
    groups = sr.content.get_planar_roi_measurement_groups()[-1:]
    with pytest.raises(ReportError, match="not in the evidence"):
        add_lesion_groups(sr, image_library([(many["slices"][0], [])]), groups, [])


def test_the_image_library_lists_each_drawn_slice_once_before_the_measurements(
    many: dict[str, Any],
) -> None:
    read = pydicom.dcmread(many["path"])
    names = [item.ConceptNameCodeSequence[0].CodeValue for item in read.ContentSequence]
    library = names.index("111028")  # Image Library (TID 1600)
    assert names[library + 1] == "126010"  # Imaging Measurements
    [group] = read.ContentSequence[library].ContentSequence  # one Image Library Group
    images = [item for item in group.ContentSequence if item.ValueType == "IMAGE"]
    listed = [str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for item in images]
    assert len(listed) == len(set(listed))
    assert set(listed) == _referenced(_container(read))  # the slices drawn on, no other
    assert all("ContentSequence" not in item for item in images)  # no per-image descriptors
    shared = {
        item.ConceptNameCodeSequence[0].CodeValue: item
        for item in group.ContentSequence
        if item.ValueType != "IMAGE"
    }
    assert shared["121139"].ConceptCodeSequence[0].CodeValue == "CT"  # Modality
    assert many["slices"][0].FrameOfReferenceUID == shared["112227"].UID
