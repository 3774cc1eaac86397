"""The calcium SR: a Comprehensive 3D SR holding a TID 1500 Measurement Report.

Content (``shared/reference/sr-and-scoring.md`` section 4, "CT calcium report"):

- one TID 1501 group per artery (LM, LAD, LCX, RCA) and one for the whole coronary tree,
  each with the Agatston score (SCT 450360000, method DCM 112055, unit 1), the calcium
  volume (DCM 122660, mm3) and, only when a calibration factor was known, the calcium
  mass (DCM 122661, mg); the total's group also carries the classic and CAC-DRS
  categories as qualitative evaluations in the local scheme;
- one TID 1411 volumetric ROI group per lesion, referencing its artery's segment in the
  SEG and the lesion's slice as that segment's source image, with the lesion's Agatston
  score, volume and area;
- the algorithm (model name, version, scoring parameters) in every group, cardiogate as
  the observing device, and the AI notice as a comment.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import Comprehensive3DSRStorage

from cardiogate.analyses.calcium import ARTERIES
from cardiogate.analyses.calcium_ct import CalciumLesion, CalciumResult
from cardiogate.reports.calcium_seg import CalciumSegmentation
from cardiogate.reports.codes import (
    AGATSTON_METHOD,
    AREA,
    ARTERY_SITES,
    CAC_DRS,
    CALCIFIED_PLAQUE,
    CALCIUM_MASS,
    CALCIUM_SCORE,
    CALCIUM_VOLUME,
    CLASSIC_CATEGORY,
    CORONARY_ARTERY,
    CT_PROCEDURE,
    CUBIC_MILLIMETRE,
    MILLIGRAM,
    NO_UNITS,
    SQUARE_MILLIMETRE,
    cac_drs_value,
    classic_value,
)
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    Predecessor,
    ReportError,
    add_comments,
    document_fields,
    observation_context,
    tracking_uid,
)

SCORING_NOTE = (
    "Agatston scores: lesions are 8-connected regions at or above the threshold on each "
    "slice, weighted by peak HU (1-4) and scaled by slice increment / 3 mm. Calcium mass is "
    "reported only when a calibration factor is known."
)


def algorithm(result: CalciumResult) -> hd.sr.AlgorithmIdentification:
    """TID 4019 for the model and the scoring parameters that produced ``result``."""
    geometry = result.geometry
    parameters = [f"{key}={value:g}" for key, value in result.parameters.items()]
    parameters += [
        "connectivity=8",
        "slice_norm=increment/3",
        f"slice_increment_mm={geometry.get('slice_increment_mm')}",
        f"slice_thickness_mm={geometry.get('slice_thickness_mm')}",
        f"mass={'calibrated' if result.mass_mg is not None else 'not reported'}",
    ]
    return hd.sr.AlgorithmIdentification(
        name=result.model.name, version=result.model.version, parameters=parameters
    )


def _concepts() -> dict[str, hd.sr.CodedConcept]:
    """The coded concepts of every calcium group, as highdicom's CodedConcept.

    highdicom converts a pydicom Code into a new CodedConcept each time one is used; the
    lesion groups use the same few concepts hundreds of times, so they are converted once
    per document (fresh objects for each document: they become part of it).
    """
    found: dict[str, Code | hd.sr.CodedConcept] = {
        "plaque": CALCIFIED_PLAQUE,
        "score": CALCIUM_SCORE,
        "no units": NO_UNITS,
        "agatston": AGATSTON_METHOD,
        "volume": CALCIUM_VOLUME,
        "mm3": CUBIC_MILLIMETRE,
        "mass": CALCIUM_MASS,
        "mg": MILLIGRAM,
        "area": AREA,
        "mm2": SQUARE_MILLIMETRE,
    }
    return {
        key: code if isinstance(code, hd.sr.CodedConcept) else hd.sr.CodedConcept.from_code(code)
        for key, code in found.items()
    }


def _measurements(
    concepts: dict[str, hd.sr.CodedConcept],
    agatston: float,
    volume_mm3: float,
    mass_mg: float | None,
    area_mm2: float | None = None,
) -> list[hd.sr.Measurement]:
    found = [
        hd.sr.Measurement(
            name=concepts["score"],
            value=agatston,
            unit=concepts["no units"],
            method=concepts["agatston"],
        ),
        hd.sr.Measurement(name=concepts["volume"], value=volume_mm3, unit=concepts["mm3"]),
    ]
    if mass_mg is not None:
        found.append(hd.sr.Measurement(name=concepts["mass"], value=mass_mg, unit=concepts["mg"]))
    if area_mm2 is not None:
        found.append(hd.sr.Measurement(name=concepts["area"], value=area_mm2, unit=concepts["mm2"]))
    return found


def artery_groups(
    result: CalciumResult, series_uid: str
) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    """TID 1501 per artery, then for the whole coronary tree (with the categories)."""
    model = ModelIdentity(result.model.name, result.model.version)
    algorithm_id = algorithm(result)
    concepts = _concepts()
    groups = []
    for key in (*ARTERIES, "total"):
        site = CORONARY_ARTERY if key == "total" else ARTERY_SITES[key]
        evaluations = (
            [
                hd.sr.QualitativeEvaluation(
                    CLASSIC_CATEGORY, classic_value(result.category["classic"])
                ),
                hd.sr.QualitativeEvaluation(CAC_DRS, cac_drs_value(result.category["cac_drs"])),
            ]
            if key == "total"
            else None
        )
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=tracking_uid(series_uid, "calcium", model, f"artery {key}"),
                    identifier=f"Coronary calcium {key}",
                ),
                finding_type=concepts["plaque"],
                finding_sites=[hd.sr.FindingSite(site)],
                algorithm_id=algorithm_id,
                measurements=_measurements(
                    concepts,
                    result.agatston[key],
                    result.volume_mm3[key],
                    None if result.mass_mg is None else result.mass_mg[key],
                ),
                qualitative_evaluations=evaluations,
            )
        )
    return groups


def lesion_groups(
    result: CalciumResult, seg: CalciumSegmentation, series_uid: str
) -> list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    """TID 1411 per lesion, each referencing its artery's SEG frame on its slice.

    The algorithm (TID 4019) and the finding site of each artery are the same in every
    lesion group, so they are built once and their content items shared between groups:
    the written items are the same, and building them per lesion was a large part of the
    time with hundreds of lesions.
    """
    model = ModelIdentity(result.model.name, result.model.version)
    algorithm_id = algorithm(result)
    concepts = _concepts()
    sites = {artery: hd.sr.FindingSite(ARTERY_SITES[artery]) for artery in ARTERIES}
    groups = []
    for index, lesion in enumerate(result.lesions, start=1):
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=tracking_uid(series_uid, "calcium", model, f"lesion {index}"),
                    identifier=f"Calcium lesion {index} {lesion.artery} slice "
                    f"{lesion.slice_index + 1}",
                ),
                referenced_segment=_segment_reference(seg, lesion),
                finding_type=concepts["plaque"],
                finding_sites=[sites[lesion.artery]],
                algorithm_id=algorithm_id,
                measurements=_measurements(
                    concepts, lesion.agatston, lesion.volume_mm3, None, area_mm2=lesion.area_mm2
                ),
            )
        )
    return groups


def _segment_reference(seg: CalciumSegmentation, lesion: CalciumLesion) -> hd.sr.ReferencedSegment:
    """The lesion's artery segment, with the lesion's slice as its source image.

    A segment number and a frame number exclude each other in one reference (PS3.3
    C.17.3.2.1, Image SOP Instance Reference Macro), so the slice, not the SEG frame, says
    where the lesion is. Built by hand: highdicom 0.28's
    ``ReferencedSegment.from_segmentation`` fails on a SEG with one segment, whose Segment
    Identification is in the shared functional groups.
    """
    if (lesion.artery, lesion.SOPInstanceUID) not in seg.frames:
        raise ReportError(  # the SEG was built from other labels than the result's
            f"no {lesion.artery} segment frame on slice {lesion.slice_index} for a lesion"
        )
    return hd.sr.ReferencedSegment(
        sop_class_uid=seg.dataset.SOPClassUID,
        sop_instance_uid=seg.dataset.SOPInstanceUID,
        segment_number=seg.segment_numbers[lesion.artery],
        source_images=[
            hd.sr.SourceImageForSegmentation(
                referenced_sop_class_uid=seg.source_sop_class_uid,
                referenced_sop_instance_uid=lesion.SOPInstanceUID,
            )
        ],
    )


def build_calcium_sr(
    slices: Sequence[Dataset],
    result: CalciumResult,
    seg: CalciumSegmentation | None,
    identity: ObjectIdentity,
    predecessor: Predecessor | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The calcium SR over ``slices`` (the source CT, any order).

    ``seg`` is the job's SEG, which the lesion groups reference; None only when there is
    no lesion. ``predecessor`` names the SR this one replaces.
    """
    if result.lesions and seg is None:
        raise ReportError(f"{len(result.lesions)} lesions but no segmentation to reference")
    series_uid = str(slices[0].SeriesInstanceUID)
    model = ModelIdentity(result.model.name, result.model.version)
    groups: list[
        hd.sr.MeasurementsAndQualitativeEvaluations
        | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    ] = list(artery_groups(result, series_uid))
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(model),
        procedure_reported=CT_PROCEDURE,
        imaging_measurements=groups,
    )
    add_comments(report, [result.notice, SCORING_NOTE])
    evidence = [*slices, seg.dataset] if seg is not None else list(slices)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        **document_fields(identity, model, predecessor, Comprehensive3DSRStorage),
    )
    lesions = lesion_groups(result, seg, series_uid) if seg is not None else []
    _complete(sr, hd.sr.ImageLibrary(list(slices)), lesions, evidence)
    return sr


def _complete(
    sr: hd.sr.Comprehensive3DSR,
    library: hd.sr.ImageLibrary,
    lesions: Sequence[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations],
    evidence: Sequence[Dataset],
) -> None:
    """Add the Image Library (TID 1500 row 5, before the Imaging Measurements) and the
    lesion groups (in the Imaging Measurements container, after the artery groups) to the
    document and to its ``content`` tree.

    highdicom's SR constructor deep-copies the whole content tree and walks it twice for
    its references (once per value type, making a content item per node); with hundreds
    of lesion groups, or an image library of a hundred slices, that was most of the time
    of a calcium job. The document is therefore built without them and they are added
    here, which gives the same items in the same order as passing them to
    MeasurementReport. The check that the constructor made on the references, that every
    referenced instance is in the evidence (the Current Requested Procedure Evidence
    Sequence), is made here.
    """
    known = {str(ds.SOPInstanceUID) for ds in evidence}
    for template in (library, *lesions):
        if not _referenced(template[0]) <= known:
            raise ReportError("the report references an instance that is not in the evidence")
    roots = [sr, sr.content[0]]
    if roots[0].ContentSequence is roots[1].ContentSequence:  # the constructor did not copy
        roots.pop()
    for root in roots:
        container = _imaging_measurements(root)
        for group in lesions:
            container.ContentSequence.extend(group)
        position = list(root.ContentSequence).index(container)
        root.ContentSequence.insert(position, library[0])


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
