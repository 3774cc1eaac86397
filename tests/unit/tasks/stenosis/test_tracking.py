"""Sightings of one lesion on several frames of a moving heart grouped into one finding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cardiogate.tasks.stenosis.tracking import (
    MIN_PEAK,
    Sighting,
    displacement,
    track_lesions,
)

SIZE = 256
PX_MM = 5.0  # 0.2 mm per pixel
MERGE_PX = 3.0 * PX_MM
# (row, column) of each frame's heart against frame 0: more than 24 px between frames
MOTION = [(0.0, 0.0), (26.0, -18.0), (8.0, 27.0), (-22.0, 10.0)]
VESSELS = [((60.0, 40.0), (200.0, 210.0)), ((50.0, 190.0), (190.0, 60.0)), ((120, 20), (130, 240))]
LESIONS = [(100.0, 88.6), (135.0, 131.1)]  # on the first vessel, 56 px (11 mm) apart


def frames(n: int = 4, seed: int = 0) -> np.ndarray[Any, Any]:
    """Dark vessels (Gaussian profile) moving with ``MOTION`` over a still background with
    two rib-like bands and noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    background = (
        200.0
        - 25.0 * (np.abs(rows - 0.4 * cols - 60.0) < 12)
        - 20.0 * (np.abs(rows - 0.4 * cols - 150.0) < 12)
    )
    out = np.empty((n, SIZE, SIZE))
    for k in range(n):
        dr, dc = MOTION[k]
        darkness = np.zeros((SIZE, SIZE))
        for (r0, c0), (r1, c1) in VESSELS:
            r0, c0, r1, c1 = r0 + dr, c0 + dc, r1 + dr, c1 + dc
            length = float(np.hypot(r1 - r0, c1 - c0))
            t = np.clip(((rows - r0) * (r1 - r0) + (cols - c0) * (c1 - c0)) / length**2, 0, 1)
            distance = np.hypot(rows - (r0 + t * (r1 - r0)), cols - (c0 + t * (c1 - c0)))
            darkness = np.maximum(darkness, np.exp(-0.5 * (distance / 3.0) ** 2))
        out[k] = background * (1 - 0.5 * darkness) + rng.normal(0, 4.0, (SIZE, SIZE))
    return out


def sighting(k: int, lesion: int, probability: float, **named: Any) -> Sighting:
    """Lesion ``lesion`` as the model sights it on frame ``k``: a pixel or two off."""
    row, col = LESIONS[lesion]
    dr, dc = MOTION[k]
    jitter = np.random.default_rng(10 * k + lesion).normal(0.0, 1.5, 2)
    return Sighting(k, row + dr + jitter[0], col + dc + jitter[1], probability, 80.0, named)


def test_displacement_reads_the_hearts_shift_over_a_still_background() -> None:
    cine = frames()
    for k in (1, 2, 3):
        row, col = LESIONS[0][0] + MOTION[k][0], LESIONS[0][1] + MOTION[k][1]
        shift = displacement(cine[k], cine[0], row, col, 60, PX_MM)
        assert shift is not None
        assert shift[:2] == pytest.approx(MOTION[k], abs=1.0)
        assert shift[2] >= MIN_PEAK


def test_one_finding_per_lesion_though_it_moves_more_than_24_px() -> None:
    sightings = [
        sighting(0, 0, 0.90),
        sighting(1, 0, 0.97),  # the surest sighting of the first lesion
        sighting(2, 0, 0.80),
        sighting(3, 0, 0.85),
        sighting(0, 1, 0.70),
        sighting(2, 1, 0.75),
        sighting(3, 1, 0.60),
    ]
    tracks = track_lesions(frames(), sightings, 0, MERGE_PX, PX_MM)
    assert len(tracks) == 2
    first, second = tracks
    assert first.best == sightings[1]
    assert first.frames_seen == [1, 2, 3, 4]
    assert second.best == sightings[5]
    assert second.frames_seen == [1, 3, 4]
    for track, (row, col) in zip(tracks, LESIONS, strict=True):
        for place in track.on_reference:  # all carried back to frame 0's heart
            assert place is not None
            assert np.hypot(place[0] - row, place[1] - col) < 6.0


def test_merge_distance_decides() -> None:
    sightings = [sighting(0, 0, 0.9), sighting(2, 1, 0.8)]
    apart = track_lesions(frames(), sightings, 0, MERGE_PX, PX_MM)
    assert len(apart) == 2
    together = track_lesions(frames(), sightings, 0, 80.0, PX_MM)  # 16 mm: one lesion
    assert len(together) == 1


def test_where_the_motion_cannot_be_read_the_vessel_names_decide() -> None:
    flat = np.random.default_rng(1).normal(200.0, 4.0, (3, SIZE, SIZE))  # nothing to follow
    lad = {"vessel": "LAD", "position_along_vessel": 0.40}
    sightings = [
        Sighting(0, 100.0, 100.0, 0.9, 80.0, lad),
        Sighting(1, 120.0, 110.0, 0.8, 80.0, {**lad, "position_along_vessel": 0.43}),
        Sighting(2, 95.0, 125.0, 0.8, 80.0, {**lad, "position_along_vessel": 0.52}),
        Sighting(1, 105.0, 95.0, 0.7, 80.0, {**lad, "vessel": "D1"}),
    ]
    tracks = track_lesions(flat, sightings, 0, MERGE_PX, PX_MM)
    assert [t.frames_seen for t in tracks] == [[1, 2], [3], [2]]
    assert tracks[0].on_reference[1] is None  # its place on frame 1 was not read


def test_two_peaks_on_one_frame_far_apart_are_two_lesions() -> None:
    sightings = [sighting(0, 0, 0.9), sighting(0, 1, 0.8)]
    assert len(track_lesions(frames(), sightings, 0, MERGE_PX, PX_MM)) == 2
