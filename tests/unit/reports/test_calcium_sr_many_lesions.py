"""The calcium SR of a job with a hundred lesions: the lesion groups are added to the
document after highdicom's constructor (cardiogate.reports.calcium_sr._complete),
so check that the document, its in-memory content tree and the file read back all hold
every group, in order, with its references in the evidence."""

from __future__ import annotations

from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.dataset import Dataset

from cardiogate.analyses.calcium import ARTERIES
from cardiogate.analyses.calcium_ct import analyze_ct_with_labels
from cardiogate.inference.engine import load_model
from cardiogate.reports import build_calcium_objects
from cardiogate.reports.codes import ARTERY_SITES, CALCIUM_SCORE
from delivery_peers import calcium_ct
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


def test_every_lesion_has_its_group_after_the_artery_groups(many: dict[str, Any]) -> None:
    result = many["result"]
    assert len(result.lesions) > 100  # the case that was slow
    read = hd.sr.srread(many["path"])
    ids = _tracking_ids(_container(read))
    expected = [f"Coronary calcium {key}" for key in (*ARTERIES, "total")] + [
        f"Calcium lesion {index} {lesion.artery} slice {lesion.slice_index + 1}"
        for index, lesion in enumerate(result.lesions, start=1)
    ]
    assert ids == expected
    groups = read.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(result.lesions)
    for group, lesion in zip(groups, result.lesions, strict=True):
        assert group.finding_sites[0].value == ARTERY_SITES[lesion.artery]
        [score] = group.get_measurements(name=CALCIUM_SCORE)
        assert float(score.value) == pytest.approx(lesion.agatston)
        assert len(group.get_measurements()) == 3  # score, volume, area
        names = [item.ConceptNameCodeSequence[0].CodeValue for item in group[0].ContentSequence]
        assert names.count("111001") == 1  # Algorithm Name (TID 4019)
        assert group.referenced_segment is not None


def test_the_content_tree_is_the_document(many: dict[str, Any]) -> None:
    """``sr.content`` (highdicom's tree) and the dataset hold the same items."""
    sr = many["sr"]
    in_memory = sr.content[0]
    written = pydicom.dcmread(many["path"])
    for keyword in ("ConceptNameCodeSequence", "ContentSequence"):
        expected = written[keyword].to_json_dict(None, 1024)
        assert in_memory[keyword].to_json_dict(None, 1024) == expected
        assert sr[keyword].to_json_dict(None, 1024) == expected


def test_every_referenced_instance_is_evidence(many: dict[str, Any]) -> None:
    sr = pydicom.dcmread(many["path"])
    evidence = {
        str(instance.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for instance in series.ReferencedSOPSequence
    }
    seg = next(o for o in many["objects"] if o.Modality == "SEG")
    assert evidence == {str(ds.SOPInstanceUID) for ds in many["slices"]} | {seg.SOPInstanceUID}
    referenced: set[str] = set()

    def walk(node: Dataset) -> None:
        for item in node.get("ContentSequence", []):
            if item.ValueType in ("IMAGE", "COMPOSITE"):
                referenced.add(str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
            walk(item)

    walk(sr)
    assert seg.SOPInstanceUID in referenced
    assert referenced <= evidence


def test_a_slice_that_is_not_evidence_is_refused(many: dict[str, Any]) -> None:
    from cardiogate.reports.calcium_sr import _complete
    from cardiogate.reports.common import ReportError

    sr = hd.sr.Comprehensive3DSR.from_dataset(many["sr"])
    groups = sr.content.get_volumetric_roi_measurement_groups()[:1]
    with pytest.raises(ReportError):
        _complete(sr, hd.sr.ImageLibrary(many["slices"]), groups, [])


def test_the_image_library_lists_every_slice_before_the_measurements(
    many: dict[str, Any],
) -> None:
    read = pydicom.dcmread(many["path"])
    names = [item.ConceptNameCodeSequence[0].CodeValue for item in read.ContentSequence]
    library = names.index("111028")  # Image Library (TID 1600)
    assert names[library + 1] == "126010"  # Imaging Measurements
    [group] = read.ContentSequence[library].ContentSequence  # one Image Library Group
    images = [item for item in group.ContentSequence if item.ValueType == "IMAGE"]
    listed = [str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for item in images]
    assert sorted(listed) == sorted(str(ds.SOPInstanceUID) for ds in many["slices"])
