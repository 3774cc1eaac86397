"""Evaluation of a calcium model folder on held-out phantoms, through the service's own
pipeline (``predict_labels`` then ``agatston_scores``), against the phantoms' ground truth.

Candidate lesions are the same components for truth and prediction (same HU, same
threshold), so lesions match exactly by slice and centroid: sensitivity is the share of
true lesions the model keeps, artery accuracy the share of those with the right artery,
false positives the lesions it keeps that are not coronary calcium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cardiogate.analyses.calcium import agatston_scores, classic_category
from cardiogate.analyses.calcium_ct import predict_labels
from cardiogate.analyses.ct_volume import CTVolume
from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.synthetic.phantom import CardiacPhantom, make_cardiac_phantom

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


def phantom_volume(p: CardiacPhantom) -> CTVolume:
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


def evaluate(
    model: LoadedModel, seeds: range, *, rows: int = 512, n_slices: int = 40
) -> dict[str, Any]:
    truth_totals, predicted_totals = [], []
    truth_categories, predicted_categories = [], []
    true_lesions = kept = right_artery = false_positive = 0
    for seed in seeds:
        phantom = make_cardiac_phantom(seed, n_slices=n_slices, rows=rows, columns=rows)
        volume = phantom_volume(phantom)
        labels = predict_labels(volume, model)
        predicted = agatston_scores(
            phantom.hu, labels, volume.pixel_spacing_mm, volume.slice_increment_mm
        )
        truth = phantom.truth_scores
        truth_totals.append(truth.agatston["total"])
        predicted_totals.append(predicted.agatston["total"])
        truth_categories.append(classic_category(truth.agatston["total"]))
        predicted_categories.append(classic_category(predicted.agatston["total"]))
        by_place = {(t.slice_index, t.centroid_rc): t for t in truth.lesions}
        true_lesions += len(truth.lesions)
        for lesion in predicted.lesions:
            match = by_place.get((lesion.slice_index, lesion.centroid_rc))
            if match is None:
                false_positive += 1
            else:
                kept += 1
                right_artery += lesion.artery == match.artery
    n = len(seeds)
    return {
        "test_scans": n,
        "test_seeds": f"{seeds.start}-{seeds.stop - 1}",
        "icc_total_agatston": round(
            icc_absolute(np.array(truth_totals), np.array(predicted_totals)), 4
        ),
        "kappa_classic_linear": round(
            linear_weighted_kappa(truth_categories, predicted_categories, CATEGORIES), 4
        ),
        "lesion_sensitivity": round(kept / true_lesions, 4) if true_lesions else None,
        "false_positives_per_scan": round(false_positive / n, 3),
        "artery_accuracy": round(right_artery / kept, 4) if kept else None,
        "true_lesions": true_lesions,
        "mean_abs_error_total_agatston": round(
            float(np.mean(np.abs(np.subtract(truth_totals, predicted_totals)))), 2
        ),
    }


def evaluate_folder(folder: Path, seeds: range, **kwargs: Any) -> dict[str, Any]:
    return evaluate(load_model(folder), seeds, **kwargs)
