"""A candidate calcium model's result beside the serving one's (shadow mode).

They agree when the CAC-DRS Agatston category (A0, A1, A2, A3: Hecht et al., JCCT 2018),
which decides what the patient is told, is the same; the differences are the total and
per-artery Agatston scores, candidate minus serving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cardiogate.tasks.calcium.scoring import ARTERIES, cac_drs
from cardiogate.tasks.contract import Comparison


def _agatston(result: Mapping[str, Any]) -> dict[str, float]:
    scores = result.get("agatston") or {}
    return {key: float(scores.get(key) or 0.0) for key in ("total", *ARTERIES)}


def _category(scores: Mapping[str, float]) -> str:
    """The CAC-DRS Agatston category without its vessel count: ``"A2"``."""
    return cac_drs(dict(scores)).split("/")[0]


def compare(serving: Mapping[str, Any], candidate: Mapping[str, Any]) -> Comparison:
    """Agreement on the CAC-DRS category; ``agatston_total`` and ``agatston_<artery>``
    differences (candidate minus serving)."""
    before, after = _agatston(serving), _agatston(candidate)
    old, new = _category(before), _category(after)
    difference = {f"agatston_{key}": round(after[key] - before[key], 2) for key in before}
    delta = difference["agatston_total"]
    summary = (
        f"same category {old}; Agatston {before['total']:.1f} -> {after['total']:.1f} "
        f"({delta:+.1f})"
        if old == new
        else f"category {old} -> {new}; Agatston {before['total']:.1f} -> {after['total']:.1f}"
    )
    return Comparison(old == new, difference, summary)
