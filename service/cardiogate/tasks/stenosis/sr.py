"""The stenosis SR: a Comprehensive SR holding a TID 1500 Measurement Report that viewers
draw (``shared/reference/viewers-and-codes.md`` section 1: every group on an image).

Content:

- one TID 1410 planar ROI group per lesion: the vessel course through the lesion as a
  SCOORD POLYLINE on its frame (Referenced Frame Number of the XA instance, which OHIF
  matches), finding type stenosis (SCT 415582006), finding site the lesion's coronary
  segment (its CID 3014 SNOMED code, e.g. SCT 91748002 Mid Left Anterior Descending
  Coronary Artery; coronary artery, SCT 41801008, when the model does not identify vessels),
  % diameter stenosis (SCT 408715008, %, method
  DCM 122651), the model's certainty (DCM 111012, %) and the grade as a qualitative
  evaluation whose local code says it is CAD-RADS bands applied to XA, a convention of
  this service;
- when there is a lesion, one TID 1410 group for the run, a POINT on the most severe
  lesion (geometric purpose DCM 128140 "Representative point"): the model's certainty for
  the run and, as qualitative evaluations, significant stenosis yes/no and needs review
  yes/no; without a lesion those two are in the report's Qualitative Evaluations container
  (TID 1500 row 12), as there is nothing to draw;
- the algorithm, cardiogate as the observing device, and comments: the AI notice, the
  grading convention, how the % was obtained, the frames analysed, why review is needed;
- a compact Image Library of the instances drawn on (:mod:`cardiogate.reports.sr_content`),
  which are also the evidence (PS3.3 C.17.2.3; every instance when there is no lesion).

SCOORD coordinates (PS3.3 C.18.6.1.2) put (0, 0) at the top left corner of the top left
pixel, so a pixel centre is at (column + 0.5, row + 0.5); the analysis reports pixel centres
as (x, y) = (column, row), hence the half-pixel shift here.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import ComprehensiveSRStorage

from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports import codes as c
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
from cardiogate.reports.sr_content import (
    add_evaluations,
    evaluation,
    image_library,
    insert_library,
    measurement_report,
)
from cardiogate.reports.sr_geometry import image_region
from cardiogate.tasks.stenosis.analysis import StenosisLesion, StenosisResult

PIXEL_CENTRE = 0.5  # analysis pixel centres -> SCOORD image coordinates


def scoord(points_xy: Sequence[tuple[float, float]], rows: int, columns: int) -> np.ndarray:
    """(x, y) pixel centres as SCOORD (column, row) image coordinates, inside the image."""
    data = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2) + PIXEL_CENTRE
    data[:, 0] = np.clip(data[:, 0], 0.0, float(columns))
    data[:, 1] = np.clip(data[:, 1], 0.0, float(rows))
    return data


def algorithm(result: StenosisResult) -> hd.sr.AlgorithmIdentification:
    """TID 4019 for the model and the analysis parameters, as one Algorithm Parameters item
    of ``key=value`` pairs joined by ``"; "`` (dcmqi's tid1500reader reads the first item
    only)."""
    pairs = [f"{key}={value}" for key, value in result.parameters.items()]
    return hd.sr.AlgorithmIdentification(
        name=result.model["name"],
        version=result.model["version"],
        parameters=["; ".join(pairs)] if pairs else None,
    )


def site(lesion: StenosisLesion) -> hd.sr.CodedConcept | Code:
    """The lesion's finding site: its segment's SNOMED code (CID 3014), else the coronary
    artery as a whole."""
    if lesion.segment_code is None or lesion.segment_meaning is None:
        whole: Code = c.CORONARY_ARTERY
        return whole
    return hd.sr.CodedConcept(
        value=lesion.segment_code, scheme_designator="SCT", meaning=lesion.segment_meaning
    )


def _identifier(prefix: str, lesion: StenosisLesion) -> str:
    """``"Stenosis 1 mid LAD (segment 7) frame 12"``: the Tracking Identifier viewers show
    as the measurement's label (LO, at most 64 characters)."""
    where = "" if lesion.segment is None else f" {lesion.site}"
    return f"{prefix}{where} frame {lesion.frame}"[:64]


def lesion_group(
    index: int, lesion: StenosisLesion, result: StenosisResult, cine: XACine, image: Dataset
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """TID 1410 for one lesion on its frame of ``image``."""
    rows, columns = (int(n) for n in cine.frames.shape[1:])
    points = lesion.polyline_px if len(lesion.polyline_px) >= 2 else [(lesion.x_px, lesion.y_px)]
    graphic_type = (
        hd.sr.GraphicTypeValues.POLYLINE if len(points) >= 2 else hd.sr.GraphicTypeValues.POINT
    )
    model = ModelIdentity(result.model["name"], result.model["version"])
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=tracking_uid(cine.series_instance_uid, "stenosis", model, f"lesion {index}"),
            identifier=_identifier(f"Stenosis {index}", lesion),
        ),
        referenced_region=image_region(
            graphic_type, scoord(points, rows, columns), image, lesion.referenced_frame
        ),
        finding_type=c.STENOSIS,
        finding_sites=[hd.sr.FindingSite(site(lesion))],
        algorithm_id=algorithm(result),
        measurements=[
            hd.sr.Measurement(
                name=c.DIAMETER_STENOSIS,
                value=lesion.percent_stenosis,
                unit=c.PERCENT,
                method=c.DIAMETER_METHOD,
            ),
            *qca_measurements(lesion),
            hd.sr.Measurement(
                name=c.CERTAINTY, value=round(lesion.probability * 100, 2), unit=c.PERCENT
            ),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                c.STENOSIS_GRADE, c.grade_value(lesion.cad_rads, lesion.grade)
            )
        ],
    )


def qca_measurements(lesion: StenosisLesion) -> list[hd.sr.Measurement]:
    """The lesion's QCA in mm, when it was measured: minimal lumen diameter, interpolated
    reference diameter and lesion length (none for the network's estimate)."""
    if lesion.percent_method != "qca":
        return []
    readings = (
        (c.LUMEN_DIAMETER, lesion.minimal_lumen_diameter_mm, c.MINIMUM),
        (c.LUMEN_DIAMETER, lesion.reference_diameter_mm, c.REFERENCE_DIAMETER_DERIVATION),
        (c.LESION_LENGTH, lesion.lesion_length_mm, None),
    )
    return [
        hd.sr.Measurement(name=name, value=value, unit=c.MILLIMETRE, derivation=derivation)
        for name, value, derivation in readings
        if value is not None
    ]


def _flags(result: StenosisResult) -> list[tuple[hd.sr.CodedConcept, Code]]:
    return [
        (c.SIGNIFICANT_STENOSIS, c.yes_no(result.significant)),
        (c.NEEDS_REVIEW, c.yes_no(result.needs_review)),
    ]


def summary_group(
    result: StenosisResult, cine: XACine, image: Dataset
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """TID 1410 for the whole run: a point on the most severe lesion, on its frame."""
    lesion = result.most_severe
    if lesion is None:
        raise ReportError("a run without a lesion has no point to draw its summary on")
    rows, columns = (int(n) for n in cine.frames.shape[1:])
    model = ModelIdentity(result.model["name"], result.model["version"])
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=tracking_uid(cine.series_instance_uid, "stenosis", model, "series"),
            identifier="Stenosis series summary",
        ),
        referenced_region=image_region(
            hd.sr.GraphicTypeValues.POINT,
            scoord([(lesion.x_px, lesion.y_px)], rows, columns),
            image,
            lesion.referenced_frame,
        ),
        geometric_purpose=c.REPRESENTATIVE_POINT,
        finding_type=c.STENOSIS,
        finding_sites=[hd.sr.FindingSite(site(lesion))],
        algorithm_id=algorithm(result),
        measurements=[
            hd.sr.Measurement(
                name=c.CERTAINTY, value=round(result.probability * 100, 2), unit=c.PERCENT
            )
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name, value) for name, value in _flags(result)
        ],
    )


def frames_note(result: StenosisResult, cine: XACine) -> str:
    """The frames the model saw, by instance frame number (one instance) or cine frame."""
    numbers = sorted(result.frames_used)
    instances = {cine.frame_sources[frame - 1][0] for frame in numbers}
    if len(instances) == 1:
        numbers = sorted(cine.frame_sources[frame - 1][1] for frame in numbers)
        return f"Frames analysed: {', '.join(map(str, numbers))}."
    return f"Frames analysed (cine order, one instance each): {', '.join(map(str, numbers))}."


def build_stenosis_sr(
    sources: Sequence[Dataset],
    result: StenosisResult,
    cine: XACine,
    identity: ObjectIdentity,
    predecessor: Predecessor | None = None,
) -> hd.sr.ComprehensiveSR:
    """The stenosis SR over the cine's ``sources``; ``predecessor`` names the SR this one
    replaces."""
    model = ModelIdentity(result.model["name"], result.model["version"])
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    drawn: dict[str, set[int]] = {}  # SOPInstanceUID -> frames
    for lesion in result.lesions:
        if lesion.SOPInstanceUID not in by_uid:
            raise ReportError(f"lesion on frame {lesion.frame} is not on one of the sources")
        drawn.setdefault(lesion.SOPInstanceUID, set()).add(lesion.referenced_frame)
    groups = [
        lesion_group(index, lesion, result, cine, by_uid[lesion.SOPInstanceUID])
        for index, lesion in enumerate(result.lesions, start=1)
    ]
    if result.most_severe is not None:
        groups.insert(0, summary_group(result, cine, by_uid[result.most_severe.SOPInstanceUID]))
    shown = [(by_uid[uid], _frames(by_uid[uid], frames)) for uid, frames in drawn.items()] or [
        (ds, []) for ds in sources
    ]
    report = measurement_report(observation_context(model), c.XA_PROCEDURE, groups)
    insert_library(report[0], image_library(shown))
    comments = [
        result.notice,
        f"Grading: {result.grading_convention}.",
        f"% diameter stenosis: {result.percent_method}.",
        frames_note(result, cine),
    ]
    if result.review_reason:
        comments.append(f"Needs review: {result.review_reason}.")
    add_comments(report, comments)
    if result.most_severe is None:
        add_evaluations(report, [evaluation(name, value) for name, value in _flags(result)])
    return hd.sr.ComprehensiveSR(
        evidence=[ds for ds, _ in shown],
        content=report,
        performed_procedure_codes=[c.XA_PERFORMED],
        **document_fields(identity, model, predecessor, ComprehensiveSRStorage),
    )


def _frames(image: Dataset, frames: set[int]) -> list[int]:
    """The frames an Image Library entry names: those drawn on, of a multi-frame image."""
    return sorted(frames) if int(image.get("NumberOfFrames") or 1) > 1 else []
