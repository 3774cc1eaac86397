"""Tests for the curriculum samples the stenosis model trains on."""

from __future__ import annotations

import numpy as np
import pytest
from cardiogate_phantoms import CurriculumSample, curriculum_sample, normalise_xa_frame

SIZES = {1: 48, 2: 64, 3: 96}


def _batch(level: int, n: int, seed: int = 0) -> list[CurriculumSample]:
    rng = np.random.default_rng(seed)
    return [curriculum_sample(level, rng, SIZES[level], frame_size=256) for _ in range(n)]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_shapes_labels_and_targets(level: int) -> None:
    size = SIZES[level]
    for s in _batch(level, 40):
        assert s.level == level
        assert s.image.shape == s.centerline.shape == (size, size)
        assert s.image.dtype == np.float32
        assert s.centerline.dtype == np.bool_
        assert 0.0 <= s.image.min() <= s.image.max() <= 1.0
        assert s.centerline.sum() > size / 2  # a vessel crosses the patch
        assert len(s.lesions) <= level
        assert s.significant == any(les.percent >= 50 for les in s.lesions)
        points = s.lesion_points()
        assert points.shape == (len(s.lesions), 3)
        assert ((points[:, :2] >= 0) & (points[:, :2] <= size - 1)).all()
        assert all(20 <= les.percent <= 95 for les in s.lesions)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_about_half_the_samples_are_significant(level: int) -> None:
    share = np.mean([s.significant for s in _batch(level, 160, seed=level)])
    assert 0.38 <= share <= 0.62


def test_levels_grow_in_lesions() -> None:
    counts = {level: [len(s.lesions) for s in _batch(level, 80)] for level in (1, 2, 3)}
    assert max(counts[1]) == 1
    assert max(counts[2]) == 2
    assert max(counts[3]) == 3


def test_same_generator_state_same_sample() -> None:
    a = curriculum_sample(3, np.random.default_rng(5), 64)
    b = curriculum_sample(3, np.random.default_rng(5), 64)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.centerline, b.centerline)
    assert a.lesions == b.lesions


def test_tight_lesions_are_paler_than_their_vessel() -> None:
    """At a >= 70 % lesion the centreline is brighter (less iodine) than the vessel elsewhere."""
    tight = [s for s in _batch(1, 120, seed=9) if s.lesions and s.lesions[0].percent >= 70]
    assert len(tight) >= 10
    for s in tight:
        les = s.lesions[0]
        at_lesion = s.image[round(les.y), round(les.x)]
        ys, xs = np.nonzero(s.centerline)
        far = np.hypot(xs - les.x, ys - les.y) > les.length_px / 2 + 3
        assert at_lesion > np.median(s.image[ys[far], xs[far]])


def test_normalisation_is_stored_value_over_255() -> None:
    stored = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_allclose(normalise_xa_frame(stored), [[0.0, 0.2, 1.0]], rtol=1e-6)


@pytest.mark.parametrize(("level", "size"), [(0, 64), (4, 64), (1, 8)])
def test_bad_requests_raise(level: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"level|size"):
        curriculum_sample(level, np.random.default_rng(0), size)
