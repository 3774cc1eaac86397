"""Where the calcium SR's groups are drawn: each lesion's outline, and the key point of each
artery, of the whole tree and of the aortic valve.

The Agatston method scores 2D regions per slice (``CalciumResult.lesions``, and
``CalciumResult.aortic_valve.lesions``); a plaque that spans several slices is several of
them. The SR reports lesions as a reader sees them: the
slice regions of one artery that overlap from one slice to the next make one lesion, whose
scores are their sums and which is drawn on the slice where it is largest.

The regions' pixels are the SEG's: a SEG frame holds one artery's (or the aortic valve's)
scored pixels on one slice, and its 8-connected regions are exactly that artery's slice
regions there (:func:`cardiogate.tasks.calcium.scoring.score_lesions` gives every pixel of
a region the region's label). Each slice region is matched to the SEG region whose
centroid is its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from scipy import ndimage

from cardiogate.reports.common import ReportError
from cardiogate.reports.sr_geometry import outline, pixel_position, representative_pixel
from cardiogate.tasks.calcium.result import CalciumLesion
from cardiogate.tasks.calcium.seg import CalciumSegmentation

_EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)
_MATCH_TOLERANCE_PX = 1.0  # between a slice region's centroid and its SEG region's


@dataclass(frozen=True)
class Footprint:
    """A slice region's pixels on its image: a boolean mask of its bounding box, whose top
    left pixel is (``row``, ``column``)."""

    image: Dataset
    mask: np.ndarray[Any, np.dtype[np.bool_]]
    row: int
    column: int

    def flat(self, columns: int) -> np.ndarray[Any, Any]:
        """Row-major pixel indices in an image ``columns`` wide, sorted."""
        rows, cols = np.nonzero(self.mask)
        indices: np.ndarray[Any, Any] = (rows + self.row) * columns + cols + self.column
        return indices

    def outline(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The closed outline in SCOORD (column, row) image coordinates."""
        return outline(self.mask) + np.array([self.column, self.row], dtype=np.float64)

    def point(self) -> tuple[float, float]:
        """A point on the region in SCOORD (column, row) image coordinates."""
        x, y = representative_pixel(self.mask)
        return x + self.column, y + self.row


@dataclass(frozen=True)
class Lesion:
    """Overlapping slice regions of one artery (or AV): ``members`` index the slice regions
    they were joined from, in order; ``drawn`` is the member with the largest area."""

    artery: str
    members: tuple[int, ...]
    drawn: int
    agatston: float
    volume_mm3: float


def footprints(
    slices: Sequence[Dataset], lesions: Sequence[CalciumLesion], seg: CalciumSegmentation
) -> list[Footprint]:
    """The footprint of each of the slice regions ``lesions``, in order; ``slices`` in
    volume order."""
    found = []
    regions: dict[int, _FrameRegions] = {}  # by SEG frame
    for index, lesion in enumerate(lesions, start=1):
        image = slices[lesion.slice_index]
        if str(image.SOPInstanceUID) != lesion.SOPInstanceUID:
            raise ReportError(f"lesion {index} is not on slice {lesion.slice_index}")
        frame = seg.frames.get((lesion.artery, lesion.SOPInstanceUID))
        if frame is None:  # the SEG was built from other labels than the result's
            raise ReportError(
                f"no {lesion.artery} segment frame on slice {lesion.slice_index} for lesion {index}"
            )
        if frame not in regions:
            regions[frame] = _FrameRegions.of(np.asarray(seg.dataset.get_stored_frame(frame)) > 0)
        found.append(regions[frame].footprint(index, lesion, image))
    return found


@dataclass(frozen=True)
class _FrameRegions:
    """The 8-connected regions of one SEG frame: labels, bounding boxes and centroids."""

    labels: np.ndarray[Any, Any]
    windows: list[tuple[slice, slice]]
    centroids: np.ndarray[Any, np.dtype[np.float64]]  # (regions, 2) row, column

    @classmethod
    def of(cls, mask: np.ndarray[Any, Any]) -> _FrameRegions:
        labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        centroids = ndimage.center_of_mass(mask, labels, range(1, count + 1))
        return cls(
            labels,
            list(ndimage.find_objects(labels)),
            np.asarray(centroids, dtype=np.float64).reshape(-1, 2),
        )

    def footprint(self, index: int, lesion: CalciumLesion, image: Dataset) -> Footprint:
        """The region whose centroid is the lesion's, as a footprint on ``image``."""
        expected = pixel_position(image, lesion.position_mm)
        if expected is None:
            raise ReportError(
                f"slice {lesion.slice_index} lacks ImagePositionPatient, "
                f"ImageOrientationPatient or PixelSpacing: lesion {index} cannot be placed"
            )
        distances = np.hypot(*(self.centroids - np.asarray(expected)).T)
        if not len(distances) or distances.min() > _MATCH_TOLERANCE_PX:
            raise ReportError(
                f"the SEG has no {lesion.artery} region at lesion {index} on slice "
                f"{lesion.slice_index}"
            )
        label = int(np.argmin(distances)) + 1
        rows, columns = self.windows[label - 1]
        return Footprint(
            image, self.labels[rows, columns] == label, int(rows.start), int(columns.start)
        )


def lesions_across_slices(
    regions: Sequence[CalciumLesion], prints: Sequence[Footprint]
) -> list[Lesion]:
    """The slice regions joined into lesions: same artery, adjacent slices, shared pixels;
    in the order of their first member."""
    parent = list(range(len(regions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    columns = {i: int(p.image.Columns) for i, p in enumerate(prints)}
    by_place: dict[tuple[int, str], list[int]] = {}
    for i, lesion in enumerate(regions):
        by_place.setdefault((lesion.slice_index, lesion.artery), []).append(i)
    flat = {i: prints[i].flat(columns[i]) for i in range(len(prints))}
    for (z, artery), here in by_place.items():
        for i in here:
            for j in by_place.get((z + 1, artery), []):
                if columns[i] == columns[j] and np.intersect1d(flat[i], flat[j]).size:
                    parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(regions)):
        members.setdefault(root(i), []).append(i)
    joined = []
    for group in sorted(members.values(), key=lambda g: g[0]):
        chosen = [regions[i] for i in group]
        drawn = max(group, key=lambda i: (regions[i].area_mm2, -i))
        joined.append(
            Lesion(
                artery=chosen[0].artery,
                members=tuple(group),
                drawn=drawn,
                agatston=round(sum(lesion.agatston for lesion in chosen), 3),
                volume_mm3=round(sum(lesion.volume_mm3 for lesion in chosen), 3),
            )
        )
    return joined


def key_lesion(regions: Sequence[CalciumLesion], artery: str | None) -> int | None:
    """The slice region (index into ``regions``) that stands for ``artery`` (None: all of
    them, e.g. the whole tree): on the slice where it scores most, its highest-scoring
    region; None without calcium."""
    chosen = [
        (i, lesion) for i, lesion in enumerate(regions) if artery is None or lesion.artery == artery
    ]
    if not chosen:
        return None
    by_slice: dict[int, float] = {}
    for _, lesion in chosen:
        by_slice[lesion.slice_index] = by_slice.get(lesion.slice_index, 0.0) + lesion.agatston
    # ties go to the first slice and the first region, so the choice is the same every run
    top = max(by_slice, key=lambda z: (by_slice[z], -z))
    on_top = [(i, lesion) for i, lesion in chosen if lesion.slice_index == top]
    best, _ = max(on_top, key=lambda item: (item[1].agatston, item[1].area_mm2, -item[0]))
    return best
