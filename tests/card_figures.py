"""A model's figures re-evaluated in a test against those its card records.

The card's figures are rounded (ratios to 4 decimals, errors to 2) from float32 inference;
another ONNX Runtime build or CPU sums in another order and may land a rounded figure a
step or two away. So counts, seeds and settings must match exactly, and each measured
figure within the tolerance the test states for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest


def expected_figures(recorded: Mapping[str, Any], tolerances: Mapping[str, float]) -> Any:
    """``recorded`` with each figure named in ``tolerances`` (absolute) made approximate;
    compare it with ``==`` to the re-evaluated figures (nested tables stay exact)."""
    unknown = set(tolerances) - set(recorded)
    assert not unknown, f"tolerances for figures the card does not record: {sorted(unknown)}"
    return {
        key: pytest.approx(value, abs=tolerances[key]) if key in tolerances else value
        for key, value in recorded.items()
    }
