"""Parts of the TID 1500 documents that highdicom builds larger than needed or not at all:
a compact Image Library (TID 1600) and the report-level Qualitative Evaluations (TID 1500
rows 12-13).

highdicom's ``ImageLibrary`` writes sixteen descriptors (TID 1602) under every image: 64
slices made 270 KB of a calcium SR. Here the descriptors the images share (modality, frame
of reference) are written once, at the Image Library Group (TID 1600 row 3, HAS ACQ
CONTEXT), and each entry (TID 1601) is the IMAGE reference alone, for the images the
report's regions are drawn on.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from highdicom.sr import (
    CodeContentItem,
    ContainerContentItem,
    ContentSequence,
    ImageContentItem,
    RelationshipTypeValues,
    UIDRefContentItem,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from cardiogate.reports.codes import MODALITIES, QUALITATIVE_EVALUATIONS

_SOURCE = hd.sr.CodedConcept(value="260753009", scheme_designator="SCT", meaning="Source")


def image_library(images: Sequence[tuple[Dataset, Sequence[int]]]) -> ContainerContentItem:
    """TID 1600 over ``images``: (image, the frame numbers referenced, empty for a
    single-frame image), in the order given, each image once."""
    if not images:
        raise ValueError("an image library needs at least one image")
    group = ContainerContentItem(
        name=codes.DCM.ImageLibraryGroup, relationship_type=RelationshipTypeValues.CONTAINS
    )
    group.ContentSequence = ContentSequence(_shared_descriptors([ds for ds, _ in images]))
    for ds, frames in images:
        group.ContentSequence.append(
            ImageContentItem(
                name=_SOURCE,
                referenced_sop_class_uid=str(ds.SOPClassUID),
                referenced_sop_instance_uid=str(ds.SOPInstanceUID),
                referenced_frame_numbers=sorted(frames) or None,
                relationship_type=RelationshipTypeValues.CONTAINS,
            )
        )
    library = ContainerContentItem(
        name=codes.DCM.ImageLibrary, relationship_type=RelationshipTypeValues.CONTAINS
    )
    library.ContentSequence = ContentSequence([group])
    return library


def insert_library(root: Dataset, library: ContainerContentItem) -> None:
    """Put the Image Library where TID 1500 has it (row 5): after the procedure reported,
    before the Imaging Measurements and the Qualitative Evaluations."""
    later = (codes.DCM.ImagingMeasurements.value, QUALITATIVE_EVALUATIONS.value)
    items = list(root.ContentSequence)
    position = next(
        (i for i, item in enumerate(items) if item.ConceptNameCodeSequence[0].CodeValue in later),
        len(items),
    )
    root.ContentSequence.insert(position, library)


def _shared_descriptors(images: Sequence[Dataset]) -> list[hd.sr.ContentItem]:
    """The TID 1602 descriptors that place the images, when every image has the same: the
    modality and the frame of reference (matrix and spacing are in the images, and no
    reader of ours looks for them here)."""
    context = RelationshipTypeValues.HAS_ACQ_CONTEXT
    items: list[hd.sr.ContentItem] = []
    modalities = {str(ds.get("Modality", "")) for ds in images}
    if len(modalities) == 1 and (modality := modalities.pop()) in MODALITIES:
        items.append(CodeContentItem(codes.DCM.Modality, MODALITIES[modality], context))
    frames_of_reference = {str(ds.get("FrameOfReferenceUID", "")) for ds in images}
    if len(frames_of_reference) == 1 and (uid := frames_of_reference.pop()):
        items.append(UIDRefContentItem(codes.DCM.FrameOfReferenceUID, uid, context))
    return items


def measurement_report(
    observation_context: hd.sr.ObservationContext,
    procedure_reported: Code | hd.sr.CodedConcept,
    groups: Sequence[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations],
) -> hd.sr.MeasurementReport:
    """TID 1500 with ``groups`` in its Imaging Measurements container (row 6), or without
    that container when there is no group: a CONTAINER without content items fails dcmtk's
    SR schema, and a report whose statements are all in its Qualitative Evaluations (row
    12, :func:`add_evaluations`) is complete without it. OHIF 3.13 reads a report without
    it as one without measurements. highdicom asks for a group, so such a report is built
    with one and the container then taken out."""
    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=procedure_reported,
        imaging_measurements=list(groups)
        or [
            hd.sr.MeasurementsAndQualitativeEvaluations(
                hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="taken out")
            )
        ],
    )
    if not groups:
        root = report[0]
        root.ContentSequence = ContentSequence(
            [
                item
                for item in root.ContentSequence
                if item.ConceptNameCodeSequence[0].CodeValue != codes.DCM.ImagingMeasurements.value
            ]
        )
    return report


def add_evaluations(report: hd.sr.MeasurementReport, items: Sequence[hd.sr.ContentItem]) -> None:
    """Put ``items`` at the head of the report's Qualitative Evaluations container (TID 1500
    row 12, which :func:`cardiogate.reports.common.add_comments` made): coded statements
    about the whole report, which viewers that draw measurement groups leave alone."""
    root = report[0]
    for container in root.ContentSequence:
        name = container.ConceptNameCodeSequence[0]
        if (name.CodingSchemeDesignator, name.CodeValue) == (
            QUALITATIVE_EVALUATIONS.scheme_designator,
            QUALITATIVE_EVALUATIONS.value,
        ):
            container.ContentSequence = ContentSequence([*items, *container.ContentSequence])
            return
    raise ValueError("the report has no Qualitative Evaluations container; add comments first")


def evaluation(
    name: Code | hd.sr.CodedConcept,
    value: Code | hd.sr.CodedConcept,
    site: Code | hd.sr.CodedConcept | None = None,
) -> CodeContentItem:
    """A coded statement (TID 1500 row 13), with the finding site it concerns."""
    item = CodeContentItem(name, value, RelationshipTypeValues.CONTAINS)
    if site is not None:
        item.ContentSequence = ContentSequence(
            [CodeContentItem(codes.SCT.FindingSite, site, RelationshipTypeValues.HAS_CONCEPT_MOD)]
        )
    return item
