"""The CT image-quality SR: a Comprehensive SR holding a TID 1500 Measurement Report, built
with cardiogate's public report blocks (:mod:`cardiogate.reports`).

Content:

- one TID 1410 planar ROI group: the central region measured, as a closed SCOORD POLYLINE
  on the middle slice (a 2D SCOORD has no POLYGON; a POLYLINE whose last point is its first
  is closed, PS3.3 C.18.6.1.1); the noise as a TID 1419 measurement, Attenuation Coefficient (DCM
  112031, CID 7469) with derivation Standard Deviation (SCT 386136009, CID 7464) in HU
  (UCUM ``[hnsf'U]``), the median over the slices; Image Quality (DCM 111101) good or poor
  (DCM 122741 / 122742, CID 3114) and cardiogate's needs-review flag as qualitative
  evaluations;
- the algorithm (TID 4019), cardiogate as the observing device, and comments: the AI
  notice, how the noise was measured, the threshold, why review is needed;
- an Image Library of the middle slice, which is also the evidence (PS3.3 C.17.2.3: a
  report that is not the procedure's final one lists what its content references).

SCOORD image coordinates (PS3.3 C.18.6.1.2) put (0, 0) at the top left corner of the top
left pixel, so the region's outline runs along pixel edges: columns [start, end) span
x = start to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ComprehensiveSRStorage

from cardiogate.logs import quiet_highdicom
from cardiogate.reports import codes as c
from cardiogate.reports.build import cleaned, read_sources, refusals
from cardiogate.reports.common import (
    ModelIdentity,
    Predecessor,
    ReportError,
    add_comments,
    document_fields,
    object_identity,
    observation_context,
    source_series,
    tracking_uid,
)
from cardiogate.reports.sr_content import image_library, insert_library, measurement_report
from cardiogate.reports.sr_geometry import image_region
from cardiogate_ctqc.analysis import CentralRegion, CTQualityResult, Measured

TASK = "ctqc"
SR_SERIES = (9701, "CT image quality SR")
NOISE = codes.DCM.AttenuationCoefficient  # DCM 112031, with derivation:
STANDARD_DEVIATION = codes.SCT.StandardDeviation  # SCT 386136009
HOUNSFIELD_UNIT = codes.UCUM.HounsfieldUnit  # [hnsf'U]
IMAGE_QUALITY = codes.DCM.ImageQuality  # DCM 111101
QUALITY = {"acceptable": codes.DCM.GoodImageQuality, "noisy": codes.DCM.PoorImageQuality}
CTA_PERFORMED = codes.SCT.CTAngiographyOfCoronaryArteries  # SCT 419545005


def outline(region: CentralRegion) -> list[tuple[float, float]]:
    """The region's boundary as a closed polyline of (column, row) SCOORD points."""
    left, right = float(region.column_start), float(region.column_end)
    top, bottom = float(region.row_start), float(region.row_end)
    return [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)]


def algorithm(result: CTQualityResult) -> hd.sr.AlgorithmIdentification:
    """TID 4019: the model and the threshold, as one Algorithm Parameters item."""
    return hd.sr.AlgorithmIdentification(
        name=result.model.name,
        version=result.model.version,
        parameters=[f"max_noise_hu={result.max_noise_hu:g}"],
    )


def noise_group(
    result: CTQualityResult, image: Dataset, frame: int | None
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """TID 1410 for the central region, drawn on ``image`` (frame ``frame`` of a
    multi-frame image)."""
    model = ModelIdentity(result.model.name, result.model.version)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=tracking_uid(str(image.SeriesInstanceUID), TASK, model, "central region"),
            identifier="Image noise, central region",
        ),
        referenced_region=image_region(
            hd.sr.GraphicTypeValues.POLYLINE, outline(result.region), image, frame
        ),
        algorithm_id=algorithm(result),
        measurements=[
            hd.sr.Measurement(
                name=NOISE,
                value=result.noise_hu,
                unit=HOUNSFIELD_UNIT,
                derivation=STANDARD_DEVIATION,
            )
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(IMAGE_QUALITY, QUALITY[result.verdict]),
            hd.sr.QualitativeEvaluation(c.NEEDS_REVIEW, c.yes_no(result.needs_review)),
        ],
    )


def comments(result: CTQualityResult) -> list[str]:
    region = result.region
    lines = [
        result.notice,
        f"Noise: median over {len(result.slice_noise_hu)} slices of each slice's noise "
        f"standard deviation in its central region (rows {region.row_start}-"
        f"{region.row_end - 1}, columns {region.column_start}-{region.column_end - 1}), "
        "estimated from the median absolute deviation of adjacent pixel differences; the "
        "region is drawn on the middle slice.",
        f"Verdict: {result.verdict} (noisy above {result.max_noise_hu:g} HU).",
    ]
    if result.review_reason:
        lines.append(f"Needs review: {result.review_reason}.")
    return lines


def build_ctqc_objects(
    paths: Sequence[Path],
    measured: Measured,
    *,
    version_index: int = 0,
    predecessor: Predecessor | None = None,
    warnings: list[str] | None = None,
) -> list[Dataset]:
    """The image-quality SR of a measured series (the only object of this task)."""
    quiet_highdicom()
    datasets = read_sources(paths)
    reference = source_series(datasets)
    volume, result = measured.volume, measured.result
    uid = volume.sop_instance_uids[measured.middle]
    indexes = [i for i, ds in enumerate(datasets) if str(ds.get("SOPInstanceUID", "")) == uid]
    if not indexes:
        raise ReportError(f"the middle slice {uid} is not among the sources")
    image = cleaned(datasets, warnings)[indexes[0]]
    frame = None
    if int(image.get("NumberOfFrames") or 1) > 1 and volume.frame_numbers is not None:
        frame = volume.frame_numbers[measured.middle]
    model = ModelIdentity(result.model.name, result.model.version)
    identity = object_identity(
        str(reference.SeriesInstanceUID), TASK, "sr", model, version_index, series=SR_SERIES
    )
    with refusals(f"the {TASK} SR"):
        report = measurement_report(
            observation_context(model), c.CT_PROCEDURE, [noise_group(result, image, frame)]
        )
        insert_library(report[0], image_library([(image, [frame] if frame else [])]))
        add_comments(report, comments(result))
        sr: Any = hd.sr.ComprehensiveSR(
            evidence=[image],
            content=report,
            performed_procedure_codes=[CTA_PERFORMED],
            **document_fields(identity, model, predecessor, ComprehensiveSRStorage),
        )
    return [sr]
