"""The cross-family evaluation: bootstrap intervals, seed ranges, family dispatch, and the
calcium and stenosis metrics on hand-made outcomes and on small real phantoms.

The training package lives in models/training; these parts need only numpy, the service
and the phantoms (no PyTorch)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training"))
from cgtrain import calcium_cases, stenosis_cases
from cgtrain.bootstrap import mean_of, percentile_interval, ratio, stratified
from cgtrain.families import OOD_SEEDS, SEEDS, ct_phantom, family_b_available, seeds, xa_cine
from cgtrain.stenosis_eval import auc

# --- bootstrap -------------------------------------------------------------------------


def _mean(xs: Any) -> float:
    return float(np.mean(xs))


def test_interval_of_a_mean_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for k in range(60):
        sample = list(rng.normal(10.0, 2.0, size=40))
        interval = percentile_interval(sample, _mean, resamples=400, seed=k)
        assert interval.low is not None
        assert interval.high is not None
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.low <= 10.0 <= interval.high
    # percentile intervals of a mean of 40 cover ~93-95%; 60 draws: at least 50 expected
    assert covered >= 50


def test_interval_shrinks_as_one_over_root_n() -> None:
    rng = np.random.default_rng(2)
    small = percentile_interval(list(rng.normal(0, 1, 25)), _mean, resamples=1000)
    large = percentile_interval(list(rng.normal(0, 1, 400)), _mean, resamples=1000)
    width_small = small.high - small.low  # type: ignore[operator]
    width_large = large.high - large.low  # type: ignore[operator]
    # 2 x 1.96 / sqrt(n): 0.78 for 25, 0.20 for 400 (ratio 1/4)
    assert width_small == pytest.approx(0.78, rel=0.2)
    assert width_large / width_small == pytest.approx(0.25, abs=0.08)


def test_interval_is_reproducible_from_its_seed() -> None:
    data = list(np.arange(30.0))
    first = percentile_interval(data, _mean, resamples=300, seed=5)
    assert first == percentile_interval(data, _mean, resamples=300, seed=5)
    assert first != percentile_interval(data, _mean, resamples=300, seed=6)


def test_no_interval_where_the_metric_is_mostly_undefined() -> None:
    data = list(np.arange(40.0))  # mean 19.5, its resampled sd about 1.8

    def mean_if_high(xs: Any) -> float | None:
        return float(np.mean(xs)) if np.mean(xs) >= 19.5 else None

    def mean_if_very_high(xs: Any) -> float | None:
        return float(np.mean(xs)) if np.mean(xs) >= 21.0 else None

    half = percentile_interval(data, mean_if_high, resamples=1000)
    assert half.low is not None
    assert half.low >= 19.5  # only the resamples that define it count
    rare = percentile_interval(data, mean_if_very_high, resamples=1000)
    assert rare.defined == pytest.approx(200, abs=60)  # about 1 in 5 above 21
    assert (rare.low, rare.high) == (None, None)
    assert percentile_interval([], _mean).estimate is None


def test_ratio_pools_over_cases_and_mean_skips_undefined() -> None:
    cases = [{"k": 1, "n": 1}, {"k": 0, "n": 3}, {"k": 2, "n": 0}]
    assert ratio(lambda c: c["k"], lambda c: c["n"])(cases) == pytest.approx(3 / 4)
    assert mean_of(lambda c: c["k"] / c["n"] if c["n"] else None)(cases) == pytest.approx(0.5)


def test_stratified_bootstraps_within_each_band() -> None:
    cases = [{"x": float(i), "band": "low" if i < 10 else "high"} for i in range(30)]
    table = stratified(cases, lambda c: {"size": c["band"]}, {"mean": mean_of(lambda c: c["x"])})
    assert table["size"]["low"]["cases"] == 10
    assert table["size"]["high"]["cases"] == 20
    assert table["size"]["low"]["mean"]["estimate"] == pytest.approx(4.5)
    low, high = table["size"]["high"]["mean"]["ci95"]
    assert 10 <= low < 19.5 < high <= 29


# --- seed ranges and dispatch ------------------------------------------------------------


def test_no_two_seed_ranges_overlap() -> None:
    named = [
        (f"{task}/{family}/{which}", getattr(ranges, which))
        for (task, family), ranges in SEEDS.items()
        for which in ("training", "validation", "test")
    ] + [(f"ood/{which}", seeds) for which, seeds in OOD_SEEDS.items()]
    for (a, ra), (b, rb) in itertools.combinations(named, 2):
        assert max(ra.start, rb.start) >= min(ra.stop, rb.stop), f"{a} overlaps {b}"


def test_family_a_keeps_the_ranges_its_cards_report() -> None:
    assert seeds("calcium", "a").first("test", 50) == range(900_000, 900_050)
    assert seeds("calcium", "a").validation.start == 800_000
    assert seeds("stenosis", "a").first("test", 80) == range(910_000, 910_080)
    with pytest.raises(ValueError, match="holds 60 seeds, not 61"):
        seeds("calcium", "b").first("test", 61)
    with pytest.raises(ValueError, match="family 'c'"):
        seeds("calcium", "c")


def test_dispatch_draws_family_a_and_refuses_an_unknown_family() -> None:
    phantom = ct_phantom("a", 900_000, n_slices=8, rows=64)
    assert phantom.hu.shape == (8, 64, 64)
    normal = xa_cine("a", 910_001, normal=True)
    assert normal.truth["lesions"] == []
    with pytest.raises(ValueError, match="unknown phantom family 'c'"):
        ct_phantom("c", 1)


@pytest.mark.skipif(not family_b_available(), reason="cardiogate_phantoms.family_b not installed")
def test_dispatch_draws_family_b() -> None:
    phantom = ct_phantom("b", 950_000, n_slices=8, rows=64)
    assert phantom.hu.shape == phantom.noncoronary.shape == (8, 64, 64)
    assert "noise_sigma_hu" in phantom.difficulty


# --- calcium -------------------------------------------------------------------------------


def _scan(truth: float, predicted: float, found: list[bool], fps: list[str]) -> dict[str, Any]:
    return {
        "truth_total": truth,
        "predicted_total": predicted,
        "lesions": [{"area_mm2": 4.0, "found": f, "right_artery": f} for f in found],
        "false_positives": {k: {"count": fps.count(k), "agatston": 1.0} for k in set(fps)},
        "noncoronary_counted": sum(k != calcium_cases.UNLABELLED for k in fps),
    }


def test_calcium_metrics_on_hand_made_scans() -> None:
    cases = [
        _scan(0, 0, [], []),
        _scan(50, 48, [True, False], ["aortic_valve"]),
        _scan(500, 520, [True], [calcium_cases.UNLABELLED]),
        _scan(200, 200, [True], []),
    ]
    m = {name: metric(cases) for name, metric in calcium_cases.METRICS.items()}
    assert m["lesion_sensitivity"] == pytest.approx(3 / 4)
    assert m["false_positives_per_scan"] == pytest.approx(0.5)
    assert m["scans_without_false_positive"] == pytest.approx(0.5)
    assert m["scans_without_noncoronary_calcium"] == pytest.approx(0.75)
    assert m["kappa_classic_linear"] == pytest.approx(1.0)  # every category right
    assert m["mean_abs_error_total_agatston"] == pytest.approx(22 / 4)
    kinds = calcium_cases.false_positive_kind_metrics(cases)
    assert kinds["false_positives_per_scan aortic_valve"](cases) == pytest.approx(0.25)


def test_calcium_strata_bands() -> None:
    a = calcium_cases.strata_of(
        {"noise_sigma_hu": 12.0, "slice_thickness_mm": 3.0, "body_width_mm": 370.0}
    )
    assert a == {
        "slice_thickness": "2.5-3 mm",
        "noise": "<15 HU",
        "body_size": "large",
        "has_metal": "no metal",
    }
    b = calcium_cases.strata_of(
        {"noise_sigma_hu": 40, "slice_thickness_mm": 5.0, "body_size": "obese", "has_metal": 1}
    )
    assert b["noise"] == ">=30 HU"
    assert b["slice_thickness"] == ">3 mm"
    assert (b["body_size"], b["has_metal"]) == ("obese", "metal")


def test_calcium_outcome_of_a_real_phantom_scored_with_its_own_labels() -> None:
    phantom = ct_phantom("a", 900_000, n_slices=20, rows=128, pixel_spacing_mm=1.5)
    truth = phantom.truth_scores
    case = calcium_cases.case_outcome(phantom, phantom.labels, 900_000)
    assert len(case["lesions"]) == len(truth.lesions) > 0
    assert all(x["found"] and x["right_artery"] for x in case["lesions"])
    assert case["false_positives"] == {}
    assert case["predicted_total"] == pytest.approx(truth.agatston["total"], rel=1e-6)


def test_calcium_outcome_counts_distractors_as_false_positives_of_their_kind() -> None:
    phantom = ct_phantom("a", 900_000, n_slices=20, rows=128, pixel_spacing_mm=1.5)
    everything_lad = np.where(phantom.hu >= 130, 2, 0).astype(np.uint8)
    case = calcium_cases.case_outcome(phantom, everything_lad, 900_000)
    assert all(x["found"] for x in case["lesions"])
    assert {x["right_artery"] for x in case["lesions"]} == {
        t.artery == "LAD" for t in phantom.truth_scores.lesions
    }
    by_kind = case["false_positives"]
    assert by_kind["aortic_wall"]["count"] > 0  # this seed has aortic wall calcium
    assert by_kind["unlabelled"]["count"] > 0  # bone, which family A does not code
    on_distractors = sum(v["count"] for k, v in by_kind.items() if k != "unlabelled")
    assert case["noncoronary_counted"] == on_distractors


@pytest.mark.skipif(not family_b_available(), reason="cardiogate_phantoms.family_b not installed")
def test_calcium_outcome_of_family_b_names_the_noncoronary_kind() -> None:
    seed = 950_004  # 9 coronary lesions in 20 slices of 128 x 128
    phantom = ct_phantom("b", seed, n_slices=20, rows=128)
    own = calcium_cases.case_outcome(phantom, phantom.labels, seed)
    assert len(own["lesions"]) == len(phantom.truth_scores.lesions) > 0
    assert all(x["found"] for x in own["lesions"])  # B's centroids match the service's
    assert (own["false_positives"], own["noncoronary_counted"]) == ({}, 0)
    # a model calling every noncoronary voxel LAD: each of those lesions is counted
    wrong = np.where(phantom.noncoronary > 0, 2, phantom.labels).astype(np.uint8)
    case = calcium_cases.case_outcome(phantom, wrong, seed)
    by_kind = case["false_positives"]
    assert by_kind["bone"]["count"] > 0
    on_noncoronary = sum(v["count"] for k, v in by_kind.items() if k != "unlabelled")
    assert case["noncoronary_counted"] == on_noncoronary
    assert all(x["found"] for x in case["lesions"])


# --- stenosis --------------------------------------------------------------------------------


def _truth(x: float, percent: float, vessel: str = "LAD", position: float = 0.3) -> dict[str, Any]:
    # frame 1 at (x, 100), frame 2 moved 20 px right
    return {
        "vessel": vessel,
        "position": position,
        "percent_stenosis": percent,
        "length_mm": 8.0,
        "positions_px": [[x, 100.0], [x + 20.0, 100.0]],
    }


def _report(x: float, frame: int, probability: float, **named: Any) -> dict[str, Any]:
    return {"frame": frame, "x_px": x, "y_px": 100.0, "probability": probability, **named}


def test_matching_uses_the_frame_reported_and_tolerates_duplicates() -> None:
    truth = [_truth(100, 80), _truth(300, 45)]
    reports = [
        _report(121, 2, 0.9),  # lesion 0 on frame 2
        _report(101, 1, 0.8),  # lesion 0 again, on frame 1: a duplicate, not false
        _report(300, 1, 0.7),  # the 45% lesion read as significant: matched, not false
        _report(200, 1, 0.6),  # nothing there: false
        _report(100, 2, 0.5),  # lesion 0's frame-1 place, but on frame 2: false
    ]
    pairs, false_lesions, duplicates = stenosis_cases.match_reports(reports, truth, 5.0)
    assert pairs[0]["x_px"] == 121
    assert pairs[1]["x_px"] == 300
    assert (false_lesions, duplicates) == (2, 1)


def _cine(probability: float, lesions: list[dict[str, Any]], false: int = 0) -> dict[str, Any]:
    return {
        "probability": probability,
        "significant": any(x["percent"] >= 50 for x in lesions),
        "normal": not lesions,
        "called_significant": probability >= 0.5,
        "false_lesions": false,
        "lesions": lesions,
    }


def _lesion(percent: float, found: bool, reported: float = 0.0, vessel: Any = None) -> Any:
    out: dict[str, Any] = {"percent": percent, "length_mm": 12.0, "found": found}
    if found:
        out |= {"reported_percent": reported, "vessel_right": vessel, "segment_right": vessel}
    return out


def test_stenosis_metrics_on_hand_made_cines() -> None:
    cases = [
        _cine(0.9, [_lesion(80, True, 70, True), _lesion(40, False)]),
        _cine(0.6, [_lesion(55, True, 60, False)]),
        _cine(0.4, [_lesion(92, False)]),
        _cine(0.1, [], false=1),
        _cine(0.7, [], false=2),
    ]
    m = {name: metric(cases) for name, metric in stenosis_cases.METRICS.items()}
    labels, scores = [True, True, True, False, False], [0.9, 0.6, 0.4, 0.1, 0.7]
    assert m["auc"] == pytest.approx(auc(labels, scores))
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["lesion_sensitivity_50"] == pytest.approx(2 / 3)
    assert m["lesion_sensitivity_70"] == pytest.approx(1 / 2)
    assert m["false_lesions_per_cine"] == pytest.approx(3 / 5)
    assert m["percent_mae"] == pytest.approx((10 + 5) / 2)
    assert m["vessel_accuracy"] == pytest.approx(1 / 2)
    bands = stenosis_cases.lesion_band_metrics()
    assert bands["lesion_sensitivity 90%+"](cases) == pytest.approx(0.0)
    assert bands["lesion_sensitivity_50 length 10-20 mm"](cases) == pytest.approx(2 / 3)


def test_vessel_accuracy_is_undefined_for_a_model_that_names_no_vessel() -> None:
    cases = [_cine(0.9, [_lesion(80, True, 75, None)])]
    assert stenosis_cases.METRICS["vessel_accuracy"](cases) is None


def test_rank_auc_matches_the_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(3)
    scores = list(np.round(rng.random(60), 1))  # many ties
    labels = [bool(b) for b in rng.random(60) < 0.4]
    cases = [{"probability": s, "significant": y} for s, y in zip(scores, labels, strict=True)]
    assert stenosis_cases.auc_of(cases) == pytest.approx(auc(labels, scores))


def test_stenosis_strata_bands() -> None:
    b = stenosis_cases.strata_of(
        {
            "noise_level": 0.03,
            "bits_stored": 12,
            "size": 1024,
            "overlapping_structures": ["ribs", "diaphragm", "catheter", "pacemaker_lead"],
        }
    )
    assert b == {
        "noise": ">=0.025",
        "bits_stored": "12 bits",
        "size": "1024 px",
        "overlapping_anatomy": "ribs+diaphragm",
        "overlapping_devices": "catheter + 1 device",
    }
    a = stenosis_cases.strata_of({"bits_stored": 8, "size": 512})
    assert (a["noise"], a["overlapping_devices"]) == ("not recorded", "not recorded")


def test_true_segment_of_a_phantom_lesion() -> None:
    assert stenosis_cases.true_segment("LAD", 0.4) == "mLAD"
    assert stenosis_cases.true_segment("nonexistent", 0.4) is None


# --- the command line ------------------------------------------------------------------------


def _script() -> Any:
    path = Path(__file__).resolve().parents[2] / "models" / "training" / "evaluate_cross_family.py"
    spec = importlib.util.spec_from_file_location("evaluate_cross_family", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_intervals_are_recomputed_from_the_cases_of_an_earlier_run(tmp_path: Path) -> None:
    lesion = {"length_mm": 12.0, "vessel": "LAD", "segment": "mLAD"}
    cases = [
        {
            **_cine(0.9 if i % 2 else 0.2, [{**lesion, **_lesion(75, True, 70, True)}] * (i % 2)),
            "seed": 960_000 + i,
            "reported": i % 2,
            "duplicates": 0,
            "difficulty": {"bits_stored": 12, "size": 512, "noise_level": 0.01},
        }
        for i in range(20)
    ]
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"task": "stenosis", "family": "b", "cases": cases}))
    out = tmp_path / "again.json"
    script = _script()
    args = ["--task", "stenosis", "--family", "b", "--from-cases", str(earlier), "--out", str(out)]
    assert script.main([*args, "--resamples", "200"]) == 0
    result = json.loads(out.read_text())
    assert result["cases"] == cases
    assert result["counts"]["significant_cines"] == 10
    assert result["metrics"]["auc"] == {"estimate": 1.0, "ci95": [1.0, 1.0]}
    assert result["summary"]["percent_mae"] == "5.000 (5.000-5.000)"
    assert result["strata"]["noise"]["<0.015"]["cases"] == 20
    with pytest.raises(SystemExit):  # the cases of another family are refused
        script.main(
            ["--task", "stenosis", "--family", "a", "--from-cases", str(earlier), "--out", str(out)]
        )
