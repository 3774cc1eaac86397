"""Per-cine outcomes of a stenosis model on either phantom family, and the cross-family
metrics over them (:mod:`cgtrain.bootstrap` resamples the cines for their intervals).

:func:`case_outcome` takes one cine's :class:`StenosisResult` from the service's own
``analyze_xa`` and its truth. A reported lesion matches a true one (of any severity) lying
within ``match_mm`` of it on the frame it was reported on (``lesion.frame``, 1-based; the
truth's ``positions_px`` are per frame); reports are taken surest first, each true lesion
matched once. A report near a true lesion already matched (the same lesion reported on
another frame) is a duplicate, not a false lesion; a report near a lesion under 50% is a
match too (the model may read 45% as 52%). Only a report near no true lesion at all is a
false lesion. This holds whether the analysis reports a lesion once (with ``frames_seen``)
or once per sighting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from cardiogate.inference.engine import LoadedModel
from cardiogate.tasks.stenosis.analysis import StenosisResult, analyze_xa
from cardiogate.tasks.stenosis.segments import segment_of
from cgtrain.bootstrap import Metric, band, mean_of, ratio
from cgtrain.families import is_normal, xa_cine

SIGNIFICANT = 50.0
PERCENT_BANDS = ((50.0, 70.0, "50-69%"), (70.0, 90.0, "70-89%"), (90.0, 101.0, "90%+"))
LENGTH_BANDS = ((0.0, 10.0, "<10 mm"), (10.0, 20.0, "10-20 mm"), (20.0, np.inf, ">=20 mm"))


def true_segment(vessel: str, position: float | None) -> str | None:
    """The SCCT segment (short name) of a true lesion; None for a vessel the service's
    segment model does not know."""
    try:
        return segment_of(vessel, position).short
    except ValueError:
        return None


def _reported_segment(report: dict[str, Any]) -> str | None:
    if report.get("segment_short"):
        return str(report["segment_short"])
    vessel = report.get("vessel")
    return None if vessel is None else true_segment(vessel, report.get("position_along_vessel"))


def match_reports(
    reports: list[dict[str, Any]], truth: list[dict[str, Any]], match_px: float
) -> tuple[dict[int, dict[str, Any]], int, int]:
    """``({true lesion index: its report}, false lesions, duplicates)`` (module docstring)."""
    pairs: dict[int, dict[str, Any]] = {}
    false_lesions = duplicates = 0
    for report in sorted(reports, key=lambda r: -float(r["probability"])):
        frame = int(report["frame"]) - 1
        near = []
        for i, t in enumerate(truth):
            if 0 <= frame < len(t["positions_px"]):
                x, y = t["positions_px"][frame]
                d = float(np.hypot(report["x_px"] - x, report["y_px"] - y))
                if d <= match_px:
                    near.append((d, i))
        free = sorted(n for n in near if n[1] not in pairs)
        if free:
            pairs[free[0][1]] = report
        elif near:
            duplicates += 1
        else:
            false_lesions += 1
    return pairs, false_lesions, duplicates


ANATOMY = ("ribs", "spine", "diaphragm")  # family B's chest structures in the frame
NOISE_BANDS = ((0.0, "<0.015"), (0.015, "0.015-0.025"), (0.025, ">=0.025"))


def difficulty_of(cine: Any) -> dict[str, Any]:
    """What makes a cine hard: B's truth ``difficulty``; for A what its DICOM says (A's
    truth records no noise or overlapping structures)."""
    given = cine.truth.get("difficulty")
    if given is not None:
        return {
            k: v
            for k, v in dict(given).items()
            if isinstance(v, str | int | float | bool) or k == "overlapping_structures"
        }
    first = cine.datasets[0]
    return {"bits_stored": int(first.BitsStored), "size": int(first.Rows)}


def strata_of(difficulty: dict[str, Any]) -> dict[str, str]:
    """The cine's band in each stratum: quantum noise (1/sqrt of the photons a pixel gets
    behind the patient), bit depth, matrix size, the chest structures and how many devices
    beyond the catheter (guide wire, stent, sternal wires, pacemaker lead) overlap the
    vessels ("not recorded" where a family records none)."""
    noise = difficulty.get("noise_level")
    overlapping = difficulty.get("overlapping_structures")
    if overlapping is None:
        anatomy = devices = "not recorded"
    else:
        anatomy = "+".join(s for s in ANATOMY if s in overlapping) or "none"
        extra = len(set(overlapping) - {*ANATOMY, "catheter"})  # wires, stents, leads
        devices = ("catheter only", "catheter + 1 device", "catheter + 2+ devices")[min(extra, 2)]
    return {
        "noise": "not recorded" if noise is None else band(float(noise), NOISE_BANDS),
        "bits_stored": f"{difficulty.get('bits_stored', '?')} bits",
        "size": f"{difficulty.get('size', '?')} px",
        "overlapping_anatomy": anatomy,
        "overlapping_devices": devices,
    }


def case_outcome(
    cine: Any, result: StenosisResult, seed: int, *, match_mm: float, threshold: float
) -> dict[str, Any]:
    """One cine's outcome as a JSON-ready dict (module docstring for the matching)."""
    truth = list(cine.truth["lesions"])
    mm = float(cine.truth.get("pixel_spacing_isocentre_mm") or result.geometry["mm_per_px"])
    reports = [lesion.model_dump() for lesion in result.lesions]
    pairs, false_lesions, duplicates = match_reports(reports, truth, match_mm / mm)
    lesions = []
    for i, t in enumerate(truth):
        report = pairs.get(i)
        segment = true_segment(t["vessel"], t.get("position"))
        lesion: dict[str, Any] = {
            "percent": float(t["percent_stenosis"]),
            "length_mm": float(t.get("length_mm", 0.0)),
            "vessel": t["vessel"],
            "segment": segment,
            "found": report is not None,
        }
        if report is not None:
            named = report.get("vessel")
            reported_segment = _reported_segment(report)
            lesion |= {
                "reported_percent": float(report["percent_stenosis"]),
                "reported_vessel": named,
                "reported_segment": reported_segment,
                "vessel_right": None if named is None else named == t["vessel"],
                "segment_right": (
                    None
                    if reported_segment is None or segment is None
                    else reported_segment == segment
                ),
            }
        lesions.append(lesion)
    difficulty = difficulty_of(cine)
    return {
        "seed": seed,
        "normal": not truth,
        "significant": any(t["percent"] >= SIGNIFICANT for t in lesions),
        "probability": float(result.probability),
        "called_significant": float(result.probability) >= threshold,
        "reported": len(reports),
        "false_lesions": false_lesions,
        "duplicates": duplicates,
        "lesions": lesions,
        "difficulty": difficulty,
    }


def auc_of(cases: Sequence[dict[str, Any]]) -> float | None:
    """Per-cine AUC of the run's probability for "holds a >= 50% lesion" (rank form of the
    Mann-Whitney statistic, ties counted half)."""
    scores = np.array([c["probability"] for c in cases], dtype=np.float64)
    labels = np.array([c["significant"] for c in cases], dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0  # 1-based mean rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _lesions(c: dict[str, Any], low: float, high: float = 101.0) -> list[dict[str, Any]]:
    return [x for x in c["lesions"] if low <= x["percent"] < high]


def _sensitivity(low: float, high: float = 101.0) -> Metric:
    return ratio(
        lambda c: sum(x["found"] for x in _lesions(c, low, high)),
        lambda c: len(_lesions(c, low, high)),
    )


def _judged(key: str) -> Metric:
    """Share of matched lesions whose ``key`` is right, among those the model named."""
    return ratio(
        lambda c: sum(bool(x.get(key)) for x in c["lesions"]),
        lambda c: sum(x.get(key) is not None for x in c["lesions"]),
    )


def _percent_error(low: float) -> Metric:
    return ratio(
        lambda c: sum(abs(x["reported_percent"] - x["percent"]) for x in _found(c, low)),
        lambda c: len(_found(c, low)),
    )


def _found(c: dict[str, Any], low: float) -> list[dict[str, Any]]:
    return [x for x in _lesions(c, low) if x["found"]]


def _cine_rate(value: bool, of: str) -> Metric:
    """Share of cines with ``significant == value`` where ``called_significant == value``
    (sensitivity for True, specificity for False)."""

    def metric(cases: Sequence[dict[str, Any]]) -> float | None:
        chosen = [c for c in cases if c[of] == value]
        if not chosen:
            return None
        return sum(float(c["called_significant"] == value) for c in chosen) / len(chosen)

    return metric


METRICS: dict[str, Metric] = {
    "auc": auc_of,
    "sensitivity": _cine_rate(True, "significant"),
    "specificity": _cine_rate(False, "significant"),
    "lesion_sensitivity_70": _sensitivity(70.0),
    "lesion_sensitivity_50": _sensitivity(SIGNIFICANT),
    "false_lesions_per_cine": mean_of(lambda c: float(c["false_lesions"])),
    "percent_mae": _percent_error(SIGNIFICANT),
    "percent_mae_all_matched": _percent_error(0.0),
    "vessel_accuracy": _judged("vessel_right"),
    "segment_accuracy": _judged("segment_right"),
}
"""The cross-family metrics, each a function of a list of :func:`case_outcome` dicts;
``percent_mae`` is over matched lesions of >= 50% (as the card), the other over all."""
STRATUM_METRICS = (
    "auc",
    "sensitivity",
    "specificity",
    "lesion_sensitivity_50",
    "false_lesions_per_cine",
)


def lesion_band_metrics() -> dict[str, Metric]:
    """Lesion sensitivity by %DS band and, for >= 50% lesions, by length band."""
    out = {f"lesion_sensitivity {label}": _sensitivity(lo, hi) for lo, hi, label in PERCENT_BANDS}
    for lo, hi, label in LENGTH_BANDS:
        out[f"lesion_sensitivity_50 length {label}"] = ratio(
            partial(_of_length, lo=lo, hi=hi, found=True), partial(_of_length, lo=lo, hi=hi)
        )
    return out


def _of_length(c: dict[str, Any], *, lo: float, hi: float, found: bool = False) -> float:
    """How many >= 50% lesions of a length in [lo, hi) the cine holds (``found``: found)."""
    within = [x for x in _lesions(c, SIGNIFICANT) if lo <= x["length_mm"] < hi]
    return float(sum(x["found"] for x in within) if found else len(within))


def evaluate_cases(
    model: LoadedModel,
    family: str,
    seeds: range,
    *,
    match_mm: float = 3.0,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """:func:`case_outcome` of every seed (odd seeds with lesions, even normal), through
    ``analyze_xa`` with the card's ``lesion_threshold``."""
    threshold = float(model.card.postprocessing.get("lesion_threshold", 0.5))
    cases = []
    for seed in seeds:
        cine = xa_cine(family, seed, normal=is_normal(seed))
        result = analyze_xa(cine.datasets, model)
        cases.append(case_outcome(cine, result, seed, match_mm=match_mm, threshold=threshold))
        log(f"stenosis {family} seed {seed}: {len(cases)}/{len(seeds)}")
    return cases


def counts(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many cines and lesions (by band) the figures rest on."""
    lesions = [x for c in cases for x in c["lesions"]]
    return {
        "cines": len(cases),
        "significant_cines": sum(c["significant"] for c in cases),
        "normal_cines": sum(c["normal"] for c in cases),
        "true_lesions": len(lesions),
        "lesions_by_percent": {
            label: sum(lo <= x["percent"] < hi for x in lesions) for lo, hi, label in PERCENT_BANDS
        },
        "reported_lesions": sum(c["reported"] for c in cases),
        "false_lesions": sum(c["false_lesions"] for c in cases),
        "duplicate_reports": sum(c["duplicates"] for c in cases),
    }
