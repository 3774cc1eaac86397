"""Training samples for the stenosis model, in three levels of difficulty.

The levels follow the curriculum of the stenosis CNN: first "is there a
stenosis in this short straight segment?", then longer curved segments with a
branch, then whole-tree frames.  Every sample is drawn with the image model of
the synthetic cines (:mod:`.xa_image`: X-ray background, iodine chord
attenuation, blur, quantum noise, 8-bit quantisation) and handed over the way
the model sees a stored frame, through :func:`.xa_image.normalise_xa_frame`:
float32 in [0, 1], vessels dark.  Pure numpy, no DICOM.

About half the samples of each level are significant (a lesion of at least
50 % diameter stenosis); the others hold no lesion or only milder ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._raster import F32, F64
from .xa_image import (
    CATHETER_MU,
    MU_PER_MM,
    Background,
    Exposure,
    centreline_mask,
    draw_projection,
    normalise_xa_frame,
    project_tubes,
)
from .xa_tree import (
    REF_SIZE,
    SIGNIFICANT_PERCENT,
    Vessel,
    branch,
    curve,
    place_lesions,
    random_stenoses,
)
from .xa_views import LCA_VIEWS, RCA_VIEWS, build_tree, catheter

LEVELS = (1, 2, 3)
_MOST_LESIONS = {1: 1, 2: 2, 3: 3}


@dataclass(frozen=True)
class CurriculumLesion:
    """One stenosis in a curriculum sample (pixels of the sample).

    Attributes
    ----------
    x, y : float
        Centre of the lesion (its minimal lumen) on the centreline; x = column, y = row.
    percent : float
        Diameter stenosis.
    vessel : str
        Vessel name (``"segment"``, ``"main"``, ``"branch"`` or a coronary name at level 3).
    reference_diameter_px, length_px : float
        Unnarrowed lumen diameter at the lesion and the lesion's length.
    """

    x: float
    y: float
    percent: float
    vessel: str
    reference_diameter_px: float
    length_px: float

    @property
    def significant(self) -> bool:
        """At least 50 % diameter stenosis."""
        return self.percent >= SIGNIFICANT_PERCENT


@dataclass(frozen=True, eq=False)
class CurriculumSample:
    """One training sample.

    Attributes
    ----------
    level : int
        1, 2 or 3.
    image : ndarray of float32, shape (size, size)
        The normalised image (stored 8-bit value / 255; vessels dark).
    significant : bool
        Whether any lesion is significant (the image-level label).
    lesions : tuple of CurriculumLesion
        Every lesion in the image, significant or not.
    centerline : ndarray of bool, shape (size, size)
        One-pixel centrelines of the contrast-filled vessels.
    """

    level: int
    image: F32
    significant: bool
    lesions: tuple[CurriculumLesion, ...]
    centerline: NDArray[np.bool_]

    def lesion_points(self) -> F32:
        """The lesions as an array of rows ``(x, y, percent)``, shape (n, 3)."""
        out: F32 = np.array(
            [(les.x, les.y, les.percent) for les in self.lesions], dtype=np.float32
        ).reshape(-1, 3)
        return out


def _percents(rng: np.random.Generator, most: int) -> list[float]:
    """Lesion severities: half the time one significant lesion first, else only mild ones."""
    if rng.random() < 0.5:
        extra = rng.uniform(20, 95, size=int(rng.integers(0, most)))
        return [float(rng.uniform(SIGNIFICANT_PERCENT, 95)), *map(float, extra)]
    return [
        float(p) for p in rng.uniform(20, SIGNIFICANT_PERCENT, size=int(rng.integers(0, most + 1)))
    ]


def _through(rng: np.random.Generator, name: str, size: int, bend: float, diam_px: float) -> Vessel:
    """A vessel twice the patch long whose middle passes near the patch centre (straight
    when *bend* is 0)."""
    heading = float(rng.uniform(0, 360))
    wiggle = 6.0 if bend else 0.0
    pts = curve(rng, (0.0, 0.0), heading, 2.0 * size, bend_deg=bend, wiggle_deg=wiggle)
    mid = pts[len(pts) // 2]
    centre = size / 2 - 0.5 + rng.uniform(-0.1, 0.1, size=2) * size
    r0 = diam_px / 2
    return Vessel(name, None, pts - mid + centre, r0, r0 * float(rng.uniform(0.8, 1.0)))


def _segments(rng: np.random.Generator, level: int, size: int, mm: float) -> list[Vessel]:
    """Level 1: one straight segment; level 2: a curved one with a side branch."""
    diam_mm = float(rng.uniform(1.5, 4.0) if level == 1 else rng.uniform(2.0, 4.0))
    if level == 1:
        return [_through(rng, "segment", size, 0.0, diam_mm / mm)]
    main = _through(rng, "main", size, float(rng.uniform(-70, 70)), diam_mm / mm)
    length = float(rng.uniform(0.5, 0.9)) * size
    ratio = diam_mm * float(rng.uniform(0.6, 0.85))
    side = 1 if rng.random() < 0.5 else -1
    return [main, branch(rng, main, "branch", (0.4, 0.55), side, length, (ratio, ratio), mm)]


@dataclass(frozen=True, eq=False)
class _Layout:
    """What a sample shows and where its pixels lie on the 512 reference frame."""

    tree: list[Vessel]
    catheter: Vessel | None
    scale: float  # sample pixels per reference pixel
    mm_per_px: float
    origin: F64  # reference (x, y) of the sample's first pixel
    opacity: float


def _layout(level: int, rng: np.random.Generator, size: int, frame_size: int) -> _Layout:
    pitch, sid, sod = draw_projection(rng)
    if level == 3:  # a zoomed crop of a whole frame at peak opacification
        zoom = float(rng.uniform(1.0, 1.35))
        scale = size / REF_SIZE * zoom
        crop = rng.uniform(0, (zoom - 1) * size, size=2)
        mm = pitch * sod / sid / scale
        views = LCA_VIEWS + RCA_VIEWS
        view = views[int(rng.integers(len(views)))]
        tree = build_tree(rng, view, scale=scale, offset=-crop, mm_per_px=mm)
        cath = catheter(rng, tree[0], 2.0 / mm, 700 * scale)
        return _Layout(tree, cath, scale, mm, crop / scale, float(rng.uniform(0.85, 1.0)))
    scale = frame_size / REF_SIZE * float(rng.uniform(0.8, 1.25))
    mm = pitch * sod / sid / scale
    tree = _segments(rng, level, size, mm)
    origin = rng.uniform(0, max(REF_SIZE - size / scale, 0.0), size=2)
    return _Layout(tree, None, scale, mm, origin, float(rng.uniform(0.6, 1.0)))


def curriculum_sample(
    level: int, rng: np.random.Generator, size: int, *, frame_size: int = 512
) -> CurriculumSample:
    """Draw one curriculum sample.

    Parameters
    ----------
    level : {1, 2, 3}
        1: a short straight segment (one vessel, 1.5-4 mm), no lesion or one of
        20-95 % in the middle half of the patch.  2: a longer curved segment
        with one side branch, 0-2 lesions.  3: a whole coronary tree (any LCA
        or RCA view) with catheter and background at peak opacification, as a
        frame of side *size* zoomed by 1-1.35 and cropped, 0-3 lesions.
    rng : numpy.random.Generator
        The only source of randomness; the same state gives the same sample.
    size : int
        Side of the square sample, pixels (at least 16).
    frame_size : int
        Levels 1 and 2 are drawn at the pixel scale of a cine frame of this
        side (times a 0.8-1.25 zoom), e.g. 256 when the model sees 512 frames
        downsized by 2.  Level 3 ignores it.

    Returns
    -------
    CurriculumSample

    Raises
    ------
    ValueError
        For an unknown level or a size below 16.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if size < 16 or frame_size < 16:
        raise ValueError("size and frame_size must be at least 16 pixels")
    lay = _layout(level, rng, size, frame_size)
    margin = 0.25 * size if level == 1 else 0.08 * size  # level 1: "here" is the middle
    longest = min(12.0, 0.4 * size * lay.mm_per_px)  # leave normal vessel beside a lesion
    specs = random_stenoses(
        rng,
        lay.tree,
        _percents(rng, _MOST_LESIONS[level]),
        mm_per_px=lay.mm_per_px,
        box=(margin, margin, size - 1 - margin, size - 1 - margin),
        lengths_mm=(min(4.0, longest / 2), longest),
    )
    tree = place_lesions(lay.tree, specs, lay.mm_per_px)

    shape = (size, size)
    samples = [v.sample() for v in tree]
    pts = np.concatenate([p for p, _, _ in samples])
    radii = np.concatenate([r for _, r, _ in samples])
    mu = float(rng.uniform(*MU_PER_MM)) * lay.mm_per_px
    att = project_tubes(pts, radii, shape)[0] * np.float32(mu * lay.opacity)
    if lay.catheter is not None:  # full of contrast, as in the cines
        cath_pts, cath_r, _ = lay.catheter.sample()
        att += project_tubes(cath_pts, cath_r, shape)[0] * np.float32(CATHETER_MU * mu)
    axis = ((lay.origin[:, None] + np.arange(size) / lay.scale) - (REF_SIZE - 1) / 2) / REF_SIZE
    axis = axis.astype(np.float32)
    intensity = Background.random(rng).render(axis[0], axis[1])
    pixels = Exposure.random(rng).apply(intensity * np.exp(-att), rng, lay.scale)
    lesions = tuple(_lesions(tree))
    return CurriculumSample(
        level=level,
        image=normalise_xa_frame(pixels),
        significant=any(les.significant for les in lesions),
        lesions=lesions,
        centerline=centreline_mask(
            np.concatenate([v.sample(0.5, whole=True)[0] for v in tree]), shape
        ),
    )


def _lesions(tree: list[Vessel]) -> list[CurriculumLesion]:
    out = []
    for v in tree:
        for les in v.lesions:
            x, y = v.point(les.position)
            ref = v.reference_diameter(les.position)
            out.append(
                CurriculumLesion(float(x), float(y), les.percent, v.name, ref, les.length_px)
            )
    return out
