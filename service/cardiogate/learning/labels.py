"""What one review asserts about a result, as task-neutral labels.

A task turns a result plus one reviewer's corrections into a list of `Label`; fusion
(`cardiogate.learning.fusion`) combines the lists of several reviewers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NONE = "none"
"""The category meaning "no finding here" (not coronary calcium, a false lesion)."""


@dataclass(frozen=True, slots=True)
class Label:
    """One assertion of a review.

    Parameters
    ----------
    key
        What it is about: ``"lesion/3"``, ``"lesion/3/vessel"``, ``"lesion/3/percent"``,
        or ``"added"`` for an item the reviewer added (a missed lesion).
    kind
        ``"category"`` (majority vote) or ``"value"`` (median).
    value
        A category such as ``"LAD"`` or `NONE`, or a number such as the %DS.
    weight
        For mask items, the lesion's area in mm2 (its pixels); otherwise 1.
    position
        Only for added items: calcium ``(slice_index, row, col)`` in pixels of the series,
        stenosis ``(frame, row, col)`` of the cine.
    """

    key: str
    kind: Literal["category", "value"]
    value: str | float
    weight: float = 1.0
    position: tuple[float, float, float] | None = None
