"""One finding per lesion: the sightings of a lesion on several frames of a cine, grouped.

The heart moves between frames (translation, contraction, rotation: tens of pixels), so the
same lesion is sighted at different places. Each sighting is carried back to the reference
frame (the best-opacified frame the model read) by the displacement of the vessels around
it: phase correlation of the two frames' vessel images (dark structures narrower than the
background, so that the still spine and ribs do not pull the estimate to zero), first of
the whole frames at low resolution (the heart's shift, however large), then of a window
about ``window_mm`` across around the sighting (what the heart does there). Sightings whose
places on the reference frame lie within the merge distance are one lesion.

Where the displacement cannot be read (a flat window, a weak correlation peak) and the
model names vessels, two sightings on the same vessel at nearly the same fraction of its
length (``position_tolerance``), within the largest motion of a heartbeat, are one lesion.
The tolerance is tight: distinct lesions of one vessel lie as little as 0.09 of its length
apart (the RCA of phantom seed 7), while the model reads the fraction within about 0.02.

Each lesion is reported on its surest sighting, with the frames it was seen on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

# A displacement is trusted when the phase-correlation peak stands this many standard
# deviations above the correlation surface (noise alone: 5-7; vessels: 8-60).
MIN_PEAK = 8.0


@dataclass(frozen=True)
class Sighting:
    """A heatmap peak on one frame."""

    index: int  # 0-based frame index in the cine
    row: float  # frame pixels
    column: float
    probability: float
    percent: float  # the network's reading there
    named: Mapping[str, Any] = field(default_factory=dict)  # vessel, position_along_vessel...


@dataclass(frozen=True)
class Track:
    """The sightings of one lesion, surest first, and where each lies on the reference
    frame (None where its displacement could not be read)."""

    sightings: tuple[Sighting, ...]
    on_reference: tuple[tuple[float, float] | None, ...]

    @property
    def best(self) -> Sighting:
        return self.sightings[0]

    @property
    def frames_seen(self) -> list[int]:
        """1-based frame numbers the lesion was sighted on."""
        return sorted({s.index + 1 for s in self.sightings})


def vessel_image(window: np.ndarray[Any, Any], px_mm: float) -> np.ndarray[Any, Any]:
    """Dark structures up to a few mm wide, positive; the slow background removed."""
    image = np.asarray(window, dtype=np.float32)
    fine = ndimage.gaussian_filter(image, 0.2 * px_mm)
    coarse = ndimage.gaussian_filter(image, 1.5 * px_mm)
    out: np.ndarray[Any, Any] = np.clip(coarse - fine, 0.0, None)
    return out


def displacement(
    moving: np.ndarray[Any, Any],
    reference: np.ndarray[Any, Any],
    row: float,
    column: float,
    half: int,
    px_mm: float,
    guess: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float, float] | None:
    """How far the vessels around (``row``, ``column``) of ``moving`` lie from where they
    are on ``reference``: ``(d_row, d_column, peak)``, the point on the reference being
    ``(row - d_row, column - d_column)``; None when the window does not fit the frame.

    Phase correlation of a Hann-weighted square of side ``2 half`` of each frame, the
    reference's displaced by ``guess`` (the whole heart's shift), so that the window need
    only cover what the heart does locally; ``peak`` is the correlation peak in standard
    deviations of the correlation surface, a measure of trust.
    """
    rows, cols = moving.shape
    if 2 * half > min(rows, cols):
        return None

    def origin(r: float, c: float) -> tuple[int, int]:
        r0 = min(max(round(r) - half, 0), rows - 2 * half)
        return r0, min(max(round(c) - half, 0), cols - 2 * half)

    (rm, cm), (rr, cr) = origin(row, column), origin(row - guess[0], column - guess[1])
    shift = _phase_correlation(
        vessel_image(moving[rm : rm + 2 * half, cm : cm + 2 * half], px_mm),
        vessel_image(reference[rr : rr + 2 * half, cr : cr + 2 * half], px_mm),
    )
    if shift is None:
        return None
    return shift[0] + rm - rr, shift[1] + cm - cr, shift[2]


def heart_shift(
    moving: np.ndarray[Any, Any], reference: np.ndarray[Any, Any], px_mm: float
) -> tuple[float, float] | None:
    """The shift of the whole heart between two frames, on copies block-averaged to about
    128 pixels across (any shift up to half the field); None when it cannot be read."""
    f = max(1, min(moving.shape) // 128)
    rows, cols = moving.shape[0] // f * f, moving.shape[1] // f * f

    def small(frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        blocks = np.asarray(frame[:rows, :cols], dtype=np.float32).reshape(rows // f, f, -1, f)
        return vessel_image(blocks.mean(axis=(1, 3)), px_mm / f)

    shift = _phase_correlation(small(moving), small(reference))
    if shift is None or shift[2] < MIN_PEAK:
        return None
    return shift[0] * f, shift[1] * f


def _phase_correlation(
    a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]
) -> tuple[float, float, float] | None:
    """``(d_row, d_column, peak)`` with ``a(x) = b(x - d)``, sub-pixel; the peak in standard
    deviations of the correlation surface."""
    taper = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    a = (a - a.mean()) * taper
    b = (b - b.mean()) * taper
    cross = np.fft.rfft2(a) * np.conj(np.fft.rfft2(b))
    magnitude = np.abs(cross)
    if float(magnitude.max()) <= 0:
        return None
    surface = np.fft.irfft2(cross / (magnitude + 1e-3 * float(magnitude.max())), s=a.shape)
    surface = np.fft.fftshift(surface)
    peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
    offsets = []
    for axis, k in enumerate(peak):
        line = surface[:, peak[1]] if axis == 0 else surface[peak[0], :]
        sub = 0.0
        if 0 < k < len(line) - 1:
            left, mid, right = line[k - 1], line[k], line[k + 1]
            bend = left - 2 * mid + right
            sub = 0.5 * (left - right) / bend if bend < 0 else 0.0
        offsets.append(float(k + sub - a.shape[axis] // 2))
    spread = float(surface.std())
    return offsets[0], offsets[1], float((surface[peak] - surface.mean()) / max(spread, 1e-12))


def track_lesions(
    frames: np.ndarray[Any, Any],
    sightings: Sequence[Sighting],
    reference: int,
    merge_px: float,
    px_mm: float,
    *,
    window_mm: float = 24.0,
    max_motion_mm: float = 10.0,
    position_tolerance: float = 0.06,
) -> list[Track]:
    """Group ``sightings`` on the frames of ``frames`` (the whole cine, vessels dark) into
    lesions, surest lesion first.

    Parameters
    ----------
    reference : int
        The frame index the sightings are carried back to.
    merge_px : float
        Sightings closer than this on the reference frame are one lesion.
    px_mm : float
        Pixels per mm (nominal when the geometry gives no size).
    """
    half = max(16, round(window_mm * px_mm / 2))
    half = min(half, min(frames.shape[1:]) // 2)
    guesses = {
        index: heart_shift(frames[index], frames[reference], px_mm) or (0.0, 0.0)
        for index in {s.index for s in sightings} - {reference}
    }
    placed: list[tuple[Sighting, tuple[float, float] | None]] = []
    for s in sorted(sightings, key=lambda x: -x.probability):
        if s.index == reference:
            placed.append((s, (s.row, s.column)))
            continue
        shift = displacement(
            frames[s.index], frames[reference], s.row, s.column, half, px_mm, guesses[s.index]
        )
        if shift is None or shift[2] < MIN_PEAK:
            placed.append((s, None))
        else:
            placed.append((s, (s.row - shift[0], s.column - shift[1])))
    groups: list[list[tuple[Sighting, tuple[float, float] | None]]] = []
    for item in placed:
        for group in groups:
            if any(
                _same(item, other, merge_px, max_motion_mm * px_mm, position_tolerance)
                for other in group
            ):
                group.append(item)
                break
        else:
            groups.append([item])
    return [Track(tuple(s for s, _ in group), tuple(p for _, p in group)) for group in groups]


def _same(
    a: tuple[Sighting, tuple[float, float] | None],
    b: tuple[Sighting, tuple[float, float] | None],
    merge_px: float,
    max_motion_px: float,
    position_tolerance: float,
) -> bool:
    (sa, pa), (sb, pb) = a, b
    if sa.index == sb.index:
        return bool(np.hypot(sa.row - sb.row, sa.column - sb.column) <= merge_px)
    if pa is not None and pb is not None:
        return bool(np.hypot(pa[0] - pb[0], pa[1] - pb[1]) <= merge_px)
    va, vb = sa.named.get("vessel"), sb.named.get("vessel")
    fa, fb = sa.named.get("position_along_vessel"), sb.named.get("position_along_vessel")
    return (
        va is not None
        and va == vb
        and fa is not None
        and fb is not None
        and abs(float(fa) - float(fb)) <= position_tolerance
        and bool(np.hypot(sa.row - sb.row, sa.column - sb.column) <= max_motion_px)
    )
