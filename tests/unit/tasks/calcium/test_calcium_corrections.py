"""A calcium lesion's pixel centroid (``row``, ``col``, which a reviewer's added lesions
are matched by) and the labels one review asserts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cardiogate_phantoms import make_ct_series
from scipy import ndimage

from cardiogate.inference.engine import load_model
from cardiogate.learning.labels import NONE
from cardiogate.tasks.calcium.analysis import analyze_ct_with_labels
from cardiogate.tasks.calcium.corrections import CalciumCorrections, calcium_labels, check_indices
from tiny_model import write_threshold_model


def test_lesion_centroids_are_their_pixels_mean_and_map_to_its_position(tmp_path: Path) -> None:
    model = load_model(write_threshold_model(tmp_path / "model", artery=3, above_hu=150))
    datasets = make_ct_series(3, n_slices=8, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    result, volume, labels = analyze_ct_with_labels(datasets, model)
    assert result.lesions
    for lesion in result.lesions:
        assert lesion.row is not None
        assert lesion.col is not None
        lesion_pixels = labels[lesion.slice_index] == 3
        components, count = ndimage.label(lesion_pixels, structure=np.ones((3, 3)))
        centroids = ndimage.center_of_mass(components > 0, components, range(1, count + 1))
        # the mean pixel of one of the slice's labelled components, kept to 0.01 pixel
        assert any(
            abs(r - lesion.row) <= 0.006 and abs(c - lesion.col) <= 0.006 for r, c in centroids
        )
        x, y, z = volume.to_patient_mm(lesion.slice_index, lesion.row, lesion.col)
        # row and col are kept to 0.01 pixel: 0.03 mm at 6 mm pixels
        assert (x, y, z) == pytest.approx(lesion.position_mm, abs=0.05)


def test_review_labels_apply_the_corrections() -> None:
    result = {
        "lesions": [{"artery": "LAD", "area_mm2": 4.0}, {"artery": "RCA", "area_mm2": 2.0}],
        "aortic_valve": {"lesions": [{"artery": "AV", "area_mm2": 5.0}]},
    }
    fixes = CalciumCorrections.model_validate(
        {
            "lesions": [{"index": 1, "artery": "none"}, {"index": 2, "artery": "LM"}],
            "added": [{"slice_index": 4, "row": 10.5, "col": 20.0, "artery": "LCX"}],
        }
    )
    labels = calcium_labels(result, fixes)
    assert [(x.key, x.value, x.weight) for x in labels] == [
        ("lesion/0", "LAD", 4.0),
        ("lesion/1", NONE, 2.0),
        ("lesion/2", "LM", 5.0),  # the valve's lesion, numbered after the coronary ones
        ("added", "LCX", 1.0),
    ]
    assert labels[-1].position == (4.0, 10.5, 20.0)
    assert [x.value for x in calcium_labels(result, None)] == ["LAD", "RCA", "AV"]
    wrong = CalciumCorrections.model_validate({"lesions": [{"index": 3, "artery": "LM"}]})
    assert check_indices(result, wrong) == "lesions[0].index 3: the result has 3 lesion(s)"
