"""QCA of a lesion on dark tubes drawn here with a known narrowing, blur and noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from cardiogate.tasks.stenosis.qca import NotMeasured, QCAMeasurement, measure_lesion

MM_PER_PX = 0.2
SIZE = 200
CENTRE = SIZE / 2


def tube(
    percent: float,
    *,
    length_px: float = 30.0,
    radius_px: float = 7.0,
    angle: float = 0.5,
    bend: float = 0.0,
    seed: int = 0,
    log_display: bool = False,
) -> np.ndarray[Any, Any]:
    """A round lumen (Beer-Lambert, 0.05 per px of iodine) through the centre, narrowed by
    ``percent`` over a raised cosine ``length_px`` long, on a sloping background; detector
    blur (0.8 px) and quantum noise (4 grey levels at 170). ``bend`` curves it (1/px).
    ``log_display`` stores ``100 log(intensity) - 380`` instead of the intensity."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    along = (cols - CENTRE) * np.cos(angle) + (rows - CENTRE) * np.sin(angle)
    across = (rows - CENTRE) * np.cos(angle) - (cols - CENTRE) * np.sin(angle) - bend * along**2
    t = np.clip(along / (length_px / 2), -1.0, 1.0)
    radius = radius_px * (1 - percent / 100 * 0.5 * (1 + np.cos(np.pi * t)))
    chord = 2 * np.sqrt(np.clip(radius**2 - across**2, 0.0, None))
    background = 210.0 + 0.1 * (cols - CENTRE) - 0.05 * (rows - CENTRE)
    image = ndimage.gaussian_filter(background * np.exp(-0.05 * chord), 0.8)
    image = image + rng.normal(0.0, 1.0, image.shape) * 4.0 * np.sqrt(image / 170)
    if log_display:
        image = 100.0 * np.log(np.maximum(image, 1.0)) - 380.0
    return np.clip(np.rint(image), 0, 255)


def measured(image: np.ndarray[Any, Any], **kwargs: Any) -> QCAMeasurement:
    # the sighting a little off the centreline, as a heatmap peak is
    result = measure_lesion(image, CENTRE + 1.5, CENTRE - 1.0, MM_PER_PX, **kwargs)
    assert isinstance(result, QCAMeasurement), result
    return result


@pytest.mark.parametrize("percent", [30.0, 50.0, 70.0, 85.0])
def test_percent_diameter_stenosis_of_a_tube(percent: float) -> None:
    readings = [measured(tube(percent, seed=seed)).percent_stenosis for seed in range(3)]
    assert np.mean(readings) == pytest.approx(percent, abs=3.0)
    assert max(abs(r - percent) for r in readings) <= 5.0


@pytest.mark.parametrize("percent", [50.0, 85.0])
def test_curved_oblique_vessel(percent: float) -> None:
    reading = measured(tube(percent, angle=2.2, bend=0.004, seed=4)).percent_stenosis
    assert reading == pytest.approx(percent, abs=5.0)


@pytest.mark.parametrize("percent", [50.0, 85.0])
def test_log_display_values(percent: float) -> None:
    # Pixel Intensity Relationship LOG: values are a logarithm of the intensity
    image = tube(percent, seed=5, log_display=True)
    assert measured(image, logarithmic=True).percent_stenosis == pytest.approx(percent, abs=5.0)


def test_diameters_and_length_in_pixels() -> None:
    lesion = measured(tube(70.0, length_px=40.0, seed=1))
    # half-maximum edges of a blurred round lumen: within 10% of its 14 px
    assert lesion.reference_diameter_px == pytest.approx(14.0, rel=0.1)
    ratio = lesion.minimal_lumen_diameter_px / lesion.reference_diameter_px
    assert ratio == pytest.approx(1 - lesion.percent_stenosis / 100, abs=1e-6)
    # narrower than 85% of the reference: (1 + cos(pi t)) / 2 > 0.15 / 0.7
    expected = 40.0 * np.arccos(2 * 0.15 / 0.7 - 1) / np.pi
    assert lesion.lesion_length_px == pytest.approx(expected, abs=4.0)
    # the narrowest point is on the lesion's centre, on the centreline
    assert np.hypot(lesion.row - CENTRE, lesion.column - CENTRE) < 2.5
    assert len(lesion.centreline) > 2 * 8.0 / MM_PER_PX  # about 9 mm each side


def test_a_healthy_vessel_reads_near_zero() -> None:
    assert measured(tube(0.0, seed=2)).percent_stenosis < 10.0


def test_no_vessel_is_not_measured() -> None:
    rng = np.random.default_rng(3)
    flat = np.clip(np.rint(rng.normal(200.0, 4.0, (SIZE, SIZE))), 0, 255)
    result = measure_lesion(flat, CENTRE, CENTRE, MM_PER_PX)
    assert isinstance(result, NotMeasured)
    assert "vessel" in result.reason


def test_a_vessel_that_ends_at_the_lesion_is_not_measured() -> None:
    image = tube(0.0, seed=6)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    along = (cols - CENTRE) * np.cos(0.5) + (rows - CENTRE) * np.sin(0.5)
    image[along > 4] = np.rint(np.mean(image[:10, :10]))  # nothing beyond the sighting
    result = measure_lesion(image, CENTRE, CENTRE, MM_PER_PX)
    assert isinstance(result, NotMeasured), result


def test_without_a_pixel_size_lengths_are_nominal() -> None:
    # no geometry: a 100 mm field is assumed for the lengths looked at; %DS unchanged
    image = tube(70.0, seed=7)
    with_size = measured(image).percent_stenosis
    without = measure_lesion(image, CENTRE + 1.5, CENTRE - 1.0, None)
    assert isinstance(without, QCAMeasurement)
    assert without.percent_stenosis == pytest.approx(with_size, abs=5.0)
