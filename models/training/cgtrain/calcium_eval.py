"""Evaluation of a calcium model folder on held-out phantoms, through the service's own
pipeline (``predict_labels`` then ``agatston_scores``), against the phantoms' ground truth.

Candidate lesions are the same components for truth and prediction (same HU, same
threshold), so lesions match exactly by slice and centroid: sensitivity is the share of
true lesions the model keeps, artery accuracy the share of those with the right artery,
false positives the lesions it keeps that are not coronary calcium.

The cross-family evaluation's per-scan outcomes and metrics are in :mod:`cgtrain.calcium_cases`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.tasks.calcium.analysis import (
    labels_from_probabilities,
    pixel_probabilities,
    predict_labels,
)
from cardiogate.tasks.calcium.scoring import agatston_scores, classic_category
from cgtrain.families import ct_phantom

CATEGORIES = ["0", "1-10", "11-100", "101-400", ">400"]


def icc_absolute(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single measurement."""
    data = np.stack([a, b], axis=1).astype(np.float64)
    n, k = data.shape
    grand = data.mean()
    ss_rows = k * ((data.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((data.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((data - grand) ** 2).sum() - ss_rows - ss_cols
    ms_rows, ms_cols = ss_rows / (n - 1), ss_cols / (k - 1)
    ms_err = ss_err / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n
    return float((ms_rows - ms_err) / denominator) if denominator > 0 else 1.0


def linear_weighted_kappa(a: list[str], b: list[str], categories: list[str]) -> float:
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    weights = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    disagreement = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / disagreement) if disagreement > 0 else 1.0


def phantom_volume(p: Any) -> CTVolume:
    """The phantom (either family) as the service's loader would give it."""
    return CTVolume(
        hu=p.hu,
        pixel_spacing_mm=p.pixel_spacing_rc,
        slice_increment_mm=p.slice_increment_mm,
        slice_thickness_mm=p.slice_thickness_mm,
        positions_mm=np.array([[p.origin_mm[0], p.origin_mm[1], z] for z in p.z_mm]),
        orientation=np.array([1.0, 0, 0, 0, 1, 0]),
        sop_instance_uids=[str(i) for i in range(len(p.z_mm))],
        calcium_mass_factor=None,
    )


@dataclass
class ScanOutcome:
    truth_total: float
    predicted_total: float
    true_lesions: int
    kept: int
    right_artery: int
    false_positives: int


def compare(phantom: Any, labels: np.ndarray[Any, Any]) -> ScanOutcome:
    """Score ``labels`` on the phantom and match its lesions to the truth."""
    volume = phantom_volume(phantom)
    predicted = agatston_scores(
        phantom.hu, labels, volume.pixel_spacing_mm, volume.slice_increment_mm
    )
    truth = phantom.truth_scores
    by_place = {(t.slice_index, t.centroid_rc): t for t in truth.lesions}
    kept = right_artery = false_positives = 0
    for lesion in predicted.lesions:
        match = by_place.get((lesion.slice_index, lesion.centroid_rc))
        if match is None:
            false_positives += 1
        else:
            kept += 1
            right_artery += lesion.artery == match.artery
    return ScanOutcome(
        truth.agatston["total"],
        predicted.agatston["total"],
        len(truth.lesions),
        kept,
        right_artery,
        false_positives,
    )


def summarise(outcomes: list[ScanOutcome], seeds: range) -> dict[str, Any]:
    truth_totals = np.array([o.truth_total for o in outcomes])
    predicted_totals = np.array([o.predicted_total for o in outcomes])
    true_lesions = sum(o.true_lesions for o in outcomes)
    kept = sum(o.kept for o in outcomes)
    right_artery = sum(o.right_artery for o in outcomes)
    false_positive = sum(o.false_positives for o in outcomes)
    n = len(outcomes)
    return {
        "test_scans": n,
        "test_seeds": f"{seeds.start}-{seeds.stop - 1}",
        "icc_total_agatston": round(icc_absolute(truth_totals, predicted_totals), 4),
        "kappa_classic_linear": round(
            linear_weighted_kappa(
                [classic_category(t) for t in truth_totals],
                [classic_category(p) for p in predicted_totals],
                CATEGORIES,
            ),
            4,
        ),
        "lesion_sensitivity": round(kept / true_lesions, 4) if true_lesions else None,
        "false_positives_per_scan": round(false_positive / n, 3),
        "artery_accuracy": round(right_artery / kept, 4) if kept else None,
        "true_lesions": true_lesions,
        "mean_abs_error_total_agatston": round(
            float(np.mean(np.abs(truth_totals - predicted_totals))), 2
        ),
    }


def evaluate(
    model: LoadedModel,
    seeds: range,
    *,
    rows: int = 512,
    n_slices: int | None = 40,
    family: str = "a",
) -> dict[str, Any]:
    """The card's metrics for ``model`` as the service runs it (its card's thresholds)."""
    outcomes = []
    for seed in seeds:
        phantom = ct_phantom(family, seed, n_slices=n_slices, rows=rows)
        outcomes.append(compare(phantom, predict_labels(phantom_volume(phantom), model)))
    return summarise(outcomes, seeds)


def sweep(
    model: LoadedModel,
    seeds: range,
    thresholds: list[float | None],
    *,
    rows: int = 512,
    n_slices: int | None = 40,
    family: str = "a",
) -> dict[float | None, dict[str, Any]]:
    """Metrics for each ``min_coronary_probability`` (None: plain argmax), running the
    network once per scan."""
    outcomes: dict[float | None, list[ScanOutcome]] = {t: [] for t in thresholds}
    for seed in seeds:
        phantom = ct_phantom(family, seed, n_slices=n_slices, rows=rows)
        where, probabilities = pixel_probabilities(phantom_volume(phantom), model)
        for t in thresholds:
            labels = labels_from_probabilities(phantom.hu.shape, where, probabilities, t)
            outcomes[t].append(compare(phantom, labels))
    return {t: summarise(o, seeds) for t, o in outcomes.items()}


def evaluate_folder(folder: Path, seeds: range, **kwargs: Any) -> dict[str, Any]:
    return evaluate(load_model(folder), seeds, **kwargs)
