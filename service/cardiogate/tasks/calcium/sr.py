"""The calcium SR: a Comprehensive SR holding a TID 1500 Measurement Report that viewers
draw (``shared/reference/viewers-and-codes.md`` section 1, recipe 3: one SR, every group
on an image).

OHIF reads each measurement group (DCM 125007 in DCM 126010) and looks up the image of its
first SCOORD; a group without one stopped the whole SR from loading. So every group is a
TID 1410 planar ROI group with a 2D SCOORD selected from a slice:

- one group per lesion (the slice regions of one artery that overlap from slice to slice,
  :mod:`cardiogate.tasks.calcium.sr_regions`): its outline, a closed POLYLINE along the
  pixel edges on the slice where it is largest; finding calcified atheromatous plaque (SCT
  29483008) at its artery (CID 3016); its Agatston score (SCT 450360000, method DCM 112055,
  unit 1) and calcium volume (DCM 122660, mm3), the sums over its slices;
- one group per artery with calcium and one for the whole tree (SCT 41801008), each a
  POINT whose geometric purpose is "Representative point" (DCM 128140), on the highest
  scoring region of the slice where that artery (the tree) scores most: the Agatston score,
  volume and, when calibrated, mass (DCM 122661, mg) of all its calcium; the tree's group
  also has the classic and CAC-DRS categories and the algorithm with its parameters;
- from a model that labels the aortic valve (``CalciumResult.aortic_valve``), valve calcium
  apart from all of these: a group per valve lesion (pathologic calcification, SCT
  18115005, at the aortic valve, SCT 34202007) and one POINT group for the valve, with
  its Agatston score (DCM 112058 "Calcium score", not the coronary SCT 450360000, method
  DCM 112055), volume and mass; none of it is in the tree's scores;
- the Qualitative Evaluations container (TID 1500 row 12), which viewers leave alone: each
  artery without calcium as "calcified atheromatous plaque: Absent" at that artery (the
  tree too, and the categories, when there is no calcium at all), a measured valve without
  calcium as "pathologic calcification: Absent" at the aortic valve, the AI notice, the
  scoring conventions and whether valve calcium was measured;
- a compact Image Library (:mod:`cardiogate.reports.sr_content`) of the slices drawn on,
  which are also the evidence: this report is not the procedure's final report, so its
  evidence is what its content references (PS3.3 C.17.2.3); all slices without calcium.

Mass per lesion is not reported: the result carries a region's volume but not its mean HU.
The SR is a Comprehensive SR (88.33), not 3D (88.34): it holds no SCOORD3D, and readers
that take TID 1500 (Orthanc Stone, OHIF's 2D SR path) take 88.33.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ComprehensiveSRStorage

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
    measurement_report,
)
from cardiogate.reports.sr_geometry import image_region
from cardiogate.tasks.calcium.result import CalciumLesion, CalciumResult
from cardiogate.tasks.calcium.scoring import AORTIC_VALVE, ARTERIES
from cardiogate.tasks.calcium.seg import (
    AORTIC_VALVE_SITE,
    VALVE_CALCIFICATION,
    CalciumSegmentation,
)
from cardiogate.tasks.calcium.sr_assembly import add_lesion_groups
from cardiogate.tasks.calcium.sr_regions import (
    Footprint,
    Lesion,
    footprints,
    key_lesion,
    lesions_across_slices,
)

SCORING_NOTE = (
    "Agatston: 8-connected regions at or above the threshold per slice, weighted by peak HU "
    "(1-4), scaled by slice increment / 3 mm. Mass only with a calibration factor."
)
VALVE_NOT_MEASURED = "Aortic valve calcium: not measured by this model."
VALVE_SCORE = codes.DCM.CalciumScore  # DCM 112058: SCT 450360000 is the coronary score


def algorithm(result: CalciumResult) -> hd.sr.AlgorithmIdentification:
    """TID 4019 for the model and the scoring parameters, as one Algorithm Parameters item
    of ``key=value`` pairs joined by ``"; "`` (dcmqi's tid1500reader reads the first item
    only)."""
    geometry = result.geometry
    values = [f"{key}={value:g}" for key, value in result.parameters.items()]
    values += [  # the weighting, slice scaling and mass rule are in SCORING_NOTE
        "connectivity=8",
        f"slice_increment_mm={geometry.get('slice_increment_mm')}",
        f"slice_thickness_mm={geometry.get('slice_thickness_mm')}",
    ]
    return hd.sr.AlgorithmIdentification(
        name=result.model.name,
        version=result.model.version,
        parameters=["; ".join(values)],
    )


def _concepts() -> dict[str, hd.sr.CodedConcept]:
    """The coded concepts of every calcium group, as highdicom's CodedConcept.

    highdicom converts a pydicom Code into a new CodedConcept each time one is used; the
    lesion groups use the same few concepts hundreds of times, so they are converted once
    per document (fresh objects for each document: they become part of it).
    """
    found: dict[str, Code | hd.sr.CodedConcept] = {
        "plaque": c.CALCIFIED_PLAQUE,
        "valve": VALVE_CALCIFICATION,
        "score": c.CALCIUM_SCORE,
        "valve score": VALVE_SCORE,
        "no units": c.NO_UNITS,
        "agatston": c.AGATSTON_METHOD,
        "volume": c.CALCIUM_VOLUME,
        "mm3": c.CUBIC_MILLIMETRE,
        "mass": c.CALCIUM_MASS,
        "mg": c.MILLIGRAM,
        "point": c.REPRESENTATIVE_POINT,
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
    score: str = "score",
) -> list[hd.sr.Measurement]:
    """Agatston, volume and (when given) mass; ``score`` names the Agatston concept: the
    coronary one, or "valve score"."""
    found = [
        hd.sr.Measurement(
            name=concepts[score],
            value=agatston,
            unit=concepts["no units"],
            method=concepts["agatston"],
        ),
        hd.sr.Measurement(name=concepts["volume"], value=volume_mm3, unit=concepts["mm3"]),
    ]
    if mass_mg is not None:
        found.append(hd.sr.Measurement(name=concepts["mass"], value=mass_mg, unit=concepts["mg"]))
    return found


def _categories(result: CalciumResult) -> list[tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]]:
    return [
        (c.CLASSIC_CATEGORY, c.classic_value(result.category["classic"])),
        (c.CAC_DRS, c.cac_drs_value(result.category["cac_drs"])),
    ]


def artery_groups(
    result: CalciumResult, prints: Sequence[Footprint], series_uid: str
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """TID 1410 per artery with calcium, then for the whole tree (with the categories),
    each a POINT on its key slice region; none without calcium."""
    model = ModelIdentity(result.model.name, result.model.version)
    concepts = _concepts()
    groups = []
    for key in (*ARTERIES, "total"):
        chosen = key_lesion(result.lesions, None if key == "total" else key)
        if chosen is None:
            continue
        site = c.CORONARY_ARTERY if key == "total" else c.ARTERY_SITES[key]
        evaluations = (
            [hd.sr.QualitativeEvaluation(name, value) for name, value in _categories(result)]
            if key == "total"
            else None
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=tracking_uid(series_uid, "calcium", model, f"artery {key}"),
                    identifier=f"Coronary calcium {key}",
                ),
                referenced_region=image_region(
                    hd.sr.GraphicTypeValues.POINT, prints[chosen].point(), prints[chosen].image
                ),
                geometric_purpose=concepts["point"],
                finding_type=concepts["plaque"],
                finding_sites=[hd.sr.FindingSite(site)],
                algorithm_id=algorithm(result) if key == "total" else None,
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


def valve_group(
    result: CalciumResult, prints: Sequence[Footprint], series_uid: str
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """TID 1410 for the aortic valve calcium, a POINT on its key slice region (``prints``
    are the valve lesions'); none when it was not measured or there is none."""
    valve = result.aortic_valve
    chosen = None if valve is None else key_lesion(valve.lesions, None)
    if valve is None or chosen is None:
        return []
    model = ModelIdentity(result.model.name, result.model.version)
    concepts = _concepts()
    return [
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=tracking_uid(series_uid, "calcium", model, "aortic valve"),
                identifier="Aortic valve calcium, not in the coronary score",
            ),
            referenced_region=image_region(
                hd.sr.GraphicTypeValues.POINT, prints[chosen].point(), prints[chosen].image
            ),
            geometric_purpose=concepts["point"],
            finding_type=concepts["valve"],
            finding_sites=[hd.sr.FindingSite(AORTIC_VALVE_SITE)],
            measurements=_measurements(
                concepts, valve.agatston, valve.volume_mm3, valve.mass_mg, "valve score"
            ),
        )
    ]


def lesion_groups(
    result: CalciumResult,
    regions: Sequence[CalciumLesion],
    prints: Sequence[Footprint],
    lesions: Sequence[Lesion],
    series_uid: str,
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    """TID 1410 per lesion (``lesions`` joined from the slice ``regions`` whose footprints
    are ``prints``; all coronary, or all aortic valve): its outline on the slice where it
    is largest.

    The finding site of each artery is the same in every lesion group, so it is built once
    and its content items shared between groups: the written items are the same, and
    building them per lesion was a large part of the time with hundreds of lesions.
    """
    model = ModelIdentity(result.model.name, result.model.version)
    concepts = _concepts()
    sites = {artery: hd.sr.FindingSite(c.ARTERY_SITES[artery]) for artery in ARTERIES}
    sites[AORTIC_VALVE] = hd.sr.FindingSite(AORTIC_VALVE_SITE)
    groups = []
    for number, lesion in enumerate(lesions, start=1):
        drawn = prints[lesion.drawn]
        where = slice_label(drawn.image, regions[lesion.drawn].slice_index)
        valve = lesion.artery == AORTIC_VALVE
        name, score = ("valve lesion", "valve score") if valve else ("lesion", "score")
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=tracking_uid(series_uid, "calcium", model, f"{name} {number}"),
                    identifier=f"Aortic valve calcium lesion {number} {where}"
                    if valve
                    else f"Calcium lesion {number} {lesion.artery} {where}",
                ),
                referenced_region=image_region(
                    hd.sr.GraphicTypeValues.POLYLINE, drawn.outline(), drawn.image
                ),
                finding_type=concepts["valve" if valve else "plaque"],
                finding_sites=[sites[lesion.artery]],
                measurements=_measurements(
                    concepts, lesion.agatston, lesion.volume_mm3, None, score
                ),
            )
        )
    return groups


def slice_label(image: Dataset, slice_index: int) -> str:
    """How a viewer names the slice: its Instance Number, else its place in the volume."""
    number = image.get("InstanceNumber")
    return f"image {number}" if number not in (None, "") else f"slice {slice_index + 1}"


def report_evaluations(result: CalciumResult) -> list[hd.sr.ContentItem]:
    """TID 1500 row 13 items: each artery without calcium as plaque absent at that site;
    without any calcium, the whole tree too and the categories (which the tree's group
    carries otherwise)."""
    items: list[hd.sr.ContentItem] = []
    if not result.lesions:
        items += [evaluation(name, value) for name, value in _categories(result)]
    for key in (*ARTERIES, "total"):
        if key_lesion(result.lesions, None if key == "total" else key) is not None:
            continue
        site = c.CORONARY_ARTERY if key == "total" else c.ARTERY_SITES[key]
        items.append(evaluation(c.CALCIFIED_PLAQUE, c.ABSENT, site))
    if result.aortic_valve is not None and not result.aortic_valve.lesions:
        items.append(evaluation(VALVE_CALCIFICATION, c.ABSENT, AORTIC_VALVE_SITE))
    return items


def build_calcium_sr(
    slices: Sequence[Dataset],
    result: CalciumResult,
    seg: CalciumSegmentation | None,
    identity: ObjectIdentity,
    predecessor: Predecessor | None = None,
) -> hd.sr.ComprehensiveSR:
    """The calcium SR over ``slices`` (the source CT in the volume's order).

    ``seg`` is the job's SEG, whose pixels outline the lesions; None only when there is no
    lesion (coronary or aortic valve). ``predecessor`` names the SR this one replaces.
    """
    valve = [] if result.aortic_valve is None else result.aortic_valve.lesions
    regions = [*result.lesions, *valve]
    if regions and seg is None:
        raise ReportError(f"{len(regions)} lesions but no segmentation to outline them")
    series_uid = str(slices[0].SeriesInstanceUID)
    model = ModelIdentity(result.model.name, result.model.version)
    prints = footprints(slices, result.lesions, seg) if seg is not None else []
    valve_prints = footprints(slices, valve, seg) if seg is not None else []
    lesions = lesions_across_slices(result.lesions, prints)
    valve_lesions = lesions_across_slices(valve, valve_prints)
    report = measurement_report(
        observation_context(model),
        c.CT_PROCEDURE,
        [
            *artery_groups(result, prints, series_uid),
            *valve_group(result, valve_prints, series_uid),
        ],
    )
    valve_note = VALVE_NOT_MEASURED if result.aortic_valve is None else result.aortic_valve.note
    add_comments(report, [result.notice, SCORING_NOTE, valve_note])
    add_evaluations(report, report_evaluations(result))
    # the evidence of a report that is not the final one of the procedure is the images its
    # content references (PS3.3 C.17.2.3): the slices drawn on, or all without calcium
    drawn = _drawn(result.lesions, lesions) | _drawn(valve, valve_lesions)
    shown = [slices[z] for z in sorted(drawn)] or list(slices)
    sr = hd.sr.ComprehensiveSR(
        evidence=shown,
        content=report,
        performed_procedure_codes=[c.CT_PERFORMED],
        **document_fields(identity, model, predecessor, ComprehensiveSRStorage),
    )
    library = image_library([(ds, []) for ds in shown])
    groups = lesion_groups(result, result.lesions, prints, lesions, series_uid)
    groups += lesion_groups(result, valve, valve_prints, valve_lesions, series_uid)
    add_lesion_groups(sr, library, groups, shown)
    return sr


def _drawn(regions: Sequence[CalciumLesion], lesions: Sequence[Lesion]) -> set[int]:
    """The slices that the groups of ``regions`` are drawn on: each lesion's (``lesions``
    joined from ``regions``) and the key region's of each artery and of them all."""
    keys = [key_lesion(regions, key) for key in (*ARTERIES, None)]
    found = {regions[i].slice_index for i in keys if i is not None}
    return found | {regions[lesion.drawn].slice_index for lesion in lesions}
