"""The lesion groups and the Image Library of the calcium SR, added to the document after
highdicom has built it (:func:`add_lesion_groups`, which says why)."""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from cardiogate.reports.common import ReportError
from cardiogate.reports.sr_content import insert_library


def add_lesion_groups(
    sr: hd.sr.ComprehensiveSR,
    library: hd.sr.ContainerContentItem,
    lesions: Sequence[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations],
    evidence: Sequence[Dataset],
) -> None:
    """Add the Image Library (TID 1500 row 5) and the
    lesion groups (in the Imaging Measurements container, after the artery groups) to the
    document and to its ``content`` tree.

    highdicom's SR constructor deep-copies the whole content tree and walks it twice for
    its references (once per value type, making a content item per node); with hundreds
    of lesion groups that was most of the time of a calcium job. The document is therefore
    built without them and they are added here, which gives the same items in the same
    order as passing them to MeasurementReport. The check that the constructor made on the
    references, that every referenced instance is in the evidence (the Current Requested
    Procedure Evidence Sequence), is made here.
    """
    known = {str(ds.SOPInstanceUID) for ds in evidence}
    for item in (library, *(group[0] for group in lesions)):
        if not _referenced(item) <= known:
            raise ReportError("the report references an instance that is not in the evidence")
    roots = [sr, sr.content[0]]
    if roots[0].ContentSequence is roots[1].ContentSequence:  # the constructor did not copy
        roots.pop()
    for root in roots:
        if lesions:  # there are artery or valve groups, hence the container
            container = _imaging_measurements(root)
            for group in lesions:
                container.ContentSequence.extend(group)
        insert_library(root, library)


def _referenced(item: Dataset) -> set[str]:
    """The SOP Instance UIDs that IMAGE and COMPOSITE items in ``item``'s tree reference."""
    found = set()
    for child in item.get("ContentSequence", []):
        if child.ValueType in ("IMAGE", "COMPOSITE"):
            found.add(str(child.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
        found |= _referenced(child)
    return found


def _imaging_measurements(root: Dataset) -> Dataset:
    """The Imaging Measurements container (DCM 126010) directly under the report root."""
    for item in root.ContentSequence:
        name = item.ConceptNameCodeSequence[0]
        if (name.CodingSchemeDesignator, name.CodeValue) == ("DCM", "126010"):
            found: Dataset = item
            return found
    raise ReportError("the measurement report has no Imaging Measurements container")
