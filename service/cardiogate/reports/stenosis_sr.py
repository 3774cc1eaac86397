"""The stenosis SR: a Comprehensive SR holding a TID 1500 Measurement Report.

Content (``shared/reference/sr-and-scoring.md`` section 4, "XA stenosis report"):

- one TID 1410 planar ROI group per lesion: the vessel course through the lesion as a
  SCOORD POLYLINE on its frame (Referenced Frame Number of the XA instance), finding type
  stenosis (SCT 415582006), finding site coronary artery (SCT 41801008: the vessel is not
  identified), % diameter stenosis (SCT 408715008, %, method DCM 122651), the model's
  certainty (DCM 111012, %) and the grade as a qualitative evaluation whose local code
  says it is CAD-RADS bands applied to XA, a convention of this service;
- one TID 1501 group for the series: significant stenosis yes/no, needs review yes/no and
  the model's certainty for the run, over the frames the model saw;
- the algorithm, cardiogate as the observing device, and comments: the AI notice, the
  grading convention, how the % was obtained, and why review is needed.

SCOORD coordinates (PS3.3 C.18.6.1.2) put (0, 0) at the top left corner of the top left
pixel, so a pixel centre is at (column + 0.5, row + 0.5); the analysis reports pixel centres
as (x, y) = (column, row), hence the half-pixel shift here.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage

from cardiogate.analyses.stenosis import StenosisLesion, StenosisResult
from cardiogate.analyses.xa_cine import XACine
from cardiogate.reports.codes import (
    CERTAINTY,
    CORONARY_ARTERY,
    DIAMETER_METHOD,
    DIAMETER_STENOSIS,
    NEEDS_REVIEW,
    PERCENT,
    SIGNIFICANT_STENOSIS,
    STENOSIS,
    STENOSIS_GRADE,
    XA_PROCEDURE,
    grade_value,
    yes_no,
)
from cardiogate.reports.common import (
    ModelIdentity,
    ObjectIdentity,
    Predecessor,
    add_comments,
    document_fields,
    observation_context,
    tracking_uid,
)

PIXEL_CENTRE = 0.5  # analysis pixel centres -> SCOORD image coordinates


def scoord(points_xy: Sequence[tuple[float, float]], rows: int, columns: int) -> np.ndarray:
    """(x, y) pixel centres as SCOORD (column, row) image coordinates, inside the image."""
    data = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2) + PIXEL_CENTRE
    data[:, 0] = np.clip(data[:, 0], 0.0, float(columns))
    data[:, 1] = np.clip(data[:, 1], 0.0, float(rows))
    return data


def algorithm(result: StenosisResult) -> hd.sr.AlgorithmIdentification:
    """TID 4019 for the model and the analysis parameters."""
    return hd.sr.AlgorithmIdentification(
        name=result.model["name"],
        version=result.model["version"],
        parameters=[f"{key}={value}" for key, value in result.parameters.items()],
    )


def lesion_group(
    index: int, lesion: StenosisLesion, result: StenosisResult, cine: XACine
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """TID 1410 for one lesion on its frame."""
    rows, columns = (int(n) for n in cine.frames.shape[1:])
    points = lesion.polyline_px if len(lesion.polyline_px) >= 2 else [(lesion.x_px, lesion.y_px)]
    region = hd.sr.ImageRegion(
        graphic_type=(
            hd.sr.GraphicTypeValues.POLYLINE if len(points) >= 2 else hd.sr.GraphicTypeValues.POINT
        ),
        graphic_data=scoord(points, rows, columns),
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=cine.sop_class_uid,
            referenced_sop_instance_uid=lesion.SOPInstanceUID,
            referenced_frame_numbers=[lesion.referenced_frame],
        ),
    )
    model = ModelIdentity(result.model["name"], result.model["version"])
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=tracking_uid(cine.series_instance_uid, "stenosis", model, f"lesion {index}"),
            identifier=f"Stenosis {index} frame {lesion.frame}",
        ),
        referenced_region=region,
        finding_type=STENOSIS,
        finding_sites=[hd.sr.FindingSite(CORONARY_ARTERY)],
        algorithm_id=algorithm(result),
        measurements=[
            hd.sr.Measurement(
                name=DIAMETER_STENOSIS,
                value=lesion.percent_stenosis,
                unit=PERCENT,
                method=DIAMETER_METHOD,
            ),
            hd.sr.Measurement(
                name=CERTAINTY, value=round(lesion.probability * 100, 2), unit=PERCENT
            ),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(STENOSIS_GRADE, grade_value(lesion.cad_rads, lesion.grade))
        ],
    )


def summary_group(
    result: StenosisResult, cine: XACine
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """TID 1501 for the whole run, over the frames the model saw."""
    frames_by_instance: dict[str, list[int]] = {}
    for frame in result.frames_used:
        sop, number = cine.frame_sources[frame - 1]
        frames_by_instance.setdefault(sop, []).append(number)
    model = ModelIdentity(result.model["name"], result.model["version"])
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=tracking_uid(cine.series_instance_uid, "stenosis", model, "series"),
            identifier="Stenosis series summary",
        ),
        finding_type=STENOSIS,
        finding_sites=[hd.sr.FindingSite(CORONARY_ARTERY)],
        algorithm_id=algorithm(result),
        measurements=[
            hd.sr.Measurement(
                name=CERTAINTY, value=round(result.probability * 100, 2), unit=PERCENT
            )
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(SIGNIFICANT_STENOSIS, yes_no(result.significant)),
            hd.sr.QualitativeEvaluation(NEEDS_REVIEW, yes_no(result.needs_review)),
        ],
        source_images=[
            hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=cine.sop_class_uid,
                referenced_sop_instance_uid=sop,
                referenced_frame_numbers=sorted(numbers),
            )
            for sop, numbers in frames_by_instance.items()
        ],
    )


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
    groups: list[
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
        | hd.sr.MeasurementsAndQualitativeEvaluations
    ] = [summary_group(result, cine)]
    groups += [
        lesion_group(index, lesion, result, cine)
        for index, lesion in enumerate(result.lesions, start=1)
    ]
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(model),
        procedure_reported=XA_PROCEDURE,
        imaging_measurements=groups,
        # no Image Library (TID 1600, optional): highdicom 0.28 fails on an XA image whose
        # Patient Orientation is empty, as it may be; the evidence lists the instances
    )
    comments = [
        result.notice,
        f"Grading: {result.grading_convention}.",
        f"% diameter stenosis: {result.percent_method}.",
    ]
    if result.review_reason:
        comments.append(f"Needs review: {result.review_reason}.")
    add_comments(report, comments)
    return hd.sr.ComprehensiveSR(
        evidence=list(sources),
        content=report,
        **document_fields(identity, model, predecessor, ComprehensiveSRStorage),
    )
