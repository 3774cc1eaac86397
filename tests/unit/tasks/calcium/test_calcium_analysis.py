"""The calcium analysis pipeline around a real ONNX session (a fixed-rule model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cardiogate_phantoms import make_ct_series, write_series
from scipy import ndimage

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.analyses.resample import resample_linear
from cardiogate.errors import CardiogateError
from cardiogate.inference import ModelCard
from cardiogate.inference.engine import load_model
from cardiogate.tasks.calcium.analysis import (
    LABELS,
    analyze_ct,
    analyze_ct_with_labels,
    labels_from_probabilities,
    measures_aortic_valve,
    model_inputs,
    model_labels,
    predict_labels,
)
from tiny_model import threshold_rule_scores, write_threshold_model


def test_model_inputs_stack_neighbours_and_normalise() -> None:
    hu = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 2, 2), dtype=np.float32) * 1000
    x = model_inputs(
        hu, np.array([0, 3]), {"context_slices": 1, "clip_hu": [-1024, 2500], "scale_hu": 1000}
    )
    assert x.shape == (2, 3, 2, 2)
    assert x[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]  # edge repeated below slice 0
    assert x[1, :, 0, 0].tolist() == [2.0, 2.5, 2.5]  # clipped at 2500 HU, edge repeated


def test_pipeline_scores_what_the_model_labels(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model", artery=2, above_hu=150))
    series = make_ct_series(3, n_slices=12, rows=96, columns=96, pixel_spacing_mm=4.0)
    paths = write_series(series, tmp_path / "ct")
    result = analyze_ct(paths, model)

    volume = load_ct_series(paths)
    expected = threshold_rule_scores(paths, artery=2, above_hu=150)
    assert result.agatston["LAD"] == pytest.approx(expected.agatston["LAD"], abs=0.01)
    assert result.agatston["total"] == result.agatston["LAD"]
    assert result.agatston["RCA"] == 0.0
    assert len(result.lesions) == len(expected.lesions)
    assert result.model.name == "threshold-rule"
    assert result.model.provider == "CPUExecutionProvider"
    assert result.mass_mg is None  # no calibration factor in the header or given
    assert set(result.timings_s) == {"load", "model", "scoring"}
    assert "not for clinical use" in result.notice
    lesion = result.lesions[0]
    assert lesion.SOPInstanceUID == volume.sop_instance_uids[lesion.slice_index]
    assert lesion.position_mm[2] == pytest.approx(volume.positions_mm[lesion.slice_index][2])


def test_labels_are_the_pixels_the_scores_count(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model", artery=3, above_hu=150))
    datasets = make_ct_series(3, n_slices=8, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    result, volume, labels = analyze_ct_with_labels(datasets, model)
    assert result == analyze_ct(datasets, model).model_copy(update={"timings_s": result.timings_s})
    assert labels.shape == volume.hu.shape
    assert set(np.unique(labels)) <= {0, 3}
    assert np.all(volume.hu[labels > 0] >= 130)
    pixel_area = volume.pixel_spacing_mm[0] * volume.pixel_spacing_mm[1]
    scored_area = float((labels == 3).sum()) * pixel_area
    assert scored_area == pytest.approx(sum(lesion.area_mm2 for lesion in result.lesions), 1e-3)
    for lesion in result.lesions:
        assert labels[lesion.slice_index].any()


def test_mass_uses_the_header_factor(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model"))
    datasets = make_ct_series(3, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    for ds in datasets:
        ds.CalciumScoringMassFactorPatient = 0.8
    result = analyze_ct(datasets, model)
    assert result.mass_mg is not None
    assert result.mass_mg["total"] > 0


def test_resampled_labels_map_back_to_the_native_grid(tmp_path: Path) -> None:
    folder = write_threshold_model(tmp_path / "model", artery=4, above_hu=150)
    card = json.loads((folder / "card.json").read_text())
    card["preprocessing"]["pixel_spacing_mm"] = 1.0  # the volume below has 0.5 mm pixels
    (folder / "card.json").write_text(json.dumps(card))
    model = load_model(folder)
    hu = np.full((3, 16, 16), 40.0, dtype=np.float32)
    hu[1, 4:8, 6:10] = 600.0  # 2 x 2 model pixels at 1 mm
    volume = CTVolume(
        hu=hu,
        pixel_spacing_mm=(0.5, 0.5),
        slice_increment_mm=3.0,
        slice_thickness_mm=3.0,
        positions_mm=np.array([[0.0, 0.0, 3.0 * z] for z in range(3)]),
        orientation=np.array([1.0, 0, 0, 0, 1, 0]),
        sop_instance_uids=["1", "2", "3"],
        calcium_mass_factor=None,
    )
    labels = predict_labels(volume, model)
    assert labels.shape == hu.shape
    np.testing.assert_array_equal(labels[1] == 4, hu[1] > 150)
    assert labels[0].max() == labels[2].max() == 0


@pytest.mark.parametrize(
    ("shape", "out"), [((3, 512, 512), (358, 358)), ((2, 37, 41), (70, 20)), ((1, 9, 9), (9, 9))]
)
def test_resampling_matches_scipy_zoom_on_the_same_grid(
    shape: tuple[int, int, int], out: tuple[int, int]
) -> None:
    # the model contract was trained against ndimage.zoom's pixel-centre mapping
    x = np.random.default_rng(1).normal(0, 500, size=shape).astype(np.float32)
    zoom = (1.0, out[0] / shape[1], out[1] / shape[2])
    expected = ndimage.zoom(x, zoom, order=1, grid_mode=True, mode="nearest")
    got = resample_linear(x, out)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_coronary_probability_floor() -> None:
    where = (np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([4, 5, 6]))
    probabilities = np.array(
        [
            [0.40, 0.30, 0.30, 0.00, 0.00],  # argmax says background, arteries add to 0.6
            [0.10, 0.05, 0.05, 0.10, 0.70],  # confidently RCA
            [0.30, 0.00, 0.60, 0.10, 0.00],  # LAD at 0.7 coronary
        ],
        dtype=np.float32,
    )
    plain = labels_from_probabilities((2, 4, 8), where, probabilities)
    assert plain[where].tolist() == [0, 4, 2]
    assert plain.sum() == 6  # nothing outside ``where``
    assert labels_from_probabilities((2, 4, 8), where, probabilities, 0.5)[where].tolist() == [
        1,
        4,
        2,
    ]
    assert labels_from_probabilities((2, 4, 8), where, probabilities, 0.8)[where].tolist() == [
        0,
        4,
        0,
    ]


def _rule_probability(hu: float, above_hu: float = 150.0) -> float:
    """The threshold rule's softmax for its artery at a voxel of ``hu`` (its logits:
    background ``above_hu / 1000``, the artery ``hu / 1000``, the other arteries -1)."""
    logits = np.array([above_hu / 1000, -1.0, hu / 1000, -1.0, -1.0])
    p = np.exp(logits) / np.exp(logits).sum()
    return float(p[2])


def test_lesions_whose_artery_is_in_doubt_flag_the_result(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model", artery=2, above_hu=150))
    datasets = make_ct_series(3, n_slices=8, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    result = analyze_ct(datasets, model, min_artery_probability=0.42)
    assert result.lesions
    for lesion in result.lesions:  # a mean over pixels between 130 HU and the peak
        assert lesion.artery_probability is not None
        assert (
            _rule_probability(130.0)
            <= lesion.artery_probability
            <= _rule_probability(lesion.peak_hu)
        )
        doubt = lesion.artery_probability < 0.42
        assert lesion.review_flags == (["artery_in_doubt"] if doubt else [])
    doubtful = sum(bool(lesion.review_flags) for lesion in result.lesions)
    assert 0 < doubtful < len(result.lesions)
    assert result.needs_review
    assert result.review_reason == (
        f"{doubtful} lesion(s) whose artery is in doubt (model probability below 0.42)"
    )
    assert result.parameters["min_artery_probability"] == 0.42

    sure = analyze_ct(datasets, model, min_artery_probability=0.0)
    assert (sure.needs_review, sure.review_reason) == (False, None)
    assert all(lesion.review_flags == [] for lesion in sure.lesions)


def test_lesions_peaking_near_the_threshold_flag_the_result(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model", artery=2, above_hu=150))
    datasets = make_ct_series(3, n_slices=8, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    result = analyze_ct(datasets, model, review_peak_hu=500.0, min_artery_probability=0.0)
    low = [lesion for lesion in result.lesions if lesion.peak_hu < 500.0]
    assert 0 < len(low) < len(result.lesions)
    assert all(lesion.review_flags == ["low_peak_hu"] for lesion in low)
    assert result.review_reason == (
        f"{len(low)} lesion(s) with a peak below 500 HU (threshold 130 HU)"
    )


def _card(labels: list[str], classes: int | str = "classes") -> ModelCard:
    shape: list[int | str] = ["batch", classes, "rows", "columns"]
    return ModelCard(
        name="labels-test",
        version="1",
        task="calcium",
        inputs=[{"name": "image", "shape": ["batch", 3, "rows", "columns"], "dtype": "float32"}],
        outputs=[{"name": "logits", "shape": shape, "dtype": "float32"}],
        labels=labels,
        training_data="none",
        sha256="0" * 64,
        intended_use="tests",
    )


def test_the_cards_labels_say_whether_the_valve_is_measured() -> None:
    six = ["background", "LM", "LAD", "LCX", "RCA", "AV"]
    assert model_labels(_card(six, 6)) == six
    assert measures_aortic_valve(_card(six))
    assert not measures_aortic_valve(_card(LABELS, 5))
    assert model_labels(_card([])) == LABELS  # a card that names none: the 5 classes
    assert model_labels(_card(["background", "AV", "RCA", "LCX", "LAD", "LM"])) == [
        "background",
        "AV",
        "RCA",
        "LCX",
        "LAD",
        "LM",
    ]


@pytest.mark.parametrize(
    ("labels", "classes", "says"),
    [
        (["background", "LM", "LAD", "LCX", "RCA", "MV"], 6, r"unknown label\(s\) \['MV'\]"),
        (["LM", "background", "LAD", "LCX", "RCA"], 5, "must be background, then"),
        (["background", "LM", "LAD", "LAD", "RCA"], 5, "once each"),
        (["background", "LM", "LAD", "RCA", "AV"], 5, r"missing \['LCX'\]"),
        (["background", "LM", "LAD", "LCX", "RCA", "AV"], 5, "name 6 classes, its output has 5"),
    ],
)
def test_a_card_with_labels_the_analysis_does_not_know_is_refused(
    labels: list[str], classes: int, says: str
) -> None:
    with pytest.raises(CardiogateError, match=says) as refused:
        model_labels(_card(labels, classes))
    assert "labels-test 1: card labels" in str(refused.value)


def test_a_model_whose_output_differs_from_its_labels_is_refused_when_run(tmp_path: Path) -> None:
    folder = write_threshold_model(tmp_path / "model")  # 5 outputs
    card = json.loads((folder / "card.json").read_text())
    card["labels"] = [*card["labels"], "AV"]
    card["outputs"][0]["shape"][1] = "classes"  # the card cannot tell
    (folder / "card.json").write_text(json.dumps(card))
    datasets = make_ct_series(3, n_slices=4, rows=32, columns=32, pixel_spacing_mm=6.0).datasets
    with pytest.raises(CardiogateError, match="does not have the 6 classes of its card's labels"):
        analyze_ct(datasets, load_model(folder))


def test_valve_voxels_under_the_coronary_probability_floor() -> None:
    where = (np.zeros(4, dtype=np.intp), np.arange(4), np.arange(4))
    probabilities = np.array(
        [
            [0.02, 0.00, 0.95, 0.00, 0.00, 0.03],  # confidently LAD
            [0.10, 0.00, 0.05, 0.00, 0.00, 0.85],  # confidently AV
            [0.50, 0.00, 0.10, 0.00, 0.00, 0.40],  # background most likely
            [0.00, 0.00, 0.45, 0.00, 0.10, 0.45],  # coronary 0.55, tie LAD/AV
        ],
        dtype=np.float32,
    )
    assert labels_from_probabilities((1, 4, 4), where, probabilities)[where].tolist() == [
        2,
        5,
        0,
        2,
    ]
    floor = labels_from_probabilities((1, 4, 4), where, probabilities, 0.9)
    assert floor[where].tolist() == [2, 5, 0, 0]  # not coronary enough, and AV not first
    assert labels_from_probabilities((1, 4, 4), where, probabilities, 0.5)[where].tolist() == [
        2,
        5,
        0,
        2,
    ]
