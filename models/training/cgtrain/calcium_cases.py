"""Per-scan outcomes of a calcium model on either phantom family, and the cross-family
metrics over them (:mod:`cgtrain.bootstrap` resamples the scans for their intervals).

:func:`case_outcome` scores one scan as the service does (``predict_labels`` then
``agatston_scores``) and keeps, JSON-ready: the true and predicted totals, each true lesion
found or not (and with the right artery or not), the false positives counted (and their
Agatston summed) by the kind of calcium they lie on, and the scan's difficulty. A predicted
lesion lies on noncoronary calcium when most of its pixels lie on the phantom's
``noncoronary`` volume (family B codes bone and metal too; family A codes its distractors,
not bone); a false positive on none is ``unlabelled`` (image noise, soft tissue, family A's
bone). A phantom without that volume counts every lesion matching no true lesion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from scipy import ndimage

from cardiogate.inference.engine import LoadedModel
from cardiogate.tasks.calcium.analysis import predict_labels
from cardiogate.tasks.calcium.scoring import agatston_scores, classic_category
from cgtrain.bootstrap import Metric, band, mean_of, ratio
from cgtrain.calcium_eval import CATEGORIES, icc_absolute, linear_weighted_kappa, phantom_volume
from cgtrain.families import ct_phantom

AORTIC_VALVE = "AV"  # the card label of aortic valve calcium, in a model that has it
NONCORONARY_KINDS = {
    1: "aortic_valve",
    2: "aortic_wall",
    3: "mitral_annulus",
    4: "bone",
    5: "metal",
    6: "other",
}
"""The ``noncoronary`` voxel codes (6 is a noise spike in family A)."""
UNLABELLED = "unlabelled"  # a false positive on no coded noncoronary structure
AREA_BANDS = ((0.0, "<5 mm2"), (5.0, "5-20 mm2"), (20.0, ">=20 mm2"))
_EIGHT = ndimage.generate_binary_structure(2, 2)


def difficulty_of(phantom: Any) -> dict[str, Any]:
    """What makes a scan hard: B's ``difficulty``; for A the same keys from its attributes
    (A has no metal and one kernel)."""
    given = getattr(phantom, "difficulty", None)
    if given is not None:
        return {k: v for k, v in dict(given).items() if isinstance(v, str | int | float | bool)}
    width = 2 * float(phantom.anatomy.get("body_semi_axes_mm", [0.0])[0])
    return {
        "noise_sigma_hu": float(phantom.noise_sigma_hu),
        "slice_thickness_mm": float(phantom.slice_thickness_mm),
        "body_width_mm": round(width, 1),
        "has_metal": False,
    }


def strata_of(difficulty: dict[str, Any]) -> dict[str, str]:
    """The scan's band in each stratum (slice thickness, noise, body size, metal)."""
    body = difficulty.get("body_size", difficulty.get("body_width_mm"))
    if isinstance(body, int | float):
        body = band(float(body), ((0.0, "small"), (320.0, "medium"), (360.0, "large")))
    thickness = float(difficulty.get("slice_thickness_mm", 3.0))
    noise = float(difficulty.get("noise_sigma_hu", 0.0))
    return {
        "slice_thickness": band(thickness, ((0.0, "<2.5 mm"), (2.5, "2.5-3 mm"), (3.01, ">3 mm"))),
        "noise": band(noise, ((0.0, "<15 HU"), (15.0, "15-30 HU"), (30.0, ">=30 HU"))),
        "body_size": str(body if body is not None else "unknown"),
        "has_metal": "metal" if difficulty.get("has_metal") else "no metal",
    }


def _components(hu_slice: np.ndarray[Any, Any]) -> list[tuple[tuple[float, float], Any]]:
    """Each candidate component of a slice: (centroid as the service computes it, pixels)."""
    found, _ = ndimage.label(hu_slice >= 130.0, structure=_EIGHT)
    out = []
    for index, window in enumerate(ndimage.find_objects(found), start=1):
        if window is None:
            continue
        rows, cols = np.nonzero(found[window] == index)
        rows, cols = rows + window[0].start, cols + window[1].start
        out.append(((float(rows.mean()), float(cols.mean())), (rows, cols)))
    return out


def _noncoronary_kind(noncoronary: np.ndarray[Any, Any], z: int, pixels: Any) -> str | None:
    """The noncoronary kind most of the lesion's pixels lie on, when most lie on one."""
    codes = noncoronary[z][pixels]
    if codes.size == 0 or (codes > 0).sum() * 2 <= codes.size:
        return None
    values, counts = np.unique(codes[codes > 0], return_counts=True)
    return NONCORONARY_KINDS.get(int(values[np.argmax(counts)]), "other")


def case_outcome(
    phantom: Any, labels: np.ndarray[Any, Any], seed: int, *, measures_valve: bool = False
) -> dict[str, Any]:
    """One scan scored as the service scores it, matched to the truth, as a JSON-ready dict.
    With ``measures_valve`` (a model labelling aortic valve calcium, AV) the predicted valve
    score is kept beside the phantom's ``aortic_valve_agatston``."""
    volume = phantom_volume(phantom)
    predicted = agatston_scores(
        phantom.hu, labels, volume.pixel_spacing_mm, volume.slice_increment_mm
    )
    truth = phantom.truth_scores
    noncoronary = getattr(phantom, "noncoronary", None)
    if noncoronary is not None and noncoronary.shape != phantom.hu.shape:
        noncoronary = None  # a phantom that does not code its noncoronary calcium
    free = {(t.slice_index, t.centroid_rc): t for t in truth.lesions}
    hits: dict[tuple[int, tuple[float, float]], str] = {}
    false_positives: dict[str, dict[str, float]] = {}  # by kind: count and Agatston
    on_noncoronary = 0
    components: dict[int, list[tuple[tuple[float, float], Any]]] = {}
    for lesion in predicted.lesions:
        z, rc = lesion.slice_index, lesion.centroid_rc
        key = (z, rc)
        if key not in free:  # the same component, up to float rounding of the centroid
            near = [k for k in free if k[0] == z and np.hypot(*np.subtract(k[1], rc)) < 0.5]
            key = near[0] if near else key
        kind = None
        if noncoronary is not None:
            if z not in components:
                components[z] = _components(phantom.hu[z])
            pixels = min(components[z], key=lambda c: np.hypot(*np.subtract(c[0], rc)))[1]
            kind = _noncoronary_kind(noncoronary, z, pixels)
        on_noncoronary += kind is not None
        if key in free and key not in hits:
            hits[key] = lesion.artery
            continue
        tally = false_positives.setdefault(kind or UNLABELLED, {"count": 0, "agatston": 0.0})
        tally["count"] += 1
        tally["agatston"] = round(tally["agatston"] + lesion.agatston, 2)
    if noncoronary is None:  # no voxel map of noncoronary calcium
        on_noncoronary = _false_positive_count(false_positives)
    valve = getattr(phantom, "aortic_valve_agatston", None)
    return {
        "seed": seed,
        "truth_total": round(float(truth.agatston["total"]), 3),
        "predicted_total": round(float(predicted.agatston["total"]), 3),
        "lesions": [
            {
                "area_mm2": round(t.area_mm2, 2),
                "artery": t.artery,
                "found": (t.slice_index, t.centroid_rc) in hits,
                "right_artery": hits.get((t.slice_index, t.centroid_rc)) == t.artery,
            }
            for t in truth.lesions
        ],
        "false_positives": false_positives,
        "noncoronary_counted": on_noncoronary,
        "aortic_valve": None
        if valve is None
        else {
            "truth": round(float(valve), 3),
            "predicted": round(float(predicted.valve_agatston), 3) if measures_valve else None,
        },
        "difficulty": difficulty_of(phantom),
    }


def _false_positive_count(by_kind: dict[str, dict[str, float]]) -> float:
    return float(sum(v["count"] for v in by_kind.values()))


def _found(c: dict[str, Any], low: float = 0.0, high: float = np.inf) -> int:
    return sum(x["found"] for x in c["lesions"] if low <= x["area_mm2"] < high)


def _true(c: dict[str, Any], low: float = 0.0, high: float = np.inf) -> int:
    return sum(1 for x in c["lesions"] if low <= x["area_mm2"] < high)


def _kappa(cases: Sequence[dict[str, Any]]) -> float:
    truth = [classic_category(c["truth_total"]) for c in cases]
    predicted = [classic_category(c["predicted_total"]) for c in cases]
    return linear_weighted_kappa(truth, predicted, CATEGORIES)


def _icc(cases: Sequence[dict[str, Any]]) -> float | None:
    if len(cases) < 2:
        return None
    truth = np.array([c["truth_total"] for c in cases])
    return icc_absolute(truth, np.array([c["predicted_total"] for c in cases]))


METRICS: dict[str, Metric] = {
    "kappa_classic_linear": _kappa,
    "icc_total_agatston": _icc,
    "scans_without_noncoronary_calcium": mean_of(lambda c: float(c["noncoronary_counted"] == 0)),
    "scans_without_false_positive": mean_of(lambda c: float(not c["false_positives"])),
    "artery_accuracy": ratio(
        lambda c: sum(x["found"] and x["right_artery"] for x in c["lesions"]), _found
    ),
    "lesion_sensitivity": ratio(_found, _true),
    "false_positives_per_scan": mean_of(lambda c: _false_positive_count(c["false_positives"])),
    "mean_abs_error_total_agatston": mean_of(
        lambda c: abs(c["truth_total"] - c["predicted_total"])
    ),
}
"""The cross-family metrics, each a function of a list of :func:`case_outcome` dicts."""
STRATUM_METRICS = (
    "lesion_sensitivity",
    "false_positives_per_scan",
    "scans_without_false_positive",
    "kappa_classic_linear",
    "icc_total_agatston",
)


def lesion_size_metrics() -> dict[str, Metric]:
    """Sensitivity for the true lesions of each area band (scans resampled whole)."""
    bounds = [low for low, _ in AREA_BANDS] + [np.inf]
    return {
        f"lesion_sensitivity {label}": ratio(
            partial(_found, low=lo, high=hi), partial(_true, low=lo, high=hi)
        )
        for (lo, label), hi in zip(AREA_BANDS, bounds[1:], strict=True)
    }


def false_positive_kind_metrics(cases: Sequence[dict[str, Any]]) -> dict[str, Metric]:
    """False positives per scan on each kind of noncoronary structure that occurs."""
    kinds = sorted({kind for c in cases for kind in c["false_positives"]})
    return {
        f"false_positives_per_scan {kind}": mean_of(partial(_of_kind, kind=kind)) for kind in kinds
    }


def _of_kind(c: dict[str, Any], *, kind: str) -> float:
    return float(c["false_positives"].get(kind, {"count": 0})["count"])


def evaluate_cases(
    model: LoadedModel,
    family: str,
    seeds: range,
    *,
    rows: int = 512,
    n_slices: int | None = 40,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """:func:`case_outcome` of every seed, the labels predicted as the service predicts them."""
    cases = []
    valve = AORTIC_VALVE in model.card.labels
    for seed in seeds:
        phantom = ct_phantom(family, seed, n_slices=n_slices, rows=rows)
        labels = predict_labels(phantom_volume(phantom), model)
        cases.append(case_outcome(phantom, labels, seed, measures_valve=valve))
        log(f"calcium {family} seed {seed}: {len(cases)}/{len(seeds)}")
    return cases


def counts(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many scans, true lesions (by area band) and false positives the figures rest on."""
    bounds = [low for low, _ in AREA_BANDS] + [np.inf]
    return {
        "scans": len(cases),
        "scans_with_calcium": sum(c["truth_total"] > 0 for c in cases),
        "true_lesions": sum(_true(c) for c in cases),
        "true_lesions_by_area": {
            label: sum(_true(c, lo, hi) for c in cases)
            for (lo, label), hi in zip(AREA_BANDS, bounds[1:], strict=True)
        },
        "false_positives": sum(_false_positive_count(c["false_positives"]) for c in cases),
    }


def _valve(c: dict[str, Any]) -> dict[str, Any] | None:
    valve = c.get("aortic_valve")
    return valve if valve and valve.get("predicted") is not None else None


def _valve_icc(cases: Sequence[dict[str, Any]]) -> float | None:
    pairs = [v for v in map(_valve, cases) if v]
    if len(pairs) < 2:
        return None
    truth = np.array([v["truth"] for v in pairs])
    return icc_absolute(truth, np.array([v["predicted"] for v in pairs]))


VALVE_METRICS: dict[str, Metric] = {
    "aortic_valve_icc": _valve_icc,
    "aortic_valve_mean_abs_error": mean_of(
        lambda c: abs(v["truth"] - v["predicted"]) if (v := _valve(c)) else None
    ),
    "aortic_valve_presence_agreement": mean_of(
        lambda c: float((v["truth"] > 0) == (v["predicted"] > 0)) if (v := _valve(c)) else None
    ),
}
"""Aortic valve Agatston against the phantom's, for a model that labels AV."""
