"""Simulated reviewers of a calcium result: the corrections a reader would send, from the
phantom's truth only.

A lesion of the result is one 8-connected region of pixels at or above 130 HU on one slice
(as both the service and the phantoms' truth define it); its true class is the class most
of its pixels carry in the phantom's ``labels`` (LM, LAD, LCX, RCA), a tie or a majority of
unlabelled pixels meaning ``"none"``: not coronary calcium (valve, aortic wall, bone,
metal, noise). A true lesion no lesion of the result lies on is a missed one, added at its
centroid. With probability ``error_rate`` per item a reviewer errs: a lesion gets a wrong
class (drawn from the others) and a missed lesion goes unreported.

Slices are numbered as the series is read: sorted along the slice normal (PS3.3
C.7.6.2.1.1), which for the phantoms' axial orientation is ascending patient z, while a
phantom's slice 0 is its most cranial. A result lesion is placed on the phantom by its
``position_mm`` z where it has one.

The body returned is what the review API takes as calcium corrections:
``{"lesions": [{"index", "artery"}], "added": [{"slice_index", "row", "col", "artery"}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

CLASSES = ("none", "LM", "LAD", "LCX", "RCA")  # label value 0 .. 4 of the truth map
THRESHOLD_HU = 130.0
_EIGHT = np.ones((3, 3), dtype=bool)


class CalciumPhantom(Protocol):
    """What a simulated reviewer reads of a phantom (family A's ``CardiacPhantom`` and
    family B's ``CTPhantomB`` both have it)."""

    hu: NDArray[np.float32]
    labels: NDArray[np.uint8]
    pixel_spacing_mm: float
    origin_mm: tuple[float, float]
    z_mm: NDArray[np.float64]


def pixel_of(lesion: Mapping[str, Any], phantom: CalciumPhantom) -> tuple[float, float]:
    """A result lesion's (row, column): its own ``row``/``col`` when the result has them,
    else from ``position_mm`` (patient x, y) and the phantom's axial geometry (PS3.3
    C.7.6.2.1.1 with identity orientation, as the phantoms write it)."""
    if "row" in lesion and "col" in lesion:
        return float(lesion["row"]), float(lesion["col"])
    x, y = float(lesion["position_mm"][0]), float(lesion["position_mm"][1])
    x0, y0 = phantom.origin_mm
    return (y - y0) / phantom.pixel_spacing_mm, (x - x0) / phantom.pixel_spacing_mm


class _Slice:
    """The candidate components of one slice and each one's true class."""

    def __init__(self, phantom: CalciumPhantom, z: int) -> None:
        self.components, n = ndimage.label(phantom.hu[z] >= THRESHOLD_HU, structure=_EIGHT)
        votes = np.zeros((n + 1, len(CLASSES)), dtype=np.int64)
        np.add.at(votes, (self.components, np.minimum(phantom.labels[z], 4)), 1)
        self.classes = np.argmax(votes, axis=1)  # a tie goes to the lower class (none)
        self.classes[0] = 0

    def component_at(self, row: float, col: float, reach: int = 3) -> int:
        """The component under (row, col), else the nearest within ``reach`` pixels, else 0
        (a centroid can lie outside a curved component)."""
        rows, cols = self.components.shape
        r, c = round(row), round(col)
        if 0 <= r < rows and 0 <= c < cols and self.components[r, c]:
            return int(self.components[r, c])
        r0, c0 = max(r - reach, 0), max(c - reach, 0)
        window = self.components[r0 : r + reach + 1, c0 : c + reach + 1]
        found = np.argwhere(window > 0)
        if not len(found):
            return 0
        nearest = found[np.argmin(np.hypot(found[:, 0] + r0 - row, found[:, 1] + c0 - col))]
        return int(window[nearest[0], nearest[1]])


def series_order(phantom: CalciumPhantom) -> NDArray[np.intp]:
    """The phantom slice at each series position: ascending z, as the service sorts an
    axial series along its normal."""
    return np.argsort(np.asarray(phantom.z_mm), kind="stable")


def phantom_slice(lesion: Mapping[str, Any], phantom: CalciumPhantom) -> int:
    """The phantom slice a result lesion lies on: nearest its ``position_mm`` z, else
    the series position ``slice_index`` mapped through :func:`series_order`."""
    z_mm = np.asarray(phantom.z_mm, dtype=np.float64)
    if "position_mm" in lesion:
        return int(np.argmin(np.abs(z_mm - float(lesion["position_mm"][2]))))
    return int(series_order(phantom)[int(lesion["slice_index"])])


def _truth_lesions(phantom: Any) -> list[tuple[int, float, float, str]]:
    """(slice, row, column, artery) of every true lesion of the phantom."""
    return [
        (int(t.slice_index), float(t.centroid_rc[0]), float(t.centroid_rc[1]), str(t.artery))
        for t in phantom.truth_scores.lesions
    ]


def _wrong(truth: str, rng: np.random.Generator) -> str:
    others = [c for c in CLASSES if c != truth]
    return others[int(rng.integers(len(others)))]


def simulate_review(
    phantom: CalciumPhantom,
    result: Mapping[str, Any],
    error_rate: float,
    rng: np.random.Generator,
) -> dict[str, list[dict[str, Any]]]:
    """One reviewer's calcium corrections of ``result`` (the service's result JSON) for
    the scan ``phantom`` was rendered from.

    Every lesion of the result is listed with its true class (``"none"`` where it is not
    coronary calcium); every true lesion the result missed is added at its centroid.
    Each item is wrong with probability ``error_rate``: another class drawn uniformly, or
    the missed lesion left out.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must lie in [0, 1], not {error_rate}")
    slices: dict[int, _Slice] = {}

    def at(z: int) -> _Slice:
        if z not in slices:
            slices[z] = _Slice(phantom, z)
        return slices[z]

    lesions: Sequence[Mapping[str, Any]] = result.get("lesions", [])
    seen: set[tuple[int, int]] = set()
    corrected = []
    for index, lesion in enumerate(lesions):
        z = phantom_slice(lesion, phantom)
        component = at(z).component_at(*pixel_of(lesion, phantom))
        seen.add((z, component))
        truth = CLASSES[int(at(z).classes[component])]
        artery = _wrong(truth, rng) if rng.random() < error_rate else truth
        corrected.append({"index": index, "artery": artery})
    added = []
    position = np.argsort(series_order(phantom))  # phantom slice -> series position
    for z, row, col, artery in _truth_lesions(phantom):
        if (z, at(z).component_at(row, col)) in seen or rng.random() < error_rate:
            continue
        added.append(
            {
                "slice_index": int(position[z]),
                "row": round(row, 2),
                "col": round(col, 2),
                "artery": artery,
            }
        )
    return {"lesions": corrected, "added": added}


def fused_corrections(labels: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Fused calcium labels (``key``, ``value``, ``position`` as the review API and the
    export give them) as one reviewer's correction body, to be scored alike by
    :func:`review_accuracy`. A lesion left unresolved is absent, so it counts as wrong; an
    added finding fused absent is dropped."""
    lesions: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for label in labels:
        key, value = str(label["key"]), label["value"]
        if key.startswith("lesion/") and key.count("/") == 1:
            lesions.append({"index": int(key.split("/")[1]), "artery": value})
        elif key.startswith("added/") and value != "none":
            z, row, col = label["position"]
            added.append({"slice_index": int(z), "row": row, "col": col, "artery": value})
    return {"lesions": lesions, "added": added}


def review_accuracy(
    phantom: CalciumPhantom, result: Mapping[str, Any], corrections: Mapping[str, Any]
) -> tuple[int, int]:
    """(right, items): how many of a review's lesion classes and added lesions agree with
    the truth, out of the result's lesions plus the true lesions it missed."""
    truth = simulate_review(phantom, result, 0.0, np.random.default_rng(0))
    expected = {c["index"]: c["artery"] for c in truth["lesions"]}
    given = {int(c["index"]): str(c["artery"]) for c in corrections.get("lesions", [])}
    right = sum(given.get(i) == a for i, a in expected.items())
    wanted = {(a["slice_index"], a["artery"], a["row"], a["col"]) for a in truth["added"]}
    for item in corrections.get("added", []):
        match = [
            w
            for w in wanted
            if w[0] == item["slice_index"]
            and w[1] == item["artery"]
            and np.hypot(w[2] - item["row"], w[3] - item["col"]) <= 5.0
        ]
        if match:
            wanted.discard(match[0])
            right += 1
    return right, len(expected) + len(truth["added"])
